"""Re-read a partition whose fetched records never reached a stream: Faust drops some without seeking back."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.stream.app import Wiring

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ConsumerProgress:
    """One input partition as this worker's consumer sees it."""

    resume_at: int  # where the group would resume: its committed offset, or the log's start if none
    position: int  # the fetcher's next offset
    # Records of the partition queued for a stream or in one. Acknowledged records are left out: their
    # commit comes within seconds unless a missing record below them holds it back.
    on_the_way: int

    @property
    def dropped(self) -> bool:
        """Records were fetched past the commit, yet none of them is on its way to being committed."""
        return self.position > self.resume_at and self.on_the_way == 0


class RewindDetector:
    """Reports a partition to re-read once it has looked `dropped`, unchanged, for `after_s`.

    Faust's consumer can discard a fetched batch (a partition it holds inactive for a moment, or right
    after a rebalance) and nothing seeks that partition back: its records are never processed, the
    committed offset stands below them (`AtLeastOnceConsumer` sees to that), and the partition
    stalls with lag. Waiting `after_s` keeps a record that is merely between the fetcher and a stream, or
    acknowledged and about to be committed, from counting.
    """

    def __init__(self, after_s: float) -> None:
        self.after_s = after_s
        self._seen: dict[Any, tuple[ConsumerProgress, float]] = {}

    def observe(self, progress: Mapping[Any, ConsumerProgress], now: float) -> dict[Any, int]:
        """Feed one round of samples; returns the partitions to re-read and the offset to seek each to."""
        rewind: dict[Any, int] = {}
        for tp, sample in progress.items():
            if not sample.dropped:
                self._seen.pop(tp, None)
                continue
            earlier = self._seen.get(tp)
            if earlier is None or earlier[0] != sample:
                self._seen[tp] = (sample, now)
            elif now - earlier[1] >= self.after_s:
                rewind[tp] = sample.resume_at
                del self._seen[tp]
        for tp in set(self._seen) - set(progress):
            del self._seen[tp]
        return rewind

    def reset(self) -> None:
        """Forget every partition (after a rebalance, positions and commits start over)."""
        self._seen.clear()


async def sample_progress(app: Any, topics: set[str]) -> dict[Any, ConsumerProgress]:
    """Each assigned partition of `topics`, from the Faust consumer's own bookkeeping."""
    consumer = app.consumer
    on_the_way: Counter[Any] = Counter()
    for message in list(consumer._unacked_messages):
        if not message.acked:
            on_the_way[message.tp] += 1
    queued = _queued_topics(app)
    progress: dict[Any, ConsumerProgress] = {}
    for tp in sorted(consumer.assignment()):
        if tp.topic not in topics:
            continue
        position = await consumer.position(tp)
        if position is None:
            continue
        committed = consumer._committed_offset.get(tp)
        if committed is None:
            if position == 0:
                continue
            committed = (await consumer.earliest_offsets(tp)).get(tp, 0)
        waiting = on_the_way[tp] + (1 if tp.topic in queued else 0)
        progress[tp] = ConsumerProgress(resume_at=committed, position=position, on_the_way=waiting)
    return progress


def _queued_topics(app: Any) -> set[str]:
    """Topics with records delivered to an agent's queue and not yet taken by its stream."""
    queued: set[str] = set()
    for agent in app.agents.values():
        queues = {id(queue): queue for queue in _agent_queues(agent)}
        if any(queue.qsize() for queue in queues.values()):
            queued.update(agent.channel.topics)
    return queued


def _agent_queues(agent: Any) -> list[Any]:
    queues = [agent.channel.queue]
    for actor in getattr(agent, "_actors", ()):
        stream = getattr(actor, "stream", None)
        channel = getattr(stream, "channel", None)
        if channel is not None:
            queues.append(channel.queue)
    return queues


def register_rewind(
    wiring: Wiring,
    topics: list[str],
    outcomes: Counter[str],
    monotonic: Callable[[], float] = time.monotonic,
) -> RewindDetector:
    """Check the worker's input partitions on a timer and seek any with dropped records back to its commit."""
    app, settings = wiring.app, wiring.settings
    detector = RewindDetector(settings.worker.rewind_after_s)
    watched = set(topics)
    generation = [app.consumer_generation_id]

    @app.timer(max(1.0, settings.worker.rewind_after_s / 4))  # type: ignore[untyped-decorator]
    async def rewind_dropped_partitions() -> None:
        if generation[0] != app.consumer_generation_id or app.rebalancing or not app.flow_control.is_active():
            generation[0] = app.consumer_generation_id
            detector.reset()
            return
        try:
            progress = await sample_progress(app, watched)
            for tp, offset in detector.observe(progress, monotonic()).items():
                outcomes["rewind"] += 1
                log.warning(
                    "%s[%d]: records from offset %d to %d were fetched but never reached a stream; "
                    "reading them again",
                    tp.topic, tp.partition, offset, progress[tp].position,
                )  # fmt: skip
                await app.consumer.seek_wait({tp: offset})
        except Exception as error:  # an exception in a Faust timer crashes the worker; this check can wait
            detector.reset()
            log.warning("partition rewind check skipped: %r", error)

    return detector
