"""Soak: `newsfeed run` under steady load from a live site, restarted halfway; lag, memory, fds and tasks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from copy import deepcopy
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import mean, median
from typing import Any, NamedTuple

import pytest
import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client.parser import text_string_to_metric_families

from bench.common import format_table, machine_info
from pipeline.ops.isolated import start_command
from pipeline.ops.kafka import client_options
from pipeline.ops.lag import group_lag, partitions_and_ends
from pipeline.settings import PROJECT_DIR, Settings
from tests.conftest import IsolatedPipeline
from tests.soak.conftest import SUMMARY, soak_minutes
from tests.soak.live_site import LiveSite, Published

pytestmark = pytest.mark.soak

ARTIFACT = PROJECT_DIR / ".state" / "artifacts" / "soak.json"
SEED = 20250611
SAMPLE_EVERY_S = 10.0
# The shortest poll interval a sources file allows: each feed holds its site's newest 50 articles, far
# more than a site publishes in one interval at this pace (about 80 articles a minute over seven sites).
FEED_POLL = "10s"
STORE_FILE = "newsfeed.sqlite3"  # under the state folder, as isolated_overrides places it

# Generous waits for a busy 2-core machine that other test runs share.
STARTUP_TIMEOUT_S = 300.0
STOP_TIMEOUT_S = 120.0
DRAIN_TIMEOUT_S = 900.0

# RSS is judged after each run's warm-up (imports done, pools started, caches filled), and only when a half
# leaves at least MIN_SLOPE_WINDOW_S of samples after it: a regression over a minute of samples mostly
# measures noise.
WARM_UP_S = 120.0
MIN_SLOPE_WINDOW_S = 180.0
# The worker's RocksDB block cache and memtables fill up to their budgets and stay there. At the default
# budgets (48 + 32 MB) a 40-minute run at this load filled them only from 20 to 40 MB, so their pages
# becoming resident look like a leak for the whole run. The soak gives the worker small budgets that fill
# in minutes, and judges its RSS besides the two gauges (`newsfeed_rocksdb_block_cache_bytes`,
# `newsfeed_rocksdb_memtable_bytes`).
SOAK_ROCKSDB_BUDGETS = {"rocksdb_block_cache_mb": 8, "rocksdb_write_buffer_mb": 2}
# Measured on the 2-core machine (three 15-minute runs at these budgets, 2026-11-30), after warm-up, in
# MB/min per half: the worker besides RocksDB 0.34/0.21 and 0.59/0.33 on jemalloc, 0.47/0.55 on glibc's
# malloc; crawler, sink and extraction processes 0.04-0.19. At the default budgets the worker's whole RSS
# grew 1.1-1.6 on either allocator. 1 MB/min fails a leak of 12 KB an article at this pace (about 80
# articles a minute). A half in which the broker was unreachable (another test restarting it) ends in a
# backlog whose buffers are no leak: its slope is reported, not judged.
MAX_RSS_SLOPE_MB_PER_MIN = 1.0
# Open files besides the state files (which RocksDB opens one per table file, so they follow the data)
# in the last third of the run may exceed the first third's maximum by this much: a Kafka client's extra
# connection to a partition leader or coordinator, pooled HTTP connections (measured: one either way)...
FD_MARGIN = 12
# ...and event-loop tasks by this much (per-request handlers, a fetch or commit in flight).
TASK_MARGIN = 25
# The backlog (articles published, not yet stored) after the restart is back to normal once it is within
# the largest seen before the restart plus about one feed poll's worth of articles (10 s at 0.5-1 s each).
BACKLOG_SLACK = 15
# Dedup's own goal (bench/README-dedup.md): a copy whose extracted text came out short can be missed.
MIN_DEDUP_RECALL = 0.95
# The metrics settings that place the endpoints of the roles without a web server of their own.
METRICS_PORTS = ("crawler_port", "sink_port", "ingest_port")
ROLE_OF_COMMAND = {"crawl": "crawler", "worker": "worker", "sink": "sink", "run": "supervisor"}


# --- the processes ----------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found.extend(int(child) for child in (task / "children").read_text().split())
    return found


def _descendants(pid: int) -> list[int]:
    found, queue = [], _children(pid)
    while queue:
        child = queue.pop()
        found.append(child)
        queue.extend(_children(child))
    return found


def _role(pid: int) -> str | None:
    try:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return None
    words = [word for word in arguments if word in ROLE_OF_COMMAND]
    return ROLE_OF_COMMAND[words[-1]] if words else None


@dataclass
class ProcessSample:
    pid: int
    rss_mb: float
    # Heap and other private memory, and mapped files (libraries, RocksDB's files): a leak shows in the first.
    rss_anon_mb: float
    rss_file_mb: float
    fds: int
    # Open files by kind; "state" is a file under the run's state folder (RocksDB, SQLite), whose number
    # follows the data (RocksDB keeps every table file open), unlike sockets, pipes and the rest.
    fd_kinds: dict[str, int]
    threads: int
    tasks: int | None = None
    # The worker's RocksDB block cache and memtables (its /metrics): memory that fills up to a fixed budget.
    rocksdb_mb: float | None = None

    @property
    def fds_besides_state(self) -> int:
        return self.fds - self.fd_kinds.get("state", 0)

    @property
    def rss_besides_rocksdb_mb(self) -> float | None:
        return None if self.rocksdb_mb is None else round(self.rss_mb - self.rocksdb_mb, 2)


def _fd_kind(target: str, state_dir: str) -> str:
    if target.startswith(("socket:", "pipe:")):
        return target.split(":", 1)[0]
    if target.startswith(state_dir):
        return "state"
    return "file" if target.startswith("/") else "other"


def _process_sample(pid: int, state_dir: Path) -> ProcessSample | None:
    kinds: Counter[str] = Counter()
    try:
        status = dict(
            line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
        )
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):  # closed since the listing
                kinds[_fd_kind(str(fd.readlink()), str(state_dir))] += 1
    except OSError:
        return None
    if "VmRSS" not in status:  # a zombie
        return None

    def mb(key: str) -> float:
        return round(int(status.get(key, "0 kB").split()[0]) / 1024, 2)

    return ProcessSample(
        pid=pid,
        rss_mb=mb("VmRSS"),
        rss_anon_mb=mb("RssAnon"),
        rss_file_mb=mb("RssFile"),
        fds=sum(kinds.values()),
        fd_kinds=dict(sorted(kinds.items())),
        threads=int(status["Threads"].strip()),
    )


ROCKSDB_GAUGES = {"newsfeed_rocksdb_block_cache_bytes", "newsfeed_rocksdb_memtable_bytes"}


def _metrics_at(port: int) -> tuple[int | None, float | None]:
    """newsfeed_event_loop_tasks and the RocksDB memory (MB; the worker's only) from a role's /metrics, or
    None for what it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:  # loopback
            text = response.read().decode()
    except (OSError, ValueError):
        return None, None
    tasks, rocksdb_bytes = None, []
    for family in text_string_to_metric_families(text):
        if family.name == "newsfeed_event_loop_tasks" and family.samples:
            tasks = int(family.samples[0].value)
        elif family.name in ROCKSDB_GAUGES and family.samples:
            rocksdb_bytes.append(family.samples[0].value)
    rocksdb_mb = round(sum(rocksdb_bytes) / 1024 / 1024, 2) if rocksdb_bytes else None
    return tasks, rocksdb_mb


# --- Kafka and the store ----------------------------------------------------------------------------


def _worker_topics(settings: Settings) -> list[str]:
    names = settings.topics
    return [names.raw_pages, names.articles, names.dedup_bands, names.dedup_join]


async def _lags(settings: Settings) -> dict[str, int | None]:
    """Records the worker group has not committed (all its input topics, and raw pages alone) and the
    sink group's lag; None where the broker did not answer in time (another test may restart it)."""

    async def total(group: str, topics: list[str]) -> dict[TopicPartition, int] | None:
        try:
            return await asyncio.wait_for(group_lag(settings, group, topics), 30)
        except (KafkaError, TimeoutError, OSError):
            return None

    worker = await total(settings.worker.app_id, _worker_topics(settings))
    sink = await total(settings.store.sink_group_id, [settings.topics.enriched])
    raw = settings.topics.raw_pages
    return {
        "worker": None if worker is None else sum(worker.values()),
        "worker_raw_pages": None if worker is None else sum(n for tp, n in worker.items() if tp.topic == raw),
        "sink": None if sink is None else sum(sink.values()),
    }


async def _raw_page_urls(settings: Settings) -> Counter[str]:
    """How often each URL is in the raw-pages topic (committed records only)."""
    consumer = AIOKafkaConsumer(
        **client_options(settings.kafka), enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    urls: Counter[str] = Counter()
    try:
        partitions, ends = await partitions_and_ends(consumer, [settings.topics.raw_pages])
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        remaining = {tp for tp in partitions if ends[tp] > 0}
        deadline = time.monotonic() + 120
        while remaining and time.monotonic() < deadline:
            batches = await consumer.getmany(*remaining, timeout_ms=500)
            for records in batches.values():
                urls.update(record.key.decode() for record in records if record.key is not None)
            remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
    finally:
        await consumer.stop()
    return urls


class StoredArticle(NamedTuple):
    url: str
    id: str
    duplicate_of: str | None
    cluster_id: str


def _stored(path: Path) -> list[StoredArticle]:
    """Every stored article; nothing before the sink has made the store."""
    if not path.exists():
        return []
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
        try:
            rows = db.execute("SELECT url, id, duplicate_of, cluster_id FROM articles")
            return [StoredArticle(*row) for row in rows]
        finally:
            db.close()
    except sqlite3.OperationalError:  # the sink is creating the schema
        return []


def _stored_count(path: Path) -> int:
    return len(_stored(path))


def _broker_pid(settings: Settings) -> int | None:
    """The local broker's pid from its pid file, if that process lives."""
    try:
        pid = int((settings.broker.state_dir / "broker.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if Path(f"/proc/{pid}").exists() else None


# --- sampling ---------------------------------------------------------------------------------------


@dataclass
class Sample:
    t_s: float
    phase: str
    run_pid: int | None
    processes: dict[str, ProcessSample]
    # The worker's extraction processes (forkserver and pool), summed: they come and go as a group.
    extraction_rss_mb: float
    extraction_processes: int
    lag: dict[str, int | None]
    stored: int
    published: int
    broker_pid: int | None
    load_average: float


@dataclass
class Sampler:
    """Every SAMPLE_EVERY_S, in a thread of its own: each pipeline process's RSS, open fds, threads and
    event-loop tasks, the groups' lag, articles published and stored."""

    settings: Settings
    ports: dict[str, int]
    state_dir: Path
    site: LiveSite
    started: float = field(default_factory=time.monotonic)
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    phase: str = "first half"
    run_pid: int | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="soak-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(120)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append(self.take())
            except Exception as error:  # one lost sample must not end the sampling
                self.errors.append(f"{self.elapsed():.0f} s: {error!r}")
            # The next multiple of the interval: a slow sample (broker busy) is followed by one on time.
            self._stop.wait(SAMPLE_EVERY_S - self.elapsed() % SAMPLE_EVERY_S)

    def take(self) -> Sample:
        at, phase = self.elapsed(), self.phase
        processes: dict[str, ProcessSample] = {}
        extraction: list[ProcessSample] = []
        run_pid = self.run_pid
        if run_pid is not None:
            supervisor = _process_sample(run_pid, self.state_dir)
            if supervisor is not None:
                processes["supervisor"] = supervisor
            for child in _children(run_pid):
                role, sample = _role(child), _process_sample(child, self.state_dir)
                if role is None or sample is None:
                    continue
                sample.tasks, sample.rocksdb_mb = _metrics_at(self.ports[role])
                processes[role] = sample
                if role == "worker":
                    extraction = [
                        found
                        for pid in _descendants(child)
                        if (found := _process_sample(pid, self.state_dir)) is not None
                    ]
        return Sample(
            t_s=round(at, 1),
            # A sample taken while the phase changed (processes stopping) belongs to neither half.
            phase=phase if phase == self.phase else "transition",
            run_pid=run_pid,
            processes=processes,
            extraction_rss_mb=round(sum(p.rss_mb for p in extraction), 2),
            extraction_processes=len(extraction),
            lag=asyncio.run(_lags(self.settings)),
            stored=_stored_count(self.state_dir / STORE_FILE),
            published=self.site.count(),
            broker_pid=_broker_pid(self.settings),
            load_average=float(Path("/proc/loadavg").read_text().split()[0]),
        )


# --- the figures ------------------------------------------------------------------------------------


def slope_per_minute(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, value) points, per minute; None for fewer than three points."""
    if len(points) < 3:
        return None
    xs, ys = [x for x, _ in points], [y for _, y in points]
    x_mean, y_mean = mean(xs), mean(ys)
    spread = sum((x - x_mean) ** 2 for x in xs)
    if spread == 0:
        return None
    return sum((x - x_mean) * (y - y_mean) for x, y in zip(xs, ys, strict=True)) / spread * 60


def _value(role: str, measure: str) -> Callable[[Sample], float | None]:
    def pick(sample: Sample) -> float | None:
        if role == "extraction":
            return sample.extraction_rss_mb if measure == "rss_mb" and sample.extraction_processes else None
        found = sample.processes.get(role)
        value = None if found is None else getattr(found, measure)
        return None if value is None else float(value)

    return pick


@dataclass
class Phases:
    """Seconds since sampling began: first article stored, restart signalled, new run started, new run's
    first article stored, load stopped."""

    load_start_s: float
    restart_s: float
    restarted_s: float
    resumed_s: float
    load_end_s: float

    def halves(self) -> list[tuple[str, float, float]]:
        """Each half's name (its samples' phase), start and end."""
        return [
            ("first half", self.load_start_s, self.restart_s),
            ("second half", self.restarted_s, self.load_end_s),
        ]


def rss_slopes(samples: Sequence[Sample], phases: Phases, roles: Sequence[str]) -> dict[str, Any]:
    """Per role and half: the RSS slope after the run's warm-up (and the anonymous part's, for a look)."""
    slopes: dict[str, Any] = {}
    for name, begin, end in phases.halves():
        window_start = begin + min(WARM_UP_S, (end - begin) / 3)
        in_window = [s for s in samples if s.phase == name and window_start <= s.t_s <= end]
        disturbed = any(s.lag["worker"] is None for s in in_window) or (
            len({s.broker_pid for s in in_window}) > 1
        )
        for role in roles:
            points = [(s.t_s, v) for s in in_window if (v := _value(role, "rss_mb")(s)) is not None]
            anon = [(s.t_s, v) for s in in_window if (v := _value(role, "rss_anon_mb")(s)) is not None]
            besides = [
                (s.t_s, v) for s in in_window if (v := _value(role, "rss_besides_rocksdb_mb")(s)) is not None
            ]
            rocksdb = [(s.t_s, v) for s in in_window if (v := _value(role, "rocksdb_mb")(s)) is not None]
            slope, anon_slope = slope_per_minute(points), slope_per_minute(anon)
            # A slope that falls from the window's first half to its second is memory levelling off.
            middle = (window_start + end) / 2
            early = slope_per_minute([(t, v) for t, v in points if t <= middle])
            late = slope_per_minute([(t, v) for t, v in points if t >= middle])
            besides_slope = slope_per_minute(besides)
            judged = besides_slope if besides_slope is not None else slope
            slopes.setdefault(role, {})[name] = {
                "mb_per_min": None if slope is None else round(slope, 3),
                "anon_mb_per_min": None if anon_slope is None else round(anon_slope, 3),
                "early_mb_per_min": None if early is None else round(early, 3),
                "late_mb_per_min": None if late is None else round(late, 3),
                # The worker: what RSS does besides RocksDB's cache and memtables filling their budget.
                "besides_rocksdb_mb_per_min": None if besides_slope is None else round(besides_slope, 3),
                # What is judged: RSS besides memory that stops at a configured budget.
                "judged_mb_per_min": None if judged is None else round(judged, 3),
                "rocksdb_mb_first": rocksdb[0][1] if rocksdb else None,
                "rocksdb_mb_last": rocksdb[-1][1] if rocksdb else None,
                "from_s": round(window_start, 1),
                "to_s": round(end, 1),
                "points": len(points),
                "rss_mb_first": points[0][1] if points else None,
                "rss_mb_last": points[-1][1] if points else None,
                "broker_unreachable": disturbed,
                "asserted": end - window_start >= MIN_SLOPE_WINDOW_S and not disturbed,
            }
    return slopes


RANGE_MEASURES = ("fds", "fds_besides_state", "tasks", "threads")


def thirds(samples: Sequence[Sample], phases: Phases, roles: Sequence[str]) -> dict[str, Any]:
    """Per role and measure: [min, max] in the first and in the last third of the loaded run."""
    span = phases.load_end_s - phases.load_start_s
    first_end, last_start = phases.load_start_s + span / 3, phases.load_end_s - span / 3
    first = [s for s in samples if s.phase == "first half" and phases.load_start_s <= s.t_s < first_end]
    last = [s for s in samples if s.phase == "second half" and last_start <= s.t_s <= phases.load_end_s]
    ranges: dict[str, Any] = {}
    for role in roles:
        for measure in RANGE_MEASURES:
            before = [v for s in first if (v := _value(role, measure)(s)) is not None]
            after = [v for s in last if (v := _value(role, measure)(s)) is not None]
            if before or after:
                ranges.setdefault(role, {})[measure] = {
                    "first_third": [int(min(before)), int(max(before))] if before else None,
                    "last_third": [int(min(after)), int(max(after))] if after else None,
                }
    return ranges


def lag_figures(samples: Sequence[Sample], phases: Phases) -> dict[str, Any]:
    """Backlog (articles published, not yet stored) and the worker's raw-page lag (records not committed)
    under load and after the restart, and how long after the load both took to reach zero."""
    warm_start = phases.load_start_s + min(WARM_UP_S, (phases.restart_s - phases.load_start_s) / 3)

    def window(begin: float, end: float) -> list[Sample]:
        return [s for s in samples if begin <= s.t_s < end]

    def spread(values: Sequence[int | None]) -> dict[str, float] | None:
        known = [value for value in values if value is not None]
        return {"median": median(known), "max": max(known)} if known else None

    steady = window(warm_start, phases.restart_s) or window(phases.load_start_s, phases.restart_s)
    band = max((s.published - s.stored for s in steady), default=0) + BACKLOG_SLACK
    after = window(phases.restarted_s, phases.load_end_s + 1)
    # Once the new run stores again, the backlog the restart left must shrink back into the steady band.
    back_in_band = next(
        (s.t_s for s in after if s.t_s >= phases.resumed_s and s.published - s.stored <= band), None
    )
    zero = next(
        (
            s.t_s
            for s in samples
            if s.t_s >= phases.load_end_s and s.lag["worker"] == 0 and s.lag["sink"] == 0
        ),
        None,
    )
    return {
        "backlog_before_restart": spread([s.published - s.stored for s in steady]),
        "backlog_after_restart": spread([s.published - s.stored for s in after]),
        "backlog_band": band,
        "backlog_back_in_band_after_restart_s": (
            None if back_in_band is None else round(back_in_band - phases.restart_s, 1)
        ),
        "raw_page_lag_before_restart": spread([s.lag["worker_raw_pages"] for s in steady]),
        "raw_page_lag_after_restart": spread([s.lag["worker_raw_pages"] for s in after]),
        "worker_lag_max_all_topics": max((s.lag["worker"] or 0 for s in samples), default=None),
        "sink_lag_max": max((s.lag["sink"] or 0 for s in samples), default=None),
        "lag_zero_after_load_stopped_s": None if zero is None else round(zero - phases.load_end_s, 1),
    }


def _span(found: list[int] | None) -> str:
    return "-" if found is None else f"{found[0]}–{found[1]}"


def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def summary_table(figures: dict[str, Any]) -> str:
    rows: list[list[object]] = []
    for role, halves in figures["rss_slope_mb_per_min"].items():
        ranges = figures["ranges"].get(role, {})
        first, second = halves["first half"], halves["second half"]
        rows.append(
            [
                role,
                *(h["mb_per_min"] if h["mb_per_min"] is not None else "-" for h in (first, second)),
                " / ".join(str(h["judged_mb_per_min"]) for h in (first, second)),
                f"{_mb(first['rss_mb_first'])} → {_mb(second['rss_mb_last'])}",
                *(
                    f"{_span(r['first_third'])} → {_span(r['last_third'])}" if (r := ranges.get(m)) else "-"
                    for m in RANGE_MEASURES
                ),
            ]
        )
    table = format_table(
        [
            "process",
            "RSS MB/min, 1st half",
            "2nd half",
            "judged (worker: besides RocksDB)",
            "RSS MB",
            "fds, 1st → last third",
            "fds besides state files",
            "event-loop tasks",
            "threads",
        ],
        rows,
    )
    lines = [
        f"{key.replace('_', ' ')}: {value}" for key, value in (figures["facts"] | figures["lag"]).items()
    ]
    worker = figures["rss_slope_mb_per_min"].get("worker", {})
    rocksdb = [
        f"worker {half}: RSS {h['early_mb_per_min']} MB/min in the first half of the window, "
        f"{h['late_mb_per_min']} in the second; besides RocksDB {h['besides_rocksdb_mb_per_min']} MB/min; "
        f"RocksDB cache and memtables {_mb(h['rocksdb_mb_first'])} → {_mb(h['rocksdb_mb_last'])} MB"
        for half, h in worker.items()
        if h.get("besides_rocksdb_mb_per_min") is not None
    ]
    return "\n".join([table, "", *rocksdb, *lines])


# --- the test ---------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _group_members(group: int) -> list[str]:
    found = subprocess.run(["pgrep", "-g", str(group)], capture_output=True, text=True, check=False)
    return found.stdout.split()


def _stop_group(process: subprocess.Popen[bytes]) -> tuple[int, float]:
    """SIGTERM to the run's process group, as a terminal or service manager stops it; returns the exit code
    and seconds until every process of the group was gone (SIGKILL after STOP_TIMEOUT_S)."""
    started = time.monotonic()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        code = process.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        code = process.wait()
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while _group_members(process.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _group_members(process.pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    return code, round(time.monotonic() - started, 1)


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:] if log.exists() else ""


def _wait_for(condition: Callable[[], bool], timeout_s: float, alive: Callable[[], None]) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        alive()
        if condition():
            return True
        time.sleep(0.5)
    return condition()


def _sleep_until(deadline: float, alive: Callable[[], None]) -> None:
    while time.monotonic() < deadline:
        alive()
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))


def _write_artifact(data: dict[str, Any]) -> None:
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    temporary = ARTIFACT.with_suffix(".tmp")
    temporary.write_text(json.dumps(data, indent=2) + "\n")
    temporary.replace(ARTIFACT)


def _sources_file(path: Path, feed_urls: Sequence[str]) -> Path:
    sources = [{"id": url.split("/")[-2], "kind": "feed", "url": url} for url in feed_urls]
    path.write_text(yaml.safe_dump({"defaults": {"poll_interval": FEED_POLL}, "sources": sources}))
    return path


def _run_overrides(isolated: IsolatedPipeline, sources: Path, ports: dict[str, int]) -> dict[str, Any]:
    """The isolated settings with the crawler on the live site and every role's metrics endpoint on."""
    overrides = deepcopy(isolated.overrides)
    overrides["crawl"] |= {
        "sources_file": str(sources),
        "allowed_private_hosts": ["127.0.0.1"],
        "min_host_delay_s": 0.05,
    }
    overrides["worker"] |= SOAK_ROCKSDB_BUDGETS | {
        "web_enabled": True,
        "web_host": "127.0.0.1",
        "web_port": ports["worker"],
    }
    overrides["store"]["sink_in_worker"] = False  # the sink as a role of its own, as deployed
    overrides["metrics"] = {
        "enabled": True,
        "host": "127.0.0.1",
        **{name: ports[name.removesuffix("_port")] for name in METRICS_PORTS},
    }
    return overrides


def test_soak(isolated: IsolatedPipeline, request: pytest.FixtureRequest) -> None:
    duration_s = soak_minutes(request.config) * 60
    state = isolated.state_dir
    state.mkdir(parents=True, exist_ok=True)
    ports = {role: _free_port() for role in ("crawler", "sink", "ingest", "worker")}
    log, store = state / "run.log", state / STORE_FILE
    facts: dict[str, Any] = {"soak_minutes": duration_s / 60}

    # Pages for start-up, the restart and the load at the site's fastest pace: it never runs dry.
    with LiveSite(duration_s / 60 + 10, seed=SEED) as site:
        overrides = _run_overrides(
            isolated, _sources_file(state / "sources.yaml", site.info.feed_urls), ports
        )
        sampler = Sampler(isolated.settings, ports, state, site)
        run = start_command(["run"], overrides, log)
        sampler.run_pid = run.pid
        sampler.start()

        def alive() -> None:
            assert run.poll() is None, f"newsfeed run exited with {run.returncode}:\n{_tail(log)}"

        try:
            assert _wait_for(lambda: _stored_count(store) > 0, STARTUP_TIMEOUT_S, alive), _tail(log)
            load_start = sampler.elapsed()
            facts["first_article_stored_after_s"] = round(load_start, 1)
            # The load counts from the first stored article: start-up takes long on a busy machine.
            _sleep_until(sampler.started + load_start + duration_s / 2, alive)

            # The restart: SIGTERM to the whole group, wait until it is gone, start it again.
            restart = sampler.elapsed()
            sampler.phase = "restart"
            facts["restart_stop_exit_code"], facts["restart_stop_s"] = _stop_group(run)
            stored_before = _stored_count(store)  # after the old sink's last batch
            run = start_command(["run"], overrides, log)
            sampler.run_pid = run.pid
            restarted = sampler.elapsed()
            sampler.phase = "second half"
            resumed = _wait_for(lambda: _stored_count(store) > stored_before, STARTUP_TIMEOUT_S, alive)
            assert resumed, _tail(log)
            resumed_at = sampler.elapsed()
            # From the SIGTERM to the first article the new run stored.
            facts["restart_downtime_s"] = round(resumed_at - restart, 1)

            _sleep_until(sampler.started + load_start + duration_s, alive)
            published = site.pause()
            load_end = sampler.elapsed()
            facts["site_pages_left"] = site.info.pages_available - len(published)
            sampler.phase = "drain"
            wanted = {article.url for article in published}

            def drained() -> bool:
                if not wanted <= {article.url for article in _stored(store)}:
                    return False
                lag = asyncio.run(_lags(isolated.settings))
                return lag["worker"] == 0 and lag["sink"] == 0

            facts["drained"] = _wait_for(drained, DRAIN_TIMEOUT_S, alive)
            facts["drained_after_load_stopped_s"] = round(sampler.elapsed() - load_end, 1)
            sampler.stop()
            sampler.samples.append(sampler.take())  # the drained state, for the record
        finally:
            sampler.stop()
            facts["final_stop_exit_code"], facts["final_stop_s"] = _stop_group(run)

    raw_urls = asyncio.run(_raw_page_urls(isolated.settings))
    stored_rows = _stored(store)
    phases = Phases(load_start, restart, restarted, resumed_at, load_end)
    figures = _figures(sampler.samples, sampler.errors, phases, facts, published, stored_rows, raw_urls)
    _write_artifact(
        {
            "test": "tests/soak/test_soak.py",
            "machine": machine_info(("aiokafka", "faust-streaming", "trafilatura", "rocksdict")),
            "settings": {
                "sample_every_s": SAMPLE_EVERY_S,
                "feed_poll": FEED_POLL,
                "warm_up_s": WARM_UP_S,
                "min_slope_window_s": MIN_SLOPE_WINDOW_S,
                "max_rss_slope_mb_per_min": MAX_RSS_SLOPE_MB_PER_MIN,
                "fd_margin": FD_MARGIN,
                "task_margin": TASK_MARGIN,
            },
            "phases_s": asdict(phases),
            "figures": figures,
            "samples": [asdict(sample) for sample in sampler.samples],
        }
    )
    request.config.stash[SUMMARY] = summary_table(figures) + f"\nartefact: {ARTIFACT}"
    _check(figures, published, stored_rows, raw_urls, log)


def _figures(
    samples: Sequence[Sample],
    sampler_errors: Sequence[str],
    phases: Phases,
    facts: dict[str, Any],
    published: Sequence[Published],
    stored_rows: Sequence[StoredArticle],
    raw_urls: Counter[str],
) -> dict[str, Any]:
    roles = ["supervisor", "crawler", "worker", "extraction", "sink"]
    stored_urls = Counter(row.url for row in stored_rows)
    cluster_of = {row.url: row.cluster_id for row in stored_rows}
    url_of = {row.id: row.url for row in stored_rows}
    # A story is its original's URL: a copy names the original it copies (never another copy).
    story_of = {article.url: article.copy_of or article.url for article in published}
    copies = [article for article in published if article.copy_of is not None]
    marked = [row for row in stored_rows if row.duplicate_of is not None]
    found = [
        c for c in copies if c.url in cluster_of and cluster_of.get(c.copy_of or "") == cluster_of[c.url]
    ]
    false_matches = [
        row
        for row in marked
        if story_of.get(row.url) != story_of.get(url_of.get(row.duplicate_of or "", ""), row.url)
    ]
    lag_seen = [s for s in samples if s.phase != "drain"]
    facts |= {
        "articles_published": len(published),
        "syndicated_copies_published": len(copies),
        "articles_stored": len(stored_rows),
        "articles_stored_more_than_once": sum(1 for n in stored_urls.values() if n > 1),
        "raw_page_records": sum(raw_urls.values()),
        "raw_pages_fetched_more_than_once": sum(1 for n in raw_urls.values() if n > 1),
        # Every page of a story but its canonical one is marked; the canonical one is the earliest
        # published, which is the copy when the original prints only a date (taken as its day's end).
        "stored_marked_duplicate": len(marked),
        "copies_in_their_originals_cluster": len(found),
        "dedup_recall": round(len(found) / len(copies), 4) if copies else None,
        "false_matches": len(false_matches),
        # What else ran on the machine: another test restarting the broker shows as a new broker pid.
        "broker_pids_seen": sorted({s.broker_pid for s in samples if s.broker_pid is not None}),
        "samples_without_lag": sum(1 for s in lag_seen if s.lag["worker"] is None),
        "load_average_1min": {
            "mean": round(mean(s.load_average for s in samples), 2),
            "max": max(s.load_average for s in samples),
        },
        "samples": len(samples),
        "samples_lost": len(sampler_errors),
    }
    return {
        "facts": facts,
        "lag": lag_figures(samples, phases),
        "rss_slope_mb_per_min": rss_slopes(samples, phases, roles),
        "ranges": thirds(samples, phases, roles),
        "sampler_errors": list(sampler_errors),
        "copies_not_found": sorted(c.url for c in copies if c not in found),
        "lag_over_time": [
            [s.t_s, s.lag["worker"], s.lag["worker_raw_pages"], s.lag["sink"]] for s in samples
        ],
    }


def _check(
    figures: dict[str, Any],
    published: Sequence[Published],
    stored_rows: Sequence[StoredArticle],
    raw_urls: Counter[str],
    log: Path,
) -> None:
    facts, lag = figures["facts"], figures["lag"]
    assert facts["site_pages_left"] > 0, "the site ran out of pages: the load stopped early"
    assert facts["drained"], f"lag not back to zero {DRAIN_TIMEOUT_S:.0f} s after the load\n{_tail(log)}"
    assert lag["backlog_back_in_band_after_restart_s"] is not None, f"backlog after the restart: {lag}"
    wanted = {article.url for article in published}
    stored = Counter(row.url for row in stored_rows)
    missing, extra = sorted(wanted - set(stored)), sorted(set(stored) - wanted)
    assert not missing, f"{len(missing)} published articles not stored, e.g. {missing[:3]}"
    assert not extra, f"{len(extra)} stored articles the site did not publish, e.g. {extra[:3]}"
    assert facts["articles_stored_more_than_once"] == 0
    assert set(raw_urls) == wanted, "the raw-pages topic holds other pages than those published"
    assert facts["raw_pages_fetched_more_than_once"] == 0, "a page fetched twice (after the restart?)"
    assert facts["dedup_recall"] is None or facts["dedup_recall"] >= MIN_DEDUP_RECALL, facts[
        "copies_not_found"
    ]
    assert facts["false_matches"] == 0
    assert facts["restart_stop_exit_code"] == 0, "newsfeed run did not stop cleanly on SIGTERM"
    assert facts["final_stop_exit_code"] == 0, "newsfeed run did not stop cleanly on SIGTERM"
    for role, halves in figures["rss_slope_mb_per_min"].items():
        for half, slope in halves.items():
            if slope["asserted"] and slope["judged_mb_per_min"] is not None:
                assert slope["judged_mb_per_min"] < MAX_RSS_SLOPE_MB_PER_MIN, (
                    f"{role}: RSS grows in the {half}: {slope}"
                )
    for role, measures in figures["ranges"].items():
        for measure, margin in (("fds_besides_state", FD_MARGIN), ("tasks", TASK_MARGIN)):
            found = measures.get(measure)
            if found and found["first_third"] and found["last_third"]:
                assert found["last_third"][1] <= found["first_third"][1] + margin, (
                    f"{role}: {measure} grew from {found['first_third']} to {found['last_third']}"
                )
