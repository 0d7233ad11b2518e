"""`newsfeed run`: crawler, worker and sink as one process group on the local news site, stopped together."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.demo.content import ARTICLES, SEED_ARTICLE, SITES
from pipeline.demo.site import serve_site
from pipeline.ops.allocator import allocator_in_use, jemalloc_library
from pipeline.sink.sqlite_store import SqliteStore
from tests.conftest import IsolatedPipeline

pytestmark = pytest.mark.e2e


@pytest.fixture
def site() -> Iterator[str]:
    ready: list[str] = []
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def serve() -> None:
        async with serve_site() as base:
            ready.append(base)
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),))
    thread.start()
    deadline = time.monotonic() + 10
    while not ready and time.monotonic() < deadline:
        time.sleep(0.05)
    yield ready[0]
    loop.call_soon_threadsafe(stop.set)
    thread.join(10)
    loop.close()


def _group_members(group: int) -> list[str]:
    found = subprocess.run(["pgrep", "-g", str(group)], capture_output=True, text=True, check=False)
    return found.stdout.split()


def _command(pid: str) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().rstrip("\0").split("\0")


def _titles(path: Path) -> list[str]:
    if not path.exists():
        return []
    store = SqliteStore(path)
    try:
        return [record["title"] for record in store.articles()]
    finally:
        store.close()


def test_run_starts_every_role_and_stops_them_together(isolated: IsolatedPipeline, site: str) -> None:
    overrides = json.loads(json.dumps(isolated.overrides))
    overrides["crawl"] |= {
        "feeds": [f"{site}{s.feed_path}" for s in SITES],
        "allowed_private_hosts": ["127.0.0.1"],
        "min_host_delay_s": 0.05,
        "poll_interval_s": 3600,
    }
    overrides["store"]["sink_in_worker"] = False  # so the sink runs as its own role
    config = isolated.state_dir / "settings.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps(overrides))
    log = isolated.state_dir / "run.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "--config", str(config), "run"],
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 150
        store = isolated.state_dir / "newsfeed.sqlite3"
        while time.monotonic() < deadline and len(_titles(store)) < len(ARTICLES):
            assert process.poll() is None, log.read_text()[-3000:]
            time.sleep(1)
        assert sorted(_titles(store)) == sorted(article.title for article in ARTICLES), log.read_text()[
            -3000:
        ]
        assert SEED_ARTICLE.title in _titles(store)
        children = subprocess.run(
            ["pgrep", "-P", str(process.pid)], capture_output=True, text=True, check=False
        )
        assert len(children.stdout.split()) == 3, "crawler, worker and sink run as children"
        if jemalloc_library() is not None:  # deploy/install-system-packages.sh installs it
            workers = [pid for pid in children.stdout.split() if _command(pid)[-1:] == ["worker"]]
            assert len(workers) == 1, [_command(pid) for pid in children.stdout.split()]
            assert allocator_in_use(Path(f"/proc/{workers[0]}/maps")) == "jemalloc"
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0, log.read_text()[-3000:]
        text = log.read_text()
        assert "newsfeed run: crawler, worker, sink" in text
        # The worker's extraction processes exit just after it; give them a moment.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and _group_members(process.pid):
            time.sleep(0.2)
        left = _group_members(process.pid)
        assert left == [], "every role stopped with it"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
