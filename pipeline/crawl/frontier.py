"""The frontier: discovered URLs on a topic keyed by host, so each host belongs to one crawler process."""

from __future__ import annotations

import asyncio
from typing import TypedDict
from urllib.parse import urlsplit

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import RecordMetadata

from pipeline.raw.publisher import record_headers
from pipeline.records import dumps

FRONTIER_SCHEMA = "frontier_url.v1"


class FrontierUrl(TypedDict, total=False):
    """A frontier record (frontier_url.v1); `attempt` counts retries of a transient failure."""

    url: str
    host: str
    source: str
    discovered_at: str
    published: str | None
    title: str | None
    attempt: int


def host_of(url: str) -> str:
    """The politeness unit: host and port as written in the canonical URL."""
    return urlsplit(url).netloc.lower()


_partitioner = DefaultPartitioner()


def partition_of(key: str, partitions: list[int]) -> int:
    """The partition Kafka's default partitioner picks for a key (as the producer will)."""
    chosen: int = _partitioner(key.encode(), partitions, partitions)
    return chosen


def frontier_url(
    url: str, source: str, discovered_at: str, published: str | None = None, title: str | None = None
) -> FrontierUrl:
    return FrontierUrl(
        url=url,
        host=host_of(url),
        source=source,
        discovered_at=discovered_at,
        published=published,
        title=title,
    )


async def send_to_frontier(
    producer: AIOKafkaProducer, topic: str, entry: FrontierUrl
) -> asyncio.Future[RecordMetadata]:
    """Queue an entry keyed by its host; await the returned future for the broker's acknowledgement."""
    sent: asyncio.Future[RecordMetadata] = await producer.send(
        topic, key=entry["host"].encode(), value=dumps(entry), headers=record_headers(FRONTIER_SCHEMA, "")
    )
    return sent
