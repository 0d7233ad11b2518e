"""Peer comparison: news-please crawling the benchmark corpus from a local server, against our extraction
stage on the same pages, in the same run.

The issue's target: our pipeline at least 5 × news-please's pages/s, at equal or better extraction quality.

**news-please** (installed from PyPI into its own virtual environment, ``.state/bench/newsplease-venv``,
created on first use with ``sys.executable -m venv`` and reused while its marker file matches the pins
below) runs its own CLI, ``news-please -c CONFIG_DIR``, against N corpus pages (bench/corpus.py) served by
aiohttp on 127.0.0.1 from a spawned process. The config is news-please's bundled ``config.cfg`` with
these changes, made so that it does no more than our side does and is not held back by politeness:

* ``sitelist.hjson`` lists the local origin(s) with the ``SitemapCrawler`` (``--crawler rss``: the
  ``RssCrawler``); the server answers ``/`` (with an RSS ``<link>``), ``/robots.txt`` (naming
  ``/sitemap.xml``), ``/sitemap.xml`` and ``/feed.xml`` (every page of the origin) and the pages;
* heuristics: only ``crawler_contains_only_article_alikes`` (the sitemap lists article pages only, so
  every page goes through extraction, as on our side; the default heuristics would also cost time);
* pipelines: ``ArticleMasterExtractor`` (its default extractors: newspaper, readability, date, language)
  and ``JsonFileStorage``; no ``HtmlFileStorage`` (our side stores no HTML either), no database;
* Scrapy: ``DOWNLOAD_DELAY`` 0, ``CONCURRENT_REQUESTS`` and ``..._PER_DOMAIN`` 16 (our crawler's
  concurrency), robots.txt obeyed (it allows everything), log level WARNING, telnet console and remote
  control off, and the offsite middleware off: news-please puts ``127.0.0.1:PORT`` in
  ``allowed_domains``, which never matches a host name, so Scrapy would drop every page.

news-please crawls each ``sitelist`` entry in its own process and runs ``number_of_parallel_crawlers`` of
them at once; it never spreads one site over several cores. So each run is made with P processes
(``--peer-processes``, default ``1`` and the number of cores): the pages are split round-robin over P
origins (ports) of the same server, one sitelist entry each, ``number_of_parallel_crawlers = P``. With
P = 1 news-please crawls the site as it would crawl any one site; with P = cores it gets the same cores
as our pool.

Its **pages/s** = articles written / (mtime of the last JSON file written − the first sitemap or feed
request the server saw): interpreter and Scrapy start-up come before that request and are left out (our
side leaves out its pool start-up too); the launcher's own 10-second poll after the last crawler ends is
left out as well. Its CPU is what the launcher and its crawler processes used (``RUSAGE_CHILDREN``),
start-up included. Every output JSON is mapped back to its page by its ``url`` and its ``maintext``,
``title`` and ``date_publish`` are scored with ``bench.extraction_quality`` (4-word-shingle F1 against
the page's known body, exact title, same calendar date); a page with no JSON scores as no text.

**Our side** is the extraction stage (``pipeline.extract.extractor.extract_article``) measured by
``bench.extraction_speed.measure`` on the same pages in memory: one core, then a forkserver pool with one
worker per core, started and warmed up before the clock. Its quality is the ``project`` configuration
of ``bench.extraction_quality`` on the same pages. Our figure leaves out fetching (the crawler runs in
other processes; see ``bench.crawl_throughput``); news-please's includes fetching from 127.0.0.1, which
costs it little next to its extraction (its library call ``NewsPlease.from_html`` takes about as much
CPU per page as its whole crawl).

Rounds alternate the two sides (``--rounds``, default 2); the best run of each kind counts. The verdict
for each news-please configuration: our pool's pages/s over news-please's is at least 5 (speed) and our
F1 (micro and macro) is at least news-please's (quality). It is reported, never asserted.

The peer may reach 127.0.0.1 only: its environment has no proxy settings and keeps tldextract from
downloading the public suffix list, and a guard module loaded by a ``.pth`` file in the peer venv refuses
any socket connection to a non-loopback address (``NEWSFEED_BENCH_LOOPBACK_ONLY=1``; blocked attempts
are counted in the results).

    .venv/bin/python -m bench.peer_newsplease                 # 500 pages, 2 rounds, a few minutes
    .venv/bin/python -m bench.peer_newsplease --smoke         # 20 pages, 1 round (+ ~1 min first install)
    .venv/bin/python -m bench.peer_newsplease --pages 2000 --peer-processes 2
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import hashlib
import json
import math
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from email.utils import format_datetime
from html import escape
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape as xml_escape

from aiohttp import web

from bench.common import (
    PROJECT_DIR,
    RESULTS_DIR,
    SpawnedServer,
    format_table,
    machine_info,
    process_cpu_s,
    utc_timestamp,
    write_results,
)
from bench.corpus import generate_corpus
from bench.extraction_quality import (
    BASE_URL,
    CONFIGS_BY_NAME,
    Outcome,
    Sample,
    by_layout,
    corpus_samples,
    diagnose,
    raw_page,
    run_config,
    score,
    summarise,
)
from bench.extraction_speed import CHUNKS_PER_WORKER, Run, measure

NAME = "peer_newsplease"
DEFAULT_PAGES = 500
SMOKE_PAGES = 20
DEFAULT_SEED = 7
TARGET_RATIO = 5.0
CONCURRENCY = 16  # our crawler's default crawl.concurrency

# --- the peer's virtual environment -------------------------------------------------------------------

PEER_VENV = PROJECT_DIR / ".state" / "bench" / "newsplease-venv"
NEWSPLEASE_VERSION = "1.6.16"
# news-please 1.6.16 pins almost nothing; these are the versions this bench was verified with (Python
# 3.11, every one a wheel, nothing built). Its CLI imports ``distutils``, gone from Python 3.12: there the
# bench adds setuptools, whose shim provides it.
PEER_PINS = (
    f"news-please=={NEWSPLEASE_VERSION}",
    "Scrapy==2.19.0",
    "Twisted==26.10.0",
    "newspaper4k==0.9.6",
    "readability-lxml==0.9",
    "lxml==6.1.3",
    "lxml_html_clean==0.4.6",
    "beautifulsoup4==4.15.0",
    "langdetect==1.0.9",
    "python-dateutil==2.9.0.post0",
    "tldextract==5.4.0",
    "parsel==1.12.1",
    "w3lib==2.5.0",
    "hjson==3.1.0",
    "plac==1.4.7",
    "requests==2.34.2",
)
PEER_PACKAGES = ("news-please", "Scrapy", "Twisted", "newspaper4k", "readability-lxml", "lxml", "langdetect")
MARKER = ".newsfeed-bench-installed.json"
INSTALL_TIMEOUT_S = 900
GUARD_MODULE = "_newsfeed_bench_guard"
GUARD_ENV = "NEWSFEED_BENCH_LOOPBACK_ONLY"
GUARD_MESSAGE = "newsfeed-bench-guard: blocked"
GUARD_SOURCE = f'''"""Written by bench/peer_newsplease.py. With {GUARD_ENV}=1 this interpreter's sockets
may connect to loopback addresses only: the bench sends traffic to 127.0.0.1 alone."""

import ipaddress
import os
import socket
import sys


def _allowed(host):
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return host == "localhost"


def _install():
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex

    def check(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _allowed(address[0]):
            sys.stderr.write("{GUARD_MESSAGE} a connection to %s\\n" % (address[0],))
            raise PermissionError("the bench allows loopback connections only, not %s" % (address[0],))

    def guarded_connect(self, address):
        check(self, address)
        return connect(self, address)

    def guarded_connect_ex(self, address):
        check(self, address)
        return connect_ex(self, address)

    socket.socket.connect = guarded_connect
    socket.socket.connect_ex = guarded_connect_ex


if os.environ.get("{GUARD_ENV}") == "1":
    _install()
'''


def _requirements() -> list[str]:
    extra = ["setuptools"] if sys.version_info >= (3, 12) else []
    return [*PEER_PINS, *extra]


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _site_packages(venv: Path) -> Path:
    found = sorted((venv / "lib").glob("python*/site-packages"))
    if not found:
        raise RuntimeError(f"no site-packages in {venv}")
    return found[0]


def _install_guard(venv: Path) -> None:
    site = _site_packages(venv)
    (site / f"{GUARD_MODULE}.py").write_text(GUARD_SOURCE)
    (site / f"{GUARD_MODULE}.pth").write_text(f"import {GUARD_MODULE}\n")


def peer_env(venv: Path) -> dict[str, str]:
    """The environment news-please runs in: no proxies, no suffix-list download, loopback only."""
    env = {key: value for key, value in os.environ.items() if "proxy" not in key.lower()}
    env.update(
        {
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            # tldextract (used by newspaper) would download the public suffix list on first use: an
            # empty list of URLs makes it use the snapshot it ships.
            "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS": "",
            "TLDEXTRACT_CACHE": str(venv / "tldextract-cache"),
            GUARD_ENV: "1",
        }
    )
    env.pop("PYTHONPATH", None)
    return env


def _installed_marker(venv: Path) -> dict[str, Any] | None:
    with contextlib.suppress(OSError, ValueError):
        data = json.loads((venv / MARKER).read_text())
        if data.get("requirements") == _requirements() and _venv_python(venv).exists():
            return dict(data)
    return None


def ensure_peer_venv(venv: Path) -> dict[str, Any]:
    """news-please in its own venv: reused when its marker matches the pins, (re)installed otherwise."""
    venv.parent.mkdir(parents=True, exist_ok=True)
    with (venv.parent / f"{venv.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        marker = _installed_marker(venv)
        if marker is None:
            marker = _install(venv)
        _install_guard(venv)
        return marker


def _install(venv: Path) -> dict[str, Any]:
    print(f"{NAME}: installing news-please {NEWSPLEASE_VERSION} into {venv} (~1 min)", file=sys.stderr)
    started = time.perf_counter()
    if venv.exists():
        shutil.rmtree(venv)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    constraints = venv / "bench-constraints.txt"
    constraints.write_text("\n".join(_requirements()) + "\n")
    log = venv.parent / f"{venv.name}-install.log"
    with log.open("w") as out:
        pip = [str(_venv_python(venv)), "-m", "pip", "install", "--disable-pip-version-check", "--no-input"]
        completed = subprocess.run(
            [*pip, "-c", str(constraints), *_requirements()],
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=INSTALL_TIMEOUT_S,
            check=False,
        )
    if completed.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(f"installing news-please failed (exit {completed.returncode}); {log}:\n{tail}")
    _install_guard(venv)
    probe = (
        "import importlib.metadata as m, json, newsplease, scrapy; "
        f"print(json.dumps({{n: m.version(n) for n in {list(PEER_PACKAGES)!r}}}))"
    )
    versions = json.loads(
        subprocess.run(
            [str(_venv_python(venv)), "-c", probe],
            env=peer_env(venv),
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
    )
    marker = {
        "requirements": _requirements(),
        "packages": versions,
        "python": subprocess.run(
            [str(_venv_python(venv)), "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip(),
        "installed": utc_timestamp(),
        "install_s": round(time.perf_counter() - started, 1),
    }
    (venv / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    print(f"{NAME}: installed in {marker['install_s']} s", file=sys.stderr)
    return marker


# --- the corpus server --------------------------------------------------------------------------------


@dataclass
class OriginStats:
    """What one origin (port) served since the last snapshot; times are ``time.time()``."""

    articles: int = 0
    other: int = 0
    not_found: int = 0
    first_request_at: float | None = None
    discovery_at: float | None = None  # first sitemap.xml or feed.xml
    first_article_at: float | None = None
    last_article_at: float | None = None


@dataclass
class _Origin:
    base: str
    urls: list[str]
    stats: OriginStats = field(default_factory=OriginStats)


def serve_corpus(n_pages: int, seed: int, groups: tuple[int, ...], conn: Connection) -> None:
    """Child process entry: serve the corpus on 127.0.0.1, one origin per shard of every group."""
    asyncio.run(_serve_corpus(n_pages, seed, groups, conn))


def _home_html(urls: Sequence[str]) -> str:
    links = "".join(f'<li><a href="{escape(url)}">{escape(url)}</a></li>' for url in urls)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Bench corpus</title>'
        '<link rel="alternate" type="application/rss+xml" title="All stories" href="/feed.xml"></head>'
        f"<body><h1>Bench corpus</h1><ul>{links}</ul></body></html>"
    )


async def _serve_corpus(n_pages: int, seed: int, groups: tuple[int, ...], conn: Connection) -> None:
    corpus = generate_corpus(n_pages, seed=seed)
    by_url = corpus.by_url
    encoded = {url: page.html.encode() for url, page in by_url.items()}
    origins: dict[int, _Origin] = {}
    sockets: list[socket.socket] = []
    layout: dict[int, list[str]] = {}
    for shards in groups:
        layout[shards] = []
        for index in range(shards):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            base = f"http://127.0.0.1:{port}"
            origins[port] = _Origin(base, [page.url for page in corpus.pages[index::shards]])
            sockets.append(sock)
            layout[shards].append(base)
    owned = {port: frozenset(origin.urls) for port, origin in origins.items()}
    documents: dict[tuple[int, str], bytes] = {}

    def origin_of(request: web.Request) -> tuple[int, _Origin]:
        port = request.transport.get_extra_info("sockname")[1] if request.transport else 0
        origin = origins[port]
        stats, now = origin.stats, time.time()
        if stats.first_request_at is None:
            stats.first_request_at = now
        return port, origin

    def document(port: int, name: str) -> bytes:
        """The origin's home page, robots.txt, sitemap or feed, built once."""
        if (port, name) not in documents:
            origin = origins[port]
            pages = [by_url[url] for url in origin.urls]
            if name == "home":
                text = _home_html(origin.urls)
            elif name == "robots":
                text = f"User-agent: *\nAllow: /\n\nSitemap: {origin.base}/sitemap.xml\n"
            elif name == "sitemap":
                entries = "".join(
                    f"<url><loc>{xml_escape(origin.base + page.url)}</loc>"
                    f"<lastmod>{page.published}</lastmod></url>\n"
                    for page in pages
                )
                text = (
                    '<?xml version="1.0" encoding="UTF-8"?>\n'
                    f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n{entries}</urlset>\n'
                )
            else:
                items = "".join(
                    f"<item><title>{xml_escape(page.title)}</title><link>{xml_escape(origin.base + page.url)}"
                    f"</link><guid>{xml_escape(origin.base + page.url)}</guid>"
                    f"<pubDate>{format_datetime(page.published_at)}</pubDate></item>\n"
                    for page in pages
                )
                text = (
                    '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
                    f"<title>Bench corpus</title><link>{origin.base}/</link>"
                    f"<description>Every story</description>\n{items}</channel></rss>\n"
                )
            documents[port, name] = text.encode()
        return documents[port, name]

    def respond(name: str, content_type: str) -> Any:
        async def handler(request: web.Request) -> web.Response:
            port, origin = origin_of(request)
            origin.stats.other += 1
            if name in ("sitemap", "feed") and origin.stats.discovery_at is None:
                origin.stats.discovery_at = time.time()
            return web.Response(body=document(port, name), content_type=content_type, charset="utf-8")

        return handler

    async def article(request: web.Request) -> web.Response:
        port, origin = origin_of(request)
        body = encoded.get(request.path) if request.path in owned[port] else None
        if body is None:
            origin.stats.not_found += 1
            raise web.HTTPNotFound
        stats, now = origin.stats, time.time()
        stats.articles += 1
        stats.first_article_at = stats.first_article_at or now
        stats.last_article_at = now
        return web.Response(body=body, content_type="text/html", charset="utf-8")

    async def not_found(request: web.Request) -> web.Response:
        origin_of(request)[1].stats.not_found += 1
        raise web.HTTPNotFound

    app = web.Application()
    app.router.add_get("/", respond("home", "text/html"))
    app.router.add_get("/robots.txt", respond("robots", "text/plain"))
    app.router.add_get("/sitemap.xml", respond("sitemap", "application/xml"))
    app.router.add_get("/feed.xml", respond("feed", "application/rss+xml"))
    app.router.add_get("/{site}/news/{slug}.html", article)
    app.router.add_get("/{tail:.*}", not_found)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    for sock in sockets:
        await web.SockSite(runner, sock, backlog=1024).start()
    conn.send(layout)
    loop = asyncio.get_running_loop()
    try:
        while True:
            try:
                message = await loop.run_in_executor(None, conn.recv)
            except (EOFError, OSError):
                break
            if message != "stats":
                break
            conn.send({origin.base: asdict(origin.stats) for origin in origins.values()})
            for origin in origins.values():
                origin.stats = OriginStats()
    finally:
        await runner.cleanup()


class CorpusServer(SpawnedServer):
    """The corpus served from a spawned process, as ``groups`` of origins: group P splits it over P ports."""

    name = "bench-corpus"

    def __init__(self, pages: int, seed: int, groups: Sequence[int], start_timeout_s: float = 120.0) -> None:
        super().__init__(serve_corpus, (pages, seed, tuple(groups)), start_timeout_s)
        self.origins: dict[int, list[str]] = {}

    def __enter__(self) -> CorpusServer:
        self.origins = self.start()
        return self

    def snapshot(self) -> dict[str, OriginStats]:
        """Per-origin request statistics since the last snapshot (which this one resets)."""
        self._conn.send("stats")
        if not self._conn.poll(30):
            raise RuntimeError("the corpus server did not answer")
        return {base: OriginStats(**stats) for base, stats in self._conn.recv().items()}


# --- news-please runs ---------------------------------------------------------------------------------

CRAWLERS = {"sitemap": "SitemapCrawler", "rss": "RssCrawler"}
SCRAPY_EXTRA = {
    "DOWNLOAD_DELAY": "0",
    "TELNETCONSOLE_ENABLED": "False",
    "REMOTE_CONTROL_ENABLED": "False",
    # news-please sets allowed_domains to "127.0.0.1:PORT"; Scrapy matches host names without the port.
    "DOWNLOADER_MIDDLEWARES": "{'scrapy.downloadermiddlewares.offsite.OffsiteMiddleware': None}",
}


def peer_config(
    default: str, *, working_path: Path, processes: int, crawler: str
) -> tuple[str, dict[str, str]]:
    """news-please's bundled config.cfg with the bench's changes; also returns the changes."""
    changes = {
        "default": crawler,
        "number_of_parallel_crawlers": str(processes),
        "enabled_heuristics": '{"crawler_contains_only_article_alikes": True}',
        "pass_heuristics_condition": '"crawler_contains_only_article_alikes"',
        "working_path": str(working_path),
        # One file per URL at a fixed length: the default path truncates long names to fit 260 characters.
        "local_data_directory": (
            "%working_path/data/%appendmd5_url_directory_string(60)_%md5_url_file_name(32).html"
        ),
        "LOG_LEVEL": "WARNING",
        "CONCURRENT_REQUESTS": str(CONCURRENCY),
        "CONCURRENT_REQUESTS_PER_DOMAIN": str(CONCURRENCY),
        "ITEM_PIPELINES": "{'newsplease.pipeline.pipelines.ArticleMasterExtractor': 100, "
        "'newsplease.pipeline.pipelines.JsonFileStorage': 300}",
    }
    text = default
    for key, value in changes.items():
        # ITEM_PIPELINES spans several lines in the default file.
        pattern = rf"(?ms)^{key}\s*=\s*\{{.*?\}}" if key == "ITEM_PIPELINES" else rf"(?m)^{key}\s*=.*$"
        line = f"{key} = {value}"
        text, count = re.subn(pattern, lambda _: line, text)  # noqa: B023 - called at once
        if count != 1:
            raise RuntimeError(f"news-please's default config.cfg has {count} '{key} =' lines, expected 1")
    extra = "".join(f"{key} = {value}\n" for key, value in SCRAPY_EXTRA.items())
    text, count = re.subn(r"(?m)^\[Scrapy\]\s*$", lambda _: "[Scrapy]\n" + extra, text)
    if count != 1:
        raise RuntimeError("news-please's default config.cfg has no [Scrapy] section")
    return text, {**changes, **SCRAPY_EXTRA}


@dataclass(frozen=True)
class PeerArticle:
    url: str
    written_at: float
    text: str
    title: str | None
    date: str | None


@dataclass
class PeerRun:
    """One news-please CLI run over every page, from launch to the launcher's exit."""

    processes: int
    round: int
    pages: int
    launched_at: float
    exit_code: int | None
    cpu_s: float
    server_cpu_s: float | None
    wall_s: float
    log: str
    articles: dict[str, PeerArticle]
    origins: dict[str, OriginStats]
    blocked_connections: int = 0
    identical: bool | None = None

    @property
    def written(self) -> int:
        return len(self.articles)

    @property
    def discovery_at(self) -> float | None:
        times = [stats.discovery_at for stats in self.origins.values() if stats.discovery_at is not None]
        return min(times) if times else None

    @property
    def last_written_at(self) -> float | None:
        return max((article.written_at for article in self.articles.values()), default=None)

    @property
    def seconds(self) -> float:
        """First sitemap or feed request to the last article written."""
        start, end = self.discovery_at, self.last_written_at
        return max(end - start, 1e-6) if start is not None and end is not None else 0.0

    @property
    def seconds_with_startup(self) -> float:
        end = self.last_written_at
        return end - self.launched_at if end is not None else 0.0

    @property
    def startup_s(self) -> float | None:
        start = self.discovery_at
        return start - self.launched_at if start is not None else None

    @property
    def pages_per_s(self) -> float:
        return self.written / self.seconds if self.seconds else 0.0

    @property
    def cpu_share(self) -> float | None:
        """CPU used (start-up included) over the processes' cores × the launch-to-last-write time."""
        wall = self.seconds_with_startup
        return self.cpu_s / (wall * self.processes) if wall else None

    def digest(self) -> str:
        parts = sorted(
            f"{urlsplit(a.url).path}\n{a.title}\n{a.date}\n{a.text}" for a in self.articles.values()
        )
        return hashlib.sha256("\n\x00".join(parts).encode()).hexdigest()


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def read_outputs(data_dir: Path) -> dict[str, PeerArticle]:
    """news-please's JSON files, by page path (``/site-3/news/<slug>.html``)."""
    articles: dict[str, PeerArticle] = {}
    for path in sorted(data_dir.rglob("*.json")) if data_dir.exists() else []:
        try:
            data = json.loads(path.read_text())
            written_at = path.stat().st_mtime
        except (OSError, ValueError):
            continue
        url = data.get("url") or ""
        articles[urlsplit(url).path] = PeerArticle(
            url=url,
            written_at=written_at,
            text=data.get("maintext") or "",
            title=data.get("title"),
            date=data.get("date_publish"),
        )
    return articles


def run_newsplease(
    venv: Path,
    server: CorpusServer,
    run_dir: Path,
    *,
    processes: int,
    round_: int,
    pages: int,
    crawler: str,
    timeout_s: float,
) -> tuple[PeerRun, dict[str, str]]:
    """One CLI run against the server's P-origin group; returns the run and the config changes."""
    if run_dir.exists():
        shutil.rmtree(run_dir)
    config_dir = run_dir / "config"
    config_dir.mkdir(parents=True)
    default = (_site_packages(venv) / "newsplease" / "config" / "config.cfg").read_text()
    config, changes = peer_config(
        default, working_path=run_dir / "work", processes=processes, crawler=CRAWLERS[crawler]
    )
    (config_dir / "config.cfg").write_text(config)
    sites = [{"url": f"{base}/", "crawler": CRAWLERS[crawler]} for base in server.origins[processes]]
    (config_dir / "sitelist.hjson").write_text(json.dumps({"base_urls": sites}, indent=2) + "\n")
    log_path = run_dir / "news-please.log"
    server.snapshot()  # reset the request statistics
    server_cpu_before = process_cpu_s(server.pid) if server.pid else None
    cpu_before = _children_cpu_s()
    launched_at, started = time.time(), time.perf_counter()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(venv / "bin" / "news-please"), "-c", str(config_dir)],
            cwd=run_dir,
            env=peer_env(venv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            exit_code: int | None = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            print(f"  news-please did not finish within {timeout_s:.0f} s: stopping it", file=sys.stderr)
            _stop_group(process)
            exit_code = None
    wall_s = time.perf_counter() - started
    cpu_s = _children_cpu_s() - cpu_before
    server_cpu_after = process_cpu_s(server.pid) if server.pid else None
    # Only this run's origins: the other groups' stay idle.
    origins = {base: stats for base, stats in server.snapshot().items() if base in server.origins[processes]}
    text = log_path.read_text(errors="replace")
    run = PeerRun(
        processes=processes,
        round=round_,
        pages=pages,
        launched_at=launched_at,
        exit_code=exit_code,
        cpu_s=cpu_s,
        server_cpu_s=(
            server_cpu_after - server_cpu_before
            if server_cpu_before is not None and server_cpu_after is not None
            else None
        ),
        wall_s=wall_s,
        log=str(log_path),
        articles=read_outputs(run_dir / "work" / "data"),
        origins=origins,
        blocked_connections=text.count(GUARD_MESSAGE),
    )
    return run, changes


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    """Stop the launcher and its crawler processes (its own session, started above)."""
    for sig, wait_s in ((signal.SIGINT, 15), (signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def score_peer(samples: Sequence[Sample], run: PeerRun) -> list[Any]:
    """Score every page: the JSON news-please wrote for it, or no text when it wrote none."""
    scores = []
    for sample in samples:
        article = run.articles.get(urlsplit(sample.url).path)
        outcome = (
            Outcome(article.text, article.title, article.date)
            if article is not None
            else Outcome("", None, None, "not-written")
        )
        scores.append(score(sample, outcome))
    return scores


# --- report -----------------------------------------------------------------------------------------

TABLE_HEADERS = ("side", "processes", "pages", "articles", "seconds", "pages/s", "CPU ms/page", "CPU share",
                 "F1 micro", "F1 macro", "precision", "recall", "title %", "date %")  # fmt: skip
RATIO_HEADERS = ("comparison", "ratio", "target", "speed", "CPU/page ratio", "F1 micro ours/peer",
                 "F1 macro ours/peer", "quality", "verdict")  # fmt: skip
CROWDED_SHARE = 0.85
LAYOUT_HEADERS = ("layout", "pages", "F1 ours", "F1 news-please", "precision ours", "precision news-please",
                  "recall ours", "recall news-please")  # fmt: skip


def _quality_cells(summary: dict[str, Any]) -> list[object]:
    return [
        f"{summary['f1_micro']:.4f}",
        f"{summary['f1_macro']:.4f}",
        f"{summary['precision_micro']:.4f}",
        f"{summary['recall_micro']:.4f}",
        round(100 * summary["title_share"], 1),
        round(100 * summary["date_share"], 1),
    ]


def _ours_row(label: str, run: Run, quality: dict[str, Any]) -> list[object]:
    return [
        label,
        run.workers,
        run.pages,
        run.pages,
        round(run.seconds, 2),
        round(run.pages_per_s, 1),
        round(1000 * run.cpu_s / run.pages, 1) if run.cpu_s is not None else "-",
        f"{run.cpu_share:.2f}" if run.cpu_share is not None else "-",
        *_quality_cells(quality),
    ]


def _peer_row(run: PeerRun, quality: dict[str, Any]) -> list[object]:
    return [
        f"news-please CLI, {run.processes} process{'es' if run.processes > 1 else ''}",
        run.processes,
        run.pages,
        run.written,
        round(run.seconds, 2),
        round(run.pages_per_s, 1),
        round(1000 * run.cpu_s / run.written, 1) if run.written else "-",
        f"{run.cpu_share:.2f}" if run.cpu_share is not None else "-",
        *_quality_cells(quality),
    ]


def _ratio(ours: float, peer: float) -> float | None:
    return ours / peer if peer else None


def compare(
    ours_run: Run, ours_quality: dict[str, Any], peer: PeerRun, quality: dict[str, Any]
) -> dict[str, Any]:
    ratio = _ratio(ours_run.pages_per_s, peer.pages_per_s)
    speed = ratio is not None and ratio >= TARGET_RATIO
    ours_cpu = 1000 * ours_run.cpu_s / ours_run.pages if ours_run.cpu_s is not None else None
    peer_cpu = 1000 * peer.cpu_s / peer.written if peer.written else None
    quality_met = (
        ours_quality["f1_micro"] >= quality["f1_micro"] and ours_quality["f1_macro"] >= quality["f1_macro"]
    )
    return {
        "peer_processes": peer.processes,
        "ours_pages_per_s": round(ours_run.pages_per_s, 2),
        "peer_pages_per_s": round(peer.pages_per_s, 2),
        "ratio": round(ratio, 3) if ratio is not None else None,
        "target_ratio": TARGET_RATIO,
        "speed_met": speed,
        # CPU per page moves less than pages/s when other work shares the machine; news-please's includes
        # its start-up (interpreter, Scrapy and extractor set-up: about 1-2 s of CPU per process).
        "ours_cpu_ms_per_page": round(ours_cpu, 2) if ours_cpu is not None else None,
        "peer_cpu_ms_per_page": round(peer_cpu, 2) if peer_cpu is not None else None,
        "cpu_ratio": round(peer_cpu / ours_cpu, 3) if peer_cpu and ours_cpu else None,
        "ours_f1_micro": ours_quality["f1_micro"],
        "peer_f1_micro": quality["f1_micro"],
        "ours_f1_macro": ours_quality["f1_macro"],
        "peer_f1_macro": quality["f1_macro"],
        "quality_met": quality_met,
        "met": speed and quality_met,
    }


def print_report(
    ours: dict[str, Any], peers: dict[int, dict[str, Any]], comparisons: list[dict[str, Any]], pages: int
) -> None:
    quality = ours["quality"]
    rows = [
        _ours_row("newsfeed extract stage, one core", ours["one_core"], quality),
        _ours_row(f"newsfeed extract stage, {ours['pool'].workers} workers", ours["pool"], quality),
        *(_peer_row(entry["best"], entry["quality"]) for entry in peers.values()),
    ]
    print(f"\n{pages} corpus pages, best of {ours['rounds']} round(s) each")
    print(format_table(TABLE_HEADERS, rows))
    ratio_rows = []
    for item in comparisons:
        processes = item["peer_processes"]
        ratio_rows.append(
            [
                f"newsfeed {ours['pool'].workers} workers / news-please {processes} "
                f"process{'es' if processes > 1 else ''}",
                f"{item['ratio']:.2f}x" if item["ratio"] is not None else "-",
                f"{TARGET_RATIO:g}x",
                "met" if item["speed_met"] else "MISSED",
                f"{item['cpu_ratio']:.2f}x" if item["cpu_ratio"] is not None else "-",
                f"{item['ours_f1_micro']:.4f} / {item['peer_f1_micro']:.4f}",
                f"{item['ours_f1_macro']:.4f} / {item['peer_f1_macro']:.4f}",
                "met" if item["quality_met"] else "MISSED",
                "met" if item["met"] else "MISSED",
            ]
        )
    print()
    print(format_table(RATIO_HEADERS, ratio_rows))
    crowded = [
        label
        for label, share in (
            (f"our pool ({ours['pool'].workers} workers)", ours["pool"].cpu_share),
            *((f"news-please {p}p", entry["best"].cpu_share) for p, entry in peers.items() if p > 1),
        )
        if share is not None and share < CROWDED_SHARE
    ]
    if crowded:
        print(
            f"note: {', '.join(crowded)} got less than {CROWDED_SHARE:.0%} of its cores (CPU share): other "
            "work was running, and pages/s ratios move with it; the CPU/page ratio (peer's CPU per page, "
            "start-up included, over ours) moves less"
        )
    first = next(iter(peers.values()), None)
    if first is not None:
        ours_layouts, peer_layouts = ours["by_layout"], first["by_layout"]
        layout_rows = [
            [
                layout,
                summary["pages"],
                f"{summary['f1_micro']:.4f}",
                f"{peer_layouts[layout]['f1_micro']:.4f}",
                f"{summary['precision_micro']:.4f}",
                f"{peer_layouts[layout]['precision_micro']:.4f}",
                f"{summary['recall_micro']:.4f}",
                f"{peer_layouts[layout]['recall_micro']:.4f}",
            ]
            for layout, summary in ours_layouts.items()
            if layout in peer_layouts
        ]
        print("\nquality by layout (same pages):")
        print(format_table(LAYOUT_HEADERS, layout_rows))
        diagnosis = first["diagnosis"]
        lost = ", ".join(f"{kind} {share:.4f}" for kind, share in diagnosis["precision_lost_by_kind"].items())
        print(f"\nnews-please, precision lost (share of extracted shingles): {lost or 'none'}")
        for leak in diagnosis["top_leaked_lines"][:5]:
            print(f"  {leak['pages']:>5}  {leak['precision_lost']:.4f}  {leak['line']}")
        recall = diagnosis["recall_lost"]
        print(
            f"news-please, recall lost: {recall['inside_paragraphs']:.4f} inside paragraphs, "
            f"{recall['paragraph_boundaries_only']:.4f} only at paragraph boundaries; "
            f"date misses by layout: {diagnosis['date_misses_by_layout'] or 'none'}"
        )
    for processes, entry in peers.items():
        for run in entry["runs"]:
            startup = f"{run.startup_s:.1f}" if run.startup_s is not None else "-"
            with_startup = run.written / run.seconds_with_startup if run.written else 0.0
            print(
                f"news-please {processes}p round {run.round}: {run.written}/{run.pages} written, "
                f"{run.pages_per_s:.1f} pages/s ({with_startup:.1f} with its {startup} s start-up), "
                f"launcher exit {run.exit_code} after {run.wall_s:.1f} s, "
                f"same output: {({None: '-', True: 'yes', False: 'NO'})[run.identical]}, log {run.log}"
            )
            if run.blocked_connections:
                print(f"  note: {run.blocked_connections} non-loopback connection attempts were blocked")


def _peer_run_json(run: PeerRun) -> dict[str, Any]:
    return {
        "round": run.round,
        "processes": run.processes,
        "pages": run.pages,
        "written": run.written,
        "missing": run.pages - run.written,
        "exit_code": run.exit_code,
        "seconds": round(run.seconds, 3),
        "pages_per_s": round(run.pages_per_s, 2),
        "seconds_with_startup": round(run.seconds_with_startup, 3),
        "pages_per_s_with_startup": round(run.written / run.seconds_with_startup, 2) if run.written else 0.0,
        "startup_s": round(run.startup_s, 2) if run.startup_s is not None else None,
        "launcher_wall_s": round(run.wall_s, 2),
        "cpu_s": round(run.cpu_s, 2),
        "cpu_ms_per_page": round(1000 * run.cpu_s / run.written, 1) if run.written else None,
        "cpu_share": round(run.cpu_share, 3) if run.cpu_share is not None else None,
        "server_cpu_s": round(run.server_cpu_s, 2) if run.server_cpu_s is not None else None,
        "requests": {
            base: {"articles": s.articles, "other": s.other, "not_found": s.not_found}
            for base, s in run.origins.items()
        },
        "blocked_connections": run.blocked_connections,
        "same_output": run.identical,
        "log": run.log,
    }


def _ours_run_json(run: Run) -> dict[str, Any]:
    return {
        "label": run.label,
        "round": run.round,
        "workers": run.workers,
        "chunksize": run.chunksize,
        "pages": run.pages,
        "seconds": round(run.seconds, 3),
        "pages_per_s": round(run.pages_per_s, 2),
        "cpu_s": round(run.cpu_s, 3) if run.cpu_s is not None else None,
        "cpu_ms_per_page": round(1000 * run.cpu_s / run.pages, 2) if run.cpu_s is not None else None,
        "cpu_share": round(run.cpu_share, 3) if run.cpu_share is not None else None,
        "same_output": run.identical,
    }


# --- main -------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    cores = os.cpu_count() or 1
    parser = argparse.ArgumentParser(prog=f"python -m bench.{NAME}", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=None, help=f"corpus pages (default {DEFAULT_PAGES})")
    parser.add_argument("--smoke", action="store_true", help=f"tiny run ({SMOKE_PAGES} pages) for tests")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds (default 2; smoke 1)")
    parser.add_argument("--workers", type=int, default=cores, help="our pool size (default: cores)")
    parser.add_argument(
        "--peer-processes",
        default=None,
        help=f"comma-separated news-please process counts, one run each (default 1,{cores})",
    )
    parser.add_argument("--crawler", choices=sorted(CRAWLERS), default="sitemap", help="its crawler")
    parser.add_argument("--venv", type=Path, default=PEER_VENV, help=f"its venv (default {PEER_VENV})")
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="news-please's config, output and logs (default .state/bench/newsplease-run)",
    )
    parser.add_argument("--peer-timeout", type=float, default=None, help="seconds for one news-please run")
    parser.add_argument("--json", type=Path, default=None, help=f"result file (default {RESULTS_DIR}/…)")
    args = parser.parse_args(argv)
    if args.pages is None:
        args.pages = SMOKE_PAGES if args.smoke else DEFAULT_PAGES
    if args.rounds is None:
        args.rounds = 1 if args.smoke else 2
    if args.json is None:
        args.json = RESULTS_DIR / (f"{NAME}.smoke.json" if args.smoke else f"{NAME}.json")
    if args.work_dir is None:
        args.work_dir = PROJECT_DIR / ".state" / "bench" / "newsplease-run"
    try:
        processes = [int(part) for part in (args.peer_processes or f"1,{cores}").split(",") if part.strip()]
    except ValueError:
        parser.error("--peer-processes takes comma-separated integers")
    if not processes or min(processes) < 1:
        parser.error("--peer-processes takes positive integers")
    args.peer_processes = sorted(set(processes))
    if args.peer_timeout is None:
        args.peer_timeout = 120 + 0.5 * args.pages
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    marker = ensure_peer_venv(args.venv)
    corpus = generate_corpus(args.pages, seed=args.seed)
    samples = corpus_samples(corpus)
    pages = [raw_page(BASE_URL + page.url, page.html) for page in corpus.pages]
    chunksize = max(1, math.ceil(len(pages) / (args.workers * CHUNKS_PER_WORKER)))
    print(
        f"{NAME}: {len(pages)} pages, our pool {args.workers} workers (chunksize {chunksize}), "
        f"news-please {marker['packages'].get('news-please')} with {args.peer_processes} processes",
        file=sys.stderr,
    )
    # Our quality: the project configuration of extraction_quality, the same stage the speed runs time.
    our_scores, _ = run_config(CONFIGS_BY_NAME["project"], samples)
    our_quality = summarise(our_scores)
    our_runs: list[Run] = []
    peer_runs: dict[int, list[PeerRun]] = {processes: [] for processes in args.peer_processes}
    changes: dict[str, str] = {}
    load_before = os.getloadavg()
    with CorpusServer(args.pages, args.seed, args.peer_processes) as server:
        for round_ in range(1, args.rounds + 1):
            print(f"  round {round_} of {args.rounds}:", file=sys.stderr)
            result = measure("stage", pages, [chunksize], args.workers, 1)
            for run in result["runs"]:
                run.round = round_
            our_runs.extend(result["runs"])
            for processes in args.peer_processes:
                run, changes = run_newsplease(
                    args.venv,
                    server,
                    args.work_dir / f"round-{round_}-p{processes}",
                    processes=processes,
                    round_=round_,
                    pages=len(pages),
                    crawler=args.crawler,
                    timeout_s=args.peer_timeout,
                )
                peer_runs[processes].append(run)
                print(
                    f"  news-please {processes}p round {round_}: {run.written} written, "
                    f"{run.pages_per_s:.1f} pages/s",
                    file=sys.stderr,
                )
    load_after = os.getloadavg()

    one_core = max((run for run in our_runs if run.chunksize is None), key=lambda run: run.pages_per_s)
    pool = max((run for run in our_runs if run.chunksize is not None), key=lambda run: run.pages_per_s)
    ours = {
        "one_core": one_core,
        "pool": pool,
        "quality": our_quality,
        "by_layout": by_layout(our_scores),
        "rounds": args.rounds,
    }
    reference: str | None = None
    peers: dict[int, dict[str, Any]] = {}
    for processes, runs in peer_runs.items():
        for run in runs:
            digest = run.digest()
            if reference is None:
                reference = digest
            else:
                run.identical = digest == reference
        best = max(runs, key=lambda run: run.pages_per_s)
        scores = score_peer(samples, best)
        peers[processes] = {
            "runs": runs,
            "best": best,
            "quality": summarise(scores),
            "by_layout": by_layout(scores),
            "diagnosis": diagnose(scores),
        }
    comparisons = [compare(pool, our_quality, entry["best"], entry["quality"]) for entry in peers.values()]
    print_report(ours, peers, comparisons, len(pages))
    print(f"load average (1, 5, 15 min) before {load_before}, after {load_after}")

    data = {
        "name": NAME,
        "timestamp": utc_timestamp(),
        "smoke": args.smoke,
        "pages": len(pages),
        "html_mb": round(sum(len(page["html"].encode()) for page in pages) / 1e6, 2),
        "seed": args.seed,
        "rounds": args.rounds,
        "target_ratio": TARGET_RATIO,
        "metric": (
            "pages/s: ours = pages over the pool's wall time (extraction only, pages in memory); "
            "news-please = articles written over first sitemap/feed request to last JSON file written "
            "(fetch + extract + write). Quality: bench.extraction_quality scoring (4-word shingle F1, "
            "exact title, same day)"
        ),
        "ours": {
            "stage": "pipeline.extract.extractor.extract_article",
            "workers": args.workers,
            "chunksize": chunksize,
            "mp_context": "forkserver",
            "one_core_pages_per_s": round(one_core.pages_per_s, 2),
            "pages_per_s": round(pool.pages_per_s, 2),
            "cpu_ms_per_page": round(1000 * pool.cpu_s / pool.pages, 2) if pool.cpu_s is not None else None,
            "quality": our_quality,
            "by_layout": ours["by_layout"],
            "runs": [_ours_run_json(run) for run in our_runs],
        },
        "newsplease": {
            "version": marker["packages"].get("news-please"),
            "mode": "cli",
            "command": "news-please -c CONFIG_DIR",
            "crawler": CRAWLERS[args.crawler],
            "venv": str(args.venv),
            "python": marker.get("python"),
            "packages": marker.get("packages"),
            "requirements": marker.get("requirements"),
            "config_changes": changes,
            "by_processes": {
                str(processes): {
                    "pages_per_s": round(entry["best"].pages_per_s, 2),
                    "written": entry["best"].written,
                    "quality": entry["quality"],
                    "by_layout": entry["by_layout"],
                    "diagnosis": entry["diagnosis"],
                    "runs": [_peer_run_json(run) for run in entry["runs"]],
                }
                for processes, entry in peers.items()
            },
        },
        "comparisons": comparisons,
        "load_average_before": [round(value, 2) for value in load_before],
        "load_average_after": [round(value, 2) for value in load_after],
        "machine": machine_info(("trafilatura", "htmldate", "lxml", "justext", "aiohttp")),
    }
    path = write_results(data, args.json)
    print(f"\nresults: {path}")
    failed = [run for runs in peer_runs.values() for run in runs if run.written == 0]
    for run in failed:
        tail = "\n".join(Path(run.log).read_text(errors="replace").splitlines()[-25:])
        print(f"\nnews-please ({run.processes}p, round {run.round}) wrote no article; {run.log}:\n{tail}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
