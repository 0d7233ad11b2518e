"""Faust's Kafka transport: read committed records only, and never commit past a record not processed."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

TRANSPORT_SCHEME = "newsfeed-kafka"

log = logging.getLogger(__name__)
GAP_CHECK_S = 5.0


class GapCheck:
    """Reads the offsets of a gap on a topic written in transactions. Faust takes them for commit markers or
    aborted records, which they are unless Faust dropped a fetched batch there."""

    def __init__(self, client_options: dict[str, Any]) -> None:
        self._options = client_options
        self._reader: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()  # one reader: one check at a time

    async def holds_a_record(self, tp: TP, start: int, end: int) -> bool:
        """Whether a committed record sits at an offset in [start, end); True when that stays unknown."""
        async with self._lock:
            reader = await self._started_reader()
            partition = TopicPartition(tp.topic, tp.partition)
            reader.assign([partition])
            reader.seek(partition, start)
            deadline = time.monotonic() + GAP_CHECK_S
            while time.monotonic() < deadline:
                batches = await reader.getmany(partition, timeout_ms=200)
                if any(record.offset < end for record in batches.get(partition, [])):
                    return True
                if await reader.position(partition) >= end:
                    return False
            return True

    async def _started_reader(self) -> AIOKafkaConsumer:
        if self._reader is None:
            self._reader = AIOKafkaConsumer(
                **self._options,
                enable_auto_commit=False,
                isolation_level="read_committed",
                # below the log's start the reader moves to it, and still finds the records above it
                auto_offset_reset="earliest",
                max_partition_fetch_bytes=64 * 1024,
                fetch_max_wait_ms=100,
            )
            await self._reader.start()
        return self._reader

    async def close(self) -> None:
        if self._reader is not None:
            await self._reader.stop()
            self._reader = None


# Topics written in transactions (the crawler's raw pages), each with its check: offsets a consumer never
# sees there are mostly commit markers. Anywhere else an offset Faust skipped is a record it dropped.
TRANSACTIONAL_TOPICS: dict[str, GapCheck] = {}


def lowest_in_flight(unacked: Iterable[Any], generation: int | None) -> dict[TP, int]:
    """Per partition, the lowest offset of a record a stream has taken and not yet acknowledged, in this
    consumer-group generation: after a rebalance every partition is read again from its committed offset,
    so a record taken before it is read (and acknowledged) again and must not hold commits back."""
    floors: dict[TP, int] = {}
    for message in list(unacked):
        if message.acked or message.generation_id not in (None, generation):
            continue
        tp, offset = message.tp, message.offset
        if tp not in floors or offset < floors[tp]:
            floors[tp] = offset
    return floors


class AtLeastOnceConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer, but an offset is committed only past records processed or proven absent.

    Faust's own bookkeeping commits over records in three ways, each losing them if the worker stops
    before they are read again:
    - With several actors on one agent, records of a partition are acknowledged out of order, and Faust
      commits the run of acknowledged offsets after the last commit: a slow record is committed over while
      it is processed. Here offsets at and above the lowest record in flight are held back until it is done.
    - Offsets Faust never delivered (a "gap") and a single missing offset at the head of the acknowledged
      ones are committed over as commit markers or compacted records (faust-streaming#606). Here they are
      read first, beside the fetch loop, and committed over only once found empty; until then the commit
      stays below them and `pipeline.stream.rewind` reads a stalled partition again.
    - A stream acknowledges a record it skipped (fetched in an earlier consumer-group generation, or while
      flow control held the streams) as if processed. Here only a record a stream took is acknowledged.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Per partition, [start, end) offset ranges read and found to hold no record (markers, retention).
        self._proven_empty: defaultdict[TP, list[tuple[int, int]]] = defaultdict(list)
        self._empty_checks: dict[tuple[TP, int, int], asyncio.Task[None]] = {}
        self._reported: dict[TP, int] = {}  # per partition, the last missing record logged

    def ack(self, message: Any) -> bool:
        if not message.tracked:  # no stream took it: the rebalance's seek or the rewind timer reads it again
            return False
        return bool(super().ack(message))

    async def _wait_next_records(self, timeout: float) -> tuple[Any, Any]:  # noqa: ASYNC109  (Faust's signature)
        """Faust's fetch, minus the batches of partitions Faust holds inactive at this moment, and with the
        set of active partitions as it was when they were fetched.

        Faust skips those batches without seeking back, though the fetcher has moved past them: their
        records would never reach a stream, and a later record of the partition would make Faust commit
        over them as a gap. Here each such partition is sought back to its batch's first record instead.
        """
        records, active = await super()._wait_next_records(timeout)
        if not records or active is None:
            return records, active
        assigned = self.assignment()
        kept: dict[TP, Any] = {}
        rewind: dict[TP, int] = {}
        for tp, batch in records.items():
            if not batch or tp in active or tp in self._buffered_partitions:
                kept[tp] = batch
            elif tp in assigned:
                rewind[tp] = batch[0].offset
        if rewind:
            log.info("fetched while inactive, read again later: %s", rewind)
            await self.seek_wait(rewind)
        # Faust checks each record against the live set while it hands the batch out record by record,
        # and a rebalance's recovery pauses partitions in between: a snapshot keeps those records too.
        return kept, set(active)

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        """Faust's fetch loop found offsets [offset_from, offset_to) never delivered; it would commit over
        them. Here they become Faust's gap only once a check finds them empty."""
        self._check_soon(tp, offset_from, offset_to)

    def _check_soon(self, tp: TP, start: int, end: int) -> None:
        key = (tp, start, end)
        if key not in self._empty_checks:
            task = asyncio.get_running_loop().create_task(self._check_empty(tp, start, end))
            self._empty_checks[key] = task
            task.add_done_callback(lambda _: self._empty_checks.pop(key, None))

    async def wait_for_checks(self) -> None:
        """Wait for the checks of offsets never delivered that are under way."""
        await asyncio.gather(*self._empty_checks.values(), return_exceptions=True)

    async def _check_empty(self, tp: TP, start: int, end: int) -> None:
        try:
            first_record = await self._first_record(tp, start, end)
        except Exception as error:  # the broker away: the commit stays below, the next commit asks again
            log.info("%s[%d]: offsets %d-%d not checked (%r)", tp.topic, tp.partition, start, end - 1, error)
            return
        if first_record > start:
            self._proven_empty[tp].append((start, first_record))
            await super()._add_gap(tp, start, first_record - 1)
        if first_record < end and self._reported.get(tp) != first_record:  # checked again each commit
            self._reported[tp] = first_record
            log.info(
                "%s[%d]: records from offset %d below %d were fetched but never delivered",
                tp.topic, tp.partition, first_record, end,
            )  # fmt: skip

    async def _first_record(self, tp: TP, start: int, end: int) -> int:
        """The lowest offset in [start, end) that may hold a record; `end` when none does. Below the log's
        start there is none (retention deleted them), and on a topic written in transactions a read tells
        records from commit markers."""
        check = TRANSACTIONAL_TOPICS.get(tp.topic)
        if check is not None:
            return start if await check.holds_a_record(tp, start, end) else end
        log_start = (await self.earliest_offsets(tp)).get(tp, 0)
        return max(start, min(log_start, end))

    def _first_unproven(self, tp: TP, start: int, end: int) -> int | None:
        """The lowest offset in [start, end) not proven empty, or None; ranges below `start` (the committed
        offset) are forgotten on the way."""
        ranges = self._proven_empty[tp]
        ranges[:] = [(low, high) for low, high in ranges if high > start]
        for low, high in sorted(ranges):
            if low > start:
                break
            start = max(start, high)
        return start if start < end else None

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        for tp in revoked:
            self._proven_empty.pop(tp, None)
            self._reported.pop(tp, None)
        await super().on_partitions_revoked(revoked)

    async def on_stop(self) -> None:
        for task in list(self._empty_checks.values()):
            task.cancel()
        await super().on_stop()
        for check in TRANSACTIONAL_TOPICS.values():
            await check.close()

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return ReadCommittedConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def _filter_committable_offsets(self, tps: Iterable[TP]) -> dict[TP, int]:
        floors = lowest_in_flight(self._unacked_messages, self.app.consumer_generation_id)
        committable: dict[TP, int] = {}
        for tp in tps:
            offset = self._new_offset_below(tp, floors.get(tp))
            if offset is not None and self._should_commit(tp, offset):
                committable[tp] = offset
        return committable

    def _new_offset_below(self, tp: TP, floor: int | None) -> int | None:
        """Faust's next commit offset for `tp`, computed over the acknowledged offsets below `floor`, and
        only when the offsets between the last commit and the lowest acknowledged one are proven empty."""
        acked: list[int] = self._acked[tp]
        held: list[int] = []
        if floor is not None:
            held = [offset for offset in acked if offset > floor]
            acked[:] = [offset for offset in acked if offset < floor]
        try:
            if not acked:
                return None
            committed = self._committed_offset[tp]
            head = min(acked)
            # With nothing committed the group started at the log's start: below it no record is left.
            unproven = self._first_unproven(tp, committed or 0, head)
            if unproven is not None:
                self._check_soon(tp, unproven, head)
                return None
            # Faust lets one missing offset at the head pass unread, and holds on more: these were read.
            self._committed_offset[tp] = None
            try:
                return self._new_offset(tp)
            finally:
                self._committed_offset[tp] = committed
        finally:
            acked.extend(held)


class ReadCommittedConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread, reading only committed records: the crawler writes raw pages in
    transactions, and a page of an aborted transaction is written again by the retry that follows."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka hands the isolation level to its fetcher in start(); Faust sets it only for exactly_once.
        consumer._isolation_level = "read_committed"
        return consumer


class AtLeastOnceTransport(faust_aiokafka.Transport):
    """The aiokafka transport with `AtLeastOnceConsumer`."""

    Consumer = AtLeastOnceConsumer


def register_transport() -> None:
    """Make `newsfeed-kafka://` broker URLs use `AtLeastOnceTransport`."""
    TRANSPORTS.aliases.setdefault(TRANSPORT_SCHEME, f"{__name__}:AtLeastOnceTransport")


def transport_url(bootstrap_servers: str) -> str:
    """Faust's broker URL for the bootstrap servers, on `AtLeastOnceTransport`."""
    register_transport()
    return ";".join(f"{TRANSPORT_SCHEME}://{server.strip()}" for server in bootstrap_servers.split(","))
