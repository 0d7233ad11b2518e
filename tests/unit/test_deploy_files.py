"""Structural checks of the deployment files: docker-compose.yml, deploy/Dockerfile, deploy/prometheus/
and deploy/k8s/.

Nothing here talks to Docker, Kubernetes or the network: the files are parsed and checked against each
other and against the code they configure (the settings model, the CLI parser, the metrics registry and
the topic catalogue).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import os
import re
import shlex
import tomllib
import types
import typing
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import BaseModel, SecretStr

from pipeline.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DEPLOY_DIR = ROOT / "deploy"
DOCKERFILE = DEPLOY_DIR / "Dockerfile"
PROMETHEUS_FILE = DEPLOY_DIR / "prometheus" / "prometheus.yml"
ALERTS_FILE = DEPLOY_DIR / "prometheus" / "alerts.yml"
K8S_DIR = DEPLOY_DIR / "k8s"
KUSTOMIZATION_FILE = K8S_DIR / "kustomization.yaml"
METRICS_SOURCE = ROOT / "pipeline" / "ops" / "metrics.py"

PIPELINE_SERVICES = ("topics-init", "demo-site", "crawler", "worker", "worker-2", "sink", "ingest")
#: The first word of each pipeline service's command, i.e. the role it plays.
EXPECTED_ROLES = {
    "topics-init": "topics",
    "demo-site": "demo-site",
    "crawler": "crawl",
    "worker": "worker",
    "worker-2": "worker",
    "sink": "sink",
    "ingest": "ingest",
}
WORKER_SERVICES = tuple(name for name, role in EXPECTED_ROLES.items() if role == "worker")
KAFKA_CLIENT_SERVICES = tuple(name for name in PIPELINE_SERVICES if name != "demo-site")
#: Roles that serve HTTP (Prometheus /metrics, and the worker's /health) and where their port is set.
SERVING_ROLES = ("crawl", "worker", "sink", "ingest")
ENV_PREFIX = "NEWSFEED_"
NESTED_DELIMITER = "__"
DEPENDS_ON_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
TOP_LEVEL_KEYS = {"name", "services", "volumes", "networks", "configs", "secrets", "include", "models"}


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


_INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}")


def _interpolate(value: str) -> str:
    """Resolve compose's `${VAR}`, `${VAR:-default}` and `${VAR-default}` as with none of them set."""

    def replace(match: re.Match[str]) -> str:
        op = match["op"] or ""
        assert "?" not in op, f"{match[0]} makes every `docker compose` call fail unless it is set"
        return match["arg"] if "-" in op else ""

    return _INTERPOLATION.sub(replace, value).replace("$$", "$")


def _environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's inline environment as a mapping, whichever of the two compose syntaxes it uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) for item in env)
        return {pair[0]: _interpolate(pair[1]) if len(pair) == 2 else "" for pair in pairs}
    return {str(key): "" if value is None else _interpolate(str(value)) for key, value in env.items()}


def _env_file_paths(service: dict[str, Any]) -> list[Path]:
    entries = service.get("env_file") or []
    if isinstance(entries, str | dict):
        entries = [entries]
    return [ROOT / (entry["path"] if isinstance(entry, dict) else entry) for entry in entries]


def _read_env_file(path: Path) -> dict[str, str]:
    env = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.relative_to(ROOT)}: {line!r} is not KEY=VALUE"
        env[key.strip()] = value.strip()
    return env


def _full_environment(service: dict[str, Any]) -> dict[str, str]:
    """What the container sees: its env files, then its inline environment (which wins)."""
    env: dict[str, str] = {}
    for path in _env_file_paths(service):
        env.update(_read_env_file(path))
    return env | _environment(service)


def _role(command: str | list[Any]) -> str:
    return _words(command)[0]


def _listen(role: str, settings: Settings) -> tuple[str, int]:
    """(host, port) the process of this role serves HTTP on, as its settings say."""
    if role == "worker":
        assert settings.worker.web_enabled, "the worker's web server (/metrics, /health) is off"
        return settings.worker.web_host, settings.worker.web_port
    assert settings.metrics.enabled, f"{role}: metrics are off"
    ports = {
        "crawl": settings.metrics.crawler_port,
        "sink": settings.metrics.sink_port,
        "ingest": settings.metrics.ingest_port,
    }
    return settings.metrics.host, ports[role]


def _load_settings(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings built from exactly this environment (NEWSFEED_* variables only)."""
    for key in [key for key in os.environ if key.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith(ENV_PREFIX):
            monkeypatch.setenv(key, value)
    return Settings()


def _compose_settings(service: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Settings:
    return _load_settings(_full_environment(service), monkeypatch)


def _is_secret(annotation: Any) -> bool:
    if annotation is SecretStr:
        return True
    return any(_is_secret(arg) for arg in typing.get_args(annotation))


def _secret_env_names(model: type[BaseModel] = Settings, prefix: str = ENV_PREFIX) -> set[str]:
    """Environment variable names of every secret setting (SecretStr, also inside dicts), e.g.
    NEWSFEED_KAFKA__SASL_PASSWORD."""
    names = set()
    for name, field in model.model_fields.items():
        env_name = f"{prefix}{name.upper()}"
        if _is_secret(field.annotation):
            names.add(env_name)
        elif nested := _model_class(field.annotation):
            names |= _secret_env_names(nested, env_name + NESTED_DELIMITER)
    return names


def _secret_fields_set(data: Any, model: type[BaseModel], where: str) -> list[str]:
    """Dotted names of the secret settings that a settings mapping (a YAML file's content) gives."""
    found: list[str] = []
    if not isinstance(data, dict):
        return found
    for name, value in data.items():
        field = model.model_fields.get(name)
        if field is None:
            continue  # unknown keys are the settings model's to reject
        if _is_secret(field.annotation):
            found.append(f"{where}{name}")
        elif nested := _model_class(field.annotation):
            found += _secret_fields_set(value, nested, f"{where}{name}.")
        elif isinstance(value, list):
            item_models = [arg for arg in typing.get_args(field.annotation) if _model_class(arg)]
            for index, item in enumerate(value):
                for item_model in item_models:
                    found += _secret_fields_set(item, item_model, f"{where}{name}[{index}].")
    return found


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
    env = {key: value for key, value in env.items() if key.startswith(ENV_PREFIX)}
    settings = _load_settings(env, monkeypatch)
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
    assert {"kafka", "postgres", "prometheus", *PIPELINE_SERVICES} <= set(services)


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
    for name in KAFKA_CLIENT_SERVICES:
        if name == "topics-init":
            continue
        assert services[name]["depends_on"]["topics-init"]["condition"] == "service_completed_successfully"
        assert services[name]["restart"] == "unless-stopped"


@pytest.mark.parametrize("name", [name for name, role in EXPECTED_ROLES.items() if role in SERVING_ROLES])
def test_pipeline_healthchecks_fetch_their_own_port(
    services: dict[str, dict[str, Any]], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The healthcheck asks the process itself (metrics, or the worker's /health) on the port its settings
    give, and the process listens on every interface so that Prometheus in another container reaches it."""
    service = services[name]
    role = _role(service["command"])
    host, port = _listen(role, _compose_settings(service, monkeypatch))
    assert host == "0.0.0.0", f"{name} listens on {host}: unreachable from other containers"
    check = " ".join(_healthcheck_words(service))
    urls = re.findall(r"https?://[^'\"\s]+", check)
    assert len(urls) == 1, f"{name}: the healthcheck should fetch one URL, found {urls}"
    url = urlsplit(urls[0])
    assert url.hostname == "localhost"
    assert url.port == port, f"{name} serves on {port}, its healthcheck asks {url.port}"
    assert url.path == ("/health" if role == "worker" else "/metrics")
    assert "urllib" in check
    assert "timeout" in check, "a hung process must fail the check, not hang it"


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


@pytest.mark.parametrize("name", WORKER_SERVICES)
def test_workers_keep_their_state_on_their_own_volume(
    services: dict[str, dict[str, Any]], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = services[name]
    assert "/var/lib/newsfeed" in [target for _, target in _named_volumes(worker)]
    env = _environment(worker)
    for key in ("NEWSFEED_WORKER__DATA_DIR", "NEWSFEED_STORE__SQLITE_PATH"):
        assert env[key].startswith("/var/lib/newsfeed/"), f"{key} is outside the state volume"
    data_dir = PurePosixPath(str(_compose_settings(worker, monkeypatch).worker.data_dir))
    mounts = [PurePosixPath(target) for _, target in _named_volumes(worker)]
    assert any(data_dir.is_relative_to(mount) for mount in mounts), f"{name}: {data_dir} is not on a volume"
    # Workers are not replicas of one service (their RocksDB volumes would collide), but nothing should
    # pin a container name or host port either.
    assert "container_name" not in worker
    assert not worker.get("ports")
    assert not worker.get("deploy", {}).get("replicas", 1) > 1, "replicas would share one RocksDB volume"


def test_no_named_volume_is_shared_between_services(services: dict[str, dict[str, Any]]) -> None:
    """RocksDB (worker tables, crawler state) and PostgreSQL must each own their data directory."""
    owners: dict[str, str] = {}
    for name, service in services.items():
        for volume, _ in _named_volumes(service):
            assert volume not in owners, f"{name} and {owners.get(volume)} both mount {volume!r}"
            owners[volume] = name


def test_at_least_two_workers(services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    assert len(WORKER_SERVICES) >= 2
    for name in WORKER_SERVICES:
        assert _role(services[name]["command"]) == "worker"
        partitions = _compose_settings(services[name], monkeypatch).topics.partitions
        assert len(WORKER_SERVICES) <= partitions, "workers beyond the partition count sit idle"


def test_every_process_agrees_on_the_partition_count(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    counts = {
        name: _compose_settings(services[name], monkeypatch).topics.partitions
        for name in KAFKA_CLIENT_SERVICES
    }
    assert len(set(counts.values())) == 1, counts


# --------------------------------------------------------------------------------------------------
# docker-compose.yml: PostgreSQL, the sink and the env file that holds their credentials
# --------------------------------------------------------------------------------------------------


def test_env_files_exist_and_name_real_settings(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, service in services.items():
        for path in _env_file_paths(service):
            assert path.is_file(), f"{name}: env file {path.relative_to(ROOT)} does not exist"
            env = _read_env_file(path)
            for key in env:
                if key.startswith(ENV_PREFIX):
                    _settings_path(key)
            _assert_settings_accept(env, monkeypatch)


def test_postgres_is_the_official_image_with_a_volume_and_a_healthcheck(
    services: dict[str, dict[str, Any]],
) -> None:
    postgres = services["postgres"]
    assert postgres["image"] == "postgres:15"
    assert "/var/lib/postgresql/data" in [target for _, target in _named_volumes(postgres)]
    words = _healthcheck_words(postgres)
    assert words[0] == "pg_isready"
    env = _full_environment(postgres)
    assert "POSTGRES_PASSWORD" in env or "POSTGRES_PASSWORD_FILE" in env, "postgres needs a password"
    inline = _environment(postgres)
    assert "POSTGRES_PASSWORD" not in inline, "the password belongs in an env file or a compose secret"
    for flag in ("--username", "-U"):
        for word in words:
            if word.startswith(f"{flag}="):
                assert word.split("=", 1)[1] == env.get("POSTGRES_USER", "postgres")


def test_sink_writes_postgres_and_workers_leave_it_the_stores(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = services["sink"]
    assert sink["depends_on"]["postgres"]["condition"] == "service_healthy"
    settings = _compose_settings(sink, monkeypatch)
    assert settings.store.backends == ["postgres"]
    assert settings.store.postgres_dsn is not None, "the sink has no NEWSFEED_STORE__POSTGRES_DSN"
    dsn = urlsplit(settings.store.postgres_dsn.get_secret_value())
    postgres_env = _full_environment(services["postgres"])
    assert dsn.scheme in ("postgresql", "postgres")
    assert dsn.hostname == "postgres"
    assert (dsn.port or 5432) == 5432
    assert dsn.username == postgres_env.get("POSTGRES_USER", "postgres")
    assert dsn.password == postgres_env["POSTGRES_PASSWORD"], "the DSN's password is not the server's"
    assert dsn.path.lstrip("/") == postgres_env.get("POSTGRES_DB", dsn.username)
    for name in WORKER_SERVICES:
        assert not _compose_settings(services[name], monkeypatch).store.sink_in_worker, (
            f"{name} would write the stores beside the sink service"
        )


def test_secret_settings_are_not_written_inline(services: dict[str, dict[str, Any]]) -> None:
    secret_names = _secret_env_names() | {"POSTGRES_PASSWORD"}
    for name, service in services.items():
        inline = set(_environment(service)) & secret_names
        assert not inline, f"{name} sets {inline} inline: use an env file or a compose secret"


def test_ingest_is_opt_in(services: dict[str, dict[str, Any]]) -> None:
    """Without declared inputs `newsfeed ingest` exits at once, so it must not start by default."""
    assert services["ingest"].get("profiles"), "ingest needs a profile"
    assert not [
        name
        for name, service in services.items()
        if "ingest" in service.get("depends_on", {}) and not service.get("profiles")
    ]


# --------------------------------------------------------------------------------------------------
# docker-compose.yml: kafka limits the pipeline relies on
# --------------------------------------------------------------------------------------------------


def test_kafka_accepts_the_largest_records(kafka_env: dict[str, str]) -> None:
    """The worker produces records of up to 10 MiB; topics that take more set max.message.bytes."""
    assert int(kafka_env.get("KAFKA_MESSAGE_MAX_BYTES", 1048588)) >= 12 * 1024 * 1024


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


def test_dockerfile_defaults_to_the_worker_and_exposes_every_port(monkeypatch: pytest.MonkeyPatch) -> None:
    final = _stages()[-1]
    assert json.loads(dict(final)["CMD"]) == ["worker"]
    exposed = {
        int(port.split("/")[0]) for keyword, args in final if keyword == "EXPOSE" for port in args.split()
    }
    env = {}
    for keyword, args in final:
        if keyword == "ENV":
            env.update(word.partition("=")[::2] for word in shlex.split(args))
    settings = _load_settings(env, monkeypatch)
    for role in SERVING_ROLES:
        host, port = _listen(role, settings)
        assert port in exposed, f"{role} serves on {port}, the image does not EXPOSE it"
        assert host == "0.0.0.0", f"{role} would listen on {host} inside the container"


# --------------------------------------------------------------------------------------------------
# deploy/prometheus
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prometheus_config() -> dict[str, Any]:
    data = yaml.safe_load(PROMETHEUS_FILE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def alert_rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(ALERTS_FILE.read_text())
    rules = [rule for group in data["groups"] for rule in group["rules"]]
    assert rules
    return rules


def _scrape_targets(config: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(job, host, port) of every static target."""
    found = []
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, _, port = target.rpartition(":")
                found.append((job["job_name"], host, port))
    return found


def _metric_names() -> set[str]:
    """Metric families the pipeline registers (pipeline/ops/metrics.py), as Prometheus names them."""
    return set(re.findall(r"\"(newsfeed_[a-z0-9_]+)\"", METRICS_SOURCE.read_text()))


def test_prometheus_service_mounts_this_config(services: dict[str, dict[str, Any]]) -> None:
    prometheus = services["prometheus"]
    assert prometheus["image"].startswith("prom/prometheus:")
    flags = dict(word.split("=", 1) for word in _words(prometheus["command"]) if "=" in word)
    config_path = PurePosixPath(flags["--config.file"])
    binds = {}
    for volume in prometheus["volumes"]:
        source, target, *_ = volume.split(":")
        if source.startswith("."):
            binds[PurePosixPath(target)] = (ROOT / source).resolve()
    host_dirs = [source for target, source in binds.items() if config_path.parent == target]
    assert host_dirs == [PROMETHEUS_FILE.parent], f"{config_path} is not deploy/prometheus/ mounted"
    assert _healthcheck_words(prometheus)


def test_prometheus_rule_files_exist(prometheus_config: dict[str, Any]) -> None:
    rule_files = prometheus_config.get("rule_files") or []
    assert rule_files, "prometheus.yml loads no alert rules"
    for rule_file in rule_files:
        assert not PurePosixPath(rule_file).is_absolute(), "relative paths resolve beside prometheus.yml"
        assert (PROMETHEUS_FILE.parent / rule_file).is_file(), rule_file
    assert ALERTS_FILE.name in rule_files


def test_prometheus_targets_match_the_compose_ports(
    prometheus_config: dict[str, Any], services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    targets = _scrape_targets(prometheus_config)
    jobs = [job["job_name"] for job in prometheus_config["scrape_configs"]]
    assert len(jobs) == len(set(jobs)), "duplicate job names"
    scraped = set()
    for job, host, port in targets:
        if host == "localhost":
            continue  # Prometheus itself
        assert host in services, f"{job}: {host} is not a compose service"
        role = _role(services[host]["command"])
        assert role in SERVING_ROLES, f"{job}: {host} ({role}) serves no metrics"
        _, expected = _listen(role, _compose_settings(services[host], monkeypatch))
        assert int(port) == expected, f"{job}: {host} serves on {expected}, scraped on {port}"
        scraped.add(host)
    serving = {
        name for name, service in services.items() if _role(service.get("command") or ["-"]) in SERVING_ROLES
    }
    assert serving <= scraped, f"not scraped: {serving - scraped}"


def test_alert_rules_are_complete(alert_rules: list[dict[str, Any]]) -> None:
    names = [rule["alert"] for rule in alert_rules]
    assert len(names) == len(set(names)), "duplicate alert names"
    for rule in alert_rules:
        assert rule.get("expr"), rule["alert"]
        assert re.fullmatch(r"\d+[smh]", str(rule.get("for", ""))), f"{rule['alert']}: set `for`"
        assert rule.get("labels", {}).get("severity") in ("warning", "critical"), rule["alert"]
        assert rule.get("annotations", {}).get("summary"), rule["alert"]
        expr = rule["expr"]
        depth = 0
        for char in expr:
            depth += {"(": 1, ")": -1}.get(char, 0)
            assert depth >= 0, f"{rule['alert']}: unbalanced parentheses"
        assert depth == 0, f"{rule['alert']}: unbalanced parentheses"


def test_alert_rules_cover_the_pipeline_signals(alert_rules: list[dict[str, Any]]) -> None:
    exprs = [" ".join(rule["expr"].split()) for rule in alert_rules]

    def some(pattern: str) -> bool:
        return any(re.search(pattern, expr) for expr in exprs)

    assert some(r"deriv\(newsfeed_consumer_lag\[")
    assert some(r"newsfeed_partition_stalled\b.*== 1")
    assert some(r"rate\(newsfeed_dead_letters_total\[")
    assert some(r"increase\(newsfeed_crawl_pages_total\{outcome=\"fetched\"\}\[15m\]\).*== 0")
    e2e = "histogram_quantile(0.99, sum by (le) (rate(newsfeed_end_to_end_seconds_bucket[5m]))) > 2"
    assert e2e in exprs


def test_alert_rules_use_metrics_the_pipeline_exports(alert_rules: list[dict[str, Any]]) -> None:
    known = _metric_names()
    assert known, f"no metric names found in {METRICS_SOURCE.relative_to(ROOT)}"
    for rule in alert_rules:
        for used in set(re.findall(r"\bnewsfeed_[a-z0-9_]+", rule["expr"])):
            family = re.sub(r"_(total|bucket|count|sum|created)$", "", used)
            assert family in known, f"{rule['alert']}: {used} is not a metric the pipeline exports"


# --------------------------------------------------------------------------------------------------
# deploy/k8s
# --------------------------------------------------------------------------------------------------

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job")
LONG_RUNNING_KINDS = ("Deployment", "StatefulSet")
CLUSTER_SCOPED_KINDS = ("Namespace",)
CONFIG_FILE_ENV = f"{ENV_PREFIX}CONFIG_FILE"


def _k8s_files() -> list[Path]:
    return sorted(path for path in K8S_DIR.glob("*.y*ml") if path != KUSTOMIZATION_FILE)


@pytest.fixture(scope="module")
def k8s_docs() -> list[dict[str, Any]]:
    docs = []
    for path in _k8s_files():
        loaded = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
        assert loaded, f"{path.name} holds no object"
        for doc in loaded:
            assert isinstance(doc, dict), f"{path.name}: not a mapping"
            docs.append(doc | {"__file__": path.name})
    return docs


def _of_kind(docs: list[dict[str, Any]], *kinds: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] in kinds]


def _named(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [doc for doc in _of_kind(docs, kind) if doc["metadata"]["name"] == name]
    assert len(found) == 1, f"no {kind} named {name!r}"
    return found[0]


def _pod_template(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]


def _containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    return _pod_template(workload)["spec"]["containers"]


def _workload_containers(docs: list[dict[str, Any]], *kinds: str) -> Iterator[tuple[dict, dict]]:
    for workload in _of_kind(docs, *(kinds or WORKLOAD_KINDS)):
        for container in _containers(workload):
            yield workload, container


def _label(workload: dict[str, Any], container: dict[str, Any]) -> str:
    return f"{workload['kind']}/{workload['metadata']['name']}/{container['name']}"


def _container_ports(container: dict[str, Any]) -> dict[str | int, int]:
    """Every way a port of the container can be referred to (name or number) -> its number."""
    ports: dict[str | int, int] = {}
    for port in container.get("ports", []):
        ports[port["containerPort"]] = port["containerPort"]
        if "name" in port:
            ports[port["name"]] = port["containerPort"]
    return ports


def _secret_value(docs: list[dict[str, Any]], name: str, key: str) -> str:
    secret = _named(docs, "Secret", name)
    if key in secret.get("stringData", {}):
        return str(secret["stringData"][key])
    assert key in secret.get("data", {}), f"Secret {name} has no key {key!r}"
    return base64.b64decode(secret["data"][key]).decode()


def _container_env(docs: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, str]:
    """The container's environment with references resolved (downward API fields become placeholders)."""
    env = {}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        source = item["valueFrom"]
        if ref := source.get("secretKeyRef"):
            env[item["name"]] = _secret_value(docs, ref["name"], ref["key"])
        elif ref := source.get("configMapKeyRef"):
            env[item["name"]] = str(_named(docs, "ConfigMap", ref["name"])["data"][ref["key"]])
        elif ref := source.get("fieldRef"):
            env[item["name"]] = f"pod-{ref['fieldPath'].replace('.', '-')}"
        else:
            pytest.fail(f"{item['name']}: unsupported valueFrom {source}")
    assert not container.get("envFrom"), "envFrom hides which settings a container gets"
    return env


def _mount_for(workload: dict[str, Any], container: dict[str, Any], path: str) -> tuple[dict, dict] | None:
    """(volumeMount, volume or claim template) holding `path`: the deepest mount at or above it."""
    target = PurePosixPath(path)
    volumes = {volume["name"]: volume for volume in _pod_template(workload)["spec"].get("volumes", [])}
    for claim in workload["spec"].get("volumeClaimTemplates", []):
        volumes[claim["metadata"]["name"]] = {"name": claim["metadata"]["name"], "claimTemplate": claim}
    best = None
    for mount in container.get("volumeMounts", []):
        mount_path = PurePosixPath(mount["mountPath"])
        if target.is_relative_to(mount_path) and (
            best is None or len(mount_path.parts) > len(PurePosixPath(best["mountPath"]).parts)
        ):
            best = mount
    if best is None:
        return None
    assert best["name"] in volumes, f"mount {best['name']!r} has no volume"
    return best, volumes[best["name"]]


def _mounted_configmap_file(
    docs: list[dict[str, Any]], workload: dict[str, Any], container: dict[str, Any], path: str
) -> str:
    """The text a container reads at `path`, which must come from a ConfigMap volume."""
    found = _mount_for(workload, container, path)
    assert found, f"{_label(workload, container)}: nothing is mounted at {path}"
    mount, volume = found
    assert "configMap" in volume, f"{_label(workload, container)}: {path} is not from a ConfigMap"
    relative = PurePosixPath(path).relative_to(mount["mountPath"]).as_posix()
    key = mount.get("subPath") or relative
    for item in volume["configMap"].get("items", []):
        if item["path"] == relative:
            key = item["key"]
    config_map = _named(docs, "ConfigMap", volume["configMap"]["name"])
    assert key in config_map.get("data", {}), f"ConfigMap {config_map['metadata']['name']} has no {key!r}"
    return config_map["data"][key]


def _k8s_settings(
    docs: list[dict[str, Any]],
    workload: dict[str, Any],
    container: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Settings:
    """The settings this container runs with: its mounted settings file, then its environment."""
    env = _container_env(docs, container)
    if CONFIG_FILE_ENV in env:
        text = _mounted_configmap_file(docs, workload, container, env[CONFIG_FILE_ENV])
        local = tmp_path / f"{workload['metadata']['name']}-{container['name']}.yaml"
        local.write_text(text)
        env[CONFIG_FILE_ENV] = str(local)
    return _load_settings(env, monkeypatch)


def _parse_quantity(value: str | int | float) -> float:
    text = str(value)
    units = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", text)
    assert match, f"bad quantity {text!r}"
    assert match[2] in ("", *units), f"bad unit in {text!r}"
    return float(match[1]) * units.get(match[2], 1)


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def test_k8s_manifests_parse_and_are_named(k8s_docs: list[dict[str, Any]]) -> None:
    for doc in k8s_docs:
        where = doc["__file__"]
        for key in ("apiVersion", "kind"):
            assert isinstance(doc.get(key), str), f"{where}: no {key}"
            assert doc[key], f"{where}: empty {key}"
        assert doc.get("metadata", {}).get("name"), f"{where}: no metadata.name"
        name = doc["metadata"]["name"]
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name), f"{where}: {name!r} is not a DNS name"
    keys = [(doc["kind"], doc["metadata"]["name"]) for doc in k8s_docs]
    assert len(keys) == len(set(keys)), "two objects of one kind share a name"


def test_k8s_has_the_expected_objects(k8s_docs: list[dict[str, Any]]) -> None:
    kinds = {doc["kind"] for doc in k8s_docs}
    assert {"Namespace", "ConfigMap", "Secret", "Deployment", "StatefulSet", "Service", "Job"} <= kinds
    roles = {
        workload["kind"]: _role(container["args"])
        for workload, container in _workload_containers(k8s_docs)
        if workload["kind"] != "Deployment"
    }
    assert roles == {"StatefulSet": "worker", "Job": "topics"}
    deployments = {_role(container["args"]) for _, container in _workload_containers(k8s_docs, "Deployment")}
    assert deployments == {"crawl", "sink"}


def test_kustomization_lists_every_manifest(k8s_docs: list[dict[str, Any]]) -> None:
    kustomization = yaml.safe_load(KUSTOMIZATION_FILE.read_text())
    assert kustomization["kind"] == "Kustomization"
    resources = kustomization["resources"]
    assert len(resources) == len(set(resources)), "a resource is listed twice"
    assert set(resources) == {path.name for path in _k8s_files()}
    namespaces = [doc["metadata"]["name"] for doc in _of_kind(k8s_docs, "Namespace")]
    assert kustomization.get("namespace") in namespaces
    for image in kustomization.get("images", []):
        used = {container["image"].split(":")[0] for _, container in _workload_containers(k8s_docs)}
        assert image["name"] in used, f"kustomization sets image {image['name']!r}, which nothing uses"


def test_k8s_objects_live_in_the_namespace(k8s_docs: list[dict[str, Any]]) -> None:
    (namespace,) = [doc["metadata"]["name"] for doc in _of_kind(k8s_docs, "Namespace")]
    for doc in k8s_docs:
        if doc["kind"] not in CLUSTER_SCOPED_KINDS:
            assert doc["metadata"].get("namespace") == namespace, f"{doc['__file__']}: not in {namespace}"


def test_workload_selectors_match_their_template_labels(k8s_docs: list[dict[str, Any]]) -> None:
    workloads = _of_kind(k8s_docs, *LONG_RUNNING_KINDS)
    for workload in workloads:
        selector = workload["spec"]["selector"]["matchLabels"]
        labels = _pod_template(workload)["metadata"]["labels"]
        assert _selects(selector, labels), f"{workload['metadata']['name']}: selector does not match its pods"
        for other in workloads:
            if other is not workload:
                other_labels = _pod_template(other)["metadata"]["labels"]
                assert not _selects(selector, other_labels), (
                    f"{workload['metadata']['name']} would adopt the pods of {other['metadata']['name']}"
                )


def test_containers_run_the_image_in_a_role(k8s_docs: list[dict[str, Any]]) -> None:
    parser = _cli_parser()
    for workload, container in _workload_containers(k8s_docs):
        assert container["image"].split(":")[0] == "newsfeed", _label(workload, container)
        assert "command" not in container, "the image's `newsfeed` entrypoint picks the role from args"
        _assert_parses(parser, _words(container["args"]))


def test_containers_have_resources(k8s_docs: list[dict[str, Any]]) -> None:
    for workload, container in _workload_containers(k8s_docs):
        resources = container.get("resources", {})
        for kind in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                assert resource in resources.get(kind, {}), (
                    f"{_label(workload, container)}: no {kind}.{resource}"
                )
        for resource in ("cpu", "memory"):
            request = _parse_quantity(resources["requests"][resource])
            limit = _parse_quantity(resources["limits"][resource])
            assert request <= limit, f"{_label(workload, container)}: {resource} request above its limit"


def test_containers_run_as_non_root(k8s_docs: list[dict[str, Any]]) -> None:
    for workload, container in _workload_containers(k8s_docs):
        pod = _pod_template(workload)["spec"].get("securityContext", {})
        own = container.get("securityContext", {})
        assert own.get("runAsNonRoot", pod.get("runAsNonRoot")) is True, _label(workload, container)
        assert own.get("runAsUser", pod.get("runAsUser", 0)) != 0, _label(workload, container)
        assert own.get("allowPrivilegeEscalation") is False, _label(workload, container)


def test_long_running_containers_have_probes_on_their_port(
    k8s_docs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for workload, container in _workload_containers(k8s_docs, *LONG_RUNNING_KINDS):
        where = _label(workload, container)
        role = _role(container["args"])
        host, port = _listen(role, _k8s_settings(k8s_docs, workload, container, monkeypatch, tmp_path))
        assert host == "0.0.0.0", f"{where} listens on {host}: probes and Prometheus cannot reach it"
        ports = _container_ports(container)
        assert port in ports.values(), f"{where} serves on {port}, which it does not declare"
        for probe_name in ("readinessProbe", "livenessProbe", "startupProbe"):
            if probe_name == "startupProbe" and probe_name not in container:
                continue
            probe = container.get(probe_name)
            assert probe, f"{where} has no {probe_name}"
            http = probe.get("httpGet")
            assert http, f"{where}: {probe_name} should ask the process over HTTP"
            assert http["port"] in ports, f"{where}: {probe_name} targets undeclared port {http['port']!r}"
            assert ports[http["port"]] == port, f"{where}: {probe_name} on {ports[http['port']]}, not {port}"
            assert http["path"] == ("/health" if role == "worker" else "/metrics"), where


def test_pods_carry_prometheus_scrape_annotations(
    k8s_docs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for workload in _of_kind(k8s_docs, *LONG_RUNNING_KINDS):
        annotations = _pod_template(workload)["metadata"].get("annotations", {})
        name = workload["metadata"]["name"]
        assert annotations.get("prometheus.io/scrape") == "true", f"{name}: quote it, annotations are strings"
        assert annotations.get("prometheus.io/path") == "/metrics", name
        container = _containers(workload)[0]
        _, port = _listen(
            _role(container["args"]), _k8s_settings(k8s_docs, workload, container, monkeypatch, tmp_path)
        )
        assert annotations.get("prometheus.io/port") == str(port), f"{name} serves metrics on {port}"


def test_k8s_containers_load_their_settings(
    k8s_docs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Every container's settings file is mounted from the ConfigMap and, with its environment, loads;
    all of them agree on the partition count, and SASL clients get a password."""
    partitions = set()
    for workload, container in _workload_containers(k8s_docs):
        env = _container_env(k8s_docs, container)
        assert CONFIG_FILE_ENV in env, f"{_label(workload, container)} does not read the settings file"
        for key in env:
            _settings_path(key)
        settings = _k8s_settings(k8s_docs, workload, container, monkeypatch, tmp_path)
        partitions.add(settings.topics.partitions)
        if settings.kafka.security_protocol.startswith("SASL"):
            assert settings.kafka.sasl_username, _label(workload, container)
            assert settings.kafka.sasl_password, _label(workload, container)
    assert len(partitions) == 1, partitions


def test_crawler_sources_file_is_mounted_and_valid(
    k8s_docs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from pipeline.crawl.sources import parse_sources  # noqa: PLC0415

    for workload, container in _workload_containers(k8s_docs, "Deployment"):
        if _role(container["args"]) != "crawl":
            continue
        settings = _k8s_settings(k8s_docs, workload, container, monkeypatch, tmp_path)
        assert settings.crawl.sources_file or settings.crawl.feeds, "the crawler has nothing to crawl"
        if settings.crawl.sources_file:
            path = str(settings.crawl.sources_file)
            assert parse_sources(_mounted_configmap_file(k8s_docs, workload, container, path), path)


def test_crawler_deployment_names_each_pod_a_node(k8s_docs: list[dict[str, Any]]) -> None:
    (crawler,) = [
        workload
        for workload, container in _workload_containers(k8s_docs, "Deployment")
        if _role(container["args"]) == "crawl"
    ]
    assert crawler["spec"]["replicas"] == 2
    (container,) = _containers(crawler)
    node_id = [item for item in container["env"] if item["name"] == f"{ENV_PREFIX}CRAWL__NODE_ID"]
    assert node_id, "crawl.node_id must be unique per pod; the host name default is, but say so"
    assert node_id[0]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_state_is_written_to_volumes(
    k8s_docs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Where a process keeps state, a writable volume is mounted (the root filesystem is read-only)."""
    for workload, container in _workload_containers(k8s_docs):
        settings = _k8s_settings(k8s_docs, workload, container, monkeypatch, tmp_path)
        role = _role(container["args"])
        paths = {"worker": [settings.worker.data_dir], "crawl": [settings.crawl.state_dir]}.get(role, [])
        read_only_root = container.get("securityContext", {}).get("readOnlyRootFilesystem", False)
        for path in [*paths, Path("/tmp")] if read_only_root else paths:
            found = _mount_for(workload, container, str(path))
            assert found, f"{_label(workload, container)}: {path} is on no volume"
            mount, volume = found
            assert not mount.get("readOnly"), f"{_label(workload, container)}: {path} is read-only"
            assert "configMap" not in volume, f"{_label(workload, container)}: {path} is a ConfigMap"
            assert "secret" not in volume, f"{_label(workload, container)}: {path} is a Secret"


def test_worker_statefulset_keeps_rocksdb_on_claims(
    k8s_docs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (worker,) = _of_kind(k8s_docs, "StatefulSet")
    claims = worker["spec"].get("volumeClaimTemplates")
    assert claims, "workers need a PersistentVolumeClaim each for RocksDB"
    for claim in claims:
        assert "ReadWriteOnce" in claim["spec"]["accessModes"]
        assert _parse_quantity(claim["spec"]["resources"]["requests"]["storage"]) > 0
    (container,) = _containers(worker)
    env = _container_env(k8s_docs, container)
    assert f"{ENV_PREFIX}WORKER__DATA_DIR" in env, "say where the RocksDB state goes"
    settings = _k8s_settings(k8s_docs, worker, container, monkeypatch, tmp_path)
    found = _mount_for(worker, container, str(settings.worker.data_dir))
    assert found, f"{settings.worker.data_dir} is on no volume"
    assert "claimTemplate" in found[1], f"{settings.worker.data_dir} is not on a claim template"
    assert 2 <= worker["spec"]["replicas"] <= settings.topics.partitions
    headless = _named(k8s_docs, "Service", worker["spec"]["serviceName"])
    assert headless["spec"].get("clusterIP") == "None", "the StatefulSet's service must be headless"
    assert _selects(headless["spec"]["selector"], _pod_template(worker)["metadata"]["labels"])
    if any(_role(c["args"]) == "sink" for _, c in _workload_containers(k8s_docs, "Deployment")):
        assert not settings.store.sink_in_worker, "the workers would write the stores beside the sink"


def test_sink_deployment_writes_postgres(
    k8s_docs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (sink, container) = next(
        (workload, container)
        for workload, container in _workload_containers(k8s_docs, "Deployment")
        if _role(container["args"]) == "sink"
    )
    settings = _k8s_settings(k8s_docs, sink, container, monkeypatch, tmp_path)
    assert "postgres" in settings.store.backends
    assert settings.store.postgres_dsn is not None
    assert urlsplit(settings.store.postgres_dsn.get_secret_value()).scheme in ("postgresql", "postgres")
    assert 1 <= sink["spec"]["replicas"] <= settings.topics.partitions


def test_topics_job_creates_the_topics(k8s_docs: list[dict[str, Any]]) -> None:
    (job,) = _of_kind(k8s_docs, "Job")
    (container,) = _containers(job)
    assert _words(container["args"]) == ["topics", "create"]
    assert _pod_template(job)["spec"]["restartPolicy"] in ("OnFailure", "Never")
    assert job["spec"].get("backoffLimit", 6) >= 1


def test_services_select_pods_and_target_declared_ports(k8s_docs: list[dict[str, Any]]) -> None:
    workloads = _of_kind(k8s_docs, *LONG_RUNNING_KINDS)
    for service in _of_kind(k8s_docs, "Service"):
        name = service["metadata"]["name"]
        selected = [
            workload
            for workload in workloads
            if _selects(service["spec"].get("selector", {}), _pod_template(workload)["metadata"]["labels"])
        ]
        assert selected, f"Service {name} selects no pods"
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            for workload in selected:
                declared = {key for container in _containers(workload) for key in _container_ports(container)}
                assert target in declared, f"Service {name} targets {target!r}, not declared by its pods"


def test_worker_and_crawler_ports_have_services(k8s_docs: list[dict[str, Any]]) -> None:
    exposed = {}
    for service in _of_kind(k8s_docs, "Service"):
        if service["spec"].get("clusterIP") == "None":
            continue
        for workload in _of_kind(k8s_docs, *LONG_RUNNING_KINDS):
            if _selects(service["spec"]["selector"], _pod_template(workload)["metadata"]["labels"]):
                role = _role(_containers(workload)[0]["args"])
                exposed.setdefault(role, set()).update(port["port"] for port in service["spec"]["ports"])
    assert 6066 in exposed.get("worker", set()), "no Service for the worker's metrics and dashboard"
    assert 9101 in exposed.get("crawl", set()), "no Service for the crawler's metrics"


def test_k8s_secret_settings_come_from_secrets(k8s_docs: list[dict[str, Any]]) -> None:
    secret_names = _secret_env_names()
    for workload, container in _workload_containers(k8s_docs):
        for item in container.get("env", []):
            if item["name"] in secret_names:
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                assert ref, f"{_label(workload, container)}: {item['name']} must come from a Secret"
                _secret_value(k8s_docs, ref["name"], ref["key"])
    for config_map in _of_kind(k8s_docs, "ConfigMap"):
        for key, text in config_map.get("data", {}).items():
            data = yaml.safe_load(text)
            leaked = _secret_fields_set(data, Settings, "") if isinstance(data, dict) else []
            assert not leaked, f"ConfigMap {config_map['metadata']['name']}/{key} sets secrets: {leaked}"
    for secret in _of_kind(k8s_docs, "Secret"):
        assert secret.get("stringData"), "write Secret values as stringData placeholders"


# --------------------------------------------------------------------------------------------------
# every deploy file
# --------------------------------------------------------------------------------------------------


def _deploy_text_files() -> list[Path]:
    files = [COMPOSE_FILE]
    for path in sorted(DEPLOY_DIR.rglob("*")):
        if path.is_file():
            try:
                path.read_text()
            except UnicodeDecodeError:
                continue
            files.append(path)
    return files


def _env_files() -> list[Path]:
    return sorted(DEPLOY_DIR.rglob("*.env"))


def _secret_only_files() -> set[Path]:
    """Manifests that hold nothing but Secret objects."""
    found = set()
    for path in _k8s_files():
        docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
        if docs and all(doc.get("kind") == "Secret" for doc in docs):
            found.add(path)
    return found


def _secret_values() -> set[str]:
    """Every secret value the deploy files hold, and the passwords inside URL-shaped ones."""
    values: set[str] = set()
    for path in _secret_only_files():
        for doc in yaml.safe_load_all(path.read_text()):
            values.update(str(value) for value in (doc or {}).get("stringData", {}).values())
            values.update(base64.b64decode(value).decode() for value in (doc or {}).get("data", {}).values())
    for path in _env_files():
        values.update(_read_env_file(path).values())
    for value in list(values):
        if "://" in value and (password := urlsplit(value).password):
            values.add(password)
    return {value for value in values if len(value) >= 6}


def test_deploy_files_name_only_real_settings() -> None:
    """Every NEWSFEED_* name written in a deploy file (compose, Dockerfile, manifests, docs) is a setting."""
    for path in _deploy_text_files():
        for name in sorted(set(re.findall(r"\bNEWSFEED_[A-Z0-9_]*[A-Z0-9]\b", path.read_text()))):
            try:
                _settings_path(name)
            except AssertionError as error:
                pytest.fail(f"{path.relative_to(ROOT)}: {error}")


def test_no_secret_value_outside_secrets_and_env_files() -> None:
    secrets = _secret_values()
    assert secrets, "found no Secret objects or env files to take the secret values from"
    holders = _secret_only_files() | set(_env_files())
    credentials_in_url = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:[^/\s@'\"]+@")
    for path in _deploy_text_files():
        if path in holders:
            continue
        text = path.read_text()
        where = path.relative_to(ROOT)
        leaked = sorted(secret for secret in secrets if secret in text)
        assert not leaked, f"{where} contains secret values: {leaked}"
        assert not credentials_in_url.search(text), f"{where} contains a URL with a password"


def test_dockerfile_bakes_in_no_secrets() -> None:
    secret_names = _secret_env_names()
    for keyword, args in _dockerfile_instructions():
        if keyword in ("ENV", "ARG"):
            names = {word.partition("=")[0] for word in shlex.split(args)}
            assert not names & secret_names, f"{keyword} {args}: secrets must not be part of the image"
