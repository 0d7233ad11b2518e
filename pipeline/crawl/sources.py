"""The crawler's sources file: feeds, sitemaps and section pages to poll, reloaded when it changes."""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

import yaml

log = logging.getLogger(__name__)

DEFAULT_SOURCES_PATH = Path(__file__).with_name("default_sources.yaml")
DEFAULT_POLL_INTERVAL_S = 600.0
MIN_POLL_INTERVAL_S = 10.0
SOURCE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
TOP_LEVEL_KEYS = frozenset({"defaults", "sources"})
DEFAULTS_KEYS = frozenset({"poll_interval"})
SOURCE_KEYS = frozenset({"id", "kind", "url", "poll_interval", "article_pattern"})
SECONDS_PER_UNIT = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
DURATION = re.compile(r"(?:\s*\d+(?:\.\d+)?\s*[smhd])+\s*", re.IGNORECASE)
DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])", re.IGNORECASE)
PLAIN_SECONDS = re.compile(r"\s*\d+(?:\.\d+)?\s*")
# A file modified this close to when it was read may change again within the same mtime tick.
RACY_WINDOW_NS = 2_000_000_000


class SourcesError(ValueError):
    """A sources file that cannot be used; the message names the file, source and field."""


class SourceKind(StrEnum):
    """How a source announces article URLs."""

    FEED = "feed"
    SITEMAP = "sitemap"
    SECTION = "section"


@dataclass(frozen=True, slots=True)
class Source:
    """One place to poll for article URLs.

    article_pattern is searched in each canonical absolute URL: required for section pages, and an
    optional filter for feeds and sitemaps.
    """

    id: str
    kind: SourceKind
    url: str
    poll_interval_s: float
    article_pattern: re.Pattern[str] | None = None

    def accepts(self, url: str) -> bool:
        """Whether a discovered URL passes this source's article pattern (always, without one)."""
        return self.article_pattern is None or self.article_pattern.search(url) is not None


def parse_interval(value: object) -> float:
    """Seconds from a number of seconds or a duration such as "90s", "5m", "1h" or "1h30m"."""
    if isinstance(value, bool):
        raise ValueError(f"expected seconds or a duration like 5m, got {value!r}")
    if isinstance(value, int | float) or (isinstance(value, str) and PLAIN_SECONDS.fullmatch(value)):
        seconds = float(value)
    elif isinstance(value, str) and DURATION.fullmatch(value):
        seconds = sum(float(n) * SECONDS_PER_UNIT[unit.lower()] for n, unit in DURATION_PART.findall(value))
    else:
        raise ValueError(f"expected seconds or a duration like 90s, 5m or 1h, got {value!r}")
    if not math.isfinite(seconds):
        raise ValueError(f"expected a finite interval, got {value!r}")
    if seconds < MIN_POLL_INTERVAL_S:
        raise ValueError(f"must be at least {MIN_POLL_INTERVAL_S:g} s, got {value!r}")
    return seconds


def load_sources(path: str | os.PathLike[str]) -> list[Source]:
    """Sources listed in a YAML file; raises SourcesError naming the problem."""
    location = Path(path)
    try:
        text = location.read_bytes()
    except OSError as error:
        raise SourcesError(f"{location}: cannot read ({error.strerror or error})") from None
    return parse_sources(text, origin=str(location))


def parse_sources(text: str | bytes, origin: str = "<sources>") -> list[Source]:
    """Sources from YAML text; origin names the file in error messages."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise SourcesError(f"{origin}: not valid YAML ({error})") from None
    if not isinstance(document, Mapping):
        raise SourcesError(f"{origin}: expected a mapping with a 'sources' list")
    _reject_unknown_keys(document, TOP_LEVEL_KEYS, origin)
    default_interval = _default_interval(document.get("defaults"), origin)
    entries = document.get("sources")
    if not isinstance(entries, list):
        raise SourcesError(f"{origin}: 'sources' must be a list")
    sources: list[Source] = []
    first_index_of: dict[str, int] = {}
    for index, entry in enumerate(entries):
        source = _parse_source(entry, f"{origin}: sources[{index}]", default_interval)
        if source.id in first_index_of:
            first = first_index_of[source.id]
            raise SourcesError(
                f"{origin}: sources[{index}] (id {source.id!r}): id: duplicate of sources[{first}]"
            )
        first_index_of[source.id] = index
        sources.append(source)
    return sources


def _reject_unknown_keys(mapping: Mapping[object, object], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(str(key) for key in mapping if key not in allowed)
    if unknown:
        raise SourcesError(
            f"{where}: unknown field(s) {', '.join(unknown)}; expected {', '.join(sorted(allowed))}"
        )


def _default_interval(defaults: object, origin: str) -> float:
    if defaults is None:
        return DEFAULT_POLL_INTERVAL_S
    if not isinstance(defaults, Mapping):
        raise SourcesError(f"{origin}: 'defaults' must be a mapping")
    _reject_unknown_keys(defaults, DEFAULTS_KEYS, f"{origin}: defaults")
    if "poll_interval" not in defaults:
        return DEFAULT_POLL_INTERVAL_S
    try:
        return parse_interval(defaults["poll_interval"])
    except ValueError as error:
        raise SourcesError(f"{origin}: defaults: poll_interval: {error}") from None


def _parse_source(entry: object, where: str, default_interval: float) -> Source:
    if not isinstance(entry, Mapping):
        raise SourcesError(f"{where}: expected a mapping with id, kind and url")
    source_id = entry.get("id")
    if not isinstance(source_id, str) or not SOURCE_ID.fullmatch(source_id):
        raise SourcesError(f"{where}: id: expected letters, digits, '.', '_' or '-', got {source_id!r}")
    where = f"{where} (id {source_id!r})"
    _reject_unknown_keys(entry, SOURCE_KEYS, where)

    kind_name = entry.get("kind")
    try:
        kind = SourceKind(str(kind_name))
    except ValueError:
        choices = " | ".join(kind.value for kind in SourceKind)
        raise SourcesError(f"{where}: kind: expected {choices}, got {kind_name!r}") from None

    url = entry.get("url")
    if not isinstance(url, str) or not _is_web_url(url.strip()):
        raise SourcesError(f"{where}: url: expected an absolute http(s) URL, got {url!r}")

    poll_interval_s = default_interval
    if "poll_interval" in entry:
        try:
            poll_interval_s = parse_interval(entry["poll_interval"])
        except ValueError as error:
            raise SourcesError(f"{where}: poll_interval: {error}") from None

    pattern_text = entry.get("article_pattern")
    article_pattern: re.Pattern[str] | None = None
    if pattern_text is None:
        if kind is SourceKind.SECTION:
            raise SourcesError(f"{where}: article_pattern: required for kind section")
    elif not isinstance(pattern_text, str) or not pattern_text:
        raise SourcesError(f"{where}: article_pattern: expected a regular expression, got {pattern_text!r}")
    else:
        try:
            article_pattern = re.compile(pattern_text)
        except re.error as error:
            raise SourcesError(f"{where}: article_pattern: invalid regular expression ({error})") from None

    return Source(
        id=source_id,
        kind=kind,
        url=url.strip(),
        poll_interval_s=poll_interval_s,
        article_pattern=article_pattern,
    )


def _is_web_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


class SourcesWatcher:
    """Reloads a sources file when its content changes, keeping the last good list across bad edits."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.sources: list[Source] = []
        self._loaded = False
        self._stat_key: tuple[int, int, int] | None = None
        self._read_at_ns = 0
        self._digest: bytes | None = None
        self._reported: str | None = None

    def changed(self) -> list[Source] | None:
        """The new list when the file's content changed since the last call, else None.

        The first call returns the list, and raises SourcesError when the file is unusable, as there is
        no earlier list to fall back on. Later, an unreadable or invalid file is logged once and the
        previous list stays in force (self.sources).
        """
        try:
            stat = self.path.stat()
        except OSError as error:
            return self._fail(SourcesError(f"{self.path}: cannot read ({error.strerror or error})"))
        stat_key = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        # Same stat as last time is trusted only when the read came well after the modification;
        # otherwise a second write within the same mtime tick could go unnoticed.
        if stat_key == self._stat_key and self._read_at_ns - stat.st_mtime_ns > RACY_WINDOW_NS:
            return None
        try:
            content = self.path.read_bytes()
        except OSError as error:
            return self._fail(SourcesError(f"{self.path}: cannot read ({error.strerror or error})"))
        self._stat_key = stat_key
        self._read_at_ns = time.time_ns()
        digest = hashlib.sha256(content).digest()
        if digest == self._digest:
            return None
        self._digest = digest
        try:
            sources = parse_sources(content, origin=str(self.path))
        except SourcesError as error:
            return self._fail(error)
        self.sources = sources
        self._loaded = True
        self._reported = None
        return sources

    def _fail(self, error: SourcesError) -> list[Source] | None:
        if not self._loaded:
            # Forget the content so that the next call, after the caller fixes the file, tries again.
            self._digest = None
            self._stat_key = None
            raise error
        # A file that stays broken is reported once, not on every poll.
        if str(error) != self._reported:
            self._reported = str(error)
            log.error("%s; keeping the %d sources loaded before", error, len(self.sources))
        return None
