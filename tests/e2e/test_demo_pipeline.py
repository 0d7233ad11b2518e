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
    seed = _seed(demo_records)
    cluster = [
        record for record in demo_records if record["dedup"]["cluster_id"] == seed["dedup"]["cluster_id"]
    ]
    canonical = [record for record in cluster if record["dedup"]["duplicate_of"] is None]
    assert [record["title"] for record in canonical] == [SEED_ARTICLE.title], "the story comes out once"
    assert seed["dedup"]["cluster_id"] == seed["id"]


def test_syndicated_copy_is_recognised_as_a_copy_of_the_seed(demo_records: list[dict]) -> None:  # type: ignore[type-arg]
    seed = _seed(demo_records)
    copy = next(record for record in demo_records if record["title"] == SYNDICATED_COPY.title)
    assert copy["dedup"]["duplicate_of"] == seed["id"]
    assert copy["dedup"]["cluster_id"] == seed["id"]
    assert copy["dedup"]["method"] == "exact"


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


def test_one_canonical_record_per_story_with_expected_topics(demo_records: list[dict]) -> None:  # type: ignore[type-arg]
    stories = {article.title: article for article in ARTICLES if article.syndicated_from is None}
    canonical = [record for record in demo_records if record["dedup"]["duplicate_of"] is None]
    assert sorted(record["title"] for record in canonical) == sorted(stories)
    expected = {article.title: sorted(article.expected_topics) for article in ARTICLES}
    assert len(demo_records) == len(ARTICLES)
    for record in demo_records:
        assert sorted(topic["id"] for topic in record["topics"]) == expected[record["title"]], record["title"]


def _seed(records: list[dict]) -> dict:  # type: ignore[type-arg]
    return next(record for record in records if record["title"] == SEED_ARTICLE.title)
