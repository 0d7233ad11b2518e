"""Turn a raw page into an article with trafilatura: main text and metadata, never sidebars."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import trafilatura

from pipeline.dedup.fingerprint import content_hash
from pipeline.records import Article, RawPage

EXTRACTOR_VERSION = f"trafilatura-{trafilatura.__version__}/nf1"
MIN_TEXT_CHARS = 200


@dataclass(frozen=True)
class Skipped:
    """A page that holds no article; `reason` is a short counted label."""

    reason: str
    detail: str = ""


def article_id(canonical_url: str) -> str:
    """Stable article id: the same URL always gives the same id."""
    return hashlib.sha256(canonical_url.encode()).hexdigest()[:32]


def extract_article(page: RawPage) -> Article | Skipped:
    """Extract the main story of a page; pages without one are Skipped, never an exception."""
    if page["status"] != 200:
        return Skipped("http-status", str(page["status"]))
    if not page["html"].strip():
        return Skipped("empty-page")
    extracted = trafilatura.bare_extraction(
        page["html"],
        url=page["final_url"],
        with_metadata=True,
        include_comments=False,
        include_tables=False,
        favor_precision=True,
    )
    if extracted is None:
        return Skipped("no-article")
    document: dict[str, Any] = extracted if isinstance(extracted, dict) else extracted.as_dict()
    text = (document.get("text") or "").strip()
    title = (document.get("title") or "").strip()
    if len(text) < MIN_TEXT_CHARS:
        return Skipped("too-short", f"{len(text)} characters")
    if not title:
        return Skipped("no-title")
    return Article(
        id=article_id(page["url"]),
        url=page["final_url"],
        canonical_url=document.get("url") or page["url"],
        title=title,
        text=text,
        published=document.get("date") or None,
        authors=_authors(document.get("author")),
        language=document.get("language") or None,
        site_name=document.get("sitename") or None,
        description=document.get("description") or None,
        categories=list(document.get("categories") or []),
        image=document.get("image") or None,
        fetched_at=page["fetched_at"],
        source=page["source"],
        content_hash=content_hash(text),
        trace_id=page["trace_id"],
        extractor=EXTRACTOR_VERSION,
    )


def _authors(author: str | None) -> list[str]:
    if not author:
        return []
    return [name.strip() for name in author.replace(" and ", ";").split(";") if name.strip()]
