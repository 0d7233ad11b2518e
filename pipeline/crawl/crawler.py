"""The crawl loop: poll feeds, fetch new article URLs politely and hand pages to the publisher."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import aiohttp

from pipeline.crawl.feeds import FeedError, parse_feed
from pipeline.crawl.fetcher import FetchError, FetchResult, fetch
from pipeline.crawl.urls import canonical_url
from pipeline.records import RawPage
from pipeline.settings import CrawlSettings

log = logging.getLogger(__name__)
HTML_TYPES = ("text/html", "application/xhtml+xml")


class PagePublisher(Protocol):
    """Where fetched pages go (the Kafka publisher, or a list in tests)."""

    async def publish(self, page: RawPage) -> None: ...


@dataclass
class CrawlReport:
    """Counts by outcome for one pass, and the URLs published."""

    outcomes: Counter[str] = field(default_factory=Counter)
    published: list[str] = field(default_factory=list)


class Crawler:
    """Fetches what feeds announce, once per canonical URL, and publishes each page."""

    def __init__(
        self,
        settings: CrawlSettings,
        session: aiohttp.ClientSession,
        publisher: PagePublisher,
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.session = session
        self.publisher = publisher
        self.clock = clock
        self.seen: set[str] = set()
        self._slots = asyncio.Semaphore(settings.concurrency)

    async def crawl_feeds(self, feed_urls: list[str]) -> CrawlReport:
        """One pass over the feeds: fetch every URL not seen before."""
        report = CrawlReport()
        jobs: list[tuple[str, str]] = []
        for feed_url in feed_urls:
            try:
                feed = await fetch(self.session, feed_url, self.settings.max_body_bytes)
                if feed.status != 200:
                    raise FeedError(f"{feed_url}: HTTP {feed.status}")
                entries = parse_feed(feed.body, feed.final_url)
            except (FetchError, FeedError) as error:
                log.warning("feed %s unreadable: %s", feed_url, error)
                report.outcomes["feed-failed"] += 1
                continue
            for entry in entries:
                url = canonical_url(entry.url)
                if url not in self.seen:
                    self.seen.add(url)
                    jobs.append((url, feed_url))
        await asyncio.gather(*(self._crawl_page(url, source, report) for url, source in jobs))
        return report

    async def run(self, feed_urls: list[str], stop: asyncio.Event) -> None:
        """Poll the feeds until asked to stop."""
        while not stop.is_set():
            report = await self.crawl_feeds(feed_urls)
            log.info("crawl pass: %s", dict(report.outcomes))
            try:
                await asyncio.wait_for(stop.wait(), self.settings.poll_interval_s)
            except TimeoutError:
                continue

    async def _crawl_page(self, url: str, source: str, report: CrawlReport) -> None:
        async with self._slots:
            try:
                result = await fetch(self.session, url, self.settings.max_body_bytes)
            except FetchError as error:
                log.info("fetch %s failed: %s", url, error)
                report.outcomes[f"failed:{error.reason}"] += 1
                return
        if result.status != 200:
            report.outcomes[f"status:{result.status}"] += 1
            return
        content_type = result.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in HTML_TYPES:
            report.outcomes["not-html"] += 1
            return
        await self.publisher.publish(self._raw_page(url, source, result))
        report.outcomes["fetched"] += 1
        report.published.append(url)

    def _raw_page(self, url: str, source: str, result: FetchResult) -> RawPage:
        return RawPage(
            url=url,
            final_url=result.final_url,
            status=result.status,
            headers=result.headers,
            fetched_at=self.clock().isoformat(),
            source=source,
            content_hash="sha256:" + hashlib.sha256(result.body).hexdigest(),
            html=result.body.decode(result.charset or "utf-8", errors="replace"),
            trace_id=uuid.uuid4().hex,
        )
