"""CDXJ index lines: SURT keys, 14-digit times, pywb's JSON fields plus the Kafka position."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from pipeline.archive.cdxj import IndexEntry, cdxj_line, index_text, parse_cdxj_line, surt_key
from pipeline.archive.warc_writer import KafkaPosition


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("http://www.Example.com/", "com,example)/"),
        ("https://example.com", "com,example)/"),
        ("http://www2.news.example.co.uk/World/Story.html", "uk,co,example,news)/world/story.html"),
        ("http://example.com:80/a?b=2&a=1#frag", "com,example)/a?a=1&b=2"),
        ("https://example.com:8443/a", "com,example:8443)/a"),
        ("http://127.0.0.1:8080/x", "127.0.0.1:8080)/x"),
    ],
)
def test_surt_keys(url: str, key: str) -> None:
    assert surt_key(url) == key


def _entry(url: str = "http://www.example.com/a", **changes: object) -> IndexEntry:
    fields: dict[str, object] = {
        "url": url,
        "captured": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "mime": "text/html",
        "status": 200,
        "digest": "sha1:ABC",
        "length": 1043,
        "offset": 333,
        "filename": "newsfeed-20260102T030405Z-20260102T030405Z-000001.warc.gz",
        "kafka": KafkaPosition("raw", 2, 17, 1_767_323_045_123),
    }
    fields.update(changes)
    return IndexEntry(**fields)  # type: ignore[arg-type]


def test_a_line_is_key_time_and_json_as_pywb_writes_it() -> None:
    line = cdxj_line(_entry())
    key, stamp, block = line.split(" ", 2)
    assert (key, stamp) == ("com,example)/a", "20260102030405")
    fields = orjson.loads(block)
    assert fields["url"] == "http://www.example.com/a"
    assert (fields["status"], fields["length"], fields["offset"]) == ("200", "1043", "333")
    assert fields["kafka"] == {
        "topic": "raw",
        "partition": 2,
        "offset": 17,
        "timestamp_ms": 1_767_323_045_123,
    }


def test_lines_parse_back() -> None:
    entry = _entry()
    assert parse_cdxj_line(cdxj_line(entry)) == entry
    foreign = _entry(kafka=None)
    parsed = parse_cdxj_line(cdxj_line(foreign))
    assert parsed == foreign
    assert parsed is not None
    assert parsed.event_ms is None


@pytest.mark.parametrize(
    "line",
    ["", "!meta 0 {}", "com,example)/ 2026", "com,example)/ 20260101 {not json", 'a 20260101 {"url": "x"}'],
)
def test_malformed_lines_are_passed_over(line: str) -> None:
    assert parse_cdxj_line(line) is None


def test_an_index_is_sorted_by_key_then_time() -> None:
    late = _entry("http://example.com/a", captured=datetime(2026, 1, 3, tzinfo=UTC))
    early = _entry("http://example.com/a", captured=datetime(2026, 1, 1, tzinfo=UTC))
    other = _entry("http://a.example.org/z")
    lines = index_text([late, other, early]).splitlines()
    assert [line.split(" ", 2)[:2] for line in lines] == [
        ["com,example)/a", "20260101000000"],
        ["com,example)/a", "20260103000000"],
        ["org,example,a)/z", "20260102030405"],
    ]
