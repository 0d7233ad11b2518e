"""What the band index stores: compact bucket members, one b-bit signature per article and partition, and
which of either a sweep drops."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple, TypedDict

import numpy as np

from pipeline.dedup.near import NUM_PERM, STORED_BITS, Fingerprint, low_bits

# 48 bits of the content hash: an exact copy is recognised among the few members of one LSH bucket, where
# a chance agreement of 48 bits (about 1 in 10^14 per pair) does not happen.
HASH_PREFIX_CHARS = 12
_SIGNATURE_HEADER = struct.Struct("<dI")  # event time, distinct shingles
_SIGNATURE_BYTES = _SIGNATURE_HEADER.size + NUM_PERM * STORED_BITS // 8


class BucketMember(NamedTuple):
    """One article in an LSH bucket: its precedence rank (which ends with its id), event time and the
    start of its content hash. Stored as a JSON array `[rank, t, hash]`."""

    rank: str
    t: float
    hash: str

    @property
    def id(self) -> str:
        return article_id_of(self.rank)


class StoredSignature(NamedTuple):
    """An article's signature as the index keeps it: the low bits of each MinHash value."""

    values: np.ndarray
    shingles: int
    t: float


class SweepResult(TypedDict):
    """What one slice of a sweep changes: buckets rewritten without their expired members, and keys to
    delete (buckets left empty, expired signatures)."""

    rewrite: dict[str, list[list[Any]]]
    delete: list[str]


def article_id_of(rank: str) -> str:
    """The id at the end of a precedence rank ("published|syndicated|id"; ids may contain "|")."""
    return rank.split("|", 2)[2]


def hash_prefix(content_hash: str) -> str:
    """The part of a content hash a bucket member keeps (the digest's start, without "sha256:")."""
    return content_hash.partition(":")[2][:HASH_PREFIX_CHARS] or content_hash[:HASH_PREFIX_CHARS]


def bucket_member(rank: str, t: float, content_hash: str) -> BucketMember:
    return BucketMember(rank, t, hash_prefix(content_hash))


def stored_bucket(members: Iterable[BucketMember]) -> list[list[Any]]:
    """A bucket in its table form."""
    return [[member.rank, member.t, member.hash] for member in members]


def bucket_members(stored: list[Any] | None) -> list[BucketMember]:
    """A bucket read from its table. Members written before compaction (whole band records) are read as
    compact members; their signatures come from `legacy_signatures`."""
    members = []
    for entry in stored or ():
        if isinstance(entry, dict):
            members.append(bucket_member(entry["rank"], entry["t"], entry["hash"]))
        else:
            rank, t, short_hash = entry
            members.append(BucketMember(rank, t, short_hash))
    return members


def legacy_signatures(stored: list[Any] | None) -> dict[str, StoredSignature]:
    """Signatures carried by members written before compaction, by article id."""
    return {
        entry["id"]: stored_signature_of(entry["sig"], entry["n"], entry["t"])
        for entry in stored or ()
        if isinstance(entry, dict)
    }


def stored_signature_of(encoded: str, shingles: int, t: float) -> StoredSignature:
    """The stored form of a signature as band records carry it (base64 of 128 × uint32)."""
    return StoredSignature(low_bits(Fingerprint.decode(encoded, shingles).hashvalues), shingles, t)


def encode_signature(signature: StoredSignature) -> bytes:
    """Table bytes: event time and shingle count, then 128 little-endian 16-bit values (268 bytes)."""
    return _SIGNATURE_HEADER.pack(signature.t, signature.shingles) + signature.values.astype("<u2").tobytes()


def decode_signature(raw: bytes) -> StoredSignature:
    if len(raw) != _SIGNATURE_BYTES:
        raise ValueError(f"a stored signature has {_SIGNATURE_BYTES} bytes, not {len(raw)}")
    t, shingles = _SIGNATURE_HEADER.unpack_from(raw)
    values = np.frombuffer(raw, dtype="<u2", offset=_SIGNATURE_HEADER.size).astype(np.uint16)
    return StoredSignature(values, shingles, t)


def signature_time(raw: bytes) -> float:
    """The event time of a stored signature, without decoding its values."""
    t: float = _SIGNATURE_HEADER.unpack_from(raw)[0]
    return t


def signature_reader(
    read: Callable[[str], bytes | None], known: Mapping[str, StoredSignature] = {}
) -> Callable[[str], StoredSignature | None]:
    """Looks signatures up by article id, each at most once: one band message visits several buckets,
    and a story's copies are members of most of them."""
    cache: dict[str, StoredSignature | None] = dict(known)

    def signature_of(article_id: str) -> StoredSignature | None:
        if article_id not in cache:
            raw = read(article_id)
            cache[article_id] = None if raw is None else decode_signature(raw)
        return cache[article_id]

    return signature_of


def unexpired(members: Iterable[BucketMember], horizon: float) -> list[BucketMember]:
    """Members whose event time is inside the window (at or after the horizon)."""
    return [member for member in members if member.t >= horizon]


def swept_buckets(entries: Iterable[tuple[str, list[Any] | None]], horizon: float) -> SweepResult:
    """A slice of the bucket table without members older than the horizon (members written before
    compaction are kept as they are: their signatures move to the signature table when matched)."""
    result = SweepResult(rewrite={}, delete=[])
    for key, stored in entries:
        entries_of_bucket = stored or []
        kept = [entry for entry in entries_of_bucket if _entry_time(entry) >= horizon]
        if not kept:
            result["delete"].append(key)
        elif len(kept) != len(entries_of_bucket):
            result["rewrite"][key] = kept
    return result


def _entry_time(entry: Any) -> float:
    t: float = entry["t"] if isinstance(entry, dict) else entry[1]
    return t


def swept_signatures(entries: Iterable[tuple[str, bytes | None]], horizon: float) -> SweepResult:
    """A slice of the signature table: signatures of articles older than the horizon are deleted. A bucket
    member without its signature is dropped when its bucket is next matched, and its bucket is swept at
    the same horizon."""
    return SweepResult(
        rewrite={}, delete=[key for key, raw in entries if raw is None or signature_time(raw) < horizon]
    )
