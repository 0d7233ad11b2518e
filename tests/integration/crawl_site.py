"""A local, partly hostile news site for crawler behaviour tests; it records every request it gets.

The site runs an aiohttp app on 127.0.0.1 (port 0) in its own thread with its own event loop, so the
times it records are the server's view, unaffected by how busy the crawler's loop is. Times come from
time.monotonic(), which is the same clock in every thread of the process, so a test may compare them
with times taken by the crawler side.

Served paths (`base` is `http://127.0.0.1:<port>`):

- `/robots.txt`: `Disallow` lines and an optional `Crawl-delay`, from the constructor.
- `/feeds/<name>.xml`: an RSS 2.0 feed whose item links are `site.feeds[name]` (set by the test).
- `/feeds/bomb.xml`: a billion-laughs feed (entities nested ten deep).
- `/sitemaps/plain.xml`, `/sitemaps/index.xml` (children `child-1.xml`, `child-2.xml`),
  `/sitemaps/articles.xml.gz` (a gzip file, not a gzip transfer) and `/sitemaps/news.xml` (Google News).
  `SITEMAP_ARTICLES` lists the article paths each sitemap source leads to.
- `/section/world.html`: a section page linking `SECTION_ARTICLES` and `SECTION_NAV` links.
- `/hostile/...`: see `HOSTILE`.
- any other path ending in `.html`: an article page with an ETag and a Last-Modified date, answering
  304 to a matching If-None-Match (or, without one, If-Modified-Since); other paths are 404.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from xml.sax.saxutils import escape

from aiohttp import web

ARTICLE_LAST_MODIFIED = datetime(2024, 5, 1, 8, 30, tzinfo=UTC)
MIB = 1024 * 1024

SITEMAP_ARTICLES: dict[str, list[str]] = {
    "plain": ["/sitemap/plain-1.html", "/sitemap/plain-2.html"],
    "index": ["/sitemap/child-1a.html", "/sitemap/child-1b.html", "/sitemap/child-2a.html"],
    "gzip": ["/sitemap/gzipped-1.html", "/sitemap/gzipped-2.html"],
    "news": ["/news/2024/05/01/election-night.html", "/news/2024/05/01/markets-rally.html"],
}
NEWS_SITEMAP_DATES = {
    "/news/2024/05/01/election-night.html": "2024-05-01T06:00:00+00:00",
    "/news/2024/05/01/markets-rally.html": "2024-05-01T07:15:00+02:00",
}
SECTION_PATTERN = r"/world/\d{4}/[a-z0-9-]+\.html$"
SECTION_ARTICLES = ["/world/2024/floods-in-the-north.html", "/world/2024/summit-ends.html"]
SECTION_NAV = ["/about.html", "/world/index.html", "/tag/politics.html", "/world/2024/"]

HOSTILE = {
    "retry-after": "/hostile/busy.html",  # 429 with Retry-After: 1 on the first request, then 200
    "server-error": "/hostile/flaky.html",  # 500 on the first request, then 200
    "slow": "/hostile/slow.html",  # sends nothing for `slow_s` seconds
    "redirect-loop": "/hostile/loop-a.html",  # -> loop-b.html -> loop-a.html
    "huge": "/hostile/huge.html",  # 50 MB of HTML, streamed without Content-Length
    "gzip-bomb": "/hostile/bomb.html",  # Content-Encoding: gzip, inflates to `bomb_gib` GiB of zeros
    "pdf": "/hostile/report.pdf",  # application/pdf with a large Content-Length
    "cp1252-as-utf8": "/hostile/cafe.html",  # header says UTF-8, bytes are windows-1252
    "meta-windows-1251": "/hostile/cyrillic.html",  # no header charset, <meta charset="windows-1251">
}
CAFE_TEXT = "Le café du coin – 5 € le menu"
CYRILLIC_TEXT = "Новости дня: правительство объявило о реформе"
HUGE_BYTES = 50 * 1000 * 1000
PDF_BYTES = 8 * MIB


@dataclass
class RequestRecord:
    """One request as the server saw it; `bytes_sent` and `completed` are kept for streamed bodies."""

    path: str
    query: str
    method: str
    started: float
    if_none_match: str | None
    if_modified_since: str | None
    status: int | None = None
    finished: float | None = None
    bytes_sent: int = 0
    completed: bool | None = None
    client_gone: float | None = None
    notes: dict[str, object] = field(default_factory=dict)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
RECORD = web.RequestKey("record", RequestRecord)


class CrawlSite:
    """The site; use as a context manager (or start()/stop()) and read `requests` afterwards."""

    def __init__(
        self,
        *,
        disallow: Iterable[str] = (),
        crawl_delay_s: float | None = None,
        slow_s: float = 2.0,
        bomb_gib: int = 16,
        article_delay_s: float = 0.0,
    ) -> None:
        self.disallow = list(disallow)
        self.crawl_delay_s = crawl_delay_s
        self.slow_s = slow_s
        self.bomb_gib = bomb_gib
        self.article_delay_s = article_delay_s
        self.feeds: dict[str, list[str]] = {}
        self.base = ""
        self._records: list[RequestRecord] = []
        self._lock = threading.Lock()
        self._hits: dict[str, int] = {}
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing: asyncio.Event | None = None
        self._failure: BaseException | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> CrawlSite:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> str:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), name="crawl-site", daemon=True)
        self._thread.start()
        if not ready.wait(10) or not self.base:
            raise RuntimeError(f"the crawl site did not start: {self._failure!r}")
        return self.base

    def stop(self) -> None:
        loop, closing, thread = self._loop, self._closing, self._thread
        if loop is None or closing is None or thread is None:
            return
        loop.call_soon_threadsafe(closing.set)
        thread.join(30)
        if thread.is_alive():
            raise RuntimeError("the crawl site did not stop")

    def _serve(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            runner = loop.run_until_complete(self._start_app())
            ready.set()
            assert self._closing is not None
            loop.run_until_complete(self._closing.wait())
            loop.run_until_complete(runner.cleanup())
        except BaseException as error:  # reported by start(); a test thread must not die silently
            self._failure = error
            ready.set()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _start_app(self) -> web.AppRunner:
        self._closing = asyncio.Event()
        app = web.Application(middlewares=[self._record])
        app.router.add_get("/robots.txt", self._robots)
        app.router.add_get("/feeds/bomb.xml", self._xml_bomb)
        app.router.add_get("/feeds/{name}.xml", self._feed)
        app.router.add_get("/sitemaps/articles.xml.gz", self._gzip_sitemap)
        app.router.add_get("/sitemaps/{name}.xml", self._sitemap)
        app.router.add_get("/section/world.html", self._section)
        hostile: dict[str, Handler] = {
            HOSTILE["retry-after"]: self._busy,
            HOSTILE["server-error"]: self._flaky,
            HOSTILE["slow"]: self._slow,
            HOSTILE["redirect-loop"]: self._redirect_loop,
            "/hostile/loop-b.html": self._redirect_loop,
            HOSTILE["huge"]: self._huge,
            HOSTILE["gzip-bomb"]: self._gzip_bomb,
            HOSTILE["pdf"]: self._pdf,
            HOSTILE["cp1252-as-utf8"]: self._cafe,
            HOSTILE["meta-windows-1251"]: self._cyrillic,
        }
        for path, handler in hostile.items():
            app.router.add_get(path, handler)
        app.router.add_get("/{tail:.*}", self._article)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=5.0)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        self.base = f"http://{host}:{port}"
        return runner

    # --- the request log -------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def requests_to(self, path: str) -> list[RequestRecord]:
        return [record for record in self.requests if record.path == path]

    def paths(self) -> list[str]:
        return [record.path for record in self.requests]

    def url(self, path: str) -> str:
        return self.base + path

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        record = RequestRecord(
            path=request.path,
            query=request.query_string,
            method=request.method,
            started=time.monotonic(),
            if_none_match=request.headers.get("If-None-Match"),
            if_modified_since=request.headers.get("If-Modified-Since"),
        )
        with self._lock:
            self._records.append(record)
            self._hits[request.path] = self._hits.get(request.path, 0) + 1
            record.notes["hit"] = self._hits[request.path]
        request[RECORD] = record
        try:
            response = await handler(request)
            record.status = response.status
            return response
        except web.HTTPException as error:
            record.status = error.status
            raise
        finally:
            record.finished = time.monotonic()

    # --- discovery -------------------------------------------------------------------------------

    async def _robots(self, request: web.Request) -> web.Response:
        lines = ["User-agent: *", *(f"Disallow: {path}" for path in self.disallow)]
        if self.crawl_delay_s is not None:
            lines.append(f"Crawl-delay: {self.crawl_delay_s:g}")
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")

    async def _feed(self, request: web.Request) -> web.Response:
        links = self.feeds.get(request.match_info["name"])
        if links is None:
            raise web.HTTPNotFound
        items = "".join(
            f"<item><title>Story {number}</title><link>{escape(link)}</link>"
            f"<guid isPermaLink='false'>story-{number}</guid>"
            f"<pubDate>Wed, 01 May 2024 0{number % 10}:00:00 GMT</pubDate></item>"
            for number, link in enumerate(links, start=1)
        )
        body = (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>Local news</title><link>{self.base}/</link><description>test</description>"
            f"{items}</channel></rss>"
        )
        return web.Response(body=body.encode(), headers={"Content-Type": "application/rss+xml"})

    async def _xml_bomb(self, request: web.Request) -> web.Response:
        entities = ['<!ENTITY lol "lol">'] + [
            f'<!ENTITY lol{level} "{("&lol" + (str(level - 1) if level > 1 else "") + ";") * 10}">'
            for level in range(1, 10)
        ]
        body = (
            '<?xml version="1.0"?>\n<!DOCTYPE rss [\n'
            + "\n".join(entities)
            + '\n]>\n<rss version="2.0"><channel><title>&lol9;</title>'
            f"<item><title>bomb</title><link>{self.base}/bomb-victim.html</link></item>"
            "</channel></rss>"
        )
        return web.Response(body=body.encode(), headers={"Content-Type": "application/rss+xml"})

    def _urlset(self, paths: list[str], *, news: bool = False) -> bytes:
        entries = []
        for path in paths:
            extra = "<lastmod>2024-05-01</lastmod>"
            if news:
                extra = (
                    "<news:news><news:publication><news:name>Local</news:name>"
                    "<news:language>en</news:language></news:publication>"
                    f"<news:publication_date>{NEWS_SITEMAP_DATES[path]}</news:publication_date>"
                    f"<news:title>Headline for {escape(path)}</news:title></news:news>"
                )
            entries.append(f"<url><loc>{escape(self.base + path)}</loc>{extra}</url>")
        namespaces = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'
        if news:
            namespaces += ' xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"'
        return (
            f'<?xml version="1.0" encoding="UTF-8"?><urlset {namespaces}>{"".join(entries)}</urlset>'.encode()
        )

    async def _sitemap(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        index_articles = SITEMAP_ARTICLES["index"]
        if name == "plain":
            body = self._urlset(SITEMAP_ARTICLES["plain"])
        elif name == "news":
            body = self._urlset(SITEMAP_ARTICLES["news"], news=True)
        elif name == "child-1":
            body = self._urlset(index_articles[:2])
        elif name == "child-2":
            body = self._urlset(index_articles[2:])
        elif name == "index":
            children = "".join(
                f"<sitemap><loc>{self.base}/sitemaps/{child}.xml</loc><lastmod>2024-05-01</lastmod></sitemap>"
                for child in ("child-1", "child-2")
            )
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>'
                f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{children}</sitemapindex>'
            ).encode()
        else:
            raise web.HTTPNotFound
        return web.Response(body=body, headers={"Content-Type": "application/xml"})

    async def _gzip_sitemap(self, request: web.Request) -> web.Response:
        compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
        body = compressor.compress(self._urlset(SITEMAP_ARTICLES["gzip"])) + compressor.flush()
        return web.Response(body=body, headers={"Content-Type": "application/x-gzip"})

    async def _section(self, request: web.Request) -> web.Response:
        links = [
            *(f'<li><a href="{path}">Nav {index}</a></li>' for index, path in enumerate(SECTION_NAV)),
            # One relative, one absolute, and the first again with a fragment: two articles in all.
            '<li><a href="../world/2024/floods-in-the-north.html">Floods</a></li>',
            f'<li><a href="{self.base}{SECTION_ARTICLES[1]}">Summit</a></li>',
            f'<li><a href="{SECTION_ARTICLES[0]}#comments">Floods (comments)</a></li>',
        ]
        html = (
            "<!doctype html><html><head><title>World</title></head><body>"
            f"<nav><ul>{''.join(links[: len(SECTION_NAV)])}</ul></nav>"
            f"<main><ul>{''.join(links[len(SECTION_NAV) :])}</ul></main></body></html>"
        )
        return web.Response(text=html, content_type="text/html")

    # --- articles --------------------------------------------------------------------------------

    @staticmethod
    def etag_of(path: str) -> str:
        return f'"v1-{zlib.crc32(path.encode()):08x}"'

    async def _article(self, request: web.Request) -> web.Response:
        path = request.path
        if not path.endswith(".html"):
            raise web.HTTPNotFound
        if self.article_delay_s:
            await asyncio.sleep(self.article_delay_s)
        etag = self.etag_of(path)
        last_modified = format_datetime(ARTICLE_LAST_MODIFIED, usegmt=True)
        validators = {"ETag": etag, "Last-Modified": last_modified}
        if_none_match = request.headers.get("If-None-Match")
        if if_none_match is not None:
            if etag in [tag.strip() for tag in if_none_match.split(",")] or if_none_match.strip() == "*":
                return web.Response(status=304, headers=validators)
        elif (since := request.headers.get("If-Modified-Since")) is not None:
            with contextlib.suppress(TypeError, ValueError):
                if parsedate_to_datetime(since) >= ARTICLE_LAST_MODIFIED:
                    return web.Response(status=304, headers=validators)
        slug = path.rsplit("/", 1)[-1].removesuffix(".html").replace("-", " ")
        html = (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(slug)}</title></head>"
            f"<body><article><h1>{escape(slug.title())}</h1>"
            f"<p>Reporting on {escape(slug)} from the local test desk.</p></article></body></html>"
        )
        return web.Response(
            body=html.encode(), headers={"Content-Type": "text/html; charset=utf-8", **validators}
        )

    # --- hostile ---------------------------------------------------------------------------------

    def _first_hit(self, request: web.Request) -> bool:
        return request[RECORD].notes["hit"] == 1

    async def _busy(self, request: web.Request) -> web.StreamResponse:
        if self._first_hit(request):
            return web.Response(status=429, text="slow down", headers={"Retry-After": "1"})
        return await self._article(request)

    async def _flaky(self, request: web.Request) -> web.StreamResponse:
        if self._first_hit(request):
            return web.Response(status=500, text="oops")
        return await self._article(request)

    async def _slow(self, request: web.Request) -> web.StreamResponse:
        assert self._closing is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), self.slow_s)
        return await self._article(request)

    async def _redirect_loop(self, request: web.Request) -> web.StreamResponse:
        target = "/hostile/loop-b.html" if request.path.endswith("loop-a.html") else HOSTILE["redirect-loop"]
        raise web.HTTPFound(target)

    async def _stream(
        self, request: web.Request, response: web.StreamResponse, chunks: Iterator[bytes]
    ) -> web.StreamResponse:
        """Write chunks until they run out or the client hangs up; the record says which."""
        record: RequestRecord = request[RECORD]
        await response.prepare(request)
        try:
            for chunk in chunks:
                await response.write(chunk)
                record.bytes_sent += len(chunk)
            await response.write_eof()
            record.completed = True
        except ConnectionError:
            record.completed = False
            record.client_gone = time.monotonic()
        return response

    async def _huge(self, request: web.Request) -> web.StreamResponse:
        line = b"<p>" + b"all work and no play makes a very long page " * 20 + b"</p>\n"
        chunk = line * (64 * 1024 // len(line))

        def chunks() -> Iterator[bytes]:
            yield b"<!doctype html><html><head><title>huge</title></head><body>\n"
            sent = 0
            while sent < HUGE_BYTES:
                yield chunk
                sent += len(chunk)

        response = web.StreamResponse(headers={"Content-Type": "text/html; charset=utf-8"})
        response.enable_chunked_encoding()
        return await self._stream(request, response, chunks())

    async def _gzip_bomb(self, request: web.Request) -> web.StreamResponse:
        mebibytes = self.bomb_gib * 1024
        request[RECORD].notes["inflated_bytes"] = mebibytes * MIB
        request[RECORD].notes["compressed_bytes"] = (
            sum(len(chunk) for chunk in gzip_zeros(2)) * mebibytes // 2
        )
        response = web.StreamResponse(
            headers={"Content-Type": "text/html; charset=utf-8", "Content-Encoding": "gzip"}
        )
        response.enable_chunked_encoding()
        return await self._stream(request, response, gzip_zeros(mebibytes))

    async def _pdf(self, request: web.Request) -> web.StreamResponse:
        """Headers first; the body only once it is clear the client is still there and reading."""
        record: RequestRecord = request[RECORD]
        response = web.StreamResponse(headers={"Content-Type": "application/pdf"})
        response.content_length = PDF_BYTES
        await response.prepare(request)
        assert self._closing is not None
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline and not self._closing.is_set():
            transport = request.transport
            if transport is None or transport.is_closing():
                record.client_gone = time.monotonic()
                record.completed = False
                return response
            await asyncio.sleep(0.01)
        chunk = b"%PDF-1.4\n" + bytes(64 * 1024 - 9)
        return await self._stream(request, response, (chunk for _ in range(PDF_BYTES // len(chunk))))

    async def _cafe(self, request: web.Request) -> web.Response:
        html = f"<!doctype html><html><head><title>Café</title></head><body><p>{CAFE_TEXT}</p></body></html>"
        return web.Response(body=html.encode("cp1252"), headers={"Content-Type": "text/html; charset=utf-8"})

    async def _cyrillic(self, request: web.Request) -> web.Response:
        html = (
            '<!doctype html><html><head><meta charset="windows-1251"><title>Новости</title></head>'
            f"<body><p>{CYRILLIC_TEXT}</p></body></html>"
        )
        return web.Response(body=html.encode("windows-1251"), headers={"Content-Type": "text/html"})


def gzip_zeros(mebibytes: int) -> Iterator[bytes]:
    """A gzip stream of `mebibytes` MiB of zeros, made lazily (about 1 KB of output per MiB).

    After a full flush deflate starts afresh, so every MiB after the first compresses to the same bytes:
    those are computed once and repeated, and only the CRC is worked out as the stream goes.
    """
    zeros = bytes(MIB)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    first = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeated = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    final_block = compressor.flush()[:-8]  # the empty last block, without this short stream's trailer
    crc = zlib.crc32(zeros)
    yield first
    for _ in range(mebibytes - 1):
        crc = zlib.crc32(zeros, crc)
        yield repeated
    yield final_block + struct.pack("<II", crc, (mebibytes * MIB) & 0xFFFFFFFF)
