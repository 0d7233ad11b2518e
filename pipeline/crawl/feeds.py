"""Parse RSS and Atom feeds into the article URLs they announce."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser

from pipeline.crawl.discovery import WEB_SCHEMES, DiscoveredUrl, FeedError, UnsafeXmlError, reject_unsafe_xml
from pipeline.crawl.urls import canonical_url

__all__ = ["FeedEntry", "FeedError", "UnsafeXmlError", "parse_feed", "parse_feed_urls"]


@dataclass(frozen=True)
class FeedEntry:
    """One announced article; published is ISO 8601 in UTC when the feed dates it."""

    url: str
    title: str
    published: str | None


def parse_feed(body: bytes, feed_url: str) -> list[FeedEntry]:
    """Entries of a feed, links made absolute; raises FeedError when nothing usable is there.

    Entries whose link is not http(s) are skipped. Raises UnsafeXmlError (a FeedError) for a feed that
    declares XML entities.
    """
    try:
        reject_unsafe_xml(body)
    except UnsafeXmlError as error:
        raise UnsafeXmlError(f"{feed_url}: {error}") from None
    # A file object, because feedparser treats a bytes argument that names a local path as that file.
    parsed = feedparser.parse(io.BytesIO(body))
    if not parsed.get("version"):
        reason = parsed.get("bozo_exception") or "no RSS or Atom root element"
        raise FeedError(f"{feed_url}: not a feed ({reason!s})")
    entries = []
    for entry in parsed.entries:
        link = entry.get("link")
        if not link:
            continue
        try:
            url = urljoin(feed_url, link.strip())
            if urlsplit(url).scheme.lower() not in WEB_SCHEMES:
                continue
        except ValueError:
            continue
        entries.append(FeedEntry(url=url, title=entry.get("title", ""), published=_published(entry)))
    return entries


def parse_feed_urls(body: bytes, feed_url: str, source_id: str) -> list[DiscoveredUrl]:
    """parse_feed as canonical DiscoveredUrls, first occurrence of each URL first."""
    found: dict[str, DiscoveredUrl] = {}
    for entry in parse_feed(body, feed_url):
        try:
            url = canonical_url(entry.url)
        except ValueError:
            continue
        if url not in found:
            found[url] = DiscoveredUrl(
                url=url, published=entry.published, title=entry.title.strip() or None, source_id=source_id
            )
    return list(found.values())


def _published(entry: Any) -> str | None:
    """feedparser's parsed dates are UTC struct_times; the raw strings come in too many formats to keep."""
    for key in ("published_parsed", "updated_parsed"):
        parsed: time.struct_time | None = entry.get(key)
        if parsed is not None:
            try:
                return datetime(*parsed[:6], tzinfo=UTC).isoformat()
            except (TypeError, ValueError):
                continue
    return None
