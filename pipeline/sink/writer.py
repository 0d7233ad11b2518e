"""Write batches of enriched-topic messages to every configured store: the last word per article wins."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime

from pipeline.clock import Clock
from pipeline.ops.metrics import END_TO_END_SECONDS
from pipeline.records import EnrichedArticle
from pipeline.settings import Settings
from pipeline.sink.jsonl_store import JsonlStore, SinkItem
from pipeline.sink.sqlite_store import SqliteStore
from pipeline.sink.store import ArticleStore

log = logging.getLogger(__name__)
FIRST_RETRY_DELAY_S = 0.5
MAX_RETRY_DELAY_S = 10.0


def searchable_backend(settings: Settings) -> str:
    """The store search, stats and the dashboard read: the first of sqlite/postgres in `store.backends`."""
    return next((name for name in settings.store.backends if name != "jsonl"), "sqlite")


def open_article_store(
    settings: Settings, backend: str | None = None, *, read_only: bool = False
) -> ArticleStore:
    """The searchable store: `backend`, or `searchable_backend(settings)`."""
    chosen = backend or searchable_backend(settings)
    if chosen == "postgres":
        from pipeline.ops.postgres import store_dsn  # noqa: PLC0415 - psycopg only when used
        from pipeline.sink.postgres_store import PostgresStore  # noqa: PLC0415

        return PostgresStore(store_dsn(settings), read_only=read_only)
    if chosen == "sqlite":
        return SqliteStore(settings.store.sqlite_path, read_only=read_only)
    raise ValueError(f"no searchable store called {chosen!r}; use sqlite or postgres")


class SinkWriter:
    """One batch in, every store updated; safe to repeat after a crash (upserts keep the newest fetch,
    the JSONL store skips what it already wrote)."""

    def __init__(self, settings: Settings, clock: Clock, *, observe_latency: bool = True) -> None:
        backends = settings.store.backends
        self.clock = clock
        # A replay's records were fetched long ago: their age says nothing about the live pipeline.
        self.observe_latency = observe_latency
        self.store_names = [name for name in backends if name in ("sqlite", "postgres")]
        self.stores: list[ArticleStore] = [
            open_article_store(settings, name) for name in backends if name in ("sqlite", "postgres")
        ]
        self.jsonl = JsonlStore(settings.store.jsonl_dir, clock) if "jsonl" in backends else None

    def write(self, items: Sequence[SinkItem]) -> int:
        """Apply a batch; returns the number of articles upserted."""
        latest: dict[str, EnrichedArticle | None] = {}
        for item in items:  # Kafka keeps one article's messages in order: the last one stands
            latest[item.key] = item.record
        records = [record for record in latest.values() if record is not None]
        retracted = [key for key, record in latest.items() if record is None]
        for name, store in zip(self.store_names, self.stores, strict=True):
            store.apply(records, retracted)
            self._observe(name, records)
        if self.jsonl is not None:
            self.jsonl.append(items)
            self._observe("jsonl", records)
        return len(records)

    def _observe(self, store: str, records: Sequence[EnrichedArticle]) -> None:
        if not self.observe_latency:
            return
        now = self.clock().timestamp()
        histogram = END_TO_END_SECONDS.labels(store)
        for record in records:
            try:
                fetched = datetime.fromisoformat(record["fetched_at"])
            except ValueError:
                continue
            if fetched.tzinfo is None:
                fetched = fetched.replace(tzinfo=UTC)
            histogram.observe(max(0.0, now - fetched.timestamp()))

    def close(self) -> None:
        for store in self.stores:
            store.close()


async def write_until_stored(
    writer: SinkWriter,
    items: Sequence[SinkItem],
    stop: asyncio.Event | None = None,
    *,
    first_delay_s: float = FIRST_RETRY_DELAY_S,
    max_delay_s: float = MAX_RETRY_DELAY_S,
) -> int | None:
    """`writer.write(items)` in a thread, retried with capped exponential backoff while a store is
    unreachable (a database restart or network outage), so the batch waits instead of crashing the sink
    or being skipped. Returns the number upserted, or None if `stop` was set before it could be written:
    the caller must then not commit the batch's offsets, so it is read again after a restart.

    Only operational errors (connection lost or refused, database locked) are retried: any other error is
    a bug or a bad record, and retrying it forever would hide it.
    """
    from psycopg import OperationalError as PostgresOperationalError  # noqa: PLC0415 - psycopg when used

    delay_s = first_delay_s
    failures = 0
    while True:
        try:
            stored = await asyncio.to_thread(writer.write, items)
        except (PostgresOperationalError, sqlite3.OperationalError) as error:
            failures += 1
            log.warning(
                "store write of %d record(s) failed (attempt %d), retrying in %.1f s: %s",
                len(items),
                failures,
                delay_s,
                str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__,
            )
            if stop is None:
                await asyncio.sleep(delay_s)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay_s)
                if stop.is_set():
                    return None
            delay_s = min(delay_s * 2, max_delay_s)
            continue
        if failures:
            log.warning(
                "store write of %d record(s) succeeded after %d failed attempt(s)", len(items), failures
            )
        return stored
