"""Load and validate the topic taxonomy YAML and compile its terms into one Aho–Corasick matcher."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import ahocorasick
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

DEFAULT_TAXONOMY_PATH = Path(__file__).resolve().with_name("taxonomy.yaml")

# Slots below zero mark the two kinds of non-group terms; group terms use their group's index.
EXCLUDE_SLOT = -1
IGNORE_SLOT = -2

_TOPIC_ID = re.compile(r"[a-z0-9]+(?:[-_][a-z0-9]+)*")
_GROUP_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")
_TERM_WORD_SEPARATORS = re.compile(r"\s+")
_VOWELS = frozenset("aeiou")


class TaxonomyError(ValueError):
    """The taxonomy file cannot be used; the message names the file, the topic and the field at fault."""


def fold_case(text: str) -> str:
    """Lower-case `text` without changing its length, so offsets in the folded copy index the original."""
    folded = text.lower()
    if len(folded) == len(text):
        return folded
    # A few characters (e.g. "İ") lower-case to two code points; leaving those alone keeps offsets aligned.
    return "".join(lowered if len(lowered := char.lower()) == 1 else char for char in text)


# Hyphens become spaces and curly apostrophes straight ones, one character for one, so "air-strike" and
# "Hashd al-Shaabi" match space-separated terms and offsets still index the caller's text.
_SEPARATOR_FOLDING = str.maketrans({"-": " ", "\u2010": " ", "\u2011": " ", "\u2019": "'"})


def fold_separators(text: str) -> str:
    """Make word separators uniform without changing the length of `text`."""
    return text.translate(_SEPARATOR_FOLDING)


@dataclass(frozen=True, slots=True)
class TermSyntax:
    """A term as the taxonomy spells it, decoded: `=` prefix for exact case, `*` suffix for prefix match."""

    written: str
    words: tuple[str, ...]
    case_sensitive: bool
    prefix: bool

    @classmethod
    def parse(cls, written: str) -> TermSyntax:
        """Decode one term; a ValueError names the term and what is wrong with it."""
        body = written.strip()
        case_sensitive = body.startswith("=")
        if case_sensitive:
            body = body[1:]
        prefix = body.endswith("*")
        if prefix:
            body = body[:-1]
        if "*" in body:
            raise ValueError(f"term {written!r}: '*' is only allowed once, at the end (prefix match)")
        if "=" in body:
            raise ValueError(f"term {written!r}: '=' is only allowed once, at the start (exact case)")
        words = tuple(word for word in _TERM_WORD_SEPARATORS.split(fold_separators(body)) if word)
        if not any(char.isalnum() for word in words for char in word):
            raise ValueError(f"term {written!r}: needs at least one letter or digit")
        return cls(written=written.strip(), words=words, case_sensitive=case_sensitive, prefix=prefix)

    def surface_forms(self) -> set[str]:
        """Every spelling to look for: the words joined by single spaces, the last one inflected."""
        *leading, last = self.words if self.case_sensitive else tuple(fold_case(word) for word in self.words)
        # Acronyms ("CDS") and exact-case terms match as written: "US" + "es" would otherwise match "uses".
        written_last = self.words[-1]
        is_acronym = len(written_last) > 1 and written_last.isupper()
        inflect = not (self.case_sensitive or self.prefix or is_acronym) and last.isalpha()
        endings = _inflections(last) if inflect else {last}
        return {" ".join([*leading, ending]) for ending in endings}


def _inflections(word: str) -> set[str]:
    # Regular English endings only; nonsense forms ("strikeed") are harmless because text never contains them.
    forms = {word, word + "s", word + "es", word + "ed", word + "ing"}
    if word.endswith("e"):
        forms |= {word + "d", word[:-1] + "ing"}
    if len(word) > 2 and word.endswith("y") and word[-2] not in _VOWELS:
        forms |= {word[:-1] + "ies", word[:-1] + "ied"}
    if (
        len(word) > 2
        and word[-1] not in _VOWELS | {"w", "x", "y"}
        and word[-2] in _VOWELS
        and word[-3] not in _VOWELS
    ):
        forms |= {word + word[-1] + "ed", word + word[-1] + "ing"}
    return forms


class TopicSpec(BaseModel):
    """One topic as written in the taxonomy file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    description: str = Field(min_length=1)
    window: Literal["sentence", "paragraph"] = "sentence"
    groups: dict[str, list[str]] = Field(min_length=1)
    exclude: list[str] = Field(default_factory=list)
    ignore: list[str] = Field(default_factory=list)
    title_weight: float = Field(default=1.0, ge=0)
    lede_weight: float = Field(default=0.0, ge=0)
    threshold: float = Field(default=1.0, gt=0)

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not _TOPIC_ID.fullmatch(value):
            raise ValueError(f"{value!r} is not a valid id; use lower-case letters, digits, '-' and '_'")
        return value

    @field_validator("groups")
    @classmethod
    def _check_groups(cls, groups: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, terms in groups.items():
            if not _GROUP_NAME.fullmatch(name):
                raise ValueError(f"group name {name!r} must be letters, digits, '_' or '-'")
            if not terms:
                raise ValueError(f"group {name!r} has no terms")
            for term in terms:
                TermSyntax.parse(term)
        return groups

    @field_validator("exclude", "ignore")
    @classmethod
    def _check_terms(cls, terms: list[str]) -> list[str]:
        for term in terms:
            TermSyntax.parse(term)
        return terms


class TaxonomyDocument(BaseModel):
    """The whole taxonomy file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1)
    topics: list[TopicSpec] = Field(min_length=1)

    @field_validator("version", mode="before")
    @classmethod
    def _version_is_text(cls, value: object) -> object:
        if not isinstance(value, str):
            raise ValueError(f'must be a quoted string such as "2026.11.1", not {value!r}')
        return value

    @model_validator(mode="after")
    def _ids_are_unique(self) -> TaxonomyDocument:
        seen: set[str] = set()
        for topic in self.topics:
            if topic.id in seen:
                raise ValueError(f"topic id {topic.id!r} is used more than once")
            seen.add(topic.id)
        return self


@dataclass(frozen=True, slots=True)
class TermRule:
    """One surface form in the automaton and what a match of it means."""

    topic_index: int
    slot: int
    term: str
    form: str
    case_sensitive: bool
    prefix: bool
    needs_left_boundary: bool
    needs_right_boundary: bool


@dataclass(frozen=True, slots=True)
class TermHit:
    """A term found in a text: `start`/`end` are offsets into that text (end exclusive)."""

    topic_index: int
    slot: int
    term: str
    start: int
    end: int


class TermMatcher:
    """All terms of all topics in one automaton, so each text is scanned once whatever the topic count."""

    def __init__(self, rules: Iterable[TermRule]) -> None:
        rules_by_key: dict[str, list[TermRule]] = {}
        for rule in rules:
            rules_by_key.setdefault(fold_case(rule.form), []).append(rule)
        automaton: Any = ahocorasick.Automaton()
        for key, keyed_rules in rules_by_key.items():
            automaton.add_word(key, tuple(keyed_rules))
        automaton.make_automaton()
        self._automaton = automaton
        self.form_count = len(rules_by_key)

    def find(self, text: str) -> list[TermHit]:
        """Whole-word occurrences of every term in `text`, ordered by start offset."""
        text = fold_separators(text)
        folded = fold_case(text)
        length = len(text)
        hits: list[TermHit] = []
        last_index: int
        rules: tuple[TermRule, ...]
        for last_index, rules in self._automaton.iter(folded):
            for rule in rules:
                end = last_index + 1
                start = end - len(rule.form)
                if rule.needs_left_boundary and start > 0 and folded[start - 1].isalnum():
                    continue
                if rule.prefix:
                    while end < length and folded[end].isalnum():
                        end += 1
                elif rule.needs_right_boundary and end < length and folded[end].isalnum():
                    continue
                if rule.case_sensitive and not text.startswith(rule.form, start):
                    continue
                hits.append(TermHit(rule.topic_index, rule.slot, rule.term, start, end))
        hits.sort(key=lambda hit: (hit.start, hit.end))
        return hits


@dataclass(frozen=True, slots=True)
class Taxonomy:
    """A validated taxonomy with its terms compiled; build it once and share it across articles."""

    version: str
    topics: tuple[TopicSpec, ...]
    matcher: TermMatcher
    source: str


def load_taxonomy(path: Path) -> Taxonomy:
    """Read, validate and compile the taxonomy at `path`; raise :class:`TaxonomyError` on bad content."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TaxonomyError(f"cannot read taxonomy {path}: {exc}") from exc
    return parse_taxonomy(text, source=str(path))


def parse_taxonomy(text: str, source: str = "<string>") -> Taxonomy:
    """Validate and compile taxonomy YAML held in memory; `source` only labels error messages."""
    try:
        data = yaml.load(text, Loader=_StrictSafeLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise TaxonomyError(f"taxonomy {source} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise TaxonomyError(f"taxonomy {source} must be a mapping with 'version' and 'topics' at the top")
    try:
        document = TaxonomyDocument.model_validate(data)
    except ValidationError as exc:
        problems = "\n".join(f"  - {_describe(error, data)}" for error in exc.errors())
        raise TaxonomyError(f"invalid taxonomy {source}:\n{problems}") from exc
    return Taxonomy(
        version=f"{document.version}+{_content_hash(document)}",
        topics=tuple(document.topics),
        matcher=TermMatcher(_compile_rules(document.topics)),
        source=source,
    )


def _content_hash(document: TaxonomyDocument) -> str:
    # Hashing the validated content, not the file bytes, means comment and layout edits keep the version.
    canonical = json.dumps(document.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:8]


def _compile_rules(topics: Sequence[TopicSpec]) -> Iterable[TermRule]:
    for topic_index, topic in enumerate(topics):
        slotted_terms: list[tuple[int, str]] = [
            (slot, term) for slot, terms in enumerate(topic.groups.values()) for term in terms
        ]
        slotted_terms += [(EXCLUDE_SLOT, term) for term in topic.exclude]
        slotted_terms += [(IGNORE_SLOT, term) for term in topic.ignore]
        for slot, written in slotted_terms:
            syntax = TermSyntax.parse(written)
            for form in syntax.surface_forms():
                yield TermRule(
                    topic_index=topic_index,
                    slot=slot,
                    term=syntax.written,
                    form=form,
                    case_sensitive=syntax.case_sensitive,
                    prefix=syntax.prefix,
                    # A term that starts or ends in punctuation ("U.S.", "US$") brings its own boundary.
                    needs_left_boundary=form[0].isalnum(),
                    needs_right_boundary=form[-1].isalnum(),
                )


def _describe(error: ErrorDetails, data: dict[Any, Any]) -> str:
    location = error["loc"]
    message = error["msg"].removeprefix("Value error, ")
    if len(location) >= 2 and location[0] == "topics" and isinstance(location[1], int):
        index = location[1]
        topic_id = _raw_topic_id(data, index)
        topic = f"topic {topic_id!r}" if topic_id else f"topic #{index + 1}"
        field = ".".join(str(part) for part in location[2:])
        return f"{topic}, field {field!r}: {message}" if field else f"{topic}: {message}"
    field = ".".join(str(part) for part in location)
    return f"field {field!r}: {message}" if field else message


def _raw_topic_id(data: dict[Any, Any], index: int) -> str | None:
    topics = data.get("topics")
    if isinstance(topics, list) and index < len(topics) and isinstance(topics[index], dict):
        topic_id = topics[index].get("id")
        return str(topic_id) if topic_id is not None else None
    return None


class _StrictSafeLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys, which plain YAML loading silently resolves to the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                continue  # the base class reports unhashable keys with its own message
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)
