"""The benchmark news corpus: reproducible, truthful about its pages, and served with feeds and sitemaps."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import datetime

import lxml.html  # type: ignore[import-untyped]
import pytest
from aiohttp.test_utils import TestClient, TestServer

from bench.corpus import SITES, SITES_BY_SLUG, Corpus, CorpusPage, corpus_app, generate_corpus
from pipeline.crawl.discovery import parse_sitemap
from pipeline.crawl.feeds import parse_feed

BASE_URL = "http://corpus.example.test"
_SPACE = re.compile(r"\s+")


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return generate_corpus(300, seed=11)


def visible_text(html: str) -> str:
    root = lxml.html.fromstring(html)
    for node in root.xpath("//script|//style"):
        node.drop_tree()
    return _SPACE.sub(" ", root.text_content())


def test_same_seed_gives_byte_identical_pages() -> None:
    first, second = generate_corpus(120, seed=5), generate_corpus(120, seed=5)
    assert [page.html for page in first.pages] == [page.html for page in second.pages]
    assert first.pages == second.pages


def test_another_seed_gives_other_pages() -> None:
    first, second = generate_corpus(40, seed=5), generate_corpus(40, seed=6)
    assert {page.html for page in first.pages}.isdisjoint(page.html for page in second.pages)


def test_size_and_unique_urls(corpus: Corpus) -> None:
    assert len(corpus.pages) == 300
    assert len({page.url for page in corpus.pages}) == 300
    assert set(corpus.by_url) == {page.url for page in corpus.pages}


def test_pages_are_spread_over_at_least_five_layouts(corpus: Corpus) -> None:
    layouts = Counter(page.layout for page in corpus.pages)
    assert len(SITES) >= 5
    assert len(layouts) == len({site.layout for site in SITES}) >= 5
    assert all(count >= 10 for count in layouts.values()), layouts


def test_page_records_are_consistent(corpus: Corpus) -> None:
    for page in corpus.pages:
        assert page.url == f"/{page.site}{page.path}"
        assert re.fullmatch(rf"/{page.site}/news/[a-z0-9-]+\.html", page.url)
        assert page.layout == SITES_BY_SLUG[page.site].layout
        assert 4 <= len(page.body_paragraphs) <= 12
        assert page.title.strip() == page.title
        assert datetime.fromisoformat(page.published).utcoffset() is not None


@pytest.mark.parametrize("share", [0.0, 0.2, 0.35])
def test_syndicated_share(share: float) -> None:
    pages = generate_corpus(200, seed=3, syndicated_share=share).pages
    copies = sum(1 for page in pages if page.syndicated_from is not None)
    assert abs(copies / len(pages) - share) <= 0.05


def test_syndicated_copies_reuse_an_earlier_story_from_another_site(corpus: Corpus) -> None:
    copies = [page for page in corpus.pages if page.syndicated_from is not None]
    assert copies
    for copy in copies:
        assert copy.syndicated_from is not None
        original = corpus.by_url[copy.syndicated_from]
        assert original.syndicated_from is None
        assert original.site != copy.site
        assert original.published_at < copy.published_at
        shared = set(copy.body_paragraphs) & set(original.body_paragraphs)
        # At most one paragraph dropped and one update appended.
        assert len(shared) >= len(original.body_paragraphs) - 1
        assert len(copy.body_paragraphs) - len(shared) <= 1


def test_some_copies_carry_wire_credits_and_changes(corpus: Corpus) -> None:
    copies = [page for page in corpus.pages if page.syndicated_from is not None]
    originals = [corpus.by_url[page.syndicated_from or ""] for page in copies]
    wire = ("inputs from", "edited by", "Reporting by")
    credited = [copy for copy in copies if any(m in line for line in copy.boilerplate_lines for m in wire)]
    pairs = list(zip(copies, originals, strict=True))
    changed = [copy for copy, original in pairs if copy.body_paragraphs != original.body_paragraphs]
    retitled = [copy for copy, original in pairs if copy.title != original.title]
    assert credited
    assert changed
    assert len(retitled) >= len(copies) * 0.9


def test_true_body_title_and_boilerplate_appear_in_the_html(corpus: Corpus) -> None:
    for page in corpus.pages:
        text = visible_text(page.html)
        missing = [paragraph for paragraph in page.body_paragraphs if _SPACE.sub(" ", paragraph) not in text]
        assert missing == [], page.url
        assert page.title in text
        assert all(_SPACE.sub(" ", line) in text for line in page.boilerplate_lines), page.url


def test_pages_carry_sidebars_and_site_furniture(corpus: Corpus) -> None:
    for page in corpus.pages[:60]:
        text = visible_text(page.html)
        assert any(heading in text for heading in ("Latest News", "Latest:", "Read next"))
        assert any(heading in text for heading in ("Most read", "Most Read", "Trending"))
        assert "We use cookies" in text
        assert "Newsletter" in text
        assert "All rights reserved" in text


def _has_machine_date(page: CorpusPage) -> bool:
    return any(marker in page.html for marker in ("datetime=", "article:published_time", "datePublished"))


def test_dates_appear_in_varied_ways(corpus: Corpus) -> None:
    text_only = [page for page in corpus.pages if not _has_machine_date(page)]
    assert text_only
    assert {page.layout for page in text_only} == {"no_article"}
    for page in text_only:
        when = page.published_at
        assert f"{when.day} {when:%B %Y}" in page.html
    with_meta = {page.layout for page in corpus.pages if "article:published_time" in page.html}
    with_json_ld = {page.layout for page in corpus.pages if "application/ld+json" in page.html}
    assert with_meta
    assert with_json_ld
    assert with_meta != with_json_ld


def test_a_layout_without_article_tags_and_one_with_the_sidebar_first(corpus: Corpus) -> None:
    by_layout = {page.layout: page for page in corpus.pages}
    assert "<article" not in by_layout["no_article"].html
    rail_first = by_layout["rail_first"].html
    body = rail_first.index("<body")
    lead = by_layout["rail_first"].body_paragraphs[0][:40]
    assert body < rail_first.index("Latest News", body) < rail_first.index(lead, body)
    assert 'id="comments"' in by_layout["wordpress"].html
    assert "Also read:" in by_layout["inline_boxes"].html


def test_json_ld_is_valid(corpus: Corpus) -> None:
    for page in corpus.pages:
        for payload in re.findall(r'<script type="application/ld\+json">(.*?)</script>', page.html):
            data = json.loads(payload)
            assert data["headline"] == page.title
            assert data["datePublished"] == page.published


@pytest.mark.parametrize("site", [site.slug for site in SITES])
def test_feed_parses_and_lists_the_newest_pages(corpus: Corpus, site: str) -> None:
    feed_url = BASE_URL + SITES_BY_SLUG[site].feed_path
    entries = parse_feed(corpus.feed_xml(site, BASE_URL).encode(), feed_url)
    newest = corpus.pages_of(site)[: len(entries)]
    assert len(entries) == min(50, len(corpus.pages_of(site)))
    assert [entry.url for entry in entries] == [BASE_URL + page.url for page in newest]
    for entry, page in zip(entries, newest, strict=True):
        assert entry.title == page.title
        assert entry.published is not None
        assert datetime.fromisoformat(entry.published) == page.published_at


@pytest.mark.parametrize("site", [site.slug for site in SITES])
def test_sitemap_parses_and_lists_every_page(corpus: Corpus, site: str) -> None:
    sitemap_url = BASE_URL + SITES_BY_SLUG[site].sitemap_path
    content = parse_sitemap(corpus.sitemap_xml(site, BASE_URL).encode(), sitemap_url, site)
    pages = corpus.pages_of(site)
    assert [found.url for found in content.urls] == [BASE_URL + page.url for page in pages]
    assert content.child_sitemaps == []
    for found, page in zip(content.urls, pages, strict=True):
        assert found.published is not None
        assert datetime.fromisoformat(found.published) == page.published_at
        if SITES_BY_SLUG[site].news_sitemap:
            assert found.title == page.title


async def test_app_serves_pages_feeds_sitemaps_and_robots() -> None:
    corpus = generate_corpus(30, seed=2)
    page = corpus.pages[0]
    site = SITES_BY_SLUG[page.site]
    async with TestClient(TestServer(corpus_app(corpus))) as client:
        base = str(client.make_url("")).rstrip("/")
        response = await client.get(page.url)
        assert response.status == 200
        assert response.content_type == "text/html"
        assert await response.text() == page.html

        response = await client.get(site.feed_path)
        assert response.status == 200
        entries = parse_feed(await response.read(), base + site.feed_path)
        assert base + page.url in {entry.url for entry in entries}

        response = await client.get(site.sitemap_path)
        assert response.status == 200
        content = parse_sitemap(await response.read(), base + site.sitemap_path, site.slug)
        assert base + page.url in {found.url for found in content.urls}

        response = await client.get(site.home_path)
        assert response.status == 200
        assert page.title in await response.text()

        response = await client.get("/robots.txt")
        assert response.status == 200
        robots = await response.text()
        assert f"Sitemap: {base}{site.sitemap_path}" in robots

        for missing in ("/site-1/news/nothing.html", "/site-99/feed.xml", "/elsewhere"):
            response = await client.get(missing)
            assert response.status == 404
