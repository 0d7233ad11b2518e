"""The worker's web pages beside Faust's own: Prometheus metrics, health, and the lag watchdog behind them."""

from __future__ import annotations

from typing import Any

from faust.web import Request, Response, View

from pipeline.ops.allocator import allocator_in_use
from pipeline.ops.metrics import MEMORY_ALLOCATOR, exposition
from pipeline.ops.watchdog import LagWatchdog
from pipeline.stream.app import Wiring

CONTENT_TYPE_PROMETHEUS = "text/plain; version=0.0.4"


def worker_topics(wiring: Wiring) -> list[str]:
    topics = wiring.settings.topics
    consumed = [topics.raw_pages, topics.articles, topics.dedup_bands, topics.dedup_join]
    return [*consumed, topics.enriched] if wiring.settings.store.sink_in_worker else consumed


def register_web(wiring: Wiring) -> LagWatchdog:
    """Add /metrics and /health, and sample the worker group's lag on a timer (it feeds both)."""
    app, settings = wiring.app, wiring.settings
    watchdog = LagWatchdog(settings, settings.worker.app_id, worker_topics(wiring))
    MEMORY_ALLOCATOR.info({"allocator": allocator_in_use()})

    @app.timer(settings.metrics.lag_interval_s)  # type: ignore[untyped-decorator]
    async def sample_lag() -> None:
        await watchdog.check()

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(exposition(), content_type=CONTENT_TYPE_PROMETHEUS)

    @app.page("/health")
    class Health(View):
        async def get(self, request: Request) -> Response:
            assigned: Any = app.consumer.assignment() if app.consumer else set()
            stalled = [
                f"{sample.partition.topic}[{sample.partition.partition}]"
                for sample in watchdog.latest
                if watchdog.detector.is_stalled(sample.partition)
            ]
            return self.json(
                {
                    "status": "ok",
                    "app": settings.worker.app_id,
                    "assigned_partitions": len(assigned),
                    "stalled": stalled,
                }
            )

    return watchdog
