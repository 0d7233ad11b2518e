"""`newsfeed worker` whose extraction pool runs the stand-in extractor that throws on marked pages."""

from __future__ import annotations

import sys

import pipeline.stream.agents as agents
from pipeline.cli import main
from tests.poison import explode_or_crash_on_marked_pages_with_fingerprint

if __name__ == "__main__":
    # The agents build their pool with this function; the stand-in is importable, so pool processes
    # (forkserver) can load it.
    agents.extract_with_fingerprint = explode_or_crash_on_marked_pages_with_fingerprint  # type: ignore[attr-defined]
    sys.exit(main(["worker"]))
