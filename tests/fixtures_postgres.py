"""Fixtures for the local PostgreSQL server: the tests' own server and a fresh database per test."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from pipeline.ops.postgres import LocalPostgres
from pipeline.settings import load_settings

DROP_ATTEMPTS = 5


@pytest.fixture(scope="session")
def postgres_server() -> LocalPostgres:
    """Make sure the project's server runs (starting it if needed); like the broker, it is left running."""
    server = LocalPostgres(load_settings().postgres)
    server.start()
    return server


@pytest.fixture
def postgres_dsn(postgres_server: LocalPostgres, request: pytest.FixtureRequest) -> Iterator[str]:
    """The DSN of a database no other test shares, dropped afterwards."""
    slug = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:40].strip("_")
    database = f"t_{slug}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_server.dsn(), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    yield postgres_server.dsn(database)
    # A test may have stopped and restarted the server; make sure it is up to clean after itself.
    postgres_server.start()
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
    with psycopg.connect(postgres_server.dsn(), autocommit=True) as admin:
        # FORCE ends sessions a failed test left open; a sink still retrying may connect again meanwhile.
        for attempt in range(DROP_ATTEMPTS):
            try:
                admin.execute(drop)
                break
            except psycopg.errors.ObjectInUse:
                if attempt == DROP_ATTEMPTS - 1:
                    raise
                time.sleep(1.0)
