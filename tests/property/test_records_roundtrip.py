"""Property tests of settlement.records: every valid record round-trips; mutations never decode
to a different record silently."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from settlement.records import (
    MAX_FIXED_CHARGE,
    MAX_RATE,
    Bill,
    MeterKey,
    MeterRegistration,
    MeterRevocation,
    ReadingBatch,
    Record,
    RecordFormatError,
    Tariff,
    decode_record,
)

SETTINGS = settings(max_examples=60, deadline=None)
KEY = MeterKey.from_private_value(0xC0FFEE)
INTERVALS = [m for m in (15, 30, 60, 120, 180, 240, 360, 480, 720, 1440)]

meter_ids = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-",
    min_size=1,
    max_size=64,
)
periods = st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31)).map(
    lambda d: d.isoformat()
)
hashes = st.binary(min_size=32, max_size=32)
# Syntactically valid compressed points (on-curve is zkp's business for commitments).
points = st.tuples(st.sampled_from([2, 3]), st.binary(min_size=32, max_size=32)).map(
    lambda t: bytes([t[0]]) + (b"\x00" + t[1][1:] if t[1][0] == 0xFF else t[1])
)


@st.composite
def batches(draw: st.DrawFn) -> ReadingBatch:
    minutes = draw(st.sampled_from([240, 360, 720, 1440]))
    t = 1440 // minutes
    sequence = draw(st.integers(0, 2**64 - 1))
    return ReadingBatch.create(
        KEY,
        meter_id=draw(meter_ids),
        period=draw(periods),
        interval_minutes=minutes,
        sequence=sequence,
        prev_hash=bytes(32) if sequence == 0 else draw(hashes),
        commitments=draw(st.lists(points, min_size=2 * t, max_size=2 * t)),
        range_proof=draw(st.binary(min_size=1, max_size=1200)),
    )


@st.composite
def tariffs(draw: st.DrawFn) -> Tariff:
    minutes = draw(st.sampled_from(INTERVALS))
    t = 1440 // minutes
    rates = st.lists(st.integers(0, MAX_RATE), min_size=t, max_size=t).map(tuple)
    return Tariff(
        period=draw(periods),
        interval_minutes=minutes,
        currency=draw(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=3, max_size=3)),
        fixed_charge=draw(st.integers(-MAX_FIXED_CHARGE, MAX_FIXED_CHARGE)),
        import_price=draw(rates),
        export_credit=draw(rates),
    )


bills = st.builds(
    Bill,
    meter_id=meter_ids,
    period=periods,
    batch_hash=hashes,
    tariff_hash=hashes,
    total=st.integers(-(2**63), 2**63 - 1),
    proof=st.tuples(points, st.binary(min_size=32, max_size=32)).map(lambda t: t[0] + t[1]),
)
revocations = st.builds(MeterRevocation, meter_id=meter_ids, reason=st.text(max_size=200))
registrations = st.builds(
    lambda mid, minutes: MeterRegistration.create(KEY, mid, minutes),
    meter_ids,
    st.sampled_from(INTERVALS),
)
records: st.SearchStrategy[Record] = st.one_of(
    batches(), tariffs(), bills, revocations, registrations
)


@SETTINGS
@given(records)
def test_round_trip(record: Record) -> None:
    data = record.encode()
    assert type(record).decode(data) == record
    assert decode_record(record.to_entry()) == record
    assert type(record).decode(data).encode() == data


@SETTINGS
@given(records, st.data())
def test_single_byte_mutations_never_decode_to_the_same_bytes(
    record: Record, data: st.DataObject
) -> None:
    """Strictness: a decoded record always re-encodes to exactly its input bytes."""
    raw = bytearray(record.encode())
    # ECDSA signatures vary in length (random nonces): draw the position independently of it.
    i = data.draw(st.integers(0, 2**16)) % len(raw)
    raw[i] ^= data.draw(st.integers(1, 255))
    try:
        decoded = type(record).decode(bytes(raw))
    except RecordFormatError:
        return
    assert decoded.encode() == bytes(raw)
    assert decoded != record


@SETTINGS
@given(records, st.binary(min_size=1, max_size=8))
def test_trailing_bytes_are_refused(record: Record, extra: bytes) -> None:
    try:
        type(record).decode(record.encode() + extra)
    except RecordFormatError:
        return
    raise AssertionError("trailing bytes were accepted")
