"""Run a local PostgreSQL server from Debian's packages under one state folder (tests, demo, development)."""

from __future__ import annotations

import fcntl
import ipaddress
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from pipeline.settings import PostgresSettings, Settings

# Debian installs each major version's server programs here, outside PATH.
POSTGRES_LIB_DIR = Path("/usr/lib/postgresql")
# initdb and postgres refuse to run as root; Debian's package creates this account for them.
SERVER_ACCOUNT = "postgres"
INSTALL_ADVICE = (
    "Install Debian's PostgreSQL server: apt-get install postgresql "
    "(or bash deploy/install-system-packages.sh)."
)
_LOG_LINES_IN_ERRORS = 8


class PostgresError(RuntimeError):
    """The server could not be prepared or started; the message says what to do."""


@dataclass(frozen=True)
class PostgresStatus:
    """What `newsfeed postgres status` reports."""

    running: bool
    answering: bool
    pid: int | None
    address: str
    database: str
    state_dir: Path

    def describe(self) -> str:
        if self.running and self.answering:
            return (
                f"postgres running (pid {self.pid}), accepting connections to {self.database} on "
                f"{self.address}; state in {self.state_dir}"
            )
        if self.running:
            return (
                f"postgres process {self.pid} is up but refuses the configured login to {self.database} on "
                f"{self.address} (still starting, or the password changed: `newsfeed postgres start` sets it)"
            )
        if self.answering:
            return f"a PostgreSQL server not started by newsfeed answers on {self.address}"
        return f"postgres not running (state in {self.state_dir})"


class LocalPostgres:
    """Start, stop and inspect the project's own server; every operation is idempotent."""

    def __init__(self, settings: PostgresSettings) -> None:
        self.settings = settings
        self.state_dir = settings.state_dir
        self.data_dir = self.state_dir / "data"
        self.socket_dir = self.state_dir / "run"
        self.log_dir = self.state_dir / "logs"
        self.log_file = self.log_dir / "postgres.log"

    @property
    def address(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    def dsn(self, database: str | None = None) -> str:
        """A libpq URI for the settings' user on `database` (default: the settings' database)."""
        s = self.settings
        host = f"[{s.host}]" if ":" in s.host else s.host
        credentials = f"{quote(s.user, safe='')}:{quote(s.password.get_secret_value(), safe='')}"
        return f"postgresql://{credentials}@{host}:{s.port}/{quote(database or s.database, safe='')}"

    def status(self) -> PostgresStatus:
        pid = self._live_pid()
        return PostgresStatus(
            pid is not None, self._answers(), pid, self.address, self.settings.database, self.state_dir
        )

    def start(self) -> PostgresStatus:
        current = self.status()
        if current.answering:
            return current
        server = _ServerAccount.for_current_user()
        bindir = server_bindir(self._data_version())
        self.state_dir.mkdir(parents=True, exist_ok=True)
        # Two test runs in one tree may start at once; the second must find the first one's server.
        with _exclusive_lock(self.state_dir / "start.lock"):
            current = self.status()
            if current.answering:
                return current
            if not current.running:
                self._prepare_folders(server)
                if self._data_version() is None:
                    self._initdb(server, bindir)
                self._write_config(server)
                self._pg_ctl_start(server, bindir)
            self._create_role_and_database(server)
            return self._wait_until_answering()

    def stop(self, timeout_s: float = 60.0) -> bool:
        """Stop the server (fast shutdown: sessions are ended, data is flushed); True if one was running."""
        pid = self._live_pid()
        if pid is None:
            return False
        # SIGINT is PostgreSQL's fast shutdown; signalling directly needs neither pg_ctl nor runuser.
        os.kill(pid, signal.SIGINT)
        if not _wait_for_exit(pid, timeout_s):
            # SIGQUIT is the immediate shutdown: no data loss, crash recovery at the next start.
            os.kill(pid, signal.SIGQUIT)
            if not _wait_for_exit(pid, 10.0):
                raise PostgresError(f"postgres (pid {pid}) did not stop; see {self.log_file}")
        return True

    def _prepare_folders(self, server: _ServerAccount) -> None:
        server.check_reachable(self.state_dir)
        for folder in (self.data_dir, self.socket_dir, self.log_dir):
            folder.mkdir(exist_ok=True)
            # The server refuses a data folder that others can read.
            folder.chmod(0o700)
            server.own(folder)

    def _data_version(self) -> int | None:
        try:
            return int((self.data_dir / "PG_VERSION").read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def _initdb(self, server: _ServerAccount, bindir: Path) -> None:
        result = server.run(
            [
                str(bindir / "initdb"),
                "--pgdata",
                str(self.data_dir),
                "--auth-local=peer",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                # C.UTF-8 is present on every Debian; the text-search parser then knows non-ASCII letters.
                "--locale=C.UTF-8",
                "--no-instructions",
            ],
            cwd=self.state_dir,
        )
        if result.returncode != 0:
            raise PostgresError(
                f"initdb failed in {self.data_dir} (exit {result.returncode}):\n{_tail(result.stderr)}"
            )
        conf = self.data_dir / "postgresql.conf"
        with conf.open("a") as out:
            out.write("\n# The newsfeed postgres settings, rewritten at every start.\n")
            out.write("include_if_exists = 'newsfeed.conf'\n")

    def _write_config(self, server: _ServerAccount) -> None:
        s = self.settings
        options = {
            "listen_addresses": s.host,
            "port": str(s.port),
            "unix_socket_directories": str(self.socket_dir),
            "password_encryption": "scram-sha-256",
        }
        server.write(
            self.data_dir / "newsfeed.conf",
            "# Written by newsfeed at every start from the postgres settings; edits here are lost.\n"
            + "".join(f"{name} = {_conf_value(value)}\n" for name, value in options.items()),
        )
        # Over the socket, only the account that runs newsfeed gets in, as the superuser, to create the
        # role and database; everyone else comes over TCP with a password.
        server.write(
            self.data_dir / "pg_hba.conf",
            "# Written by newsfeed at every start; edits here are lost.\n"
            f"local all {server.superuser} peer map=newsfeed\n"
            f"host all all {_hba_address(s.host)} scram-sha-256\n",
        )
        server.write(
            self.data_dir / "pg_ident.conf",
            "# Written by newsfeed at every start; edits here are lost.\n"
            + "".join(f"newsfeed {name} {server.superuser}\n" for name in server.os_users()),
        )

    def _pg_ctl_start(self, server: _ServerAccount, bindir: Path) -> None:
        timeout_s = max(1, round(self.settings.start_timeout_s))
        result = server.run(
            [
                str(bindir / "pg_ctl"),
                "start",
                "--pgdata",
                str(self.data_dir),
                "--log",
                str(self.log_file),
                "--wait",
                "--timeout",
                str(timeout_s),
                "--silent",
            ],
            cwd=self.state_dir,
        )
        if result.returncode != 0:
            raise PostgresError(
                f"postgres did not start on {self.address}; see {self.log_file}:\n{self._log_tail()}"
            )

    def _create_role_and_database(self, server: _ServerAccount) -> None:
        s = self.settings
        role, database = sql.Identifier(s.user), sql.Identifier(s.database)
        try:
            with self._connect_as_superuser(server) as admin:
                if not admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (s.user,)).fetchone():
                    admin.execute(sql.SQL("CREATE ROLE {}").format(role))
                # Set every time, so that a password changed in the settings takes effect at the next start.
                admin.execute(
                    sql.SQL("ALTER ROLE {} WITH LOGIN CREATEDB PASSWORD {}").format(
                        role, sql.Literal(s.password.get_secret_value())
                    )
                )
                exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (s.database,))
                if not exists.fetchone():
                    admin.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(database, role))
        except psycopg.Error as error:
            raise PostgresError(
                f"creating role {s.user!r} and database {s.database!r} failed: {error}; see {self.log_file}"
            ) from error

    def _connect_as_superuser(self, server: _ServerAccount) -> psycopg.Connection[TupleRow]:
        # A server found running may still be starting up (or recovering) and refuse sessions for a while.
        deadline = time.monotonic() + self.settings.start_timeout_s
        while True:
            try:
                return psycopg.connect(
                    host=str(self.socket_dir),
                    port=self.settings.port,
                    user=server.superuser,
                    dbname="postgres",
                    autocommit=True,  # CREATE DATABASE cannot run inside a transaction
                    connect_timeout=10,
                )
            except psycopg.OperationalError:
                if time.monotonic() >= deadline or self._live_pid() is None:
                    raise
                time.sleep(0.2)

    def _wait_until_answering(self) -> PostgresStatus:
        deadline = time.monotonic() + self.settings.start_timeout_s
        while time.monotonic() < deadline:
            current = self.status()
            if current.answering:
                return current
            if not current.running:
                raise PostgresError(f"postgres exited during start-up; see {self.log_file}")
            time.sleep(0.2)
        raise PostgresError(
            f"postgres did not accept connections on {self.address} within "
            f"{self.settings.start_timeout_s:.0f}s; see {self.log_file}"
        )

    def _answers(self) -> bool:
        try:
            with psycopg.connect(self.dsn(), connect_timeout=2) as connection:
                connection.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def _live_pid(self) -> int | None:
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (FileNotFoundError, PermissionError, ValueError):
            return None
        return pid if _alive(pid) and _is_postgres(pid) else None

    def _log_tail(self) -> str:
        try:
            return _tail(self.log_file.read_text(errors="replace"))
        except FileNotFoundError:
            return "(no log written)"


@dataclass(frozen=True)
class _ServerAccount:
    """Who the server's programs run as: the postgres system user when we are root, else ourselves.

    initdb names the cluster's superuser after that account.
    """

    superuser: str
    caller: str
    uid: int | None = None
    gid: int | None = None
    runuser: str | None = None

    @classmethod
    def for_current_user(cls) -> _ServerAccount:
        caller = pwd.getpwuid(os.geteuid()).pw_name
        if os.geteuid() != 0:
            return cls(caller, caller)
        try:
            account = pwd.getpwnam(SERVER_ACCOUNT)
        except KeyError:
            raise PostgresError(
                f"running as root, PostgreSQL must run as the `{SERVER_ACCOUNT}` system user, which does "
                f"not exist. {INSTALL_ADVICE} It creates that user."
            ) from None
        runuser = shutil.which("runuser") or next(
            (path for path in ("/usr/sbin/runuser", "/sbin/runuser") if Path(path).exists()), None
        )
        if runuser is None:
            raise PostgresError(
                "running as root needs `runuser` to start PostgreSQL as the postgres user; "
                "install util-linux (apt-get install util-linux)."
            )
        return cls(SERVER_ACCOUNT, caller, account.pw_uid, account.pw_gid, runuser)

    def os_users(self) -> list[str]:
        """Who may log in over the socket as the superuser: the server account and whoever runs newsfeed."""
        return sorted({self.superuser, self.caller})

    def run(self, command: list[str], *, cwd: Path) -> subprocess.CompletedProcess[str]:
        prefix = [self.runuser, "-u", self.superuser, "--"] if self.runuser else []
        # PG* variables of the caller (PGHOST, PGDATA, ...) would silently redirect the programs.
        environment = {name: value for name, value in os.environ.items() if not name.startswith("PG")}
        return subprocess.run(
            [*prefix, *command],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            cwd=cwd,
            env=environment,
            check=False,
        )

    def own(self, path: Path) -> None:
        if self.uid is not None and self.gid is not None:
            os.chown(path, self.uid, self.gid)

    def write(self, path: Path, text: str) -> None:
        path.write_text(text)
        path.chmod(0o600)
        self.own(path)

    def check_reachable(self, folder: Path) -> None:
        """The server account must be able to walk down to the state folder."""
        if self.uid is None:
            return
        for parent in [folder, *folder.parents]:
            mode = parent.stat()
            if mode.st_uid != self.uid and not mode.st_mode & 0o001:
                raise PostgresError(
                    f"the {SERVER_ACCOUNT} user cannot enter {parent}, so it cannot reach {folder}; "
                    f"choose another postgres.state_dir or allow it (chmod o+x {parent})."
                )


def server_bindirs() -> dict[int, Path]:
    """Installed server programs by major version: Debian's layout first, then `pg_config --bindir`."""
    found: dict[int, Path] = {}
    for initdb in POSTGRES_LIB_DIR.glob("*/bin/initdb"):
        major = initdb.parent.parent.name
        if major.isdigit():
            found[int(major)] = initdb.parent
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        bindir = Path(result.stdout.strip())
        if result.returncode == 0 and (bindir / "initdb").is_file() and bindir not in found.values():
            major_version = _major_version(bindir)
            if major_version is not None:
                found.setdefault(major_version, bindir)
    return found


def server_bindir(required_major: int | None = None) -> Path:
    """The folder of initdb and pg_ctl: the newest installed, or the major an existing data folder needs."""
    found = server_bindirs()
    if not found:
        raise PostgresError(
            f"PostgreSQL's server programs (initdb, pg_ctl) were not found in {POSTGRES_LIB_DIR}/*/bin "
            f"nor via pg_config. {INSTALL_ADVICE}"
        )
    if required_major is None:
        return found[max(found)]
    if required_major not in found:
        installed = ", ".join(str(major) for major in sorted(found))
        raise PostgresError(
            f"the data folder was created by PostgreSQL {required_major}, whose server programs are not "
            f"installed (found {installed}); install postgresql-{required_major} or delete the data "
            "folder to start afresh."
        )
    return found[required_major]


def postgres_command(action: str, settings: Settings) -> int:
    """`newsfeed postgres start|stop|status`: one line on stdout, errors on stderr; 0 on success."""
    server = LocalPostgres(settings.postgres)
    try:
        if action == "start":
            print(server.start().describe())  # noqa: T201 - a command's output
        elif action == "stop":
            print("postgres stopped" if server.stop() else "postgres was not running")  # noqa: T201
        elif action == "status":
            status = server.status()
            print(status.describe())  # noqa: T201
            return 0 if status.answering else 1
        else:
            raise ValueError(f"unknown postgres action {action!r}; use start, stop or status")
    except PostgresError as error:
        print(f"newsfeed postgres: {error}", file=sys.stderr)  # noqa: T201
        return 1
    return 0


def store_dsn(settings: Settings) -> str:
    """Where the PostgreSQL store connects: `store.postgres_dsn` when set, else the local server."""
    if settings.store.postgres_dsn is not None:
        return settings.store.postgres_dsn.get_secret_value()
    return LocalPostgres(settings.postgres).dsn()


@contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    with path.open("a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _major_version(bindir: Path) -> int | None:
    result = subprocess.run(
        [str(bindir / "initdb"), "--version"], capture_output=True, text=True, check=False
    )
    match = re.search(r"\)\s+(\d+)", result.stdout)
    return int(match.group(1)) if match else None


def _hba_address(host: str) -> str:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        # A host name: accept the server's own addresses only, which is where it listens anyway.
        return "samehost"
    return f"{address}/{address.max_prefixlen}"


def _conf_value(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _tail(text: str) -> str:
    return "\n".join(text.strip().splitlines()[-_LOG_LINES_IN_ERRORS:])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); its /proc state says it is gone.
    stat = Path(f"/proc/{pid}/stat")
    try:
        return ") Z" not in stat.read_text()
    except FileNotFoundError:
        return False


def _wait_for_exit(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return not _alive(pid)


def _is_postgres(pid: int) -> bool:
    """Guards against a stale postmaster.pid whose number now belongs to another program."""
    try:
        program = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0]
    except FileNotFoundError:
        return True
    return Path(program.decode(errors="replace")).name in ("postgres", "postmaster")
