"""Structural checks of docker-compose.yml and deploy/Dockerfile.

Nothing here talks to Docker or the network: the files are parsed and checked against each other and
against the code they configure (the settings model and, once it exists, the CLI parser).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import shlex
import tomllib
import types
import typing
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import BaseModel, SecretStr

from pipeline.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"

PIPELINE_SERVICES = ("topics-init", "demo-site", "crawler", "worker")
#: The first word of each pipeline service's command, i.e. the role it plays.
EXPECTED_ROLES = {
    "topics-init": "topics",
    "demo-site": "demo-site",
    "crawler": "crawl",
    "worker": "worker",
}
ENV_PREFIX = "NEWSFEED_"
NESTED_DELIMITER = "__"
DEPENDS_ON_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
TOP_LEVEL_KEYS = {"name", "services", "volumes", "networks", "configs", "secrets", "include", "models"}


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


def _environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a mapping, whichever of the two compose syntaxes it uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) for item in env)
        return {pair[0]: pair[1] if len(pair) == 2 else "" for pair in pairs}
    return {str(key): "" if value is None else str(value) for key, value in env.items()}


def _words(command: str | list[Any]) -> list[str]:
    if isinstance(command, str):
        return shlex.split(command)
    # Compose rejects non-string items (an unquoted 8080 is an int), so don't paper over them.
    assert all(isinstance(word, str) for word in command), f"quote every item of {command!r}"
    return list(command)


def _healthcheck_words(service: dict[str, Any]) -> list[str]:
    test = service["healthcheck"]["test"]
    if isinstance(test, str):
        return shlex.split(test)
    if test[0] == "CMD-SHELL":
        return shlex.split(test[1])
    assert test[0] == "CMD", f"healthcheck test must start with CMD or CMD-SHELL, got {test[0]!r}"
    return _words(test[1:])


def _named_volumes(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(volume name, mount point) for every named volume the service mounts; bind mounts are skipped."""
    found = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            if volume.get("type", "volume") == "volume" and volume.get("source"):
                found.append((volume["source"], volume["target"]))
            continue
        parts = volume.split(":")
        if len(parts) >= 2 and not parts[0].startswith((".", "/", "~", "$")):
            found.append((parts[0], parts[1]))
    return found


def _model_class(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model behind a field annotation (unwrapping `X | None`), or None for a leaf."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        models = [model for arg in typing.get_args(annotation) if (model := _model_class(arg))]
        return models[0] if len(models) == 1 else None
    return None


def _settings_path(env_key: str) -> list[str]:
    """`NEWSFEED_KAFKA__BOOTSTRAP_SERVERS` -> ["kafka", "bootstrap_servers"], checked against the model."""
    assert env_key.startswith(ENV_PREFIX), f"{env_key} does not start with {ENV_PREFIX}"
    path = env_key.removeprefix(ENV_PREFIX).lower().split(NESTED_DELIMITER)
    model: type[BaseModel] | None = Settings
    for depth, name in enumerate(path):
        assert model is not None, f"{env_key}: {'.'.join(path[:depth])} is not a nested settings model"
        fields = model.model_fields
        assert name in fields, f"{env_key}: {model.__name__} has no field {name!r} (fields: {sorted(fields)})"
        model = _model_class(fields[name].annotation)
    assert model is None, f"{env_key} names the whole {model.__name__} section, not one of its fields"
    return path


def _assert_settings_accept(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Load Settings from exactly this environment and check every variable landed where it was meant to."""
    for key in [key for key in os.environ if key.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    for key, raw in env.items():
        value: Any = settings
        for name in _settings_path(key):
            value = getattr(value, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, list | dict):
            assert value == json.loads(raw), f"{key}={raw!r} loaded as {value!r}"
        elif isinstance(value, bool):
            assert str(value).lower() == raw.lower(), f"{key}={raw!r} loaded as {value!r}"
        else:
            assert str(value) == raw, f"{key}={raw!r} loaded as {value!r}"


def _cli_parser() -> argparse.ArgumentParser:
    cli = pytest.importorskip("pipeline.cli")
    if not hasattr(cli, "build_parser"):
        pytest.skip("pipeline.cli.build_parser() does not exist yet")
    parser = cli.build_parser()
    assert isinstance(parser, argparse.ArgumentParser)
    return parser


def _subcommands(parser: argparse.ArgumentParser) -> set[str]:
    return {
        name
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for name in action.choices
    }


def _assert_parses(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            parser.parse_args(argv)
    except SystemExit:  # argparse reports bad arguments by exiting
        pytest.fail(f"`newsfeed {shlex.join(argv)}` is rejected by the CLI: {stderr.getvalue().strip()}")


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with comments dropped and continuation lines joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = pending + stripped
        pending = ""
        keyword, _, args = full.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    assert not pending, "Dockerfile ends in a line continuation"
    return instructions


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _dockerfile_instructions():
        if instruction[0] == "FROM":
            stages.append([])
        assert stages, f"{instruction[0]} before the first FROM"
        stages[-1].append(instruction)
    return stages


def _from_parts(args: str) -> tuple[str, str | None]:
    words = [word for word in args.split() if not word.startswith("--")]
    alias = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
    return words[0], alias


# --------------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def kafka_env(services: dict[str, dict[str, Any]]) -> dict[str, str]:
    return _environment(services["kafka"])


# --------------------------------------------------------------------------------------------------
# docker-compose.yml: overall shape
# --------------------------------------------------------------------------------------------------


def test_compose_top_level_keys_are_known(compose: dict[str, Any]) -> None:
    unknown = {key for key in compose if key not in TOP_LEVEL_KEYS and not key.startswith("x-")}
    assert not unknown, f"unknown top-level keys (the obsolete `version` included): {unknown}"


def test_expected_services_exist(services: dict[str, dict[str, Any]]) -> None:
    assert {"kafka", *PIPELINE_SERVICES} <= set(services)


def test_shared_pipeline_settings_live_in_an_extension(compose: dict[str, Any]) -> None:
    assert any(key.startswith("x-newsfeed") for key in compose)


def test_every_service_has_an_image_or_build(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        assert service.get("image") or service.get("build"), f"{name} has neither image nor build"


def test_named_volumes_are_declared(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        for volume, _ in _named_volumes(service):
            assert volume in declared, f"{name} mounts undeclared volume {volume!r}"


def test_depends_on_uses_conditions_on_real_services(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        depends_on = service.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: depends_on must be the long form, with conditions"
        for target, spec in depends_on.items():
            assert target in services, f"{name} depends on unknown service {target!r}"
            condition = spec.get("condition")
            assert condition in DEPENDS_ON_CONDITIONS, f"{name} -> {target}: bad condition {condition!r}"
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits for {target} health, it has none"
            if condition == "service_completed_successfully":
                assert services[target].get("restart", "no") == "no", f"{target} is not a one-shot job"


def test_long_running_services_have_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        if service.get("restart", "no") == "no":
            continue  # one-shot jobs report through their exit code
        healthcheck = service.get("healthcheck")
        assert healthcheck, f"long-running service {name} has no healthcheck"
        assert not healthcheck.get("disable"), f"{name} disables its healthcheck"
        for key in ("test", "interval", "timeout", "retries"):
            assert key in healthcheck, f"{name} healthcheck lacks {key}"
        assert _healthcheck_words(service), f"{name} healthcheck runs nothing"


# --------------------------------------------------------------------------------------------------
# docker-compose.yml: kafka
# --------------------------------------------------------------------------------------------------


def test_kafka_is_the_official_4x_image(services: dict[str, dict[str, Any]]) -> None:
    assert re.fullmatch(r"apache/kafka:4\.\d+(\.\d+)?", services["kafka"]["image"])


def test_kafka_runs_in_kraft_mode(kafka_env: dict[str, str]) -> None:
    assert set(kafka_env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert kafka_env["KAFKA_NODE_ID"] == "1"
    assert (
        "KAFKA_CONTROLLER_QUORUM_VOTERS" in kafka_env
        or "KAFKA_CONTROLLER_QUORUM_BOOTSTRAP_SERVERS" in kafka_env
    )
    assert not [key for key in kafka_env if "ZOOKEEPER" in key]
    controller = kafka_env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert f"{controller}://" in kafka_env["KAFKA_LISTENERS"]
    assert f"{controller}://" not in kafka_env.get("KAFKA_ADVERTISED_LISTENERS", "")


def test_kafka_listeners_serve_the_network_and_the_host(
    services: dict[str, dict[str, Any]], kafka_env: dict[str, str]
) -> None:
    listeners = kafka_env["KAFKA_LISTENERS"].split(",")
    advertised = kafka_env["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert any(listener.endswith(":9092") for listener in listeners)
    assert any(listener.endswith(":29092") for listener in listeners)
    assert any(listener.endswith("//kafka:9092") for listener in advertised)
    assert any(listener.endswith("//localhost:29092") for listener in advertised)
    assert any(str(port).endswith("29092:29092") for port in services["kafka"].get("ports", []))
    names = {listener.split("://")[0] for listener in listeners}
    mapped = {pair.split(":")[0] for pair in kafka_env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")}
    assert names <= mapped, f"listeners without a security protocol: {names - mapped}"


def test_kafka_does_not_auto_create_topics(services: dict[str, dict[str, Any]]) -> None:
    value = services["kafka"]["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"]
    assert value == "false", 'set it as the quoted string "false"'


def test_kafka_replication_factors_fit_a_single_node(kafka_env: dict[str, str]) -> None:
    factors = {key: value for key, value in kafka_env.items() if key.endswith("REPLICATION_FACTOR")}
    assert "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR" in factors
    assert "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR" in factors
    assert set(factors.values()) == {"1"}, factors


def test_kafka_data_is_on_a_named_volume(
    services: dict[str, dict[str, Any]], kafka_env: dict[str, str]
) -> None:
    mounts = dict(_named_volumes(services["kafka"]))
    assert mounts, "kafka data must survive container re-creation"
    assert kafka_env.get("KAFKA_LOG_DIRS", "/var/lib/kafka/data") in mounts.values()


def test_kafka_healthcheck_asks_the_broker(services: dict[str, dict[str, Any]]) -> None:
    healthcheck = services["kafka"]["healthcheck"]
    words = _healthcheck_words(services["kafka"])
    assert words[0] == "/opt/kafka/bin/kafka-broker-api-versions.sh"
    assert words[words.index("--bootstrap-server") + 1] == "localhost:9092"
    for key in ("interval", "timeout", "retries", "start_period"):
        assert key in healthcheck, f"kafka healthcheck lacks {key}"


# --------------------------------------------------------------------------------------------------
# docker-compose.yml: pipeline services
# --------------------------------------------------------------------------------------------------


def test_pipeline_services_share_one_image(services: dict[str, dict[str, Any]]) -> None:
    images = {services[name].get("image") for name in PIPELINE_SERVICES}
    builds = {json.dumps(services[name].get("build"), sort_keys=True) for name in PIPELINE_SERVICES}
    assert len(images) == 1, images
    assert len(builds) == 1, builds
    build = services["worker"]["build"]
    context = ROOT / build["context"]
    assert context.resolve() == ROOT
    assert (context / build["dockerfile"]).resolve() == DOCKERFILE


@pytest.mark.parametrize("name", PIPELINE_SERVICES)
def test_pipeline_service_command_plays_its_role(services: dict[str, dict[str, Any]], name: str) -> None:
    words = _words(services[name]["command"])
    assert words[0] == EXPECTED_ROLES[name]
    assert "entrypoint" not in services[name], "the image's `newsfeed` entrypoint picks the role from command"


@pytest.mark.parametrize("name", PIPELINE_SERVICES)
def test_pipeline_service_command_is_a_real_subcommand(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    parser = _cli_parser()
    words = _words(services[name]["command"])
    assert words[0] in _subcommands(parser), f"{name}: no `newsfeed {words[0]}` subcommand"
    _assert_parses(parser, words)


def test_healthcheck_subcommands_exist(services: dict[str, dict[str, Any]]) -> None:
    parser = _cli_parser()
    for name in PIPELINE_SERVICES:
        if "healthcheck" not in services[name]:
            continue
        words = _healthcheck_words(services[name])
        if words[0] == "newsfeed":
            _assert_parses(parser, words[1:])


@pytest.mark.parametrize("name", PIPELINE_SERVICES)
def test_pipeline_environment_names_real_settings(
    services: dict[str, dict[str, Any]], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _environment(services[name])
    assert env, f"{name} sets no environment"
    for key in env:
        assert key.startswith(ENV_PREFIX), f"{name}: {key} is not a newsfeed setting"
        _settings_path(key)
    _assert_settings_accept(env, monkeypatch)


@pytest.mark.parametrize("name", [name for name in PIPELINE_SERVICES if name != "demo-site"])
def test_kafka_clients_wait_for_the_broker_and_reach_it(
    services: dict[str, dict[str, Any]], kafka_env: dict[str, str], name: str
) -> None:
    service = services[name]
    depends_on = service.get("depends_on")
    assert depends_on, f"{name} has no depends_on"
    assert "kafka" in depends_on or "topics-init" in depends_on
    bootstrap = _environment(service)["NEWSFEED_KAFKA__BOOTSTRAP_SERVERS"]
    assert bootstrap in kafka_env["KAFKA_ADVERTISED_LISTENERS"]
    assert bootstrap.split(":")[0] in services


def test_topics_are_created_once_before_the_pipeline_starts(services: dict[str, dict[str, Any]]) -> None:
    assert services["topics-init"]["restart"] == "no", "quote it: a bare `no` is YAML for false"
    assert services["topics-init"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name in ("crawler", "worker"):
        assert services[name]["depends_on"]["topics-init"]["condition"] == "service_completed_successfully"
        assert services[name]["restart"] == "unless-stopped"


def test_pipeline_healthchecks_ping_the_cluster(services: dict[str, dict[str, Any]]) -> None:
    for name in ("crawler", "worker"):
        assert _healthcheck_words(services[name]) == ["newsfeed", "ping"], name


def test_demo_site_healthcheck_fetches_its_own_port(services: dict[str, dict[str, Any]]) -> None:
    words = _words(services["demo-site"]["command"])
    port = words[words.index("--port") + 1]
    assert words[words.index("--host") + 1] == "0.0.0.0"
    check = " ".join(_healthcheck_words(services["demo-site"]))
    assert "urllib" in check
    assert f"http://localhost:{port}/" in check


def test_crawler_feeds_point_at_the_demo_site(services: dict[str, dict[str, Any]]) -> None:
    env = _environment(services["crawler"])
    feeds = json.loads(env["NEWSFEED_CRAWL__FEEDS"])
    allowed = json.loads(env["NEWSFEED_CRAWL__ALLOWED_PRIVATE_HOSTS"])
    demo_words = _words(services["demo-site"]["command"])
    demo_port = int(demo_words[demo_words.index("--port") + 1])
    assert feeds
    for feed in feeds:
        url = urlsplit(feed)
        assert url.hostname in services, f"{feed} is not served inside the compose network"
        assert url.hostname in allowed, f"{url.hostname} must be allowed as a private host"
        if url.hostname == "demo-site":
            assert url.port == demo_port
    assert services["crawler"]["depends_on"]["demo-site"]["condition"] == "service_healthy"


def test_worker_keeps_its_state_on_a_volume_and_can_scale(services: dict[str, dict[str, Any]]) -> None:
    worker = services["worker"]
    assert "/var/lib/newsfeed" in [target for _, target in _named_volumes(worker)]
    env = _environment(worker)
    for key in ("NEWSFEED_WORKER__DATA_DIR", "NEWSFEED_STORE__SQLITE_PATH"):
        assert env[key].startswith("/var/lib/newsfeed/"), f"{key} is outside the state volume"
    # A fixed container name or host port would make `--scale worker=N` fail.
    assert "container_name" not in worker
    assert not worker.get("ports")


# --------------------------------------------------------------------------------------------------
# deploy/Dockerfile
# --------------------------------------------------------------------------------------------------


def test_dockerfile_is_multi_stage_on_python_311() -> None:
    stages = _stages()
    assert len(stages) >= 2
    aliases = set()
    for stage in stages:
        image, alias = _from_parts(stage[0][1])
        assert image.startswith("python:3.11"), image
        if alias:
            aliases.add(alias)
    # The final stage must take something (the wheels) from an earlier one.
    final = " ".join(args for _, args in stages[-1])
    assert any(f"from={alias}" in final for alias in aliases)


def test_dockerfile_build_stage_has_what_pip_needs() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    needed = {"pyproject.toml", "pipeline", pyproject["project"]["readme"]}
    build_stage = _stages()[0]
    copied = set()
    for keyword, args in build_stage:
        if keyword == "COPY" and "--from" not in args:
            copied.update(Path(source).as_posix().rstrip("/") for source in args.split()[:-1])
    assert needed <= copied, f"the build stage does not copy {needed - copied}"
    missing = sorted(source for source in copied if not (ROOT / source).exists())
    if missing:
        pytest.skip(f"build context is not complete yet, `docker build` would fail: missing {missing}")


def test_dockerfile_runs_as_non_root_user() -> None:
    users = [args for keyword, args in _stages()[-1] if keyword == "USER"]
    assert users, "the runtime stage never switches user"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")


def test_dockerfile_entrypoint_is_newsfeed() -> None:
    final = dict(_stages()[-1])
    assert json.loads(final["ENTRYPOINT"]) == ["newsfeed"]
    assert isinstance(json.loads(final["CMD"]), list), "CMD must be exec form so it becomes arguments"
    assert final["WORKDIR"] == "/var/lib/newsfeed"


def test_dockerfile_environment_names_real_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {}
    for keyword, args in _stages()[-1]:
        if keyword == "ENV":
            for word in shlex.split(args):
                key, _, value = word.partition("=")
                if key.startswith(ENV_PREFIX):
                    env[key] = value
    _assert_settings_accept(env, monkeypatch)
