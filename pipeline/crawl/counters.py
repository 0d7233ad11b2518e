"""Crawl outcomes counted per source, for metrics and the terminal progress line."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class CrawlCounters:
    """How every URL and source poll ended: fetched, not-modified, robots-denied, failed:<reason>, ..."""

    outcomes: Counter[str] = field(default_factory=Counter)
    by_source: Counter[tuple[str, str]] = field(default_factory=Counter)
    fetched_bytes: int = 0

    def record(self, source: str, outcome: str) -> None:
        self.outcomes[outcome] += 1
        self.by_source[(source, outcome)] += 1

    def progress_line(self) -> str:
        shown = ", ".join(f"{outcome} {count}" for outcome, count in sorted(self.outcomes.items()))
        return f"crawl: {shown or 'waiting'}; {self.fetched_bytes / 1e6:.1f} MB"
