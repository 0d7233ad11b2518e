"""One of two workers killed with SIGKILL mid-stream: every article reaches the topic and the store once."""

from __future__ import annotations

import asyncio
import copy
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from orjson import loads

from pipeline.ops.isolated import start_command, start_worker, stop_process
from pipeline.settings import Settings
from pipeline.sink.postgres_store import PostgresStore
from tests.conftest import IsolatedPipeline
from tests.fault_helpers import (
    PacedProducer,
    article_ids,
    caught_up,
    generated_raw_pages,
    group_is_stable,
    kill_process_group,
    read_to_end,
    tally,
    wait_for,
)

pytestmark = pytest.mark.integration
# The worker runs at least once, and this holds the stores to exactly once. Faust's exactly_once crashes
# these agents on Kafka 4.1 (README, Faults: re-keyed records go to another partition's transaction).

PAGES = 300
PAGES_PER_SECOND = 30
KILL_AFTER_STORED = 90
# Faust reads its own settings from these environment variables. A SIGKILLed member leaves the group
# only when its session times out (Faust's default: 60 s); 10 s keeps the test short, and recovery on
# the defaults takes some 50 s longer.
FAUST_ENVIRONMENT = {"BROKER_SESSION_TIMEOUT": "10", "BROKER_HEARTBEAT_INTERVAL": "1"}


@pytest.fixture
def pipeline_of_eight(isolated_eight: IsolatedPipeline) -> IsolatedPipeline:
    """Eight partitions (the fixture removes Faust's own topics of the run's app afterwards as well)."""
    return isolated_eight


def _overrides(isolated: IsolatedPipeline, postgres_dsn: str) -> dict[str, Any]:
    """Two workers and a separate `newsfeed sink` writing PostgreSQL, as docker-compose deploys them: with
    one sink group every article has one writer, wherever its partition moves among the workers."""
    overrides = copy.deepcopy(isolated.overrides)
    overrides["worker"]["extraction_processes"] = 1  # two workers, two cores
    overrides["store"] |= {
        "sink_in_worker": False,
        "backends": ["postgres"],
        "postgres_dsn": postgres_dsn,
        "batch_size": 50,
        "batch_window_s": 0.2,
    }
    return overrides


def _start_worker(overrides: dict[str, Any], state_dir: Path, name: str) -> subprocess.Popen[bytes]:
    own = copy.deepcopy(overrides)
    own["worker"]["data_dir"] = str(state_dir / f"faust-{name}")
    return start_worker(own, state_dir / f"worker-{name}.log")


def _stored(postgres_dsn: str) -> int:
    store = PostgresStore(postgres_dsn, read_only=True)
    try:
        return store.count()
    finally:
        store.close()


def _raw_page_offsets(settings: Settings, article_ids_wanted: set[str]) -> list[tuple[int, int]]:
    """Where the raw pages of these articles sit on the raw-pages topic."""
    records = asyncio.run(read_to_end(settings, settings.topics.raw_pages))
    return sorted(
        (record.partition, record.offset)
        for record in records
        if record.value is not None and article_ids([loads(record.value)["url"]]) & article_ids_wanted
    )


def _logs(state_dir: Path) -> str:
    return "\n".join(
        f"--- {path.name}\n{path.read_text()[-2000:]}" for path in sorted(state_dir.glob("*.log"))
    )


def test_a_worker_killed_mid_stream_loses_and_duplicates_no_article(
    pipeline_of_eight: IsolatedPipeline, postgres_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    isolated = pipeline_of_eight
    settings, state_dir = isolated.settings, isolated.state_dir
    for name, value in FAUST_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    overrides = _overrides(isolated, postgres_dsn)
    pages = generated_raw_pages(PAGES, seed=11)
    expected = article_ids([page["url"] for page in pages])
    assert len(expected) == PAGES

    sink = start_command(["sink"], overrides, state_dir / "sink.log")
    workers = {name: _start_worker(overrides, state_dir, name) for name in ("a", "b")}
    try:
        assert group_is_stable(settings, settings.worker.app_id, 2, timeout_s=120), _logs(state_dir)
        producer = PacedProducer(settings, settings.topics.raw_pages, pages, PAGES_PER_SECOND)
        producer.start()
        assert wait_for(lambda: _stored(postgres_dsn) >= KILL_AFTER_STORED, timeout_s=120), _logs(state_dir)
        kill_process_group(workers["a"])
        killed_at = time.monotonic()
        stored_at_kill, sent_at_kill = _stored(postgres_dsn), producer.sent
        assert stored_at_kill < PAGES, "the kill should land in the middle of the stream"

        alone = group_is_stable(settings, settings.worker.app_id, 1, timeout_s=120)
        rebalanced_after = time.monotonic() - killed_at
        assert alone, _logs(state_dir)
        producer.join(timeout_s=60)
        complete = wait_for(lambda: _stored(postgres_dsn) >= PAGES, timeout_s=120)
        complete_after = time.monotonic() - killed_at
        topics = settings.topics
        worker_topics = [topics.raw_pages, topics.articles, topics.dedup_bands, topics.dedup_join]
        worker_idle = wait_for(lambda: caught_up(settings, settings.worker.app_id, worker_topics), 60)
        sink_idle = wait_for(lambda: caught_up(settings, settings.store.sink_group_id, [topics.enriched]), 60)
        assert workers["b"].poll() is None, _logs(state_dir)
        assert sink.poll() is None, _logs(state_dir)
    finally:
        for process in [sink, *workers.values()]:
            stop_process(process)

    articles = tally(settings, settings.topics.articles)
    enriched = tally(settings, settings.topics.enriched)
    store = PostgresStore(postgres_dsn, read_only=True)
    try:
        stored = {record["id"]: record for record in store.articles()}
        stored_rows = store.count()
    finally:
        store.close()
    extracted = {record["id"] for record in articles.latest.values()}
    stages = (
        f"extracted {len(extracted)}, enriched {len(enriched.keys)}, stored {len(stored)} of {PAGES}; "
        f"not enriched: {sorted(expected - enriched.keys)[:3]} (extracted: "
        f"{len((expected - enriched.keys) & extracted)}); raw pages not extracted at (partition, offset) "
        f"{_raw_page_offsets(settings, expected - extracted)}; dead letters "
        f"{tally(settings, settings.topics.dead_letter).records}; worker group idle {worker_idle}, sink idle "
        f"{sink_idle}\n{_logs(state_dir)}"
    )
    assert complete, stages
    assert extracted == expected, stages
    assert enriched.keys == expected, stages
    # A redelivered article is processed again, never judged a copy of its own first delivery.
    assert all(record["dedup"]["duplicate_of"] is None for record in enriched.latest.values())
    assert stored_rows == len(stored) == PAGES
    assert stored.keys() == expected
    assert {key: record["title"] for key, record in stored.items()} == {
        key: record["title"] for key, record in enriched.latest.items()
    }
    print(
        f"\nworker kill -9: {PAGES} pages, {sent_at_kill} sent and {stored_at_kill} stored at the kill; "
        f"rebalanced to one worker {rebalanced_after:.1f} s and all stored {complete_after:.1f} s after it; "
        f"store {len(stored)} articles; articles topic {articles.records} records "
        f"({articles.duplicates} redelivered); enriched topic {enriched.records} records "
        f"({enriched.duplicates} duplicates, {enriched.keys_repeated} articles more than once)"
    )
