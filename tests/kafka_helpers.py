"""Small real-Kafka helpers for tests: produce bytes, read a topic back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from pipeline.ops.kafka import client_options
from pipeline.settings import Settings


async def produce(settings: Settings, topic: str, records: Sequence[tuple[bytes | None, bytes]]) -> None:
    producer = AIOKafkaProducer(
        **client_options(settings.kafka),
        acks="all",
        compression_type="zstd",
        max_request_size=12 * 1024 * 1024,
    )
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value=value, key=key)
    finally:
        await producer.stop()


async def read_topic(settings: Settings, topic: str, expected: int, timeout_s: float) -> list[ConsumerRecord]:
    """Read committed records from the beginning until `expected` arrived or the time is up."""
    consumer = AIOKafkaConsumer(
        topic,
        **client_options(settings.kafka),
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        max_partition_fetch_bytes=12 * 1024 * 1024,
    )
    await consumer.start()
    records: list[ConsumerRecord] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(records) < expected and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for batch in batches.values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return records


def read_topic_sync(settings: Settings, topic: str, expected: int, timeout_s: float) -> list[ConsumerRecord]:
    return asyncio.run(read_topic(settings, topic, expected, timeout_s))


async def wait_for_stable_group(settings: Settings, group_id: str, members: int, timeout_s: float) -> bool:
    """Wait until a consumer group has `members` members and has finished rebalancing."""
    from pipeline.ops.topics import admin_client  # noqa: PLC0415

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        async with admin_client(settings) as admin:
            responses = await admin.describe_consumer_groups([group_id])
        for response in responses:
            for group in response.groups:
                error_code, _, state, _, _, group_members = group[:6]
                if error_code == 0 and state == "Stable" and len(group_members) == members:
                    return True
        await asyncio.sleep(0.5)
    return False
