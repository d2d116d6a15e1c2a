"""The prosumer's local opening store: values, blindings and submitted records.

One SQLite file per meter home (``openings.db``), created with mode 0600 in a
directory with mode 0700; a store (or directory) that group or others can read
or write is refused with :class:`InsecurePermissionsError`, as is one owned by
another user (the checks are :mod:`zkgrid._internal.files`, re-exported here). It keeps, per period:

* the openings of the batch: the 2T values ``[import_0, export_0, ...]`` and
  their blindings (never sent anywhere: only the commitments leave this package);
* the encoded ``ReadingBatch`` submitted for it, its hash and sequence, whether
  the service accepted it and the receipt it returned;
* the bill proven for it and its receipt;

and, per billing cycle (``first_period..last_period``, record version 2), the cycle bill
proven over the cycle's batches and its receipt (table ``cycle_bills``, added by schema
version 2: an older store gains the empty table when it is opened, and reads as before).

A batch is first stored ``pending`` (before it is sent) so that a crash between
building and submitting resubmits the identical batch instead of building a
second one for the same sequence; it becomes ``accepted`` with the receipt.
"""

from __future__ import annotations

import contextlib
import sqlite3
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from zkgrid._internal.files import (
    InsecurePermissionsError,
    check_private_dir,
    check_private_file,
    ensure_private_dir,
)
from zkgrid._internal.files import write_new_private as write_private_file
from zkgrid.errors import Reason, ZkgridError

__all__ = [
    "BatchStatus",
    "InsecurePermissionsError",
    "MergeResult",
    "OpeningStore",
    "OpeningStoreError",
    "StoredBatch",
    "StoredBill",
    "StoredCycleBill",
    "check_private_dir",
    "check_private_file",
    "ensure_private_dir",
    "write_private_file",
]

BatchStatus = Literal["pending", "accepted"]
_BLINDING_BYTES = 32
_VALUE = struct.Struct(">I")
#: Version 2 adds the ``cycle_bills`` table (an older store is upgraded when opened).
_SCHEMA_VERSION = "2"


class OpeningStoreError(ZkgridError):
    """The local opening store is inconsistent or was asked for something it cannot do."""

    reason = Reason.OPENING_STORE


def _pack_values(values: Sequence[int]) -> bytes:
    return b"".join(_VALUE.pack(v) for v in values)


def _unpack_values(data: bytes) -> tuple[int, ...]:
    return tuple(v for (v,) in _VALUE.iter_unpack(data))


def _pack_blindings(blindings: Sequence[int]) -> bytes:
    return b"".join(b.to_bytes(_BLINDING_BYTES, "big") for b in blindings)


def _unpack_blindings(data: bytes) -> tuple[int, ...]:
    return tuple(
        int.from_bytes(data[i : i + _BLINDING_BYTES], "big")
        for i in range(0, len(data), _BLINDING_BYTES)
    )


def _opt_bytes(value: object) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise OpeningStoreError("the opening store holds a value that is not a blob")


@dataclass(frozen=True)
class StoredBatch:
    """A period's batch as kept locally; ``values``/``blindings`` are hidden from ``repr``."""

    period: str
    sequence: int
    interval_minutes: int
    values: tuple[int, ...] = field(repr=False)
    blindings: tuple[int, ...] = field(repr=False)
    batch: bytes = field(repr=False)
    batch_hash: bytes
    status: BatchStatus
    receipt: bytes | None = field(default=None, repr=False)

    @property
    def imports(self) -> tuple[int, ...]:
        return self.values[0::2]

    @property
    def exports(self) -> tuple[int, ...]:
        return self.values[1::2]


@dataclass(frozen=True)
class StoredBill:
    period: str
    bill: bytes = field(repr=False)
    total: int
    receipt: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class StoredCycleBill:
    """A billing cycle's bill (an encoded :class:`~settlement.records.CycleBill`) as kept
    locally, with its receipt once the service accepted it."""

    first_period: str
    last_period: str
    bill: bytes = field(repr=False)
    total: int
    receipt: bytes | None = field(default=None, repr=False)

    @property
    def cycle(self) -> str:
        """``first..last``, as messages name the cycle."""
        return f"{self.first_period}..{self.last_period}"


def _same_openings(a: StoredBatch, b: StoredBatch) -> bool:
    """The same batch and openings (its status and receipt may differ)."""
    return (
        a.period == b.period
        and a.sequence == b.sequence
        and a.interval_minutes == b.interval_minutes
        and a.values == b.values
        and a.blindings == b.blindings
        and a.batch == b.batch
        and a.batch_hash == b.batch_hash
    )


@dataclass(frozen=True)
class MergeResult:
    """What :meth:`OpeningStore.merge` did, per table: rows added, rows already there,
    rows replaced (``force``), and rows that only gained an acceptance or a receipt."""

    batches_added: int = 0
    batches_unchanged: int = 0
    batches_replaced: int = 0
    batches_updated: int = 0
    bills_added: int = 0
    bills_unchanged: int = 0
    bills_replaced: int = 0
    bills_updated: int = 0
    cycle_bills_added: int = 0
    cycle_bills_unchanged: int = 0
    cycle_bills_replaced: int = 0
    cycle_bills_updated: int = 0


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
    period TEXT PRIMARY KEY,
    sequence INTEGER NOT NULL UNIQUE,
    interval_minutes INTEGER NOT NULL,
    vals BLOB NOT NULL,
    blindings BLOB NOT NULL,
    batch BLOB NOT NULL,
    batch_hash BLOB NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'accepted')),
    receipt BLOB
);
CREATE TABLE IF NOT EXISTS bills (
    period TEXT PRIMARY KEY,
    bill BLOB NOT NULL,
    total INTEGER NOT NULL,
    receipt BLOB
);
CREATE TABLE IF NOT EXISTS cycle_bills (
    first_period TEXT NOT NULL,
    last_period TEXT NOT NULL,
    bill BLOB NOT NULL,
    total INTEGER NOT NULL,
    receipt BLOB,
    PRIMARY KEY (first_period, last_period)
);
"""
_CYCLE_COLUMNS = "first_period, last_period, bill, total, receipt"

_BATCH_COLUMNS = (
    "period, sequence, interval_minutes, vals, blindings, batch, batch_hash, status, receipt"
)


class OpeningStore:
    """The SQLite opening store of one meter (see the module docstring)."""

    FILENAME = "openings.db"

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self._path = Path(path)
        check_private_dir(self._path.parent)
        if not self._path.exists():
            if not create:
                raise OpeningStoreError(f"no opening store at {self._path}")
            write_private_file(self._path, b"")
        check_private_file(self._path)
        self._conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(_SCHEMA)
        self._conn.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
            " WHERE CAST(meta.value AS INTEGER) < CAST(excluded.value AS INTEGER)",
            (_SCHEMA_VERSION,),
        )
        for suffix in ("-journal", "-wal", "-shm"):
            side = Path(str(self._path) + suffix)
            if side.exists() and not side.is_symlink():
                side.chmod(0o600)

    @classmethod
    def in_home(cls, home: str | Path) -> OpeningStore:
        return cls(Path(home) / cls.FILENAME)

    @property
    def path(self) -> Path:
        return self._path

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> OpeningStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    # --- batches ---------------------------------------------------------------------

    @staticmethod
    def _batch_from_row(row: tuple[Any, ...]) -> StoredBatch:
        period, seq, minutes, vals, blindings, batch, batch_hash, status, receipt = row
        return StoredBatch(
            period=str(period),
            sequence=int(seq),
            interval_minutes=int(minutes),
            values=_unpack_values(bytes(vals)),
            blindings=_unpack_blindings(bytes(blindings)),
            batch=bytes(batch),
            batch_hash=bytes(batch_hash),
            status="accepted" if status == "accepted" else "pending",
            receipt=None if receipt is None else bytes(receipt),
        )

    def batch(self, period: str) -> StoredBatch | None:
        row = self._conn.execute(
            f"SELECT {_BATCH_COLUMNS} FROM batches WHERE period = ?",  # noqa: S608
            (period,),
        ).fetchone()
        return None if row is None else self._batch_from_row(row)

    def last_batch(self) -> StoredBatch | None:
        """The batch with the highest sequence (the chain's head, pending or accepted)."""
        row = self._conn.execute(
            f"SELECT {_BATCH_COLUMNS} FROM batches ORDER BY sequence DESC LIMIT 1"  # noqa: S608
        ).fetchone()
        return None if row is None else self._batch_from_row(row)

    def batches(self) -> list[StoredBatch]:
        rows = self._conn.execute(
            f"SELECT {_BATCH_COLUMNS} FROM batches ORDER BY sequence"  # noqa: S608
        ).fetchall()
        return [self._batch_from_row(r) for r in rows]

    def pending(self) -> list[StoredBatch]:
        return [b for b in self.batches() if b.status == "pending"]

    def add_pending(
        self,
        *,
        period: str,
        sequence: int,
        interval_minutes: int,
        values: Sequence[int],
        blindings: Sequence[int],
        batch: bytes,
        batch_hash: bytes,
    ) -> StoredBatch:
        """Store a built batch before sending it; its sequence must extend the local chain."""
        if len(values) != len(blindings):
            raise OpeningStoreError("one blinding per value is needed")
        with self._tx() as conn:
            if conn.execute("SELECT 1 FROM batches WHERE period = ?", (period,)).fetchone():
                raise OpeningStoreError(f"a batch for {period} is already stored")
            (head,) = conn.execute("SELECT MAX(sequence) FROM batches").fetchone()
            expected = 0 if head is None else int(head) + 1
            if sequence != expected:
                raise OpeningStoreError(
                    f"sequence {sequence} does not extend the local chain (next is {expected})"
                )
            conn.execute(
                f"INSERT INTO batches ({_BATCH_COLUMNS})"  # noqa: S608
                " VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', NULL)",
                (
                    period,
                    sequence,
                    interval_minutes,
                    _pack_values(values),
                    _pack_blindings(blindings),
                    batch,
                    batch_hash,
                ),
            )
        stored = self.batch(period)
        assert stored is not None
        return stored

    def mark_accepted(self, period: str, receipt: bytes) -> None:
        with self._tx() as conn:
            cur = conn.execute(
                "UPDATE batches SET status = 'accepted', receipt = ? WHERE period = ?",
                (receipt, period),
            )
            if cur.rowcount != 1:
                raise OpeningStoreError(f"no batch for {period}")

    def discard_pending(self, period: str) -> None:
        """Forget a pending batch the service refused (only the chain's head can be dropped)."""
        with self._tx() as conn:
            row = conn.execute(
                "SELECT sequence, status FROM batches WHERE period = ?", (period,)
            ).fetchone()
            if row is None:
                raise OpeningStoreError(f"no batch for {period}")
            if row[1] != "pending":
                raise OpeningStoreError(f"the batch for {period} was accepted; it stays")
            (head,) = conn.execute("SELECT MAX(sequence) FROM batches").fetchone()
            if row[0] != head:
                raise OpeningStoreError(f"the batch for {period} is not the chain's head")
            conn.execute("DELETE FROM batches WHERE period = ?", (period,))
            conn.execute("DELETE FROM bills WHERE period = ?", (period,))

    # --- backups ---------------------------------------------------------------------

    def snapshot(self) -> tuple[list[StoredBatch], list[StoredBill]]:
        """Every batch and day bill, read in one transaction (see :meth:`snapshot_all`)."""
        batches, bills, _cycle_bills = self.snapshot_all()
        return batches, bills

    def snapshot_all(self) -> tuple[list[StoredBatch], list[StoredBill], list[StoredCycleBill]]:
        """Every batch, day bill and cycle bill, read in one transaction (a consistent copy
        for a backup)."""
        self._conn.execute("BEGIN")
        try:
            batch_rows = self._conn.execute(
                f"SELECT {_BATCH_COLUMNS} FROM batches ORDER BY sequence"  # noqa: S608
            ).fetchall()
            bill_rows = self._conn.execute(
                "SELECT period, bill, total, receipt FROM bills ORDER BY period"
            ).fetchall()
            cycle_rows = self._conn.execute(
                f"SELECT {_CYCLE_COLUMNS} FROM cycle_bills"  # noqa: S608
                " ORDER BY first_period, last_period"
            ).fetchall()
        finally:
            self._conn.execute("COMMIT")
        bills = [StoredBill(r[0], bytes(r[1]), int(r[2]), _opt_bytes(r[3])) for r in bill_rows]
        cycles = [self._cycle_from_row(r) for r in cycle_rows]
        return [self._batch_from_row(r) for r in batch_rows], bills, cycles

    def merge(
        self,
        batches: Sequence[StoredBatch],
        bills: Sequence[StoredBill],
        *,
        cycle_bills: Sequence[StoredCycleBill] = (),
        force: bool = False,
    ) -> MergeResult:
        """Bring rows from a backup into this store, in one transaction.

        A row the store lacks is added; the same row again changes nothing, except that a
        local pending batch becomes accepted (and a receipt is filled in) when the backup
        has that. A row that differs (other openings or batch for a period, another
        period at a sequence, another bill) is a conflict: without ``force`` nothing is
        changed and :class:`OpeningStoreError` names the periods; with ``force`` the
        backup's rows replace the conflicting local ones. Local rows the backup does
        not hold are kept. Cycle bills merge like day bills, by their cycle; a replaced
        batch takes the bills and cycle bills of its period with it.
        """
        counts = dict.fromkeys(MergeResult.__dataclass_fields__, 0)
        conflicts: list[str] = []
        with self._tx() as conn:
            for b in batches:
                local = self.batch(b.period)
                row = conn.execute(
                    "SELECT period FROM batches WHERE sequence = ?", (b.sequence,)
                ).fetchone()
                other_at_sequence = row is not None and row[0] != b.period
                if local is not None and _same_openings(local, b) and not other_at_sequence:
                    if local.status == "pending" and b.status == "accepted":
                        conn.execute(
                            "UPDATE batches SET status = 'accepted', receipt = ? WHERE period = ?",
                            (b.receipt, b.period),
                        )
                        counts["batches_updated"] += 1
                    else:
                        counts["batches_unchanged"] += 1
                    continue
                if local is not None or other_at_sequence:
                    conflicts.append(b.period)
                    if not force:
                        continue
                    # The replaced batches' bills go too: they name batches no longer here.
                    replaced = [
                        str(r[0])
                        for r in conn.execute(
                            "SELECT period FROM batches WHERE period = ? OR sequence = ?",
                            (b.period, b.sequence),
                        ).fetchall()
                    ]
                    for period in replaced:
                        conn.execute("DELETE FROM bills WHERE period = ?", (period,))
                        conn.execute(
                            "DELETE FROM cycle_bills WHERE first_period <= ? AND last_period >= ?",
                            (period, period),
                        )
                    conn.execute(
                        "DELETE FROM batches WHERE period = ? OR sequence = ?",
                        (b.period, b.sequence),
                    )
                    counts["batches_replaced"] += 1
                else:
                    counts["batches_added"] += 1
                conn.execute(
                    f"INSERT INTO batches ({_BATCH_COLUMNS})"  # noqa: S608
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        b.period,
                        b.sequence,
                        b.interval_minutes,
                        _pack_values(b.values),
                        _pack_blindings(b.blindings),
                        b.batch,
                        b.batch_hash,
                        b.status,
                        b.receipt,
                    ),
                )
            for bill in bills:
                existing = self.bill(bill.period)
                if existing is not None and existing.bill == bill.bill:
                    if existing.receipt is None and bill.receipt is not None:
                        conn.execute(
                            "UPDATE bills SET receipt = ? WHERE period = ?",
                            (bill.receipt, bill.period),
                        )
                        counts["bills_updated"] += 1
                    else:
                        counts["bills_unchanged"] += 1
                    continue
                if existing is not None:
                    conflicts.append(f"{bill.period} (bill)")
                    if not force:
                        continue
                    conn.execute("DELETE FROM bills WHERE period = ?", (bill.period,))
                    counts["bills_replaced"] += 1
                else:
                    counts["bills_added"] += 1
                conn.execute(
                    "INSERT INTO bills (period, bill, total, receipt) VALUES (?, ?, ?, ?)",
                    (bill.period, bill.bill, bill.total, bill.receipt),
                )
            for cycle in cycle_bills:
                local_cycle = self.cycle_bill(cycle.first_period, cycle.last_period)
                key = (cycle.first_period, cycle.last_period)
                if local_cycle is not None and local_cycle.bill == cycle.bill:
                    if local_cycle.receipt is None and cycle.receipt is not None:
                        conn.execute(
                            "UPDATE cycle_bills SET receipt = ?"
                            " WHERE first_period = ? AND last_period = ?",
                            (cycle.receipt, *key),
                        )
                        counts["cycle_bills_updated"] += 1
                    else:
                        counts["cycle_bills_unchanged"] += 1
                    continue
                if local_cycle is not None:
                    conflicts.append(f"{cycle.cycle} (cycle bill)")
                    if not force:
                        continue
                    conn.execute(
                        "DELETE FROM cycle_bills WHERE first_period = ? AND last_period = ?", key
                    )
                    counts["cycle_bills_replaced"] += 1
                else:
                    counts["cycle_bills_added"] += 1
                conn.execute(
                    f"INSERT INTO cycle_bills ({_CYCLE_COLUMNS}) VALUES (?, ?, ?, ?, ?)",  # noqa: S608
                    (*key, cycle.bill, cycle.total, cycle.receipt),
                )
            if conflicts and not force:
                raise OpeningStoreError(
                    f"the store already holds different openings for {', '.join(conflicts)};"
                    " nothing was restored (--force replaces them with the backup's)"
                )
        return MergeResult(**counts)

    # --- bills -----------------------------------------------------------------------

    def bill(self, period: str) -> StoredBill | None:
        row = self._conn.execute(
            "SELECT period, bill, total, receipt FROM bills WHERE period = ?", (period,)
        ).fetchone()
        if row is None:
            return None
        return StoredBill(row[0], bytes(row[1]), int(row[2]), _opt_bytes(row[3]))

    def put_bill(self, period: str, bill: bytes, total: int, receipt: bytes | None) -> None:
        """Store a bill (before submission, then again with its receipt)."""
        with self._tx() as conn:
            existing = conn.execute("SELECT bill FROM bills WHERE period = ?", (period,)).fetchone()
            if existing is not None and existing[0] != bill:
                raise OpeningStoreError(f"a different bill for {period} is already stored")
            conn.execute(
                "INSERT INTO bills (period, bill, total, receipt) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (period) DO UPDATE SET receipt = excluded.receipt",
                (period, bill, total, receipt),
            )

    # --- cycle bills -----------------------------------------------------------------

    @staticmethod
    def _cycle_from_row(row: tuple[Any, ...]) -> StoredCycleBill:
        first, last, bill, total, receipt = row
        return StoredCycleBill(str(first), str(last), bytes(bill), int(total), _opt_bytes(receipt))

    def cycle_bill(self, first_period: str, last_period: str) -> StoredCycleBill | None:
        """The bill of the cycle ``first_period..last_period``, if one was proven here."""
        row = self._conn.execute(
            f"SELECT {_CYCLE_COLUMNS} FROM cycle_bills"  # noqa: S608
            " WHERE first_period = ? AND last_period = ?",
            (first_period, last_period),
        ).fetchone()
        return None if row is None else self._cycle_from_row(row)

    def cycle_bills(self) -> list[StoredCycleBill]:
        """Every cycle bill, by cycle."""
        rows = self._conn.execute(
            f"SELECT {_CYCLE_COLUMNS} FROM cycle_bills"  # noqa: S608
            " ORDER BY first_period, last_period"
        ).fetchall()
        return [self._cycle_from_row(r) for r in rows]

    def put_cycle_bill(
        self, first_period: str, last_period: str, bill: bytes, total: int, receipt: bytes | None
    ) -> None:
        """Store a cycle bill (before submission, then again with its receipt); another bill
        for the same cycle is refused."""
        with self._tx() as conn:
            existing = conn.execute(
                "SELECT bill FROM cycle_bills WHERE first_period = ? AND last_period = ?",
                (first_period, last_period),
            ).fetchone()
            if existing is not None and bytes(existing[0]) != bill:
                raise OpeningStoreError(
                    f"a different bill for the cycle {first_period}..{last_period} is already"
                    " stored"
                )
            conn.execute(
                f"INSERT INTO cycle_bills ({_CYCLE_COLUMNS}) VALUES (?, ?, ?, ?, ?)"  # noqa: S608
                " ON CONFLICT (first_period, last_period) DO UPDATE SET"
                " receipt = COALESCE(excluded.receipt, cycle_bills.receipt)",
                (first_period, last_period, bill, total, receipt),
            )
