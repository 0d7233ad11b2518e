"""Crawl state: the RocksDB store across restarts and the adaptive revisit interval."""

from __future__ import annotations

from pathlib import Path

import pytest
from rocksdict import Options, Rdict

from pipeline.crawl.state import (
    CrawlStateStore,
    UrlState,
    after_fetch,
    conditional_headers,
    is_due,
)

URL = "https://news.example/world/story-1"


def first_fetch(now: float = 1_700_000_000.0) -> UrlState:
    return after_fetch(
        None,
        URL,
        now=now,
        content_hash="h1",
        etag='"v1"',
        last_modified="Tue, 14 Nov 2023 22:13:20 GMT",
        not_modified=False,
    )


def test_first_fetch_starts_at_initial_interval() -> None:
    state = first_fetch(now=1000.0)
    assert state == UrlState(
        url=URL,
        etag='"v1"',
        last_modified="Tue, 14 Nov 2023 22:13:20 GMT",
        content_hash="h1",
        last_fetch=1000.0,
        next_due=1000.0 + 3600,
        interval_s=3600.0,
        changes=0,
        checks=1,
    )


def test_unchanged_content_grows_interval_up_to_max() -> None:
    state = first_fetch(now=0.0)
    intervals = []
    for step in range(1, 30):
        state = after_fetch(
            state, URL, now=step * 1e6, content_hash="h1", etag='"v1"', last_modified=None, not_modified=False
        )
        intervals.append(state.interval_s)
    assert intervals[0] == 5400.0
    assert intervals == sorted(intervals)
    assert intervals[-1] == 7 * 86400
    assert state.changes == 0
    assert state.checks == 30
    assert state.next_due == state.last_fetch + state.interval_s


def test_not_modified_grows_interval_and_keeps_known_content() -> None:
    state = first_fetch(now=0.0)
    after = after_fetch(
        state, URL, now=4000.0, content_hash=None, etag=None, last_modified=None, not_modified=True
    )
    assert after.interval_s == 5400.0
    assert after.next_due == 4000.0 + 5400.0
    assert (after.etag, after.last_modified, after.content_hash) == (
        state.etag,
        state.last_modified,
        state.content_hash,
    )
    assert (after.changes, after.checks) == (0, 2)

    refreshed = after_fetch(
        after, URL, now=9000.0, content_hash=None, etag='"v1b"', last_modified=None, not_modified=True
    )
    assert refreshed.etag == '"v1b"'


def test_changed_content_shrinks_interval_down_to_min() -> None:
    state = first_fetch(now=0.0)
    intervals = []
    for step in range(1, 8):
        state = after_fetch(
            state,
            URL,
            now=step * 1e4,
            content_hash=f"h{step + 1}",
            etag=None,
            last_modified=None,
            not_modified=False,
        )
        intervals.append(state.interval_s)
    assert intervals[:2] == [1800.0, 900.0]
    assert intervals[-1] == 900.0
    assert state.changes == 7
    # Validators belong to the body they came with; a new body without them drops the old ones.
    assert state.etag is None


def test_interval_bounds_are_configurable() -> None:
    state = after_fetch(
        None,
        URL,
        now=0.0,
        content_hash="a",
        etag=None,
        last_modified=None,
        not_modified=False,
        initial_interval_s=50.0,
        min_interval_s=60.0,
        max_interval_s=100.0,
    )
    assert state.interval_s == 60.0
    grown = after_fetch(
        state,
        URL,
        now=60.0,
        content_hash="a",
        etag=None,
        last_modified=None,
        not_modified=False,
        min_interval_s=60.0,
        max_interval_s=100.0,
    )
    assert grown.interval_s == 90.0


def test_is_due() -> None:
    state = first_fetch(now=0.0)
    assert not is_due(state, 3599.0)
    assert is_due(state, 3600.0)
    assert is_due(state, 1e9)


def test_conditional_headers() -> None:
    assert conditional_headers(None) == {}
    assert conditional_headers(first_fetch()) == {
        "If-None-Match": '"v1"',
        "If-Modified-Since": "Tue, 14 Nov 2023 22:13:20 GMT",
    }


def test_store_round_trip_and_restart(tmp_path: Path) -> None:
    path = tmp_path / "crawl-state"
    first = first_fetch(now=0.0)
    second = after_fetch(
        None,
        "https://news.example/ünïcode?q=1",
        now=10.0,
        content_hash=None,
        etag=None,
        last_modified=None,
        not_modified=False,
    )

    with CrawlStateStore(path) as store:
        assert store.get(URL) is None
        store.put(first)
        store.put(second)
        assert store.get(URL) == first
        assert len(store) == 2

    with CrawlStateStore(path) as store:
        assert store.get(URL) == first
        assert store.get(second.url) == second
        assert store.count() == 2
        assert URL in store
        updated = after_fetch(
            first, URL, now=4000.0, content_hash="h1", etag=None, last_modified=None, not_modified=True
        )
        store.put(updated)

    with CrawlStateStore(path) as store:
        assert store.get(URL) == updated
        store.delete(second.url)
        assert store.count() == 1


def test_due_lists_only_states_whose_time_has_come(tmp_path: Path) -> None:
    with CrawlStateStore(tmp_path / "crawl-state") as store:
        for index in range(5):
            store.put(
                after_fetch(
                    None,
                    f"https://news.example/{index}",
                    now=index * 1000.0,
                    content_hash=str(index),
                    etag=None,
                    last_modified=None,
                    not_modified=False,
                )
            )
        due = sorted(state.url for state in store.due(now=5600.0))
    assert due == ["https://news.example/0", "https://news.example/1", "https://news.example/2"]


def test_unreadable_record_reads_as_absent(tmp_path: Path) -> None:
    path = tmp_path / "crawl-state"
    with CrawlStateStore(path) as store:
        store.put(first_fetch())
    raw = Rdict(str(path), options=Options(raw_mode=True))
    raw[URL.encode()] = b"{not json"
    raw.close()
    with CrawlStateStore(path) as store:
        assert store.get(URL) is None


@pytest.mark.parametrize("not_modified", [True, False])
def test_counts_checks_on_every_fetch(not_modified: bool) -> None:
    state = after_fetch(
        first_fetch(),
        URL,
        now=1.0,
        content_hash="h1",
        etag=None,
        last_modified=None,
        not_modified=not_modified,
    )
    assert state.checks == 2
