"""The band index's stored state: compact bucket members, b-bit signatures stored once per article and
partition, matching against them, and what a sweep drops."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import orjson
import pytest

from pipeline.dedup.index import BandRecord, band_records, match_bucket, match_members
from pipeline.dedup.near import NUM_PERM, b_bit_jaccard, b_bit_similarity, fingerprint, low_bits, similarity
from pipeline.dedup.state import (
    HASH_PREFIX_CHARS,
    BucketMember,
    StoredSignature,
    article_id_of,
    bucket_member,
    bucket_members,
    decode_signature,
    encode_signature,
    hash_prefix,
    legacy_signatures,
    signature_reader,
    signature_time,
    stored_bucket,
    stored_signature_of,
    swept_buckets,
    swept_signatures,
)
from pipeline.demo.content import GAS_TRANSIT, SEED_ARTICLE
from tests.unit.test_dedup_index import CAP, WINDOW, article, band

SEED_TEXT = "\n".join(SEED_ARTICLE.body_paragraphs)
SHORTENED = "\n".join(SEED_ARTICLE.body_paragraphs[:-1])
OTHER_TEXT = "\n".join(GAS_TRANSIT.body_paragraphs)


def signature(record: BandRecord) -> StoredSignature:
    return stored_signature_of(record["sig"], record["n"], record["t"])


def member(record: BandRecord, t: float | None = None) -> BucketMember:
    return bucket_member(record["rank"], record["t"] if t is None else t, record["hash"])


def random_values(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 2**32, size=NUM_PERM, dtype=np.uint64)


# --- compact members --------------------------------------------------------------------------------


class TestBucketMembers:
    def test_a_member_keeps_rank_time_and_the_start_of_the_hash(self) -> None:
        record = band(article("seed"))
        compact = member(record)
        assert compact == BucketMember(record["rank"], record["t"], record["hash"][7 : 7 + HASH_PREFIX_CHARS])
        assert compact.id == "seed"

    def test_the_id_is_the_end_of_the_rank_even_with_a_bar_in_it(self) -> None:
        assert article_id_of("2019-12-30T16:30:00+00:00|1|feed|item|7") == "feed|item|7"

    def test_hash_prefix_of_a_hash_without_an_algorithm(self) -> None:
        assert hash_prefix("sha256:" + "ab" * 32) == "ab" * (HASH_PREFIX_CHARS // 2)
        assert hash_prefix("0123456789abcdef") == "0123456789ab"

    def test_stored_form_is_a_json_array_per_member_and_reads_back(self) -> None:
        members = [member(band(article("seed"))), member(band(article("copy")))]
        stored = stored_bucket(members)
        assert orjson.loads(orjson.dumps(stored)) == [list(m) for m in members]
        assert bucket_members(orjson.loads(orjson.dumps(stored))) == members
        assert bucket_members(None) == []

    def test_a_member_is_a_tenth_of_a_whole_band_record(self) -> None:
        record = band(article("0" * 32))
        whole = len(orjson.dumps(record))
        compact = len(orjson.dumps(stored_bucket([member(record)])[0]))
        assert compact * 8 < whole

    def test_members_written_before_compaction_are_read_with_their_signatures(self) -> None:
        old, new = band(article("old")), band(article("new"))
        stored: list[Any] = [dict(old), stored_bucket([member(new)])[0]]
        assert bucket_members(stored) == [member(old), member(new)]
        legacy = legacy_signatures(stored)
        assert list(legacy) == ["old"]
        assert np.array_equal(legacy["old"].values, signature(old).values)


# --- stored signatures ------------------------------------------------------------------------------


class TestStoredSignatures:
    def test_round_trip_keeps_the_low_16_bits_time_and_shingles(self) -> None:
        record = band(article("seed"))
        stored = signature(record)
        raw = encode_signature(stored)
        assert len(raw) == 268
        decoded = decode_signature(raw)
        full = fingerprint(SEED_TEXT).hashvalues
        assert np.array_equal(decoded.values, (full & 0xFFFF).astype(np.uint16))
        assert (decoded.shingles, decoded.t) == (record["n"], record["t"])
        assert signature_time(raw) == record["t"]

    def test_a_value_of_another_length_is_rejected(self) -> None:
        with pytest.raises(ValueError, match="268 bytes"):
            decode_signature(b"\x00" * 100)

    def test_the_reader_looks_each_id_up_once(self) -> None:
        stored = signature(band(article("seed")))
        reads: list[str] = []

        def read(article_id: str) -> bytes | None:
            reads.append(article_id)
            return encode_signature(stored) if article_id == "seed" else None

        mine = signature(band(article("mine")))
        signature_of = signature_reader(read, {"mine": mine})
        for _ in range(3):
            found = signature_of("seed")
            assert found is not None
            assert np.array_equal(found.values, stored.values)
            assert signature_of("gone") is None
            assert signature_of("mine") is mine
        assert reads == ["seed", "gone"]


# --- b-bit similarity -------------------------------------------------------------------------------


class TestBBitSimilarity:
    @pytest.mark.parametrize("text", [SEED_TEXT, SHORTENED, OTHER_TEXT])
    def test_16_bits_give_the_full_width_estimate(self, text: str) -> None:
        a, b = fingerprint(SEED_TEXT), fingerprint(text)
        measured = b_bit_similarity(low_bits(a.hashvalues), a.shingles, low_bits(b.hashvalues), b.shingles)
        assert measured == similarity(a, b)

    def test_identical_signatures_estimate_one_at_any_width(self) -> None:
        values = random_values(np.random.default_rng(1))
        for bits in (2, 4, 8, 16):
            assert b_bit_jaccard(low_bits(values, bits), low_bits(values, bits), bits) == 1.0

    def test_chance_agreement_of_few_bits_is_corrected(self) -> None:
        # With 4 bits, one value in 16 agrees by chance: about 8 of 128 positions of unrelated signatures.
        rng = np.random.default_rng(7)
        raw, corrected = [], []
        for _ in range(200):
            a, b = low_bits(random_values(rng), 4), low_bits(random_values(rng), 4)
            raw.append(np.count_nonzero(a == b) / NUM_PERM)
            corrected.append(b_bit_jaccard(a, b, 4))
        assert 0.05 < np.mean(raw) < 0.075
        assert np.mean(corrected) < 0.01

    def test_corrected_estimate_of_half_shared_values_at_4_bits(self) -> None:
        rng = np.random.default_rng(3)
        estimates = []
        for _ in range(200):
            a = random_values(rng)
            b = a.copy()
            b[rng.choice(NUM_PERM, NUM_PERM // 2, replace=False)] = random_values(rng)[: NUM_PERM // 2]
            estimates.append(b_bit_jaccard(low_bits(a, 4), low_bits(b, 4), 4))
        assert abs(np.mean(estimates) - 0.5) < 0.01


# --- matching against compact buckets ---------------------------------------------------------------


def matched(
    members: list[BandRecord], incoming: BandRecord, *, swept: tuple[str, ...] = (), max_entries: int = CAP
) -> tuple[list[dict[str, Any]], list[BucketMember]]:
    signatures = {record["id"]: signature(record) for record in members if record["id"] not in swept}
    return match_members(
        [member(record) for record in members],
        incoming,
        signature(incoming),
        signatures.get,
        window_s=WINDOW,
        max_entries=max_entries,
    )


class TestMatchMembers:
    def test_an_exact_copy_is_reported_with_the_incoming_hash(self) -> None:
        seed, copy = band(article("seed")), band(article("copy"))
        matches, members = matched([seed], copy)
        assert matches == [{"id": "seed", "rank": seed["rank"], "hash": copy["hash"], "similarity": 1.0}]
        assert members == [member(seed), member(copy)]

    def test_a_near_copy_is_reported_with_the_start_of_its_hash(self) -> None:
        seed, cut = band(article("seed")), band(article("cut", SHORTENED))
        matches, _ = matched([seed], cut)
        measured = similarity(fingerprint(SHORTENED), fingerprint(SEED_TEXT))
        assert matches == [
            {
                "id": "seed",
                "rank": seed["rank"],
                "hash": hash_prefix(seed["hash"]),
                "similarity": max(measured.jaccard, measured.containment),
            }
        ]
        assert matches[0]["hash"] != cut["hash"]  # the join never takes it for an exact copy

    def test_a_member_whose_signature_was_swept_is_dropped(self) -> None:
        seed, other, copy = band(article("seed")), band(article("gas", OTHER_TEXT)), band(article("copy"))
        matches, members = matched([seed, other], copy, swept=("seed",))
        assert matches == []
        assert [m.id for m in members] == ["gas", "copy"]

    def test_replays_keep_one_member_and_expired_members_go(self) -> None:
        seed, copy = band(article("seed")), band(article("copy"))
        stale = BandRecord(**{**band(article("stale", OTHER_TEXT)), "t": copy["t"] - WINDOW - 1})
        _, members = matched([stale, seed, copy], copy)
        assert [m.id for m in members] == ["seed", "copy"]

    def test_the_cap_keeps_the_most_canonical_member(self) -> None:
        records = [band(article(f"copy-{index}")) for index in range(5)]
        _, members = matched(records, band(article("latest")), max_entries=3)
        assert [m.id for m in members] == ["copy-0", "copy-4", "latest"]

    def test_whole_records_and_compact_members_give_the_same_matches(self) -> None:
        texts = [SEED_TEXT, SHORTENED, OTHER_TEXT, SEED_TEXT + "\nUPDATE: talks continue next week."]
        records = [band(article(f"a{index}", text)) for index, text in enumerate(texts)]
        incoming = band(article("incoming", SEED_TEXT + "\n(With inputs from agencies)"))
        whole, _ = match_bucket(records, incoming, window_s=WINDOW, max_entries=CAP)
        compact, _ = matched(records, incoming)
        assert [(m["id"], m["similarity"]) for m in whole] == [(m["id"], m["similarity"]) for m in compact]
        assert len(compact) == 3


# --- sweeps -----------------------------------------------------------------------------------------


class TestSweeps:
    HORIZON = 1000.0

    def test_buckets_lose_old_members_and_empty_buckets_are_deleted(self) -> None:
        old, new = BucketMember("r|0|old", 999.0, "aa"), BucketMember("r|0|new", 1000.0, "bb")
        legacy_new = {"id": "legacy", "rank": "r|0|legacy", "t": 1500.0, "hash": "sha256:cc"}
        result = swept_buckets(
            [
                ("00:mixed", stored_bucket([old, new])),
                ("01:old", stored_bucket([old])),
                ("02:new", stored_bucket([new])),
                ("03:legacy", [legacy_new, *stored_bucket([old])]),
                ("04:gone", None),
            ],
            self.HORIZON,
        )
        assert result["rewrite"] == {"00:mixed": stored_bucket([new]), "03:legacy": [legacy_new]}
        assert result["delete"] == ["01:old", "04:gone"]

    def test_signatures_older_than_the_horizon_are_deleted(self) -> None:
        values = np.zeros(NUM_PERM, dtype=np.uint16)
        entries = [
            ("old", encode_signature(StoredSignature(values, 40, 999.5))),
            ("edge", encode_signature(StoredSignature(values, 40, 1000.0))),
            ("new", encode_signature(StoredSignature(values, 40, 2000.0))),
        ]
        assert swept_signatures(entries, self.HORIZON) == {"rewrite": {}, "delete": ["old"]}

    def test_a_bucket_after_a_sweep_matches_like_one_that_never_had_the_old_members(self) -> None:
        rng = random.Random(5)
        incoming = band(article("incoming"))
        now = incoming["t"]
        records = [
            BandRecord(**{**band(article(f"m{index}", SEED_TEXT if index % 2 else OTHER_TEXT)), "t": t})
            for index, t in enumerate(now - rng.uniform(0, 2 * WINDOW) for _ in range(12))
        ]
        horizon = now - WINDOW
        stored = stored_bucket(member(record) for record in records)
        swept = swept_buckets([("00:k", stored)], horizon)
        after = bucket_members(swept["rewrite"].get("00:k", stored))
        fresh = [record for record in records if record["t"] >= horizon]
        signatures = {record["id"]: signature(record) for record in fresh}
        assert after == [member(record) for record in fresh]
        assert match_members(
            after, incoming, signature(incoming), signatures.get, window_s=WINDOW, max_entries=CAP
        ) == matched(fresh, incoming)


def test_stored_state_per_article_is_a_fraction_of_whole_records() -> None:
    """32 compact members and one signature per partition (at most 8) against 32 whole band records."""
    item = article("0123456789abcdef0123456789abcdef")
    _, bands = band_records(item)
    whole = sum(len(key) + len(orjson.dumps([record])) for key, record in bands)
    compact = sum(len(key) + len(orjson.dumps(stored_bucket([member(record)]))) for key, record in bands)
    stored = compact + 8 * (len(item["id"]) + len(encode_signature(signature(bands[0][1]))))
    assert stored * 4 < whole
