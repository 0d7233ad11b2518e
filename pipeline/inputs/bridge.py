"""`newsfeed ingest`: consume other teams' topics, validate and map each record, publish it at its stage."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections import Counter
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from pipeline.clock import Clock, utc_now
from pipeline.contracts import Contracts, contracts_for
from pipeline.inputs.convert import convert
from pipeline.ops.kafka import client_options
from pipeline.ops.metrics import serve as serve_metrics
from pipeline.ops.metrics import watch_outcomes
from pipeline.raw.publisher import record_headers, reliable_producer
from pipeline.records import dumps
from pipeline.settings import InputTopicSettings, Settings
from pipeline.stream.dead_letters import dead_letter_of
from pipeline.stream.decode import InvalidRecordError

log = logging.getLogger(__name__)
BATCH = 500


def entry_topic(settings: Settings, spec: InputTopicSettings) -> str:
    return settings.topics.raw_pages if spec.stage == "raw" else settings.topics.articles


def input_stage(spec: InputTopicSettings) -> str:
    """The `stage` its dead letters carry, so `newsfeed dlq replay` can map them again."""
    return f"input:{spec.name}"


async def forward(
    message: Any,
    spec: InputTopicSettings,
    *,
    settings: Settings,
    producer: AIOKafkaProducer,
    contracts: Contracts,
    clock: Clock,
) -> tuple[asyncio.Future[Any], str]:
    """Publish one message at its entry stage or as a dead letter; the future resolves when it is acked."""
    try:
        converted = convert(message.value, spec, contracts, clock())
    except InvalidRecordError as error:
        log.warning(
            "dead-letter %s/%s at %s[%s]@%s: %s",
            input_stage(spec),
            error.reason,
            message.topic,
            message.partition,
            message.offset,
            error.detail,
        )
        letter = dead_letter_of(
            message, stage=input_stage(spec), reason=error.reason, error=error.detail, now=clock()
        )
        sent = await producer.send(
            settings.topics.dead_letter,
            dumps(letter),
            key=message.key,
            headers=record_headers("dead_letter.v1", ""),
        )
        return sent, f"dead-letter:{error.reason}"
    sent = await producer.send(
        entry_topic(settings, spec),
        dumps(converted.record),
        key=converted.key,
        headers=record_headers(converted.schema, converted.record["trace_id"]),
    )
    return sent, "forwarded"


async def run_input(
    spec: InputTopicSettings,
    settings: Settings,
    producer: AIOKafkaProducer,
    stop: asyncio.Event,
    counts: Counter[str],
    *,
    clock: Clock = utc_now,
    idle_exit_s: float | None = None,
) -> None:
    """One input topic until `stop`: at least once (offsets committed after our broker acknowledged
    every record of the batch); a repeat after a crash is harmless downstream (exact-copy dedup,
    idempotent stores)."""
    contracts = contracts_for(settings.schemas_dir)
    consumer = AIOKafkaConsumer(
        spec.topic,
        **client_options(spec.cluster or settings.kafka),
        group_id=spec.group_id or f"newsfeed-input-{spec.name}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_partition_fetch_bytes=spec.max_record_bytes + 1024 * 1024,
    )
    await consumer.start()
    loop = asyncio.get_running_loop()
    idle_since = loop.time()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=500, max_records=BATCH)
            messages = [message for partition in batches.values() for message in partition]
            if not messages:
                if idle_exit_s is not None and loop.time() - idle_since >= idle_exit_s:
                    return
                continue
            idle_since = loop.time()
            outcomes = [
                await forward(m, spec, settings=settings, producer=producer, contracts=contracts, clock=clock)
                for m in messages
            ]
            await asyncio.gather(*(sent for sent, _ in outcomes))
            counts.update(f"{spec.name}:{outcome}" for _, outcome in outcomes)
            await consumer.commit()
    finally:
        await consumer.stop()


async def run_inputs(
    settings: Settings, *, clock: Clock = utc_now, idle_exit_s: float | None = None
) -> Counter[str]:
    """Every configured input, side by side, until SIGINT/SIGTERM (or all are idle for `idle_exit_s`)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    counts: Counter[str] = Counter()
    watch_outcomes("ingest", counts)
    if settings.metrics.enabled:
        serve_metrics(settings.metrics.host, settings.metrics.ingest_port)
    producer = reliable_producer(settings)
    await producer.start()
    try:
        await asyncio.gather(
            *(
                run_input(spec, settings, producer, stop, counts, clock=clock, idle_exit_s=idle_exit_s)
                for spec in settings.inputs
            )
        )
    finally:
        await producer.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    return counts
