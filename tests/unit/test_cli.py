"""The `newsfeed` command line: subcommands, `config show`, and argument and settings errors."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import orjson
import pytest

from pipeline.cli import build_parser, main

SUBCOMMANDS = {
    "run",
    "archive",
    "stats",
    "replay",
    "sink",
    "ingest",
    "search",
    "dlq",
    "postgres",
    "broker",
    "topics",
    "crawl",
    "worker",
    "demo-site",
    "demo",
    "process",
    "evaluate-tags",
    "ping",
    "config",
}
SECRET = "do-not-print-me-42"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("NEWSFEED_"):
            monkeypatch.delenv(name)


def subcommands(parser: argparse.ArgumentParser) -> set[str]:
    actions = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    assert len(actions) == 1
    return set(actions[0].choices)


def test_parser_has_every_subcommand() -> None:
    assert subcommands(build_parser()) == SUBCOMMANDS


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["broker", "status"], "broker"),
        (["topics", "describe"], "topics"),
        (["crawl", "--feed", "http://127.0.0.1:8080/a/rss.xml", "--once"], "crawl"),
        (["worker"], "worker"),
        (["demo-site", "--port", "0"], "demo-site"),
        (["demo", "--timeout", "5"], "demo"),
        (["ping"], "ping"),
        (["config", "show"], "config"),
    ],
)
def test_every_subcommand_parses_and_has_a_handler(argv: list[str], command: str) -> None:
    args = build_parser().parse_args(argv)
    assert args.command == command
    assert callable(args.handler)


def test_crawl_feed_is_repeatable() -> None:
    args = build_parser().parse_args(["crawl", "--feed", "http://a/rss.xml", "--feed", "http://b/rss.xml"])
    assert args.feed == ["http://a/rss.xml", "http://b/rss.xml"]
    assert args.once is False


def test_global_config_option() -> None:
    args = build_parser().parse_args(["--config", "settings.yaml", "config", "show"])
    assert args.config == Path("settings.yaml")


@pytest.mark.parametrize("argv", [[], ["nonsense"], ["broker", "explode"], ["config"]])
def test_bad_arguments_exit_with_usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_config_show_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "show"]) == 0
    shown = orjson.loads(capsys.readouterr().out)
    assert shown["kafka"]["bootstrap_servers"] == "127.0.0.1:9092"
    assert shown["topics"]["raw_pages"] == "newsfeed.raw-pages.v1"


def test_config_show_masks_secrets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NEWSFEED_KAFKA__SASL_PASSWORD", SECRET)
    assert main(["config", "show"]) == 0
    captured = capsys.readouterr()
    assert SECRET not in captured.out
    assert SECRET not in captured.err
    shown = orjson.loads(captured.out)
    assert shown["kafka"]["sasl_password"]
    assert set(shown["kafka"]["sasl_password"]) == {"*"}


def test_config_show_uses_the_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "newsfeed.yaml"
    config.write_text("topics:\n  partitions: 6\n", encoding="utf-8")
    assert main(["--config", str(config), "config", "show"]) == 0
    shown = orjson.loads(capsys.readouterr().out)
    assert shown["topics"]["partitions"] == 6
    assert shown["config_file"] == str(config)


def test_crawl_without_feeds_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crawl"]) == 2
    captured = capsys.readouterr()
    assert "nothing to crawl" in captured.err
    assert captured.out == ""


def test_missing_config_file_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", "/nonexistent.yaml", "config", "show"]) == 2
    captured = capsys.readouterr()
    assert "/nonexistent.yaml" in captured.err
    assert captured.out == ""


def test_invalid_settings_are_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NEWSFEED_TOPICS__PARTITIONS", "0")
    assert main(["config", "show"]) == 2
    assert "invalid settings" in capsys.readouterr().err
