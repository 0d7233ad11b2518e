"""What every article store offers the sink, the search command and the dashboard."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pipeline.records import EnrichedArticle


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One article found by a full-text search, best match first."""

    id: str
    title: str
    url: str
    published: str | None
    topics: list[str]
    duplicate_of: str | None
    snippet: str
    rank: float


@dataclass(frozen=True, slots=True)
class ClusterMember:
    """One stored copy of a story."""

    id: str
    title: str
    url: str
    site_name: str | None


@dataclass(frozen=True, slots=True)
class ClusterView:
    """A story stored more than once: its canonical copy (None while only copies are stored) and the rest,
    oldest first."""

    cluster_id: str
    canonical: ClusterMember | None
    copies: list[ClusterMember]
    last_processed_at: str


TopicBucket = Literal["minute", "hour"]


@dataclass(frozen=True, slots=True)
class TopicCount:
    """How many stories (canonical copies) were tagged `topic` in the UTC minute or hour starting at
    `bucket` ("2026-01-01T00:05:00Z")."""

    bucket: str
    topic: str
    count: int


def clusters_of(rows: Sequence[tuple[Any, ...]]) -> list[ClusterView]:
    """Cluster views from (cluster_id, last_processed_at, id, title, url, site_name, duplicate_of) rows
    grouped by cluster; the canonical copy is the member that is nobody's copy."""
    grouped: dict[str, tuple[str, list[tuple[ClusterMember, str | None]]]] = {}
    for cluster_id, last_processed_at, id_, title, url, site_name, duplicate_of in rows:
        member = ClusterMember(id_, title, url, site_name)
        grouped.setdefault(cluster_id, (last_processed_at, []))[1].append((member, duplicate_of))
    views = []
    for cluster_id, (last_processed_at, members) in grouped.items():
        canonical = next((member for member, duplicate_of in members if duplicate_of is None), None)
        copies = [member for member, _ in members if member is not canonical]
        views.append(ClusterView(cluster_id, canonical, copies, last_processed_at))
    return views


class ArticleStore(Protocol):
    """Idempotent batched writes keyed by article id (the newest fetch wins) and full-text search."""

    def apply(self, records: Sequence[EnrichedArticle], deleted_ids: Sequence[str]) -> int:
        """Upsert records, then delete retracted ids, in one transaction; returns len(records)."""
        ...

    def count(self) -> int: ...

    def articles(self) -> Iterator[EnrichedArticle]:
        """Every stored record, ordered by published time then id."""
        ...

    def search(
        self, query: str, *, topic: str | None = None, since: str | None = None, limit: int = 20
    ) -> list[SearchHit]:
        """Articles whose title or body match every word of `query` (optionally with `topic`, and
        published on or after the ISO date or time `since`), best match first."""
        ...

    def latest(self, limit: int = 20) -> list[EnrichedArticle]:
        """The most recently processed records, newest first."""
        ...

    def clusters(self, limit: int = 20) -> list[ClusterView]:
        """Stories stored more than once, the most recently processed first."""
        ...

    def topic_counts(self, since: str | None = None, per: TopicBucket = "minute") -> list[TopicCount]:
        """Stories per topic per UTC minute or hour of processing, oldest bucket first (topics in id order
        within a bucket); `since` is a UTC ISO time, and copies are left out so a syndicated story counts
        once."""
        ...

    def close(self) -> None: ...
