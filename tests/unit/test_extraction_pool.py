"""The extraction pool: every core, a per-page time limit that kills the worker, and survival of crashes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from pipeline.demo.content import SEED_ARTICLE
from pipeline.extract.extractor import Skipped, extract_article
from pipeline.extract.pool import ExtractionPool, ExtractionTimeoutError, ExtractorCrashError
from pipeline.records import RawPage
from tests.pages import article_raw_page
from tests.stand_in_extractors import crash, explode, hang, hang_on_marked_pages


@pytest.fixture
def make_pool() -> Iterator[Callable[..., ExtractionPool]]:
    pools: list[ExtractionPool] = []

    def make(extract: Callable[[RawPage], object] | None = None, timeout_s: float = 1.0) -> ExtractionPool:
        pool = ExtractionPool(1, timeout_s, extract or extract_article)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.close()


async def test_a_page_is_extracted_in_a_worker_process(make_pool: Callable[..., ExtractionPool]) -> None:
    result = await make_pool(timeout_s=60).extract(article_raw_page(SEED_ARTICLE))
    assert not isinstance(result, Skipped)
    assert result["title"] == SEED_ARTICLE.title


async def test_a_hanging_page_is_cut_off_at_the_time_limit(make_pool: Callable[..., ExtractionPool]) -> None:
    pool = make_pool(hang, timeout_s=1.0)
    started = time.monotonic()
    with pytest.raises(ExtractionTimeoutError):
        await pool.extract(article_raw_page(SEED_ARTICLE))
    assert time.monotonic() - started < 10


async def test_a_crashing_worker_is_reported_and_replaced(make_pool: Callable[..., ExtractionPool]) -> None:
    pool = make_pool(crash, timeout_s=30)
    with pytest.raises(ExtractorCrashError):
        await pool.extract(article_raw_page(SEED_ARTICLE))
    with pytest.raises(ExtractorCrashError):
        await pool.extract(article_raw_page(SEED_ARTICLE))


async def test_an_extractor_exception_reaches_the_caller(make_pool: Callable[..., ExtractionPool]) -> None:
    with pytest.raises(ValueError, match="cannot parse"):
        await make_pool(explode, timeout_s=30).extract(article_raw_page(SEED_ARTICLE))


async def test_the_pool_keeps_working_after_a_timeout(make_pool: Callable[..., ExtractionPool]) -> None:
    pool = make_pool(hang_on_marked_pages, timeout_s=2.0)
    page = article_raw_page(SEED_ARTICLE)
    with pytest.raises(ExtractionTimeoutError):
        await pool.extract(dict(page, url=page["url"] + "?hang=1"))  # type: ignore[arg-type]
    result = await pool.extract(page)
    assert not isinstance(result, Skipped)
    assert result["title"] == SEED_ARTICLE.title
