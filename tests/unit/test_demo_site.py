"""The bundled demo news sites: routes, feeds, article markup, and story-versus-sidebar extraction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from html import escape

import aiohttp
import feedparser
import lxml.html
import pytest
import trafilatura

from pipeline.demo.content import (
    ARTICLES,
    SEED_ARTICLE,
    SIDEBAR_SNIPPETS,
    SITES,
    SYNDICATED_COPY,
    TOPIC_INDIA_DEFENCE,
    TOPIC_IRAQ_STRIKES,
    TOPIC_US_RUSSIA,
    DemoArticle,
    DemoSite,
    articles_of,
)
from pipeline.demo.site import serve_site

HTML_UTF8 = "text/html; charset=utf-8"


@pytest.fixture
async def base_url() -> AsyncIterator[str]:
    async with serve_site() as url:
        yield url


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def fetch(client: aiohttp.ClientSession, url: str) -> tuple[int, str, str]:
    async with client.get(url) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


def by_id(article: DemoArticle) -> str:
    return article.path


async def test_serve_site_picks_a_free_port(base_url: str) -> None:
    assert base_url.startswith("http://127.0.0.1:")
    assert int(base_url.rsplit(":", 1)[1]) > 0


async def test_index_lists_every_site_and_its_absolute_feed(
    base_url: str, client: aiohttp.ClientSession
) -> None:
    status, content_type, page = await fetch(client, base_url + "/")
    assert (status, content_type) == (200, HTML_UTF8)
    for site in SITES:
        assert escape(site.name) in page
        assert f'href="{site.home_path}"' in page
        assert f'href="{base_url}{site.feed_path}"' in page


async def test_robots_allows_everything(base_url: str, client: aiohttp.ClientSession) -> None:
    status, content_type, robots = await fetch(client, base_url + "/robots.txt")
    assert status == 200
    assert content_type.startswith("text/plain")
    assert robots.splitlines() == ["User-agent: *", "Allow: /"]


@pytest.mark.parametrize("site", SITES, ids=lambda site: site.slug)
async def test_feed_lists_site_articles_with_absolute_links(
    base_url: str, client: aiohttp.ClientSession, site: DemoSite
) -> None:
    slug = site.slug
    status, content_type, xml = await fetch(client, f"{base_url}/{slug}/rss.xml")
    assert status == 200
    assert content_type.startswith("application/rss+xml")
    feed = feedparser.parse(xml)
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "rss20"
    expected = articles_of(slug)
    assert [entry.link for entry in feed.entries] == [base_url + article.path for article in expected]
    for entry, article in zip(feed.entries, expected, strict=True):
        assert entry.title == article.title
        assert entry.id == entry.link
        assert entry.published_parsed is not None
        assert entry.summary == article.description
        assert datetime.strptime(entry.published, "%a, %d %b %Y %H:%M:%S %z") == article.published_at


@pytest.mark.parametrize("site", SITES, ids=lambda site: site.slug)
async def test_home_page_links_every_article(
    base_url: str, client: aiohttp.ClientSession, site: DemoSite
) -> None:
    slug = site.slug
    status, content_type, page = await fetch(client, f"{base_url}/{slug}/")
    assert (status, content_type) == (200, HTML_UTF8)
    links = lxml.html.fromstring(page).xpath("//main//a/@href")
    assert links == [article.path for article in articles_of(slug)]


async def test_site_root_without_slash_redirects(base_url: str, client: aiohttp.ClientSession) -> None:
    async with client.get(base_url + "/dailyledger", allow_redirects=False) as response:
        assert response.status == 301
        assert response.headers["Location"] == "/dailyledger/"


@pytest.mark.parametrize("article", ARTICLES, ids=by_id)
async def test_article_page_is_a_full_news_page(
    base_url: str, client: aiohttp.ClientSession, article: DemoArticle
) -> None:
    status, content_type, page = await fetch(client, base_url + article.path)
    assert (status, content_type) == (200, HTML_UTF8)
    tree = lxml.html.fromstring(page)
    assert tree.get("lang") == "en"
    assert tree.xpath("//link[@rel='canonical']/@href") == [base_url + article.path]
    assert tree.xpath("//meta[@property='og:title']/@content") == [article.title]
    assert tree.xpath("//meta[@property='article:published_time']/@content") == [article.published]
    assert tree.xpath("//meta[@name='author']/@content") == [article.author]
    assert [h1.text_content() for h1 in tree.xpath("//h1")] == [article.title]
    assert tree.xpath("//nav//a")
    headings = {heading.text_content().strip().lower() for heading in tree.xpath("//aside//h2 | //aside//h3")}
    assert {"trending", "latest news"} <= headings
    assert any("opinion" in heading for heading in headings)
    assert tree.xpath("//footer")
    paragraphs = [p.text_content() for p in tree.xpath("//article//p")]
    for paragraph in article.body_paragraphs:
        assert paragraph in paragraphs


async def test_seed_page_reproduces_the_seed(base_url: str, client: aiohttp.ClientSession) -> None:
    _, _, page = await fetch(client, base_url + SEED_ARTICLE.path)
    tree = lxml.html.fromstring(page)
    article_text = tree.xpath("//article")[0].text_content()
    assert SEED_ARTICLE.body_paragraphs[0].startswith("Russian President Vladimir Putin on Monday invited")
    assert SEED_ARTICLE.body_paragraphs[-1].endswith("G20 economic summit in St. Petersburg. (ANI)")
    # The standfirst repeats the lead, as on the real page.
    assert article_text.count(SEED_ARTICLE.summary) == 2
    assert "30-12-2019 22:00 IST" in article_text
    assert tree.xpath("//figcaption")[0].text_content() == SEED_ARTICLE.image_caption
    assert SEED_ARTICLE.boilerplate in article_text
    sidebar_text = " ".join(aside.text_content() for aside in tree.xpath("//aside"))
    for snippet in ("Iraq condemns U.S. air strikes", "General Rawat", "VisionRI served Legal Notice"):
        assert snippet in sidebar_text
        assert snippet not in article_text
    footer = tree.xpath("//footer")[0].text_content()
    assert "Email: info@devdiscourse.com" in footer
    assert "© Copyright 2019" in footer


async def test_syndicated_copy_shares_the_wire_body_in_another_layout(
    base_url: str, client: aiohttp.ClientSession
) -> None:
    assert SYNDICATED_COPY.syndicated_from == SEED_ARTICLE.path
    assert SYNDICATED_COPY.body_paragraphs == SEED_ARTICLE.body_paragraphs
    assert (SYNDICATED_COPY.title, SYNDICATED_COPY.path) != (SEED_ARTICLE.title, SEED_ARTICLE.path)
    _, _, seed_page = await fetch(client, base_url + SEED_ARTICLE.path)
    _, _, copy_page = await fetch(client, base_url + SYNDICATED_COPY.path)
    # One site puts its sidebar after the story, the other before it.
    assert seed_page.index("<article") < seed_page.index("<aside")
    assert copy_page.index("<aside") < copy_page.index("<article")
    assert 'class="story__body"' in copy_page
    assert 'class="story__body"' not in seed_page


@pytest.mark.parametrize("article", ARTICLES, ids=by_id)
async def test_trafilatura_extracts_the_story_without_sidebars(
    base_url: str, client: aiohttp.ClientSession, article: DemoArticle
) -> None:
    _, _, page = await fetch(client, base_url + article.path)
    text = trafilatura.extract(page, favor_precision=True)
    assert text is not None
    for paragraph in article.body_paragraphs:
        assert paragraph in text
    leaked = [snippet for snippet in SIDEBAR_SNIPPETS if snippet in text]
    assert leaked == []


async def test_trafilatura_drops_the_seed_sidebar_headlines(
    base_url: str, client: aiohttp.ClientSession
) -> None:
    _, _, page = await fetch(client, base_url + SEED_ARTICLE.path)
    text = trafilatura.extract(page, favor_precision=True) or ""
    assert SEED_ARTICLE.body_paragraphs[0] in text
    assert SEED_ARTICLE.body_paragraphs[-1] in text
    assert "Iraq condemns U.S. air strikes" not in text
    assert "General Rawat" not in text


@pytest.mark.parametrize(
    "path",
    ["/nowhere", "/unknownsite/", "/unknownsite/rss.xml", "/devdiscourse/news/no-such-story.html"],
)
async def test_unknown_paths_are_not_found(base_url: str, client: aiohttp.ClientSession, path: str) -> None:
    status, _, _ = await fetch(client, base_url + path)
    assert status == 404


async def test_conditional_get_answers_not_modified(base_url: str, client: aiohttp.ClientSession) -> None:
    async with client.get(base_url + SEED_ARTICLE.path) as response:
        etag = response.headers["ETag"]
        assert response.headers["Last-Modified"]
    async with client.get(base_url + SEED_ARTICLE.path, headers={"If-None-Match": etag}) as response:
        assert response.status == 304


async def test_article_images_are_served(base_url: str, client: aiohttp.ClientSession) -> None:
    _, _, page = await fetch(client, base_url + SEED_ARTICLE.path)
    image_url = lxml.html.fromstring(page).xpath("//meta[@property='og:image']/@content")[0]
    status, content_type, svg = await fetch(client, image_url)
    assert (status, content_type) == (200, "image/svg+xml; charset=utf-8")
    assert svg.startswith("<svg")


def test_catalogue_covers_the_required_stories() -> None:
    paths = [article.path for article in ARTICLES]
    assert len(paths) == len(set(paths))
    topics = [article.expected_topics for article in ARTICLES]
    assert topics.count((TOPIC_US_RUSSIA,)) == 2
    assert (TOPIC_IRAQ_STRIKES,) in topics
    assert (TOPIC_INDIA_DEFENCE,) in topics
    assert topics.count(()) >= 3
    assert {article.site for article in ARTICLES} == {site.slug for site in SITES}
    for article in ARTICLES:
        assert article.published_at.tzinfo is not None
        assert datetime(2019, 12, 20).date() <= article.published_at.date() <= datetime(2019, 12, 31).date()
        assert article.syndicated_from in (None, *paths)


def test_sidebar_snippets_never_occur_in_any_story() -> None:
    stories = [" ".join((article.title, *article.body_paragraphs)) for article in ARTICLES]
    for snippet in SIDEBAR_SNIPPETS:
        assert not any(snippet in story for story in stories), snippet
