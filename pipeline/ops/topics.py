"""Create and describe the catalogue's topics on a cluster with their declared settings."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from pipeline.contracts import TopicSpec, contracts_for
from pipeline.ops.kafka import client_options
from pipeline.settings import Settings


class TopicCreationError(RuntimeError):
    """The cluster refused to create a catalogue topic."""


@dataclass(frozen=True)
class ResolvedTopic:
    """A catalogue entry with the name and partitions this deployment uses."""

    spec: TopicSpec
    name: str
    partitions: int


def resolved_topics(settings: Settings) -> list[ResolvedTopic]:
    topics = settings.topics
    return [
        ResolvedTopic(spec, getattr(topics, spec.setting), spec.partitions or topics.partitions)
        for spec in contracts_for(settings.schemas_dir).catalogue()
    ]


@contextlib.asynccontextmanager
async def admin_client(settings: Settings) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(**client_options(settings.kafka))
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


async def create_topics(settings: Settings) -> list[str]:
    """Create every missing catalogue topic; returns the names that were created.

    Creation is attempted for every topic and "already exists" counts as success, because the cluster's
    metadata as seen by a fresh client can lag a creation made a moment ago.
    """
    created = []
    async with admin_client(settings) as admin:
        for topic in resolved_topics(settings):
            new_topic = NewTopic(
                topic.name,
                num_partitions=topic.partitions,
                replication_factor=settings.topics.replication_factor,
                topic_configs=dict(topic.spec.config),
            )
            response = await admin.create_topics([new_topic])
            for name, error_code, *message in response.topic_errors:
                if error_code == 0:
                    created.append(name)
                elif error_code != TopicAlreadyExistsError.errno:
                    raise TopicCreationError(f"creating {name} failed (Kafka error {error_code}): {message}")
    return created


async def describe_topics(settings: Settings) -> list[dict[str, object]]:
    """Partitions of each catalogue topic as the cluster sees it (asked per topic, so a topic created a
    moment ago is not reported missing from a stale topic list)."""
    wanted = resolved_topics(settings)
    async with admin_client(settings) as admin:
        described = {item["topic"]: item for item in await admin.describe_topics([t.name for t in wanted])}
    rows: list[dict[str, object]] = []
    for topic in wanted:
        info = described.get(topic.name)
        exists = info is not None and info.get("error_code", 0) == 0
        rows.append(
            {
                "name": topic.name,
                "exists": exists,
                "partitions": len(info["partitions"]) if info and exists else 0,
                "declared_partitions": topic.partitions,
                "schema": topic.spec.schema,
                "key": topic.spec.key,
            }
        )
    return rows
