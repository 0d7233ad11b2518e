"""Parse RSS and Atom feeds into the article URLs they announce."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urljoin

import feedparser


class FeedError(ValueError):
    """A feed that cannot be read as RSS or Atom."""


@dataclass(frozen=True)
class FeedEntry:
    """One announced article."""

    url: str
    title: str
    published: str | None


def parse_feed(body: bytes, feed_url: str) -> list[FeedEntry]:
    """Entries of a feed, links made absolute; raises FeedError when nothing usable is there."""
    parsed = feedparser.parse(body)
    if not parsed.get("version"):
        reason = parsed.get("bozo_exception") or "no RSS or Atom root element"
        raise FeedError(f"{feed_url}: not a feed ({reason!s})")
    entries = []
    for entry in parsed.entries:
        link = entry.get("link")
        if not link:
            continue
        entries.append(
            FeedEntry(
                url=urljoin(feed_url, link), title=entry.get("title", ""), published=entry.get("published")
            )
        )
    return entries
