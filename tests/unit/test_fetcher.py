"""Fetch layer and SSRF guard: validators, redirects, limits, bombs, charsets (servers on 127.0.0.1 only)."""

from __future__ import annotations

import asyncio
import gzip
import importlib.util
import socket
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from pipeline.crawl.fetcher import (
    FEED_TYPES,
    FetchError,
    FetchPolicy,
    Validators,
    crawler_session,
    decode_html,
    fetch,
)
from pipeline.crawl.guard import AddressForbiddenError, AddressPolicy, GuardedConnector, GuardedResolver

LOOPBACK_ONLY = AddressPolicy(frozenset({"127.0.0.1"}))
PAGE_HTML = "<!DOCTYPE html><html><head><title>Page</title></head><body><p>Grüße aus Köln.</p></body></html>"
ETAG = '"v1"'
LAST_MODIFIED = "Wed, 01 Jan 2025 00:00:00 GMT"
LIMIT_BYTES = 1024 * 1024
HUGE_PAGE_BYTES = 50 * 1024 * 1024
BOMB_INFLATED_BYTES = 1024 * 1024 * 1024
STREAM_CHUNK = 64 * 1024
ZEROS_MB = bytes(1024 * 1024)
SLOW_HANDLER_S = 3.0
HAS_BROTLI = importlib.util.find_spec("brotli") is not None


@dataclass
class ServerState:
    """What the test server saw and sent."""

    request_headers: list[dict[str, str]] = field(default_factory=list)
    sent_bytes: int = 0
    stream_done: asyncio.Event = field(default_factory=asyncio.Event)
    raw_content_type: str = "text/html"
    raw_body: bytes = b""


@dataclass
class LocalServer:
    url: str
    port: int
    state: ServerState


# --- server -----------------------------------------------------------------------------------------


def _gzip_bomb_blocks(inflated_bytes: int) -> Iterator[bytes]:
    """A gzip stream of zeros, made lazily: after a full flush every 1 MB block compresses identically."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    yield compressor.compress(ZEROS_MB) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeated = compressor.compress(ZEROS_MB) + compressor.flush(zlib.Z_FULL_FLUSH)
    for _ in range(inflated_bytes // len(ZEROS_MB) - 1):
        yield repeated


def _brotli_bomb_blocks(inflated_bytes: int) -> Iterator[bytes]:
    import brotli  # noqa: PLC0415 - optional dependency, only when installed

    compressor = brotli.Compressor(quality=1)
    for _ in range(inflated_bytes // len(ZEROS_MB)):
        yield compressor.process(ZEROS_MB)
    yield compressor.finish()


def _batched(blocks: Iterator[bytes], min_bytes: int = 32 * 1024) -> Iterator[bytes]:
    """Writes big enough that one network chunk inflates to far more than the limit."""
    batch = bytearray()
    for block in blocks:
        batch += block
        if len(batch) >= min_bytes:
            yield bytes(batch)
            batch.clear()
    yield bytes(batch)


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


async def _stream(
    request: web.Request, blocks: Iterator[bytes], state: ServerState, **headers: str
) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/html", **headers})
    await response.prepare(request)
    try:
        for block in blocks:
            if request.transport is None or request.transport.is_closing():
                break
            await response.write(block)
            state.sent_bytes += len(block)
            await asyncio.sleep(0)  # lets the server notice the client hanging up
    except ConnectionError:
        pass
    finally:
        state.stream_done.set()
    return response


def _app(state: ServerState) -> web.Application:
    async def page(request: web.Request) -> web.Response:
        state.request_headers.append(dict(request.headers))
        if request.headers.get("If-None-Match") == ETAG:
            return web.Response(status=304, headers={"ETag": ETAG})
        return web.Response(
            text=PAGE_HTML,
            content_type="text/html",
            charset="utf-8",
            headers={"ETag": ETAG, "Last-Modified": LAST_MODIFIED},
        )

    async def throttled(request: web.Request) -> web.Response:
        return web.Response(status=429, text="slow down", headers={"Retry-After": "7"})

    async def unavailable_until(request: web.Request) -> web.Response:
        when = datetime.now(UTC) + timedelta(seconds=120)
        return web.Response(status=503, headers={"Retry-After": format_datetime(when, usegmt=True)})

    async def server_error(request: web.Request) -> web.Response:
        return web.Response(status=500, text="<h1>oops</h1>", content_type="text/html")

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(SLOW_HANDLER_S)
        return web.Response(text=PAGE_HTML, content_type="text/html")

    async def loop_a(request: web.Request) -> web.Response:
        raise web.HTTPFound("/loop-b")

    async def loop_b(request: web.Request) -> web.Response:
        raise web.HTTPMovedPermanently("/loop-a")

    async def chain(request: web.Request) -> web.Response:
        remaining = int(request.match_info["remaining"])
        if remaining == 0:
            return web.Response(text=PAGE_HTML, content_type="text/html")
        raise web.HTTPFound(f"/chain/{remaining - 1}")

    async def to_metadata(request: web.Request) -> web.Response:
        raise web.HTTPFound("http://169.254.169.254/latest/meta-data/")

    async def to_loopback(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"http://127.0.0.1:{request.url.port}/page")

    async def huge(request: web.Request) -> web.StreamResponse:
        chunk = b"x" * STREAM_CHUNK
        return await _stream(request, iter([chunk] * (HUGE_PAGE_BYTES // STREAM_CHUNK)), state)

    async def gzip_bomb(request: web.Request) -> web.StreamResponse:
        blocks = _batched(_gzip_bomb_blocks(BOMB_INFLATED_BYTES))
        return await _stream(request, blocks, state, **{"Content-Encoding": "gzip"})

    async def brotli_bomb(request: web.Request) -> web.StreamResponse:
        blocks = _batched(_brotli_bomb_blocks(BOMB_INFLATED_BYTES))
        return await _stream(request, blocks, state, **{"Content-Encoding": "br"})

    async def pdf(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/pdf"})
        await response.prepare(request)
        await response.write(b"%PDF-1.7\n")
        await asyncio.sleep(SLOW_HANDLER_S)
        await response.write(b"x" * STREAM_CHUNK)
        return response

    async def declared_huge(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/html"})
        response.content_length = HUGE_PAGE_BYTES
        await response.prepare(request)
        await response.write(b"<html>")
        await asyncio.sleep(SLOW_HANDLER_S)
        return response

    async def encoded(request: web.Request) -> web.Response:
        html = PAGE_HTML.encode()
        encodings = {
            "gzip": ("gzip", gzip.compress(html)),
            "gzip-members": ("gzip", gzip.compress(html[:40]) + gzip.compress(html[40:])),
            "deflate": ("deflate", zlib.compress(html)),
            "deflate-raw": ("deflate", _raw_deflate(html)),
        }
        content_encoding, body = encodings[request.match_info["kind"]]
        return web.Response(
            body=body,
            headers={"Content-Type": "text/html; charset=utf-8", "Content-Encoding": content_encoding},
        )

    async def raw(request: web.Request) -> web.Response:
        return web.Response(body=state.raw_body, headers={"Content-Type": state.raw_content_type})

    app = web.Application()
    for path, handler in {
        "/page": page,
        "/throttled": throttled,
        "/unavailable": unavailable_until,
        "/error": server_error,
        "/slow": slow,
        "/loop-a": loop_a,
        "/loop-b": loop_b,
        "/chain/{remaining}": chain,
        "/to-metadata": to_metadata,
        "/to-loopback": to_loopback,
        "/huge": huge,
        "/gzip-bomb": gzip_bomb,
        "/brotli-bomb": brotli_bomb,
        "/paper.pdf": pdf,
        "/declared-huge": declared_huge,
        "/encoded/{kind}": encoded,
        "/raw": raw,
    }.items():
        app.router.add_get(path, handler)
    return app


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    state = ServerState()
    app = _app(state)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        yield LocalServer(f"http://127.0.0.1:{port}", port, state)
    finally:
        await runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with crawler_session(FetchPolicy(), LOOPBACK_ONLY) as client:
        yield client


@pytest.fixture
async def connect_attempts(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every address a TCP connection is attempted to; only loopback ones are let through."""
    loop = asyncio.get_running_loop()
    attempts: list[Any] = []
    real_sock_connect = loop.sock_connect

    async def recording_sock_connect(sock: socket.socket, address: Any) -> None:
        attempts.append(address)
        if address[0] != "127.0.0.1":
            raise ConnectionRefusedError(f"test refuses to connect to {address}")
        await real_sock_connect(sock, address)

    monkeypatch.setattr(loop, "sock_connect", recording_sock_connect)
    return attempts


async def _fetch_error(session: aiohttp.ClientSession, url: str, policy: FetchPolicy) -> FetchError:
    with pytest.raises(FetchError) as caught:
        await fetch(session, url, policy)
    return caught.value


# --- statuses and validators ------------------------------------------------------------------------


async def test_page_is_fetched_with_its_validators(
    session: aiohttp.ClientSession, server: LocalServer
) -> None:
    result = await fetch(session, f"{server.url}/page", FetchPolicy())
    assert result.status == 200
    assert result.text == PAGE_HTML
    assert result.body == PAGE_HTML.encode()
    assert result.charset == "utf-8"
    assert result.content_type == "text/html"
    assert result.validators == Validators(etag=ETAG, last_modified=LAST_MODIFIED)
    assert result.headers["etag"] == ETAG
    assert result.redirects == ()
    assert not result.not_modified
    sent = server.state.request_headers[0]
    assert "gzip" in sent["Accept-Encoding"]
    assert sent["User-Agent"] == FetchPolicy().user_agent


async def test_matching_etag_gives_not_modified(session: aiohttp.ClientSession, server: LocalServer) -> None:
    validators = Validators(etag=ETAG, last_modified=LAST_MODIFIED)
    result = await fetch(session, f"{server.url}/page", FetchPolicy(), validators=validators)
    assert result.status == 304
    assert result.not_modified
    assert result.body == b""
    assert result.text is None
    assert result.validators == validators  # the 304 omitted Last-Modified; the old one still holds
    sent = server.state.request_headers[0]
    assert sent["If-None-Match"] == ETAG
    assert sent["If-Modified-Since"] == LAST_MODIFIED


async def test_429_carries_retry_after_seconds(session: aiohttp.ClientSession, server: LocalServer) -> None:
    result = await fetch(session, f"{server.url}/throttled", FetchPolicy())
    assert result.status == 429
    assert result.retry_after_s == 7.0
    assert result.body == b""


async def test_503_carries_retry_after_http_date(session: aiohttp.ClientSession, server: LocalServer) -> None:
    result = await fetch(session, f"{server.url}/unavailable", FetchPolicy())
    assert result.status == 503
    assert result.retry_after_s is not None
    assert 100 <= result.retry_after_s <= 121


async def test_server_error_is_returned_not_raised(
    session: aiohttp.ClientSession, server: LocalServer
) -> None:
    result = await fetch(session, f"{server.url}/error", FetchPolicy())
    assert result.status == 500
    assert result.retry_after_s is None


async def test_slow_server_times_out_quickly(session: aiohttp.ClientSession, server: LocalServer) -> None:
    started = time.monotonic()
    error = await _fetch_error(session, f"{server.url}/slow", FetchPolicy(read_timeout_s=0.3))
    assert error.reason == "timeout"
    assert time.monotonic() - started < SLOW_HANDLER_S / 2


async def test_refused_connection(session: aiohttp.ClientSession) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = await _fetch_error(session, f"http://127.0.0.1:{port}/", FetchPolicy())
    assert error.reason == "connection"


@pytest.mark.parametrize("url", ["ftp://example.com/file", "/relative/path", "http:///no-host"])
async def test_unusable_url(session: aiohttp.ClientSession, url: str) -> None:
    error = await _fetch_error(session, url, FetchPolicy())
    assert error.reason == "bad-url"


# --- redirects --------------------------------------------------------------------------------------


async def test_redirect_loop(session: aiohttp.ClientSession, server: LocalServer) -> None:
    error = await _fetch_error(session, f"{server.url}/loop-a", FetchPolicy())
    assert error.reason == "redirect-loop"


async def test_too_many_redirects(session: aiohttp.ClientSession, server: LocalServer) -> None:
    error = await _fetch_error(session, f"{server.url}/chain/6", FetchPolicy(max_redirects=5))
    assert error.reason == "too-many-redirects"


async def test_redirects_up_to_the_limit_are_followed(
    session: aiohttp.ClientSession, server: LocalServer
) -> None:
    result = await fetch(session, f"{server.url}/chain/5", FetchPolicy(max_redirects=5))
    assert result.status == 200
    assert result.url == f"{server.url}/chain/5"
    assert result.final_url == f"{server.url}/chain/0"
    assert result.redirects == tuple(f"{server.url}/chain/{n}" for n in (5, 4, 3, 2, 1))
    assert result.text == PAGE_HTML


# --- body limits and decompression ------------------------------------------------------------------


async def test_huge_streamed_page_is_cut_off(session: aiohttp.ClientSession, server: LocalServer) -> None:
    error = await _fetch_error(session, f"{server.url}/huge", FetchPolicy(max_body_bytes=LIMIT_BYTES))
    assert error.reason == "too-large"
    await asyncio.wait_for(server.state.stream_done.wait(), 5)
    # The server only got as far as the socket buffers allow past what the client read.
    assert server.state.sent_bytes < HUGE_PAGE_BYTES // 2


async def test_declared_content_length_over_the_limit_is_refused_up_front(
    session: aiohttp.ClientSession, server: LocalServer
) -> None:
    started = time.monotonic()
    error = await _fetch_error(session, f"{server.url}/declared-huge", FetchPolicy())
    assert error.reason == "too-large"
    assert "Content-Length" in error.detail
    assert time.monotonic() - started < SLOW_HANDLER_S / 2


async def _assert_bomb_defused(session: aiohttp.ClientSession, url: str) -> None:
    tracemalloc.start()
    try:
        started = time.monotonic()
        error = await _fetch_error(session, url, FetchPolicy(max_body_bytes=LIMIT_BYTES))
        elapsed_s = time.monotonic() - started
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert error.reason == "too-large"
    assert "decompressed" in error.detail
    assert elapsed_s < 2.0
    assert peak_bytes < 8 * LIMIT_BYTES


async def test_gzip_bomb_is_cut_off_with_bounded_memory(
    session: aiohttp.ClientSession, server: LocalServer
) -> None:
    await _assert_bomb_defused(session, f"{server.url}/gzip-bomb")
    await asyncio.wait_for(server.state.stream_done.wait(), 5)
    assert server.state.sent_bytes < BOMB_INFLATED_BYTES // 1024 // 2  # the whole bomb is about 1 MB


@pytest.mark.skipif(not HAS_BROTLI, reason="brotli is not installed")
async def test_brotli_bomb_is_cut_off_with_bounded_memory(
    session: aiohttp.ClientSession, server: LocalServer
) -> None:
    await _assert_bomb_defused(session, f"{server.url}/brotli-bomb")


@pytest.mark.parametrize("kind", ["gzip", "gzip-members", "deflate", "deflate-raw"])
async def test_compressed_bodies_are_decoded(
    session: aiohttp.ClientSession, server: LocalServer, kind: str
) -> None:
    result = await fetch(session, f"{server.url}/encoded/{kind}", FetchPolicy())
    assert result.text == PAGE_HTML


async def test_non_html_is_refused_without_reading_the_body(
    session: aiohttp.ClientSession, server: LocalServer
) -> None:
    started = time.monotonic()
    error = await _fetch_error(session, f"{server.url}/paper.pdf", FetchPolicy())
    assert error.reason == "not-html"
    assert time.monotonic() - started < SLOW_HANDLER_S / 2


async def test_feed_policy_accepts_xml_and_refuses_html(
    session: aiohttp.ClientSession, server: LocalServer
) -> None:
    feeds = FetchPolicy(accepted_types=FEED_TYPES)
    server.state.raw_content_type = "application/rss+xml; charset=utf-8"
    server.state.raw_body = b'<?xml version="1.0"?><rss version="2.0"><channel></channel></rss>'
    feed = await fetch(session, f"{server.url}/raw", feeds)
    assert feed.status == 200
    assert feed.text is None
    assert feed.charset == "utf-8"
    error = await _fetch_error(session, f"{server.url}/page", feeds)
    assert error.reason == "unsupported-type"


# --- charsets ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "body", "expected_text", "expected_charset"),
    [
        pytest.param(
            "text/html; charset=utf-8",
            "<p>Café – 5 €</p>".encode("cp1252"),
            "<p>Café – 5 €</p>",
            "cp1252",
            id="header-utf8-but-cp1252-bytes",
        ),
        pytest.param(
            "text/html",
            '<html><head><meta charset="windows-1251"></head><body>Привет, мир</body></html>'.encode(
                "cp1251"
            ),
            '<html><head><meta charset="windows-1251"></head><body>Привет, мир</body></html>',
            "cp1251",
            id="meta-charset",
        ),
        pytest.param(
            "text/html",
            b'<meta http-equiv="Content-Type" content="text/html; charset=koi8-r"><p>'
            + "Новости".encode("koi8-r"),
            '<meta http-equiv="Content-Type" content="text/html; charset=koi8-r"><p>Новости',
            "koi8-r",
            id="meta-http-equiv",
        ),
        pytest.param(
            "text/html; charset=no-such-charset",
            "<p>Grüße</p>".encode(),
            "<p>Grüße</p>",
            "utf-8",
            id="bogus-header-charset-falls-back-to-utf8",
        ),
        pytest.param(
            "text/html; charset=base64",
            "<p>Grüße</p>".encode("cp1252"),
            "<p>Grüße</p>",
            "cp1252",
            id="non-text-codec-falls-back-to-cp1252",
        ),
        pytest.param(
            "text/html; charset=iso-8859-1",
            "<p>“quoted”</p>".encode("cp1252"),
            "<p>“quoted”</p>",
            "cp1252",
            id="latin1-label-means-cp1252",
        ),
        pytest.param(
            "text/html; charset=iso-8859-1",
            b"\xef\xbb\xbf" + "<p>Grüße</p>".encode(),
            "<p>Grüße</p>",
            "utf-8",
            id="bom-wins",
        ),
    ],
)
async def test_charset_detection(
    session: aiohttp.ClientSession,
    server: LocalServer,
    content_type: str,
    body: bytes,
    expected_text: str,
    expected_charset: str,
) -> None:
    server.state.raw_content_type = content_type
    server.state.raw_body = body
    result = await fetch(session, f"{server.url}/raw", FetchPolicy())
    assert result.text == expected_text
    assert result.charset == expected_charset
    assert result.body == body


@pytest.mark.parametrize(
    ("body", "declared", "expected"),
    [
        (b"", None, ("", "utf-8")),
        ("naïve".encode("cp1252"), None, ("naïve", "cp1252")),
        (b'<meta charset="utf-16">ok', None, ('<meta charset="utf-16">ok', "utf-8")),
        (b"\xff\xfeh\x00i\x00", None, ("hi", "utf-16-le")),
        (b"<p>x</p>", "unicode-escape", ("<p>x</p>", "utf-8")),
        ("é".encode(), "'utf-8'", ("é", "utf-8")),
    ],
)
def test_decode_html_never_raises(body: bytes, declared: str | None, expected: tuple[str, str]) -> None:
    assert decode_html(body, declared) == expected


# --- SSRF guard -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "forbidden"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("10.1.2.3", True),
        ("172.16.0.1", True),
        ("172.31.255.254", True),
        ("192.168.1.1", True),
        ("169.254.169.254", True),
        ("100.64.0.1", True),
        ("100.127.255.254", True),
        ("0.0.0.0", True),
        ("224.0.0.1", True),
        ("255.255.255.255", True),
        ("240.0.0.1", True),
        ("::1", True),
        ("::", True),
        ("fe80::1", True),
        ("fe80::1%eth0", True),
        ("fc00::1", True),
        ("fd00:ec2::254", True),
        ("ff02::1", True),
        ("::ffff:10.0.0.1", True),
        ("::ffff:127.0.0.1", True),
        ("::ffff:169.254.169.254", True),
        ("64:ff9b::a00:1", True),
        ("2002:a00:1::", True),
        ("8.8.8.8", False),
        ("1.1.1.1", False),
        ("172.32.0.1", False),
        ("100.128.0.1", False),
        ("2001:4860:4860::8888", False),
        ("::ffff:8.8.8.8", False),
        ("64:ff9b::808:808", False),
    ],
)
def test_is_forbidden(address: str, forbidden: bool) -> None:
    assert AddressPolicy().is_forbidden(address) is forbidden


def test_allow_list_takes_addresses_networks_and_names() -> None:
    policy = AddressPolicy(frozenset({"127.0.0.0/8", "::1", "10.9.0.0/16", "Demo-Site."}))
    assert not policy.is_forbidden("127.0.0.1")
    assert not policy.is_forbidden("127.1.2.3")
    assert not policy.is_forbidden("::ffff:127.0.0.1")
    assert not policy.is_forbidden("::1")
    assert not policy.is_forbidden("10.9.8.7")
    assert policy.is_forbidden("10.8.0.1")
    assert policy.is_forbidden("169.254.169.254")
    assert policy.is_allowed_name("demo-site")
    policy.check_resolved("demo-site", ["172.18.0.5"])
    with pytest.raises(AddressForbiddenError):
        policy.check_resolved("other-site", ["172.18.0.5"])


def test_malformed_allow_list_entry_is_rejected() -> None:
    with pytest.raises(ValueError, match="neither a host name nor an IP network"):
        AddressPolicy(frozenset({"10.0.0.0/33"}))


@pytest.mark.parametrize(
    "url", ["http://10.0.0.1/", "http://169.254.169.254/latest/meta-data/", "http://[::1]/"]
)
async def test_internal_ip_literal_is_never_contacted(
    session: aiohttp.ClientSession, connect_attempts: list[Any], url: str
) -> None:
    error = await _fetch_error(session, url, FetchPolicy())
    assert error.reason == "ssrf-blocked"
    assert connect_attempts == []


async def test_guarded_session_refuses_internal_literals_even_outside_fetch(
    session: aiohttp.ClientSession, connect_attempts: list[Any]
) -> None:
    with pytest.raises(aiohttp.ClientConnectorError) as caught:
        await session.get("http://169.254.169.254/latest/meta-data/")
    assert isinstance(caught.value.os_error, AddressForbiddenError)
    assert connect_attempts == []


async def test_plain_session_gets_the_strict_policy(connect_attempts: list[Any]) -> None:
    async with aiohttp.ClientSession() as plain:
        error = await _fetch_error(plain, "http://10.0.0.1/", FetchPolicy())
    assert error.reason == "ssrf-blocked"
    assert connect_attempts == []


async def test_redirect_to_metadata_service_is_blocked(
    session: aiohttp.ClientSession, server: LocalServer, connect_attempts: list[Any]
) -> None:
    error = await _fetch_error(session, f"{server.url}/to-metadata", FetchPolicy())
    assert error.reason == "ssrf-blocked"
    assert "169.254.169.254" in error.detail
    assert {address[0] for address in connect_attempts} == {"127.0.0.1"}


async def test_name_resolving_to_loopback_is_blocked(
    server: LocalServer, connect_attempts: list[Any]
) -> None:
    async with crawler_session(FetchPolicy(), AddressPolicy()) as strict:
        error = await _fetch_error(strict, f"http://localhost:{server.port}/page", FetchPolicy())
    assert error.reason == "ssrf-blocked"
    assert connect_attempts == []


async def test_redirect_from_an_allowed_name_to_loopback_is_blocked(
    server: LocalServer, connect_attempts: list[Any]
) -> None:
    """Trusting a host name must not extend to whatever address one of its redirects names."""
    async with crawler_session(FetchPolicy(), AddressPolicy(frozenset({"localhost"}))) as trusting:
        error = await _fetch_error(trusting, f"http://localhost:{server.port}/to-loopback", FetchPolicy())
    assert error.reason == "ssrf-blocked"
    assert "127.0.0.1" in error.detail
    assert len(connect_attempts) == 1, "only the allowed name's first hop is contacted"
    assert server.state.request_headers == [], "the loopback page behind the redirect is never requested"


async def test_allow_listed_name_is_fetched(server: LocalServer) -> None:
    async with crawler_session(FetchPolicy(), AddressPolicy(frozenset({"localhost"}))) as trusting:
        result = await fetch(trusting, f"http://localhost:{server.port}/page", FetchPolicy())
    assert result.status == 200


class StubResolver(AbstractResolver):
    """Answers from a fixed table, like a DNS server under an attacker's control."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in self.table[host]
        ]

    async def close(self) -> None:
        return None


@pytest.mark.parametrize("answer", [["10.0.0.5"], ["93.184.216.34", "10.0.0.5"], ["fd00:ec2::254"]])
async def test_public_name_resolving_to_private_address_is_blocked(
    connect_attempts: list[Any], answer: list[str]
) -> None:
    resolver = GuardedResolver(AddressPolicy(), StubResolver({"news.example": answer}))
    with pytest.raises(AddressForbiddenError):
        await resolver.resolve("news.example", 80)
    connector = GuardedConnector(AddressPolicy(), inner_resolver=StubResolver({"news.example": answer}))
    async with aiohttp.ClientSession(connector=connector) as client:
        error = await _fetch_error(client, "http://news.example/", FetchPolicy())
    assert error.reason == "ssrf-blocked"
    assert connect_attempts == []
