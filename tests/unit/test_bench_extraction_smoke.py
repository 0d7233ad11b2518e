"""The extraction benches run end to end on a tiny corpus: they finish, print their tables and write JSON.

Nothing here checks a score or a speed: those are for people reading the bench output, not for tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[2]
SHARES = ("f1_micro", "f1_macro", "precision_micro", "recall_micro", "title_share", "date_share")


def run_bench(module: str, result: Path, *extra: str) -> tuple[str, dict[str, Any]]:
    completed = subprocess.run(
        [sys.executable, "-m", f"bench.{module}", "--smoke", "--json", str(result), *extra],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    data: dict[str, Any] = json.loads(result.read_text())
    return completed.stdout, data


@pytest.mark.timeout(120)
def test_extraction_quality_smoke(tmp_path: Path) -> None:
    stdout, data = run_bench("extraction_quality", tmp_path / "quality.json")
    assert "F1 micro" in stdout
    assert "corpus set: 20 pages" in stdout
    assert "demo set: 8 pages" in stdout
    assert data["name"] == "extraction_quality"
    assert data["smoke"] is True
    for set_name, pages in (("corpus", 20), ("demo", 8)):
        configs = data["sets"][set_name]
        assert {"project", "trafilatura-default", "trafilatura-fast"} <= configs.keys()
        for entry in configs.values():
            summary = entry["summary"]
            assert summary["pages"] == pages
            for key in SHARES:
                assert 0.0 <= summary[key] <= 1.0
            assert summary["pages_per_s"] > 0
    assert "diagnosis" in data["sets"]["corpus"]["project"]


@pytest.mark.timeout(120)
def test_extraction_speed_smoke(tmp_path: Path) -> None:
    stdout, data = run_bench("extraction_speed", tmp_path / "speed.json")
    assert "speed-up" in stdout
    assert data["name"] == "extraction_speed"
    assert data["mp_context"] == "forkserver"
    assert data["pages"] == 20
    for mode in ("stage", "fast"):
        result = data["modes"][mode]
        assert result["baseline_pages_per_s"] > 0
        assert result["speedup"] > 0
        pooled = [run for run in result["runs"] if run["chunksize"] is not None]
        assert pooled
        assert all(run["identical"] for run in pooled)
