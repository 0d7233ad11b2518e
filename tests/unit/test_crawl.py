"""Crawl stage: URL canonicalisation, feed parsing, limited fetching and the crawl pass (127.0.0.1 only)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest

from pipeline.crawl.feeds import FeedError, parse_feed
from pipeline.crawl.urls import canonical_url
from pipeline.demo.content import ARTICLES, SITES, DemoSite
from pipeline.demo.pages import home_page
from pipeline.demo.site import serve_site
from pipeline.records import RawPage

FIXED_NOW = datetime(2026, 1, 1, tzinfo=UTC)
PAGE_HTML = "<!DOCTYPE html><html><head><title>Test page</title></head><body><p>Hello.</p></body></html>"
BIG_BODY_BYTES = 300 * 1024
SLOW_HANDLER_S = 2.0


def fixed_clock() -> datetime:
    return FIXED_NOW


class CollectingPublisher:
    """An in-memory PagePublisher."""

    def __init__(self) -> None:
        self.pages: list[RawPage] = []

    async def publish(self, page: RawPage) -> None:
        self.pages.append(page)


# --- canonical_url ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTP://Example.COM/news/a.html", "http://example.com/news/a.html"),
        ("http://example.com:80/news/a.html", "http://example.com/news/a.html"),
        ("https://example.com:443/news/a.html", "https://example.com/news/a.html"),
        ("https://example.com:8443/news/a.html", "https://example.com:8443/news/a.html"),
        ("https://example.com/news/a.html#comments", "https://example.com/news/a.html"),
        ("https://example.com/news/a.html?utm_source=rss&utm_medium=feed", "https://example.com/news/a.html"),
        ("https://example.com/news?id=7&utm_campaign=x", "https://example.com/news?id=7"),
        ("  https://example.com/news/a.html \n", "https://example.com/news/a.html"),
        ("https://example.com/News/A.html", "https://example.com/News/A.html"),
        ("http://127.0.0.1:8080/devdiscourse/news/x.html", "http://127.0.0.1:8080/devdiscourse/news/x.html"),
    ],
)
def test_canonical_url(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


def test_canonical_url_is_idempotent() -> None:
    once = canonical_url("HTTP://Example.COM:80/a/b.html?utm_source=x#top")
    assert canonical_url(once) == once


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.com/article.php?story=123", "https://example.com/article.php?story=123"),
        ("https://example.com/view?articleid=9&utm_source=x", "https://example.com/view?articleid=9"),
    ],
)
def test_canonical_url_keeps_non_tracking_query_parameters(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


# --- parse_feed -------------------------------------------------------------------------------------


@pytest.fixture
async def demo_site_url() -> AsyncIterator[str]:
    async with serve_site() as url:
        yield url


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as client:
        yield client


@pytest.mark.parametrize("site", SITES, ids=lambda site: site.slug)
async def test_parse_demo_feed(demo_site_url: str, session: aiohttp.ClientSession, site: DemoSite) -> None:
    slug = site.slug
    feed_url = demo_site_url + site.feed_path
    async with session.get(feed_url) as response:
        body = await response.read()
    entries = parse_feed(body, feed_url)
    expected = {demo_site_url + article.path for article in ARTICLES if article.site == slug}
    assert {entry.url for entry in entries} == expected
    titles = {article.title for article in ARTICLES if article.site == slug}
    assert {entry.title for entry in entries} == titles
    assert all(entry.published for entry in entries)


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("/news/relative.html", "https://example.com/news/relative.html"),
        ("news/relative.html", "https://example.com/feeds/news/relative.html"),
        ("//cdn.example.com/a.html", "https://cdn.example.com/a.html"),
    ],
    ids=["root-relative", "path-relative", "scheme-relative"],
)
def test_parse_feed_makes_relative_links_absolute(link: str, expected: str) -> None:
    body = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
        f"<item><title>Relative</title><link>{link}</link></item></channel></rss>"
    ).encode()
    entries = parse_feed(body, "https://example.com/feeds/rss.xml")
    assert [entry.url for entry in entries] == [expected]


def test_parse_atom_feed() -> None:
    body = (
        b'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>T</title>'
        b'<entry><title>Atom story</title><link href="https://example.com/a.html"/>'
        b"<updated>2019-12-30T10:00:00Z</updated></entry></feed>"
    )
    entries = parse_feed(body, "https://example.com/atom.xml")
    assert [(entry.url, entry.title) for entry in entries] == [("https://example.com/a.html", "Atom story")]


def test_parse_feed_skips_entries_without_link() -> None:
    body = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        b"<item><title>No link</title></item>"
        b"<item><title>Linked</title><link>https://example.com/b.html</link></item></channel></rss>"
    )
    assert [entry.title for entry in parse_feed(body, "https://example.com/rss.xml")] == ["Linked"]


def test_parse_empty_feed_is_not_an_error() -> None:
    body = b'<?xml version="1.0"?><rss version="2.0"><channel><title>Quiet day</title></channel></rss>'
    assert parse_feed(body, "https://example.com/rss.xml") == []


@pytest.mark.parametrize(
    "body",
    [
        home_page(SITES[0], "http://127.0.0.1:8080").encode(),
        b"404: Not Found",
        b'{"items": []}',
        b"\x00\x01\x02<<<",
    ],
    ids=["html-page", "plain-text", "json", "binary"],
)
def test_parse_non_feed_raises(body: bytes) -> None:
    with pytest.raises(FeedError):
        parse_feed(body, "https://example.com/rss.xml")


@pytest.mark.parametrize(
    "body",
    [b"", b'<html><body><a href="/a.html">A</a></body></html>'],
    ids=["empty", "well-formed-html"],
)
def test_parse_well_formed_non_feed_raises(body: bytes) -> None:
    with pytest.raises(FeedError):
        parse_feed(body, "https://example.com/rss.xml")
