"""Typed shapes of the records that travel between stages (the JSON Schemas in schemas/ are the contract)."""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

import orjson


class RawPage(TypedDict):
    """A fetched page as the crawler publishes it to the raw-pages topic (raw_page.v1)."""

    url: str
    final_url: str
    status: int
    headers: dict[str, str]
    fetched_at: str
    source: str
    content_hash: str
    html: str
    trace_id: str


class TopicTag(TypedDict):
    """One topic assigned to an article, with the matched evidence that justifies it."""

    id: str
    score: float
    evidence: list[str]


class DedupVerdict(TypedDict):
    """Where an article stands among its copies."""

    content_hash: str
    cluster_id: str
    duplicate_of: str | None
    similarity: float
    method: str


class Versions(TypedDict):
    """Which code and configuration produced a record, so consumers can tell old output from new."""

    extractor: str
    tagger: str
    taxonomy: str
    dedup: str


class Article(TypedDict):
    """An extracted article (article.v1): the main story only, no navigation or sidebars."""

    id: str
    url: str
    canonical_url: str
    title: str
    text: str
    published: str | None
    authors: list[str]
    language: str | None
    site_name: str | None
    description: str | None
    categories: list[str]
    image: str | None
    fetched_at: str
    source: str
    content_hash: str
    trace_id: str
    extractor: str


class EnrichedArticle(Article):
    """An article with its dedup verdict and topic tags (enriched_article.v1)."""

    topics: list[TopicTag]
    dedup: DedupVerdict
    versions: Versions
    processed_at: str


class DeadLetter(TypedDict):
    """A record that could not be processed, kept with everything needed to replay it (dead_letter.v1)."""

    reason: str
    error: str
    stage: str
    source_topic: str
    partition: int
    offset: int
    key: str | None
    original: str
    original_encoding: str
    failed_at: str
    trace_id: NotRequired[str | None]
    original_size: NotRequired[int]
    original_truncated: NotRequired[bool]


def dumps(record: Any) -> bytes:
    """Serialise a record the one way every producer in the project does."""
    return orjson.dumps(record)


def loads(data: bytes | str) -> Any:
    """Parse JSON bytes produced by :func:`dumps` (or by another team)."""
    return orjson.loads(data)
