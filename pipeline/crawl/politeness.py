"""Per-host politeness: one request in flight per host, spaced starts, backoff and pauses on failures."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass


@dataclass
class _HostState:
    lock: asyncio.Lock
    last_used: float
    next_start: float = 0.0
    blocked_until: float = 0.0
    paused_until: float = 0.0
    failures: int = 0
    users: int = 0
    in_flight: bool = False

    def ready_at(self) -> float:
        return max(self.next_start, self.blocked_until, self.paused_until)


@dataclass(frozen=True)
class SchedulerStats:
    """Gauges for metrics: hosts remembered, hosts paused, requests running and callers waiting."""

    hosts: int
    paused: int
    in_flight: int
    waiting: int


class HostScheduler:
    """Grants request slots so that no host is hammered and waiting on one host never stalls another.

    Times come from `clock` (monotonic seconds) and waits go through `sleep`, so tests can drive both.
    """

    def __init__(
        self,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
        *,
        min_delay_s: float = 1.0,
        global_concurrency: int = 16,
        max_backoff_s: float = 3600.0,
        failure_pause_threshold: int = 5,
        pause_s: float = 1800.0,
        max_retry_after_s: float = 86400.0,
        idle_forget_s: float = 3600.0,
        failure_memory_s: float = 86400.0,
        rng: random.Random,
    ) -> None:
        if global_concurrency < 1:
            raise ValueError("global_concurrency must be at least 1")
        self._clock = clock
        self._sleep = sleep
        self.min_delay_s = min_delay_s
        self.max_backoff_s = max_backoff_s
        self.failure_pause_threshold = failure_pause_threshold
        self.pause_s = pause_s
        self.max_retry_after_s = max_retry_after_s
        self.idle_forget_s = idle_forget_s
        self.failure_memory_s = failure_memory_s
        self._rng = rng
        self._global = asyncio.Semaphore(global_concurrency)
        self._hosts: dict[str, _HostState] = {}
        self._in_flight = 0
        # Sweeping on every call would make each slot O(hosts); once a minute keeps it amortised.
        self._sweep_every_s = min(60.0, idle_forget_s)
        self._last_sweep = clock()

    @asynccontextmanager
    async def slot(self, host: str, crawl_delay_s: float | None = None) -> AsyncIterator[None]:
        """Wait until `host` may be contacted, then hold its only slot and one global slot."""
        self._maybe_forget_idle()
        state = self._state(host)
        state.users += 1
        try:
            async with state.lock:
                # The host's wait happens before taking a global slot, so a slow host holds none.
                while (wait_s := state.ready_at() - self._clock()) > 0:
                    await self._sleep(wait_s)
                async with self._global:
                    now = self._clock()
                    state.next_start = now + max(self.min_delay_s, crawl_delay_s or 0.0)
                    state.in_flight = True
                    self._in_flight += 1
                    try:
                        yield
                    finally:
                        state.in_flight = False
                        self._in_flight -= 1
                        state.last_used = self._clock()
        finally:
            state.users -= 1

    def record_success(self, host: str) -> None:
        """A good response: the failure streak, its backoff and any pause end."""
        state = self._hosts.get(host)
        if state is None:
            return
        state.failures = 0
        state.blocked_until = 0.0
        state.paused_until = 0.0
        state.last_used = self._clock()

    def record_failure(self, host: str, retry_after_s: float | None = None) -> float:
        """A failed request: back off with full jitter, or pause the host; returns seconds until retry."""
        state = self._state(host)
        now = self._clock()
        state.failures += 1
        state.last_used = now
        ceiling_s = min(self.max_backoff_s, self.min_delay_s * 2 ** min(state.failures - 1, 62))
        backoff_s = self._rng.uniform(0.0, ceiling_s)
        if retry_after_s is not None:
            backoff_s = max(backoff_s, min(max(retry_after_s, 0.0), self.max_retry_after_s))
        state.blocked_until = max(state.blocked_until, now + backoff_s)
        if state.failures >= self.failure_pause_threshold:
            # Past the threshold every further failure (the probe after a pause) pauses again.
            state.paused_until = max(state.paused_until, now + self.pause_s)
        return state.ready_at() - now

    def is_paused(self, host: str) -> bool:
        state = self._hosts.get(host)
        return state is not None and self._clock() < state.paused_until

    def available_at(self, host: str) -> float:
        """Clock time from which `host` may be tried (now, if already); lets callers skip instead of wait."""
        now = self._clock()
        state = self._hosts.get(host)
        return now if state is None else max(now, state.ready_at())

    def consecutive_failures(self, host: str) -> int:
        state = self._hosts.get(host)
        return 0 if state is None else state.failures

    def stats(self) -> SchedulerStats:
        now = self._clock()
        return SchedulerStats(
            hosts=len(self._hosts),
            paused=sum(1 for state in self._hosts.values() if now < state.paused_until),
            in_flight=self._in_flight,
            waiting=sum(max(0, state.users - state.in_flight) for state in self._hosts.values()),
        )

    def forget_idle(self) -> int:
        """Drop hosts nobody is using whose last use and any backoff or pause are long past.

        Healthy hosts go after `idle_forget_s`; hosts with a failure streak are kept for
        `failure_memory_s` so that a flaky host still reaches its pause. Returns how many were dropped.
        """
        now = self._clock()
        self._last_sweep = now
        idle = [
            host
            for host, state in self._hosts.items()
            if state.users == 0
            and now - max(state.last_used, state.ready_at())
            >= (self.failure_memory_s if state.failures else self.idle_forget_s)
        ]
        for host in idle:
            del self._hosts[host]
        return len(idle)

    def _maybe_forget_idle(self) -> None:
        if self._clock() - self._last_sweep >= self._sweep_every_s:
            self.forget_idle()

    def _state(self, host: str) -> _HostState:
        state = self._hosts.get(host)
        if state is None:
            state = _HostState(lock=asyncio.Lock(), last_used=self._clock())
            self._hosts[host] = state
        return state
