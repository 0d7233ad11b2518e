"""Metrics, health, logs and `newsfeed stats` against a running pipeline on the real broker."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipeline.cli import main
from pipeline.demo.content import ARTICLES, SITES
from pipeline.ops.isolated import start_worker, stop_process, with_overrides
from pipeline.ops.lag import wait_until_drained
from pipeline.ops.metrics import serve, watch_outcomes
from pipeline.records import dumps
from pipeline.sink.service import run_sink
from tests.conftest import IsolatedPipeline
from tests.kafka_helpers import produce
from tests.pages import demo_raw_pages, home_raw_page

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def fetch(url: str, timeout_s: float = 5.0) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return response.status, response.read().decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def wait_for(check: Any, timeout_s: float = 60.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"{what} not met within {timeout_s} s")


@pytest.fixture
def worker_web(isolated: IsolatedPipeline) -> Iterator[tuple[str, Path]]:
    port = free_port()
    overrides = {
        **isolated.overrides,
        "worker": {**isolated.overrides["worker"], "web_enabled": True, "web_port": port},
        "metrics": {"lag_interval_s": 1.0},
        "log_format": "json",
    }
    log = isolated.state_dir / "worker.log"
    process = start_worker(overrides, log)
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: _answers(f"{base}/health"), 90, "the worker's web server")
    yield base, log
    assert stop_process(process) == 0, log.read_text()[-3000:]


def _answers(url: str) -> bool:
    try:
        return fetch(url)[0] == 200
    except OSError:
        return False


def test_worker_metrics_health_and_json_logs(
    isolated: IsolatedPipeline, worker_web: tuple[str, Path]
) -> None:
    base, log = worker_web
    settings = isolated.settings
    home = home_raw_page(SITES[0])
    pages = [*demo_raw_pages(), home]
    asyncio.run(
        produce(
            settings,
            settings.topics.raw_pages,
            [(page["url"].encode(), dumps(page)) for page in pages] + [(b"poison", b"{not json")],
        )
    )
    assert asyncio.run(wait_until_drained(settings, timeout_s=120))

    def scraped() -> dict[Any, float] | None:
        found = samples(fetch(f"{base}/metrics")[1])
        stored = value(found, "newsfeed_end_to_end_seconds_count", store="sqlite")
        lag_known = any(name == "newsfeed_consumer_lag" for name, _ in found)
        return found if stored >= len(ARTICLES) and lag_known else None

    found = wait_for(scraped, 30, "stored articles and lag in /metrics")
    assert value(found, "newsfeed_events_total", role="worker", event="extracted") == len(ARTICLES)
    assert value(found, "newsfeed_extract_seconds_count") == len(ARTICLES) + 1  # the home page too
    assert value(found, "newsfeed_skipped_total", role="worker", reason="listing-page") == 1
    assert (
        value(found, "newsfeed_dead_letters_total", role="worker", stage="extract", reason="invalid-json")
        == 1
    )
    # The copy is judged exact on arrival, or first and then corrected when the seed arrives after it.
    copies = value(found, "newsfeed_dedup_verdicts_total", role="worker", method="exact")
    corrected = value(found, "newsfeed_events_total", role="worker", event="dedup:corrected")
    assert copies + corrected >= 1
    assert value(found, "newsfeed_tags_total", role="worker", topic="us-russia") >= 2
    lags = {labels: v for (name, labels), v in found.items() if name == "newsfeed_consumer_lag"}
    raw_partitions = {
        dict(labels)["partition"] for labels in lags if dict(labels)["topic"] == settings.topics.raw_pages
    }
    assert raw_partitions == {str(n) for n in range(settings.topics.partitions)}
    assert all(dict(labels)["group"] == settings.worker.app_id for labels in lags)

    status, body = fetch(f"{base}/health")
    health = json.loads(body)
    assert status == 200
    assert health["status"] == "ok"
    assert health["app"] == settings.worker.app_id
    assert health["stalled"] == []

    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert lines, "the worker logs JSON lines"
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    skipped = [line for line in lines if "listing-page" in line["message"]]
    assert skipped, "the home page's skip is logged"
    assert skipped[0]["trace_id"] == home["trace_id"], "the log line carries the page's trace id"

    # `newsfeed stats` sees the same pipeline.
    config = isolated.state_dir / "settings.yaml"
    config.write_text(json.dumps(isolated.overrides))
    capture = _capture_stdout(lambda: main(["--config", str(config), "stats", "--json"]))
    report = json.loads(capture)
    by_topic = {row["topic"]: row for row in report["topics"]}
    assert by_topic[settings.topics.raw_pages]["offsets_held"] == len(pages) + 1
    assert report["store"]["articles"] == len(ARTICLES)
    assert report["store"]["duplicates"] >= 1
    assert report["store"]["topics"]["us-russia"] >= 2
    worker_group = next(row for row in report["groups"] if row["group"] == settings.worker.app_id)
    assert worker_group["partitions_with_commits"] > 0


def _capture_stdout(call: Any) -> str:
    import contextlib  # noqa: PLC0415
    import io  # noqa: PLC0415

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert call() == 0
    return buffer.getvalue()


def test_sink_process_metrics_and_lag(isolated: IsolatedPipeline) -> None:
    port = free_port()
    settings = with_overrides(
        isolated.settings, {"metrics": {"enabled": True, "sink_port": port, "lag_interval_s": 0.5}}
    )
    example = json.loads(
        next(
            (Path(__file__).resolve().parents[2] / "schemas/examples/enriched_article.v1").glob("*.json")
        ).read_text()
    )
    records = [{**example, "id": f"{n:032x}"} for n in range(5)]
    asyncio.run(
        produce(
            settings,
            settings.topics.enriched,
            [(r["id"].encode(), dumps(r)) for r in records] + [(b"x", b"[]")],
        )
    )

    def scraped() -> dict[Any, float] | None:
        try:
            found = samples(fetch(f"http://127.0.0.1:{port}/metrics")[1])
        except OSError:
            return None
        group, topic = settings.store.sink_group_id, settings.topics.enriched
        lags = [
            value(found, "newsfeed_consumer_lag", group=group, topic=topic, partition=str(n))
            for n in range(4)
        ]
        committed = [
            value(found, "newsfeed_consumer_committed_offset", group=group, topic=topic, partition=str(n))
            for n in range(4)
        ]
        stored = value(found, "newsfeed_events_total", role="sink", event="stored")
        return found if stored == 5 and sum(committed) == 6 and not any(lags) else None

    async def scenario() -> tuple[dict[Any, float], Counter[str]]:
        stop = asyncio.Event()
        sink = asyncio.create_task(run_sink(settings, stop=stop))
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                found = await asyncio.to_thread(scraped)
                if found:
                    break
                await asyncio.sleep(0.5)
            else:
                raise AssertionError("the sink's metrics did not show the stored records and a drained lag")
        finally:
            stop.set()
        return found, await sink

    found, counts = asyncio.run(scenario())
    assert value(found, "newsfeed_dead_letters_total", role="sink", stage="sink", reason="schema") == 1
    assert value(found, "newsfeed_end_to_end_seconds_count", store="sqlite") == 5
    assert counts["stored"] == 5


def test_a_process_without_web_server_serves_its_metrics() -> None:
    port = free_port()
    tally: Counter[str] = Counter({"fetched": 3, "not-modified": 1, "failed:timeout": 2})
    watch_outcomes("crawler", tally, lambda: {"newsfeed_crawl_bytes": 1234})
    assert serve("127.0.0.1", port)
    assert not serve("127.0.0.1", port), "a busy port is reported, not raised"
    found = samples(fetch(f"http://127.0.0.1:{port}/metrics")[1])
    assert value(found, "newsfeed_crawl_pages_total", role="crawler", outcome="fetched") == 3
    assert value(found, "newsfeed_crawl_pages_total", role="crawler", outcome="failed:timeout") == 2
    assert value(found, "newsfeed_crawl_bytes", role="crawler") == 1234
    assert ("newsfeed_crawl_fetch_seconds_count", ()) in found
