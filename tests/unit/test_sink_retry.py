"""The sink's store write while a store is down: retried with capped backoff, never skipped or fatal."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Sequence

import psycopg
import pytest

from pipeline.sink.jsonl_store import SinkItem
from pipeline.sink.writer import SinkWriter, write_until_stored
from tests.unit.test_sink_sqlite import enriched


class FlakyWriter(SinkWriter):
    """Fails with the given errors, one per call, then stores the batch."""

    def __init__(self, errors: Sequence[BaseException]) -> None:  # no stores: nothing to open
        self.errors = list(errors)
        self.calls = 0
        self.stored: list[SinkItem] = []

    def write(self, items: Sequence[SinkItem]) -> int:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        self.stored.extend(items)
        return len(items)


def batch() -> list[SinkItem]:
    return [SinkItem("t", 0, offset, f"{offset:032x}", enriched(offset)) for offset in range(3)]


def refused() -> psycopg.OperationalError:
    return psycopg.OperationalError('connection to server at "127.0.0.1", port 15432 failed: refused')


async def test_a_batch_waits_for_the_store_and_is_written_once_it_is_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    writer = FlakyWriter([refused(), refused(), sqlite3.OperationalError("database is locked")])
    items = batch()
    with caplog.at_level(logging.WARNING, logger="pipeline.sink.writer"):
        stored = await write_until_stored(writer, items, first_delay_s=0.01, max_delay_s=0.02)
    assert stored == 3
    assert writer.calls == 4
    assert writer.stored == items
    retries = [record.getMessage() for record in caplog.records if "retrying in" in record.getMessage()]
    assert len(retries) == 3
    assert "(attempt 3)" in retries[-1]
    assert "succeeded after 3 failed attempt(s)" in caplog.records[-1].getMessage()


async def test_the_backoff_doubles_up_to_its_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    waits: list[float] = []

    async def no_wait(delay_s: float) -> None:
        waits.append(delay_s)

    monkeypatch.setattr(asyncio, "sleep", no_wait)
    writer = FlakyWriter([refused() for _ in range(7)])
    assert await write_until_stored(writer, batch(), first_delay_s=0.5, max_delay_s=4.0) == 3
    assert waits == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0]


async def test_other_errors_are_not_retried() -> None:
    writer = FlakyWriter([ValueError("a bug, not an outage")])
    with pytest.raises(ValueError, match="a bug"):
        await write_until_stored(writer, batch(), first_delay_s=0.01)
    assert writer.calls == 1


async def test_a_stop_during_the_outage_gives_the_batch_back_unwritten() -> None:
    writer = FlakyWriter([refused() for _ in range(1000)])
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.2, stop.set)
    stored = await asyncio.wait_for(
        write_until_stored(writer, batch(), stop, first_delay_s=0.05, max_delay_s=60.0), timeout=10
    )
    assert stored is None
    assert writer.stored == []
