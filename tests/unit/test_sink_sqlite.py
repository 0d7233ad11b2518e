"""The SQLite sink: idempotent upserts, newest-wins replacement, retractions and record round trips."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.records import EnrichedArticle
from pipeline.sink.sqlite_store import SqliteStore


def enriched(
    index: int, *, fetched_at: str = "2026-01-01T00:00:00+00:00", title: str = "A story"
) -> EnrichedArticle:
    article_id = f"{index:032x}"
    return EnrichedArticle(
        id=article_id,
        url=f"https://news.example/{index}.html",
        canonical_url=f"https://news.example/{index}.html",
        title=title,
        text="Story text with ünïcödé and “quotes”.",
        published=f"2019-12-{10 + index:02d}T10:00:00+00:00",
        authors=["A. Writer"],
        language="en",
        site_name="News Example",
        description=None,
        categories=["World"],
        image=None,
        fetched_at=fetched_at,
        source="https://news.example/rss.xml",
        content_hash="sha256:" + f"{index:064x}",
        trace_id=f"trace-{index}",
        extractor="trafilatura-2/nf1",
        topics=[{"id": "us-russia", "score": 2.0, "evidence": ["Putin invited Trump"]}],
        dedup={
            "content_hash": "sha256:" + f"{index:064x}",
            "cluster_id": article_id,
            "duplicate_of": None,
            "similarity": 1.0,
            "method": "first",
        },
        versions={"extractor": "trafilatura-2/nf1", "tagger": "1.0.0", "taxonomy": "t1", "dedup": "exact-2"},
        processed_at="2026-01-01T00:00:01+00:00",
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    sqlite_store = SqliteStore(tmp_path / "state" / "newsfeed.sqlite3")
    yield sqlite_store
    sqlite_store.close()


def titles_by_id(store: SqliteStore) -> dict[str, str]:
    return {record["id"]: record["title"] for record in store.articles()}


def test_creates_the_database_and_its_folder(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "folder" / "db.sqlite3"
    store = SqliteStore(path)
    try:
        assert path.is_file()
        assert store.count() == 0
        assert list(store.articles()) == []
    finally:
        store.close()


def test_upsert_many_returns_the_batch_size(store: SqliteStore) -> None:
    assert store.upsert_many([enriched(1), enriched(2), enriched(3)]) == 3
    assert store.count() == 3


def test_upsert_many_is_idempotent(store: SqliteStore) -> None:
    batch = [enriched(1), enriched(2), enriched(3)]
    store.upsert_many(batch)
    store.upsert_many(batch)
    assert store.count() == 3
    assert list(store.articles()) == batch


def test_empty_batch_is_harmless(store: SqliteStore) -> None:
    assert store.upsert_many([]) == 0
    assert store.count() == 0


def test_articles_round_trip(store: SqliteStore) -> None:
    batch = [enriched(3), enriched(1), enriched(2)]
    store.upsert_many(copy.deepcopy(batch))
    # Ordered by published time, then id.
    assert list(store.articles()) == sorted(batch, key=lambda record: (record["published"], record["id"]))


def test_newer_fetch_replaces(store: SqliteStore) -> None:
    store.upsert_many([enriched(1, fetched_at="2026-01-01T00:00:00+00:00", title="Old")])
    store.upsert_many([enriched(1, fetched_at="2026-01-02T00:00:00+00:00", title="New")])
    assert store.count() == 1
    assert titles_by_id(store) == {f"{1:032x}": "New"}


def test_same_fetch_time_replaces(store: SqliteStore) -> None:
    store.upsert_many([enriched(1, title="First delivery")])
    store.upsert_many([enriched(1, title="Reprocessed")])
    assert titles_by_id(store) == {f"{1:032x}": "Reprocessed"}


def test_older_fetch_does_not_replace(store: SqliteStore) -> None:
    store.upsert_many([enriched(1, fetched_at="2026-01-02T00:00:00+00:00", title="New")])
    store.upsert_many([enriched(1, fetched_at="2026-01-01T00:00:00+00:00", title="Old")])
    assert titles_by_id(store) == {f"{1:032x}": "New"}


def test_older_fetch_within_one_batch_does_not_replace(store: SqliteStore) -> None:
    store.upsert_many(
        [
            enriched(1, fetched_at="2026-01-02T00:00:00+00:00", title="New"),
            enriched(1, fetched_at="2026-01-01T00:00:00+00:00", title="Old"),
        ]
    )
    assert titles_by_id(store) == {f"{1:032x}": "New"}


def test_fetch_times_compare_as_instants(store: SqliteStore) -> None:
    # 10:00 at +05:30 is 04:30 UTC: older than 05:00 UTC although its text sorts later.
    store.upsert_many([enriched(1, fetched_at="2026-01-01T05:00:00+00:00", title="New")])
    store.upsert_many([enriched(1, fetched_at="2026-01-01T10:00:00+05:30", title="Old")])
    assert titles_by_id(store) == {f"{1:032x}": "New"}


def test_apply_deletes_retracted_ids(store: SqliteStore) -> None:
    store.upsert_many([enriched(1), enriched(2)])
    assert store.apply([enriched(3)], [f"{1:032x}", "f" * 32]) == 1
    assert sorted(titles_by_id(store)) == [f"{2:032x}", f"{3:032x}"]


def test_apply_deletes_after_upserting(store: SqliteStore) -> None:
    store.apply([enriched(1)], [f"{1:032x}"])
    assert store.count() == 0


def test_records_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    first = SqliteStore(path)
    try:
        first.upsert_many([enriched(1), enriched(2)])
    finally:
        first.close()
    second = SqliteStore(path)
    try:
        assert list(second.articles()) == [enriched(1), enriched(2)]
    finally:
        second.close()
