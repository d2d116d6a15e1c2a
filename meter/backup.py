"""Backups of the opening store: the only copy of the blindings a bill needs.

Without its openings a meter can no longer prove a bill for a period whose readings it
submitted, and no one else holds them (that is the point). ``zkgrid meter backup``
writes them to one private file; ``zkgrid meter restore`` brings them back.

Format (version 1; 2 when the store holds cycle bills; 3 when it holds market trades' delivery
steps): one JSON document, UTF-8::

    {"format": "zkgrid-openings-backup", "version": 1 | 2 | 3,
     "meter_id": "...", "public_key": "<33-byte hex>", "interval_minutes": 15,
     "created": "2026-11-22T08:00:00Z",
     "batches": [{"period", "sequence", "interval_minutes", "values": [int, ...],
                  "blindings": ["<32-byte hex>", ...], "batch": "<base64 record>",
                  "batch_hash": "<hex>", "status": "accepted"|"pending",
                  "receipt": "<base64>"|null}, ...],
     "bills": [{"period", "bill": "<base64 record>", "total": int,
                "receipt": "<base64>"|null}, ...],
     "cycle_bills": [{"first_period", "last_period", "bill": "<base64 record>",
                      "total": int, "receipt": "<base64>"|null}, ...],     (version 2 only)
     "trade_deliveries": [{"period", "interval", "trade_index", "clearing_hash": "<hex>",
                           "side": "seller"|"buyer", "counterparty", "quantity_wh",
                           "allocation": "<base64 record>"|null, "allocated": int|null,
                           "allocation_blinding": "<hex>"|null,
                           "delivery": "<base64 record>"|null, "delivered": int|null,
                           "delivery_blinding": "<hex>"|null, "defaulted": 1|2|null}, ...],
                                                                        (version 3 only)
     "digest": "sha256:<hex>"}

Version 3 adds ``trade_deliveries`` (the market trades' delivery steps and the openings of
their allocations and deliveries, meter/openings.py); it is written only when the store
holds one (else version 2 or 1, as before). A restore checks that each record decodes,
is the row's trade and its opening opens the record's commitment.

Version 2 adds ``cycle_bills`` (the bills of billing cycles, records version 2). A backup
is written as version 1 when the store holds no cycle bill, so a zkgrid that knows only
version 1 restores it; one with cycle bills is version 2, which such a zkgrid refuses
instead of dropping them. Both versions are read.

``digest`` is SHA-256 of the canonical JSON (sorted keys, no spaces, ASCII) of the
document without ``digest``. The file is created with ``O_EXCL`` and mode 0600
(:func:`zkgrid._internal.files.write_new_private`) and is read back only when it is
private (:func:`zkgrid._internal.files.read_private`): it holds every reading and
blinding.

A restore refuses (:class:`BackupError`, exit 1) a file that is not such a document, a
version it does not know, a digest that does not match, a backup of another meter
(its id and public key against the home's), and any batch that is not this meter's
(the batch's signature under the home's key) or whose openings do not open its
commitments, and any bill (day or cycle) that is not this meter's or does not match its
row; then it merges (:meth:`meter.openings.OpeningStore.merge`): rows that
differ from the store's are refused unless ``force``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from meter.home import MeterHome
from meter.openings import (
    MergeResult,
    OpeningStoreError,
    StoredBatch,
    StoredBill,
    StoredCycleBill,
    StoredTradeDelivery,
)
from meter.statement import openings_match_commitments
from settlement.market import Delivery, DeliveryAllocation
from settlement.records import Bill, CycleBill, ReadingBatch, RecordFormatError
from zkgrid._internal.files import read_private, write_new_private
from zkgrid.errors import ZkgridError
from zkp.group import ORDER
from zkp.pedersen import commit

__all__ = [
    "FORMAT",
    "MAX_BACKUP_BYTES",
    "VERSION",
    "BackupError",
    "BackupSummary",
    "DecodedBackup",
    "decode_backup",
    "encode_backup",
    "restore_backup",
    "write_backup",
]

FORMAT = "zkgrid-openings-backup"
#: The version written with cycle bills; without any, :data:`VERSION_1` is written.
VERSION = 3
VERSION_1 = 1
VERSION_2 = 2
_VERSIONS = (VERSION_1, VERSION_2, VERSION)
#: Largest backup read (a year of 15-minute days is about 20 MB).
MAX_BACKUP_BYTES = 1 << 30
_MAX_READING = (1 << 32) - 1


class BackupError(OpeningStoreError):
    """A backup that cannot be restored here: corrupted, unknown, or another meter's."""


@dataclass(frozen=True)
class BackupSummary:
    meter_id: str
    created: str
    batches: int
    bills: int
    digest: str
    cycle_bills: int = 0
    trade_deliveries: int = 0


class DecodedBackup(NamedTuple):
    """A checked backup: its summary and its rows."""

    summary: BackupSummary
    batches: list[StoredBatch]
    bills: list[StoredBill]
    cycle_bills: list[StoredCycleBill]
    trade_deliveries: list[StoredTradeDelivery] = []  # noqa: RUF012 - NamedTuple default


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _canonical(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _digest(doc: Mapping[str, Any]) -> str:
    body = {k: v for k, v in doc.items() if k != "digest"}
    return "sha256:" + hashlib.sha256(_canonical(body)).hexdigest()


def encode_backup(
    home: MeterHome,
    batches: list[StoredBatch],
    bills: list[StoredBill],
    *,
    cycle_bills: Sequence[StoredCycleBill] = (),
    trade_deliveries: Sequence[StoredTradeDelivery] = (),
    created: datetime | None = None,
) -> bytes:
    """The backup document of ``home``'s rows (the format in the module docstring)."""
    when = (created or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    doc: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION if trade_deliveries else VERSION_2 if cycle_bills else VERSION_1,
        "meter_id": home.meter_id,
        "public_key": home.public_key.hex(),
        "interval_minutes": home.interval_minutes,
        "created": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "batches": [
            {
                "period": b.period,
                "sequence": b.sequence,
                "interval_minutes": b.interval_minutes,
                "values": list(b.values),
                "blindings": [r.to_bytes(32, "big").hex() for r in b.blindings],
                "batch": _b64(b.batch),
                "batch_hash": b.batch_hash.hex(),
                "status": b.status,
                "receipt": None if b.receipt is None else _b64(b.receipt),
            }
            for b in batches
        ],
        "bills": [
            {
                "period": b.period,
                "bill": _b64(b.bill),
                "total": b.total,
                "receipt": None if b.receipt is None else _b64(b.receipt),
            }
            for b in bills
        ],
    }
    if cycle_bills or trade_deliveries:
        doc["cycle_bills"] = [
            {
                "first_period": c.first_period,
                "last_period": c.last_period,
                "bill": _b64(c.bill),
                "total": c.total,
                "receipt": None if c.receipt is None else _b64(c.receipt),
            }
            for c in cycle_bills
        ]
    if trade_deliveries:
        doc["trade_deliveries"] = [_delivery_doc(d) for d in trade_deliveries]
    doc["digest"] = _digest(doc)
    return (json.dumps(doc, indent=1, ensure_ascii=True) + "\n").encode("ascii")


def _delivery_doc(d: StoredTradeDelivery) -> dict[str, Any]:
    def blinding(value: int | None) -> str | None:
        return None if value is None else value.to_bytes(32, "big").hex()

    return {
        "period": d.period,
        "interval": d.interval,
        "trade_index": d.trade_index,
        "clearing_hash": d.clearing_hash.hex(),
        "side": d.side,
        "counterparty": d.counterparty,
        "quantity_wh": d.quantity_wh,
        "allocation": None if d.allocation is None else _b64(d.allocation),
        "allocated": d.allocated,
        "allocation_blinding": blinding(d.allocation_blinding),
        "delivery": None if d.delivery is None else _b64(d.delivery),
        "delivered": d.delivered,
        "delivery_blinding": blinding(d.delivery_blinding),
        "defaulted": d.defaulted,
    }


# --------------------------------------------------------------------------- decoding


def _field(obj: Mapping[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    if name not in obj:
        raise BackupError(f"the backup is corrupted: '{name}' is missing")
    value = obj[name]
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        raise BackupError(f"the backup is corrupted: '{name}' has the wrong type")
    return value


def _blob(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise BackupError(f"the backup is corrupted: {what} is not base64 text")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BackupError(f"the backup is corrupted: {what} is not base64") from None


def _hex(text: Any, what: str, size: int) -> bytes:
    try:
        data = bytes.fromhex(text) if isinstance(text, str) else b""
    except ValueError:
        data = b""
    if len(data) != size:
        raise BackupError(f"the backup is corrupted: {what} is not {size} bytes of hex")
    return data


def _batch(row: Any, home: MeterHome) -> StoredBatch:
    if not isinstance(row, dict):
        raise BackupError("the backup is corrupted: a batch is not an object")
    period = _field(row, "period", str)
    values = _field(row, "values", list)
    blindings = [_hex(h, f"a blinding of {period}", 32) for h in _field(row, "blindings", list)]
    if any(isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= _MAX_READING
           for v in values):  # fmt: skip
        raise BackupError(f"the backup is corrupted: a reading of {period} is not in [0, 2^32)")
    scalars = [int.from_bytes(b, "big") for b in blindings]
    if any(s >= ORDER for s in scalars):
        raise BackupError(f"the backup is corrupted: a blinding of {period} is out of range")
    status = _field(row, "status", str)
    if status not in ("pending", "accepted"):
        raise BackupError(f"the backup is corrupted: unknown status of {period}")
    receipt = row.get("receipt")
    stored = StoredBatch(
        period=period,
        sequence=_field(row, "sequence", int),
        interval_minutes=_field(row, "interval_minutes", int),
        values=tuple(values),
        blindings=tuple(scalars),
        batch=_blob(_field(row, "batch", str), f"the batch of {period}"),
        batch_hash=_hex(_field(row, "batch_hash", str), f"the batch hash of {period}", 32),
        status="accepted" if status == "accepted" else "pending",
        receipt=None if receipt is None else _blob(receipt, f"the receipt of {period}"),
    )
    _check_batch(stored, home)
    return stored


def _check_batch(stored: StoredBatch, home: MeterHome) -> None:
    period = stored.period
    try:
        batch = ReadingBatch.decode(stored.batch)
        batch.verify_signature(home.public_key)
    except RecordFormatError:
        raise BackupError(
            f"the backup is corrupted: the batch of {period} does not decode"
        ) from None
    except ZkgridError:
        raise BackupError(
            f"the batch of {period} in the backup is not signed by this meter's key"
        ) from None
    if (
        batch.meter_id != home.meter_id
        or batch.period != period
        or batch.sequence != stored.sequence
        or batch.interval_minutes != stored.interval_minutes
    ):
        raise BackupError(f"the backup's batch of {period} does not match its row")
    if hashlib.sha256(stored.batch).digest() != stored.batch_hash:
        raise BackupError(f"the backup is corrupted: the batch hash of {period} is wrong")
    if not (len(stored.values) == len(stored.blindings) == len(batch.commitments)):
        raise BackupError(f"the backup's openings of {period} do not match its commitments")
    if not openings_match_commitments(stored):
        raise BackupError(f"the backup's openings of {period} do not open its commitments")


def _bill(row: Any, home: MeterHome) -> StoredBill:
    if not isinstance(row, dict):
        raise BackupError("the backup is corrupted: a bill is not an object")
    period = _field(row, "period", str)
    data = _blob(_field(row, "bill", str), f"the bill of {period}")
    total = _field(row, "total", int)
    try:
        bill = Bill.decode(data)
    except RecordFormatError:
        raise BackupError(
            f"the backup is corrupted: the bill of {period} does not decode"
        ) from None
    if bill.meter_id != home.meter_id or bill.period != period or bill.total != total:
        raise BackupError(f"the backup's bill of {period} does not match its row")
    receipt = row.get("receipt")
    return StoredBill(
        period, data, total, None if receipt is None else _blob(receipt, f"the receipt of {period}")
    )


def _cycle_bill(row: Any, home: MeterHome) -> StoredCycleBill:
    if not isinstance(row, dict):
        raise BackupError("the backup is corrupted: a cycle bill is not an object")
    first = _field(row, "first_period", str)
    last = _field(row, "last_period", str)
    cycle = f"{first}..{last}"
    data = _blob(_field(row, "bill", str), f"the cycle bill of {cycle}")
    total = _field(row, "total", int)
    try:
        bill = CycleBill.decode(data)
    except RecordFormatError:
        raise BackupError(
            f"the backup is corrupted: the cycle bill of {cycle} does not decode"
        ) from None
    if (
        bill.meter_id != home.meter_id
        or (bill.first_period, bill.last_period) != (first, last)
        or bill.total != total
    ):
        raise BackupError(f"the backup's cycle bill of {cycle} does not match its row")
    receipt = row.get("receipt")
    return StoredCycleBill(
        first,
        last,
        data,
        total,
        None if receipt is None else _blob(receipt, f"the receipt of the cycle {cycle}"),
    )


def _opt_int(row: Mapping[str, Any], name: str, what: str, hi: int) -> int | None:
    value = row.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= hi:
        raise BackupError(f"the backup is corrupted: {name} of {what} is out of range")
    return value


def _trade_delivery(row: Any, home: MeterHome) -> StoredTradeDelivery:
    if not isinstance(row, dict):
        raise BackupError("the backup is corrupted: a trade delivery is not an object")
    period = _field(row, "period", str)
    interval = _field(row, "interval", int)
    index = _field(row, "trade_index", int)
    what = f"the trade {period} interval {interval} #{index}"
    side = _field(row, "side", str)
    if side not in ("seller", "buyer"):
        raise BackupError(f"the backup is corrupted: {what} has no side")
    blindings = []
    for name in ("allocation_blinding", "delivery_blinding"):
        raw = row.get(name)
        scalar = None if raw is None else int.from_bytes(_hex(raw, f"{name} of {what}", 32), "big")
        if scalar is not None and scalar >= ORDER:
            raise BackupError(f"the backup is corrupted: {name} of {what} is out of range")
        blindings.append(scalar)
    records = [
        None if row.get(name) is None else _blob(row[name], f"the {name} of {what}")
        for name in ("allocation", "delivery")
    ]
    stored = StoredTradeDelivery(
        period=period,
        interval=interval,
        trade_index=index,
        clearing_hash=_hex(_field(row, "clearing_hash", str), f"the clearing hash of {what}", 32),
        side="seller" if side == "seller" else "buyer",
        counterparty=_field(row, "counterparty", str),
        quantity_wh=_field(row, "quantity_wh", int),
        allocation=records[0],
        allocated=_opt_int(row, "allocated", what, _MAX_READING),
        allocation_blinding=blindings[0],
        delivery=records[1],
        delivered=_opt_int(row, "delivered", what, _MAX_READING),
        delivery_blinding=blindings[1],
        defaulted=_opt_int(row, "defaulted", what, 2),
    )
    _check_trade_delivery(stored, home, what)
    return stored


def _check_trade_delivery(d: StoredTradeDelivery, home: MeterHome, what: str) -> None:
    """Each record is the row's trade, made by the right party, and its opening (when
    held) opens the record's commitment (D10)."""
    steps: tuple[tuple[Any, bytes | None, int | None, int | None, str], ...] = (
        (DeliveryAllocation, d.allocation, d.allocated, d.allocation_blinding, "seller"),
        (Delivery, d.delivery, d.delivered, d.delivery_blinding, "buyer"),
    )
    for record_type, data, value, blinding, maker in steps:
        if (value is None) != (blinding is None):
            raise BackupError(f"the backup is corrupted: half an opening of {what}")
        if data is None:
            if value is not None:
                raise BackupError(f"the backup's {what} holds an opening without its record")
            continue
        try:
            record = record_type.decode(data)
        except RecordFormatError:
            raise BackupError(
                f"the backup is corrupted: a record of {what} does not decode"
            ) from None
        party = home.meter_id if d.side == maker else d.counterparty
        if (record.period, record.interval, record.trade_index, record.clearing_hash) != (
            d.period,
            d.interval,
            d.trade_index,
            d.clearing_hash,
        ) or record.meter_id != party:
            raise BackupError(f"the backup's records of {what} do not match its row")
        if (
            value is not None
            and blinding is not None
            and commit(value, blinding).to_bytes() != record.commitment
        ):
            raise BackupError(f"the backup's openings of {what} do not open its records")


def decode_backup(data: bytes, home: MeterHome) -> DecodedBackup:
    """Check a backup for ``home`` (module docstring) and return its rows."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BackupError("the backup is corrupted: it is not a JSON document") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BackupError("this file is not a zkgrid opening-store backup")
    version = doc.get("version")
    if isinstance(version, bool) or version not in _VERSIONS:
        raise BackupError(
            f"backup format version {version!r} is not one of"
            f" {', '.join(map(str, _VERSIONS))}: restore it with the zkgrid that made it"
        )
    digest = _field(doc, "digest", str)
    if not hmac.compare_digest(digest, _digest(doc)):
        raise BackupError("the backup is corrupted: its digest does not match its contents")
    meter_id = _field(doc, "meter_id", str)
    public_key = _hex(_field(doc, "public_key", str), "the public key", 33)
    if meter_id != home.meter_id or public_key != home.public_key:
        raise BackupError(
            f"the backup is of meter {meter_id} (key {public_key.hex()[:16]}...); this home"
            f" holds meter {home.meter_id} (key {home.public_key.hex()[:16]}...)"
        )
    batches = [_batch(row, home) for row in _field(doc, "batches", list)]
    bills = [_bill(row, home) for row in _field(doc, "bills", list)]
    if version == VERSION_1:
        if "cycle_bills" in doc:
            raise BackupError("the backup is corrupted: version 1 holds no cycle bills")
        cycle_bills: list[StoredCycleBill] = []
    else:
        cycle_bills = [_cycle_bill(row, home) for row in _field(doc, "cycle_bills", list)]
    if version == VERSION:
        deliveries = [_trade_delivery(row, home) for row in _field(doc, "trade_deliveries", list)]
    elif "trade_deliveries" in doc:
        raise BackupError(f"the backup is corrupted: version {version} holds no trade deliveries")
    else:
        deliveries = []
    keys = [d.key for d in deliveries]
    periods = [b.period for b in batches]
    sequences = [b.sequence for b in batches]
    bill_periods = [b.period for b in bills]
    cycles = [(c.first_period, c.last_period) for c in cycle_bills]
    if any(len(set(x)) != len(x) for x in (periods, sequences, bill_periods, cycles, keys)):
        raise BackupError("the backup is corrupted: a period, sequence or cycle appears twice")
    summary = BackupSummary(
        meter_id,
        _field(doc, "created", str),
        len(batches),
        len(bills),
        digest,
        len(cycle_bills),
        len(deliveries),
    )
    return DecodedBackup(summary, batches, bills, cycle_bills, deliveries)


# --------------------------------------------------------------------------- the commands


def write_backup(home: MeterHome, path: Path) -> BackupSummary:
    """Write a backup of ``home``'s opening store to the new private file ``path``
    (refused when it exists); the document is checked by decoding it before it is
    written."""
    with home.openings() as store:
        batches, bills, cycle_bills = store.snapshot_all()
        deliveries = store.trade_deliveries()
    data = encode_backup(home, batches, bills, cycle_bills=cycle_bills, trade_deliveries=deliveries)
    summary = decode_backup(data, home).summary
    write_new_private(path, data)
    return summary


def restore_backup(
    home: MeterHome, path: Path, *, force: bool = False
) -> tuple[BackupSummary, MergeResult]:
    """Check the backup at ``path`` for ``home`` and merge it into its opening store."""
    data = read_private(path, max_bytes=MAX_BACKUP_BYTES)
    decoded = decode_backup(data, home)
    with home.openings() as store:
        merged = store.merge(
            decoded.batches, decoded.bills, cycle_bills=decoded.cycle_bills, force=force
        )
        if decoded.trade_deliveries:
            steps = store.merge_trade_deliveries(decoded.trade_deliveries)
            merged = dataclasses.replace(
                merged,
                deliveries_added=steps.deliveries_added,
                deliveries_unchanged=steps.deliveries_unchanged,
                deliveries_updated=steps.deliveries_updated,
            )
    return decoded.summary, merged
