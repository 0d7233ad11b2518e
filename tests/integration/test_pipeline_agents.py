"""Raw pages through the Faust agents on the real broker: extract, drop exact copies, tag, sink."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from pipeline.contracts import contracts_for
from pipeline.demo.content import ARTICLES, SEED_ARTICLE, SITES, SYNDICATED_COPY
from pipeline.ops.isolated import start_worker, stop_process
from pipeline.ops.lag import wait_until_drained
from pipeline.raw.atomic_writer import transactional_producer
from pipeline.records import dumps, loads
from pipeline.sink.sqlite_store import SqliteStore
from tests.conftest import IsolatedPipeline
from tests.kafka_helpers import produce, read_topic
from tests.pages import article_raw_page, demo_raw_pages, home_raw_page

pytestmark = pytest.mark.integration
STORIES = [article for article in ARTICLES if article.syndicated_from is None]


@pytest.fixture
def worker(isolated: IsolatedPipeline) -> Iterator[None]:
    process = start_worker(isolated.overrides, isolated.state_dir / "worker.log")
    yield
    assert stop_process(process) == 0, (isolated.state_dir / "worker.log").read_text()[-3000:]


def _latest_by_key(records: list) -> dict[str, dict | None]:  # type: ignore[type-arg]
    latest: dict[str, dict | None] = {}  # type: ignore[type-arg]
    for record in records:
        latest[record.key.decode()] = loads(record.value) if record.value is not None else None
    return latest


def test_raw_pages_become_enriched_records(isolated: IsolatedPipeline, worker: None) -> None:
    settings = isolated.settings
    pages = [*demo_raw_pages(), home_raw_page(SITES[0])]
    poison = [(b"poison-json", b'{"url": "http://x", truncated'), (b"poison-schema", b'{"url": 7}')]
    asyncio.run(
        produce(
            settings,
            settings.topics.raw_pages,
            [(page["url"].encode(), dumps(page)) for page in pages] + poison,
        )
    )

    assert asyncio.run(wait_until_drained(settings, timeout_s=120)), "the worker did not drain its topics"
    enriched = asyncio.run(read_topic(settings, settings.topics.enriched, len(ARTICLES), timeout_s=30))
    dead = asyncio.run(read_topic(settings, settings.topics.dead_letter, 2, timeout_s=30))

    contracts = contracts_for(settings.schemas_dir)
    for record in enriched:
        if record.value is not None:
            contracts.validate(loads(record.value), "enriched_article.v1")
            headers = dict(record.headers)
            assert headers["schema"] == b"enriched_article.v1"
            assert headers["trace-id"]
    current = {key: value for key, value in _latest_by_key(enriched).items() if value is not None}
    canonical = sorted(value["title"] for value in current.values() if value["dedup"]["duplicate_of"] is None)
    assert canonical == sorted(story.title for story in STORIES), "one canonical record per story"
    seed = next(value for value in current.values() if value["title"] == SEED_ARTICLE.title)
    copy = next(value for value in current.values() if value["title"] == SYNDICATED_COPY.title)
    assert [topic["id"] for topic in seed["topics"]] == ["us-russia"]
    assert copy["dedup"]["duplicate_of"] == seed["id"] == seed["dedup"]["cluster_id"]
    expected = {article.title: sorted(article.expected_topics) for article in ARTICLES}
    for value in current.values():
        assert sorted(topic["id"] for topic in value["topics"]) == expected[value["title"]], value["title"]

    reasons = sorted(loads(record.value)["reason"] for record in dead)
    assert reasons == ["invalid-json", "schema"]
    for record in dead:
        letter = loads(record.value)
        contracts.validate(letter, "dead_letter.v1")
        assert letter["source_topic"] == settings.topics.raw_pages
        assert letter["key"] in {"poison-json", "poison-schema"}

    store = SqliteStore(settings.store.sqlite_path)
    try:
        stored = {record["id"]: record for record in store.articles()}
    finally:
        store.close()
    assert stored.keys() == current.keys(), "the store holds exactly the topic's current records"


def test_replaying_a_page_never_makes_it_a_duplicate_of_itself(
    isolated: IsolatedPipeline, worker: None
) -> None:
    settings = isolated.settings
    seed_page = article_raw_page(SEED_ARTICLE)
    replayed = dict(seed_page, fetched_at="2026-01-02T00:00:00+00:00")
    asyncio.run(produce(settings, settings.topics.raw_pages, [(seed_page["url"].encode(), dumps(seed_page))]))
    assert asyncio.run(wait_until_drained(settings, timeout_s=120))
    asyncio.run(produce(settings, settings.topics.raw_pages, [(seed_page["url"].encode(), dumps(replayed))]))
    assert asyncio.run(wait_until_drained(settings, timeout_s=120))

    enriched = asyncio.run(read_topic(settings, settings.topics.enriched, 2, timeout_s=30))
    verdicts = [loads(record.value)["dedup"] for record in enriched]
    assert len(verdicts) == 2
    assert all(verdict["method"] == "first" and verdict["duplicate_of"] is None for verdict in verdicts)
    store = SqliteStore(settings.store.sqlite_path)
    try:
        assert store.count() == 1
        assert next(store.articles())["fetched_at"] == "2026-01-02T00:00:00+00:00"
    finally:
        store.close()


def test_pages_of_an_aborted_transaction_are_never_processed(
    isolated: IsolatedPipeline, worker: None
) -> None:
    settings = isolated.settings
    aborted, committed = article_raw_page(ARTICLES[1]), article_raw_page(ARTICLES[2])

    async def write_both() -> None:
        producer = transactional_producer(settings, f"{settings.worker.app_id}-aborting-crawler")
        await producer.start()
        try:
            # One partition: the committed page comes after the aborted one.
            for page, commit in ((aborted, False), (committed, True)):
                await producer.begin_transaction()
                await producer.send_and_wait(settings.topics.raw_pages, dumps(page), partition=0)
                await (producer.commit_transaction() if commit else producer.abort_transaction())
        finally:
            await producer.stop()

    asyncio.run(write_both())
    assert asyncio.run(wait_until_drained(settings, timeout_s=120))

    articles = asyncio.run(read_topic(settings, settings.topics.articles, 2, timeout_s=10))
    assert [loads(record.value)["url"] for record in articles] == [committed["url"]]
