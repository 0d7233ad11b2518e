"""The whole pipeline against its physical limit: crawl → Kafka → agents → store, in one run.

A generated site (N article pages of 15-40 KB and a sitemap) is served from its own process on 127.0.0.1.
Then, each on topics of its own:

1. **limit**: extraction alone — the same extractor settings and process pool on every core, pages from
   memory (`pipeline.offline.extract_pages`); pages/s.
2. **full load**: `newsfeed crawl --once` (politeness off) and one `newsfeed worker` as separate
   processes; sustained pages/s = articles stored / (first to last stored), p50/p99 fetch→store latency
   (the worker's `newsfeed_end_to_end_seconds` histogram), peak RSS per process (VmHWM, the worker's
   extraction processes included), Kafka bytes per page (the run's topic folders on the broker's disk).
3. **half load**: the same with the crawler paced to half the full-load rate (per-host spacing).
4. **scale**: two workers on 8 partitions at full load.

Ratios: pipeline / limit (goal ≥ 0.9); p99 at half load (goal ≤ 2 s). Nothing is asserted.

    .venv/bin/python -m bench.pipeline_throughput              # 600 pages, several minutes
    .venv/bin/python -m bench.pipeline_throughput --smoke      # 20 pages
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from aiokafka.errors import KafkaError
from prometheus_client.parser import text_string_to_metric_families

from bench.common import (
    LocalSite,
    SiteInfo,
    format_table,
    machine_info,
    process_cpu_s,
    sized_bench_main,
    utc_timestamp,
)
from pipeline.offline import extract_pages
from pipeline.ops.broker import LocalBroker
from pipeline.ops.isolated import as_environment, delete_topics, isolated_overrides, with_overrides
from pipeline.ops.kafka import cluster_answers
from pipeline.ops.lag import group_lag
from pipeline.ops.topics import create_topics, resolved_topics
from pipeline.records import RawPage
from pipeline.settings import Settings, load_settings

NAME = "pipeline_throughput"
DEFAULT_PAGES = 600
SMOKE_PAGES = 20
SEED = 20240503
PARTITIONS = 8
# A pass ends when the worker has drained after the crawl (checked after QUIET_S without a new article),
# or at the latest after STALLED_S without one (a stuck run).
QUIET_S = 5.0
STALLED_S = 300.0
IDLE_SAMPLE_S = 5.0
BUSY_AT_REST_PCT = 5.0


def free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def limit_pass(site: SiteInfo, processes: int, timeout_s: float) -> dict[str, Any]:
    """Extraction alone over the site's pages, fetched once into memory beforehand."""
    pages: list[RawPage] = []
    for url in site.page_urls:
        with urllib.request.urlopen(url, timeout=10) as response:  # loopback only
            html = response.read().decode()
        pages.append(
            RawPage(
                url=url,
                final_url=url,
                status=200,
                headers={},
                fetched_at=datetime.now(UTC).isoformat(),
                source=site.sitemap_url,
                content_hash="sha256:" + hashlib.sha256(html.encode()).hexdigest(),
                html=html,
                trace_id=uuid.uuid4().hex,
            )
        )
    extract_pages(pages[: processes * 2], processes, timeout_s)  # warm the forkserver and imports
    started = time.perf_counter()
    outcomes = extract_pages(pages, processes, timeout_s)
    seconds = time.perf_counter() - started
    # The pool's processes are the forkserver's children, out of this process's accounting: count every
    # core as busy for the whole pass, an upper bound on extraction's CPU per page.
    cpu_s = processes * seconds
    articles = sum(1 for outcome in outcomes if isinstance(outcome, dict))
    return {
        "run": "limit: extraction alone",
        "pages": len(pages),
        "articles": articles,
        "seconds": round(seconds, 2),
        "pages_per_s": round(len(pages) / seconds, 1),
        "cpu_ms_per_page": {"extraction": round(1000 * cpu_s / len(pages), 2)},
    }


def _peak_rss_kb(pid: int) -> int:
    """VmHWM of a process and its children (the worker's extraction pool)."""
    total = 0
    for candidate in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{candidate}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def _tree_cpu_s(pid: int) -> float:
    """CPU seconds used so far by a process and its live descendants (the extraction pool)."""
    return sum(process_cpu_s(member) or 0.0 for member in [pid, *_children(pid)])


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    direct = [int(child) for child in found.stdout.split()]
    return direct + [grandchild for child in direct for grandchild in _children(child)]


def _stored(path: Path) -> int:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            return int(db.execute("SELECT count(*) FROM articles").fetchone()[0])
    except sqlite3.Error:
        return 0


def _quantiles(metrics_texts: Sequence[str]) -> dict[str, float]:
    """p50 and p99 of the end-to-end histogram, its buckets summed over every worker's /metrics."""
    counts: dict[float, float] = {}
    for metrics_text in metrics_texts:
        for family in text_string_to_metric_families(metrics_text):
            if family.name != "newsfeed_end_to_end_seconds":
                continue
            for sample in family.samples:
                if sample.name.endswith("_bucket") and sample.labels.get("store") == "sqlite":
                    bound = float(sample.labels["le"])
                    counts[bound] = counts.get(bound, 0.0) + sample.value
    buckets = sorted(counts.items())
    if not buckets or buckets[-1][1] == 0:
        return {}
    total = buckets[-1][1]

    def quantile(q: float) -> float:
        previous_bound, previous_count = 0.0, 0.0
        for bound, count in buckets:
            if count >= q * total:
                if bound == float("inf"):
                    return previous_bound
                share = (q * total - previous_count) / max(count - previous_count, 1e-9)
                return previous_bound + (bound - previous_bound) * share
            previous_bound, previous_count = bound, count
        return previous_bound

    return {"p50_s": round(quantile(0.5), 3), "p99_s": round(quantile(0.99), 3), "observed": int(total)}


def _spawn(arguments: list[str], overrides: dict[str, Any], log: Path) -> subprocess.Popen[bytes]:
    import os  # noqa: PLC0415

    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", *arguments],
            env=os.environ | as_environment(overrides),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    import signal  # noqa: PLC0415

    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _topic_bytes(settings: Settings, broker: LocalBroker) -> int:
    names = {topic.name for topic in resolved_topics(settings)}
    total = 0
    for folder in broker.data_dir.iterdir():
        if folder.is_dir() and folder.name.rsplit("-", 1)[0] in names:
            total += sum(path.stat().st_size for path in folder.iterdir() if path.suffix == ".log")
    return total


def broker_at_rest(base: Settings, seconds: float = IDLE_SAMPLE_S) -> dict[str, Any]:
    """The broker before any pass: partitions on its disk and the CPU it uses with no client at work.

    Topics that earlier runs left behind cost the broker CPU even when idle, on the cores the passes use."""
    broker = LocalBroker(base.broker)
    pid = broker.status().pid
    folders = [f for f in broker.data_dir.iterdir() if f.is_dir()] if broker.data_dir.is_dir() else []
    partitions = sum(1 for folder in folders if "-" in folder.name and not folder.name.startswith("__"))
    idle_cpu_pct = None
    if pid:
        before = process_cpu_s(pid)
        time.sleep(seconds)
        after = process_cpu_s(pid)
        if before is not None and after is not None:
            idle_cpu_pct = round((after - before) / seconds * 100, 1)
    return {"partitions": partitions, "idle_cpu_pct": idle_cpu_pct, "sampled_s": seconds}


def _worker_drained(settings: Settings) -> bool:
    """The worker group has committed every record of its input topics."""
    names = settings.topics
    topics = [names.raw_pages, names.articles, names.dedup_bands, names.dedup_join, names.enriched]
    try:
        lag = asyncio.run(asyncio.wait_for(group_lag(settings, settings.worker.app_id, topics), 30))
    except (KafkaError, TimeoutError, OSError):
        return False
    return sum(lag.values()) == 0


def pipeline_pass(
    label: str, base: Settings, site: SiteInfo, work: Path, *, workers: int, host_delay_s: float | None
) -> dict[str, Any]:
    run_id = f"bench-pipe-{uuid.uuid4().hex[:8]}"
    state = work / run_id
    overrides = isolated_overrides(run_id, state, partitions=PARTITIONS)
    overrides["kafka"] = {"bootstrap_servers": base.kafka.bootstrap_servers}
    sources = state / "sources.yaml"
    state.mkdir(parents=True)
    sources.write_text(
        yaml.safe_dump({"sources": [{"id": "bench-sitemap", "kind": "sitemap", "url": site.sitemap_url}]})
    )
    overrides["crawl"] |= {
        "sources_file": str(sources),
        "allowed_private_hosts": ["127.0.0.1"],
        "polite": host_delay_s is not None,
        "min_host_delay_s": host_delay_s or 0.0,
    }
    settings = with_overrides(base, overrides)
    asyncio.run(create_topics(settings))
    broker = LocalBroker(base.broker)
    ports = [free_port() for _ in range(workers)]
    processes: list[tuple[str, subprocess.Popen[bytes]]] = []
    peaks: dict[str, int] = {}
    try:
        for number, port in enumerate(ports):
            worker_overrides = overrides | {
                "worker": {
                    **overrides["worker"],
                    "web_enabled": True,
                    "web_port": port,
                    "data_dir": str(state / f"faust-{number}"),
                },
            }
            processes.append(
                (f"worker-{number}", _spawn(["worker"], worker_overrides, state / f"worker-{number}.log"))
            )
        time.sleep(8)  # let the workers join their group before pages arrive
        # CPU of every process on the machine's cores from the crawler's start to the last stored article.
        measured = {name: process.pid for name, process in processes}
        measured |= {"broker": broker.status().pid or 0, "site": site.pid or 0}
        cpu_at_start = {name: _tree_cpu_s(pid) for name, pid in measured.items() if pid}
        crawler = _spawn(["crawl", "--once"], overrides, state / "crawler.log")
        processes.append(("crawler", crawler))
        measured["crawler"] = crawler.pid
        cpu_at_start["crawler"] = 0.0
        cpu_seen: dict[str, float] = {}  # kept after a process exits (the crawler with --once)
        cpu_at_last: dict[str, float] = {}
        store = state / "newsfeed.sqlite3"
        first = last = 0.0
        count = 0
        deadline = time.monotonic() + 1800
        lag_checked = 0.0
        while time.monotonic() < deadline:
            for name, process in processes:
                peaks[name] = max(peaks.get(name, 0), _peak_rss_kb(process.pid))
            for name, pid in measured.items():
                cpu_seen[name] = max(cpu_seen.get(name, 0.0), _tree_cpu_s(pid))
            current = _stored(store)
            now = time.monotonic()
            if current > count:
                first = first or now
                count, last, cpu_at_last = current, now, dict(cpu_seen)
            if count >= len(site.paths) or (count and now - last > STALLED_S):
                break
            # Not every page is an article: done once the crawl is over and the worker has consumed
            # everything (a quiet spell alone is no sign: dedup can trail a burst of extraction by minutes).
            if crawler.poll() is not None and now - last > QUIET_S and now - lag_checked > QUIET_S:
                lag_checked = now
                if _worker_drained(settings):
                    break
            time.sleep(0.25)
        metrics = [
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
            for port in ports
        ]
        broker_pid = broker.status().pid
        kafka_bytes = _topic_bytes(settings, broker)
    finally:
        for _, process in processes:
            _stop(process)
        asyncio.run(delete_topics(settings))
    seconds = max(last - first, 1e-3)
    cpu_ms_per_page = {
        name: round(1000 * (cpu_at_last[name] - cpu_at_start.get(name, 0.0)) / max(count, 1), 2)
        for name in cpu_at_last
    }
    return {
        "run": label,
        "workers": workers,
        "articles": count,
        "seconds": round(seconds, 2),
        "pages_per_s": round(count / seconds, 1),
        "latency": _quantiles(metrics),
        "peak_rss_mb": {name: round(kb / 1024, 1) for name, kb in peaks.items()},
        "broker_pid": broker_pid,
        "kafka_bytes_per_page": round(kafka_bytes / max(count, 1)),
        "cpu_ms_per_page": cpu_ms_per_page,
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    base = load_settings()
    if not asyncio.run(cluster_answers(base.kafka)):
        raise SystemExit("no Kafka broker answers: start it with `.venv/bin/newsfeed broker start`")
    runs: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-pipeline-") as temporary,
        LocalSite(args.pages, SEED) as site,
    ):
        work = Path(temporary)
        at_rest = broker_at_rest(base, 1.0 if args.smoke else IDLE_SAMPLE_S)
        limit = limit_pass(site, base.worker.extraction_processes, base.worker.extraction_timeout_s)
        full = pipeline_pass("pipeline, full load", base, site, work, workers=1, host_delay_s=None)
        half_delay = 2.0 / max(full["pages_per_s"], 0.1)
        half = pipeline_pass("pipeline, half load", base, site, work, workers=1, host_delay_s=half_delay)
        runs = [full, half]
        if not args.smoke:
            runs.append(
                pipeline_pass(
                    "pipeline, 2 workers, full load", base, site, work, workers=2, host_delay_s=None
                )
            )
    return {
        "name": NAME,
        "timestamp": utc_timestamp(),
        "smoke": args.smoke,
        "params": {
            "pages": args.pages,
            "partitions": PARTITIONS,
            "extraction_processes": base.worker.extraction_processes,
        },
        "broker_at_start": at_rest,
        "limit": limit,
        "runs": runs,
        "ratio_pipeline_to_limit": round(full["pages_per_s"] / limit["pages_per_s"], 3),
        # The best ratio any pipeline doing the same work per page could reach on these cores: extraction's
        # CPU per page over the whole pipeline's (every process, the broker and the site included).
        "cpu_ceiling_ratio": round(
            limit["cpu_ms_per_page"]["extraction"] / max(sum(full["cpu_ms_per_page"].values()), 1e-9), 3
        ),
        "half_load_p99_s": half["latency"].get("p99_s"),
        "machine": machine_info(),
    }


def render(result: dict[str, Any]) -> str:
    rows = [
        [
            result["limit"]["run"],
            result["limit"]["pages"],
            result["limit"]["seconds"],
            result["limit"]["pages_per_s"],
            "",
            "",
            "",
            "",
        ]
    ]
    for run in result["runs"]:
        latency = run["latency"]
        rss = ", ".join(f"{name} {mb}" for name, mb in run["peak_rss_mb"].items())
        rows.append(
            [
                run["run"],
                run["articles"],
                run["seconds"],
                run["pages_per_s"],
                latency.get("p50_s", ""),
                latency.get("p99_s", ""),
                run["kafka_bytes_per_page"],
                rss,
            ]
        )
    return "\n".join(
        [
            "pipeline throughput: {pages} pages, {partitions} partitions".format(**result["params"]),
            "",
            format_table(
                ["run", "pages", "seconds", "pages/s", "p50 s", "p99 s", "Kafka B/page", "peak RSS MB"], rows
            ),
            "",
            f"pipeline / limit: {result['ratio_pipeline_to_limit']:.3f} (goal 0.9); "
            f"p99 at half load: {result['half_load_p99_s']} s (goal 2 s)",
            "CPU ms per page, full load: "
            + ", ".join(f"{name} {ms}" for name, ms in result["runs"][0]["cpu_ms_per_page"].items())
            + f"; extraction alone {result['limit']['cpu_ms_per_page']['extraction']}"
            + f"; CPU ceiling of the ratio: {result['cpu_ceiling_ratio']:.3f}",
            "broker before the passes: {partitions} partitions on disk, {idle_cpu_pct} % CPU idle".format(
                **result["broker_at_start"]
            )
            + (
                f" (busy at rest: above {BUSY_AT_REST_PCT} %, the figures understate the pipeline; topics "
                "left by earlier runs cost CPU; `newsfeed broker reset` deletes them)"
                if (result["broker_at_start"]["idle_cpu_pct"] or 0) > BUSY_AT_REST_PCT
                else ""
            ),
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
