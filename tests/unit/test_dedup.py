"""Body normalisation, content hashes and exact-copy decisions."""

from __future__ import annotations

import hashlib

import pytest

from pipeline.dedup.fingerprint import content_hash, normalise_body
from pipeline.demo.content import SEED_ARTICLE, SITES, SYNDICATED_COPY, DemoArticle
from pipeline.demo.layouts import article_page
from pipeline.extract.extractor import Skipped, extract_article
from pipeline.records import Article, RawPage

BASE_URL = "http://127.0.0.1:8080"
STORY = (
    "The harbour board approved a new ferry timetable on Tuesday.\n"
    "Early sailings will start at 5.40 a.m. from March, the board said.\n"
    "Shift workers had asked for the change for two years."
)

NOT_EDITED_NOTE = (
    "(This story has not been edited by {site} staff and is auto-generated from a syndicated feed.)"
)


def extracted(article: DemoArticle) -> Article:
    site = next(site for site in SITES if site.slug == article.site)
    html = article_page(site, article, BASE_URL)
    page = RawPage(
        url=BASE_URL + article.path,
        final_url=BASE_URL + article.path,
        status=200,
        headers={"content-type": "text/html; charset=utf-8"},
        fetched_at="2026-01-01T00:00:00+00:00",
        source=f"{BASE_URL}/{article.site}/rss.xml",
        content_hash="sha256:" + hashlib.sha256(html.encode()).hexdigest(),
        html=html,
        trace_id="trace-" + article.slug,
    )
    result = extract_article(page)
    assert not isinstance(result, Skipped), f"{article.path} skipped: {result}"
    return result


def article_with(article_id: str, published: str | None, body_hash: str = "sha256:" + "ab" * 32) -> Article:
    return Article(
        id=article_id,
        url=f"https://news.example/{article_id}.html",
        canonical_url=f"https://news.example/{article_id}.html",
        title="A story",
        text=STORY,
        published=published,
        authors=[],
        language="en",
        site_name="News Example",
        description=None,
        categories=[],
        image=None,
        fetched_at="2026-01-01T00:00:00+00:00",
        source="https://news.example/rss.xml",
        content_hash=body_hash,
        trace_id="trace",
        extractor="test",
    )


class TestContentHash:
    def test_seed_and_syndicated_copy_share_the_hash(self) -> None:
        seed, copy = extracted(SEED_ARTICLE), extracted(SYNDICATED_COPY)
        assert seed["id"] != copy["id"]
        assert seed["content_hash"] == copy["content_hash"]
        assert seed["content_hash"] == content_hash(seed["text"])

    def test_hash_format(self) -> None:
        digest = content_hash(STORY)
        assert digest.startswith("sha256:")
        assert len(digest.removeprefix("sha256:")) == 64
        int(digest.removeprefix("sha256:"), 16)

    @pytest.mark.parametrize(
        "variant",
        [
            pytest.param(
                STORY + "\n" + NOT_EDITED_NOTE.format(site="Devdiscourse"), id="not-edited-devdiscourse"
            ),
            pytest.param(STORY + "\n" + NOT_EDITED_NOTE.format(site="X"), id="not-edited-x"),
            pytest.param(STORY + "\n(With inputs from ANI)", id="with-inputs"),
            pytest.param(STORY + " (ANI)", id="trailing-agency"),
            pytest.param(STORY + "\n(ANI)", id="agency-line"),
            pytest.param(
                STORY + "\nDisclaimer: This article is from a syndicated wire feed.", id="disclaimer"
            ),
            pytest.param(STORY + "\nAlso read: Ferry fares to rise in April", id="also-read"),
        ],
    )
    def test_boilerplate_does_not_change_the_hash(self, variant: str) -> None:
        assert content_hash(variant) == content_hash(STORY)

    @pytest.mark.parametrize(
        "variant",
        [
            STORY.upper(),
            STORY.replace(" ", "   "),
            STORY.replace("\n", "\n\n  "),
            "  " + STORY.replace("\n", " ") + "  ",
            STORY.replace("Tuesday.", "Tuesday !"),
        ],
        ids=["upper-case", "extra-spaces", "blank-lines", "one-line", "punctuation-spacing"],
    )
    def test_case_and_whitespace_do_not_change_the_hash(self, variant: str) -> None:
        assert content_hash(variant) == content_hash(STORY)

    def test_compatibility_forms_do_not_change_the_hash(self) -> None:
        assert content_hash(STORY.replace("board", "ｂｏａｒｄ")) == content_hash(STORY)

    @pytest.mark.parametrize(
        "variant",
        [
            STORY.replace("two years", "three years"),
            STORY.replace("Early sailings will start at 5.40 a.m. from March, the board said.\n", ""),
            STORY + "\nThe timetable will be reviewed in the autumn.",
        ],
        ids=["changed-word", "removed-sentence", "added-sentence"],
    )
    def test_changed_story_changes_the_hash(self, variant: str) -> None:
        assert content_hash(variant) != content_hash(STORY)

    def test_normalised_body_is_lower_case_words(self) -> None:
        assert normalise_body("Hello,   World!\n(With inputs from PTI)\nSecond  LINE. (ANI)") == (
            "hello world second line"
        )

    def test_empty_and_boilerplate_only_bodies_normalise_to_nothing(self) -> None:
        assert normalise_body("") == ""
        assert normalise_body("(ANI)\n\n(With inputs from Reuters)") == ""
