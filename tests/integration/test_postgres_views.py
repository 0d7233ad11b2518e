"""The PostgreSQL store's dashboard views against the tests' own server, matching the SQLite store's."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from pipeline.ops.dashboard import Dashboard
from pipeline.ops.isolated import with_overrides
from pipeline.records import EnrichedArticle
from pipeline.settings import load_settings
from pipeline.sink.postgres_store import PostgresStore
from pipeline.sink.sqlite_store import SqliteStore
from pipeline.sink.store import ClusterView, TopicCount
from tests.unit.test_store_views import article_id, member, story

pytestmark = pytest.mark.integration

MIXED_BATCH: list[EnrichedArticle] = [
    story(1, processed_at="2026-01-01T00:00:01+00:00", topics=("us-russia", "diplomacy")),
    story(2, processed_at="2026-01-01T00:00:59.9+00:00"),
    story(3, processed_at="2026-01-01T00:00:30+00:00", copy_of=1, site_name="Wire"),
    story(4, processed_at="2026-01-01T00:02:00+00:00", topics=("diplomacy",)),
    story(5, processed_at="2026-01-01T01:02:10+00:00", topics=()),
    story(6, processed_at="2026-01-01T01:03:00+00:00", copy_of=4, site_name="Post"),
]


@pytest.fixture
def store(postgres_dsn: str) -> Iterator[PostgresStore]:
    postgres_store = PostgresStore(postgres_dsn)
    yield postgres_store
    postgres_store.close()


def test_latest_lists_the_most_recently_processed_first_up_to_the_limit(store: PostgresStore) -> None:
    records = [story(index, processed_at=f"2026-01-01T00:00:0{index}+00:00") for index in range(1, 6)]
    store.apply(records[::2], [])
    store.apply(records[1::2], [])

    assert store.latest(3) == [records[4], records[3], records[2]]
    assert [record["id"] for record in store.latest()] == [article_id(index) for index in (5, 4, 3, 2, 1)]


def test_an_empty_store_has_no_latest_clusters_or_counts(store: PostgresStore) -> None:
    assert store.latest() == []
    assert store.clusters() == []
    assert store.topic_counts() == []


def test_clusters_show_the_canonical_copy_and_its_copies_most_recent_cluster_first(
    store: PostgresStore,
) -> None:
    store.apply(
        [
            *MIXED_BATCH,
            story(8, processed_at="2026-01-01T00:00:02+00:00", copy_of=1, site_name="Post"),
        ],
        [],
    )

    assert store.clusters() == [
        ClusterView(article_id(4), member(4), [member(6, "Post")], "2026-01-01T01:03:00+00:00"),
        ClusterView(
            article_id(1), member(1), [member(8, "Post"), member(3, "Wire")], "2026-01-01T00:00:30+00:00"
        ),
    ]
    assert [cluster.cluster_id for cluster in store.clusters(limit=1)] == [article_id(4)]


def test_retracted_canonical_copies_and_copy_only_clusters(store: PostgresStore) -> None:
    store.apply(
        [
            story(1, processed_at="2026-01-01T00:00:01+00:00"),
            story(2, processed_at="2026-01-01T00:00:02+00:00", copy_of=1),
            story(4, processed_at="2026-01-01T00:00:04+00:00", copy_of=3),
            story(5, processed_at="2026-01-01T00:00:05+00:00", copy_of=3),
        ],
        [],
    )
    store.apply([], [article_id(1)])

    assert store.clusters() == [
        ClusterView(article_id(3), None, [member(4), member(5)], "2026-01-01T00:00:05+00:00")
    ]


def test_topic_counts_per_minute_and_hour_with_since(store: PostgresStore) -> None:
    store.apply(MIXED_BATCH, [])

    assert store.topic_counts() == [
        TopicCount("2026-01-01T00:00:00Z", "diplomacy", 1),
        TopicCount("2026-01-01T00:00:00Z", "us-russia", 2),
        TopicCount("2026-01-01T00:02:00Z", "diplomacy", 1),
    ]
    assert store.topic_counts(per="hour") == [
        TopicCount("2026-01-01T00:00:00Z", "diplomacy", 2),
        TopicCount("2026-01-01T00:00:00Z", "us-russia", 2),
    ]
    assert store.topic_counts(since="2026-01-01T01:01:00+01:00") == [
        TopicCount("2026-01-01T00:02:00Z", "diplomacy", 1),
    ]


def test_topic_count_buckets_are_utc_whatever_the_stamps_offset(store: PostgresStore) -> None:
    store.apply([story(1, processed_at="2026-01-01T05:30:10+05:30")], [])

    assert store.topic_counts() == [TopicCount("2026-01-01T00:00:00Z", "us-russia", 1)]


def test_the_views_agree_with_the_sqlite_store(store: PostgresStore, tmp_path: Path) -> None:
    sqlite = SqliteStore(tmp_path / "newsfeed.sqlite3")
    try:
        for target in (store, sqlite):
            target.apply(MIXED_BATCH, [])
        assert store.latest() == sqlite.latest()
        assert store.clusters() == sqlite.clusters()
        for per in ("minute", "hour"):
            assert store.topic_counts(per=per) == sqlite.topic_counts(per=per)
        since = "2026-01-01T00:01:00+00:00"
        assert store.topic_counts(since=since) == sqlite.topic_counts(since=since)
    finally:
        sqlite.close()


def test_a_reader_neither_creates_the_schema_nor_writes(postgres_dsn: str) -> None:
    reader = PostgresStore(postgres_dsn, read_only=True)
    try:
        with pytest.raises(psycopg.errors.UndefinedTable):
            reader.latest()
        writer = PostgresStore(postgres_dsn)
        try:
            writer.apply([story(1, processed_at="2026-01-01T00:00:01+00:00")], [])
        finally:
            writer.close()
        assert [record["id"] for record in reader.latest()] == [article_id(1)]
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            reader.apply([story(2, processed_at="2026-01-01T00:00:02+00:00")], [])
    finally:
        reader.close()


def test_the_processed_index_serves_the_newest_first_listing(store: PostgresStore, postgres_dsn: str) -> None:
    store.apply([story(index, processed_at=f"2026-01-01T00:{index:02d}:00+00:00") for index in range(40)], [])
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        connection.execute("ANALYZE articles")
        connection.execute("SET enable_seqscan = off")  # a tiny table would be scanned whatever the index
        plan = "\n".join(
            row[0]
            for row in connection.execute(
                'EXPLAIN SELECT record FROM articles ORDER BY processed_at COLLATE "C" DESC, id DESC LIMIT 20'
            )
        )
    assert "articles_processed" in plan


async def test_the_dashboard_reads_a_postgres_store(store: PostgresStore, postgres_dsn: str) -> None:
    store.apply(MIXED_BATCH, [])
    settings = with_overrides(
        load_settings(), {"store": {"backends": ["postgres", "jsonl"], "postgres_dsn": postgres_dsn}}
    )
    dashboard = Dashboard(settings, lambda: datetime(2026, 1, 1, 3, 0, tzinfo=UTC))
    try:
        summary = await dashboard.summary()
    finally:
        dashboard.close()

    assert summary["store"] == {"backend": "postgres", "error": None}
    assert [article["id"] for article in summary["latest"]][:2] == [article_id(6), article_id(5)]
    assert [cluster["cluster_id"] for cluster in summary["clusters"]] == [article_id(4), article_id(1)]
    # Quiet for over an hour: the chart shows hours, up to the newest article's.
    assert summary["topic_counts"]["per"] == "hour"
    assert summary["topic_counts"]["buckets"][-2:] == ["2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z"]
    assert [(series["topic"], series["counts"][-2:]) for series in summary["topic_counts"]["series"]] == [
        ("diplomacy", [2, 0]),
        ("us-russia", [2, 0]),
    ]
