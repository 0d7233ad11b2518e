"""Article extraction on the demo sites' rendered pages: main story only, metadata, and skip reasons."""

from __future__ import annotations

import hashlib
import re

import pytest

from pipeline.contracts import contracts_for
from pipeline.demo.content import ARTICLES, SEED_ARTICLE, SIDEBAR_SNIPPETS, SITES, DemoArticle, DemoSite
from pipeline.demo.layouts import article_page
from pipeline.demo.pages import home_page, index_page
from pipeline.extract.extractor import Skipped, article_id, extract_article
from pipeline.records import Article, RawPage
from pipeline.settings import Settings

BASE_URL = "http://127.0.0.1:8080"
SITES_BY_SLUG = {site.slug: site for site in SITES}
SEED_LAST_SENTENCE = (
    "The last time an American president visited Russia was in 2013 when then-President Barack Obama took "
    "part in the G20 economic summit in St. Petersburg."
)


def raw_page(html: str, url: str, status: int = 200) -> RawPage:
    """A raw_page.v1 record as the crawler would publish it for `html` served at `url`."""
    return RawPage(
        url=url,
        final_url=url,
        status=status,
        headers={"content-type": "text/html; charset=utf-8"},
        fetched_at="2026-01-01T00:00:00+00:00",
        source=f"{BASE_URL}/feed.xml",
        content_hash="sha256:" + hashlib.sha256(html.encode()).hexdigest(),
        html=html,
        trace_id="0123456789abcdef0123456789abcdef",
    )


def site_of(article: DemoArticle) -> DemoSite:
    return SITES_BY_SLUG[article.site]


def rendered_page(article: DemoArticle) -> RawPage:
    return raw_page(article_page(site_of(article), article, BASE_URL), BASE_URL + article.path)


def extracted(article: DemoArticle) -> Article:
    result = extract_article(rendered_page(article))
    assert not isinstance(result, Skipped), f"{article.path} skipped: {result}"
    return result


def by_path(article: DemoArticle) -> str:
    return article.path


@pytest.fixture(scope="module", params=ARTICLES, ids=by_path)
def demo_article(request: pytest.FixtureRequest) -> DemoArticle:
    article: DemoArticle = request.param
    return article


@pytest.fixture(scope="module")
def extracted_article(demo_article: DemoArticle) -> Article:
    return extracted(demo_article)


def test_title_is_the_headline(demo_article: DemoArticle, extracted_article: Article) -> None:
    assert extracted_article["title"] == demo_article.title


def test_every_body_paragraph_is_in_the_text(demo_article: DemoArticle, extracted_article: Article) -> None:
    missing = [text for text in demo_article.body_paragraphs if text not in extracted_article["text"]]
    assert missing == []


def test_no_sidebar_or_site_chrome_in_the_text(demo_article: DemoArticle, extracted_article: Article) -> None:
    furniture = (*SIDEBAR_SNIPPETS, *site_of(demo_article).chrome_snippets)
    leaked = [snippet for snippet in furniture if snippet in extracted_article["text"]]
    assert leaked == []


def test_published_is_the_article_date(demo_article: DemoArticle, extracted_article: Article) -> None:
    published = extracted_article["published"]
    assert published is not None
    assert published.startswith(demo_article.published[:10])


def test_site_name_is_set(extracted_article: Article) -> None:
    assert extracted_article["site_name"]


def test_record_satisfies_article_contract(extracted_article: Article) -> None:
    contracts_for(Settings().schemas_dir).validate(extracted_article, "article.v1")


def test_record_keeps_the_page_provenance(demo_article: DemoArticle, extracted_article: Article) -> None:
    page = rendered_page(demo_article)
    assert extracted_article["url"] == page["final_url"]
    assert extracted_article["fetched_at"] == page["fetched_at"]
    assert extracted_article["source"] == page["source"]
    assert extracted_article["trace_id"] == page["trace_id"]


def test_article_id_is_stable_and_32_hex(demo_article: DemoArticle, extracted_article: Article) -> None:
    assert re.fullmatch(r"[0-9a-f]{32}", extracted_article["id"])
    assert extracted(demo_article)["id"] == extracted_article["id"]
    assert extracted_article["id"] == article_id(BASE_URL + demo_article.path)


def test_article_ids_differ_between_articles() -> None:
    ids = {article_id(BASE_URL + article.path) for article in ARTICLES}
    assert len(ids) == len(ARTICLES)


@pytest.fixture(scope="module")
def seed_text() -> str:
    return extracted(SEED_ARTICLE)["text"]


class TestSeedPage:
    def test_text_begins_with_the_lead(self, seed_text: str) -> None:
        assert seed_text.startswith("Russian President Vladimir Putin on Monday invited")

    def test_text_ends_with_the_last_story_sentence(self, seed_text: str) -> None:
        assert seed_text.removesuffix("(ANI)").rstrip().endswith(SEED_LAST_SENTENCE)

    @pytest.mark.parametrize(
        "furniture",
        ["TRENDING", "Latest News", "Iraq condemns", "General Rawat", "Devdiscourse News App", "Copyright"],
    )
    def test_text_has_no_page_furniture(self, seed_text: str, furniture: str) -> None:
        assert furniture not in seed_text


class TestSkipped:
    def test_non_200_status(self) -> None:
        page = rendered_page(SEED_ARTICLE)
        page["status"] = 404
        result = extract_article(page)
        assert result == Skipped("http-status", "404")

    @pytest.mark.parametrize("html", ["", "   \n\t  "], ids=["empty", "whitespace"])
    def test_empty_page(self, html: str) -> None:
        result = extract_article(raw_page(html, f"{BASE_URL}/empty.html"))
        assert isinstance(result, Skipped)
        assert result.reason == "empty-page"

    def test_tiny_page(self) -> None:
        html = "<html><head><title>Hi</title></head><body><p>Hello there.</p></body></html>"
        result = extract_article(raw_page(html, f"{BASE_URL}/tiny.html"))
        assert isinstance(result, Skipped)
        assert result.reason

    @pytest.mark.parametrize("site", SITES, ids=lambda site: site.slug)
    def test_home_page(self, site: DemoSite) -> None:
        result = extract_article(raw_page(home_page(site, BASE_URL), BASE_URL + site.home_path))
        assert isinstance(result, Skipped)
        assert result.reason

    def test_index_page(self) -> None:
        result = extract_article(raw_page(index_page(BASE_URL), BASE_URL + "/"))
        assert isinstance(result, Skipped)
        assert result.reason

    def test_non_article_og_type(self) -> None:
        html = article_page(site_of(SEED_ARTICLE), SEED_ARTICLE, BASE_URL).replace(
            '<meta property="og:type" content="article">', '<meta property="og:type" content="website">'
        )
        assert 'content="website"' in html
        result = extract_article(raw_page(html, BASE_URL + SEED_ARTICLE.path))
        assert isinstance(result, Skipped)

    def test_article_with_a_key_points_list_is_kept(self) -> None:
        points = "".join(
            f"<li>Point {number}: the council agreed to fund a named programme with a stated sum for the "
            "coming year.</li>"
            for number in range(6)
        )
        html = (
            '<html><head><title>Council budget: what changed</title><meta property="og:type" '
            'content="article"></head><body><article><h1>Council budget: what changed</h1>'
            "<p>The city council approved its budget for next year on Tuesday after a six-hour meeting "
            "that ran late into the evening.</p><p>These are the main points, as listed by the finance "
            f"committee chair.</p><ul>{points}</ul><p>The budget takes effect in January.</p>"
            "</article></body></html>"
        )
        result = extract_article(raw_page(html, f"{BASE_URL}/council-budget.html"))
        assert not isinstance(result, Skipped), result

    @pytest.mark.parametrize(
        "html",
        ["\x00\x01<<<", "<<<>>>" * 100, "\ufffd\ufffd<html><body>\x00</body>", "<html><body><p>" * 500],
        ids=["control-bytes", "angle-brackets", "replacement-chars", "unclosed-tags"],
    )
    def test_garbage_never_raises(self, html: str) -> None:
        result = extract_article(raw_page(html, f"{BASE_URL}/garbage.html"))
        assert isinstance(result, Skipped | dict)
