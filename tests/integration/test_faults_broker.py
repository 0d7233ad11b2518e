"""The broker stopped and started again mid-crawl: crawler and worker carry on, and no page is lost."""

from __future__ import annotations

import asyncio
import copy
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench.common import LocalSite
from pipeline.ops.broker import LocalBroker
from pipeline.ops.isolated import (
    isolated_overrides,
    start_command,
    start_worker,
    stop_process,
    with_overrides,
)
from pipeline.ops.topics import create_topics
from pipeline.settings import BrokerSettings, Settings
from pipeline.sink.sqlite_store import SqliteStore
from tests.fault_helpers import (
    article_ids,
    caught_up,
    free_ports_below_ephemeral,
    group_is_stable,
    tally,
    wait_for,
)
from tests.fixtures_secure_broker import _share_jars

pytestmark = pytest.mark.integration

PAGES = 80
STOP_AFTER_PUBLISHED = 15
# Longer than the 15 s transaction timeout: the open transaction is lost with the broker, and retried.
DOWN_FOR_S = 30.0


@pytest.fixture(scope="module")
def restartable_broker(
    base_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """Settings of a broker of this module's own: stopping it disturbs no other test, nor anybody else's
    run against the shared broker on 127.0.0.1:9092."""
    state_dir = tmp_path_factory.mktemp("restartable-broker") / "kafka"
    _share_jars(LocalBroker(base_settings.broker).libs_dir, state_dir / "libs")
    port, controller_port = free_ports_below_ephemeral(2)
    broker_settings = BrokerSettings(
        state_dir=state_dir, port=port, controller_port=controller_port, heap="512m", start_timeout_s=120.0
    )
    broker = LocalBroker(broker_settings)
    try:
        broker.start()
        yield with_overrides(
            base_settings,
            {"broker": broker_settings.model_dump(), "kafka": {"bootstrap_servers": broker.bootstrap}},
        )
    finally:
        broker.stop()


def _overrides(settings: Settings, state_dir: Path, sitemap_url: str) -> dict[str, Any]:
    overrides = isolated_overrides(f"t-broker-restart-{uuid.uuid4().hex[:8]}", state_dir, partitions=4)
    overrides["kafka"] = {"bootstrap_servers": settings.kafka.bootstrap_servers}
    overrides["worker"]["extraction_processes"] = 1
    sources_file = state_dir / "sources.yaml"
    sources_file.parent.mkdir(parents=True, exist_ok=True)
    sources_file.write_text(
        yaml.safe_dump(
            {"sources": [{"id": "site", "kind": "sitemap", "url": sitemap_url, "poll_interval": "1h"}]}
        )
    )
    overrides["crawl"] |= {
        "sources_file": str(sources_file),
        "node_id": "node-a",
        "allowed_private_hosts": ["127.0.0.1"],
        # Slow enough that the broker goes down with most of the site still to fetch.
        "min_host_delay_s": 0.25,
    }
    return overrides


def _stored(path: Path) -> int:
    if not path.exists():
        return 0
    store = SqliteStore(path, read_only=True)
    try:
        return store.count()
    except sqlite3.Error:  # the worker creates the schema with its first batch
        return 0
    finally:
        store.close()


def _published(settings: Settings) -> int:
    return len(tally(settings, settings.topics.raw_pages).keys)


def _log_count(path: Path, text: str) -> int:
    return path.read_text(errors="replace").count(text) if path.exists() else 0


def _logs(state_dir: Path) -> str:
    return "\n".join(
        f"--- {path.name}\n{path.read_text()[-3000:]}" for path in sorted(state_dir.glob("*.log"))
    )


def test_a_broker_restart_mid_crawl_loses_no_page(restartable_broker: Settings, tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    broker = LocalBroker(restartable_broker.broker)
    with LocalSite(PAGES, seed=5) as site:
        overrides = _overrides(restartable_broker, state_dir, site.sitemap_url)
        settings = with_overrides(restartable_broker, overrides)
        asyncio.run(create_topics(settings))
        expected = article_ids(site.page_urls)
        store_path = settings.store.sqlite_path

        worker = start_worker(overrides, state_dir / "worker.log")
        crawler = None
        try:
            assert group_is_stable(settings, settings.worker.app_id, 1, 120), _logs(state_dir)
            crawler = start_command(["crawl"], copy.deepcopy(overrides), state_dir / "crawler.log")
            assert wait_for(lambda: _published(settings) >= STOP_AFTER_PUBLISHED, 90), _logs(state_dir)

            published_at_stop, stored_at_stop = _published(settings), _stored(store_path)
            assert broker.stop()
            stopped_at = time.monotonic()
            time.sleep(DOWN_FOR_S)
            broker.start()
            back_after = time.monotonic() - stopped_at

            complete = wait_for(lambda: _stored(store_path) >= PAGES, timeout_s=150, interval_s=1)
            complete_after = time.monotonic() - stopped_at
            topics = settings.topics
            worker_topics = [topics.raw_pages, topics.articles, topics.dedup_bands, topics.dedup_join]
            idle = wait_for(lambda: caught_up(settings, settings.worker.app_id, worker_topics), 60)
            crawler_alive, worker_alive = crawler.poll() is None, worker.poll() is None
        finally:
            # Whatever happened, the broker is left running for the rest of the module.
            broker.start()
            for process in (crawler, worker):
                if process is not None:
                    stop_process(process)

    raw = tally(settings, settings.topics.raw_pages)
    enriched = tally(settings, settings.topics.enriched)
    dead_letters = tally(settings, settings.topics.dead_letter)
    store = SqliteStore(store_path, read_only=True)
    try:
        stored = {record["id"] for record in store.articles()}
    finally:
        store.close()
    report = (
        f"{PAGES} pages: {published_at_stop} published and {stored_at_stop} stored at the stop; broker back "
        f"{back_after:.1f} s after the stop; all stored {complete_after:.1f} s after the stop; raw-pages "
        f"{raw.records} records ({raw.duplicates} duplicates), enriched {enriched.records} records "
        f"({enriched.duplicates} duplicates), store {len(stored)}, dead letters {dead_letters.records}; "
        f"crawler transactions retried {_log_count(state_dir / 'crawler.log', 'retrying in')} times"
    )
    details = f"{report}\n{_logs(state_dir)}"
    assert crawler_alive, details
    assert worker_alive, details
    assert complete, details
    assert idle, details
    assert published_at_stop < PAGES, "the broker should go down in the middle of the crawl"
    assert len(raw.keys) == PAGES
    assert enriched.keys == expected, f"missing: {sorted(expected - enriched.keys)[:5]}"
    assert stored == expected
    print(f"\nbroker restart: {report}")
