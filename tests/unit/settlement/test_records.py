"""Settlement records: canonical encodings, strict decoding, contexts, meter signatures."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from ledger import Entry, EntryKind
from settlement.records import (
    BILL_PROOF_SIZE,
    MAX_BATCH_VALUES,
    MAX_FIXED_CHARGE,
    MAX_RATE,
    RECORD_TYPES,
    ZERO_HASH,
    Bill,
    MeterKey,
    MeterRegistration,
    MeterRevocation,
    ReadingBatch,
    RecordFormatError,
    SignatureError,
    Tariff,
    bill_coefficients,
    bill_proof_context,
    decode_record,
    intervals_per_day,
    metered_intervals,
    parse_period,
    reading_proof_context,
    validate_meter_id,
    validate_period,
    verify_meter_signature,
)
from zkgrid.errors import ProofFormatError, VerificationError, ZkgridError

ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
KEY = MeterKey.from_private_value(0x1234567890ABCDEF)
OTHER = MeterKey.from_private_value(0xFEDCBA0987654321)
# A valid compressed point (the meter key) reused as a dummy commitment.
POINT = KEY.public_key


def make_batch(
    interval_minutes: int = 240, sequence: int = 0, key: MeterKey = KEY, **over: Any
) -> ReadingBatch:
    t = 1440 // interval_minutes
    fields: dict[str, Any] = {
        "meter_id": "meter-1",
        "period": "2024-03-01",
        "interval_minutes": interval_minutes,
        "sequence": sequence,
        "prev_hash": ZERO_HASH if sequence == 0 else b"\x11" * 32,
        "commitments": [POINT] * (2 * t),
        "range_proof": b"\x02" * 700,
    }
    fields.update(over)
    return ReadingBatch.create(key, **fields)


def make_tariff(interval_minutes: int = 240, **over: Any) -> Tariff:
    t = 1440 // interval_minutes
    fields: dict[str, Any] = {
        "period": "2024-03-01",
        "interval_minutes": interval_minutes,
        "currency": "EUR",
        "fixed_charge": -1_500,
        "import_price": tuple(300 + i for i in range(t)),
        "export_credit": tuple(80 + i for i in range(t)),
    }
    fields.update(over)
    return Tariff(**fields)


def make_bill(**over: Any) -> Bill:
    fields: dict[str, Any] = {
        "meter_id": "meter-1",
        "period": "2024-03-01",
        "batch_hash": b"\x01" * 32,
        "tariff_hash": b"\x02" * 32,
        "total": -123_456,
        "proof": POINT + b"\x05" * 32,
    }
    fields.update(over)
    return Bill(**fields)


def make_registration() -> MeterRegistration:
    return MeterRegistration.create(KEY, "meter-1", 240)


RECORDS: list[Callable[[], Any]] = [
    make_registration,
    lambda: MeterRevocation("meter-1", "tampering détecté"),
    make_batch,
    make_tariff,
    make_bill,
]


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("factory", RECORDS)
def test_round_trip_and_entry(factory: Callable[[], Any]) -> None:
    record = factory()
    data = record.encode()
    assert data[0] == 1
    assert type(record).decode(data) == record
    entry = record.to_entry()
    assert entry == Entry(type(record).KIND, data)
    assert decode_record(entry) == record
    assert RECORD_TYPES[entry.kind] is type(record)


def test_known_bill_encoding() -> None:
    bill = make_bill(total=-2)
    expected = (
        b"\x01"
        + struct.pack(">I", 7)
        + b"meter-1"
        + struct.pack(">I", 10)
        + b"2024-03-01"
        + b"\x01" * 32
        + b"\x02" * 32
        + b"\xff" * 7
        + b"\xfe"
        + struct.pack(">I", 65)
        + POINT
        + b"\x05" * 32
    )
    assert bill.encode() == expected


def test_known_tariff_encoding_and_hash() -> None:
    tariff = make_tariff(
        interval_minutes=720, fixed_charge=5, import_price=(1, 2), export_credit=(3, 4)
    )
    expected = (
        b"\x01"
        + struct.pack(">I", 10)
        + b"2024-03-01"
        + struct.pack(">H", 720)
        + struct.pack(">I", 3)
        + b"EUR"
        + struct.pack(">q", 5)
        + struct.pack(">IQQ", 2, 1, 2)
        + struct.pack(">IQQ", 2, 3, 4)
    )
    assert tariff.encode() == expected
    assert tariff.tariff_hash() == hashlib.sha256(expected).digest()
    assert bill_coefficients(tariff) == [1, -3, 2, -4]
    assert tariff.bill_total([10, 20], [5, 1]) == 5 + 10 + 40 - 15 - 4


def test_batch_layout_signed_bytes_and_hash() -> None:
    batch = make_batch()
    data = batch.encode()
    sig_field = struct.pack(">I", len(batch.signature)) + batch.signature
    assert data.endswith(sig_field)
    assert batch.signed_bytes() == b"zkgrid/reading-batch v1" + data[: -len(sig_field)]
    assert batch.batch_hash() == hashlib.sha256(data).digest()
    assert batch.intervals == 6
    batch.verify_signature(KEY.public_key)
    with pytest.raises(SignatureError):
        batch.verify_signature(OTHER.public_key)


def _lp(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def test_signed_bytes_are_the_design_formulas() -> None:
    """settlement-v1.md's "Signed bytes" lines, byte for byte (version, length prefixes)."""
    reg = make_registration()
    assert reg.signed_bytes() == (
        b"zkgrid/meter-registration v1"
        + b"\x01"
        + _lp(reg.meter_id.encode())
        + reg.public_key
        + struct.pack(">H", reg.interval_minutes)
    )
    batch = make_batch()
    assert batch.signed_bytes() == (
        b"zkgrid/reading-batch v1"
        + b"\x01"
        + _lp(batch.meter_id.encode())
        + _lp(batch.period.encode())
        + struct.pack(">HQ", batch.interval_minutes, batch.sequence)
        + batch.prev_hash
        + struct.pack(">I", len(batch.commitments))
        + b"".join(batch.commitments)
        + _lp(batch.range_proof)
    )


def test_registration_pop() -> None:
    reg = make_registration()
    reg.verify_pop()
    data = reg.encode()
    assert reg.signed_bytes().startswith(b"zkgrid/meter-registration v1\x01")
    assert data[: -(4 + len(reg.pop_signature))] == reg.signed_bytes()[28:]
    forged = MeterRegistration("meter-2", reg.public_key, 240, reg.pop_signature)
    with pytest.raises(SignatureError):
        forged.verify_pop()
    other_key = MeterRegistration("meter-1", OTHER.public_key, 240, reg.pop_signature)
    with pytest.raises(SignatureError):
        other_key.verify_pop()


def test_contexts() -> None:
    ctx = reading_proof_context("m.1", "2024-03-01", 7)
    assert ctx == (
        b"zkgrid/readings v1"
        + struct.pack(">I", 3)
        + b"m.1"
        + struct.pack(">I", 10)
        + b"2024-03-01"
        + struct.pack(">Q", 7)
    )
    assert make_batch().proof_context() == reading_proof_context("meter-1", "2024-03-01", 0)
    assert bill_proof_context(b"\x01" * 32, b"\x02" * 32) == (
        b"zkgrid/bill v1" + b"\x01" * 32 + b"\x02" * 32
    )
    assert make_bill().proof_context() == bill_proof_context(b"\x01" * 32, b"\x02" * 32)
    with pytest.raises(RecordFormatError):
        bill_proof_context(b"\x01" * 31, b"\x02" * 32)
    with pytest.raises(RecordFormatError):
        reading_proof_context("m 1", "2024-03-01", 0)


# --------------------------------------------------------------------------- field validation


@pytest.mark.parametrize("minutes", [1, 5, 15, 60, 240, 1440])
def test_intervals_per_day(minutes: int) -> None:
    assert intervals_per_day(minutes) == 1440 // minutes


@pytest.mark.parametrize("minutes", [0, 7, 1441, -15, True, 15.0, "15"])
def test_intervals_per_day_rejects(minutes: object) -> None:
    with pytest.raises(RecordFormatError):
        intervals_per_day(minutes)


@pytest.mark.parametrize("period", ["2024-02-29", "1999-12-31", "0001-01-01"])
def test_periods(period: str) -> None:
    assert validate_period(period) == period
    assert parse_period(period).isoformat() == period


@pytest.mark.parametrize(
    "period",
    [
        "2023-02-29",
        "2024-13-01",
        "2024-00-10",
        "2024-1-01",
        "20240301",
        "2024-03-01T00:00",
        " 2024-03-01",
        "2024-03-01\n",
        "\uff12\uff10\uff12\uff14-03-01",
        "0000-01-01",
        "",
        None,
        20240301,
    ],
)
def test_bad_periods(period: object) -> None:
    with pytest.raises(RecordFormatError):
        validate_period(period)


@pytest.mark.parametrize("meter_id", ["a", "A-z_0.9", "x" * 64])
def test_meter_ids(meter_id: str) -> None:
    assert validate_meter_id(meter_id) == meter_id


@pytest.mark.parametrize("meter_id", ["", "x" * 65, "a b", "a/b", "é", "a\n", None, b"a"])
def test_bad_meter_ids(meter_id: object) -> None:
    with pytest.raises(RecordFormatError):
        validate_meter_id(meter_id)


BAD_FIELDS: list[tuple[Callable[..., Any], dict[str, Any]]] = [
    (make_batch, {"meter_id": "bad id"}),
    (make_batch, {"period": "2024-02-30"}),
    (make_batch, {"interval_minutes": 7}),
    (make_batch, {"sequence": -1}),
    (make_batch, {"sequence": 2**64}),
    (make_batch, {"prev_hash": b"\x00" * 31}),
    (make_batch, {"sequence": 0, "prev_hash": b"\x01" * 32}),
    (make_batch, {"commitments": [POINT] * 11}),
    (make_batch, {"commitments": [b"\x04" + POINT[1:]] * 12}),
    (make_batch, {"commitments": [b"\x02" + b"\xff" * 32] * 12}),
    (make_batch, {"commitments": [POINT[:32]] * 12}),
    (make_batch, {"range_proof": b""}),
    (make_batch, {"range_proof": b"\x00" * 70_000}),
    (make_tariff, {"currency": "eur"}),
    (make_tariff, {"currency": "EURO"}),
    (make_tariff, {"fixed_charge": MAX_FIXED_CHARGE + 1}),
    (make_tariff, {"import_price": (1,) * 5}),
    (make_tariff, {"export_credit": (1,) * 7}),
    (make_tariff, {"import_price": (MAX_RATE + 1,) + (1,) * 5}),
    (make_tariff, {"export_credit": (-1,) + (1,) * 5}),
    (make_tariff, {"import_price": [1] * 6}),
    (make_tariff, {"import_price": (True,) * 6}),
    (make_bill, {"batch_hash": b"\x00" * 33}),
    (make_bill, {"tariff_hash": "00" * 32}),
    (make_bill, {"total": 2**63}),
    (make_bill, {"proof": b"\x00" * 64}),
    (make_bill, {"meter_id": ""}),
]


@pytest.mark.parametrize(("factory", "over"), BAD_FIELDS)
def test_constructors_reject_bad_fields(factory: Callable[..., Any], over: dict[str, Any]) -> None:
    with pytest.raises(RecordFormatError) as info:
        factory(**over)
    assert info.value.reason == "RECORD_MALFORMED"
    assert isinstance(info.value, ProofFormatError)
    assert isinstance(info.value, ZkgridError)


def test_registration_rejects_off_curve_key_and_bad_interval() -> None:
    reg = make_registration()
    off_curve = b"\x02" + (1).to_bytes(32, "big")  # x = 1 has no point on P-256
    with pytest.raises(RecordFormatError):
        MeterRegistration("meter-1", off_curve, 240, reg.pop_signature)
    with pytest.raises(RecordFormatError):
        MeterRegistration("meter-1", b"\x04" + b"\x00" * 64, 240, reg.pop_signature)
    with pytest.raises(RecordFormatError):
        MeterRegistration("meter-1", reg.public_key, 0, reg.pop_signature)
    with pytest.raises(RecordFormatError):
        MeterRevocation("meter-1", "x" * 1025)


# --------------------------------------------------------------------------- strict decoding


@pytest.mark.parametrize("factory", RECORDS)
def test_decode_rejects_truncation_extension_and_versions(factory: Callable[[], Any]) -> None:
    record = factory()
    data = record.encode()
    cls = type(record)
    for cut in range(len(data)):
        with pytest.raises(RecordFormatError):
            cls.decode(data[:cut])
    with pytest.raises(RecordFormatError):
        cls.decode(data + b"\x00")
    for version in (0, 2, 255):
        with pytest.raises(RecordFormatError):
            cls.decode(bytes([version]) + data[1:])
    with pytest.raises(RecordFormatError):
        cls.decode("not bytes")


def _replace(data: bytes, old: bytes, new: bytes) -> bytes:
    assert data.count(old) == 1
    return data.replace(old, new)


def test_decode_rejects_bad_utf8_and_lengths() -> None:
    data = MeterRevocation("meter-1", "ok").encode()
    bad = _replace(data, struct.pack(">I", 2) + b"ok", struct.pack(">I", 2) + b"\xc3\x28")
    with pytest.raises(RecordFormatError):
        MeterRevocation.decode(bad)
    # an overlong UTF-8 encoding of "/" and a surrogate
    for raw in (b"\xc0\xaf", b"\xed\xa0\x80"):
        bad = _replace(data, struct.pack(">I", 2) + b"ok", struct.pack(">I", 2) + raw)
        with pytest.raises(RecordFormatError):
            MeterRevocation.decode(bad)
    huge = _replace(data, struct.pack(">I", 2) + b"ok", struct.pack(">I", 2**32 - 1) + b"ok")
    with pytest.raises(RecordFormatError):
        MeterRevocation.decode(huge)


def test_decode_rejects_every_bad_field_of_a_batch() -> None:
    batch = make_batch()
    data = batch.encode()
    # the commitment count disagrees with the interval
    count = struct.pack(">I", 12)
    with pytest.raises(RecordFormatError):
        ReadingBatch.decode(_replace(data, count, struct.pack(">I", 11)))
    with pytest.raises(RecordFormatError):
        ReadingBatch.decode(_replace(data, count, struct.pack(">I", 10**6)))
    # a commitment with a bad prefix
    bad_point = data.replace(POINT, b"\x05" + POINT[1:], 1)
    with pytest.raises(RecordFormatError):
        ReadingBatch.decode(bad_point)
    # the interval field
    with pytest.raises(RecordFormatError):
        ReadingBatch.decode(_replace(data, b"\x00\xf0", b"\x00\x07"))
    # the period
    with pytest.raises(RecordFormatError):
        ReadingBatch.decode(_replace(data, b"2024-03-01", b"2024-02-30"))
    # a signature longer than DER allows
    sig = struct.pack(">I", len(batch.signature)) + batch.signature
    with pytest.raises(RecordFormatError):
        ReadingBatch.decode(data[: -len(sig)] + struct.pack(">I", 73) + b"\x30" * 73)


def test_decode_rejects_bad_bill_and_tariff_fields() -> None:
    data = make_bill().encode()
    proof_len = struct.pack(">I", BILL_PROOF_SIZE)
    with pytest.raises(RecordFormatError):
        Bill.decode(_replace(data, proof_len, struct.pack(">I", 64))[:-1])
    with pytest.raises(RecordFormatError):
        Bill.decode(_replace(data, proof_len, struct.pack(">I", 66)) + b"\x00")
    tariff = make_tariff()
    tdata = tariff.encode()
    with pytest.raises(RecordFormatError):
        Tariff.decode(_replace(tdata, b"EUR", b"eur"))
    big = _replace(tdata, struct.pack(">Q", 300), struct.pack(">Q", 2**64 - 1))
    with pytest.raises(RecordFormatError):
        Tariff.decode(big)


def test_decode_record_rejects_other_kinds_and_types() -> None:
    with pytest.raises(RecordFormatError):
        decode_record(Entry(EntryKind.WITNESS_KEY, b"\x01"))
    with pytest.raises(RecordFormatError):
        decode_record(Entry(EntryKind.BILL, make_tariff().encode()))
    with pytest.raises(RecordFormatError):
        decode_record(b"raw")  # type: ignore[arg-type]


def test_records_are_frozen() -> None:
    bill = make_bill()
    with pytest.raises(AttributeError):
        bill.total = 0  # type: ignore[misc]


# --------------------------------------------------------------------------- signatures


def test_signatures_are_low_s_and_high_s_is_refused() -> None:
    message = b"hello"
    for _ in range(20):
        der = KEY.sign(message)
        r, s = decode_dss_signature(der)
        assert s <= ORDER // 2
        verify_meter_signature(KEY.public_key, message, der)
        high = encode_dss_signature(r, ORDER - s)
        with pytest.raises(SignatureError) as info:
            verify_meter_signature(KEY.public_key, message, high)
        assert info.value.reason == "SIGNATURE_INVALID"
        assert isinstance(info.value, VerificationError)


def test_signature_rejections() -> None:
    der = KEY.sign(b"m")
    with pytest.raises(SignatureError):
        verify_meter_signature(KEY.public_key, b"n", der)
    with pytest.raises(SignatureError):
        verify_meter_signature(OTHER.public_key, b"m", der)
    with pytest.raises(SignatureError):
        verify_meter_signature(KEY.public_key, b"m", der + b"\x00")
    with pytest.raises(SignatureError):
        verify_meter_signature(KEY.public_key, b"m", b"")
    # non-minimal DER: a length byte in long form
    _r, s = decode_dss_signature(der)
    body = der[2:]
    long_form = b"\x30\x81" + bytes([len(body)]) + body
    with pytest.raises(SignatureError):
        verify_meter_signature(KEY.public_key, b"m", long_form)
    with pytest.raises(SignatureError):
        verify_meter_signature(KEY.public_key, b"m", encode_dss_signature(0, s))
    with pytest.raises(RecordFormatError):
        verify_meter_signature(b"\x04" + KEY.public_key[1:], b"m", der)
    with pytest.raises(RecordFormatError):
        verify_meter_signature(b"\x02" + (1).to_bytes(32, "big"), b"m", der)


def test_meter_key_pem_round_trip() -> None:
    key = MeterKey.generate()
    assert len(key.public_key) == 33
    assert MeterKey.from_pem(key.to_pem()).public_key == key.public_key
    assert MeterKey.from_pem(key.to_pem(b"pw"), b"pw").public_key == key.public_key
    assert key.to_pem().hex() not in repr(key)
    with pytest.raises(ZkgridError):
        MeterKey.from_pem(b"not a pem")
    with pytest.raises(ZkgridError):
        MeterKey.from_private_value(0)


@pytest.mark.parametrize("minutes", [1, 2])
def test_a_meter_interval_whose_day_no_batch_can_prove_is_refused(minutes: int) -> None:
    """1- and 2-minute days are 2,880 and 1,440 values: over one proof's 1,024 (issue 10)."""
    with pytest.raises(RecordFormatError, match="3 minutes or more"):
        MeterRegistration.create(KEY, "meter-1", minutes)
    reg = make_registration()
    data = reg.encode()
    at = 1 + 4 + len(reg.meter_id) + 33  # version, meter_id, public key: then the interval
    assert data[at : at + 2] == struct.pack(">H", reg.interval_minutes)
    forged = data[:at] + struct.pack(">H", minutes) + data[at + 2 :]
    with pytest.raises(RecordFormatError, match="3 minutes or more"):
        MeterRegistration.decode(forged)


def test_batch_values_bound_is_the_range_proofs() -> None:
    from zkp.rangeproof import MAX_AGGREGATION

    assert MAX_BATCH_VALUES == MAX_AGGREGATION
    assert metered_intervals(3) == 480
