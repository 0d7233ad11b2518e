"""On the real broker, the worker's gap check tells commit markers from records a consumer skipped."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaProducer
from faust.types import TP

from pipeline.ops.kafka import client_options
from pipeline.stream.transport import GapCheck
from tests.conftest import IsolatedPipeline

pytestmark = pytest.mark.integration


async def test_a_commit_marker_is_no_record_and_a_skipped_record_is_one(isolated: IsolatedPipeline) -> None:
    settings = isolated.settings
    topic = settings.topics.raw_pages
    producer = AIOKafkaProducer(**client_options(settings.kafka), transactional_id=f"{topic}-gap-check")
    await producer.start()
    offsets = []
    try:
        for value in (b"first", b"second"):
            async with producer.transaction():
                sent = await producer.send(topic, value, partition=0)
                offsets.append((await sent).offset)
    finally:
        await producer.stop()
    assert offsets == [0, 2], "each transaction's commit marker takes the offset after its record"

    check = GapCheck(client_options(settings.kafka))
    partition = TP(topic, 0)
    try:
        assert not await check.holds_a_record(partition, 1, 2)  # Faust saw 0, then 2: a marker between
        assert await check.holds_a_record(partition, 0, 2)  # the first record itself
        assert await check.holds_a_record(partition, 1, 3)  # the second record, skipped
    finally:
        await check.close()
