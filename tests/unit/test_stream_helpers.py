"""Stream helpers: dead-letter records, record decoding, and isolated-run settings overrides."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.contracts import Contracts, contracts_for
from pipeline.ops.isolated import as_environment, isolated_overrides, with_overrides
from pipeline.records import RawPage
from pipeline.settings import Settings, TopicSettings
from pipeline.stream.dead_letters import dead_letter
from pipeline.stream.decode import InvalidRecordError, decode_record

NOW = datetime(2026, 1, 1, 12, 30, tzinfo=UTC)
MAX_BYTES = 64 * 1024
VALID_RAW_PAGE = RawPage(
    url="https://news.example/a.html",
    final_url="https://news.example/a.html",
    status=200,
    headers={"content-type": "text/html; charset=utf-8"},
    fetched_at="2026-01-01T00:00:00+00:00",
    source="https://news.example/rss.xml",
    content_hash="sha256:" + "0" * 64,
    html="<html><body><p>Story</p></body></html>",
    trace_id="trace-1",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("NEWSFEED_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def contracts() -> Contracts:
    return contracts_for(Settings().schemas_dir)


def failed(value: bytes | None, key: bytes | None = b"https://news.example/a.html", **extra: Any) -> Any:
    return dead_letter(
        stage="extract",
        reason="invalid-json",
        error="unexpected character at line 1",
        topic="newsfeed.raw-pages.v1",
        partition=3,
        offset=1234,
        key=key,
        value=value,
        now=NOW,
        **extra,
    )


# --- dead letters -----------------------------------------------------------------------------------


def test_dead_letter_keeps_utf8_as_text(contracts: Contracts) -> None:
    value = '{"title": "Café – “quoted”"'.encode()
    record = failed(value, trace_id="trace-9")
    assert record["original"] == value.decode()
    assert record["original_encoding"] == "utf-8"
    assert record["key"] == "https://news.example/a.html"
    assert record["stage"] == "extract"
    assert record["reason"] == "invalid-json"
    assert record["source_topic"] == "newsfeed.raw-pages.v1"
    assert (record["partition"], record["offset"]) == (3, 1234)
    assert record["failed_at"] == NOW.isoformat()
    assert record["trace_id"] == "trace-9"
    contracts.validate(record, "dead_letter.v1")


def test_dead_letter_keeps_invalid_utf8_as_base64(contracts: Contracts) -> None:
    value = b"\xff\xfe\x00binary\x80"
    record = failed(value)
    assert record["original_encoding"] == "base64"
    assert base64.b64decode(record["original"]) == value
    contracts.validate(record, "dead_letter.v1")


def test_dead_letter_without_value_or_key(contracts: Contracts) -> None:
    record = failed(None, key=None)
    assert record["original"] == ""
    assert record["original_encoding"] == "utf-8"
    assert record["key"] is None
    assert record["trace_id"] is None
    contracts.validate(record, "dead_letter.v1")


def test_dead_letter_with_undecodable_key(contracts: Contracts) -> None:
    record = failed(b"{}", key=b"\xffkey")
    assert record["key"] is not None
    assert record["key"].endswith("key")
    contracts.validate(record, "dead_letter.v1")


def test_dead_letter_truncates_long_errors(contracts: Contracts) -> None:
    record = dead_letter(
        stage="sink",
        reason="schema",
        error="x" * 10_000,
        topic="t",
        partition=0,
        offset=0,
        key=None,
        value=b"{}",
        now=NOW,
    )
    assert len(record["error"]) == 2000
    contracts.validate(record, "dead_letter.v1")


def test_dead_letter_is_serialisable() -> None:
    record = failed(b"\xff")
    assert orjson.loads(orjson.dumps(record)) == record


# --- decode_record ----------------------------------------------------------------------------------


def test_decode_valid_raw_page(contracts: Contracts) -> None:
    value = orjson.dumps(VALID_RAW_PAGE)
    assert decode_record(value, "raw_page.v1", contracts, MAX_BYTES) == VALID_RAW_PAGE


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "empty"),
        (b"{not json", "invalid-json"),
        (b"\xff\xfe", "invalid-json"),
        (b'{"url": "https://news.example/a.html"}', "schema"),
        (orjson.dumps({**VALID_RAW_PAGE, "status": "200"}), "schema"),
        (b"[]", "schema"),
        (b"null", "schema"),
        (orjson.dumps({**VALID_RAW_PAGE, "html": "x" * MAX_BYTES}), "oversize"),
    ],
    ids=[
        "none",
        "truncated-json",
        "not-utf8",
        "missing-fields",
        "wrong-type",
        "array",
        "json-null",
        "too-big",
    ],
)
def test_decode_rejects_with_a_reason(contracts: Contracts, value: bytes | None, reason: str) -> None:
    with pytest.raises(InvalidRecordError) as caught:
        decode_record(value, "raw_page.v1", contracts, MAX_BYTES)
    assert caught.value.reason == reason
    assert caught.value.detail
    assert str(caught.value).startswith(f"{reason}: ")


def test_decode_schema_error_names_the_field(contracts: Contracts) -> None:
    value = orjson.dumps({key: v for key, v in VALID_RAW_PAGE.items() if key != "trace_id"})
    with pytest.raises(InvalidRecordError, match="trace_id"):
        decode_record(value, "raw_page.v1", contracts, MAX_BYTES)


def test_decode_size_limit_is_inclusive(contracts: Contracts) -> None:
    value = orjson.dumps(VALID_RAW_PAGE)
    assert decode_record(value, "raw_page.v1", contracts, len(value)) == VALID_RAW_PAGE
    with pytest.raises(InvalidRecordError, match="oversize"):
        decode_record(value, "raw_page.v1", contracts, len(value) - 1)


# --- isolated runs ----------------------------------------------------------------------------------


def test_isolated_overrides_name_everything_after_the_run(tmp_path: Path) -> None:
    overrides = isolated_overrides("run-7", tmp_path, partitions=4)
    settings = with_overrides(Settings(), overrides)
    topic_names = [settings.topics.raw_pages, settings.topics.articles]
    topic_names += [settings.topics.enriched, settings.topics.dead_letter]
    assert all(name.startswith("run-7.") for name in topic_names)
    assert len(set(topic_names)) == 4
    assert settings.topics.partitions == 4
    assert settings.worker.app_id == "newsfeed-run-7"
    assert settings.worker.data_dir == tmp_path / "faust"
    assert settings.store.sqlite_path == tmp_path / "newsfeed.sqlite3"


def test_isolated_overrides_cover_every_topic_setting(tmp_path: Path) -> None:
    topic_names = {name for name, field in TopicSettings.model_fields.items() if field.annotation is str}
    assert set(isolated_overrides("r", tmp_path)["topics"]) == topic_names


def test_isolated_overrides_keep_default_partitions(tmp_path: Path) -> None:
    overrides = isolated_overrides("run-8", tmp_path)
    assert "partitions" not in overrides["topics"]
    assert with_overrides(Settings(), overrides).topics.partitions == Settings().topics.partitions


def test_with_overrides_keeps_everything_else(tmp_path: Path) -> None:
    base = Settings(log_level="DEBUG", kafka={"bootstrap_servers": "10.1.1.1:9092", "sasl_password": "pw"})
    settings = with_overrides(base, isolated_overrides("run-9", tmp_path))
    assert settings.log_level == "DEBUG"
    assert settings.kafka.bootstrap_servers == "10.1.1.1:9092"
    assert settings.kafka.sasl_password is not None
    assert settings.kafka.sasl_password.get_secret_value() == "pw"
    assert settings.worker.extraction_timeout_s == base.worker.extraction_timeout_s
    assert base.topics.raw_pages == "newsfeed.raw-pages.v1"  # the original is untouched


def test_with_overrides_does_not_reread_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    base = Settings()
    monkeypatch.setenv("NEWSFEED_LOG_LEVEL", "ERROR")
    assert with_overrides(base, {"topics": {"partitions": 2}}).log_level == base.log_level


def test_as_environment_names() -> None:
    env = as_environment({"topics": {"raw_pages": "r.raw", "partitions": 4}, "log_level": "DEBUG"})
    assert env == {
        "NEWSFEED_TOPICS__RAW_PAGES": "r.raw",
        "NEWSFEED_TOPICS__PARTITIONS": "4",
        "NEWSFEED_LOG_LEVEL": "DEBUG",
    }


def test_as_environment_names_real_fields(tmp_path: Path) -> None:
    for name in as_environment(isolated_overrides("run-10", tmp_path, partitions=2)):
        section, _, field = name.removeprefix("NEWSFEED_").lower().partition("__")
        assert section in Settings.model_fields, name
        section_model = Settings.model_fields[section].annotation
        assert field in section_model.model_fields, name  # type: ignore[union-attr]


def test_environment_and_overrides_give_the_same_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    overrides = isolated_overrides("run-11", tmp_path, partitions=3)
    in_process = with_overrides(Settings(), overrides)
    for name, value in as_environment(overrides).items():
        monkeypatch.setenv(name, value)
    from_environment = Settings()
    assert from_environment == in_process
    assert from_environment.topics.raw_pages == "run-11.raw-pages.v1"


def test_as_environment_round_trips_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    overrides = {"crawl": {"feeds": ["http://127.0.0.1:8080/devdiscourse/rss.xml"]}}
    for name, value in as_environment(overrides).items():
        monkeypatch.setenv(name, value)
    assert Settings().crawl.feeds == ["http://127.0.0.1:8080/devdiscourse/rss.xml"]
