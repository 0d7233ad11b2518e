"""SQLite store of enriched articles: idempotent batched upserts keyed by article id."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pipeline.clock import utc_iso
from pipeline.records import EnrichedArticle, dumps, loads

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
    record BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS articles_published ON articles (published);
CREATE INDEX IF NOT EXISTS articles_cluster ON articles (cluster_id);
"""

# Keeping the newest version makes a replayed or redelivered older record harmless.
_UPSERT = """
INSERT INTO articles (id, url, canonical_url, title, published, site_name, language, topics,
                      cluster_id, duplicate_of, fetched_at, fetched_at_utc, processed_at, record)
VALUES (:id, :url, :canonical_url, :title, :published, :site_name, :language, :topics,
        :cluster_id, :duplicate_of, :fetched_at, :fetched_at_utc, :processed_at, :record)
ON CONFLICT (id) DO UPDATE SET
    url = excluded.url, canonical_url = excluded.canonical_url, title = excluded.title,
    published = excluded.published, site_name = excluded.site_name, language = excluded.language,
    topics = excluded.topics, cluster_id = excluded.cluster_id, duplicate_of = excluded.duplicate_of,
    fetched_at = excluded.fetched_at, fetched_at_utc = excluded.fetched_at_utc,
    processed_at = excluded.processed_at, record = excluded.record
WHERE excluded.fetched_at_utc >= articles.fetched_at_utc
"""


class SqliteStore:
    """The embedded default store; one connection per process."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

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

    def close(self) -> None:
        self._db.close()


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
    }
