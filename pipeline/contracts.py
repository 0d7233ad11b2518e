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
