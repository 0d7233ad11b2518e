"""The news-please peer bench runs end to end on 20 corpus pages. On a fresh machine it first installs
news-please into its own venv (about a minute; the timeout allows for a slow package index). Rates are never
asserted: only that both sides ran on every page and that the table and the result file hold the figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

PROJECT_DIR = Path(__file__).resolve().parents[2]


def test_peer_newsplease_smoke(tmp_path: Path) -> None:
    results = tmp_path / "peer_newsplease.json"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.peer_newsplease",
            "--smoke",
            "--peer-processes",
            "1,2",
            "--work-dir",
            str(tmp_path / "work"),
            "--json",
            str(results),
        ],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=880,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr[-5000:]

    table = completed.stdout
    for row in (
        "newsfeed extract stage, one core",
        "newsfeed extract stage, 2 workers",
        "news-please CLI, 1 process",
        "news-please CLI, 2 processes",
        "newsfeed 2 workers / news-please 1 process",
        "newsfeed 2 workers / news-please 2 processes",
        "quality by layout",
    ):
        assert row in table, table

    data = json.loads(results.read_text())
    assert data["name"] == "peer_newsplease"
    assert data["smoke"] is True
    assert data["pages"] == 20
    assert data["target_ratio"] == 5.0

    ours = data["ours"]
    assert ours["stage"] == "pipeline.extract.extractor.extract_article"
    assert ours["workers"] == 2
    assert ours["pages_per_s"] > 0
    assert ours["one_core_pages_per_s"] > 0
    assert ours["quality"]["pages"] == 20
    assert 0 < ours["quality"]["f1_micro"] <= 1
    assert all(run["same_output"] in (None, True) for run in ours["runs"])

    peer = data["newsplease"]
    assert peer["version"] == "1.6.16"
    assert peer["mode"] == "cli"
    assert peer["crawler"] == "SitemapCrawler"
    assert set(peer["by_processes"]) == {"1", "2"}
    for processes, entry in peer["by_processes"].items():
        assert entry["written"] == 20
        assert entry["pages_per_s"] > 0
        assert entry["quality"]["pages"] == 20
        assert entry["quality"]["no_text"] == 0
        assert 0 < entry["quality"]["f1_micro"] <= 1
        (run,) = entry["runs"]
        assert run["processes"] == int(processes)
        assert run["exit_code"] == 0
        assert run["missing"] == 0
        assert run["blocked_connections"] == 0
        assert sum(origin["articles"] for origin in run["requests"].values()) == 20
        assert len(run["requests"]) == int(processes)

    comparisons = {item["peer_processes"]: item for item in data["comparisons"]}
    assert set(comparisons) == {1, 2}
    for item in comparisons.values():
        assert item["ratio"] is not None
        assert item["ratio"] > 0
        assert isinstance(item["speed_met"], bool)
        assert isinstance(item["quality_met"], bool)
    assert data["machine"]["cores"] >= 1
