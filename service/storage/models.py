"""SQLModel tables of the ledger store.

* ``ledger_meta``: one row (id = 1) naming the log's origin; also the row the
  PostgreSQL backend locks (``SELECT ... FOR UPDATE``) to serialise appenders.
* ``ledger_entries``: one row per leaf: index, kind, payload, leaf hash, time.
* ``ledger_nodes``: every perfect subtree hash, keyed by (level, index), so an
  inclusion or consistency proof is one query of O(log n) primary-key reads.
* ``ledger_checkpoints``: one signed checkpoint per appended batch (and size 0).
* ``witness_cosignatures``: one witness's cosignature of the checkpoint of one
  tree size (:mod:`service.storage.cosignatures`; not part of the log, so not in
  :data:`TABLES`: created by the cosignature store, next to the log's tables).

Every table is append-only; see :mod:`service.storage.schema` for the triggers.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, DateTime, Integer, LargeBinary, SmallInteger, Table, Text
from sqlmodel import Field, SQLModel

# SQLite only makes ``INTEGER PRIMARY KEY`` a rowid alias (the fast clustered key).
_BIGINT = BigInteger().with_variant(Integer(), "sqlite")


class LedgerMeta(SQLModel, table=True):
    __tablename__ = "ledger_meta"

    id: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    origin: str = Field(sa_column=Column(Text, nullable=False))
    schema_version: int = Field(sa_column=Column(Integer, nullable=False))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class LedgerEntry(SQLModel, table=True):
    __tablename__ = "ledger_entries"

    idx: int = Field(sa_column=Column(_BIGINT, primary_key=True, autoincrement=False))
    kind: int = Field(sa_column=Column(SmallInteger, nullable=False))
    payload: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    leaf_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class LedgerNode(SQLModel, table=True):
    __tablename__ = "ledger_nodes"
    __table_args__ = {"sqlite_with_rowid": False}

    level: int = Field(sa_column=Column(SmallInteger, primary_key=True, autoincrement=False))
    idx: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class LedgerCheckpoint(SQLModel, table=True):
    __tablename__ = "ledger_checkpoints"

    size: int = Field(sa_column=Column(_BIGINT, primary_key=True, autoincrement=False))
    root: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    note: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


META: Table = SQLModel.metadata.tables["ledger_meta"]
ENTRIES: Table = SQLModel.metadata.tables["ledger_entries"]
NODES: Table = SQLModel.metadata.tables["ledger_nodes"]
CHECKPOINTS: Table = SQLModel.metadata.tables["ledger_checkpoints"]
TABLES: tuple[Table, ...] = (META, ENTRIES, NODES, CHECKPOINTS)


class WitnessCosignatureRow(SQLModel, table=True):
    """One witness's cosignature of the checkpoint of one tree size (append-only)."""

    __tablename__ = "witness_cosignatures"

    tree_size: int = Field(sa_column=Column(_BIGINT, primary_key=True, autoincrement=False))
    witness_name: str = Field(sa_column=Column(Text, primary_key=True))
    signature: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    received_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


COSIGNATURES: Table = SQLModel.metadata.tables["witness_cosignatures"]
