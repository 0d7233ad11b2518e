"""SQLite store of enriched articles: idempotent batched upserts keyed by article id, FTS5 search."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pipeline.clock import utc_iso
from pipeline.records import EnrichedArticle, dumps, loads
from pipeline.sink.store import ClusterView, SearchHit, TopicBucket, TopicCount, clusters_of

_SCHEMA = """
CREATE TABLE IF NOT EXISTS articles (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    canonical_url TEXT NOT NULL,
    title TEXT NOT NULL,
    published TEXT,
    site_name TEXT,
    language TEXT,
    topics TEXT NOT NULL,
    cluster_id TEXT NOT NULL,
    duplicate_of TEXT,
    fetched_at TEXT NOT NULL,
    fetched_at_utc TEXT NOT NULL,
    processed_at TEXT NOT NULL,
    record BLOB NOT NULL,
    body TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS articles_published ON articles (published);
CREATE INDEX IF NOT EXISTS articles_cluster ON articles (cluster_id);
CREATE INDEX IF NOT EXISTS articles_processed ON articles (processed_at);
"""

# An external-content FTS5 index over title and body, kept in step with the table by triggers, so the
# text is stored once and every write path (upsert, newest-wins update, delete) updates the index.
_SEARCH_SCHEMA = """
CREATE VIRTUAL TABLE IF NOT EXISTS articles_fts USING fts5(
    title, body, content='articles', content_rowid='rowid', tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS articles_fts_insert AFTER INSERT ON articles BEGIN
    INSERT INTO articles_fts (rowid, title, body) VALUES (new.rowid, new.title, new.body);
END;
CREATE TRIGGER IF NOT EXISTS articles_fts_delete AFTER DELETE ON articles BEGIN
    INSERT INTO articles_fts (articles_fts, rowid, title, body)
    VALUES ('delete', old.rowid, old.title, old.body);
END;
CREATE TRIGGER IF NOT EXISTS articles_fts_update AFTER UPDATE ON articles BEGIN
    INSERT INTO articles_fts (articles_fts, rowid, title, body)
    VALUES ('delete', old.rowid, old.title, old.body);
    INSERT INTO articles_fts (rowid, title, body) VALUES (new.rowid, new.title, new.body);
END;
"""

# bm25 weights: a word in the title counts five times one in the body.
_SEARCH = """
SELECT a.id, a.title, a.url, a.published, a.topics, a.duplicate_of,
       snippet(articles_fts, 1, '[', ']', '…', 24), bm25(articles_fts, 5.0, 1.0) AS rank
FROM articles_fts JOIN articles a ON a.rowid = articles_fts.rowid
WHERE articles_fts MATCH :query
  AND (:topic IS NULL OR EXISTS (SELECT 1 FROM json_each(a.topics) WHERE json_each.value = :topic))
  AND (:since IS NULL OR a.published >= :since)
ORDER BY rank, a.published DESC
LIMIT :limit
"""

# processed_at is written by the worker's UTC clock, so its text order is time order and the index serves
# both the newest-first listing and the time filter; strftime normalises any offset for the buckets.
_LATEST = "SELECT record FROM articles ORDER BY processed_at DESC, id DESC LIMIT ?"

# Candidates come from the copies (few) rather than grouping the whole table; a cluster whose other
# members are gone (retracted) drops out at HAVING.
_CLUSTERS = """
WITH shown AS (
    SELECT cluster_id, max(processed_at) AS last_processed_at
    FROM articles
    WHERE cluster_id IN (SELECT cluster_id FROM articles WHERE duplicate_of IS NOT NULL)
    GROUP BY cluster_id
    HAVING count(*) > 1
    ORDER BY last_processed_at DESC, cluster_id
    LIMIT :limit
)
SELECT shown.cluster_id, shown.last_processed_at, a.id, a.title, a.url, a.site_name, a.duplicate_of
FROM shown JOIN articles a ON a.cluster_id = shown.cluster_id
ORDER BY shown.last_processed_at DESC, shown.cluster_id, a.processed_at, a.id
"""

_BUCKET_FORMATS: dict[TopicBucket, str] = {"minute": "%Y-%m-%dT%H:%M:00Z", "hour": "%Y-%m-%dT%H:00:00Z"}
_TOPIC_COUNTS = """
SELECT strftime(:format, a.processed_at) AS bucket, tag.value AS topic, count(*)
FROM articles a, json_each(a.topics) AS tag
WHERE a.duplicate_of IS NULL AND (:since IS NULL OR a.processed_at >= :since) AND bucket IS NOT NULL
GROUP BY bucket, topic
ORDER BY bucket, topic
"""

# Keeping the newest version makes a replayed or redelivered older record harmless.
_UPSERT = """
INSERT INTO articles (id, url, canonical_url, title, published, site_name, language, topics,
                      cluster_id, duplicate_of, fetched_at, fetched_at_utc, processed_at, record, body)
VALUES (:id, :url, :canonical_url, :title, :published, :site_name, :language, :topics,
        :cluster_id, :duplicate_of, :fetched_at, :fetched_at_utc, :processed_at, :record, :body)
ON CONFLICT (id) DO UPDATE SET
    url = excluded.url, canonical_url = excluded.canonical_url, title = excluded.title,
    published = excluded.published, site_name = excluded.site_name, language = excluded.language,
    topics = excluded.topics, cluster_id = excluded.cluster_id, duplicate_of = excluded.duplicate_of,
    fetched_at = excluded.fetched_at, fetched_at_utc = excluded.fetched_at_utc,
    processed_at = excluded.processed_at, record = excluded.record, body = excluded.body
WHERE excluded.fetched_at_utc > articles.fetched_at_utc
   -- the same fetch again: only a changed record (a dedup correction) is rewritten, a redelivery is not
   OR (excluded.fetched_at_utc = articles.fetched_at_utc AND excluded.record IS NOT articles.record)
"""


class SqliteStore:
    """The embedded default store; one connection per process."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        if read_only:
            # For readers beside the sink (the dashboard): no schema changes, and no empty file created
            # where the sink has not written yet (sqlite3.OperationalError instead).
            uri = f"{path.resolve().as_uri()}?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._add_search_index()

    def _add_search_index(self) -> None:
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(articles)")}
        with self._db:
            if "body" not in columns:  # a store written before search existed
                self._db.execute("ALTER TABLE articles ADD COLUMN body TEXT NOT NULL DEFAULT ''")
            fresh = not self._db.execute("SELECT 1 FROM sqlite_master WHERE name = 'articles_fts'").fetchone()
            if fresh:
                # Bodies first, while no trigger exists: the index is then built once from the table.
                for id_, record in self._db.execute(
                    "SELECT id, record FROM articles WHERE body = ''"
                ).fetchall():
                    self._db.execute(
                        "UPDATE articles SET body = ? WHERE id = ?", (loads(record)["text"], id_)
                    )
            self._db.executescript(_SEARCH_SCHEMA)
            if fresh:
                self._db.execute("INSERT INTO articles_fts (articles_fts) VALUES ('rebuild')")

    def upsert_many(self, records: Sequence[EnrichedArticle]) -> int:
        """Write a batch in one transaction; returns the number of records given."""
        return self.apply(records, ())

    def apply(self, records: Sequence[EnrichedArticle], deleted_ids: Sequence[str]) -> int:
        """Upsert records and delete retracted ids (tombstones) in one transaction, in that order."""
        with self._db:
            self._db.executemany(_UPSERT, [_row(record) for record in records])
            self._db.executemany("DELETE FROM articles WHERE id = ?", [(id_,) for id_ in deleted_ids])
        return len(records)

    def count(self) -> int:
        row = self._db.execute("SELECT count(*) FROM articles").fetchone()
        return int(row[0])

    def articles(self) -> Iterator[EnrichedArticle]:
        for (record,) in self._db.execute("SELECT record FROM articles ORDER BY published, id"):
            yield loads(record)

    def search(
        self, query: str, *, topic: str | None = None, since: str | None = None, limit: int = 20
    ) -> list[SearchHit]:
        """Articles whose title or body hold every word of `query`, best match first (bm25)."""
        match = _fts_query(query)
        if not match:
            return []
        rows = self._db.execute(
            _SEARCH, {"query": match, "topic": topic, "since": since, "limit": limit}
        ).fetchall()
        return [
            SearchHit(id_, title, url, published, loads(topics), duplicate_of, snippet, -rank)
            for id_, title, url, published, topics, duplicate_of, snippet, rank in rows
        ]

    def latest(self, limit: int = 20) -> list[EnrichedArticle]:
        return [loads(record) for (record,) in self._db.execute(_LATEST, (limit,))]

    def clusters(self, limit: int = 20) -> list[ClusterView]:
        rows = self._db.execute(_CLUSTERS, {"limit": limit}).fetchall()
        return clusters_of(rows)

    def topic_counts(self, since: str | None = None, per: TopicBucket = "minute") -> list[TopicCount]:
        params = {"format": _BUCKET_FORMATS[per], "since": utc_iso(since) if since is not None else None}
        return [TopicCount(*row) for row in self._db.execute(_TOPIC_COUNTS, params)]

    def close(self) -> None:
        self._db.close()


def _fts_query(query: str) -> str:
    # Each word becomes a quoted FTS5 string, so user input never reaches the query syntax (AND, NEAR,
    # column filters, unbalanced quotes); the implicit AND between them means "every word".
    words = ["".join(char for char in word if char.isalnum()) for word in query.split()]
    return " ".join(f'"{word}"' for word in words if word)


def _row(record: EnrichedArticle) -> dict[str, Any]:
    return {
        "id": record["id"],
        "url": record["url"],
        "canonical_url": record["canonical_url"],
        "title": record["title"],
        "published": record["published"],
        "site_name": record["site_name"],
        "language": record["language"],
        "topics": dumps([topic["id"] for topic in record["topics"]]).decode(),
        "cluster_id": record["dedup"]["cluster_id"],
        "duplicate_of": record["dedup"]["duplicate_of"],
        "fetched_at": record["fetched_at"],
        "fetched_at_utc": utc_iso(record["fetched_at"]),
        "processed_at": record["processed_at"],
        "record": dumps(record),
        "body": record["text"],
    }
