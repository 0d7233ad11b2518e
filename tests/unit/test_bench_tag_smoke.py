"""The tagger bench runs end to end on a tiny input: it finishes, prints its tables and writes JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(120)
def test_tag_throughput_smoke(tmp_path: Path) -> None:
    result = tmp_path / "tag.json"
    completed = subprocess.run(
        [sys.executable, "-m", "bench.tag_throughput", "--smoke", "--json", str(result)],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "x naive baseline" in completed.stdout
    data = json.loads(result.read_text())
    assert data["name"] == "tag_throughput"
    assert {(run["tagger"], run["topics"]) for run in data["runs"]} == {
        ("naive baseline", 3),
        ("project tagger", 3),
        ("naive baseline", 30),
        ("project tagger", 30),
    }
    assert set(data["quality"]["project tagger"]) == {"us-russia", "iraq-strikes", "india-defence"}
