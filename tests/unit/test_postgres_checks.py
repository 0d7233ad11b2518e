"""The local PostgreSQL server's checks and addresses, without starting a server."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict
from pydantic import SecretStr

from pipeline.ops import postgres
from pipeline.ops.postgres import (
    LocalPostgres,
    PostgresError,
    postgres_command,
    server_bindir,
    store_dsn,
)
from pipeline.settings import PostgresSettings, Settings, StoreSettings

UNUSED_PORT = 1


def _settings(tmp_path: Path, **changes: object) -> PostgresSettings:
    return PostgresSettings(state_dir=tmp_path / "postgres", port=UNUSED_PORT).model_copy(update=changes)


@pytest.fixture
def no_postgres_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setattr(postgres, "POSTGRES_LIB_DIR", empty)
    monkeypatch.setenv("PATH", str(empty))  # no pg_config either


def _fake_program(path: Path, output: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho '{output}'\n")
    path.chmod(0o755)


def test_dsn_quotes_every_part(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path, user="news feed", password=SecretStr("p@ss:w/rd%?#"), database="db/one", port=6543
    )
    parts = conninfo_to_dict(LocalPostgres(settings).dsn())
    assert parts == {
        "user": "news feed",
        "password": "p@ss:w/rd%?#",
        "host": "127.0.0.1",
        "port": "6543",
        "dbname": "db/one",
    }


def test_dsn_for_another_database_and_an_ipv6_host(tmp_path: Path) -> None:
    server = LocalPostgres(_settings(tmp_path, host="::1"))
    assert server.dsn("other").startswith("postgresql://newsfeed:newsfeed@[::1]:1/other")
    assert conninfo_to_dict(server.dsn("other"))["host"] == "::1"


def test_store_dsn_prefers_the_configured_dsn(tmp_path: Path) -> None:
    local = _settings(tmp_path)
    configured = Settings(
        postgres=local, store=StoreSettings(postgres_dsn=SecretStr("postgresql://u:p@db.internal:5432/news"))
    )
    assert store_dsn(configured) == "postgresql://u:p@db.internal:5432/news"
    assert store_dsn(Settings(postgres=local)) == LocalPostgres(local).dsn()


@pytest.mark.usefixtures("no_postgres_installed")
def test_missing_server_programs_name_the_package(tmp_path: Path) -> None:
    with pytest.raises(PostgresError, match=r"initdb, pg_ctl\) were not found.*apt-get install postgresql"):
        server_bindir()
    with pytest.raises(PostgresError, match=r"apt-get install postgresql"):
        LocalPostgres(_settings(tmp_path)).start()
    assert not (tmp_path / "postgres" / "data").exists()


@pytest.mark.usefixtures("no_postgres_installed")
def test_the_start_command_reports_missing_programs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert postgres_command("start", Settings(postgres=_settings(tmp_path))) == 1
    assert "newsfeed postgres:" in capsys.readouterr().err


def test_the_newest_installed_major_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lib = tmp_path / "lib" / "postgresql"
    for major in ("9", "13", "16"):
        _fake_program(lib / major / "bin" / "initdb", "")
    (lib / "16" / "lib").mkdir()  # not every folder there holds programs
    monkeypatch.setattr(postgres, "POSTGRES_LIB_DIR", lib)
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert server_bindir() == lib / "16" / "bin"
    assert server_bindir(13) == lib / "13" / "bin"


def test_a_data_folder_of_an_uninstalled_major_names_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lib = tmp_path / "lib" / "postgresql"
    _fake_program(lib / "16" / "bin" / "initdb", "")
    monkeypatch.setattr(postgres, "POSTGRES_LIB_DIR", lib)
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    with pytest.raises(PostgresError, match=r"created by PostgreSQL 15.*install postgresql-15"):
        server_bindir(15)


def test_pg_config_finds_programs_outside_debians_layout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bindir = tmp_path / "opt" / "pgsql" / "bin"
    _fake_program(bindir / "initdb", "initdb (PostgreSQL) 17.2")
    _fake_program(tmp_path / "path" / "pg_config", str(bindir))
    monkeypatch.setattr(postgres, "POSTGRES_LIB_DIR", tmp_path / "none")
    monkeypatch.setenv("PATH", f"{tmp_path / 'path'}:/usr/bin:/bin")
    assert server_bindir() == bindir


def test_root_without_the_postgres_user_is_told_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_such_user(name: str) -> pwd.struct_passwd:
        raise KeyError(name)

    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(pwd, "getpwnam", no_such_user)
    with pytest.raises(PostgresError, match=r"`postgres` system user.*apt-get install postgresql"):
        LocalPostgres(_settings(tmp_path)).start()


def test_a_state_folder_the_server_account_cannot_reach(tmp_path: Path) -> None:
    private = tmp_path / "private"
    (private / "postgres").mkdir(parents=True)
    private.chmod(0o700)
    account = postgres._ServerAccount("postgres", "root", uid=os.geteuid() + 12345, gid=0)
    with pytest.raises(PostgresError, match=r"cannot enter .*private.*chmod o\+x"):
        account.check_reachable(private / "postgres")


def test_status_and_stop_of_a_server_never_started(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = LocalPostgres(_settings(tmp_path))
    status = server.status()
    assert not status.running
    assert not status.answering
    assert "not running" in status.describe()
    assert server.stop() is False
    assert postgres_command("status", Settings(postgres=_settings(tmp_path))) == 1
    assert "postgres not running" in capsys.readouterr().out


def test_a_stale_pid_file_is_not_a_running_server(tmp_path: Path) -> None:
    server = LocalPostgres(_settings(tmp_path))
    server.data_dir.mkdir(parents=True)
    # This test's own pid: alive, but not a postgres process.
    (server.data_dir / "postmaster.pid").write_text(f"{os.getpid()}\n{server.data_dir}\n")
    assert server.status().running is False
    assert server.stop() is False


@pytest.mark.parametrize(
    ("host", "expected"),
    [("127.0.0.1", "127.0.0.1/32"), ("::1", "::1/128"), ("localhost", "samehost")],
)
def test_password_logins_are_accepted_only_on_the_listening_address(host: str, expected: str) -> None:
    assert postgres._hba_address(host) == expected
