"""Crawl stage: URL canonicalisation, feed parsing, limited fetching and the crawl pass (127.0.0.1 only)."""

from __future__ import annotations

import asyncio
import hashlib
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp import web

from pipeline.contracts import contracts_for
from pipeline.crawl.crawler import Crawler
from pipeline.crawl.feeds import FeedError, parse_feed
from pipeline.crawl.fetcher import FetchError, fetch
from pipeline.crawl.urls import canonical_url
from pipeline.demo.content import ARTICLES, SITES, DemoSite
from pipeline.demo.pages import home_page
from pipeline.demo.site import serve_site
from pipeline.records import RawPage
from pipeline.settings import CrawlSettings, Settings

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


# --- fetch ------------------------------------------------------------------------------------------


async def _page(request: web.Request) -> web.Response:
    return web.Response(text=PAGE_HTML, content_type="text/html", charset="utf-8", headers={"ETag": '"v1"'})


async def _big(request: web.Request) -> web.Response:
    return web.Response(body=b"x" * BIG_BODY_BYTES, content_type="text/html")


async def _loop(request: web.Request) -> web.Response:
    raise web.HTTPFound("/loop")


async def _redirect(request: web.Request) -> web.Response:
    raise web.HTTPMovedPermanently("/page")


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(SLOW_HANDLER_S)
    return web.Response(text=PAGE_HTML, content_type="text/html")


async def _missing(request: web.Request) -> web.Response:
    return web.Response(status=404, text="404: Not Found")


async def _json(request: web.Request) -> web.Response:
    return web.json_response({"not": "html"})


async def _feed(request: web.Request) -> web.Response:
    items = "".join(
        f"<item><title>{name}</title><link>{request.url.origin()}/{name}</link></item>"
        for name in ("page", "data.json", "missing", "big")
    )
    body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{items}</channel></rss>'
    return web.Response(text=body, content_type="application/rss+xml")


@pytest.fixture
async def test_server_url() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/page", _page)
    app.router.add_get("/big", _big)
    app.router.add_get("/loop", _loop)
    app.router.add_get("/redirect", _redirect)
    app.router.add_get("/slow", _slow)
    app.router.add_get("/missing", _missing)
    app.router.add_get("/data.json", _json)
    app.router.add_get("/feed.xml", _feed)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.fixture
def refused_url() -> str:
    """A 127.0.0.1 URL nothing listens on (the port was just free)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


async def test_fetch_page(session: aiohttp.ClientSession, test_server_url: str) -> None:
    result = await fetch(session, f"{test_server_url}/page", 1024 * 1024)
    assert result.status == 200
    assert result.url == f"{test_server_url}/page"
    assert result.final_url == f"{test_server_url}/page"
    assert result.body == PAGE_HTML.encode()
    assert result.charset == "utf-8"
    assert result.headers["content-type"].startswith("text/html")
    assert result.headers["etag"] == '"v1"'
    assert set(result.headers) <= {"content-type", "etag", "last-modified", "content-language", "date"}


async def test_fetch_follows_redirects(session: aiohttp.ClientSession, test_server_url: str) -> None:
    result = await fetch(session, f"{test_server_url}/redirect", 1024 * 1024)
    assert result.status == 200
    assert result.url == f"{test_server_url}/redirect"
    assert result.final_url == f"{test_server_url}/page"


async def test_fetch_returns_error_statuses(session: aiohttp.ClientSession, test_server_url: str) -> None:
    result = await fetch(session, f"{test_server_url}/missing", 1024 * 1024)
    assert result.status == 404


async def test_fetch_body_at_the_limit_is_accepted(
    session: aiohttp.ClientSession, test_server_url: str
) -> None:
    result = await fetch(session, f"{test_server_url}/big", BIG_BODY_BYTES)
    assert len(result.body) == BIG_BODY_BYTES


async def test_fetch_too_large(session: aiohttp.ClientSession, test_server_url: str) -> None:
    with pytest.raises(FetchError) as caught:
        await fetch(session, f"{test_server_url}/big", BIG_BODY_BYTES - 1)
    assert caught.value.reason == "too-large"


async def test_fetch_redirect_loop(session: aiohttp.ClientSession, test_server_url: str) -> None:
    with pytest.raises(FetchError) as caught:
        await fetch(session, f"{test_server_url}/loop", 1024 * 1024)
    assert caught.value.reason == "too-many-redirects"


async def test_fetch_timeout(test_server_url: str) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.2)) as impatient:
        with pytest.raises(FetchError) as caught:
            await fetch(impatient, f"{test_server_url}/slow", 1024 * 1024)
    assert caught.value.reason == "timeout"


async def test_fetch_connection_refused(session: aiohttp.ClientSession, refused_url: str) -> None:
    with pytest.raises(FetchError) as caught:
        await fetch(session, refused_url, 1024 * 1024)
    assert caught.value.reason == "connection"


# --- Crawler ----------------------------------------------------------------------------------------


def demo_feeds(base_url: str) -> list[str]:
    return [base_url + site.feed_path for site in SITES]


async def test_crawl_publishes_every_demo_article_once(
    demo_site_url: str, session: aiohttp.ClientSession
) -> None:
    publisher = CollectingPublisher()
    crawler = Crawler(CrawlSettings(), session, publisher, fixed_clock)

    report = await crawler.crawl_feeds(demo_feeds(demo_site_url))

    assert len(publisher.pages) == len(ARTICLES) == 8
    assert report.outcomes == {"fetched": 8}
    assert sorted(report.published) == sorted(page["url"] for page in publisher.pages)
    assert {page["url"] for page in publisher.pages} == {demo_site_url + a.path for a in ARTICLES}
    contracts = contracts_for(Settings().schemas_dir)
    for page in publisher.pages:
        contracts.validate(page, "raw_page.v1")
        assert page["url"] == canonical_url(page["url"])
        assert page["status"] == 200
        assert page["fetched_at"] == FIXED_NOW.isoformat()
        assert page["source"] in demo_feeds(demo_site_url)
        assert "<article" in page["html"]
    assert len({page["trace_id"] for page in publisher.pages}) == 8


async def test_second_pass_publishes_nothing_new(demo_site_url: str, session: aiohttp.ClientSession) -> None:
    publisher = CollectingPublisher()
    crawler = Crawler(CrawlSettings(), session, publisher, fixed_clock)
    await crawler.crawl_feeds(demo_feeds(demo_site_url))

    second = await crawler.crawl_feeds(demo_feeds(demo_site_url))

    assert second.published == []
    assert "fetched" not in second.outcomes
    assert len(publisher.pages) == 8


async def test_unreadable_feeds_are_counted_and_do_not_stop_the_pass(
    demo_site_url: str, session: aiohttp.ClientSession, refused_url: str
) -> None:
    publisher = CollectingPublisher()
    crawler = Crawler(CrawlSettings(), session, publisher, fixed_clock)
    feeds = [
        f"{demo_site_url}/no-such-site/rss.xml",  # 404
        demo_site_url + SITES[0].home_path,  # an HTML page, not a feed
        refused_url,  # nothing listening
        *demo_feeds(demo_site_url),
    ]

    report = await crawler.crawl_feeds(feeds)

    assert report.outcomes["feed-failed"] == 3
    assert report.outcomes["fetched"] == 8
    assert len(publisher.pages) == 8


async def test_entries_are_counted_by_outcome(session: aiohttp.ClientSession, test_server_url: str) -> None:
    publisher = CollectingPublisher()
    settings = CrawlSettings(max_body_bytes=BIG_BODY_BYTES - 1)
    crawler = Crawler(settings, session, publisher, fixed_clock)

    report = await crawler.crawl_feeds([f"{test_server_url}/feed.xml"])

    assert report.outcomes == {"fetched": 1, "not-html": 1, "status:404": 1, "failed:too-large": 1}
    assert [page["url"] for page in publisher.pages] == [f"{test_server_url}/page"]
    page = publisher.pages[0]
    assert page["html"] == PAGE_HTML
    assert page["content_hash"] == "sha256:" + hashlib.sha256(PAGE_HTML.encode()).hexdigest()
    assert page["source"] == f"{test_server_url}/feed.xml"
    contracts_for(Settings().schemas_dir).validate(page, "raw_page.v1")
