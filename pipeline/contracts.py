"""The record contracts: versioned JSON Schemas and the topic catalogue in schemas/."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import yaml
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

SCHEMA_SUFFIX = ".schema.json"


class ContractError(ValueError):
    """A record does not satisfy its schema; the message names the field and the rule."""


@dataclass(frozen=True)
class TopicSpec:
    """One entry of the topic catalogue."""

    name: str
    setting: str
    key: str
    schema: str
    compatibility: str
    partitions: int | None
    config: dict[str, str] = field(default_factory=dict)
    producers: tuple[str, ...] = ()
    consumers: tuple[str, ...] = ()


class Contracts:
    """Validators for every schema in a schemas folder, built once."""

    def __init__(self, schemas_dir: Path) -> None:
        self.schemas_dir = schemas_dir
        self.schemas: dict[str, dict[str, Any]] = {
            path.name.removesuffix(SCHEMA_SUFFIX): orjson.loads(path.read_bytes())
            for path in sorted(schemas_dir.glob(f"*{SCHEMA_SUFFIX}"))
        }
        registry: Registry[Any] = Registry().with_resources(
            (schema["$id"], Resource.from_contents(schema)) for schema in self.schemas.values()
        )
        self._validators = {
            name: Draft202012Validator(schema, registry=registry, format_checker=FormatChecker())
            for name, schema in self.schemas.items()
        }

    def validate(self, record: Any, schema: str) -> None:
        """Raise ContractError naming the first violated rule, if any."""
        try:
            validator = self._validators[schema]
        except KeyError:
            raise ContractError(f"unknown schema {schema!r}; known: {sorted(self._validators)}") from None
        error = next(iter(sorted(validator.iter_errors(record), key=lambda e: list(e.path))), None)
        if error is not None:
            where = "/".join(str(part) for part in error.absolute_path) or "(record)"
            raise ContractError(f"{schema}: {where}: {error.message}")

    def catalogue(self) -> list[TopicSpec]:
        return load_catalogue(self.schemas_dir / "topics.yaml")


def load_catalogue(path: Path) -> list[TopicSpec]:
    document = yaml.safe_load(path.read_text())
    specs = []
    for entry in document["topics"]:
        partitions = entry.get("partitions", "default")
        specs.append(
            TopicSpec(
                name=entry["name"],
                setting=entry["setting"],
                key=entry["key"],
                schema=entry["schema"],
                compatibility=entry["compatibility"],
                partitions=None if partitions == "default" else int(partitions),
                config={str(k): str(v) for k, v in (entry.get("config") or {}).items()},
                producers=tuple(entry.get("producers", ())),
                consumers=tuple(entry.get("consumers", ())),
            )
        )
    return specs


@cache
def contracts_for(schemas_dir: Path) -> Contracts:
    """One Contracts per schemas folder per process."""
    return Contracts(schemas_dir)


def consumer_view(schema: dict[str, Any], schemas: dict[str, dict[str, Any]]) -> dict[str, str]:
    """What a consumer may rely on: every required field path with its declared type(s).

    A later schema version is compatible when its view contains this one unchanged (it may add fields).
    """
    view: dict[str, str] = {}
    _collect(schema, schemas, "", view)
    return view


def _collect(
    schema: dict[str, Any], schemas: dict[str, dict[str, Any]], prefix: str, view: dict[str, str]
) -> None:
    for part in schema.get("allOf", []):
        referenced = part.get("$ref", "").removesuffix(SCHEMA_SUFFIX)
        _collect(schemas[referenced] if referenced else part, schemas, prefix, view)
    properties = schema.get("properties", {})
    for name in schema.get("required", []):
        field_schema = properties.get(name, {})
        path = f"{prefix}{name}"
        declared = field_schema.get("type", "any")
        view[path] = "|".join(sorted(declared)) if isinstance(declared, list) else str(declared)
        if declared == "object":
            _collect(field_schema, schemas, f"{path}.", view)
        items = field_schema.get("items", {})
        if declared == "array" and items.get("type") == "object":
            _collect(items, schemas, f"{path}[].", view)


def breaking_changes(locked: dict[str, str], current: dict[str, str]) -> list[str]:
    """Required fields a consumer relied on that were removed or retyped."""
    problems = []
    for path, declared in sorted(locked.items()):
        if path not in current:
            problems.append(f"{path}: no longer required (consumers rely on it)")
        elif current[path] != declared:
            problems.append(f"{path}: type changed from {declared} to {current[path]}")
    return problems
