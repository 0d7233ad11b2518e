"""Raw pages built from the bundled demo site's content, without any network."""

from __future__ import annotations

import dataclasses
import hashlib

from pipeline.crawl.urls import canonical_url
from pipeline.demo.content import ARTICLES, SITES, DemoArticle, DemoSite
from pipeline.demo.layouts import article_page
from pipeline.demo.pages import home_page
from pipeline.records import RawPage

BASE_URL = "http://news.example.test"


def site_of(article: DemoArticle) -> DemoSite:
    return next(site for site in SITES if site.slug == article.site)


def raw_page(url: str, html: str, fetched_at: str = "2026-01-01T00:00:00+00:00") -> RawPage:
    body = html.encode()
    return RawPage(
        url=canonical_url(url),
        final_url=url,
        status=200,
        headers={"content-type": "text/html; charset=utf-8"},
        fetched_at=fetched_at,
        source=f"{BASE_URL}/feed.xml",
        content_hash="sha256:" + hashlib.sha256(body).hexdigest(),
        html=html,
        trace_id=hashlib.sha256(url.encode()).hexdigest()[:32],
    )


def article_raw_page(article: DemoArticle) -> RawPage:
    return raw_page(BASE_URL + article.path, article_page(site_of(article), article, BASE_URL))


def demo_raw_pages() -> list[RawPage]:
    return [article_raw_page(article) for article in ARTICLES]


def home_raw_page(site: DemoSite) -> RawPage:
    return raw_page(BASE_URL + site.home_path, home_page(site, BASE_URL))


def variant_raw_page(
    article: DemoArticle,
    *,
    site: DemoSite,
    slug: str,
    title: str,
    published: str,
    paragraphs: tuple[str, ...],
) -> RawPage:
    """A syndicated copy of a demo story on another site: own URL, headline, date and body edits."""
    copy = dataclasses.replace(
        article,
        site=site.slug,
        slug=slug,
        title=title,
        published=published,
        body_paragraphs=paragraphs,
        syndicated_from=article.path,
    )
    return raw_page(BASE_URL + copy.path, article_page(site, copy, BASE_URL))
