"""Schema creation and the append-only triggers (defence in depth).

The ledger's guarantee is the cryptography, not the triggers: every entry is a
leaf of an RFC 6962 Merkle tree whose roots are signed in checkpoints, so any
rewrite of history is detected by a consistency proof or by the start-up
self-check. The triggers only make an accidental or careless rewrite fail
loudly at the database: anyone who controls the database can drop them.

SQLite: ``BEFORE UPDATE`` and ``BEFORE DELETE`` triggers refuse every change
on the four tables; ``BEFORE INSERT`` triggers refuse any index other than the
next one (so ``INSERT OR REPLACE`` cannot rewrite a row), and connections set
``PRAGMA recursive_triggers=ON`` so the delete half of a REPLACE fires the
delete trigger too.

PostgreSQL: row-level ``BEFORE UPDATE OR DELETE`` triggers, a statement-level
``BEFORE TRUNCATE`` trigger, and the same next-index ``BEFORE INSERT`` check.

The witnesses' ``witness_cosignatures`` table (not part of the log) gets the
``UPDATE``/``DELETE``/``TRUNCATE`` refusals only: cosignatures arrive in any
order (:func:`install_cosignature_triggers`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, CursorResult

#: Marker found in every trigger's error message (tests and error mapping use it).
APPEND_ONLY_MARKER = "zkgrid: append-only"

SCHEMA_VERSION = 1

_TABLES = ("ledger_meta", "ledger_entries", "ledger_nodes", "ledger_checkpoints")

# (table, SQL expression that must hold for NEW to be the next row)
_NEXT_ROW_SQLITE = {
    "ledger_meta": "NEW.id = 1 AND NOT EXISTS (SELECT 1 FROM ledger_meta)",
    "ledger_entries": (
        "NEW.idx = COALESCE((SELECT idx FROM ledger_entries ORDER BY idx DESC LIMIT 1) + 1, 0)"
    ),
    "ledger_nodes": (
        "NEW.idx = COALESCE((SELECT n.idx FROM ledger_nodes n WHERE n.level = NEW.level"
        " ORDER BY n.idx DESC LIMIT 1) + 1, 0)"
    ),
    "ledger_checkpoints": (
        "NEW.size > COALESCE((SELECT size FROM ledger_checkpoints ORDER BY size DESC LIMIT 1), -1)"
    ),
}


def sqlite_trigger_ddl() -> list[str]:
    """The SQLite triggers, idempotent (``IF NOT EXISTS``)."""
    ddl: list[str] = []
    for table in _TABLES:
        for op in ("UPDATE", "DELETE"):
            ddl.append(
                f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MARKER}: {op} on {table} refused'); END"
            )
        ddl.append(
            f"CREATE TRIGGER IF NOT EXISTS {table}_next_only BEFORE INSERT ON {table} "
            f"WHEN NOT ({_NEXT_ROW_SQLITE[table]}) "
            f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MARKER}: out-of-order INSERT on {table}"
            " refused'); END"
        )
    return ddl


# Every SQL string below is built from module constants only (no caller input).
_PG_FUNCTIONS = [
    f"""
CREATE OR REPLACE FUNCTION zkgrid_ledger_refuse() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '{APPEND_ONLY_MARKER}: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'raise_exception';
END
$$""",
    f"""
CREATE OR REPLACE FUNCTION zkgrid_ledger_next_only() RETURNS trigger
LANGUAGE plpgsql VOLATILE AS $$
DECLARE ok boolean;
BEGIN
    IF TG_TABLE_NAME = 'ledger_entries' THEN
        ok := NEW.idx = COALESCE(
            (SELECT e.idx FROM ledger_entries e ORDER BY e.idx DESC LIMIT 1) + 1, 0);
    ELSIF TG_TABLE_NAME = 'ledger_nodes' THEN
        ok := NEW.idx = COALESCE(
            (SELECT n.idx FROM ledger_nodes n WHERE n.level = NEW.level
             ORDER BY n.idx DESC LIMIT 1) + 1, 0);
    ELSIF TG_TABLE_NAME = 'ledger_checkpoints' THEN
        ok := NEW.size > COALESCE(
            (SELECT c.size FROM ledger_checkpoints c ORDER BY c.size DESC LIMIT 1), -1);
    ELSE
        ok := NEW.id = 1 AND NOT EXISTS (SELECT 1 FROM ledger_meta);
    END IF;
    IF NOT ok THEN
        RAISE EXCEPTION '{APPEND_ONLY_MARKER}: out-of-order INSERT on % refused',
            TG_TABLE_NAME USING ERRCODE = 'raise_exception';
    END IF;
    RETURN NEW;
END
$$""",  # noqa: S608 -- constants only
]


def _pg_triggers() -> dict[str, str]:
    triggers: dict[str, str] = {}
    for table in _TABLES:
        triggers[f"{table}_no_update_delete"] = (
            f"CREATE TRIGGER {table}_no_update_delete BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION zkgrid_ledger_refuse()"
        )
        triggers[f"{table}_no_truncate"] = (
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION zkgrid_ledger_refuse()"
        )
        triggers[f"{table}_next_only"] = (
            f"CREATE TRIGGER {table}_next_only BEFORE INSERT ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION zkgrid_ledger_next_only()"
        )
    return triggers


def install_triggers(conn: Connection) -> None:
    """Create whichever append-only triggers are missing, inside the caller's transaction."""
    if conn.dialect.name == "sqlite":
        for stmt in sqlite_trigger_ddl():
            conn.exec_driver_sql(stmt)
        return
    existing = {
        row[0]
        for row in _pg_exec(
            conn,
            "SELECT t.tgname FROM pg_trigger t WHERE NOT t.tgisinternal AND t.tgrelid IN ("
            "to_regclass('ledger_meta'), to_regclass('ledger_entries'),"
            " to_regclass('ledger_nodes'), to_regclass('ledger_checkpoints'))",
        )
    }
    wanted = _pg_triggers()
    missing = [name for name in wanted if name not in existing]
    if not missing:
        return
    for fn in _PG_FUNCTIONS:
        _pg_exec(conn, fn)
    for name in missing:
        _pg_exec(conn, wanted[name])


def _pg_exec(conn: Connection, sql: str) -> CursorResult[Any]:
    # psycopg treats '%' as a placeholder marker even without parameters.
    return conn.exec_driver_sql(sql.replace("%", "%%"))


# ----------------------------------------------------------------------------- cosignatures

_COSIGNATURES = "witness_cosignatures"

_SQLITE_COSIGNATURE_TRIGGERS = [
    f"CREATE TRIGGER IF NOT EXISTS {_COSIGNATURES}_no_{op.lower()} BEFORE {op} ON"
    f" {_COSIGNATURES} BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MARKER}: {op} on"
    f" {_COSIGNATURES} refused'); END"
    for op in ("UPDATE", "DELETE")
]
_PG_COSIGNATURE_TRIGGERS = {
    f"{_COSIGNATURES}_no_update_delete": (
        f"CREATE TRIGGER {_COSIGNATURES}_no_update_delete BEFORE UPDATE OR DELETE ON"
        f" {_COSIGNATURES} FOR EACH ROW EXECUTE FUNCTION zkgrid_ledger_refuse()"
    ),
    f"{_COSIGNATURES}_no_truncate": (
        f"CREATE TRIGGER {_COSIGNATURES}_no_truncate BEFORE TRUNCATE ON"
        f" {_COSIGNATURES} FOR EACH STATEMENT EXECUTE FUNCTION zkgrid_ledger_refuse()"
    ),
}


def install_cosignature_triggers(conn: Connection) -> None:
    """Create whichever ``witness_cosignatures`` triggers are missing (the caller's
    transaction; on PostgreSQL the log's ``zkgrid_ledger_refuse()`` must exist: the
    ledger store creates it before anything else)."""
    if conn.dialect.name == "sqlite":
        for ddl in _SQLITE_COSIGNATURE_TRIGGERS:
            conn.exec_driver_sql(ddl)
        return
    existing = {
        row[0]
        for row in conn.exec_driver_sql(
            "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
            " AND tgrelid = to_regclass('witness_cosignatures')"
        )
    }
    for name, ddl in _PG_COSIGNATURE_TRIGGERS.items():
        if name not in existing:
            conn.exec_driver_sql(ddl)
