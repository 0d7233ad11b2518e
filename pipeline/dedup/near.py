"""Near-duplicate fingerprints: MinHash over word shingles of the normalised body, LSH band keys, and the
similarity check that turns an LSH candidate into a verdict."""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

import numpy as np
from datasketch import MinHash

from pipeline.dedup.fingerprint import normalise_body

NUM_PERM = 128
SHINGLE_WORDS = 5
# 32 bands of 4 rows make pairs with Jaccard ≈ 0.42 candidates half the time and ≥ 0.6 almost always;
# the similarity check below, not LSH, decides.
BANDS = 32
ROWS = NUM_PERM // BANDS
SEED = 1
# A copy with boilerplate swapped, a paragraph dropped or an update appended stays above these; separate
# write-ups of the same event and follow-ups that quote a paragraph or two stay far below.
MIN_JACCARD = 0.5
MIN_CONTAINMENT = 0.8
MIN_SHINGLES_FOR_CONTAINMENT = 30
# The index keeps 16 of each value's 32 bits (b-bit MinHash): half the bytes, the same verdicts.
STORED_BITS = 16


@dataclass(frozen=True)
class Fingerprint:
    """A body's MinHash signature and its number of distinct shingles."""

    hashvalues: np.ndarray
    shingles: int

    def encode(self) -> str:
        """Compact text form for records and table values."""
        return base64.b64encode(self.hashvalues.astype("<u4").tobytes()).decode("ascii")

    @classmethod
    def decode(cls, encoded: str, shingles: int) -> Fingerprint:
        values = np.frombuffer(base64.b64decode(encoded), dtype="<u4").astype(np.uint64)
        return cls(values, shingles)


@dataclass(frozen=True)
class Similarity:
    """Estimated Jaccard of two bodies and containment of the smaller in the larger."""

    jaccard: float
    containment: float

    @property
    def near_duplicate(self) -> bool:
        return self.jaccard >= MIN_JACCARD or self.containment >= MIN_CONTAINMENT


def shingles(text: str) -> set[bytes]:
    words = normalise_body(text).split()
    if len(words) < SHINGLE_WORDS:
        return {" ".join(words).encode()} if words else set()
    return {" ".join(words[i : i + SHINGLE_WORDS]).encode() for i in range(len(words) - SHINGLE_WORDS + 1)}


def fingerprint(text: str) -> Fingerprint:
    """The MinHash of a body's 5-word shingles (after boilerplate removal and normalisation)."""
    found = shingles(text)
    minhash = MinHash(num_perm=NUM_PERM, seed=SEED)
    if found:
        minhash.update_batch(list(found))
    return Fingerprint(np.asarray(minhash.hashvalues, dtype=np.uint64), len(found))


def fingerprint_header(fp: Fingerprint) -> bytes:
    """The fingerprint as a Kafka header value, so the stage after extraction need not compute it again."""
    return f"{fp.encode()}:{fp.shingles}".encode("ascii")


def fingerprint_from_header(value: bytes | None) -> Fingerprint | None:
    """The fingerprint a header carries; None when there is none or it is not one (then it is computed)."""
    if not value:
        return None
    try:
        signature, shingles = value.decode("ascii").split(":")
        return checked_fingerprint(signature, int(shingles))
    except ValueError:  # UnicodeDecodeError is one
        return None


def checked_fingerprint(encoded: str, shingles: int) -> Fingerprint | None:
    """`Fingerprint.decode` of a signature from a record, or None unless it is NUM_PERM values."""
    try:
        fp = Fingerprint.decode(encoded, shingles)
    except (ValueError, binascii.Error):
        return None
    return fp if len(fp.hashvalues) == NUM_PERM and shingles >= 0 else None


def band_keys(fp: Fingerprint) -> list[str]:
    """One key per LSH band: articles sharing any key are candidates."""
    values = fp.hashvalues.astype("<u4")
    keys = []
    for band in range(BANDS):
        rows = values[band * ROWS : (band + 1) * ROWS].tobytes()
        keys.append(f"{band:02d}:{hashlib.blake2b(rows, digest_size=8).hexdigest()}")
    return keys


def similarity(a: Fingerprint, b: Fingerprint) -> Similarity:
    jaccard = float(np.count_nonzero(a.hashvalues == b.hashvalues)) / NUM_PERM
    return estimated(jaccard, a.shingles, b.shingles)


def low_bits(values: np.ndarray, bits: int = STORED_BITS) -> np.ndarray:
    """The low `bits` of each MinHash value (b-bit MinHash): what the index stores per article."""
    kept = values.astype(np.uint64) & np.uint64((1 << bits) - 1)
    return kept.astype(np.uint16 if bits <= 16 else np.uint32)


def b_bit_jaccard(a: np.ndarray, b: np.ndarray, bits: int = STORED_BITS) -> float:
    """Jaccard estimated from two signatures cut to their low `bits`, corrected for chance agreement.

    Two different values still agree in their low bits with probability 2^-bits, so the equal positions
    overcount the positions whose full values agree; the estimate of those is (equal - n·c) / (1 - c).
    It is a whole number of positions, so it is rounded: the estimate then stays on the 1/128 grid of a
    full-width signature (and of MIN_JACCARD), and at 16 bits, where fewer than 0.002 chance agreements
    are expected among 128 positions, it is the full-width estimate unless a chance agreement happened.
    """
    equal = int(np.count_nonzero(a == b))
    chance = 2.0**-bits
    agreeing = round((equal - NUM_PERM * chance) / (1.0 - chance))
    return max(0, min(NUM_PERM, agreeing)) / NUM_PERM


def b_bit_similarity(a: np.ndarray, a_shingles: int, b: np.ndarray, b_shingles: int) -> Similarity:
    """`similarity` of two stored (b-bit) signatures."""
    return estimated(b_bit_jaccard(a, b), a_shingles, b_shingles)


def estimated(jaccard: float, a_shingles: int, b_shingles: int) -> Similarity:
    """The Similarity of two bodies of these shingle counts whose estimated Jaccard is `jaccard`."""
    smaller = min(a_shingles, b_shingles)
    if smaller < MIN_SHINGLES_FOR_CONTAINMENT:
        return Similarity(jaccard, 0.0)
    shared = jaccard * (a_shingles + b_shingles) / (1.0 + jaccard)
    return Similarity(jaccard, min(1.0, shared / smaller))
