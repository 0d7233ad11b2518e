"""Shared fixtures: the real local broker and per-test isolated pipeline settings."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pipeline.ops.broker import LocalBroker
from pipeline.ops.isolated import delete_topics, isolated_overrides, with_overrides
from pipeline.ops.topics import create_topics
from pipeline.settings import Settings, load_settings

# Fixtures for the local PostgreSQL server and the SASL_SSL broker live in their own modules.
pytest_plugins = ["tests.fixtures_postgres", "tests.fixtures_secure_broker"]


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    return load_settings()


@pytest.fixture(scope="session")
def kafka_broker(base_settings: Settings) -> Settings:
    """Make sure the project's broker runs (starting it if needed); tests talk only to 127.0.0.1."""
    LocalBroker(base_settings.broker).start()
    return base_settings


@dataclass
class IsolatedPipeline:
    """Settings (in-process) and overrides (for child processes) that no other test shares."""

    settings: Settings
    overrides: dict[str, Any]
    state_dir: Path


def _isolated(
    kafka_broker: Settings, tmp_path: Path, request: pytest.FixtureRequest, partitions: int
) -> Iterator[IsolatedPipeline]:
    run_id = f"t-{request.node.name[:40].replace('[', '-').replace(']', '')}-{uuid.uuid4().hex[:8]}"
    overrides = isolated_overrides(run_id, tmp_path / "state", partitions=partitions)
    overrides["kafka"] = {"bootstrap_servers": kafka_broker.kafka.bootstrap_servers}
    settings = with_overrides(kafka_broker, overrides)
    asyncio.run(create_topics(settings))
    yield IsolatedPipeline(settings, overrides, tmp_path / "state")
    asyncio.run(delete_topics(settings))


@pytest.fixture
def isolated(
    kafka_broker: Settings, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[IsolatedPipeline]:
    """Topics (4 partitions), consumer groups and state no other test shares."""
    yield from _isolated(kafka_broker, tmp_path, request, partitions=4)


@pytest.fixture
def isolated_eight(
    kafka_broker: Settings, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[IsolatedPipeline]:
    """The same with 8 partitions, for tests of work spread over several workers."""
    yield from _isolated(kafka_broker, tmp_path, request, partitions=8)
