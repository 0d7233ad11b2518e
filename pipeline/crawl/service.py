"""Run the crawler as a process: one HTTP session, one producer, discovery and fetching side by side."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import sys

from aiokafka import AIOKafkaConsumer, TopicPartition

from pipeline.clock import utc_now
from pipeline.crawl.counters import CrawlCounters
from pipeline.crawl.crawler import CrawlNode
from pipeline.crawl.fetcher import FEED_TYPES, FetchPolicy, crawler_session
from pipeline.crawl.guard import AddressPolicy
from pipeline.crawl.poller import SourcePoller
from pipeline.crawl.sources import Source, SourceKind, SourcesWatcher
from pipeline.ops.kafka import client_options
from pipeline.ops.metrics import serve as serve_metrics
from pipeline.ops.metrics import watch_outcomes
from pipeline.ops.topics import create_topics
from pipeline.raw.atomic_writer import AtomicWriter, transactional_producer
from pipeline.raw.publisher import reliable_producer
from pipeline.settings import CrawlSettings, Settings

PROGRESS_EVERY_S = 2.0


def fetch_policies(crawl: CrawlSettings) -> tuple[FetchPolicy, FetchPolicy, FetchPolicy]:
    """Policies for article pages, for feeds and sitemaps, and for robots.txt."""
    pages = FetchPolicy(
        max_body_bytes=crawl.max_body_bytes,
        connect_timeout_s=crawl.connect_timeout_s,
        read_timeout_s=crawl.read_timeout_s,
        total_timeout_s=crawl.request_timeout_s,
        user_agent=crawl.user_agent,
    )
    feeds = dataclasses.replace(pages, accepted_types=FEED_TYPES)
    robots = dataclasses.replace(feeds, max_body_bytes=512 * 1024)
    return pages, feeds, robots


def cli_sources(feeds: list[str], poll_interval_s: float) -> list[Source]:
    return [
        Source(id=f"feed:{url}", kind=SourceKind.FEED, url=url, poll_interval_s=poll_interval_s)
        for url in feeds
    ]


async def crawl(settings: Settings, feeds: list[str], *, once: bool) -> CrawlCounters:
    """Crawl until SIGINT/SIGTERM, or (once) until every URL the sources announce now has been handled."""
    await create_topics(settings)
    crawl_settings = settings.crawl
    extra = cli_sources(feeds, crawl_settings.poll_interval_s)
    watcher = SourcesWatcher(crawl_settings.sources_file) if crawl_settings.sources_file else None
    if watcher is not None:
        watcher.changed()

    def sources() -> list[Source]:
        if watcher is not None:
            watcher.changed()
            return [*watcher.sources, *extra]
        return extra

    pages, feed_policy, robots_policy = fetch_policies(crawl_settings)
    counters = CrawlCounters()
    watch_outcomes(
        "crawler", counters.outcomes, lambda: {"newsfeed_crawl_fetched_bytes": counters.fetched_bytes}
    )
    if settings.metrics.enabled:
        serve_metrics(settings.metrics.host, settings.metrics.crawler_port)
    address_policy = AddressPolicy(allowed_hosts=frozenset(crawl_settings.allowed_private_hosts))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    producer = reliable_producer(settings)
    transactional_id = f"{crawl_settings.group_id}-{crawl_settings.node_id}"
    writer = AtomicWriter(lambda: transactional_producer(settings, transactional_id))
    await producer.start()
    await writer.start()
    try:
        async with crawler_session(pages, address_policy, limit=crawl_settings.concurrency * 2) as session:
            node = CrawlNode(
                settings,
                session,
                producer,
                writer,
                page_policy=pages,
                robots_policy=robots_policy,
                wall_clock=utc_now,
                counters=counters,
            )
            poller = SourcePoller(
                sources,
                session,
                producer,
                settings.topics.frontier,
                feed_policy=feed_policy,
                page_policy=pages,
                owns_host=(lambda host: True) if once else node.owns_host,
                wall_clock=utc_now,
                counters=counters,
                request_slot=node.request_slot,
                scheduler=node.scheduler,
                robots=node.robots if crawl_settings.polite else None,
            )
            tasks = [asyncio.create_task(node.run(stop)), asyncio.create_task(_show_progress(counters, stop))]
            if once:
                for source in sources():
                    await poller.poll(source)
                await _until_frontier_done(settings, node, stop)
                stop.set()
            else:
                tasks.append(asyncio.create_task(poller.run(stop)))
                tasks.append(asyncio.create_task(node.revisit(stop)))
            await asyncio.gather(*tasks)
    finally:
        await writer.stop()
        await producer.stop()
    return counters


async def _until_frontier_done(settings: Settings, node: CrawlNode, stop: asyncio.Event) -> None:
    """Wait until this node has handled everything on the frontier (retries included)."""
    probe = AIOKafkaConsumer(**client_options(settings.kafka), enable_auto_commit=False)
    await probe.start()
    try:
        topic = settings.topics.frontier
        while not stop.is_set():
            partitions = [TopicPartition(topic, p) for p in sorted(probe.partitions_for_topic(topic) or {0})]
            ends = await probe.end_offsets(partitions)
            positions = await node.positions()
            caught_up = len(positions) == len(partitions) and all(
                positions[tp] >= end for tp, end in ends.items()
            )
            if caught_up and node.in_flight() == 0:
                return
            await asyncio.sleep(0.2)
    finally:
        await probe.stop()


async def _show_progress(counters: CrawlCounters, stop: asyncio.Event) -> None:
    if not sys.stderr.isatty():
        return
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), PROGRESS_EVERY_S)
        sys.stderr.write(f"\r{counters.progress_line()}\x1b[K")
        sys.stderr.flush()
    sys.stderr.write("\n")
