"""Write a raw page together with its crawl state in one Kafka transaction: both become visible or neither."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer

from pipeline.ops.kafka import client_options
from pipeline.raw.publisher import MAX_REQUEST_BYTES, PRODUCER_BATCH_BYTES
from pipeline.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutgoingRecord:
    """One record of a transaction."""

    topic: str
    value: bytes
    key: bytes | None = None
    partition: int | None = None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


def transactional_producer(settings: Settings, transactional_id: str) -> AIOKafkaProducer:
    """A producer whose restarts fence their predecessor (same transactional id), so a crashed process's
    open transaction is aborted at once instead of stalling readers until it times out."""
    return AIOKafkaProducer(
        **client_options(settings.kafka),
        transactional_id=transactional_id,
        enable_idempotence=True,
        acks="all",
        compression_type="zstd",
        max_request_size=MAX_REQUEST_BYTES,
        # aiokafka's default 16 KiB batch is smaller than one page, so each round trip to the broker
        # would carry one page per partition; 1 MiB batches carry dozens.
        max_batch_size=PRODUCER_BATCH_BYTES,
        transaction_timeout_ms=15_000,
        linger_ms=5,
    )


class AtomicWriter:
    """Groups concurrent writes into short transactions; `write` returns once its transaction committed."""

    def __init__(self, producer: AIOKafkaProducer, *, max_batch: int = 200, max_wait_s: float = 0.02) -> None:
        self._producer = producer
        self._max_batch = max_batch
        self._max_wait_s = max_wait_s
        self._queue: asyncio.Queue[tuple[list[OutgoingRecord], asyncio.Future[None]]] = asyncio.Queue()
        self._runner: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._producer.start()
        self._runner = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        await self._producer.stop()

    async def write(self, records: list[OutgoingRecord]) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._queue.put((records, done))
        await done

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            deadline = asyncio.get_running_loop().time() + self._max_wait_s
            while len(batch) < self._max_batch:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except TimeoutError:
                    break
            await self._commit(batch)

    async def _commit(self, batch: list[tuple[list[OutgoingRecord], asyncio.Future[None]]]) -> None:
        try:
            async with self._producer.transaction():
                sends = [
                    await self._producer.send(
                        record.topic,
                        value=record.value,
                        key=record.key,
                        partition=record.partition,
                        headers=record.headers,
                    )
                    for records, _ in batch
                    for record in records
                ]
                await asyncio.gather(*sends)
        except Exception as error:  # the writers learn why their records were not written
            log.warning("transaction of %d writes failed: %s", len(batch), error)
            for _, done in batch:
                if not done.done():
                    done.set_exception(error)
            return
        for _, done in batch:
            if not done.done():
                done.set_result(None)
