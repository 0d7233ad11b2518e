"""The sink writer and the JSONL store: last word per article wins, every message written exactly once."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from pipeline.ops.isolated import with_overrides
from pipeline.settings import load_settings
from pipeline.sink.jsonl_store import POSITIONS_FILE, JsonlStore, SinkItem
from pipeline.sink.sqlite_store import SqliteStore
from pipeline.sink.writer import SinkWriter
from tests.unit.test_sink_sqlite import enriched

TOPIC = "newsfeed.enriched-articles.v1"


class Days:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 23, 59, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def item(
    offset: int,
    index: int,
    *,
    partition: int = 0,
    tombstone: bool = False,
    fetched: str = "2026-01-01T00:00:00+00:00",
) -> SinkItem:
    record = None if tombstone else enriched(index, fetched_at=fetched)
    return SinkItem(TOPIC, partition, offset, f"{index:032x}", record)


def lines(store: JsonlStore) -> list[dict[str, object]]:
    return [orjson.loads(line) for path in store.files() for line in path.read_bytes().splitlines()]


class TestJsonlStore:
    def test_appends_records_and_retractions(self, tmp_path: Path) -> None:
        store = JsonlStore(tmp_path, Days())
        assert store.append([item(0, 1), item(1, 2), item(2, 1, tombstone=True)]) == 3
        written = lines(store)
        assert [line["id"] for line in written] == [f"{1:032x}", f"{2:032x}", f"{1:032x}"]
        assert written[2] == {"id": f"{1:032x}", "retracted": True}
        assert [path.name for path in store.files()] == ["enriched-2026-03-01.jsonl"]

    def test_a_redelivered_batch_is_skipped_per_partition(self, tmp_path: Path) -> None:
        store = JsonlStore(tmp_path, Days())
        store.append([item(0, 1), item(1, 2), item(0, 3, partition=1)])
        reopened = JsonlStore(tmp_path, Days())
        assert (
            reopened.append(
                [item(0, 1), item(1, 2), item(2, 4), item(0, 3, partition=1), item(1, 5, partition=1)]
            )
            == 2
        )
        assert len(lines(reopened)) == 5

    def test_a_batch_cut_short_by_a_crash_is_removed_on_restart(self, tmp_path: Path) -> None:
        store = JsonlStore(tmp_path, Days())
        store.append([item(0, 1)])
        path = store.files()[0]
        with path.open("ab") as file:  # the crash: bytes written, positions never updated
            file.write(b'{"id": "half a rec')
        reopened = JsonlStore(tmp_path, Days())
        assert len(lines(reopened)) == 1
        assert reopened.append([item(1, 2)]) == 1
        assert len(lines(reopened)) == 2

    def test_files_rotate_by_day_and_an_unrecorded_new_day_is_dropped(self, tmp_path: Path) -> None:
        clock = Days()
        store = JsonlStore(tmp_path, clock)
        store.append([item(0, 1)])
        clock.now = datetime(2026, 3, 2, 0, 1, tzinfo=UTC)
        store.append([item(1, 2)])
        assert [path.name for path in store.files()] == [
            "enriched-2026-03-01.jsonl",
            "enriched-2026-03-02.jsonl",
        ]
        (tmp_path / "enriched-2026-03-03.jsonl").write_bytes(b'{"id": "never recorded"}\n')
        reopened = JsonlStore(tmp_path, clock)
        assert len(lines(reopened)) == 2
        assert (tmp_path / POSITIONS_FILE).exists()


class TestSinkWriter:
    @pytest.fixture
    def writer(self, tmp_path: Path) -> SinkWriter:
        settings = with_overrides(
            load_settings(),
            {
                "store": {
                    "backends": ["sqlite", "jsonl"],
                    "sqlite_path": str(tmp_path / "s.sqlite3"),
                    "jsonl_dir": str(tmp_path / "jsonl"),
                }
            },
        )
        return SinkWriter(settings, Days())

    def test_every_store_gets_the_batch_and_the_last_message_per_article_wins(
        self, writer: SinkWriter, tmp_path: Path
    ) -> None:
        batch = [
            item(0, 1),
            item(1, 2),
            item(2, 1, tombstone=True),  # retracted after its record: gone
            item(3, 3, tombstone=True),
            item(4, 3, fetched="2026-02-01T00:00:00+00:00"),  # re-published after a retraction: kept
        ]
        assert writer.write(batch) == 2
        writer.write(batch)  # a redelivery changes nothing
        writer.close()
        sqlite = SqliteStore(tmp_path / "s.sqlite3")
        try:
            assert sorted(record["id"] for record in sqlite.articles()) == [f"{2:032x}", f"{3:032x}"]
        finally:
            sqlite.close()
        assert writer.jsonl is not None
        assert len(lines(writer.jsonl)) == 5
