"""The pipeline bench's latency quantiles: one histogram summed over every worker's metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from bench.pipeline_throughput import _quantiles


def worker_metrics(seconds: list[float]) -> str:
    registry = CollectorRegistry()
    histogram = Histogram(
        "newsfeed_end_to_end_seconds", "fetch to store", ["store"], buckets=(0.5, 1, 2, 5), registry=registry
    )
    for value in seconds:
        histogram.labels(store="sqlite").observe(value)
    return generate_latest(registry).decode()


def test_quantiles_count_the_articles_of_every_worker() -> None:
    fast, slow = worker_metrics([0.2] * 99), worker_metrics([4.0] * 101)
    both = _quantiles([fast, slow])
    assert both["observed"] == 200
    assert 2 < both["p50_s"] <= 5  # the 100th of 200 is among the slow worker's
    assert _quantiles([fast])["observed"] == 99


def test_no_articles_no_quantiles() -> None:
    assert _quantiles([worker_metrics([])]) == {}
