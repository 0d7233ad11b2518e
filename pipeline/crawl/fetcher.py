"""Fetch one URL with limits enforced while the body streams in."""

from __future__ import annotations

from dataclasses import dataclass, field

import aiohttp

KEPT_HEADERS = ("content-type", "etag", "last-modified", "content-language", "date")


class FetchError(Exception):
    """A fetch that produced no usable body; `reason` is a short counted label."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class FetchResult:
    """A response body and what the pipeline keeps of its metadata."""

    url: str
    final_url: str
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    charset: str | None = None


async def fetch(session: aiohttp.ClientSession, url: str, max_body_bytes: int) -> FetchResult:
    """GET a URL; bodies past max_body_bytes (after decompression) are refused, not buffered."""
    try:
        async with session.get(url, allow_redirects=True, max_redirects=5) as response:
            body = bytearray()
            async for chunk in response.content.iter_chunked(64 * 1024):
                body.extend(chunk)
                if len(body) > max_body_bytes:
                    raise FetchError("too-large", f"more than {max_body_bytes} bytes")
            return FetchResult(
                url=url,
                final_url=str(response.url),
                status=response.status,
                headers={name: response.headers[name] for name in KEPT_HEADERS if name in response.headers},
                body=bytes(body),
                charset=response.charset,
            )
    except aiohttp.TooManyRedirects as error:
        raise FetchError("too-many-redirects", str(error)) from error
    except TimeoutError as error:
        raise FetchError("timeout", url) from error
    except aiohttp.ClientError as error:
        raise FetchError("connection", f"{type(error).__name__}: {error}") from error
