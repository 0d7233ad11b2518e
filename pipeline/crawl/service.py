"""Run the crawler as a process: one HTTP session, one producer, until stopped or after one pass."""

from __future__ import annotations

import asyncio
import signal

import aiohttp

from pipeline.clock import utc_now
from pipeline.crawl.crawler import Crawler, CrawlReport
from pipeline.raw.publisher import RawPagePublisher
from pipeline.settings import Settings


def http_session(settings: Settings) -> aiohttp.ClientSession:
    """The process's one HTTP session, with the crawler's identity and timeouts."""
    crawl = settings.crawl
    return aiohttp.ClientSession(
        headers={
            "User-Agent": crawl.user_agent,
            "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9",
        },
        timeout=aiohttp.ClientTimeout(
            total=crawl.request_timeout_s, sock_connect=10, sock_read=crawl.request_timeout_s
        ),
        connector=aiohttp.TCPConnector(limit=crawl.concurrency, limit_per_host=2),
    )


async def crawl(settings: Settings, feeds: list[str], *, once: bool) -> CrawlReport:
    """Crawl the feeds once, or keep polling until SIGINT/SIGTERM."""
    async with http_session(settings) as session, RawPagePublisher(settings) as publisher:
        crawler = Crawler(settings.crawl, session, publisher, utc_now)
        if once:
            return await crawler.crawl_feeds(feeds)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await crawler.run(feeds, stop)
        return CrawlReport()
