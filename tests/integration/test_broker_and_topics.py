"""The project's own broker and topic commands, against the real Kafka broker."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest

from pipeline.ops.broker import LocalBroker
from pipeline.ops.topics import create_topics, describe_topics
from pipeline.settings import Settings
from tests.conftest import IsolatedPipeline

pytestmark = pytest.mark.integration


def _newsfeed(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_broker_start_is_idempotent_and_status_reports_it(kafka_broker: Settings) -> None:
    before = LocalBroker(kafka_broker.broker).status()
    started = _newsfeed("broker", "start")
    status = _newsfeed("broker", "status")
    after = LocalBroker(kafka_broker.broker).status()

    assert started.returncode == 0, started.stderr
    assert status.returncode == 0
    assert "answering on 127.0.0.1" in status.stdout
    assert after.answering
    assert after.pid == before.pid, "a second start must not launch another broker"


def test_ping_answers(kafka_broker: Settings) -> None:
    result = _newsfeed("ping")
    assert result.returncode == 0
    assert "answering" in result.stdout


def test_topics_are_created_once_with_declared_settings(isolated: IsolatedPipeline) -> None:
    again = asyncio.run(create_topics(isolated.settings))
    deadline = time.monotonic() + 15
    rows = asyncio.run(describe_topics(isolated.settings))
    # A fresh broker may list a topic a moment before its partitions have leaders.
    while not all(row["exists"] and row["partitions"] for row in rows) and time.monotonic() < deadline:
        time.sleep(0.5)
        rows = asyncio.run(describe_topics(isolated.settings))

    assert again == [], "creating existing topics is a no-op"
    by_name = {row["name"]: row for row in rows}
    assert by_name[isolated.settings.topics.raw_pages]["partitions"] == 4
    assert by_name[isolated.settings.topics.dead_letter]["partitions"] == 1
    assert all(row["exists"] for row in rows)
