"""The entry envelope: version || kind (u16 BE) || length (u32 BE) || payload."""

from __future__ import annotations

import struct

import pytest

from ledger import leaf_hash
from ledger.entries import (
    ENTRY_FORMAT_VERSION,
    ENTRY_HEADER_SIZE,
    Entry,
    EntryKind,
    decode_entry,
    encode_entry,
)
from ledger.errors import LedgerArgumentError, LedgerFormatError


def test_kind_values_are_fixed() -> None:
    assert {k.name: k.value for k in EntryKind} == {
        "METER_REGISTRATION": 1,
        "METER_REVOCATION": 2,
        "READING_BATCH": 3,
        "TARIFF": 4,
        "BILL": 5,
        "WITNESS_KEY": 6,
        "COSIGNATURE": 7,
        "MARKET_ENROLMENT": 8,
        "MARKET_DAY": 9,
        "ORDER": 10,
        "ORDER_CANCELLATION": 11,
        "CLEARING": 12,
        "DELIVERY_ALLOCATION": 13,
        "DELIVERY": 14,
        "DELIVERY_DEFAULT": 15,
    }


def test_known_encoding() -> None:
    assert ENTRY_FORMAT_VERSION == 1
    assert ENTRY_HEADER_SIZE == 7
    assert encode_entry(EntryKind.BILL, b"abc") == bytes.fromhex("01 0005 00000003") + b"abc"
    assert encode_entry(EntryKind.TARIFF, b"") == bytes.fromhex("01 0004 00000000")


@pytest.mark.parametrize("kind", list(EntryKind))
@pytest.mark.parametrize("payload", [b"", b"\x00", b"payload", bytes(range(256)) * 5])
def test_round_trip(kind: EntryKind, payload: bytes) -> None:
    data = encode_entry(kind, payload)
    entry = decode_entry(data)
    assert entry == Entry(kind, payload)
    assert isinstance(entry.kind, EntryKind)
    assert entry.encode() == data
    assert entry.leaf_hash() == leaf_hash(data)


def test_leaf_hash_depends_on_kind() -> None:
    assert Entry(EntryKind.BILL, b"x").leaf_hash() != Entry(EntryKind.TARIFF, b"x").leaf_hash()


def test_entry_is_frozen() -> None:
    entry = Entry(EntryKind.BILL, b"x")
    with pytest.raises(AttributeError):
        entry.payload = b"y"  # type: ignore[misc]


GOOD = encode_entry(EntryKind.READING_BATCH, b"hello")


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "shorter than"),
        (GOOD[:6], "shorter than"),
        (b"\x00" + GOOD[1:], "version 0"),
        (b"\x02" + GOOD[1:], "version 2"),
        (b"\xff" + GOOD[1:], "version 255"),
        (GOOD[:1] + b"\x00\x00" + GOOD[3:], "kind 0"),
        (GOOD[:1] + b"\x00\x10" + GOOD[3:], "kind 16"),
        (GOOD[:1] + b"\x01\x03" + GOOD[3:], "kind 259"),
        (GOOD[:-1], "truncated"),
        (GOOD[:3] + struct.pack(">I", 6) + b"hello", "truncated"),
        (GOOD[:3] + struct.pack(">I", 0xFFFFFFFF) + b"hello", "truncated"),
        (GOOD + b"\x00", "trailing"),
        (GOOD[:3] + struct.pack(">I", 4) + b"hello", "trailing"),
        (GOOD + GOOD, "trailing"),
    ],
)
def test_strict_decoding(data: bytes, match: str) -> None:
    with pytest.raises(LedgerFormatError, match=match):
        decode_entry(data)


def test_decode_rejects_non_bytes() -> None:
    with pytest.raises(LedgerFormatError):
        decode_entry("not bytes")  # type: ignore[arg-type]


def test_every_single_byte_mutation_of_the_header_is_rejected_or_changes_the_entry() -> None:
    for pos in range(ENTRY_HEADER_SIZE):
        for value in range(256):
            if value == GOOD[pos]:
                continue
            mutated = GOOD[:pos] + bytes([value]) + GOOD[pos + 1 :]
            try:
                entry = decode_entry(mutated)
            except LedgerFormatError:
                continue
            # Only the kind byte can change and still decode: to another valid kind.
            assert pos == 2
            assert entry.kind != EntryKind.READING_BATCH
            assert entry.encode() == mutated


@pytest.mark.parametrize("kind", [0, 16, -1, True, "BILL", None])
def test_encode_rejects_bad_kind(kind: object) -> None:
    with pytest.raises(LedgerArgumentError):
        encode_entry(kind, b"")  # type: ignore[arg-type]


def test_encode_accepts_int_kind_and_rejects_non_bytes_payload() -> None:
    assert encode_entry(5, b"x") == encode_entry(EntryKind.BILL, b"x")  # type: ignore[arg-type]
    with pytest.raises(LedgerArgumentError):
        encode_entry(EntryKind.BILL, "text")  # type: ignore[arg-type]
