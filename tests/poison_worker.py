"""`newsfeed worker` whose extraction pool runs the stand-in extractor that throws on marked pages."""

from __future__ import annotations

import functools
import sys

import pipeline.stream.agents as agents
from pipeline.cli import main
from pipeline.extract.pool import ExtractionPool
from tests.poison import explode_or_crash_on_marked_pages

if __name__ == "__main__":
    # The agents build their pool through this name; the stand-in is importable, so pool processes
    # (forkserver) can load it.
    agents.ExtractionPool = functools.partial(  # type: ignore[attr-defined,assignment]
        ExtractionPool, extract=explode_or_crash_on_marked_pages
    )
    sys.exit(main(["worker"]))
