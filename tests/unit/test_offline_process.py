"""`newsfeed process`: the stage functions over JSONL, one output line per input line, in order."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from pipeline.cli import main
from pipeline.contracts import contracts_for
from pipeline.demo.content import ARTICLES, SEED_ARTICLE, SYNDICATED_COPY
from pipeline.settings import Settings
from tests.pages import BASE_URL, article_raw_page


def _run(tmp_path: Path, lines: list[bytes]) -> list[dict]:  # type: ignore[type-arg]
    source, output = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    assert main(["process", "--input", str(source), "--output", str(output)]) == 0
    return [orjson.loads(line) for line in output.read_bytes().splitlines()]


@pytest.fixture(scope="module")
def demo_output(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:  # type: ignore[type-arg]
    copy_first = [SYNDICATED_COPY, *[article for article in ARTICLES if article is not SYNDICATED_COPY]]
    lines = [
        orjson.dumps({"url": page["url"], "html": page["html"]}) for page in map(article_raw_page, copy_first)
    ]
    return _run(tmp_path_factory.mktemp("process"), lines)


def test_one_output_line_per_input_line_in_order(demo_output: list[dict]) -> None:  # type: ignore[type-arg]
    copy_first = [SYNDICATED_COPY, *[article for article in ARTICLES if article is not SYNDICATED_COPY]]
    assert [record["title"] for record in demo_output] == [article.title for article in copy_first]


def test_output_records_meet_the_enriched_contract(demo_output: list[dict]) -> None:  # type: ignore[type-arg]
    contracts = contracts_for(Settings().schemas_dir)
    for record in demo_output:
        contracts.validate(record, "enriched_article.v1")


def test_syndicated_copy_points_to_the_earlier_published_seed(demo_output: list[dict]) -> None:  # type: ignore[type-arg]
    copy, seed = demo_output[0], next(r for r in demo_output if r["title"] == SEED_ARTICLE.title)
    assert seed["dedup"]["duplicate_of"] is None
    assert copy["dedup"] == seed["dedup"] | {"duplicate_of": seed["id"], "method": "exact"}


def test_tags_match_the_streaming_pipeline(demo_output: list[dict]) -> None:  # type: ignore[type-arg]
    expected = {article.title: sorted(article.expected_topics) for article in ARTICLES}
    for record in demo_output:
        assert sorted(topic["id"] for topic in record["topics"]) == expected[record["title"]]


def test_text_lines_skip_extraction_and_bad_lines_are_reported(tmp_path: Path) -> None:
    text = " ".join(SEED_ARTICLE.body_paragraphs)
    lines = [
        orjson.dumps({"url": f"{BASE_URL}/given.html", "title": SEED_ARTICLE.title, "text": text}),
        b'{"url": "http://x", "html": ',
        orjson.dumps({"html": "<p>no url</p>"}),
        orjson.dumps({"url": f"{BASE_URL}/empty.html", "html": ""}),
        orjson.dumps({"url": f"{BASE_URL}/nothing.html"}),
    ]
    given, truncated, no_url, empty, nothing = _run(tmp_path, lines)
    assert given["versions"]["extractor"] == "provided-text"
    assert [topic["id"] for topic in given["topics"]] == ["us-russia"]
    assert truncated == {"line": 2, "url": None, "error": "invalid-json", "detail": truncated["detail"]}
    assert no_url["error"] == "missing-url"
    assert empty == {"line": 4, "url": f"{BASE_URL}/empty.html", "skipped": "empty-page", "detail": ""}
    assert nothing["error"] == "missing-content"


def test_missing_input_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["process", "--input", str(tmp_path / "absent.jsonl"), "--output", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
