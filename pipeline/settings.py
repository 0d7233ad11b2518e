"""The one settings object: read once from NEWSFEED_* environment variables and an optional YAML file."""

from __future__ import annotations

import os
import socket
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent


class KafkaSettings(BaseModel):
    """How every client reaches the cluster."""

    model_config = ConfigDict(extra="forbid")

    bootstrap_servers: str = "127.0.0.1:9092"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    request_timeout_ms: int = 40_000


class TopicSettings(BaseModel):
    """Topic names and the partition count the pipeline creates them with."""

    model_config = ConfigDict(extra="forbid")

    frontier: str = "newsfeed.frontier.v1"
    crawl_state: str = "newsfeed.crawl-state.v1"
    raw_pages: str = "newsfeed.raw-pages.v1"
    articles: str = "newsfeed.articles.v1"
    dedup_bands: str = "newsfeed.dedup-bands.v1"
    dedup_join: str = "newsfeed.dedup-join.v1"
    enriched: str = "newsfeed.enriched-articles.v1"
    dead_letter: str = "newsfeed.dead-letter.v1"
    partitions: int = Field(default=8, ge=1)
    replication_factor: int = Field(default=1, ge=1)


class BrokerSettings(BaseModel):
    """The single-node KRaft broker that `newsfeed broker` runs from the official jars."""

    model_config = ConfigDict(extra="forbid")

    state_dir: Path = PROJECT_DIR / ".state" / "kafka"
    host: str = "127.0.0.1"
    port: int = 9092
    controller_port: int = 9093
    heap: str = "768m"
    start_timeout_s: float = 90.0
    # An extra SASL_SSL listener (SCRAM-SHA-512 over TLS) for clients that must authenticate; off when
    # unset. Its TLS material is generated under `state_dir/tls` (ca.pem is the CA clients trust).
    sasl_ssl_port: int | None = None
    scram_users: dict[str, SecretStr] = Field(default_factory=dict)


class CrawlSettings(BaseModel):
    """What the crawler fetches and how politely."""

    model_config = ConfigDict(extra="forbid")

    sources_file: Path | None = None
    feeds: list[str] = Field(default_factory=list)
    group_id: str = "newsfeed-crawler"
    node_id: str = Field(default_factory=socket.gethostname)
    state_dir: Path = PROJECT_DIR / ".state" / "crawler"
    user_agent: str = "newsfeed/0.1 (+https://github.com/newsfeed/newsfeed)"
    poll_interval_s: float = 300.0
    concurrency: int = Field(default=16, ge=1)
    max_pending: int = Field(default=2000, ge=1)
    polite: bool = True
    min_host_delay_s: float = Field(default=1.0, ge=0)
    max_attempts: int = Field(default=3, ge=1)
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 20.0
    request_timeout_s: float = 60.0
    max_body_bytes: int = 5 * 1024 * 1024
    robots_ttl_s: float = 86400.0
    revisit_scan_s: float = Field(default=60.0, gt=0)
    revisit_initial_s: float = Field(default=3600.0, ge=0)
    revisit_min_s: float = Field(default=900.0, ge=0)
    revisit_max_s: float = Field(default=7 * 86400.0, ge=0)
    allowed_private_hosts: list[str] = Field(default_factory=list)


class WorkerSettings(BaseModel):
    """The Faust worker: application id, local state and how many processes extract."""

    model_config = ConfigDict(extra="forbid")

    app_id: str = "newsfeed"
    data_dir: Path = PROJECT_DIR / ".state" / "faust"
    extraction_processes: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    extraction_timeout_s: float = Field(default=20.0, gt=0)
    # An input partition whose fetched records have been nowhere on their way to a commit for this long
    # is read again from its committed offset (Faust can drop a fetched batch without seeking back).
    rewind_after_s: float = Field(default=20.0, gt=0)
    # Faust's web server: /metrics (Prometheus), /health and the dashboard at /dashboard/.
    web_enabled: bool = True
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    # RocksDB memory of all tables and partitions together, so that it does not grow with the state: one
    # block cache (index and filter blocks included) and one budget for the write buffers (memtables).
    rocksdb_block_cache_mb: int = Field(default=48, ge=1)
    rocksdb_write_buffer_mb: int = Field(default=32, ge=2)
    # The memory allocator `newsfeed run` starts the worker with: jemalloc (when installed; it resists the
    # fragmentation RocksDB's churn of blocks causes in glibc's heaps over days), or "system" to leave it.
    allocator: Literal["jemalloc", "system"] = "jemalloc"


class MetricsSettings(BaseModel):
    """Prometheus endpoints of the processes without a web server of their own, and the lag watchdog."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    host: str = "127.0.0.1"  # 0.0.0.0 in containers
    crawler_port: int = 9101
    sink_port: int = 9102
    ingest_port: int = 9103
    # Consumer lag is sampled this often; a partition whose lag grows while its committed offset
    # stands still for `stall_after_s` is reported as stalled (log line and gauge).
    lag_interval_s: float = Field(default=15.0, gt=0)
    stall_after_s: float = Field(default=120.0, gt=0)


class DedupSettings(BaseModel):
    """How long copies are looked for, and how big one LSH bucket may grow."""

    model_config = ConfigDict(extra="forbid")

    window_days: float = Field(default=30.0, gt=0)
    max_bucket_entries: int = Field(default=64, ge=1)
    sweep_interval_s: float = Field(default=60.0, gt=0)
    # Every interval a sweep of the buckets and signatures older than the window starts on each partition;
    # the band-index agent carries it out, this many entries of each table per band message. At 1 M
    # articles of state (~40 entries each) a pass then takes ~110 k articles, a few % of the window.
    bucket_sweep_interval_s: float = Field(default=3600.0, gt=0)
    bucket_sweep_batch: int = Field(default=32, ge=1)
    settle_window_s: float = Field(default=6 * 3600.0, ge=0)


StoreBackend = Literal["sqlite", "postgres", "jsonl"]


class StoreSettings(BaseModel):
    """Where the sink keeps enriched articles."""

    model_config = ConfigDict(extra="forbid")

    # Every store listed receives every enriched record; the enriched topic is always written.
    backends: list[StoreBackend] = Field(default_factory=lambda: list[StoreBackend](["sqlite"]))
    sqlite_path: Path = PROJECT_DIR / ".state" / "newsfeed.sqlite3"
    # postgresql://user:password@host:port/database; unset means the local server of `postgres` below.
    postgres_dsn: SecretStr | None = None
    jsonl_dir: Path = PROJECT_DIR / ".state" / "jsonl"
    batch_size: int = Field(default=200, ge=1)
    batch_window_s: float = 0.5
    # The worker writes the stores itself unless a separate `newsfeed sink` process (group below) does.
    sink_in_worker: bool = True
    sink_group_id: str = "newsfeed-sink"


class PostgresSettings(BaseModel):
    """The local PostgreSQL server that `newsfeed postgres` runs from Debian's packages (tests, demo)."""

    model_config = ConfigDict(extra="forbid")

    state_dir: Path = PROJECT_DIR / ".state" / "postgres"
    host: str = "127.0.0.1"
    # Below the kernel's ephemeral range (32768-60999), so no outgoing connection can hold it at start.
    port: int = 15432
    database: str = "newsfeed"
    user: str = "newsfeed"
    password: SecretStr = SecretStr("newsfeed")
    start_timeout_s: float = 60.0


class InputTopicSettings(BaseModel):
    """Another team's topic that feeds the pipeline: where it lives, what it holds, where it enters."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    topic: str
    # Their cluster; unset means ours. Credentials are secrets (masked in `config show` and logs).
    cluster: KafkaSettings | None = None
    group_id: str | None = None  # default: newsfeed-input-<name>
    format: Literal["raw_page", "article", "json"] = "raw_page"
    # Entry stage: raw pages go to extraction, articles to dedup and tagging.
    stage: Literal["raw", "articles"] = "raw"
    # For format json: our field -> dotted path in their record (e.g. {"html": "payload.body"}).
    mapping: dict[str, str] = Field(default_factory=dict)
    max_record_bytes: int = Field(default=10 * 1024 * 1024, ge=1)

    @model_validator(mode="after")
    def _format_fits_stage(self) -> InputTopicSettings:
        if self.format == "json":
            needed = {"url", "html"} if self.stage == "raw" else {"url", "title", "text"}
            if missing := sorted(needed - self.mapping.keys()):
                raise ValueError(
                    f"input {self.name!r}: mapping must give {', '.join(missing)} (our field: their path)"
                )
        elif (self.format, self.stage) not in {("raw_page", "raw"), ("article", "articles")}:
            raise ValueError(
                f"input {self.name!r}: format {self.format} enters at stage "
                f"{'raw' if self.format == 'raw_page' else 'articles'}, not {self.stage}"
            )
        return self


class TaggingSettings(BaseModel):
    """The topic taxonomy the tagger applies."""

    model_config = ConfigDict(extra="forbid")

    taxonomy_file: Path = PACKAGE_DIR / "tag" / "taxonomy.yaml"
    # The worker re-reads the file this often when it changed; 0 turns reloading off.
    reload_interval_s: float = Field(default=5.0, ge=0)


class ArchiveSettings(BaseModel):
    """The WARC archive of raw pages that `newsfeed archive` writes and `newsfeed replay` reads."""

    model_config = ConfigDict(extra="forbid")

    # Unset: no archive; `newsfeed replay` then never falls back to one.
    dir: Path | None = None
    # A file is closed (renamed, indexed) at whichever limit comes first.
    rotate_bytes: int = Field(default=1024**3, ge=1)
    rotate_seconds: float = Field(default=24 * 3600.0, gt=0)
    # Progress is committed to this group for lag monitoring only; the Kafka offsets recorded in the
    # archive itself decide where a restart resumes.
    group_id: str = "newsfeed-archiver"
    gzip_level: int = Field(default=6, ge=1, le=9)


class Settings(BaseSettings):
    """Everything configurable, in one place. Environment beats the config file, which beats defaults."""

    model_config = SettingsConfigDict(
        env_prefix="NEWSFEED_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    config_file: Path | None = None
    schemas_dir: Path = PROJECT_DIR / "schemas"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # json: one JSON object per line (with the article's trace id); text: for people; auto: text on a
    # terminal, JSON otherwise.
    log_format: Literal["auto", "json", "text"] = "auto"
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)
    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    crawl: CrawlSettings = Field(default_factory=CrawlSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    dedup: DedupSettings = Field(default_factory=DedupSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    tagging: TaggingSettings = Field(default_factory=TaggingSettings)
    inputs: list[InputTopicSettings] = Field(default_factory=list)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    archive: ArchiveSettings = Field(default_factory=ArchiveSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = _config_file_from(init_settings, env_settings)
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if config_file is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        sources.append(file_secret_settings)
        return tuple(sources)


def _config_file_from(*sources: PydanticBaseSettingsSource) -> Path | None:
    for source in sources:
        value: Any = source().get("config_file")
        if value:
            path = Path(value)
            if not path.is_file():
                raise FileNotFoundError(f"config file {path} does not exist (set by config_file)")
            return path
    return None


def load_settings(config_file: Path | None = None) -> Settings:
    """Build the settings object; call once at process start and pass it down."""
    if config_file is not None:
        return Settings(config_file=config_file)
    return Settings()


@lru_cache(maxsize=1)
def default_settings() -> Settings:
    """Settings for entry points that have no CLI-provided config file."""
    return load_settings()
