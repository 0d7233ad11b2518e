"""`newsfeed replay`: read a time range, run the stages over it, write a shadow target or the main store."""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TextIO

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from pipeline.archive.reader import OURS, ArchivedPage, Include, TimeRange, read_archive
from pipeline.archive.warc_writer import KafkaPosition
from pipeline.clock import Clock, utc_now
from pipeline.contracts import ContractError, contracts_for
from pipeline.offline import dedup_verdicts, extract_pages
from pipeline.ops.isolated import with_overrides
from pipeline.ops.kafka import client_options
from pipeline.ops.topics import admin_client, resolved_topics
from pipeline.raw.publisher import record_headers, reliable_producer
from pipeline.records import Article, EnrichedArticle, RawPage, dumps
from pipeline.replay.progress import Progress
from pipeline.replay.ranges import RangePlan, ReplayRangeError, RetentionError, resolve_range
from pipeline.settings import Settings
from pipeline.sink.jsonl_store import SinkItem
from pipeline.sink.writer import SinkWriter
from pipeline.stream.decode import InvalidRecordError, decode_record
from pipeline.tag.enrich import enrich_article
from pipeline.tag.taxonomy import load_taxonomy

# raw and articles: the topics; warc: the archive of raw pages (ours, or any crawler's WARC files).
Source = Literal["raw", "articles", "warc"]
log = logging.getLogger(__name__)
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
    # The archive to read with source warc, or to fall back on when the raw topic's retention deleted the
    # range's start (default: the settings' archive.dir).
    archive: Path | None = None

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
    start: datetime | None = None
    end: datetime | None = None
    source: Source = "raw"
    # Set when pages came from the archive: where, and why (for a raw replay: the retention it made up for).
    archive: Path | None = None
    archive_reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        records = self.counts["records"]
        return {
            "source": self.source,
            "source_topic": self.topic,
            "archive": str(self.archive) if self.archive else None,
            "archive_reason": self.archive_reason,
            "from": self.start.isoformat() if self.start else None,
            "to": self.end.isoformat() if self.end else None,
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
    """Replay `options`' range of the raw-pages (or articles) topic, or of the archive, through the stages.

    A raw replay whose range starts before what the topic still holds reads the deleted part from the
    archive when one is configured: per partition, archived pages below the topic's first offset, then the
    topic from there, in the one order of a replay."""
    started = time.monotonic()
    if options.end is not None and options.end <= options.start:
        raise ReplayRangeError(
            f"--to ({options.end.isoformat()}) must be later than --from ({options.start.isoformat()})"
        )
    topic = settings.topics.articles if options.source == "articles" else settings.topics.raw_pages
    archive = options.archive or settings.archive.dir
    target_topic = shadow_topic(settings, options.into)
    target = settings if options.main_store else shadow_settings(settings, options.into)
    stores = [_store_name(target, backend) for backend in target.store.backends]
    report = ReplayReport(topic, target_topic, stores, None, start=options.start, end=options.end)
    report.source = options.source
    if options.source == "warc":
        if archive is None:
            raise ReplayRangeError("--source warc needs --archive DIR (or archive.dir in the settings)")
        if not archive.exists():
            raise ReplayRangeError(f"archive {archive} does not exist")
        report.topic, report.archive = f"archive {archive}", archive
        read = await asyncio.to_thread(read_archive, archive, TimeRange(options.start, options.end))
        report.counts.update(read.counts)
        report.counts["records"] = len(read.pages)
        pages = [item.page for item in _valid(read.pages, settings, report.counts)]
    else:
        pages = await _from_topic(settings, options, report, archive=archive, progress_stream=progress_stream)
    if not report.counts["records"]:
        report.seconds = time.monotonic() - started
        return report
    articles = _articles(pages, options.source, settings, report.counts)
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


Ordered = tuple[tuple[int, int, int, int], Any]


async def _from_topic(
    settings: Settings,
    options: ReplayOptions,
    report: ReplayReport,
    *,
    archive: Path | None,
    progress_stream: TextIO,
) -> list[Any]:
    """The range's records from the topic (and what retention deleted, from the archive), decoded, in
    replay order."""
    topic = report.topic
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
    first_offsets: dict[TopicPartition, int] | None = None
    await consumer.start()
    try:
        try:
            plan = await resolve_range(consumer, topic, options.start, options.end)
        except RetentionError as error:
            if options.source != "raw" or archive is None:
                raise
            report.archive, report.archive_reason = archive, str(error)
            log.warning(
                "%s no longer holds the range's start; reading what was deleted from %s", topic, archive
            )
            plan = await resolve_range(consumer, topic, options.start, options.end, check_retention=False)
            first_offsets = await consumer.beginning_offsets([span.partition for span in plan.spans])
        report.plan = plan
        messages = (
            await _read(consumer, plan, Progress(plan.upper_bound, progress_stream, label="read"))
            if plan.upper_bound
            else []
        )
    finally:
        await consumer.stop()
    report.counts["records"] = report.counts["records:topic"] = len(messages)
    schema = "raw_page.v1" if options.source == "raw" else "article.v1"
    ordered: list[Ordered] = [
        # One order for every run: event time, then partition and offset (as archived pages of ours).
        ((message.timestamp, OURS, message.partition, message.offset), record)
        for message, record in _decoded(messages, schema, settings, report.counts)
    ]
    if first_offsets is not None and archive is not None:
        read = await asyncio.to_thread(
            read_archive,
            archive,
            TimeRange(options.start, options.end),
            include=_deleted_from(topic, first_offsets),
        )
        report.counts.update(read.counts)
        report.counts["records:archive"] = len(read.pages)
        report.counts["records"] += len(read.pages)
        ordered.extend((item.order, item.page) for item in _valid(read.pages, settings, report.counts))
    ordered.sort(key=lambda item: item[0])
    return [record for _, record in ordered]


def _deleted_from(topic: str, first_offsets: dict[TopicPartition, int]) -> Include:
    """Archived pages that the topic no longer holds: below their partition's first offset (or of a
    partition it no longer has), and any other crawler's pages."""

    def deleted(position: KafkaPosition | None) -> bool:
        if position is None:
            return True
        if position.topic != topic:
            return False
        first = first_offsets.get(TopicPartition(topic, position.partition))
        return first is None or position.offset < first

    return deleted


def _valid(pages: list[ArchivedPage], settings: Settings, counts: Counter[str]) -> list[ArchivedPage]:
    contracts = contracts_for(settings.schemas_dir)
    valid = []
    for item in pages:
        try:
            contracts.validate(item.page, "raw_page.v1")
        except ContractError:
            counts["invalid:schema"] += 1
            continue
        valid.append(item)
    return valid


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
    return messages


def _decoded(
    messages: Sequence[Any], schema: str, settings: Settings, counts: Counter[str]
) -> list[tuple[Any, Any]]:
    """(message, record) for each message valid against `schema`; the others are counted."""
    contracts = contracts_for(settings.schemas_dir)
    decoded: list[tuple[Any, Any]] = []
    for message in messages:
        try:
            decoded.append((message, decode_record(message.value, schema, contracts, MAX_RECORD_BYTES)))
        except InvalidRecordError as error:
            counts[f"invalid:{error.reason}"] += 1
    return decoded


def _articles(records: list[Any], source: Source, settings: Settings, counts: Counter[str]) -> list[Article]:
    """Articles from decoded records in replay order: raw pages (topic or archive) go through extraction."""
    if source == "articles":
        return _unique(records)
    pages: list[RawPage] = records
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
