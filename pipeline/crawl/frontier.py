"""The frontier: discovered URLs on a topic keyed by host, so each host belongs to one crawler process."""

from __future__ import annotations

from typing import TypedDict
from urllib.parse import urlsplit

from aiokafka.partitioner import DefaultPartitioner


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
