"""The neighbourhood market's records and its clearing rule (docs/design/market-v1.md).

Pure (stdlib, ``cryptography`` and :mod:`settlement.sealed`'s box format), in the style of
:mod:`settlement.records`: every
record is a frozen dataclass whose construction validates every field
(:class:`~settlement.records.RecordFormatError`, reason ``RECORD_MALFORMED``), with a
canonical ``encode()`` (:class:`ledger.encoding.CanonicalWriter`: record version 1 first,
integers big-endian, strings and lists ``u32``-prefixed) and a strict ``decode()`` that
accepts exactly those bytes. The records a meter signs (:class:`MarketEnrolment`,
:class:`Order`, :class:`OrderCancellation`, :class:`DeliveryAllocation`,
:class:`Delivery`) carry an ECDSA P-256 signature (canonical
DER, low-S) over their own domain string followed by the record cut before its trailing
signature field (``signed_bytes()``), made by ``create()`` with a
:class:`~settlement.records.MeterKey` and checked by ``verify_signature(public_key)``.

=====================  ====  ===========================================================
record                 kind  fields (in encoding order)
=====================  ====  ===========================================================
MarketEnrolment        8     meter_id, encryption_key (33 B), signature
MarketDay              9     period, interval_minutes (u16), gate_closure,
                             seller_deadline, buyer_deadline (u64 seconds since the
                             epoch), credit_rate (u64)
Order                  10    meter_id, period, side (u8), first_interval,
                             last_interval (u16), quantity_wh (u32), limit_price
                             (u64), nonce (u64), signature
OrderCancellation      11    meter_id, order_hash (32 B), signature
Clearing               12    period, orders_digest (32 B), u32 T, T x (price u64,
                             volume u64, u32 n, n x (seller, buyer, quantity u32))
DeliveryAllocation     13    meter_id, period, interval (u16), trade_index (u32),
                             clearing_hash (32 B), commitment A (33 B), proof (blob),
                             sealed_opening (102 B), signature
Delivery               14    the same fields, with D and the opening sealed to the seller
DeliveryDefault        15    period, interval (u16), trade_index (u32), clearing_hash
                             (32 B), step (u8: 1 allocation, 2 delivery)
=====================  ====  ===========================================================

:func:`clear` is the clearing rule: a pure function of the market day and the live
orders of its period in ledger order. A trade is named by its clearing, interval and
index (:func:`trade_id`). The state rules over these records (M1..M13, and R4..R6 as
for every meter's record) are :mod:`settlement.rules`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar, TypeVar

from cryptography.hazmat.primitives.asymmetric import ec

from ledger.encoding import CanonicalReader, CanonicalWriter
from ledger.entries import Entry, EntryKind
from settlement.fields import check_bytes as _bytes
from settlement.fields import check_int as _int
from settlement.periods import MINUTES_PER_DAY, RecordFormatError, period_ordinal, validate_period
from settlement.records import (
    MAX_CIRCUIT_PROOF_BYTES,
    MAX_RATE,
    POINT_SIZE,
    MeterKey,
    metered_intervals,
    validate_meter_id,
    verify_meter_signature,
)
from settlement.sealed import BOX_SIZE as SEALED_BOX_SIZE
from settlement.sealed import decode as decode_sealed
from zkgrid.errors import InvalidArgumentError

__all__ = [
    "ALLOCATION_DOMAIN",
    "CANCELLATION_DOMAIN",
    "DELIVERY_STEP_DOMAIN",
    "MARKET_ENROLMENT_DOMAIN",
    "MARKET_KINDS",
    "MARKET_RECORD_TYPES",
    "MARKET_RECORD_VERSION",
    "MAX_INTERVALS",
    "MAX_QUANTITY",
    "MAX_TRADES_PER_INTERVAL",
    "ORDERS_DIGEST_DOMAIN",
    "ORDER_DOMAIN",
    "TRADE_DOMAIN",
    "Clearing",
    "Delivery",
    "DeliveryAllocation",
    "DeliveryDefault",
    "DeliveryStep",
    "IntervalResult",
    "MarketDay",
    "MarketEnrolment",
    "MarketRecord",
    "Order",
    "OrderCancellation",
    "Side",
    "Trade",
    "clear",
    "decode_market_record",
    "orders_digest",
    "period_start",
    "trade_id",
]

MARKET_RECORD_VERSION = 1
HASH_SIZE = 32
#: A quantity per interval (Wh) is at most 2^32 - 1: a reading is range-proved below 2^32.
MAX_QUANTITY = 2**32 - 1
#: A market day's intervals at most: a meter's interval is at least 3 minutes
#: (:func:`settlement.periods.metered_intervals`), so T <= 480.
MAX_INTERVALS = 480
#: Trades one interval of a clearing holds at most (a clearing of ``n`` orders has fewer
#: than ``n`` trades per interval).
MAX_TRADES_PER_INTERVAL = 2**20
#: A clearing's interval volume is a sum of u32 trades; u64 holds any of them.
_MAX_VOLUME = 2**64 - 1
_MAX_U64 = 2**64 - 1
_DAY_SECONDS = 86_400
_EPOCH_ORDINAL = _dt.date(1970, 1, 1).toordinal()

MARKET_ENROLMENT_DOMAIN = b"zkgrid/market-enrolment v1"
ORDER_DOMAIN = b"zkgrid/market-order v1"
CANCELLATION_DOMAIN = b"zkgrid/market-cancel v1"
#: The domain of a clearing's ``orders_digest`` (:func:`orders_digest`).
ORDERS_DIGEST_DOMAIN = b"zkgrid/market-orders v1"
ALLOCATION_DOMAIN = b"zkgrid/market-allocation v1"
DELIVERY_STEP_DOMAIN = b"zkgrid/market-delivery-step v1"
#: The domain of a trade's id (:func:`trade_id`).
TRADE_DOMAIN = b"zkgrid/market-trade v1"

#: DER ECDSA P-256 signatures are 8..72 bytes (as settlement.records).
_MIN_DER, _MAX_DER = 8, 72
_MAX_ID_BYTES = 64
_MAX_PERIOD_BYTES = 10
_FIELD_PRIME = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
#: A placeholder signature while a record is built (replaced by ``create``).
_PLACEHOLDER_SIGNATURE = b"\x30\x06\x02\x01\x01\x02\x01\x01"
_U32 = struct.Struct(">I")


# --------------------------------------------------------------------------- field checks


def _signature(value: object) -> bytes:
    data = _bytes(value, "signature", max_size=_MAX_DER)
    if len(data) < _MIN_DER:
        raise RecordFormatError(f"signature is shorter than {_MIN_DER} bytes")
    return data


def _encryption_key(value: object) -> bytes:
    """A canonical compressed P-256 point on the curve (the ECDH key of an enrolment)."""
    data = _bytes(value, "encryption key", size=POINT_SIZE)
    if data[0] not in (2, 3):
        raise RecordFormatError("encryption key is not a compressed point encoding")
    if int.from_bytes(data[1:], "big") >= _FIELD_PRIME:
        raise RecordFormatError("encryption key: x-coordinate is not below the field prime")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), data)
    except ValueError:
        raise RecordFormatError("encryption key is not a point on P-256") from None
    return data


def period_start(period: object) -> int:
    """The period's start, 00:00 UTC, in seconds since the epoch (negative before 1970)."""
    return (period_ordinal(period) - _EPOCH_ORDINAL) * _DAY_SECONDS


_M = TypeVar("_M", bound="_MarketRecord")


class _MarketRecord:
    """Shared helpers: ``to_entry``, ``digest`` and the strict decode wrapper."""

    __slots__ = ()

    KIND: ClassVar[EntryKind]

    def encode(self) -> bytes:  # pragma: no cover - every record overrides it
        raise NotImplementedError

    def to_entry(self) -> Entry:
        """The ledger entry carrying this record."""
        return Entry(self.KIND, self.encode())

    def digest(self) -> bytes:
        """SHA-256 of the record's canonical bytes (its id on the ledger)."""
        return hashlib.sha256(self.encode()).digest()

    @classmethod
    def _decode_with(cls: type[_M], data: object, parse: Callable[[CanonicalReader], _M]) -> _M:
        reader = CanonicalReader(data, cls.__name__, MARKET_RECORD_VERSION, RecordFormatError)
        record = parse(reader)
        reader.finish()
        return record


# --------------------------------------------------------------------------- enrolment


@dataclass(frozen=True, slots=True)
class MarketEnrolment(_MarketRecord):
    """A registered meter joins the market with an ECDH P-256 public key, to which its
    counterparties encrypt the openings of their common trades (design, "Delivery").
    Distinct from the meter's signing key: :meth:`create` refuses the signing key."""

    KIND: ClassVar[EntryKind] = EntryKind.MARKET_ENROLMENT

    meter_id: str
    encryption_key: bytes
    signature: bytes

    def __post_init__(self) -> None:
        validate_meter_id(self.meter_id)
        _encryption_key(self.encryption_key)
        _signature(self.signature)

    def _unsigned(self) -> CanonicalWriter:
        w = CanonicalWriter(MARKET_RECORD_VERSION)
        w.text(self.meter_id)
        w.fixed(self.encryption_key)
        return w

    def signed_bytes(self) -> bytes:
        """``"zkgrid/market-enrolment v1" || encode()`` without the trailing signature."""
        return MARKET_ENROLMENT_DOMAIN + self._unsigned().getvalue()

    def encode(self) -> bytes:
        w = self._unsigned()
        w.blob(self.signature)
        return w.getvalue()

    def verify_signature(self, public_key: bytes) -> None:
        """Raise :class:`~settlement.records.SignatureError` unless ``public_key`` (the meter's
        registered key) signed this enrolment."""
        verify_meter_signature(public_key, self.signed_bytes(), self.signature)

    @classmethod
    def create(cls, key: MeterKey, meter_id: str, encryption_key: bytes) -> MarketEnrolment:
        """Enrol ``meter_id`` with ``encryption_key``, signed with the meter's ``key``."""
        if encryption_key == key.public_key:
            raise InvalidArgumentError(
                "the enrolment's encryption key must not be the meter's signing key"
            )
        unsigned = cls(meter_id, encryption_key, _PLACEHOLDER_SIGNATURE)
        return cls(meter_id, encryption_key, key.sign(unsigned.signed_bytes()))

    @classmethod
    def decode(cls, data: bytes) -> MarketEnrolment:
        def parse(r: CanonicalReader) -> MarketEnrolment:
            return cls(
                meter_id=r.text("meter_id", _MAX_ID_BYTES),
                encryption_key=r.fixed(POINT_SIZE, "encryption_key"),
                signature=r.blob("signature", _MAX_DER),
            )

        return cls._decode_with(data, parse)


# --------------------------------------------------------------------------- market day


@dataclass(frozen=True, slots=True)
class MarketDay(_MarketRecord):
    """The utility opens the market for a period (a UTC day).

    Times are seconds since the epoch (UTC): ``gate_closure < start of the period`` and
    ``end of the period < seller_deadline < buyer_deadline`` (the seller's delivery step
    needs its batch, which is taken once the period has ended; the buyer's step needs the
    seller's). ``interval_minutes`` is a meter's interval (at least 3 minutes): only meters
    with that interval trade. ``credit_rate``: the incentive credit per Wh delivered
    locally, micro-currency per Wh, ``0..MAX_RATE``. :meth:`with_defaults` gives the
    design's default times.
    """

    KIND: ClassVar[EntryKind] = EntryKind.MARKET_DAY

    period: str
    interval_minutes: int
    gate_closure: int
    seller_deadline: int
    buyer_deadline: int
    credit_rate: int

    def __post_init__(self) -> None:
        validate_period(self.period)
        metered_intervals(self.interval_minutes)
        for name in ("gate_closure", "seller_deadline", "buyer_deadline"):
            _int(getattr(self, name), name, 0, _MAX_U64)
        _int(self.credit_rate, "credit_rate", 0, MAX_RATE)
        start = period_start(self.period)
        if not self.gate_closure < start:
            raise RecordFormatError(
                f"gate_closure must be before the period starts ({start} seconds since the epoch)"
            )
        if not start + _DAY_SECONDS < self.seller_deadline:
            raise RecordFormatError("seller_deadline must be after the period ends")
        if not self.seller_deadline < self.buyer_deadline:
            raise RecordFormatError("buyer_deadline must be after seller_deadline")

    @classmethod
    def with_defaults(cls, period: str, interval_minutes: int, credit_rate: int) -> MarketDay:
        """The design's defaults for period D: gate closure D - 1 12:00 UTC, the seller's
        deadline the end of D + 1, the buyer's the end of D + 2."""
        start = period_start(period)
        return cls(
            period=period,
            interval_minutes=interval_minutes,
            gate_closure=start - _DAY_SECONDS // 2,
            seller_deadline=start + 2 * _DAY_SECONDS,
            buyer_deadline=start + 3 * _DAY_SECONDS,
            credit_rate=credit_rate,
        )

    @property
    def intervals(self) -> int:
        """T, the number of intervals of the period."""
        return metered_intervals(self.interval_minutes)

    @property
    def start(self) -> int:
        """The period's start (seconds since the epoch)."""
        return period_start(self.period)

    def encode(self) -> bytes:
        w = CanonicalWriter(MARKET_RECORD_VERSION)
        w.text(self.period)
        w.u16(self.interval_minutes)
        w.u64(self.gate_closure)
        w.u64(self.seller_deadline)
        w.u64(self.buyer_deadline)
        w.u64(self.credit_rate)
        return w.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> MarketDay:
        def parse(r: CanonicalReader) -> MarketDay:
            return cls(
                period=r.text("period", _MAX_PERIOD_BYTES),
                interval_minutes=r.u16("interval_minutes"),
                gate_closure=r.u64("gate_closure"),
                seller_deadline=r.u64("seller_deadline"),
                buyer_deadline=r.u64("buyer_deadline"),
                credit_rate=r.u64("credit_rate"),
            )

        return cls._decode_with(data, parse)


# --------------------------------------------------------------------------- orders


class Side(IntEnum):
    """An order's side: an offer sells, a bid buys. Encoded as one byte."""

    OFFER = 1
    BID = 2


@dataclass(frozen=True, slots=True)
class Order(_MarketRecord):
    """A meter offers (sells) or bids (buys) ``quantity_wh`` Wh in each interval
    ``first_interval..last_interval`` (both included, 0-based) of ``period`` at the limit
    price ``limit_price`` (micro-currency per Wh: an offer's lowest, a bid's highest).
    ``nonce`` is the client's: two orders with equal terms differ by it. The order's id is
    :meth:`order_hash`, the SHA-256 of the record (signature included)."""

    KIND: ClassVar[EntryKind] = EntryKind.ORDER

    meter_id: str
    period: str
    side: Side
    first_interval: int
    last_interval: int
    quantity_wh: int
    limit_price: int
    nonce: int
    signature: bytes

    def __post_init__(self) -> None:
        validate_meter_id(self.meter_id)
        validate_period(self.period)
        if not isinstance(self.side, Side):
            raise RecordFormatError("side must be Side.OFFER or Side.BID")
        _int(self.first_interval, "first_interval", 0, MAX_INTERVALS - 1)
        _int(self.last_interval, "last_interval", 0, MAX_INTERVALS - 1)
        if self.first_interval > self.last_interval:
            raise RecordFormatError("first_interval is after last_interval")
        _int(self.quantity_wh, "quantity_wh", 1, MAX_QUANTITY)
        _int(self.limit_price, "limit_price", 0, MAX_RATE)
        _int(self.nonce, "nonce", 0, _MAX_U64)
        _signature(self.signature)

    def covers(self, interval: int) -> bool:
        """Whether the order is for ``interval``."""
        return self.first_interval <= interval <= self.last_interval

    def overlaps(self, other: Order) -> bool:
        """Whether the two orders share a period and an interval."""
        return (
            self.period == other.period
            and self.first_interval <= other.last_interval
            and other.first_interval <= self.last_interval
        )

    def _unsigned(self) -> CanonicalWriter:
        w = CanonicalWriter(MARKET_RECORD_VERSION)
        w.text(self.meter_id)
        w.text(self.period)
        w.fixed(bytes([self.side]))
        w.u16(self.first_interval)
        w.u16(self.last_interval)
        w.u32(self.quantity_wh)
        w.u64(self.limit_price)
        w.u64(self.nonce)
        return w

    def signed_bytes(self) -> bytes:
        """``"zkgrid/market-order v1" || encode()`` without the trailing signature."""
        return ORDER_DOMAIN + self._unsigned().getvalue()

    def encode(self) -> bytes:
        w = self._unsigned()
        w.blob(self.signature)
        return w.getvalue()

    def order_hash(self) -> bytes:
        """SHA-256 of the encoded order, signature included: the order's id."""
        return self.digest()

    def verify_signature(self, public_key: bytes) -> None:
        """Raise :class:`~settlement.records.SignatureError` unless ``public_key`` signed it."""
        verify_meter_signature(public_key, self.signed_bytes(), self.signature)

    @classmethod
    def create(
        cls,
        key: MeterKey,
        *,
        meter_id: str,
        period: str,
        side: Side,
        first_interval: int,
        last_interval: int,
        quantity_wh: int,
        limit_price: int,
        nonce: int,
    ) -> Order:
        """Build and sign an order with the meter's ``key``."""
        unsigned = cls(
            meter_id,
            period,
            side,
            first_interval,
            last_interval,
            quantity_wh,
            limit_price,
            nonce,
            _PLACEHOLDER_SIGNATURE,
        )
        return cls(
            meter_id,
            period,
            side,
            first_interval,
            last_interval,
            quantity_wh,
            limit_price,
            nonce,
            key.sign(unsigned.signed_bytes()),
        )

    @classmethod
    def decode(cls, data: bytes) -> Order:
        def parse(r: CanonicalReader) -> Order:
            meter_id = r.text("meter_id", _MAX_ID_BYTES)
            period = r.text("period", _MAX_PERIOD_BYTES)
            side_byte = r.fixed(1, "side")[0]
            try:
                side = Side(side_byte)
            except ValueError:
                raise RecordFormatError(f"Order: unknown side {side_byte}") from None
            return cls(
                meter_id=meter_id,
                period=period,
                side=side,
                first_interval=r.u16("first_interval"),
                last_interval=r.u16("last_interval"),
                quantity_wh=r.u32("quantity_wh"),
                limit_price=r.u64("limit_price"),
                nonce=r.u64("nonce"),
                signature=r.blob("signature", _MAX_DER),
            )

        return cls._decode_with(data, parse)


@dataclass(frozen=True, slots=True)
class OrderCancellation(_MarketRecord):
    """A meter withdraws one of its live orders (named by its :meth:`Order.order_hash`)."""

    KIND: ClassVar[EntryKind] = EntryKind.ORDER_CANCELLATION

    meter_id: str
    order_hash: bytes
    signature: bytes

    def __post_init__(self) -> None:
        validate_meter_id(self.meter_id)
        _bytes(self.order_hash, "order_hash", size=HASH_SIZE)
        _signature(self.signature)

    def _unsigned(self) -> CanonicalWriter:
        w = CanonicalWriter(MARKET_RECORD_VERSION)
        w.text(self.meter_id)
        w.fixed(self.order_hash)
        return w

    def signed_bytes(self) -> bytes:
        """``"zkgrid/market-cancel v1" || encode()`` without the trailing signature."""
        return CANCELLATION_DOMAIN + self._unsigned().getvalue()

    def encode(self) -> bytes:
        w = self._unsigned()
        w.blob(self.signature)
        return w.getvalue()

    def verify_signature(self, public_key: bytes) -> None:
        """Raise :class:`~settlement.records.SignatureError` unless ``public_key`` signed it."""
        verify_meter_signature(public_key, self.signed_bytes(), self.signature)

    @classmethod
    def create(cls, key: MeterKey, meter_id: str, order_hash: bytes) -> OrderCancellation:
        """Cancel the order ``order_hash`` of ``meter_id``, signed with the meter's ``key``."""
        unsigned = cls(meter_id, order_hash, _PLACEHOLDER_SIGNATURE)
        return cls(meter_id, order_hash, key.sign(unsigned.signed_bytes()))

    @classmethod
    def decode(cls, data: bytes) -> OrderCancellation:
        def parse(r: CanonicalReader) -> OrderCancellation:
            return cls(
                meter_id=r.text("meter_id", _MAX_ID_BYTES),
                order_hash=r.fixed(HASH_SIZE, "order_hash"),
                signature=r.blob("signature", _MAX_DER),
            )

        return cls._decode_with(data, parse)


# --------------------------------------------------------------------------- clearing


@dataclass(frozen=True, slots=True)
class Trade:
    """One trade of an interval: ``seller`` delivers ``quantity`` Wh to ``buyer`` at the
    interval's price."""

    seller: str
    buyer: str
    quantity: int

    def __post_init__(self) -> None:
        validate_meter_id(self.seller)
        validate_meter_id(self.buyer)
        if self.seller == self.buyer:
            raise RecordFormatError(f"a trade of {self.seller!r} with itself")
        _int(self.quantity, "trade quantity", 1, MAX_QUANTITY)


@dataclass(frozen=True, slots=True)
class IntervalResult:
    """One interval's clearing: the uniform ``price`` (micro-currency per Wh), the matched
    ``volume`` (Wh) and the trades, numbered by their position. Without a crossing the
    volume is 0, the price 0 and there are no trades."""

    price: int
    volume: int
    trades: tuple[Trade, ...]

    def __post_init__(self) -> None:
        _int(self.price, "price", 0, MAX_RATE)
        _int(self.volume, "volume", 0, _MAX_VOLUME)
        if not isinstance(self.trades, tuple):
            raise RecordFormatError("trades must be a tuple of Trade")
        if len(self.trades) > MAX_TRADES_PER_INTERVAL:
            raise RecordFormatError(f"an interval has at most {MAX_TRADES_PER_INTERVAL} trades")
        for trade in self.trades:
            if not isinstance(trade, Trade):
                raise RecordFormatError("trades must be a tuple of Trade")
        if sum(trade.quantity for trade in self.trades) != self.volume:
            raise RecordFormatError("an interval's volume is not the sum of its trades")
        if self.volume == 0 and self.price != 0:
            raise RecordFormatError("an interval without trades has price 0")


@dataclass(frozen=True, slots=True)
class Clearing(_MarketRecord):
    """The market's result for a period: per interval of the day (T of them, in order) the
    price, the volume and the trades, as :func:`clear` computes them from the live orders
    whose :func:`orders_digest` is ``orders_digest``. Appended by the utility at gate
    closure; the rules accept only the recomputation (M9)."""

    KIND: ClassVar[EntryKind] = EntryKind.CLEARING

    period: str
    orders_digest: bytes
    intervals: tuple[IntervalResult, ...]

    def __post_init__(self) -> None:
        validate_period(self.period)
        _bytes(self.orders_digest, "orders_digest", size=HASH_SIZE)
        if not isinstance(self.intervals, tuple):
            raise RecordFormatError("intervals must be a tuple of IntervalResult")
        count = len(self.intervals)
        if not 1 <= count <= MAX_INTERVALS or MINUTES_PER_DAY % count:
            raise RecordFormatError(
                f"a clearing has one result per interval of the day (T = 1440 / interval"
                f" minutes, at most {MAX_INTERVALS}), not {count}"
            )
        for result in self.intervals:
            if not isinstance(result, IntervalResult):
                raise RecordFormatError("intervals must be a tuple of IntervalResult")

    def clearing_hash(self) -> bytes:
        """SHA-256 of the encoded clearing (what a delivery step names)."""
        return self.digest()

    def encode(self) -> bytes:
        w = CanonicalWriter(MARKET_RECORD_VERSION)
        w.text(self.period)
        w.fixed(self.orders_digest)
        w.count(len(self.intervals))
        for result in self.intervals:
            w.u64(result.price)
            w.u64(result.volume)
            w.count(len(result.trades))
            for trade in result.trades:
                w.text(trade.seller)
                w.text(trade.buyer)
                w.u32(trade.quantity)
        return w.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> Clearing:
        def parse(r: CanonicalReader) -> Clearing:
            period = r.text("period", _MAX_PERIOD_BYTES)
            digest = r.fixed(HASH_SIZE, "orders_digest")
            intervals = []
            for _ in range(r.count("intervals", MAX_INTERVALS)):
                price = r.u64("price")
                volume = r.u64("volume")
                trades = tuple(
                    Trade(
                        r.text("seller", _MAX_ID_BYTES),
                        r.text("buyer", _MAX_ID_BYTES),
                        r.u32("quantity"),
                    )
                    for _ in range(r.count("trades", MAX_TRADES_PER_INTERVAL))
                )
                intervals.append(IntervalResult(price, volume, trades))
            return cls(period, digest, tuple(intervals))

        return cls._decode_with(data, parse)


def orders_digest(order_hashes: Sequence[bytes]) -> bytes:
    """``SHA-256("zkgrid/market-orders v1" || u32 n || h_1 || ... || h_n)`` over the live
    orders' hashes in ledger order: what a clearing names as the orders it cleared."""
    if isinstance(order_hashes, bytes | str):
        raise InvalidArgumentError("order_hashes must be a sequence of 32-byte hashes")
    h = hashlib.sha256(ORDERS_DIGEST_DOMAIN)
    h.update(_U32.pack(len(order_hashes)))
    for order_hash in order_hashes:
        if not isinstance(order_hash, bytes) or len(order_hash) != HASH_SIZE:
            raise InvalidArgumentError("an order hash is 32 bytes")
        h.update(order_hash)
    return h.digest()


# --------------------------------------------------------------------------- the clearing rule


def _fills(ranked: list[tuple[int, int, Order]], volume: int, marginal: int) -> list[int]:
    """Step 4 of :func:`clear` on one side: ``ranked`` is the side's ``(price, index,
    order)`` in merit order. Orders priced strictly better than ``marginal`` are filled in
    full, the orders at ``marginal`` share the rest of ``volume`` pro rata (floor), the
    remaining Wh one each in ledger order (``ranked`` holds them in ledger order), the
    others get nothing."""
    fills = [0] * len(ranked)
    at_margin: list[int] = []
    better = 0
    for i, (price, _index, order) in enumerate(ranked):
        if price == marginal:
            at_margin.append(i)
        elif (price < marginal) == (order.side is Side.OFFER):
            fills[i] = order.quantity_wh
            better += order.quantity_wh
    rest = volume - better
    offered = sum(ranked[i][2].quantity_wh for i in at_margin)
    given = 0
    for i in at_margin:
        fills[i] = rest * ranked[i][2].quantity_wh // offered
        given += fills[i]
    for i in at_margin[: rest - given]:
        fills[i] += 1
    return fills


def _clear_interval(
    offers: list[tuple[int, int, Order]], bids: list[tuple[int, int, Order]]
) -> IntervalResult:
    offers.sort(key=lambda item: (item[0], item[1]))
    bids.sort(key=lambda item: (-item[0], item[1]))
    # 2. greedy matching: the volume and the marginal prices
    volume = 0
    i = j = 0
    left_offer = offers[0][2].quantity_wh if offers else 0
    left_bid = bids[0][2].quantity_wh if bids else 0
    ask = bid = -1
    while i < len(offers) and j < len(bids) and offers[i][0] <= bids[j][0]:
        ask, bid = offers[i][0], bids[j][0]
        matched = min(left_offer, left_bid)
        volume += matched
        left_offer -= matched
        left_bid -= matched
        if left_offer == 0:
            i += 1
            left_offer = offers[i][2].quantity_wh if i < len(offers) else 0
        if left_bid == 0:
            j += 1
            left_bid = bids[j][2].quantity_wh if j < len(bids) else 0
    if volume == 0:
        return IntervalResult(0, 0, ())
    # 3. the uniform price
    price = (ask + bid) // 2
    # 4. pro rata at the margin
    sold = _fills(offers, volume, ask)
    bought = _fills(bids, volume, bid)
    # 5. zip the filled offers and bids, both in merit order
    sellers = [(o[2].meter_id, q) for o, q in zip(offers, sold, strict=True) if q]
    buyers = [(b[2].meter_id, q) for b, q in zip(bids, bought, strict=True) if q]
    trades: list[Trade] = []
    i = j = 0
    left_offer, left_bid = sellers[0][1], buyers[0][1]
    while i < len(sellers):
        quantity = min(left_offer, left_bid)
        trades.append(Trade(sellers[i][0], buyers[j][0], quantity))
        left_offer -= quantity
        left_bid -= quantity
        if left_offer == 0:
            i += 1
            left_offer = sellers[i][1] if i < len(sellers) else 0
        if left_bid == 0:
            j += 1
            left_bid = buyers[j][1] if j < len(buyers) else 0
    return IntervalResult(price, volume, tuple(trades))


def clear(market_day: MarketDay, orders: Sequence[Order]) -> Clearing:
    """The clearing rule (docs/design/market-v1.md, "Clearing"): the market's result for
    ``market_day`` from the **live orders of its period in ledger order** (``orders[k]``
    has ledger rank ``k``: placed, not cancelled, its meter not revoked).

    Per interval ``t`` of the day, over the orders that cover ``t`` (each for its
    ``quantity_wh``):

    1. Offers are sorted by price ascending, bids by price descending; ties by ledger
       index (earlier first). This is merit order.
    2. Greedy matching: while the cheapest remaining offer's price is at most the highest
       remaining bid's, match the smaller of their remaining quantities. The matched
       volume ``Q_t`` is the most energy the two curves can exchange.
    3. The marginal prices ``a*`` and ``b*`` are those of the last offer and the last bid
       matched; the price is ``p_t = floor((a* + b*) / 2)``, so ``a* <= p_t <= b*``: every
       filled offer asks at most and every filled bid offers at least ``p_t``.
    4. Pro rata at the margin, on each side: orders priced strictly better than the
       side's marginal price (offers below ``a*``, bids above ``b*``) are filled in full;
       the orders at exactly the marginal price share the rest of ``Q_t`` in proportion to
       their quantities, in whole Wh (floor of ``rest * q / sum q``), and the Wh left over
       (fewer than the orders at the margin) go one each to those orders in ledger order.
       Orders priced worse than the margin get nothing. The ledger index (step 1's tie
       break) does not decide who at the margin is filled, only who gets a remainder Wh.
    5. Trades: the filled offers (in step 1's order) and the filled bids (in step 1's
       order) are zipped: each trade is ``(seller, buyer, min of the two remainders)`` at
       ``p_t``, numbered ``k = 0, 1, ...`` in that order. Both sides' fills sum to
       ``Q_t``, so the zip uses both up.

    Without a crossing (no offer at or below a bid, or no offer or no bid at all) the
    interval has price 0, volume 0 and no trades. The result's ``orders_digest`` is
    :func:`orders_digest` of the orders' hashes, in the order given.

    Preconditions, which the rules guarantee for live orders (:class:`InvalidArgumentError`
    otherwise): every order is of the market day's period and ends within its T intervals,
    and no meter has an offer and a bid for a common interval (M4: no self-trade).
    """
    if not isinstance(market_day, MarketDay):
        raise InvalidArgumentError("clear needs a MarketDay")
    if isinstance(orders, bytes | str):
        raise InvalidArgumentError("orders must be a sequence of Order")
    intervals = market_day.intervals
    per_interval: list[tuple[list[tuple[int, int, Order]], list[tuple[int, int, Order]]]] = [
        ([], []) for _ in range(intervals)
    ]
    sides: dict[tuple[str, int], Side] = {}
    for index, order in enumerate(orders):
        if not isinstance(order, Order):
            raise InvalidArgumentError("orders must be a sequence of Order")
        if order.period != market_day.period:
            raise InvalidArgumentError(
                f"order {index} is for {order.period}, the market day for {market_day.period}"
            )
        if order.last_interval >= intervals:
            raise InvalidArgumentError(
                f"order {index} ends at interval {order.last_interval}; the day has {intervals}"
            )
        item = (order.limit_price, index, order)
        for t in range(order.first_interval, order.last_interval + 1):
            if sides.setdefault((order.meter_id, t), order.side) is not order.side:
                raise InvalidArgumentError(
                    f"meter {order.meter_id!r} has an offer and a bid for interval {t}"
                    " (a self-trade: rule M4)"
                )
            per_interval[t][0 if order.side is Side.OFFER else 1].append(item)
    results = tuple(_clear_interval(offers, bids) for offers, bids in per_interval)
    digest = orders_digest([order.order_hash() for order in orders])
    return Clearing(market_day.period, digest, results)


# --------------------------------------------------------------------------- delivery


class DeliveryStep(IntEnum):
    """A trade's two delivery steps: the seller's allocation, then the buyer's delivery.
    Encoded as one byte in a :class:`DeliveryDefault`; :attr:`context_name` is the name
    the proofs' context binds (``settlement.market_circuits.ALLOCATION``, ``DELIVERY``)."""

    ALLOCATION = 1
    DELIVERY = 2

    @property
    def context_name(self) -> str:
        return self.name.lower()


def trade_id(clearing_digest: bytes, interval: int, index: int) -> bytes:
    """A trade's identity: ``SHA-256("zkgrid/market-trade v1" || clearing hash (32 B) ||
    u16 interval || u32 index)``, the 32-byte id the delivery proofs' context
    (``settlement.market_circuits.delivery_context``) and the sealed openings bind."""
    if not isinstance(clearing_digest, bytes) or len(clearing_digest) != HASH_SIZE:
        raise InvalidArgumentError("a clearing hash is 32 bytes")
    for value, what, high in (
        (interval, "interval", MAX_INTERVALS - 1),
        (index, "trade index", MAX_TRADES_PER_INTERVAL - 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
            raise InvalidArgumentError(f"a trade's {what} is an integer in [0, {high}]")
    return hashlib.sha256(
        TRADE_DOMAIN + clearing_digest + struct.pack(">HI", interval, index)
    ).digest()


def _commitment(value: object, what: str) -> bytes:
    """A canonical compressed P-256 point on the curve (a Pedersen commitment)."""
    data = _bytes(value, what, size=POINT_SIZE)
    if data[0] not in (2, 3):
        raise RecordFormatError(f"{what} is not a compressed point encoding")
    if int.from_bytes(data[1:], "big") >= _FIELD_PRIME:
        raise RecordFormatError(f"{what}: x-coordinate is not below the field prime")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), data)
    except ValueError:
        raise RecordFormatError(f"{what} is not a point on P-256") from None
    return data


def _trade_fields(record: _DeliveryStepRecord | DeliveryDefault) -> None:
    validate_period(record.period)
    _int(record.interval, "interval", 0, MAX_INTERVALS - 1)
    _int(record.trade_index, "trade_index", 0, MAX_TRADES_PER_INTERVAL - 1)
    _bytes(record.clearing_hash, "clearing_hash", size=HASH_SIZE)


_S = TypeVar("_S", bound="_DeliveryStepRecord")


@dataclass(frozen=True, slots=True)
class _DeliveryStepRecord(_MarketRecord):
    """The shape both delivery steps share: the party's meter, the trade (period, interval,
    trade index, clearing hash), the step's output commitment, its circuit proof, the
    output's opening sealed to the counterparty (:mod:`settlement.sealed`) and the party's
    signature over its domain and the record cut before the signature."""

    DOMAIN: ClassVar[bytes]
    STEP: ClassVar[DeliveryStep]

    meter_id: str
    period: str
    interval: int
    trade_index: int
    clearing_hash: bytes
    commitment: bytes
    proof: bytes
    sealed_opening: bytes
    signature: bytes

    def __post_init__(self) -> None:
        validate_meter_id(self.meter_id)
        _trade_fields(self)
        _commitment(self.commitment, "commitment")
        _bytes(self.proof, "circuit proof", max_size=MAX_CIRCUIT_PROOF_BYTES)
        if not self.proof:
            raise RecordFormatError("circuit proof is empty")
        _bytes(self.sealed_opening, "sealed_opening", size=SEALED_BOX_SIZE)
        decode_sealed(self.sealed_opening)  # SealedFormatError: version, ephemeral key
        _signature(self.signature)

    def trade_id(self) -> bytes:
        """The trade's id (:func:`trade_id`)."""
        return trade_id(self.clearing_hash, self.interval, self.trade_index)

    def _unsigned(self) -> CanonicalWriter:
        w = CanonicalWriter(MARKET_RECORD_VERSION)
        w.text(self.meter_id)
        w.text(self.period)
        w.u16(self.interval)
        w.u32(self.trade_index)
        w.fixed(self.clearing_hash)
        w.fixed(self.commitment)
        w.blob(self.proof)
        w.fixed(self.sealed_opening)
        return w

    def signed_bytes(self) -> bytes:
        """The record's domain, then ``encode()`` without the trailing signature."""
        return self.DOMAIN + self._unsigned().getvalue()

    def encode(self) -> bytes:
        w = self._unsigned()
        w.blob(self.signature)
        return w.getvalue()

    def verify_signature(self, public_key: bytes) -> None:
        """Raise :class:`~settlement.records.SignatureError` unless ``public_key`` signed it."""
        verify_meter_signature(public_key, self.signed_bytes(), self.signature)

    @classmethod
    def create(
        cls: type[_S],
        key: MeterKey,
        *,
        meter_id: str,
        period: str,
        interval: int,
        trade_index: int,
        clearing_hash: bytes,
        commitment: bytes,
        proof: bytes,
        sealed_opening: bytes,
    ) -> _S:
        """Build the step and sign it with the meter's ``key``."""
        fields = (
            meter_id,
            period,
            interval,
            trade_index,
            clearing_hash,
            commitment,
            proof,
            sealed_opening,
        )
        unsigned = cls(*fields, _PLACEHOLDER_SIGNATURE)
        return cls(*fields, key.sign(unsigned.signed_bytes()))

    @classmethod
    def decode(cls: type[_S], data: bytes) -> _S:
        def parse(r: CanonicalReader) -> _S:
            return cls(
                meter_id=r.text("meter_id", _MAX_ID_BYTES),
                period=r.text("period", _MAX_PERIOD_BYTES),
                interval=r.u16("interval"),
                trade_index=r.u32("trade_index"),
                clearing_hash=r.fixed(HASH_SIZE, "clearing_hash"),
                commitment=r.fixed(POINT_SIZE, "commitment"),
                proof=r.blob("proof", MAX_CIRCUIT_PROOF_BYTES),
                sealed_opening=r.fixed(SEALED_BOX_SIZE, "sealed_opening"),
                signature=r.blob("signature", _MAX_DER),
            )

        return cls._decode_with(data, parse)


@dataclass(frozen=True, slots=True)
class DeliveryAllocation(_DeliveryStepRecord):
    """The seller's step of a trade (docs/notes/market.md (D2)): ``commitment`` is
    ``A = a*G + alpha*H`` with ``a = min(q, E - sum of the seller's earlier deliveries in
    the interval)``, ``proof`` the allocation circuit's proof over the seller's committed
    export ``E`` of the interval, those deliveries and the public ``q``, with the context
    of the trade and the step; ``sealed_opening`` is ``(a, alpha)`` sealed to the buyer's
    enrolment key under that context. Signed by the seller's meter key
    (``"zkgrid/market-allocation v1"``)."""

    KIND: ClassVar[EntryKind] = EntryKind.DELIVERY_ALLOCATION
    DOMAIN: ClassVar[bytes] = ALLOCATION_DOMAIN
    STEP: ClassVar[DeliveryStep] = DeliveryStep.ALLOCATION


@dataclass(frozen=True, slots=True)
class Delivery(_DeliveryStepRecord):
    """The buyer's step of a trade (docs/notes/market.md (D3)): ``commitment`` is
    ``D = d*G + delta*H`` with ``d = min(a, I - sum of the buyer's earlier deliveries in
    the interval)``, ``proof`` the delivery circuit's proof over the seller's ``A``, the
    buyer's committed import ``I`` of the interval and those deliveries;
    ``sealed_opening`` is ``(d, delta)`` sealed to the seller's enrolment key. Signed by
    the buyer's meter key (``"zkgrid/market-delivery-step v1"``). ``D`` is the trade's
    delivered energy: both parties' bills and the later steps of the interval use it."""

    KIND: ClassVar[EntryKind] = EntryKind.DELIVERY
    DOMAIN: ClassVar[bytes] = DELIVERY_STEP_DOMAIN
    STEP: ClassVar[DeliveryStep] = DeliveryStep.DELIVERY


@dataclass(frozen=True, slots=True)
class DeliveryDefault(_MarketRecord):
    """The utility settles a step missed at its deadline (by role, unsigned): the trade's
    delivered energy is 0 (``D = O``, the identity). A defaulted allocation defaults the
    whole trade (no delivery step follows); a defaulted delivery leaves the allocation on
    the ledger but delivers nothing."""

    KIND: ClassVar[EntryKind] = EntryKind.DELIVERY_DEFAULT

    period: str
    interval: int
    trade_index: int
    clearing_hash: bytes
    step: DeliveryStep

    def __post_init__(self) -> None:
        _trade_fields(self)
        if not isinstance(self.step, DeliveryStep):
            raise RecordFormatError("step must be DeliveryStep.ALLOCATION or .DELIVERY")

    def trade_id(self) -> bytes:
        """The trade's id (:func:`trade_id`)."""
        return trade_id(self.clearing_hash, self.interval, self.trade_index)

    def encode(self) -> bytes:
        w = CanonicalWriter(MARKET_RECORD_VERSION)
        w.text(self.period)
        w.u16(self.interval)
        w.u32(self.trade_index)
        w.fixed(self.clearing_hash)
        w.fixed(bytes([self.step]))
        return w.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> DeliveryDefault:
        def parse(r: CanonicalReader) -> DeliveryDefault:
            period = r.text("period", _MAX_PERIOD_BYTES)
            interval = r.u16("interval")
            index = r.u32("trade_index")
            clearing_hash = r.fixed(HASH_SIZE, "clearing_hash")
            step_byte = r.fixed(1, "step")[0]
            try:
                step = DeliveryStep(step_byte)
            except ValueError:
                raise RecordFormatError(f"DeliveryDefault: unknown step {step_byte}") from None
            return cls(period, interval, index, clearing_hash, step)

        return cls._decode_with(data, parse)


# --------------------------------------------------------------------------- dispatch

MarketRecord = (
    MarketEnrolment
    | MarketDay
    | Order
    | OrderCancellation
    | Clearing
    | DeliveryAllocation
    | Delivery
    | DeliveryDefault
)

#: The record type of each market entry kind (record version 1).
MARKET_RECORD_TYPES: Mapping[EntryKind, type[MarketRecord]] = {
    EntryKind.MARKET_ENROLMENT: MarketEnrolment,
    EntryKind.MARKET_DAY: MarketDay,
    EntryKind.ORDER: Order,
    EntryKind.ORDER_CANCELLATION: OrderCancellation,
    EntryKind.CLEARING: Clearing,
    EntryKind.DELIVERY_ALLOCATION: DeliveryAllocation,
    EntryKind.DELIVERY: Delivery,
    EntryKind.DELIVERY_DEFAULT: DeliveryDefault,
}

#: The market's entry kinds.
MARKET_KINDS: frozenset[EntryKind] = frozenset(MARKET_RECORD_TYPES)


def decode_market_record(kind: EntryKind, payload: bytes) -> MarketRecord:
    """The market record an entry of ``kind`` carries; :class:`RecordFormatError` for bytes
    that are not one, or a kind that is not a market kind."""
    record_type = MARKET_RECORD_TYPES.get(kind)
    if record_type is None:
        name = kind.name if isinstance(kind, EntryKind) else repr(kind)
        raise RecordFormatError(f"entry kind {name} carries no market record")
    return record_type.decode(payload)
