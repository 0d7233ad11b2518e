"""The crawl throughput bench runs end to end on a tiny site. Speed is never asserted here: the bench
reports ratios against a baseline measured in the same run, and this test only checks that it works."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.settings import Settings
from tests.bench_helpers import run_smoke

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

PROJECT_DIR = Path(__file__).resolve().parents[2]


def test_crawl_throughput_smoke(kafka_broker: Settings, tmp_path: Path) -> None:
    results = tmp_path / "crawl_throughput.json"
    completed = subprocess.run(
        [sys.executable, "-m", "bench.crawl_throughput", "--smoke", "--json", str(results)],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr

    table = completed.stdout
    for row in (
        "baseline #1",
        "crawler (whole call)",
        "baseline #2",
        "ratio (crawler whole call / best baseline)",
    ):
        assert row in table, table

    data = json.loads(results.read_text())
    assert data["benchmark"] == "crawl_throughput"
    assert data["smoke"] is True
    assert data["params"]["pages"] == 40
    assert data["crawler"]["outcomes"].get("fetched") == 40
    assert data["verified"] == {
        "raw_records": 40,
        "distinct_keys": 40,
        "expected": 40,
        "missing": 0,
        "unexpected": 0,
        "ok": True,
    }
    assert len(data["baseline"]["runs"]) == 2
    assert data["baseline"]["pages_per_s"] > 0
    assert data["ratio"] > 0
    assert data["machine"]["cores"] >= 1


def test_replay_rate_smoke(kafka_broker: Settings, tmp_path: Path) -> None:
    stdout, data = run_smoke("replay_rate", tmp_path / "replay_rate.json", timeout_s=110)
    assert "replay / live:" in stdout
    assert [run["records"] for run in data["runs"]] == [20, 20]


def test_pipeline_throughput_smoke(kafka_broker: Settings, tmp_path: Path) -> None:
    stdout, data = run_smoke("pipeline_throughput", tmp_path / "pipeline_throughput.json", timeout_s=110)
    assert "pipeline / limit:" in stdout
    assert data["limit"]["pages"] == 20
    assert [run["articles"] for run in data["runs"]] == [20, 20]
    assert all(run["kafka_bytes_per_page"] > 0 for run in data["runs"])
