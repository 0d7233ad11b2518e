"""URL discovery: feeds, sitemaps and section pages parsed from bytes, and hostile XML refused."""

from __future__ import annotations

import gzip
import re
import time
import zlib

import pytest

from pipeline.crawl.discovery import (
    DiscoveredUrl,
    FeedError,
    SitemapContent,
    UnsafeXmlError,
    iso_date,
    parse_section,
    parse_sitemap,
    reject_unsafe_xml,
)
from pipeline.crawl.feeds import FeedEntry, parse_feed, parse_feed_urls

SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
NEWS_NS = "http://www.google.com/schemas/sitemap-news/0.9"
# Hostile documents must be refused long before an expansion could even start.
QUICK_S = 1.0

BILLION_LAUGHS_DTD = (
    '<!DOCTYPE lolz [\n  <!ENTITY lol "lol">\n'
    + "".join(
        f'  <!ENTITY lol{level} "{("&lol" + (str(level - 1) if level > 1 else "") + ";") * 10}">\n'
        for level in range(1, 10)
    )
    + "]>\n"
)
XXE_DTD = '<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'


def rss(items: str, *, dtd: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n{dtd}<rss version="2.0"><channel><title>T</title>'
        f"<link>https://news.example.com/</link>{items}</channel></rss>"
    ).encode()


def urlset(entries: str, *, extra_ns: str = "", dtd: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n{dtd}'
        f'<urlset xmlns="{SITEMAP_NS}"{extra_ns}>{entries}</urlset>'
    ).encode()


# --- feeds ------------------------------------------------------------------------------------------


def test_rss_feed_entries_have_absolute_links_and_iso_dates() -> None:
    body = rss(
        "<item><title>First</title><link>/world/first.html</link>"
        "<pubDate>Mon, 30 Dec 2019 10:00:00 +0100</pubDate></item>"
        "<item><title>Second</title><link>https://news.example.com/world/second.html?utm_source=rss</link>"
        "</item>"
    )
    entries = parse_feed(body, "https://news.example.com/rss.xml")
    assert entries == [
        FeedEntry(
            url="https://news.example.com/world/first.html",
            title="First",
            published="2019-12-30T09:00:00+00:00",
        ),
        FeedEntry(
            url="https://news.example.com/world/second.html?utm_source=rss", title="Second", published=None
        ),
    ]


def test_atom_feed_uses_updated_when_there_is_no_published_date() -> None:
    body = (
        b'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>T</title>'
        b'<entry><title>Atom story</title><link href="stories/a.html"/>'
        b"<updated>2019-12-30T10:00:00Z</updated></entry>"
        b'<entry><title>Published</title><link href="https://example.com/b.html"/>'
        b"<published>2020-01-02T03:04:05+02:00</published><updated>2020-02-01T00:00:00Z</updated></entry>"
        b"</feed>"
    )
    entries = parse_feed(body, "https://example.com/feeds/atom.xml")
    assert [(entry.url, entry.published) for entry in entries] == [
        ("https://example.com/feeds/stories/a.html", "2019-12-30T10:00:00+00:00"),
        ("https://example.com/b.html", "2020-01-02T01:04:05+00:00"),
    ]


def test_feed_urls_are_canonical_deduplicated_and_tagged_with_the_source() -> None:
    body = rss(
        "<item><title> A </title><link>HTTPS://News.Example.com/a.html?utm_medium=feed#top</link>"
        "<pubDate>Tue, 31 Dec 2019 23:59:59 GMT</pubDate></item>"
        "<item><title>A again</title><link>https://news.example.com/a.html</link></item>"
        "<item><link>https://news.example.com/b.html</link></item>"
    )
    assert parse_feed_urls(body, "https://news.example.com/rss.xml", "example-rss") == [
        DiscoveredUrl(
            url="https://news.example.com/a.html",
            published="2019-12-31T23:59:59+00:00",
            title="A",
            source_id="example-rss",
        ),
        DiscoveredUrl(
            url="https://news.example.com/b.html", published=None, title=None, source_id="example-rss"
        ),
    ]


def test_feed_links_that_are_not_web_urls_are_skipped() -> None:
    body = rss(
        "<item><title>Script</title><link>javascript:alert(1)</link></item>"
        "<item><title>Mail</title><link>mailto:desk@example.com</link></item>"
        "<item><title>Web</title><link>https://example.com/web.html</link></item>"
    )
    assert [entry.title for entry in parse_feed(body, "https://example.com/rss.xml")] == ["Web"]


def test_billion_laughs_feed_is_refused_without_expansion() -> None:
    body = rss(
        "<item><title>&lol9;</title><link>https://example.com/a.html</link></item>", dtd=BILLION_LAUGHS_DTD
    )
    started = time.perf_counter()
    with pytest.raises(UnsafeXmlError, match="declares an entity"):
        parse_feed(body, "https://example.com/rss.xml")
    assert time.perf_counter() - started < QUICK_S


def test_xxe_feed_is_refused() -> None:
    body = rss("<item><title>&xxe;</title><link>https://example.com/a.html</link></item>", dtd=XXE_DTD)
    with pytest.raises(UnsafeXmlError, match=r"https://example\.com/rss\.xml"):
        parse_feed(body, "https://example.com/rss.xml")


def test_unsafe_xml_error_is_a_feed_error() -> None:
    # The crawler's existing `except FeedError` must keep covering hostile feeds.
    assert issubclass(UnsafeXmlError, FeedError)


def test_html_page_is_not_a_feed() -> None:
    body = b"<!DOCTYPE html><html><head><title>Home</title></head><body><a href='/a.html'>A</a></body></html>"
    with pytest.raises(FeedError, match="not a feed") as raised:
        parse_feed(body, "https://example.com/")
    assert not isinstance(raised.value, UnsafeXmlError)


def test_a_body_naming_a_local_file_is_not_read_as_that_file() -> None:
    # feedparser opens a bytes argument that is a path; parse_feed must treat it as content.
    with pytest.raises(FeedError, match="not a feed"):
        parse_feed(b"/etc/hostname", "https://example.com/rss.xml")


# --- reject_unsafe_xml ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        rss("", dtd=BILLION_LAUGHS_DTD),
        rss("", dtd=XXE_DTD),
        rss("", dtd='<!DOCTYPE rss [<!ENTITY % remote SYSTEM "http://evil.example/x.dtd"> %remote;]>'),
        rss("", dtd='<!DOCTYPE rss SYSTEM "http://evil.example/x.dtd" [ %remote; ]>'),
        rss("", dtd='<!DOCTYPE rss [ <!-- ]> --> <!ENTITY hidden "x"> ]>'),
        rss("", dtd='<!DOCTYPE rss [ <!ELEMENT rss ANY> <!ATTLIST rss note CDATA "]>"> <!ENTITY e "x"> ]>'),
        rss("", dtd='<!doctype rss [<!entity lower "case">]>'),
        b'<!-- comment first -->\n<?pi data?>\n<!DOCTYPE rss [<!ENTITY e "x">]><rss/>',
        "\ufeff<?xml version='1.0' encoding='utf-16'?><!DOCTYPE rss [<!ENTITY e 'x'>]><rss/>".encode(
            "utf-16"
        ),
        "<?xml version='1.0' encoding='utf-16le'?><!DOCTYPE rss [<!ENTITY e 'x'>]><rss/>".encode("utf-16-le"),
        b'<?xml version="1.0"?><!DOCTYPE rss [ <![INCLUDE[ <!ENTITY e "x"> ]]> ]><rss/>',
        b"<!--" + b" " * (70 * 1024) + b'--><!DOCTYPE rss [<!ENTITY e "x">]><rss/>',
    ],
    ids=[
        "billion-laughs",
        "xxe",
        "parameter-entity",
        "parameter-entity-reference",
        "hidden-behind-comment",
        "hidden-behind-quoted-bracket",
        "lower-case",
        "after-comment-and-pi",
        "utf-16-bom",
        "utf-16-no-bom",
        "conditional-section",
        "prolog-too-long",
    ],
)
def test_reject_unsafe_xml_refuses(body: bytes) -> None:
    with pytest.raises(UnsafeXmlError):
        reject_unsafe_xml(body)


@pytest.mark.parametrize(
    "body",
    [
        rss(""),
        rss("", dtd='<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" "rss-0.91.dtd">\n'),
        rss("", dtd="<!DOCTYPE rss [ <!ELEMENT rss ANY> <!-- a note --> ]>\n"),
        rss("<item><description><![CDATA[About <!ENTITY x 'y'> in XML]]></description></item>"),
        b"<!DOCTYPE html><html><body>Hello</body></html>",
        b"",
        b"<!-- unterminated",
        b"\x00\x01\x02<<<",
    ],
    ids=[
        "plain",
        "external-dtd-identifier",
        "harmless-internal-subset",
        "entity-text-in-body",
        "html",
        "empty",
        "truncated-prolog",
        "binary",
    ],
)
def test_reject_unsafe_xml_accepts(body: bytes) -> None:
    reject_unsafe_xml(body)


# --- sitemaps ---------------------------------------------------------------------------------------


def test_urlset_sitemap_lists_canonical_urls_with_lastmod_dates() -> None:
    body = urlset(
        "<url><loc>https://example.com/news/a.html</loc><lastmod>2024-05-01T10:20:30+02:00</lastmod></url>"
        "<url><loc> https://EXAMPLE.com/news/b.html?utm_source=sitemap </loc>"
        "<lastmod>2024-05-02</lastmod></url>"
        "<url><loc>https://example.com/news/c.html</loc><lastmod>not a date</lastmod></url>"
        "<url><loc>https://example.com/news/a.html</loc></url>"
        "<url><lastmod>2024-05-03</lastmod></url>"
    )
    content = parse_sitemap(body, "https://example.com/sitemap.xml", "example-sitemap")
    assert content == SitemapContent(
        urls=[
            DiscoveredUrl(
                "https://example.com/news/a.html", "2024-05-01T10:20:30+02:00", None, "example-sitemap"
            ),
            DiscoveredUrl("https://example.com/news/b.html", "2024-05-02", None, "example-sitemap"),
            DiscoveredUrl("https://example.com/news/c.html", None, None, "example-sitemap"),
        ],
        child_sitemaps=[],
    )


def test_sitemap_index_returns_child_sitemaps() -> None:
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?><sitemapindex xmlns="{SITEMAP_NS}">'
        "<sitemap><loc>https://example.com/sitemap-news.xml</loc><lastmod>2024-05-01</lastmod></sitemap>"
        "<sitemap><loc>/sitemap-2024-05.xml.gz</loc></sitemap>"
        "<sitemap><loc>https://example.com/sitemap-news.xml</loc></sitemap>"
        "</sitemapindex>"
    ).encode()
    content = parse_sitemap(body, "https://example.com/sitemap.xml", "example")
    assert content.urls == []
    assert content.child_sitemaps == [
        "https://example.com/sitemap-news.xml",
        "https://example.com/sitemap-2024-05.xml.gz",
    ]


def test_gzip_sitemap_is_decompressed() -> None:
    body = gzip.compress(urlset("<url><loc>https://example.com/a.html</loc></url>"))
    content = parse_sitemap(body, "https://example.com/sitemap.xml.gz", "example")
    assert [found.url for found in content.urls] == ["https://example.com/a.html"]


def test_multi_member_gzip_sitemap_is_read_whole() -> None:
    document = urlset("<url><loc>https://example.com/a.html</loc></url>")
    body = gzip.compress(document[:40]) + gzip.compress(document[40:])
    content = parse_sitemap(body, "https://example.com/sitemap.xml.gz", "example")
    assert [found.url for found in content.urls] == ["https://example.com/a.html"]


def test_news_sitemap_gives_publication_dates_and_titles() -> None:
    body = urlset(
        "<url><loc>https://example.com/world/2024/05/summit.html</loc>"
        "<lastmod>2024-05-02T00:00:00Z</lastmod>"
        "<news:news><news:publication><news:name>Example Times</news:name><news:language>en</news:language>"
        "</news:publication><news:publication_date>2024-05-01T08:30:00Z</news:publication_date>"
        "<news:title>Leaders meet at summit</news:title></news:news></url>"
        "<url><loc>https://example.com/world/2024/05/floods.html</loc>"
        "<lastmod>2024-05-01T09:00:00+05:30</lastmod>"
        "<news:news><news:title><![CDATA[Floods & rain]]></news:title></news:news></url>",
        extra_ns=f' xmlns:news="{NEWS_NS}"',
    )
    content = parse_sitemap(body, "https://example.com/news-sitemap.xml", "example-news")
    assert content.urls == [
        DiscoveredUrl(
            url="https://example.com/world/2024/05/summit.html",
            published="2024-05-01T08:30:00+00:00",
            title="Leaders meet at summit",
            source_id="example-news",
        ),
        DiscoveredUrl(
            url="https://example.com/world/2024/05/floods.html",
            published="2024-05-01T09:00:00+05:30",
            title="Floods & rain",
            source_id="example-news",
        ),
    ]


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """About 200 MB of spaces compressed a megabyte at a time, so the test never holds them."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    megabyte = b" " * (1024 * 1024)
    parts = [compressor.compress(b'<?xml version="1.0"?><urlset>')]
    parts += [compressor.compress(megabyte) for _ in range(200)]
    parts.append(compressor.flush())
    return b"".join(parts)


def test_gzip_bomb_sitemap_is_refused_quickly(gzip_bomb: bytes) -> None:
    assert len(gzip_bomb) < 1024 * 1024
    started = time.perf_counter()
    with pytest.raises(FeedError, match="sitemap too large"):
        parse_sitemap(
            gzip_bomb, "https://example.com/sitemap.xml.gz", "example", max_decompressed_bytes=1024 * 1024
        )
    assert time.perf_counter() - started < QUICK_S


def test_plain_sitemap_over_the_limit_is_refused() -> None:
    body = urlset("<url><loc>https://example.com/a.html</loc></url>" * 100)
    with pytest.raises(FeedError, match="sitemap too large"):
        parse_sitemap(body, "https://example.com/sitemap.xml", "example", max_decompressed_bytes=1024)


def test_billion_laughs_sitemap_is_refused() -> None:
    body = urlset("<url><loc>https://example.com/&lol9;</loc></url>", dtd=BILLION_LAUGHS_DTD)
    started = time.perf_counter()
    with pytest.raises(UnsafeXmlError, match=r"https://example\.com/sitemap\.xml"):
        parse_sitemap(body, "https://example.com/sitemap.xml", "example")
    assert time.perf_counter() - started < QUICK_S


def test_gzipped_xxe_sitemap_is_refused() -> None:
    body = gzip.compress(urlset("<url><loc>https://example.com/&xxe;</loc></url>", dtd=XXE_DTD))
    with pytest.raises(UnsafeXmlError):
        parse_sitemap(body, "https://example.com/sitemap.xml.gz", "example")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (rss("<item><link>https://example.com/a.html</link></item>"), "not a sitemap"),
        (b"<html><body>Not found</body></html>", "not a sitemap"),
        (b"https://example.com/a.html\nhttps://example.com/b.html\n", "not XML"),
        (b"", "empty sitemap"),
        (b"\x1f\x8b\x08\x00garbage", "gzip"),
        (gzip.compress(b"<urlset>" * 100)[:-20], "gzip"),
    ],
    ids=["rss", "html", "text", "empty", "corrupt-gzip", "truncated-gzip"],
)
def test_non_sitemaps_raise(body: bytes, message: str) -> None:
    with pytest.raises(FeedError, match=message):
        parse_sitemap(body, "https://example.com/sitemap.xml", "example")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-01", "2024-05-01"),
        ("2024-05-01T10:20Z", "2024-05-01T10:20:00+00:00"),
        ("2024-05-01T10:20:30.5-04:00", "2024-05-01T10:20:30.500000-04:00"),
        ("2024-05", None),
        ("yesterday", None),
        ("", None),
        (None, None),
    ],
)
def test_iso_date(value: str | None, expected: str | None) -> None:
    assert iso_date(value) == expected


# --- section pages ----------------------------------------------------------------------------------

ARTICLE_PATTERN = re.compile(r"/world/\d{4}/\d{2}/[a-z0-9-]+\.html$")
SECTION_PAGE = """<!DOCTYPE html>
<html><head><title>World</title></head><body>
<nav>
  <a href="/">Home</a> <a href="/world/">World</a> <a href="/business/">Business</a>
  <a href="#main">Skip to content</a>
</nav>
<main id="main">
  <article><a href="/world/2024/05/summit-opens.html"><img src="/img/summit.jpg" alt=""></a>
    <h2><a href="/world/2024/05/summit-opens.html#comments">  Summit
      opens </a></h2></article>
  <article><h2><a href="2024/05/floods-recede.html?utm_source=homepage&amp;utm_medium=web">Floods recede</a>
  </h2></article>
  <article><h2><a href="https://example.com/world/2024/05/trade-talks.html">Trade talks</a></h2></article>
  <article><h2><a href="https://other.example.org/world/2024/05/elsewhere.html">Elsewhere</a></h2></article>
  <article><h2><a href="https://cdn.example.com/world/2024/05/cdn-copy.html">CDN copy</a></h2></article>
  <a href="/world/2024/05/summit-opens.html">Summit again</a>
  <a href="/world/2024/05/summit-opens.html/comments">Comments</a>
  <a href="javascript:void(0)">Share</a> <a href="mailto:desk@example.com">Mail us</a>
  <a>No href</a> <a href="">Empty</a>
</main>
<footer><a href="/world/archive/2024.html">Archive</a> <a href="http://[::1">Broken</a></footer>
</body></html>
"""


def test_section_page_yields_matching_same_site_article_urls_in_order() -> None:
    found = parse_section(SECTION_PAGE, "https://www.example.com/world/", "example-world", ARTICLE_PATTERN)
    assert found == [
        DiscoveredUrl(
            "https://www.example.com/world/2024/05/summit-opens.html", None, "Summit opens", "example-world"
        ),
        DiscoveredUrl(
            "https://www.example.com/world/2024/05/floods-recede.html", None, "Floods recede", "example-world"
        ),
        DiscoveredUrl(
            "https://example.com/world/2024/05/trade-talks.html", None, "Trade talks", "example-world"
        ),
    ]


def test_section_page_can_follow_other_hosts() -> None:
    found = parse_section(
        SECTION_PAGE, "https://www.example.com/world/", "example-world", ARTICLE_PATTERN, same_site=False
    )
    assert [item.url for item in found] == [
        "https://www.example.com/world/2024/05/summit-opens.html",
        "https://www.example.com/world/2024/05/floods-recede.html",
        "https://example.com/world/2024/05/trade-talks.html",
        "https://other.example.org/world/2024/05/elsewhere.html",
        "https://cdn.example.com/world/2024/05/cdn-copy.html",
    ]


def test_section_page_resolves_links_against_its_base_element() -> None:
    html = '<html><head><base href="/world/"></head><body><a href="2024/05/a.html">A</a></body></html>'
    found = parse_section(html, "https://example.com/index.html", "example", ARTICLE_PATTERN)
    assert [item.url for item in found] == ["https://example.com/world/2024/05/a.html"]


def test_section_page_with_an_xml_declaration_is_parsed() -> None:
    html = '<?xml version="1.0" encoding="utf-8"?>\n<html><body><a href="/world/2024/05/b.html">B</a></body>'
    found = parse_section(html, "https://example.com/world/", "example", ARTICLE_PATTERN)
    assert [item.url for item in found] == ["https://example.com/world/2024/05/b.html"]


@pytest.mark.parametrize("html", ["", "   \n", "<!-- nothing -->", "plain text without links"])
def test_section_page_without_links_yields_nothing(html: str) -> None:
    assert parse_section(html, "https://example.com/world/", "example", ARTICLE_PATTERN) == []
