"""Crawl outcomes counted per source, for metrics and the terminal progress line."""

from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass, field

RECENT_URL_OUTCOMES = 10_000


@dataclass
class CrawlCounters:
    """How every URL and source poll ended: fetched, not-modified, robots-denied, failed:<reason>, ..."""

    outcomes: Counter[str] = field(default_factory=Counter)
    by_source: Counter[tuple[str, str]] = field(default_factory=Counter)
    fetched_bytes: int = 0
    by_url: OrderedDict[str, str] = field(default_factory=OrderedDict)

    def record(self, source: str, outcome: str, url: str | None = None) -> None:
        """Count an outcome; with a URL, also remember it as that URL's latest (the most recent 10,000)."""
        self.outcomes[outcome] += 1
        self.by_source[(source, outcome)] += 1
        if url is not None:
            self.by_url[url] = outcome
            self.by_url.move_to_end(url)
            if len(self.by_url) > RECENT_URL_OUTCOMES:
                self.by_url.popitem(last=False)

    def progress_line(self) -> str:
        shown = ", ".join(f"{outcome} {count}" for outcome, count in sorted(self.outcomes.items()))
        return f"crawl: {shown or 'waiting'}; {self.fetched_bytes / 1e6:.1f} MB"
