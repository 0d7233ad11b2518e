"""Find article URLs in fetched sitemaps and section pages, refusing XML that declares entities."""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from datetime import date, datetime
from urllib.parse import urljoin, urlsplit

import lxml.html  # type: ignore[import-untyped]
from lxml import etree

from pipeline.crawl.urls import canonical_url

GZIP_MAGIC = b"\x1f\x8b"
NEWS_NS = "http://www.google.com/schemas/sitemap-news/0.9"
DEFAULT_MAX_SITEMAP_BYTES = 50 * 1024 * 1024
# A DOCTYPE sits in the prolog, before the root element; a longer prolog than this is not a real feed.
PROLOG_SCAN_BYTES = 64 * 1024
WEB_SCHEMES = ("http", "https")


class FeedError(ValueError):
    """A feed, sitemap or page that cannot be read for article URLs."""


class UnsafeXmlError(FeedError):
    """XML that declares entities (billion laughs, XXE): rejected, never expanded."""


@dataclass(frozen=True, slots=True)
class DiscoveredUrl:
    """An article URL found by a source, with what the source says about it."""

    url: str
    published: str | None
    title: str | None
    source_id: str


@dataclass(frozen=True, slots=True)
class SitemapContent:
    """Article URLs of a <urlset>, or the child sitemaps of a <sitemapindex> for the caller to fetch."""

    urls: list[DiscoveredUrl]
    child_sitemaps: list[str]


# --- XML safety -------------------------------------------------------------------------------------


class _PrologTruncatedError(Exception):
    """The scanned prefix ended inside the prolog."""


def reject_unsafe_xml(body: bytes) -> None:
    """Raise UnsafeXmlError when the document's DTD declares entities or refers to parameter entities.

    Only the prolog can hold a DOCTYPE, so the scan walks the XML declaration, comments and processing
    instructions up to the root element. An external DTD identifier alone is allowed (old RSS 0.91 and
    XHTML pages carry one) because neither feedparser nor our lxml parser ever loads it.
    """
    prefix = body[:PROLOG_SCAN_BYTES]
    text = prefix.decode(_sniff_encoding(prefix), errors="replace")
    try:
        _scan_prolog(text)
    except _PrologTruncatedError:
        if len(body) > len(prefix):
            raise UnsafeXmlError(f"XML prolog longer than {PROLOG_SCAN_BYTES} bytes") from None
        # The whole document ends inside its prolog: malformed, and the parser will say so.


def _sniff_encoding(prefix: bytes) -> str:
    """Enough of the XML encoding sniffing table to find markup; ASCII-compatible bytes read as latin-1."""
    boms = (
        (b"\x00\x00\xfe\xff", "utf-32-be"),
        (b"\xff\xfe\x00\x00", "utf-32-le"),
        (b"\xfe\xff", "utf-16-be"),
        (b"\xff\xfe", "utf-16-le"),
        (b"\xef\xbb\xbf", "utf-8-sig"),
    )
    for bom, encoding in boms:
        if prefix.startswith(bom):
            return encoding
    without_bom = {
        b"\x00\x00\x00\x3c": "utf-32-be",
        b"\x3c\x00\x00\x00": "utf-32-le",
        b"\x00\x3c\x00\x3f": "utf-16-be",
        b"\x3c\x00\x3f\x00": "utf-16-le",
        b"\x4c\x6f\xa7\x94": "cp037",
    }
    # latin-1 maps every byte to one character, so markup positions survive any ASCII-compatible encoding.
    return without_bom.get(prefix[:4], "latin-1")


def _skip_past(text: str, start: int, terminator: str) -> int:
    end = text.find(terminator, start)
    if end < 0:
        raise _PrologTruncatedError
    return end + len(terminator)


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n\ufeff":
        position += 1
    return position


def _scan_prolog(text: str) -> None:
    position = 0
    while True:
        position = _skip_space(text, position)
        if position >= len(text):
            raise _PrologTruncatedError
        if text.startswith("<?", position):
            position = _skip_past(text, position + 2, "?>")
        elif text.startswith("<!--", position):
            position = _skip_past(text, position + 4, "-->")
        elif text[position : position + 9].upper() == "<!DOCTYPE":
            _scan_doctype(text, position + 9)
            return
        else:
            # The root element (or junk a conforming parser refuses): no DTD can follow.
            return


def _scan_doctype(text: str, position: int) -> None:
    """Walk the DOCTYPE's name and external identifier to its end or to its internal subset."""
    while position < len(text):
        char = text[position]
        if char in "\"'":
            position = _skip_past(text, position + 1, char)
        elif char == ">":
            return
        elif char == "[":
            _scan_internal_subset(text, position + 1)
            return
        else:
            position += 1
    raise _PrologTruncatedError


def _scan_internal_subset(text: str, position: int) -> None:
    while True:
        position = _skip_space(text, position)
        if position >= len(text):
            raise _PrologTruncatedError
        if text[position] == "]":
            return
        if text.startswith("<!--", position):
            position = _skip_past(text, position + 4, "-->")
        elif text.startswith("<?", position):
            position = _skip_past(text, position + 2, "?>")
        elif text[position : position + 8].upper() == "<!ENTITY":
            raise UnsafeXmlError("document type declares an entity")
        elif text[position] == "%":
            raise UnsafeXmlError("document type refers to a parameter entity")
        elif text.startswith("<!", position) and text[position + 2 : position + 3].isalpha():
            position = _skip_markup_declaration(text, position + 2)
        else:
            # Anything else cannot be told apart from an attempt to hide a declaration: fail closed.
            raise UnsafeXmlError("unreadable internal DTD subset")


def _skip_markup_declaration(text: str, position: int) -> int:
    while position < len(text):
        char = text[position]
        if char in "\"'":
            position = _skip_past(text, position + 1, char)
        elif char == ">":
            return position + 1
        else:
            position += 1
    raise _PrologTruncatedError


# --- sitemaps ---------------------------------------------------------------------------------------


def parse_sitemap(
    body: bytes,
    sitemap_url: str,
    source_id: str,
    *,
    max_decompressed_bytes: int = DEFAULT_MAX_SITEMAP_BYTES,
) -> SitemapContent:
    """Article URLs of a <urlset> or child sitemaps of a <sitemapindex>; gzip bodies are decompressed.

    A URL's published date is its Google News publication date, else its <lastmod>; its title is the
    Google News title. Raises FeedError for anything that is not a sitemap or is larger than the limit.
    """
    if body.startswith(GZIP_MAGIC):
        body = _gunzip_limited(body, max_decompressed_bytes, sitemap_url)
    elif len(body) > max_decompressed_bytes:
        raise FeedError(f"{sitemap_url}: sitemap too large (over {max_decompressed_bytes} bytes)")
    if not body.strip():
        raise FeedError(f"{sitemap_url}: empty sitemap")
    try:
        reject_unsafe_xml(body)
    except UnsafeXmlError as error:
        raise UnsafeXmlError(f"{sitemap_url}: {error}") from None
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        load_dtd=False,
        dtd_validation=False,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError as error:
        raise FeedError(f"{sitemap_url}: not XML ({error})") from None
    root_name = etree.QName(root).localname
    if root_name == "urlset":
        return SitemapContent(urls=_urlset_urls(root, sitemap_url, source_id), child_sitemaps=[])
    if root_name == "sitemapindex":
        return SitemapContent(urls=[], child_sitemaps=_index_children(root, sitemap_url))
    raise FeedError(f"{sitemap_url}: not a sitemap (root element <{root_name}>)")


def _gunzip_limited(body: bytes, limit: int, sitemap_url: str) -> bytes:
    """Decompress every gzip member, never holding more than limit + 1 bytes of output."""
    output = bytearray()
    remaining = body
    while remaining.startswith(GZIP_MAGIC):
        decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        pending = remaining
        try:
            while not decompressor.eof:
                # max_length caps each step's output, so a bomb is stopped after limit + 1 bytes.
                chunk = decompressor.decompress(pending, limit + 1 - len(output))
                pending = decompressor.unconsumed_tail
                if not chunk and not pending:
                    raise FeedError(f"{sitemap_url}: truncated gzip sitemap")
                output += chunk
                if len(output) > limit:
                    raise FeedError(f"{sitemap_url}: sitemap too large (over {limit} bytes decompressed)")
        except zlib.error as error:
            raise FeedError(f"{sitemap_url}: corrupt gzip sitemap ({error})") from None
        remaining = decompressor.unused_data
    return bytes(output)


def _children(element: etree._Element) -> dict[str, etree._Element]:
    """Direct child elements by local name (first wins); the sitemap namespace varies between sites."""
    found: dict[str, etree._Element] = {}
    for child in element:
        if isinstance(child.tag, str):
            found.setdefault(etree.QName(child).localname, child)
    return found


def _news_children(element: etree._Element) -> dict[str, etree._Element]:
    found: dict[str, etree._Element] = {}
    for child in element:
        if isinstance(child.tag, str) and etree.QName(child).namespace == NEWS_NS:
            found.setdefault(etree.QName(child).localname, child)
    return found


def _text(element: etree._Element | None) -> str | None:
    if element is None or element.text is None:
        return None
    return element.text.strip() or None


def _urlset_urls(root: etree._Element, sitemap_url: str, source_id: str) -> list[DiscoveredUrl]:
    found: dict[str, DiscoveredUrl] = {}
    for entry in root:
        if not isinstance(entry.tag, str) or etree.QName(entry).localname != "url":
            continue
        fields = _children(entry)
        url = _absolute_web_url(sitemap_url, _text(fields.get("loc")))
        if url is None or url in found:
            continue
        news = _news_children(fields["news"]) if "news" in fields else {}
        published = iso_date(_text(news.get("publication_date"))) or iso_date(_text(fields.get("lastmod")))
        found[url] = DiscoveredUrl(
            url=url, published=published, title=_text(news.get("title")), source_id=source_id
        )
    return list(found.values())


def _index_children(root: etree._Element, sitemap_url: str) -> list[str]:
    children: dict[str, None] = {}
    for entry in root:
        if isinstance(entry.tag, str) and etree.QName(entry).localname == "sitemap":
            url = _absolute_web_url(sitemap_url, _text(_children(entry).get("loc")))
            if url is not None:
                children.setdefault(url)
    return list(children)


def iso_date(value: str | None) -> str | None:
    """A W3C/ISO 8601 date or date-time normalised by datetime; None when absent or unreadable."""
    if not value:
        return None
    try:
        if len(value) == 10:
            return date.fromisoformat(value).isoformat()
        return datetime.fromisoformat(value).isoformat()
    except ValueError:
        return None


# --- section pages ----------------------------------------------------------------------------------


def parse_section(
    html: str,
    page_url: str,
    source_id: str,
    article_pattern: re.Pattern[str],
    *,
    same_site: bool = True,
) -> list[DiscoveredUrl]:
    """Links of a section page whose canonical URL matches article_pattern, first occurrence first.

    Links resolve against the page's <base href> when it has one. With same_site, only links whose host
    equals the page's host (ignoring a leading "www.", the scheme and the port) are kept. A link's title
    is its text, taken from a later duplicate when the first one has none (an image link, say).
    """
    if not html.strip():
        return []
    # Encoding to UTF-8 ourselves lets lxml accept pages that carry an XML encoding declaration.
    parser = lxml.html.HTMLParser(encoding="utf-8")
    try:
        root = lxml.html.document_fromstring(html.encode("utf-8", errors="replace"), parser=parser)
    except etree.ParserError:
        return []
    base_url = page_url
    for base in root.iter("base"):
        href = base.get("href")
        if href:
            base_url = _absolute_web_url(page_url, href, canonical=False) or page_url
        break
    page_site = _site(page_url)
    titles: dict[str, str | None] = {}
    for anchor in root.iter("a"):
        url = _absolute_web_url(base_url, anchor.get("href"))
        if url is None or not article_pattern.search(url):
            continue
        if same_site and _site(url) != page_site:
            continue
        title = " ".join(anchor.text_content().split()) or None
        if titles.get(url) is None:
            titles[url] = title
    return [
        DiscoveredUrl(url=url, published=None, title=title, source_id=source_id)
        for url, title in titles.items()
    ]


def _site(url: str) -> str:
    host = (urlsplit(url).hostname or "").lower()
    return host.removeprefix("www.")


def _absolute_web_url(base_url: str, link: str | None, *, canonical: bool = True) -> str | None:
    """The link resolved against base_url, canonical and without fragment; None unless http(s)."""
    if not link or not link.strip():
        return None
    try:
        absolute = urljoin(base_url, link.strip())
        parts = urlsplit(absolute)
        if parts.scheme.lower() not in WEB_SCHEMES or not parts.hostname:
            return None
        return canonical_url(absolute) if canonical else absolute
    except ValueError:
        return None
