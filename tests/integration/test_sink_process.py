"""`newsfeed sink` killed with SIGKILL mid-stream, twice, then restarted: SQLite and PostgreSQL hold each
article exactly once, in its newest version, and the JSONL files hold every message exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from pipeline.contracts import contracts_for
from pipeline.ops.isolated import start_command, stop_process
from pipeline.ops.kafka import client_options
from pipeline.records import dumps, loads
from pipeline.settings import Settings
from pipeline.sink.postgres_store import PostgresStore
from pipeline.sink.sqlite_store import SqliteStore
from tests.conftest import IsolatedPipeline
from tests.kafka_helpers import read_topic
from tests.unit.test_sink_sqlite import enriched

pytestmark = pytest.mark.integration

ARTICLES = 1500
UPDATES = 500
RETRACTIONS = 150


def _stream() -> list[tuple[bytes, bytes | None]]:
    """Articles, then newer fetches of some of them, then retractions of others (and of some updated)."""
    messages: list[tuple[bytes, bytes | None]] = []
    for index in range(ARTICLES):
        record = enriched(index, title=f"Story {index}")
        messages.append((record["id"].encode(), dumps(record)))
    for index in range(0, UPDATES * 3, 3):
        record = enriched(index, fetched_at="2026-02-01T00:00:00+00:00", title=f"Story {index}, updated")
        messages.append((record["id"].encode(), dumps(record)))
    for index in range(1, RETRACTIONS * 5, 5):
        messages.append((f"{index:032x}".encode(), None))
    return messages


async def _publish(settings: Settings, messages: list[tuple[bytes, bytes | None]]) -> None:
    producer = AIOKafkaProducer(**client_options(settings.kafka), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        sent = [await producer.send(settings.topics.enriched, value, key=key) for key, value in messages]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


def _stored_count(path: Path) -> int:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            return int(db.execute("SELECT count(*) FROM articles").fetchone()[0])
    except sqlite3.Error:
        return 0


def _kill_when(process: Any, path: Path, at_least: int, timeout_s: float = 60) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        count = _stored_count(path)
        if count >= at_least:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            return count
        time.sleep(0.02)
    raise AssertionError(f"the sink stored fewer than {at_least} articles in {timeout_s} s")


def test_sink_killed_mid_batch_keeps_every_article_exactly_once(
    isolated: IsolatedPipeline, postgres_dsn: str
) -> None:
    settings = isolated.settings
    overrides = {
        **isolated.overrides,
        "store": {
            **isolated.overrides["store"],
            "backends": ["sqlite", "postgres", "jsonl"],
            "postgres_dsn": postgres_dsn,
            "batch_size": 50,
            "batch_window_s": 0.2,
        },
    }
    messages = _stream()
    contracts = contracts_for(settings.schemas_dir)
    for _, value in messages[:3]:
        assert value is not None
        contracts.validate(loads(value), "enriched_article.v1")
    asyncio.run(_publish(settings, messages))
    sqlite_path = Path(overrides["store"]["sqlite_path"])
    log = isolated.state_dir / "sink.log"

    killed_at = []
    for at_least in (300, 1100):
        process = start_command(["sink"], overrides, log)
        killed_at.append(_kill_when(process, sqlite_path, at_least))
    last = start_command(["sink", "--until-idle", "4"], overrides, log)
    try:
        assert last.wait(timeout=120) == 0, log.read_text()[-3000:]
    finally:
        stop_process(last)
    assert killed_at[0] < ARTICLES, "the first kill came before the stream was stored"

    # What the topic says the store must hold: the last message per key.
    records = asyncio.run(read_topic(settings, settings.topics.enriched, len(messages), timeout_s=30))
    assert len(records) == len(messages)
    latest: dict[str, dict[str, Any] | None] = {}
    for record in records:
        latest[record.key.decode()] = loads(record.value) if record.value is not None else None
    expected = {key: value["fetched_at"] for key, value in latest.items() if value is not None}
    assert len(expected) == ARTICLES - RETRACTIONS

    for store in (SqliteStore(sqlite_path), PostgresStore(postgres_dsn)):
        try:
            stored = {record["id"]: record["fetched_at"] for record in store.articles()}
            assert store.count() == len(stored)
        finally:
            store.close()
        assert stored == expected, type(store).__name__

    jsonl_lines = [
        orjson.loads(line)
        for path in sorted((isolated.state_dir / "jsonl").glob("enriched-*.jsonl"))
        for line in path.read_bytes().splitlines()
    ]
    assert len(jsonl_lines) == len(messages), "every message once in the JSONL files"
    written = sorted((line["id"], line.get("fetched_at", "retracted")) for line in jsonl_lines)
    published = sorted(
        (record.key.decode(), loads(record.value)["fetched_at"] if record.value is not None else "retracted")
        for record in records
    )
    assert written == published
