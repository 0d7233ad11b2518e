"""The broker command explains missing prerequisites instead of failing obscurely."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.ops.broker import BrokerError, LocalBroker
from pipeline.settings import BrokerSettings


def _broker_without_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalBroker:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    monkeypatch.setenv("PATH", str(empty_bin))
    # A port nothing listens on, so `start` really has to launch a broker.
    return LocalBroker(BrokerSettings(state_dir=tmp_path / "kafka", port=1, controller_port=2))


def test_missing_java_is_reported_with_advice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broker = _broker_without_tools(tmp_path, monkeypatch)
    with pytest.raises(BrokerError, match=r"`java` was not found.*Java 17"):
        broker.start()


def test_missing_maven_is_reported_with_advice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broker = _broker_without_tools(tmp_path, monkeypatch)
    with pytest.raises(BrokerError, match=r"`mvn` was not found.*Maven"):
        broker.fetch_jars()


def test_status_of_a_broker_never_started(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    status = _broker_without_tools(tmp_path, monkeypatch).status()
    assert not status.running
    assert not status.answering
    assert "not running" in status.describe()


def test_stop_when_nothing_runs_is_harmless(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _broker_without_tools(tmp_path, monkeypatch).stop() is False


def test_reset_deletes_topics_and_logs_but_keeps_jars_and_tls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = _broker_without_tools(tmp_path, monkeypatch)
    for folder, name in [
        (broker.data_dir / "left-over-topic-0", "00000000000000000000.log"),
        (broker.log_dir, "server.log"),
        (broker.libs_dir, "kafka.jar"),
        (broker.tls_dir, "ca.pem"),
    ]:
        folder.mkdir(parents=True)
        (folder / name).write_bytes(b"x")
    assert broker.reset() is False  # nothing was running
    assert not broker.data_dir.exists()
    assert not broker.log_dir.exists()
    assert (broker.libs_dir / "kafka.jar").exists()
    assert (broker.tls_dir / "ca.pem").exists()
