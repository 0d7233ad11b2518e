"""Cluster verdicts: given an article's verified matches, which copy is canonical and where it belongs.

The canonical copy of a story is the match with the best precedence rank (earliest published; then a page
without syndication boilerplate; then the smallest id), so the verdict depends on the articles, not on
the order they arrived in. An article matching nothing, or ranking before all of its matches, is canonical.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.clock import utc_iso
from pipeline.records import Article, DedupVerdict

DEDUP_VERSION = "minhash-lsh-1"
_UNDATED = "9999-12-31T23:59:59+00:00"
_SYNDICATION_MARKERS = re.compile(
    r"has not been edited by|auto-generated from a syndicated feed|\bwith inputs? from\b|\bsyndicated\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Match:
    """Another article whose body is a near or exact copy of this one."""

    id: str
    rank: str
    content_hash: str
    similarity: float


def precedence_rank(article: Article) -> str:
    """A sortable key: smaller is more canonical."""
    published = _UNDATED
    stamp = article["published"]
    if stamp:
        try:
            published = utc_iso(_end_of_day_if_date_only(stamp))
        except ValueError:
            published = _UNDATED
    syndicated = "1" if _SYNDICATION_MARKERS.search(article["text"]) else "0"
    return f"{published}|{syndicated}|{article['id']}"


def cluster_verdict(article: Article, rank: str, matches: list[Match]) -> DedupVerdict:
    """The dedup verdict for an article given every verified match the index found."""
    others = [match for match in matches if match.id != article["id"]]
    earlier = [match for match in others if match.rank < rank]
    if not earlier:
        return DedupVerdict(
            content_hash=article["content_hash"],
            cluster_id=article["id"],
            duplicate_of=None,
            similarity=1.0,
            method="first",
        )
    canonical = min(earlier, key=lambda match: match.rank)
    exact = canonical.content_hash == article["content_hash"]
    return DedupVerdict(
        content_hash=article["content_hash"],
        cluster_id=canonical.id,
        duplicate_of=canonical.id,
        similarity=1.0 if exact else round(canonical.similarity, 4),
        method="exact" if exact else "near",
    )


def _end_of_day_if_date_only(stamp: str) -> str:
    """A page that shows only its date is known to be from that day, not from its first second: ranked at
    the day's end, it never outranks a copy with a real time on the same day."""
    date_part, _, time_part = stamp.partition("T")
    if not time_part or time_part in ("00:00:00", "00:00"):
        return f"{date_part}T23:59:59"
    return stamp
