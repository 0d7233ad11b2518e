"""Turn a raw page into an article with trafilatura: main text and metadata, never sidebars."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import py3langid
import trafilatura

from pipeline.dedup.fingerprint import content_hash
from pipeline.records import Article, RawPage

EXTRACTOR_VERSION = f"trafilatura-{trafilatura.__version__}/nf1"
MIN_TEXT_CHARS = 200
_HTML_LANG = re.compile(r"<html\b[^>]*?\blang\s*=\s*[\"']?([a-zA-Z]{2,3})\b", re.IGNORECASE)
ARTICLE_PAGE_TYPES = frozenset({"article", "news", "newsarticle", "blogposting", "reportagenewsarticle"})
LISTING_LINE_SHARE = 0.6
# Full timestamps, not just days: dedup precedence between same-day copies depends on the time.
_DATE_PARAMS = {"extensive_search": True, "original_date": True, "outputformat": "%Y-%m-%dT%H:%M:%S%z"}


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
        date_extraction_params=_DATE_PARAMS,
    )
    if extracted is None:
        return Skipped("no-article")
    document: dict[str, Any] = extracted if isinstance(extracted, dict) else extracted.as_dict()
    text = (document.get("text") or "").strip()
    title = (document.get("title") or "").strip()
    declared_type = (document.get("pagetype") or "").lower()
    if declared_type and declared_type not in ARTICLE_PAGE_TYPES:
        return Skipped("not-an-article", f"og:type {declared_type}")
    # Pages that declare themselves articles may hold bullet lists; only undeclared ones are judged by shape.
    if not declared_type and _looks_like_listing(text):
        return Skipped("listing-page")
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
        published=_iso_datetime(document.get("date")),
        authors=_authors(document.get("author")),
        language=_language(page, text),
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


def _language(page: RawPage, text: str) -> str | None:
    """The page's declared language (<html lang>, Content-Language), else a guess from the text."""
    declared = _HTML_LANG.search(page["html"][:4096])
    if declared:
        return declared.group(1).lower()
    header = page["headers"].get("content-language", "")
    if header:
        return header.split(",")[0].strip()[:2].lower() or None
    if len(text) < MIN_TEXT_CHARS:
        return None
    language, _ = py3langid.classify(text[:3000])
    return str(language)


def _authors(author: str | None) -> list[str]:
    if not author:
        return []
    return [name.strip() for name in author.replace(" and ", ";").split(";") if name.strip()]


def _iso_datetime(value: str | None) -> str | None:
    """Normalise trafilatura's date to extended ISO 8601 (+05:30, not +0530)."""
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z").isoformat()
    except ValueError:
        return value


def _looks_like_listing(text: str) -> bool:
    """Index and section pages come out of extraction as lists of teasers, not paragraphs."""
    lines = [line for line in text.splitlines() if line.strip()]
    listed = sum(1 for line in lines if line.lstrip().startswith(("- ", "• ", "* ")))
    return bool(lines) and listed / len(lines) >= LISTING_LINE_SHARE
