"""Per-URL crawl state kept on disk across restarts, and the adaptive revisit schedule."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson
from rocksdict import Options, Rdict

MIN_INTERVAL_S = 900.0
MAX_INTERVAL_S = 7 * 86400.0
INITIAL_INTERVAL_S = 3600.0
# A changed page is revisited twice as often; an unchanged one half again as rarely.
SHRINK_ON_CHANGE = 0.5
GROW_ON_SAME = 1.5


@dataclass(frozen=True)
class UrlState:
    """What the last fetch of a URL found and when to look again; times are epoch seconds."""

    url: str
    etag: str | None
    last_modified: str | None
    content_hash: str | None
    last_fetch: float
    next_due: float
    interval_s: float
    changes: int
    checks: int


def after_fetch(
    previous: UrlState | None,
    url: str,
    *,
    now: float,
    content_hash: str | None,
    etag: str | None,
    last_modified: str | None,
    not_modified: bool,
    min_interval_s: float = MIN_INTERVAL_S,
    max_interval_s: float = MAX_INTERVAL_S,
    initial_interval_s: float = INITIAL_INTERVAL_S,
) -> UrlState:
    """The state after a fetch: a changed page is checked more often, an unchanged (or 304) one less.

    The first fetch of a URL starts at `initial_interval_s` and counts as a check, not a change.
    """
    if previous is None:
        interval_s = _clamp(initial_interval_s, min_interval_s, max_interval_s)
        return UrlState(
            url=url,
            etag=etag,
            last_modified=last_modified,
            content_hash=content_hash,
            last_fetch=now,
            next_due=now + interval_s,
            interval_s=interval_s,
            changes=0,
            checks=1,
        )
    if not_modified:
        changed = False
        # A 304 may refresh validators but carries no body, so the known content stays.
        etag = etag or previous.etag
        last_modified = last_modified or previous.last_modified
        content_hash = previous.content_hash
    else:
        changed = content_hash != previous.content_hash
    factor = SHRINK_ON_CHANGE if changed else GROW_ON_SAME
    interval_s = _clamp(previous.interval_s * factor, min_interval_s, max_interval_s)
    return UrlState(
        url=url,
        etag=etag,
        last_modified=last_modified,
        content_hash=content_hash,
        last_fetch=now,
        next_due=now + interval_s,
        interval_s=interval_s,
        changes=previous.changes + int(changed),
        checks=previous.checks + 1,
    )


def is_due(state: UrlState, now: float) -> bool:
    return now >= state.next_due


def conditional_headers(state: UrlState | None) -> dict[str, str]:
    """Validators for a conditional GET, so an unchanged page costs a 304 instead of a body."""
    if state is None:
        return {}
    headers: dict[str, str] = {}
    if state.etag:
        headers["If-None-Match"] = state.etag
    if state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    return headers


def _clamp(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


_FIELDS = tuple(field.name for field in dataclasses.fields(UrlState))


def _encode(state: UrlState) -> bytes:
    return orjson.dumps(dataclasses.asdict(state))


def _decode(raw: bytes) -> UrlState | None:
    try:
        record: Any = orjson.loads(raw)
        return UrlState(**{name: record[name] for name in _FIELDS})
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None


class CrawlStateStore:
    """UrlState records in a RocksDB directory owned by this process, keyed by URL."""

    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        # One writer and small records: bound the info logs and open files instead of tuning for throughput.
        options.set_keep_log_file_num(2)
        options.set_max_open_files(256)
        self._db = Rdict(str(path), options=options)

    def get(self, url: str) -> UrlState | None:
        raw = self._db.get(url.encode())
        return None if raw is None else _decode(raw)

    def put(self, state: UrlState) -> None:
        self._db[state.url.encode()] = _encode(state)

    def delete(self, url: str) -> None:
        del self._db[url.encode()]

    def count(self) -> int:
        """Number of URLs stored; a full scan, as RocksDB only estimates key counts."""
        # Rdict has no __iter__, so the explicit keys() view is needed here.
        return sum(1 for _ in self._db.keys())  # noqa: SIM118

    def __len__(self) -> int:
        return self.count()

    def __contains__(self, url: object) -> bool:
        return isinstance(url, str) and self.get(url) is not None

    def due(self, now: float) -> Iterator[UrlState]:
        """States whose next visit is at or before `now`; a full scan. Exhaust or close it before close()."""
        for _, raw in self._db.items():
            state = _decode(raw)
            if state is not None and is_due(state, now):
                yield state

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> CrawlStateStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
