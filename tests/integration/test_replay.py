"""`newsfeed replay` on the real broker: exact time ranges, live offsets untouched, identical reruns,
retention and empty ranges, and the live group's rewind."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import RecordsToDelete

from pipeline.cli import main
from pipeline.contracts import contracts_for
from pipeline.ops.isolated import start_worker, stop_process
from pipeline.ops.kafka import client_options
from pipeline.ops.lag import wait_until_drained
from pipeline.ops.topics import admin_client
from pipeline.records import RawPage, dumps, loads
from pipeline.replay.ranges import RetentionError
from pipeline.replay.rewind import RewindError, apply_rewind, plan_rewind
from pipeline.replay.run import ReplayOptions, run_replay, shadow_settings, shadow_topic
from pipeline.settings import Settings
from pipeline.sink.sqlite_store import SqliteStore
from tests.conftest import IsolatedPipeline
from tests.kafka_helpers import read_topic
from tests.pages import demo_raw_pages

pytestmark = pytest.mark.integration

DAY = timedelta(days=1)
# Within the raw topic's retention (7 days), or the broker would delete the test's records.
FIRST_DAY = (datetime.now(UTC) - 3 * DAY).replace(hour=0, minute=0, second=0, microsecond=0)


def _dated_pages() -> list[tuple[datetime, RawPage]]:
    """The demo's eight pages over three days: 3 on the first, 3 on the second, 2 on the third (noon UTC)."""
    pages = demo_raw_pages()
    days = [0, 0, 0, 1, 1, 1, 2, 2]
    return [
        (FIRST_DAY + days[n] * DAY + timedelta(hours=12, minutes=n), page) for n, page in enumerate(pages)
    ]


async def _produce_at(settings: Settings, topic: str, dated: list[tuple[datetime, RawPage]]) -> None:
    producer = AIOKafkaProducer(**client_options(settings.kafka), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for moment, page in dated:
            await producer.send_and_wait(
                topic, dumps(page), key=page["url"].encode(), timestamp_ms=int(moment.timestamp() * 1000)
            )
    finally:
        await producer.stop()


async def _committed(settings: Settings) -> dict[TopicPartition, int]:
    async with admin_client(settings) as admin:
        offsets = await admin.list_consumer_group_offsets(settings.worker.app_id)
    return {tp: meta.offset for tp, meta in offsets.items()}


def _replay(settings: Settings, start: datetime, end: datetime | None, into: str, **options: Any) -> Any:
    return asyncio.run(run_replay(settings, ReplayOptions(start, end, "raw", into, **options)))


def _shadow_records(settings: Settings, into: str, expected: int) -> list[dict[str, Any]]:
    records = asyncio.run(read_topic(settings, shadow_topic(settings, into), expected, timeout_s=30))
    return [loads(record.value) for record in records]


@pytest.fixture
def dated(isolated: IsolatedPipeline) -> list[tuple[datetime, RawPage]]:
    pages = _dated_pages()
    asyncio.run(_produce_at(isolated.settings, isolated.settings.topics.raw_pages, pages))
    return pages


@pytest.fixture
def live_worker(isolated: IsolatedPipeline, dated: list[tuple[datetime, RawPage]]) -> Iterator[None]:
    process = start_worker(isolated.overrides, isolated.state_dir / "worker.log")
    assert asyncio.run(wait_until_drained(isolated.settings, timeout_s=120)), "the live worker did not drain"
    yield
    assert stop_process(process) == 0, (isolated.state_dir / "worker.log").read_text()[-3000:]


def test_a_sub_range_replays_exactly_its_records_beside_the_live_pipeline(
    isolated: IsolatedPipeline, dated: list[tuple[datetime, RawPage]], live_worker: None
) -> None:
    settings = isolated.settings
    live_before = asyncio.run(_committed(settings))
    assert live_before, "the live group has committed offsets"

    report = _replay(settings, FIRST_DAY + DAY, FIRST_DAY + 2 * DAY, "day-two")

    assert asyncio.run(_committed(settings)) == live_before, "the live group's offsets are untouched"
    assert report.counts["records"] == 3
    wanted = {page["url"] for moment, page in dated if FIRST_DAY + DAY <= moment < FIRST_DAY + 2 * DAY}
    shadow = _shadow_records(settings, "day-two", report.counts["enriched"])
    assert report.counts["enriched"] == 3
    assert {record["url"] for record in shadow} == wanted
    contracts = contracts_for(settings.schemas_dir)
    for record in shadow:
        contracts.validate(record, "enriched_article.v1")
        assert set(record["versions"]) >= {"extractor", "tagger", "taxonomy", "dedup"}

    # The shadow store holds the replay; the live store is the live worker's alone.
    shadow_store = SqliteStore(shadow_settings(settings, "day-two").store.sqlite_path)
    try:
        assert {record["url"] for record in shadow_store.articles()} == {record["url"] for record in shadow}
    finally:
        shadow_store.close()
    live_store = SqliteStore(settings.store.sqlite_path)
    try:
        assert live_store.count() >= len(shadow)
    finally:
        live_store.close()


def _without_processing_time(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(
        ({k: v for k, v in record.items() if k != "processed_at"} for record in records),
        key=lambda r: r["id"],
    )


def test_two_replays_of_a_range_give_identical_records(
    isolated: IsolatedPipeline, dated: list[tuple[datetime, RawPage]]
) -> None:
    settings = isolated.settings
    first = _replay(settings, FIRST_DAY, None, "first")
    second = _replay(settings, FIRST_DAY, None, "second")
    assert first.counts == second.counts
    assert first.counts["records"] == len(dated)
    assert first.counts["duplicates"] >= 1, "the syndicated copy is found"
    one = _shadow_records(settings, "first", first.counts["enriched"])
    two = _shadow_records(settings, "second", second.counts["enriched"])
    assert len(one) == first.counts["enriched"]
    assert _without_processing_time(one) == _without_processing_time(two)
    seed = next(record for record in one if record["title"].startswith("Putin advocates"))
    assert [topic["id"] for topic in seed["topics"]] == ["us-russia"]


def test_main_store_flag_upserts_the_main_store(
    isolated: IsolatedPipeline, dated: list[tuple[datetime, RawPage]]
) -> None:
    settings = isolated.settings
    report = _replay(settings, FIRST_DAY, FIRST_DAY + DAY, "into-main", main_store=True)
    store = SqliteStore(settings.store.sqlite_path)
    try:
        assert store.count() == report.counts["enriched"] > 0
    finally:
        store.close()
    assert not shadow_settings(settings, "into-main").store.sqlite_path.exists()


def test_empty_range_and_retention(
    isolated: IsolatedPipeline, dated: list[tuple[datetime, RawPage]], capsys: pytest.CaptureFixture[str]
) -> None:
    settings = isolated.settings
    empty = _replay(settings, datetime(2030, 1, 1, tzinfo=UTC), None, "future")
    assert empty.counts["records"] == 0
    config = isolated.state_dir / "settings.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    import json  # noqa: PLC0415

    config.write_text(json.dumps(isolated.overrides))
    assert (
        main(["--config", str(config), "replay", "--from", "2030-01-01T00:00Z", "--into", "future-cli"]) == 0
    )
    assert "no records" in capsys.readouterr().err

    # Retention: the first day's records are deleted, as the broker's retention would.
    async def delete_first_day() -> None:
        async with admin_client(settings) as admin:
            from aiokafka import AIOKafkaConsumer  # noqa: PLC0415

            consumer = AIOKafkaConsumer(**client_options(settings.kafka))
            await consumer.start()
            try:
                from pipeline.ops.kafka import topic_partitions  # noqa: PLC0415

                tps = [
                    TopicPartition(settings.topics.raw_pages, p)
                    for p in await topic_partitions(consumer, settings.topics.raw_pages)
                ]
                found = await consumer.offsets_for_times(
                    dict.fromkeys(tps, int((FIRST_DAY + DAY).timestamp() * 1000))
                )
                ends = await consumer.end_offsets(tps)
            finally:
                await consumer.stop()
            cut = {tp: RecordsToDelete(found[tp].offset if found[tp] else ends[tp]) for tp in tps}
            await admin.delete_records({tp: spec for tp, spec in cut.items() if spec.before_offset > 0})

    asyncio.run(delete_first_day())
    with pytest.raises(RetentionError) as refused:
        _replay(settings, FIRST_DAY, None, "too-old")
    assert refused.value.earliest >= FIRST_DAY + DAY
    assert "earliest available time" in str(refused.value)
    assert main(["--config", str(config), "replay", "--from", FIRST_DAY.isoformat()]) == 2
    assert "retention" in capsys.readouterr().err
    later = _replay(settings, refused.value.earliest, None, "from-earliest")
    # The earliest complete time is the latest of the truncated partitions' oldest records.
    assert later.counts["records"] == sum(1 for moment, _ in dated if moment >= refused.value.earliest) >= 1


def test_rewind_live_dry_run_and_apply(
    isolated: IsolatedPipeline, dated: list[tuple[datetime, RawPage]], capsys: pytest.CaptureFixture[str]
) -> None:
    settings = isolated.settings
    import json  # noqa: PLC0415

    config = isolated.state_dir / "settings.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps(isolated.overrides))
    process = start_worker(isolated.overrides, isolated.state_dir / "worker.log")
    try:
        assert asyncio.run(wait_until_drained(settings, timeout_s=120))
        live = asyncio.run(_committed(settings))
        argv = ["--config", str(config), "replay", "--from", (FIRST_DAY + DAY).isoformat(), "--rewind-live"]
        assert main([*argv, "--dry-run"]) == 0
        out = capsys.readouterr().out
        moves = asyncio.run(plan_rewind(settings, settings.topics.raw_pages, FIRST_DAY + DAY))
        for move in moves:
            assert move.describe() in out
        # Each partition's target is its first record of the second day: the first day's 3 come before.
        assert sum(move.target for move in moves) == 3
        assert sum(live[move.partition] for move in moves) == len(dated)
        assert asyncio.run(_committed(settings)) == live, "a dry run changes nothing"
        with pytest.raises(RewindError, match="running member"):
            asyncio.run(apply_rewind(settings, moves))
    finally:
        assert stop_process(process) == 0
    assert main([*argv, "--yes"]) == 0
    rewound = asyncio.run(_committed(settings))
    assert {tp: rewound[tp] for tp in (move.partition for move in moves)} == {
        move.partition: move.target for move in moves
    }
