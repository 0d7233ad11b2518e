"""`newsfeed archive`: the raw-pages topic into WARC files, each page once, resumed where the archive ends."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from pipeline.archive.files import ArchiveWriter, ClosedFile, Partition, locked, recover
from pipeline.archive.warc_writer import KafkaPosition, page_records
from pipeline.contracts import Contracts, contracts_for
from pipeline.ops.kafka import client_options, topic_partitions
from pipeline.settings import Settings
from pipeline.stream.decode import InvalidRecordError, decode_record

log = logging.getLogger(__name__)
MAX_RECORD_BYTES = 10 * 1024 * 1024
READ_CHUNK = 500
SCHEMA = "raw_page.v1"


class ArchiveConfigError(ValueError):
    """The archiver cannot start with these settings; the message says what to set."""


def archive_messages(
    writer: ArchiveWriter, messages: Sequence[Any], contracts: Contracts, counts: Counter[str]
) -> list[ClosedFile]:
    """Append a batch of consumed messages and make it durable; returns the files closed meanwhile.

    A message at an offset the archive already holds is dropped: after a crash the archive, not Kafka's
    committed offsets, says what was written. An invalid record is counted and left out (the worker
    dead-letters it)."""
    closed: list[ClosedFile] = []
    for message in messages:
        if message.offset < writer.positions.get((message.topic, message.partition), 0):
            counts["already-archived"] += 1
            continue
        try:
            page = decode_record(message.value, SCHEMA, contracts, MAX_RECORD_BYTES)
        except InvalidRecordError as error:
            counts[f"invalid:{error.reason}"] += 1
            continue
        position = KafkaPosition(message.topic, message.partition, message.offset, message.timestamp)
        rotated = writer.append(page_records(page, position, gzip_level=writer.gzip_level))
        if rotated is not None:
            closed.append(rotated)
        counts["archived"] += 1
    writer.sync()
    if writer.rotation_due() and (rotated := writer.close()) is not None:
        closed.append(rotated)
    return closed


def _close_if_due(writer: ArchiveWriter) -> list[ClosedFile]:
    """The age limit also closes a file while no pages come."""
    closed = writer.close() if writer.rotation_due() else None
    return [closed] if closed is not None else []


async def run_archiver(
    settings: Settings,
    *,
    idle_exit_s: float | None = None,
    stop: asyncio.Event | None = None,
) -> Counter[str]:
    """Archive until stopped (SIGINT/SIGTERM, `stop`, or `idle_exit_s` without a message); the open file
    is closed on the way out, so a clean stop leaves only closed, indexed files."""
    directory = settings.archive.dir
    if directory is None:
        raise ArchiveConfigError(
            "no archive directory: set archive.dir (NEWSFEED_ARCHIVE__DIR) or pass --dir"
        )
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    counts: Counter[str] = Counter()
    try:
        with locked(directory):
            await _archive(settings, directory, stop, idle_exit_s, counts)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    return counts


async def _archive(
    settings: Settings, directory: Path, stop: asyncio.Event, idle_exit_s: float | None, counts: Counter[str]
) -> None:
    recovered = await asyncio.to_thread(recover, directory)
    counts["recovered:closed-files"] += len(recovered.closed)
    counts["recovered:truncated-bytes"] += recovered.truncated_bytes
    if recovered.closed or recovered.truncated_bytes:
        log.warning(
            "archive %s: closed %d file(s) left open, cut %d bytes of torn writes",
            directory,
            len(recovered.closed),
            recovered.truncated_bytes,
        )
    config = settings.archive
    writer = ArchiveWriter(
        directory,
        rotate_bytes=config.rotate_bytes,
        rotate_seconds=config.rotate_seconds,
        gzip_level=config.gzip_level,
        next_sequence=recovered.next_sequence,
        positions=recovered.positions,
    )
    contracts = contracts_for(settings.schemas_dir)
    consumer = AIOKafkaConsumer(
        **client_options(settings.kafka),
        group_id=config.group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_partition_fetch_bytes=MAX_RECORD_BYTES + 1024 * 1024,
    )
    await consumer.start()
    loop = asyncio.get_running_loop()
    try:
        if not await _assign(consumer, settings.topics.raw_pages, writer.positions, stop, counts):
            return
        idle_since = loop.time()
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=1000, max_records=READ_CHUNK)
            messages = [message for records in batches.values() for message in records]
            if messages:
                idle_since = loop.time()
                closed = await asyncio.to_thread(archive_messages, writer, messages, contracts, counts)
                await _commit(consumer, messages)
            else:
                closed = await asyncio.to_thread(_close_if_due, writer)
                if idle_exit_s is not None and loop.time() - idle_since >= idle_exit_s:
                    break
            for done in closed:
                counts["files-closed"] += 1
                log.info("archive file closed: %s (%d pages)", done.path.name, done.pages)
    finally:
        last = await asyncio.to_thread(writer.close)
        if last is not None:
            counts["files-closed"] += 1
            log.info("archive file closed: %s (%d pages)", last.path.name, last.pages)
        await consumer.stop()


async def _assign(
    consumer: AIOKafkaConsumer,
    topic: str,
    positions: dict[Partition, int],
    stop: asyncio.Event,
    counts: Counter[str],
) -> bool:
    """Take every partition (one archiver per archive) and start each where the archive ends, or at the
    topic's beginning for a partition the archive has never seen. False when stopped before the topic
    exists."""
    while not (numbers := await topic_partitions(consumer, topic)):
        log.info("waiting for topic %s to exist", topic)
        try:
            await asyncio.wait_for(stop.wait(), 2.0)
        except TimeoutError:
            continue
        return False
    partitions = [TopicPartition(topic, number) for number in sorted(numbers)]
    consumer.assign(partitions)
    beginnings = await consumer.beginning_offsets(partitions)
    ends = await consumer.end_offsets(partitions)
    for tp in partitions:
        resume = positions.get((topic, tp.partition))
        if resume is None:
            consumer.seek(tp, beginnings[tp])
        elif resume < beginnings[tp]:
            counts["lost-to-retention"] += beginnings[tp] - resume
            log.error(
                "%s[%d]: offsets %d..%d were deleted (retention) before they were archived",
                topic,
                tp.partition,
                resume,
                beginnings[tp] - 1,
            )
            consumer.seek(tp, beginnings[tp])
        else:
            if resume > ends[tp]:
                log.error(
                    "%s[%d]: the archive holds offsets up to %d but the topic ends at %d; was it recreated?",
                    topic,
                    tp.partition,
                    resume - 1,
                    ends[tp],
                )
            consumer.seek(tp, resume)
    return True


async def _commit(consumer: AIOKafkaConsumer, messages: Sequence[Any]) -> None:
    """Progress for lag monitoring, only after the batch is durable; a failed commit loses nothing."""
    offsets: dict[TopicPartition, OffsetAndMetadata] = {}
    for message in messages:
        tp = TopicPartition(message.topic, message.partition)
        if tp not in offsets or offsets[tp].offset <= message.offset:
            offsets[tp] = OffsetAndMetadata(message.offset + 1, "")
    try:
        await consumer.commit(offsets)
    except KafkaError as error:
        log.warning("committing archive progress failed (harmless, retried next batch): %s", error)
