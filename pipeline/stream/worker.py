"""Run the Faust worker process after making sure every topic it uses exists with the right partitions."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import faust
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from pipeline.ops.dashboard import register_dashboard
from pipeline.ops.kafka import client_options, topic_partitions
from pipeline.ops.logs import log_handler
from pipeline.ops.topics import admin_client, create_topics, resolved_topics
from pipeline.settings import Settings
from pipeline.stream.app import Wiring, build_app

log = logging.getLogger(__name__)
METADATA_TIMEOUT_S = 60.0


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
    names = [topic.name for topic in resolved_topics(settings)] + [topic.name for topic in changelogs]
    await _until_visible(settings, names, timeout_s=METADATA_TIMEOUT_S)


async def _until_visible(settings: Settings, names: list[str], timeout_s: float) -> None:
    """Wait until the cluster's metadata shows every topic: a group assignment made before a new topic
    is visible leaves that topic unassigned (Faust's assignor skips it) until the next rebalance, and
    after a broker restart with many topics that window lasts seconds."""
    consumer = AIOKafkaConsumer(**client_options(settings.kafka), enable_auto_commit=False)
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout_s
        missing = list(names)
        while missing and time.monotonic() < deadline:
            missing = [name for name in missing if not await topic_partitions(consumer, name)]
            if missing:
                await asyncio.sleep(0.5)
        if missing:
            log.warning("topics still missing from the cluster metadata after %.0f s: %s", timeout_s, missing)
    finally:
        await consumer.stop()
