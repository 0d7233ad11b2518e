"""The fetch side of the crawler: consume the frontier, fetch politely, publish pages, keep crawl state."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord

from pipeline.clock import Clock
from pipeline.crawl.counters import CrawlCounters
from pipeline.crawl.fetcher import FetchError, FetchPolicy, FetchResult, Validators, fetch
from pipeline.crawl.frontier import FrontierUrl, frontier_url, host_of, partition_of, send_to_frontier
from pipeline.crawl.politeness import HostScheduler
from pipeline.crawl.progress import OffsetTracker
from pipeline.crawl.robots import RobotsCache
from pipeline.crawl.state import CrawlStateStore, UrlState, after_fetch, is_due
from pipeline.ops.kafka import client_options
from pipeline.ops.metrics import FETCH_SECONDS
from pipeline.raw.atomic_writer import AtomicWriter, OutgoingRecord
from pipeline.raw.publisher import RAW_PAGE_SCHEMA, record_headers
from pipeline.records import RawPage, dumps
from pipeline.settings import Settings
from pipeline.stream.dead_letters import dead_letter_of
from pipeline.stream.decode import InvalidRecordError, parse_record

log = logging.getLogger(__name__)
MAX_FRONTIER_RECORD_BYTES = 64 * 1024
# Failures worth trying again later; anything else (404, too large, not HTML, robots) is final.
TRANSIENT_REASONS = frozenset({"timeout", "connection", "host-paused"})
COMMIT_INTERVAL_S = 1.0


class CrawlNode:
    """One crawler process's share of the frontier: the hosts of the partitions the group assigned it."""

    def __init__(
        self,
        settings: Settings,
        session: aiohttp.ClientSession,
        producer: AIOKafkaProducer,
        writer: AtomicWriter,
        *,
        page_policy: FetchPolicy,
        robots_policy: FetchPolicy,
        wall_clock: Clock,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        counters: CrawlCounters | None = None,
    ) -> None:
        crawl = settings.crawl
        self.settings = settings
        self.session = session
        self.producer = producer
        self.writer = writer
        self.page_policy = page_policy
        self.robots_policy = robots_policy
        self.wall_clock = wall_clock
        self.counters = counters or CrawlCounters()
        crawl.state_dir.mkdir(parents=True, exist_ok=True)
        self.state = CrawlStateStore(crawl.state_dir / "urls")
        self._checkpoints_file = crawl.state_dir / "state-checkpoints.json"
        self.scheduler = HostScheduler(
            monotonic,
            sleep,
            min_delay_s=crawl.min_host_delay_s if crawl.polite else 0.0,
            global_concurrency=crawl.concurrency,
            rng=random.Random(),
        )
        self.robots = RobotsCache(self._fetch_robots, crawl.user_agent, monotonic, ttl_s=crawl.robots_ttl_s)
        self._unlimited_hosts = asyncio.Semaphore(crawl.concurrency)
        self.offsets = OffsetTracker()
        self.assigned: set[int] = set()
        self.all_partitions: list[int] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._consumer: AIOKafkaConsumer | None = None

    def request_slot(self, host: str, crawl_delay: float | None) -> AbstractAsyncContextManager[None]:
        """Polite: one request per host at a time, spaced. Impolite (benchmarks, own sites): only the
        global concurrency limit applies."""
        if self.settings.crawl.polite:
            return self.scheduler.slot(host, crawl_delay)
        return self._unlimited_hosts

    def owns_host(self, host: str) -> bool:
        """Whether URLs (and sources) of this host fall in a frontier partition this process holds."""
        return bool(self.all_partitions) and partition_of(host, self.all_partitions) in self.assigned

    async def run(self, stop: asyncio.Event, ready: asyncio.Event | None = None) -> None:
        """Consume and fetch until `stop` is set; commits only offsets whose pages are safely published."""
        topics = self.settings.topics
        consumer = AIOKafkaConsumer(
            **client_options(self.settings.kafka),
            group_id=self.settings.crawl.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_interval_ms=600_000,
        )
        self._consumer = consumer
        await consumer.start()
        consumer.subscribe([topics.frontier], listener=_Rebalance(self))
        last_commit = time.monotonic()
        try:
            while not stop.is_set():
                self._apply_backpressure(consumer)
                batches = await consumer.getmany(timeout_ms=200, max_records=500)
                for partition, records in batches.items():
                    for record in records:
                        self.offsets.start(partition, record.offset)
                        task = asyncio.create_task(self._handle(partition, record))
                        self._tasks.add(task)
                        task.add_done_callback(self._tasks.discard)
                if ready is not None and self.assigned:
                    ready.set()
                if time.monotonic() - last_commit >= COMMIT_INTERVAL_S:
                    await self.commit()
                    last_commit = time.monotonic()
        finally:
            await self._drain(set(consumer.assignment()), timeout_s=30.0)
            with contextlib.suppress(Exception):
                await self.commit()
            await consumer.stop()
            self.state.close()

    async def revisit(self, stop: asyncio.Event) -> None:
        """Put due URLs of this node's hosts back on the frontier, so pages are re-checked on their adaptive
        schedule even after they have left every feed."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.crawl.revisit_scan_s)
            if stop.is_set():
                return
            now = self.wall_clock()
            scheduled = 0
            for scanned, state in enumerate(self.state.due(now.timestamp()), start=1):
                host = host_of(state.url)
                if self.owns_host(host):
                    entry = frontier_url(state.url, "revisit", now.isoformat())
                    await send_to_frontier(self.producer, self.settings.topics.frontier, entry)
                    scheduled += 1
                if scanned % 1000 == 0:
                    await asyncio.sleep(0)  # a long scan must not starve the fetches
            if scheduled:
                self.counters.outcomes["revisit-scheduled"] += scheduled

    async def commit(self) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        assignment = consumer.assignment()
        points = {tp: offset for tp, offset in self.offsets.committable().items() if tp in assignment}
        if points:
            await consumer.commit(points)

    def in_flight(self) -> int:
        return self.offsets.in_flight()

    async def positions(self) -> dict[TopicPartition, int]:
        """The next offset to read on every assigned partition."""
        consumer = self._consumer
        if consumer is None:
            return {}
        return {tp: await consumer.position(tp) for tp in consumer.assignment()}

    def _apply_backpressure(self, consumer: AIOKafkaConsumer) -> None:
        assignment = consumer.assignment()
        if len(self._tasks) >= self.settings.crawl.max_pending:
            consumer.pause(*assignment)
        elif consumer.paused():
            consumer.resume(*assignment)

    async def _handle(self, partition: TopicPartition, record: ConsumerRecord) -> None:
        try:
            await self._crawl(partition, record)
        except Exception as error:  # one URL must never stop the crawler
            log.exception("crawling frontier record %s@%s failed", partition, record.offset)
            await self._dead_letter(record, "crash", repr(error))
        finally:
            self.offsets.finish(partition, record.offset)

    async def _crawl(self, partition: TopicPartition, record: ConsumerRecord) -> None:
        try:
            entry = decode_frontier(record.value)
        except InvalidRecordError as error:
            await self._dead_letter(record, error.reason, error.detail)
            return
        url, host, source = entry["url"], entry["host"], entry["source"]
        attempt = entry.get("attempt", 0)
        previous = self.state.get(url)
        now = self.wall_clock().timestamp()
        if previous is not None and attempt == 0 and not is_due(previous, now):
            self.counters.record(source, "not-due", url)
            return
        crawl_delay: float | None = None
        if self.settings.crawl.polite:
            if not await self.robots.allows(url):
                self.counters.record(source, "robots-denied", url)
                return
            crawl_delay = await self.robots.crawl_delay(url)
        if self.scheduler.is_paused(host):
            await self._retry_or_give_up(entry, source, "host-paused")
            return
        try:
            async with self.request_slot(host, crawl_delay):
                started = time.perf_counter()
                result = await fetch(self.session, url, self.page_policy, validators=_validators(previous))
                FETCH_SECONDS.observe(time.perf_counter() - started)
        except FetchError as error:
            if error.reason in TRANSIENT_REASONS:
                self.scheduler.record_failure(host)
                await self._retry_or_give_up(entry, source, error.reason)
            else:
                self.counters.record(source, f"failed:{error.reason}", url)
            return
        await self._settle(partition, entry, previous, result)

    async def _settle(
        self, partition: TopicPartition, entry: FrontierUrl, previous: UrlState | None, result: FetchResult
    ) -> None:
        source, host, url = entry["source"], entry["host"], entry["url"]
        if result.status == 429 or result.status >= 500:
            self.scheduler.record_failure(host, result.retry_after_s)
            await self._retry_or_give_up(entry, source, f"http-{result.status}")
            return
        self.scheduler.record_success(host)
        now = self.wall_clock().timestamp()
        if result.not_modified and previous is not None:
            await self._commit_fetch(
                partition.partition,
                None,
                self._after_fetch(
                    previous,
                    entry["url"],
                    now=now,
                    content_hash=previous.content_hash,
                    etag=result.etag,
                    last_modified=result.last_modified,
                    not_modified=True,
                ),
            )
            self.counters.record(source, "not-modified", url)
            return
        if result.status != 200:
            self.counters.record(source, f"failed:http-{result.status}", url)
            return
        content_hash = "sha256:" + hashlib.sha256(result.body).hexdigest()
        await self._commit_fetch(
            partition.partition,
            self._raw_page(entry, result, content_hash),
            self._after_fetch(
                previous,
                entry["url"],
                now=now,
                content_hash=content_hash,
                etag=result.etag,
                last_modified=result.last_modified,
                not_modified=False,
            ),
        )
        self.counters.fetched_bytes += len(result.body)
        self.counters.record(source, "fetched", url)

    def _after_fetch(self, previous: UrlState | None, url: str, **observed: Any) -> UrlState:
        crawl = self.settings.crawl
        return after_fetch(
            previous,
            url,
            **observed,
            min_interval_s=crawl.revisit_min_s,
            max_interval_s=crawl.revisit_max_s,
            initial_interval_s=crawl.revisit_initial_s,
        )

    def _raw_page(self, entry: FrontierUrl, result: FetchResult, content_hash: str) -> RawPage:
        return RawPage(
            url=entry["url"],
            final_url=result.final_url,
            status=result.status,
            headers=result.headers,
            fetched_at=self.wall_clock().isoformat(),
            source=entry["source"],
            content_hash=content_hash,
            html=result.text or "",
            trace_id=uuid.uuid4().hex,
        )

    async def _commit_fetch(self, partition: int, page: RawPage | None, state: UrlState) -> None:
        """Publish the page and its crawl state in one transaction; the state goes to the partition of the
        URL's host so it moves with the host when partitions are reassigned."""
        records = [
            OutgoingRecord(
                topic=self.settings.topics.crawl_state,
                key=state.url.encode(),
                value=orjson.dumps(state),
                partition=partition,
                headers=record_headers("crawl_state.v1", ""),
            )
        ]
        if page is not None:
            records.append(
                OutgoingRecord(
                    topic=self.settings.topics.raw_pages,
                    key=page["url"].encode(),
                    value=dumps(page),
                    headers=record_headers(RAW_PAGE_SCHEMA, page["trace_id"]),
                )
            )
        await self.writer.write(records)
        self.state.put(state)

    async def _retry_or_give_up(self, entry: FrontierUrl, source: str, reason: str) -> None:
        url = entry["url"]
        attempt = entry.get("attempt", 0) + 1
        if attempt >= self.settings.crawl.max_attempts:
            self.counters.record(source, f"failed:{reason}", url)
            return
        self.counters.record(source, f"retry:{reason}", url)
        retried = FrontierUrl(**entry)
        retried["attempt"] = attempt
        # Back on the frontier (same host, same partition): the host's backoff decides when it is tried.
        await (await send_to_frontier(self.producer, self.settings.topics.frontier, retried))

    async def _dead_letter(self, record: ConsumerRecord, reason: str, error: str) -> None:
        self.counters.record("frontier", f"dead-letter:{reason}")
        letter = dead_letter_of(record, stage="crawl", reason=reason, error=error, now=self.wall_clock())
        await self.producer.send_and_wait(
            self.settings.topics.dead_letter,
            key=record.key,
            value=dumps(letter),
            headers=record_headers("dead_letter.v1", ""),
        )

    async def _fetch_robots(self, robots_url: str) -> tuple[int, bytes]:
        try:
            result = await fetch(self.session, robots_url, self.robots_policy)
        except FetchError as error:
            # A robots.txt that is not text, or an origin the SSRF guard refuses, gives no rules: the
            # page fetch then records the real outcome (ssrf-blocked for a private address).
            if error.reason in ("not-html", "unsupported-type", "ssrf-blocked"):
                return 404, b""
            raise
        return result.status, result.body

    async def _drain(self, partitions: set[TopicPartition], timeout_s: float) -> None:
        """Let fetches of these partitions finish, so their offsets can be committed."""
        deadline = time.monotonic() + timeout_s
        while self.offsets.in_flight(partitions) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._drain(revoked, timeout_s=30.0)
        with contextlib.suppress(Exception):
            await self.commit()
        self.offsets.forget(revoked)
        self.assigned -= {tp.partition for tp in revoked}

    async def on_assigned(self, assigned: set[TopicPartition]) -> None:
        consumer = self._consumer
        if consumer is not None:
            frontier = self.settings.topics.frontier
            self.all_partitions = sorted(consumer.partitions_for_topic(frontier) or set())
        partitions = {tp.partition for tp in assigned}
        await self._restore_state(partitions)
        self.assigned |= partitions

    async def _restore_state(self, partitions: set[int]) -> None:
        """Catch the local store up with the state topic for newly assigned partitions (another process
        may have crawled those hosts before)."""
        if not partitions:
            return
        checkpoints = _load_checkpoints(self._checkpoints_file)
        topic = self.settings.topics.crawl_state
        consumer = AIOKafkaConsumer(**client_options(self.settings.kafka), enable_auto_commit=False)
        await consumer.start()
        try:
            wanted = [TopicPartition(topic, partition) for partition in sorted(partitions)]
            consumer.assign(wanted)
            ends = await consumer.end_offsets(wanted)
            for tp in wanted:
                start = checkpoints.get(str(tp.partition))
                if start is None:
                    await consumer.seek_to_beginning(tp)
                else:
                    consumer.seek(tp, start)
            remaining = {tp for tp in wanted if ends[tp] > checkpoints.get(str(tp.partition), 0)}
            while remaining:
                batches = await consumer.getmany(*remaining, timeout_ms=500)
                for tp, records in batches.items():
                    for record in records:
                        if record.value is not None:
                            self.state.put(UrlState(**orjson.loads(record.value)))
                    if records:
                        checkpoints[str(tp.partition)] = records[-1].offset + 1
                for tp in list(remaining):
                    if await consumer.position(tp) >= ends[tp]:
                        checkpoints[str(tp.partition)] = ends[tp]
                        remaining.discard(tp)
        finally:
            await consumer.stop()
        _save_checkpoints(self._checkpoints_file, checkpoints)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, node: CrawlNode) -> None:
        self.node = node

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.node.on_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.node.on_assigned(set(assigned))


def decode_frontier(value: bytes | None) -> FrontierUrl:
    """A frontier record, checked for the fields the crawler uses.

    The frontier is the crawler's own internal topic, so a structural check replaces the full JSON Schema
    validation that other teams' input gets: on every URL, the schema check cost more than the fetch.
    """
    entry = parse_record(value, MAX_FRONTIER_RECORD_BYTES)
    if not isinstance(entry, dict) or not all(
        isinstance(entry.get(field), str) and entry[field] for field in ("url", "host", "source")
    ):
        raise InvalidRecordError("schema", "frontier_url.v1 needs non-empty url, host and source strings")
    if not isinstance(entry.get("attempt", 0), int):
        raise InvalidRecordError("schema", "attempt must be an integer")
    frontier_url: FrontierUrl = entry  # type: ignore[assignment]
    return frontier_url


def _validators(previous: UrlState | None) -> Validators | None:
    if previous is None or not (previous.etag or previous.last_modified):
        return None
    return Validators(etag=previous.etag, last_modified=previous.last_modified)


def _load_checkpoints(path: Path) -> dict[str, int]:
    try:
        loaded: Any = orjson.loads(path.read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return {}
    return {str(key): int(value) for key, value in loaded.items()}


def _save_checkpoints(path: Path, checkpoints: dict[str, int]) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(orjson.dumps(checkpoints))
    temporary.replace(path)
