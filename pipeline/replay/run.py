"""`newsfeed replay`: read a time range, run the stages over it, write a shadow target or the main store."""

from __future__ import annotations

import re
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TextIO

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from pipeline.clock import Clock, utc_now
from pipeline.contracts import contracts_for
from pipeline.offline import dedup_verdicts, extract_pages
from pipeline.ops.isolated import with_overrides
from pipeline.ops.kafka import client_options
from pipeline.ops.topics import admin_client, resolved_topics
from pipeline.raw.publisher import record_headers, reliable_producer
from pipeline.records import Article, EnrichedArticle, RawPage, dumps
from pipeline.replay.progress import Progress
from pipeline.replay.ranges import RangePlan, resolve_range
from pipeline.settings import Settings
from pipeline.sink.jsonl_store import SinkItem
from pipeline.sink.writer import SinkWriter
from pipeline.stream.decode import InvalidRecordError, decode_record
from pipeline.tag.enrich import enrich_article
from pipeline.tag.taxonomy import load_taxonomy

Source = Literal["raw", "articles"]
MAX_RECORD_BYTES = 10 * 1024 * 1024
READ_CHUNK = 500
WRITE_BATCH = 500
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,40}")


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    start: datetime
    end: datetime | None
    source: Source
    into: str
    main_store: bool = False

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.into):
            raise ValueError(f"--into {self.into!r}: use lower-case letters, digits, '-' and '_' (max 41)")


@dataclass
class ReplayReport:
    topic: str
    target_topic: str
    target_stores: list[str]
    plan: RangePlan | None
    counts: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        records = self.counts["records"]
        return {
            "source_topic": self.topic,
            "from": self.plan.start.isoformat() if self.plan else None,
            "to": self.plan.end.isoformat() if self.plan and self.plan.end else None,
            "partitions": {
                str(span.partition.partition): [span.start, span.end]
                for span in (self.plan.spans if self.plan else [])
            },
            "target_topic": self.target_topic,
            "target_stores": self.target_stores,
            "counts": dict(sorted(self.counts.items())),
            "seconds": round(self.seconds, 3),
            "records_per_s": round(records / self.seconds, 1) if self.seconds else None,
        }


def shadow_topic(settings: Settings, into: str) -> str:
    """`newsfeed.enriched-articles.v1` → `newsfeed.enriched-articles.replay-<into>.v1`."""
    base, _, version = settings.topics.enriched.rpartition(".")
    return (
        f"{base}.replay-{into}.{version}"
        if version.startswith("v")
        else f"{settings.topics.enriched}.replay-{into}"
    )


def shadow_settings(settings: Settings, into: str) -> Settings:
    """The same stores beside the live ones: own SQLite file, JSONL folder and PostgreSQL database."""
    store = settings.store
    overrides: dict[str, Any] = {
        "sqlite_path": str(
            store.sqlite_path.with_name(f"{store.sqlite_path.stem}.replay-{into}{store.sqlite_path.suffix}")
        ),
        "jsonl_dir": str(store.jsonl_dir / f"replay-{into}"),
    }
    if "postgres" in store.backends:
        from pipeline.ops.postgres import store_dsn  # noqa: PLC0415

        overrides["postgres_dsn"] = _ensure_database(store_dsn(settings), f"replay_{into.replace('-', '_')}")
    return with_overrides(settings, {"store": overrides})


def _ensure_database(dsn: str, suffix: str) -> str:
    import psycopg  # noqa: PLC0415
    from psycopg import sql  # noqa: PLC0415

    info = psycopg.conninfo.conninfo_to_dict(dsn)
    name = f"{info.get('dbname') or 'newsfeed'}_{suffix}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return psycopg.conninfo.make_conninfo(dsn, dbname=name)


async def run_replay(
    settings: Settings,
    options: ReplayOptions,
    *,
    clock: Clock = utc_now,
    progress_stream: TextIO = sys.stderr,
) -> ReplayReport:
    """Replay `options`' range of the raw-pages (or articles) topic through the stages."""
    started = time.monotonic()
    topic = settings.topics.raw_pages if options.source == "raw" else settings.topics.articles
    target_topic = shadow_topic(settings, options.into)
    target = settings if options.main_store else shadow_settings(settings, options.into)
    stores = [_store_name(target, backend) for backend in target.store.backends]
    report = ReplayReport(topic, target_topic, stores, None)
    consumer = AIOKafkaConsumer(
        **client_options(settings.kafka),
        # No group at all: it assigns partitions itself and never commits, so the live group's offsets
        # are never touched. A group id would only add aiokafka's coordinator, whose routine can trip
        # on a second assign() (aio-libs/aiokafka#796); the client id names the replay in broker logs.
        client_id=f"{settings.worker.app_id}-replay-{options.into}",
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_partition_fetch_bytes=MAX_RECORD_BYTES + 1024 * 1024,
    )
    await consumer.start()
    try:
        report.plan = plan = await resolve_range(consumer, topic, options.start, options.end)
        if plan.upper_bound == 0:
            report.seconds = time.monotonic() - started
            return report
        messages = await _read(consumer, plan, Progress(plan.upper_bound, progress_stream, label="read"))
    finally:
        await consumer.stop()
    report.counts["records"] = len(messages)
    articles = _articles(messages, options.source, settings, report.counts)
    verdicts = dedup_verdicts(articles)
    taxonomy = load_taxonomy(settings.tagging.taxonomy_file)
    enriched = [enrich_article(article, verdicts[article["id"]], taxonomy, clock()) for article in articles]
    report.counts["enriched"] = len(enriched)
    report.counts["duplicates"] = sum(1 for record in enriched if record["dedup"]["duplicate_of"])
    report.counts.update(f"topic:{tag['id']}" for record in enriched for tag in record["topics"])
    await _publish(settings, target_topic, options.into, enriched)
    _store(target, enriched, target_topic, clock)
    report.seconds = time.monotonic() - started
    return report


async def _read(consumer: AIOKafkaConsumer, plan: RangePlan, progress: Progress) -> list[Any]:
    spans = [span for span in plan.spans if span.size]
    consumer.assign([span.partition for span in spans])
    for span in spans:
        consumer.seek(span.partition, span.start)
    ends = {span.partition: span.end for span in spans}
    remaining = set(ends)
    messages: list[Any] = []
    while remaining:
        batches = await consumer.getmany(*remaining, timeout_ms=1000, max_records=READ_CHUNK)
        for tp, records in batches.items():
            kept = [record for record in records if record.offset < ends[tp]]
            messages.extend(kept)
            progress.advance(len(kept))
        for tp in list(remaining):
            if await consumer.position(tp) >= ends[tp]:
                remaining.discard(tp)
    progress.finish()
    # One order for every run: event time, then partition and offset.
    messages.sort(key=lambda record: (record.timestamp, record.partition, record.offset))
    return messages


def _articles(
    messages: Sequence[Any], source: Source, settings: Settings, counts: Counter[str]
) -> list[Article]:
    contracts = contracts_for(settings.schemas_dir)
    schema = "raw_page.v1" if source == "raw" else "article.v1"
    decoded: list[Any] = []
    for message in messages:
        try:
            decoded.append(decode_record(message.value, schema, contracts, MAX_RECORD_BYTES))
        except InvalidRecordError as error:
            counts[f"invalid:{error.reason}"] += 1
    if source == "articles":
        return _unique(decoded)
    pages: list[RawPage] = decoded
    outcomes = extract_pages(
        pages, settings.worker.extraction_processes, settings.worker.extraction_timeout_s
    )
    articles = []
    for outcome in outcomes:
        if isinstance(outcome, dict):
            articles.append(outcome)
        else:
            counts[f"{outcome.kind}:{outcome.reason}"] += 1
    return _unique(articles)


def _unique(articles: list[Article]) -> list[Article]:
    """A page fetched twice in the range is one article: its latest fetch stands, as in the store."""
    latest: dict[str, Article] = {}
    for article in articles:
        latest[article["id"]] = article
    return list(latest.values())


async def _publish(settings: Settings, topic: str, into: str, records: list[EnrichedArticle]) -> None:
    await _create_like_enriched(settings, topic)
    producer = reliable_producer(settings)
    await producer.start()
    try:
        sent = [
            await producer.send(
                topic,
                dumps(record),
                key=record["id"].encode(),
                headers=[
                    *record_headers("enriched_article.v1", record["trace_id"]),
                    ("replay", into.encode()),
                ],
            )
            for record in records
        ]
        for future in sent:
            await future
    finally:
        await producer.stop()


async def _create_like_enriched(settings: Settings, topic: str) -> None:
    spec = next(resolved for resolved in resolved_topics(settings) if resolved.spec.setting == "enriched")
    async with admin_client(settings) as admin:
        response = await admin.create_topics(
            [
                NewTopic(
                    topic,
                    num_partitions=spec.partitions,
                    replication_factor=settings.topics.replication_factor,
                    topic_configs=dict(spec.spec.config),
                )
            ]
        )
    for name, error_code, *message in response.topic_errors:
        if error_code not in (0, TopicAlreadyExistsError.errno):
            raise RuntimeError(f"creating {name} failed (Kafka error {error_code}): {message}")


def _store(target: Settings, records: list[EnrichedArticle], topic: str, clock: Clock) -> None:
    writer = SinkWriter(target, clock, observe_latency=False)
    try:
        for first in range(0, len(records), WRITE_BATCH):
            batch = records[first : first + WRITE_BATCH]
            # Positions in the replay's own sequence, so a shadow JSONL store is written once per run.
            writer.write([SinkItem(topic, 0, first + n, r["id"], r) for n, r in enumerate(batch)])
    finally:
        writer.close()


def _store_name(settings: Settings, backend: str) -> str:
    if backend == "sqlite":
        return f"sqlite:{settings.store.sqlite_path}"
    if backend == "jsonl":
        return f"jsonl:{settings.store.jsonl_dir}"
    return "postgres"
