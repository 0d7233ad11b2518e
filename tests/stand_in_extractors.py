"""Extractors that misbehave, for the extraction pool tests (importable, so worker processes can run them)."""

from __future__ import annotations

import os
import time

from pipeline.extract.extractor import Skipped, extract_article
from pipeline.records import Article, RawPage


def hang(page: RawPage) -> Skipped:
    time.sleep(600)
    return Skipped("never")


def crash(page: RawPage) -> Skipped:
    os._exit(3)


def explode(page: RawPage) -> Skipped:
    raise ValueError(f"cannot parse {page['url']}")


def hang_on_marked_pages(page: RawPage) -> Article | Skipped:
    if "hang" in page["url"]:
        time.sleep(600)
    return extract_article(page)
