"""What every article store offers the sink and the search command."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

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

    def close(self) -> None: ...
