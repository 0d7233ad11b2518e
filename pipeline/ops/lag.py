"""Consumer-group lag: how many records a group has not yet committed on its topics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from pipeline.ops.kafka import client_options, topic_partitions
from pipeline.ops.topics import admin_client
from pipeline.settings import Settings


async def committed_offsets(settings: Settings, group_id: str) -> dict[TopicPartition, int]:
    """The group's committed offset per partition (partitions it never committed are absent)."""
    async with admin_client(settings) as admin:
        committed = await admin.list_consumer_group_offsets(group_id)
    return {tp: meta.offset for tp, meta in committed.items()}


async def partitions_and_ends(
    consumer: AIOKafkaConsumer, topics: Sequence[str]
) -> tuple[list[TopicPartition], dict[TopicPartition, int]]:
    """Every partition of `topics` and its end offset."""
    partitions = [
        TopicPartition(topic, partition)
        for topic in topics
        for partition in sorted(await topic_partitions(consumer, topic))
    ]
    return partitions, (await consumer.end_offsets(partitions) if partitions else {})


async def group_lag(settings: Settings, group_id: str, topics: list[str]) -> dict[TopicPartition, int]:
    """Records not yet committed by the group, per partition (a partition never committed counts fully).

    Offsets alone overstate lag on topics written in transactions: commit markers take offsets but are
    not records. Where offsets differ, the records in between are read (read_committed) and counted.
    """
    committed = await committed_offsets(settings, group_id)
    consumer = AIOKafkaConsumer(
        **client_options(settings.kafka), enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        partitions, ends = await partitions_and_ends(consumer, topics)
        starts = await consumer.beginning_offsets(partitions)
        positions = {tp: committed[tp] if tp in committed else starts[tp] for tp in partitions}
        behind = [tp for tp in partitions if ends[tp] > positions[tp]]
        lag = dict.fromkeys(partitions, 0)
        if behind:
            lag.update(await records_between(consumer, behind, positions, ends))
    finally:
        await consumer.stop()
    return lag


async def records_between(
    consumer: AIOKafkaConsumer,
    partitions: list[TopicPartition],
    positions: dict[TopicPartition, int],
    ends: dict[TopicPartition, int],
) -> dict[TopicPartition, int]:
    consumer.assign(partitions)
    for tp in partitions:
        consumer.seek(tp, positions[tp])
    counts = dict.fromkeys(partitions, 0)
    remaining = set(partitions)
    deadline = time.monotonic() + 5.0
    while remaining and time.monotonic() < deadline:
        batches = await consumer.getmany(*remaining, timeout_ms=200)
        for tp, records in batches.items():
            counts[tp] += sum(1 for record in records if record.offset < ends[tp])
        for tp in list(remaining):
            if await consumer.position(tp) >= ends[tp]:
                remaining.discard(tp)
    for tp in remaining:
        # Not read to the end in time: count what the offsets say, to err on the side of "not drained".
        counts[tp] = max(counts[tp], 1)
    return counts


async def wait_until_drained(settings: Settings, timeout_s: float) -> bool:
    """Wait until the worker group has committed everything on its input topics; False on time-out."""
    names = settings.topics
    topics = [names.raw_pages, names.articles, names.dedup_bands, names.dedup_join, names.enriched]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            lag = await group_lag(settings, settings.worker.app_id, topics)
        except KafkaError as error:
            # A fresh broker has no group coordinator until the offsets topic exists; keep waiting.
            if not error.retriable:
                raise
        else:
            if lag and not any(lag.values()):
                return True
        await asyncio.sleep(1.0)
    return False
