"""The live dashboard the worker serves: a self-contained page at /dashboard/ and the JSON it polls."""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from itertools import pairwise
from typing import Any

from faust.web import Request, Response, View
from prometheus_client.registry import Collector

from pipeline.clock import Clock
from pipeline.ops.metrics import REGISTRY
from pipeline.records import EnrichedArticle
from pipeline.settings import Settings
from pipeline.sink.store import ArticleStore, ClusterView, TopicBucket, TopicCount
from pipeline.sink.writer import open_article_store, searchable_backend
from pipeline.stream.app import Wiring

log = logging.getLogger(__name__)

SAMPLE_INTERVAL_S = 5.0
RATE_WINDOW_S = 300.0
LATEST_ARTICLES = 20
SHOWN_CLUSTERS = 20
# Every open page polls; within this age they all get the same answer from one store read.
SUMMARY_MAX_AGE_S = 1.0
MINUTE_BUCKETS = 60
HOUR_BUCKETS = 48

RATED = ("extracted", "stored", "dead_letters")

# The page is static: everything it shows comes from the summary. It loads nothing from elsewhere, and
# the policy makes a browser refuse anything that would (a CDN script, a web font, a remote image).
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}
API_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


# --------------------------------------------------------------------------------------------------
# rates, from counter samples
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CounterSample:
    """The rated counters at one moment; None for a counter this process does not expose (yet)."""

    at: float  # seconds since the epoch
    values: Mapping[str, float | None]


def read_counters(registry: Collector) -> dict[str, float | None]:
    """The worker's extracted and stored counts and all dead letters, from the metrics registry.

    A family that is registered but has no sample yet counts zero; one that is not registered is None.
    """
    values: dict[str, float | None] = dict.fromkeys(RATED)
    for family in registry.collect():
        if family.name == "newsfeed_events":
            values["extracted"] = values["extracted"] or 0.0
            values["stored"] = values["stored"] or 0.0
            for sample in family.samples:
                event = sample.labels.get("event")
                worker_total = sample.name.endswith("_total") and sample.labels.get("role") == "worker"
                if worker_total and event in ("extracted", "stored"):
                    values[event] = sample.value
        elif family.name == "newsfeed_dead_letters":
            values["dead_letters"] = math.fsum(
                sample.value
                for sample in family.samples
                if sample.name.endswith("_total") and sample.labels.get("role", "worker") == "worker"
            )
    return values


def counter_increase(earlier: float, later: float) -> float:
    # A counter that went down was reset (a restart): everything it shows now is new.
    return later - earlier if later >= earlier else later


def rates_of(samples: Sequence[CounterSample], now: float, window_s: float = RATE_WINDOW_S) -> dict[str, Any]:
    """Per-second rates over the window, the rate between each two samples (for sparklines), and the
    newest totals; a rate is None until two samples of its counter exist."""
    recent = [sample for sample in samples if sample.at >= now - window_s]
    per_second: dict[str, float | None] = {}
    for name in RATED:
        points = [(sample.at, sample.values.get(name)) for sample in recent]
        known = [(at, value) for at, value in points if value is not None]
        if len(known) < 2 or known[-1][0] <= known[0][0]:
            per_second[name] = None
            continue
        increase = sum(counter_increase(a, b) for (_, a), (_, b) in pairwise(known))
        per_second[name] = increase / (known[-1][0] - known[0][0])
    series = []
    for before, after in pairwise(recent):
        elapsed = after.at - before.at
        point: dict[str, Any] = {"at": _iso(after.at)}
        for name in RATED:
            earlier, later = before.values.get(name), after.values.get(name)
            point[name] = (
                counter_increase(earlier, later) / elapsed
                if earlier is not None and later is not None and elapsed > 0
                else None
            )
        series.append(point)
    totals = dict(recent[-1].values) if recent else dict.fromkeys(RATED)
    return {
        "window_s": window_s,
        "sample_interval_s": SAMPLE_INTERVAL_S,
        "per_second": per_second,
        "totals": totals,
        "series": series,
    }


def read_lag(registry: Collector) -> list[dict[str, Any]]:
    """Consumer lag per group, topic and partition from the lag gauges, with the stalled flag."""
    lag: dict[tuple[str, str, str], float] = {}
    stalled: set[tuple[str, str, str]] = set()
    for family in registry.collect():
        if family.name not in ("newsfeed_consumer_lag", "newsfeed_partition_stalled"):
            continue
        for sample in family.samples:
            key = (
                sample.labels.get("group", ""),
                sample.labels.get("topic", ""),
                sample.labels.get("partition", ""),
            )
            if family.name == "newsfeed_consumer_lag":
                lag[key] = sample.value
            elif sample.value:
                stalled.add(key)
    return [
        {"group": group, "topic": topic, "partition": _partition(partition), "lag": int(value),
         "stalled": (group, topic, partition) in stalled}
        for (group, topic, partition), value in sorted(
            lag.items(), key=lambda item: (item[0][0], item[0][1], _partition(item[0][2]))
        )
    ]  # fmt: skip


def _partition(label: str) -> int | str:
    return int(label) if label.isdigit() else label


# --------------------------------------------------------------------------------------------------
# what the store holds, shaped for the page
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TopicWindow:
    """The chart's buckets: per minute over the last hour while articles arrive, per hour over the two
    days up to the newest article when the pipeline has been quiet for longer."""

    per: TopicBucket
    buckets: list[str]

    @property
    def since(self) -> str:
        return self.buckets[0].replace("Z", "+00:00")


def topic_window(now: datetime, newest_processed_at: str | None) -> TopicWindow:
    newest = _instant(newest_processed_at) if newest_processed_at else None
    if newest is None or now - newest <= timedelta(hours=1):
        end = now.astimezone(UTC).replace(second=0, microsecond=0)
        starts = [end - timedelta(minutes=back) for back in range(MINUTE_BUCKETS - 1, -1, -1)]
        return TopicWindow("minute", [_bucket(start) for start in starts])
    end = newest.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    starts = [end - timedelta(hours=back) for back in range(HOUR_BUCKETS - 1, -1, -1)]
    return TopicWindow("hour", [_bucket(start) for start in starts])


def topic_series(window: TopicWindow, counts: Iterable[TopicCount]) -> dict[str, Any]:
    """Counts per topic for every bucket of the window (zero where none), the busiest topic first."""
    position = {bucket: index for index, bucket in enumerate(window.buckets)}
    series: dict[str, list[int]] = {}
    for count in counts:
        if count.bucket in position:
            series.setdefault(count.topic, [0] * len(window.buckets))[position[count.bucket]] += count.count
    ordered = sorted(series.items(), key=lambda item: (-sum(item[1]), item[0]))
    return {
        "per": window.per,
        "buckets": window.buckets,
        "series": [{"topic": topic, "counts": counts} for topic, counts in ordered],
    }


def article_view(record: EnrichedArticle) -> dict[str, Any]:
    dedup = record["dedup"]
    return {
        "id": record["id"],
        "title": record["title"],
        "url": record["url"],
        "published": record["published"],
        "site_name": record["site_name"],
        "processed_at": record["processed_at"],
        "topics": [
            {"id": topic["id"], "score": topic["score"], "evidence": topic["evidence"]}
            for topic in record["topics"]
        ],
        "duplicate_of": dedup["duplicate_of"],
        "cluster_id": dedup["cluster_id"],
        "dedup_method": dedup["method"],
    }


def cluster_view(cluster: ClusterView) -> dict[str, Any]:
    canonical = cluster.canonical
    return {
        "cluster_id": cluster.cluster_id,
        "canonical": (
            {"id": canonical.id, "title": canonical.title, "url": canonical.url} if canonical else None
        ),
        "copies": [
            {"id": copy.id, "title": copy.title, "site_name": copy.site_name} for copy in cluster.copies
        ],
        "last_processed_at": cluster.last_processed_at,
    }


@dataclass(frozen=True, slots=True)
class StoreContents:
    """One read of the store for the summary."""

    latest: list[EnrichedArticle] = field(default_factory=list)
    clusters: list[ClusterView] = field(default_factory=list)
    window: TopicWindow | None = None
    topic_counts: list[TopicCount] = field(default_factory=list)


def read_store(store: ArticleStore, now: datetime) -> StoreContents:
    latest = store.latest(LATEST_ARTICLES)
    window = topic_window(now, latest[0]["processed_at"] if latest else None)
    return StoreContents(
        latest=latest,
        clusters=store.clusters(SHOWN_CLUSTERS),
        window=window,
        topic_counts=store.topic_counts(window.since, window.per),
    )


def build_summary(
    now: datetime,
    samples: Sequence[CounterSample],
    lag: list[dict[str, Any]],
    contents: StoreContents,
    store: Mapping[str, Any],
) -> dict[str, Any]:
    """The JSON the page polls."""
    window = contents.window or topic_window(now, None)
    taxonomy = contents.latest[0]["versions"]["taxonomy"] if contents.latest else None
    return {
        "generated_at": now.astimezone(UTC).isoformat(),
        "rates": rates_of(samples, now.timestamp()),
        "lag": lag,
        "latest": [article_view(record) for record in contents.latest],
        "clusters": [cluster_view(cluster) for cluster in contents.clusters],
        "topic_counts": topic_series(window, contents.topic_counts),
        # The version that tagged the newest stored article: the one in force unless it just changed.
        "taxonomy_version": taxonomy,
        "store": dict(store),
    }


# --------------------------------------------------------------------------------------------------
# the worker side: sampling, store connection, web views
# --------------------------------------------------------------------------------------------------


class StoreReader:
    """A read-only connection to the store the sink writes, opened on first use and again after an
    error (a restarted database, a store file not written yet)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.backend = searchable_backend(settings)
        self._store: ArticleStore | None = None

    def read(self, now: datetime) -> StoreContents:
        """Runs in a thread; an empty result while the sink has written nothing yet."""
        if self._store is None:
            if self.backend == "sqlite" and not self.settings.store.sqlite_path.exists():
                return StoreContents()
            self._store = self._open()
        try:
            return read_store(self._store, now)
        except BaseException:
            self.close()
            raise

    def _open(self) -> ArticleStore:
        return open_article_store(self.settings, self.backend, read_only=True)

    def close(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            store.close()


class Dashboard:
    """The counters' recent history and the summary the page polls."""

    def __init__(self, settings: Settings, clock: Clock, registry: Collector = REGISTRY) -> None:
        self.clock = clock
        self.registry = registry
        self.samples: deque[CounterSample] = deque(maxlen=int(RATE_WINDOW_S / SAMPLE_INTERVAL_S) + 2)
        self.reader = StoreReader(settings)
        self._lock = asyncio.Lock()
        self._cached: tuple[float, dict[str, Any]] | None = None
        self._last_store_error: str | None = None

    def sample(self) -> None:
        self.samples.append(CounterSample(self.clock().timestamp(), read_counters(self.registry)))

    async def summary(self) -> dict[str, Any]:
        async with self._lock:
            now = self.clock()
            if self._cached is not None and now.timestamp() - self._cached[0] < SUMMARY_MAX_AGE_S:
                return self._cached[1]
            store: dict[str, Any] = {"backend": self.reader.backend, "error": None}
            try:
                contents = await asyncio.to_thread(self.reader.read, now)
                self._last_store_error = None
            except Exception as error:
                contents = StoreContents()
                store["error"] = f"{type(error).__name__}: {error}"
                if store["error"] != self._last_store_error:  # once, not on every poll
                    log.warning("dashboard cannot read the %s store: %s", self.reader.backend, error)
                self._last_store_error = store["error"]
            summary = build_summary(now, self.samples, read_lag(self.registry), contents, store)
            self._cached = (now.timestamp(), summary)
            return summary

    def close(self) -> None:
        self.reader.close()


def dashboard_page() -> str:
    return files("pipeline.ops").joinpath("dashboard.html").read_text(encoding="utf-8")


def register_dashboard(wiring: Wiring) -> Dashboard:
    """Serve /dashboard/ and /dashboard/api/summary on the app's web server and sample the counters."""
    app = wiring.app
    dashboard = Dashboard(wiring.settings, wiring.clock)
    page = dashboard_page()
    # The baseline before any record is consumed: a backlog processed on start-up then shows as a rate.
    dashboard.sample()

    @app.page("/dashboard/api/summary", name="dashboard-summary")
    class DashboardSummary(View):
        async def get(self, request: Request) -> Response:
            return self.json(await dashboard.summary(), headers=dict(API_HEADERS))

    @app.page("/dashboard/", name="dashboard")
    class DashboardPage(View):
        async def get(self, request: Request) -> Response:
            return self.html(page, headers=dict(PAGE_HEADERS))

    @app.page("/dashboard", name="dashboard-without-slash")
    class DashboardRedirect(View):
        # The page polls a relative address ("api/summary"), which resolves only below the slash; a
        # relative Location keeps that true behind a proxy that mounts the worker under a prefix.
        async def get(self, request: Request) -> Response:
            return self.text("", status=308, headers={"Location": "dashboard/"})

    @app.timer(SAMPLE_INTERVAL_S, name="dashboard-sample-counters")  # type: ignore[untyped-decorator]
    async def sample_counters() -> None:
        dashboard.sample()

    async def close_store(sender: Any, *args: Any, **kwargs: Any) -> None:
        await asyncio.to_thread(dashboard.close)

    # mode spells its handler type with mypy_extensions' argument constructors, which match no def.
    app.on_before_shutdown.connect(close_store)  # type: ignore[arg-type]

    return dashboard


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat()


def _bucket(start: datetime) -> str:
    return start.strftime("%Y-%m-%dT%H:%M:00Z")


def _instant(stamp: str) -> datetime:
    moment = datetime.fromisoformat(stamp)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
