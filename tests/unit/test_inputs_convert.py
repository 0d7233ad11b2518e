"""Other teams' records: validated and mapped to ours, or refused with a reason a dead letter can carry."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from pipeline.contracts import contracts_for
from pipeline.extract.extractor import article_id
from pipeline.inputs.convert import convert
from pipeline.settings import InputTopicSettings, load_settings
from pipeline.stream.decode import InvalidRecordError

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "examples"
CONTRACTS = contracts_for(load_settings().schemas_dir)


def example(schema: str) -> dict[str, Any]:
    path = next((EXAMPLES / schema).glob("*.json"))
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def spec(**fields: Any) -> InputTopicSettings:
    return InputTopicSettings.model_validate({"name": "partner", "topic": "partner.pages", **fields})


RAW = spec()
ARTICLES = spec(format="article", stage="articles")
JSON_PAGES = spec(format="json", mapping={"url": "link", "html": "payload.body", "fetched_at": "meta.when"})
JSON_ARTICLES = spec(
    format="json", stage="articles", mapping={"url": "link", "title": "headline", "text": "content.0"}
)


def test_our_raw_page_passes_unchanged_keyed_by_url() -> None:
    page = example("raw_page.v1")
    converted = convert(orjson.dumps(page), RAW, CONTRACTS, NOW)
    assert converted.record == page
    assert converted.key == page["url"].encode()
    assert converted.schema == "raw_page.v1"


def test_our_article_passes_keyed_by_content_hash() -> None:
    article = example("article.v1")
    converted = convert(orjson.dumps(article), ARTICLES, CONTRACTS, NOW)
    assert converted.record == article
    assert converted.key == article["content_hash"].encode()


def test_json_pages_are_mapped_and_completed() -> None:
    theirs = {
        "link": "https://partner.example/a",
        "payload": {"body": "<html>hi</html>"},
        "meta": {"when": "2020-01-01T00:00:00Z"},
    }
    record = convert(orjson.dumps(theirs), JSON_PAGES, CONTRACTS, NOW).record
    assert record["url"] == record["final_url"] == "https://partner.example/a"
    assert record["html"] == "<html>hi</html>"
    assert record["fetched_at"] == "2020-01-01T00:00:00Z"
    assert record["source"] == "input:partner"
    assert record["content_hash"].startswith("sha256:")
    assert record["trace_id"]


def test_json_articles_are_mapped_with_our_ids() -> None:
    theirs = {
        "link": "https://partner.example/story?utm_source=x",
        "headline": "Title",
        "content": ["Body text."],
    }
    record = convert(orjson.dumps(theirs), JSON_ARTICLES, CONTRACTS, NOW).record
    assert record["title"] == "Title"
    assert record["text"] == "Body text."
    assert record["canonical_url"] == "https://partner.example/story"
    assert record["id"] == article_id(record["canonical_url"])
    assert record["fetched_at"] == NOW.isoformat()
    assert record["extractor"] == "input:partner"


@pytest.mark.parametrize(
    ("value", "input_spec", "reason"),
    [
        (b'{"url": "https://x", "html": ', RAW, "invalid-json"),
        (b"\xff\xfe not utf-8", RAW, "invalid-json"),
        (None, RAW, "empty"),
        (b"[1, 2]", RAW, "schema"),
        (orjson.dumps({**example("raw_page.v1"), "status": "200"}), RAW, "schema"),
        (orjson.dumps({k: v for k, v in example("raw_page.v1").items() if k != "html"}), RAW, "schema"),
        (orjson.dumps({"link": "https://x"}), JSON_PAGES, "missing-field"),
        (orjson.dumps({"link": 7, "headline": "t", "content": ["b"]}), JSON_ARTICLES, "schema"),
        (b"x" * 2048, spec(max_record_bytes=1024), "oversize"),
    ],
    ids=[
        "truncated",
        "not-utf8",
        "no-value",
        "not-an-object",
        "wrong-type",
        "missing-field",
        "unmapped-path",
        "mapped-wrong-type",
        "oversize",
    ],
)
def test_bad_records_are_refused_with_a_reason(
    value: bytes | None, input_spec: InputTopicSettings, reason: str
) -> None:
    with pytest.raises(InvalidRecordError) as refused:
        convert(value, input_spec, CONTRACTS, NOW)
    assert refused.value.reason == reason
    assert refused.value.detail


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"format": "raw_page", "stage": "articles"}, "enters at stage raw"),
        ({"format": "article", "stage": "raw"}, "enters at stage articles"),
        ({"format": "json", "mapping": {"url": "u"}}, "mapping must give html"),
        ({"format": "json", "stage": "articles", "mapping": {"url": "u"}}, "mapping must give text, title"),
        ({"name": "Bad Name"}, "pattern"),
    ],
)
def test_input_settings_are_checked_at_load(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        spec(**fields)


def test_credentials_of_their_cluster_are_secrets() -> None:
    configured = spec(
        cluster={
            "bootstrap_servers": "partner:9093",
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_username": "u",
            "sasl_password": "hunter2",
        }
    )
    assert "hunter2" not in configured.model_dump_json()
    assert configured.cluster is not None
    assert configured.cluster.sasl_password is not None
    assert configured.cluster.sasl_password.get_secret_value() == "hunter2"
