"""`newsfeed run`: every role of the pipeline as child processes of one process group, stopped together."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from pipeline.ops.allocator import worker_environment
from pipeline.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Role:
    name: str
    arguments: list[str]
    # The environment to start it with; None inherits this process's.
    environment: dict[str, str] | None = field(default=None, repr=False)
    process: subprocess.Popen[bytes] | None = None


def roles_for(settings: Settings) -> list[Role]:
    """The crawler (when it has something to crawl), the worker, and the sink and ingest roles when the
    settings call for them."""
    roles = []
    if settings.crawl.sources_file is not None or settings.crawl.feeds:
        roles.append(Role("crawler", ["crawl"]))
    roles.append(Role("worker", ["worker"], worker_environment(settings.worker.allocator, os.environ)))
    if not settings.store.sink_in_worker:
        roles.append(Role("sink", ["sink"]))
    if settings.inputs:
        roles.append(Role("ingest", ["ingest"]))
    return roles


class Supervisor:
    """Starts each role as `python -m pipeline.cli [--config F] <role>`; when one exits or a signal comes,
    the others get SIGTERM (then SIGKILL after `grace_s`). The exit code is the first failure's, else 0."""

    def __init__(self, roles: Sequence[Role], config_file: Path | None, *, grace_s: float = 30.0) -> None:
        self.roles = list(roles)
        self.config_file = config_file
        self.grace_s = grace_s
        self._stopping = False

    def run(self) -> int:
        previous = {
            signum: signal.signal(signum, self._on_signal) for signum in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            for role in self.roles:
                prefix = ["--config", str(self.config_file)] if self.config_file else []
                role.process = subprocess.Popen(
                    [sys.executable, "-m", "pipeline.cli", *prefix, *role.arguments], env=role.environment
                )
                log.info("started %s (pid %d)", role.name, role.process.pid)
            exit_code = self._watch()
        finally:
            self._stop_all()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return exit_code

    def _watch(self) -> int:
        while not self._stopping:
            for role in self.roles:
                assert role.process is not None
                code = role.process.poll()
                if code is not None:
                    log.warning("%s exited with %d; stopping the others", role.name, code)
                    return code or 0
            time.sleep(0.2)
        return 0

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True

    def _stop_all(self) -> None:
        running = [role for role in self.roles if role.process is not None and role.process.poll() is None]
        for role in running:
            assert role.process is not None
            role.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s
        for role in running:
            assert role.process is not None
            try:
                role.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0f s; killing it", role.name, self.grace_s)
                role.process.kill()
                role.process.wait()
