"""settlement.market's records: canonical round trips, strict decoding, every validation
error and the meters' signatures (forged, high-S, another meter's key)."""

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

from ledger.entries import EntryKind
from settlement.market import (
    CANCELLATION_DOMAIN,
    MARKET_ENROLMENT_DOMAIN,
    MARKET_KINDS,
    MARKET_RECORD_TYPES,
    MAX_QUANTITY,
    ORDER_DOMAIN,
    Clearing,
    IntervalResult,
    MarketDay,
    MarketEnrolment,
    Order,
    OrderCancellation,
    Side,
    Trade,
    decode_market_record,
    orders_digest,
    period_start,
)
from settlement.records import MAX_RATE, MeterKey, RecordFormatError, SignatureError
from zkgrid.errors import InvalidArgumentError, VerificationError

KEY = MeterKey.from_private_value(0x1234)
OTHER = MeterKey.from_private_value(0x5678)
ECDH = MeterKey.from_private_value(0x9ABC).public_key
CURVE_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
PERIOD = "2025-06-10"
START = period_start(PERIOD)


def make_enrolment(key: MeterKey = KEY) -> MarketEnrolment:
    return MarketEnrolment.create(key, "meter-1", ECDH)


def make_day(**over: Any) -> MarketDay:
    fields: dict[str, Any] = {
        "period": PERIOD,
        "interval_minutes": 240,
        "gate_closure": START - 43_200,
        "seller_deadline": START + 2 * 86_400,
        "buyer_deadline": START + 3 * 86_400,
        "credit_rate": 25,
    }
    fields.update(over)
    return MarketDay(**fields)


def make_order(key: MeterKey = KEY, **over: Any) -> Order:
    fields: dict[str, Any] = {
        "meter_id": "meter-1",
        "period": PERIOD,
        "side": Side.OFFER,
        "first_interval": 1,
        "last_interval": 4,
        "quantity_wh": 1_500,
        "limit_price": 120,
        "nonce": 42,
    }
    fields.update(over)
    return Order.create(key, **fields)


def make_cancellation(key: MeterKey = KEY) -> OrderCancellation:
    return OrderCancellation.create(key, "meter-1", make_order().order_hash())


def make_clearing() -> Clearing:
    return Clearing(
        PERIOD,
        orders_digest([make_order().order_hash()]),
        (
            IntervalResult(0, 0, ()),
            IntervalResult(150, 1_200, (Trade("s-1", "b-1", 700), Trade("s-2", "b-1", 500))),
            IntervalResult(0, 0, ()),
            IntervalResult(0, 0, ()),
            IntervalResult(0, 0, ()),
            IntervalResult(0, 0, ()),
        ),
    )


RECORDS: list[Callable[[], Any]] = [
    make_enrolment,
    make_day,
    make_order,
    make_cancellation,
    make_clearing,
]


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
    assert {k: t.__name__ for k, t in MARKET_RECORD_TYPES.items()} == {
        EntryKind.MARKET_ENROLMENT: "MarketEnrolment",
        EntryKind.MARKET_DAY: "MarketDay",
        EntryKind.ORDER: "Order",
        EntryKind.ORDER_CANCELLATION: "OrderCancellation",
        EntryKind.CLEARING: "Clearing",
        EntryKind.DELIVERY_ALLOCATION: "DeliveryAllocation",
        EntryKind.DELIVERY: "Delivery",
        EntryKind.DELIVERY_DEFAULT: "DeliveryDefault",
    }
    assert [int(k) for k in sorted(MARKET_KINDS)] == [8, 9, 10, 11, 12, 13, 14, 15]
    with pytest.raises(RecordFormatError):
        decode_market_record(EntryKind.TARIFF, make_day().encode())


def test_order_layout_and_hash() -> None:
    order = make_order()
    data = order.encode()
    body = (
        b"\x01"
        + struct.pack(">I", 7)
        + b"meter-1"
        + struct.pack(">I", 10)
        + PERIOD.encode()
        + b"\x01"  # OFFER
        + struct.pack(">HHIQQ", 1, 4, 1_500, 120, 42)
    )
    assert order.signed_bytes() == ORDER_DOMAIN + body
    assert data == body + struct.pack(">I", len(order.signature)) + order.signature
    assert order.order_hash() == hashlib.sha256(data).digest()
    bid = make_order(side=Side.BID)
    assert bid.encode()[len(body) - 25] == 2
    assert bid.order_hash() != order.order_hash()
    assert make_order(nonce=43).order_hash() != order.order_hash()


def test_enrolment_and_cancellation_layouts() -> None:
    enrolment = make_enrolment()
    body = b"\x01" + struct.pack(">I", 7) + b"meter-1" + ECDH
    assert enrolment.signed_bytes() == MARKET_ENROLMENT_DOMAIN + body
    assert enrolment.encode() == body + struct.pack(">I", len(enrolment.signature)) + (
        enrolment.signature
    )
    cancellation = make_cancellation()
    body = b"\x01" + struct.pack(">I", 7) + b"meter-1" + cancellation.order_hash
    assert cancellation.signed_bytes() == CANCELLATION_DOMAIN + body


def test_market_day_layout_and_defaults() -> None:
    day = MarketDay.with_defaults(PERIOD, 15, 7)
    assert day == make_day(interval_minutes=15, credit_rate=7)
    assert day.intervals == 96
    assert day.start == START == 1_749_513_600  # 2025-06-10 00:00 UTC
    assert day.gate_closure == START - 12 * 3600  # D - 1 12:00 UTC
    assert day.encode() == (
        b"\x01"
        + struct.pack(">I", 10)
        + PERIOD.encode()
        + struct.pack(">HQQQQ", 15, START - 43_200, START + 172_800, START + 259_200, 7)
    )


def test_clearing_layout() -> None:
    clearing = make_clearing()
    data = clearing.encode()
    assert data.startswith(
        b"\x01" + struct.pack(">I", 10) + PERIOD.encode() + clearing.orders_digest + b"\0\0\0\6"
    )
    trade = struct.pack(">I", 3) + b"s-1" + struct.pack(">I", 3) + b"b-1" + struct.pack(">I", 700)
    assert struct.pack(">QQI", 150, 1_200, 2) + trade in data
    assert clearing.clearing_hash() == hashlib.sha256(data).digest()


def test_orders_digest() -> None:
    hashes = [bytes([i]) * 32 for i in range(3)]
    expected = hashlib.sha256(b"zkgrid/market-orders v1" + b"\0\0\0\3" + b"".join(hashes))
    assert orders_digest(hashes) == expected.digest()
    assert orders_digest(hashes[::-1]) != orders_digest(hashes)
    assert orders_digest([]) == hashlib.sha256(b"zkgrid/market-orders v1\0\0\0\0").digest()
    for bad in (b"x" * 32, [b"short"], "text"):
        with pytest.raises(InvalidArgumentError):
            orders_digest(bad)  # type: ignore[arg-type]


def test_records_are_frozen() -> None:
    order = make_order()
    with pytest.raises(dataclasses.FrozenInstanceError):
        order.limit_price = 0  # type: ignore[misc]


# --------------------------------------------------------------------------- validation


def _replace(record: Any, **over: Any) -> Any:
    return dataclasses.replace(record, **over)


@pytest.mark.parametrize(
    "over",
    [
        {"meter_id": ""},
        {"meter_id": "a b"},
        {"meter_id": "x" * 65},
        {"encryption_key": ECDH[:32]},
        {"encryption_key": b"\x04" + ECDH[1:]},
        {"encryption_key": b"\x02" + b"\xff" * 32},  # x not below the field prime
        {"encryption_key": b"\x02" + (1).to_bytes(32, "big")},  # no point with this x
        {"encryption_key": "not bytes"},
        {"signature": b""},
        {"signature": b"\x30" * 7},
        {"signature": b"\x30" * 73},
        {"signature": "sig"},
    ],
)
def test_enrolment_rejects(over: dict[str, Any]) -> None:
    with pytest.raises(RecordFormatError):
        _replace(make_enrolment(), **over)


def test_enrolment_key_must_not_be_the_signing_key() -> None:
    with pytest.raises(InvalidArgumentError):
        MarketEnrolment.create(KEY, "meter-1", KEY.public_key)


@pytest.mark.parametrize(
    "over",
    [
        {"period": "2025-02-29"},
        {"period": 20250610},
        {"interval_minutes": 7},
        {"interval_minutes": 1},  # a meter's interval is at least 3 minutes
        {"interval_minutes": 0},
        {"interval_minutes": True},
        {"gate_closure": START},  # must be before the period starts
        {"gate_closure": -1},
        {"gate_closure": 2**64},
        {"seller_deadline": START + 86_400},  # must be after the period ends
        {"buyer_deadline": START + 2 * 86_400},  # must be after the seller's
        {"buyer_deadline": 2**64},
        {"credit_rate": MAX_RATE + 1},
        {"credit_rate": -1},
        {"credit_rate": 1.5},
    ],
)
def test_market_day_rejects(over: dict[str, Any]) -> None:
    with pytest.raises(RecordFormatError):
        make_day(**over)


def test_market_day_bounds_are_inclusive_where_documented() -> None:
    make_day(gate_closure=START - 1, seller_deadline=START + 86_401, credit_rate=MAX_RATE)
    make_day(gate_closure=0, buyer_deadline=2**64 - 1)
    with pytest.raises(RecordFormatError):
        MarketDay.with_defaults("1970-01-01", 15, 0)  # its gate closes before the epoch


@pytest.mark.parametrize(
    "over",
    [
        {"meter_id": "m/1"},
        {"period": "2025-6-10"},
        {"side": 1},
        {"side": "OFFER"},
        {"first_interval": -1},
        {"first_interval": 480},
        {"last_interval": 480},
        {"first_interval": 5, "last_interval": 4},
        {"quantity_wh": 0},
        {"quantity_wh": MAX_QUANTITY + 1},
        {"limit_price": MAX_RATE + 1},
        {"limit_price": -1},
        {"nonce": -1},
        {"nonce": 2**64},
        {"nonce": False},
        {"signature": b"\x00" * 73},
    ],
)
def test_order_rejects(over: dict[str, Any]) -> None:
    with pytest.raises(RecordFormatError):
        _replace(make_order(), **over)


def test_order_bounds() -> None:
    order = make_order(
        first_interval=0,
        last_interval=479,
        quantity_wh=MAX_QUANTITY,
        limit_price=MAX_RATE,
        nonce=2**64 - 1,
    )
    assert Order.decode(order.encode()) == order
    assert order.covers(0)
    assert order.covers(479)
    small = make_order()
    assert [t for t in range(480) if small.covers(t)] == [1, 2, 3, 4]
    a = make_order(first_interval=0, last_interval=2)
    assert a.overlaps(make_order(first_interval=2, last_interval=9))
    assert not a.overlaps(make_order(first_interval=3, last_interval=9))
    assert not a.overlaps(make_order(period="2025-06-11", first_interval=0, last_interval=2))


@pytest.mark.parametrize(
    "over",
    [{"order_hash": b"\x00" * 31}, {"order_hash": b"\x00" * 33}, {"meter_id": ""}],
)
def test_cancellation_rejects(over: dict[str, Any]) -> None:
    with pytest.raises(RecordFormatError):
        _replace(make_cancellation(), **over)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Trade("a", "a", 1),  # a self-trade
        lambda: Trade("a", "b", 0),
        lambda: Trade("a", "b", MAX_QUANTITY + 1),
        lambda: Trade("a", "", 1),
        lambda: IntervalResult(1, 0, ()),  # no volume, a price
        lambda: IntervalResult(10, 5, (Trade("a", "b", 4),)),  # volume is not the sum
        lambda: IntervalResult(10, 5, [Trade("a", "b", 5)]),  # type: ignore[arg-type]
        lambda: IntervalResult(10, 5, (("a", "b", 5),)),  # type: ignore[arg-type]
        lambda: IntervalResult(MAX_RATE + 1, 5, (Trade("a", "b", 5),)),
        lambda: IntervalResult(-1, 0, ()),
        lambda: IntervalResult(0, 2**64, ()),
        lambda: Clearing(PERIOD, bytes(32), (IntervalResult(0, 0, ()),) * 7),  # T must divide
        lambda: Clearing(PERIOD, bytes(32), ()),
        lambda: Clearing(PERIOD, bytes(32), (IntervalResult(0, 0, ()),) * 720),  # T <= 480
        lambda: Clearing(PERIOD, bytes(31), (IntervalResult(0, 0, ()),)),
        lambda: Clearing("2025-13-01", bytes(32), (IntervalResult(0, 0, ()),)),
        lambda: Clearing(PERIOD, bytes(32), [IntervalResult(0, 0, ())]),  # type: ignore[arg-type]
        lambda: Clearing(PERIOD, bytes(32), ((0, 0, ()),)),  # type: ignore[arg-type]
    ],
)
def test_clearing_rejects(make: Callable[[], Any]) -> None:
    with pytest.raises(RecordFormatError):
        make()


def test_clearing_accepts_a_crossing_at_price_zero() -> None:
    """A crossing of offers and bids at 0 clears at price 0 with trades (a volume 0 needs
    price 0, not the converse)."""
    result = IntervalResult(0, 3, (Trade("a", "b", 3),))
    clearing = Clearing(PERIOD, bytes(32), (result,))
    assert Clearing.decode(clearing.encode()) == clearing


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
    order = make_order()
    data = order.encode()
    side_at = 1 + 4 + 7 + 4 + 10
    for side in (0, 3, 255):
        with pytest.raises(RecordFormatError, match="side"):
            Order.decode(data[:side_at] + bytes([side]) + data[side_at + 1 :])
    quantity = struct.pack(">I", 1_500)
    with pytest.raises(RecordFormatError):
        Order.decode(data.replace(quantity, struct.pack(">I", 0), 1))
    intervals = struct.pack(">HH", 1, 4)
    with pytest.raises(RecordFormatError):
        Order.decode(data.replace(intervals, struct.pack(">HH", 4, 1), 1))
    with pytest.raises(RecordFormatError):
        Order.decode(data.replace(intervals, struct.pack(">HH", 1, 480), 1))
    with pytest.raises(RecordFormatError):
        Order.decode(data.replace(b"meter-1", b"meter 1", 1))
    price = struct.pack(">Q", 120)
    with pytest.raises(RecordFormatError):
        Order.decode(data.replace(price, struct.pack(">Q", 2**64 - 1), 1))
    # a clearing whose counts claim more than it holds, or more than allowed
    clearing = make_clearing().encode()
    count_at = 1 + 4 + 10 + 32
    with pytest.raises(RecordFormatError):
        Clearing.decode(clearing[:count_at] + struct.pack(">I", 481) + clearing[count_at + 4 :])
    with pytest.raises(RecordFormatError):
        Clearing.decode(
            clearing.replace(
                struct.pack(">QQI", 150, 1_200, 2), struct.pack(">QQI", 150, 1_200, 2**21), 1
            )
        )
    with pytest.raises(RecordFormatError):  # volume is not the sum of the trades
        Clearing.decode(
            clearing.replace(
                struct.pack(">QQI", 150, 1_200, 2), struct.pack(">QQI", 150, 1_201, 2), 1
            )
        )
    enrolment = make_enrolment().encode()
    with pytest.raises(RecordFormatError):
        MarketEnrolment.decode(enrolment.replace(ECDH, b"\x05" + ECDH[1:], 1))
    day = make_day().encode()
    with pytest.raises(RecordFormatError):
        MarketDay.decode(day.replace(struct.pack(">H", 240), struct.pack(">H", 7), 1))


# --------------------------------------------------------------------------- signatures


SIGNED: list[Callable[[MeterKey], Any]] = [make_enrolment, make_order, make_cancellation]


@pytest.mark.parametrize("factory", SIGNED)
def test_signatures_verify_under_the_signer_only(factory: Callable[[MeterKey], Any]) -> None:
    record = factory(KEY)
    record.verify_signature(KEY.public_key)
    with pytest.raises(SignatureError) as info:
        record.verify_signature(OTHER.public_key)  # another meter's key
    assert info.value.reason == "SIGNATURE_INVALID"
    assert isinstance(info.value, VerificationError)
    forged = factory(OTHER)  # the same fields signed by another meter
    with pytest.raises(SignatureError):
        forged.verify_signature(KEY.public_key)
    with pytest.raises(RecordFormatError):
        record.verify_signature(b"\x04" + KEY.public_key[1:])


@pytest.mark.parametrize("factory", SIGNED)
def test_high_s_is_refused(factory: Callable[[MeterKey], Any]) -> None:
    record = factory(KEY)
    r, s = decode_dss_signature(record.signature)
    assert s <= CURVE_ORDER // 2
    high = _replace(record, signature=encode_dss_signature(r, CURVE_ORDER - s))
    with pytest.raises(SignatureError, match="high-S"):
        high.verify_signature(KEY.public_key)


@pytest.mark.parametrize("factory", SIGNED)
def test_a_signature_covers_every_field_and_the_domain(factory: Callable[[MeterKey], Any]) -> None:
    record = factory(KEY)
    if isinstance(record, Order):
        others = [
            _replace(record, limit_price=121),
            _replace(record, side=Side.BID),
            _replace(record, nonce=43),
            _replace(record, quantity_wh=1_501),
            _replace(record, last_interval=5),
            _replace(record, period="2025-06-11"),
        ]
    elif isinstance(record, MarketEnrolment):
        others = [_replace(record, encryption_key=OTHER.public_key)]
    else:
        others = [_replace(record, order_hash=bytes(32))]
    others.append(_replace(record, meter_id="meter-2"))
    for other in others:
        with pytest.raises(SignatureError):
            other.verify_signature(KEY.public_key)
    # the same bytes signed under another record's domain do not verify
    body = record.signed_bytes()
    for domain in (ORDER_DOMAIN, MARKET_ENROLMENT_DOMAIN, CANCELLATION_DOMAIN):
        if not body.startswith(domain):
            wrong = KEY.sign(domain + body.split(b" v1", 1)[1])
            with pytest.raises(SignatureError):
                _replace(record, signature=wrong).verify_signature(KEY.public_key)
