"""The SQLite store's dashboard views: newest articles, clusters of copies, topic counts over time."""

from __future__ import annotations

import copy
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.records import EnrichedArticle
from pipeline.sink.sqlite_store import SqliteStore
from pipeline.sink.store import ClusterMember, ClusterView, TopicCount

EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "examples" / "enriched_article.v1"
SEED: EnrichedArticle = json.loads((EXAMPLES / "seed.json").read_text())


def story(
    index: int,
    *,
    processed_at: str,
    topics: tuple[str, ...] = ("us-russia",),
    copy_of: int | None = None,
    site_name: str = "Devdiscourse",
) -> EnrichedArticle:
    """The example record under another id, processed at `processed_at`, optionally a copy of `copy_of`."""
    record = copy.deepcopy(SEED)
    record["id"] = record["trace_id"] = article_id(index)
    record["url"] = record["canonical_url"] = f"http://news.example.test/story/{index}.html"
    record["title"] = f"Story {index}"
    record["site_name"] = site_name
    record["processed_at"] = processed_at
    record["topics"] = [{"id": topic, "score": 2.0, "evidence": [f"terms: {topic}"]} for topic in topics]
    cluster_index = copy_of if copy_of is not None else index
    record["dedup"] = {
        **SEED["dedup"],
        "cluster_id": article_id(cluster_index),
        "duplicate_of": article_id(copy_of) if copy_of is not None else None,
        "method": "exact" if copy_of is not None else "first",
    }
    return record


def article_id(index: int) -> str:
    return f"{index:032x}"


def member(index: int, site_name: str = "Devdiscourse") -> ClusterMember:
    return ClusterMember(
        article_id(index), f"Story {index}", f"http://news.example.test/story/{index}.html", site_name
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    sqlite_store = SqliteStore(tmp_path / "newsfeed.sqlite3")
    yield sqlite_store
    sqlite_store.close()


# --------------------------------------------------------------------------------------------------
# latest
# --------------------------------------------------------------------------------------------------


def test_latest_lists_the_most_recently_processed_first_up_to_the_limit(store: SqliteStore) -> None:
    records = [story(index, processed_at=f"2026-01-01T00:00:0{index}+00:00") for index in range(1, 6)]
    store.apply(records[::2], [])
    store.apply(records[1::2], [])

    assert store.latest(3) == [records[4], records[3], records[2]]
    assert [record["id"] for record in store.latest()] == [article_id(index) for index in (5, 4, 3, 2, 1)]


def test_latest_orders_fractional_seconds_after_whole_ones(store: SqliteStore) -> None:
    whole = story(1, processed_at="2026-01-01T00:00:05+00:00")
    later = story(2, processed_at="2026-01-01T00:00:05.250000+00:00")
    store.apply([later, whole], [])

    assert [record["id"] for record in store.latest(2)] == [article_id(2), article_id(1)]


def test_an_empty_store_has_no_latest_clusters_or_counts(store: SqliteStore) -> None:
    assert store.latest() == []
    assert store.clusters() == []
    assert store.topic_counts() == []


# --------------------------------------------------------------------------------------------------
# clusters
# --------------------------------------------------------------------------------------------------


def test_clusters_show_the_canonical_copy_and_its_copies_oldest_first(store: SqliteStore) -> None:
    store.apply(
        [
            story(1, processed_at="2026-01-01T00:00:01+00:00"),
            story(2, processed_at="2026-01-01T00:00:03+00:00", copy_of=1, site_name="Wire"),
            story(3, processed_at="2026-01-01T00:00:02+00:00", copy_of=1, site_name="Post"),
            story(4, processed_at="2026-01-01T00:00:04+00:00"),  # a story printed once
        ],
        [],
    )

    assert store.clusters() == [
        ClusterView(
            cluster_id=article_id(1),
            canonical=member(1),
            copies=[member(3, "Post"), member(2, "Wire")],
            last_processed_at="2026-01-01T00:00:03+00:00",
        )
    ]


def test_clusters_come_most_recently_processed_first_up_to_the_limit(store: SqliteStore) -> None:
    store.apply(
        [
            story(1, processed_at="2026-01-01T00:00:01+00:00"),
            story(2, processed_at="2026-01-01T00:05:00+00:00", copy_of=1),
            story(3, processed_at="2026-01-01T00:00:02+00:00"),
            story(4, processed_at="2026-01-01T00:01:00+00:00", copy_of=3),
            story(5, processed_at="2026-01-01T00:00:03+00:00"),
            story(6, processed_at="2026-01-01T00:09:00+00:00", copy_of=5),
        ],
        [],
    )

    assert [cluster.cluster_id for cluster in store.clusters()] == [article_id(i) for i in (5, 1, 3)]
    assert [cluster.cluster_id for cluster in store.clusters(limit=2)] == [article_id(i) for i in (5, 1)]


def test_a_copy_whose_canonical_copy_was_retracted_is_no_cluster(store: SqliteStore) -> None:
    store.apply(
        [
            story(1, processed_at="2026-01-01T00:00:01+00:00"),
            story(2, processed_at="2026-01-01T00:00:02+00:00", copy_of=1),
        ],
        [],
    )
    store.apply([], [article_id(1)])

    assert store.clusters() == []


def test_a_cluster_of_copies_only_has_no_canonical_copy(store: SqliteStore) -> None:
    # The canonical copy may still be on its way to the store while its copies are already there.
    store.apply(
        [
            story(2, processed_at="2026-01-01T00:00:02+00:00", copy_of=1),
            story(3, processed_at="2026-01-01T00:00:03+00:00", copy_of=1),
        ],
        [],
    )

    assert store.clusters() == [
        ClusterView(article_id(1), None, [member(2), member(3)], "2026-01-01T00:00:03+00:00")
    ]


# --------------------------------------------------------------------------------------------------
# topic counts
# --------------------------------------------------------------------------------------------------


def test_topic_counts_per_minute_count_each_story_once_per_topic(store: SqliteStore) -> None:
    store.apply(
        [
            story(1, processed_at="2026-01-01T00:00:01+00:00", topics=("us-russia", "diplomacy")),
            story(2, processed_at="2026-01-01T00:00:59.9+00:00"),
            story(3, processed_at="2026-01-01T00:00:30+00:00", copy_of=1),  # a copy counts no more
            story(4, processed_at="2026-01-01T00:02:00+00:00", topics=("diplomacy",)),
            story(5, processed_at="2026-01-01T00:02:10+00:00", topics=()),
        ],
        [],
    )

    assert store.topic_counts() == [
        TopicCount("2026-01-01T00:00:00Z", "diplomacy", 1),
        TopicCount("2026-01-01T00:00:00Z", "us-russia", 2),
        TopicCount("2026-01-01T00:02:00Z", "diplomacy", 1),
    ]


def test_topic_counts_per_hour_and_since(store: SqliteStore) -> None:
    store.apply(
        [
            story(1, processed_at="2026-01-01T00:10:00+00:00"),
            story(2, processed_at="2026-01-01T01:00:00+00:00"),
            story(3, processed_at="2026-01-01T01:59:59+00:00"),
            story(4, processed_at="2026-01-01T03:00:00+00:00"),
        ],
        [],
    )

    assert store.topic_counts(per="hour") == [
        TopicCount("2026-01-01T00:00:00Z", "us-russia", 1),
        TopicCount("2026-01-01T01:00:00Z", "us-russia", 2),
        TopicCount("2026-01-01T03:00:00Z", "us-russia", 1),
    ]
    # `since` may carry any offset: 02:30+01:00 is 01:30 UTC.
    assert store.topic_counts(since="2026-01-01T02:30:00+01:00", per="hour") == [
        TopicCount("2026-01-01T01:00:00Z", "us-russia", 1),
        TopicCount("2026-01-01T03:00:00Z", "us-russia", 1),
    ]


def test_topic_count_buckets_are_utc_whatever_the_stamps_offset(store: SqliteStore) -> None:
    store.apply([story(1, processed_at="2026-01-01T05:30:10+05:30")], [])

    assert store.topic_counts() == [TopicCount("2026-01-01T00:00:00Z", "us-russia", 1)]


# --------------------------------------------------------------------------------------------------
# read-only connections
# --------------------------------------------------------------------------------------------------


def test_a_reader_sees_what_the_sink_writes_and_cannot_write(store: SqliteStore) -> None:
    reader = SqliteStore(store.path, read_only=True)
    try:
        assert reader.latest() == []
        store.apply([story(1, processed_at="2026-01-01T00:00:01+00:00")], [])
        assert [record["id"] for record in reader.latest()] == [article_id(1)]
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader.apply([story(2, processed_at="2026-01-01T00:00:02+00:00")], [])
    finally:
        reader.close()


def test_a_reader_of_a_store_not_written_yet_fails_and_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "not-yet" / "newsfeed.sqlite3"

    with pytest.raises(sqlite3.OperationalError):
        SqliteStore(path, read_only=True)

    assert not path.parent.exists()
