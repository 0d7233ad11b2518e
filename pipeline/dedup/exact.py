"""Exact-copy decisions: one canonical article per body hash, chosen by a stated precedence rule.

Precedence: the earliest `published` time wins (an undated article ranks after every dated one); ties go
to the smaller article id. The rule depends only on the articles, never on arrival order, so the same
input always yields the same canonical copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

from pipeline.clock import utc_iso
from pipeline.records import Article, DedupVerdict

DEDUP_VERSION = "exact-2"
_UNDATED = "9999-12-31T23:59:59+00:00"


class FirstSeen(TypedDict):
    """What the dedup table keeps per body hash: the canonical copy and its precedence rank."""

    id: str
    rank: str


@dataclass(frozen=True)
class ExactDecision:
    """The verdict for an article, what the table should now hold, and a canonical copy to retract."""

    verdict: DedupVerdict
    remember: FirstSeen | None
    retract: str | None


def precedence_rank(article: Article) -> str:
    """A sortable key: smaller means more canonical."""
    return f"{_utc(article['published'])}|{article['id']}"


def judge_exact(article: Article, current: FirstSeen | None) -> ExactDecision:
    """Decide whether an article is the canonical copy of its body or a duplicate of the current one.

    Seeing the same article again (a re-crawl or a replay) never makes it a duplicate of itself.
    """
    rank = precedence_rank(article)
    if current is None or current["id"] == article["id"] or rank < current["rank"]:
        retract = current["id"] if current is not None and current["id"] != article["id"] else None
        return ExactDecision(
            verdict=_verdict(article, cluster_id=article["id"], duplicate_of=None, method="first"),
            remember=FirstSeen(id=article["id"], rank=rank),
            retract=retract,
        )
    return ExactDecision(
        verdict=_verdict(article, cluster_id=current["id"], duplicate_of=current["id"], method="exact"),
        remember=None,
        retract=None,
    )


def _verdict(article: Article, *, cluster_id: str, duplicate_of: str | None, method: str) -> DedupVerdict:
    return DedupVerdict(
        content_hash=article["content_hash"],
        cluster_id=cluster_id,
        duplicate_of=duplicate_of,
        similarity=1.0,
        method=method,
    )


def _utc(published: str | None) -> str:
    if not published:
        return _UNDATED
    try:
        return utc_iso(published)
    except ValueError:
        return _UNDATED
