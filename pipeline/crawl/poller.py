"""Discovery: poll due sources (feeds, sitemaps, section pages) and announce new URLs on the frontier."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import aiohttp
from aiokafka import AIOKafkaProducer

from pipeline.clock import Clock
from pipeline.crawl.counters import CrawlCounters
from pipeline.crawl.discovery import DiscoveredUrl, FeedError, parse_section, parse_sitemap
from pipeline.crawl.feeds import parse_feed_urls
from pipeline.crawl.fetcher import FetchError, FetchPolicy, FetchResult, Validators, fetch
from pipeline.crawl.frontier import frontier_url, host_of, send_to_frontier
from pipeline.crawl.politeness import HostScheduler
from pipeline.crawl.robots import RobotsCache
from pipeline.crawl.sources import Source, SourceKind

log = logging.getLogger(__name__)
MAX_CHILD_SITEMAPS = 50
RECENTLY_ANNOUNCED = 200_000


class SourcePoller:
    """Polls each due source this process owns and puts URLs not announced lately on the frontier."""

    def __init__(
        self,
        sources: Callable[[], list[Source]],
        session: aiohttp.ClientSession,
        producer: AIOKafkaProducer,
        frontier_topic: str,
        *,
        feed_policy: FetchPolicy,
        page_policy: FetchPolicy,
        owns_host: Callable[[str], bool],
        wall_clock: Clock,
        counters: CrawlCounters,
        request_slot: Callable[[str, float | None], AbstractAsyncContextManager[None]],
        scheduler: HostScheduler,
        robots: RobotsCache | None,
    ) -> None:
        self.sources = sources
        self.session = session
        self.producer = producer
        self.frontier_topic = frontier_topic
        self.feed_policy = feed_policy
        self.page_policy = page_policy
        self.owns_host = owns_host
        self.wall_clock = wall_clock
        self.counters = counters
        self.scheduler = scheduler
        self.request_slot = request_slot
        self.robots = robots
        self._due_at: dict[str, float] = {}
        self._validators: dict[str, Validators] = {}
        # Re-announcing every URL of a feed on every poll would flood the frontier; the crawl state
        # downstream is the real guard, this only keeps the traffic down.
        self._announced: OrderedDict[str, None] = OrderedDict()

    async def run(self, stop: asyncio.Event) -> None:
        """Poll due sources until stopped; a source's failure is counted, never fatal."""
        while not stop.is_set():
            now = time.monotonic()
            due = [
                source
                for source in self.sources()
                if self._due_at.get(source.id, 0.0) <= now and self.owns_host(host_of(source.url))
            ]
            for source in due:
                self._due_at[source.id] = now + source.poll_interval_s
            if due:
                await asyncio.gather(*(self.poll(source) for source in due))
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except TimeoutError:
                continue

    async def poll(self, source: Source) -> int:
        """Fetch one source and announce its new URLs; returns how many were announced."""
        try:
            found = await self._discover(source)
        except (FetchError, FeedError) as error:
            reason = error.reason if isinstance(error, FetchError) else "unreadable"
            log.warning("source %s (%s) failed: %s", source.id, source.url, error)
            self.counters.record(source.id, f"source-failed:{reason}")
            return 0
        return await self.announce([item for item in found if source.accepts(item.url)])

    async def announce(self, found: list[DiscoveredUrl]) -> int:
        fresh = [item for item in found if item.url not in self._announced]
        discovered_at = self.wall_clock().isoformat()
        sends = [
            await send_to_frontier(
                self.producer,
                self.frontier_topic,
                frontier_url(item.url, item.source_id, discovered_at, item.published, item.title),
            )
            for item in fresh
        ]
        await asyncio.gather(*sends)
        for item in fresh:
            self._remember(item.url)
            self.counters.record(item.source_id, "discovered")
        return len(fresh)

    async def _discover(self, source: Source) -> list[DiscoveredUrl]:
        if source.kind is SourceKind.SECTION:
            result = await self._fetch_source(source.id, source.url, self.page_policy)
            if result is None or source.article_pattern is None:
                return []
            return parse_section(result.text or "", result.final_url, source.id, source.article_pattern)
        result = await self._fetch_source(source.id, source.url, self.feed_policy)
        if result is None:
            return []
        if source.kind is SourceKind.FEED:
            return parse_feed_urls(result.body, result.final_url, source.id)
        return await self._sitemap_urls(source, result)

    async def _sitemap_urls(self, source: Source, result: FetchResult) -> list[DiscoveredUrl]:
        content = parse_sitemap(result.body, result.final_url, source.id)
        urls = list(content.urls)
        for child in content.child_sitemaps[:MAX_CHILD_SITEMAPS]:
            child_result = await self._fetch_source(source.id, child, self.feed_policy)
            if child_result is not None:
                # One level of index is what news sitemaps use; deeper nesting is not followed.
                urls.extend(parse_sitemap(child_result.body, child_result.final_url, source.id).urls)
        return urls

    async def _fetch_source(self, source_id: str, url: str, policy: FetchPolicy) -> FetchResult | None:
        """A conditional GET under the same politeness as pages; None when unchanged or not allowed."""
        if self.robots is not None:
            if not await self.robots.allows(url):
                self.counters.record(source_id, "robots-denied")
                return None
            delay = await self.robots.crawl_delay(url)
        else:
            delay = None
        host = host_of(url)
        async with self.request_slot(host, delay):
            result = await fetch(self.session, url, policy, validators=self._validators.get(url))
        if result.status == 429 or result.status >= 500:
            self.scheduler.record_failure(host, result.retry_after_s)
            raise FetchError(f"http-{result.status}")
        self.scheduler.record_success(host)
        if result.not_modified:
            self.counters.record(source_id, "source-not-modified")
            return None
        if result.status != 200:
            raise FetchError(f"http-{result.status}")
        if result.etag or result.last_modified:
            self._validators[url] = Validators(etag=result.etag, last_modified=result.last_modified)
        return result

    def _remember(self, url: str) -> None:
        self._announced[url] = None
        self._announced.move_to_end(url)
        while len(self._announced) > RECENTLY_ANNOUNCED:
            self._announced.popitem(last=False)
