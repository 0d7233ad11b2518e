"""A running worker picks up taxonomy edits without a restart and survives a broken edit."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.demo.content import GAS_TRANSIT
from pipeline.ops.isolated import start_worker, stop_process
from pipeline.ops.lag import wait_until_drained
from pipeline.records import RawPage, dumps, loads
from pipeline.settings import Settings
from pipeline.tag.taxonomy import DEFAULT_TAXONOMY_PATH, load_taxonomy
from tests.conftest import IsolatedPipeline
from tests.kafka_helpers import produce, read_topic
from tests.pages import article_raw_page

pytestmark = pytest.mark.integration

NEW_TOPIC = """
  - id: normandy-cheese
    description: Cheese-making in Normandy, added while the worker runs.
    groups:
      cheese: [cheese*, Camembert, Livarot]
      place: [Normandy, Norman]
"""

STORIES = {
    "before": (
        "Dairy farmers in Normandy count the cost of a wet spring",
        (
            "Dairy farmers across Normandy said on Monday that weeks of rain had left pastures waterlogged "
            "and that milk yields had fallen by as much as a tenth compared with last year.",
            "Producers of Camembert in the Pays d'Auge said the smaller harvest of milk would mean fewer "
            "cheeses reaching shops this summer, and that prices were likely to rise.",
            "The regional chamber of agriculture has asked the government for emergency support, saying "
            "that small family farms were already operating on very thin margins.",
            "Officials said they would visit the worst-affected farms later this month.",
        ),
    ),
    "after": (
        "Camembert makers in Normandy win protected status fight",
        (
            "Cheese makers in Normandy won a long fight on Thursday when a court ruled that only cheese made "
            "from raw milk in the region may carry the protected Camembert de Normandie label.",
            "The ruling ends years of dispute between small producers and large dairy groups, which had "
            "argued that pasteurised cheese should also qualify for the name.",
            "Producers in Livarot and Pont-l'Eveque said the decision would protect the traditional "
            "methods that make Norman cheese famous around the world.",
            "The dairy groups said they would study the ruling before deciding whether to appeal.",
        ),
    ),
    "broken": (
        "Normandy cheese fair draws record crowds",
        (
            "A cheese fair in the Normandy town of Vimoutiers drew a record number of visitors at the "
            "weekend, organisers said, with more than forty producers selling their wares.",
            "Visitors queued for hours to taste Camembert and Livarot, and a competition for the best "
            "young cheese maker was won by a farmer from the Orne department.",
            "The fair has been held every year since the end of the Second World War.",
            "Organisers said next year's event would run for three days instead of two.",
        ),
    ),
}


def _page(name: str) -> RawPage:
    title, paragraphs = STORIES[name]
    story = dataclasses.replace(
        GAS_TRANSIT,
        slug=f"taxonomy-reload-{name}",
        title=title,
        summary=paragraphs[0],
        body_paragraphs=paragraphs,
        expected_topics=(),
        syndicated_from=None,
        boilerplate="",
    )
    return article_raw_page(story)


@pytest.fixture
def taxonomy_file(tmp_path: Path) -> Path:
    path = tmp_path / "taxonomy.yaml"
    path.write_text(DEFAULT_TAXONOMY_PATH.read_text(encoding="utf-8"), encoding="utf-8")
    return path


@pytest.fixture
def worker(isolated: IsolatedPipeline, taxonomy_file: Path) -> Iterator[Path]:
    overrides = {
        **isolated.overrides,
        "tagging": {"taxonomy_file": str(taxonomy_file), "reload_interval_s": 0.5},
    }
    log = isolated.state_dir / "worker.log"
    process = start_worker(overrides, log)
    yield log
    assert stop_process(process) == 0, log.read_text()[-3000:]


def _enrich(settings: Settings, name: str, expected_records: int) -> dict[str, Any]:
    page = _page(name)
    asyncio.run(produce(settings, settings.topics.raw_pages, [(page["url"].encode(), dumps(page))]))
    assert asyncio.run(wait_until_drained(settings, timeout_s=120)), "the worker did not drain its topics"
    records = asyncio.run(read_topic(settings, settings.topics.enriched, expected_records, timeout_s=30))
    by_url = {loads(record.value)["url"]: loads(record.value) for record in records}
    return by_url[page["url"]]


def _wait_for_log(log: Path, text: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if log.exists() and text in log.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not in the worker log within {timeout_s} s")


def test_a_taxonomy_edit_takes_effect_without_a_restart(
    isolated: IsolatedPipeline, taxonomy_file: Path, worker: Path
) -> None:
    settings = isolated.settings
    original = load_taxonomy(taxonomy_file).version

    before = _enrich(settings, "before", 1)
    assert before["topics"] == []
    assert before["versions"]["taxonomy"] == original

    taxonomy_file.write_text(taxonomy_file.read_text(encoding="utf-8") + NEW_TOPIC, encoding="utf-8")
    edited = load_taxonomy(taxonomy_file).version
    assert edited != original
    _wait_for_log(worker, f"-> {edited}")

    after = _enrich(settings, "after", 2)
    assert [topic["id"] for topic in after["topics"]] == ["normandy-cheese"]
    assert after["topics"][0]["evidence"][0].startswith("terms: ")
    assert after["versions"]["taxonomy"] == edited

    # A broken edit is reported and the last good taxonomy stays in force; the worker keeps going.
    taxonomy_file.write_text("version: '2026.12.1'\ntopics: [\n", encoding="utf-8")
    _wait_for_log(worker, "cannot be used")
    broken = _enrich(settings, "broken", 3)
    assert [topic["id"] for topic in broken["topics"]] == ["normandy-cheese"]
    assert broken["versions"]["taxonomy"] == edited
