"""The worker's dashboard in headless Chromium, against a live pipeline on the real broker and demo site.

Chromium is driven over the DevTools protocol with aiohttp's websocket client: nothing to download.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from pipeline.crawl.service import crawl
from pipeline.demo.content import SEED_ARTICLE, SITES, SYNDICATED_COPY
from pipeline.demo.site import serve_site
from pipeline.ops.isolated import start_worker, stop_process, with_overrides
from pipeline.settings import PROJECT_DIR
from tests.conftest import IsolatedPipeline

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

ARTIFACTS = PROJECT_DIR / ".state" / "artifacts"
SEED_TOPIC = "us-russia"
PAGE_WIDTH = 1400
DEADLINE_S = 60.0


def chromium_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def eventually(check: Callable[[], Awaitable[Any]], what: str, timeout_s: float) -> Any:
    """The first truthy result of `check`, polled until the time is up."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        await asyncio.sleep(0.5)


class DevTools:
    """One page target over the Chrome DevTools Protocol: commands answered by id, events collected."""

    def __init__(self, socket_: aiohttp.ClientWebSocketResponse) -> None:
        self._socket = socket_
        self._next_id = 0
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self._socket:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(message.data)
            if "id" in data:
                future = self._pending.pop(data["id"], None)
                if future is not None and not future.done():
                    future.set_result(data)
            else:
                self.events.append(data)
        for future in self._pending.values():
            future.set_exception(ConnectionError("the DevTools connection closed"))

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[self._next_id] = future
        await self._socket.send_str(json.dumps({"id": self._next_id, "method": method, "params": params}))
        reply = await asyncio.wait_for(future, 30)
        if "error" in reply:
            raise AssertionError(f"{method}: {reply['error']}")
        return dict(reply.get("result", {}))

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def console_errors(self) -> list[str]:
        """Uncaught exceptions, console.error calls and browser log entries at level error."""
        errors = []
        for event in self.events:
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                errors.append(
                    f"exception: {details.get('exception', {}).get('description') or details['text']}"
                )
            elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                errors.append(f"console.{params['type']}: {[arg.get('value') for arg in params['args']]}")
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                errors.append(f"log: {params['entry']['text']} ({params['entry'].get('url', '')})")
        return errors

    async def close(self) -> None:
        await self._socket.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


@contextlib.asynccontextmanager
async def headless_chromium(binary: str, profile: Path, log_file: Path) -> AsyncIterator[DevTools]:
    """A headless Chromium with its own profile, connected to its first page target."""
    with log_file.open("wb") as log:
        # --no-sandbox: root in a container gets no user namespace for the sandbox, and the only page
        # loaded is the local dashboard.
        browser = await asyncio.create_subprocess_exec(
            binary, "--headless=new", "--no-sandbox", "--remote-debugging-port=0",
            f"--user-data-dir={profile}", "--no-first-run", "--no-default-browser-check",
            "--disable-gpu", "--disable-extensions", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--hide-scrollbars",
            f"--window-size={PAGE_WIDTH},1000", "about:blank",
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    try:
        devtools_port = await eventually(
            lambda: _devtools_port(browser, profile, log_file), "chromium's DevTools port", 20
        )
        async with aiohttp.ClientSession() as http:

            async def page_socket_url() -> str | None:
                async with http.get(f"http://127.0.0.1:{devtools_port}/json/list") as response:
                    targets = await response.json()
                return next((t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page"), None)

            url = await eventually(page_socket_url, "a page target", 10)
            async with http.ws_connect(url, max_msg_size=0) as socket_:
                devtools = DevTools(socket_)
                try:
                    yield devtools
                finally:
                    await devtools.close()
    finally:
        if browser.returncode is None:
            browser.terminate()
            try:
                await asyncio.wait_for(browser.wait(), 10)
            except TimeoutError:
                browser.kill()
                await browser.wait()


async def _devtools_port(browser: asyncio.subprocess.Process, profile: Path, log_file: Path) -> int | None:
    # With port 0 Chromium picks a free port and writes it to this file once it listens.
    if browser.returncode is not None:
        output = await asyncio.to_thread(log_file.read_text, errors="replace")
        raise AssertionError(f"chromium exited with {browser.returncode}: {output[-2000:]}")
    active_port = profile / "DevToolsActivePort"
    text = await asyncio.to_thread(lambda: active_port.read_text() if active_port.exists() else "")
    first_line = text.splitlines()[0] if text else ""
    return int(first_line) if first_line.isdigit() else None


async def summary_of(http: aiohttp.ClientSession, base_url: str) -> dict[str, Any] | None:
    try:
        async with http.get(f"{base_url}/dashboard/api/summary") as response:
            return dict(await response.json()) if response.status == 200 else None
    except aiohttp.ClientConnectionError:
        return None  # the worker's web server is not up yet


def stored_with_topic(summary: dict[str, Any] | None, title: str, topic: str) -> bool:
    return bool(summary) and any(
        article["title"] == title and topic in [tag["id"] for tag in article["topics"]]
        for article in summary["latest"]  # type: ignore[index]
    )


def page_shows(title: str, topic: str, copy_title: str) -> str:
    """A script that is true once the page shows the story under the topic with its evidence, the copy
    in the story's cluster, the topic in the chart, and a measured extraction rate."""
    return f"""(() => {{
      const story = [...document.querySelectorAll(".story")]
        .find((node) => node.querySelector("h3").textContent === {json.dumps(title)});
      const tag = story && story.querySelector('.topic[data-topic={json.dumps(topic)}]');
      const cluster = [...document.querySelectorAll(".cluster")]
        .find((node) => node.querySelector(".canonical").textContent === {json.dumps(title)});
      const rate = document.querySelector('[data-rate="extracted"] .value');
      return Boolean(tag && tag.querySelectorAll(".evidence li").length
        && cluster && cluster.textContent.includes({json.dumps(copy_title)})
        && document.querySelector('#chart rect[data-topic={json.dumps(topic)}]')
        && rate && !rate.querySelector(".empty"));
    }})()"""


async def test_dashboard_shows_the_live_pipeline_without_console_errors(
    isolated: IsolatedPipeline, tmp_path: Path
) -> None:
    binary = chromium_binary()
    if binary is None:
        pytest.skip(
            "no chromium binary on PATH; deploy/install-system-packages.sh installs Debian's chromium"
        )
    web_port = free_port()
    overrides = isolated.overrides
    overrides["worker"] |= {"web_enabled": True, "web_port": web_port, "web_host": "127.0.0.1"}
    # The bundled site runs on loopback, which the crawler's SSRF guard refuses unless allowed.
    overrides["crawl"] |= {"allowed_private_hosts": ["127.0.0.1"], "min_host_delay_s": 0.05}
    overrides["metrics"] = {**overrides.get("metrics", {}), "lag_interval_s": 2.0}
    settings = with_overrides(isolated.settings, overrides)
    base_url = f"http://127.0.0.1:{web_port}"
    started = time.monotonic()

    worker = start_worker(overrides, isolated.state_dir / "worker.log")
    try:
        async with serve_site() as site_url, aiohttp.ClientSession() as http:
            await crawl(settings, [f"{site_url}{site.feed_path}" for site in SITES], once=True)
            await eventually(
                lambda: _stored_seed(http, base_url),
                f"the seed story under {SEED_TOPIC} in the dashboard's summary",
                DEADLINE_S - (time.monotonic() - started),
            )
            async with headless_chromium(binary, tmp_path / "chromium", tmp_path / "chromium.log") as page:
                for domain in ("Runtime", "Log", "Page"):
                    await page.send(f"{domain}.enable")
                await page.send(
                    "Emulation.setDeviceMetricsOverride",
                    width=PAGE_WIDTH, height=1000, deviceScaleFactor=1, mobile=False,
                )  # fmt: skip
                await page.send("Page.navigate", url=f"{base_url}/dashboard/")

                expected = page_shows(SEED_ARTICLE.title, SEED_TOPIC, SYNDICATED_COPY.title)

                async def shown() -> bool:
                    return bool(await page.evaluate(expected))

                try:
                    await eventually(shown, "the page to show the seed story, its copy and the rates", 30)
                    await asyncio.sleep(0.5)  # let the last poll's paint land before the picture
                finally:
                    # Taken whatever happened: when the page falls short, the picture shows how.
                    save_screenshot(await full_page_screenshot(page), tmp_path)
                errors = page.console_errors()
    finally:
        await asyncio.to_thread(stop_process, worker)

    assert (ARTIFACTS / "dashboard.png").read_bytes().startswith(b"\x89PNG")
    assert errors == [], "the page logged errors"


def save_screenshot(png: bytes, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "dashboard.png").write_bytes(png)
    (tmp_path / "dashboard.png").write_bytes(png)


async def _stored_seed(http: aiohttp.ClientSession, base_url: str) -> bool:
    return stored_with_topic(await summary_of(http, base_url), SEED_ARTICLE.title, SEED_TOPIC)


async def full_page_screenshot(page: DevTools) -> bytes:
    metrics = await page.send("Page.getLayoutMetrics")
    height = int(metrics["cssContentSize"]["height"]) + 1
    await page.send(
        "Emulation.setDeviceMetricsOverride",
        width=PAGE_WIDTH,
        height=height,
        deviceScaleFactor=1,
        mobile=False,
    )
    shot = await page.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    return base64.b64decode(shot["data"])
