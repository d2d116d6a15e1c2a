"""Backups of the opening store: the only copy of the blindings a bill needs.

Without its openings a meter can no longer prove a bill for a period whose readings it
submitted, and no one else holds them (that is the point). ``zkgrid meter backup``
writes them to one private file; ``zkgrid meter restore`` brings them back.

Format (version 1): one JSON document, UTF-8::

    {"format": "zkgrid-openings-backup", "version": 1,
     "meter_id": "...", "public_key": "<33-byte hex>", "interval_minutes": 15,
     "created": "2026-11-22T08:00:00Z",
     "batches": [{"period", "sequence", "interval_minutes", "values": [int, ...],
                  "blindings": ["<32-byte hex>", ...], "batch": "<base64 record>",
                  "batch_hash": "<hex>", "status": "accepted"|"pending",
                  "receipt": "<base64>"|null}, ...],
     "bills": [{"period", "bill": "<base64 record>", "total": int,
                "receipt": "<base64>"|null}, ...],
     "digest": "sha256:<hex>"}

``digest`` is SHA-256 of the canonical JSON (sorted keys, no spaces, ASCII) of the
document without ``digest``. The file is created with ``O_EXCL`` and mode 0600
(:func:`zkgrid._internal.files.write_new_private`) and is read back only when it is
private (:func:`zkgrid._internal.files.read_private`): it holds every reading and
blinding.

A restore refuses (:class:`BackupError`, exit 1) a file that is not such a document, a
version it does not know, a digest that does not match, a backup of another meter
(its id and public key against the home's), and any batch that is not this meter's
(the batch's signature under the home's key) or whose openings do not open its
commitments; then it merges (:meth:`meter.openings.OpeningStore.merge`): rows that
differ from the store's are refused unless ``force``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from meter.home import MeterHome
from meter.openings import MergeResult, OpeningStoreError, StoredBatch, StoredBill
from meter.statement import openings_match_commitments
from settlement.records import Bill, ReadingBatch, RecordFormatError
from zkgrid._internal.files import read_private, write_new_private
from zkgrid.errors import ZkgridError
from zkp.group import ORDER

__all__ = [
    "FORMAT",
    "MAX_BACKUP_BYTES",
    "VERSION",
    "BackupError",
    "BackupSummary",
    "decode_backup",
    "encode_backup",
    "restore_backup",
    "write_backup",
]

FORMAT = "zkgrid-openings-backup"
VERSION = 1
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
    created: datetime | None = None,
) -> bytes:
    """The backup document of ``home``'s rows (the format in the module docstring)."""
    when = (created or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    doc: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
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
    doc["digest"] = _digest(doc)
    return (json.dumps(doc, indent=1, ensure_ascii=True) + "\n").encode("ascii")


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


def decode_backup(
    data: bytes, home: MeterHome
) -> tuple[BackupSummary, list[StoredBatch], list[StoredBill]]:
    """Check a backup for ``home`` (module docstring) and return its rows."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BackupError("the backup is corrupted: it is not a JSON document") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BackupError("this file is not a zkgrid opening-store backup")
    version = doc.get("version")
    if version != VERSION:
        raise BackupError(
            f"backup format version {version!r} is not {VERSION}: restore it with the zkgrid"
            " that made it"
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
    periods = [b.period for b in batches]
    sequences = [b.sequence for b in batches]
    bill_periods = [b.period for b in bills]
    if any(len(set(x)) != len(x) for x in (periods, sequences, bill_periods)):
        raise BackupError("the backup is corrupted: a period or sequence appears twice")
    summary = BackupSummary(meter_id, _field(doc, "created", str), len(batches), len(bills), digest)
    return summary, batches, bills


# --------------------------------------------------------------------------- the commands


def write_backup(home: MeterHome, path: Path) -> BackupSummary:
    """Write a backup of ``home``'s opening store to the new private file ``path``
    (refused when it exists); the document is checked by decoding it before it is
    written."""
    with home.openings() as store:
        batches, bills = store.snapshot()
    data = encode_backup(home, batches, bills)
    summary, _, _ = decode_backup(data, home)
    write_new_private(path, data)
    return summary


def restore_backup(
    home: MeterHome, path: Path, *, force: bool = False
) -> tuple[BackupSummary, MergeResult]:
    """Check the backup at ``path`` for ``home`` and merge it into its opening store."""
    data = read_private(path, max_bytes=MAX_BACKUP_BYTES)
    summary, batches, bills = decode_backup(data, home)
    with home.openings() as store:
        return summary, store.merge(batches, bills, force=force)
