"""`newsfeed crawl --once` over 500 good pages mixed with every hostile case: all good pages published, every
bad URL ends with its outcome, and the crawler's peak memory stays bounded."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.ops.isolated import start_command, stop_process
from pipeline.records import loads
from tests.conftest import IsolatedPipeline
from tests.hostile_site import BOGUS_CHARSET_TEXT, REDIRECT_CHAIN, SSRF_TARGETS, HostileSite
from tests.integration.crawl_site import HOSTILE, HUGE_BYTES, CrawlSite
from tests.kafka_helpers import read_topic

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

GOOD_PAGES = 500
PRIVATE_LINKS = ["http://10.0.0.1/x.html", "http://169.254.169.254/latest/meta-data/"]
PEAK_RSS_BOUND_MB = 500.0
CRAWL = {
    "allowed_private_hosts": ["127.0.0.1"],
    "min_host_delay_s": 0.01,
    "connect_timeout_s": 1.0,
    "read_timeout_s": 0.5,
    "request_timeout_s": 3.0,
    "max_body_bytes": 1_000_000,
    "max_attempts": 3,
    "poll_interval_s": 600,
}
# How each bad URL must end (the crawler's own outcome names), and how many of them do.
EXPECTED_FAILURES = {
    "failed:too-large": 3,  # 50 MB page, gzip bomb, brotli bomb
    "failed:redirect-loop": 1,
    "failed:too-many-redirects": 1,
    "failed:not-html": 1,  # a PDF
    "failed:ssrf-blocked": 2 + len(SSRF_TARGETS),  # links to private addresses, and redirects to them
    "failed:timeout": 2,  # a server that sends nothing, and a slow-loris that never finishes
    "failed:http-500": 1,
    "failed:http-429": 1,
}
EXPECTED_SOURCE_FAILURES = {"source-failed:unreadable": 2}  # billion-laughs and XXE feeds
# Hostile but readable: a first 429 or 500 that recovers, and wrong or odd charsets.
RECOVERING = ["retry-after", "server-error", "cp1252-as-utf8", "meta-windows-1251"]


def _vm_kib(pid: int, field: str) -> int | None:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except (FileNotFoundError, ProcessLookupError):
        return None
    for line in lines:
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return None


def _final_outcomes(log: Path) -> dict[str, int]:
    """The `{"outcomes": ...}` line `newsfeed crawl --once` prints when it is done."""
    for line in reversed(log.read_text().splitlines()):
        if line.startswith('{"outcomes"'):
            outcomes: dict[str, int] = orjson.loads(line)["outcomes"]
            return outcomes
    raise AssertionError(f"no outcome line in the crawler's log:\n{log.read_text()[-3000:]}")


def test_a_hostile_web_at_volume(isolated: IsolatedPipeline) -> None:
    settings = isolated.settings
    with (
        CrawlSite() as site,
        CrawlSite(slow_s=5.0) as silent_site,
        HostileSite(ports=4) as extra,
    ):
        good = [site.url(f"/good/story-{number:03d}.html") for number in range(GOOD_PAGES)]
        recovering = [site.url(HOSTILE[case]) for case in RECOVERING]
        hostile_on_main = [site.url(HOSTILE[case]) for case in ("redirect-loop", "huge", "gzip-bomb", "pdf")]
        # Good and hostile links interleaved, as a real feed would mix them.
        mixed: list[str] = []
        for number, url in enumerate(good):
            mixed.append(url)
            extra_links = [*hostile_on_main, *recovering, *PRIVATE_LINKS]
            if number % 50 == 0 and number // 50 < len(extra_links):
                mixed.append(extra_links[number // 50])
        mixed += [url for url in [*hostile_on_main, *recovering, *PRIVATE_LINKS] if url not in mixed]
        site.feeds["main"] = mixed
        silent_site.feeds["silent"] = [silent_site.url(HOSTILE["slow"])]
        # Ports 0-2 each hold one case that counts against its host; port 3 holds the rest.
        extra.feeds["hostile"] = [
            extra.url(0, "/always-500.html"),
            extra.url(1, "/always-429.html"),
            extra.url(2, "/slow-loris.html"),
            extra.url(3, "/brotli-bomb.html"),
            extra.url(3, "/chain/0.html"),
            *(extra.url(3, f"/ssrf/{target}.html") for target in SSRF_TARGETS),
            extra.url(3, "/bogus-charset.html"),
        ]
        feeds = [
            site.url("/feeds/main.xml"),
            site.url("/feeds/bomb.xml"),
            silent_site.url("/feeds/silent.xml"),
            extra.url(3, "/feeds/hostile.xml"),
            extra.url(3, "/feeds/xxe.xml"),
        ]
        arguments = ["crawl", "--once", *(part for feed in feeds for part in ("--feed", feed))]
        overrides: dict[str, Any] = {**isolated.overrides, "crawl": {**isolated.overrides["crawl"], **CRAWL}}
        log = isolated.state_dir / "crawler.log"
        started = time.monotonic()
        crawler = start_command(arguments, overrides, log)
        peak_kib = 0
        try:
            deadline = time.monotonic() + 240
            while crawler.poll() is None and time.monotonic() < deadline:
                peak_kib = max(peak_kib, _vm_kib(crawler.pid, "VmHWM") or 0)
                time.sleep(0.1)
            assert crawler.poll() is not None, f"the crawl did not finish:\n{log.read_text()[-3000:]}"
        finally:
            exit_code = stop_process(crawler)
        seconds = time.monotonic() - started
    assert exit_code == 0, log.read_text()[-3000:]
    outcomes = _final_outcomes(log)

    fetched_expected = GOOD_PAGES + len(RECOVERING) + 1  # and the page with a bogus charset
    raw = asyncio.run(read_topic(settings, settings.topics.raw_pages, fetched_expected + 1, timeout_s=15))
    keys = [record.key.decode() for record in raw]
    assert len(keys) == len(set(keys)), "a page was published twice"
    missing = set(good) - set(keys)
    assert not missing, f"{len(missing)} good pages never published: {sorted(missing)[:5]}"
    assert set(keys) == {*good, *recovering, extra.url(3, "/bogus-charset.html")}
    by_key = {record.key.decode(): loads(record.value) for record in raw}
    assert BOGUS_CHARSET_TEXT in by_key[extra.url(3, "/bogus-charset.html")]["html"], "no cp1252 fallback"

    # Every URL announced ended with exactly one final outcome: fetched, or failed with its reason.
    final = {
        name: count for name, count in outcomes.items() if name == "fetched" or name.startswith("failed:")
    }
    assert final == {"fetched": fetched_expected, **EXPECTED_FAILURES}, outcomes
    assert sum(final.values()) == outcomes["discovered"], outcomes
    sources = {name: count for name, count in outcomes.items() if name.startswith("source-failed")}
    assert sources == EXPECTED_SOURCE_FAILURES, outcomes
    unexpected = {name for name in outcomes if name.startswith(("dead-letter", "robots-denied", "not-due"))}
    assert not unexpected, outcomes
    retries = Counter({name: count for name, count in outcomes.items() if name.startswith("retry:")})

    # What the sites saw: the bombs and the huge page were cut off; nothing reached a private address
    # (the SSRF redirects were followed no further than their first hop, which the site logged).
    (huge,) = site.requests_to(HOSTILE["huge"])
    assert huge.completed is False
    assert huge.bytes_sent < HUGE_BYTES // 2
    assert len(extra.requests_to("/chain/0.html")) == 1
    assert not extra.requests_to(f"/chain/{REDIRECT_CHAIN}.html"), "the chain was followed to its end"
    assert not extra.requests_to("/ssrf-landing.html")
    assert not extra.requests_to("/xxe-victim.html")
    assert "/bomb-victim.html" not in site.paths()
    assert len(extra.requests_to("/always-500.html")) == CRAWL["max_attempts"]
    assert len(extra.requests_to("/always-429.html")) == CRAWL["max_attempts"]

    peak_mb = peak_kib / 1024
    print(
        f"\nhostile crawl: {seconds:.1f} s; {len(good)} good pages published of {len(good)}; "
        f"{len(keys)} pages in all; final outcomes {final}; source failures {sources}; "
        f"retries {dict(retries)}; brotli bomb {extra.bomb_bytes} B inflating to 256 MiB; "
        f"crawler peak RSS (VmHWM) {peak_mb:.1f} MB"
    )
    assert peak_mb < PEAK_RSS_BOUND_MB
