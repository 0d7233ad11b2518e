"""The event-loop task gauge: counted in the loop serving /metrics, or for a watched loop from a thread."""

from __future__ import annotations

import asyncio

from prometheus_client.parser import text_string_to_metric_families

from pipeline.ops.metrics import EventLoopTasks, exposition, watch_event_loop


def _tasks_in(text: bytes) -> float | None:
    for family in text_string_to_metric_families(text.decode()):
        if family.name == "newsfeed_event_loop_tasks":
            return float(family.samples[0].value)
    return None


async def test_tasks_are_counted_in_the_scraping_loop() -> None:
    before = _tasks_in(exposition())
    assert before is not None
    release = asyncio.Event()
    waiting = [asyncio.create_task(release.wait()) for _ in range(5)]
    await asyncio.sleep(0)
    assert _tasks_in(exposition()) == before + 5
    release.set()
    await asyncio.gather(*waiting)
    assert _tasks_in(exposition()) == before


async def test_a_watched_loop_is_counted_from_the_metrics_thread() -> None:
    watch_event_loop(asyncio.get_running_loop())
    release = asyncio.Event()
    waiting = [asyncio.create_task(release.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    # The scrape runs where `serve` answers it: in a thread without a loop of its own.
    during = _tasks_in(await asyncio.to_thread(exposition))
    release.set()
    await asyncio.gather(*waiting)
    after = _tasks_in(await asyncio.to_thread(exposition))
    assert during is not None
    assert after is not None
    assert during - after == 3


def test_no_loop_gives_no_sample() -> None:
    collector = EventLoopTasks()
    assert list(collector.collect()) == []
    closed = asyncio.new_event_loop()
    closed.close()
    collector.loop = closed
    assert list(collector.collect()) == []
