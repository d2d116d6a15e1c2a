"""Database-level defence in depth, and the start-up self-check catching what gets past it.

The guarantee is the cryptography, not the triggers: these tests show both that
the triggers refuse rewrites made with plain SQL through the engine, and that a
rewrite made behind their back (trigger dropped) is caught when the store opens.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from ledger.checkpoint import CheckpointSigner
from ledger.entries import EntryKind, encode_entry
from ledger.merkle import leaf_hash, node_hash
from service.storage import LedgerStore, StoreIntegrityError, open_store
from service.storage.schema import APPEND_ONLY_MARKER

TABLES = ("ledger_meta", "ledger_entries", "ledger_nodes", "ledger_checkpoints")


def _filled(url: str, signer: CheckpointSigner, origin: str) -> LedgerStore:
    s = open_store(url, signer, origin)
    s.append_batch([(EntryKind.READING_BATCH, f"reading {i}".encode()) for i in range(5)])
    s.append(EntryKind.BILL, b"bill 5")
    return s


@pytest.fixture
def store(
    durable_ledger_url: str, ledger_signer: CheckpointSigner, ledger_origin: str
) -> Iterator[Any]:
    with _filled(durable_ledger_url, ledger_signer, ledger_origin) as s:
        yield s


@pytest.fixture
def sqlite_store(
    tmp_path: Path, ledger_signer: CheckpointSigner, ledger_origin: str
) -> Iterator[Any]:
    with _filled(f"sqlite:///{tmp_path / 'ledger.db'}", ledger_signer, ledger_origin) as s:
        yield s


@pytest.fixture
def pg_store(
    pg_schema_url: str, ledger_signer: CheckpointSigner, ledger_origin: str
) -> Iterator[Any]:
    with _filled(pg_schema_url, ledger_signer, ledger_origin) as s:
        yield s


def _refused(engine: Engine, sql: str, params: dict[str, Any] | None = None) -> None:
    with pytest.raises(DBAPIError) as info, engine.begin() as conn:
        conn.execute(text(sql), params or {})
    assert APPEND_ONLY_MARKER in str(info.value)


def _unchanged(store: LedgerStore) -> None:
    assert store.verify_integrity(full=True).size == 6


def _drop_triggers(engine: Engine, table: str) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            names = conn.execute(
                text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"),
                {"t": table},
            ).scalars()
            for name in list(names):
                conn.exec_driver_sql(f"DROP TRIGGER {name}")
        else:
            names = conn.execute(
                text(
                    "SELECT tgname FROM pg_trigger WHERE tgrelid = to_regclass(:t)"
                    " AND NOT tgisinternal"
                ),
                {"t": table},
            ).scalars()
            for name in list(names):
                conn.exec_driver_sql(f"DROP TRIGGER {name} ON {table}")


# --------------------------------------------------------------------------- refused writes


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE ledger_entries SET payload = :b WHERE idx = 2",
        "UPDATE ledger_entries SET kind = 5",
        "UPDATE ledger_nodes SET hash = :b WHERE level = 0 AND idx = 0",
        "UPDATE ledger_checkpoints SET note = 'forged' WHERE size = 6",
        "UPDATE ledger_meta SET origin = 'other'",
    ],
)
def test_update_is_refused(store: LedgerStore, sql: str) -> None:
    _refused(store.engine, sql, {"b": b"\x00" * 32})
    _unchanged(store)


@pytest.mark.parametrize("table", TABLES)
def test_delete_is_refused(store: LedgerStore, table: str) -> None:
    _refused(store.engine, f"DELETE FROM {table}")
    _unchanged(store)


def test_delete_of_the_last_entry_is_refused(store: LedgerStore) -> None:
    _refused(store.engine, "DELETE FROM ledger_entries WHERE idx = 5")
    _refused(store.engine, "DELETE FROM ledger_checkpoints WHERE size = 6")
    _unchanged(store)


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        # a gap
        (
            "INSERT INTO ledger_entries (idx, kind, payload, leaf_hash, created_at)"
            " VALUES (9, 5, :b, :b, CURRENT_TIMESTAMP)",
            {"b": b"x" * 32},
        ),
        # an existing index (primary key or trigger: refused either way, checked below)
        (
            "INSERT INTO ledger_nodes (level, idx, hash) VALUES (1, 7, :b)",
            {"b": b"x" * 32},
        ),
        (
            "INSERT INTO ledger_checkpoints (size, root, note, created_at)"
            " VALUES (3, :b, 'old size', CURRENT_TIMESTAMP)",
            {"b": b"x" * 32},
        ),
        (
            "INSERT INTO ledger_meta (id, origin, schema_version, created_at)"
            " VALUES (2, 'x', 1, CURRENT_TIMESTAMP)",
            {},
        ),
    ],
)
def test_out_of_order_insert_is_refused(
    store: LedgerStore, sql: str, params: dict[str, Any]
) -> None:
    _refused(store.engine, sql, params)
    _unchanged(store)


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT OR REPLACE INTO ledger_entries (idx, kind, payload, leaf_hash, created_at)"
        " VALUES (2, 5, :b, :b, CURRENT_TIMESTAMP)",
        "REPLACE INTO ledger_nodes (level, idx, hash) VALUES (0, 2, :b)",
        "REPLACE INTO ledger_checkpoints (size, root, note, created_at)"
        " VALUES (6, :b, 'forged', CURRENT_TIMESTAMP)",
        "INSERT OR REPLACE INTO ledger_meta (id, origin, schema_version, created_at)"
        " VALUES (1, 'other', 1, CURRENT_TIMESTAMP)",
        "UPDATE OR REPLACE ledger_entries SET idx = 1 WHERE idx = 2",
    ],
)
def test_sqlite_replace_is_refused(sqlite_store: LedgerStore, sql: str) -> None:
    store = sqlite_store
    _refused(store.engine, sql, {"b": b"y" * 32})
    _unchanged(store)


def test_sqlite_replace_is_refused_even_without_the_insert_trigger(
    sqlite_store: LedgerStore,
) -> None:
    """recursive_triggers=ON: the delete half of a REPLACE fires the delete trigger."""
    store = sqlite_store
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER ledger_entries_next_only")
    _refused(
        store.engine,
        "INSERT OR REPLACE INTO ledger_entries (idx, kind, payload, leaf_hash, created_at)"
        " VALUES (2, 5, :b, :b, CURRENT_TIMESTAMP)",
        {"b": b"y" * 32},
    )


@pytest.mark.postgres
@pytest.mark.parametrize("table", TABLES)
def test_postgres_truncate_is_refused(pg_store: LedgerStore, table: str) -> None:
    store = pg_store
    _refused(store.engine, f"TRUNCATE {table} CASCADE")
    _unchanged(store)


@pytest.mark.postgres
def test_postgres_upsert_is_refused(pg_store: LedgerStore) -> None:
    store = pg_store
    # An existing row: the UPDATE half is refused.
    _refused(
        store.engine,
        "INSERT INTO ledger_nodes (level, idx, hash) VALUES (0, 2, :b)"
        " ON CONFLICT (level, idx) DO UPDATE SET hash = EXCLUDED.hash",
        {"b": b"y" * 32},
    )
    _unchanged(store)


# ----------------------------------------------------------------- behind the triggers' back


def _reopen(url: str, signer: CheckpointSigner, origin: str, check: str = "full") -> LedgerStore:
    return open_store(url, signer, origin, startup_check=check)  # type: ignore[arg-type]


def test_payload_altered_behind_the_triggers_is_detected_at_start_up(
    durable_ledger_url: str,
    store: LedgerStore,
    ledger_signer: CheckpointSigner,
    ledger_origin: str,
) -> None:
    _drop_triggers(store.engine, "ledger_entries")
    with store.engine.begin() as conn:
        conn.execute(
            text("UPDATE ledger_entries SET payload = :p WHERE idx = 2"), {"p": b"reading 9999"}
        )
    store.close()
    with pytest.raises(StoreIntegrityError) as info:
        _reopen(durable_ledger_url, ledger_signer, ledger_origin)
    assert "entry 2" in str(info.value)
    assert info.value.reason == "STORE_INTEGRITY"


def test_a_consistently_rebuilt_tree_is_detected_by_the_signed_root(
    durable_ledger_url: str,
    store: LedgerStore,
    ledger_signer: CheckpointSigner,
    ledger_origin: str,
) -> None:
    """An attacker who rewrites an entry, its leaf hash and every node still lacks the key."""
    forged = [store.entry(i) for i in range(6)]
    leaves = [e.leaf_hash for e in forged]
    leaves[2] = leaf_hash(encode_entry(EntryKind.READING_BATCH, b"forged"))
    for table in ("ledger_entries", "ledger_nodes"):
        _drop_triggers(store.engine, table)
    levels = [leaves]
    while len(levels[-1]) > 1:
        prev = levels[-1]
        levels.append([node_hash(prev[i], prev[i + 1]) for i in range(0, len(prev) - 1, 2)])
    with store.engine.begin() as conn:
        conn.execute(
            text("UPDATE ledger_entries SET payload = :p, leaf_hash = :h WHERE idx = 2"),
            {"p": b"forged", "h": leaves[2]},
        )
        for level, hashes in enumerate(levels):
            for index, h in enumerate(hashes):
                conn.execute(
                    text("UPDATE ledger_nodes SET hash = :h WHERE level = :l AND idx = :i"),
                    {"h": h, "l": level, "i": index},
                )
    # The live store refuses to append (and so to sign) on top of it.
    with pytest.raises(StoreIntegrityError):
        store.append(EntryKind.BILL, b"on top of a forgery")
    store.close()
    for check in ("quick", "full"):
        with pytest.raises(StoreIntegrityError) as info:
            _reopen(durable_ledger_url, ledger_signer, ledger_origin, check)
        assert "recomputed root does not match the last checkpoint" in str(info.value)


def test_a_forged_checkpoint_is_detected(
    durable_ledger_url: str,
    store: LedgerStore,
    ledger_signer: CheckpointSigner,
    ledger_origin: str,
) -> None:
    note = store.latest_checkpoint().to_text()
    lines = note.split("\n")
    lines[1] = "7"  # claim one more entry, keep the signature
    _drop_triggers(store.engine, "ledger_checkpoints")
    with store.engine.begin() as conn:
        conn.execute(
            text("UPDATE ledger_checkpoints SET note = :n WHERE size = 6"), {"n": "\n".join(lines)}
        )
    store.close()
    with pytest.raises(StoreIntegrityError) as info:
        _reopen(durable_ledger_url, ledger_signer, ledger_origin, "quick")
    assert "does not verify" in str(info.value)


def test_a_deleted_tail_is_detected(
    durable_ledger_url: str,
    store: LedgerStore,
    ledger_signer: CheckpointSigner,
    ledger_origin: str,
) -> None:
    _drop_triggers(store.engine, "ledger_entries")
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM ledger_entries WHERE idx = 5")
    store.close()
    with pytest.raises(StoreIntegrityError) as info:
        _reopen(durable_ledger_url, ledger_signer, ledger_origin, "quick")
    assert "does not match the last checkpoint size 6" in str(info.value)


def test_an_altered_middle_payload_is_only_caught_by_the_full_check(
    durable_ledger_url: str,
    store: LedgerStore,
    ledger_signer: CheckpointSigner,
    ledger_origin: str,
) -> None:
    """Documented trade-off: ``quick`` is O(log n) and does not re-hash payloads."""
    _drop_triggers(store.engine, "ledger_entries")
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE ledger_entries SET payload = :p WHERE idx = 1"), {"p": b"z"})
    store.close()
    with (
        _reopen(durable_ledger_url, ledger_signer, ledger_origin, "quick") as s,
        pytest.raises(StoreIntegrityError),
    ):
        s.verify_integrity(full=True)
