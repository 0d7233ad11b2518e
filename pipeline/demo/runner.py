"""`newsfeed demo`: the whole pipeline once, on the bundled news site, with its records printed."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import TextIO

import orjson

from pipeline.crawl.service import crawl
from pipeline.demo.content import ARTICLES, SEED_ARTICLE, SITES
from pipeline.demo.site import serve_site
from pipeline.ops.broker import BrokerError, LocalBroker
from pipeline.ops.isolated import (
    delete_topics,
    isolated_overrides,
    start_worker,
    stop_process,
    with_overrides,
)
from pipeline.ops.lag import wait_until_drained
from pipeline.ops.topics import create_topics
from pipeline.records import EnrichedArticle
from pipeline.settings import Settings
from pipeline.sink.sqlite_store import SqliteStore

# Every page comes out; a syndicated copy carries dedup.duplicate_of pointing at the canonical copy.
EXPECTED_RECORDS = len(ARTICLES)


def run_demo(settings: Settings, output: Path | None, timeout_s: float, out: TextIO = sys.stdout) -> int:
    """Start the broker if needed, run crawl → Kafka → worker → SQLite, print what came out."""
    try:
        LocalBroker(settings.broker).start()
    except BrokerError as error:
        print(f"newsfeed demo: {error}", file=sys.stderr)
        return 1
    run_id = f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
    state_dir = settings.broker.state_dir.parent / "demo" / run_id
    overrides = isolated_overrides(run_id, state_dir, partitions=4)
    overrides["kafka"] = {"bootstrap_servers": f"{settings.broker.host}:{settings.broker.port}"}
    # The bundled site runs on loopback, which the crawler's SSRF guard refuses unless allowed.
    overrides["crawl"] |= {"allowed_private_hosts": ["127.0.0.1"], "min_host_delay_s": 0.05}
    demo_settings = with_overrides(settings, overrides)
    records = asyncio.run(_run(demo_settings, overrides, state_dir, timeout_s))
    _print_records(records, out)
    if output is not None:
        output.write_bytes(b"".join(orjson.dumps(record) + b"\n" for record in records))
        print(f"\nwrote {len(records)} enriched records to {output}", file=out)
    if len(records) < EXPECTED_RECORDS:
        print(
            f"newsfeed demo: only {len(records)} of {EXPECTED_RECORDS} records arrived; "
            f"see {state_dir / 'worker.log'}",
            file=sys.stderr,
        )
        return 1
    return 0


async def _run(
    settings: Settings, overrides: dict[str, object], state_dir: Path, timeout_s: float
) -> list[EnrichedArticle]:
    await create_topics(settings)
    worker = start_worker(overrides, state_dir / "worker.log")
    try:
        async with serve_site() as base_url:
            feeds = [f"{base_url}{site.feed_path}" for site in SITES]
            counters = await crawl(settings, feeds, once=True)
            print(f"crawled {len(feeds)} feeds: {dict(counters.outcomes)}")
            await wait_until_drained(settings, timeout_s)
            return await asyncio.to_thread(_stored_records, settings.store.sqlite_path)
    finally:
        await asyncio.to_thread(stop_process, worker)
        await delete_topics(settings)


def _stored_records(path: Path) -> list[EnrichedArticle]:
    if not path.exists():
        return []
    store = SqliteStore(path)
    try:
        return list(store.articles())
    finally:
        store.close()


def _print_records(records: list[EnrichedArticle], out: TextIO) -> None:
    print(f"\n{len(records)} enriched articles:\n", file=out)
    titles = {record["id"]: record["title"] for record in records}
    for record in records:
        topics = ", ".join(f"{tag['id']} ({tag['score']:.2f})" for tag in record["topics"]) or "-"
        dedup = record["dedup"]
        copy_of = titles.get(dedup["duplicate_of"] or "")
        cluster = (
            f"copy of “{copy_of}” ({dedup['method']})" if copy_of else f"cluster={dedup['cluster_id'][:12]}"
        )
        print(
            f"* {record['title']}\n    {record['url']}\n    site={record['site_name']} "
            f"published={record['published']} topics={topics} {cluster}",
            file=out,
        )
    for record in sorted(records, key=lambda record: record["title"] != SEED_ARTICLE.title):
        if record["topics"]:
            shown = dict(record, text=record["text"][:300] + "…")
            print("\nOne enriched record in full (text shortened):", file=out)
            print(orjson.dumps(shown, option=orjson.OPT_INDENT_2).decode(), file=out)
            break
