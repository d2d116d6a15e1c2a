"""docs/operations.md, "PostgreSQL", run as written: the three SQL blocks (roles and
database; schema and search paths; the service role's grants after the owner's first
start) give a role that can serve (full start-up check, appends, witness cosignatures)
and that can neither rewrite nor drop anything.

The names in the blocks (database zkgrid, roles zkgrid_owner and zkgrid_service) are
made unique per run; nothing else is changed.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import ProgrammingError

from ledger.checkpoint import CheckpointSigner
from ledger.entries import EntryKind
from service.storage import CosignatureStore, open_store
from service.witnesses import Witnesses

pytestmark = pytest.mark.postgres

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def _blocks() -> dict[str, str]:
    """The doc's ```sql blocks, keyed by their first line's number (``-- 1.`` ...)."""
    found = {}
    for block in re.findall(r"```sql\n(.*?)```", DOC.read_text(), re.DOTALL):
        match = re.match(r"-- (\d)\.", block)
        if match:
            found[match.group(1)] = block
    return found


def _statements(block: str, names: dict[str, str]) -> list[str]:
    sql = re.sub(r"--[^\n]*", "", block)
    for word, unique in names.items():
        sql = re.sub(rf"\b{word}\b", unique, sql)
    return [s.strip() for s in sql.split(";") if s.strip()]


@pytest.fixture
def names(pg_admin_url: URL) -> Iterator[dict[str, str]]:
    tag = secrets.token_hex(4)
    unique = {
        "zkgrid_owner": f"zkgrid_owner_{tag}",
        "zkgrid_service": f"zkgrid_service_{tag}",
        "zkgrid": f"zkgrid_ops_{tag}",
    }
    yield unique
    admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{unique["zkgrid"]}" WITH (FORCE)')
            for role in (unique["zkgrid_service"], unique["zkgrid_owner"]):
                conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{role}"')
    finally:
        admin.dispose()


def _run(url: URL, statements: list[str]) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


def test_the_documented_rights_serve_and_forbid_rewrites(
    pg_admin_url: URL, names: dict[str, str], ledger_signer: CheckpointSigner, ledger_origin: str
) -> None:
    blocks = _blocks()
    assert sorted(blocks) == ["1", "2", "3"]
    database = names["zkgrid"]
    _run(pg_admin_url, _statements(blocks["1"], names))
    _run(pg_admin_url.set(database=database), _statements(blocks["2"], names))

    def as_role(role: str) -> str:
        url = pg_admin_url.set(username=names[role], password=None, database=database)
        return url.render_as_string(hide_password=False)

    # The owner's first start: the ledger's tables, triggers and first checkpoint, and
    # the witnesses' table (what `zkgrid serve` creates).
    with open_store(as_role("zkgrid_owner"), ledger_signer, ledger_origin) as first:
        Witnesses(first)
        assert first.size() == 0
    _run(pg_admin_url.set(database=database), _statements(blocks["3"], names))

    with open_store(as_role("zkgrid_service"), ledger_signer, ledger_origin,
                    startup_check="full") as store:  # fmt: skip
        store.append(EntryKind.TARIFF, b"appended by the service role")
        store.append_batch([(EntryKind.READING_BATCH, b"a"), (EntryKind.BILL, b"b")])
        assert store.size() == 3
        assert store.head()[0] == 3
        assert CosignatureStore(store).add(3, "witness-a", b"\x01" * 96).recorded
        store.verify_integrity(full=True)

        refused = [
            "UPDATE ledger_entries SET payload = 'x'",
            "DELETE FROM ledger_checkpoints",
            "TRUNCATE ledger_nodes",
            "UPDATE witness_cosignatures SET signature = 'x'",
            "DROP TRIGGER ledger_entries_no_update_delete ON ledger_entries",
            "ALTER TABLE ledger_entries DISABLE TRIGGER ALL",
            "DROP TABLE ledger_entries",
            "CREATE TABLE stray (id int)",
            "CREATE TABLE public.stray (id int)",
        ]
        for statement in refused:
            with store.engine.connect() as conn, pytest.raises(ProgrammingError) as info:
                conn.execute(text(statement))
            message = str(info.value.orig)
            assert "permission denied" in message or "must be owner" in message, statement
        assert store.size() == 3
