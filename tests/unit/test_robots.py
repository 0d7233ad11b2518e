"""robots.txt cache: rules per user agent, RFC 9309 status handling, shared fetches and expiry."""

from __future__ import annotations

import asyncio

import pytest

from pipeline.crawl.robots import MAX_ROBOTS_BYTES, RobotsCache, origin_of

UA = "newsfeedbot/1.0 (+https://example.org/bot)"

ROBOTS = b"""\
User-agent: *
Disallow: /private/
Crawl-delay: 7

User-agent: newsfeedbot
Disallow: /drafts/
Allow: /drafts/public/
Crawl-delay: 3

Sitemap: https://news.example/sitemap.xml
"""


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeRobotsServer:
    """Serves scripted (status, body) answers per robots URL and records each request."""

    def __init__(self, answers: dict[str, tuple[int, bytes] | Exception]) -> None:
        self.answers = answers
        self.requests: list[str] = []
        self.gate: asyncio.Event | None = None

    async def __call__(self, url: str) -> tuple[int, bytes]:
        self.requests.append(url)
        if self.gate is not None:
            await self.gate.wait()
        answer = self.answers[url]
        if isinstance(answer, Exception):
            raise answer
        return answer


def make_cache(server: FakeRobotsServer, clock: FakeClock, user_agent: str = UA) -> RobotsCache:
    return RobotsCache(server, user_agent, clock, ttl_s=86400, error_ttl_s=600)


async def test_our_group_rules_apply_to_us_and_star_rules_to_others() -> None:
    server = FakeRobotsServer({"https://news.example/robots.txt": (200, ROBOTS)})
    clock = FakeClock()
    ours = make_cache(server, clock)
    theirs = make_cache(server, clock, user_agent="otherbot/2.0")

    assert not await ours.allows("https://news.example/drafts/x")
    assert await ours.allows("https://news.example/drafts/public/x")
    # Our own group replaces `*`, so its Disallow does not bind us.
    assert await ours.allows("https://news.example/private/x")

    assert not await theirs.allows("https://news.example/private/x")
    assert await theirs.allows("https://news.example/drafts/x")
    assert await ours.sitemaps("https://news.example/") == ["https://news.example/sitemap.xml"]


async def test_crawl_delay_for_our_agent_else_star() -> None:
    server = FakeRobotsServer(
        {
            "https://a.example/robots.txt": (200, ROBOTS),
            "https://b.example/robots.txt": (200, b"User-agent: *\nCrawl-delay: 2.5\n"),
            "https://c.example/robots.txt": (200, b"User-agent: newsfeedbot\nDisallow: /x\n"),
            "https://d.example/robots.txt": (
                200,
                b"User-agent: newsfeedbot\nDisallow: /x\n\nUser-agent: *\nCrawl-delay: 4\n",
            ),
        }
    )
    cache = make_cache(server, FakeClock())
    assert await cache.crawl_delay("https://a.example/") == 3.0
    assert await cache.crawl_delay("https://b.example/") == 2.5
    assert await cache.crawl_delay("https://c.example/") is None
    assert await cache.crawl_delay("https://d.example/") == 4.0


async def test_request_rate_becomes_a_delay_and_the_larger_delay_wins() -> None:
    server = FakeRobotsServer(
        {
            "https://a.example/robots.txt": (200, b"User-agent: *\nRequest-rate: 1/10s\n"),
            "https://b.example/robots.txt": (200, b"User-agent: *\nRequest-rate: 6/1m\nCrawl-delay: 2\n"),
        }
    )
    cache = make_cache(server, FakeClock())
    assert await cache.crawl_delay("https://a.example/") == 10.0
    assert await cache.crawl_delay("https://b.example/") == 10.0


@pytest.mark.parametrize("status", [404, 401, 403, 410])
async def test_client_error_means_no_rules(status: int) -> None:
    server = FakeRobotsServer({"https://news.example/robots.txt": (status, b"<html>nope</html>")})
    cache = make_cache(server, FakeClock())
    assert await cache.allows("https://news.example/anything")
    assert await cache.crawl_delay("https://news.example/anything") is None
    assert cache.counts["unavailable"] == 1


async def test_server_error_disallows_until_error_ttl_then_refetches() -> None:
    url = "https://news.example/robots.txt"
    server = FakeRobotsServer({url: (503, b"")})
    clock = FakeClock()
    cache = make_cache(server, clock)

    assert not await cache.allows("https://news.example/a")
    clock.now += 599
    assert not await cache.allows("https://news.example/b")
    assert len(server.requests) == 1

    server.answers[url] = (200, b"User-agent: *\nDisallow: /b\n")
    clock.now += 1
    assert await cache.allows("https://news.example/a")
    assert not await cache.allows("https://news.example/b")
    assert len(server.requests) == 2
    assert cache.counts["unreachable"] == 1
    assert cache.counts["parsed"] == 1


async def test_too_many_requests_counts_as_unreachable() -> None:
    server = FakeRobotsServer({"https://news.example/robots.txt": (429, b"")})
    cache = make_cache(server, FakeClock())
    assert not await cache.allows("https://news.example/a")


async def test_network_error_disallows_temporarily() -> None:
    url = "https://news.example/robots.txt"
    server = FakeRobotsServer({url: ConnectionResetError("reset")})
    clock = FakeClock()
    cache = make_cache(server, clock)

    assert not await cache.allows("https://news.example/a")
    assert cache.counts["fetch-error"] == 1

    server.answers[url] = (404, b"")
    clock.now += 600
    assert await cache.allows("https://news.example/a")


async def test_concurrent_callers_share_one_fetch() -> None:
    server = FakeRobotsServer({"https://news.example/robots.txt": (200, ROBOTS)})
    server.gate = asyncio.Event()
    cache = make_cache(server, FakeClock())

    callers = [
        asyncio.create_task(cache.allows(f"https://news.example/drafts/{index}")) for index in range(20)
    ]
    await asyncio.sleep(0)
    server.gate.set()
    answers = await asyncio.gather(*callers)

    assert answers == [False] * 20
    assert server.requests == ["https://news.example/robots.txt"]


async def test_cancelled_caller_does_not_cancel_the_shared_fetch() -> None:
    server = FakeRobotsServer({"https://news.example/robots.txt": (200, ROBOTS)})
    server.gate = asyncio.Event()
    cache = make_cache(server, FakeClock())

    first = asyncio.create_task(cache.allows("https://news.example/a"))
    second = asyncio.create_task(cache.allows("https://news.example/drafts/b"))
    await asyncio.sleep(0)
    first.cancel()
    server.gate.set()

    assert not await second
    with pytest.raises(asyncio.CancelledError):
        await first
    assert len(server.requests) == 1


async def test_cache_expires_after_ttl() -> None:
    server = FakeRobotsServer({"https://news.example/robots.txt": (200, ROBOTS)})
    clock = FakeClock()
    cache = make_cache(server, clock)

    await cache.allows("https://news.example/a")
    clock.now += 86399
    await cache.allows("https://news.example/b")
    assert len(server.requests) == 1
    assert cache.counts["cache-hit"] == 1

    clock.now += 1
    await cache.allows("https://news.example/c")
    assert len(server.requests) == 2


async def test_origins_are_separate_by_scheme_host_and_port() -> None:
    server = FakeRobotsServer(
        {
            "https://news.example/robots.txt": (200, b"User-agent: *\nDisallow: /\n"),
            "http://news.example/robots.txt": (404, b""),
            "https://news.example:8443/robots.txt": (404, b""),
        }
    )
    cache = make_cache(server, FakeClock())
    assert not await cache.allows("https://NEWS.example:443/a")
    assert await cache.allows("http://news.example/a")
    assert await cache.allows("https://news.example:8443/a")
    assert len(server.requests) == 3
    assert len(cache) == 3


def test_origin_of_normalises_and_rejects_non_http() -> None:
    assert origin_of("HTTPS://User:pw@News.Example:443/a?b") == "https://news.example"
    assert origin_of("http://news.example:8080/") == "http://news.example:8080"
    assert origin_of("http://[::1]:8080/x") == "http://[::1]:8080"
    assert origin_of("ftp://news.example/") is None
    assert origin_of("mailto:someone@news.example") is None
    assert origin_of("http://news.example:99999/") is None


async def test_non_http_urls_are_not_allowed_and_not_fetched() -> None:
    server = FakeRobotsServer({})
    cache = make_cache(server, FakeClock())
    assert not await cache.allows("ftp://news.example/file")
    assert server.requests == []


async def test_oversize_body_is_truncated_at_500_kib() -> None:
    head = b"User-agent: *\nDisallow: /early\n"
    filler = b"# padding\n" * ((MAX_ROBOTS_BYTES - len(head)) // 10)
    body = head + filler + b"\n" * (MAX_ROBOTS_BYTES - len(head) - len(filler)) + b"Disallow: /late\n"
    assert len(body) > MAX_ROBOTS_BYTES
    server = FakeRobotsServer({"https://news.example/robots.txt": (200, body)})
    cache = make_cache(server, FakeClock())

    assert not await cache.allows("https://news.example/early")
    assert await cache.allows("https://news.example/late")
    assert cache.counts["truncated"] == 1


async def test_utf8_bom_and_the_robots_file_itself() -> None:
    server = FakeRobotsServer(
        {"https://news.example/robots.txt": (200, b"\xef\xbb\xbfUser-agent: *\nDisallow: /\n")}
    )
    cache = make_cache(server, FakeClock())
    assert not await cache.allows("https://news.example/a")
    assert await cache.allows("https://news.example/robots.txt")


async def test_least_recently_used_origins_are_evicted() -> None:
    server = FakeRobotsServer({f"https://h{index}.example/robots.txt": (404, b"") for index in range(3)})
    cache = RobotsCache(server, UA, FakeClock(), max_origins=2)
    for index in range(3):
        await cache.allows(f"https://h{index}.example/")
    assert len(cache) == 2
    await cache.allows("https://h0.example/")
    assert len(server.requests) == 4
