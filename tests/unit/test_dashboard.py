"""The dashboard's parts: counters and lag from the metrics registry, rates, chart buckets, the summary's
shape, and the pages on a Faust app's web server (no broker needed: the app is never started)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry, Gauge

from pipeline.ops.dashboard import (
    PAGE_HEADERS,
    CounterSample,
    Dashboard,
    StoreContents,
    TopicWindow,
    article_view,
    build_summary,
    cluster_view,
    counter_increase,
    rates_of,
    read_counters,
    read_lag,
    register_dashboard,
    topic_series,
    topic_window,
)
from pipeline.ops.isolated import with_overrides
from pipeline.ops.metrics import OutcomeCollector
from pipeline.settings import Settings, load_settings
from pipeline.sink.sqlite_store import SqliteStore
from pipeline.sink.store import ClusterMember, ClusterView, TopicCount
from pipeline.stream.app import build_app
from tests.unit.test_store_views import SEED, article_id, story

NOW = datetime(2026, 1, 1, 12, 30, 15, tzinfo=UTC)


class FixedClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def registry_with_outcomes(tally: Counter[str]) -> CollectorRegistry:
    registry = CollectorRegistry()
    collector = OutcomeCollector()
    collector.sources["worker"] = (lambda: tally, None)
    registry.register(collector)
    return registry


def sample(at: float, **values: float | None) -> CounterSample:
    return CounterSample(at, {"extracted": None, "stored": None, "dead_letters": None, **values})


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return with_overrides(
        load_settings(),
        {
            "store": {"backends": ["sqlite"], "sqlite_path": str(tmp_path / "newsfeed.sqlite3")},
            "worker": {"data_dir": str(tmp_path / "faust")},
        },
    )


# --------------------------------------------------------------------------------------------------
# counters, rates and lag
# --------------------------------------------------------------------------------------------------


def test_counters_come_from_the_worker_outcomes() -> None:
    tally = Counter(
        {"extracted": 7, "stored": 5, "dead-letter:extract:timeout": 2, "dead-letter:sink:schema": 1}
    )
    registry = registry_with_outcomes(tally)

    assert read_counters(registry) == {"extracted": 7.0, "stored": 5.0, "dead_letters": 3.0}


def test_registered_counters_that_counted_nothing_yet_are_zero() -> None:
    assert read_counters(registry_with_outcomes(Counter())) == {
        "extracted": 0.0,
        "stored": 0.0,
        "dead_letters": 0.0,
    }


def test_counters_no_process_exposes_are_unknown() -> None:
    assert read_counters(CollectorRegistry()) == {"extracted": None, "stored": None, "dead_letters": None}


def test_other_roles_outcomes_are_not_the_workers() -> None:
    registry = CollectorRegistry()
    collector = OutcomeCollector()
    collector.sources["sink"] = (lambda: Counter({"stored": 9, "dead-letter:sink:schema": 4}), None)
    registry.register(collector)

    assert read_counters(registry) == {"extracted": 0.0, "stored": 0.0, "dead_letters": 0.0}


def test_a_counter_that_went_down_was_reset() -> None:
    assert counter_increase(10, 15) == 5
    assert counter_increase(10, 3) == 3


def test_rates_average_the_window_and_survive_a_reset() -> None:
    samples = [
        sample(0, extracted=100),  # older than the window
        sample(100, extracted=0, stored=0, dead_letters=0),
        sample(105, extracted=10, stored=5, dead_letters=0),
        sample(110, extracted=4, stored=10, dead_letters=1),  # the worker restarted
    ]

    rates = rates_of(samples, now=110, window_s=60)

    assert rates["per_second"] == {"extracted": 14 / 10, "stored": 1.0, "dead_letters": 0.1}
    assert rates["totals"] == {"extracted": 4, "stored": 10, "dead_letters": 1}
    assert rates["series"] == [
        {"at": "1970-01-01T00:01:45+00:00", "extracted": 2.0, "stored": 1.0, "dead_letters": 0.0},
        {"at": "1970-01-01T00:01:50+00:00", "extracted": 0.8, "stored": 1.0, "dead_letters": 0.2},
    ]


def test_a_rate_needs_two_samples_of_its_counter() -> None:
    assert rates_of([], now=10)["per_second"] == {"extracted": None, "stored": None, "dead_letters": None}
    assert rates_of([], now=10)["totals"] == {"extracted": None, "stored": None, "dead_letters": None}
    rates = rates_of([sample(0, extracted=1), sample(5, extracted=2, stored=1)], now=5)

    assert rates["per_second"] == {"extracted": 0.2, "stored": None, "dead_letters": None}
    assert rates["series"] == [
        {"at": "1970-01-01T00:00:05+00:00", "extracted": 0.2, "stored": None, "dead_letters": None}
    ]


def test_lag_per_partition_in_order_with_stalls() -> None:
    registry = CollectorRegistry()
    lag = Gauge("newsfeed_consumer_lag", "lag", ["group", "topic", "partition"], registry=registry)
    stalled = Gauge(
        "newsfeed_partition_stalled", "stalled", ["group", "topic", "partition"], registry=registry
    )
    lag.labels("newsfeed", "raw", "10").set(4)
    lag.labels("newsfeed", "raw", "2").set(0)
    lag.labels("newsfeed", "articles", "0").set(7)
    stalled.labels("newsfeed", "articles", "0").set(1)
    stalled.labels("newsfeed", "raw", "2").set(0)

    assert read_lag(registry) == [
        {"group": "newsfeed", "topic": "articles", "partition": 0, "lag": 7, "stalled": True},
        {"group": "newsfeed", "topic": "raw", "partition": 2, "lag": 0, "stalled": False},
        {"group": "newsfeed", "topic": "raw", "partition": 10, "lag": 4, "stalled": False},
    ]
    assert read_lag(CollectorRegistry()) == []


# --------------------------------------------------------------------------------------------------
# the topic chart's buckets
# --------------------------------------------------------------------------------------------------


def test_the_chart_shows_the_last_hour_per_minute_while_articles_arrive() -> None:
    for newest in (None, "2026-01-01T12:29:00+00:00", "2026-01-01T11:30:15+00:00"):
        window = topic_window(NOW, newest)
        assert window.per == "minute"
        assert len(window.buckets) == 60
        assert window.buckets[0] == "2026-01-01T11:31:00Z"
        assert window.buckets[-1] == "2026-01-01T12:30:00Z"
        assert window.since == "2026-01-01T11:31:00+00:00"


def test_the_chart_shows_two_days_per_hour_up_to_an_older_newest_article() -> None:
    window = topic_window(NOW, "2026-01-01T15:10:00+05:00")  # 10:10 UTC, over an hour ago

    assert window.per == "hour"
    assert len(window.buckets) == 48
    assert window.buckets[-1] == "2026-01-01T10:00:00Z"
    assert window.buckets[0] == "2025-12-30T11:00:00Z"


def test_topic_series_fill_every_bucket_busiest_topic_first() -> None:
    window = TopicWindow("minute", ["2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z", "2026-01-01T00:02:00Z"])
    counts = [
        TopicCount("2026-01-01T00:00:00Z", "diplomacy", 1),
        TopicCount("2026-01-01T00:02:00Z", "diplomacy", 1),
        TopicCount("2026-01-01T00:01:00Z", "us-russia", 3),
        TopicCount("2025-12-31T23:59:00Z", "elections", 9),  # before the window
    ]

    assert topic_series(window, counts) == {
        "per": "minute",
        "buckets": window.buckets,
        "series": [
            {"topic": "us-russia", "counts": [0, 3, 0]},
            {"topic": "diplomacy", "counts": [1, 0, 1]},
        ],
    }


# --------------------------------------------------------------------------------------------------
# the summary's shape
# --------------------------------------------------------------------------------------------------


def test_an_article_is_shown_with_its_topics_evidence_and_dedup_verdict() -> None:
    view = article_view(SEED)

    assert view == {
        "id": SEED["id"],
        "title": "Putin advocates normalising ties in New Year greetings to Trump",
        "url": SEED["url"],
        "published": "2019-12-30T22:00:00+05:30",
        "site_name": "Devdiscourse",
        "processed_at": "2026-01-01T00:00:05+00:00",
        "topics": [{"id": "us-russia", "score": 10.0, "evidence": SEED["topics"][0]["evidence"]}],
        "duplicate_of": None,
        "cluster_id": SEED["id"],
        "dedup_method": "first",
    }


def test_a_cluster_is_shown_with_its_canonical_copy_or_without_one() -> None:
    original = ClusterMember("a", "The story", "http://news.example.test/a", "Site A")
    copy = ClusterMember("b", "The story again", "http://news.example.test/b", None)

    assert cluster_view(ClusterView("a", original, [copy], "2026-01-01T00:00:00+00:00")) == {
        "cluster_id": "a",
        "canonical": {"id": "a", "title": "The story", "url": "http://news.example.test/a"},
        "copies": [{"id": "b", "title": "The story again", "site_name": None}],
        "last_processed_at": "2026-01-01T00:00:00+00:00",
    }
    assert cluster_view(ClusterView("a", None, [copy], "2026-01-01T00:00:00+00:00"))["canonical"] is None


def test_the_summary_holds_every_part_and_is_json() -> None:
    newest = story(2, processed_at="2026-01-01T12:29:40+00:00", copy_of=1)
    contents = StoreContents(
        latest=[newest, story(1, processed_at="2026-01-01T12:29:30+00:00")],
        clusters=[
            ClusterView(article_id(1), None, [ClusterMember(article_id(2), "Story 2", "u", None)], "x")
        ],
        window=topic_window(NOW, newest["processed_at"]),
        topic_counts=[TopicCount("2026-01-01T12:29:00Z", "us-russia", 1)],
    )
    samples = [sample(NOW.timestamp() - 5, extracted=0), sample(NOW.timestamp(), extracted=10)]

    summary = build_summary(NOW, samples, [], contents, {"backend": "sqlite", "error": None})

    assert json.loads(json.dumps(summary)) == summary
    assert set(summary) == {
        "generated_at", "rates", "lag", "latest", "clusters", "topic_counts", "taxonomy_version", "store",
    }  # fmt: skip
    assert summary["generated_at"] == "2026-01-01T12:30:15+00:00"
    assert summary["rates"]["per_second"]["extracted"] == 2.0
    assert [article["id"] for article in summary["latest"]] == [article_id(2), article_id(1)]
    assert summary["latest"][0]["duplicate_of"] == article_id(1)
    assert summary["clusters"][0]["copies"] == [{"id": article_id(2), "title": "Story 2", "site_name": None}]
    assert summary["topic_counts"]["series"] == [{"topic": "us-russia", "counts": [0] * 58 + [1, 0]}]
    assert summary["taxonomy_version"] == SEED["versions"]["taxonomy"]


def test_an_empty_summary_says_so() -> None:
    summary = build_summary(NOW, [], [], StoreContents(), {"backend": "sqlite", "error": None})

    assert summary["latest"] == summary["clusters"] == summary["lag"] == []
    assert summary["taxonomy_version"] is None
    assert summary["topic_counts"]["per"] == "minute"
    assert summary["topic_counts"]["series"] == []
    assert summary["rates"]["per_second"] == {"extracted": None, "stored": None, "dead_letters": None}


# --------------------------------------------------------------------------------------------------
# reading the store
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def dashboard(settings: Settings) -> Iterator[Dashboard]:
    board = Dashboard(settings, FixedClock(NOW), registry=registry_with_outcomes(Counter()))
    yield board
    board.close()


async def test_no_store_yet_is_an_empty_summary_not_an_error(
    dashboard: Dashboard, settings: Settings
) -> None:
    summary = await dashboard.summary()

    assert summary["latest"] == []
    assert summary["store"] == {"backend": "sqlite", "error": None}
    assert not settings.store.sqlite_path.exists(), "the dashboard must not create the sink's store"


async def test_the_summary_reads_what_the_sink_stored(dashboard: Dashboard, settings: Settings) -> None:
    writer = SqliteStore(settings.store.sqlite_path)
    try:
        writer.apply(
            [
                story(1, processed_at="2026-01-01T12:29:30+00:00"),
                story(2, processed_at="2026-01-01T12:29:40+00:00", copy_of=1),
            ],
            [],
        )
    finally:
        writer.close()

    summary = await dashboard.summary()

    assert [article["id"] for article in summary["latest"]] == [article_id(2), article_id(1)]
    assert summary["clusters"][0]["canonical"]["id"] == article_id(1)
    assert summary["topic_counts"]["series"] == [{"topic": "us-russia", "counts": [0] * 58 + [1, 0]}]


async def test_open_pages_polling_together_share_one_read(dashboard: Dashboard) -> None:
    clock = dashboard.clock
    assert isinstance(clock, FixedClock)
    first = await dashboard.summary()
    assert await dashboard.summary() is first
    clock.now = NOW + timedelta(seconds=2)
    assert await dashboard.summary() is not first


async def test_an_unreadable_store_is_reported_on_the_page(dashboard: Dashboard, settings: Settings) -> None:
    settings.store.sqlite_path.write_bytes(b"this is not a database" * 100)

    summary = await dashboard.summary()

    assert summary["latest"] == []
    assert summary["store"]["backend"] == "sqlite"
    assert "DatabaseError" in summary["store"]["error"]


def test_samples_are_kept_for_the_rate_window_only(dashboard: Dashboard) -> None:
    for _ in range(200):
        dashboard.sample()

    assert len(dashboard.samples) == dashboard.samples.maxlen
    assert dashboard.samples[-1] == CounterSample(
        NOW.timestamp(), {"extracted": 0.0, "stored": 0.0, "dead_letters": 0.0}
    )


# --------------------------------------------------------------------------------------------------
# the pages on the worker's web server
# --------------------------------------------------------------------------------------------------


async def test_the_worker_serves_the_page_the_summary_and_a_redirect(settings: Settings) -> None:
    wiring = build_app(settings)
    register_dashboard(wiring)

    async with TestClient(TestServer(wiring.app.web.web_app)) as client:
        page = await client.get("/dashboard/")
        assert page.status == 200
        assert page.headers["Content-Type"].startswith("text/html")
        assert page.headers["Content-Security-Policy"] == PAGE_HEADERS["Content-Security-Policy"]
        html = await page.text()
        assert 'fetch("api/summary"' in html

        summary = await client.get("/dashboard/api/summary")
        assert summary.status == 200
        assert summary.headers["Cache-Control"] == "no-store"
        assert (await summary.json())["store"] == {"backend": "sqlite", "error": None}

        redirect = await client.get("/dashboard", allow_redirects=False)
        assert redirect.status == 308
        assert redirect.headers["Location"] == "dashboard/"


def test_the_page_is_self_contained() -> None:
    html = (Path(__file__).resolve().parents[2] / "pipeline" / "ops" / "dashboard.html").read_text()

    # Nothing loaded from elsewhere: no external scripts, styles, fonts or images.
    for marker in ("<script src", '<link rel="stylesheet"', "@import", "@font-face", "url(http", "//cdn"):
        assert marker not in html
    assert "http://" not in html.replace('"http://www.w3.org/2000/svg"', "")
    assert "https://" not in html
    assert "innerHTML" not in html, "crawled text must never be parsed as markup"
