"""Hostile cases CrawlSite lacks (brotli bomb, long redirect chains, redirects to private addresses, servers
that always fail, a slow-loris body, a bogus charset, an XXE feed), served on several 127.0.0.1 ports.

Each port is a host of its own to the crawler (host and port are its politeness unit), so cases whose
failures count against their host (500s, 429s, time-outs) are put on ports of their own and cannot pause
the host of the others. The site runs in its own thread and event loop, as CrawlSite does.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from dataclasses import dataclass
from xml.sax.saxutils import escape

import brotli  # type: ignore[import-untyped]
from aiohttp import web

MIB = 1024 * 1024
BROTLI_BOMB_MIB = 256
REDIRECT_CHAIN = 12  # more than the crawler's 5 redirects
SSRF_TARGETS = {
    "loopback-alias": "http://127.0.0.2:{port}/ssrf-landing.html",
    "private": "http://10.0.0.1/ssrf-landing.html",
    "metadata": "http://169.254.169.254/latest/meta-data/",
}
BOGUS_CHARSET_TEXT = "Prix du caf\u00e9: 2 \u20ac"
SLOW_LORIS_BYTE_EVERY_S = 0.2


@dataclass
class Served:
    """One request as the site saw it."""

    port: int
    path: str
    status: int | None = None
    bytes_sent: int = 0


SERVED = web.RequestKey("served", Served)


class HostileSite:
    """Start with `with HostileSite(ports=4) as site:`; `site.url(port_index, path)` builds URLs."""

    def __init__(self, ports: int) -> None:
        self.port_count = ports
        self.ports: list[int] = []
        self.feeds: dict[str, list[str]] = {}
        self.served: list[Served] = []
        self._lock = threading.Lock()
        self._bomb = b""
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing: asyncio.Event | None = None
        self._failure: BaseException | None = None

    def __enter__(self) -> HostileSite:
        compressor = brotli.Compressor(quality=5)
        zeros = bytes(MIB)
        self._bomb = b"".join(compressor.process(zeros) for _ in range(BROTLI_BOMB_MIB)) + compressor.finish()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), name="hostile-site", daemon=True)
        self._thread.start()
        if not ready.wait(10) or len(self.ports) != self.port_count:
            raise RuntimeError(f"the hostile site did not start: {self._failure!r}")
        return self

    def __exit__(self, *exc_info: object) -> None:
        loop, closing, thread = self._loop, self._closing, self._thread
        if loop is None or closing is None or thread is None:
            return
        loop.call_soon_threadsafe(closing.set)
        thread.join(30)

    @property
    def bomb_bytes(self) -> int:
        return len(self._bomb)

    def url(self, port_index: int, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[port_index]}{path}"

    def requests_to(self, path: str) -> list[Served]:
        with self._lock:
            return [served for served in self.served if served.path == path]

    def _serve(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            runner = loop.run_until_complete(self._start())
            ready.set()
            assert self._closing is not None
            loop.run_until_complete(self._closing.wait())
            loop.run_until_complete(runner.cleanup())
        except BaseException as error:  # reported by __enter__; a test thread must not die silently
            self._failure = error
            ready.set()
        finally:
            loop.close()

    async def _start(self) -> web.AppRunner:
        self._closing = asyncio.Event()
        app = web.Application(middlewares=[self._record])
        app.router.add_get("/robots.txt", self._no_robots)
        app.router.add_get("/feeds/xxe.xml", self._xxe_feed)
        app.router.add_get("/feeds/{name}.xml", self._feed)
        app.router.add_get("/always-500.html", self._always_500)
        app.router.add_get("/always-429.html", self._always_429)
        app.router.add_get("/slow-loris.html", self._slow_loris)
        app.router.add_get("/brotli-bomb.html", self._brotli_bomb)
        app.router.add_get("/chain/{number}.html", self._chain)
        app.router.add_get("/ssrf/{target}.html", self._ssrf)
        app.router.add_get("/bogus-charset.html", self._bogus_charset)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=5.0)
        await runner.setup()
        for _ in range(self.port_count):
            await web.TCPSite(runner, "127.0.0.1", 0).start()
        self.ports = [address[1] for address in runner.addresses]
        return runner

    @web.middleware
    async def _record(self, request: web.Request, handler: object) -> web.StreamResponse:
        served = Served(request.url.port or 0, request.path)
        with self._lock:
            self.served.append(served)
        request[SERVED] = served
        try:
            response: web.StreamResponse = await handler(request)  # type: ignore[operator]
            served.status = response.status
            return response
        except web.HTTPException as error:
            served.status = error.status
            raise

    async def _no_robots(self, request: web.Request) -> web.Response:
        raise web.HTTPNotFound

    async def _feed(self, request: web.Request) -> web.Response:
        links = self.feeds.get(request.match_info["name"])
        if links is None:
            raise web.HTTPNotFound
        items = "".join(
            f"<item><title>Item {n}</title><link>{escape(link)}</link></item>" for n, link in enumerate(links)
        )
        body = (
            f'<?xml version="1.0"?><rss version="2.0"><channel><title>Hostile</title>{items}</channel></rss>'
        )
        return web.Response(body=body.encode(), headers={"Content-Type": "application/rss+xml"})

    async def _xxe_feed(self, request: web.Request) -> web.Response:
        body = (
            '<?xml version="1.0"?>\n<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
            '<rss version="2.0"><channel><title>&xxe;</title>'
            f"<item><title>x</title><link>{request.url.origin()}/xxe-victim.html</link></item>"
            "</channel></rss>"
        )
        return web.Response(body=body.encode(), headers={"Content-Type": "application/rss+xml"})

    async def _always_500(self, request: web.Request) -> web.Response:
        return web.Response(status=500, text="down for good")

    async def _always_429(self, request: web.Request) -> web.Response:
        return web.Response(status=429, text="slow down", headers={"Retry-After": "1"})

    async def _slow_loris(self, request: web.Request) -> web.StreamResponse:
        """A byte at a time, never finishing: each read is quick, only a total time limit ends it."""
        served = request[SERVED]
        response = web.StreamResponse(headers={"Content-Type": "text/html; charset=utf-8"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        assert self._closing is not None
        with contextlib.suppress(ConnectionError):
            await response.write(b"<!doctype html><html><body><p>")
            while not self._closing.is_set():
                await response.write(b"z")
                served.bytes_sent += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), SLOW_LORIS_BYTE_EVERY_S)
        return response

    async def _brotli_bomb(self, request: web.Request) -> web.Response:
        request[SERVED].bytes_sent = len(self._bomb)
        return web.Response(
            body=self._bomb,
            headers={"Content-Type": "text/html; charset=utf-8", "Content-Encoding": "br"},
        )

    async def _chain(self, request: web.Request) -> web.Response:
        number = int(request.match_info["number"])
        if number >= REDIRECT_CHAIN:
            return web.Response(
                text="<html><body><p>the end of the chain</p></body></html>", content_type="text/html"
            )
        raise web.HTTPFound(f"/chain/{number + 1}.html")

    async def _ssrf(self, request: web.Request) -> web.Response:
        target = SSRF_TARGETS.get(request.match_info["target"])
        if target is None:
            raise web.HTTPNotFound
        raise web.HTTPFound(target.format(port=request.url.port))

    async def _bogus_charset(self, request: web.Request) -> web.Response:
        html = (
            "<!doctype html><html><head><title>Caf\u00e9</title></head>"
            f"<body><p>{BOGUS_CHARSET_TEXT}</p></body></html>"
        )
        return web.Response(
            body=html.encode("cp1252"),
            headers={"Content-Type": "text/html; charset=x-no-such-charset"},
        )
