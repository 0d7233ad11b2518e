"""An isolated pipeline run: its own topics, consumer group, state folder and worker process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from aiokafka.errors import KafkaError

from pipeline.ops.topics import admin_client, resolved_topics
from pipeline.settings import Settings


def isolated_overrides(run_id: str, state_dir: Path, partitions: int | None = None) -> dict[str, Any]:
    """Settings that give a run topic names, an app id and state nobody else uses."""
    topics: dict[str, Any] = {
        "frontier": f"{run_id}.frontier.v1",
        "crawl_state": f"{run_id}.crawl-state.v1",
        "raw_pages": f"{run_id}.raw-pages.v1",
        "articles": f"{run_id}.articles.v1",
        "dedup_bands": f"{run_id}.dedup-bands.v1",
        "dedup_join": f"{run_id}.dedup-join.v1",
        "enriched": f"{run_id}.enriched-articles.v1",
        "dead_letter": f"{run_id}.dead-letter.v1",
    }
    if partitions is not None:
        topics["partitions"] = partitions
    return {
        "topics": topics,
        # Tests run several workers side by side: no web server unless a test asks for one on its own port.
        "worker": {
            "app_id": f"newsfeed-{run_id}",
            "data_dir": str(state_dir / "faust"),
            "web_enabled": False,
        },
        "store": {
            "sqlite_path": str(state_dir / "newsfeed.sqlite3"),
            "jsonl_dir": str(state_dir / "jsonl"),
            "sink_group_id": f"newsfeed-sink-{run_id}",
        },
        "crawl": {"group_id": f"newsfeed-crawler-{run_id}", "state_dir": str(state_dir / "crawler")},
        "metrics": {"enabled": False},
    }


def with_overrides(settings: Settings, overrides: Mapping[str, Any]) -> Settings:
    """A copy of the settings with nested overrides applied (no environment re-read)."""
    return Settings.model_validate(_merge(settings.model_dump(), overrides))


def as_environment(overrides: Mapping[str, Any], prefix: str = "NEWSFEED_") -> dict[str, str]:
    """The same overrides as NEWSFEED_A__B variables, for child processes."""
    env: dict[str, str] = {}
    for key, value in overrides.items():
        name = f"{prefix}{key.upper()}"
        if isinstance(value, Mapping):
            env.update(as_environment(value, f"{name}__"))
        elif isinstance(value, str):
            env[name] = value
        else:
            # pydantic-settings parses complex values (lists, numbers, booleans) from JSON.
            env[name] = json.dumps(value)
    return env


def start_worker(overrides: Mapping[str, Any], log_file: Path) -> subprocess.Popen[bytes]:
    """Spawn `newsfeed worker` with the overrides on top of this process's environment."""
    return start_command(["worker"], overrides, log_file)


def start_command(
    arguments: Sequence[str], overrides: Mapping[str, Any], log_file: Path
) -> subprocess.Popen[bytes]:
    """Spawn `newsfeed <arguments>` with the overrides on top of this process's environment."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    env = os.environ | as_environment(overrides)
    with log_file.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", *arguments],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 30.0) -> int:
    """SIGTERM, then SIGKILL if it does not finish in time; returns the exit code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if process.poll() is None:
            process.kill()
    return process.wait()


async def delete_topics(settings: Settings) -> None:
    """Remove a run's topics, and those Faust made for its app id (table changelogs, assignor), best
    effort: a left-over topic is harmless, but thousands of them slow a shared broker's controller."""
    names = {topic.name for topic in resolved_topics(settings)}
    app_prefix = f"{settings.worker.app_id}-"
    try:
        async with admin_client(settings) as admin:
            existing = set(await admin.list_topics())
            doomed = sorted(name for name in existing if name in names or name.startswith(app_prefix))
            if doomed:
                await asyncio.wait_for(admin.delete_topics(doomed), 30)
    except (KafkaError, TimeoutError):
        return


def _merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged
