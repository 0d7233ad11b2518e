"""The crawler's transactional writer retries what a retry can fix and fails only the record at fault."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka.errors import MessageSizeTooLargeError, OutOfOrderSequenceNumber, ProducerFenced

from pipeline.raw.atomic_writer import AtomicWriter, OutgoingRecord


class ScriptedProducer:
    """Stands in for a transactional AIOKafkaProducer; `fail(value)` says what sending `value` raises."""

    def __init__(self, fail: Any, log: list[str]) -> None:
        self._fail = fail
        self._log = log
        self.committed: list[bytes] = []

    async def start(self) -> None:
        self._log.append("start")

    async def stop(self) -> None:
        self._log.append("stop")

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        pending: list[bytes] = []
        self._pending = pending
        yield
        self.committed.extend(pending)

    async def send(self, topic: str, **record: Any) -> asyncio.Future[None]:
        error = self._fail(record["value"])
        if error is not None:
            raise error
        self._pending.append(record["value"])
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def writer_over(failures: list[Any]) -> tuple[AtomicWriter, list[ScriptedProducer], list[str]]:
    """A writer whose n-th producer fails as `failures[n]` says (the last one for all later producers)."""
    producers: list[ScriptedProducer] = []
    log: list[str] = []

    def new_producer() -> Any:
        producers.append(ScriptedProducer(failures[min(len(producers), len(failures) - 1)], log))
        return producers[-1]

    writer = AtomicWriter(new_producer, max_wait_s=0.05, first_backoff_s=0.01, max_backoff_s=0.02)
    return writer, producers, log


def record(value: bytes) -> list[OutgoingRecord]:
    return [OutgoingRecord(topic="raw", value=value)]


async def test_a_transaction_lost_with_the_broker_is_retried_on_a_new_producer() -> None:
    lost = [lambda value: OutOfOrderSequenceNumber(), lambda value: OutOfOrderSequenceNumber()]
    writer, producers, log = writer_over([*lost, lambda value: None])
    await writer.start()
    try:
        await asyncio.wait_for(asyncio.gather(writer.write(record(b"a")), writer.write(record(b"b"))), 5)
    finally:
        await writer.stop()
    assert writer.retries == 2
    assert len(producers) == 3
    assert sorted(producers[-1].committed) == [b"a", b"b"]
    assert log == ["start", "stop", "start", "stop", "start", "stop"]


async def test_a_record_the_broker_refuses_fails_alone() -> None:
    too_large = lambda value: MessageSizeTooLargeError() if value == b"huge" else None  # noqa: E731
    writer, producers, _ = writer_over([too_large])
    await writer.start()
    try:
        results = await asyncio.wait_for(
            asyncio.gather(
                writer.write(record(b"a")),
                writer.write(record(b"huge")),
                writer.write(record(b"b")),
                return_exceptions=True,
            ),
            5,
        )
    finally:
        await writer.stop()
    assert results[0] is None
    assert results[2] is None
    assert isinstance(results[1], MessageSizeTooLargeError)
    assert sorted(producers[0].committed) == [b"a", b"b"]
    assert writer.retries == 0


async def test_a_fenced_producer_is_not_retried() -> None:
    writer, producers, _ = writer_over([lambda value: ProducerFenced()])
    await writer.start()
    try:
        with pytest.raises(ProducerFenced):
            await asyncio.wait_for(writer.write(record(b"a")), 5)
    finally:
        await writer.stop()
    assert len(producers) == 1
