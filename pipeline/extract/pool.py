"""Extraction on every core: a process pool where a page over its time limit costs only its worker."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable
from typing import Generic, TypeVar

import pebble

from pipeline.dedup.near import Fingerprint, fingerprint
from pipeline.extract.extractor import Skipped, extract_article
from pipeline.records import Article, RawPage

Result = TypeVar("Result")

# Workers are replaced now and then so that slow leaks in parsers cannot grow for weeks.
TASKS_PER_WORKER = 2000


class ExtractionTimeoutError(TimeoutError):
    """A page took longer than the per-page limit; its worker process was killed."""


class ExtractorCrashError(RuntimeError):
    """The worker process died while extracting a page (a crash in native code, or out of memory)."""


def extract_with_fingerprint(page: RawPage) -> tuple[Article, Fingerprint] | Skipped:
    """`extract_article`, and the fingerprint of the article's text while it is at hand: the MinHash costs
    about half as much as extraction, and here it runs on every core instead of in the worker's event loop."""
    result = extract_article(page)
    if isinstance(result, Skipped):
        return result
    return result, fingerprint(result["text"])


def warm_up() -> None:
    """Run once in every new pool process: the extractor's first page is far slower than the rest (lazy
    imports and caches in trafilatura and lxml), and without this a real page would pay for it. The page
    declares its language: py3langid's model (about 100 MB a process) loads only for a page that does not."""
    try:
        extract_with_fingerprint(WARM_UP_PAGE)
    except Exception:  # warming is best effort: a real page meets the same error and is dead-lettered
        return


def _started() -> None:
    """A task that only makes the pool start its processes now instead of at the first page."""


WARM_UP_PAGE = RawPage(
    url="https://warm-up.invalid/story",
    final_url="https://warm-up.invalid/story",
    status=200,
    headers={},
    fetched_at="2026-01-01T00:00:00+00:00",
    source="warm-up",
    content_hash="sha256:" + "0" * 64,
    html=(
        '<html lang="en"><head><title>Warm-up</title></head><body><nav>Home</nav><article><h1>Warm-up</h1>'
        + "".join(
            f"<p>Paragraph {number} of a short page that each extraction process reads before its first"
            f" real one, so that imports and caches are ready when the first real page arrives.</p>"
            for number in range(1, 9)
        )
        + "</article></body></html>"
    ),
    trace_id="warm-up",
)


class ExtractionPool(Generic[Result]):
    """Runs `extract` (a function of a raw page) in `processes` worker processes, off the event loop.

    The processes start with the pool and warm up before taking pages, and so does a process that replaces
    one (after TASKS_PER_WORKER pages, a crash or a time limit) while the others go on. The forkserver does
    not import the extractor beforehand: that would keep a third copy of it in memory for good."""

    def __init__(self, processes: int, timeout_s: float, extract: Callable[[RawPage], Result]) -> None:
        self.timeout_s = timeout_s
        self._extract = extract
        self._pool = pebble.ProcessPool(
            max_workers=processes,
            max_tasks=TASKS_PER_WORKER,
            initializer=warm_up,
            context=multiprocessing.get_context("forkserver"),
        )
        self._pool.schedule(_started)

    async def extract(self, page: RawPage) -> Result:
        """What `extract` returns for the page; raises ExtractionTimeoutError, ExtractorCrashError, or the
        extractor's own exception."""
        future = self._pool.schedule(self._extract, args=(page,), timeout=self.timeout_s)
        try:
            result: Result = await asyncio.wrap_future(future)
        except TimeoutError as error:
            raise ExtractionTimeoutError(f"extraction took over {self.timeout_s:.0f}s") from error
        except pebble.ProcessExpired as error:
            raise ExtractorCrashError(f"extraction worker died (exit code {error.exitcode})") from error
        return result

    def close(self) -> None:
        self._pool.stop()  # type: ignore[no-untyped-call]  # pebble leaves stop() unannotated
        self._pool.join(timeout=10)


class SharedPool(Generic[Result]):
    """One ExtractionPool shared by the agent's concurrent actors: made by the first, closed by the last."""

    def __init__(self, factory: Callable[[], ExtractionPool[Result]]) -> None:
        self._factory = factory
        self._pool: ExtractionPool[Result] | None = None
        self._users = 0

    def acquire(self) -> ExtractionPool[Result]:
        if self._pool is None:
            self._pool = self._factory()
        self._users += 1
        return self._pool

    def release(self) -> None:
        self._users -= 1
        if self._users == 0 and self._pool is not None:
            self._pool.close()
            self._pool = None
