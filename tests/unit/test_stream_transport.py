"""The worker's consumer commits only below records still in flight (faust-streaming#606)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from types import SimpleNamespace

from faust.types import TP
from intervaltree import IntervalTree

from pipeline.stream.transport import AtLeastOnceConsumer, lowest_in_flight, transport_url

PARTITION = TP("newsfeed.raw-pages.v1", 3)
OTHER = TP("newsfeed.raw-pages.v1", 4)
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
    consumer.app = SimpleNamespace(consumer_generation_id=GENERATION)
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


def test_a_gap_with_no_record_in_flight_is_passed_as_faust_does() -> None:
    # A transaction marker at the head has no record: nothing is in flight there.
    consumer = consumer_with(50, [51, 52], [])
    assert consumer._filter_committable_offsets([PARTITION]) == {PARTITION: 53}


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
