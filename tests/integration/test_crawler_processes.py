"""Crawler processes on the real broker: kill -9 loses nothing, two processes never fetch a URL twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.ops.isolated import as_environment
from tests.conftest import IsolatedPipeline
from tests.integration.crawl_site import CrawlSite
from tests.kafka_helpers import read_topic

pytestmark = pytest.mark.integration
PAGES_PER_HOST = 30


@pytest.fixture
def site() -> Iterator[CrawlSite]:
    with CrawlSite() as running:
        yield running


def _pages(site: CrawlSite) -> dict[str, str]:
    """URL -> path for pages on two host names of the same server, so the frontier has two hosts."""
    port = site.base.rsplit(":", 1)[1]
    pages = {}
    for prefix, host in (("a", "127.0.0.1"), ("b", "localhost")):
        for number in range(PAGES_PER_HOST):
            path = f"/{prefix}/story-{number:03d}.html"
            pages[f"http://{host}:{port}{path}"] = path
    return pages


def _start_crawler(isolated: IsolatedPipeline, feed: str, node_id: str, log: Path) -> subprocess.Popen[bytes]:
    overrides: dict[str, Any] = {
        **isolated.overrides,
        "crawl": {
            **isolated.overrides["crawl"],
            "node_id": node_id,
            "allowed_private_hosts": ["127.0.0.1", "localhost"],
            "min_host_delay_s": 0.1,
            "poll_interval_s": 600,
        },
    }
    arguments = ["--feed", feed] if feed else []
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "crawl", *arguments],
            env=os.environ | as_environment(overrides),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _published(isolated: IsolatedPipeline, expected: int, timeout_s: float) -> set[str]:
    records = asyncio.run(
        read_topic(isolated.settings, isolated.settings.topics.raw_pages, expected, timeout_s=timeout_s)
    )
    return {record.key.decode() for record in records}


def _wait_for_pages(isolated: IsolatedPipeline, wanted: int, timeout_s: float) -> set[str]:
    deadline = time.monotonic() + timeout_s
    urls: set[str] = set()
    while time.monotonic() < deadline:
        urls = _published(isolated, wanted, timeout_s=2)
        if len(urls) >= wanted:
            break
    return urls


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_kill_and_restart_loses_no_page_and_refetches_none_in_full(
    isolated: IsolatedPipeline, site: CrawlSite
) -> None:
    pages = _pages(site)
    site.feeds["all"] = list(pages)
    feed = site.url("/feeds/all.xml")
    log = isolated.state_dir / "crawler.log"
    isolated.state_dir.mkdir(parents=True, exist_ok=True)

    first = _start_crawler(isolated, feed, "node-a", log)
    try:
        before_kill = _wait_for_pages(isolated, 15, timeout_s=60)
        assert len(before_kill) >= 15, log.read_text()[-3000:]
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    published_before_restart = _published(isolated, len(pages), timeout_s=3)
    assert len(published_before_restart) < len(pages), "the kill should land in the middle of the crawl"
    restarted_at = time.monotonic()

    second = _start_crawler(isolated, feed, "node-a", log)
    try:
        everything = _wait_for_pages(isolated, len(pages), timeout_s=90)
    finally:
        _stop(second)

    assert everything == set(pages), f"missing after restart: {sorted(set(pages) - everything)[:5]}"
    refetched_in_full = [
        url
        for url in published_before_restart
        for record in site.requests_to(pages[url])
        if record.started >= restarted_at and record.status == 200
    ]
    assert refetched_in_full == [], "pages published before the kill were downloaded again in full"


def test_two_crawler_processes_never_fetch_a_url_twice(isolated: IsolatedPipeline, site: CrawlSite) -> None:
    pages = _pages(site)
    site.feeds["all"] = list(pages)
    feed = site.url("/feeds/all.xml")
    isolated.state_dir.mkdir(parents=True, exist_ok=True)
    crawlers = [
        _start_crawler(isolated, feed, f"node-{name}", isolated.state_dir / f"crawler-{name}.log")
        for name in ("a", "b")
    ]
    try:
        everything = _wait_for_pages(isolated, len(pages), timeout_s=90)
    finally:
        for crawler in crawlers:
            _stop(crawler)

    assert everything == set(pages)
    fetches = {path: len([r for r in site.requests_to(path) if r.status == 200]) for path in pages.values()}
    assert {path: count for path, count in fetches.items() if count != 1} == {}
    # Only the owner of the feed's host polls it; a rebalance while both start may move it once.
    assert len(site.requests_to("/feeds/all.xml")) <= 2


def test_a_source_added_to_the_sources_file_is_crawled_without_restart(
    isolated: IsolatedPipeline, site: CrawlSite
) -> None:
    pages = _pages(site)
    first_batch, second_batch = list(pages)[:5], list(pages)[-5:]
    site.feeds["first"] = first_batch
    site.feeds["second"] = second_batch
    isolated.state_dir.mkdir(parents=True, exist_ok=True)
    sources_file = isolated.state_dir / "sources.yaml"
    source = "  - {{id: {name}, kind: feed, url: '{url}', poll_interval: 10s}}\n"
    sources_file.write_text("sources:\n" + source.format(name="first", url=site.url("/feeds/first.xml")))
    isolated.overrides["crawl"]["sources_file"] = str(sources_file)
    crawler = _start_crawler(isolated, "", "node-a", isolated.state_dir / "crawler.log")
    try:
        assert _wait_for_pages(isolated, 5, timeout_s=60) == set(first_batch)
        with sources_file.open("a") as sources:
            sources.write(source.format(name="second", url=site.url("/feeds/second.xml")))
        everything = _wait_for_pages(isolated, 10, timeout_s=60)
    finally:
        _stop(crawler)
    assert everything == set(first_batch) | set(second_batch)


def test_due_pages_are_revisited_with_a_conditional_get(isolated: IsolatedPipeline, site: CrawlSite) -> None:
    pages = dict(list(_pages(site).items())[:3])
    site.feeds["few"] = list(pages)
    isolated.state_dir.mkdir(parents=True, exist_ok=True)
    isolated.overrides["crawl"] |= {"revisit_scan_s": 1.0, "revisit_initial_s": 0.0, "revisit_min_s": 0.0}
    crawler = _start_crawler(
        isolated, site.url("/feeds/few.xml"), "node-a", isolated.state_dir / "crawler.log"
    )
    try:
        assert _wait_for_pages(isolated, 3, timeout_s=60) == set(pages)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            revalidated = {path for path in pages.values() for r in site.requests_to(path) if r.status == 304}
            if revalidated == set(pages.values()):
                break
            time.sleep(0.5)
    finally:
        _stop(crawler)
    assert revalidated == set(pages.values()), "every due page is re-checked and answered 304"
    assert len(site.requests_to("/feeds/few.xml")) == 1, "the revisit came from crawl state, not the feed"
    raw = asyncio.run(read_topic(isolated.settings, isolated.settings.topics.raw_pages, 10, timeout_s=3))
    assert len(raw) == 3, "a 304 publishes nothing"
