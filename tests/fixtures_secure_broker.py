"""A second broker with a SASL_SSL/SCRAM-SHA-512 listener, for tests of clients of secured clusters."""

from __future__ import annotations

import contextlib
import secrets
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from pipeline.ops.broker import LocalBroker
from pipeline.settings import BrokerSettings, KafkaSettings, Settings

SECURE_USER = "newsfeed-test"


@dataclass(frozen=True)
class SecureBroker:
    """The running broker, and client settings for its two client listeners."""

    broker: LocalBroker
    plaintext: KafkaSettings  # no authentication; for setting things up
    sasl_ssl: KafkaSettings  # SCRAM-SHA-512 as `user`, over TLS trusting the broker's CA

    @property
    def user(self) -> str:
        return SECURE_USER

    @property
    def ca_file(self) -> Path:
        return self.broker.ca_file


@pytest.fixture(scope="session")
def secure_broker(
    base_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SecureBroker]:
    """A broker of its own (state, ports, SCRAM user) for the whole session, stopped at its end."""
    state_dir = tmp_path_factory.mktemp("secure-broker") / "kafka"
    _share_jars(LocalBroker(base_settings.broker).libs_dir, state_dir / "libs")
    port, controller_port, sasl_ssl_port = _free_ports(3)
    broker = LocalBroker(
        BrokerSettings(
            state_dir=state_dir,
            port=port,
            controller_port=controller_port,
            sasl_ssl_port=sasl_ssl_port,
            heap="384m",
            start_timeout_s=120.0,
            scram_users={SECURE_USER: SecretStr(secrets.token_urlsafe(24))},
        )
    )
    try:
        broker.start()
        yield SecureBroker(broker, broker.kafka_settings(), broker.secure_kafka_settings(SECURE_USER))
    finally:
        # Also after a failed start: the process may be up even though the users could not be made.
        broker.stop()


def _share_jars(source: Path, target: Path) -> None:
    """Link the main broker's fetched jars (and its completion marker) instead of fetching them again."""
    if not any(source.glob(".complete-*")):
        return  # LocalBroker.start fetches them into `target` itself
    target.mkdir(parents=True)
    for entry in source.iterdir():
        (target / entry.name).symlink_to(entry)


def _free_ports(count: int) -> list[int]:
    # All sockets stay open until every port is picked, so the ports differ from each other.
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        return ports
