"""`newsfeed search` over the SQLite store: words, topic and date filters, text and JSON output."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from pipeline.cli import main
from pipeline.sink.sqlite_store import SqliteStore
from tests.unit.test_sink_sqlite import enriched


@pytest.fixture
def config(tmp_path: Path) -> Path:
    store_path = tmp_path / "store.sqlite3"
    store = SqliteStore(store_path)
    early = enriched(1, title="Putin greets Trump")
    early["text"] = "Putin sent New Year greetings to Trump."
    early["published"] = "2019-11-30T10:00:00+00:00"
    late = enriched(2, title="Putin and Trump to talk")
    late["text"] = "The Kremlin said Putin and Trump would talk in January."
    late["published"] = "2019-12-30T10:00:00+00:00"
    other = enriched(3, title="Strikes in Iraq")
    other["text"] = "Air strikes hit Kataib Hezbollah bases."
    other["topics"] = [{"id": "iraq-strikes", "score": 4.0, "evidence": []}]
    store.apply([early, late, other], ())
    store.close()
    path = tmp_path / "settings.yaml"
    path.write_text(f"store:\n  sqlite_path: {store_path}\n")
    return path


def test_finds_by_words_topic_and_date(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--config", str(config), "search", "putin trump", "--topic", "us-russia", "--since", "2019-12-01"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "Putin and Trump to talk" in captured.out
    assert "Putin greets Trump" not in captured.out
    assert "[us-russia]" in captured.out
    assert "1 article(s)" in captured.err


def test_json_output(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(config), "search", "putin", "--json"]) == 0
    hits = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {hit["title"] for hit in hits} == {"Putin greets Trump", "Putin and Trump to talk"}
    assert all({"id", "url", "published", "topics", "snippet", "rank"} <= hit.keys() for hit in hits)


def test_a_bad_date_is_a_clear_error(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", str(config), "search", "putin", "--since", "last week"]) == 2
    assert "not an ISO date" in capsys.readouterr().err
