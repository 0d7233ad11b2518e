"""The extraction pool: every core, a per-page time limit that kills the worker, and survival of crashes."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pipeline.demo.content import SEED_ARTICLE
from pipeline.extract.extractor import Skipped, extract_article
from pipeline.extract.pool import (
    WARM_UP_PAGE,
    ExtractionPool,
    ExtractionTimeoutError,
    ExtractorCrashError,
    extract_with_fingerprint,
)
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


def test_the_warm_up_page_goes_through_the_whole_extractor() -> None:
    """A page the extractor skipped early would leave most of its first-page work for a real page."""
    result = extract_with_fingerprint(WARM_UP_PAGE)
    assert not isinstance(result, Skipped)
    article, fingerprint = result
    assert article["text"]
    assert fingerprint.shingles > 0
    assert article["language"] == "en"  # declared: no language model loaded just to warm up


def _descendants(pid: int) -> list[int]:
    found, queue = [], [pid]
    while queue:
        for task in Path(f"/proc/{queue.pop()}/task").iterdir():
            with contextlib.suppress(OSError):
                children = [int(child) for child in (task / "children").read_text().split()]
                found.extend(children)
                queue.extend(children)
    return found


def test_the_processes_start_with_the_pool_not_at_the_first_page(
    make_pool: Callable[..., ExtractionPool],
) -> None:
    before = set(_descendants(os.getpid()))
    make_pool()
    deadline = time.monotonic() + 30
    started: set[int] = set()
    while time.monotonic() < deadline and not started:
        started = set(_descendants(os.getpid())) - before
        time.sleep(0.1)
    assert started, "no extraction process started before the first page"
