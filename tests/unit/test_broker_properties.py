"""server.properties, TLS material and SCRAM users of the local broker, without starting one."""

from __future__ import annotations

import ssl
import stat
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from pipeline.ops.broker import BrokerError, LocalBroker, _kafka_uuid
from pipeline.ops.kafka import client_options
from pipeline.settings import PROJECT_DIR, BrokerSettings

# Blanks, a backslash, non-ASCII and the characters ConfigCommand's own syntax gives meaning to.
PASSWORD = " Pa$$ wörd,[x]=y\\z"
SASL = "listener.name.sasl_ssl."


def _broker(tmp_path: Path, **overrides: Any) -> LocalBroker:
    return LocalBroker(
        BrokerSettings(state_dir=tmp_path / "kafka", port=19092, controller_port=19093, **overrides)
    )


def _secure_broker(tmp_path: Path) -> LocalBroker:
    return _broker(tmp_path, sasl_ssl_port=19094, scram_users={"alice": SecretStr(PASSWORD)})


def _properties(broker: LocalBroker) -> dict[str, str]:
    lines = broker.properties_file.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines)


def _pem(value: str) -> str:
    """A PEM value as written to server.properties (newlines escaped) back to the file's text."""
    return value.replace("\\n", "\n")


def test_without_sasl_ssl_port_only_plaintext_and_controller_listen(tmp_path: Path) -> None:
    broker = _broker(tmp_path)
    broker.write_properties()
    props = _properties(broker)

    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert props["listener.security.protocol.map"] == "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    assert props["inter.broker.listener.name"] == "PLAINTEXT"
    assert not [key for key in props if "sasl" in key or "ssl" in key]
    assert not broker.tls_dir.exists()


def test_sasl_ssl_listener_is_added_beside_the_unchanged_ones(tmp_path: Path) -> None:
    broker = _secure_broker(tmp_path)
    broker.write_properties()
    props = _properties(broker)

    assert props["listeners"] == (
        "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093,SASL_SSL://127.0.0.1:19094"
    )
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092,SASL_SSL://127.0.0.1:19094"
    assert props["listener.security.protocol.map"] == (
        "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL"
    )
    assert props["inter.broker.listener.name"] == "PLAINTEXT"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:19093"
    # SASL and TLS are configured for that one listener only.
    assert not [key for key in props if ("sasl" in key or "ssl" in key) and not key.startswith(SASL)]
    assert props[f"{SASL}sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props[f"{SASL}scram-sha-512.sasl.jaas.config"] == (
        "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    )
    assert props[f"{SASL}ssl.keystore.type"] == "PEM"
    assert _pem(props[f"{SASL}ssl.keystore.key"]) == broker.broker_key_file.read_text()
    assert _pem(props[f"{SASL}ssl.keystore.certificate.chain"]) == (
        broker.broker_cert_file.read_text() + broker.ca_file.read_text()
    )


def test_properties_file_holds_no_password_and_only_its_owner_reads_it(tmp_path: Path) -> None:
    broker = _secure_broker(tmp_path)
    broker.write_properties()
    text = broker.properties_file.read_text()

    assert PASSWORD.strip() not in text
    assert "wörd" not in text
    assert "w\\u00f6rd" not in text
    # The key is unencrypted, so there is no key (or keystore) password either.
    assert "password" not in text.lower()
    assert stat.S_IMODE(broker.properties_file.stat().st_mode) == 0o600


def test_tls_material_is_made_once(tmp_path: Path) -> None:
    broker = _secure_broker(tmp_path)
    broker.ensure_tls()
    first = {path.name: path.read_bytes() for path in broker.tls_dir.iterdir()}
    broker.ensure_tls()
    broker.write_properties()

    assert {path.name: path.read_bytes() for path in broker.tls_dir.iterdir()} == first
    assert set(first) == {"ca.pem", "ca-key.pem", "broker.pem", "broker-key.pem"}
    # Kafka's inline PEM keystore takes an unencrypted key only in PKCS#8 form.
    assert first["broker-key.pem"].startswith(b"-----BEGIN PRIVATE KEY-----")
    assert stat.S_IMODE((broker.tls_dir / "ca-key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE(broker.broker_key_file.stat().st_mode) == 0o600


@pytest.mark.parametrize("server_name", ["127.0.0.1", "localhost"])
def test_broker_certificate_verifies_against_the_ca(tmp_path: Path, server_name: str) -> None:
    broker = _secure_broker(tmp_path)
    broker.ensure_tls()
    _handshake(broker, server_name)


def test_broker_certificate_is_only_for_the_local_names(tmp_path: Path) -> None:
    broker = _secure_broker(tmp_path)
    broker.ensure_tls()
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        _handshake(broker, "kafka.example.org")


def test_missing_openssl_is_reported_with_the_debian_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(BrokerError, match=r"`openssl` was not found.*apt-get install openssl"):
        _secure_broker(tmp_path).write_properties()


def test_install_script_installs_openssl_when_missing() -> None:
    script = (PROJECT_DIR / "deploy" / "install-system-packages.sh").read_text()
    assert "command -v openssl >/dev/null 2>&1 || missing+=(openssl)" in script


def test_secure_kafka_settings_log_in_over_tls_with_scram(tmp_path: Path) -> None:
    broker = _secure_broker(tmp_path)
    broker.ensure_tls()
    secure = broker.secure_kafka_settings("alice")

    assert secure.bootstrap_servers == "127.0.0.1:19094"
    assert secure.security_protocol == "SASL_SSL"
    assert secure.sasl_mechanism == "SCRAM-SHA-512"
    assert secure.sasl_username == "alice"
    assert secure.sasl_password is not None
    assert secure.sasl_password.get_secret_value() == PASSWORD
    assert secure.ssl_cafile == broker.ca_file == broker.tls_dir / "ca.pem"
    context = client_options(secure)["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname


def test_secure_kafka_settings_errors_name_users_not_passwords(tmp_path: Path) -> None:
    with pytest.raises(BrokerError, match="'mallory' is not one of") as unknown:
        _secure_broker(tmp_path).secure_kafka_settings("mallory")
    assert "'alice'" in str(unknown.value)
    assert PASSWORD not in str(unknown.value)
    with pytest.raises(BrokerError, match="no SASL_SSL listener"):
        _broker(tmp_path, scram_users={"alice": SecretStr(PASSWORD)}).secure_kafka_settings("alice")


def test_a_failing_user_tool_never_shows_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = _secure_broker(tmp_path)
    _fake_java_on_path(tmp_path, monkeypatch)
    calls: list[tuple[list[str], str, int]] = []

    def fake_run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        secret_file = Path(args[args.index("--add-config-file") + 1])
        calls.append((args, secret_file.read_text(), stat.S_IMODE(secret_file.stat().st_mode)))
        # What Kafka's ConfigCommand really prints for a credential it cannot parse.
        echo = f"Invalid credential property SCRAM_SHA_512=iterations=8192,password={PASSWORD}"
        return subprocess.CompletedProcess(args, 1, stdout="", stderr=echo)

    monkeypatch.setattr(subprocess, "run", fake_run)
    with pytest.raises(BrokerError, match="creating SCRAM user 'alice' failed") as failure:
        broker.create_scram_users()

    [(args, file_text, mode)] = calls
    assert PASSWORD not in str(failure.value)
    assert "password=***" in str(failure.value)
    assert not [arg for arg in args if PASSWORD.strip() in arg], "never on the command line"
    assert args[args.index("--entity-name") + 1] == "alice"
    # Escaped for java.util.Properties, which reads ISO-8859-1 and takes a backslash as an escape.
    assert file_text == "SCRAM-SHA-512=iterations=8192,password= Pa$$ w\\u00f6rd,[x]=y\\\\z\n"
    assert mode == 0o600
    assert not list(broker.state_dir.glob(".scram-*")), "the password file is removed"


def test_an_empty_password_is_refused_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(subprocess, "run", _must_not_run)
    broker = _broker(tmp_path, sasl_ssl_port=19094, scram_users={"alice": SecretStr("")})
    with pytest.raises(BrokerError, match="'alice' has an empty password"):
        broker.create_scram_users()


def test_no_users_means_no_tool_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(subprocess, "run", _must_not_run)
    _broker(tmp_path, sasl_ssl_port=19094).create_scram_users()


def _must_not_run(*args: Any, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    raise AssertionError("no tool should run")


def _fake_java_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`java` must be found, though the faked subprocess.run never starts it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    java = bin_dir / "java"
    java.write_text("#!/bin/sh\nexit 99\n")
    java.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))


def _handshake(broker: LocalBroker, server_name: str) -> None:
    """A TLS handshake in memory: the broker's key and chain against a client trusting only our CA."""
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(broker.broker_cert_file, broker.broker_key_file)
    client_context = ssl.create_default_context(cafile=str(broker.ca_file))
    # Newer Pythons verify strictly by default; the certificates must pass that too.
    client_context.verify_flags |= ssl.VERIFY_X509_STRICT
    to_client, to_server = ssl.MemoryBIO(), ssl.MemoryBIO()
    from_client, from_server = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_context.wrap_bio(to_client, from_client, server_hostname=server_name)
    server = server_context.wrap_bio(to_server, from_server, server_side=True)
    pending = [client, server]
    for _ in range(10):
        for endpoint in list(pending):
            try:
                endpoint.do_handshake()
            except ssl.SSLWantReadError:
                continue
            pending.remove(endpoint)
        to_server.write(from_client.read())
        to_client.write(from_server.read())
        if not pending:
            return
    raise AssertionError("the TLS handshake did not finish")


def test_cluster_ids_never_start_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    # The first draw encodes to "-" first: the storage tool would take it for an option.
    draws = iter([uuid.UUID(bytes=b"\xf8" + bytes(15)), uuid.UUID(int=7)])
    monkeypatch.setattr(uuid, "uuid4", lambda: next(draws))
    cluster_id = _kafka_uuid()
    assert not cluster_id.startswith("-")
    assert len(cluster_id) == 22
