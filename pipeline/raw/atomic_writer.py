"""Write a raw page together with its crawl state in one Kafka transaction: both become visible or neither."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidTopicError,
    MessageSizeTooLargeError,
    ProducerFenced,
    RecordListTooLargeError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)

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


# Retrying these cannot help: the writers of the batch are told, one transaction each, which record it was.
REJECTED_RECORD_ERRORS: tuple[type[Exception], ...] = (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    InvalidTopicError,
    TopicAuthorizationFailedError,
)
# Another process holds this transactional id (or may not use it): its writes must not be replayed here.
FATAL_ERRORS: tuple[type[Exception], ...] = (ProducerFenced, TransactionalIdAuthorizationFailed)

Batch = list[tuple[list[OutgoingRecord], "asyncio.Future[None]"]]


class AtomicWriter:
    """Groups concurrent writes into short transactions; `write` returns once its transaction committed.

    A transaction that fails for any other reason (the broker away or restarted, a lost producer state:
    `OutOfOrderSequenceNumber`, `UnknownProducerId`) is retried on a new producer, with backoff, for as long
    as it takes: the new producer's `init_transactions` aborts whatever the old one left open, so readers
    that read committed records never see a record twice. Meanwhile writers wait, which holds the crawl.
    """

    def __init__(
        self,
        new_producer: Callable[[], AIOKafkaProducer],
        *,
        max_batch: int = 200,
        max_wait_s: float = 0.02,
        first_backoff_s: float = 0.5,
        max_backoff_s: float = 10.0,
    ) -> None:
        self._new_producer = new_producer
        self._producer = new_producer()
        self._max_batch = max_batch
        self._max_wait_s = max_wait_s
        self._first_backoff_s = first_backoff_s
        self._max_backoff_s = max_backoff_s
        self._queue: asyncio.Queue[tuple[list[OutgoingRecord], asyncio.Future[None]]] = asyncio.Queue()
        self._runner: asyncio.Task[None] | None = None
        self.retries = 0

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
            try:
                await self._commit_until_done(batch)
            except asyncio.CancelledError:
                _fail(batch, RuntimeError("the writer stopped before the transaction committed"))
                raise

    async def _commit_until_done(self, batch: Batch) -> None:
        backoff_s = self._first_backoff_s
        while True:
            try:
                await self._commit(batch)
            except REJECTED_RECORD_ERRORS as error:
                if len(batch) == 1:
                    log.warning("transaction refused: %s", error)
                    _fail(batch, error)
                    return
                for write in batch:
                    await self._commit_until_done([write])
                return
            except FATAL_ERRORS as error:
                log.error("transactional producer cannot go on: %s", error)
                _fail(batch, error)
                return
            except Exception as error:  # any other failure is retried on a new producer
                self.retries += 1
                log.warning(
                    "transaction of %d writes failed (%s: %s); retrying in %.1f s on a new producer",
                    len(batch),
                    type(error).__name__,
                    error,
                    backoff_s,
                )
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, self._max_backoff_s)
                await self._replace_producer()
                continue
            for _, done in batch:
                if not done.done():
                    done.set_result(None)
            return

    async def _commit(self, batch: Batch) -> None:
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

    async def _replace_producer(self) -> None:
        """Stop the failed producer and start another with the same transactional id (until one starts)."""
        with contextlib.suppress(Exception):
            await self._producer.stop()
        backoff_s = self._first_backoff_s
        while True:
            self._producer = self._new_producer()
            try:
                await self._producer.start()
                return
            except Exception as error:  # the broker may still be away: try again
                log.warning("transactional producer did not start (%s); again in %.1f s", error, backoff_s)
                with contextlib.suppress(Exception):
                    await self._producer.stop()
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, self._max_backoff_s)


def _fail(batch: Batch, error: BaseException) -> None:
    """The writers learn why their records were not written."""
    for _, done in batch:
        if not done.done():
            done.set_exception(error)
