"""Run a single-node Apache Kafka broker (KRaft) from the official jars, under one state folder."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ipaddress
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pipeline.ops.kafka import cluster_answers
from pipeline.settings import PROJECT_DIR, BrokerSettings, KafkaSettings

POM_FILE = PROJECT_DIR / "deploy" / "kafka" / "pom.xml"
LOG4J_FILE = PROJECT_DIR / "deploy" / "kafka" / "log4j2.properties"

SCRAM_MECHANISM = "SCRAM-SHA-512"
# Kafka refuses fewer than 4096 for SHA-512; 8192 is the figure its own documentation uses.
SCRAM_ITERATIONS = 8192
TOOL_TIMEOUT_S = 120.0

# Brokers this process started, by pid. A broker outlives the LocalBroker that started it, but a
# dropped Popen of a running child warns (an error under the tests), and an unwaited child stays a
# zombie after it stops; stop() waits for it through this.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


class BrokerError(RuntimeError):
    """The broker could not be prepared or started; the message says what to do."""


@dataclass(frozen=True)
class BrokerStatus:
    """What `newsfeed broker status` reports."""

    running: bool
    answering: bool
    pid: int | None
    bootstrap: str
    state_dir: Path

    def describe(self) -> str:
        if self.running and self.answering:
            return (
                f"broker running (pid {self.pid}), answering on {self.bootstrap}; state in {self.state_dir}"
            )
        if self.running:
            return f"broker process {self.pid} is up but not answering on {self.bootstrap} yet"
        if self.answering:
            return f"a broker not started by newsfeed answers on {self.bootstrap}"
        return f"broker not running (state in {self.state_dir})"


class LocalBroker:
    """Start, stop and inspect the project's own broker; every operation is idempotent."""

    def __init__(self, broker: BrokerSettings) -> None:
        self.settings = broker
        self.state_dir = broker.state_dir
        self.libs_dir = self.state_dir / "libs"
        self.data_dir = self.state_dir / "data"
        self.log_dir = self.state_dir / "logs"
        self.pid_file = self.state_dir / "broker.pid"
        self.properties_file = self.state_dir / "server.properties"
        self.tls_dir = self.state_dir / "tls"
        self.broker_key_file = self.tls_dir / "broker-key.pem"
        self.broker_cert_file = self.tls_dir / "broker.pem"

    @property
    def bootstrap(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    @property
    def secure_bootstrap(self) -> str:
        """host:port of the SASL_SSL listener."""
        if self.settings.sasl_ssl_port is None:
            raise BrokerError("this broker has no SASL_SSL listener; set broker.sasl_ssl_port to add one")
        return f"{self.settings.host}:{self.settings.sasl_ssl_port}"

    @property
    def ca_file(self) -> Path:
        """The CA certificate (PEM) that SASL_SSL clients must trust."""
        return self.tls_dir / "ca.pem"

    def kafka_settings(self) -> KafkaSettings:
        return KafkaSettings(bootstrap_servers=self.bootstrap)

    def secure_kafka_settings(self, user: str) -> KafkaSettings:
        """Client settings for the SASL_SSL listener, logging in as one of `scram_users`."""
        bootstrap = self.secure_bootstrap
        password = self.settings.scram_users.get(user)
        if password is None:
            known = ", ".join(repr(name) for name in sorted(self.settings.scram_users)) or "none"
            raise BrokerError(f"{user!r} is not one of the broker's scram_users (configured: {known})")
        return KafkaSettings(
            bootstrap_servers=bootstrap,
            security_protocol="SASL_SSL",
            sasl_mechanism=SCRAM_MECHANISM,
            sasl_username=user,
            sasl_password=password,
            ssl_cafile=self.ca_file,
        )

    def status(self) -> BrokerStatus:
        pid = self._live_pid()
        answering = asyncio.run(cluster_answers(self.kafka_settings(), timeout_s=3.0))
        return BrokerStatus(pid is not None, answering, pid, self.bootstrap, self.state_dir)

    def start(self) -> BrokerStatus:
        current = self.status()
        if current.answering:
            return self._with_users(current)
        if current.running:
            return self._with_users(self._wait_until_answering(current.pid))
        java = _require_java()
        self.fetch_jars()
        self.write_properties()
        self._format_storage(java)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        command = [
            java,
            f"-Xms{self.settings.heap}",
            f"-Xmx{self.settings.heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={LOG4J_FILE}",
            f"-Dnewsfeed.kafka.logdir={self.log_dir}",
            "-cp",
            f"{self.libs_dir}/*",
            "kafka.Kafka",
            str(self.properties_file),
        ]
        with (self.log_dir / "stdout.log").open("ab") as out:
            # A new session keeps the broker alive after the starting command exits, and out of its signals.
            process = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        _CHILDREN[process.pid] = process
        self.pid_file.write_text(str(process.pid))
        return self._with_users(self._wait_until_answering(process.pid))

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Stop the broker; True if one was running."""
        pid = self._live_pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.2)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
        _reap(pid)
        self.pid_file.unlink(missing_ok=True)
        return True

    def reset(self) -> bool:
        """Stop the broker and delete its topics and logs (jars and TLS files stay); True if it was running.

        Every topic costs a broker CPU even at rest, and test or bench runs that were killed leave theirs
        behind; the next `start` formats empty storage with a new cluster id."""
        was_running = self.stop()
        for folder in (self.data_dir, self.log_dir):
            shutil.rmtree(folder, ignore_errors=True)
        return was_running

    def fetch_jars(self) -> None:
        """Copy the broker jars from Maven into the state folder, once per pom version."""
        marker = self.libs_dir / f".complete-{_digest(POM_FILE)}"
        if marker.exists():
            return
        mvn = _require(
            "mvn", "Install Maven (Debian: apt-get install maven) so the broker jars can be fetched."
        )
        if self.libs_dir.exists():
            shutil.rmtree(self.libs_dir)
        self.libs_dir.mkdir(parents=True)
        result = subprocess.run(
            [
                mvn,
                "-q",
                "-B",
                "-f",
                str(POM_FILE),
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={self.libs_dir}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise BrokerError(
                f"mvn could not fetch the Kafka jars:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
            )
        marker.touch()

    def write_properties(self) -> None:
        """Write server.properties (and, for the SASL_SSL listener, make the TLS material first)."""
        s = self.settings
        listeners = [f"PLAINTEXT://{s.host}:{s.port}", f"CONTROLLER://{s.host}:{s.controller_port}"]
        advertised = [f"PLAINTEXT://{s.host}:{s.port}"]
        protocols = ["PLAINTEXT:PLAINTEXT", "CONTROLLER:PLAINTEXT"]
        if s.sasl_ssl_port is not None:
            listeners.append(f"SASL_SSL://{s.host}:{s.sasl_ssl_port}")
            advertised.append(f"SASL_SSL://{s.host}:{s.sasl_ssl_port}")
            protocols.append("SASL_SSL:SASL_SSL")
        properties = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "listeners": ",".join(listeners),
            "advertised.listeners": ",".join(advertised),
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": ",".join(protocols),
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.quorum.bootstrap.servers": f"{s.host}:{s.controller_port}",
            "log.dirs": str(self.data_dir),
            # The pipeline creates every topic with its declared partitions; an auto-created topic would not.
            "auto.create.topics.enable": "false",
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "4",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "message.max.bytes": str(12 * 1024 * 1024),
            "log.retention.hours": "168",
        }
        if s.sasl_ssl_port is not None:
            properties |= self._sasl_ssl_properties()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        text = "".join(f"{key}={_java_properties_value(value)}\n" for key, value in properties.items())
        # The SASL_SSL listener's private key is inline, so only the broker's user may read the file.
        _write_private(self.properties_file, text)

    def _sasl_ssl_properties(self) -> dict[str, str]:
        self.ensure_tls()
        prefix = "listener.name.sasl_ssl."
        return {
            # Only this listener authenticates, and only with SCRAM; the other listeners stay as they were.
            f"{prefix}sasl.enabled.mechanisms": SCRAM_MECHANISM,
            f"{prefix}{SCRAM_MECHANISM.lower()}.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            ),
            # Kafka reads a PEM keystore *file* only with an encrypted key plus ssl.key.password in this
            # file; the inline key/chain pair takes the unencrypted PKCS#8 key, so no password is stored.
            f"{prefix}ssl.keystore.type": "PEM",
            f"{prefix}ssl.keystore.key": self.broker_key_file.read_text(encoding="ascii"),
            f"{prefix}ssl.keystore.certificate.chain": (
                self.broker_cert_file.read_text(encoding="ascii") + self.ca_file.read_text(encoding="ascii")
            ),
            f"{prefix}ssl.client.auth": "none",
        }

    def ensure_tls(self) -> None:
        """Make a private CA and a broker certificate signed by it under `tls/`, once."""
        if all(path.is_file() for path in (self.ca_file, self.broker_key_file, self.broker_cert_file)):
            return
        openssl = _require(
            "openssl",
            "Install OpenSSL (Debian: apt-get install openssl) so the broker's TLS certificate can be made.",
        )
        self.state_dir.mkdir(parents=True, exist_ok=True)
        # Built aside and renamed into place, so an interrupted run never leaves half a CA behind.
        work = Path(tempfile.mkdtemp(prefix=".tls-", dir=self.state_dir))
        try:
            config = work / "openssl.cnf"
            config.write_text(_openssl_config(self.settings.host))
            # genpkey writes unencrypted PKCS#8 ("BEGIN PRIVATE KEY"), the only unencrypted form Kafka reads.
            for key in ("ca-key.pem", "broker-key.pem"):
                _openssl(openssl, work, f"genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out {key}")
            _openssl(
                openssl,
                work,
                "req -x509 -new -config openssl.cnf -extensions v3_ca -key ca-key.pem -sha256 -days 3650"
                " -out ca.pem",
                "-subj",
                "/CN=newsfeed local CA",
            )
            _openssl(
                openssl,
                work,
                "req -new -config openssl.cnf -key broker-key.pem -subj /CN=localhost -out broker.csr",
            )
            _openssl(
                openssl,
                work,
                "x509 -req -in broker.csr -CA ca.pem -CAkey ca-key.pem -sha256 -days 825"
                " -extfile openssl.cnf -extensions v3_broker -out broker.pem",
                "-set_serial",
                str(secrets.randbits(63) | 1),
            )
            for leftover in (config, work / "broker.csr"):
                leftover.unlink()
            # mkdtemp's folder is private; clients running as other users still need to read ca.pem.
            work.chmod(0o755)
            if self.tls_dir.exists():
                shutil.rmtree(self.tls_dir)
            work.rename(self.tls_dir)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def create_scram_users(self) -> None:
        """Add (or re-set) every `scram_users` entry as a SCRAM-SHA-512 user, via the plaintext listener.

        The credentials live in the cluster metadata, so they survive restarts; running this again only
        replaces the salt. Users no longer configured are left alone.
        """
        users = self.settings.scram_users
        if not users:
            return
        for user, password in users.items():
            if not user.strip():
                raise BrokerError("a SCRAM user needs a non-empty name")
            if not password.get_secret_value():
                raise BrokerError(f"SCRAM user {user!r} has an empty password")
        java = _require_java()
        every_password = [password.get_secret_value() for password in users.values()]
        for user, password in users.items():
            result = self._config_command(java, user, password.get_secret_value())
            if result.returncode != 0:
                output = _redact(f"{result.stdout}{result.stderr}", every_password)
                raise BrokerError(f"creating SCRAM user {user!r} failed:\n{output[-3000:]}")

    def _config_command(self, java: str, user: str, password: str) -> subprocess.CompletedProcess[str]:
        tool_logs = self.log_dir / "tools"
        tool_logs.mkdir(parents=True, exist_ok=True)
        # The password goes through a private file: a command line is visible to every local user in
        # `ps`, and ConfigCommand repeats its arguments when it fails.
        fd, name = tempfile.mkstemp(prefix=".scram-", suffix=".properties", dir=self.state_dir)
        secret_file = Path(name)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as out:
                value = f"iterations={SCRAM_ITERATIONS},password={password}"
                out.write(f"{SCRAM_MECHANISM}={_java_properties_value(value)}\n")
            return subprocess.run(
                [
                    java,
                    "-Xmx256m",
                    # A short-lived tool: the C1-only JIT and the serial collector start it a second sooner.
                    "-XX:TieredStopAtLevel=1",
                    "-XX:+UseSerialGC",
                    "-cp",
                    f"{self.libs_dir}/*",
                    f"-Dlog4j2.configurationFile={LOG4J_FILE}",
                    f"-Dnewsfeed.kafka.logdir={tool_logs}",
                    "kafka.admin.ConfigCommand",
                    "--bootstrap-server",
                    self.bootstrap,
                    "--alter",
                    "--entity-type",
                    "users",
                    "--entity-name",
                    user,
                    "--add-config-file",
                    str(secret_file),
                ],
                capture_output=True,
                text=True,
                timeout=TOOL_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            # `from None`: the timeout exception carries the tool's output, which is not ours to show.
            raise BrokerError(
                f"creating SCRAM user {user!r} took over {TOOL_TIMEOUT_S:.0f}s; "
                f"is the broker answering on {self.bootstrap}?"
            ) from None
        finally:
            secret_file.unlink(missing_ok=True)

    def _with_users(self, status: BrokerStatus) -> BrokerStatus:
        self.create_scram_users()
        if self.settings.sasl_ssl_port is not None:
            self._wait_until_users_log_in()
        return status

    def _wait_until_users_log_in(self) -> None:
        """A user added through the controller reaches the broker's credential cache a moment later."""
        deadline = time.monotonic() + 30.0
        for user in self.settings.scram_users:
            secure = self.secure_kafka_settings(user)
            while not asyncio.run(cluster_answers(secure, timeout_s=5.0)):
                if time.monotonic() > deadline:
                    raise BrokerError(
                        f"SCRAM user {user!r} cannot log in on SASL_SSL {self.secure_bootstrap}; if the "
                        "broker was started before sasl_ssl_port was set, stop and start it again; "
                        f"see {self.log_dir / 'server.log'}"
                    )
                time.sleep(0.5)

    def _format_storage(self, java: str) -> None:
        if (self.data_dir / "meta.properties").exists():
            return
        cluster_id = _kafka_uuid()
        result = subprocess.run(
            [
                java,
                "-cp",
                f"{self.libs_dir}/*",
                f"-Dlog4j2.configurationFile={LOG4J_FILE}",
                f"-Dnewsfeed.kafka.logdir={self.log_dir}",
                "kafka.tools.StorageTool",
                "format",
                "--standalone",
                "-t",
                cluster_id,
                "-c",
                str(self.properties_file),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise BrokerError(f"formatting the KRaft storage failed:\n{result.stdout}{result.stderr}")

    def _wait_until_answering(self, pid: int | None) -> BrokerStatus:
        deadline = time.monotonic() + self.settings.start_timeout_s
        while time.monotonic() < deadline:
            if pid is not None and not _alive(pid):
                _reap(pid)
                raise BrokerError(f"the broker exited during start-up; see {self.log_dir / 'server.log'}")
            if asyncio.run(cluster_answers(self.kafka_settings(), timeout_s=2.0)):
                return BrokerStatus(True, True, pid, self.bootstrap, self.state_dir)
            time.sleep(0.5)
        raise BrokerError(
            f"the broker did not answer on {self.bootstrap} within {self.settings.start_timeout_s:.0f}s; "
            f"see {self.log_dir / 'server.log'}"
        )

    def _live_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _alive(pid) and _is_kafka(pid) else None


def _require_java() -> str:
    return _require("java", "Install a Java 17+ runtime (Debian: apt-get install openjdk-17-jre-headless).")


def _require(program: str, advice: str) -> str:
    path = shutil.which(program)
    if path is None:
        raise BrokerError(f"`{program}` was not found on PATH. {advice}")
    return path


def _reap(pid: int) -> None:
    child = _CHILDREN.pop(pid, None)
    if child is None:
        return
    try:
        child.wait(timeout=10.0)
    except subprocess.TimeoutExpired:
        _CHILDREN[pid] = child


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); its /proc state says it is gone.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and ") Z" in stat.read_text())


def _is_kafka(pid: int) -> bool:
    cmdline = Path(f"/proc/{pid}/cmdline")
    return not cmdline.exists() or b"kafka.Kafka" in cmdline.read_bytes()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def _kafka_uuid() -> str:
    """A cluster id in Kafka's format: a random UUID as unpadded URL-safe base64, never starting with "-"
    (the storage tool would read it as an option; Kafka's own Uuid.randomUuid draws again too)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _java_properties_value(value: str) -> str:
    """`value` escaped so java.util.Properties.load (ISO-8859-1, one logical line) reads it back exactly."""
    out = []
    for index, char in enumerate(value):
        if char == "\\":
            out.append("\\\\")
        elif char in "\n\r\t\f":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t", "\f": "\\f"}[char])
        elif char == " " and index == 0:
            # Properties.load drops leading blanks of a value.
            out.append("\\ ")
        elif " " <= char <= "~":
            out.append(char)
        else:
            # Properties' \uXXXX escapes are UTF-16 code units: beyond the BMP, a surrogate pair.
            units = char.encode("utf-16-be")
            out.extend(f"\\u{units[i]:02x}{units[i + 1]:02x}" for i in range(0, len(units), 2))
    return "".join(out)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    # os.open's mode only applies to a new file; an older one may have been readable by others.
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(text)


def _redact(text: str, hidden: Iterable[str]) -> str:
    # Longest first, so a password that contains another is masked whole.
    for secret in sorted({item for item in hidden if item}, key=len, reverse=True):
        text = text.replace(secret, "***").replace(_java_properties_value(secret), "***")
    return text


def _openssl_config(host: str) -> str:
    names = ["IP:127.0.0.1", "DNS:localhost"]
    try:
        extra = f"IP:{ipaddress.ip_address(host)}"
    except ValueError:
        extra = f"DNS:{host}"
    if extra not in names:
        names.append(extra)
    # Our own config, so the system's openssl.cnf cannot add or duplicate extensions.
    return f"""[req]
distinguished_name = dn
prompt = no

[dn]
CN = newsfeed

[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[v3_broker]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = {", ".join(names)}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
"""


def _openssl(openssl: str, cwd: Path, command: str, *verbatim: str) -> None:
    """Run `openssl` with `command` split on blanks, then the `verbatim` arguments as they are."""
    args = [*command.split(), *verbatim]
    result = subprocess.run(
        [openssl, *args], cwd=cwd, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=False
    )
    if result.returncode != 0:
        raise BrokerError(
            f"`openssl {args[0]}` failed while making the broker's TLS material:\n{result.stderr}"
        )
