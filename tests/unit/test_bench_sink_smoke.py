"""The sink bench runs on a tiny input (SQLite only): it finishes, prints its table and writes JSON."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench_helpers import run_smoke


@pytest.mark.timeout(120)
def test_sink_throughput_smoke(tmp_path: Path) -> None:
    stdout, data = run_smoke("sink_throughput", tmp_path / "sink.json")
    assert "x baseline" in stdout
    assert [run["store"] for run in data["runs"]] == ["sqlite"] * 3
    assert all(run["records"] == 200 for run in data["runs"])
