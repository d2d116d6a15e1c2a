"""Shared fixtures.

``pg_schema_url``: the same database with a fresh schema first on the
``search_path``, one per test, so every test starts from an empty ledger.

``pg_url``: a fresh PostgreSQL database for the test session.
``ZKGRID_TEST_PG_URL`` is the *admin* URL (default
``postgresql://postgres@127.0.0.1:5432/postgres``); the fixture creates
``zkgrid_test_<random hex>`` on that server, yields its URL and drops it at the
end (terminating leftover connections). When the server is unreachable the
PostgreSQL tests are skipped with the reason, except when the ``CI``
environment variable is set: then they fail, PostgreSQL tests never skip in CI.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError

DEFAULT_PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _psycopg_url(url: str) -> URL:
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is required in CI (CI is set): {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL unavailable, set ZKGRID_TEST_PG_URL: {reason}")


@pytest.fixture(scope="session")
def pg_admin_url() -> URL:
    return _psycopg_url(os.environ.get("ZKGRID_TEST_PG_URL", DEFAULT_PG_ADMIN_URL))


@pytest.fixture(scope="session")
def pg_url(pg_admin_url: URL) -> Iterator[str]:
    """URL of a fresh database, created for this session and dropped after it."""
    name = f"zkgrid_test_{secrets.token_hex(6)}"
    admin = create_engine(
        pg_admin_url,
        isolation_level="AUTOCOMMIT",
        connect_args={"connect_timeout": 5},
    )
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except SQLAlchemyError as exc:
        admin.dispose()
        where = pg_admin_url.render_as_string(hide_password=True)
        _unavailable(f"{where}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    try:
        yield pg_admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def pg_schema_url(pg_url: str) -> Iterator[str]:
    """``pg_url`` with a fresh, empty schema first on the search_path (one per test)."""
    schema = f"t_{secrets.token_hex(6)}"
    engine = create_engine(_psycopg_url(pg_url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        yield (
            _psycopg_url(pg_url)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    finally:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        engine.dispose()


# --------------------------------------------------------------------------- ledger store backends

_DURABLE_BACKENDS = ["sqlite-file", pytest.param("postgres", marks=pytest.mark.postgres)]


def _backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    backend = request.param
    if backend == "sqlite-file":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    if backend == "sqlite-memory":
        return "sqlite://"
    return str(request.getfixturevalue("pg_schema_url"))


@pytest.fixture(params=["sqlite-file", "sqlite-memory", *_DURABLE_BACKENDS[1:]])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL for an empty ledger store on every backend (SQLite file, SQLite memory, PostgreSQL)."""
    return _backend_url(request, tmp_path)


@pytest.fixture(params=_DURABLE_BACKENDS)
def durable_ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Like ``ledger_url`` but only backends that outlive the store (reopen, replicas, crashes)."""
    return _backend_url(request, tmp_path)


#: Origin line of the test ledgers' checkpoints.
TEST_LEDGER_ORIGIN = "zkgrid.test/ledger"
#: Fixed Ed25519 seed of the test ledgers' checkpoint key (also used by subprocesses).
TEST_LEDGER_KEY_SEED = bytes(range(32))


@pytest.fixture(scope="session")
def ledger_signer() -> Any:
    """The test ledgers' checkpoint signer (a ``ledger.checkpoint.CheckpointSigner``)."""
    from ledger.checkpoint import CheckpointSigner

    return CheckpointSigner.from_private_bytes("zkgrid-test", TEST_LEDGER_KEY_SEED)


@pytest.fixture(scope="session")
def ledger_origin() -> str:
    return TEST_LEDGER_ORIGIN
