"""The benchmarks' ledger databases: a SQLite file, or a scratch PostgreSQL database.

PostgreSQL: a database ``zkgrid_bench_<hex>`` is created on the admin URL
(``--pg-url``, default ``$ZKGRID_TEST_PG_URL`` or :data:`DEFAULT_PG_ADMIN_URL`)
and dropped (``WITH (FORCE)``) afterwards.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import URL, create_engine
from sqlalchemy.engine import make_url

__all__ = [
    "DEFAULT_PG_ADMIN_URL",
    "backend_url",
    "default_pg_admin_url",
    "psycopg_url",
    "scratch_database",
]

DEFAULT_PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def default_pg_admin_url() -> str:
    """``$ZKGRID_TEST_PG_URL``, else :data:`DEFAULT_PG_ADMIN_URL` (the ``--pg-url`` default)."""
    return os.environ.get("ZKGRID_TEST_PG_URL", DEFAULT_PG_ADMIN_URL)


def psycopg_url(url: str) -> URL:
    """``url`` parsed, with a bare ``postgresql``/``postgres`` driver pinned to psycopg 3."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


@contextmanager
def scratch_database(pg_admin: str) -> Iterator[str]:
    """Create ``zkgrid_bench_<hex>`` on the admin URL, yield its URL, drop it afterwards."""
    admin_url = psycopg_url(pg_admin)
    name = f"zkgrid_bench_{secrets.token_hex(6)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@contextmanager
def backend_url(backend: str, pg_admin: str, sqlite_path: Path) -> Iterator[str]:
    """The database URL of ``backend``: ``sqlite`` at ``sqlite_path``, else a scratch PostgreSQL."""
    if backend == "sqlite":
        yield f"sqlite:///{sqlite_path}"
        return
    with scratch_database(pg_admin) as url:
        yield url
