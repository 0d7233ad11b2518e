"""Replay's pure parts: time parsing, shadow names, options, and the progress display."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import orjson
import pytest

from pipeline.ops.isolated import with_overrides
from pipeline.replay.progress import Progress
from pipeline.replay.ranges import ReplayRangeError, parse_time
from pipeline.replay.run import ReplayOptions, shadow_settings, shadow_topic
from pipeline.settings import load_settings


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2019-12-30T00:00Z", datetime(2019, 12, 30, tzinfo=UTC)),
        ("2019-12-30", datetime(2019, 12, 30, tzinfo=UTC)),
        ("2019-12-30T05:30+05:30", datetime(2019, 12, 30, tzinfo=UTC)),
    ],
)
def test_times_are_iso_8601_and_utc_by_default(text: str, expected: datetime) -> None:
    assert parse_time(text) == expected


def test_a_bad_time_says_what_is_expected() -> None:
    with pytest.raises(ReplayRangeError, match="ISO 8601"):
        parse_time("last tuesday")


def test_shadow_targets_sit_beside_the_live_ones() -> None:
    settings = with_overrides(
        load_settings(), {"store": {"sqlite_path": "/data/newsfeed.sqlite3", "jsonl_dir": "/data/jsonl"}}
    )
    assert shadow_topic(settings, "taxonomy-v2") == "newsfeed.enriched-articles.replay-taxonomy-v2.v1"
    shadow = shadow_settings(settings, "taxonomy-v2")
    assert str(shadow.store.sqlite_path) == "/data/newsfeed.replay-taxonomy-v2.sqlite3"
    assert str(shadow.store.jsonl_dir) == "/data/jsonl/replay-taxonomy-v2"


@pytest.mark.parametrize("name", ["Upper", "has space", "", "x" * 42, "../up"])
def test_shadow_names_are_checked(name: str) -> None:
    with pytest.raises(ValueError, match="--into"):
        ReplayOptions(datetime(2020, 1, 1, tzinfo=UTC), None, "raw", name)


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_on_a_terminal_is_a_bar_with_rate_and_eta() -> None:
    out, clock = FakeTerminal(), Ticks()
    progress = Progress(100, out, label="read", monotonic=clock)
    clock.now = 2.0
    progress.advance(50)
    assert "[###############...............] 50/100" in out.getvalue()
    assert "25.0 rec/s" in out.getvalue()
    assert "ETA    2s" in out.getvalue()
    clock.now = 4.0
    progress.finish()
    assert out.getvalue().endswith("\n")


def test_progress_elsewhere_is_json_lines() -> None:
    out, clock = io.StringIO(), Ticks()
    progress = Progress(10, out, monotonic=clock)
    clock.now = 1.0
    progress.advance(4)
    clock.now = 1.1
    progress.advance(1)  # within the interval: not shown
    clock.now = 2.0
    progress.finish()
    events = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert [event["event"] for event in events] == ["progress", "done"]
    assert events[0] == {
        "event": "progress",
        "done": 4,
        "total": 10,
        "rate_per_s": 4.0,
        "eta_s": 1.5,
        "elapsed_s": 1.0,
    }
    assert events[1]["done"] == 5
