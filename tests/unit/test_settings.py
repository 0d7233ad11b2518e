"""Settings: defaults, NEWSFEED_* environment variables, the YAML config file, precedence and secrets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from pipeline.settings import PROJECT_DIR, Settings, load_settings

SECRET = "s3cr3t-pa55w0rd"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings must not depend on whatever NEWSFEED_* variables the developer's shell exports."""
    for name in list(os.environ):
        if name.upper().startswith("NEWSFEED_"):
            monkeypatch.delenv(name)


def write_config(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults() -> None:
    settings = load_settings()
    assert settings.config_file is None
    assert settings.log_level == "INFO"
    assert settings.schemas_dir == PROJECT_DIR / "schemas"
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert settings.kafka.security_protocol == "PLAINTEXT"
    assert settings.kafka.sasl_password is None
    assert settings.topics.raw_pages == "newsfeed.raw-pages.v1"
    assert settings.topics.articles == "newsfeed.articles.v1"
    assert settings.topics.enriched == "newsfeed.enriched-articles.v1"
    assert settings.topics.dead_letter == "newsfeed.dead-letter.v1"
    assert settings.topics.partitions == 8
    assert settings.crawl.feeds == []
    assert settings.crawl.concurrency >= 1
    assert settings.worker.extraction_processes >= 1
    assert settings.tagging.taxonomy_file.is_file()
    assert (settings.schemas_dir / "topics.yaml").is_file()


def test_environment_overrides_nested_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSFEED_KAFKA__BOOTSTRAP_SERVERS", "10.0.0.5:9094")
    monkeypatch.setenv("NEWSFEED_TOPICS__PARTITIONS", "3")
    monkeypatch.setenv("NEWSFEED_LOG_LEVEL", "DEBUG")
    settings = load_settings()
    assert settings.kafka.bootstrap_servers == "10.0.0.5:9094"
    assert settings.topics.partitions == 3
    assert settings.log_level == "DEBUG"
    # Untouched siblings keep their defaults.
    assert settings.kafka.security_protocol == "PLAINTEXT"
    assert settings.topics.raw_pages == "newsfeed.raw-pages.v1"


def test_environment_list_is_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSFEED_CRAWL__FEEDS", '["http://127.0.0.1:8080/a/rss.xml"]')
    assert load_settings().crawl.feeds == ["http://127.0.0.1:8080/a/rss.xml"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("NEWSFEED_TOPICS__PARTITIONS", "0"),
        ("NEWSFEED_TOPICS__PARTITIONS", "many"),
        ("NEWSFEED_LOG_LEVEL", "CHATTY"),
        ("NEWSFEED_KAFKA__SECURITY_PROTOCOL", "CARRIER_PIGEON"),
    ],
)
def test_invalid_environment_value_is_a_validation_error(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        load_settings()


def test_config_file_argument(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "newsfeed.yaml",
        "log_level: WARNING\n"
        "kafka:\n  bootstrap_servers: broker.internal:9092\n  sasl_username: newsfeed\n"
        "topics:\n  partitions: 12\n"
        "crawl:\n  feeds:\n    - http://127.0.0.1:8080/devdiscourse/rss.xml\n",
    )
    settings = load_settings(config)
    assert settings.config_file == config
    assert settings.log_level == "WARNING"
    assert settings.kafka.bootstrap_servers == "broker.internal:9092"
    assert settings.kafka.sasl_username == "newsfeed"
    assert settings.topics.partitions == 12
    assert settings.crawl.feeds == ["http://127.0.0.1:8080/devdiscourse/rss.xml"]
    assert settings.topics.raw_pages == "newsfeed.raw-pages.v1"


def test_config_file_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = write_config(tmp_path / "newsfeed.yaml", "topics:\n  partitions: 5\n")
    monkeypatch.setenv("NEWSFEED_CONFIG_FILE", str(config))
    settings = load_settings()
    assert settings.config_file == config
    assert settings.topics.partitions == 5


def test_environment_beats_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "newsfeed.yaml",
        "kafka:\n  bootstrap_servers: from-file:9092\n  sasl_username: file-user\ntopics:\n  partitions: 5\n",
    )
    monkeypatch.setenv("NEWSFEED_KAFKA__BOOTSTRAP_SERVERS", "from-env:9092")
    settings = load_settings(config)
    assert settings.kafka.bootstrap_servers == "from-env:9092"
    # The file still supplies what the environment does not set, even within the same section.
    assert settings.kafka.sasl_username == "file-user"
    assert settings.topics.partitions == 5


def test_config_file_argument_beats_environment_config_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from_env = write_config(tmp_path / "env.yaml", "topics:\n  partitions: 2\n")
    from_argument = write_config(tmp_path / "arg.yaml", "topics:\n  partitions: 4\n")
    monkeypatch.setenv("NEWSFEED_CONFIG_FILE", str(from_env))
    settings = load_settings(from_argument)
    assert settings.config_file == from_argument
    assert settings.topics.partitions == 4


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_settings(tmp_path / "missing.yaml")


def test_missing_config_file_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NEWSFEED_CONFIG_FILE", str(tmp_path / "missing.yaml"))
    with pytest.raises(FileNotFoundError):
        load_settings()


def test_unknown_top_level_key_in_config_file(tmp_path: Path) -> None:
    config = write_config(tmp_path / "newsfeed.yaml", "kafkaa:\n  bootstrap_servers: typo:9092\n")
    with pytest.raises(ValidationError, match="kafkaa"):
        load_settings(config)


def test_unknown_keyword_argument() -> None:
    with pytest.raises(ValidationError, match="extra_forbidden"):
        Settings(no_such_setting=1)  # type: ignore[call-arg]


def test_unknown_nested_key_in_config_file(tmp_path: Path) -> None:
    config = write_config(tmp_path / "newsfeed.yaml", "kafka:\n  bootstrap_server: typo:9092\n")
    with pytest.raises(ValidationError, match="bootstrap_server"):
        load_settings(config)


def test_invalid_value_in_config_file(tmp_path: Path) -> None:
    config = write_config(tmp_path / "newsfeed.yaml", "topics:\n  partitions: 0\n")
    with pytest.raises(ValidationError, match="partitions"):
        load_settings(config)


def test_password_from_environment_is_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSFEED_KAFKA__SASL_PASSWORD", SECRET)
    settings = load_settings()
    password = settings.kafka.sasl_password
    assert isinstance(password, SecretStr)
    assert password.get_secret_value() == SECRET
    assert SECRET not in settings.model_dump_json()
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings.model_dump())


def test_password_from_config_file_is_secret(tmp_path: Path) -> None:
    config = write_config(tmp_path / "newsfeed.yaml", f"kafka:\n  sasl_password: {SECRET}\n")
    settings = load_settings(config)
    assert isinstance(settings.kafka.sasl_password, SecretStr)
    assert settings.kafka.sasl_password.get_secret_value() == SECRET
    assert SECRET not in settings.model_dump_json()
