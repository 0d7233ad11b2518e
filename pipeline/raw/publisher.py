"""Publish raw pages to the raw-pages topic; a page counts as done only once the broker acknowledged it."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from pipeline.ops.kafka import client_options
from pipeline.settings import Settings

RAW_PAGE_SCHEMA = "raw_page.v1"
MAX_REQUEST_BYTES = 10 * 1024 * 1024
PRODUCER_BATCH_BYTES = 1024 * 1024


def record_headers(schema: str, trace_id: str) -> list[tuple[str, bytes]]:
    """Headers every record carries: its schema and the trace id that follows the article."""
    return [("schema", schema.encode()), ("trace-id", trace_id.encode())]


def reliable_producer(settings: Settings) -> AIOKafkaProducer:
    """The process's producer: every write acknowledged by all in-sync replicas, no duplicates on retry."""
    return AIOKafkaProducer(
        **client_options(settings.kafka),
        acks="all",
        enable_idempotence=True,
        compression_type="zstd",
        max_request_size=MAX_REQUEST_BYTES,
        # aiokafka's default 16 KiB batch is smaller than one page, so each round trip to the broker
        # would carry one page per partition; 1 MiB batches carry dozens.
        max_batch_size=PRODUCER_BATCH_BYTES,
        linger_ms=5,
    )
