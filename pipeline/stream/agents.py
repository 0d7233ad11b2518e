"""The agents: each only moves records between topics and calls a pure stage."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

from pipeline.dedup.exact import judge_exact
from pipeline.extract.extractor import Skipped
from pipeline.extract.pool import ExtractionPool, ExtractionTimeoutError, ExtractorCrashError, SharedPool
from pipeline.raw.publisher import record_headers
from pipeline.records import Article, EnrichedArticle, RawPage, dumps
from pipeline.sink.sqlite_store import SqliteStore
from pipeline.stream.app import Wiring
from pipeline.stream.dead_letters import dead_letter
from pipeline.stream.decode import InvalidRecordError, decode_record
from pipeline.tag.enrich import enrich_article
from pipeline.tag.taxonomy import load_taxonomy

log = logging.getLogger(__name__)
MAX_RECORD_BYTES = 10 * 1024 * 1024

outcomes: Counter[str] = Counter()


def register_agents(wiring: Wiring) -> None:
    """Attach the extract, enrich and sink agents to the app."""
    app, settings = wiring.app, wiring.settings

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
        record = dead_letter(
            stage=stage,
            reason=reason,
            error=error,
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            key=message.key,
            value=message.value,
            now=wiring.clock(),
            trace_id=_header(message, "trace-id"),
        )
        await wiring.dead_letters.send(
            key=message.key,
            value=dumps(record),
            headers=record_headers("dead_letter.v1", record["trace_id"] or ""),
        )

    pools = SharedPool(
        lambda: ExtractionPool(settings.worker.extraction_processes, settings.worker.extraction_timeout_s)
    )

    # Several actors keep every worker process busy; each handles one page at a time, so a slow page
    # holds up only its own actor (and is cut off at the time limit), never the other partitions.
    @app.agent(wiring.raw_pages, name="extract", concurrency=settings.worker.extraction_processes * 2)
    async def extract(stream: Any) -> None:
        pool = pools.acquire()
        try:
            async for event in stream.events():
                try:
                    page: RawPage = decode_record(
                        event.message.value, "raw_page.v1", wiring.contracts, MAX_RECORD_BYTES
                    )
                except InvalidRecordError as error:
                    await send_dead_letter(event, "extract", error.reason, error.detail)
                    continue
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
                if isinstance(result, Skipped):
                    outcomes[f"skipped:{result.reason}"] += 1
                    log.info("skipped %s: %s %s", page["url"], result.reason, result.detail)
                    continue
                outcomes["extracted"] += 1
                await wiring.articles.send(
                    key=result["content_hash"].encode(),
                    value=dumps(result),
                    headers=record_headers("article.v1", result["trace_id"]),
                )
        finally:
            pools.release()

    taxonomy = load_taxonomy(settings.tagging.taxonomy_file)

    @app.agent(wiring.articles, name="enrich")
    async def enrich(stream: Any) -> None:
        async for event in stream.events():
            try:
                article: Article = decode_record(
                    event.message.value, "article.v1", wiring.contracts, MAX_RECORD_BYTES
                )
            except InvalidRecordError as error:
                await send_dead_letter(event, "enrich", error.reason, error.detail)
                continue
            decision = judge_exact(article, wiring.first_seen.get(article["content_hash"]))
            if decision.verdict["method"] == "exact":
                outcomes["dropped:exact-duplicate"] += 1
                log.info("exact duplicate %s of %s dropped", article["url"], decision.verdict["duplicate_of"])
                continue
            if decision.remember is not None:
                wiring.first_seen[article["content_hash"]] = decision.remember
            if decision.retract is not None:
                # The earlier copy turned out not to be canonical: a tombstone removes it downstream.
                outcomes["retracted:exact-duplicate"] += 1
                await wiring.enriched.send(key=decision.retract.encode(), value=None)
            enriched = enrich_article(article, decision.verdict, taxonomy, wiring.clock())
            outcomes["enriched"] += 1
            await wiring.enriched.send(
                key=enriched["id"].encode(),
                value=dumps(enriched),
                headers=record_headers("enriched_article.v1", enriched["trace_id"]),
            )

    @app.agent(wiring.enriched, name="sink")
    async def sink(stream: Any) -> None:
        store = SqliteStore(settings.store.sqlite_path)
        try:
            async for events in stream.take_events(
                settings.store.batch_size, within=settings.store.batch_window_s
            ):
                batch: list[EnrichedArticle] = []
                retracted: list[str] = []
                for event in events:
                    if event.message.value is None and event.message.key is not None:
                        retracted.append(event.message.key.decode())
                        continue
                    try:
                        batch.append(
                            decode_record(
                                event.message.value, "enriched_article.v1", wiring.contracts, MAX_RECORD_BYTES
                            )
                        )
                    except InvalidRecordError as error:
                        await send_dead_letter(event, "sink", error.reason, error.detail)
                if batch or retracted:
                    await asyncio.to_thread(store.apply, batch, retracted)
                    outcomes["stored"] += len(batch)
        finally:
            store.close()


def _header(message: Any, name: str) -> str | None:
    for key, value in message.headers or ():
        if key == name:
            return bytes(value).decode("utf-8", errors="replace")
    return None
