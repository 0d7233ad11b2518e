"""A news site that keeps publishing: bench/corpus.py pages released one at a time, from its own process."""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import socket
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from aiohttp import web

from bench.common import SpawnedServer
from bench.corpus import SITES, Corpus, CorpusPage, generate_corpus, growing_corpus_app

# A fifth of the corpus pages are syndicated copies of another site's story, so dedup has work to do.
SYNDICATED_SHARE = 0.2


@dataclass(frozen=True)
class Published:
    """One article the site has published: where, when (epoch seconds), and the article it copies."""

    url: str
    published_at: float
    copy_of: str | None


@dataclass(frozen=True)
class LiveSiteInfo:
    base: str
    feed_urls: list[str]
    pages_available: int


def pages_needed(minutes: float, min_interval_s: float) -> int:
    """Enough pages to publish at the fastest pace for `minutes` (and a hundred more)."""
    return math.ceil(minutes * 60 / min_interval_s) + 100


class _Publisher:
    """Releases the corpus pages in publication order (a copy always after its original), one every
    `min_interval_s`–`max_interval_s` seconds; only released pages are in the feeds or can be fetched."""

    def __init__(
        self, corpus: Corpus, base: str, min_interval_s: float, max_interval_s: float, seed: int
    ) -> None:
        self.pages = corpus.pages
        self.base = base
        self.seed = corpus.seed
        self.min_interval_s = min_interval_s
        self.max_interval_s = max_interval_s
        self.rng = random.Random(seed)
        self.released: list[Published] = []
        self.snapshot = Corpus(seed=corpus.seed, sites=SITES, pages=())

    def release_next(self) -> None:
        index = len(self.released)
        page: CorpusPage = self.pages[index]
        source = page.syndicated_from
        self.released.append(Published(self.base + page.url, time.time(), source and self.base + source))
        # Feeds and sitemaps are built from this snapshot; a new tuple per release keeps readers consistent.
        self.snapshot = Corpus(seed=self.seed, sites=SITES, pages=self.pages[: index + 1])

    async def run(self) -> None:
        for _ in self.pages:
            self.release_next()
            await asyncio.sleep(self.rng.uniform(self.min_interval_s, self.max_interval_s))


def serve_live_site(
    pages: int, seed: int, min_interval_s: float, max_interval_s: float, conn: Connection
) -> None:
    """Child process entry: serve on 127.0.0.1 (port 0), publish, and answer the parent's requests."""
    asyncio.run(_serve(pages, seed, min_interval_s, max_interval_s, conn))


async def _serve(
    pages: int, seed: int, min_interval_s: float, max_interval_s: float, conn: Connection
) -> None:
    corpus = generate_corpus(pages, seed=seed, syndicated_share=SYNDICATED_SHARE)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    publisher = _Publisher(corpus, base, min_interval_s, max_interval_s, seed)
    runner = web.AppRunner(growing_corpus_app(lambda: publisher.snapshot), access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock, backlog=1024).start()
    publishing = asyncio.create_task(publisher.run())
    conn.send(LiveSiteInfo(base, [base + site.feed_path for site in SITES], len(corpus.pages)))
    loop = asyncio.get_running_loop()
    try:
        # The parent asks "count" (articles published so far), "published" (the list so far) or "pause"
        # (stop publishing, then the list); any other message, or the parent going away, stops the site.
        while True:
            try:
                request = await loop.run_in_executor(None, conn.recv)
            except (EOFError, OSError):
                break
            if request == "count":
                conn.send(len(publisher.released))
                continue
            if request == "pause":
                publishing.cancel()
            elif request != "published":
                break
            conn.send(list(publisher.released))
    finally:
        publishing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await publishing
        await runner.cleanup()


class LiveSite(SpawnedServer):
    """The live site in a spawned process, so serving and publishing never load the test's event loop."""

    name = "soak-live-site"

    def __init__(
        self, minutes: float, seed: int, min_interval_s: float = 0.5, max_interval_s: float = 1.0
    ) -> None:
        pages = pages_needed(minutes, min_interval_s)
        super().__init__(
            serve_live_site, (pages, seed, min_interval_s, max_interval_s), start_timeout_s=120.0
        )
        # The test's sampler thread asks too: one request and its answer at a time on the pipe.
        self._asking = threading.Lock()

    def __enter__(self) -> LiveSite:
        self.info: LiveSiteInfo = self.start()
        return self

    def count(self) -> int:
        """How many articles the site has published so far."""
        count: int = self._ask("count")
        return count

    def published(self) -> list[Published]:
        """Every article published so far, in publication order."""
        published: list[Published] = self._ask("published")
        return published

    def pause(self) -> list[Published]:
        """Stop publishing (the site keeps serving) and return every article published."""
        published: list[Published] = self._ask("pause")
        return published

    def _ask(self, request: str) -> Any:
        with self._asking:
            self._conn.send(request)
            if not self._conn.poll(60):
                raise RuntimeError(f"the {self.name} process did not answer {request!r}")
            return self._conn.recv()
