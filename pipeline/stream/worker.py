"""Run the Faust worker process after making sure the catalogue's topics exist."""

from __future__ import annotations

import asyncio

import faust

from pipeline.ops.topics import create_topics
from pipeline.settings import Settings
from pipeline.stream.app import build_app


def run_worker(settings: Settings) -> None:
    """Block running the extract, enrich and sink agents until SIGINT/SIGTERM."""
    asyncio.run(create_topics(settings))
    wiring = build_app(settings)
    worker = faust.Worker(wiring.app, loglevel=settings.log_level.lower(), quiet=True)
    worker.execute_from_commandline()
