"""Run a bench's smoke mode in a subprocess and hand back its output and JSON (speed is never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parents[1]


def run_smoke(module: str, result: Path, *extra: str, timeout_s: float = 120) -> tuple[str, dict[str, Any]]:
    completed = subprocess.run(
        [sys.executable, "-m", f"bench.{module}", "--smoke", "--json", str(result), *extra],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-3000:]
    data: dict[str, Any] = json.loads(result.read_text())
    return completed.stdout, data
