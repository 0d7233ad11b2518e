"""Record contracts: the JSON Schemas, their validation errors, the topic catalogue and the examples."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.contracts import ContractError, Contracts, contracts_for
from pipeline.settings import Settings, TopicSettings

SCHEMAS_DIR = Settings().schemas_dir
EXAMPLES_DIR = SCHEMAS_DIR / "examples"
SCHEMA_NAMES = ("raw_page.v1", "article.v1", "enriched_article.v1", "dead_letter.v1")
HASH = "sha256:" + "0123456789abcdef" * 4

RAW_PAGE: dict[str, Any] = {
    "url": "https://news.example/a.html",
    "final_url": "https://news.example/a.html",
    "status": 200,
    "headers": {"content-type": "text/html; charset=utf-8"},
    "fetched_at": "2026-01-01T00:00:00+00:00",
    "source": "https://news.example/rss.xml",
    "content_hash": HASH,
    "html": "<html><body><p>Story</p></body></html>",
    "trace_id": "trace-1",
}
ARTICLE: dict[str, Any] = {
    "id": "0123456789abcdef0123456789abcdef",
    "url": "https://news.example/a.html",
    "canonical_url": "https://news.example/a.html",
    "title": "A story",
    "text": "The story text.",
    "published": "2019-12-30T10:00:00+00:00",
    "authors": ["A. Writer"],
    "language": "en",
    "site_name": "News Example",
    "description": None,
    "categories": [],
    "image": None,
    "fetched_at": "2026-01-01T00:00:00+00:00",
    "source": "https://news.example/rss.xml",
    "content_hash": HASH,
    "trace_id": "trace-1",
    "extractor": "trafilatura-2/nf1",
}
ENRICHED_ARTICLE: dict[str, Any] = {
    **ARTICLE,
    "topics": [{"id": "us-russia", "score": 2.0, "evidence": ["Putin invited Trump"]}],
    "dedup": {
        "content_hash": HASH,
        "cluster_id": ARTICLE["id"],
        "duplicate_of": None,
        "similarity": 1.0,
        "method": "first",
    },
    "versions": {"extractor": "trafilatura-2/nf1", "tagger": "1.0.0", "taxonomy": "t1", "dedup": "exact-2"},
    "processed_at": "2026-01-01T00:00:01+00:00",
}
DEAD_LETTER: dict[str, Any] = {
    "reason": "invalid-json",
    "error": "unexpected character",
    "stage": "extract",
    "source_topic": "newsfeed.raw-pages.v1",
    "partition": 0,
    "offset": 42,
    "key": None,
    "original": "{not json",
    "original_encoding": "utf-8",
    "failed_at": "2026-01-01T00:00:00+00:00",
    "trace_id": None,
}
VALID_RECORDS = {
    "raw_page.v1": RAW_PAGE,
    "article.v1": ARTICLE,
    "enriched_article.v1": ENRICHED_ARTICLE,
    "dead_letter.v1": DEAD_LETTER,
}


@pytest.fixture(scope="module")
def contracts() -> Contracts:
    return contracts_for(SCHEMAS_DIR)


def without(record: dict[str, Any], field: str) -> dict[str, Any]:
    return {key: value for key, value in record.items() if key != field}


def test_every_schema_loads(contracts: Contracts) -> None:
    assert set(SCHEMA_NAMES) <= set(contracts.schemas)
    for name in SCHEMA_NAMES:
        assert contracts.schemas[name]["title"] == name


def test_contracts_are_cached_per_folder() -> None:
    assert contracts_for(SCHEMAS_DIR) is contracts_for(SCHEMAS_DIR)


@pytest.mark.parametrize("schema", SCHEMA_NAMES)
def test_valid_record_passes(contracts: Contracts, schema: str) -> None:
    contracts.validate(copy.deepcopy(VALID_RECORDS[schema]), schema)


def test_unknown_schema_is_a_contract_error(contracts: Contracts) -> None:
    with pytest.raises(ContractError, match=r"unknown schema 'nope\.v1'"):
        contracts.validate({}, "nope.v1")


@pytest.mark.parametrize(
    ("schema", "field"),
    [
        ("raw_page.v1", "url"),
        ("raw_page.v1", "html"),
        ("article.v1", "title"),
        ("article.v1", "content_hash"),
        ("enriched_article.v1", "dedup"),
        ("enriched_article.v1", "processed_at"),
        ("dead_letter.v1", "original"),
        ("dead_letter.v1", "original_encoding"),
    ],
)
def test_missing_required_field_is_named(contracts: Contracts, schema: str, field: str) -> None:
    with pytest.raises(ContractError, match=rf"'{field}' is a required property"):
        contracts.validate(without(VALID_RECORDS[schema], field), schema)


@pytest.mark.parametrize(
    ("schema", "field", "wrong_value"),
    [
        ("raw_page.v1", "status", "200"),
        ("raw_page.v1", "headers", ["content-type"]),
        ("article.v1", "authors", "A. Writer"),
        ("article.v1", "published", 20191230),
        ("dead_letter.v1", "partition", "0"),
        ("dead_letter.v1", "key", 7),
    ],
)
def test_wrong_type_is_named(contracts: Contracts, schema: str, field: str, wrong_value: Any) -> None:
    record = {**VALID_RECORDS[schema], field: wrong_value}
    with pytest.raises(ContractError, match=rf"{schema}: {field}: .* is not of type"):
        contracts.validate(record, schema)


@pytest.mark.parametrize(
    ("schema", "field", "bad_value"),
    [
        ("raw_page.v1", "content_hash", "md5:abc"),
        ("raw_page.v1", "status", 42),
        ("article.v1", "id", "not-a-hex-id"),
        ("article.v1", "title", ""),
        ("enriched_article.v1", "dedup", {**ENRICHED_ARTICLE["dedup"], "method": "fuzzy"}),
        ("dead_letter.v1", "original_encoding", "latin-1"),
        ("dead_letter.v1", "offset", -1),
    ],
)
def test_rule_violations_name_the_field(
    contracts: Contracts, schema: str, field: str, bad_value: Any
) -> None:
    record = {**VALID_RECORDS[schema], field: bad_value}
    with pytest.raises(ContractError, match=rf"{schema}: {field}"):
        contracts.validate(record, schema)


@pytest.mark.parametrize(
    ("schema", "field"),
    [("raw_page.v1", "fetched_at"), ("enriched_article.v1", "processed_at"), ("dead_letter.v1", "failed_at")],
)
def test_date_time_format_is_enforced(contracts: Contracts, schema: str, field: str) -> None:
    record = {**VALID_RECORDS[schema], field: "yesterday"}
    with pytest.raises(ContractError, match=rf"{schema}: {field}"):
        contracts.validate(record, schema)


def test_nested_violation_names_the_path(contracts: Contracts) -> None:
    record = copy.deepcopy(ENRICHED_ARTICLE)
    record["topics"][0]["score"] = -1
    with pytest.raises(ContractError, match=r"enriched_article\.v1: topics/0/score"):
        contracts.validate(record, "enriched_article.v1")


def test_record_that_is_not_an_object_is_rejected(contracts: Contracts) -> None:
    with pytest.raises(ContractError, match=r"\(record\)"):
        contracts.validate(["not", "an", "object"], "raw_page.v1")


@pytest.mark.parametrize("field", ["id", "title", "text", "content_hash", "extractor"])
def test_enriched_article_requires_article_fields(contracts: Contracts, field: str) -> None:
    with pytest.raises(ContractError, match=rf"'{field}'"):
        contracts.validate(without(ENRICHED_ARTICLE, field), "enriched_article.v1")


def test_enriched_article_checks_article_field_rules(contracts: Contracts) -> None:
    record = {**ENRICHED_ARTICLE, "id": "UPPER-CASE-IS-NOT-HEX"}
    with pytest.raises(ContractError, match=r"enriched_article\.v1: id"):
        contracts.validate(record, "enriched_article.v1")


def test_article_is_not_an_enriched_article(contracts: Contracts) -> None:
    with pytest.raises(ContractError, match="required property"):
        contracts.validate(ARTICLE, "enriched_article.v1")


# --- topic catalogue --------------------------------------------------------------------------------


def test_catalogue_has_a_topic_per_schema(contracts: Contracts) -> None:
    schemas_with_topics = {spec.schema for spec in contracts.catalogue()}
    assert set(SCHEMA_NAMES) <= schemas_with_topics


def test_catalogue_settings_are_topic_settings_fields(contracts: Contracts) -> None:
    for spec in contracts.catalogue():
        assert spec.setting in TopicSettings.model_fields, spec


def test_catalogue_names_are_the_default_topic_names(contracts: Contracts) -> None:
    defaults = TopicSettings()
    for spec in contracts.catalogue():
        assert getattr(defaults, spec.setting) == spec.name


def test_catalogue_schemas_exist(contracts: Contracts) -> None:
    for spec in contracts.catalogue():
        assert spec.schema in contracts.schemas, spec
        assert (SCHEMAS_DIR / f"{spec.schema}.schema.json").is_file()


def test_catalogue_entries_are_unique_and_complete(contracts: Contracts) -> None:
    specs = contracts.catalogue()
    assert len({spec.name for spec in specs}) == len(specs)
    assert len({spec.setting for spec in specs}) == len(specs)
    for spec in specs:
        assert spec.key
        assert spec.compatibility
        assert spec.partitions is None or spec.partitions >= 1
        assert spec.producers
        assert spec.consumers


# --- examples ---------------------------------------------------------------------------------------


def example_files() -> list[Path]:
    if not EXAMPLES_DIR.is_dir():
        return []
    return sorted(EXAMPLES_DIR.glob("*/*.json"))


def example_id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


# An empty list is reported as one skipped test (pytest's empty_parameter_set_mark).
@pytest.mark.parametrize("example", example_files(), ids=example_id)
def test_example_validates_against_its_schema(contracts: Contracts, example: Path) -> None:
    schema = example.parent.name
    assert schema in contracts.schemas, f"{example}: folder name is not a schema"
    contracts.validate(orjson.loads(example.read_bytes()), schema)
