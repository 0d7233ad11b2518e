"""Secrets stay secret (logs, metrics, web pages, `config show`) with a worker on SASL_SSL, and SSRF hops."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.ops.isolated import as_environment, delete_topics, start_worker, stop_process, with_overrides
from pipeline.ops.topics import create_topics
from pipeline.records import dumps, loads
from tests.conftest import IsolatedPipeline
from tests.fixtures_secure_broker import SecureBroker
from tests.integration.test_observability import fetch, free_port, wait_for
from tests.kafka_helpers import produce, read_topic
from tests.pages import demo_raw_pages

pytestmark = pytest.mark.integration

POSTGRES_PASSWORD = "pg-Secret-4b1d9e"
PARTNER_PASSWORD = "partner-Secret-77c2a0"
SCRAM_PASSWORD = "scram-Secret-e3f5aa"
WRONG_PASSWORD = "wrong-Secret-0d9c41"


@pytest.fixture
def on_secure_broker(isolated: IsolatedPipeline, secure_broker: SecureBroker) -> Iterator[dict[str, Any]]:
    """The isolated run's overrides pointed at the SASL_SSL listener, with a secret in every place one
    can be configured; topics are made (and removed) over the broker's plaintext listener."""
    setup = with_overrides(isolated.settings, {"kafka": secure_broker.plaintext.model_dump()})
    asyncio.run(create_topics(setup))
    secure = secure_broker.sasl_ssl
    assert secure.sasl_password is not None
    kafka = {**secure.model_dump(mode="json"), "sasl_password": secure.sasl_password.get_secret_value()}
    overrides = {
        **isolated.overrides,
        "kafka": kafka,
        "worker": {**isolated.overrides["worker"], "web_enabled": True, "web_port": free_port()},
        "store": {
            **isolated.overrides["store"],
            "postgres_dsn": f"postgresql://newsfeed:{POSTGRES_PASSWORD}@127.0.0.1:15432/newsfeed",
        },
        "broker": {"scram_users": {"someone": SCRAM_PASSWORD}},
        "inputs": [
            {
                "name": "partner",
                "topic": "partner.raw-pages.v1",
                "cluster": {**kafka, "sasl_username": "partner", "sasl_password": PARTNER_PASSWORD},
            }
        ],
        "log_level": "DEBUG",
        "log_format": "json",
    }
    yield overrides
    asyncio.run(delete_topics(setup))


def _secrets(overrides: dict[str, Any]) -> list[str]:
    return [overrides["kafka"]["sasl_password"], POSTGRES_PASSWORD, PARTNER_PASSWORD, SCRAM_PASSWORD]


def _leaks(text: str, secrets: list[str]) -> list[str]:
    return [secret for secret in secrets if secret in text]


def test_no_secret_in_logs_metrics_web_pages_or_config_show(
    isolated: IsolatedPipeline, secure_broker: SecureBroker, on_secure_broker: dict[str, Any]
) -> None:
    overrides = on_secure_broker
    secrets = _secrets(overrides)
    plaintext = with_overrides(isolated.settings, {"kafka": secure_broker.plaintext.model_dump()})
    log = isolated.state_dir / "worker-sasl.log"
    worker = start_worker(overrides, log)
    base = f"http://127.0.0.1:{overrides['worker']['web_port']}"
    try:
        wait_for(lambda: _answers(f"{base}/health"), 120, "the worker's web server")
        pages = demo_raw_pages()
        asyncio.run(
            produce(plaintext, plaintext.topics.raw_pages, [(p["url"].encode(), dumps(p)) for p in pages])
        )
        enriched = asyncio.run(
            read_topic(plaintext, plaintext.topics.enriched, len(pages) - 1, timeout_s=120)
        )
        assert {loads(record.value)["url"] for record in enriched} <= {page["url"] for page in pages}
        served = {path: fetch(f"{base}{path}")[1] for path in ("/metrics", "/health", "/dashboard/")}
    finally:
        assert stop_process(worker) == 0, log.read_text()[-3000:]

    logged = log.read_text()
    assert '"level":"debug"' in logged.lower(), "the worker logged at DEBUG, the most talkative level"
    assert _leaks(logged, secrets) == []
    for path, body in served.items():
        assert body, path
        assert _leaks(body, secrets) == [], path

    shown = _config_show(overrides, isolated.state_dir)
    assert _leaks(shown, secrets) == []
    effective = json.loads(shown)
    assert effective["kafka"]["sasl_password"] == "**********"
    assert effective["store"]["postgres_dsn"] == "**********"
    assert effective["broker"]["scram_users"]["someone"] == "**********"
    assert effective["inputs"][0]["cluster"]["sasl_password"] == "**********"


def test_a_refused_login_is_logged_without_the_password(
    isolated: IsolatedPipeline, on_secure_broker: dict[str, Any]
) -> None:
    overrides = {**on_secure_broker, "kafka": {**on_secure_broker["kafka"], "sasl_password": WRONG_PASSWORD}}
    log = isolated.state_dir / "worker-refused.log"
    worker = start_worker(overrides, log)
    try:
        wait_for(lambda: "authentication" in log.read_text().lower(), 120, "the refused login in the log")
    finally:
        stop_process(worker)
    logged = log.read_text()
    assert _leaks(logged, [WRONG_PASSWORD, *_secrets(on_secure_broker)[1:]]) == []


def _answers(url: str) -> bool:
    try:
        return fetch(url)[0] == 200
    except OSError:
        return False


def _config_show(overrides: dict[str, Any], state_dir: Path) -> str:
    """`newsfeed config show` in a child process whose settings come from the environment, as deployed."""
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "config", "show"],
        env=os.environ | as_environment(overrides),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=state_dir.parent,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert _leaks(done.stderr, _secrets(overrides)) == []
    return done.stdout
