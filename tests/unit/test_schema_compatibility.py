"""A schema change that would break an existing consumer fails here (removed or retyped required field)."""

from __future__ import annotations

import copy

import orjson
import pytest

from pipeline.contracts import breaking_changes, consumer_view, contracts_for
from pipeline.settings import Settings

SETTINGS = Settings()
CONTRACTS = contracts_for(SETTINGS.schemas_dir)
LOCK = orjson.loads((SETTINGS.schemas_dir / "compatibility.lock.json").read_bytes())


@pytest.mark.parametrize("schema_name", sorted(LOCK))
def test_current_schema_keeps_every_locked_field(schema_name: str) -> None:
    current = consumer_view(CONTRACTS.schemas[schema_name], CONTRACTS.schemas)
    assert breaking_changes(LOCK[schema_name], current) == []


def test_every_schema_is_locked() -> None:
    assert set(CONTRACTS.schemas) == set(LOCK), "add new schemas to schemas/compatibility.lock.json"


def test_removing_a_required_field_is_detected() -> None:
    schema = copy.deepcopy(CONTRACTS.schemas["enriched_article.v1"])
    schema["properties"]["dedup"]["required"].remove("duplicate_of")
    problems = breaking_changes(LOCK["enriched_article.v1"], consumer_view(schema, CONTRACTS.schemas))
    assert problems == ["dedup.duplicate_of: no longer required (consumers rely on it)"]


def test_retyping_a_required_field_is_detected() -> None:
    schema = copy.deepcopy(CONTRACTS.schemas["raw_page.v1"])
    schema["properties"]["status"]["type"] = "string"
    problems = breaking_changes(LOCK["raw_page.v1"], consumer_view(schema, CONTRACTS.schemas))
    assert problems == ["status: type changed from integer to string"]


def test_adding_an_optional_field_is_compatible() -> None:
    schema = copy.deepcopy(CONTRACTS.schemas["article.v1"])
    schema["properties"]["summary"] = {"type": "string"}
    assert breaking_changes(LOCK["article.v1"], consumer_view(schema, CONTRACTS.schemas)) == []
