"""Near-duplicate fingerprints: MinHash over word shingles of the normalised body, LSH band keys, and the
similarity check that turns an LSH candidate into a verdict."""

from __future__ import annotations

import base64
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
    smaller = min(a.shingles, b.shingles)
    if smaller < MIN_SHINGLES_FOR_CONTAINMENT:
        return Similarity(jaccard, 0.0)
    shared = jaccard * (a.shingles + b.shingles) / (1.0 + jaccard)
    return Similarity(jaccard, min(1.0, shared / smaller))
