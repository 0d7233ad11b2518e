"""Enriched records appended to one JSONL file per UTC day, written exactly once across restarts."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from pipeline.clock import Clock
from pipeline.records import EnrichedArticle, dumps

POSITIONS_FILE = "positions.json"


@dataclass(frozen=True, slots=True)
class SinkItem:
    """One consumed enriched-topic message: a record, or a tombstone (`record` None) retracting `key`."""

    topic: str
    partition: int
    offset: int
    key: str
    record: EnrichedArticle | None


class JsonlStore:
    """Appends each batch to `enriched-YYYY-MM-DD.jsonl` (the UTC day it is written), one record per
    line; a retraction is written as `{"id": …, "retracted": true}`.

    Exactly once without a database: after each batch is appended and flushed to disk, `positions.json`
    records the file, its length and the last offset written per partition (replaced atomically).
    On start, bytes past the recorded length (a batch cut short by a crash) are cut off, and messages at
    or below the recorded offsets are skipped when the sink re-reads them.
    """

    def __init__(self, directory: Path, clock: Clock) -> None:
        self.directory = directory
        self.clock = clock
        directory.mkdir(parents=True, exist_ok=True)
        self._positions_path = directory / POSITIONS_FILE
        state = self._load_positions()
        offsets = state.get("offsets")
        self._offsets: dict[str, int] = dict(offsets) if isinstance(offsets, dict) else {}
        current = str(state.get("file") or "")
        for path in self.files():
            # The recorded file is cut back to its recorded length; a later day's file that no
            # position mentions holds only a batch that never completed.
            if path.name == current:
                _truncate(path, int(str(state.get("length", 0))))
            elif path.name > current:
                _truncate(path, 0)

    def append(self, items: Sequence[SinkItem]) -> int:
        """Write the items not written before; returns how many lines were added."""
        fresh = [item for item in items if item.offset > self._offsets.get(_position_key(item), -1)]
        if not fresh:
            return 0
        path = self.directory / f"enriched-{self.clock().date().isoformat()}.jsonl"
        lines = b"".join(_line(item) for item in fresh)
        with path.open("ab") as output:
            output.write(lines)
            output.flush()
            os.fsync(output.fileno())
            length = output.tell()
        for item in fresh:
            key = _position_key(item)
            self._offsets[key] = max(item.offset, self._offsets.get(key, -1))
        self._save_positions(path.name, length)
        return len(fresh)

    def files(self) -> list[Path]:
        return sorted(self.directory.glob("enriched-*.jsonl"))

    def _load_positions(self) -> dict[str, object]:
        try:
            loaded = orjson.loads(self._positions_path.read_bytes())
        except FileNotFoundError:
            return {}
        return loaded if isinstance(loaded, dict) else {}

    def _save_positions(self, file_name: str, length: int) -> None:
        temporary = self._positions_path.with_suffix(".tmp")
        temporary.write_bytes(orjson.dumps({"file": file_name, "length": length, "offsets": self._offsets}))
        with temporary.open("rb") as written:
            os.fsync(written.fileno())
        temporary.replace(self._positions_path)


def _position_key(item: SinkItem) -> str:
    return f"{item.topic}:{item.partition}"


def _line(item: SinkItem) -> bytes:
    if item.record is None:
        return orjson.dumps({"id": item.key, "retracted": True}) + b"\n"
    return dumps(item.record) + b"\n"


def _truncate(path: Path, length: int) -> None:
    try:
        if path.stat().st_size > length:
            with path.open("r+b") as file:
                file.truncate(length)
    except FileNotFoundError:
        pass
