"""What the bench scripts share: a generated news site served from its own process, facts about the
machine, result tables and result files."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import multiprocessing
import os
import platform
import random
import re
import socket
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType
from typing import Any
from xml.sax.saxutils import escape as xml_escape

from aiohttp import web

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
KAFKA_POM = PROJECT_DIR / "deploy" / "kafka" / "pom.xml"
MB = 1_000_000

# --- generated text ---------------------------------------------------------------------------------


def _split(words: str) -> tuple[str, ...]:
    return tuple(words.split())


_SYLLABLES = _split(
    "ba be bi bo ca ce co da de di do el en er es fa fi for ga ge go ha he in is ka la le li lo ma me mi "
    "mo na ne ni no on or pa pe pi po ra re ri ro sa se si so ta te ti to tra un ur va ve vi zo ste pro "
    "con ver mar gen tal son ber lin ton"
)
_FUNCTION_WORDS = _split(
    "the of and to in a is that for on with as was by at from it his her their said has have will "
    "would about after over more than but not this which who"
)
_ACCENTED = ("café", "régime", "naïve", "façade", "São", "Zürich", "México", "Ålesund", "déjà")
_SECTIONS = _split(
    "World Politics Business Markets Economy Technology Science Health Climate Energy Sport Football "
    "Cricket Culture Books Film Music Travel Food Opinion Editorials Letters Obituaries Education Law "
    "Media Cities Africa Asia Europe Americas"
)


class _TextMaker:
    """Seeded pseudo-prose: invented words mixed with English function words and the odd accent."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        words = {"".join(rng.choices(_SYLLABLES, k=rng.choice((1, 2, 2, 3, 3, 4)))) for _ in range(3000)}
        self.vocabulary = sorted(words)
        self.names = [word.capitalize() for word in rng.sample(self.vocabulary, 300)]
        self.mixed = [*self.vocabulary, *(_FUNCTION_WORDS * 60), *_ACCENTED]

    def words(self, count: int) -> str:
        return " ".join(self.rng.choices(self.mixed, k=count))

    def name(self) -> str:
        return f"{self.rng.choice(self.names)} {self.rng.choice(self.names)}"

    def sentence(self) -> str:
        text = self.words(self.rng.randint(6, 24))
        if self.rng.random() < 0.3:
            text += f", {self.name()} said"
        return text[0].upper() + text[1:] + "."

    def paragraph(self) -> str:
        return " ".join(self.sentence() for _ in range(self.rng.randint(2, 6)))

    def title(self) -> str:
        return self.words(self.rng.randint(5, 11)).capitalize()


# --- the site ---------------------------------------------------------------------------------------

SITE_NAME = "The Bench Courier"
FIRST_PUBLISHED = datetime(2024, 5, 1, 6, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Page:
    path: str
    html: bytes
    published: datetime


def generate_pages(count: int, seed: int, min_bytes: int = 15_000, max_bytes: int = 40_000) -> list[Page]:
    """`count` article pages, the same for the same seed: masthead, navigation, article, sidebar, footer."""
    rng = random.Random(seed)
    text = _TextMaker(rng)
    slugs = [
        f"{'-'.join(rng.choices(text.vocabulary, k=rng.randint(3, 7)))}-{index}" for index in range(count)
    ]
    published = [FIRST_PUBLISHED + timedelta(minutes=7 * index) for index in range(count)]
    paths = [
        f"/{rng.choice(_SECTIONS).lower()}/{when:%Y/%m/%d}/{slug}.html"
        for slug, when in zip(slugs, published, strict=True)
    ]
    titles = [text.title() for _ in range(count)]
    return [
        Page(
            path,
            _article_html(
                rng,
                text,
                index,
                paths=paths,
                titles=titles,
                published=published[index],
                min_bytes=min_bytes,
                max_bytes=max_bytes,
            ),
            published[index],
        )
        for index, path in enumerate(paths)
    ]


def _links(rng: random.Random, paths: list[str], titles: list[str], count: int) -> str:
    picks = rng.sample(range(len(paths)), min(count, len(paths)))
    return "".join(f'<li><a href="{paths[i]}">{escape(titles[i])}</a></li>' for i in picks)


def _article_html(
    rng: random.Random,
    text: _TextMaker,
    index: int,
    *,
    paths: list[str],
    titles: list[str],
    published: datetime,
    min_bytes: int,
    max_bytes: int,
) -> bytes:
    title = escape(titles[index])
    dek = escape(text.sentence())
    author = text.name()
    section = paths[index].split("/")[1]
    nav = "".join(f'<li><a href="/{name.lower()}/">{name}</a></li>' for name in _SECTIONS)
    ld_json = json.dumps(
        {
            "@context": "https://schema.org",
            "@type": "NewsArticle",
            "headline": titles[index],
            "datePublished": published.isoformat(),
            "author": {"@type": "Person", "name": author},
        }
    )
    head = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{title} | {SITE_NAME}</title>"
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="description" content="{dek}"><meta property="og:title" content="{title}">'
        f'<meta property="og:type" content="article"><link rel="canonical" href="{paths[index]}">'
        f'<link rel="stylesheet" href="/static/site.css">'
        f'<script type="application/ld+json">{ld_json}</script>'
        f'<script async src="/static/analytics.js"></script></head><body class="section-{section}">'
        f'<header class="masthead"><a class="logo" href="/">{SITE_NAME}</a>'
        f'<form class="search" action="/search"><input name="q" placeholder="Search"></form>'
        f'<nav class="sections"><ul>{nav}</ul></nav>'
        f'<div class="ticker"><ul>{_links(rng, paths, titles, 6)}</ul></div></header>'
        f'<div class="layout"><main><article class="story"><p class="kicker">{section.capitalize()}</p>'
        f'<h1>{title}</h1><p class="dek">{dek}</p><p class="byline">By <a href="/authors/'
        f'{author.lower().replace(" ", "-")}">{escape(author)}</a> · <time datetime="'
        f'{published.isoformat()}">{published:%d %B %Y, %H:%M}</time></p>'
        f'<figure class="lead"><img src="/img/{index}.jpg" alt="{escape(text.title())}" width="960" '
        f'height="540"><figcaption>{escape(text.sentence())}</figcaption></figure><div class="body">'
    )
    tail_start = (
        f'</div></article><section class="related"><h2>Related</h2><ul>{_links(rng, paths, titles, 5)}'
        f'</ul></section><section class="comments"><h2>Comments</h2><p>{escape(text.sentence())}</p>'
        f'</section></main><aside class="sidebar"><section class="most-read"><h2>Most read</h2><ol>'
        f'{_links(rng, paths, titles, 10)}</ol></section><section class="newsletter"><h2>Newsletter</h2>'
        f"<p>{escape(text.sentence())}</p></section>"
        f'<div class="ad" data-slot="sidebar-{rng.randint(1, 9)}">Advertisement</div></aside></div>'
        f"<footer><ul>{nav}</ul><p>© 2024 {SITE_NAME}. {escape(text.sentence())}</p></footer></body></html>"
    )
    target = rng.randint(min_bytes, max_bytes)
    parts: list[str] = []
    size = len(head) + len(tail_start)
    while size < target:
        roll = rng.random()
        if roll < 0.08:
            part = f"<h2>{escape(text.title())}</h2>"
        elif roll < 0.13:
            part = (
                f"<blockquote><p>{escape(text.sentence())}</p><cite>{escape(text.name())}</cite></blockquote>"
            )
        else:
            part = f"<p>{escape(text.paragraph())}</p>"
        parts.append(part)
        size += len(part.encode())
    return (head + "".join(parts) + tail_start).encode()


def sitemap_xml(base: str, pages: Sequence[Page]) -> bytes:
    entries = "".join(
        f"<url><loc>{xml_escape(base + page.path)}</loc><lastmod>{page.published.isoformat()}</lastmod></url>"
        for page in pages
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</urlset>\n'
    ).encode()


@dataclass(frozen=True)
class SiteInfo:
    base: str
    paths: list[str]
    total_bytes: int
    pid: int | None = None  # the process serving it, for CPU accounting

    @property
    def sitemap_url(self) -> str:
        return f"{self.base}/sitemap.xml"

    @property
    def page_urls(self) -> list[str]:
        return [self.base + path for path in self.paths]


def serve_site(pages: int, seed: int, conn: Connection) -> None:
    """Child process entry: generate the site, serve it on 127.0.0.1 (port 0), report, serve until told."""
    asyncio.run(_serve(pages, seed, conn))


async def _serve(count: int, seed: int, conn: Connection) -> None:
    pages = generate_pages(count, seed)
    by_path = {page.path: page for page in pages}
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    sitemap = sitemap_xml(base, pages)
    last_modified = "Wed, 01 May 2024 06:00:00 GMT"

    async def article(request: web.Request) -> web.Response:
        page = by_path.get(request.path)
        if page is None:
            raise web.HTTPNotFound
        return web.Response(
            body=page.html,
            content_type="text/html",
            charset="utf-8",
            headers={"Last-Modified": last_modified, "Cache-Control": "max-age=60"},
        )

    async def sitemap_view(request: web.Request) -> web.Response:
        return web.Response(body=sitemap, content_type="application/xml", charset="utf-8")

    async def robots(request: web.Request) -> web.Response:
        return web.Response(text="User-agent: *\nAllow: /\n", content_type="text/plain")

    app = web.Application()
    app.router.add_get("/sitemap.xml", sitemap_view)
    app.router.add_get("/robots.txt", robots)
    app.router.add_get("/{tail:.*}", article)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock, backlog=1024).start()
    conn.send((base, [page.path for page in pages], sum(len(page.html) for page in pages)))
    try:
        # Any message, or the parent going away, means stop.
        with contextlib.suppress(EOFError, OSError):
            await asyncio.get_running_loop().run_in_executor(None, conn.recv)
    finally:
        await runner.cleanup()


class SpawnedServer:
    """A server in a spawned process that reports once over a pipe when it is up, and stops on any
    message (or when the parent goes away), so serving never loads the measured event loop."""

    name = "bench-server"

    def __init__(self, target: Callable[..., None], args: tuple[Any, ...], start_timeout_s: float) -> None:
        self.start_timeout_s = start_timeout_s
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._child_conn = child
        self._process = context.Process(target=target, args=(*args, child), name=self.name, daemon=True)

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def start(self) -> Any:
        """Start the process and return what it reports once it serves."""
        self._process.start()
        self._child_conn.close()
        if not self._conn.poll(self.start_timeout_s):
            self._stop()
            raise RuntimeError(f"the {self.name} process did not start within {self.start_timeout_s} s")
        try:
            return self._conn.recv()
        except EOFError:
            self._process.join(10)
            raise RuntimeError(f"the {self.name} process exited ({self._process.exitcode})") from None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stop()

    def _stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._conn.send("stop")
        self._process.join(10)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(5)
        self._conn.close()


class LocalSite(SpawnedServer):
    """The generated site in a spawned process."""

    name = "bench-site"

    def __init__(self, pages: int, seed: int, start_timeout_s: float = 120.0) -> None:
        super().__init__(serve_site, (pages, seed), start_timeout_s)
        self.pages = pages
        self.seed = seed

    def __enter__(self) -> SiteInfo:
        base, paths, total_bytes = self.start()
        return SiteInfo(base=base, paths=paths, total_bytes=total_bytes, pid=self.pid)


# --- CPU accounting ---------------------------------------------------------------------------------


def process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds a live process has used so far (Linux /proc), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # After the command name: state is field 3, utime and stime are fields 14 and 15 (1-based).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds used by named processes between `start` and `stop`: where a 2-core machine's time went."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = {name: pid for name, pid in pids.items() if pid is not None}
        self._started: dict[str, float | None] = {}

    def _now(self) -> dict[str, float | None]:
        return {name: process_cpu_s(pid) for name, pid in self.pids.items()}

    def start(self) -> None:
        self._started = self._now()

    def stop(self) -> dict[str, float]:
        ended = self._now()
        return {
            name: round(end - begin, 2)
            for name, end in ended.items()
            if end is not None and (begin := self._started.get(name)) is not None
        }


# --- machine facts and results -------------------------------------------------------------------


def kafka_version() -> str | None:
    """The broker version `newsfeed broker` runs, from deploy/kafka/pom.xml."""
    try:
        match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", KAFKA_POM.read_text())
    except OSError:
        return None
    return match.group(1).strip() if match else None


def _package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or None


def _memory_gib() -> float | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    return None


def git_revision() -> str | None:
    """The checked-out commit, with "-dirty" when the work tree has changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=PROJECT_DIR,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=PROJECT_DIR,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{commit}-dirty" if dirty else commit


def machine_info(packages: Sequence[str] = ("aiohttp", "aiokafka", "orjson", "cramjam")) -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gib": _memory_gib(),
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": {name: _package_version(name) for name in packages},
        "kafka_broker": kafka_version(),
        "git": git_revision(),
    }


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain text table; numbers are right-aligned."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max(len(str(header)), *(len(row[i]) for row in cells)) for i, header in enumerate(headers)]
    numeric = [all(isinstance(row[i], int | float) for row in rows) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            value.rjust(width) if right else value.ljust(width)
            for value, width, right in zip(values, widths, numeric, strict=True)
        ).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line([str(header) for header in headers]), rule, *(line(row) for row in cells)])


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def write_results(data: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    temporary.replace(path)
    return path


def utc_timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def sized_bench_args(
    name: str, description: str, *, size: str, default: int, smoke: int, argv: Sequence[str] | None
) -> argparse.Namespace:
    """The options every sized bench shares: `--<size> N`, `--smoke` (the tiny size) and `--json PATH`."""
    parser = argparse.ArgumentParser(prog=f"python -m bench.{name}", description=description)
    parser.add_argument(f"--{size}", type=int, default=None, help=f"default {default}")
    parser.add_argument("--smoke", action="store_true", help=f"tiny run ({smoke} {size}) for tests")
    parser.add_argument("--json", type=Path, default=None, help=f"result file (default {RESULTS_DIR}/…)")
    args = parser.parse_args(argv)
    if getattr(args, size) is None:
        setattr(args, size, smoke if args.smoke else default)
    if args.json is None:
        args.json = RESULTS_DIR / (f"{name}.smoke.json" if args.smoke else f"{name}.json")
    return args


def sized_bench_main(
    name: str,
    doc: str | None,
    *,
    size: str,
    default: int,
    smoke: int,
    measure: Callable[[argparse.Namespace], dict[str, Any]],
    render: Callable[[dict[str, Any]], str],
    argv: Sequence[str] | None = None,
) -> int:
    """A sized bench's `main`: its options (the module docstring's first paragraph as description), then
    `run_bench`."""
    description = (doc or name).split("\n\n")[0]
    args = sized_bench_args(name, description, size=size, default=default, smoke=smoke, argv=argv)
    return run_bench(args, measure, render)


def run_bench(
    args: argparse.Namespace,
    measure: Callable[[argparse.Namespace], dict[str, Any]],
    render: Callable[[dict[str, Any]], str],
) -> int:
    """Measure, print the table, write the JSON; a bench's exit code never depends on a rate."""
    result = measure(args)
    print(render(result))
    print(f"\nresults: {write_results(result, args.json)}")
    return 0
