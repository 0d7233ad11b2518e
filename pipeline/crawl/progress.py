"""Track which frontier offsets are done, so a commit never passes a URL still being fetched."""

from __future__ import annotations

from aiokafka import TopicPartition


class OffsetTracker:
    """Per partition: offsets handed out and not yet finished; the commit point is the lowest of them."""

    def __init__(self) -> None:
        self._pending: dict[TopicPartition, set[int]] = {}
        self._next: dict[TopicPartition, int] = {}

    def start(self, partition: TopicPartition, offset: int) -> None:
        self._pending.setdefault(partition, set()).add(offset)
        self._next[partition] = max(self._next.get(partition, 0), offset + 1)

    def finish(self, partition: TopicPartition, offset: int) -> None:
        self._pending.get(partition, set()).discard(offset)

    def in_flight(self, partitions: set[TopicPartition] | None = None) -> int:
        return sum(
            len(offsets) for tp, offsets in self._pending.items() if partitions is None or tp in partitions
        )

    def committable(self) -> dict[TopicPartition, int]:
        """The offset to commit per partition: everything before it is done."""
        points = {}
        for partition, next_offset in self._next.items():
            pending = self._pending.get(partition)
            points[partition] = min(pending) if pending else next_offset
        return points

    def forget(self, partitions: set[TopicPartition]) -> None:
        for partition in partitions:
            self._pending.pop(partition, None)
            self._next.pop(partition, None)
