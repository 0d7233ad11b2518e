"""Build the Faust app: topics from settings, the dedup table, and the agents registered on it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import faust

from pipeline.clock import utc_now
from pipeline.contracts import Contracts, contracts_for
from pipeline.settings import Settings


@dataclass
class Wiring:
    """Everything an agent needs, built once per worker."""

    app: faust.App
    settings: Settings
    contracts: Contracts
    clock: Callable[[], datetime]
    raw_pages: Any
    articles: Any
    dedup_bands: Any
    dedup_join: Any
    enriched: Any
    dead_letters: Any
    band_buckets: Any
    pending_joins: Any
    pending_articles: Any
    settled: Any


def faust_broker_url(bootstrap_servers: str) -> str:
    return ";".join(f"kafka://{server.strip()}" for server in bootstrap_servers.split(","))


def build_app(settings: Settings, clock: Callable[[], datetime] = utc_now) -> Wiring:
    """A Faust app with the pipeline's agents; nothing starts until a Worker runs it."""
    app = faust.App(
        settings.worker.app_id,
        broker=faust_broker_url(settings.kafka.bootstrap_servers),
        broker_credentials=_credentials(settings),
        store="rocksdb://",
        datadir=str(settings.worker.data_dir),
        topic_partitions=settings.topics.partitions,
        topic_replication_factor=settings.topics.replication_factor,
        producer_acks=-1,
        producer_compression_type="zstd",
        producer_max_request_size=10 * 1024 * 1024,
        consumer_auto_offset_reset="earliest",
        web_enabled=settings.worker.web_enabled,
        web_port=settings.worker.web_port,
        web_host=settings.worker.web_host,
        web_bind=settings.worker.web_host,
    )
    topics = settings.topics

    def topic(name: str, partitions: int | None = None) -> Any:
        return app.topic(name, key_serializer="raw", value_serializer="raw", partitions=partitions)

    def json_table(name: str) -> Any:
        return app.Table(name, default=None, partitions=topics.partitions, key_type=str)

    wiring = Wiring(
        app=app,
        settings=settings,
        contracts=contracts_for(settings.schemas_dir),
        clock=clock,
        raw_pages=topic(topics.raw_pages),
        articles=topic(topics.articles),
        dedup_bands=topic(topics.dedup_bands),
        dedup_join=topic(topics.dedup_join),
        enriched=topic(topics.enriched),
        dead_letters=topic(topics.dead_letter, partitions=1),
        band_buckets=json_table("dedup-band-buckets"),
        pending_joins=json_table("dedup-pending-joins"),
        pending_articles=json_table("dedup-pending-articles"),
        settled=json_table("dedup-settled"),
    )
    from pipeline.stream.agents import register_agents  # noqa: PLC0415 - agents need the finished wiring

    register_agents(wiring)
    return wiring


def _credentials(settings: Settings) -> Any:
    kafka = settings.kafka
    if not kafka.security_protocol.startswith("SASL"):
        return (
            faust.SSLCredentials(cafile=str(kafka.ssl_cafile)) if kafka.security_protocol == "SSL" else None
        )
    from pipeline.ops.kafka import ssl_context  # noqa: PLC0415

    return faust.SASLCredentials(
        username=kafka.sasl_username,
        password=kafka.sasl_password.get_secret_value() if kafka.sasl_password else None,
        mechanism=kafka.sasl_mechanism or "SCRAM-SHA-512",
        ssl_context=ssl_context(kafka) if kafka.security_protocol == "SASL_SSL" else None,
    )
