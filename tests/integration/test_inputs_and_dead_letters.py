"""Other teams' topics through `newsfeed ingest`, poison on every input topic, and `newsfeed dlq`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.cli import main
from pipeline.contracts import contracts_for
from pipeline.inputs.bridge import run_inputs
from pipeline.ops.dlq import LetterFilter, plan_replay, read_letters, replay
from pipeline.ops.isolated import start_worker, stop_process, with_overrides
from pipeline.ops.lag import wait_until_drained
from pipeline.ops.topics import admin_client
from pipeline.records import dumps, loads
from pipeline.settings import Settings
from tests.conftest import IsolatedPipeline
from tests.kafka_helpers import produce, read_topic
from tests.pages import demo_raw_pages

pytestmark = pytest.mark.integration
EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "examples"


def _example(schema: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(next((EXAMPLES / schema).glob("*.json")).read_text())
    return loaded


async def _create(settings: Settings, *names: str) -> None:
    from aiokafka.admin import NewTopic  # noqa: PLC0415

    async with admin_client(settings) as admin:
        await admin.create_topics([NewTopic(name, 2, 1) for name in names])


def _with_inputs(isolated: IsolatedPipeline, inputs: list[dict[str, Any]]) -> Settings:
    return with_overrides(isolated.settings, {"inputs": inputs})


def by_key_reason(letters: Any) -> dict[str, str]:
    return {stored.letter["key"]: stored.letter["reason"] for stored in letters}


def _ingest(settings: Settings) -> dict[str, int]:
    return dict(asyncio.run(run_inputs(settings, idle_exit_s=3.0)))


def test_partner_topics_enter_at_their_stage_and_poison_is_dead_lettered(isolated: IsolatedPipeline) -> None:
    base = isolated.settings
    run = base.topics.raw_pages.removesuffix(".raw-pages.v1")
    pages_topic, articles_topic, json_topic = (
        f"{run}.partner-pages",
        f"{run}.partner-articles",
        f"{run}.partner-json",
    )
    asyncio.run(_create(base, pages_topic, articles_topic, json_topic))
    settings = _with_inputs(
        isolated,
        [
            {"name": "pages", "topic": pages_topic},
            {"name": "articles", "topic": articles_topic, "format": "article", "stage": "articles"},
            {
                "name": "feed",
                "topic": json_topic,
                "format": "json",
                "stage": "articles",
                "mapping": {"url": "link", "title": "headline", "text": "body"},
            },
        ],
    )
    page = demo_raw_pages()[0]
    article = _example("article.v1")
    poison = [
        (b"p1", b'{"url": "https://x", trunc'),
        (b"p2", b"\xff\xfe\x00binary"),
        (b"p3", b"x" * (11 * 1024 * 1024)),
    ]
    asyncio.run(
        produce(settings, pages_topic, [poison[0], (page["url"].encode(), dumps(page)), poison[1], poison[2]])
    )
    asyncio.run(
        produce(settings, articles_topic, [(b"a1", dumps({**article, "title": 7})), (b"a2", dumps(article))])
    )
    asyncio.run(
        produce(
            settings,
            json_topic,
            [
                (b"j1", orjson.dumps({"link": "https://partner.example/1", "headline": "Partner story"})),
                (
                    b"j2",
                    orjson.dumps(
                        {
                            "link": "https://partner.example/2",
                            "headline": "Partner story",
                            "body": "Text of it.",
                        }
                    ),
                ),
            ],
        )
    )

    counts = _ingest(settings)

    assert counts == {
        "pages:forwarded": 1,
        "pages:dead-letter:invalid-json": 2,
        "pages:dead-letter:oversize": 1,
        "articles:forwarded": 1,
        "articles:dead-letter:schema": 1,
        "feed:forwarded": 1,
        "feed:dead-letter:missing-field": 1,
    }
    raw = asyncio.run(read_topic(settings, settings.topics.raw_pages, 1, timeout_s=20))
    assert [loads(record.value)["url"] for record in raw] == [page["url"]]
    articles = asyncio.run(read_topic(settings, settings.topics.articles, 2, timeout_s=20))
    contracts = contracts_for(settings.schemas_dir)
    for record in articles:
        contracts.validate(loads(record.value), "article.v1")
        assert dict(record.headers)["schema"] == b"article.v1"
    assert sorted(loads(record.value)["url"] for record in articles) == sorted(
        [article["url"], "https://partner.example/2"]
    )

    letters = asyncio.run(read_letters(settings, LetterFilter()))
    assert len(letters) == 5
    assert by_key_reason(letters) == {
        "p1": "invalid-json",
        "p2": "invalid-json",
        "p3": "oversize",
        "a1": "schema",
        "j1": "missing-field",
    }
    by_key = {stored.letter["key"]: stored for stored in letters}
    assert by_key["p2"].letter["original_encoding"] == "base64"
    assert by_key["p2"].original_bytes() == b"\xff\xfe\x00binary"
    assert by_key["p1"].original_bytes() == b'{"url": "https://x", trunc'
    assert by_key["p1"].letter["source_topic"] == pages_topic
    assert by_key["p1"].letter["stage"] == "input:pages"
    assert by_key["p3"].letter["original_truncated"] is True
    assert by_key["p3"].letter["original_size"] == 11 * 1024 * 1024
    assert len(by_key["p3"].original_bytes()) == 1024 * 1024
    assert by_key["a1"].letter["reason"] == "schema"
    assert "title" in by_key["a1"].letter["error"]
    for stored in letters:
        contracts.validate(stored.letter, "dead_letter.v1")
        assert stored.letter["offset"] >= 0

    # A repeated run finds nothing new: offsets were committed after the broker acknowledged.
    assert _ingest(settings) == {}

    # The feed's mapping was wrong (their body is under "content"): fix it and replay its letter.
    fixed = _with_inputs(
        isolated,
        [
            {
                "name": "feed",
                "topic": json_topic,
                "format": "json",
                "stage": "articles",
                "mapping": {"url": "link", "title": "headline", "text": "headline"},
            }
        ],
    )
    plans = plan_replay(fixed, asyncio.run(read_letters(fixed, LetterFilter(stage="input:feed"))), None)
    assert [(plan.topic, plan.problem) for plan in plans] == [(settings.topics.articles, None)]
    assert asyncio.run(replay(fixed, plans)) == {f"replayed to {settings.topics.articles}": 1}
    articles = asyncio.run(read_topic(settings, settings.topics.articles, 3, timeout_s=20))
    replayed = [record for record in articles if loads(record.value)["url"] == "https://partner.example/1"]
    assert len(replayed) == 1
    assert dict(replayed[0].headers)["dlq-replay-of"].startswith(settings.topics.dead_letter.encode())


def test_dlq_commands_list_and_replay(isolated: IsolatedPipeline, capsys: pytest.CaptureFixture[str]) -> None:
    settings = isolated.settings
    env_config = isolated.state_dir / "settings.yaml"
    env_config.parent.mkdir(parents=True, exist_ok=True)
    env_config.write_text(json.dumps(isolated.overrides))  # JSON is YAML
    letter = {
        "reason": "extract-error",
        "error": "boom",
        "stage": "extract",
        "source_topic": settings.topics.raw_pages,
        "partition": 0,
        "offset": 5,
        "key": "k",
        "original": '{"url": 1}',
        "original_encoding": "utf-8",
        "failed_at": "2026-01-01T00:00:00+00:00",
        "trace_id": None,
    }
    asyncio.run(
        produce(
            settings,
            settings.topics.dead_letter,
            [(b"k", dumps(letter)), (b"j", dumps({**letter, "reason": "schema", "key": "j"}))],
        )
    )

    assert main(["--config", str(env_config), "dlq", "list"]) == 0
    out = capsys.readouterr()
    assert "extract-error" in out.out
    assert "schema" in out.out
    assert "2 dead letter(s)" in out.err
    assert main(["--config", str(env_config), "dlq", "list", "--reason", "schema", "--json"]) == 0
    listed = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [entry["key"] for entry in listed] == ["j"]

    assert main(["--config", str(env_config), "dlq", "replay"]) == 2, "replay needs a choice or --all"
    assert main(["--config", str(env_config), "dlq", "replay", "--reason", "extract-error", "--dry-run"]) == 0
    assert "would be sent" in capsys.readouterr().err
    assert asyncio.run(read_topic(settings, settings.topics.raw_pages, 1, timeout_s=3)) == []
    assert main(["--config", str(env_config), "dlq", "replay", "--reason", "extract-error"]) == 0
    raw = asyncio.run(read_topic(settings, settings.topics.raw_pages, 1, timeout_s=20))
    assert [(record.key, record.value) for record in raw] == [(b"k", b'{"url": 1}')]


@pytest.fixture
def worker(isolated: IsolatedPipeline) -> Iterator[None]:
    process = start_worker(isolated.overrides, isolated.state_dir / "worker.log")
    yield
    assert stop_process(process) == 0, (isolated.state_dir / "worker.log").read_text()[-3000:]


def test_poison_on_the_articles_and_enriched_topics_is_dead_lettered_and_the_stream_goes_on(
    isolated: IsolatedPipeline, worker: None
) -> None:
    settings = isolated.settings
    article = _example("article.v1")
    enriched = _example("enriched_article.v1")
    later = {**enriched, "id": "f" * 32, "title": "Written after the poison"}
    asyncio.run(
        produce(
            settings,
            settings.topics.articles,
            [(b"bad-article", b"[not an object"), (article["content_hash"].encode(), dumps(article))],
        )
    )
    asyncio.run(
        produce(
            settings,
            settings.topics.enriched,
            [(b"bad-enriched", dumps({**enriched, "dedup": "no"})), (later["id"].encode(), dumps(later))],
        )
    )

    assert asyncio.run(wait_until_drained(settings, timeout_s=120))
    letters = asyncio.run(read_topic(settings, settings.topics.dead_letter, 2, timeout_s=30))
    reasons = sorted((loads(record.value)["stage"], loads(record.value)["reason"]) for record in letters)
    assert reasons == [("fingerprint", "invalid-json"), ("sink", "schema")]
    from pipeline.sink.sqlite_store import SqliteStore  # noqa: PLC0415

    store = SqliteStore(settings.store.sqlite_path)
    try:
        titles = sorted(record["title"] for record in store.articles())
    finally:
        store.close()
    assert "Written after the poison" in titles
    assert article["title"] in titles


def test_a_partner_topic_on_a_sasl_ssl_cluster_is_ingested(
    isolated: IsolatedPipeline, secure_broker: Any
) -> None:
    """Their cluster needs SCRAM-SHA-512 over TLS; ours is the plain local one."""
    partner = with_overrides(isolated.settings, {"kafka": secure_broker.plaintext.model_dump()})
    topic = f"{isolated.settings.topics.raw_pages}.partner-secure"
    asyncio.run(_create(partner, topic))
    page = demo_raw_pages()[1]
    asyncio.run(produce(partner, topic, [(b"bad", b"{oops"), (page["url"].encode(), dumps(page))]))
    cluster = secure_broker.sasl_ssl.model_dump()
    cluster["sasl_password"] = secure_broker.sasl_ssl.sasl_password.get_secret_value()
    settings = _with_inputs(isolated, [{"name": "secure", "topic": topic, "cluster": cluster}])
    assert "sasl_password" in settings.inputs[0].cluster.model_dump()  # type: ignore[union-attr]
    assert cluster["sasl_password"] not in settings.model_dump_json()

    assert _ingest(settings) == {"secure:forwarded": 1, "secure:dead-letter:invalid-json": 1}
    raw = asyncio.run(read_topic(isolated.settings, isolated.settings.topics.raw_pages, 1, timeout_s=20))
    assert [loads(record.value)["url"] for record in raw] == [page["url"]]
    letters = asyncio.run(read_letters(isolated.settings, LetterFilter(stage="input:secure")))
    assert [(stored.letter["source_topic"], stored.original_bytes()) for stored in letters] == [
        (topic, b"{oops")
    ]
