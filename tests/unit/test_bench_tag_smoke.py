"""The tagger bench runs end to end on a tiny input: it finishes, prints its tables and writes JSON."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench_helpers import run_smoke


@pytest.mark.timeout(120)
def test_tag_throughput_smoke(tmp_path: Path) -> None:
    stdout, data = run_smoke("tag_throughput", tmp_path / "tag.json")
    assert "x naive baseline" in stdout
    assert data["name"] == "tag_throughput"
    assert {(run["tagger"], run["topics"]) for run in data["runs"]} == {
        ("naive baseline", 3),
        ("project tagger", 3),
        ("naive baseline", 30),
        ("project tagger", 30),
    }
    assert set(data["quality"]["project tagger"]) == {"us-russia", "iraq-strikes", "india-defence"}
