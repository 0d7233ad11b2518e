"""The tests' own PostgreSQL server: idempotent start, status, and who may log in how."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys

import psycopg
import pytest
from pydantic import SecretStr

from pipeline.ops.postgres import LocalPostgres, postgres_command
from pipeline.settings import Settings, load_settings

pytestmark = pytest.mark.integration


def test_start_is_idempotent_and_leaves_a_running_server_alone(postgres_server: LocalPostgres) -> None:
    first = postgres_server.start()
    second = LocalPostgres(postgres_server.settings).start()
    assert first.running
    assert first.answering
    assert second.pid == first.pid
    assert "accepting connections" in second.describe()


def test_status_command(postgres_server: LocalPostgres, capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(postgres=postgres_server.settings)
    assert postgres_command("status", settings) == 0
    assert postgres_command("start", settings) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2
    assert all(line.startswith("postgres running (pid ") for line in out)


def test_the_cli_reports_the_server(postgres_server: LocalPostgres) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "postgres", "status"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"on {postgres_server.address}" in result.stdout


def test_the_settings_role_owns_the_settings_database(postgres_server: LocalPostgres) -> None:
    settings = postgres_server.settings
    with psycopg.connect(postgres_server.dsn()) as connection:
        row = connection.execute(
            "SELECT current_user, pg_get_userbyid(datdba), rolcreatedb, rolsuper, "
            "current_setting('listen_addresses') "
            "FROM pg_database, pg_roles WHERE datname = current_database() AND rolname = current_user"
        ).fetchone()
    assert row == (settings.user, settings.user, True, False, settings.host)


def test_a_wrong_password_is_refused(postgres_server: LocalPostgres) -> None:
    wrong = postgres_server.settings.model_copy(update={"password": SecretStr("not-the-password")})
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(LocalPostgres(wrong).dsn(), connect_timeout=5).close()


def test_the_data_folder_belongs_to_the_server_account(postgres_server: LocalPostgres) -> None:
    data = postgres_server.data_dir.stat()
    assert data.st_mode & 0o077 == 0
    if os.geteuid() == 0:
        assert data.st_uid == pwd.getpwnam("postgres").pw_uid


def test_the_tests_use_the_configured_server(postgres_server: LocalPostgres) -> None:
    assert postgres_server.settings == load_settings().postgres
    assert postgres_server.status().answering
