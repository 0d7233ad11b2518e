"""Consumer lag per partition as metrics, and a watchdog for partitions whose consumer has stopped moving."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from pipeline.ops.kafka import client_options
from pipeline.ops.lag import committed_offsets, partitions_and_ends, records_between
from pipeline.ops.metrics import COMMITTED_OFFSET, CONSUMER_LAG, STALLED
from pipeline.settings import Settings

log = logging.getLogger(__name__)


# A partition this close to its end is counted record by record: offsets alone would count the
# transaction markers of transactional producers (the crawler) as lag that never drains.
EXACT_BELOW = 64


@dataclass(frozen=True, slots=True)
class PartitionLag:
    partition: TopicPartition
    committed: int | None
    end: int
    exact: int | None = None

    @property
    def lag(self) -> int:
        if self.exact is not None:
            return self.exact
        return max(0, self.end - (self.committed or 0))


@dataclass(slots=True)
class _Track:
    committed: int | None
    still_since: float
    lag: int
    stalled: bool = False


class StallDetector:
    """A partition stalls when it has lag, its lag is not shrinking, and its committed offset has not
    moved for `stall_after_s`; it recovers as soon as the offset moves or the lag is gone."""

    def __init__(self, stall_after_s: float) -> None:
        self.stall_after_s = stall_after_s
        self._tracks: dict[TopicPartition, _Track] = {}

    def observe(
        self, samples: Sequence[PartitionLag], now: float
    ) -> tuple[list[TopicPartition], list[TopicPartition]]:
        """Feed one round of samples; returns (partitions that just stalled, partitions that recovered)."""
        stalled, recovered = [], []
        for sample in samples:
            track = self._tracks.get(sample.partition)
            if track is None or track.committed != sample.committed or sample.lag == 0:
                was_stalled = track is not None and track.stalled
                self._tracks[sample.partition] = _Track(sample.committed, now, sample.lag)
                if was_stalled:
                    recovered.append(sample.partition)
                continue
            growing = sample.lag >= track.lag
            track.lag = sample.lag
            if not track.stalled and growing and now - track.still_since >= self.stall_after_s:
                track.stalled = True
                stalled.append(sample.partition)
        return stalled, recovered

    def is_stalled(self, partition: TopicPartition) -> bool:
        track = self._tracks.get(partition)
        return track is not None and track.stalled


async def sample_lag(settings: Settings, group: str, topics: Sequence[str]) -> list[PartitionLag]:
    """Committed offset and end offset of every partition of `topics` for `group`."""
    committed = await committed_offsets(settings, group)
    consumer = AIOKafkaConsumer(
        **client_options(settings.kafka), enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        partitions, ends = await partitions_and_ends(consumer, topics)
        positions = {tp: offset for tp, offset in committed.items() if tp in ends and offset >= 0}
        near_end = [tp for tp, offset in positions.items() if 0 < ends[tp] - offset <= EXACT_BELOW]
        exact = await records_between(consumer, near_end, positions, ends) if near_end else {}
    finally:
        await consumer.stop()
    return [PartitionLag(tp, positions.get(tp), ends[tp], exact.get(tp)) for tp in partitions]


class LagWatchdog:
    """Samples a group's lag every `settings.metrics.lag_interval_s`, exports it and reports stalls."""

    def __init__(
        self,
        settings: Settings,
        group: str,
        topics: Sequence[str],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.group = group
        self.topics = list(topics)
        self.monotonic = monotonic
        self.detector = StallDetector(settings.metrics.stall_after_s)
        self.latest: list[PartitionLag] = []

    async def check(self) -> list[PartitionLag]:
        try:
            samples = await sample_lag(self.settings, self.group, self.topics)
        except KafkaError as error:
            log.warning("could not sample the lag of group %s: %s", self.group, error)
            return self.latest
        stalled, recovered = self.detector.observe(samples, self.monotonic())
        for sample in samples:
            labels = (self.group, sample.partition.topic, str(sample.partition.partition))
            CONSUMER_LAG.labels(*labels).set(sample.lag)
            COMMITTED_OFFSET.labels(*labels).set(-1 if sample.committed is None else sample.committed)
            STALLED.labels(*labels).set(1 if self.detector.is_stalled(sample.partition) else 0)
        for tp in stalled:
            log.warning(
                "partition %s[%d] of group %s is stalled: lag %d and no committed progress for %.0f s",
                tp.topic, tp.partition, self.group, next(s.lag for s in samples if s.partition == tp),
                self.settings.metrics.stall_after_s,
            )  # fmt: skip
        for tp in recovered:
            log.info("partition %s[%d] of group %s is moving again", tp.topic, tp.partition, self.group)
        self.latest = samples
        return samples

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.check()
            try:
                await asyncio.wait_for(stop.wait(), self.settings.metrics.lag_interval_s)
            except TimeoutError:
                continue
