"""The archive bench runs end to end on 20 pages: WARC writing against plain gzip, replay from WARC against
replay from memory. Rates are never asserted: the bench reports them against its baselines."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench_helpers import run_smoke

pytestmark = pytest.mark.timeout(400)


def test_archive_rate_smoke(tmp_path: Path) -> None:
    stdout, data = run_smoke("archive_rate", tmp_path / "archive_rate.json", timeout_s=380)
    for row in ("baseline #1", "archive #2", "read_archive + stages", "archive / plain gzip"):
        assert row in stdout
    assert data["name"] == "archive_rate"
    assert data["smoke"] is True
    assert data["params"]["pages"] == 20
    assert [run["run"] for run in data["write"]["runs"]] == [
        "baseline #1",
        "archive #1",
        "baseline #2",
        "archive #2",
    ]
    assert all(run["mb_in_per_s"] > 0 and run["bytes_out"] > 0 for run in data["write"]["runs"])
    assert data["replay"]["runs"][0]["pages"] == 20, "every page read back from the archive"
    assert data["replay"]["enriched"]["warc"] == data["replay"]["enriched"]["memory"] > 0
    assert data["machine"]["cores"] >= 1
