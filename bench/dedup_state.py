"""Worker memory and disk with a big dedup index: N articles of synthetic fingerprints in a worker's tables.

The goal (issue #10, "State"): worker RSS ≤ 300 MB with 1 M articles of dedup state. In one run:

1. **bytes per article** of dedup state, before (buckets of whole band records, each member carrying the
   684-character signature, as the band-index agent stored them until the compaction) and after (compact
   bucket members and one 16-bit signature per article and partition): the same sample of synthetic
   articles through ``match_bucket`` and through ``match_members``, every table entry counted as its key
   and value bytes as the worker's tables serialise them.
2. **baseline**: ``newsfeed worker`` (topics, consumer group and state of its own, 8 partitions) with
   empty state. P pairs of articles are pushed through it (``article.v1`` records produced to its articles
   topic: a near copy of an earlier story, and a new story); its RSS is sampled throughout.
3. **filled**: N articles written straight into the RocksDB databases the same kind of worker opens for
   its bucket and signature tables (the partition of each band key, the tables' key and value
   serialisation, Faust's offset key; built with the pure functions the agent uses), spread over the
   29 days before the pushed articles. P of them have real text: the sources of the pushed copies. A fifth
   of the others are near copies (10 % of their MinHash values changed) of one of the 300 before them, so
   buckets hold several members. The worker is then started on that state and the same P pairs pushed;
   every copy must be found in the filled index. Its bucket sweep runs every 10 s, so sweeps scan the
   big tables while the articles flow.

Reported: the worker's RSS peak (VmHWM) and at the end (VmRSS), its extraction processes separately
(none start unless raw pages arrive), the bytes of its data directory, the time to fill. Nothing is
asserted; the exit code never depends on a figure.

    .venv/bin/python -m bench.dedup_state                  # 1 000 000 articles, 15-25 minutes, ~6 GB disk
    .venv/bin/python -m bench.dedup_state --smoke          # 2 000 articles, about a minute
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import orjson
import rocksdict
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.common import RESULTS_DIR, format_table, machine_info, run_bench, utc_timestamp
from bench.dedup_index import Writer, make_article, syndicate
from pipeline.contracts import contracts_for
from pipeline.dedup.index import BandRecord, band_records, match_bucket, match_members, partition_of
from pipeline.dedup.near import BANDS, NUM_PERM, ROWS, Fingerprint, band_keys, low_bits
from pipeline.dedup.state import (
    BucketMember,
    StoredSignature,
    bucket_member,
    encode_signature,
    stored_bucket,
)
from pipeline.ops.isolated import (
    delete_topics,
    isolated_overrides,
    start_worker,
    stop_process,
    with_overrides,
)
from pipeline.ops.kafka import client_options, cluster_answers, topic_partitions
from pipeline.ops.lag import wait_until_drained
from pipeline.ops.topics import create_topics
from pipeline.raw.publisher import record_headers
from pipeline.records import Article, dumps, loads
from pipeline.settings import Settings, load_settings
from pipeline.stream.app import BoundedRocksDBStore, Wiring, build_app

NAME = "dedup_state"
DEFAULT_ARTICLES = 1_000_000
SMOKE_ARTICLES = 2_000
DEFAULT_PAIRS = 150
SMOKE_PAIRS = 5
SAMPLE_ARTICLES = 5_000  # for bytes per article before/after (the old form needs 28 KB each in memory)
PARTITIONS = 8
SEED = 20240610
COPY_SHARE = 0.2
COPY_CHANGED = 0.1
RECENT = 300  # copies are of one of the articles just before them
SPAN_S = 29 * 86400.0  # the filled articles' event times, up to NOW: all inside the 30-day window
NOW = datetime(2024, 7, 1, tzinfo=UTC).timestamp()
SWEEP_INTERVAL_S = 10.0
FILL_WRITE_BUFFER_MB = 256  # the filling process only: bigger memtables load faster, same files
FILL_BATCH = 2_000  # articles per write batch
SAMPLE_EVERY_S = 0.2
IDLE_AFTER_S = 5.0  # keep sampling this long after the worker drained
MB = 1_000_000
MIB = 1024 * 1024

# --- synthetic articles -----------------------------------------------------------------------------


class IndexedArticle(NamedTuple):
    """What the band index keeps of an article, and where: its band keys and their partitions."""

    id: str
    rank: str
    t: float
    hash: str
    values: np.ndarray  # 128 MinHash values (uint64 holding uint32)
    shingles: int
    keys: list[str]
    partitions: list[int]


def fast_band_keys(values: np.ndarray) -> list[str]:
    """`band_keys` without numpy slicing per band (checked against it before use)."""
    rows = values.astype("<u4").tobytes()
    width = ROWS * 4
    return [
        f"{band:02d}:{hashlib.blake2b(rows[band * width : (band + 1) * width], digest_size=8).hexdigest()}"
        for band in range(BANDS)
    ]


def murmur2_partitions(keys: Sequence[str], partitions: int) -> np.ndarray:
    """Kafka's default partitioner (`partition_of`) for many keys of one length, vectorised."""
    data = np.frombuffer("".join(keys).encode(), dtype=np.uint8).reshape(len(keys), -1).astype(np.uint64)
    length = data.shape[1]
    mask, m = np.uint64(0xFFFFFFFF), np.uint64(0x5BD1E995)
    h = np.full(len(keys), (0x9747B28C ^ length) & 0xFFFFFFFF, dtype=np.uint64)
    for block in range(length // 4):
        b = data[:, block * 4 : block * 4 + 4]
        k = b[:, 0] | (b[:, 1] << np.uint64(8)) | (b[:, 2] << np.uint64(16)) | (b[:, 3] << np.uint64(24))
        k = (k * m) & mask
        k ^= k >> np.uint64(24)
        k = (k * m) & mask
        h = ((h * m) & mask) ^ k
    tail, base = length % 4, length & ~3
    if tail >= 3:
        h ^= data[:, base + 2] << np.uint64(16)
    if tail >= 2:
        h ^= data[:, base + 1] << np.uint64(8)
    if tail >= 1:
        h = ((h ^ data[:, base]) * m) & mask
    h ^= h >> np.uint64(13)
    h = (h * m) & mask
    h ^= h >> np.uint64(15)
    return (h & np.uint64(0x7FFFFFFF)) % np.uint64(partitions)


def check_fast_paths(rng: np.random.Generator) -> None:
    """The vectorised helpers give what the pipeline's own functions give."""
    for _ in range(20):
        values = rng.integers(0, 2**32, NUM_PERM, dtype=np.uint64)
        keys = fast_band_keys(values)
        assert keys == band_keys(Fingerprint(values, 1)), "fast_band_keys differs from band_keys"
        fast = murmur2_partitions(keys, PARTITIONS).tolist()
        assert fast == [partition_of(key.encode(), PARTITIONS) for key in keys], "murmur2 differs"


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat()


@dataclass
class PushedStories:
    """The text articles: sources hidden in the fill, and the copies and new stories pushed later."""

    sources: list[Article]
    copies: list[Article]
    originals: list[Article]

    @property
    def pushed(self) -> list[Article]:
        return [article for pair in zip(self.copies, self.originals, strict=True) for article in pair]


def pushed_stories(pairs: int, seed: int) -> PushedStories:
    rng = random.Random(seed)
    writer = Writer(rng)
    sources, copies, originals = [], [], []
    for number in range(pairs):
        cast = writer.cast()
        paragraphs = writer.story(cast)
        published = NOW - SPAN_S * (1 - (number + 0.5) / pairs)
        source_id = hashlib.sha256(f"bench-state/source/{number}".encode()).hexdigest()[:32]
        sources.append(
            make_article(
                source_id, writer.title(), paragraphs, published=published, fetched=published, zone=0
            )
        )
        edited, _ = syndicate(rng, writer, paragraphs, "Site 60")
        when = NOW + 60.0 * number
        copy_id = hashlib.sha256(f"bench-state/copy/{number}".encode()).hexdigest()[:32]
        copies.append(make_article(copy_id, writer.title(), edited, published=when, fetched=when, zone=60))
        new_id = hashlib.sha256(f"bench-state/new/{number}".encode()).hexdigest()[:32]
        new_story = writer.story(writer.cast())
        originals.append(
            make_article(new_id, writer.title(), new_story, published=when, fetched=when, zone=0)
        )
    return PushedStories(sources, copies, originals)


def _from_text(article: Article) -> IndexedArticle:
    rank, bands = band_records(article)
    record = bands[0][1]
    keys = [key for key, _ in bands]
    return IndexedArticle(
        id=article["id"],
        rank=rank,
        t=record["t"],
        hash=article["content_hash"],
        values=Fingerprint.decode(record["sig"], record["n"]).hashvalues,
        shingles=record["n"],
        keys=keys,
        partitions=[partition_of(key.encode(), PARTITIONS) for key in keys],
    )


def indexed_articles(count: int, sources: Sequence[Article], seed: int) -> Iterator[IndexedArticle]:
    """`count` articles in event-time order over SPAN_S before NOW; `sources` (real text) among them at
    their own times, a fifth of the others near copies of a recent article."""
    rng = np.random.default_rng(seed)
    check_fast_paths(rng)
    texts = deque(sorted((_from_text(source) for source in sources), key=lambda item: item.t))
    recent: deque[np.ndarray] = deque(maxlen=RECENT)
    changed = round(NUM_PERM * COPY_CHANGED)
    synthetic = count - len(texts)
    chunk = 4_096
    for start in range(0, synthetic, chunk):
        size = min(chunk, synthetic - start)
        fresh = rng.integers(0, 2**32, (size, NUM_PERM), dtype=np.uint64)
        copies = rng.random(size) < COPY_SHARE
        shingles = rng.integers(150, 600, size)
        digests = rng.integers(0, 2**63, (size, 4), dtype=np.int64)
        signatures = []
        for row in range(size):
            if copies[row] and recent:
                values = recent[int(rng.integers(len(recent)))].copy()
                positions = rng.choice(NUM_PERM, changed, replace=False)
                values[positions] = fresh[row, :changed]
            else:
                values = fresh[row]
            recent.append(values)
            signatures.append(values)
        keys = [fast_band_keys(values) for values in signatures]
        partitions = murmur2_partitions([key for row in keys for key in row], PARTITIONS).reshape(size, BANDS)
        for row in range(size):
            number = start + row
            t = NOW - SPAN_S + SPAN_S * number / max(synthetic, 1)
            while texts and texts[0].t <= t:
                yield texts.popleft()
            article_id = hashlib.sha256(f"bench-state/{seed}/{number}".encode()).hexdigest()[:32]
            yield IndexedArticle(
                id=article_id,
                rank=f"{_iso(t)}|0|{article_id}",
                t=t,
                hash="sha256:" + digests[row].tobytes().hex(),
                values=signatures[row],
                shingles=int(shingles[row]),
                keys=keys[row],
                partitions=partitions[row].tolist(),
            )
    yield from texts


# --- the band index's decisions, article by article -------------------------------------------------


@dataclass
class BandIndex:
    """The band-index agent's decisions over the recent buckets (the only ones a copy can share: its
    source is one of the RECENT articles before it), identical to the agent's: an article's signature once
    per partition, each bucket through `match_members`. Every write goes to `sink(table, partition, key,
    value bytes)`; `state_bytes` counts the entries as they stand at the end (a bucket may be rewritten)."""

    sink: Any
    window_s: float
    max_entries: int
    buckets: dict[str, tuple[list[BucketMember], int]] = field(default_factory=dict)
    last_touched: dict[str, int] = field(default_factory=dict)
    signatures: dict[str, StoredSignature] = field(default_factory=dict)
    history: deque[tuple[int, str, list[str]]] = field(default_factory=deque)
    settled_bytes: dict[str, int] = field(default_factory=lambda: {"buckets": 0, "signatures": 0})

    def add(self, number: int, article: IndexedArticle) -> None:
        mine = StoredSignature(low_bits(article.values), article.shingles, article.t)
        raw = encode_signature(mine)
        key_bytes = len(orjson.dumps(article.id))
        for partition in set(article.partitions):
            self.sink("signatures", partition, article.id, raw)
            self.settled_bytes["signatures"] += key_bytes + len(raw)
        alone = [bucket_member(article.rank, article.t, article.hash)]
        alone_value = orjson.dumps(stored_bucket(alone))
        for band, (key, partition) in enumerate(zip(article.keys, article.partitions, strict=True)):
            known = self.buckets.get(key)
            if known is None:  # what match_members gives for an empty bucket
                kept, value = alone, alone_value
            else:
                # The incoming record as the agent reads it; its signature is passed decoded (`mine`).
                record = BandRecord(
                    id=article.id, rank=article.rank, hash=article.hash, sig="", n=article.shingles,
                    t=article.t, band=band,
                )  # fmt: skip
                _, kept = match_members(
                    known[0],
                    record,
                    mine,
                    self.signatures.get,
                    window_s=self.window_s,
                    max_entries=self.max_entries,
                )
                value = orjson.dumps(stored_bucket(kept))
            self.buckets[key] = (kept, len(value))
            self.last_touched[key] = number
            self.sink("buckets", partition, key, value)
        self.signatures[article.id] = mine
        self.history.append((number, article.id, article.keys))
        while len(self.history) > RECENT + 50:
            old, old_id, old_keys = self.history.popleft()
            self.signatures.pop(old_id, None)
            for key in old_keys:
                if self.last_touched.get(key) == old:
                    self.settled_bytes["buckets"] += len(orjson.dumps(key)) + self.buckets.pop(key)[1]
                    del self.last_touched[key]

    def state_bytes(self) -> dict[str, int]:
        recent = sum(len(orjson.dumps(key)) + size for key, (_, size) in self.buckets.items())
        return {
            "buckets": self.settled_bytes["buckets"] + recent,
            "signatures": self.settled_bytes["signatures"],
        }


def bytes_per_article(count: int, seed: int, settings: Settings) -> dict[str, Any]:
    """State bytes per article of the same synthetic articles stored both ways: buckets of whole band
    records (before) and compact members plus signatures (after); keys and values as the tables
    serialise them (JSON keys, JSON buckets, raw signature bytes)."""
    window_s, cap = settings.dedup.window_days * 86400.0, settings.dedup.max_bucket_entries
    index = BandIndex(lambda *_: None, window_s, cap)
    signatures_written = 0
    records: dict[str, list[BandRecord]] = {}
    whole: dict[str, int] = {}
    for number, article in enumerate(indexed_articles(count, [], seed)):
        index.add(number, article)
        signatures_written += len(set(article.partitions))
        signature = Fingerprint(article.values, article.shingles).encode()
        for band, key in enumerate(article.keys):
            record = BandRecord(
                id=article.id, rank=article.rank, hash=article.hash, sig=signature, n=article.shingles,
                t=article.t, band=band,
            )  # fmt: skip
            _, records[key] = match_bucket(records.get(key, []), record, window_s=window_s, max_entries=cap)
            whole[key] = len(orjson.dumps(key)) + len(orjson.dumps(records[key]))
    before = sum(whole.values())
    after = index.state_bytes()
    entries = sum(len(members) for members in records.values())
    return {
        "articles": count,
        "bucket_entries_per_article": round(entries / count, 2),
        "signatures_per_article": round(signatures_written / count, 2),
        "before": round(before / count, 1),
        "after": round(sum(after.values()) / count, 1),
        "after_buckets": round(after["buckets"] / count, 1),
        "after_signatures": round(after["signatures"] / count, 1),
        "ratio": round(before / sum(after.values()), 2),
    }


# --- filling a worker's tables ----------------------------------------------------------------------


class TableWriter:
    """Writes entries straight into the RocksDB databases a worker's tables open: the same paths, options,
    key and value bytes, and Faust's offset key ("nothing of the changelog applied": it is empty)."""

    def __init__(self, tables: dict[str, Any]) -> None:
        self.tables = tables
        self.dbs: dict[tuple[str, int], rocksdict.Rdict] = {}
        self.batches: dict[tuple[str, int], rocksdict.WriteBatch] = {}
        self.entries = dict.fromkeys(tables, 0)
        self.without_wal = rocksdict.WriteOptions()
        # A property at run time, although rocksdict's stubs declare a method.
        self.without_wal.disable_wal = True  # type: ignore[method-assign,assignment]
        for name, table in tables.items():
            store: BoundedRocksDBStore = table.data
            for partition in range(PARTITIONS):
                path = store.partition_path(partition)
                path.parent.mkdir(parents=True, exist_ok=True)
                self.dbs[(name, partition)] = store.rocksdb_options.open(path)
                self.batches[(name, partition)] = rocksdict.WriteBatch(raw_mode=True)
            self._check_encoding(name, table)

    @staticmethod
    def _check_encoding(name: str, table: Any) -> None:
        serializers = table.app.serializers
        key, value = "00:0123456789abcdef", ([["r|0|id", 1.5, "abc"]] if name == "buckets" else b"\x00\x01")
        assert serializers.dumps_key(table.key_type, key, serializer=table.key_serializer) == orjson.dumps(
            key
        )
        expected = orjson.dumps(value) if name == "buckets" else value
        assert serializers.dumps_value(table.value_type, value, serializer=table.value_serializer) == expected

    def put(self, table: str, partition: int, key: str, value: bytes) -> None:
        self.batches[(table, partition)].put(orjson.dumps(key), value)
        self.entries[table] += 1

    def flush(self) -> None:
        for place, batch in self.batches.items():
            if len(batch):
                self.dbs[place].write(batch, self.without_wal)
                self.batches[place] = rocksdict.WriteBatch(raw_mode=True)

    def close(self) -> dict[str, Any]:
        """Flush and close every database; RocksDB's own estimates of what it holds, per table."""
        self.flush()
        estimates: dict[str, dict[str, int]] = {}
        for (name, _), db in self.dbs.items():
            db.put(BoundedRocksDBStore.offset_key, b"-1")
            db.flush()
            totals = estimates.setdefault(name, {"keys": 0, "live_sst_bytes": 0})
            totals["keys"] += db.property_int_value("rocksdb.estimate-num-keys") or 0
            totals["live_sst_bytes"] += db.property_int_value("rocksdb.live-sst-files-size") or 0
            db.close()
        return estimates


def fill_worker_state(settings: Settings, count: int, sources: Sequence[Article]) -> dict[str, Any]:
    """Write `count` articles of dedup state into the databases the worker with these settings opens."""
    fill_settings = with_overrides(settings, {"worker": {"rocksdb_write_buffer_mb": FILL_WRITE_BUFFER_MB}})
    wiring: Wiring = build_app(fill_settings)
    writer = TableWriter({"buckets": wiring.band_buckets, "signatures": wiring.signatures})
    index = BandIndex(writer.put, settings.dedup.window_days * 86400.0, settings.dedup.max_bucket_entries)
    began = time.perf_counter()
    for number, article in enumerate(indexed_articles(count, sources, SEED)):
        index.add(number, article)
        if (number + 1) % FILL_BATCH == 0:
            writer.flush()
        if count >= 100_000 and (number + 1) % 100_000 == 0:
            rate = (number + 1) / (time.perf_counter() - began)
            print(f"  filled {number + 1:,} / {count:,} ({rate:,.0f} articles/s)", file=sys.stderr)
    estimates = writer.close()
    seconds = time.perf_counter() - began
    logical = index.state_bytes()
    return {
        "articles": count,
        "seconds": round(seconds, 1),
        "articles_per_s": round(count / seconds),
        "entries_written": writer.entries,
        "state_bytes": logical,
        "state_bytes_per_article": round(sum(logical.values()) / count, 1),
        "rocksdb": estimates,
    }


# --- a worker run -----------------------------------------------------------------------------------


def _status_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a live process, in KiB (empty once it is gone)."""
    found: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found[name] = int(rest.split()[0])
    except OSError:
        return {}
    return found


def _descendants(pid: int) -> list[int]:
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children.extend(int(child) for child in (task / "children").read_text().split())
        except OSError:
            continue
    return children + [grandchild for child in children for grandchild in _descendants(child)]


class RssSampler:
    """Samples the RSS of a process and, separately, of its descendants (the extraction processes)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.worker_peak_kb = self.worker_last_kb = self.worker_hwm_kb = 0
        self.children_peak_kb = self.children_hwm_kb = 0
        self.children_seen = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def sample(self) -> None:
        worker = _status_kb(self.pid)
        if not worker:
            return
        self.samples += 1
        self.worker_last_kb = worker.get("VmRSS", 0)
        self.worker_peak_kb = max(self.worker_peak_kb, self.worker_last_kb)
        self.worker_hwm_kb = max(self.worker_hwm_kb, worker.get("VmHWM", 0))
        children = [_status_kb(child) for child in _descendants(self.pid)]
        self.children_seen = max(self.children_seen, len(children))
        self.children_peak_kb = max(self.children_peak_kb, sum(c.get("VmRSS", 0) for c in children))
        self.children_hwm_kb = max(self.children_hwm_kb, sum(c.get("VmHWM", 0) for c in children))

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY_S):
            self.sample()

    def figures(self) -> dict[str, Any]:
        return {
            "worker_peak_mb": round(self.worker_hwm_kb / 1024, 1),
            "worker_peak_sampled_mb": round(self.worker_peak_kb / 1024, 1),
            "worker_end_mb": round(self.worker_last_kb / 1024, 1),
            "extraction_processes": self.children_seen,
            "extraction_peak_mb": round(self.children_hwm_kb / 1024, 1),
            "samples": self.samples,
        }


def dir_bytes(path: Path) -> int:
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file()) if path.exists() else 0


async def _until_visible(settings: Settings, topics: Sequence[str], timeout_s: float = 60) -> None:
    """Wait until the cluster's metadata shows new topics (a client that sends sooner logs errors)."""
    consumer = AIOKafkaConsumer(**client_options(settings.kafka), enable_auto_commit=False)
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout_s
        missing = list(topics)
        while missing and time.monotonic() < deadline:
            missing = [topic for topic in missing if not await topic_partitions(consumer, topic)]
            if missing:
                await asyncio.sleep(0.5)
    finally:
        await consumer.stop()


async def _produce(settings: Settings, articles: Sequence[Article]) -> None:
    await _until_visible(settings, [settings.topics.articles, settings.topics.enriched])
    contracts = contracts_for(settings.schemas_dir)
    producer = AIOKafkaProducer(**client_options(settings.kafka), acks="all", compression_type="zstd")
    await producer.start()
    try:
        for article in articles:
            contracts.validate(article, "article.v1")
            await producer.send_and_wait(
                settings.topics.articles,
                key=article["content_hash"].encode(),
                value=dumps(article),
                headers=record_headers("article.v1", article["trace_id"]),
            )
    finally:
        await producer.stop()


async def _enriched(settings: Settings, expected: int, timeout_s: float) -> dict[str, dict[str, Any]]:
    """The latest enriched record of every article, once `expected` articles have one (or at time-out)."""
    consumer = AIOKafkaConsumer(
        settings.topics.enriched,
        **client_options(settings.kafka),
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    latest: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout_s
    try:
        while len(latest) < expected and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                for record in batch:
                    latest[record.key.decode()] = loads(record.value)
    finally:
        await consumer.stop()
    return latest


TABLES = (
    "dedup-band-buckets",
    "dedup-signatures",
    "dedup-pending-joins",
    "dedup-pending-articles",
    "dedup-settled",
)


def _duplicate_of(enriched: dict[str, dict[str, Any]], article_id: str) -> str | None:
    record = enriched.get(article_id)
    return None if record is None else record["dedup"]["duplicate_of"]


def worker_run(
    label: str, base: Settings, work: Path, stories: PushedStories, *, fill: int, keep: bool
) -> dict[str, Any]:
    """Start a worker (on `fill` articles of dedup state written beforehand), push the stories through
    it, and sample its memory until it has drained them."""
    run_id = f"bench-state-{uuid.uuid4().hex[:8]}"
    state = work / run_id
    overrides = isolated_overrides(run_id, state, partitions=PARTITIONS)
    overrides["kafka"] = {"bootstrap_servers": base.kafka.bootstrap_servers}
    overrides["dedup"] = {"bucket_sweep_interval_s": SWEEP_INTERVAL_S}
    settings = with_overrides(base, overrides)
    data_dir = settings.worker.data_dir
    asyncio.run(create_topics(settings))
    result: dict[str, Any] = {"run": label, "articles_in_state": fill}
    try:
        if fill:
            print(f"{NAME}: filling {fill:,} articles of dedup state", file=sys.stderr)
            result["fill"] = fill_worker_state(settings, fill, stories.sources)
        result["disk_before_bytes"] = dir_bytes(data_dir)
        pushed = stories.pushed
        process = start_worker(overrides, state / "worker.log")
        began = time.monotonic()
        try:
            with RssSampler(process.pid) as sampler:
                asyncio.run(_produce(settings, pushed))
                enriched = asyncio.run(_enriched(settings, len(pushed), timeout_s=600))
                processed = time.monotonic() - began
                drained = asyncio.run(wait_until_drained(settings, timeout_s=300))
                time.sleep(IDLE_AFTER_S)
                sampler.sample()
        finally:
            result["worker_exit_code"] = stop_process(process, timeout_s=120)
        result["memory"] = sampler.figures()
        result["disk_after_bytes"] = dir_bytes(data_dir)
        copies = zip(stories.copies, stories.sources, strict=True)
        found = [copy for copy, source in copies if _duplicate_of(enriched, copy["id"]) == source["id"]]
        result["pushed"] = {
            "articles": len(pushed),
            "enriched": len(enriched),
            "seconds_to_last_enriched": round(processed, 1),
            "drained": drained,
            "copies": len(stories.copies),
            "copies_found": len(found),
        }
    finally:
        asyncio.run(delete_topics(settings))
        if not keep:
            shutil.rmtree(state, ignore_errors=True)
    return result


def measure(args: argparse.Namespace) -> dict[str, Any]:
    base = load_settings()
    if not asyncio.run(cluster_answers(base.kafka)):
        raise SystemExit("no Kafka broker answers: start it with `.venv/bin/newsfeed broker start`")
    stories = pushed_stories(args.pairs, SEED)
    sample = min(args.articles, SAMPLE_ARTICLES)
    print(f"{NAME}: bytes per article, before and after, on {sample:,} articles", file=sys.stderr)
    per_article = bytes_per_article(sample, SEED + 1, base)
    work_parent = args.work_dir
    if work_parent is not None:
        work_parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-dedup-state-", dir=work_parent))
    try:
        baseline = worker_run("baseline: empty state", base, work, stories, fill=0, keep=args.keep)
        filled = worker_run(
            f"{args.articles:,} articles of state", base, work, stories, fill=args.articles, keep=args.keep
        )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return {
        "name": NAME,
        "timestamp": utc_timestamp(),
        "smoke": args.smoke,
        "params": {
            "articles": args.articles,
            "pairs": args.pairs,
            "partitions": PARTITIONS,
            "copy_share": COPY_SHARE,
            "rocksdb_block_cache_mb": base.worker.rocksdb_block_cache_mb,
            "rocksdb_write_buffer_mb": base.worker.rocksdb_write_buffer_mb,
            "bucket_sweep_interval_s": SWEEP_INTERVAL_S,
        },
        "bytes_per_article": per_article,
        "runs": [baseline, filled],
        "goal": {"worker_rss_mb": 300},
        "ratio_rss_filled_to_baseline": round(
            filled["memory"]["worker_peak_mb"] / max(baseline["memory"]["worker_peak_mb"], 0.1), 2
        ),
        "machine": machine_info(packages=("faust-streaming", "rocksdict", "aiokafka", "numpy", "orjson")),
    }


def render(result: dict[str, Any]) -> str:
    rows = []
    for run in result["runs"]:
        memory, pushed = run["memory"], run["pushed"]
        fill = run.get("fill")
        rows.append(
            [
                run["run"],
                memory["worker_peak_mb"],
                memory["worker_end_mb"],
                f"{memory['extraction_processes']} / {memory['extraction_peak_mb']}",
                round(run["disk_after_bytes"] / MB, 1),
                f"{fill['seconds']} s ({fill['articles_per_s']:,}/s)" if fill else "",
                f"{pushed['enriched']} / {pushed['articles']}",
                f"{pushed['copies_found']} / {pushed['copies']}",
                pushed["seconds_to_last_enriched"],
            ]
        )
    sizes = result["bytes_per_article"]
    baseline, filled = result["runs"]
    params = result["params"]
    added = filled["disk_after_bytes"] - baseline["disk_after_bytes"]
    return "\n".join(
        [
            f"dedup state: {params['articles']:,} articles, {params['partitions']} partitions, RocksDB cache "
            f"{params['rocksdb_block_cache_mb']} MB + write buffers {params['rocksdb_write_buffer_mb']} MB",
            "",
            format_table(
                [
                    "run",
                    "worker RSS peak MB",
                    "at end MB",
                    "extraction procs / MB",
                    "disk MB",
                    "fill",
                    "enriched",
                    "copies found",
                    "seconds",
                ],
                rows,
            ),
            "",
            f"bytes per article of dedup state ({sizes['articles']:,} articles, same run): before "
            f"{sizes['before']:,} (whole band records), after {sizes['after']:,} (buckets "
            f"{sizes['after_buckets']:,} + signatures {sizes['after_signatures']:,}): {sizes['ratio']}x",
            f"disk per article of state: {added / max(filled['articles_in_state'], 1):,.0f} bytes; "
            f"worker RSS peak with state / baseline: {result['ratio_rss_filled_to_baseline']} (goal: peak ≤ "
            f"{result['goal']['worker_rss_mb']} MB)",
            "machine: {cores} cores, {cpu}, {python}".format(**result["machine"]),
        ]
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"python -m bench.{NAME}", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--articles", type=int, default=None, help=f"articles of state ({DEFAULT_ARTICLES:,})"
    )
    parser.add_argument(
        "--pairs", type=int, default=None, help=f"copy + new story pairs pushed ({DEFAULT_PAIRS})"
    )
    parser.add_argument(
        "--smoke", action="store_true", help=f"tiny run ({SMOKE_ARTICLES:,} articles) for tests"
    )
    parser.add_argument(
        "--work-dir", type=Path, default=None, help="where the workers' state goes (default: temp)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the workers' state and logs")
    parser.add_argument("--json", type=Path, default=None, help=f"result file (default {RESULTS_DIR}/…)")
    args = parser.parse_args(argv)
    if args.articles is None:
        args.articles = SMOKE_ARTICLES if args.smoke else DEFAULT_ARTICLES
    if args.pairs is None:
        args.pairs = SMOKE_PAIRS if args.smoke else DEFAULT_PAIRS
    if args.json is None:
        args.json = RESULTS_DIR / (f"{NAME}.smoke.json" if args.smoke else f"{NAME}.json")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    return run_bench(parse_args(argv), measure, render)


if __name__ == "__main__":
    sys.exit(main())
