"""Near-duplicate clusters on the real broker: across partitions and workers, through restarts, on replay."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from pipeline.demo.content import ARTICLES, GAS_TRANSIT, INDIA_DEFENCE, IRAQ_STRIKES, SEED_ARTICLE, SITES
from pipeline.ops.isolated import start_worker, stop_process
from pipeline.ops.lag import wait_until_drained
from pipeline.records import RawPage, dumps, loads
from tests.conftest import IsolatedPipeline
from tests.kafka_helpers import produce, read_topic, wait_for_stable_group
from tests.pages import demo_raw_pages, variant_raw_page

pytestmark = pytest.mark.integration
ORIGINALS = [SEED_ARTICLE, IRAQ_STRIKES, INDIA_DEFENCE, GAS_TRANSIT]


def _copies() -> dict[str, str]:
    """URL of each syndicated variant -> title of the story it copies."""
    return {page["url"]: title for page, title in _variant_pages()}


def _variant_pages() -> list[tuple[RawPage, str]]:
    variants = []
    for number, article in enumerate(ORIGINALS):
        site = SITES[(number + 1) % len(SITES)]
        paragraphs = article.body_paragraphs
        edits = {
            "dropped": paragraphs[:-1],
            "updated": (
                *paragraphs,
                "UPDATE: Officials said later on Tuesday that talks would continue next week.",
            ),
            "credited": (*paragraphs, "(With inputs from agencies)"),
        }
        for kind, body in edits.items():
            page = variant_raw_page(
                article,
                site=site,
                slug=f"{article.slug}-{kind}",
                title=f"{article.title} ({kind})",
                published="2019-12-31T09:00:00+00:00",
                paragraphs=body,
            )
            variants.append((page, article.title))
    return variants


def _start(isolated: IsolatedPipeline, name: str, data_dir: Path) -> Any:
    overrides = {**isolated.overrides, "worker": {**isolated.overrides["worker"], "data_dir": str(data_dir)}}
    return start_worker(overrides, isolated.state_dir / f"worker-{name}.log")


def _publish(isolated: IsolatedPipeline, pages: list[RawPage]) -> None:
    settings = isolated.settings
    asyncio.run(produce(settings, settings.topics.raw_pages, [(p["url"].encode(), dumps(p)) for p in pages]))


def _current(isolated: IsolatedPipeline, at_least: int) -> tuple[dict[str, dict[str, Any]], int]:
    settings = isolated.settings
    records = asyncio.run(read_topic(settings, settings.topics.enriched, at_least, timeout_s=30))
    latest: dict[str, dict[str, Any]] = {}
    for record in records:
        latest[record.key.decode()] = loads(record.value)
    return latest, len(records)


def _assert_clusters(current: dict[str, dict[str, Any]]) -> None:
    by_title = {record["title"]: record for record in current.values()}
    by_url = {record["url"]: record for record in current.values()}
    for url, original_title in _copies().items():
        original, copy = by_title[original_title], by_url[url]
        assert original["dedup"]["duplicate_of"] is None, original_title
        assert copy["dedup"]["duplicate_of"] == original["id"], (copy["title"], copy["dedup"])
        assert copy["dedup"]["cluster_id"] == original["id"]
        same_body = copy["content_hash"] == original["content_hash"]
        assert copy["dedup"]["method"] == ("exact" if same_body else "near")


def test_two_workers_on_eight_partitions_find_copies_across_partitions(
    isolated_eight: IsolatedPipeline,
) -> None:
    isolated = isolated_eight
    workers = [_start(isolated, name, isolated.state_dir / f"faust-{name}") for name in ("a", "b")]
    try:
        # Both workers share the partitions before the stream starts (rebalancing mid-stream is the
        # fault suite's subject).
        settings = isolated.settings
        assert asyncio.run(wait_for_stable_group(settings, settings.worker.app_id, 2, timeout_s=120))
        _publish(isolated, demo_raw_pages() + [page for page, _ in _variant_pages()])
        assert asyncio.run(wait_until_drained(isolated.settings, timeout_s=180))
        current, _ = _current(isolated, len(ARTICLES) + len(_copies()))
    finally:
        for worker in workers:
            stop_process(worker)
    assert len(current) == len(ARTICLES) + len(_copies())
    _assert_clusters(current)


def test_a_restarted_worker_keeps_the_index_and_a_replay_adds_no_duplicates(
    isolated_eight: IsolatedPipeline,
) -> None:
    isolated = isolated_eight
    worker = _start(isolated, "first", isolated.state_dir / "faust-first")
    try:
        _publish(isolated, demo_raw_pages())
        assert asyncio.run(wait_until_drained(isolated.settings, timeout_s=180))
    finally:
        stop_process(worker)

    # A fresh state folder: the index must come back from its changelog topics.
    worker = _start(isolated, "second", isolated.state_dir / "faust-second")
    try:
        _publish(isolated, [page for page, _ in _variant_pages()])
        assert asyncio.run(wait_until_drained(isolated.settings, timeout_s=180))
        before_replay, records_before = _current(isolated, len(ARTICLES) + len(_copies()))
        _publish(isolated, demo_raw_pages() + [page for page, _ in _variant_pages()])
        assert asyncio.run(wait_until_drained(isolated.settings, timeout_s=180))
        after_replay, _ = _current(isolated, records_before + len(ARTICLES) + len(_copies()))
    finally:
        stop_process(worker)

    _assert_clusters(before_replay)
    _assert_clusters(after_replay)
    verdicts = {key: record["dedup"] for key, record in before_replay.items()}
    assert {key: record["dedup"] for key, record in after_replay.items()} == verdicts, "replay is idempotent"
