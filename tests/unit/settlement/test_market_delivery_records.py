"""settlement.market's delivery records (kinds 13..15: DeliveryAllocation, Delivery,
DeliveryDefault) and the trade id: canonical round trips, the layout, strict decoding,
every validation error, and the parties' signatures (domains, every field covered)."""

from __future__ import annotations

import dataclasses
import hashlib
import struct
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.entries import EntryKind
from settlement import market_circuits
from settlement.market import (
    ALLOCATION_DOMAIN,
    DELIVERY_STEP_DOMAIN,
    MARKET_KINDS,
    MARKET_RECORD_TYPES,
    MAX_INTERVALS,
    MAX_TRADES_PER_INTERVAL,
    TRADE_DOMAIN,
    Delivery,
    DeliveryAllocation,
    DeliveryDefault,
    DeliveryStep,
    decode_market_record,
    trade_id,
)
from settlement.market_circuits import ALLOCATION, delivery_context, prove_allocation
from settlement.records import MAX_CIRCUIT_PROOF_BYTES, MeterKey, RecordFormatError, SignatureError
from settlement.sealed import BOX_SIZE, EncryptionKey, SealedFormatError, seal
from zkgrid.errors import InvalidArgumentError, Reason
from zkp.pedersen import commit

KEY = MeterKey.from_private_value(0x5E11E7)
OTHER = MeterKey.from_private_value(0xB0B)
BUYER = EncryptionKey.from_private_bytes((0xB1).to_bytes(32, "big"))
CURVE_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
PERIOD = "2025-06-10"
CLEARING = hashlib.sha256(b"a clearing").digest()
TRADE = trade_id(CLEARING, 3, 1)
EXPORT = commit(2_000, 77)
#: A real allocation step (min(1500, 2000 - 400) = 1500) and its sealed opening.
STEP = prove_allocation(TRADE, EXPORT, (2_000, 77), [commit(400, 5)], [(400, 5)], 1_500)
BOX = seal(1_500, STEP.blinding, BUYER.public_key, delivery_context(TRADE, ALLOCATION))


def step_fields(**over: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "meter_id": "s-1",
        "period": PERIOD,
        "interval": 3,
        "trade_index": 1,
        "clearing_hash": CLEARING,
        "commitment": STEP.commitment,
        "proof": STEP.proof,
        "sealed_opening": BOX,
    }
    fields.update(over)
    return fields


def make_allocation(key: MeterKey = KEY, **over: Any) -> DeliveryAllocation:
    return DeliveryAllocation.create(key, **step_fields(**over))


def make_delivery(key: MeterKey = KEY, **over: Any) -> Delivery:
    return Delivery.create(key, **step_fields(meter_id="b-1", **over))


def make_default(**over: Any) -> DeliveryDefault:
    fields: dict[str, Any] = {
        "period": PERIOD,
        "interval": 3,
        "trade_index": 1,
        "clearing_hash": CLEARING,
        "step": DeliveryStep.DELIVERY,
    }
    fields.update(over)
    return DeliveryDefault(**fields)


RECORDS: list[Callable[[], Any]] = [make_allocation, make_delivery, make_default]


def _replace(record: Any, **changes: Any) -> Any:
    return dataclasses.replace(record, **changes)


# --------------------------------------------------------------------------- trade ids


def test_trade_id() -> None:
    expected = hashlib.sha256(TRADE_DOMAIN + CLEARING + struct.pack(">HI", 3, 1)).digest()
    assert expected == TRADE
    assert TRADE_DOMAIN == b"zkgrid/market-trade v1"
    ids = {
        trade_id(c, t, k)
        for c in (CLEARING, bytes(32))
        for t in (0, 3, MAX_INTERVALS - 1)
        for k in (0, 1, MAX_TRADES_PER_INTERVAL - 1)
    }
    assert len(ids) == 18
    assert market_circuits.delivery_context(TRADE, "allocation").endswith(TRADE)
    for bad in (
        (CLEARING[:31], 0, 0),
        ("00" * 32, 0, 0),
        (CLEARING, -1, 0),
        (CLEARING, MAX_INTERVALS, 0),
        (CLEARING, True, 0),
        (CLEARING, 0, MAX_TRADES_PER_INTERVAL),
        (CLEARING, 0, 1.0),
    ):
        with pytest.raises(InvalidArgumentError):
            trade_id(*bad)
    for record in (make_allocation(), make_delivery(), make_default()):
        assert record.trade_id() == TRADE


def test_steps_are_the_circuits_step_names() -> None:
    assert tuple(s.context_name for s in DeliveryStep) == market_circuits.STEPS
    assert [int(s) for s in DeliveryStep] == [1, 2]
    assert DeliveryAllocation.STEP is DeliveryStep.ALLOCATION
    assert Delivery.STEP is DeliveryStep.DELIVERY


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("factory", RECORDS)
def test_round_trip_and_entry(factory: Callable[[], Any]) -> None:
    record = factory()
    data = record.encode()
    assert data[0] == 1
    assert type(record).decode(data) == record
    entry = record.to_entry()
    assert entry.payload == data
    assert entry.kind in MARKET_KINDS
    assert MARKET_RECORD_TYPES[entry.kind] is type(record)
    assert decode_market_record(entry.kind, data) == record
    assert record.digest() == hashlib.sha256(data).digest()


def test_kinds() -> None:
    kinds = [r.KIND for r in (DeliveryAllocation, Delivery, DeliveryDefault)]
    assert kinds == [EntryKind.DELIVERY_ALLOCATION, EntryKind.DELIVERY, EntryKind.DELIVERY_DEFAULT]
    assert [int(k) for k in kinds] == [13, 14, 15]
    # the two steps share a shape, never an identity
    allocation = make_allocation()
    as_delivery = Delivery(*(getattr(allocation, f.name) for f in dataclasses.fields(allocation)))
    assert as_delivery.encode() == allocation.encode()
    assert as_delivery != allocation  # type: ignore[comparison-overlap]


def test_step_layout() -> None:
    record = make_allocation()
    data = record.encode()
    expected = (
        b"\x01"
        + struct.pack(">I", 3)
        + b"s-1"
        + struct.pack(">I", 10)
        + PERIOD.encode()
        + struct.pack(">HI", 3, 1)
        + CLEARING
        + STEP.commitment
        + struct.pack(">I", len(STEP.proof))
        + STEP.proof
        + BOX
    )
    assert data == expected + struct.pack(">I", len(record.signature)) + record.signature
    assert record.signed_bytes() == ALLOCATION_DOMAIN + expected
    assert make_delivery().signed_bytes().startswith(DELIVERY_STEP_DOMAIN + b"\x01")
    assert ALLOCATION_DOMAIN == b"zkgrid/market-allocation v1"
    assert DELIVERY_STEP_DOMAIN == b"zkgrid/market-delivery-step v1"
    assert len(BOX) == BOX_SIZE == 102
    assert len(STEP.proof) == 886  # the circuits' size: 128 padded multipliers


def test_default_layout() -> None:
    data = make_default().encode()
    assert data == (
        b"\x01" + struct.pack(">I", 10) + PERIOD.encode() + struct.pack(">HI", 3, 1) + CLEARING
    ) + b"\x02"
    assert make_default(step=DeliveryStep.ALLOCATION).encode()[-1] == 1


def test_records_are_frozen() -> None:
    for record in (make_allocation(), make_default()):
        with pytest.raises(dataclasses.FrozenInstanceError):
            record.period = "2025-06-11"  # type: ignore[misc]


# --------------------------------------------------------------------------- validation

OFF_CURVE = b"\x02" + (1).to_bytes(32, "big")  # x = 1 has no point on P-256


@pytest.mark.parametrize(
    "over",
    [
        {"meter_id": ""},
        {"meter_id": "a b"},
        {"period": "2025-6-10"},
        {"interval": -1},
        {"interval": MAX_INTERVALS},
        {"interval": True},
        {"trade_index": -1},
        {"trade_index": MAX_TRADES_PER_INTERVAL},
        {"trade_index": "1"},
        {"clearing_hash": CLEARING[:31]},
        {"clearing_hash": bytearray(CLEARING)},
        {"commitment": STEP.commitment[:32]},
        {"commitment": b"\x04" + STEP.commitment[1:]},
        {"commitment": b"\x02" + b"\xff" * 32},
        {"commitment": OFF_CURVE},
        {"proof": b""},
        {"proof": b"\x00" * (MAX_CIRCUIT_PROOF_BYTES + 1)},
        {"proof": "proof"},
        {"sealed_opening": BOX[:-1]},
        {"sealed_opening": BOX + b"\x00"},
        {"sealed_opening": b"\x02" + BOX[1:]},
        {"sealed_opening": BOX[:1] + OFF_CURVE + BOX[34:]},
        {"signature": b"\x30\x06"},
        {"signature": b"\x30" * 73},
    ],
)
@pytest.mark.parametrize("cls", [DeliveryAllocation, Delivery])
def test_steps_reject(cls: type[Any], over: dict[str, Any]) -> None:
    fields = step_fields(signature=b"\x30\x06\x02\x01\x01\x02\x01\x01")
    fields.update(over)
    with pytest.raises(RecordFormatError) as info:
        cls(**fields)
    assert info.value.reason is Reason.RECORD_MALFORMED


def test_a_bad_box_is_a_sealed_format_error() -> None:
    with pytest.raises(SealedFormatError):
        make_allocation(sealed_opening=BOX[:1] + OFF_CURVE + BOX[34:])


@pytest.mark.parametrize(
    "over",
    [
        {"period": "2025-13-01"},
        {"interval": MAX_INTERVALS},
        {"trade_index": -1},
        {"clearing_hash": b""},
        {"step": 1},
        {"step": "allocation"},
    ],
)
def test_default_rejects(over: dict[str, Any]) -> None:
    with pytest.raises(RecordFormatError):
        make_default(**over)


def test_bounds_are_inclusive() -> None:
    for interval, index in ((0, 0), (MAX_INTERVALS - 1, MAX_TRADES_PER_INTERVAL - 1)):
        for record in (
            make_allocation(interval=interval, trade_index=index),
            make_default(interval=interval, trade_index=index),
        ):
            assert type(record).decode(record.encode()) == record
    longest = make_allocation(proof=b"\x01" * MAX_CIRCUIT_PROOF_BYTES)
    assert DeliveryAllocation.decode(longest.encode()) == longest


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


def test_decode_rejects_bad_fields() -> None:
    default = make_default().encode()
    for step in (0, 3, 255):
        with pytest.raises(RecordFormatError, match="step"):
            DeliveryDefault.decode(default[:-1] + bytes([step]))
    data = make_allocation().encode()
    with pytest.raises(RecordFormatError):  # the sealed box's version
        DeliveryAllocation.decode(data.replace(BOX, b"\x07" + BOX[1:], 1))
    with pytest.raises(RecordFormatError):  # a commitment off the curve
        DeliveryAllocation.decode(data.replace(STEP.commitment, OFF_CURVE, 1))
    with pytest.raises(RecordFormatError):  # interval 480
        DeliveryAllocation.decode(
            data.replace(struct.pack(">HI", 3, 1), struct.pack(">HI", MAX_INTERVALS, 1), 1)
        )
    proof_length = struct.pack(">I", len(STEP.proof))
    with pytest.raises(RecordFormatError):  # a proof length beyond the bound
        DeliveryAllocation.decode(
            data.replace(proof_length, struct.pack(">I", MAX_CIRCUIT_PROOF_BYTES + 1), 1)
        )
    with pytest.raises(RecordFormatError):  # an empty proof
        DeliveryAllocation.decode(
            data.replace(proof_length + STEP.proof, struct.pack(">I", 0), 1)
        )
    # an allocation's bytes are not a default, a default's not a step
    with pytest.raises(RecordFormatError):
        DeliveryDefault.decode(data)
    with pytest.raises(RecordFormatError):
        Delivery.decode(default)


#: Fixed bytes for hypothesis (ECDSA signatures are randomised).
SEEDS: tuple[Any, ...] = (make_allocation(), make_delivery(), make_default())


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_encodings_decode_exactly_or_not_at_all(data: st.DataObject) -> None:
    """A typed format error, or a record that re-encodes to the very bytes."""
    record = data.draw(st.sampled_from(SEEDS))
    encoded = bytearray(record.encode())
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(encoded) - 1))
        encoded[at] = data.draw(st.integers(0, 255))
    try:
        decoded = type(record).decode(bytes(encoded))
    except RecordFormatError:
        return
    assert decoded.encode() == bytes(encoded)


# --------------------------------------------------------------------------- signatures

SIGNED: list[Callable[[MeterKey], Any]] = [make_allocation, make_delivery]


@pytest.mark.parametrize("factory", SIGNED)
def test_signatures_verify_under_the_signer_only(factory: Callable[[MeterKey], Any]) -> None:
    record = factory(KEY)
    record.verify_signature(KEY.public_key)
    with pytest.raises(SignatureError) as info:
        record.verify_signature(OTHER.public_key)
    assert info.value.reason is Reason.SIGNATURE_INVALID
    forged = factory(OTHER)
    with pytest.raises(SignatureError):
        forged.verify_signature(KEY.public_key)
    r, s = decode_dss_signature(record.signature)
    high = _replace(record, signature=encode_dss_signature(r, CURVE_ORDER - s))
    with pytest.raises(SignatureError, match="high-S"):
        high.verify_signature(KEY.public_key)


@pytest.mark.parametrize("factory", SIGNED)
def test_a_signature_covers_every_field_and_the_domain(factory: Callable[[MeterKey], Any]) -> None:
    record = factory(KEY)
    others = [
        _replace(record, meter_id="x-1"),
        _replace(record, period="2025-06-11"),
        _replace(record, interval=4),
        _replace(record, trade_index=0),
        _replace(record, clearing_hash=bytes(32)),
        _replace(record, commitment=EXPORT.to_bytes()),
        _replace(record, proof=STEP.proof[:-1] + bytes([STEP.proof[-1] ^ 1])),
        _replace(record, sealed_opening=seal(1, 1, BUYER.public_key, b"")),
    ]
    for other in others:
        with pytest.raises(SignatureError):
            other.verify_signature(KEY.public_key)
    # the other step's type over the same fields and signature: another domain
    twin_type = Delivery if isinstance(record, DeliveryAllocation) else DeliveryAllocation
    twin = twin_type(*(getattr(record, f.name) for f in dataclasses.fields(record)))
    with pytest.raises(SignatureError):
        twin.verify_signature(KEY.public_key)
