"""Near-duplicate clusters on the real broker: across partitions and workers, through restarts, on replay."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from pipeline.dedup.index import band_records, partition_of
from pipeline.demo.content import (
    ARTICLES,
    FLU_SEASON,
    GAS_TRANSIT,
    INDIA_DEFENCE,
    IRAQ_STRIKES,
    SEED_ARTICLE,
    SITES,
    SMART_SPEAKERS,
    SYNDICATED_COPY,
)
from pipeline.ops.isolated import start_worker, stop_process
from pipeline.ops.kafka import client_options, topic_partitions
from pipeline.ops.lag import wait_until_drained
from pipeline.records import Article, RawPage, dumps, loads
from pipeline.settings import Settings
from tests.conftest import IsolatedPipeline
from tests.kafka_helpers import produce, read_topic, wait_for_stable_group
from tests.pages import article_raw_page, demo_raw_pages, variant_raw_page

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


async def _changelog(settings: Settings, table: str) -> dict[tuple[int, str], bytes | None]:
    """The last value of every key of a table's changelog, by (partition, key)."""
    topic = f"{settings.worker.app_id}-{table}-changelog"
    consumer = AIOKafkaConsumer(**client_options(settings.kafka), enable_auto_commit=False, group_id=None)
    await consumer.start()
    latest: dict[tuple[int, str], bytes | None] = {}
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(await topic_partitions(consumer, topic))]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                for record in batch:
                    latest[(record.partition, loads(record.key))] = record.value
    finally:
        await consumer.stop()
    return latest


def _text(buckets: dict[tuple[int, str], bytes | None], partitions: int, key: str) -> str:
    """A bucket's last value in its changelog, as text ("" when deleted)."""
    return (buckets.get((partition_of(key.encode(), partitions), key)) or b"").decode()


def test_a_sweep_drops_buckets_and_signatures_older_than_the_window(isolated: IsolatedPipeline) -> None:
    """Stories of the 27th are out of a one-day window once a story of the 31st is indexed: the sweep the
    timer starts removes them from every bucket and their signatures from every partition (tombstones in
    the changelogs), carried out by the band-index agent a slice per band message."""
    settings = isolated.settings
    overrides = {
        **isolated.overrides,
        "dedup": {"window_days": 1, "bucket_sweep_interval_s": 1, "bucket_sweep_batch": 20},
    }
    worker = start_worker(overrides, isolated.state_dir / "worker.log")
    old, trigger = [SMART_SPEAKERS, FLU_SEASON], GAS_TRANSIT
    later = [SEED_ARTICLE, SYNDICATED_COPY, IRAQ_STRIKES, INDIA_DEFENCE]
    try:
        for stories in (old, [trigger]):
            _publish(isolated, [article_raw_page(story) for story in stories])
            assert asyncio.run(wait_until_drained(settings, timeout_s=120))
        time.sleep(3)  # the timer starts a sweep of every partition; band messages carry it out
        _publish(isolated, [article_raw_page(story) for story in later])
        assert asyncio.run(wait_until_drained(settings, timeout_s=120))
        current, _ = _current(isolated, len(old) + 1 + len(later))
        buckets = asyncio.run(_changelog(settings, "dedup-band-buckets"))
        signatures = asyncio.run(_changelog(settings, "dedup-signatures"))
    finally:
        assert stop_process(worker) == 0
    by_title = {record["title"]: record for record in current.values()}
    partitions = settings.topics.partitions
    for story in [*old, trigger, *later]:
        record: Article = by_title[story.title]
        _, bands = band_records(record)
        on = {partition_of(key.encode(), partitions) for key, _ in bands}
        in_buckets = [key for key, _ in bands if record["id"] in _text(buckets, partitions, key)]
        kept_signatures = [p for p in on if signatures[(p, record["id"])] is not None]
        if story in old:
            assert (in_buckets, kept_signatures) == ([], []), story.title
        else:
            assert (len(in_buckets), sorted(kept_signatures)) == (len(bands), sorted(on)), story.title


def test_settled_articles_are_forgotten_after_their_correction_window(isolated: IsolatedPipeline) -> None:
    """An article stays settled (correctable by a late canonical copy) for `settle_window_s`; then the sweep
    the timer starts, carried out by the join agent a slice per message on the message's partition, deletes
    it (a tombstone in the changelog), and the worker keeps going."""
    settings = isolated.settings
    overrides = {**isolated.overrides, "dedup": {"settle_window_s": 1, "sweep_interval_s": 1}}
    worker = start_worker(overrides, isolated.state_dir / "worker.log")
    early = [article_raw_page(story) for story in (SMART_SPEAKERS, FLU_SEASON)]
    later = [article_raw_page(story) for story in (SEED_ARTICLE, IRAQ_STRIKES, INDIA_DEFENCE, GAS_TRANSIT)]
    later += [page for page, _ in _variant_pages()]
    try:
        _publish(isolated, early)
        assert asyncio.run(wait_until_drained(settings, timeout_s=120))
        time.sleep(3)  # past the window, and the timer has started a sweep of every partition
        _publish(isolated, later)
        assert asyncio.run(wait_until_drained(settings, timeout_s=120))
        current, _ = _current(isolated, len(early) + len(later))
        settled = asyncio.run(_changelog(settings, "dedup-settled"))
    finally:
        assert stop_process(worker) == 0
    partitions = settings.topics.partitions
    early_urls = {page["url"] for page in early}
    early_ids = [record["id"] for record in current.values() if record["url"] in early_urls]
    later_ids = [record["id"] for record in current.values() if record["url"] not in early_urls]
    # Only partitions that received join messages after the window were swept.
    swept = {partition_of(article_id.encode(), partitions) for article_id in later_ids}
    checked = [
        article_id for article_id in early_ids if partition_of(article_id.encode(), partitions) in swept
    ]
    assert checked, "a later article shares a join partition with an early one"
    last_value = {key: value for (_, key), value in settled.items()}
    assert [last_value[article_id] for article_id in checked] == [None] * len(checked)
    assert any(last_value[article_id] is not None for article_id in later_ids)
