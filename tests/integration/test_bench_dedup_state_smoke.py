"""The dedup state bench runs end to end on 2,000 articles: a worker with empty state, then one on filled
tables. Memory, disk and time are never asserted: the bench reports them against its baseline."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.settings import Settings
from tests.bench_helpers import run_smoke

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def test_dedup_state_smoke(kafka_broker: Settings, tmp_path: Path) -> None:
    stdout, data = run_smoke("dedup_state", tmp_path / "dedup_state.json", timeout_s=280)
    assert "bytes per article of dedup state" in stdout
    assert data["smoke"] is True
    assert data["params"]["articles"] == 2000
    baseline, filled = data["runs"]
    assert (baseline["articles_in_state"], filled["articles_in_state"]) == (0, 2000)
    assert filled["fill"]["entries_written"]["buckets"] == 2000 * 32
    for run in data["runs"]:
        assert run["pushed"]["enriched"] == run["pushed"]["articles"] == 10
        assert run["memory"]["worker_peak_mb"] > 0
        assert run["worker_exit_code"] == 0
    # Every pushed copy is found in the filled index, none without it: the worker read that state.
    assert (baseline["pushed"]["copies_found"], filled["pushed"]["copies_found"]) == (0, 5)
    sizes = data["bytes_per_article"]
    assert sizes["before"] > sizes["after"] > 0
    assert filled["disk_after_bytes"] > baseline["disk_after_bytes"]
    assert data["machine"]["cores"] >= 1
