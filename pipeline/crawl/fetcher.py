"""Fetch one URL safely: manual redirects, SSRF guard, conditional GET, bounded decompression, charset."""

from __future__ import annotations

import asyncio
import codecs
import importlib
import re
import zlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import ModuleType
from typing import Protocol

import aiohttp
from yarl import URL

from pipeline.crawl.guard import AddressForbiddenError, AddressPolicy, GuardedConnector

KEPT_HEADERS = ("content-type", "etag", "last-modified", "content-language", "date")
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
FEED_TYPES = frozenset(
    {
        "application/rss+xml",
        "application/atom+xml",
        "application/xml",
        "text/xml",
        "application/x-gzip",
        "application/gzip",
        "application/octet-stream",
        "text/plain",
    }
)
DEFAULT_USER_AGENT = "newsfeed/0.1 (+https://github.com/newsfeed/newsfeed)"
MAX_RETRY_AFTER_S = 24 * 3600.0

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_RETRY_AFTER_STATUSES = frozenset({429, 503})
_CHUNK_BYTES = 64 * 1024
_CHARSET_SNIFF_BYTES = 4096
_META_CHARSET = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([a-z0-9_.:-]+)""", re.IGNORECASE)
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
# Python codecs that are not character sets; a page declaring one gets the fallback instead.
_NOT_CHARSETS = frozenset({"unicode-escape", "raw-unicode-escape", "idna", "punycode", "utf-7", "undefined"})
# As browsers do (WHATWG Encoding), these labels mean windows-1252, which pages relying on them actually use.
_MEANS_CP1252 = frozenset({"ascii", "iso8859-1"})


def _bounded_brotli() -> ModuleType | None:
    """The brotli module, if it can decompress with bounded output (Brotli >= 1.2); otherwise None."""
    try:
        module = importlib.import_module("brotli")
    except ImportError:
        return None
    return module if hasattr(module.Decompressor, "can_accept_more_data") else None


_brotli = _bounded_brotli()
ACCEPT_ENCODING = "gzip, deflate, br" if _brotli is not None else "gzip, deflate"


class FetchError(Exception):
    """A fetch that produced no usable result; `reason` is a short counted label."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Validators:
    """What a previous response said about its version, for a conditional GET."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class FetchPolicy:
    """Limits and expectations for one kind of fetch (pages, or feeds and sitemaps)."""

    max_body_bytes: int = 5 * 1024 * 1024
    max_redirects: int = 5
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 20.0
    total_timeout_s: float = 60.0
    accepted_types: frozenset[str] = HTML_TYPES
    user_agent: str = DEFAULT_USER_AGENT


@dataclass(frozen=True)
class FetchResult:
    """A response and what the pipeline keeps of it.

    `body` is the decompressed body of a 2xx response; other statuses carry no body. `text` is the body
    decoded for HTML types (None otherwise) and `charset` the codec used, or for other types the charset
    the server declared. `redirects` lists every URL that answered with a redirect, in order, so the
    chain is `redirects + (final_url,)`.
    """

    url: str
    final_url: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    charset: str | None = None
    text: str | None = None
    content_type: str = ""
    not_modified: bool = False
    etag: str | None = None
    last_modified: str | None = None
    redirects: tuple[str, ...] = ()
    retry_after_s: float | None = None

    @property
    def validators(self) -> Validators:
        """The validators to send with the next fetch of this URL."""
        return Validators(etag=self.etag, last_modified=self.last_modified)


async def fetch(
    session: aiohttp.ClientSession, url: str, policy: FetchPolicy, *, validators: Validators | None = None
) -> FetchResult:
    """GET a URL under the policy; raises FetchError for anything that yields no usable response.

    Redirects are followed here, each hop checked against the session's AddressPolicy (the strict default
    for a session not made by crawler_session). Statuses other than redirects are returned, not raised.
    """
    address_policy = _address_policy_of(session)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + policy.total_timeout_s
    headers = _request_headers(policy, validators)
    redirects: list[str] = []
    current = _http_url(_parse_url(url))
    try:
        while True:
            address_policy.check_literal_host(current.raw_host or "")
            remaining_s = deadline - loop.time()
            if remaining_s <= 0:
                raise FetchError("timeout", f"{url}: over {policy.total_timeout_s}s with redirects")
            timeout = aiohttp.ClientTimeout(
                total=remaining_s, sock_connect=policy.connect_timeout_s, sock_read=policy.read_timeout_s
            )
            async with session.get(
                current, headers=headers, allow_redirects=False, auto_decompress=False, timeout=timeout
            ) as response:
                location = response.headers.get("Location")
                if response.status in _REDIRECT_STATUSES and location:
                    target = _redirect_target(current, location)
                    redirects.append(str(current))
                    if str(target) in redirects:
                        raise FetchError("redirect-loop", " -> ".join([*redirects, str(target)]))
                    if len(redirects) > policy.max_redirects:
                        raise FetchError("too-many-redirects", f"more than {policy.max_redirects} from {url}")
                    current = target
                    continue
                return await _result(url, response, policy, validators, tuple(redirects))
    except AddressForbiddenError as error:
        raise FetchError("ssrf-blocked", str(error)) from error
    except TimeoutError as error:
        raise FetchError("timeout", str(current)) from error
    except aiohttp.ClientConnectorError as error:
        if isinstance(error.os_error, AddressForbiddenError):
            raise FetchError("ssrf-blocked", str(error.os_error)) from error
        raise FetchError("connection", f"{type(error).__name__}: {error}") from error
    except aiohttp.InvalidURL as error:
        raise FetchError("bad-url", str(error)) from error
    except aiohttp.ClientResponseError as error:
        raise FetchError("bad-response", f"{type(error).__name__}: {error}") from error
    except aiohttp.ClientError as error:
        raise FetchError("connection", f"{type(error).__name__}: {error}") from error


def crawler_session(
    policy: FetchPolicy, address_policy: AddressPolicy, *, limit: int = 100
) -> aiohttp.ClientSession:
    """The process's one HTTP session: SSRF-guarded connections, raw (undecompressed) bodies, our identity.

    Call it inside the running event loop, and close the session when done.
    """
    connector = GuardedConnector(address_policy, limit=limit)
    return aiohttp.ClientSession(
        connector=connector,
        auto_decompress=False,
        headers={"User-Agent": policy.user_agent},
        timeout=aiohttp.ClientTimeout(
            total=policy.total_timeout_s,
            sock_connect=policy.connect_timeout_s,
            sock_read=policy.read_timeout_s,
        ),
    )


def _address_policy_of(session: aiohttp.ClientSession) -> AddressPolicy:
    connector = session.connector
    if isinstance(connector, GuardedConnector):
        return connector.address_policy
    return AddressPolicy()


def _parse_url(url: str) -> URL:
    try:
        return URL(url)
    except ValueError as error:
        raise FetchError("bad-url", f"{url!r}: {error}") from error


def _http_url(url: URL) -> URL:
    if url.scheme not in ("http", "https") or not url.raw_host:
        raise FetchError("bad-url", f"{str(url)!r} is not an absolute http(s) URL")
    return url.with_fragment(None)


def _redirect_target(current: URL, location: str) -> URL:
    try:
        return _http_url(current.join(_parse_url(location)))
    except ValueError as error:
        raise FetchError("bad-url", f"redirect to {location!r}: {error}") from error


def _request_headers(policy: FetchPolicy, validators: Validators | None) -> dict[str, str]:
    # The low-priority */* keeps servers that answer a strict Accept with 406 talking to us;
    # the media type is checked on the response anyway.
    headers = {
        "User-Agent": policy.user_agent,
        "Accept": ", ".join([*sorted(policy.accepted_types), "*/*;q=0.1"]),
        "Accept-Encoding": ACCEPT_ENCODING,
    }
    if validators is not None and validators.etag:
        headers["If-None-Match"] = validators.etag
    if validators is not None and validators.last_modified:
        headers["If-Modified-Since"] = validators.last_modified
    return headers


async def _result(
    url: str,
    response: aiohttp.ClientResponse,
    policy: FetchPolicy,
    validators: Validators | None,
    redirects: tuple[str, ...],
) -> FetchResult:
    status = response.status
    previous = validators or Validators()
    etag = response.headers.get("ETag")
    last_modified = response.headers.get("Last-Modified")
    if status == 304:
        # A 304 may omit validators that are still current.
        etag = etag or previous.etag
        last_modified = last_modified or previous.last_modified
    result = FetchResult(
        url=url,
        final_url=str(response.url),
        status=status,
        headers={name: response.headers[name] for name in KEPT_HEADERS if name in response.headers},
        content_type=response.content_type.lower(),
        not_modified=status == 304,
        etag=etag,
        last_modified=last_modified,
        redirects=redirects,
        retry_after_s=_retry_after_s(response.headers.get("Retry-After"))
        if status in _RETRY_AFTER_STATUSES
        else None,
    )
    if not 200 <= status < 300:
        return result
    if result.content_type not in policy.accepted_types:
        reason = "not-html" if "text/html" in policy.accepted_types else "unsupported-type"
        raise FetchError(reason, f"{result.content_type} at {result.final_url}")
    if response.content_length is not None and response.content_length > policy.max_body_bytes:
        raise FetchError("too-large", f"Content-Length {response.content_length} > {policy.max_body_bytes}")
    body = await _read_body(response, policy.max_body_bytes)
    if result.content_type not in HTML_TYPES:
        return replace(result, body=body, charset=response.charset)
    text, charset = decode_html(body, response.charset)
    return replace(result, body=body, text=text, charset=charset)


def _retry_after_s(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), clamped to [0, 24h]."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"-?[0-9]+", value):
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


# --- bodies -----------------------------------------------------------------------------------------


class _Decoder(Protocol):
    def decode(self, data: bytes, max_output: int) -> bytes:
        """Decode a chunk, producing at most max_output bytes; producing exactly that means 'maybe more'."""
        ...


class _Identity:
    def decode(self, data: bytes, max_output: int) -> bytes:
        return data


class _Inflater:
    """gzip (possibly several members) or deflate (zlib-wrapped or, as some servers send it, raw)."""

    def __init__(self, *, gzip: bool) -> None:
        self._gzip = gzip
        self._pending = b""
        self._inflater: zlib._Decompress | None = zlib.decompressobj(zlib.MAX_WBITS | 16) if gzip else None

    def decode(self, data: bytes, max_output: int) -> bytes:
        if self._inflater is None:
            self._pending += data
            if len(self._pending) < 2:
                return b""
            data, self._pending = self._pending, b""
            self._inflater = zlib.decompressobj(zlib.MAX_WBITS if _is_zlib_header(data) else -zlib.MAX_WBITS)
        output = bytearray()
        try:
            output += self._inflater.decompress(data, max_output)
            while self._gzip and self._inflater.eof and len(output) < max_output:
                rest = self._inflater.unused_data
                if not rest.startswith(b"\x1f\x8b"):
                    break  # trailing garbage after the last member is ignored, as browsers do
                self._inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
                output += self._inflater.decompress(rest, max_output - len(output))
        except zlib.error as error:
            raise FetchError("bad-encoding", f"corrupt compressed body: {error}") from error
        return bytes(output)


def _is_zlib_header(data: bytes) -> bool:
    return data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0


class _BrotliDecoder:
    def __init__(self, brotli: ModuleType) -> None:
        self._brotli = brotli
        self._decompressor = brotli.Decompressor()

    def decode(self, data: bytes, max_output: int) -> bytes:
        try:
            output = bytearray(self._decompressor.process(data, output_buffer_limit=max_output))
            while len(output) < max_output and not self._decompressor.can_accept_more_data():
                output += self._decompressor.process(b"", output_buffer_limit=max_output - len(output))
        except self._brotli.error as error:
            raise FetchError("bad-encoding", f"corrupt brotli body: {error}") from error
        return bytes(output)


def _decoder_for(content_encoding: str) -> _Decoder:
    encoding = content_encoding.strip().lower()
    if encoding in ("", "identity"):
        return _Identity()
    if encoding in ("gzip", "x-gzip"):
        return _Inflater(gzip=True)
    if encoding == "deflate":
        return _Inflater(gzip=False)
    if encoding == "br" and _brotli is not None:
        return _BrotliDecoder(_brotli)
    raise FetchError("bad-encoding", f"unsupported Content-Encoding {content_encoding!r}")


async def _read_body(response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    """The decompressed body; both the wire bytes and the decompressed bytes are capped at max_bytes."""
    decoder = _decoder_for(response.headers.get("Content-Encoding", ""))
    body = bytearray()
    received = 0
    async for chunk in response.content.iter_chunked(_CHUNK_BYTES):
        received += len(chunk)
        if received > max_bytes:
            raise FetchError("too-large", f"more than {max_bytes} bytes on the wire")
        body += decoder.decode(chunk, max_bytes - len(body) + 1)
        if len(body) > max_bytes:
            raise FetchError("too-large", f"more than {max_bytes} bytes decompressed")
    return bytes(body)


# --- charsets ---------------------------------------------------------------------------------------


def decode_html(body: bytes, declared_charset: str | None) -> tuple[str, str]:
    """Decode an HTML body; returns (text, codec used). Never raises.

    A byte order mark wins (it is evidence, a declaration is a claim), then the charset from
    Content-Type, then a <meta> in the first 4 KB, then strict UTF-8, then windows-1252. A declaration
    the bytes contradict (a "utf-8" page that is not valid UTF-8, a common server misconfiguration) is
    passed over for the next candidate; windows-1252 with replacement always succeeds.
    """
    for bom, bom_codec in _BOMS:
        if body.startswith(bom):
            return body[len(bom) :].decode(bom_codec, errors="replace"), bom_codec
    candidates = (_codec(declared_charset), _codec(_meta_charset(body), from_meta=True), "utf-8")
    for codec in candidates:
        if codec is None:
            continue
        try:
            return body.decode(codec), codec
        except (LookupError, UnicodeError, ValueError):
            continue
    return body.decode("cp1252", errors="replace"), "cp1252"


def _meta_charset(body: bytes) -> str | None:
    match = _META_CHARSET.search(body[:_CHARSET_SNIFF_BYTES])
    return match.group(1).decode("ascii") if match else None


def _codec(label: str | None, *, from_meta: bool = False) -> str | None:
    """Python's codec name for a charset label, or None for a missing, unknown or non-charset label."""
    if not label:
        return None
    try:
        name = codecs.lookup(label.strip().strip("\"'")).name
    except (LookupError, ValueError):
        return None
    if name in _NOT_CHARSETS:
        return None
    if name in _MEANS_CP1252:
        return "cp1252"
    # A <meta> was readable as ASCII, so the page cannot really be UTF-16/32 (browsers use UTF-8 then).
    if from_meta and name.startswith(("utf-16", "utf-32")):
        return "utf-8"
    return name
