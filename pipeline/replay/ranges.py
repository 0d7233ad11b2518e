"""A time range on a topic as offsets per partition, looked up by timestamp, with retention checked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition

from pipeline.ops.kafka import topic_partitions


class ReplayRangeError(ValueError):
    """The range cannot be replayed from this topic; the message says why and what to do."""


class RetentionError(ReplayRangeError):
    """The range starts before the oldest record the topic still holds."""

    def __init__(self, topic: str, start: datetime, earliest: datetime) -> None:
        super().__init__(
            f"{topic} no longer holds records from {start.isoformat()}: older ones are gone (retention); "
            f"the earliest available time is {earliest.isoformat()}. Replay from there, or from an archive."
        )
        self.earliest = earliest


@dataclass(frozen=True, slots=True)
class PartitionSpan:
    """Offsets [start, end) of one partition that fall in the range."""

    partition: TopicPartition
    start: int
    end: int

    @property
    def size(self) -> int:
        return max(0, self.end - self.start)


@dataclass(frozen=True, slots=True)
class RangePlan:
    topic: str
    start: datetime
    end: datetime | None
    spans: list[PartitionSpan]

    @property
    def upper_bound(self) -> int:
        """Offsets in the range (transaction markers included, so an upper bound on records)."""
        return sum(span.size for span in self.spans)


def parse_time(text: str) -> datetime:
    """An ISO 8601 time ("2019-12-30T00:00Z", "2019-12-30"); naive times are UTC."""
    cleaned = text.strip()
    if cleaned.endswith(("Z", "z")):
        cleaned = cleaned[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError as error:
        raise ReplayRangeError(f"{text!r} is not an ISO 8601 time such as 2019-12-30T00:00Z") from error
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


async def resolve_range(
    consumer: AIOKafkaConsumer,
    topic: str,
    start: datetime,
    end: datetime | None,
    *,
    check_retention: bool = True,
) -> RangePlan:
    """Offsets per partition for [start, end) (end: the topic's end now), looked up by timestamp.

    Raises RetentionError when records older than the oldest one left were deleted and the range starts
    before it (unless `check_retention` is off: then the plan covers what the topic still holds), and
    ReplayRangeError when the topic does not exist or the range is inverted.
    """
    if end is not None and end <= start:
        raise ReplayRangeError(f"--to ({end.isoformat()}) must be later than --from ({start.isoformat()})")
    numbers = sorted(await topic_partitions(consumer, topic))
    if not numbers:
        raise ReplayRangeError(f"topic {topic} does not exist on this cluster")
    partitions = [TopicPartition(topic, number) for number in numbers]
    beginnings = await consumer.beginning_offsets(partitions)
    ends = await consumer.end_offsets(partitions)
    if check_retention:
        await _check_retention(consumer, topic, start, beginnings=beginnings, ends=ends)
    starts = await consumer.offsets_for_times(dict.fromkeys(partitions, _ms(start)))
    stops = await consumer.offsets_for_times(dict.fromkeys(partitions, _ms(end))) if end else {}
    spans = []
    for tp in partitions:
        found = starts.get(tp)
        first = found.offset if found is not None else ends[tp]
        stop = stops.get(tp) if end else None
        last = stop.offset if stop is not None else ends[tp]
        spans.append(PartitionSpan(tp, first, max(first, last)))
    return RangePlan(topic, start, end, spans)


async def _check_retention(
    consumer: AIOKafkaConsumer,
    topic: str,
    start: datetime,
    *,
    beginnings: dict[TopicPartition, int],
    ends: dict[TopicPartition, int],
) -> None:
    # Only partitions whose log start moved past 0 have lost records; an untouched partition that
    # simply begins later than the range is not a retention problem.
    truncated = [tp for tp in beginnings if beginnings[tp] > 0]
    if not truncated:
        return
    oldest = await earliest_times(
        consumer, {tp: beginnings[tp] for tp in truncated if ends[tp] > beginnings[tp]}
    )
    if oldest and start < max(oldest.values()):
        raise RetentionError(topic, start, max(oldest.values()))


async def earliest_times(
    consumer: AIOKafkaConsumer, first_offsets: dict[TopicPartition, int]
) -> dict[TopicPartition, datetime]:
    """The timestamp of the record at each given offset (the oldest one a partition still holds)."""
    if not first_offsets:
        return {}
    consumer.assign(list(first_offsets))
    for tp, offset in first_offsets.items():
        consumer.seek(tp, offset)
    found: dict[TopicPartition, datetime] = {}
    for _ in range(20):
        batches = await consumer.getmany(*[tp for tp in first_offsets if tp not in found], timeout_ms=500)
        for tp, records in batches.items():
            if records and tp not in found:
                found[tp] = datetime.fromtimestamp(records[0].timestamp / 1000, UTC)
        if len(found) == len(first_offsets):
            break
    return found
