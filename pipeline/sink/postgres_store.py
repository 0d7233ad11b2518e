"""PostgreSQL store of enriched articles: idempotent batched upserts keyed by article id, full-text search."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow
from psycopg.types.json import set_json_loads

from pipeline.clock import utc_iso
from pipeline.records import EnrichedArticle, dumps, loads
from pipeline.sink.store import ClusterView, SearchHit, TopicBucket, TopicCount, clusters_of

_SCHEMA: tuple[sql.SQL, ...] = (
    sql.SQL("""
CREATE TABLE IF NOT EXISTS articles (
    id text PRIMARY KEY,
    url text NOT NULL,
    canonical_url text NOT NULL,
    title text NOT NULL,
    published timestamptz,
    site_name text,
    language text,
    topics text[] NOT NULL,
    cluster_id text NOT NULL,
    duplicate_of text,
    fetched_at text NOT NULL,
    fetched_at_utc timestamptz NOT NULL,
    processed_at text NOT NULL,
    record jsonb NOT NULL,
    body text NOT NULL,
    search_vector tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', title), 'A') || setweight(to_tsvector('english', body), 'B')
    ) STORED
)"""),
    # The listing's order (undated articles first, as in SQLite) as one key the listing pages through.
    sql.SQL(
        "CREATE INDEX IF NOT EXISTS articles_published "
        "ON articles ((coalesce(published, '-infinity'::timestamptz)), id)"
    ),
    sql.SQL("CREATE INDEX IF NOT EXISTS articles_cluster ON articles (cluster_id)"),
    sql.SQL("CREATE INDEX IF NOT EXISTS articles_search ON articles USING gin (search_vector)"),
    sql.SQL("CREATE INDEX IF NOT EXISTS articles_topics ON articles USING gin (topics)"),
    # processed_at is the worker's UTC clock as text: in byte order ("C") that is time order, whatever the
    # database's collation, so one plain index serves the newest-first listing and the time filter.
    sql.SQL('CREATE INDEX IF NOT EXISTS articles_processed ON articles ((processed_at COLLATE "C"))'),
)

# Keeping the newest version makes a replayed or redelivered older record harmless.
_UPSERT = """
INSERT INTO articles (id, url, canonical_url, title, published, site_name, language, topics,
                      cluster_id, duplicate_of, fetched_at, fetched_at_utc, processed_at, record, body)
VALUES (%(id)s, %(url)s, %(canonical_url)s, %(title)s, %(published)s, %(site_name)s, %(language)s,
        %(topics)s, %(cluster_id)s, %(duplicate_of)s, %(fetched_at)s, %(fetched_at_utc)s,
        %(processed_at)s, %(record)s::jsonb, %(body)s)
ON CONFLICT (id) DO UPDATE SET
    url = excluded.url, canonical_url = excluded.canonical_url, title = excluded.title,
    published = excluded.published, site_name = excluded.site_name, language = excluded.language,
    topics = excluded.topics, cluster_id = excluded.cluster_id, duplicate_of = excluded.duplicate_of,
    fetched_at = excluded.fetched_at, fetched_at_utc = excluded.fetched_at_utc,
    processed_at = excluded.processed_at, record = excluded.record, body = excluded.body
WHERE excluded.fetched_at_utc > articles.fetched_at_utc
   -- the same fetch again: only a changed record (a dedup correction) is rewritten, a redelivery is not
   OR (excluded.fetched_at_utc = articles.fetched_at_utc AND excluded.record <> articles.record)
"""

_LISTING_PAGE = """
SELECT record, published, id FROM articles
WHERE (coalesce(published, '-infinity'::timestamptz), id)
    > (coalesce(%(published)s::timestamptz, '-infinity'::timestamptz), %(id)s)
ORDER BY coalesce(published, '-infinity'::timestamptz), id
LIMIT %(limit)s
"""
_LISTING_PAGE_ROWS = 500

# The headline is computed in the outer query so that only the returned hits pay for it.
_SEARCH = """
SELECT hit.id, hit.title, hit.url, hit.published_text, hit.topics, hit.duplicate_of,
       ts_headline('english', hit.body, hit.query, %(headline)s), hit.rank
FROM (
    SELECT a.id, a.title, a.url, a.record ->> 'published' AS published_text, a.topics, a.duplicate_of,
           a.body, a.published, q.query, ts_rank(a.search_vector, q.query) AS rank
    FROM articles a, websearch_to_tsquery('english', %(query)s) AS q (query)
    WHERE a.search_vector @@ q.query {filters}
    ORDER BY rank DESC, a.published DESC NULLS LAST, a.id
    LIMIT %(limit)s
) AS hit
ORDER BY hit.rank DESC, hit.published DESC NULLS LAST, hit.id
"""
# The same look as SQLite's snippet(): matches in brackets, fragments joined by an ellipsis.
_HEADLINE = 'StartSel="[", StopSel="]", MaxWords=24, MinWords=8, MaxFragments=2, FragmentDelimiter=" … "'
SNIPPET_MAX_CHARS = 200

_LATEST = 'SELECT record FROM articles ORDER BY processed_at COLLATE "C" DESC, id DESC LIMIT %(limit)s'

# Candidates come from the copies (few) rather than grouping the whole table; a cluster whose other
# members are gone (retracted) drops out at HAVING.
_CLUSTERS = """
WITH shown AS (
    SELECT cluster_id, max(processed_at COLLATE "C") AS last_processed_at
    FROM articles
    WHERE cluster_id IN (SELECT cluster_id FROM articles WHERE duplicate_of IS NOT NULL)
    GROUP BY cluster_id
    HAVING count(*) > 1
    ORDER BY last_processed_at DESC, cluster_id
    LIMIT %(limit)s
)
SELECT shown.cluster_id, shown.last_processed_at, a.id, a.title, a.url, a.site_name, a.duplicate_of
FROM shown JOIN articles a ON a.cluster_id = shown.cluster_id
ORDER BY shown.last_processed_at DESC, shown.cluster_id, a.processed_at COLLATE "C", a.id
"""

# The sink only stores records whose processed_at passed the contract's date-time check, so the cast
# cannot fail.
_TOPIC_COUNTS = """
SELECT to_char(date_trunc(%(per)s, a.processed_at::timestamptz AT TIME ZONE 'UTC'),
               'YYYY-MM-DD"T"HH24:MI:"00Z"') AS bucket,
       topic, count(*)
FROM articles a, unnest(a.topics) AS topic
WHERE a.duplicate_of IS NULL {since}
GROUP BY bucket, topic
ORDER BY bucket, topic
"""

Connection = psycopg.Connection[TupleRow]
T = TypeVar("T")

# Serialises concurrent first connections: CREATE … IF NOT EXISTS alone can still collide.
_SCHEMA_LOCK_KEY = 0x6E657773  # "news"


class PostgresStore:
    """The production store; one connection per process, a transaction per batch."""

    def __init__(self, dsn: str, *, read_only: bool = False) -> None:
        self._dsn = dsn
        # Readers beside the sink (the dashboard) neither create the schema nor can write by mistake.
        self._read_only = read_only
        self._db = self._connect()
        if read_only:
            return
        try:
            self._create_schema()
        except BaseException:
            self._db.close()
            raise

    def _connect(self) -> Connection:
        # Autocommit outside explicit transactions, so reads never leave a session idle in transaction.
        connection = psycopg.connect(self._dsn, autocommit=True)
        set_json_loads(loads, connection)
        if self._read_only:
            connection.execute("SET default_transaction_read_only = on")
        return connection

    def _create_schema(self) -> None:
        with self._db.transaction():
            self._db.execute("SET LOCAL client_min_messages = warning")  # no "already exists" notices
            self._db.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_KEY,))
            for statement in _SCHEMA:
                self._db.execute(statement)

    def _reconnecting(self, work: Callable[[Connection], T]) -> T:
        """Run `work`, once more on a new connection if the server dropped this one (restart, failover).

        Repeating is safe: every unit of work is one transaction, and a batch applied twice is a no-op.
        """
        try:
            return work(self._db)
        except psycopg.OperationalError:
            if not self._db.broken:
                raise
        self._db.close()
        self._db = self._connect()
        return work(self._db)

    def upsert_many(self, records: Sequence[EnrichedArticle]) -> int:
        """Write a batch in one transaction; returns the number of records given."""
        return self.apply(records, ())

    def apply(self, records: Sequence[EnrichedArticle], deleted_ids: Sequence[str]) -> int:
        """Upsert records and delete retracted ids (tombstones) in one transaction, in that order."""
        rows = [_row(record) for record in records]
        retracted = list(deleted_ids)

        def write(db: Connection) -> None:
            with db.transaction(), db.cursor() as cursor:
                if rows:
                    # executemany pipelines the statements: one round trip per batch, not per record.
                    cursor.executemany(_UPSERT, rows)
                if retracted:
                    cursor.execute("DELETE FROM articles WHERE id = ANY(%s)", (retracted,))

        self._reconnecting(write)
        return len(records)

    def count(self) -> int:
        row = self._reconnecting(lambda db: db.execute("SELECT count(*) FROM articles").fetchone())
        assert row is not None
        return int(row[0])

    def articles(self) -> Iterator[EnrichedArticle]:
        # Pages by key rather than one long-lived cursor: no transaction stays open between pages, so the
        # caller may write while iterating and a half-read listing holds nothing on the server.
        after: dict[str, Any] = {"published": None, "id": "", "limit": _LISTING_PAGE_ROWS}
        while True:
            rows = self._reconnecting(lambda db: db.execute(_LISTING_PAGE, after).fetchall())
            for record, _, _ in rows:
                yield record
            if len(rows) < _LISTING_PAGE_ROWS:
                return
            after["published"], after["id"] = rows[-1][1], rows[-1][2]

    def search(
        self, query: str, *, topic: str | None = None, since: str | None = None, limit: int = 20
    ) -> list[SearchHit]:
        """Articles whose title or body hold every word of `query` (web-search syntax: "phrases", or,
        -word), best match first (ts_rank with the title weighted above the body).

        Raises ValueError when `since` is not an ISO 8601 date or time.
        """
        if not query.strip():
            return []
        params: dict[str, Any] = {"query": query, "limit": limit, "headline": _HEADLINE}
        filters: list[sql.Composable] = []
        if topic is not None:
            filters.append(sql.SQL("AND a.topics @> ARRAY[%(topic)s]::text[]"))
            params["topic"] = topic
        if since is not None:
            filters.append(sql.SQL("AND a.published >= %(since)s"))
            params["since"] = _instant(since)
        statement = sql.SQL(_SEARCH).format(filters=sql.SQL(" ").join(filters))
        rows = self._reconnecting(lambda db: db.execute(statement, params).fetchall())
        return [
            SearchHit(id_, title, url, published, list(topics), duplicate_of, _clip(snippet), float(rank))
            for id_, title, url, published, topics, duplicate_of, snippet, rank in rows
        ]

    def latest(self, limit: int = 20) -> list[EnrichedArticle]:
        rows = self._reconnecting(lambda db: db.execute(_LATEST, {"limit": limit}).fetchall())
        return [record for (record,) in rows]

    def clusters(self, limit: int = 20) -> list[ClusterView]:
        rows = self._reconnecting(lambda db: db.execute(_CLUSTERS, {"limit": limit}).fetchall())
        return clusters_of(rows)

    def topic_counts(self, since: str | None = None, per: TopicBucket = "minute") -> list[TopicCount]:
        """Raises ValueError when `since` is not an ISO 8601 date or time."""
        params: dict[str, Any] = {"per": per}
        since_filter = sql.SQL("")
        if since is not None:
            since_filter = sql.SQL('AND a.processed_at COLLATE "C" >= %(since)s')
            params["since"] = utc_iso(since)
        statement = sql.SQL(_TOPIC_COUNTS).format(since=since_filter)
        rows = self._reconnecting(lambda db: db.execute(statement, params).fetchall())
        return [TopicCount(bucket, topic, int(count)) for bucket, topic, count in rows]

    def close(self) -> None:
        self._db.close()


def _row(record: EnrichedArticle) -> dict[str, Any]:
    record_json = dumps(record)
    # PostgreSQL text and jsonb cannot hold NUL; one stray byte must not fail the whole batch.
    if b"\\u0000" in record_json:
        record = _without_nul(record)
        record_json = dumps(record)
    published = record["published"]
    return {
        "id": record["id"],
        "url": record["url"],
        "canonical_url": record["canonical_url"],
        "title": record["title"],
        "published": _lenient_instant(published) if published is not None else None,
        "site_name": record["site_name"],
        "language": record["language"],
        "topics": [topic["id"] for topic in record["topics"]],
        "cluster_id": record["dedup"]["cluster_id"],
        "duplicate_of": record["dedup"]["duplicate_of"],
        "fetched_at": record["fetched_at"],
        "fetched_at_utc": _instant(record["fetched_at"]),
        "processed_at": record["processed_at"],
        "record": record_json.decode(),
        "body": record["text"],
    }


def _instant(stamp: str) -> datetime:
    """An ISO 8601 date or time as an aware datetime; naive stamps are taken as UTC (as utc_iso does)."""
    moment = datetime.fromisoformat(stamp)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _lenient_instant(stamp: str) -> datetime | None:
    # `published` is free text from the page; one that is not ISO 8601 is kept in the record only.
    try:
        return _instant(stamp)
    except ValueError:
        return None


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    return value


def _clip(snippet: str) -> str:
    if len(snippet) <= SNIPPET_MAX_CHARS:
        return snippet
    cut = snippet[: SNIPPET_MAX_CHARS - 1]
    # End on a whole word when there is one to end on.
    if " " in cut[SNIPPET_MAX_CHARS // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip() + "…"
