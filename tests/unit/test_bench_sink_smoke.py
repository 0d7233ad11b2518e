"""The sink bench runs on a tiny input (SQLite only): it finishes, prints its table and writes JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(120)
def test_sink_throughput_smoke(tmp_path: Path) -> None:
    result = tmp_path / "sink.json"
    completed = subprocess.run(
        [sys.executable, "-m", "bench.sink_throughput", "--smoke", "--json", str(result)],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "x baseline" in completed.stdout
    data = json.loads(result.read_text())
    assert [run["store"] for run in data["runs"]] == ["sqlite"] * 3
    assert all(run["records"] == 200 for run in data["runs"])
