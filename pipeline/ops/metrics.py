"""Prometheus metrics: one registry per process, the pipeline's counters exposed from where they are kept."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter as Tally
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Gauge, Histogram, Info, generate_latest, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)
REGISTRY = CollectorRegistry(auto_describe=True)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# Fine around the 2 s goal (a quantile is interpolated within its bucket), coarse for replays and backlogs.
_END_TO_END_BUCKETS = (
    0.1,
    0.25,
    0.5,
    0.75,
    1,
    1.25,
    1.5,
    1.75,
    2,
    2.5,
    3,
    4,
    5,
    10,
    30,
    60,
    120,
    300,
    600,
    1800,
    3600,
    21600,
    86400,
)

FETCH_SECONDS = Histogram(
    "newsfeed_crawl_fetch_seconds",
    "Time to fetch one page (request to last byte)",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
EXTRACT_SECONDS = Histogram(
    "newsfeed_extract_seconds",
    "Time to extract one page in the process pool",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
END_TO_END_SECONDS = Histogram(
    "newsfeed_end_to_end_seconds",
    "From the page's fetch to its article being stored",
    ["store"],
    buckets=_END_TO_END_BUCKETS,
    registry=REGISTRY,
)
CONSUMER_LAG = Gauge(
    "newsfeed_consumer_lag",
    "Records between a group's committed offset and the partition's end",
    ["group", "topic", "partition"],
    registry=REGISTRY,
)
COMMITTED_OFFSET = Gauge(
    "newsfeed_consumer_committed_offset",
    "A group's committed offset",
    ["group", "topic", "partition"],
    registry=REGISTRY,
)
MEMORY_ALLOCATOR = Info(
    "newsfeed_memory_allocator",
    "The malloc this process runs with: jemalloc (preloaded) or system",
    registry=REGISTRY,
)
STALLED = Gauge(
    "newsfeed_partition_stalled",
    "1 while a partition's lag grows and its committed offset stands still",
    ["group", "topic", "partition"],
    registry=REGISTRY,
)


Tally_ = Callable[[], Mapping[str, int]]
Extra = Callable[[], Mapping[str, float]]


class OutcomeCollector(Collector):
    """Turns each role's outcome tally ("skipped:listing-page", "dead-letter:extract:timeout", …) into
    labelled counter families at scrape time, so the code that counts needs no Prometheus calls."""

    def __init__(self) -> None:
        self.sources: dict[str, tuple[Tally_, Extra | None]] = {}

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        families = {
            "events": CounterMetricFamily(
                "newsfeed_events", "Every counted outcome", labels=["role", "event"]
            ),
            "dead": CounterMetricFamily(
                "newsfeed_dead_letters", "Records dead-lettered", labels=["role", "stage", "reason"]
            ),
            "skipped": CounterMetricFamily(
                "newsfeed_skipped", "Pages that gave no article", labels=["role", "reason"]
            ),
            "dedup": CounterMetricFamily(
                "newsfeed_dedup_verdicts", "Articles by dedup verdict", labels=["role", "method"]
            ),
            "tags": CounterMetricFamily(
                "newsfeed_tags", "Articles tagged, by topic", labels=["role", "topic"]
            ),
            "pages": CounterMetricFamily(
                "newsfeed_crawl_pages", "Crawled URLs by outcome", labels=["role", "outcome"]
            ),
        }
        gauges: list[GaugeMetricFamily] = []
        for role, (tally, extra) in sorted(self.sources.items()):
            for event, count in sorted(tally().items()):
                families["events"].add_metric([role, event], count)
                kind, _, rest = event.partition(":")
                if kind == "dead-letter":
                    stage, _, reason = rest.rpartition(":")
                    families["dead"].add_metric([role, stage or role, reason], count)
                elif kind == "skipped":
                    families["skipped"].add_metric([role, rest], count)
                elif kind == "dedup" and rest in {"first", "exact", "near"}:
                    families["dedup"].add_metric([role, rest], count)
                elif kind == "topic":
                    families["tags"].add_metric([role, rest], count)
                elif role == "crawler":
                    families["pages"].add_metric([role, event], count)
            for name, value in (extra() if extra else {}).items():
                gauge = GaugeMetricFamily(name, f"{name} of the {role}", labels=["role"])
                gauge.add_metric([role], value)
                gauges.append(gauge)
        yield from families.values()
        yield from gauges


_OUTCOMES = OutcomeCollector()
REGISTRY.register(_OUTCOMES)


class EventLoopTasks(Collector):
    """newsfeed_event_loop_tasks: tasks not yet done on the process's event loop, counted at scrape time so
    that a slow task leak shows without periodic code in any role."""

    name = "newsfeed_event_loop_tasks"
    documentation = "Tasks not yet done on the process's event loop"

    def __init__(self) -> None:
        # The loop to count when scraped from a thread without one (the /metrics thread of `serve`).
        self.loop: asyncio.AbstractEventLoop | None = None

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(self.name, self.documentation)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        loop: asyncio.AbstractEventLoop | None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = self.loop
        if loop is None or loop.is_closed():
            return
        # all_tasks retries when another thread changes the task set mid-copy, so a scrape from the
        # metrics thread is safe.
        gauge = GaugeMetricFamily(self.name, self.documentation)
        gauge.add_metric([], len(asyncio.all_tasks(loop)))
        yield gauge


_LOOP_TASKS = EventLoopTasks()
REGISTRY.register(_LOOP_TASKS)


def watch_event_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Count `loop`'s tasks when /metrics is scraped outside it (the worker's web server runs in its loop
    and needs no call)."""
    _LOOP_TASKS.loop = loop


def watch_outcomes(role: str, tally: Tally[str] | Tally_, extra: Extra | None = None) -> None:
    """Expose `tally` (a Counter, or a function returning one) as the outcome metrics of `role`; a role
    watched again (a second run in one process) replaces its earlier source."""
    source: Tally_ = (lambda: tally) if isinstance(tally, Tally) else tally
    _OUTCOMES.sources[role] = (source, extra)


def serve(host: str, port: int) -> bool:
    """Serve /metrics from a background thread (processes without a web server of their own); a busy
    port is logged and the process goes on without an endpoint rather than failing its real work. Called
    from a running event loop, that loop's tasks are counted on the endpoint."""
    with contextlib.suppress(RuntimeError):
        watch_event_loop(asyncio.get_running_loop())
    try:
        start_http_server(port, addr=host, registry=REGISTRY)
    except OSError as error:
        log.warning("metrics endpoint %s:%d not started: %s", host, port, error)
        return False
    log.info("metrics on http://%s:%d/metrics", host, port)
    return True


def exposition() -> bytes:
    """The registry in Prometheus' text format (the worker serves it on its web server)."""
    return generate_latest(REGISTRY)
