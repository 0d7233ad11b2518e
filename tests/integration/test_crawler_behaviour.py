"""The crawler against a local, partly hostile web site and the real broker.

Each scenario fixture runs one real crawl pass (`crawl(..., once=True)`) against sites started on
127.0.0.1 and its own isolated topics, then the tests below it each check one behaviour: what the site
saw (its request log, with server-side times), what the crawler counted per URL, and what reached the
raw-pages topic. Every scenario also crawls ordinary pages, which must be fetched: a hostile URL may
fail, but it must not stop the crawl.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

import pipeline.crawl.service as crawl_service
from pipeline.contracts import contracts_for
from pipeline.crawl.counters import CrawlCounters
from pipeline.crawl.service import crawl
from pipeline.crawl.urls import canonical_url
from pipeline.ops.isolated import delete_topics, isolated_overrides, with_overrides
from pipeline.ops.kafka import client_options
from pipeline.ops.topics import create_topics, resolved_topics
from pipeline.records import loads
from pipeline.settings import Settings
from tests.conftest import IsolatedPipeline
from tests.integration.crawl_site import (
    CAFE_TEXT,
    CYRILLIC_TEXT,
    HOSTILE,
    HUGE_BYTES,
    NEWS_SITEMAP_DATES,
    SECTION_ARTICLES,
    SECTION_NAV,
    SECTION_PATTERN,
    SITEMAP_ARTICLES,
    CrawlSite,
    RequestRecord,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

PRIVATE_LINKS = ["http://10.0.0.1/x.html", "http://169.254.169.254/latest/meta-data/"]
FAST_CRAWL: dict[str, Any] = {
    "allowed_private_hosts": ["127.0.0.1"],
    "min_host_delay_s": 0.05,
    "connect_timeout_s": 1.0,
    "read_timeout_s": 0.5,
    "request_timeout_s": 3.0,
    "max_body_bytes": 1_000_000,
    "max_attempts": 3,
}


# --- running a crawl --------------------------------------------------------------------------------


@dataclass
class RecordingCounters(CrawlCounters):
    """CrawlCounters that also keep every outcome in order, with the (monotonic) time it was counted."""

    events: list[tuple[float, str, str, str | None]] = field(default_factory=list)

    def record(self, source: str, outcome: str, url: str | None = None) -> None:
        super().record(source, outcome, url)
        self.events.append((time.monotonic(), source, outcome, url))

    def history(self, url: str) -> list[str]:
        """Every outcome counted for a URL, oldest first (by_url keeps only the latest)."""
        return [outcome for _, _, outcome, seen in self.events if seen == url]

    def counted_at(self, url: str, outcome: str) -> float:
        return next(
            at for at, _, seen_outcome, seen in self.events if seen == url and seen_outcome == outcome
        )


@dataclass
class CrawlRun:
    counters: RecordingCounters
    contacted: list[str]  # every address the crawl's event loop opened a TCP connection to
    seconds: float


async def run_crawl(settings: Settings, feeds: list[str]) -> CrawlRun:
    """One crawl pass, recording outcomes in order and every address the event loop connects to."""
    loop = asyncio.get_running_loop()
    contacted: list[str] = []
    sock_connect = loop.sock_connect

    # Every TCP connection of the loop (aiohttp's, through aiohappyeyeballs, and aiokafka's, through
    # create_connection) goes through loop.sock_connect, so this sees anything the crawler contacts.
    async def recording_sock_connect(sock: Any, address: Any) -> None:
        contacted.append(str(address[0]))
        await sock_connect(sock, address)

    started = time.monotonic()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loop, "sock_connect", recording_sock_connect)
        patch.setattr(crawl_service, "CrawlCounters", RecordingCounters)
        counters = await crawl(settings, feeds, once=True)
    assert isinstance(counters, RecordingCounters)
    return CrawlRun(counters, contacted, time.monotonic() - started)


@contextlib.contextmanager
def isolated_settings(
    base: Settings, root: Path, name: str, crawl_overrides: dict[str, Any]
) -> Iterator[Settings]:
    """Topics, consumer group and crawl state of its own (as the `isolated` fixture, for a module)."""
    run_id = f"t-crawlb-{name}-{uuid.uuid4().hex[:8]}"
    overrides = isolated_overrides(run_id, root / "state", partitions=4)
    overrides["kafka"] = {"bootstrap_servers": base.kafka.bootstrap_servers}
    overrides["crawl"] = {**overrides["crawl"], **crawl_overrides}
    settings = with_overrides(base, overrides)
    asyncio.run(create_topics(settings))
    try:
        yield settings
    finally:
        asyncio.run(delete_topics(settings))


async def published(settings: Settings, topic: str) -> list[ConsumerRecord]:
    """Every committed record on a topic, read up to its current end.

    End offsets are no record count: the crawler writes pages in transactions, whose commit markers
    take offsets too.
    """
    (count,) = [resolved.partitions for resolved in resolved_topics(settings) if resolved.name == topic]
    consumer = AIOKafkaConsumer(
        **client_options(settings.kafka),
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_partition_fetch_bytes=12 * 1024 * 1024,
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, partition) for partition in range(count)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[ConsumerRecord] = []
        deadline = time.monotonic() + 20
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            for batch in (await consumer.getmany(*partitions, timeout_ms=500)).values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


def raw_pages(settings: Settings) -> dict[str, ConsumerRecord]:
    """The raw-pages topic by key; each URL must have been published once."""
    records = asyncio.run(published(settings, settings.topics.raw_pages))
    keys = [record.key.decode() for record in records]
    assert len(keys) == len(set(keys)), f"a page was published twice: {sorted(keys)}"
    return {record.key.decode(): record for record in records}


def start_gaps(requests: list[RequestRecord]) -> list[float]:
    """Seconds between the starts of consecutive requests, as the server saw them."""
    starts = sorted(record.started for record in requests)
    return [later - earlier for earlier, later in itertools.pairwise(starts)]


def assert_clean(run: CrawlRun) -> None:
    """Nothing crashed a frontier record, and the crawl talked to nothing but 127.0.0.1."""
    crashes = {outcome for outcome in run.counters.outcomes if outcome.startswith("dead-letter")}
    assert not crashes, run.counters.outcomes
    assert set(run.contacted) == {"127.0.0.1"}, run.contacted


# --- discovery: feed, sitemaps, section page ----------------------------------------------------------


@dataclass
class Discovery:
    settings: Settings
    site: CrawlSite
    run: CrawlRun
    feed_url: str
    feed_links: list[str]
    raw: dict[str, ConsumerRecord]
    frontier: list[dict[str, Any]]


@pytest.fixture(scope="module")
def discovery(kafka_broker: Settings, tmp_path_factory: pytest.TempPathFactory) -> Discovery:
    root = tmp_path_factory.mktemp("discovery")
    sources = root / "sources.yaml"
    crawl_overrides = {**FAST_CRAWL, "sources_file": str(sources)}
    with isolated_settings(kafka_broker, root, "discovery", crawl_overrides) as settings:
        with CrawlSite() as site:
            feed_links = [
                site.url("/feed/first-story.html"),
                site.url("/feed/second-story.html?utm_source=rss&utm_medium=feed#comments"),
                site.url("/feed/third-story.html?id=7"),
            ]
            site.feeds["main"] = feed_links
            sources.write_text(
                "sources:\n"
                f"  - {{id: plain-sitemap, kind: sitemap, url: '{site.url('/sitemaps/plain.xml')}'}}\n"
                f"  - {{id: index-sitemap, kind: sitemap, url: '{site.url('/sitemaps/index.xml')}'}}\n"
                f"  - {{id: gzip-sitemap, kind: sitemap, url: '{site.url('/sitemaps/articles.xml.gz')}'}}\n"
                f"  - {{id: news-sitemap, kind: sitemap, url: '{site.url('/sitemaps/news.xml')}'}}\n"
                f"  - id: world-section\n    kind: section\n    url: '{site.url('/section/world.html')}'\n"
                f"    article_pattern: '{SECTION_PATTERN}'\n"
            )
            feed_url = site.url("/feeds/main.xml")
            run = asyncio.run(run_crawl(settings, [feed_url]))
        raw = raw_pages(settings)
        frontier = [
            loads(record.value) for record in asyncio.run(published(settings, settings.topics.frontier))
        ]
    return Discovery(settings, site, run, feed_url, feed_links, raw, frontier)


def test_feed_entries_are_fetched_and_published_as_raw_pages(discovery: Discovery) -> None:
    counters, settings = discovery.run.counters, discovery.settings
    expected = [canonical_url(link) for link in discovery.feed_links]
    # Tracking parameters and the fragment are gone; a page-identifying query stays.
    assert expected[1] == discovery.site.url("/feed/second-story.html")
    assert expected[2] == discovery.site.url("/feed/third-story.html?id=7")
    source = f"feed:{discovery.feed_url}"
    assert counters.by_source[(source, "discovered")] == 3
    assert counters.by_source[(source, "fetched")] == 3
    for url in expected:
        assert counters.by_url[url] == "fetched", url
    # The site was asked for the canonical URL, once each.
    assert discovery.site.paths().count("/feed/second-story.html") == 1
    assert [r.query for r in discovery.site.requests_to("/feed/second-story.html")] == [""]

    contracts = contracts_for(settings.schemas_dir)
    for url in expected:
        record = discovery.raw[url]  # keyed by the canonical URL
        value = loads(record.value)
        contracts.validate(value, "raw_page.v1")
        headers = dict(record.headers)
        assert headers["schema"] == b"raw_page.v1"
        assert headers["trace-id"] == value["trace_id"].encode()
        assert value["url"] == url
        assert value["source"] == source
        assert value["status"] == 200
        assert value["headers"]["etag"] == CrawlSite.etag_of(
            url.removeprefix(discovery.site.base).split("?")[0]
        )
        assert "from the local test desk" in value["html"]
    assert_clean(discovery.run)


def test_plain_index_gzip_and_news_sitemaps_are_followed(discovery: Discovery) -> None:
    counters, site = discovery.run.counters, discovery.site
    for kind, paths in SITEMAP_ARTICLES.items():
        source = f"{kind}-sitemap"
        assert counters.by_source[(source, "fetched")] == len(paths), (kind, counters.by_source)
        for path in paths:
            url = site.url(path)
            assert counters.by_url[url] == "fetched", url
            assert loads(discovery.raw[url].value)["source"] == source
            assert site.paths().count(path) == 1, path
    # The index's children were fetched through the index; nothing failed as a source.
    assert site.paths().count("/sitemaps/child-1.xml") == 1
    assert site.paths().count("/sitemaps/child-2.xml") == 1
    assert not [outcome for outcome in counters.outcomes if outcome.startswith("source-failed")]
    # The Google News sitemap's publication dates travel on the frontier.
    published = {entry["url"]: entry["published"] for entry in discovery.frontier}
    for path, date in NEWS_SITEMAP_DATES.items():
        assert published[site.url(path)] == date
    assert published[site.url(SITEMAP_ARTICLES["plain"][0])] == "2024-05-01"


def test_section_page_yields_only_links_matching_the_article_pattern(discovery: Discovery) -> None:
    counters, site = discovery.run.counters, discovery.site
    assert counters.by_source[("world-section", "discovered")] == len(SECTION_ARTICLES)
    assert counters.by_source[("world-section", "fetched")] == len(SECTION_ARTICLES)
    for path in SECTION_ARTICLES:
        assert counters.by_url[site.url(path)] == "fetched"
        assert site.paths().count(path) == 1, path
    requested = set(site.paths())
    for path in SECTION_NAV:
        assert path not in requested, f"navigation link {path} was crawled"
        assert site.url(path) not in counters.by_url


# --- politeness and recovery ---------------------------------------------------------------------------


@dataclass
class Polite:
    run: CrawlRun
    robots_site: CrawlSite
    spacing_site: CrawlSite
    recovery_site: CrawlSite


SPACING_ARTICLES = [f"/spacing/story-{number}.html" for number in range(1, 7)]
ROBOTS_ARTICLES = [f"/paced/story-{number}.html" for number in range(1, 4)]
PRIVATE_PAGE = "/private/secret.html"
RECOVERY_GOOD = "/recovery/fine.html"


@pytest.fixture(scope="module")
def polite(kafka_broker: Settings, tmp_path_factory: pytest.TempPathFactory) -> Polite:
    root = tmp_path_factory.mktemp("polite")
    crawl_overrides = {**FAST_CRAWL, "min_host_delay_s": 0.3}
    with (
        isolated_settings(kafka_broker, root, "polite", crawl_overrides) as settings,
        CrawlSite(disallow=["/private/"], crawl_delay_s=1) as robots_site,
        CrawlSite(article_delay_s=0.05) as spacing_site,
        CrawlSite() as recovery_site,
    ):
        robots_site.feeds["main"] = [robots_site.url(path) for path in [*ROBOTS_ARTICLES, PRIVATE_PAGE]]
        spacing_site.feeds["main"] = [spacing_site.url(path) for path in SPACING_ARTICLES]
        recovery_site.feeds["main"] = [
            recovery_site.url(path)
            for path in (HOSTILE["retry-after"], HOSTILE["server-error"], RECOVERY_GOOD)
        ]
        feeds = [site.url("/feeds/main.xml") for site in (robots_site, spacing_site, recovery_site)]
        run = asyncio.run(run_crawl(settings, feeds))
    # The sites have stopped: their request logs are complete.
    return Polite(run, robots_site, spacing_site, recovery_site)


def test_robots_disallowed_url_is_denied_and_never_requested(polite: Polite) -> None:
    site, counters = polite.robots_site, polite.run.counters
    assert counters.history(site.url(PRIVATE_PAGE)) == ["robots-denied"]
    assert PRIVATE_PAGE not in site.paths()
    assert site.paths().count("/robots.txt") == 1, "robots.txt is fetched once and cached"
    for path in ROBOTS_ARTICLES:  # the crawler went on with the allowed pages
        assert counters.by_url[site.url(path)] == "fetched"
    assert_clean(polite.run)


def test_robots_crawl_delay_spaces_requests_to_the_host(polite: Polite) -> None:
    site = polite.robots_site
    # robots.txt itself is read before any request is scheduled, so it is not paced.
    paced = [record for record in site.requests if record.path != "/robots.txt"]
    assert len(paced) == 1 + len(ROBOTS_ARTICLES)  # the feed, then the articles
    gaps = start_gaps(paced)
    print(f"crawl-delay gaps (s): {[round(gap, 3) for gap in gaps]}")
    assert min(gaps) >= 0.95, gaps


TRANSPORT_JITTER_S = 0.05


def test_min_host_delay_spaces_requests_one_at_a_time(polite: Polite) -> None:
    site, counters = polite.spacing_site, polite.run.counters
    for path in SPACING_ARTICLES:
        assert counters.by_url[site.url(path)] == "fetched"
    paced = sorted(
        (record for record in site.requests if record.path != "/robots.txt"), key=lambda r: r.started
    )
    assert len(paced) == 1 + len(SPACING_ARTICLES)
    gaps = start_gaps(paced)
    print(f"per-host gaps (s): {[round(gap, 3) for gap in gaps]}")
    # Arrival times at the server carry the loop's and the network's jitter (tens of ms on a busy CI
    # machine); the crawler spaces request starts, so allow that jitter on single gaps, not on average.
    assert min(gaps) >= 0.3 - TRANSPORT_JITTER_S, gaps
    assert sum(gaps) / len(gaps) >= 0.3 - 0.01, gaps
    for earlier, later in itertools.pairwise(paced):
        assert earlier.finished is not None
        assert later.started >= earlier.finished, f"{later.path} overlapped {earlier.path}"


def test_429_with_retry_after_is_retried_after_the_pause(polite: Polite) -> None:
    site, counters = polite.recovery_site, polite.run.counters
    path = HOSTILE["retry-after"]
    assert counters.history(site.url(path)) == ["retry:http-429", "fetched"]
    first, second = site.requests_to(path)
    assert (first.status, second.status) == (429, 200)
    gap = second.started - first.started
    print(f"Retry-After gap (s): {gap:.3f}")
    assert gap >= 0.95, gap
    assert counters.by_url[site.url(RECOVERY_GOOD)] == "fetched"


def test_500_is_retried_and_recovers(polite: Polite) -> None:
    site, counters = polite.recovery_site, polite.run.counters
    path = HOSTILE["server-error"]
    assert counters.history(site.url(path)) == ["retry:http-500", "fetched"]
    assert [record.status for record in site.requests_to(path)] == [500, 200]
    assert counters.by_url[site.url(RECOVERY_GOOD)] == "fetched"


# --- conditional GET ------------------------------------------------------------------------------


def test_unchanged_page_is_revalidated_with_304_and_not_republished(isolated: IsolatedPipeline) -> None:
    # revisit 0 s makes every fetched page due again at once, so the second pass revalidates it.
    settings = with_overrides(
        isolated.settings, {"crawl": {**FAST_CRAWL, "revisit_initial_s": 0.0, "revisit_min_s": 0.0}}
    )
    with CrawlSite() as site:
        page, new_page = site.url("/revisit/unchanged.html"), site.url("/revisit/new-today.html")
        feed = site.url("/feeds/main.xml")
        site.feeds["main"] = [page]
        first = asyncio.run(run_crawl(settings, [feed]))
        assert first.counters.history(page) == ["fetched"]
        assert list(raw_pages(settings)) == [page]

        site.feeds["main"] = [page, new_page]
        second = asyncio.run(run_crawl(settings, [feed]))

    assert second.counters.history(page) == ["not-modified"]
    assert second.counters.history(new_page) == ["fetched"]  # and the crawl went on
    before, again = site.requests_to("/revisit/unchanged.html")
    assert before.if_none_match is None
    assert again.if_none_match == CrawlSite.etag_of("/revisit/unchanged.html")
    assert again.if_modified_since is not None
    assert again.status == 304
    # The second pass published the new page only (raw_pages also checks no URL appears twice).
    assert sorted(raw_pages(settings)) == sorted([page, new_page])
    assert_clean(first)
    assert_clean(second)


# --- hostile pages ----------------------------------------------------------------------------------


@dataclass
class Hostile:
    settings: Settings
    run: CrawlRun
    site: CrawlSite
    slow_site: CrawlSite
    bomb_feed: str
    raw: dict[str, ConsumerRecord]

    def url(self, case: str) -> str:
        return self.site.url(HOSTILE[case])


GOOD_PAGE = "/ordinary/good-news.html"
SLOW_SITE_GOOD_PAGE = "/ordinary/after-the-slow-one.html"
HOSTILE_CASES = ["redirect-loop", "huge", "gzip-bomb", "pdf", "cp1252-as-utf8", "meta-windows-1251"]


@pytest.fixture(scope="module")
def hostile(kafka_broker: Settings, tmp_path_factory: pytest.TempPathFactory) -> Hostile:
    root = tmp_path_factory.mktemp("hostile")
    with isolated_settings(kafka_broker, root, "hostile", FAST_CRAWL) as settings:
        with CrawlSite() as site, CrawlSite(slow_s=2.0) as slow_site:
            site.feeds["hostile"] = [
                *(site.url(HOSTILE[case]) for case in HOSTILE_CASES),
                *PRIVATE_LINKS,
                site.url(GOOD_PAGE),
            ]
            slow_site.feeds["slow"] = [slow_site.url(HOSTILE["slow"]), slow_site.url(SLOW_SITE_GOOD_PAGE)]
            bomb_feed = site.url("/feeds/bomb.xml")
            feeds = [bomb_feed, site.url("/feeds/hostile.xml"), slow_site.url("/feeds/slow.xml")]
            run = asyncio.run(run_crawl(settings, feeds))
        # The sites have stopped: their request logs are complete.
        raw = raw_pages(settings)
    return Hostile(settings, run, site, slow_site, bomb_feed, raw)


def test_hostile_crawl_finishes_and_still_fetches_ordinary_pages(hostile: Hostile) -> None:
    counters = hostile.run.counters
    assert counters.by_url[hostile.site.url(GOOD_PAGE)] == "fetched"
    assert counters.by_url[hostile.slow_site.url(SLOW_SITE_GOOD_PAGE)] == "fetched"
    assert hostile.site.url(GOOD_PAGE) in hostile.raw
    # Every announced URL ended with a final outcome (no retry left hanging).
    for url in counters.by_url:
        assert not counters.by_url[url].startswith("retry:"), (url, counters.by_url[url])
    assert_clean(hostile.run)
    print(f"hostile crawl took {hostile.run.seconds:.1f} s; outcomes {dict(counters.outcomes)}")


def test_slow_server_fails_with_timeout_after_the_retries(hostile: Hostile) -> None:
    url = hostile.slow_site.url(HOSTILE["slow"])
    assert hostile.run.counters.history(url) == ["retry:timeout", "retry:timeout", "failed:timeout"]
    assert len(hostile.slow_site.requests_to(HOSTILE["slow"])) == 3


def test_redirect_loop_is_detected(hostile: Hostile) -> None:
    assert hostile.run.counters.history(hostile.url("redirect-loop")) == ["failed:redirect-loop"]
    assert hostile.site.paths().count(HOSTILE["redirect-loop"]) == 1
    assert hostile.site.paths().count("/hostile/loop-b.html") == 1


def test_50_mb_page_is_cut_off_as_too_large(hostile: Hostile) -> None:
    assert hostile.run.counters.history(hostile.url("huge")) == ["failed:too-large"]
    (request,) = hostile.site.requests_to(HOSTILE["huge"])
    # The crawler hung up: the server could not send the page (the socket buffers took a few MB).
    assert request.completed is False
    assert request.bytes_sent < HUGE_BYTES // 2, request.bytes_sent
    print(f"50 MB page: server sent {request.bytes_sent / 1e6:.1f} MB before the crawler hung up")


def test_gzip_bomb_is_cut_off_quickly(hostile: Hostile) -> None:
    url = hostile.url("gzip-bomb")
    assert hostile.run.counters.history(url) == ["failed:too-large"]
    (request,) = hostile.site.requests_to(HOSTILE["gzip-bomb"])
    assert request.completed is False
    assert request.notes["inflated_bytes"] >= 2**30
    # Of about 17 MB compressed; what was sent at all is what the kernel's socket buffers took.
    assert request.bytes_sent < request.notes["compressed_bytes"] // 2, request.bytes_sent
    seconds = hostile.run.counters.counted_at(url, "failed:too-large") - request.started
    print(f"gzip bomb: {request.bytes_sent} compressed bytes sent, failed after {seconds:.3f} s")
    assert seconds < 1.0, seconds


def test_non_html_page_fails_without_downloading_the_body(hostile: Hostile) -> None:
    assert hostile.run.counters.history(hostile.url("pdf")) == ["failed:not-html"]
    (request,) = hostile.site.requests_to(HOSTILE["pdf"])
    # The site sends the headers, then waits: the crawler hung up before any body byte was sent.
    assert request.client_gone is not None
    assert request.bytes_sent == 0
    assert request.client_gone - request.started < 1.0


def test_meta_charset_page_is_decoded_with_its_declared_charset(hostile: Hostile) -> None:
    url = hostile.url("meta-windows-1251")
    assert hostile.run.counters.history(url) == ["fetched"]
    assert CYRILLIC_TEXT in loads(hostile.raw[url].value)["html"]


def test_page_with_wrong_header_charset_is_fetched(hostile: Hostile) -> None:
    url = hostile.url("cp1252-as-utf8")
    assert hostile.run.counters.history(url) == ["fetched"]
    assert url in hostile.raw


def test_page_with_wrong_header_charset_is_decoded_correctly(hostile: Hostile) -> None:
    html = loads(hostile.raw[hostile.url("cp1252-as-utf8")].value)["html"]
    assert CAFE_TEXT in html


def test_xml_bomb_feed_fails_as_a_source_and_other_sources_still_crawl(hostile: Hostile) -> None:
    counters = hostile.run.counters
    assert counters.by_source[(f"feed:{hostile.bomb_feed}", "source-failed:unreadable")] == 1
    assert [outcome for (source, outcome) in counters.by_source if source == f"feed:{hostile.bomb_feed}"] == [
        "source-failed:unreadable"
    ]
    assert "/bomb-victim.html" not in hostile.site.paths()
    assert counters.by_url[hostile.site.url(GOOD_PAGE)] == "fetched"


def test_private_address_links_are_never_contacted(hostile: Hostile) -> None:
    counters = hostile.run.counters
    for link in PRIVATE_LINKS:
        assert counters.by_url[canonical_url(link)] != "fetched"
    contacted = set(hostile.run.contacted)
    assert "10.0.0.1" not in contacted
    assert "169.254.169.254" not in contacted


def test_private_address_links_fail_as_ssrf_blocked(hostile: Hostile) -> None:
    counters = hostile.run.counters
    for link in PRIVATE_LINKS:
        assert counters.history(canonical_url(link)) == ["failed:ssrf-blocked"], link
