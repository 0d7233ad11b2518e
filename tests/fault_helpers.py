"""What the fault tests share: generated article pages, paced producing, waiting, and tallies of topics."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from bench.common import generate_pages
from pipeline.crawl.urls import canonical_url
from pipeline.extract.extractor import article_id
from pipeline.ops.kafka import client_options, topic_partitions
from pipeline.ops.lag import group_lag
from pipeline.records import RawPage, dumps, loads
from pipeline.settings import Settings
from tests.kafka_helpers import wait_for_stable_group
from tests.pages import raw_page

# Generated pages of this size all hold an article body long enough to be extracted.
PAGE_BYTES = (8_000, 12_000)


def generated_raw_pages(count: int, seed: int) -> list[RawPage]:
    """`count` distinct article pages fetched now: old fetch times would fall to the 7-day retention."""
    fetched_at = datetime.now(UTC).isoformat()
    return [
        raw_page(f"http://faults.example.test{page.path}", page.html.decode(), fetched_at=fetched_at)
        for page in generate_pages(count, seed, *PAGE_BYTES)
    ]


def article_ids(urls: Sequence[str]) -> set[str]:
    """The ids the pipeline gives the articles of these page URLs."""
    return {article_id(canonical_url(url)) for url in urls}


class PacedProducer:
    """Sends raw pages to a topic from its own thread, a few at a time, so faults land mid-stream."""

    def __init__(self, settings: Settings, topic: str, pages: Sequence[RawPage], per_second: float) -> None:
        self._settings = settings
        self._topic = topic
        self._pages = list(pages)
        self._per_second = per_second
        self.sent = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="paced-producer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            raise AssertionError(f"the producer sent only {self.sent} of {len(self._pages)} pages")
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        try:
            asyncio.run(self._produce())
        except BaseException as error:  # handed to the test thread by join()
            self.error = error

    async def _produce(self) -> None:
        producer = AIOKafkaProducer(
            **client_options(self._settings.kafka),
            acks="all",
            enable_idempotence=True,
            compression_type="zstd",
            max_request_size=12 * 1024 * 1024,
        )
        await producer.start()
        try:
            chunk = 5
            for start in range(0, len(self._pages), chunk):
                sent = [
                    await producer.send(self._topic, dumps(page), key=page["url"].encode())
                    for page in self._pages[start : start + chunk]
                ]
                await asyncio.gather(*sent)
                self.sent += len(sent)
                await asyncio.sleep(chunk / self._per_second)
        finally:
            await producer.stop()


@dataclass(frozen=True)
class TopicTally:
    """How often each key occurs in a topic (read_committed): a key seen twice was delivered again."""

    records: int
    per_key: Counter[str]
    latest: dict[str, dict[str, Any]]

    @property
    def keys(self) -> set[str]:
        return set(self.per_key)

    @property
    def duplicates(self) -> int:
        """Records beyond the first of their key."""
        return self.records - len(self.per_key)

    @property
    def keys_repeated(self) -> int:
        return sum(1 for count in self.per_key.values() if count > 1)


def tally(settings: Settings, topic: str) -> TopicTally:
    """Every committed record of a topic, up to its end offsets (a count would stop short of the keys
    when some are duplicated)."""
    records = asyncio.run(read_to_end(settings, topic))
    per_key: Counter[str] = Counter((record.key or b"").decode() for record in records)
    latest = {
        (record.key or b"").decode(): loads(record.value) for record in records if record.value is not None
    }
    return TopicTally(len(records), per_key, latest)


async def read_to_end(settings: Settings, topic: str, timeout_s: float = 60) -> list[ConsumerRecord]:
    consumer = AIOKafkaConsumer(
        **client_options(settings.kafka),
        isolation_level="read_committed",
        enable_auto_commit=False,
        group_id=None,
        max_partition_fetch_bytes=12 * 1024 * 1024,
    )
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(await topic_partitions(consumer, topic))]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)  # read_committed: the last stable offsets
        deadline = time.monotonic() + timeout_s
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic} not read to its end in {timeout_s} s")
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(
                    record
                    for record in batch
                    if record.offset < ends[TopicPartition(topic, record.partition)]
                )
    finally:
        await consumer.stop()
    return records


def wait_for(condition: Callable[[], bool], timeout_s: float, interval_s: float = 0.25) -> bool:
    """Poll `condition` until it holds (True) or the time is up (False)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval_s)
    return condition()


def caught_up(settings: Settings, group_id: str, topics: list[str]) -> bool:
    """True when the group has committed every record of these topics."""
    try:
        lag = asyncio.run(group_lag(settings, group_id, topics))
    except KafkaError:
        return False  # a broker that is starting has no group coordinator yet
    return bool(lag) and not any(lag.values())


def group_is_stable(settings: Settings, group_id: str, members: int, timeout_s: float) -> bool:
    """Wait until the group is stable with `members` members, also on a broker that has no group
    coordinator yet (a new or restarting one)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            return asyncio.run(
                wait_for_stable_group(settings, group_id, members, max(0.0, deadline - time.monotonic()))
            )
        except KafkaError as error:
            if not error.retriable:
                raise
            time.sleep(0.5)
    return False


def kill_process_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL a process started in its own session, and its children (extraction pool) with it, the way
    a crashed container goes."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def free_ports_below_ephemeral(count: int, low: int = 20_000, high: int = 32_000) -> list[int]:
    """Ports a server can bind now, below Linux's ephemeral range (32768-60999): while a restarted broker
    is down, no client's outgoing connection can take its port."""
    ports: list[int] = []
    with contextlib.ExitStack() as stack:
        for port in range(low + os.getpid() % 5_000, high):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            ports.append(port)
            if len(ports) == count:
                return ports
    raise RuntimeError(f"no {count} free ports between {low} and {high}")
