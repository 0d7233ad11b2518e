"""Prometheus metrics: one registry per process, the pipeline's counters exposed from where they are kept."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry(auto_describe=True)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_END_TO_END_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 21600, 86400)

FETCH_SECONDS = Histogram(
    "newsfeed_crawl_fetch_seconds", "Time to fetch one page (request to last byte)", buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)  # fmt: skip
EXTRACT_SECONDS = Histogram(
    "newsfeed_extract_seconds", "Time to extract one page in the process pool", buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)  # fmt: skip
END_TO_END_SECONDS = Histogram(
    "newsfeed_end_to_end_seconds", "From the page's fetch to its article being stored", ["store"],
    buckets=_END_TO_END_BUCKETS, registry=REGISTRY,
)  # fmt: skip
CONSUMER_LAG = Gauge(
    "newsfeed_consumer_lag", "Records between a group's committed offset and the partition's end",
    ["group", "topic", "partition"], registry=REGISTRY,
)  # fmt: skip
COMMITTED_OFFSET = Gauge(
    "newsfeed_consumer_committed_offset", "A group's committed offset", ["group", "topic", "partition"],
    registry=REGISTRY,
)  # fmt: skip
STALLED = Gauge(
    "newsfeed_partition_stalled", "1 while a partition's lag grows and its committed offset stands still",
    ["group", "topic", "partition"], registry=REGISTRY,
)  # fmt: skip


class OutcomeCollector(Collector):
    """Turns a process's outcome tallies ("skipped:listing-page", "dead-letter:extract:timeout", …) into
    labelled counter families at scrape time, so the code that counts needs no Prometheus calls."""

    def __init__(
        self,
        role: str,
        tally: Callable[[], Mapping[str, int]],
        extra: Callable[[], Mapping[str, float]] | None = None,
    ) -> None:
        self.role = role
        self.tally = tally
        self.extra = extra

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        events = CounterMetricFamily(
            "newsfeed_events", "Every counted outcome, by process role", labels=["role", "event"]
        )
        dead = CounterMetricFamily(
            "newsfeed_dead_letters", "Records dead-lettered", labels=["stage", "reason"]
        )
        skipped = CounterMetricFamily("newsfeed_skipped", "Pages that gave no article", labels=["reason"])
        dedup = CounterMetricFamily("newsfeed_dedup_verdicts", "Articles by dedup verdict", labels=["method"])
        tags = CounterMetricFamily("newsfeed_tags", "Articles tagged, by topic", labels=["topic"])
        pages = CounterMetricFamily("newsfeed_crawl_pages", "Crawled URLs by outcome", labels=["outcome"])
        for event, count in sorted(self.tally().items()):
            events.add_metric([self.role, event], count)
            kind, _, rest = event.partition(":")
            if kind == "dead-letter":
                stage, _, reason = rest.rpartition(":")
                dead.add_metric([stage or self.role, reason], count)
            elif kind == "skipped":
                skipped.add_metric([rest], count)
            elif kind == "dedup" and rest in {"first", "exact", "near"}:
                dedup.add_metric([rest], count)
            elif kind == "topic":
                tags.add_metric([rest], count)
            elif self.role == "crawler":
                pages.add_metric([event], count)
        yield from (events, dead, skipped, dedup, tags, pages)
        if self.extra is not None:
            for name, value in self.extra().items():
                gauge = GaugeMetricFamily(name, f"{name} ({self.role})")
                gauge.add_metric([], value)
                yield gauge


def watch_outcomes(
    role: str,
    tally: Tally[str] | Callable[[], Mapping[str, int]],
    extra: Callable[[], Mapping[str, float]] | None = None,
) -> None:
    """Expose `tally` (a Counter, or a function returning one) as this process's outcome metrics."""
    source = tally if callable(tally) and not isinstance(tally, Tally) else (lambda: tally)
    REGISTRY.register(OutcomeCollector(role, source, extra))


def serve(host: str, port: int) -> None:
    """Serve /metrics from a background thread (processes without a web server of their own)."""
    start_http_server(port, addr=host, registry=REGISTRY)


def exposition() -> bytes:
    """The registry in Prometheus' text format (the worker serves it on its web server)."""
    return generate_latest(REGISTRY)
