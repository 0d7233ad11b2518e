"""The fingerprint computed where a page is extracted travels with the article in a header."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from pipeline.dedup.index import band_records
from pipeline.dedup.near import fingerprint, fingerprint_from_header, fingerprint_header
from pipeline.demo.content import SEED_ARTICLE
from pipeline.extract.extractor import Skipped, extract_article
from pipeline.extract.pool import extract_with_fingerprint
from tests.pages import article_raw_page


def test_the_header_gives_back_the_same_fingerprint() -> None:
    fp = fingerprint("\n".join(SEED_ARTICLE.body_paragraphs))
    carried = fingerprint_from_header(fingerprint_header(fp))
    assert carried is not None
    assert np.array_equal(carried.hashvalues, fp.hashvalues)
    assert carried.shingles == fp.shingles


@pytest.mark.parametrize(
    "value",
    [
        None,
        b"",
        b"no-colon",
        b"!!!:12",
        b"\xff\xfe:3",
        base64.b64encode(bytes(8)) + b":3",  # two values, not 128
        fingerprint_header(fingerprint("a few words of text here and more")).replace(b":", b":-"),
        fingerprint_header(fingerprint("a few words of text here and more")) + b"x",
    ],
)
def test_anything_else_in_the_header_is_ignored(value: bytes | None) -> None:
    assert fingerprint_from_header(value) is None


def test_the_pool_task_returns_the_article_and_its_fingerprint() -> None:
    page = article_raw_page(SEED_ARTICLE)
    result = extract_with_fingerprint(page)
    assert not isinstance(result, Skipped)
    article, fp = result
    assert article == extract_article(page)
    assert np.array_equal(fp.hashvalues, fingerprint(article["text"]).hashvalues)
    assert band_records(article, fp) == band_records(article)


def test_a_skipped_page_stays_skipped() -> None:
    page = article_raw_page(SEED_ARTICLE)
    assert isinstance(extract_with_fingerprint(dict(page, status=404)), Skipped)  # type: ignore[arg-type]
