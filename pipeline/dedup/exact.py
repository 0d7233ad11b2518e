"""Exact-copy verdicts: the first article with a body hash is canonical, later ones point to it."""

from __future__ import annotations

from pipeline.records import Article, DedupVerdict

DEDUP_VERSION = "exact-1"


def exact_verdict(article: Article, first_seen_id: str | None) -> DedupVerdict:
    """Judge an article against the id first seen with its body hash (None when the hash is new).

    Seeing the same article again (a re-crawl or a replay) is not a duplicate of itself.
    """
    if first_seen_id is None or first_seen_id == article["id"]:
        return DedupVerdict(
            content_hash=article["content_hash"],
            cluster_id=article["id"],
            duplicate_of=None,
            similarity=1.0,
            method="first",
        )
    return DedupVerdict(
        content_hash=article["content_hash"],
        cluster_id=first_seen_id,
        duplicate_of=first_seen_id,
        similarity=1.0,
        method="exact",
    )
