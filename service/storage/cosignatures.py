"""The witnesses' cosignatures, stored next to the ledger's tables (same database).

``witness_cosignatures`` (:mod:`service.storage.models`) holds one row per
(tree size, witness name): the 96-byte signature and when it was received. It
is append-only (:func:`service.storage.schema.install_cosignature_triggers`)
and it is not part of the log: a cosignature is about a checkpoint, it is not an
entry. This module stores and reads rows; what a cosignature must be before it
is stored (a checkpoint this service signed, a registered witness, a valid
signature) is :mod:`service.witnesses`'s to check. Database errors are mapped
as the log's are (:class:`~service.storage.errors.AppendOnlyViolation`,
:class:`~service.storage.errors.StoreUnavailable`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel

from service.storage.models import COSIGNATURES
from service.storage.schema import install_cosignature_triggers
from service.storage.store import LedgerStore, _db_errors

__all__ = ["CosignatureStore", "StoredCosignature"]

_C = COSIGNATURES.c
_PG_INIT_LOCK_KEY = 0x7A6B_7769_746E  # "zkwitn": serialises the table's creation


@dataclass(frozen=True, slots=True)
class StoredCosignature:
    """What :meth:`CosignatureStore.add` found or wrote for one (tree size, witness)."""

    signature: bytes  # the stored signature (the new one when ``recorded``)
    recorded: bool  # False: a row for this (size, name) was already there
    count: int  # rows stored for this size, after the call


class CosignatureStore:
    """The ``witness_cosignatures`` table of a :class:`LedgerStore`'s database.

    Creating one creates the table and its triggers if missing. Thread-safe (the
    store's :meth:`~LedgerStore.connection_guard` is held around each connection).
    """

    def __init__(self, store: LedgerStore) -> None:
        self._store = store
        self._sqlite = store.engine.dialect.name == "sqlite"
        with self._conn(write=True) as conn:
            if not self._sqlite:
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_INIT_LOCK_KEY})")
            SQLModel.metadata.create_all(conn, tables=[COSIGNATURES])
            install_cosignature_triggers(conn)

    @contextmanager
    def _conn(self, *, write: bool = False) -> Iterator[Connection]:
        with (
            self._store.connection_guard(),
            _db_errors("witness cosignatures"),
            self._store.engine.connect() as c,
        ):
            if self._sqlite and write:
                c = c.execution_options(zkgrid_begin="IMMEDIATE")
            with c.begin():
                yield c

    @staticmethod
    def _signature_in(conn: Connection, tree_size: int, name: str) -> bytes | None:
        row = conn.execute(
            select(_C.signature).where(_C.tree_size == tree_size, _C.witness_name == name)
        ).first()
        return None if row is None else bytes(row[0])

    @staticmethod
    def _count_in(conn: Connection, tree_size: int) -> int:
        return int(
            conn.execute(
                select(func.count()).select_from(COSIGNATURES).where(_C.tree_size == tree_size)
            ).scalar_one()
        )

    def signature(self, tree_size: int, name: str) -> bytes | None:
        """The stored signature of ``name`` for ``tree_size``, if any."""
        with self._conn() as conn:
            return self._signature_in(conn, tree_size, name)

    def count(self, tree_size: int) -> int:
        """How many cosignatures are stored for ``tree_size``."""
        with self._conn() as conn:
            return self._count_in(conn, tree_size)

    def add(self, tree_size: int, name: str, signature: bytes) -> StoredCosignature:
        """Insert the row unless one for (``tree_size``, ``name``) exists (then it is
        returned unchanged, ``recorded=False``): rows are never replaced."""
        try:
            with self._conn(write=True) as conn:
                existing = self._signature_in(conn, tree_size, name)
                if existing is not None:
                    return StoredCosignature(existing, False, self._count_in(conn, tree_size))
                conn.execute(
                    insert(COSIGNATURES),
                    {
                        "tree_size": tree_size,
                        "witness_name": name,
                        "signature": signature,
                        "received_at": datetime.now(UTC),
                    },
                )
                return StoredCosignature(signature, True, self._count_in(conn, tree_size))
        except IntegrityError:  # a concurrent insert of the same (size, name)
            with self._conn() as conn:
                existing = self._signature_in(conn, tree_size, name)
                if existing is None:
                    raise
                return StoredCosignature(existing, False, self._count_in(conn, tree_size))

    def of_size(self, tree_size: int) -> list[tuple[str, bytes]]:
        """The stored (witness name, signature) pairs of ``tree_size``, by name."""
        with self._conn() as conn:
            rows = conn.execute(
                select(_C.witness_name, _C.signature)
                .where(_C.tree_size == tree_size)
                .order_by(_C.witness_name)
            ).all()
        return [(str(r[0]), bytes(r[1])) for r in rows]

    def latest_size(self) -> int | None:
        """The largest tree size with a stored cosignature (``None``: none is stored)."""
        with self._conn() as conn:
            value = conn.execute(select(func.max(_C.tree_size))).scalar_one()
        return None if value is None else int(value)
