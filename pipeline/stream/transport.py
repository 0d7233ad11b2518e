"""Faust's Kafka transport: read committed records only, and never commit past a record in flight."""

from __future__ import annotations

import logging
import time
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

    async def holds_a_record(self, tp: TP, start: int, end: int) -> bool:
        """Whether a committed record sits at an offset in [start, end); True when that stays unknown."""
        if self._reader is None:
            self._reader = AIOKafkaConsumer(
                **self._options,
                enable_auto_commit=False,
                isolation_level="read_committed",
                max_partition_fetch_bytes=64 * 1024,
                fetch_max_wait_ms=100,
            )
            await self._reader.start()
        partition = TopicPartition(tp.topic, tp.partition)
        self._reader.assign([partition])
        self._reader.seek(partition, start)
        deadline = time.monotonic() + GAP_CHECK_S
        while time.monotonic() < deadline:
            batches = await self._reader.getmany(partition, timeout_ms=200)
            if any(record.offset < end for record in batches.get(partition, [])):
                return True
            if await self._reader.position(partition) >= end:
                return False
        return True

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
    """Faust's aiokafka consumer, but an offset is committed only below every record still in flight.

    With several actors on one agent, records of a partition are acknowledged out of order. Faust commits
    the run of acknowledged offsets after the last commit, and lets a single missing offset at its head
    pass as a gap of a compacted or transactional topic (faust-streaming#606): a slow record is then
    committed over while it is processed, and lost if the worker dies before it is done. Here the offsets
    at and above the lowest record in flight are held back until that record is acknowledged.
    """

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
        """Faust records the offsets it never delivered as a gap, and commits over it. Those offsets hold no
        record below the log's start (retention deleted them), or on a topic written in transactions where
        a read finds none (commit markers); otherwise the gap is left out, the commit stays below the
        missing records, and `pipeline.stream.rewind` reads them again."""
        check = TRANSACTIONAL_TOPICS.get(tp.topic)
        if check is not None:
            try:
                dropped = await check.holds_a_record(tp, offset_from, offset_to)
            except Exception as error:  # the broker away: hold the commit, the rewind timer reads again
                log.info("%s[%d]: gap not checked (%r)", tp.topic, tp.partition, error)
                dropped = True
            if not dropped:
                await super()._add_gap(tp, offset_from, offset_to)
                return
        try:
            log_start = (await self.earliest_offsets(tp)).get(tp, 0)
        except Exception as error:  # the broker away: hold the commit, the rewind timer asks again later
            log.info("%s[%d]: log start unknown (%r)", tp.topic, tp.partition, error)
            log_start = 0
        if log_start >= offset_to:
            await super()._add_gap(tp, offset_from, offset_to)
            return
        if log_start > offset_from:
            await super()._add_gap(tp, offset_from, log_start - 1)
        log.info(
            "%s[%d]: records from offset %d below %d were fetched but never delivered",
            tp.topic, tp.partition, max(offset_from, log_start), offset_to,
        )  # fmt: skip

    async def on_stop(self) -> None:
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
        """Faust's next commit offset for `tp`, computed over the acknowledged offsets below `floor`."""
        if floor is None:
            return self._new_offset(tp)
        acked: list[int] = self._acked[tp]
        held = [offset for offset in acked if offset > floor]
        acked[:] = [offset for offset in acked if offset < floor]
        try:
            offset = self._new_offset(tp) if acked else None
        finally:
            acked.extend(held)
        return offset


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
