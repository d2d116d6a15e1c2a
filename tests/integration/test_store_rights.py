"""A database that refuses writes is STORE_UNAVAILABLE, and the store recovers when the
right returns (issue 10, section 3).

PostgreSQL: the store runs as a role without superuser rights (``-crole=...``); an
administrator revokes its INSERT right mid-run: the append fails as
``StoreUnavailable`` (retryable, UNAVAILABLE on the wire), not a bare driver error
that the service would answer as INTERNAL; nothing is appended; after the grant the
next append succeeds on the same store, without a restart.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url

from ledger.checkpoint import CheckpointSigner
from ledger.entries import EntryKind
from service.interceptors import status_for_reason
from service.storage import open_store
from service.storage.errors import StoreUnavailable

pytestmark = pytest.mark.postgres


@pytest.fixture
def admin(pg_url: str) -> Iterator[Engine]:
    engine = create_engine(
        make_url(pg_url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    yield engine
    engine.dispose()


def test_a_revoked_insert_right_is_store_unavailable_and_recovers(
    pg_url: str, admin: Engine, ledger_signer: CheckpointSigner, ledger_origin: str
) -> None:
    schema = f"rights_{secrets.token_hex(4)}"
    tables = f'ALL TABLES IN SCHEMA "{schema}"'
    role = f"zkgrid_rights_{secrets.token_hex(4)}"
    base = make_url(pg_url).set(drivername="postgresql+psycopg")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        conn.exec_driver_sql(f'CREATE ROLE "{role}" NOLOGIN')
        conn.exec_driver_sql(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"')
    try:
        owner = base.update_query_dict({"options": f"-csearch_path={schema}"})
        with open_store(owner.render_as_string(hide_password=False), ledger_signer,
                        ledger_origin) as setup:  # fmt: skip
            setup.append(EntryKind.TARIFF, b"created by the owner")
        with admin.connect() as conn:
            conn.exec_driver_sql(
                f'GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"'
            )
        as_role = base.update_query_dict({"options": f"-csearch_path={schema} -crole={role}"})
        with open_store(as_role.render_as_string(hide_password=False), ledger_signer,
                        ledger_origin) as store:  # fmt: skip
            store.append(EntryKind.TARIFF, b"appended by the service's role")
            with admin.connect() as conn:
                conn.exec_driver_sql(f'REVOKE INSERT ON {tables} FROM "{role}"')
            with pytest.raises(StoreUnavailable) as refused:
                store.append(EntryKind.TARIFF, b"refused")
            assert status_for_reason(refused.value.reason).name == "UNAVAILABLE"
            assert store.size() == 2
            with admin.connect() as conn:
                conn.exec_driver_sql(f'GRANT INSERT ON {tables} TO "{role}"')
            store.append(EntryKind.TARIFF, b"after the grant")
            assert store.size() == 3
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{role}"')
