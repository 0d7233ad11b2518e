"""PostgreSQL stopped for 30 s under a running `newsfeed sink`: records wait, then land; nothing lost."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from pipeline.ops.isolated import start_command, stop_process
from pipeline.ops.kafka import client_options
from pipeline.ops.postgres import LocalPostgres
from pipeline.records import dumps, loads
from pipeline.settings import Settings
from pipeline.sink.postgres_store import PostgresStore
from tests.conftest import IsolatedPipeline
from tests.kafka_helpers import read_topic
from tests.unit.test_sink_sqlite import enriched

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

BEFORE = 300  # stored before the outage, so the sink is known to be writing
DURING = 2500  # new articles published while the server is down
UPDATES = 200  # newer fetches of articles stored before the outage
RETRACTIONS = 100  # tombstones of articles stored before the outage
OUTAGE_S = 30.0
PADDING_BYTES = 20_000  # makes the outage's backlog about 50 MB, so buffering it all would show in RSS
RSS_BOUND_MB = 200.0
WORDS = [
    "river",
    "council",
    "budget",
    "vote",
    "storm",
    "harbour",
    "school",
    "rail",
    "court",
    "market",
    "energy",
    "health",
]


def _article(index: int, rng: random.Random, **changes: Any) -> tuple[bytes, bytes]:
    record: dict[str, Any] = {**enriched(index, **changes)}
    # Words drawn at random: zstd cannot shrink the backlog to nothing on its way through Kafka.
    record["padding"] = " ".join(rng.choices(WORDS, k=PADDING_BYTES // 6))
    return record["id"].encode(), dumps(record)


async def _publish(settings: Settings, messages: list[tuple[bytes, bytes | None]]) -> None:
    producer = AIOKafkaProducer(
        **client_options(settings.kafka), acks="all", enable_idempotence=True, compression_type="zstd"
    )
    await producer.start()
    try:
        sent = [await producer.send(settings.topics.enriched, value, key=key) for key, value in messages]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


def _vm_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def _stored(dsn: str) -> dict[str, str]:
    """id -> fetched_at of every stored article, or {} while the server is unreachable."""
    try:
        store = PostgresStore(dsn)
    except Exception:  # the server is down or starting: nothing can be read yet
        return {}
    try:
        return {record["id"]: record["fetched_at"] for record in store.articles()}
    finally:
        store.close()


def _wait_until_stored(dsn: str, expected: dict[str, str], timeout_s: float) -> dict[str, str]:
    deadline = time.monotonic() + timeout_s
    stored: dict[str, str] = {}
    while time.monotonic() < deadline:
        stored = _stored(dsn)
        if stored == expected:
            break
        time.sleep(0.5)
    return stored


def test_postgres_down_for_30_s_the_sink_waits_and_then_stores_everything(
    isolated: IsolatedPipeline, postgres_server: LocalPostgres, postgres_dsn: str
) -> None:
    settings = isolated.settings
    overrides = {
        **isolated.overrides,
        "store": {
            **isolated.overrides["store"],
            "backends": ["postgres"],
            "postgres_dsn": postgres_dsn,
            "batch_size": 50,
            "batch_window_s": 0.2,
        },
    }
    rng = random.Random(11)
    first = [_article(index, rng) for index in range(BEFORE)]
    asyncio.run(_publish(settings, list(first)))
    log = isolated.state_dir / "sink.log"
    sink = start_command(["sink"], overrides, log)
    try:
        before = {key.decode(): loads(value)["fetched_at"] for key, value in first}
        assert _wait_until_stored(postgres_dsn, before, timeout_s=120) == before, log.read_text()[-3000:]
        rss_before_kib = _vm_kib(sink.pid, "VmRSS")

        during: list[tuple[bytes, bytes | None]] = [
            _article(index, rng) for index in range(BEFORE, BEFORE + DURING)
        ]
        during += [_article(index, rng, fetched_at="2026-02-01T00:00:00+00:00") for index in range(UPDATES)]
        during += [(f"{index:032x}".encode(), None) for index in range(UPDATES, UPDATES + RETRACTIONS)]
        samples_kib: list[int] = []
        went_down = time.monotonic()
        postgres_server.stop()
        try:
            asyncio.run(_publish(settings, during))
            published_s = time.monotonic() - went_down
            down_samples = 0
            while time.monotonic() - went_down < OUTAGE_S:
                assert sink.poll() is None, f"the sink exited during the outage:\n{log.read_text()[-3000:]}"
                samples_kib.append(_vm_kib(sink.pid, "VmRSS"))
                # Other test sessions share the server and start it when they need it: count what was down.
                down_samples += not postgres_server.status().running
                time.sleep(0.5)
        finally:
            postgres_server.start()  # the server is shared by the whole test session
        outage_s = time.monotonic() - went_down
        back = time.monotonic()

        # What the store must hold: the last message per key on the enriched topic.
        records = asyncio.run(
            read_topic(settings, settings.topics.enriched, len(first) + len(during), timeout_s=60)
        )
        assert len(records) == len(first) + len(during)
        latest: dict[str, str | None] = {}
        for record in records:
            latest[record.key.decode()] = loads(record.value)["fetched_at"] if record.value else None
        expected = {key: fetched for key, fetched in latest.items() if fetched is not None}
        assert len(expected) == BEFORE + DURING - RETRACTIONS

        stored = _wait_until_stored(postgres_dsn, expected, timeout_s=240)
        landed_s = time.monotonic() - back
        assert sink.poll() is None, f"the sink exited after the outage:\n{log.read_text()[-3000:]}"
        assert stored == expected, (
            f"{len(set(expected) - set(stored))} missing, {len(set(stored) - set(expected))} extra, "
            f"{sum(1 for key in expected if key in stored and stored[key] != expected[key])} stale"
        )
        rss_peak_kib = _vm_kib(sink.pid, "VmHWM")
    finally:
        exit_code = stop_process(sink)
    assert exit_code == 0, log.read_text()[-3000:]

    text = log.read_text()
    retries = text.count("retrying in")
    assert retries >= 1, "the outage was not noticed (no retry logged)"
    assert "succeeded after" in text
    rss_max_mb = max(samples_kib) / 1024
    print(
        f"\nsink outage: PostgreSQL stopped for a {outage_s:.1f} s window, seen down in {down_samples} of "
        f"{len(samples_kib)} samples 0.5 s apart ({len(during)} records published in "
        f"{published_s:.1f} s, {len(during) * PADDING_BYTES / 1e6:.0f} MB); sink RSS before "
        f"{rss_before_kib / 1024:.1f} MB, during outage min {min(samples_kib) / 1024:.1f} / max "
        f"{rss_max_mb:.1f} MB over {len(samples_kib)} samples, peak (VmHWM) {rss_peak_kib / 1024:.1f} MB; "
        f"{retries} retries logged; {DURING} new, {UPDATES} updated, {RETRACTIONS} retracted landed "
        f"{landed_s:.1f} s after the server was back; store holds {len(stored)} = topic's latest per key"
    )
    assert rss_max_mb < rss_before_kib / 1024 + RSS_BOUND_MB
