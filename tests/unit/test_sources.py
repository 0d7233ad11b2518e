"""The crawler's sources file: format, validation, the shipped defaults and reloading on change."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import pytest

from pipeline.crawl.sources import (
    DEFAULT_POLL_INTERVAL_S,
    DEFAULT_SOURCES_PATH,
    Source,
    SourceKind,
    SourcesError,
    SourcesWatcher,
    load_sources,
    parse_interval,
    parse_sources,
)

VALID = """\
defaults: {poll_interval: 10m}
sources:
  - id: devdiscourse-news
    kind: feed
    url: https://www.devdiscourse.com/rss/news
    poll_interval: 5m
  - id: some-site-sitemap
    kind: sitemap
    url: https://example.com/news-sitemap.xml
  - id: some-section
    kind: section
    url: https://example.com/world/
    article_pattern: '/world/\\d{4}/\\d{2}/[a-z0-9-]+\\.html$'
"""

EXTRA_SOURCE = """\
  - id: added-later
    kind: feed
    url: https://example.org/rss.xml
    poll_interval: 90
"""


# --- intervals --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (10, 10.0),
        (12.5, 12.5),
        ("600", 600.0),
        ("90s", 90.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1d", 86400.0),
        ("1h30m", 5400.0),
        ("2M 30S", 150.0),
        ("0.5h", 1800.0),
    ],
)
def test_parse_interval(value: object, seconds: float) -> None:
    assert parse_interval(value) == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (5, "at least 10 s"),
        ("9s", "at least 10 s"),
        (0, "at least 10 s"),
        (-60, "at least 10 s"),
        ("5 minutes", "duration like"),
        ("m5", "duration like"),
        ("", "duration like"),
        (True, "duration like"),
        (None, "duration like"),
        ([60], "duration like"),
        (float("inf"), "finite"),
    ],
)
def test_parse_interval_rejects(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_interval(value)


# --- parsing and validation -------------------------------------------------------------------------


def test_parse_sources_reads_every_field() -> None:
    feed, sitemap, section = parse_sources(VALID)
    assert feed == Source(
        id="devdiscourse-news",
        kind=SourceKind.FEED,
        url="https://www.devdiscourse.com/rss/news",
        poll_interval_s=300.0,
        article_pattern=None,
    )
    assert sitemap.kind is SourceKind.SITEMAP
    assert sitemap.poll_interval_s == 600.0
    assert section.kind == "section"
    assert section.article_pattern == re.compile(r"/world/\d{4}/\d{2}/[a-z0-9-]+\.html$")
    assert section.accepts("https://example.com/world/2024/05/a-b.html")
    assert not section.accepts("https://example.com/world/")
    assert feed.accepts("https://anything.example/")


def test_without_defaults_the_built_in_interval_applies() -> None:
    (source,) = parse_sources("sources:\n  - {id: a, kind: feed, url: 'https://example.com/rss'}\n")
    assert source.poll_interval_s == DEFAULT_POLL_INTERVAL_S


def test_an_empty_list_of_sources_is_allowed() -> None:
    assert parse_sources("sources: []\n") == []


def source_yaml(**fields: object) -> str:
    entry = {"id": "src", "kind": "feed", "url": "https://example.com/rss.xml", **fields}
    lines = "".join(f"    {key}: {value}\n" for key, value in entry.items() if value is not None)
    return "sources:\n  -\n" + lines


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected a mapping with a 'sources' list"),
        ("- just a list\n", "expected a mapping"),
        ("sources: {id: a}\n", "'sources' must be a list"),
        ("sources: [\n", "not valid YAML"),
        ("source: []\n", r"unknown field\(s\) source; expected defaults, sources"),
        ("defaults: 5m\nsources: []\n", "'defaults' must be a mapping"),
        ("defaults: {poll_interval: 5}\nsources: []\n", r"defaults: poll_interval: must be at least 10 s"),
        ("defaults: {interval: 5m}\nsources: []\n", r"defaults: unknown field\(s\) interval"),
        ("sources:\n  - just-a-url\n", r"sources\[0\]: expected a mapping"),
        (source_yaml(id=None), r"sources\[0\]: id: expected letters"),
        (source_yaml(id="'has space'"), r"sources\[0\]: id: expected letters, .* got 'has space'"),
        (
            source_yaml(kind="podcast"),
            r"sources\[0\] \(id 'src'\): kind: expected feed \| sitemap \| section",
        ),
        (source_yaml(kind=None), r"\(id 'src'\): kind: expected .* got None"),
        (source_yaml(url="ftp://example.com/rss"), r"\(id 'src'\): url: expected an absolute http\(s\) URL"),
        (source_yaml(url="/relative/rss.xml"), r"\(id 'src'\): url: expected an absolute"),
        (source_yaml(url=None), r"\(id 'src'\): url: expected an absolute"),
        (source_yaml(poll_interval="5s"), r"\(id 'src'\): poll_interval: must be at least 10 s"),
        (source_yaml(poll_interval="often"), r"\(id 'src'\): poll_interval: expected seconds or a duration"),
        (source_yaml(kind="section"), r"\(id 'src'\): article_pattern: required for kind section"),
        (
            source_yaml(article_pattern="'[unclosed'"),
            r"\(id 'src'\): article_pattern: invalid regular expression",
        ),
        (source_yaml(article_pattern="42"), r"\(id 'src'\): article_pattern: expected a regular expression"),
        (source_yaml(pol_interval="5m"), r"\(id 'src'\): unknown field\(s\) pol_interval"),
    ],
)
def test_invalid_sources_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(SourcesError, match=message):
        parse_sources(text, origin="sources.yaml")


def test_duplicate_ids_name_both_entries() -> None:
    text = VALID + "  - {id: some-sitemap-dup, kind: feed, url: 'https://a.example/rss'}\n"
    text += "  - {id: some-site-sitemap, kind: feed, url: 'https://b.example/rss'}\n"
    with pytest.raises(
        SourcesError, match=r"sources\[4\] \(id 'some-site-sitemap'\): id: duplicate of sources\[1\]"
    ):
        parse_sources(text)


def test_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text(source_yaml(kind="podcast"))
    with pytest.raises(SourcesError, match=re.escape(str(path))):
        load_sources(path)


def test_missing_file_is_a_sources_error(tmp_path: Path) -> None:
    with pytest.raises(SourcesError, match="cannot read"):
        load_sources(tmp_path / "absent.yaml")


def test_shipped_default_sources_load() -> None:
    sources = load_sources(DEFAULT_SOURCES_PATH)
    assert len(sources) >= 10
    assert any("devdiscourse.com" in source.url for source in sources)
    assert {SourceKind.FEED, SourceKind.SITEMAP, SourceKind.SECTION} <= {source.kind for source in sources}
    assert all(source.url.startswith("https://") for source in sources)


# --- watching for changes ---------------------------------------------------------------------------


def write(path: Path, text: str) -> None:
    path.write_text(text)
    # Push mtime back so the stat shortcut is exercised as it would be for a file edited long ago.
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns - 60_000_000_000))


def test_watcher_returns_the_list_first_then_none_until_the_content_changes(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    write(path, VALID)
    watcher = SourcesWatcher(path)
    first = watcher.changed()
    assert first is not None
    assert [source.id for source in first] == ["devdiscourse-news", "some-site-sitemap", "some-section"]
    assert watcher.changed() is None
    os.utime(path)  # touched, same content
    assert watcher.changed() is None
    assert watcher.sources == first


def test_watcher_picks_up_an_edit_and_a_new_source(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text(VALID)
    watcher = SourcesWatcher(path)
    assert watcher.changed() is not None
    # Same size and written within the same second: only the content tells the edit apart.
    path.write_text(VALID.replace("poll_interval: 5m", "poll_interval: 7m"))
    edited = watcher.changed()
    assert edited is not None
    assert edited[0].poll_interval_s == 420.0
    path.write_text(VALID + EXTRA_SOURCE)
    grown = watcher.changed()
    assert grown is not None
    assert [source.id for source in grown][-1] == "added-later"
    assert watcher.sources == grown
    assert watcher.changed() is None


def test_watcher_keeps_the_old_list_when_an_edit_is_invalid(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "sources.yaml"
    write(path, VALID)
    watcher = SourcesWatcher(path)
    good = watcher.changed()
    assert good is not None
    write(path, VALID + "  - {id: broken, kind: section, url: 'https://example.com/'}\n")
    with caplog.at_level(logging.ERROR, logger="pipeline.crawl.sources"):
        assert watcher.changed() is None
        assert watcher.changed() is None
    assert watcher.sources == good
    errors = [record.getMessage() for record in caplog.records]
    assert len(errors) == 1
    assert "(id 'broken'): article_pattern: required for kind section" in errors[0]
    assert "keeping the 3 sources" in errors[0]
    write(path, VALID + EXTRA_SOURCE)
    fixed = watcher.changed()
    assert fixed is not None
    assert len(fixed) == 4


def test_watcher_keeps_the_old_list_when_the_file_disappears(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "sources.yaml"
    write(path, VALID)
    watcher = SourcesWatcher(path)
    good = watcher.changed()
    path.unlink()
    with caplog.at_level(logging.ERROR, logger="pipeline.crawl.sources"):
        assert watcher.changed() is None
    assert watcher.sources == good
    assert "cannot read" in caplog.text


def test_watcher_first_call_raises_on_an_invalid_file_and_recovers(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    write(path, "sources: [\n")
    watcher = SourcesWatcher(path)
    with pytest.raises(SourcesError, match="not valid YAML"):
        watcher.changed()
    with pytest.raises(SourcesError, match="not valid YAML"):
        watcher.changed()
    write(path, VALID)
    assert watcher.changed() is not None
