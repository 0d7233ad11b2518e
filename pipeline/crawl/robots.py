"""robots.txt rules per origin with RFC 9309 status handling, one shared fetch and expiring cache."""

from __future__ import annotations

import asyncio
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from protego import Protego

FetchRobots = Callable[[str], Awaitable[tuple[int, bytes]]]

# RFC 9309 §2.5: crawlers must parse at least 500 KiB; anything past that may be ignored.
MAX_ROBOTS_BYTES = 500 * 1024
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class RobotsRules:
    """What one origin's robots.txt allows; `parser` is None when a status decided for the whole site."""

    outcome: str
    allow_all: bool
    parser: Protego | None = None

    def allows(self, url: str, user_agent: str) -> bool:
        if self.parser is None:
            return self.allow_all
        return self.parser.can_fetch(url, user_agent)

    def delay_s(self, user_agent: str) -> float | None:
        """Seconds asked between requests (the larger of Crawl-delay and Request-rate); ours, else `*`'s."""
        if self.parser is None:
            return None
        ours = _group_delay_s(self.parser, user_agent)
        return ours if ours is not None else _group_delay_s(self.parser, "*")

    def sitemaps(self) -> list[str]:
        return [] if self.parser is None else list(self.parser.sitemaps)


def _group_delay_s(parser: Protego, user_agent: str) -> float | None:
    crawl_delay = parser.crawl_delay(user_agent)
    rate = parser.request_rate(user_agent)
    rate_delay = rate.seconds / rate.requests if rate is not None else None
    found = [delay for delay in (crawl_delay, rate_delay) if delay is not None]
    return max(found) if found else None


def origin_of(url: str) -> str | None:
    """`scheme://host[:port]` with default ports dropped, or None for URLs that have no robots.txt."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def rules_from_response(status: int, body: bytes) -> RobotsRules:
    """RFC 9309 §2.3.1: 2xx is parsed, 4xx means no rules, 5xx means the site is off limits for now."""
    if 200 <= status < 300:
        text = body[:MAX_ROBOTS_BYTES].decode("utf-8", errors="replace").removeprefix("\ufeff")
        return RobotsRules("parsed", allow_all=True, parser=Protego.parse(text))
    # 429 is a request to slow down, not a statement that there are no rules, so it counts as unreachable.
    if 400 <= status < 500 and status != 429:
        return RobotsRules("unavailable", allow_all=True)
    # §2.3.1.2: redirects are followed by the fetcher; one that still ends on a 3xx found no robots.txt.
    if 300 <= status < 400:
        return RobotsRules("unavailable", allow_all=True)
    return RobotsRules("unreachable", allow_all=False)


@dataclass(frozen=True)
class _Cached:
    rules: RobotsRules
    expires_at: float


class RobotsCache:
    """Answers robots.txt questions per URL, fetching each origin's file once per TTL.

    Callers asking about one origin while its robots.txt is being fetched wait on that same fetch.
    `counts` tallies outcomes: `parsed`, `unavailable`, `unreachable`, `fetch-error`, `parse-error`,
    `truncated` and `cache-hit`.
    """

    def __init__(
        self,
        fetch_robots: FetchRobots,
        user_agent: str,
        clock: Callable[[], float],
        *,
        ttl_s: float = 86400.0,
        error_ttl_s: float = 600.0,
        max_origins: int = 50_000,
    ) -> None:
        self._fetch_robots = fetch_robots
        self.user_agent = user_agent
        self._clock = clock
        self._ttl_s = ttl_s
        self._error_ttl_s = error_ttl_s
        self._max_origins = max_origins
        self._cache: OrderedDict[str, _Cached] = OrderedDict()
        self._in_flight: dict[str, asyncio.Task[RobotsRules]] = {}
        self.counts: Counter[str] = Counter()

    async def allows(self, url: str) -> bool:
        """Whether our user agent may fetch `url`; URLs that are not http(s) are never allowed."""
        rules = await self.rules_for(url)
        return rules is not None and rules.allows(url, self.user_agent)

    async def crawl_delay(self, url: str) -> float | None:
        """Seconds the site asks between our requests (Crawl-delay or Request-rate), if it asks."""
        rules = await self.rules_for(url)
        return None if rules is None else rules.delay_s(self.user_agent)

    async def sitemaps(self, url: str) -> list[str]:
        """Sitemap URLs listed in the robots.txt of `url`'s origin."""
        rules = await self.rules_for(url)
        return [] if rules is None else rules.sitemaps()

    async def rules_for(self, url: str) -> RobotsRules | None:
        origin = origin_of(url)
        if origin is None:
            return None
        cached = self._cache.get(origin)
        if cached is not None and self._clock() < cached.expires_at:
            self._cache.move_to_end(origin)
            self.counts["cache-hit"] += 1
            return cached.rules
        task = self._in_flight.get(origin)
        if task is None:
            task = asyncio.create_task(self._refresh(origin), name=f"robots {origin}")
            self._in_flight[origin] = task
        # Shielded so that a cancelled caller does not cancel the fetch others are waiting on.
        return await asyncio.shield(task)

    def __len__(self) -> int:
        return len(self._cache)

    async def _refresh(self, origin: str) -> RobotsRules:
        try:
            try:
                status, body = await self._fetch_robots(f"{origin}/robots.txt")
            except Exception:
                # RFC 9309 §2.3.1.4: an unreachable robots.txt means nothing may be crawled for now.
                rules = RobotsRules("fetch-error", allow_all=False)
            else:
                if len(body) > MAX_ROBOTS_BYTES:
                    self.counts["truncated"] += 1
                try:
                    rules = rules_from_response(status, body)
                except Exception:
                    # A parser failure is our bug, not the site's permission; stay off until a retry.
                    rules = RobotsRules("parse-error", allow_all=False)
            self.counts[rules.outcome] += 1
            ttl_s = self._ttl_s if rules.allow_all else self._error_ttl_s
            self._remember(origin, _Cached(rules, self._clock() + ttl_s))
            return rules
        finally:
            del self._in_flight[origin]

    def _remember(self, origin: str, cached: _Cached) -> None:
        self._cache[origin] = cached
        self._cache.move_to_end(origin)
        while len(self._cache) > self._max_origins:
            self._cache.popitem(last=False)
