"""Ledger entries: a typed, versioned, canonical envelope around a payload (L12).

::

    entry = version (u8, = 1) || kind (u16 BE) || payload length (u32 BE) || payload

The leaf hash of an entry is ``leaf_hash(encode_entry(kind, payload))`` (L1), so
anyone holding the entry can recompute it. The payload's own canonical format
is defined per kind by later work; the envelope only frames it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from ledger.errors import LedgerArgumentError, LedgerFormatError
from ledger.merkle import leaf_hash

__all__ = [
    "ENTRY_FORMAT_VERSION",
    "ENTRY_HEADER_SIZE",
    "MAX_PAYLOAD_SIZE",
    "Entry",
    "EntryKind",
    "decode_entry",
    "encode_entry",
    "entry_leaf_hash",
]

ENTRY_FORMAT_VERSION = 1
_HEADER = struct.Struct(">BHI")
ENTRY_HEADER_SIZE = _HEADER.size  # 7
MAX_PAYLOAD_SIZE = 0xFFFF_FFFF


class EntryKind(IntEnum):
    """The kind of a ledger entry. Values are fixed forever; 0 is invalid."""

    METER_REGISTRATION = 1
    METER_REVOCATION = 2
    READING_BATCH = 3
    TARIFF = 4
    BILL = 5
    WITNESS_KEY = 6
    COSIGNATURE = 7
    # the neighbourhood market (docs/design/market-v1.md; settlement/market.py)
    MARKET_ENROLMENT = 8
    MARKET_DAY = 9
    ORDER = 10
    ORDER_CANCELLATION = 11
    CLEARING = 12
    DELIVERY_ALLOCATION = 13
    DELIVERY = 14
    DELIVERY_DEFAULT = 15


@dataclass(frozen=True, slots=True)
class Entry:
    """A decoded entry: its kind and the payload bytes (format defined per kind)."""

    kind: EntryKind
    payload: bytes

    def encode(self) -> bytes:
        return encode_entry(self.kind, self.payload)

    def leaf_hash(self) -> bytes:
        """The Merkle leaf hash of the encoded entry (L1)."""
        return leaf_hash(self.encode())


def _kind(kind: object) -> EntryKind:
    if isinstance(kind, bool) or not isinstance(kind, int):
        raise LedgerArgumentError("entry kind must be an EntryKind")
    try:
        return EntryKind(kind)
    except ValueError:
        raise LedgerArgumentError(f"unknown entry kind {kind}") from None


def encode_entry(kind: EntryKind, payload: bytes) -> bytes:
    """(L12) The canonical bytes of an entry."""
    k = _kind(kind)
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise LedgerArgumentError("entry payload must be bytes")
    body = bytes(payload)
    if len(body) > MAX_PAYLOAD_SIZE:
        raise LedgerArgumentError("entry payload longer than 2^32 - 1 bytes")
    return _HEADER.pack(ENTRY_FORMAT_VERSION, k, len(body)) + body


def entry_leaf_hash(kind: int, payload: bytes) -> bytes:
    """(L1, L12) The leaf hash of an entry as a log holds it, for *any* u16 kind.

    A verifier must hash what the log holds, also an entry of a kind this code does not
    define (it then flags the kind; :func:`encode_entry` and :func:`decode_entry` still
    refuse it). Raises :class:`LedgerArgumentError` for a kind outside u16 or a payload
    that is not bytes.
    """
    if isinstance(kind, bool) or not isinstance(kind, int) or not 0 <= kind <= 0xFFFF:
        raise LedgerArgumentError("entry kind must be a u16")
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise LedgerArgumentError("entry payload must be bytes")
    body = bytes(payload)
    if len(body) > MAX_PAYLOAD_SIZE:
        raise LedgerArgumentError("entry payload longer than 2^32 - 1 bytes")
    return leaf_hash(_HEADER.pack(ENTRY_FORMAT_VERSION, kind, len(body)) + body)


def decode_entry(data: bytes) -> Entry:
    """(L12) Strict decoding: the inverse of :func:`encode_entry`.

    Raises :class:`LedgerFormatError` for a short header, an unknown version or
    kind, a payload shorter than its declared length, or trailing bytes.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise LedgerFormatError("entry must be bytes")
    raw = bytes(data)
    if len(raw) < ENTRY_HEADER_SIZE:
        raise LedgerFormatError(
            f"(L12) entry of {len(raw)} bytes is shorter than the {ENTRY_HEADER_SIZE}-byte header"
        )
    version, kind, length = _HEADER.unpack_from(raw)
    if version != ENTRY_FORMAT_VERSION:
        raise LedgerFormatError(f"(L12) unknown entry format version {version}")
    try:
        entry_kind = EntryKind(kind)
    except ValueError:
        raise LedgerFormatError(f"(L12) unknown entry kind {kind}") from None
    available = len(raw) - ENTRY_HEADER_SIZE
    if available < length:
        raise LedgerFormatError(
            f"(L12) payload truncated: {available} bytes, header declares {length}"
        )
    if available > length:
        raise LedgerFormatError(
            f"(L12) {available - length} trailing bytes after the declared payload"
        )
    return Entry(entry_kind, raw[ENTRY_HEADER_SIZE:])
