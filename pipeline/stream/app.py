"""Build the Faust app: topics from settings, the dedup tables in RocksDB on one memory budget, and the
agents registered on it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import faust
import rocksdict
from faust.stores import STORES
from faust.stores.rocksdb import RocksDBOptions
from faust.stores.rocksdb import Store as RocksDBStore
from faust.streams import current_event

from pipeline.clock import utc_now
from pipeline.contracts import Contracts, contracts_for
from pipeline.ops.kafka import client_options
from pipeline.settings import Settings
from pipeline.stream.transport import TRANSACTIONAL_TOPICS, GapCheck, transport_url


@dataclass
class Wiring:
    """Everything an agent needs, built once per worker."""

    app: faust.App
    settings: Settings
    contracts: Contracts
    clock: Callable[[], datetime]
    raw_pages: Any
    articles: Any
    dedup_bands: Any
    dedup_join: Any
    enriched: Any
    dead_letters: Any
    band_buckets: Any
    signatures: Any
    pending_joins: Any
    pending_articles: Any
    settled: Any


def build_app(settings: Settings, clock: Callable[[], datetime] = utc_now) -> Wiring:
    """A Faust app with the pipeline's agents; nothing starts until a Worker runs it."""
    app = faust.App(
        settings.worker.app_id,
        broker=transport_url(settings.kafka.bootstrap_servers),
        broker_credentials=_credentials(settings),
        store=f"{STORE_SCHEME}://",
        datadir=str(settings.worker.data_dir),
        topic_partitions=settings.topics.partitions,
        topic_replication_factor=settings.topics.replication_factor,
        producer_acks=-1,
        producer_compression_type="zstd",
        producer_max_request_size=10 * 1024 * 1024,
        consumer_auto_offset_reset="earliest",
        web_enabled=settings.worker.web_enabled,
        web_port=settings.worker.web_port,
        web_host=settings.worker.web_host,
        web_bind=settings.worker.web_host,
    )
    topics = settings.topics
    TRANSACTIONAL_TOPICS[topics.raw_pages] = GapCheck(client_options(settings.kafka))

    def topic(name: str, partitions: int | None = None) -> Any:
        return app.topic(name, key_serializer="raw", value_serializer="raw", partitions=partitions)

    STORES.aliases.setdefault(STORE_SCHEME, f"{__name__}:BoundedRocksDBStore")

    def dedup_table(name: str, value_type: type | None = None) -> Any:
        """A table of JSON values (bytes as they are when `value_type` is bytes)."""
        return app.Table(
            name,
            default=None,
            partitions=topics.partitions,
            key_type=str,
            value_type=value_type,
            options=rocksdb_options(settings),
        )

    wiring = Wiring(
        app=app,
        settings=settings,
        contracts=contracts_for(settings.schemas_dir),
        clock=clock,
        raw_pages=topic(topics.raw_pages),
        articles=topic(topics.articles),
        dedup_bands=topic(topics.dedup_bands),
        dedup_join=topic(topics.dedup_join),
        enriched=topic(topics.enriched),
        dead_letters=topic(topics.dead_letter, partitions=1),
        band_buckets=dedup_table("dedup-band-buckets"),
        # One b-bit signature per article and partition, which the bucket members there refer to.
        signatures=dedup_table("dedup-signatures", value_type=bytes),
        pending_joins=dedup_table("dedup-pending-joins"),
        pending_articles=dedup_table("dedup-pending-articles"),
        settled=dedup_table("dedup-settled"),
    )
    from pipeline.stream.agents import register_agents  # noqa: PLC0415 - agents need the finished wiring

    register_agents(wiring)
    return wiring


def _credentials(settings: Settings) -> Any:
    kafka = settings.kafka
    if not kafka.security_protocol.startswith("SASL"):
        return (
            faust.SSLCredentials(cafile=str(kafka.ssl_cafile)) if kafka.security_protocol == "SSL" else None
        )
    from pipeline.ops.kafka import ssl_context  # noqa: PLC0415

    return faust.SASLCredentials(
        username=kafka.sasl_username,
        password=kafka.sasl_password.get_secret_value() if kafka.sasl_password else None,
        mechanism=kafka.sasl_mechanism or "SCRAM-SHA-512",
        ssl_context=ssl_context(kafka) if kafka.security_protocol == "SASL_SSL" else None,
    )


# --- RocksDB on one memory budget -------------------------------------------------------------------

STORE_SCHEME = "newsfeed-rocksdb"
MIB = 1024 * 1024
_FLUSHES_PER_BUDGET = 4  # one table partition's memtable is flushed at this fraction of the budget
_BLOOM_BITS_PER_KEY = 10


def rocksdb_options(settings: Settings) -> dict[str, Any]:
    """Table options for `BoundedRocksDBStore`: the worker's cache and write-buffer budget."""
    budget = settings.worker.rocksdb_write_buffer_mb * MIB
    return {
        "block_cache_size": settings.worker.rocksdb_block_cache_mb * MIB,
        "write_buffer_budget": budget,
        "write_buffer_size": budget // _FLUSHES_PER_BUDGET,
        "max_write_buffer_number": 2,
    }


@cache
def shared_memory(cache_bytes: int, write_buffer_bytes: int) -> tuple[rocksdict.Cache, Any]:
    """The block cache and write-buffer manager every database of this process shares."""
    return rocksdict.Cache(cache_bytes), rocksdict.WriteBufferManager(write_buffer_bytes, False)


def rocksdb_memory(settings: Settings) -> dict[str, float]:
    """Bytes held now by the worker's shared block cache and its memtables (bounded by their budgets)."""
    options = rocksdb_options(settings)
    cache, write_buffers = shared_memory(options["block_cache_size"], options["write_buffer_budget"])
    return {
        "newsfeed_rocksdb_block_cache_bytes": float(cache.get_usage()),
        "newsfeed_rocksdb_memtable_bytes": float(write_buffers.get_usage()),
    }


class BoundedRocksDBOptions(RocksDBOptions):
    """Faust's RocksDB options, but with one block cache and one memtable budget for all databases.

    Faust opens a database per table and partition, each with its own 2 GiB block cache and up to 3 × 64
    MB of memtables, and keeps every index and filter block in memory outside any cache: a worker's memory
    then grows with its state. Here index and filter blocks live in the shared cache (partitioned, so only
    the top level is pinned), and the write-buffer manager flushes memtables when all of them together
    reach the budget.
    """

    def __init__(self, *, write_buffer_budget: int, **options: Any) -> None:
        super().__init__(**options)
        self.write_buffer_budget = write_buffer_budget

    def open(self, path: Path, *, read_only: bool = False) -> rocksdict.Rdict:
        """Open a table partition's database with these options.

        rocksdict opens the column families of an existing database with the options saved in its OPTIONS
        file, where a block cache and a write-buffer manager are not kept: on every restart each database
        would get RocksDB's default 8 MB block cache of its own. So every column family is named here.
        """
        families = rocksdict.Rdict.list_cf(str(path)) if (path / "CURRENT").exists() else ["default"]
        access = (
            rocksdict.AccessType.read_write() if self.ttl is None else rocksdict.AccessType.with_ttl(self.ttl)
        )
        db = rocksdict.Rdict(
            str(path),
            options=self.as_options(),
            column_families={family: self.as_options() for family in families},
            access_type=access,
        )
        db.set_read_options(rocksdict.ReadOptions())
        return db

    def as_options(self) -> rocksdict.Options:
        cache, write_buffers = shared_memory(self.block_cache_size, self.write_buffer_budget)
        options = rocksdict.Options(raw_mode=True)
        options.create_if_missing(True)
        options.set_max_open_files(self.max_open_files or -1)
        options.set_write_buffer_size(self.write_buffer_size)
        options.set_max_write_buffer_number(self.max_write_buffer_number)
        options.set_target_file_size_base(self.target_file_size_base)
        options.set_write_buffer_manager(write_buffers)
        options.set_compression_type(rocksdict.DBCompressionType.lz4())
        table = rocksdict.BlockBasedOptions()
        table.set_block_cache(cache)
        table.set_bloom_filter(_BLOOM_BITS_PER_KEY, False)
        table.set_cache_index_and_filter_blocks(True)
        table.set_index_type(rocksdict.BlockBasedIndexType.two_level_index_search())
        table.set_partition_filters(True)
        table.set_pin_top_level_index_and_filter(True)
        options.set_block_based_table_factory(table)
        return options


class BoundedRocksDBStore(RocksDBStore):
    """Faust's RocksDB table store on `BoundedRocksDBOptions`, which can also read one partition in key
    order (for sweeps) and deletes a key on the current event's partition only."""

    def __init__(self, url: Any, app: Any, table: Any, **kwargs: Any) -> None:
        super().__init__(url, app, table, **kwargs)
        # Faust's Store has taken `read_only` and `driver` out of the options already.
        self.rocksdb_options = BoundedRocksDBOptions(**(self.options or {}))

    def _encode_key(self, key: Any) -> bytes:
        # orjson gives even a short key a 4 KB buffer of its own, and Faust keeps up to
        # `table_key_index_size` encoded keys per table in its key index: 20 MB over five tables, filled
        # a few keys per article. A copy holds only the key's own bytes.
        return bytes(memoryview(super()._encode_key(key)))

    def partition_slice(self, partition: int, after: Any, limit: int) -> list[tuple[Any, Any]]:
        """Up to `limit` decoded entries of one partition, in key order, after the key `after` (None: from
        the first)."""
        iterator = self._db_for_partition(partition).iter()
        if after is None:
            iterator.seek_to_first()
        else:
            start = self._encode_key(after)
            iterator.seek(start)
            if iterator.valid() and iterator.key() == start:
                iterator.next()
        entries: list[tuple[Any, Any]] = []
        while iterator.valid() and len(entries) < limit:
            key = iterator.key()
            if key != self.offset_key:
                entries.append((self._decode_key(key), self._decode_value(iterator.value())))
            iterator.next()
        return entries

    def _del(self, key: bytes) -> None:
        # Faust deletes from whichever partition last read the key, or from all of them; a key such as an
        # article's signature exists on several partitions, and the changelog tombstone goes to the
        # event's partition: delete it there, as `_set` writes there.
        event = current_event()
        if event is None or self.table.is_global or self.table.use_partitioner:
            super()._del(key)
            return
        self._db_for_partition(event.message.partition).delete(key)
        self._key_index.pop(key, None)


def table_slice(table: Any, partition: int, after: Any, limit: int) -> list[tuple[Any, Any]]:
    """Up to `limit` entries of a table's partition in key order, after the key `after`."""
    store: BoundedRocksDBStore = table.data
    return store.partition_slice(partition, after, limit)
