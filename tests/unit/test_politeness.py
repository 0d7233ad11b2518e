"""Host scheduler: per-host serialisation and spacing, global cap, backoff, pauses and forgetting."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
from collections.abc import Awaitable
from typing import TypeVar

import pytest

from pipeline.crawl.politeness import HostScheduler

T = TypeVar("T")


class VirtualTime:
    """A clock and sleep for asyncio tests: time jumps to the next wake-up once every task is blocked."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(seconds, 0.0), next(self._order), future))
        await future

    async def run(self, main: Awaitable[T]) -> T:
        task = asyncio.ensure_future(main)
        while not task.done():
            # Let every runnable task reach its next await before deciding that time must pass.
            for _ in range(50):
                await asyncio.sleep(0)
                if task.done():
                    break
            if task.done():
                break
            assert self._sleepers, "deadlock: tasks are blocked and nobody sleeps"
            wake_at = self._sleepers[0][0]
            self.now = max(self.now, wake_at)
            while self._sleepers and self._sleepers[0][0] <= self.now:
                _, _, future = heapq.heappop(self._sleepers)
                if not future.done():
                    future.set_result(None)
        return task.result()


def make_scheduler(time: VirtualTime, seed: int = 7, **overrides: float) -> HostScheduler:
    settings: dict[str, float] = {
        "min_delay_s": 1.0,
        "global_concurrency": 16,
        "max_backoff_s": 60.0,
        "failure_pause_threshold": 5,
        "pause_s": 1800.0,
    }
    settings.update(overrides)
    return HostScheduler(
        time.clock,
        time.sleep,
        min_delay_s=settings["min_delay_s"],
        global_concurrency=int(settings["global_concurrency"]),
        max_backoff_s=settings["max_backoff_s"],
        failure_pause_threshold=int(settings["failure_pause_threshold"]),
        pause_s=settings["pause_s"],
        rng=random.Random(seed),
    )


class RequestLog:
    """Runs fake requests through a scheduler and records when each started and ended."""

    def __init__(self, scheduler: HostScheduler, time: VirtualTime) -> None:
        self.scheduler = scheduler
        self.time = time
        self.spans: list[tuple[str, float, float]] = []
        self.running = 0
        self.most_running = 0

    async def request(self, host: str, duration_s: float = 0.25, crawl_delay_s: float | None = None) -> None:
        async with self.scheduler.slot(host, crawl_delay_s):
            start = self.time.now
            self.running += 1
            self.most_running = max(self.most_running, self.running)
            await self.time.sleep(duration_s)
            self.running -= 1
            self.spans.append((host, start, self.time.now))

    def starts(self, host: str) -> list[float]:
        return sorted(start for name, start, _ in self.spans if name == host)


async def test_one_host_is_serialised_and_spaced_by_min_delay() -> None:
    time = VirtualTime()
    log = RequestLog(make_scheduler(time), time)

    await time.run(asyncio.gather(*(log.request("a.example") for _ in range(3))))

    assert log.starts("a.example") == [0.0, 1.0, 2.0]
    assert log.most_running == 1


async def test_slow_responses_are_not_overlapped() -> None:
    time = VirtualTime()
    log = RequestLog(make_scheduler(time), time)

    await time.run(asyncio.gather(*(log.request("a.example", duration_s=2.5) for _ in range(3))))

    spans = sorted((start, end) for _, start, end in log.spans)
    assert all(next_start >= end for (_, end), (next_start, _) in itertools.pairwise(spans))
    assert log.starts("a.example") == [0.0, 2.5, 5.0]


async def test_different_hosts_proceed_concurrently() -> None:
    time = VirtualTime()
    log = RequestLog(make_scheduler(time), time)

    await time.run(asyncio.gather(*(log.request(f"h{index}.example") for index in range(5))))

    assert [start for _, start, _ in log.spans] == [0.0] * 5
    assert log.most_running == 5


async def test_crawl_delay_larger_than_min_delay_is_honoured() -> None:
    time = VirtualTime()
    log = RequestLog(make_scheduler(time), time)

    await time.run(asyncio.gather(*(log.request("slow.example", crawl_delay_s=10.0) for _ in range(3))))

    assert log.starts("slow.example") == [0.0, 10.0, 20.0]


async def test_crawl_delay_below_min_delay_does_not_speed_up() -> None:
    time = VirtualTime()
    log = RequestLog(make_scheduler(time, min_delay_s=2.0), time)

    await time.run(asyncio.gather(*(log.request("a.example", crawl_delay_s=0.1) for _ in range(2))))

    assert log.starts("a.example") == [0.0, 2.0]


async def test_global_concurrency_cap() -> None:
    time = VirtualTime()
    scheduler = make_scheduler(time, global_concurrency=3)
    log = RequestLog(scheduler, time)

    await time.run(asyncio.gather(*(log.request(f"h{index}.example", duration_s=1.0) for index in range(7))))

    assert log.most_running == 3
    assert sorted(start for _, start, _ in log.spans) == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 2.0]


async def test_waiting_on_a_host_delay_holds_no_global_slot() -> None:
    time = VirtualTime()
    log = RequestLog(make_scheduler(time, global_concurrency=1, min_delay_s=10.0), time)

    async def scenario() -> None:
        await log.request("busy.example", duration_s=0.1)
        # busy.example's next request must wait until t=10; other.example must not queue behind it.
        await asyncio.gather(log.request("busy.example", duration_s=0.1), log.request("other.example"))

    await time.run(scenario())

    assert log.starts("busy.example") == [0.0, 10.0]
    assert log.starts("other.example") == [pytest.approx(0.1)]


async def test_backoff_grows_exponentially_within_full_jitter_and_is_capped() -> None:
    time = VirtualTime()
    scheduler = make_scheduler(time, max_backoff_s=16.0, failure_pause_threshold=100)
    waits = [scheduler.record_failure("a.example") for _ in range(8)]

    ceilings = [1.0, 2.0, 4.0, 8.0, 16.0, 16.0, 16.0, 16.0]
    # Each wait is the longer of the new jittered backoff and what is still left of earlier ones.
    assert all(0.0 <= wait <= ceiling for wait, ceiling in zip(waits, ceilings, strict=True))

    samples = []
    for seed in range(200):
        fresh = make_scheduler(VirtualTime(), seed=seed, max_backoff_s=16.0, failure_pause_threshold=100)
        for _ in range(3):
            wait = fresh.record_failure("a.example")
        samples.append(wait)
    assert max(samples) <= 4.0
    # Full jitter spreads retries over the whole window rather than bunching them at its top.
    assert min(samples) < 1.0
    assert max(samples) > 3.0


async def test_backoff_delays_the_next_slot() -> None:
    time = VirtualTime()
    scheduler = make_scheduler(time, seed=3, min_delay_s=1.0, max_backoff_s=60.0)
    log = RequestLog(scheduler, time)

    async def scenario() -> float:
        await log.request("a.example", duration_s=0.0)
        for _ in range(4):
            scheduler.record_failure("a.example")
        ready_at = scheduler.available_at("a.example")
        await log.request("a.example", duration_s=0.0)
        return ready_at

    ready_at = await time.run(scenario())

    assert ready_at > 1.0
    assert log.starts("a.example") == [0.0, ready_at]


async def test_retry_after_overrides_backoff() -> None:
    time = VirtualTime()
    scheduler = make_scheduler(time)

    wait = scheduler.record_failure("a.example", retry_after_s=120.0)

    assert wait == 120.0
    assert scheduler.available_at("a.example") == 120.0
    assert not scheduler.is_paused("a.example")


async def test_pause_after_threshold_and_resume_after_pause() -> None:
    time = VirtualTime()
    scheduler = make_scheduler(time, failure_pause_threshold=3, pause_s=1800.0, max_backoff_s=60.0)
    log = RequestLog(scheduler, time)

    for _ in range(2):
        scheduler.record_failure("a.example")
    assert not scheduler.is_paused("a.example")
    scheduler.record_failure("a.example")
    assert scheduler.is_paused("a.example")
    assert scheduler.available_at("a.example") == 1800.0
    assert scheduler.stats().paused == 1

    time.now = 1799.0
    assert scheduler.is_paused("a.example")
    await time.run(log.request("a.example", duration_s=0.0))
    assert log.starts("a.example") == [1800.0]
    assert not scheduler.is_paused("a.example")

    # The probe after a pause fails too: the host is paused again at once.
    scheduler.record_failure("a.example")
    assert scheduler.is_paused("a.example")
    assert scheduler.available_at("a.example") == 3600.0


async def test_success_resets_failures_and_backoff() -> None:
    time = VirtualTime()
    scheduler = make_scheduler(time, failure_pause_threshold=3)
    for _ in range(2):
        scheduler.record_failure("a.example", retry_after_s=30.0)
    assert scheduler.consecutive_failures("a.example") == 2

    scheduler.record_success("a.example")

    assert scheduler.consecutive_failures("a.example") == 0
    assert scheduler.available_at("a.example") == 0.0
    scheduler.record_failure("a.example")
    scheduler.record_failure("a.example")
    assert not scheduler.is_paused("a.example")


async def test_idle_healthy_hosts_are_forgotten_failing_ones_kept_longer() -> None:
    time = VirtualTime()
    scheduler = make_scheduler(time, global_concurrency=100)
    log = RequestLog(scheduler, time)

    await time.run(asyncio.gather(*(log.request(f"h{index}.example") for index in range(100))))
    scheduler.record_failure("h0.example")
    assert scheduler.stats().hosts == 100

    # Idleness counts from when each host could next have been used: its start plus min_delay (t=1).
    time.now = 1.0 + 3599
    assert scheduler.forget_idle() == 0
    time.now = 1.0 + 3600
    assert scheduler.forget_idle() == 99
    assert scheduler.stats().hosts == 1
    assert scheduler.consecutive_failures("h0.example") == 1

    time.now += 86400
    assert scheduler.forget_idle() == 1
    assert scheduler.stats().hosts == 0


async def test_idle_hosts_are_swept_as_slots_are_used() -> None:
    time = VirtualTime()
    log = RequestLog(make_scheduler(time), time)

    await time.run(asyncio.gather(*(log.request(f"h{index}.example") for index in range(10))))
    time.now = 1.0 + 3600
    await time.run(log.request("fresh.example"))

    assert log.scheduler.stats().hosts == 1


async def test_hosts_in_use_are_not_forgotten() -> None:
    time = VirtualTime()
    scheduler = make_scheduler(time)

    async def scenario() -> int:
        async with scheduler.slot("a.example"):
            time.now += 7200
            return scheduler.forget_idle()

    assert await time.run(scenario()) == 0
    assert scheduler.stats().hosts == 1


async def test_stats_report_in_flight_and_waiting() -> None:
    time = VirtualTime()
    scheduler = make_scheduler(time)
    seen = []

    async def request() -> None:
        async with scheduler.slot("a.example"):
            await time.sleep(0.25)
            seen.append(scheduler.stats())

    await time.run(asyncio.gather(request(), request()))

    assert (seen[0].in_flight, seen[0].waiting, seen[0].hosts) == (1, 1, 1)
    assert (seen[1].in_flight, seen[1].waiting) == (1, 0)
    assert scheduler.stats().in_flight == 0


async def test_cancelled_waiter_leaves_the_host_usable() -> None:
    time = VirtualTime()
    scheduler = make_scheduler(time, min_delay_s=5.0)
    log = RequestLog(scheduler, time)

    async def scenario() -> None:
        await log.request("a.example", duration_s=0.0)
        waiter = asyncio.create_task(log.request("a.example"))
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await log.request("a.example", duration_s=0.0)

    await time.run(scenario())

    assert log.starts("a.example") == [0.0, 5.0]
    assert scheduler.stats().in_flight == 0


async def test_real_event_loop_spacing_with_small_delays() -> None:
    loop = asyncio.get_running_loop()
    scheduler = HostScheduler(loop.time, asyncio.sleep, min_delay_s=0.03, rng=random.Random(1))
    starts: dict[str, list[float]] = {"a": [], "b": []}

    async def request(host: str) -> None:
        async with scheduler.slot(host):
            starts[host].append(loop.time())

    await asyncio.gather(*(request(host) for host in ("a", "b", "a", "b")))

    for host_starts in starts.values():
        assert host_starts[1] - host_starts[0] >= 0.03
    # Different hosts do not wait for each other: both first requests start together.
    assert abs(starts["a"][0] - starts["b"][0]) < 0.02


def test_rejects_zero_concurrency() -> None:
    with pytest.raises(ValueError, match="global_concurrency"):
        HostScheduler(lambda: 0.0, asyncio.sleep, global_concurrency=0, rng=random.Random(0))
