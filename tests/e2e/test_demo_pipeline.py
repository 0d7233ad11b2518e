"""The whole pipeline, as `newsfeed demo` runs it: local news site → crawler → Kafka → worker → SQLite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.contracts import contracts_for
from pipeline.demo.content import ARTICLES, SEED_ARTICLE, SIDEBAR_SNIPPETS, SITES, SYNDICATED_COPY
from pipeline.records import loads
from pipeline.settings import Settings

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def demo_records(kafka_broker: Settings, tmp_path_factory: pytest.TempPathFactory) -> list[dict]:  # type: ignore[type-arg]
    output = tmp_path_factory.mktemp("demo") / "enriched.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "demo", "--output", str(output), "--timeout", "150"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert "enriched articles" in result.stdout
    return [loads(line) for line in Path(output).read_text().splitlines()]


def test_every_record_meets_the_contract(demo_records: list[dict], kafka_broker: Settings) -> None:  # type: ignore[type-arg]
    contracts = contracts_for(kafka_broker.schemas_dir)
    for record in demo_records:
        contracts.validate(record, "enriched_article.v1")


def test_seed_story_comes_out_once_with_its_title(demo_records: list[dict]) -> None:  # type: ignore[type-arg]
    seeds = [
        record
        for record in demo_records
        if record["dedup"]["content_hash"] == _seed(demo_records)["dedup"]["content_hash"]
    ]
    assert len(seeds) == 1, "the syndicated copy is recognised and dropped"
    assert seeds[0]["title"] == SEED_ARTICLE.title
    assert not any(record["title"] == SYNDICATED_COPY.title for record in demo_records)


def test_seed_body_is_the_story_without_sidebars_or_footer(demo_records: list[dict]) -> None:  # type: ignore[type-arg]
    text = _seed(demo_records)["text"]
    assert text.startswith(SEED_ARTICLE.body_paragraphs[0][:60])
    for paragraph in SEED_ARTICLE.body_paragraphs:
        assert paragraph[:80] in text
    site = next(site for site in SITES if site.slug == SEED_ARTICLE.site)
    for snippet in (*SIDEBAR_SNIPPETS, *site.chrome_snippets):
        assert snippet not in text, f"page furniture leaked into the body: {snippet!r}"
    for word in ("TRENDING", "Latest News", "Iraq condemns", "General Rawat", "Copyright"):
        assert word not in text


def test_seed_is_tagged_us_russia_only(demo_records: list[dict]) -> None:  # type: ignore[type-arg]
    seed = _seed(demo_records)
    assert [topic["id"] for topic in seed["topics"]] == ["us-russia"]
    assert seed["topics"][0]["evidence"], "a tag carries its evidence"


def test_one_record_per_story_with_expected_topics(demo_records: list[dict]) -> None:  # type: ignore[type-arg]
    stories = {article.title: article for article in ARTICLES if article.syndicated_from is None}
    assert sorted(record["title"] for record in demo_records) == sorted(stories)
    for record in demo_records:
        expected = sorted(stories[record["title"]].expected_topics)
        assert sorted(topic["id"] for topic in record["topics"]) == expected, record["title"]


def _seed(records: list[dict]) -> dict:  # type: ignore[type-arg]
    return next(record for record in records if record["title"] == SEED_ARTICLE.title)
