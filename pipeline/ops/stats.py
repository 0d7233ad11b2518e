"""`newsfeed stats`: records per topic, lag per consumer group and what the store holds, in one view."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from pipeline.ops.kafka import client_options, topic_partitions
from pipeline.ops.topics import resolved_topics
from pipeline.ops.watchdog import sample_lag
from pipeline.settings import Settings
from pipeline.sink.writer import open_article_store


async def topic_stats(settings: Settings) -> list[dict[str, Any]]:
    consumer = AIOKafkaConsumer(**client_options(settings.kafka), enable_auto_commit=False)
    await consumer.start()
    rows = []
    try:
        for topic in resolved_topics(settings):
            numbers = sorted(await topic_partitions(consumer, topic.name))
            partitions = [TopicPartition(topic.name, number) for number in numbers]
            if not partitions:
                rows.append({"topic": topic.name, "exists": False})
                continue
            starts = await consumer.beginning_offsets(partitions)
            ends = await consumer.end_offsets(partitions)
            rows.append(
                {
                    "topic": topic.name,
                    "exists": True,
                    "partitions": len(partitions),
                    # Offsets, so transaction markers count too: an upper bound on records.
                    "offsets_held": sum(ends[tp] - starts[tp] for tp in partitions),
                    "end_offset_total": sum(ends.values()),
                }
            )
    finally:
        await consumer.stop()
    return rows


async def group_stats(settings: Settings) -> list[dict[str, Any]]:
    topics = settings.topics
    groups = {
        settings.worker.app_id: [
            topics.raw_pages,
            topics.articles,
            topics.dedup_bands,
            topics.dedup_join,
            topics.enriched,
        ],
        settings.store.sink_group_id: [topics.enriched],
        settings.crawl.group_id: [topics.frontier],
    }
    rows = []
    for group, consumed in groups.items():
        samples = await sample_lag(settings, group, consumed)
        committed = [sample for sample in samples if sample.committed is not None]
        rows.append(
            {
                "group": group,
                "lag": sum(sample.lag for sample in committed),
                "partitions_with_commits": len(committed),
                "by_partition": {
                    f"{sample.partition.topic}[{sample.partition.partition}]": sample.lag
                    for sample in committed
                    if sample.lag
                },
            }
        )
    return rows


def store_stats(settings: Settings) -> dict[str, Any]:
    store = open_article_store(settings)
    try:
        topics: dict[str, int] = {}
        duplicates = 0
        clusters: set[str] = set()
        total = 0
        for record in store.articles():
            total += 1
            clusters.add(record["dedup"]["cluster_id"])
            duplicates += record["dedup"]["duplicate_of"] is not None
            for tag in record["topics"]:
                topics[tag["id"]] = topics.get(tag["id"], 0) + 1
    finally:
        store.close()
    return {
        "articles": total,
        "duplicates": duplicates,
        "clusters": len(clusters),
        "topics": dict(sorted(topics.items())),
    }
