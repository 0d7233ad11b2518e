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


class TestSearch:
    def _story(self, index: int, title: str, text: str, **changes: object) -> EnrichedArticle:
        record = enriched(index, title=title)
        record["text"] = text
        record.update(changes)  # type: ignore[typeddict-item]
        return record

    def test_finds_articles_with_every_word_best_first(self, store: SqliteStore) -> None:
        store.apply(
            [
                self._story(1, "Putin greets Trump", "Putin sent New Year greetings to Trump."),
                self._story(2, "Markets", "Traders said Putin spoke; Trump was not mentioned by name."),
                self._story(3, "Weather", "Snow fell in Moscow."),
            ],
            (),
        )
        hits = store.search("putin trump")
        assert [hit.id for hit in hits] == [f"{1:032x}", f"{2:032x}"]
        assert hits[0].rank >= hits[1].rank
        assert "[Putin]" in hits[0].snippet
        assert hits[0].topics == ["us-russia"]
        assert store.search("snow")
        assert not store.search("hurricane")

    def test_filters_by_topic_and_publication_date(self, store: SqliteStore) -> None:
        store.apply(
            [
                self._story(
                    1, "Putin and Trump", "Putin called Trump.", published="2019-11-20T10:00:00+00:00"
                ),
                self._story(
                    2, "Putin and Trump", "Putin called Trump again.", published="2019-12-30T10:00:00+00:00"
                ),
                self._story(3, "Putin and Trump", "Putin called Trump, untagged.", topics=[]),
            ],
            (),
        )
        assert {hit.id for hit in store.search("putin", topic="us-russia")} == {f"{1:032x}", f"{2:032x}"}
        assert [hit.id for hit in store.search("putin", topic="us-russia", since="2019-12-01")] == [
            f"{2:032x}"
        ]
        assert store.search("putin", topic="iraq-strikes") == []

    def test_query_syntax_in_user_input_is_harmless(self, store: SqliteStore) -> None:
        store.apply([self._story(1, "Quotes", 'He said "NEAR" and AND, OR: title*')], ())
        for query in ['"unbalanced', "title:putin", "NEAR(a b)", "AND OR NOT", "*", "", "  "]:
            store.search(query)  # no sqlite3.OperationalError
        assert [hit.id for hit in store.search('"near"')] == [f"{1:032x}"]

    def test_index_follows_updates_and_deletes(self, store: SqliteStore) -> None:
        store.apply([self._story(1, "Old headline", "Original body about tariffs.")], ())
        newer = self._story(
            1, "New headline", "Rewritten body about sanctions.", fetched_at="2026-02-01T00:00:00+00:00"
        )
        store.apply([newer], ())
        assert store.search("tariffs") == []
        assert [hit.title for hit in store.search("sanctions")] == ["New headline"]
        store.apply([], [f"{1:032x}"])
        assert store.search("sanctions") == []

    def test_an_older_store_gets_its_index_on_open(self, tmp_path: Path) -> None:
        path = tmp_path / "old.sqlite3"
        first = SqliteStore(path)
        first.apply([self._story(1, "Kept", "Body from before search existed.")], ())
        first._db.executescript(
            "DROP TABLE articles_fts; DROP TRIGGER articles_fts_insert; DROP TRIGGER articles_fts_delete;"
            "DROP TRIGGER articles_fts_update; UPDATE articles SET body = '';"
        )
        first.close()
        reopened = SqliteStore(path)
        try:
            assert [hit.title for hit in reopened.search("before search")] == ["Kept"]
        finally:
            reopened.close()
