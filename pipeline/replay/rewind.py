"""`newsfeed replay --rewind-live`: move the live worker group's offsets on its entry topic to a time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from pipeline.ops.kafka import client_options
from pipeline.ops.topics import admin_client
from pipeline.replay.ranges import resolve_range
from pipeline.settings import Settings


class RewindError(RuntimeError):
    """The group cannot be rewound now; the message says what to do."""


@dataclass(frozen=True, slots=True)
class OffsetMove:
    partition: TopicPartition
    committed: int | None
    target: int

    def describe(self) -> str:
        was = "none" if self.committed is None else str(self.committed)
        return f"{self.partition.topic}[{self.partition.partition}]: {was} -> {self.target}"


async def plan_rewind(settings: Settings, topic: str, start: datetime) -> list[OffsetMove]:
    """Per partition, the group's committed offset and the first offset at or after `start`."""
    group = settings.worker.app_id
    async with admin_client(settings) as admin:
        committed = await admin.list_consumer_group_offsets(group)
    consumer = AIOKafkaConsumer(**client_options(settings.kafka), enable_auto_commit=False)
    await consumer.start()
    try:
        plan = await resolve_range(consumer, topic, start, None)
    finally:
        await consumer.stop()
    return [
        OffsetMove(
            span.partition,
            committed[span.partition].offset if span.partition in committed else None,
            span.start,
        )
        for span in plan.spans
    ]


async def group_members(settings: Settings) -> int:
    async with admin_client(settings) as admin:
        responses = await admin.describe_consumer_groups([settings.worker.app_id])
    members = 0
    for response in responses:
        for group in response.groups:
            members += len(group[5])
    return members


async def apply_rewind(settings: Settings, moves: list[OffsetMove]) -> None:
    """Commit the target offsets for the live group; refused while any of its workers runs, because
    Kafka only lets an empty group's offsets be set from outside (and a running worker would overwrite
    them at its next commit)."""
    members = await group_members(settings)
    if members:
        raise RewindError(
            f"consumer group {settings.worker.app_id} has {members} running member(s); stop the workers, "
            "rewind, then start them again"
        )
    consumer = AIOKafkaConsumer(
        **client_options(settings.kafka), group_id=settings.worker.app_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign([move.partition for move in moves])
        await consumer.commit({move.partition: OffsetAndMetadata(move.target, "") for move in moves})
    finally:
        await consumer.stop()
