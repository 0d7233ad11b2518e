"""`newsfeed sink`: the enriched topic into the stores, in batches, offsets committed after each write."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections import Counter
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer

from pipeline.clock import Clock, utc_now
from pipeline.contracts import Contracts, contracts_for
from pipeline.ops.kafka import client_options
from pipeline.ops.metrics import serve as serve_metrics
from pipeline.ops.metrics import watch_outcomes
from pipeline.ops.watchdog import LagWatchdog
from pipeline.raw.publisher import record_headers, reliable_producer
from pipeline.records import dumps
from pipeline.settings import Settings
from pipeline.sink.jsonl_store import SinkItem
from pipeline.sink.writer import SinkWriter, write_until_stored
from pipeline.stream.dead_letters import dead_letter_of
from pipeline.stream.decode import InvalidRecordError, decode_record

log = logging.getLogger(__name__)
MAX_RECORD_BYTES = 10 * 1024 * 1024
SCHEMA = "enriched_article.v1"


def sink_items(
    messages: Sequence[Any], contracts: Contracts
) -> tuple[list[SinkItem], list[tuple[Any, InvalidRecordError]]]:
    """Decode a batch of consumed messages: valid records and tombstones, and the invalid ones."""
    items: list[SinkItem] = []
    invalid: list[tuple[Any, InvalidRecordError]] = []
    for message in messages:
        if message.key is None:
            invalid.append((message, InvalidRecordError("missing-key", "enriched records are keyed by id")))
            continue
        key = message.key.decode("utf-8", errors="replace")
        if message.value is None:
            items.append(SinkItem(message.topic, message.partition, message.offset, key, None))
            continue
        try:
            record = decode_record(message.value, SCHEMA, contracts, MAX_RECORD_BYTES)
        except InvalidRecordError as error:
            invalid.append((message, error))
            continue
        items.append(SinkItem(message.topic, message.partition, message.offset, key, record))
    return items, invalid


async def run_sink(
    settings: Settings,
    *,
    clock: Clock = utc_now,
    idle_exit_s: float | None = None,
    stop: asyncio.Event | None = None,
) -> Counter[str]:
    """Consume until stopped (SIGINT/SIGTERM, `stop`, or `idle_exit_s` without a message)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    counts: Counter[str] = Counter()
    watch_outcomes("sink", counts)
    if settings.metrics.enabled:
        serve_metrics(settings.metrics.host, settings.metrics.sink_port)
    watchdog = LagWatchdog(settings, settings.store.sink_group_id, [settings.topics.enriched])
    watching = asyncio.create_task(watchdog.run(stop))
    contracts = contracts_for(settings.schemas_dir)
    consumer = AIOKafkaConsumer(
        settings.topics.enriched,
        **client_options(settings.kafka),
        group_id=settings.store.sink_group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_partition_fetch_bytes=MAX_RECORD_BYTES + 1024 * 1024,
    )
    producer = reliable_producer(settings)
    writer = await asyncio.to_thread(SinkWriter, settings, clock)
    await consumer.start()
    await producer.start()
    idle_since = loop.time()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(
                timeout_ms=int(settings.store.batch_window_s * 1000), max_records=settings.store.batch_size
            )
            messages = [message for partition in batches.values() for message in partition]
            if not messages:
                if idle_exit_s is not None and loop.time() - idle_since >= idle_exit_s:
                    break
                continue
            idle_since = loop.time()
            items, invalid = sink_items(messages, contracts)
            for message, error in invalid:
                await _dead_letter(producer, settings, message, error, clock)
                counts[f"dead-letter:{error.reason}"] += 1
            stored = await write_until_stored(writer, items, stop)
            if stored is None:
                break  # stopped while a store was down: the batch is not committed, so it is read again
            counts["stored"] += stored
            counts["retracted"] += sum(1 for item in items if item.record is None)
            # Only now is the batch safe in every store; a crash before this line re-reads it.
            await consumer.commit()
    finally:
        stop.set()
        await watching
        await consumer.stop()
        await producer.stop()
        await asyncio.to_thread(writer.close)
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    return counts


async def _dead_letter(
    producer: Any, settings: Settings, message: Any, error: InvalidRecordError, clock: Clock
) -> None:
    trace_id = next((bytes(v).decode() for k, v in message.headers or () if k == "trace-id"), None)
    letter = dead_letter_of(
        message, stage="sink", reason=error.reason, error=error.detail, now=clock(), trace_id=trace_id
    )
    log.warning(
        "dead-letter sink/%s at %s[%s]@%s: %s",
        error.reason,
        message.topic,
        message.partition,
        message.offset,
        error.detail,
    )
    await producer.send_and_wait(
        settings.topics.dead_letter,
        dumps(letter),
        key=message.key,
        headers=record_headers("dead_letter.v1", trace_id or ""),
    )
