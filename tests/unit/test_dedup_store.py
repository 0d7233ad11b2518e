"""The worker's RocksDB tables: one memory budget for all of them, a partition read in key order for
sweeps, and deletes that stay on the event's partition."""

from __future__ import annotations

import contextvars
import tracemalloc
import weakref
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust.streams
import pytest
from faust.types import TP

from pipeline.ops.isolated import isolated_overrides, with_overrides
from pipeline.settings import Settings
from pipeline.stream.app import (
    MIB,
    BoundedRocksDBStore,
    Wiring,
    build_app,
    rocksdb_options,
    shared_memory,
    table_slice,
)


@pytest.fixture
def wiring(tmp_path: Path) -> Wiring:
    overrides = isolated_overrides("store-test", tmp_path)
    overrides["worker"] |= {"rocksdb_block_cache_mb": 16, "rocksdb_write_buffer_mb": 4}
    return build_app(with_overrides(Settings(), overrides))


def changelog_event(table: Any, partition: int, offset: int, key: str, value: Any) -> Any:
    """A changelog record as Faust's recovery hands it to the store."""
    app = table.app
    message = SimpleNamespace(
        tp=TP(table.changelog_topic.get_topic_name(), partition),
        partition=partition,
        offset=offset,
        key=app.serializers.dumps_key(table.key_type, key, serializer=table.key_serializer),
        value=app.serializers.dumps_value(table.value_type, value, serializer=table.value_serializer),
    )
    return SimpleNamespace(message=message)


class ProcessedEvent:
    """The event an agent is processing, as far as the store looks at it (Faust holds a weak reference)."""

    def __init__(self, message: Any) -> None:
        self.message = message


def fill(table: Any, entries: list[tuple[int, str, Any]]) -> None:
    events = [changelog_event(table, p, offset, key, value) for offset, (p, key, value) in enumerate(entries)]
    table.data.apply_changelog_batch(events, to_key=None, to_value=None)


def test_settings_become_the_options_of_every_table(wiring: Wiring) -> None:
    options = rocksdb_options(wiring.settings)
    assert options == {
        "block_cache_size": 16 * MIB,
        "write_buffer_budget": 4 * MIB,
        "write_buffer_size": MIB,
        "max_write_buffer_number": 2,
    }
    tables = list(wiring.app.tables.values())
    assert {table.name for table in tables} >= {"dedup-band-buckets", "dedup-signatures"}
    for table in tables:
        store = table.data
        assert isinstance(store, BoundedRocksDBStore)
        assert store.rocksdb_options.block_cache_size == 16 * MIB
        assert store.rocksdb_options.write_buffer_size == MIB


def test_all_databases_share_one_cache_and_one_write_buffer_manager() -> None:
    assert shared_memory(16 * MIB, 4 * MIB) is shared_memory(16 * MIB, 4 * MIB)
    cache, write_buffers = shared_memory(16 * MIB, 4 * MIB)
    assert write_buffers.get_buffer_size() == 4 * MIB
    assert cache.get_usage() >= 0


def test_a_reopened_database_keeps_the_shared_cache(wiring: Wiring) -> None:
    """rocksdict would reopen it with the options of its OPTIONS file: RocksDB's own 8 MB cache."""
    store: BoundedRocksDBStore = wiring.band_buckets.data
    path = store.partition_path(5)
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        db = store.rocksdb_options.open(path)
        db.put(b"key", b"value")
        assert db.property_int_value("rocksdb.block-cache-capacity") == 16 * MIB
        db.close()


def test_a_partition_is_read_in_key_order_a_slice_at_a_time(wiring: Wiring) -> None:
    buckets = wiring.band_buckets
    fill(
        buckets,
        [
            (1, "03:c", [["r|0|c", 3.0, "cc"]]),
            (1, "01:a", [["r|0|a", 1.0, "aa"]]),
            (2, "00:other", [["r|0|o", 0.0, "oo"]]),
            (1, "02:b", [["r|0|b", 2.0, "bb"]]),
        ],
    )
    first = table_slice(buckets, 1, None, 2)
    assert first == [("01:a", [["r|0|a", 1.0, "aa"]]), ("02:b", [["r|0|b", 2.0, "bb"]])]
    rest = table_slice(buckets, 1, first[-1][0], 2)
    assert rest == [("03:c", [["r|0|c", 3.0, "cc"]])]  # the offset Faust keeps there is not an entry
    assert table_slice(buckets, 1, "03:c", 2) == []
    assert table_slice(buckets, 2, None, 10) == [("00:other", [["r|0|o", 0.0, "oo"]])]


def test_bytes_values_are_stored_as_they_are(wiring: Wiring) -> None:
    fill(wiring.signatures, [(0, "article", b"\x00\x01raw")])
    assert table_slice(wiring.signatures, 0, None, 5) == [("article", b"\x00\x01raw")]


def test_a_delete_while_an_event_is_processed_stays_on_its_partition(wiring: Wiring) -> None:
    signatures = wiring.signatures
    fill(signatures, [(0, "article", b"on 0"), (3, "article", b"on 3")])
    store: BoundedRocksDBStore = signatures.data
    event = ProcessedEvent(SimpleNamespace(partition=3))

    def delete_during_event() -> None:
        faust.streams._current_event.set(weakref.ref(event))  # type: ignore[arg-type]
        assert store.get("article") == b"on 3"
        del store["article"]

    contextvars.copy_context().run(delete_during_event)
    assert table_slice(signatures, 3, None, 5) == []
    assert table_slice(signatures, 0, None, 5) == [("article", b"on 0")]


def test_keys_faust_keeps_in_its_key_index_take_their_own_size(wiring: Wiring) -> None:
    """orjson hands out a 4 KB buffer for any key; Faust keeps up to 1000 encoded keys per table."""
    store: BoundedRocksDBStore = wiring.settled.data
    event = ProcessedEvent(SimpleNamespace(partition=2))
    keys = [f"article-{number:06d}" for number in range(500)]

    def write_all() -> int:
        faust.streams._current_event.set(weakref.ref(event))  # type: ignore[arg-type]
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for key in keys:
                store[key] = {"expires": 0.0}
            return tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()

    retained = contextvars.copy_context().run(write_all)
    assert len(store._key_index) == len(keys)
    assert retained < len(keys) * 1024, f"{retained / len(keys):.0f} bytes kept per key"
