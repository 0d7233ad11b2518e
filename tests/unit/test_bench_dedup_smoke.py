"""The dedup index bench runs end to end on its smoke set: it finishes, prints its tables and writes JSON.

No score, rate or size is asserted: those are for people reading the bench output, not for tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(120)
def test_dedup_index_bench_smoke(tmp_path: Path) -> None:
    result = tmp_path / "dedup_index.json"
    completed = subprocess.run(
        [sys.executable, "-m", "bench.dedup_index", "--smoke", "--json", str(result)],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    for heading in ("quality", "throughput", "bytes per article"):
        assert heading in completed.stdout
    data = json.loads(result.read_text())
    assert data["name"] == "dedup_index"
    assert data["smoke"] is True
    assert data["parameters"]["articles"] == 2000
    assert {"synthetic", "corpus"} <= data["sets"].keys()
    for entry in data["sets"].values():
        quality, state, speed = entry["quality"], entry["state"], entry["throughput"]
        assert quality["expected_copies"] > 0
        assert 0 <= quality["found"] <= quality["expected_copies"]
        assert 0.0 <= quality["recall"] <= 1.0
        assert quality["precision"] is None or 0.0 <= quality["precision"] <= 1.0
        assert state["bucket_state_bytes_per_article"] > 0
        assert state["changelog_bytes_per_article"] > 0
        assert speed["articles_per_s"] > 0
        assert speed["fingerprint_articles_per_s"] > 0
    assert data["sets"]["synthetic"]["quality"]["kinds"]["copy"] > 0
