"""Replay rate against the live pipeline's rate on the same raw pages, in the same run.

N generated article pages (15-40 KB, the crawl bench's generator) are published to a raw-pages topic of
the bench's own, with event times spread over the last hours. Then:

1. **live**: `newsfeed worker` (production settings: extraction pool on every core, dedup, tagging,
   SQLite sink) is started on the filled topic; rate = articles / (time from its first enriched article
   to its last), so the worker's start-up is not counted;
2. **replay**: `run_replay` over exactly the same range into a shadow target; rate = records / wall time
   of the whole call (reading, extraction on every core, dedup, tagging, shadow topic and store).

The ratio is replay / live. Nothing is asserted.

    .venv/bin/python -m bench.replay_rate              # 1,000 pages, a minute or two
    .venv/bin/python -m bench.replay_rate --smoke      # 20 pages
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.common import (
    format_table,
    generate_pages,
    machine_info,
    sized_bench_main,
    utc_timestamp,
)
from pipeline.ops.isolated import (
    delete_topics,
    isolated_overrides,
    start_worker,
    stop_process,
    with_overrides,
)
from pipeline.ops.kafka import client_options, cluster_answers
from pipeline.ops.topics import create_topics
from pipeline.records import RawPage, dumps
from pipeline.replay.run import ReplayOptions, run_replay
from pipeline.settings import Settings, load_settings

NAME = "replay_rate"
DEFAULT_PAGES = 1000
SMOKE_PAGES = 20
SEED = 20240502


def raw_pages(count: int, now: datetime) -> list[tuple[datetime, RawPage]]:
    pages = generate_pages(count, SEED)
    dated = []
    for index, page in enumerate(pages):
        html = page.html.decode()
        url = f"http://bench.example{page.path}"
        dated.append(
            (
                now - timedelta(hours=2) + timedelta(seconds=index),
                RawPage(
                    url=url,
                    final_url=url,
                    status=200,
                    headers={"content-type": "text/html; charset=utf-8"},
                    fetched_at=now.isoformat(),
                    source="http://bench.example/sitemap.xml",
                    content_hash="sha256:" + hashlib.sha256(page.html).hexdigest(),
                    html=html,
                    trace_id=uuid.UUID(int=index).hex,
                ),
            )
        )
    return dated


async def publish(settings: Settings, dated: list[tuple[datetime, RawPage]]) -> None:
    producer = AIOKafkaProducer(
        **client_options(settings.kafka),
        acks="all",
        enable_idempotence=True,
        compression_type="zstd",
        max_batch_size=1024 * 1024,
        linger_ms=5,
    )
    await producer.start()
    try:
        sent = [
            await producer.send(
                settings.topics.raw_pages,
                dumps(page),
                key=page["url"].encode(),
                timestamp_ms=int(moment.timestamp() * 1000),
            )
            for moment, page in dated
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def enriched_window(
    settings: Settings, expected: int, worker: Any, quiet_s: float = 20.0, timeout_s: float = 1800.0
) -> tuple[float, float, int]:
    """Follow the enriched topic (a light consumer: no lag queries competing for the CPU) and return the
    monotonic times of the first and of the last new article, and how many distinct articles came; it
    stops at `expected` articles, or after `quiet_s` without a new one."""
    consumer = AIOKafkaConsumer(
        settings.topics.enriched,
        **client_options(settings.kafka),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    await consumer.start()
    seen: set[bytes] = set()
    first = last = 0.0
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and worker.poll() is None and len(seen) < expected:
            batches = await consumer.getmany(timeout_ms=200)
            now = time.monotonic()
            for records in batches.values():
                for record in records:
                    if record.key not in seen:
                        seen.add(record.key)
                        first = first or now
                        last = now
            if seen and now - last > quiet_s:
                break
    finally:
        await consumer.stop()
    return first, last, len(seen)


def live_pass(settings: Settings, overrides: dict[str, Any], work: Path, pages: int) -> dict[str, Any]:
    started = time.monotonic()
    worker = start_worker(overrides, work / "worker.log")
    try:
        first, last, articles = asyncio.run(enriched_window(settings, pages, worker))
        if not articles:
            log = (work / "worker.log").read_text(errors="replace")[-3000:]
            raise SystemExit(f"the worker produced nothing (exit code {worker.poll()}); its log ends:\n{log}")
    finally:
        stop_process(worker)
    seconds = max(last - first, 1e-3)
    return {
        "run": "live worker (first .. last enriched)",
        "records": articles,
        "seconds": round(seconds, 2),
        "records_per_s": round(articles / seconds, 1),
        "start_up_s": round(first - started, 2),
    }


def replay_pass(settings: Settings, start: datetime) -> dict[str, Any]:
    options = ReplayOptions(start, None, "raw", f"bench-{uuid.uuid4().hex[:6]}")
    report = asyncio.run(run_replay(settings, options, progress_stream=io.StringIO()))
    return {
        "run": "replay (whole call)",
        "records": report.counts["records"],
        "enriched": report.counts["enriched"],
        "seconds": round(report.seconds, 2),
        "records_per_s": round(report.counts["records"] / report.seconds, 1),
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    base = load_settings()
    if not asyncio.run(cluster_answers(base.kafka)):
        raise SystemExit("no Kafka broker answers: start it with `.venv/bin/newsfeed broker start`")
    now = datetime.now(UTC)
    dated = raw_pages(args.pages, now)
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as temporary:
        work = Path(temporary)
        run_id = f"bench-replay-{uuid.uuid4().hex[:8]}"
        overrides = isolated_overrides(run_id, work / "state", partitions=8)
        overrides["kafka"] = {"bootstrap_servers": base.kafka.bootstrap_servers}
        settings = with_overrides(base, overrides)
        asyncio.run(create_topics(settings))
        try:
            asyncio.run(publish(settings, dated))
            live = live_pass(settings, overrides, work, args.pages)
            replay = replay_pass(settings, now - timedelta(hours=3))
        finally:
            asyncio.run(delete_topics(settings))
    return {
        "name": NAME,
        "timestamp": utc_timestamp(),
        "smoke": args.smoke,
        "params": {"pages": args.pages, "extraction_processes": base.worker.extraction_processes},
        "runs": [live, replay],
        "ratio_replay_to_live": round(replay["records_per_s"] / live["records_per_s"], 2),
        "machine": machine_info(),
    }


def render(result: dict[str, Any]) -> str:
    table = format_table(
        ["run", "records", "seconds", "records/s"],
        [[r["run"], r["records"], r["seconds"], r["records_per_s"]] for r in result["runs"]],
    )
    live = result["runs"][0]
    return "\n".join(
        [
            f"replay rate vs live: {result['params']['pages']} raw pages, "
            f"{result['params']['extraction_processes']} extraction processes",
            "",
            table,
            "",
            f"replay / live: {result['ratio_replay_to_live']:.2f}   (live worker start-up, not counted: "
            f"{live['start_up_s']} s)",
            "machine: {cores} cores, {cpu}, {python}".format(**result["machine"]),
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    return sized_bench_main(
        NAME,
        __doc__,
        size="pages",
        default=DEFAULT_PAGES,
        smoke=SMOKE_PAGES,
        measure=measure,
        render=render,
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
