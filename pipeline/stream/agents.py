"""The agents: each only moves records between topics and calls a pure stage."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from pipeline.contracts import ContractError
from pipeline.dedup.index import (
    BandRecord,
    PendingJoin,
    Settled,
    absorb,
    band_members,
    band_records,
    bands_by_partition,
    canonical_message,
    corrected,
    match_members,
    new_pending,
    settled,
    verdict_if_complete,
)
from pipeline.dedup.near import checked_fingerprint, fingerprint_from_header, fingerprint_header
from pipeline.dedup.state import (
    SweepResult,
    bucket_members,
    encode_signature,
    legacy_signatures,
    signature_reader,
    stored_bucket,
    stored_signature_of,
    swept_buckets,
    swept_signatures,
)
from pipeline.extract.extractor import Skipped
from pipeline.extract.pool import (
    ExtractionPool,
    ExtractionTimeoutError,
    ExtractorCrashError,
    SharedPool,
    extract_with_fingerprint,
)
from pipeline.ops.logs import current_trace_id
from pipeline.ops.metrics import EXTRACT_SECONDS, watch_outcomes
from pipeline.raw.publisher import record_headers
from pipeline.records import Article, EnrichedArticle, RawPage, dumps
from pipeline.sink.service import sink_items
from pipeline.sink.writer import SinkWriter, write_until_stored
from pipeline.stream.app import Wiring, rocksdb_memory, table_slice
from pipeline.stream.dead_letters import dead_letter_of
from pipeline.stream.decode import InvalidRecordError, decode_record
from pipeline.stream.rewind import register_rewind
from pipeline.stream.web import register_web, worker_topics
from pipeline.tag.enrich import enrich_article
from pipeline.tag.reload import TaxonomyReloader

log = logging.getLogger(__name__)
MAX_RECORD_BYTES = 10 * 1024 * 1024
# Articles whose settled record was sent again after a crash, remembered in memory to send it once.
MAX_RESENT_REMEMBERED = 100_000
# On article records from the extract agent: the text's MinHash, computed in the extraction process.
FINGERPRINT_HEADER = "fingerprint"

outcomes: Counter[str] = Counter()


def register_agents(wiring: Wiring) -> None:
    """Attach the extract, enrich and sink agents to the app, and its web pages."""
    app, settings = wiring.app, wiring.settings
    watch_outcomes("worker", outcomes, lambda: rocksdb_memory(settings))
    register_web(wiring)
    register_rewind(wiring, worker_topics(wiring), outcomes)

    async def send_dead_letter(event: Any, stage: str, reason: str, error: str) -> None:
        message = event.message
        outcomes[f"dead-letter:{stage}:{reason}"] += 1
        log.warning(
            "dead-letter %s/%s at %s[%s]@%s: %s",
            stage,
            reason,
            message.topic,
            message.partition,
            message.offset,
            error,
        )
        record = dead_letter_of(
            message,
            stage=stage,
            reason=reason,
            error=error,
            now=wiring.clock(),
            trace_id=_header(message, "trace-id"),
        )
        await wiring.dead_letters.send(
            key=message.key,
            value=dumps(record),
            headers=record_headers("dead_letter.v1", record["trace_id"] or ""),
        )

    pools = SharedPool(
        lambda: ExtractionPool(
            settings.worker.extraction_processes,
            settings.worker.extraction_timeout_s,
            extract_with_fingerprint,
        )
    )

    async def valid_or_dead_letter(event: Any, schema: str, stage: str) -> Any:
        """The event's record if it meets its contract; otherwise it is dead-lettered and None returned."""
        try:
            return decode_record(event.message.value, schema, wiring.contracts, MAX_RECORD_BYTES)
        except InvalidRecordError as error:
            await send_dead_letter(event, stage, error.reason, error.detail)
            return None

    # Several actors keep every worker process busy; each handles one page at a time, so a slow page
    # holds up only its own actor (and is cut off at the time limit), never the other partitions.
    @app.agent(wiring.raw_pages, name="extract", concurrency=settings.worker.extraction_processes * 2)
    async def extract(stream: Any) -> None:
        pool = pools.acquire()
        try:
            async for event in stream.events():
                page: RawPage | None = await valid_or_dead_letter(event, "raw_page.v1", "extract")
                if page is None:
                    continue
                current_trace_id.set(page["trace_id"])
                started = time.perf_counter()
                try:
                    result = await pool.extract(page)
                except ExtractionTimeoutError as error:
                    await send_dead_letter(event, "extract", "timeout", str(error))
                    continue
                except ExtractorCrashError as error:
                    await send_dead_letter(event, "extract", "extractor-crash", str(error))
                    continue
                except Exception as error:
                    await send_dead_letter(event, "extract", "extract-error", repr(error))
                    continue
                EXTRACT_SECONDS.observe(time.perf_counter() - started)
                if isinstance(result, Skipped):
                    outcomes[f"skipped:{result.reason}"] += 1
                    log.info("skipped %s: %s %s", page["url"], result.reason, result.detail)
                    continue
                article, article_fingerprint = result
                outcomes["extracted"] += 1
                await wiring.articles.send(
                    key=article["content_hash"].encode(),
                    value=dumps(article),
                    headers=[
                        *record_headers("article.v1", article["trace_id"]),
                        (FINGERPRINT_HEADER, fingerprint_header(article_fingerprint)),
                    ],
                )
        finally:
            pools.release()

    taxonomy = TaxonomyReloader(settings.tagging.taxonomy_file)
    if settings.tagging.reload_interval_s > 0:

        @app.timer(settings.tagging.reload_interval_s)  # type: ignore[untyped-decorator]
        async def reload_taxonomy() -> None:
            if taxonomy.refresh():
                outcomes["taxonomy:reloaded"] += 1
            elif taxonomy.last_error is not None:
                outcomes["taxonomy:rejected"] += 1

    window_s = settings.dedup.window_days * 86400.0
    watermark = [0.0]  # the newest event time this worker has indexed
    settle_s = settings.dedup.settle_window_s

    @app.agent(wiring.articles, name="fingerprint")
    async def fingerprint_articles(stream: Any) -> None:
        async for event in stream.events():
            article: Article | None = await valid_or_dead_letter(event, "article.v1", "fingerprint")
            if article is None:
                continue
            carried = fingerprint_from_header(_header_bytes(event.message, FINGERPRINT_HEADER))
            # Articles from `newsfeed ingest` or a replay come without one: computed here then.
            outcomes["fingerprint:carried" if carried is not None else "fingerprint:computed"] += 1
            rank, bands = band_records(article, carried)
            article_key = article["id"].encode()
            await wiring.dedup_join.send(
                key=article_key, value=dumps({"kind": "article", "article": article, "rank": rank})
            )
            # The partition is set explicitly: the bucket table's keys in `keys` live on it.
            for partition, band_key, record in bands_by_partition(bands, settings.topics.partitions):
                await wiring.dedup_bands.send(key=band_key.encode(), value=dumps(record), partition=partition)

    @app.agent(wiring.dedup_bands, name="band-index")
    async def band_index(stream: Any) -> None:
        async for event in stream.events():
            incoming: BandRecord | None = await valid_or_dead_letter(event, "dedup_band.v1", "band-index")
            if incoming is None:
                continue
            if checked_fingerprint(incoming["sig"], incoming["n"]) is None:
                await send_dead_letter(event, "band-index", "schema", "sig is not a MinHash signature")
                continue
            watermark[0] = max(watermark[0], incoming["t"])
            mine = stored_signature_of(incoming["sig"], incoming["n"], incoming["t"])
            # Once per article and partition: this partition's buckets keep only its rank, time and hash.
            wiring.signatures[incoming["id"]] = encode_signature(mine)
            signature_of = signature_reader(wiring.signatures.get, {incoming["id"]: mine})
            found: list[dict[str, Any]] = []
            bands: list[int] = []
            for key, single in band_members(incoming):
                bucket = key or event.message.key.decode()
                stored = wiring.band_buckets.get(bucket)
                for article_id, signature in legacy_signatures(stored).items():
                    wiring.signatures[article_id] = encode_signature(signature)
                matches, members = match_members(
                    bucket_members(stored),
                    single,
                    mine,
                    signature_of,
                    window_s=window_s,
                    max_entries=settings.dedup.max_bucket_entries,
                )
                wiring.band_buckets[bucket] = stored_bucket(members)
                found.extend(matches)
                bands.append(single["band"])
            await wiring.dedup_join.send(
                key=incoming["id"].encode(),
                value=dumps({"kind": "bands", "bands": bands, "matches": found}),
            )
            sweep_slice(event.message.partition)

    # A sweep in progress, per partition: for each table not yet done, the last key swept (None: none yet).
    sweeps: dict[int, dict[str, str | None]] = {}
    sweepers: dict[str, tuple[Any, Callable[[Any, float], SweepResult]]] = {
        "buckets": (wiring.band_buckets, swept_buckets),
        "signatures": (wiring.signatures, swept_signatures),
    }

    def sweep_slice(partition: int) -> None:
        """Carry this partition's sweep, if one is running, a slice further."""
        cursors = sweeps.get(partition)
        if cursors is None:
            return
        horizon = watermark[0] - window_s
        batch = settings.dedup.bucket_sweep_batch
        for name in list(cursors):
            table, sweep = sweepers[name]
            entries = table_slice(table, partition, cursors[name], batch)
            result = sweep(entries, horizon)
            for key, kept in result["rewrite"].items():
                table[key] = kept
            for key in result["delete"]:
                table.pop(key, None)
            outcomes[f"dedup:expired-{name}"] += len(result["rewrite"]) + len(result["delete"])
            if len(entries) < batch:
                del cursors[name]
            else:
                cursors[name] = entries[-1][0]
        if not cursors:
            del sweeps[partition]

    # A sweep of settled entries in progress, per partition: the last key swept (None: none yet).
    settled_sweeps: dict[int, str | None] = {}

    def forget_settled_slice(partition: int) -> None:
        """Carry this partition's sweep of settled articles a slice further, if one is running."""
        if partition not in settled_sweeps:
            return
        batch = settings.dedup.bucket_sweep_batch
        entries = table_slice(wiring.settled, partition, settled_sweeps[partition], batch)
        now = wiring.clock().timestamp()
        for key, entry in entries:
            if entry is not None and entry["expires"] < now:
                wiring.settled.pop(key, None)
                outcomes["dedup:forgotten-settled"] += 1
        if len(entries) < batch:
            del settled_sweeps[partition]
        else:
            settled_sweeps[partition] = entries[-1][0]

    @app.agent(wiring.dedup_join, name="join")
    async def join(stream: Any) -> None:
        async for event in stream.events():
            forget_settled_slice(event.message.partition)
            message = await valid_join_message(event)
            if message is None:
                continue
            article_id = event.message.key.decode()
            stored = wiring.pending_joins.get(article_id)
            if message["kind"] == "canonical":
                if await correct(article_id, message):
                    continue
                if stored is None:
                    # Neither settled nor on its way: too late to correct (see dedup.settle_window_s).
                    outcomes["dedup:correction-too-late"] += 1
                    continue
            elif stored is None and await resent_if_redelivered(article_id, message):
                continue
            if message["kind"] == "article":
                # The article is written once; only the small band bookkeeping is rewritten per band.
                wiring.pending_articles[article_id] = message
                message = {"kind": "band-less"}
            pending: PendingJoin = absorb(stored or new_pending(), message)
            arrived = wiring.pending_articles.get(article_id)
            if arrived is not None:
                pending["article"], pending["rank"] = arrived["article"], arrived["rank"]
            verdict = verdict_if_complete(pending)
            if verdict is None:
                wiring.pending_joins[article_id] = PendingJoin(**{**pending, "article": None})
                continue
            article = pending["article"]
            assert article is not None  # verdict_if_complete returns None without one
            enriched = enrich_article(article, verdict, taxonomy.current, wiring.clock())
            outcomes[f"dedup:{verdict['method']}"] += 1
            outcomes.update(f"topic:{tag['id']}" for tag in enriched["topics"])
            canonical_rank = (
                pending["rank"] if verdict["duplicate_of"] is None else _rank_of(pending, verdict)
            )
            entry = settled(enriched, pending, canonical_rank, wiring.clock().timestamp() + settle_s)
            # Settled before the pending state goes, in the changelogs' order too: a worker that takes over
            # after a crash and meets this article's messages again finds it there (`resent_if_redelivered`).
            if settle_s > 0:
                wiring.settled[article_id] = entry
            wiring.pending_joins.pop(article_id, None)
            wiring.pending_articles.pop(article_id, None)
            await send_enriched(enriched)
            if verdict["duplicate_of"] is None:
                await tell_copies(enriched, pending["rank"], entry["later"], pending)

    async def valid_join_message(event: Any) -> dict[str, Any] | None:
        """The join message if it is one (an article it brings meets its own contract, and the key is the
        article id); otherwise it is dead-lettered and None returned."""
        message: dict[str, Any] | None = await valid_or_dead_letter(event, "dedup_join.v1", "join")
        if message is None:
            return None
        if not _is_article_id(event.message.key):
            await send_dead_letter(event, "join", "schema", "the key is not an article id")
            return None
        if message["kind"] == "article":
            try:
                wiring.contracts.validate(message.get("article"), "article.v1")
            except ContractError as error:
                await send_dead_letter(event, "join", "schema", str(error))
                return None
        return message

    resent: set[str] = set()

    async def resent_if_redelivered(article_id: str, message: dict[str, Any]) -> bool:
        """Send an article's settled record again when one of its messages comes back with no join state.

        That happens after a worker dies: its table writes reach the changelogs as they are made, its
        input offsets only at the next commit, so the worker that takes over restores the article as
        settled and then meets messages it had already joined. Without the article message (consumed
        before the crash) they would wait forever; the record is sent again instead (the enriched topic
        and the stores keep the latest per article id). An article message of another fetch is new work.
        """
        entry: Settled | None = wiring.settled.get(article_id)
        if entry is None:
            return False
        record = entry["record"]
        arrived = wiring.pending_articles.get(article_id)
        article = message["article"] if message["kind"] == "article" else arrived and arrived["article"]
        if article and (article["fetched_at"], article["content_hash"]) != (
            record["fetched_at"],
            record["content_hash"],
        ):
            return False
        if arrived is not None:
            wiring.pending_articles.pop(article_id, None)  # left over by the crash
        # Once per article and process: each of the article's redelivered messages would send it again.
        if article_id not in resent:
            if len(resent) >= MAX_RESENT_REMEMBERED:
                resent.clear()
            resent.add(article_id)
            outcomes["dedup:redelivered"] += 1
            await send_enriched(record)
        return True

    async def send_enriched(enriched: EnrichedArticle) -> None:
        await wiring.enriched.send(
            key=enriched["id"].encode(),
            value=dumps(enriched),
            headers=record_headers("enriched_article.v1", enriched["trace_id"]),
        )

    async def tell_copies(
        record: EnrichedArticle, rank: str, copies: list[str], pending: PendingJoin
    ) -> None:
        """A canonical copy that arrived after its copies were published re-points them (and theirs)."""
        for copy_id in copies:
            similarity = float(pending["matches"].get(copy_id, {}).get("similarity", 1.0))
            await wiring.dedup_join.send(
                key=copy_id.encode(), value=dumps(canonical_message(record, rank, similarity))
            )

    async def correct(article_id: str, message: dict[str, Any]) -> bool:
        """Apply a canonical-copy message to a settled article; False when it is not settled here."""
        entry: Settled | None = wiring.settled.get(article_id)
        if entry is None:
            return False
        updated = corrected(entry, message["match"])
        if updated is not None:
            outcomes["dedup:corrected"] += 1
            await send_enriched(updated)
            entry["record"], entry["canonical_rank"] = updated, message["match"]["rank"]
            wiring.settled[article_id] = entry
            for copy_id in entry["later"]:
                await wiring.dedup_join.send(key=copy_id.encode(), value=dumps(message))
        return True

    @app.timer(settings.dedup.bucket_sweep_interval_s)  # type: ignore[untyped-decorator]
    async def expire_bucket_members() -> None:
        """Start a sweep of every partition's buckets and signatures older than the window (members of
        buckets no new article has touched since). The band-index agent carries it out, a slice per band
        message: Faust writes a table only while an event is processed, and on that event's partition."""
        if not watermark[0]:
            return
        for partition in range(settings.topics.partitions):
            sweeps.setdefault(partition, {"buckets": None, "signatures": None})

    @app.timer(settings.dedup.sweep_interval_s)  # type: ignore[untyped-decorator]
    async def forget_settled() -> None:
        """Start a sweep of settled articles past their correction window on every partition; the join
        agent carries it out a slice per message (a table is written only while an event is processed)."""
        for partition in range(settings.topics.partitions):
            settled_sweeps.setdefault(partition, None)

    if not settings.store.sink_in_worker:
        return  # a separate `newsfeed sink` process writes the stores

    @app.agent(wiring.enriched, name="sink")
    async def sink(stream: Any) -> None:
        writer = await asyncio.to_thread(SinkWriter, settings, wiring.clock)
        try:
            async for events in stream.take_events(
                settings.store.batch_size, within=settings.store.batch_window_s
            ):
                items, invalid = sink_items([event.message for event in events], wiring.contracts)
                for message, error in invalid:
                    event = next(event for event in events if event.message is message)
                    await send_dead_letter(event, "sink", error.reason, error.detail)
                if items:
                    # No stop event: on shutdown Faust cancels the agent, ending the retries.
                    outcomes["stored"] += await write_until_stored(writer, items) or 0
        finally:
            writer.close()


def _is_article_id(key: bytes | None) -> bool:
    """A join message's key: an article id, so present and text."""
    if not key:
        return False
    try:
        bytes(key).decode()
    except UnicodeDecodeError:
        return False
    return True


def _header_bytes(message: Any, name: str) -> bytes | None:
    for key, value in message.headers or ():
        if key == name:
            return bytes(value)
    return None


def _header(message: Any, name: str) -> str | None:
    value = _header_bytes(message, name)
    return None if value is None else value.decode("utf-8", errors="replace")


def _rank_of(pending: PendingJoin, verdict: Any) -> str:
    match = pending["matches"].get(verdict["duplicate_of"])
    return str(match["rank"]) if match else pending["rank"]
