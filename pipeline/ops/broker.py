"""Run a single-node Apache Kafka broker (KRaft) from the official jars, under one state folder."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from pipeline.ops.kafka import cluster_answers
from pipeline.settings import PROJECT_DIR, BrokerSettings, KafkaSettings

POM_FILE = PROJECT_DIR / "deploy" / "kafka" / "pom.xml"
LOG4J_FILE = PROJECT_DIR / "deploy" / "kafka" / "log4j2.properties"


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

    @property
    def bootstrap(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    def kafka_settings(self) -> KafkaSettings:
        return KafkaSettings(bootstrap_servers=self.bootstrap)

    def status(self) -> BrokerStatus:
        pid = self._live_pid()
        answering = asyncio.run(cluster_answers(self.kafka_settings(), timeout_s=3.0))
        return BrokerStatus(pid is not None, answering, pid, self.bootstrap, self.state_dir)

    def start(self) -> BrokerStatus:
        current = self.status()
        if current.answering:
            return current
        if current.running:
            return self._wait_until_answering(current.pid)
        java = _require(
            "java", "Install a Java 17+ runtime (Debian: apt-get install openjdk-17-jre-headless)."
        )
        self.fetch_jars()
        self._write_properties()
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
        self.pid_file.write_text(str(process.pid))
        return self._wait_until_answering(process.pid)

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
        self.pid_file.unlink(missing_ok=True)
        return True

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

    def _write_properties(self) -> None:
        s = self.settings
        properties = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "listeners": f"PLAINTEXT://{s.host}:{s.port},CONTROLLER://{s.host}:{s.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{s.host}:{s.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
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
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.properties_file.write_text("".join(f"{key}={value}\n" for key, value in properties.items()))

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


def _require(program: str, advice: str) -> str:
    path = shutil.which(program)
    if path is None:
        raise BrokerError(f"`{program}` was not found on PATH. {advice}")
    return path


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
    """A cluster id in Kafka's format: a random UUID as unpadded URL-safe base64."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
