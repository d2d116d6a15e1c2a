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
version 2: an older store gains the empty table when it is opened, and reads as before);

and, per market trade of the meter (period, interval, trade index: table
``trade_deliveries``, added by schema version 3, as version 2 added its table), the
delivery steps it made or received (docs/design/market-v1.md, "Delivery and settlement
over commitments"): the allocation record and its opening ``(a, alpha)`` (made here as
seller, opened from the seller's sealed box as buyer), the delivery record and its
opening ``(d, delta)`` (made here as buyer, opened from the buyer's box as seller), or
the step defaulted. The delivered openings are what the meter's later trades of the
interval and its bills are proven over; like the readings' blindings no one else holds
them, so backups carry them.

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
    "StoredTradeDelivery",
    "check_private_dir",
    "check_private_file",
    "ensure_private_dir",
    "write_private_file",
]

BatchStatus = Literal["pending", "accepted"]
_BLINDING_BYTES = 32
_VALUE = struct.Struct(">I")
#: Version 2 adds the ``cycle_bills`` table, version 3 ``trade_deliveries`` (an older
#: store is upgraded when opened).
_SCHEMA_VERSION = "3"


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


@dataclass(frozen=True)
class StoredTradeDelivery:
    """What the meter holds of one of its trades' delivery steps (module docstring).

    ``side`` is ``seller`` or ``buyer``; ``allocation``/``delivery`` the records' bytes
    (:class:`~settlement.market.DeliveryAllocation`, :class:`~settlement.market.Delivery`)
    once made or received; ``allocated``/``allocation_blinding`` the opening of the
    allocation's commitment, ``delivered``/``delivery_blinding`` that of the delivery's;
    ``defaulted`` the step the utility defaulted (1 allocation, 2 delivery): then nothing
    was delivered. Openings are hidden from ``repr``."""

    period: str
    interval: int
    trade_index: int
    clearing_hash: bytes
    side: Literal["seller", "buyer"]
    counterparty: str
    quantity_wh: int
    allocation: bytes | None = field(default=None, repr=False)
    allocated: int | None = field(default=None, repr=False)
    allocation_blinding: int | None = field(default=None, repr=False)
    delivery: bytes | None = field(default=None, repr=False)
    delivered: int | None = field(default=None, repr=False)
    delivery_blinding: int | None = field(default=None, repr=False)
    defaulted: int | None = None

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.period, self.interval, self.trade_index)

    @property
    def settled(self) -> bool:
        """Delivered (its opening known here) or defaulted."""
        return self.defaulted is not None or self.delivered is not None

    @property
    def delivered_wh(self) -> int | None:
        """The trade's delivered energy when known here: ``d``, or 0 when defaulted."""
        if self.defaulted is not None:
            return 0
        return self.delivered


#: Columns of ``trade_deliveries`` in :class:`StoredTradeDelivery`'s field order.
_DELIVERY_FIELDS = (
    "period", "interval", "trade_index", "clearing_hash", "side", "counterparty",
    "quantity_wh", "allocation", "allocated", "allocation_blinding", "delivery",
    "delivered", "delivery_blinding", "defaulted",
)  # fmt: skip
_DELIVERY_COLUMNS = ", ".join(_DELIVERY_FIELDS)
_DELIVERY_KEY = ("period", "interval", "trade_index")
_DELIVERY_STEP_FIELDS = _DELIVERY_FIELDS[7:]


def _delivery_to_row(d: StoredTradeDelivery) -> tuple[Any, ...]:
    def blinding(value: int | None) -> bytes | None:
        return None if value is None else value.to_bytes(_BLINDING_BYTES, "big")

    return (
        d.period, d.interval, d.trade_index, d.clearing_hash, d.side, d.counterparty,
        d.quantity_wh, d.allocation, d.allocated, blinding(d.allocation_blinding), d.delivery,
        d.delivered, blinding(d.delivery_blinding), d.defaulted,
    )  # fmt: skip


def _delivery_from_row(row: tuple[Any, ...]) -> StoredTradeDelivery:
    def blinding(value: object) -> int | None:
        raw = _opt_bytes(value)
        return None if raw is None else int.from_bytes(raw, "big")

    def opt_int(value: object) -> int | None:
        return None if value is None else int(value)  # type: ignore[call-overload]

    side = str(row[4])
    if side not in ("seller", "buyer"):
        raise OpeningStoreError("the opening store holds a trade of no side")
    return StoredTradeDelivery(
        period=str(row[0]),
        interval=int(row[1]),
        trade_index=int(row[2]),
        clearing_hash=bytes(row[3]),
        side="seller" if side == "seller" else "buyer",
        counterparty=str(row[5]),
        quantity_wh=int(row[6]),
        allocation=_opt_bytes(row[7]),
        allocated=opt_int(row[8]),
        allocation_blinding=blinding(row[9]),
        delivery=_opt_bytes(row[10]),
        delivered=opt_int(row[11]),
        delivery_blinding=blinding(row[12]),
        defaulted=opt_int(row[13]),
    )


def _merged_delivery(
    local: StoredTradeDelivery, new: StoredTradeDelivery
) -> StoredTradeDelivery | None:
    """``local`` completed with what ``new`` adds; ``None`` when they disagree on a field
    both hold (another trade under the same key, another record or opening)."""
    merged: dict[str, Any] = {}
    for name in _DELIVERY_FIELDS:
        a, b = getattr(local, name), getattr(new, name)
        if a is not None and b is not None and a != b:
            return None
        merged[name] = a if a is not None else b
    return StoredTradeDelivery(**merged)


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
    deliveries_added: int = 0
    deliveries_unchanged: int = 0
    deliveries_updated: int = 0


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
CREATE TABLE IF NOT EXISTS trade_deliveries (
    period TEXT NOT NULL,
    interval INTEGER NOT NULL,
    trade_index INTEGER NOT NULL,
    clearing_hash BLOB NOT NULL,
    side TEXT NOT NULL CHECK (side IN ('seller', 'buyer')),
    counterparty TEXT NOT NULL,
    quantity_wh INTEGER NOT NULL,
    allocation BLOB,
    allocated INTEGER,
    allocation_blinding BLOB,
    delivery BLOB,
    delivered INTEGER,
    delivery_blinding BLOB,
    defaulted INTEGER,
    PRIMARY KEY (period, interval, trade_index)
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

    # --- market trades' delivery steps -------------------------------------------------

    def trade_delivery(
        self, period: str, interval: int, trade_index: int
    ) -> StoredTradeDelivery | None:
        """What the store holds of the trade ``(period, interval, trade_index)``."""
        row = self._conn.execute(
            f"SELECT {_DELIVERY_COLUMNS} FROM trade_deliveries"  # noqa: S608
            " WHERE period = ? AND interval = ? AND trade_index = ?",
            (period, interval, trade_index),
        ).fetchone()
        return None if row is None else _delivery_from_row(row)

    def trade_deliveries(self, period: str | None = None) -> list[StoredTradeDelivery]:
        """The trades' delivery steps held here (of ``period``, or all), in trade order."""
        where, args = ("WHERE period = ?", (period,)) if period is not None else ("", ())
        rows = self._conn.execute(
            f"SELECT {_DELIVERY_COLUMNS} FROM trade_deliveries {where}"  # noqa: S608
            " ORDER BY period, interval, trade_index",
            args,
        ).fetchall()
        return [_delivery_from_row(r) for r in rows]

    def put_trade_delivery(self, delivery: StoredTradeDelivery) -> StoredTradeDelivery:
        """Record (or complete) a trade's steps: fields the store lacks are filled in; a
        field it holds with another value is refused (:class:`OpeningStoreError`: another
        trade, record or opening for the same key). Returns the row as stored."""
        with self._tx() as conn:
            merged = self._put_delivery(conn, delivery)
            if merged is None:
                raise OpeningStoreError(
                    f"the store holds other delivery steps for the trade {delivery.period}"
                    f" interval {delivery.interval} #{delivery.trade_index}"
                )
        return merged

    def _put_delivery(
        self, conn: sqlite3.Connection, delivery: StoredTradeDelivery
    ) -> StoredTradeDelivery | None:
        local = self.trade_delivery(delivery.period, delivery.interval, delivery.trade_index)
        merged = delivery if local is None else _merged_delivery(local, delivery)
        if merged is None:
            return None
        conn.execute(
            f"INSERT OR REPLACE INTO trade_deliveries ({_DELIVERY_COLUMNS})"  # noqa: S608
            f" VALUES ({', '.join('?' * len(_DELIVERY_FIELDS))})",
            _delivery_to_row(merged),
        )
        return merged

    def merge_trade_deliveries(self, deliveries: Sequence[StoredTradeDelivery]) -> MergeResult:
        """Bring trades' delivery steps from a backup, in one transaction: missing rows are
        added, rows the backup completes are completed; a row that disagrees with the
        store's (another record or opening) refuses the whole merge: an opening of a
        commitment on the ledger has one value, so there is nothing to force."""
        counts = {"deliveries_added": 0, "deliveries_unchanged": 0, "deliveries_updated": 0}
        conflicts: list[str] = []
        with self._tx() as conn:
            for d in deliveries:
                local = self.trade_delivery(d.period, d.interval, d.trade_index)
                merged = self._put_delivery(conn, d)
                if merged is None:
                    conflicts.append(f"{d.period} interval {d.interval} #{d.trade_index}")
                elif local is None:
                    counts["deliveries_added"] += 1
                elif merged == local:
                    counts["deliveries_unchanged"] += 1
                else:
                    counts["deliveries_updated"] += 1
            if conflicts:
                raise OpeningStoreError(
                    "the store holds other delivery steps for the trades "
                    + ", ".join(conflicts)
                    + "; nothing was restored"
                )
        return MergeResult(**counts)
