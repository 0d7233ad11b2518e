"""The partitioned near-duplicate index as pure functions: band records out, bucket matching, and the
per-article join of every band's verdict."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, NotRequired, TypedDict

from aiokafka.partitioner import murmur2

from pipeline.clock import utc_iso
from pipeline.dedup.clusters import Match, cluster_verdict, precedence_rank
from pipeline.dedup.near import BANDS, Fingerprint, b_bit_similarity, band_keys, fingerprint
from pipeline.dedup.state import (
    BucketMember,
    StoredSignature,
    bucket_member,
    hash_prefix,
    stored_signature_of,
    unexpired,
)
from pipeline.records import Article, DedupVerdict, EnrichedArticle


class BandRecord(TypedDict):
    """One band of an article's signature (dedup_band.v1). A message may carry several bands of one
    partition: `bands` and their bucket `keys`. Buckets keep compact members (`pipeline.dedup.state`)."""

    id: str
    rank: str
    hash: str
    sig: str
    n: int
    t: float
    band: int
    bands: NotRequired[list[int]]
    keys: NotRequired[list[str]]


class PendingJoin(TypedDict):
    """What the join has gathered for one article so far."""

    article: Article | None
    rank: str
    bands: list[int]
    matches: dict[str, dict[str, Any]]


def event_time(article: Article) -> float:
    """When the story happened, for expiry: its publication time, else when it was fetched."""
    for stamp in (article["published"], article["fetched_at"]):
        if stamp:
            try:
                return _epoch(utc_iso(stamp))
            except ValueError:
                continue
    return 0.0


def band_records(article: Article, fp: Fingerprint | None = None) -> tuple[str, list[tuple[str, BandRecord]]]:
    """The article's precedence rank and one (band key, record) per LSH band; `fp` is the fingerprint of
    its text when it is known already (computed where it was extracted)."""
    fp = fp if fp is not None else fingerprint(article["text"])
    rank = precedence_rank(article)
    signature, when = fp.encode(), event_time(article)
    records = [
        (
            key,
            BandRecord(
                id=article["id"],
                rank=rank,
                hash=article["content_hash"],
                sig=signature,
                n=fp.shingles,
                t=when,
                band=band,
            ),
        )
        for band, key in enumerate(band_keys(fp))
    ]
    return rank, records


def bands_by_partition(
    bands: list[tuple[str, BandRecord]], partitions: int
) -> list[tuple[int, str, BandRecord]]:
    """The article's bands grouped by the partition their key belongs to, one record per partition:
    (partition, first band key, record whose `bands`/`keys` list every band of that partition).

    One message per partition instead of one per band: with 8 partitions an article costs 8 index
    events and 8 join messages instead of 32 of each, and per-event overhead is what bounds the stream.
    """
    grouped: dict[int, list[tuple[str, BandRecord]]] = {}
    for key, record in bands:
        grouped.setdefault(partition_of(key.encode(), partitions), []).append((key, record))
    out: list[tuple[int, str, BandRecord]] = []
    for partition, members in sorted(grouped.items()):
        first_key, first = members[0]
        record = BandRecord(**first)
        record["bands"] = [member["band"] for _, member in members]
        record["keys"] = [key for key, _ in members]
        out.append((partition, first_key, record))
    return out


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2, as aiokafka and the Java client) gives a key."""
    hashed: int = murmur2(key)
    return (hashed & 0x7FFFFFFF) % partitions


def band_members(record: BandRecord) -> list[tuple[str | None, BandRecord]]:
    """The single-band records a (possibly grouped) band message stands for, with their bucket keys
    (None for an ungrouped record: its message key is the bucket)."""
    if "bands" not in record:
        return [(None, record)]
    singles: list[tuple[str | None, BandRecord]] = []
    for band, key in zip(record["bands"], record["keys"], strict=True):
        single = BandRecord(
            id=record["id"],
            rank=record["rank"],
            hash=record["hash"],
            sig=record["sig"],
            n=record["n"],
            t=record["t"],
            band=band,
        )
        singles.append((key, single))
    return singles


def match_members(
    members: list[BucketMember],
    incoming: BandRecord,
    mine: StoredSignature,
    signature_of: Callable[[str], StoredSignature | None],
    *,
    window_s: float,
    max_entries: int,
) -> tuple[list[dict[str, Any]], list[BucketMember]]:
    """Verified copies of the incoming article among a bucket's members, and the bucket afterwards.

    `mine` is the incoming article's stored signature, `signature_of` finds a member's. Members older than
    the window (in event time, relative to the incoming article) are dropped, and so are members whose
    signature a sweep has removed; the article itself is never its own match, and is kept once however
    often it is replayed. An exact copy is reported with the incoming article's content hash, a near copy
    with the start of its own (the join only compares it with the article's).
    """
    horizon = incoming["t"] - window_s
    own_hash = hash_prefix(incoming["hash"])
    kept: list[BucketMember] = []
    matches = []
    present = False
    for member in unexpired(members, horizon):
        if member.id == incoming["id"]:
            kept.append(member)
            present = True
            continue
        signature = signature_of(member.id)
        if signature is None:
            continue
        kept.append(member)
        if member.hash == own_hash:
            matches.append(_match(member, incoming["hash"], 1.0))
            continue
        measured = b_bit_similarity(mine.values, mine.shingles, signature.values, signature.shingles)
        if measured.near_duplicate:
            matches.append(_match(member, member.hash, max(measured.jaccard, measured.containment)))
    if not present:
        kept.append(bucket_member(incoming["rank"], incoming["t"], incoming["hash"]))
    return matches, _capped(kept, max_entries)


def match_bucket(
    members: list[BandRecord], incoming: BandRecord, *, window_s: float, max_entries: int
) -> tuple[list[dict[str, Any]], list[BandRecord]]:
    """`match_members` for a bucket held in memory as whole band records (the offline run): the same
    decisions, with each member's own record and content hash."""
    records = {record["id"]: record for record in members}
    records.setdefault(incoming["id"], incoming)
    signatures: dict[str, StoredSignature] = {}

    def signature_of(article_id: str) -> StoredSignature:
        if article_id not in signatures:
            record = records[article_id]
            signatures[article_id] = stored_signature_of(record["sig"], record["n"], record["t"])
        return signatures[article_id]

    mine = stored_signature_of(incoming["sig"], incoming["n"], incoming["t"])
    compact = [bucket_member(record["rank"], record["t"], record["hash"]) for record in members]
    matches, kept = match_members(
        compact, incoming, mine, signature_of, window_s=window_s, max_entries=max_entries
    )
    for match in matches:
        match["hash"] = records[match["id"]]["hash"]
    return matches, [records[member.id] for member in kept]


def _capped(members: list[BucketMember], max_entries: int) -> list[BucketMember]:
    """The newest members, but always the most canonical one: a story copied by more sites than a bucket
    holds must not lose its original, or later copies would start a cluster of their own."""
    if len(members) <= max_entries:
        return members
    best = min(members, key=lambda member: member.rank)
    newest = (
        [member for member in members if member is not best][-(max_entries - 1) :] if max_entries > 1 else []
    )
    return [best, *newest]


def new_pending() -> PendingJoin:
    return PendingJoin(article=None, rank="", bands=[], matches={})


def absorb(pending: PendingJoin, message: dict[str, Any]) -> PendingJoin:
    """Fold an article, band or canonical-copy message into what the join holds for that article."""
    if message["kind"] == "article":
        pending["article"] = message["article"]
        pending["rank"] = message["rank"]
        return pending
    if message["kind"] == "canonical":
        _keep_best(pending["matches"], message["match"])
        return pending
    if message["kind"] not in ("band", "bands"):
        return pending
    for band in message["bands"] if message["kind"] == "bands" else [message["band"]]:
        if band not in pending["bands"]:
            pending["bands"].append(band)
    for match in message["matches"]:
        _keep_best(pending["matches"], match)
    return pending


def later_copies(pending: PendingJoin) -> list[str]:
    """Matches that rank after the article: if it is canonical, they are its copies."""
    return sorted(m["id"] for m in pending["matches"].values() if m["rank"] > pending["rank"])


class Settled(TypedDict):
    """A decided article kept for a while, so a canonical copy that arrives late can still correct it."""

    record: EnrichedArticle
    canonical_rank: str
    later: list[str]
    expires: float


def settled(record: EnrichedArticle, pending: PendingJoin, canonical_rank: str, expires: float) -> Settled:
    return Settled(record=record, canonical_rank=canonical_rank, later=later_copies(pending), expires=expires)


def canonical_message(record: EnrichedArticle, rank: str, similarity: float) -> dict[str, Any]:
    """Tells a later-ranked copy which article is its canonical copy."""
    match = {"id": record["id"], "rank": rank, "hash": record["content_hash"], "similarity": similarity}
    return {"kind": "canonical", "match": match}


def corrected(entry: Settled, match: dict[str, Any]) -> EnrichedArticle | None:
    """The article's record re-pointed at an earlier-ranked canonical copy, or None if it already has one
    at least as early."""
    if match["rank"] >= entry["canonical_rank"] or match["id"] == entry["record"]["id"]:
        return None
    record = entry["record"]
    exact = match["hash"] == record["content_hash"]
    verdict = DedupVerdict(
        content_hash=record["content_hash"],
        cluster_id=match["id"],
        duplicate_of=match["id"],
        similarity=1.0 if exact else round(float(match["similarity"]), 4),
        method="exact" if exact else "near",
    )
    return EnrichedArticle(**{**record, "dedup": verdict})


def _keep_best(matches: dict[str, dict[str, Any]], match: dict[str, Any]) -> None:
    known = matches.get(match["id"])
    if known is None or match["similarity"] > known["similarity"]:
        matches[match["id"]] = match


def verdict_if_complete(pending: PendingJoin) -> DedupVerdict | None:
    """The article's verdict once it and all of its bands have arrived, else None."""
    article = pending["article"]
    if article is None or len(pending["bands"]) < BANDS:
        return None
    matches = [
        Match(id=m["id"], rank=m["rank"], content_hash=m["hash"], similarity=m["similarity"])
        for m in pending["matches"].values()
    ]
    return cluster_verdict(article, pending["rank"], matches)


def _match(member: BucketMember, content_hash: str, measured: float) -> dict[str, Any]:
    return {"id": member.id, "rank": member.rank, "hash": content_hash, "similarity": measured}


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()
