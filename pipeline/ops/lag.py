"""Consumer-group lag: how far a group's committed offsets trail the end of its topics."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from pipeline.ops.kafka import client_options
from pipeline.ops.topics import admin_client
from pipeline.settings import Settings


async def group_lag(settings: Settings, group_id: str, topics: list[str]) -> dict[TopicPartition, int]:
    """Records not yet committed by the group, per partition (a partition never committed counts fully)."""
    async with admin_client(settings) as admin:
        committed = await admin.list_consumer_group_offsets(group_id)
    consumer = AIOKafkaConsumer(**client_options(settings.kafka), enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, partition)
            for topic in topics
            for partition in sorted(
                consumer.partitions_for_topic(topic) or await _partitions(consumer, topic)
            )
        ]
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
    finally:
        await consumer.stop()
    lag = {}
    for partition in partitions:
        position = committed[partition].offset if partition in committed else starts[partition]
        lag[partition] = max(0, ends[partition] - position)
    return lag


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    # aiokafka offers no public metadata refresh; a just-created topic is otherwise unknown for a while.
    await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(topic) or set()


async def wait_until_drained(settings: Settings, timeout_s: float) -> bool:
    """Wait until the worker group has committed everything on its input topics; False on time-out."""
    topics = [settings.topics.raw_pages, settings.topics.articles, settings.topics.enriched]
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
