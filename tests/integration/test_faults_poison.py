"""Poison on every input topic, on the real broker: each bad record is dead-lettered with its reason in
time, and the records after it are processed.

Input topics and who reads them: raw pages (worker extract), articles (worker fingerprint), enriched
(worker sink agent and `newsfeed sink`), the dedup band and join topics (the worker's own hops between its
agents: only our code writes them, but a bad record there must not stop the agents either), other teams'
topics (`newsfeed ingest`, formats raw_page, article and json) and the frontier (crawler). Not here: the
crawl-state topic (the crawler's own compacted log, written only in the crawler's transactions and read
back at assignment). tests/integration/test_inputs_and_dead_letters.py has the first cases of each topic
and `newsfeed dlq`; this file is the systematic matrix.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka.admin import NewTopic
from aiokafka.errors import MessageSizeTooLargeError

from pipeline.crawl.frontier import frontier_url
from pipeline.dedup.fingerprint import content_hash
from pipeline.dedup.index import band_records
from pipeline.extract.extractor import article_id
from pipeline.ops.isolated import as_environment, start_command, stop_process, with_overrides
from pipeline.ops.topics import admin_client
from pipeline.records import dumps, loads
from pipeline.settings import PROJECT_DIR, Settings
from pipeline.sink.sqlite_store import SqliteStore
from tests.conftest import IsolatedPipeline
from tests.fault_helpers import wait_for
from tests.integration.crawl_site import CrawlSite
from tests.kafka_helpers import produce, read_topic
from tests.pages import raw_page
from tests.poison import (
    CRASH_MARK,
    EXPLODE_MARK,
    UNPRODUCIBLE_BYTES,
    Poison,
    assert_letters,
    hanging_html,
    poison_for,
    produce_unproducible,
    random_bytes,
    report,
    run_matrix,
)
from tests.unit.test_sink_sqlite import enriched

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "examples"
EXTRACTION_TIMEOUT_S = 3.0
SUBJECTS = [
    "harbour",
    "flood",
    "council",
    "budget",
    "rail",
    "strike",
    "school",
    "reform",
    "court",
    "ruling",
    "market",
    "rally",
    "storm",
]


def _example(schema: str) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads(next((EXAMPLES / schema).glob("*.json")).read_bytes())
    return loaded


def _story(number: int, label: str) -> str:
    """A body of its own for each follower, so dedup keeps them apart and each is stored."""
    words = [SUBJECTS[(number * 7 + offset) % len(SUBJECTS)] for offset in range(len(SUBJECTS))]
    sentences = [
        f"The {label} follower number {number} reports on the {' and the '.join(words[i : i + 3])} today."
        for i in range(0, len(words), 3)
    ]
    return " ".join(sentences * 3)


def _follower_page(number: int, label: str = "raw") -> dict[str, Any]:
    url = f"http://followers.example.test/{label}/story-{number}.html"
    paragraphs = "".join(f"<p>{sentence}.</p>" for sentence in _story(number, label).split(". "))
    html = (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Follower {label} {number}</title>"
        "<meta property='og:type' content='article'></head><body><article>"
        f"<h1>Follower {label} story {number}</h1>{paragraphs}</article></body></html>"
    )
    page: dict[str, Any] = {**raw_page(url, html)}
    return page


def _follower_article(number: int, label: str = "articles") -> dict[str, Any]:
    url = f"http://followers.example.test/{label}/article-{number}.html"
    text = _story(number, label)
    return {
        **_example("article.v1"),
        "id": article_id(url),
        "url": url,
        "canonical_url": url,
        "title": f"Follower {label} article {number}",
        "text": text,
        "content_hash": content_hash(text),
        "trace_id": f"follower-{label}-{number}",
    }


def _follower_enriched(number: int) -> dict[str, Any]:
    record: dict[str, Any] = {**enriched(10_000 + number, title=f"Follower enriched {number}")}
    return record


def _raw_poison() -> list[Poison]:
    valid = _follower_page(999, "poison")
    return [
        *poison_for(valid, wrong_type=("status", "200"), missing="html"),
        Poison("extractor-throws", dumps({**valid, "html": valid["html"] + EXPLODE_MARK}), "extract-error"),
        Poison("extractor-hangs", dumps({**valid, "html": hanging_html()}), "timeout"),
        Poison("extractor-dies", dumps({**valid, "html": valid["html"] + CRASH_MARK}), "extractor-crash"),
    ]


def _article_poison() -> list[Poison]:
    return poison_for(_follower_article(999, "poison"), wrong_type=("title", 7), missing="text")


def _band_record(number: int) -> tuple[str, dict[str, Any]]:
    """One band record (key, value) of a follower article of its own."""
    _, bands = band_records(_follower_article(number, "bands"))  # type: ignore[arg-type]
    key, record = bands[0]
    return key, dict(record)


def _band_poison() -> list[Poison]:
    _, valid = _band_record(999)
    # The band topic keeps the broker's 1 MB record limit: 10 MB of random bytes are refused at the
    # producer (as in test_a_value_over_a_topics_limit_is_refused_by_the_broker); padding compresses.
    kinds = poison_for(valid, wrong_type=("t", "yesterday"), missing="sig")
    return [
        *(case for case in kinds if case.kind != "ten-megabytes"),
        Poison("bad-signature", dumps({**valid, "sig": "AAAA"}), "schema"),
    ]


def _join_poison() -> list[Poison]:
    valid = {"kind": "article", "article": _follower_article(999, "join"), "rank": "0"}
    return [
        *poison_for(valid, wrong_type=("kind", "bogus"), missing="kind"),
        Poison("bad-article", dumps({**valid, "article": {"title": 7}}), "schema"),
    ]


def _enriched_poison() -> list[Poison]:
    return poison_for(_follower_enriched(999), wrong_type=("topics", "none"), missing="dedup")


def _stored_ids(path: Path) -> set[str]:
    if not path.exists():
        return set()
    store = SqliteStore(path, read_only=True)
    try:
        return {record["id"] for record in store.articles()}
    except sqlite3.OperationalError:  # the sink has created the file and not yet its tables
        return set()
    finally:
        store.close()


def _wait_stored(
    path: Path, wanted: set[str], timeout_s: float, process: subprocess.Popen[bytes] | None = None
) -> set[str]:
    """The wanted ids that are missing from the store when they all arrived, the time is up, or the
    process that writes the store has died."""
    wait_for(
        lambda: wanted <= _stored_ids(path) or (process is not None and process.poll() is not None),
        timeout_s,
        interval_s=0.5,
    )
    return wanted - _stored_ids(path)


def _print(text: str) -> None:
    sys.stdout.write(text + "\n")


@pytest.fixture
def poison_worker(isolated: IsolatedPipeline) -> Iterator[subprocess.Popen[bytes]]:
    """`newsfeed worker` (with the throwing stand-in extractor) on a short per-page time limit."""
    overrides = {
        **isolated.overrides,
        "worker": {**isolated.overrides["worker"], "extraction_timeout_s": EXTRACTION_TIMEOUT_S},
    }
    log = isolated.state_dir / "worker.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.poison_worker"],
            cwd=PROJECT_DIR,
            env=os.environ | as_environment(overrides),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    yield process
    assert stop_process(process) == 0, log.read_text()[-3000:]


def test_poison_on_the_worker_topics_is_dead_lettered_and_the_stream_goes_on(
    isolated: IsolatedPipeline, poison_worker: subprocess.Popen[bytes]
) -> None:
    settings = isolated.settings
    topics = settings.topics
    sqlite_path = settings.store.sqlite_path
    log = isolated.state_dir / "worker.log"
    # Warm-up: one page through every agent, so the times below are the worker's, not its start-up's.
    warm = _follower_page(0, "warm-up")
    asyncio.run(produce(settings, topics.raw_pages, [(warm["url"].encode(), dumps(warm))]))
    missing = _wait_stored(sqlite_path, {article_id(warm["url"])}, 180, poison_worker)
    assert not missing, log.read_text()[-3000:]

    def raw_follower(number: int) -> tuple[bytes, bytes]:
        page = _follower_page(number)
        return page["url"].encode(), dumps(page)

    def article_follower(number: int) -> tuple[bytes, bytes]:
        article = _follower_article(number)
        return article["content_hash"].encode(), dumps(article)

    def enriched_follower(number: int) -> tuple[bytes, bytes]:
        record = _follower_enriched(number)
        return record["id"].encode(), dumps(record)

    raw = asyncio.run(run_matrix(settings, topics.raw_pages, _raw_poison(), raw_follower))
    articles = asyncio.run(run_matrix(settings, topics.articles, _article_poison(), article_follower))
    sunk = asyncio.run(run_matrix(settings, topics.enriched, _enriched_poison(), enriched_follower))
    _print(report("worker", [*raw, *articles, *sunk]))

    assert_letters(raw, "extract", topics.raw_pages)
    assert_letters(articles, "fingerprint", topics.articles)
    assert_letters(sunk, "sink", topics.enriched)
    hang = next(m for m in raw if m.kind == "extractor-hangs")
    assert f"over {EXTRACTION_TIMEOUT_S:.0f}s" in hang.letter["error"]

    # The records after each poison went all the way: raw pages and articles to the enriched topic and
    # the store, enriched records to the store.
    wanted = (
        {article_id(_follower_page(n)["url"]) for n in range(len(raw))}
        | {_follower_article(n)["id"] for n in range(len(articles))}
        | {_follower_enriched(n)["id"] for n in range(len(sunk))}
    )
    missing = _wait_stored(sqlite_path, wanted, 180, poison_worker)
    assert not missing, f"{len(missing)} followers never stored: {sorted(missing)[:5]}"
    assert poison_worker.poll() is None, "the worker died"


def test_poison_on_the_worker_internal_topics_is_dead_lettered_and_the_agents_go_on(
    isolated: IsolatedPipeline, poison_worker: subprocess.Popen[bytes]
) -> None:
    settings = isolated.settings
    topics = settings.topics
    log = isolated.state_dir / "worker.log"

    def band_follower(number: int) -> tuple[bytes, bytes]:
        key, record = _band_record(number)
        return key.encode(), dumps(record)

    def join_follower(number: int) -> tuple[bytes, bytes]:
        # A valid message no article completes: the join keeps it, and the pages below show it goes on.
        return f"follower-join-{number}".encode(), dumps({"kind": "bands", "bands": [], "matches": []})

    bands = asyncio.run(run_matrix(settings, topics.dedup_bands, _band_poison(), band_follower))
    joins = asyncio.run(run_matrix(settings, topics.dedup_join, _join_poison(), join_follower))
    _print(report("worker, internal topics", [*bands, *joins]))
    assert_letters(bands, "band-index", topics.dedup_bands)
    assert_letters(joins, "join", topics.dedup_join)

    # Pages after all of it pass through both agents to the store.
    pages = [_follower_page(number, "after-internal") for number in range(3)]
    asyncio.run(produce(settings, topics.raw_pages, [(page["url"].encode(), dumps(page)) for page in pages]))
    wanted = {article_id(page["url"]) for page in pages}
    missing = _wait_stored(settings.store.sqlite_path, wanted, 180, poison_worker)
    assert not missing, log.read_text()[-3000:]
    assert poison_worker.poll() is None, "the worker died"


def test_poison_on_the_enriched_topic_is_dead_lettered_by_the_sink_process(
    isolated: IsolatedPipeline,
) -> None:
    settings = isolated.settings
    log = isolated.state_dir / "sink.log"
    sink = start_command(["sink"], isolated.overrides, log)
    try:

        def follower(number: int) -> tuple[bytes, bytes]:
            record = _follower_enriched(number)
            return record["id"].encode(), dumps(record)

        measured = asyncio.run(
            run_matrix(settings, settings.topics.enriched, _enriched_poison(), follower, timeout_s=120)
        )
        wanted = {_follower_enriched(n)["id"] for n in range(len(measured))}
        missing = _wait_stored(settings.store.sqlite_path, wanted, 120, sink)
        assert sink.poll() is None, log.read_text()[-3000:]
    finally:
        exit_code = stop_process(sink)
    _print(report("newsfeed sink", measured))
    assert exit_code == 0, log.read_text()[-3000:]
    assert_letters(measured, "sink", settings.topics.enriched)
    assert not missing, f"followers never stored: {sorted(missing)}"


def test_poison_on_partner_topics_is_dead_lettered_by_ingest(isolated: IsolatedPipeline) -> None:
    base = isolated.settings
    run = base.topics.raw_pages.removesuffix(".raw-pages.v1")
    pages_topic, articles_topic, json_topic = (
        f"{run}.partner-{name}" for name in ("pages", "articles", "json")
    )
    asyncio.run(_create_partner_topics(base, pages_topic, articles_topic, json_topic))
    inputs = [
        {"name": "pages", "topic": pages_topic},
        {"name": "articles", "topic": articles_topic, "format": "article", "stage": "articles"},
        {
            "name": "feed",
            "topic": json_topic,
            "format": "json",
            "stage": "articles",
            "mapping": {"url": "link", "title": "headline", "text": "body"},
        },
    ]
    overrides = {**isolated.overrides, "inputs": inputs}
    settings = with_overrides(base, {"inputs": inputs})
    log = isolated.state_dir / "ingest.log"
    ingest = start_command(["ingest"], overrides, log)

    def page_follower(number: int) -> tuple[bytes, bytes]:
        page = _follower_page(number, "partner")
        return page["url"].encode(), dumps(page)

    def article_follower(number: int) -> tuple[bytes, bytes]:
        article = _follower_article(number, "partner")
        return article["content_hash"].encode(), dumps(article)

    def json_follower(number: int) -> tuple[bytes, bytes]:
        link = f"https://partner.example/json-{number}"
        body = {"link": link, "headline": f"Partner story {number}", "body": _story(number, "json")}
        return link.encode(), orjson.dumps(body)

    # Pages the extractor chokes on are valid raw pages: the bridge forwards them (the worker's matrix
    # covers what extraction then does), so here only the record-level poison is dead-lettered.
    valid_page = _follower_page(999, "partner-poison")
    hostile_pages = [
        {**valid_page, "url": f"{valid_page['url']}?{kind}", "html": html}
        for kind, html in (("explode", valid_page["html"] + EXPLODE_MARK), ("hang", hanging_html()))
    ]
    json_valid = {"link": "https://partner.example/poison", "headline": "Poison", "body": "Text."}
    try:
        pages = asyncio.run(
            run_matrix(
                settings,
                pages_topic,
                _over_broker_default(poison_for(valid_page, wrong_type=("status", "200"), missing="html")),
                page_follower,
                timeout_s=120,
            )
        )
        articles = asyncio.run(
            run_matrix(
                settings,
                articles_topic,
                _over_broker_default(_article_poison()),
                article_follower,
                timeout_s=120,
            )
        )
        feed = asyncio.run(
            run_matrix(
                settings,
                json_topic,
                _over_broker_default(
                    poison_for(
                        json_valid, wrong_type=("link", 7), missing="body", missing_reason="missing-field"
                    )
                ),
                json_follower,
                timeout_s=120,
            )
        )
        asyncio.run(produce(settings, pages_topic, [(p["url"].encode(), dumps(p)) for p in hostile_pages]))
        forwarded_pages = len(pages) + len(hostile_pages)
        forwarded_articles = len(articles) + len(feed)
        raw = asyncio.run(read_topic(settings, settings.topics.raw_pages, forwarded_pages, timeout_s=120))
        entered = asyncio.run(
            read_topic(settings, settings.topics.articles, forwarded_articles, timeout_s=120)
        )
        assert ingest.poll() is None, log.read_text()[-3000:]
    finally:
        exit_code = stop_process(ingest)
    _print(report("newsfeed ingest", [*pages, *articles, *feed]))
    assert exit_code == 0, log.read_text()[-3000:]
    assert_letters(pages, "input:pages", pages_topic)
    assert_letters(articles, "input:articles", articles_topic)
    assert_letters(feed, "input:feed", json_topic)
    assert sorted(loads(record.value)["url"] for record in raw) == sorted(
        [_follower_page(n, "partner")["url"] for n in range(len(pages))] + [p["url"] for p in hostile_pages]
    )
    assert sorted(loads(record.value)["title"] for record in entered) == sorted(
        [f"Follower partner article {n}" for n in range(len(articles))]
        + [f"Partner story {n}" for n in range(len(feed))]
    )


def _over_broker_default(poison: list[Poison]) -> list[Poison]:
    """Partner topics are made with the broker's defaults (message.max.bytes 12 MiB here), so even an
    incompressible 11 MiB value gets in: the bridge's max_record_bytes (10 MiB) stops it."""
    return [*poison, Poison("incompressible-11MiB", random_bytes(UNPRODUCIBLE_BYTES, seed=12), "oversize")]


async def _create_partner_topics(settings: Settings, *names: str) -> None:
    async with admin_client(settings) as admin:
        await admin.create_topics([NewTopic(name, 2, 1) for name in names])


def test_poison_on_the_frontier_is_dead_lettered_by_the_crawler(isolated: IsolatedPipeline) -> None:
    settings = isolated.settings
    with CrawlSite() as site:
        site.feeds["start"] = [site.url("/start/first.html")]
        overrides: dict[str, Any] = {
            **isolated.overrides,
            "crawl": {
                **isolated.overrides["crawl"],
                "allowed_private_hosts": ["127.0.0.1"],
                "min_host_delay_s": 0.05,
                "poll_interval_s": 600,
            },
        }
        log = isolated.state_dir / "crawler.log"
        crawler = start_command(["crawl", "--feed", site.url("/feeds/start.xml")], overrides, log)
        try:
            # The first page shows the crawler has its partitions; the poison comes after.
            first = asyncio.run(read_topic(settings, settings.topics.raw_pages, 1, timeout_s=120))
            assert len(first) == 1, log.read_text()[-3000:]

            def follower(number: int) -> tuple[bytes, bytes]:
                entry = frontier_url(site.url(f"/after/poison-{number}.html"), "poison-test", "2026-01-01")
                return entry["host"].encode(), dumps(entry)

            valid = dict(frontier_url(site.url("/poison.html"), "poison-test", "2026-01-01"))
            poison = poison_for(valid, wrong_type=("attempt", "three"), missing="host")
            # The crawler's own limit for a frontier record is 64 KiB: the ten megabytes are oversize too.
            poison = [
                Poison(case.kind, case.value, "oversize") if case.kind == "ten-megabytes" else case
                for case in poison
            ]
            measured = asyncio.run(
                run_matrix(settings, settings.topics.frontier, poison, follower, timeout_s=120)
            )
            pages = asyncio.run(
                read_topic(settings, settings.topics.raw_pages, 1 + len(measured), timeout_s=120)
            )
            assert crawler.poll() is None, log.read_text()[-3000:]
        finally:
            exit_code = stop_process(crawler)
    _print(report("crawler", measured))
    assert exit_code == 0, log.read_text()[-3000:]
    assert_letters(measured, "crawl", settings.topics.frontier)
    assert sorted(record.key.decode() for record in pages) == sorted(
        [site.url("/start/first.html")] + [site.url(f"/after/poison-{n}.html") for n in range(len(measured))]
    )


def test_a_value_over_a_topics_limit_is_refused_by_the_broker(isolated: IsolatedPipeline) -> None:
    """11 MiB that zstd cannot shrink never reaches the pipeline on the 10 MiB topics: the producer gets
    the broker's MESSAGE_TOO_LARGE (a writer such as `newsfeed ingest` then fails the batch and does not
    commit it; the dead-letter topic allows 20 MiB, and a dead letter holds at most 1 MiB of the original)."""
    settings = isolated.settings
    topics = settings.topics
    for topic in (topics.raw_pages, topics.articles, topics.enriched):
        error = asyncio.run(produce_unproducible(settings, topic))
        assert isinstance(error, MessageSizeTooLargeError), (topic, error)
    assert asyncio.run(read_topic(settings, topics.raw_pages, 1, timeout_s=3)) == []
