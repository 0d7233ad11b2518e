"""The worker's consumer: no commit over a record in flight (faust-streaming#606), no skipped batch."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from intervaltree import IntervalTree

from pipeline.stream import transport
from pipeline.stream.transport import AtLeastOnceConsumer, lowest_in_flight, transport_url

PARTITION = TP("newsfeed.raw-pages.v1", 3)
OTHER = TP("newsfeed.raw-pages.v1", 4)
ARTICLES = TP("newsfeed.articles.v1", 2)  # written without transactions
GENERATION = 3


@dataclass(eq=False)
class TakenRecord:
    tp: TP
    offset: int
    acked: bool = False
    generation_id: int | None = GENERATION


def consumer_with(
    committed: int | None, acked: list[int], in_flight: list[TakenRecord]
) -> AtLeastOnceConsumer:
    """The consumer's commit bookkeeping alone (no broker, no thread)."""
    consumer = AtLeastOnceConsumer.__new__(AtLeastOnceConsumer)
    consumer._acked = defaultdict(list, {PARTITION: list(acked)})
    consumer._acked_index = defaultdict(set, {PARTITION: set(acked)})
    consumer._gap = defaultdict(IntervalTree)
    consumer._committed_offset = defaultdict(lambda: None, {PARTITION: committed})
    consumer._unacked_messages = set(in_flight)
    consumer._proven_empty = defaultdict(list)
    consumer._empty_checks = {}
    consumer._reported = {}
    consumer._waiting_for_ack = None
    consumer.app = SimpleNamespace(
        consumer_generation_id=GENERATION, topics=SimpleNamespace(acks_enabled_for=lambda topic: True)
    )
    return consumer


def test_a_slow_record_at_the_head_is_not_committed_over() -> None:
    # Faust alone commits 2590 here: the record at 2585 is still being processed.
    consumer = consumer_with(2585, [2586, 2587, 2588, 2589], [TakenRecord(PARTITION, 2585)])
    assert consumer._filter_committable_offsets([PARTITION]) == {}
    assert sorted(consumer._acked[PARTITION]) == [2586, 2587, 2588, 2589]


def test_offsets_below_the_record_in_flight_are_committed_and_the_rest_kept() -> None:
    consumer = consumer_with(100, [100, 101, 103, 104], [TakenRecord(PARTITION, 102)])
    assert consumer._filter_committable_offsets([PARTITION]) == {PARTITION: 102}
    assert sorted(consumer._acked[PARTITION]) == [103, 104]


def test_without_anything_committed_yet_the_first_record_in_flight_still_holds_back() -> None:
    consumer = consumer_with(None, [1, 2], [TakenRecord(PARTITION, 0)])
    assert consumer._filter_committable_offsets([PARTITION]) == {}


def test_once_the_slow_record_is_acknowledged_the_whole_run_is_committed() -> None:
    slow = TakenRecord(PARTITION, 2585)
    consumer = consumer_with(2585, [2586, 2587], [slow])
    assert consumer._filter_committable_offsets([PARTITION]) == {}
    slow.acked = True
    consumer._acked[PARTITION].append(2585)
    assert consumer._filter_committable_offsets([PARTITION]) == {PARTITION: 2588}


def test_lowest_in_flight_per_partition_ignores_acknowledged_records() -> None:
    records = [
        TakenRecord(PARTITION, 9),
        TakenRecord(PARTITION, 7, acked=True),
        TakenRecord(PARTITION, 8),
        TakenRecord(OTHER, 3),
    ]
    assert lowest_in_flight(records, GENERATION) == {PARTITION: 8, OTHER: 3}


def test_a_record_taken_before_a_rebalance_holds_nothing_back() -> None:
    # The partition is read again from its committed offset after the rebalance: that record comes back.
    stale = TakenRecord(PARTITION, 90, generation_id=GENERATION - 1)
    consumer = consumer_with(90, [90, 91, 92], [stale])
    assert consumer._filter_committable_offsets([PARTITION]) == {PARTITION: 93}


def test_every_bootstrap_server_gets_the_transport_scheme() -> None:
    assert transport_url("127.0.0.1:9092, 127.0.0.1:9093") == (
        "newsfeed-kafka://127.0.0.1:9092;newsfeed-kafka://127.0.0.1:9093"
    )


@dataclass(frozen=True)
class FetchedRecord:
    offset: int


async def test_a_batch_of_a_partition_faust_holds_inactive_is_sought_back_not_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Faust skips such a batch after the fetcher has moved past it; its records would never be read."""
    paused, buffered, revoked = TP("t", 1), TP("t", 2), TP("t", 3)
    records = {
        PARTITION: [FetchedRecord(7), FetchedRecord(8)],
        paused: [FetchedRecord(40), FetchedRecord(41)],
        buffered: [FetchedRecord(5)],
        revoked: [FetchedRecord(9)],
    }
    active = {PARTITION}

    async def faust_fetch(self: AtLeastOnceConsumer, wait_s: float) -> tuple[object, object]:
        return dict(records), active

    sought: list[dict[TP, int]] = []

    async def seek_wait(partitions: dict[TP, int]) -> None:
        sought.append(dict(partitions))

    monkeypatch.setattr(faust_aiokafka.Consumer, "_wait_next_records", faust_fetch)
    consumer = consumer_with(None, [], [])
    consumer._buffered_partitions = {buffered}
    monkeypatch.setattr(consumer, "assignment", lambda: {PARTITION, paused, buffered})
    monkeypatch.setattr(consumer, "seek_wait", seek_wait)

    kept, still_active = await consumer._wait_next_records(1.0)

    assert kept == {PARTITION: records[PARTITION], buffered: records[buffered]}
    assert still_active == active
    active.discard(PARTITION)  # a recovery pauses it while Faust hands the batch out
    assert still_active == {PARTITION}
    assert sought == [{paused: 40}]  # the revoked partition is no longer this worker's to seek


async def _gaps_recorded(
    consumer: AtLeastOnceConsumer, tp: TP, log_start: int | None
) -> list[tuple[int, int]]:
    """The gaps Faust would commit over after offset 10 then 14; `log_start` None: the broker is away."""
    with_log_start(consumer, log_start)
    consumer._committed_offset[tp] = 10
    await consumer._add_gap(tp, 11, 14)  # the record at 14 was delivered
    await consumer.wait_for_checks()
    return sorted((interval.begin, interval.end) for interval in consumer._gap[tp])


class MarkersOnly:
    """A gap check that finds only commit markers, or (`found`) a record, or cannot reach the broker."""

    def __init__(self, found: bool | None = False) -> None:
        self.found = found

    async def holds_a_record(self, tp: TP, start: int, end: int) -> bool:
        if self.found is None:
            raise ConnectionError("broker away")
        return self.found


async def test_a_gap_of_commit_markers_on_a_topic_written_in_transactions_is_committed_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(transport, "TRANSACTIONAL_TOPICS", {PARTITION.topic: MarkersOnly()})
    assert await _gaps_recorded(consumer_with(10, [], []), PARTITION, log_start=0) == [(11, 14)]


async def test_a_gap_elsewhere_holds_the_commit_below_the_missing_records(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(transport, "TRANSACTIONAL_TOPICS", {PARTITION.topic: MarkersOnly()})
    consumer = consumer_with(10, [], [])
    assert await _gaps_recorded(consumer, ARTICLES, log_start=0) == []
    consumer._acked[ARTICLES] = [10, 14]
    assert consumer._filter_committable_offsets([ARTICLES]) == {ARTICLES: 11}
    assert consumer._acked[ARTICLES] == [14]


async def test_offsets_below_the_log_start_are_a_gap_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport, "TRANSACTIONAL_TOPICS", {PARTITION.topic: MarkersOnly()})
    assert await _gaps_recorded(consumer_with(10, [], []), ARTICLES, log_start=14) == [(11, 14)]
    assert await _gaps_recorded(consumer_with(10, [], []), ARTICLES, log_start=12) == [(11, 12)]


async def test_with_the_broker_away_a_gap_elsewhere_still_holds_the_commit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(transport, "TRANSACTIONAL_TOPICS", {PARTITION.topic: MarkersOnly()})
    assert await _gaps_recorded(consumer_with(10, [], []), ARTICLES, log_start=None) == []


@pytest.mark.parametrize("found", [True, None], ids=["a record in the gap", "broker away"])
async def test_a_gap_on_a_topic_written_in_transactions_holding_a_record_holds_the_commit(
    monkeypatch: pytest.MonkeyPatch, found: bool | None
) -> None:
    monkeypatch.setattr(transport, "TRANSACTIONAL_TOPICS", {PARTITION.topic: MarkersOnly(found)})
    assert await _gaps_recorded(consumer_with(10, [], []), PARTITION, log_start=0) == []


@dataclass(eq=False)
class StreamRecord:
    tp: TP
    offset: int
    tracked: bool
    acked: bool = False
    topic: str = PARTITION.topic


async def _committable_once_checked(consumer: AtLeastOnceConsumer, tp: TP) -> list[dict[TP, int]]:
    """What the consumer would commit now, and again once the checks that asked for have finished."""
    now = consumer._filter_committable_offsets([tp])
    await consumer.wait_for_checks()
    return [now, consumer._filter_committable_offsets([tp])]


def with_log_start(consumer: AtLeastOnceConsumer, log_start: int | None) -> AtLeastOnceConsumer:
    """The consumer, with its partitions' logs starting at `log_start` (None: the broker is away)."""

    async def earliest_offsets(*partitions: TP) -> dict[TP, int]:
        if log_start is None:
            raise ConnectionError("broker away")
        return dict.fromkeys(partitions, log_start)

    consumer.earliest_offsets = earliest_offsets  # type: ignore[method-assign]
    return consumer


async def test_a_record_its_stream_skipped_is_not_acknowledged_so_never_committed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Faust's stream acknowledges a record it skipped (an earlier generation's) without processing it, and
    Faust alone would then commit 102 over it: a single missing offset at the head passes as a marker."""
    monkeypatch.setattr(transport, "TRANSACTIONAL_TOPICS", {PARTITION.topic: MarkersOnly(found=True)})
    consumer = consumer_with(100, [], [])
    assert not consumer.ack(StreamRecord(PARTITION, 100, tracked=False))
    assert consumer.ack(StreamRecord(PARTITION, 101, tracked=True))
    assert consumer._acked[PARTITION] == [101]
    assert await _committable_once_checked(consumer, PARTITION) == [{}, {}]


async def test_a_commit_marker_at_the_head_is_committed_over_once_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # After a seek Faust reads on from the committed offset, and never records the offset there as a gap.
    monkeypatch.setattr(transport, "TRANSACTIONAL_TOPICS", {PARTITION.topic: MarkersOnly()})
    consumer = consumer_with(50, [51, 52], [])
    assert await _committable_once_checked(consumer, PARTITION) == [{}, {PARTITION: 53}]
    consumer._committed_offset[PARTITION] = 53
    consumer._acked[PARTITION] = [55]  # a marker at 53 found with the first check stays known
    consumer._proven_empty[PARTITION].append((53, 55))
    assert consumer._filter_committable_offsets([PARTITION]) == {PARTITION: 56}


async def test_a_missing_head_offset_elsewhere_holds_the_commit_unless_below_the_log_start() -> None:
    held = with_log_start(consumer_with(None, [], []), log_start=10)
    held._committed_offset[ARTICLES], held._acked[ARTICLES] = 10, [11, 12]
    assert await _committable_once_checked(held, ARTICLES) == [{}, {}]
    deleted = with_log_start(consumer_with(None, [], []), log_start=14)
    deleted._committed_offset[ARTICLES], deleted._acked[ARTICLES] = 10, [14, 15]
    # Faust alone holds this commit for good: more than one offset is missing at the head.
    assert await _committable_once_checked(deleted, ARTICLES) == [{}, {ARTICLES: 16}]


async def test_a_head_check_that_cannot_reach_the_broker_holds_the_commit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(transport, "TRANSACTIONAL_TOPICS", {PARTITION.topic: MarkersOnly(found=None)})
    consumer = consumer_with(50, [51, 52], [])
    assert await _committable_once_checked(consumer, PARTITION) == [{}, {}]


async def test_with_nothing_committed_a_missing_first_record_holds_the_commit() -> None:
    # A new group starts at the log's start; Faust alone commits from the lowest acknowledged offset.
    held = with_log_start(consumer_with(None, [], []), log_start=0)
    held._acked[ARTICLES] = [1, 2]
    assert await _committable_once_checked(held, ARTICLES) == [{}, {}]
    deleted = with_log_start(consumer_with(None, [], []), log_start=1)
    deleted._acked[ARTICLES] = [1, 2]
    assert await _committable_once_checked(deleted, ARTICLES) == [{}, {ARTICLES: 3}]


async def test_a_missing_record_checked_again_each_commit_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=transport.__name__)
    held = with_log_start(consumer_with(None, [], []), log_start=0)
    held._committed_offset[ARTICLES], held._acked[ARTICLES] = 10, [11, 12]
    for _ in range(3):
        assert await _committable_once_checked(held, ARTICLES) == [{}, {}]
    assert [record.getMessage() for record in caplog.records] == [
        f"{ARTICLES.topic}[2]: records from offset 10 below 11 were fetched but never delivered"
    ]
