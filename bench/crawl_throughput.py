"""Crawler throughput against a bare aiohttp fetch loop over the same local pages, in the same run.

A generated news site (N article pages of 15-40 KB and a sitemap listing them) is served from its own
process on 127.0.0.1. This process then measures, in order:

1. baseline: one aiohttp session GETs every page and reads the body, C requests at a time;
2. crawler: `crawl(settings, [], once=True)` with politeness off and a sources file holding the one
   sitemap, on topics of its own; pages/s = pages fetched and published / wall time of the whole call
   (also shown: from the first page request to the last page published);
3. baseline again.

The ratio is crawler pages/s over the better of the two baselines. The raw-pages topic is read back
(read_committed) to check that it holds every page once. The goal of the issue is a ratio of at least
0.7; it is reported, never asserted. Two reference loops follow, to show where the gap comes from: the
crawler's own fetch() without Kafka, and a bare fetch loop that also publishes every page (acks=all, zstd),
with aiokafka and, when confluent-kafka is installed (`pip install -e '.[bench]'`), with librdkafka.
Everything runs on uvloop, as `newsfeed crawl` does.
CPU seconds of this process, the site's process and the broker are shown for each run.

    .venv/bin/python -m bench.crawl_throughput            # N=2000
    .venv/bin/python -m bench.crawl_throughput --smoke    # N=40, seconds
    .venv/bin/python -m bench.crawl_throughput --profile pyinstrument   # or cprofile
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import importlib.util
import io
import logging
import os
import pstats
import re
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import aiohttp
import uvloop
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

import pipeline.crawl.crawler as crawler_module
import pipeline.crawl.service as service_module
from bench.common import (
    MB,
    PROJECT_DIR,
    RESULTS_DIR,
    CpuMeter,
    LocalSite,
    SiteInfo,
    format_table,
    machine_info,
    utc_timestamp,
    write_results,
)
from pipeline.crawl.counters import CrawlCounters
from pipeline.crawl.fetcher import crawler_session, fetch
from pipeline.crawl.guard import AddressPolicy
from pipeline.ops.broker import LocalBroker
from pipeline.ops.isolated import delete_topics, isolated_overrides, with_overrides
from pipeline.ops.kafka import client_options, cluster_answers
from pipeline.ops.topics import create_topics, resolved_topics
from pipeline.raw.publisher import MAX_REQUEST_BYTES
from pipeline.settings import Settings, load_settings

NAME = "crawl_throughput"
DEFAULT_PAGES = 2000
SMOKE_PAGES = 40
DEFAULT_SEED = 20240501
TARGET_RATIO = 0.7
PARTITIONS = 4
READ_BACK_TIMEOUT_S = 120.0
CPU_COLUMNS = ("bench", "site", "broker")
# aiokafka's default batch (16 KiB) is smaller than a page: one page per batch, one batch per partition
# per produce request.
SINK_BATCH_BYTES = 1024 * 1024


@dataclass
class Run:
    """One measured pass over the site."""

    label: str
    pages: int
    bytes: int
    seconds: float
    errors: int = 0
    cpu_s: dict[str, float] = field(default_factory=dict)  # CPU seconds per process during the run

    @property
    def pages_per_s(self) -> float:
        return self.pages / self.seconds if self.seconds > 0 else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.bytes / MB / self.seconds if self.seconds > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        return asdict(self) | {
            "seconds": round(self.seconds, 3),
            "pages_per_s": round(self.pages_per_s, 1),
            "mb_per_s": round(self.mb_per_s, 2),
        }


@dataclass
class CrawlerRun:
    whole: Run  # the whole crawl() call
    window: Run  # first page request to last page published
    outcomes: dict[str, int] = field(default_factory=dict)


# --- baseline ---------------------------------------------------------------------------------------


class KafkaSink:
    """Publishes each fetched body as the crawler's producers do (acks=all, idempotent, zstd, linger 5 ms)
    but with 1 MiB batches and without transactions or crawl state: a bare fetch-and-publish loop."""

    def __init__(self, settings: Settings) -> None:
        self.producer = AIOKafkaProducer(
            **client_options(settings.kafka),
            acks="all",
            enable_idempotence=True,
            compression_type="zstd",
            max_request_size=MAX_REQUEST_BYTES,
            max_batch_size=SINK_BATCH_BYTES,
            linger_ms=5,
        )
        self.topic = settings.topics.raw_pages
        self._sent: list[asyncio.Future[Any]] = []

    async def put(self, url: str, body: bytes) -> None:
        self._sent.append(await self.producer.send(self.topic, body, key=url.encode()))

    async def flush(self) -> None:
        await asyncio.gather(*self._sent)


async def bare_fetch_loop(
    urls: Sequence[str], concurrency: int, label: str, sink: KafkaSink | LibrdkafkaSink | None = None
) -> Run:
    """GET every URL and read its body with one session, `concurrency` requests at a time (and, with a
    sink, publish every body and wait for the acknowledgements)."""
    semaphore = asyncio.Semaphore(concurrency)
    received = 0
    errors = 0

    async def get(session: aiohttp.ClientSession, url: str) -> None:
        nonlocal received, errors
        async with semaphore, session.get(url) as response:
            body = await response.read()
            if response.status != 200:
                errors += 1
                return
            received += len(body)
        if sink is not None:
            await sink.put(url, body)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        started = time.perf_counter()
        await asyncio.gather(*(get(session, url) for url in urls))
        if sink is not None:
            await sink.flush()
        seconds = time.perf_counter() - started
    return Run(label, len(urls) - errors, received, seconds, errors)


async def fetch_and_publish_loop(urls: Sequence[str], concurrency: int, settings: Settings) -> Run:
    sink = KafkaSink(settings)
    await sink.producer.start()
    try:
        return await bare_fetch_loop(urls, concurrency, "ref: bare fetch + publish (1 MiB batches)", sink)
    finally:
        await sink.producer.stop()


class LibrdkafkaSink:
    """The same bare publishing through librdkafka (confluent-kafka, optional): compression, batching and
    network I/O run in C threads outside the GIL. It shows what a C client changes on this machine."""

    def __init__(self, settings: Settings) -> None:
        from confluent_kafka import Producer  # noqa: PLC0415 - optional reference only

        self.producer = Producer(
            {
                "bootstrap.servers": settings.kafka.bootstrap_servers,
                "acks": "all",
                "enable.idempotence": True,
                "compression.type": "zstd",
                "linger.ms": 5,
                "batch.size": SINK_BATCH_BYTES,
                "message.max.bytes": MAX_REQUEST_BYTES,
            }
        )
        self.topic = settings.topics.raw_pages
        self._sent: list[asyncio.Future[None]] = []
        self._polling = True
        self._poller = threading.Thread(target=self._poll, name="librdkafka-poll", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while self._polling:
            self.producer.poll(0.05)

    async def put(self, url: str, body: bytes) -> None:
        loop = asyncio.get_running_loop()
        acknowledged: asyncio.Future[None] = loop.create_future()

        def delivered(error: Any, _message: Any) -> None:
            outcome = RuntimeError(str(error)) if error is not None else None
            loop.call_soon_threadsafe(_settle, acknowledged, outcome)

        while True:
            try:
                self.producer.produce(self.topic, body, url.encode(), on_delivery=delivered)
                break
            except BufferError:  # librdkafka's local queue is full: let it drain
                await asyncio.sleep(0.001)
        self._sent.append(acknowledged)

    async def flush(self) -> None:
        await asyncio.gather(*self._sent)

    def close(self) -> None:
        self.producer.flush(30)
        self._polling = False
        self._poller.join(5)


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


async def librdkafka_publish_loop(urls: Sequence[str], concurrency: int, settings: Settings) -> Run:
    sink = LibrdkafkaSink(settings)
    try:
        return await bare_fetch_loop(urls, concurrency, "ref: bare fetch + publish (librdkafka)", sink)
    finally:
        sink.close()


def librdkafka_available() -> bool:
    return importlib.util.find_spec("confluent_kafka") is not None


async def fetcher_loop(urls: Sequence[str], concurrency: int, settings: Settings) -> Run:
    """The crawler's fetch layer alone: `pipeline.crawl.fetcher.fetch` in the crawler's session."""
    pages, _, _ = service_module.fetch_policies(settings.crawl)
    guard = AddressPolicy(allowed_hosts=frozenset(settings.crawl.allowed_private_hosts))
    semaphore = asyncio.Semaphore(concurrency)
    received = 0

    async def get(session: aiohttp.ClientSession, url: str) -> None:
        nonlocal received
        async with semaphore:
            result = await fetch(session, url, pages)
        received += len(result.body)

    async with crawler_session(pages, guard, limit=concurrency * 2) as session:
        started = time.perf_counter()
        await asyncio.gather(*(get(session, url) for url in urls))
        seconds = time.perf_counter() - started
    return Run("ref: crawler fetch() only", len(urls), received, seconds)


# --- the crawler ------------------------------------------------------------------------------------


def bench_settings(run_id: str, state_dir: Path, sources_file: Path, concurrency: int) -> Settings:
    overrides = isolated_overrides(run_id, state_dir, partitions=PARTITIONS)
    overrides["crawl"] |= {
        "polite": False,
        "allowed_private_hosts": ["127.0.0.1"],
        "concurrency": concurrency,
        "sources_file": str(sources_file),
        "node_id": "bench",
    }
    return with_overrides(load_settings(), overrides)


def write_sources(path: Path, sitemap_url: str) -> Path:
    path.write_text(
        yaml.safe_dump({"sources": [{"id": "bench-sitemap", "kind": "sitemap", "url": sitemap_url}]})
    )
    return path


async def crawler_pass(settings: Settings, label: str) -> CrawlerRun:
    """One `crawl(..., once=True)`, timing the whole call and the first page request to the last publish."""
    first_request: list[float] = []
    last_published: list[float] = []
    real_fetch = fetch  # the function pipeline.crawl.crawler calls

    async def timed_fetch(*args: Any, **kwargs: Any) -> Any:
        if not first_request:
            first_request.append(time.perf_counter())
        return await real_fetch(*args, **kwargs)

    class TimedCounters(CrawlCounters):
        def record(self, source: str, outcome: str, url: str | None = None) -> None:
            super().record(source, outcome, url)
            if outcome == "fetched":
                last_published[:] = [time.perf_counter()]

    with (
        mock.patch.object(crawler_module, "fetch", timed_fetch),
        mock.patch.object(service_module, "CrawlCounters", TimedCounters),
    ):
        started = time.perf_counter()
        counters = await service_module.crawl(settings, [], once=True)
        seconds = time.perf_counter() - started
    fetched = counters.outcomes.get("fetched", 0)
    failed = sum(count for outcome, count in counters.outcomes.items() if outcome.startswith("failed"))
    whole = Run(f"{label} (whole call)", fetched, counters.fetched_bytes, seconds, failed)
    window_s = last_published[0] - first_request[0] if first_request and last_published else 0.0
    window = Run(f"{label} (1st request..last publish)", fetched, counters.fetched_bytes, window_s, failed)
    return CrawlerRun(whole, window, dict(sorted(counters.outcomes.items())))


async def read_back(settings: Settings) -> tuple[int, set[bytes]]:
    """Every committed record of the raw-pages topic: (records, distinct keys)."""
    topic = settings.topics.raw_pages
    partitions_count = next(t.partitions for t in resolved_topics(settings) if t.name == topic)
    partitions = [TopicPartition(topic, p) for p in range(partitions_count)]
    consumer = AIOKafkaConsumer(
        **client_options(settings.kafka),
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_partition_fetch_bytes=16 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    await consumer.start()
    records = 0
    keys: set[bytes] = set()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)  # the last stable offsets, under read_committed
        deadline = time.monotonic() + READ_BACK_TIMEOUT_S
        remaining = {tp for tp in partitions if ends[tp] > 0}
        while remaining and time.monotonic() < deadline:
            batches = await consumer.getmany(*remaining, timeout_ms=500)
            for batch in batches.values():
                records += len(batch)
                keys.update(record.key for record in batch if record.key is not None)
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return records, keys


# --- profiling --------------------------------------------------------------------------------------


@contextlib.contextmanager
def profiled(kind: str | None, results: Path) -> Iterator[list[str]]:
    """Profile the block with cProfile or pyinstrument (when asked); yields a list that receives the
    report lines."""
    report: list[str] = []
    if kind is None:
        yield report
        return
    results.mkdir(parents=True, exist_ok=True)
    if kind == "pyinstrument":
        try:
            from pyinstrument import Profiler  # noqa: PLC0415 - optional, installed by hand for profiling
        except ImportError:
            raise SystemExit(
                "pyinstrument is not installed; for local profiling: .venv/bin/pip install pyinstrument"
            ) from None

        profiler = Profiler(interval=0.001, async_mode="disabled")
        profiler.start()
        try:
            yield report
        finally:
            session = profiler.stop()
            text = profiler.output_text(unicode=False, color=False, show_all=False)
            (results / f"{NAME}.pyinstrument.txt").write_text(text)
            (results / f"{NAME}.pyinstrument.html").write_text(profiler.output_html())
            report.append(f"pyinstrument call tree: {results / f'{NAME}.pyinstrument.txt'} (and .html)")
            report.extend(_sampled_hot_spots(session.root_frame()))
        return
    profile = cProfile.Profile()
    profile.enable()
    try:
        yield report
    finally:
        profile.disable()
        saved = results / f"{NAME}.prof"
        profile.dump_stats(saved)
        report.extend(_hot_spots(pstats.Stats(str(saved)), saved))


def _hot_spots(stats: pstats.Stats, saved: Path, top: int = 25) -> list[str]:
    lines = [f"cProfile stats: {saved} (open with python -m pstats)"]
    for order, title in (("tottime", "own time"), ("cumulative", "cumulative time")):
        for restriction, where in ((".", "all code"), (str(PROJECT_DIR / "pipeline"), "pipeline/")):
            buffer = io.StringIO()
            stats.stream = buffer  # type: ignore[attr-defined]
            stats.sort_stats(order).print_stats(restriction, top)
            lines.append(f"\n-- top {top} by {title} ({where}) --")
            lines.extend(_stats_table(buffer.getvalue()))
    return lines


def _stats_table(text: str) -> list[str]:
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), len(lines))
    return [line.replace(str(PROJECT_DIR) + "/", "") for line in lines[start:] if line.strip()]


_STDLIB = re.compile(r".*/lib/python3\.\d+/")
_COMPONENTS = ("pipeline", "bench", "aiokafka", "aiohttp", "jsonschema", "yarl", "multidict", "asyncio")


def _frame_name(frame: Any) -> str:
    path = str(frame.file_path or "")
    if "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    elif path.startswith(str(PROJECT_DIR) + "/"):
        path = path[len(str(PROJECT_DIR)) + 1 :]
    else:
        path = _STDLIB.sub("", path)
    return f"{path}:{frame.line_no} {frame.function}"


def _component(name: str) -> str | None:
    """The package a frame belongs to; None for built-ins (they count for their caller's package)."""
    if name.startswith("<built-in>"):
        return "idle (epoll)" if name.endswith("epoll.poll") else None
    top = name.split("/", 1)[0].split(":", 1)[0]
    if top in _COMPONENTS:
        return top
    return "stdlib/other"


def _sampled_hot_spots(root: Any, top: int = 25) -> list[str]:
    """From a pyinstrument frame tree: own (exclusive) sampled time per function, per package, and the
    inclusive time of pipeline/ functions. Samples are wall time of the event loop's thread, so the time
    in epoll is idle time."""
    own: Counter[str] = Counter()
    by_component: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    stack: list[tuple[Any, frozenset[str], str]] = [(root, frozenset(), "stdlib/other")]
    while stack:
        frame, active, owner = stack.pop()
        name = _frame_name(frame)
        component = _component(name) or owner
        children = [child for child in frame.children if not child.is_synthetic]
        self_time = frame.time - sum(child.time for child in children)
        own[name] += self_time
        by_component[component] += self_time
        if name not in active:
            inclusive[name] += frame.time
        stack.extend((child, active | {name}, component) for child in children)
    total = root.time or 1.0

    def rows(items: Sequence[tuple[str, float]]) -> list[str]:
        return [f"{seconds:8.3f} s {seconds / total:6.1%}  {name}" for name, seconds in items]

    in_pipeline = [
        (name, seconds) for name, seconds in inclusive.most_common() if name.startswith("pipeline/")
    ]
    return [
        f"\n-- sampled time by package (built-ins count for their caller; of {total:.2f} s) --",
        *rows(by_component.most_common()),
        f"\n-- top {top} functions by own sampled time --",
        *rows(own.most_common(top)),
        f"\n-- top {top} pipeline/ functions by inclusive sampled time --",
        *rows(in_pipeline[:top]),
    ]


# --- the run ----------------------------------------------------------------------------------------


async def measure(
    args: argparse.Namespace, site: SiteInfo, settings: Settings, cpu: CpuMeter
) -> dict[str, Any]:
    if not await cluster_answers(settings.kafka):
        raise SystemExit(
            f"no Kafka broker answers on {settings.kafka.bootstrap_servers}: start it with "
            "`.venv/bin/newsfeed broker start`"
        )
    urls = site.page_urls
    try:
        # Topics exist in any real deployment; creating them is not part of the measured crawl.
        await create_topics(settings)
        cpu.start()
        first = await bare_fetch_loop(urls, args.concurrency, "baseline #1")
        first.cpu_s = cpu.stop()
        cpu.start()
        with profiled(args.profile, RESULTS_DIR) as report:
            crawler = await crawler_pass(settings, "crawler")
        crawler.whole.cpu_s = cpu.stop()
        cpu.start()
        second = await bare_fetch_loop(urls, args.concurrency, "baseline #2")
        second.cpu_s = cpu.stop()
        records, keys = await read_back(settings)
        # Reference points, after the read-back (the publishing one writes to the raw-pages topic too).
        references = []
        loops = [fetcher_loop, fetch_and_publish_loop]
        if librdkafka_available():
            loops.append(librdkafka_publish_loop)
        for reference in loops:
            cpu.start()
            run = await reference(urls, args.concurrency, settings)
            run.cpu_s = cpu.stop()
            references.append(run)
    finally:
        await delete_topics(settings)
    expected_keys = {url.encode() for url in urls}
    return _summary(
        args,
        site,
        baselines=[first, second],
        crawler=crawler,
        references=references,
        records=records,
        keys=keys,
        expected_keys=expected_keys,
        profile_report=report,
    )


def _summary(
    args: argparse.Namespace,
    site: SiteInfo,
    *,
    baselines: list[Run],
    crawler: CrawlerRun,
    references: list[Run],
    records: int,
    keys: set[bytes],
    expected_keys: set[bytes],
    profile_report: list[str],
) -> dict[str, Any]:
    best = max(baselines, key=lambda run: run.pages_per_s)
    mean_pages_per_s = sum(run.pages_per_s for run in baselines) / len(baselines)

    def ratio(run: Run, baseline: float) -> float:
        return round(run.pages_per_s / baseline, 3) if baseline > 0 else 0.0

    verified = {
        "raw_records": records,
        "distinct_keys": len(keys),
        "expected": len(expected_keys),
        "missing": len(expected_keys - keys),
        "unexpected": len(keys - expected_keys),
        "ok": keys == expected_keys and records == len(expected_keys),
    }
    return {
        "benchmark": NAME,
        "timestamp": utc_timestamp(),
        "smoke": args.smoke,
        "profiled": args.profile,
        "params": {
            "pages": args.pages,
            "seed": args.seed,
            "concurrency": args.concurrency,
            "partitions": PARTITIONS,
            "polite": False,
        },
        "site": {
            "pages": len(site.paths),
            "bytes": site.total_bytes,
            "mean_page_kb": round(site.total_bytes / max(len(site.paths), 1) / 1000, 1),
        },
        "baseline": {
            "runs": [run.as_json() for run in baselines],
            "used": "best",
            "pages_per_s": round(best.pages_per_s, 1),
            "mb_per_s": round(best.mb_per_s, 2),
            "mean_pages_per_s": round(mean_pages_per_s, 1),
        },
        "crawler": {
            "whole_call": crawler.whole.as_json(),
            "first_request_to_last_publish": crawler.window.as_json(),
            "outcomes": crawler.outcomes,
        },
        "references": {
            "runs": [run.as_json() for run in references],
            "crawler_ratio": {run.label: ratio(crawler.whole, run.pages_per_s) for run in references},
        },
        "ratio": ratio(crawler.whole, best.pages_per_s),
        "ratio_vs_mean_baseline": ratio(crawler.whole, mean_pages_per_s),
        "ratio_fetch_window": ratio(crawler.window, best.pages_per_s),
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio(crawler.whole, best.pages_per_s) >= TARGET_RATIO,
        "verified": verified,
        "machine": machine_info(),
        "profile_report": profile_report,
    }


def render(result: dict[str, Any]) -> str:
    best = result["baseline"]["pages_per_s"]
    crawler = result["crawler"]
    runs = [
        result["baseline"]["runs"][0],
        crawler["whole_call"],
        crawler["first_request_to_last_publish"],
        result["baseline"]["runs"][1],
        *result["references"]["runs"],
    ]
    rows = [
        [
            run["label"],
            run["pages"],
            run["seconds"],
            run["pages_per_s"],
            run["mb_per_s"],
            round(run["pages_per_s"] / best, 3) if best else 0.0,
            "/".join(f"{run['cpu_s'].get(name, 0.0):.1f}" for name in CPU_COLUMNS) if run["cpu_s"] else "",
        ]
        for run in runs
    ]
    site = result["site"]
    params = result["params"]
    machine = result["machine"]
    verified = result["verified"]
    lines = [
        f"crawl throughput: {site['pages']} pages, {site['bytes'] / MB:.1f} MB "
        f"(mean {site['mean_page_kb']} KB), concurrency {params['concurrency']}, politeness off",
        "",
        format_table(
            ["run", "pages", "seconds", "pages/s", "MB/s", "x best baseline", "CPU s bench/site/broker"], rows
        ),
        "",
        f"ratio (crawler whole call / best baseline): {result['ratio']:.3f}   "
        f"(vs mean baseline {result['ratio_vs_mean_baseline']:.3f}; "
        f"fetch window {result['ratio_fetch_window']:.3f}; target {result['target_ratio']})",
        f"raw topic: {verified['raw_records']} records, {verified['distinct_keys']} distinct keys, "
        f"{verified['expected']} expected -> {'ok' if verified['ok'] else 'MISMATCH'}",
        f"crawler outcomes: {crawler['outcomes']}",
        f"machine: {machine['cores']} cores, {machine['cpu']}, {machine['python']}, "
        f"aiohttp {machine['packages']['aiohttp']}, aiokafka {machine['packages']['aiokafka']}, "
        f"Kafka {machine['kafka_broker']}",
    ]
    if result["profiled"]:
        lines += ["", f"profiled with {result['profiled']}: timings include the profiler's overhead"]
        lines += result["profile_report"]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"python -m bench.{NAME}", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=None, help=f"article pages (default {DEFAULT_PAGES})")
    parser.add_argument("--smoke", action="store_true", help=f"tiny run ({SMOKE_PAGES} pages) for tests")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--concurrency", type=int, default=None, help="requests in flight (default: crawl.concurrency)"
    )
    parser.add_argument("--json", type=Path, default=None, help=f"result file (default {RESULTS_DIR}/…)")
    parser.add_argument(
        "--profile",
        choices=["cprofile", "pyinstrument"],
        default=None,
        help="profile the crawler pass (pyinstrument must be installed by hand)",
    )
    args = parser.parse_args(argv)
    if args.pages is None:
        args.pages = SMOKE_PAGES if args.smoke else DEFAULT_PAGES
    if args.concurrency is None:
        args.concurrency = load_settings().crawl.concurrency
    if args.json is None:
        args.json = RESULTS_DIR / (f"{NAME}.smoke.json" if args.smoke else f"{NAME}.json")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="bench-crawl-") as temporary:
        work = Path(temporary)
        sources = work / "sources.yaml"
        run_id = f"bench-crawl-{uuid.uuid4().hex[:8]}"
        settings = bench_settings(run_id, work / "state", sources, args.concurrency)
        broker_pid = LocalBroker(settings.broker).status().pid
        server = LocalSite(args.pages, args.seed)
        with server as site:
            write_sources(sources, site.sitemap_url)
            cpu = CpuMeter({"bench": os.getpid(), "site": server.pid, "broker": broker_pid})
            # The event loop of `newsfeed crawl` (uvloop), for the crawler and the loops beside it.
            result = uvloop.run(measure(args, site, settings, cpu))
    print(render(result))
    path = write_results(result, args.json)
    print(f"\nresults: {path}")
    return 0 if result["verified"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
