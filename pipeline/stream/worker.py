"""Run the Faust worker process after making sure every topic it uses exists with the right partitions."""

from __future__ import annotations

import asyncio
import contextlib

import faust
from aiokafka.admin import NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from pipeline.ops.dashboard import register_dashboard
from pipeline.ops.logs import log_handler
from pipeline.ops.topics import admin_client, create_topics
from pipeline.settings import Settings
from pipeline.stream.app import Wiring, build_app


def run_worker(settings: Settings) -> None:
    """Block running the agents until SIGINT/SIGTERM."""
    # Faust creates only the last folder of its data directory; a fresh machine may lack the rest.
    settings.worker.data_dir.parent.mkdir(parents=True, exist_ok=True)
    wiring = build_app(settings)
    register_dashboard(wiring)
    wiring.app.conf.loghandlers = [log_handler(settings.log_format)]
    asyncio.run(_prepare_topics(settings, wiring))
    # Faust configures logging itself; give it our handler (JSON lines or text) and nothing else.
    worker = faust.Worker(
        wiring.app,
        loglevel=settings.log_level.lower(),
        quiet=True,
        logging_config={"version": 1, "disable_existing_loggers": False, "root": {"handlers": []}},
    )
    worker.execute_from_commandline()


async def _prepare_topics(settings: Settings, wiring: Wiring) -> None:
    """Catalogue topics, and the tables' changelog topics too: when two workers start together, Faust
    creating the changelogs itself races with the other worker's metadata and crashes its agents with a
    partition mismatch."""
    await create_topics(settings)
    changelogs = [
        NewTopic(
            table.changelog_topic.get_topic_name(),
            num_partitions=table.partitions or settings.topics.partitions,
            replication_factor=settings.topics.replication_factor,
            topic_configs={"cleanup.policy": "compact"},
        )
        for table in wiring.app.tables.values()
    ]
    async with admin_client(settings) as admin:
        for topic in changelogs:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([topic])
