"""The PostgreSQL store against the tests' own server: upserts, newest-wins, retractions, order, search."""

from __future__ import annotations

import copy
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pipeline.ops.postgres import LocalPostgres
from pipeline.records import EnrichedArticle
from pipeline.sink.postgres_store import SNIPPET_MAX_CHARS, PostgresStore

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "examples" / "enriched_article.v1"
SEED: EnrichedArticle = json.loads((EXAMPLES / "seed.json").read_text())
FIRST_FETCH = "2026-01-01T00:00:00+00:00"


def article(
    index: int,
    *,
    title: str | None = None,
    text: str | None = None,
    fetched_at: str = FIRST_FETCH,
    published: str | None = "2019-12-30T22:00:00+05:30",
    topics: tuple[str, ...] = ("us-russia",),
) -> EnrichedArticle:
    """The example record under another id, with the given parts changed."""
    record = copy.deepcopy(SEED)
    article_id = f"{index:032x}"
    record["id"] = record["trace_id"] = article_id
    record["url"] = record["canonical_url"] = f"http://news.example.test/story/{index}.html"
    record["title"] = title if title is not None else f"{SEED['title']} ({index})"
    record["text"] = text if text is not None else SEED["text"]
    record["fetched_at"] = fetched_at
    record["published"] = published
    record["topics"] = [{"id": topic, "score": 2.0, "evidence": [f"terms: {topic}"]} for topic in topics]
    record["dedup"] = {**SEED["dedup"], "cluster_id": article_id}
    return record


@pytest.fixture
def store(postgres_dsn: str) -> Iterator[PostgresStore]:
    postgres_store = PostgresStore(postgres_dsn)
    yield postgres_store
    postgres_store.close()


def titles_by_id(store: PostgresStore) -> dict[str, str]:
    return {record["id"]: record["title"] for record in store.articles()}


# --------------------------------------------------------------------------------------------------
# writes
# --------------------------------------------------------------------------------------------------


def test_the_schema_is_created_once_and_reopening_keeps_rows(store: PostgresStore, postgres_dsn: str) -> None:
    store.apply([article(1)], [])
    again = PostgresStore(postgres_dsn)
    try:
        assert again.count() == 1
    finally:
        again.close()
    with psycopg.connect(postgres_dsn) as connection:
        indexes = dict(
            connection.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'articles'"
            ).fetchall()
        )
        generated = connection.execute(
            "SELECT is_generated FROM information_schema.columns "
            "WHERE table_name = 'articles' AND column_name = 'search_vector'"
        ).fetchone()
    assert "USING gin (search_vector)" in indexes["articles_search"]
    assert "USING gin (topics)" in indexes["articles_topics"]
    assert generated == ("ALWAYS",)


def test_the_same_batch_twice_keeps_one_row_each(store: PostgresStore) -> None:
    batch = [article(1), article(2), article(3)]
    assert store.apply(batch, []) == 3
    assert store.apply(batch, []) == 3
    assert store.count() == 3
    assert list(store.articles()) == sorted(batch, key=lambda record: record["id"])


@pytest.mark.parametrize("newest_first", [False, True], ids=["oldest-first", "newest-first"])
def test_the_newest_fetch_wins_in_either_order(store: PostgresStore, newest_first: bool) -> None:
    old = article(1, title="Old title", fetched_at="2026-01-01T00:00:00+00:00")
    new = article(1, title="New title", fetched_at="2026-01-02T00:00:00+00:00")
    writes = [new, old] if newest_first else [old, new]
    for record in writes:
        store.apply([record], [])
    assert titles_by_id(store) == {old["id"]: "New title"}


def test_the_newest_fetch_wins_within_one_batch(store: PostgresStore) -> None:
    new = article(1, title="New title", fetched_at="2026-01-02T00:00:00+00:00")
    old = article(1, title="Old title", fetched_at="2026-01-01T00:00:00+00:00")
    store.apply([new, old], [])
    assert titles_by_id(store) == {new["id"]: "New title"}


def test_fetch_times_are_compared_as_instants_not_text(store: PostgresStore) -> None:
    # 05:00+05:00 is midnight UTC: earlier than 01:00 UTC although it sorts later as text.
    later = article(1, title="Later", fetched_at="2026-01-01T01:00:00+00:00")
    earlier = article(1, title="Earlier", fetched_at="2026-01-01T05:00:00+05:00")
    store.apply([later], [])
    store.apply([earlier], [])
    assert titles_by_id(store) == {later["id"]: "Later"}


def test_tombstones_delete_and_unknown_ids_are_ignored(store: PostgresStore) -> None:
    store.apply([article(1), article(2)], [])
    store.apply([article(3)], [article(1)["id"], "never-stored"])
    assert set(titles_by_id(store)) == {article(2)["id"], article(3)["id"]}


def test_a_retraction_in_the_same_batch_follows_the_upsert(store: PostgresStore) -> None:
    store.apply([article(1)], [article(1)["id"]])
    assert store.count() == 0


def test_a_failed_batch_changes_nothing(store: PostgresStore) -> None:
    store.apply([article(1)], [])
    unindexable = article(2)
    # Random text past the btree row limit (about 2.7 kB) makes the insert fail on the server.
    unindexable["id"] = secrets.token_hex(8000)
    with pytest.raises(psycopg.errors.ProgramLimitExceeded):
        store.apply([article(3), unindexable], [article(1)["id"]])
    assert set(titles_by_id(store)) == {article(1)["id"]}
    store.apply([article(3)], [])
    assert store.count() == 2


def test_records_round_trip_whole(store: PostgresStore) -> None:
    record = article(1, title="Ünïcödé “quotes” and emoji 📰", text="Text with ünïcödé. " * 50)
    record["authors"] = ["A. Writer", "B. Writer"]
    record["description"] = None
    store.apply([record], [])
    assert list(store.articles()) == [record]


def test_nul_characters_are_dropped_instead_of_failing_the_batch(store: PostgresStore) -> None:
    record = article(1, title="Nul\x00 title", text="Body with a nul\x00 byte about Moscow")
    record["url"] = "http://news.example.test/nul\x00.html"
    store.apply([record, article(2)], [])
    stored = {item["id"]: item for item in store.articles()}
    assert stored[record["id"]]["title"] == "Nul title"
    assert stored[record["id"]]["url"] == "http://news.example.test/nul.html"
    assert store.search("nul byte")[0].id == record["id"]


def test_articles_are_ordered_by_published_time_then_id(store: PostgresStore) -> None:
    # 22:00+05:30 is 16:30 UTC, before 17:00 UTC; undated articles come first, as in SQLite.
    store.apply(
        [
            article(4, published="2019-12-30T17:00:00+00:00"),
            article(3, published="2019-12-30T22:00:00+05:30"),
            article(2, published="2019-12-30T22:00:00+05:30"),
            article(5, published=None),
            article(1, published="2019-12-31"),
        ],
        [],
    )
    assert [int(record["id"], 16) for record in store.articles()] == [5, 2, 3, 4, 1]


def test_a_thousand_record_batch(store: PostgresStore) -> None:
    batch = [
        article(
            index,
            text=f"Story number {index}. {SEED['text']}",
            # Undated articles and shared dates, so the listing pages across ties and the undated start.
            published=None if index % 7 == 0 else f"2019-12-{1 + index % 28:02d}T10:00:00+00:00",
            topics=("us-russia", f"t{index % 10}"),
        )
        for index in range(1000)
    ]
    started = time.perf_counter()
    assert store.apply(batch, []) == 1000
    first_write_s = time.perf_counter() - started
    store.apply(batch, [])
    assert store.count() == 1000
    expected_order = sorted(batch, key=lambda record: (record["published"] or "", record["id"]))
    assert [record["id"] for record in store.articles()] == [record["id"] for record in expected_order]
    assert len(store.search("Kremlin", topic="t3", limit=500)) == 100
    # Generous: the server's text-search parsing dominates, at about a millisecond a record here.
    assert first_write_s < 30


def test_writing_while_listing(store: PostgresStore) -> None:
    store.apply([article(index, text="A short story.") for index in range(1200)], [])
    for seen, record in enumerate(store.articles()):
        if seen % 100 == 0:
            store.apply([], [record["id"]])
    assert store.count() == 1200 - 12


# --------------------------------------------------------------------------------------------------
# search
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def searchable(store: PostgresStore) -> PostgresStore:
    store.apply(
        [
            article(1, title="Putin invites Trump to Moscow", published="2019-12-30T22:00:00+05:30"),
            article(
                2,
                title="Markets close higher",
                text="Stocks rose. Analysts said Putin and Trump had little effect on trading in Moscow.",
                published="2020-01-02T09:00:00+00:00",
                topics=("markets",),
            ),
            article(
                3,
                title="Weather report",
                text="Snow is expected in Moscow tomorrow.",
                published="2020-01-05T09:00:00+00:00",
                topics=("weather",),
            ),
            article(4, title="Undated Putin piece", text="Putin and Trump spoke again.", published=None),
        ],
        [],
    )
    return store


def test_search_needs_every_word(searchable: PostgresStore) -> None:
    assert {hit.id for hit in searchable.search("Putin Trump")} == {
        article(index)["id"] for index in (1, 2, 4)
    }
    assert [hit.id for hit in searchable.search("snow Moscow")] == [article(3)["id"]]
    assert searchable.search("Putin snow") == []


def test_search_stems_words(searchable: PostgresStore) -> None:
    assert [hit.id for hit in searchable.search("expecting snows")] == [article(3)["id"]]


def test_a_match_in_the_title_ranks_first(searchable: PostgresStore) -> None:
    hits = searchable.search("Moscow")
    assert hits[0].id == article(1)["id"]
    assert [hit.rank for hit in hits] == sorted((hit.rank for hit in hits), reverse=True)


def test_search_hits_carry_the_article(searchable: PostgresStore) -> None:
    (hit,) = searchable.search("snow")
    assert hit.id == article(3)["id"]
    assert hit.title == "Weather report"
    assert hit.url == "http://news.example.test/story/3.html"
    assert hit.published == "2020-01-05T09:00:00+00:00"
    assert hit.topics == ["weather"]
    assert hit.duplicate_of is None
    assert hit.snippet.startswith("[Snow] is expected in Moscow tomorrow")
    assert hit.rank > 0


def test_snippets_are_short_and_mark_the_matches(searchable: PostgresStore) -> None:
    for hit in searchable.search("Putin"):
        assert "[Putin]" in hit.snippet
        assert len(hit.snippet) <= SNIPPET_MAX_CHARS


def test_search_by_topic(searchable: PostgresStore) -> None:
    assert [hit.id for hit in searchable.search("Moscow", topic="markets")] == [article(2)["id"]]
    assert searchable.search("Moscow", topic="sport") == []


def test_search_since_a_date_or_a_time(searchable: PostgresStore) -> None:
    assert {hit.id for hit in searchable.search("Moscow", since="2020-01-01")} == {
        article(2)["id"],
        article(3)["id"],
    }
    # 2020-01-05T09:00Z is 11:00 at +02:00, so this excludes nothing later than the weather report.
    assert [hit.id for hit in searchable.search("Moscow", since="2020-01-05T11:00:00+02:00")] == [
        article(3)["id"]
    ]
    assert searchable.search("Moscow", since="2021-01-01") == []


def test_search_limit_and_empty_queries(searchable: PostgresStore) -> None:
    assert len(searchable.search("Moscow", limit=2)) == 2
    assert searchable.search("") == []
    assert searchable.search("   ") == []
    assert searchable.search("the and of") == []  # stop words only


def test_search_follows_updates_and_retractions(searchable: PostgresStore) -> None:
    searchable.apply(
        [
            article(
                3, title="Weather report", text="Sunshine all week.", fetched_at="2026-02-01T00:00:00+00:00"
            )
        ],
        [article(1)["id"]],
    )
    assert searchable.search("snow") == []
    assert [hit.id for hit in searchable.search("sunshine")] == [article(3)["id"]]
    assert article(1)["id"] not in {hit.id for hit in searchable.search("Putin")}


def test_a_query_with_search_syntax_is_safe(searchable: PostgresStore) -> None:
    assert {hit.id for hit in searchable.search('"Putin invites" OR snow')} == {
        article(1)["id"],
        article(3)["id"],
    }
    assert searchable.search("Moscow -Putin")[0].id == article(3)["id"]
    assert searchable.search("'); DROP TABLE articles; --") == []
    assert searchable.count() == 4


# --------------------------------------------------------------------------------------------------
# the server
# --------------------------------------------------------------------------------------------------


def test_data_survives_a_server_restart(postgres_server: LocalPostgres, postgres_dsn: str) -> None:
    store = PostgresStore(postgres_dsn)
    try:
        store.apply([article(1), article(2, title="Weather report", text="Snow in Moscow.")], [])
        try:
            assert postgres_server.stop() is True
            assert not postgres_server.status().running
        finally:
            postgres_server.start()
        # The same store carries on: its dropped connection is replaced on first use.
        assert store.count() == 2
        assert [hit.id for hit in store.search("snow")] == [article(2)["id"]]
        store.apply([article(3)], [article(1)["id"]])
    finally:
        store.close()
    reopened = PostgresStore(postgres_dsn)
    try:
        assert {record["id"] for record in reopened.articles()} == {article(2)["id"], article(3)["id"]}
    finally:
        reopened.close()
