"""Regenerate tests/vectors/market/*.json: the market's records and rules as data (issue 13).

    .venv/bin/python tests/vectors/market/make_market_vectors.py

* ``records.json``: known-answer vectors of the records of :mod:`settlement.market`
  (``MarketEnrolment``, ``MarketDay``, ``Order``, ``OrderCancellation``, ``Clearing``):
  each record's fields, its canonical encoding, its digest (an order's hash, a clearing's
  hash), the bytes a meter signs and the signer's public key; and clearings of given
  orders (:func:`settlement.market.clear`): the market day, the orders' encodings in
  ledger order and the clearing's encoding. Later versions of zkgrid must keep decoding
  these bytes to these fields and clearing these orders to these bytes: do not
  regenerate them to make a failing test pass (a failure means the format or the
  clearing rule changed).
* ``rules.json``: the market's state rules (settlement-v1.md, "Rules": R4..R6 and
  M1..M9 with market records, and C7) in the format of ``tests/vectors/rules/*.json``
  (kind, payload, reason, rule, same_as) plus ``time``, the entry's time in seconds
  since the epoch (rules.py, "Time"). Every entry is ``"via": "ledger"``: no request of
  the service carries a market record yet. Replayed on the pure rules, with C7 checked
  by the test, by ``tests/unit/settlement/test_market_vectors.py``.

* ``delivery_records.json``: known answers of the trade id (:func:`settlement.market.trade_id`)
  and of the delivery records (kinds 13..15: ``DeliveryAllocation``, ``Delivery``,
  ``DeliveryDefault``), each step with the public inputs its proof verifies over.
* ``delivery_rules.json``: the delivery rules (R4..R6, M10..M13 with the delivery records,
  C7 and C8) of one cleared market day, in the rule vectors' format with ``time``; real
  batches, proofs and sealed openings. Replayed on the pure rules, with C7 and C8 checked
  over the state (``settlement.rules.allocation_statement_for``, ``delivery_statement_for``),
  by ``tests/unit/settlement/test_market_delivery_vectors.py``.

Deterministic: meter keys from fixed scalars with RFC 6979 signatures
(``tests/vectors/rules/make_rule_vectors.py``), batches' range proofs from seeded
scalars, sealed boxes with fixed ephemeral keys and nonces. The delivery steps' circuit
proofs are not (``prove_allocation`` and ``prove_delivery`` draw their own randomness): a
regeneration rewrites ``records.json`` and ``rules.json`` byte for byte, and gives the two
delivery files other proof bytes (and signatures over them) with the same meaning. Do not
regenerate the delivery files to make a failing test pass either: their stored proofs
must keep verifying.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: import the repository's test helpers
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from ledger.entries import EntryKind
from settlement import rules
from settlement.market import (
    Clearing,
    Delivery,
    DeliveryAllocation,
    DeliveryDefault,
    DeliveryStep,
    IntervalResult,
    MarketDay,
    MarketEnrolment,
    Order,
    OrderCancellation,
    Side,
    Trade,
    clear,
    period_start,
    trade_id,
)
from settlement.market_circuits import (
    ALLOCATION,
    DELIVERY,
    allocation_of,
    delivery_context,
    delivery_of,
    prove_allocation,
    prove_delivery,
)
from settlement.records import (
    ZERO_HASH,
    MeterKey,
    MeterRevocation,
    ReadingBatch,
    Tariff,
    reading_proof_context,
)
from settlement.sealed import EncryptionKey, open_sealed, seal
from tests.vectors.rules.make_rule_vectors import _ORDER, _key, _Meter, _Vector
from zkp.drbg import SeededScalars
from zkp.group import Scalar
from zkp.pedersen import commit
from zkp.rangeproof import RangeProof

FORMAT = "zkgrid/market v1"
DIRECTORY = Path(__file__).parent

P = "2025-06-10"  # the market day of the rule vector
P2 = "2025-06-11"  # a second market day, with a tariff
P3 = "2025-06-12"  # a market day without a tariff
P4 = "2025-06-13"  # a market day whose tariff has other intervals
P5 = "2025-06-14"  # no market day


def encryption_key(name: str) -> bytes:
    """A fixed P-256 point for an enrolment (the scalar stays in the vectors' generator)."""
    return _key(f"ecdh/{name}").public_key


def enrolment(meter: _Meter, name: str | None = None) -> MarketEnrolment:
    return MarketEnrolment.create(meter.key, meter.meter_id, encryption_key(name or meter.meter_id))


def order(
    meter: _Meter,
    side: Side,
    first: int,
    last: int,
    quantity: int,
    price: int,
    *,
    period: str = P,
    nonce: int = 1,
    key: MeterKey | None = None,
) -> Order:
    return Order.create(
        key or meter.key,
        meter_id=meter.meter_id,
        period=period,
        side=side,
        first_interval=first,
        last_interval=last,
        quantity_wh=quantity,
        limit_price=price,
        nonce=nonce,
    )


def cancel(meter: _Meter, target: Order | bytes, key: MeterKey | None = None) -> OrderCancellation:
    order_hash = target if isinstance(target, bytes) else target.order_hash()
    return OrderCancellation.create(key or meter.key, meter.meter_id, order_hash)


# --------------------------------------------------------------------------- known answers


def _order_fields(o: Order) -> dict[str, Any]:
    return {
        "meter_id": o.meter_id,
        "period": o.period,
        "side": o.side.name,
        "first_interval": o.first_interval,
        "last_interval": o.last_interval,
        "quantity_wh": o.quantity_wh,
        "limit_price": o.limit_price,
        "nonce": o.nonce,
        "signature_hex": o.signature.hex(),
    }


def _day_fields(d: MarketDay) -> dict[str, Any]:
    return {
        "period": d.period,
        "interval_minutes": d.interval_minutes,
        "gate_closure": d.gate_closure,
        "seller_deadline": d.seller_deadline,
        "buyer_deadline": d.buyer_deadline,
        "credit_rate": d.credit_rate,
    }


def _clearing_fields(c: Clearing) -> dict[str, Any]:
    return {
        "period": c.period,
        "orders_digest_hex": c.orders_digest.hex(),
        "intervals": [
            {
                "price": r.price,
                "volume": r.volume,
                "trades": [[t.seller, t.buyer, t.quantity] for t in r.trades],
            }
            for r in c.intervals
        ],
    }


def _signed_case(
    name: str,
    record: MarketEnrolment | Order | OrderCancellation | DeliveryAllocation | Delivery,
    signer: _Meter,
) -> dict[str, Any]:
    return {
        "name": name,
        "public_key_hex": signer.key.public_key.hex(),
        "encoding_hex": record.encode().hex(),
        "signed_bytes_hex": record.signed_bytes().hex(),
        "digest_hex": record.digest().hex(),
    }


def _clear_case(name: str, day: MarketDay, orders: list[Order]) -> dict[str, Any]:
    result = clear(day, orders)
    return {
        "name": name,
        "market_day_hex": day.encode().hex(),
        "orders_hex": [o.encode().hex() for o in orders],
        "clearing_hex": result.encode().hex(),
        "clearing": _clearing_fields(result),
    }


def records() -> dict[str, Any]:
    s1, s2, s3, b1, b2, b3 = (_Meter(n) for n in ("s-1", "s-2", "s-3", "b-1", "b-2", "b-3"))
    enrol = enrolment(s1)
    enrolments = [
        {
            **_signed_case("s-1", enrol, s1),
            "fields": {
                "meter_id": enrol.meter_id,
                "encryption_key_hex": enrol.encryption_key.hex(),
                "signature_hex": enrol.signature.hex(),
            },
        }
    ]
    day = MarketDay.with_defaults(P, 240, 25)
    days = [
        {"name": "defaults", "fields": _day_fields(day), "encoding_hex": day.encode().hex()},
        {
            "name": "15-minute, custom times",
            "fields": _day_fields(
                custom := MarketDay(
                    "2026-01-01",
                    15,
                    period_start("2026-01-01") - 1,
                    period_start("2026-01-02") + 1,
                    2**64 - 1,
                    2**19,
                )
            ),
            "encoding_hex": custom.encode().hex(),
        },
    ]
    offer = order(s1, Side.OFFER, 0, 5, 1_500, 120, nonce=7)
    bid = order(b1, Side.BID, 3, 3, 2**32 - 1, 2**19, nonce=2**64 - 1)
    orders = [
        {**_signed_case(name, o, m), "fields": _order_fields(o)}
        for name, o, m in (("offer", offer, s1), ("bid", bid, b1))
    ]
    cancellation = cancel(s1, offer)
    cancellations = [
        {
            **_signed_case("cancel the offer", cancellation, s1),
            "fields": {
                "meter_id": cancellation.meter_id,
                "order_hash_hex": cancellation.order_hash.hex(),
                "signature_hex": cancellation.signature.hex(),
            },
        }
    ]
    hand = Clearing(
        "2025-06-10",
        bytes(range(32)),
        (
            IntervalResult(0, 0, ()),
            IntervalResult(150, 1_200, (Trade("s-1", "b-1", 700), Trade("s-2", "b-1", 500))),
            IntervalResult(0, 5, (Trade("s-1", "b-2", 5),)),
            IntervalResult(2**19, 2**32 - 1, (Trade("a", "b", 2**32 - 1),)),
            IntervalResult(0, 0, ()),
            IntervalResult(0, 0, ()),
        ),
    )
    clearings = [
        {
            "name": "by hand",
            "fields": _clearing_fields(hand),
            "encoding_hex": hand.encode().hex(),
            "digest_hex": hand.clearing_hash().hex(),
        }
    ]
    small = MarketDay.with_defaults(P, 360, 10)  # 4 intervals
    cases = [
        _clear_case(
            "one seller, several buyers",
            small,
            [
                order(s1, Side.OFFER, 0, 3, 1_000, 100),
                order(b1, Side.BID, 0, 1, 300, 200),
                order(b2, Side.BID, 1, 2, 500, 180),
                order(b3, Side.BID, 0, 3, 400, 90),
            ],
        ),
        _clear_case(
            "one buyer, several sellers",
            small,
            [
                order(b1, Side.BID, 0, 3, 1_000, 200),
                order(s1, Side.OFFER, 0, 3, 300, 150),
                order(s2, Side.OFFER, 0, 1, 500, 120),
                order(s3, Side.OFFER, 2, 3, 800, 210),
            ],
        ),
        _clear_case(
            "pro rata at the margin, with a remainder",
            small,
            [
                order(s1, Side.OFFER, 0, 0, 100, 100),
                order(s2, Side.OFFER, 0, 0, 200, 100),
                order(s3, Side.OFFER, 0, 0, 400, 100),
                order(b1, Side.BID, 0, 0, 350, 140),
                order(b2, Side.BID, 0, 0, 101, 160),
            ],
        ),
        _clear_case(
            "no crossing",
            small,
            [
                order(s1, Side.OFFER, 0, 3, 100, 200),
                order(b1, Side.BID, 0, 3, 100, 199),
            ],
        ),
        _clear_case("no orders", small, []),
    ]
    return {
        "format": FORMAT,
        "description": "the market's records (record version 1): fields, canonical encodings,"
        " digests, signed bytes; clearings of given orders in ledger order",
        "enrolments": enrolments,
        "market_days": days,
        "orders": orders,
        "cancellations": cancellations,
        "clearings": clearings,
        "clear": cases,
    }


# --------------------------------------------------------------------------- rule vector


class _TimedVector(_Vector):
    """A rule vector whose entries carry their time (seconds since the epoch)."""

    def __init__(self, name: str, description: str, time: int) -> None:
        super().__init__(name, description)
        self.time = time

    def raw(self, *args: Any, **kwargs: Any) -> int:
        kwargs["via"] = "ledger"  # no request of the service carries a market record yet
        position = super().raw(*args, **kwargs)
        self.entries[position]["time"] = self.time
        return position


def _tariff(period: str, interval_minutes: int = 240) -> Tariff:
    t = 1440 // interval_minutes
    imports = [300] * t
    exports = [50] * t
    imports[3 % t], exports[3 % t] = 400, 80
    return Tariff(period, interval_minutes, "EUR", 1_000_000, tuple(imports), tuple(exports))


def market_rules() -> _Vector:
    day = MarketDay.with_defaults(P, 240, 25)
    gate = day.gate_closure
    v = _TimedVector(
        "market",
        "R4..R6, M1..M9 and C7: enrolments, market days, orders, cancellations, clearings;"
        " each entry carries its time",
        gate - 86_400,
    )
    s1, s2, b1, b2, r1, x1, h1 = (
        _Meter("s-1"),
        _Meter("s-2"),
        _Meter("b-1"),
        _Meter("b-2"),
        _Meter("r-1"),
        _Meter("x-1"),
        _Meter("h-1", interval_minutes=60),
    )
    for m in (s1, s2, b1, b2, r1, x1, h1):
        v.add(m.registration(), note=f"register {m.meter_id} ({m.interval_minutes} minutes)")
    v.add(_tariff(P), note=f"the tariff of {P}: [50, 300] per interval, [80, 400] in interval 3")
    v.add(_tariff(P2), note=f"the tariff of {P2}")
    v.add(_tariff(P4, 60), note=f"the tariff of {P4}, with 60-minute intervals")
    ghost = _Meter("ghost")
    v.add(enrolment(ghost), "UNKNOWN_METER", "R4", "an enrolment of an unregistered meter")
    v.add(order(s1, Side.OFFER, 0, 5, 500, 120), "NOT_ENROLLED", "M1", "s-1 is not enrolled")
    first = v.add(enrolment(s1), note="enrol s-1")
    v.add(enrolment(s1), "DUPLICATE_ENROLMENT", "R5", "the identical enrolment", same_as=first)
    v.add(enrolment(s1, "s-1/other"), "ENROLMENT_EXISTS", "M6", "s-1 again, another key")
    for m in (s2, b1, b2, r1, h1):
        v.add(enrolment(m), note=f"enrol {m.meter_id}")
    v.add(
        order(s1, Side.OFFER, 0, 5, 500, 120), "UNKNOWN_MARKET_DAY", "M1", f"no market day for {P}"
    )
    first_day = v.add(day, note=f"the market day of {P}: 240 minutes, default times")
    v.add(day, "DUPLICATE_MARKET_DAY", "R5", "the identical market day", same_as=first_day)
    v.add(
        MarketDay.with_defaults(P, 240, 30),
        "MARKET_DAY_EXISTS",
        "M7",
        f"another market day for {P} (another credit rate)",
    )
    for p in (P2, P3):
        v.add(MarketDay.with_defaults(p, 240, 25), note=f"the market day of {p}")
    v.add(MarketDay.with_defaults(P4, 240, 25), note=f"the market day of {P4} (240 minutes)")
    v.add(
        order(h1, Side.BID, 0, 0, 100, 200),
        "INTERVALS_MISMATCH",
        "M1",
        "h-1 reports every 60 minutes; the market trades 240",
    )
    v.add(
        order(s1, Side.OFFER, 4, 6, 100, 120),
        "INTERVALS_MISMATCH",
        "M1",
        "interval 6 of a day of 6 intervals",
    )
    v.add(
        order(s1, Side.OFFER, 0, 0, 100, 120, period=P3),
        "UNKNOWN_TARIFF",
        "M3",
        f"no tariff for {P3}",
    )
    v.add(
        order(s1, Side.OFFER, 0, 0, 100, 120, period=P4),
        "INTERVALS_MISMATCH",
        "M3",
        f"the tariff of {P4} has 60-minute intervals, its market day 240",
    )
    v.add(
        order(s1, Side.OFFER, 2, 4, 100, 60),
        "PRICE_OUT_OF_BOUNDS",
        "M3",
        "60 is below the export credit 80 of interval 3",
    )
    v.add(
        order(b1, Side.BID, 0, 0, 100, 301),
        "PRICE_OUT_OF_BOUNDS",
        "M3",
        "301 is above the import price 300 of interval 0",
    )
    s1_offer = order(s1, Side.OFFER, 0, 5, 500, 120)
    placed = v.add(s1_offer, note="s-1 offers 500 Wh at 120 in every interval")
    v.add(s1_offer, "DUPLICATE_ORDER", "R5", "the identical order", same_as=placed)
    v.add(order(s2, Side.OFFER, 2, 3, 800, 80), note="s-2 offers 800 Wh at 80 in 2..3")
    b1_bid = order(b1, Side.BID, 0, 5, 600, 250)
    v.add(b1_bid, note="b-1 bids 600 Wh at 250 in every interval")
    v.add(order(b2, Side.BID, 1, 2, 300, 150), note="b-2 bids 300 Wh at 150 in 1..2")
    v.add(
        order(b2, Side.OFFER, 2, 4, 100, 100),
        "SELF_TRADE",
        "M4",
        "b-2 offers in interval 2, where it bids",
    )
    v.add(order(b2, Side.OFFER, 3, 4, 100, 100), note="b-2 offers in 3..4, where it does not bid")
    v.add(order(b2, Side.BID, 0, 0, 50, 300, nonce=2), note="b-2 bids again, in interval 0")
    r1_offer = order(r1, Side.OFFER, 0, 5, 1_000, 90)
    v.add(r1_offer, note="r-1 offers 1000 Wh at 90")
    v.add(order(x1, Side.BID, 0, 0, 10, 200), "NOT_ENROLLED", "M1", "x-1 never enrolled")
    withdrawn = order(b1, Side.BID, 0, 5, 900, 260, nonce=2)
    withdrawn_at = v.add(withdrawn, note="b-1 bids 900 Wh at 260, to cancel it")
    v.add(cancel(b1, _key("nothing").public_key[1:]), "UNKNOWN_ORDER", "M5", "no such order")
    v.add(cancel(b2, withdrawn), "UNKNOWN_ORDER", "M5", "b-2 cancels b-1's order")
    cancellation = cancel(b1, withdrawn)
    cancelled = v.add(cancellation, note="b-1 cancels its second bid")
    v.add(
        cancellation,
        "DUPLICATE_CANCELLATION",
        "R5",
        "the identical cancellation",
        same_as=cancelled,
    )
    v.add(
        cancel(b1, withdrawn, key=b2.key),
        "UNKNOWN_ORDER",
        "M5",
        "another cancellation of the cancelled order (signed with b-2's key: M5 before C7)",
    )
    v.add(withdrawn, "DUPLICATE_ORDER", "R5", "the cancelled order again", same_as=withdrawn_at)
    v.add(MeterRevocation("r-1", "moved out"), note="revoke r-1: its order is withdrawn")
    v.add(enrolment(r1, "r-1/other"), "METER_REVOKED", "R6", "an enrolment of revoked r-1")
    v.add(order(r1, Side.OFFER, 0, 0, 5, 90, nonce=3), "METER_REVOKED", "R6", "r-1 orders")
    forger = order(s2, Side.OFFER, 0, 0, 10, 100, period=P2, key=s1.key)
    v.add(forger, "SIGNATURE_INVALID", "C7", f"an order of s-2 for {P2}, signed with s-1's key")
    live = [
        s1_offer,
        order(s2, Side.OFFER, 2, 3, 800, 80),
        b1_bid,
        order(b2, Side.BID, 1, 2, 300, 150),
        order(b2, Side.OFFER, 3, 4, 100, 100),
        order(b2, Side.BID, 0, 0, 50, 300, nonce=2),
    ]
    result = clear(day, live)
    v.add(
        Clearing(P5, result.orders_digest, result.intervals),
        "UNKNOWN_MARKET_DAY",
        "M8",
        f"a clearing of {P5}, which has no market day",
    )
    v.time = gate - 1
    late = order(s1, Side.OFFER, 0, 0, 10, 100, nonce=9)
    v.add(late, note="one second before gate closure")
    live.append(late)
    result = clear(day, live)
    v.add(result, "GATE_NOT_CLOSED", "M8", "the clearing one second before gate closure")
    v.time = gate
    v.add(order(s1, Side.OFFER, 0, 0, 10, 100, nonce=10), "GATE_CLOSED", "M2", "at gate closure")
    v.add(cancel(s1, late), "GATE_CLOSED", "M5", "a cancellation at gate closure")
    v.time = gate + 600
    wrong_price = list(result.intervals)
    wrong_price[0] = IntervalResult(
        wrong_price[0].price + 1, wrong_price[0].volume, wrong_price[0].trades
    )
    v.add(
        Clearing(P, result.orders_digest, tuple(wrong_price)),
        "CLEARING_MISMATCH",
        "M9",
        "interval 0 priced one more",
    )
    without_r1 = clear(day, live[:-1])
    v.add(without_r1, "CLEARING_MISMATCH", "M9", "a clearing without the last order")
    with_r1 = clear(day, [*live[:6], r1_offer, live[6]])
    v.add(with_r1, "CLEARING_MISMATCH", "M9", "a clearing with revoked r-1's order")
    cleared = v.add(result, note=f"the clearing of {P}")
    v.add(result, "DUPLICATE_CLEARING", "R5", "the identical clearing", same_as=cleared)
    v.add(without_r1, "CLEARING_EXISTS", "M8", "another clearing of a cleared market")
    v.raw(EntryKind.ORDER, late.encode() + b"\x00", "RECORD_MALFORMED", "R2", "a trailing byte")
    v.raw(EntryKind.CLEARING, day.encode(), "RECORD_MALFORMED", "R2", "a market day as a clearing")
    return v


# --------------------------------------------------------------------------- delivery (13..15)
# Deterministic but for the circuit proofs (prove_allocation / prove_delivery draw their
# own randomness): keys, batches (SeededScalars), blindings, sealed boxes (fixed
# ephemeral keys and nonces) and signatures (RFC 6979) are the same on every run.

DELIVERY_DAY = MarketDay.with_defaults(P, 240, 25)
#: An hour after the period ended: the batches are in, the steps are due.
AFTER = DELIVERY_DAY.start + 86_400 + 3_600


def _scalar(label: str) -> int:
    digest = hashlib.sha256(b"zkgrid/market-vectors/" + label.encode()).digest()
    return int.from_bytes(digest) % (_ORDER - 1) + 1


def encryption(name: str) -> EncryptionKey:
    """The private key of :func:`encryption_key` (the same scalar as ``_key``)."""
    value = int.from_bytes(hashlib.sha256(b"zkgrid/rule-vectors/ecdh/" + name.encode()).digest())
    return EncryptionKey.from_private_bytes((value % (_ORDER - 1) + 1).to_bytes(32, "big"))


def _sealed(label: str, value: int, blinding: int, recipient: bytes, context: bytes) -> bytes:
    ephemeral = EncryptionKey.from_private_bytes(_scalar(f"ephemeral/{label}").to_bytes(32))
    nonce = hashlib.sha256(b"nonce/" + label.encode()).digest()[:12]
    return seal(value, blinding, recipient, context, ephemeral=ephemeral, nonce=nonce)


@dataclass
class _Books:
    """What one meter keeps: its batch's openings and the openings of its trades' D_k."""

    meter: _Meter
    values: list[int] = field(default_factory=list)
    blindings: list[Scalar] = field(default_factory=list)
    batch: ReadingBatch | None = None
    deliveries: dict[tuple[int, int], tuple[int, Scalar]] = field(default_factory=dict)


class _DeliveryLedger:
    """The delivery vector's ledger: entries with their times, judged on the pure rules as
    they are added (the expected verdicts are asserted here, so a vector that would not
    replay is never written)."""

    def __init__(self, vector: _TimedVector) -> None:
        self.vector = vector
        self.state = rules.LedgerState()
        self.books: dict[str, _Books] = {}
        self.steps: dict[tuple[int, int], dict[str, Any]] = {}

    def add(
        self, record: Any, reason: str | None = None, rule: str | None = None, note: str = "",
        *, same_as: int | None = None,
    ) -> int:  # fmt: skip
        digest = hashlib.sha256(record.encode()).digest()
        refusal = rules.check(self.state, record, digest, time=self.vector.time)
        if refusal is None:
            assert reason is None or rule in ("C7", "C8"), (note, "accepted")
            rules.apply(self.state, record, rules.Ref(len(self.vector.entries), digest))
            if isinstance(record, DeliveryAllocation | Delivery | DeliveryDefault):
                name = type(record).__name__
                self.steps.setdefault((record.interval, record.trade_index), {})[name] = record
        else:
            assert (refusal.rule, refusal.reason) == (rule, reason), (note, refusal)
        return self.vector.add(record, reason, rule, note, same_as=same_as)

    def batch(self, meter: _Meter, imports: list[int], exports: list[int]) -> ReadingBatch:
        books = self.books.setdefault(meter.meter_id, _Books(meter))
        values = [v for pair in zip(imports, exports, strict=True) for v in pair]
        bundle = RangeProof.prove(
            values,
            32,
            context=reading_proof_context(meter.meter_id, P, 0),
            rng=SeededScalars(f"delivery/{meter.meter_id}".encode()),
        )
        books.batch = ReadingBatch.create(
            meter.key,
            meter_id=meter.meter_id,
            period=P,
            interval_minutes=240,
            sequence=0,
            prev_hash=ZERO_HASH,
            commitments=[c.to_bytes() for c in bundle.commitments],
            range_proof=bundle.proof.to_bytes(),
        )
        books.values, books.blindings = values, list(bundle.blindings)
        return books.batch

    @property
    def clearing_hash(self) -> bytes:
        return self.state.market.clearings[P][1].digest

    def _earlier(
        self, books: _Books, t: int, k: int, step: DeliveryStep
    ) -> tuple[list[bytes], list[tuple[int, Scalar]]]:
        commitments, openings = [], []
        for j in self.state.earlier_trades(P, t, k, step):
            trade_state = self.state.market.trades.get((P, t, j))
            if trade_state is not None and trade_state.delivery is not None:
                commitments.append(trade_state.delivery)
                openings.append(books.deliveries[(t, j)])
        return commitments, openings

    def allocation(
        self, t: int, k: int, *, signer: MeterKey | None = None, meter_id: str | None = None,
        export: tuple[bytes, tuple[int, Scalar]] | None = None, salt: str = "",
    ) -> DeliveryAllocation:  # fmt: skip
        trade = self.state.trade(P, t, k)
        assert trade is not None
        seller = self.books[trade.seller]
        assert seller.batch is not None
        tid = trade_id(self.clearing_hash, t, k)
        if export is None:
            i = 2 * t + 1
            export = (seller.batch.commitments[i], (seller.values[i], seller.blindings[i]))
        earlier, openings = self._earlier(seller, t, k, DeliveryStep.ALLOCATION)
        label = f"allocation/{t}/{k}/{salt}"
        proven = prove_allocation(
            tid, export[0], export[1], earlier, openings, trade.quantity,
            blinding=_scalar(label),
        )  # fmt: skip
        value = allocation_of(export[1][0], [o[0] for o in openings], trade.quantity)
        box = _sealed(
            label, value, proven.blinding, encryption_key(trade.buyer),
            delivery_context(tid, ALLOCATION),
        )  # fmt: skip
        return DeliveryAllocation.create(
            signer or seller.meter.key,
            meter_id=meter_id or trade.seller,
            period=P,
            interval=t,
            trade_index=k,
            clearing_hash=self.clearing_hash,
            commitment=proven.commitment,
            proof=proven.proof,
            sealed_opening=box,
        )

    def delivery(self, t: int, k: int, *, proof: bytes | None = None) -> Delivery:
        """The buyer's step: it opens the seller's box (D10), proves, seals to the seller;
        the seller keeps the opening it will open in turn."""
        trade = self.state.trade(P, t, k)
        assert trade is not None
        buyer, seller = self.books[trade.buyer], self.books[trade.seller]
        assert buyer.batch is not None
        tid = trade_id(self.clearing_hash, t, k)
        allocation = self.steps[(t, k)]["DeliveryAllocation"]
        a = open_sealed(
            allocation.sealed_opening, encryption(trade.buyer), allocation.commitment,
            delivery_context(tid, ALLOCATION),
        )  # fmt: skip
        i = 2 * t
        imported = (buyer.batch.commitments[i], (buyer.values[i], buyer.blindings[i]))
        earlier, openings = self._earlier(buyer, t, k, DeliveryStep.DELIVERY)
        label = f"delivery/{t}/{k}"
        proven = prove_delivery(
            tid, allocation.commitment, (a.value, a.blinding), imported[0], imported[1],
            earlier, openings, blinding=_scalar(label),
        )  # fmt: skip
        value = delivery_of(a.value, imported[1][0], [o[0] for o in openings])
        buyer.deliveries[(t, k)] = seller.deliveries[(t, k)] = (value, proven.blinding)
        box = _sealed(
            label, value, proven.blinding, encryption_key(trade.seller),
            delivery_context(tid, DELIVERY),
        )  # fmt: skip
        return Delivery.create(
            buyer.meter.key,
            meter_id=trade.buyer,
            period=P,
            interval=t,
            trade_index=k,
            clearing_hash=self.clearing_hash,
            commitment=proven.commitment,
            proof=proven.proof if proof is None else proof,
            sealed_opening=box,
        )

    def default(self, t: int, k: int, step: DeliveryStep) -> DeliveryDefault:
        return DeliveryDefault(P, t, k, self.clearing_hash, step)


def _relabel(record: Any, key: MeterKey, **changes: Any) -> Any:
    fields = {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
    del fields["signature"]
    fields.update(changes)
    return type(record).create(key, **fields)


def delivery_rules() -> _Vector:
    """R4..R6, M10..M13, C7 and C8 with the delivery steps and defaults of one market day.

    Interval 0: s-1 sells to b-1 (300 Wh) and b-2 (500 Wh); interval 1: b-3 buys from
    s-1 (300) and s-2 (500); intervals 2..5 one trade each, for the defaults, the
    deadlines and the cryptographic failures. Entries come in time order."""
    day = DELIVERY_DAY
    v = _TimedVector(
        "delivery",
        "R4..R6, M10..M13, C7 and C8: delivery allocations, deliveries and defaults of one"
        " cleared market day; each entry carries its time",
        day.gate_closure - 86_400,
    )
    ledger = _DeliveryLedger(v)
    s1, s2, b1, b2, b3 = (_Meter(n) for n in ("s-1", "s-2", "b-1", "b-2", "b-3"))
    for m in (s1, s2, b1, b2, b3):
        ledger.add(m.registration(), note=f"register {m.meter_id}")
        ledger.add(enrolment(m), note=f"enrol {m.meter_id}")
    ledger.add(_tariff(P), note=f"the tariff of {P}")
    ledger.add(day, note=f"the market day of {P}: 240 minutes, default times")
    for meter, side, first, quantity, price, nonce in (
        (s1, Side.OFFER, 0, 1_000, 100, 1),
        (b1, Side.BID, 0, 300, 200, 1),
        (b2, Side.BID, 0, 500, 180, 1),
        (s1, Side.OFFER, 1, 300, 100, 2),
        (s2, Side.OFFER, 1, 500, 120, 1),
        (b3, Side.BID, 1, 1_000, 200, 1),
        (s2, Side.OFFER, 2, 100, 100, 2),
        (b1, Side.BID, 2, 100, 200, 2),
        (s2, Side.OFFER, 3, 100, 100, 3),
        (b2, Side.BID, 3, 100, 200, 2),
        (s1, Side.OFFER, 4, 100, 100, 3),
        (b1, Side.BID, 4, 100, 200, 3),
        (s1, Side.OFFER, 5, 100, 100, 4),
        (b2, Side.BID, 5, 100, 200, 3),
    ):
        o = order(meter, side, first, first, quantity, price, nonce=nonce)
        what = f"{side.name.lower()}s {quantity} Wh at {price} in interval {first}"
        ledger.add(o, note=f"{meter.meter_id} {what}")
    v.time = day.gate_closure
    ledger.add(clear(day, ledger.state.live_orders(P)), note=f"the clearing of {P}")
    trades = [r.trades for r in ledger.state.market.clearings[P][0].intervals]
    assert trades[0] == (Trade("s-1", "b-1", 300), Trade("s-1", "b-2", 500)), trades
    assert trades[1] == (Trade("s-1", "b-3", 300), Trade("s-2", "b-3", 500)), trades
    assert [len(t) for t in trades[2:]] == [1, 1, 1, 1]

    v.time = AFTER
    s1_batch = ledger.batch(s1, [0] * 6, [600, 1_000, 0, 0, 500, 500])
    ledger.add(ledger.allocation(0, 0), "DELIVERY_NOT_READY", "M13", "s-1 has no batch for the day")
    ledger.add(s1_batch, note="s-1's batch: export 600 Wh in interval 0, 1000 in 1")
    for meter, imports, exports in (
        (s2, [0] * 6, [0, 400, 300, 50, 0, 0]),
        (b1, [1_000, 0, 100, 0, 800, 0], [0] * 6),
        (b2, [200, 0, 0, 900, 0, 100], [0] * 6),
        (b3, [0, 600, 0, 0, 0, 0], [0] * 6),
    ):
        ledger.add(ledger.batch(meter, imports, exports), note=f"{meter.meter_id}'s batch")
    ledger.add(ledger.allocation(0, 1), "DELIVERY_NOT_READY", "M13", "trade 0 of s-1 is open")
    honest = ledger.allocation(0, 0)
    ledger.add(
        _relabel(honest, s1.key, trade_index=2), "UNKNOWN_TRADE", "M10", "interval 0 has 2 trades"
    )
    ledger.add(
        _relabel(honest, s1.key, clearing_hash=bytes(32)),
        "UNKNOWN_TRADE",
        "M10",
        "another clearing's hash",
    )
    ledger.add(
        _relabel(honest, b1.key, meter_id="b-1"),
        "UNKNOWN_TRADE",
        "M10",
        "b-1 allocates its own purchase (it is the buyer)",
    )
    ghost = _Meter("ghost")
    ledger.add(_relabel(honest, ghost.key, meter_id="ghost"), "UNKNOWN_METER", "R4", "a ghost")
    placed = ledger.add(honest, note="s-1 allocates trade 0 of interval 0: min(300, 600)")
    ledger.add(honest, "DUPLICATE_DELIVERY", "R5", "the identical allocation", same_as=placed)
    ledger.add(
        ledger.allocation(0, 0, salt="again"),
        "DELIVERY_EXISTS",
        "M11",
        "another allocation of trade 0 (another blinding and proof)",
    )
    delivery = ledger.delivery(0, 0)
    ledger.add(
        _relabel(delivery, s1.key, meter_id="s-1"),
        "UNKNOWN_TRADE",
        "M10",
        "s-1 delivers its own sale (it is the seller)",
    )
    delivered = ledger.add(delivery, note="b-1 delivers trade 0: min(300, 1000)")
    ledger.add(delivery, "DUPLICATE_DELIVERY", "R5", "the identical delivery", same_as=delivered)
    ledger.add(ledger.allocation(0, 1), note="s-1 allocates trade 1: min(500, 600 - 300)")
    ledger.add(ledger.delivery(0, 1), note="b-2 delivers trade 1: min(300, 200)")
    s2_placed = ledger.add(
        ledger.allocation(1, 1), note="s-2 allocates trade 1 of interval 1: min(500, 400)"
    )
    ledger.add(
        ledger.delivery(1, 1), "DELIVERY_NOT_READY", "M13", "b-3's trade 0 of interval 1 is open"
    )
    ledger.add(ledger.allocation(3, 0), note="s-2 allocates interval 3: min(100, 50)")
    # C8: s-1 proves interval 4 over a sunny export of its own choosing (5000 Wh)
    sunny = commit(5_000, _scalar("sunny"))
    ledger.add(
        ledger.allocation(4, 0, export=(sunny.to_bytes(), (5_000, _scalar("sunny")))),
        "PROOF_INVALID",
        "C8",
        "s-1's allocation of interval 4 proven over another export than its batch's",
    )
    ledger.add(
        ledger.delivery(4, 0, proof=b"\x00" * 886),
        "PROOF_MALFORMED",
        "C8",
        "b-1's delivery of interval 4 with proof bytes that do not parse",
    )
    ledger.add(
        ledger.allocation(5, 0, signer=b2.key),
        "SIGNATURE_INVALID",
        "C7",
        "s-1's allocation of interval 5 signed with b-2's key",
    )
    ledger.add(MeterRevocation("s-2", "moved out"), note="revoke s-2")
    s2_step = ledger.steps[(1, 1)]["DeliveryAllocation"]
    ledger.add(
        s2_step,
        "DUPLICATE_DELIVERY",
        "R5",
        "s-2's allocation again, after its revocation",
        same_as=s2_placed,
    )
    ledger.add(ledger.allocation(2, 0), "METER_REVOKED", "R6", "revoked s-2 allocates interval 2")

    v.time = day.seller_deadline - 1
    ledger.add(
        ledger.default(1, 0, DeliveryStep.ALLOCATION),
        "DEADLINE_NOT_PASSED",
        "M12",
        "s-1's allocation of trade 0 of interval 1 defaulted a second early",
    )
    v.time = day.seller_deadline
    ledger.add(
        ledger.allocation(1, 0), "DEADLINE_PASSED", "M12", "s-1 allocates at the sellers' deadline"
    )
    defaulted = ledger.add(
        ledger.default(1, 0, DeliveryStep.ALLOCATION),
        note="s-1 missed trade 0 of interval 1: defaulted, nothing delivered",
    )
    ledger.add(
        ledger.default(1, 0, DeliveryStep.ALLOCATION),
        "DUPLICATE_DELIVERY",
        "R5",
        "the identical default",
        same_as=defaulted,
    )
    ledger.add(
        ledger.default(1, 0, DeliveryStep.DELIVERY),
        "DELIVERY_EXISTS",
        "M11",
        "a defaulted trade is settled: no delivery default follows",
    )
    ledger.add(
        ledger.delivery(1, 1),
        note="b-3 delivers trade 1 of interval 1, the default left out: min(400, 600)",
    )
    v.time = day.buyer_deadline - 1
    ledger.add(
        ledger.default(3, 0, DeliveryStep.DELIVERY),
        "DEADLINE_NOT_PASSED",
        "M12",
        "b-2's delivery of interval 3 defaulted a second early",
    )
    v.time = day.buyer_deadline
    ledger.add(ledger.delivery(3, 0), "DEADLINE_PASSED", "M12", "b-2 delivers at its deadline")
    ledger.add(
        ledger.default(2, 0, DeliveryStep.DELIVERY),
        "DELIVERY_NOT_READY",
        "M13",
        "a delivery default of interval 2, which has no allocation",
    )
    ledger.add(ledger.default(3, 0, DeliveryStep.DELIVERY), note="b-2 missed interval 3")
    ledger.add(
        ledger.default(0, 1, DeliveryStep.DELIVERY), "DELIVERY_EXISTS", "M11", "a delivered trade"
    )
    assert rules.due_defaults(ledger.state, P, v.time) == [
        ledger.default(2, 0, DeliveryStep.ALLOCATION),
        ledger.default(5, 0, DeliveryStep.DELIVERY),
    ]
    ledger.add(ledger.default(2, 0, DeliveryStep.ALLOCATION), note="revoked s-2 missed interval 2")
    ledger.add(ledger.default(5, 0, DeliveryStep.DELIVERY), note="b-2 never delivered interval 5")
    assert rules.due_defaults(ledger.state, P, v.time) == []
    payload = ledger.default(0, 0, DeliveryStep.DELIVERY).encode()
    v.raw(EntryKind.DELIVERY_DEFAULT, payload[:-1] + b"\x03", "RECORD_MALFORMED", "R2",
          "a default of step 3")  # fmt: skip
    v.raw(EntryKind.DELIVERY_ALLOCATION, honest.encode()[:-1], "RECORD_MALFORMED", "R2",
          "an allocation cut short by a byte")  # fmt: skip
    box = delivery.sealed_opening
    version_2 = delivery.encode().replace(box, b"\x02" + box[1:], 1)
    v.raw(EntryKind.DELIVERY, version_2, "RECORD_MALFORMED", "R2",
          "a delivery whose sealed box has version 2")  # fmt: skip
    for entry in v.entries[-3:]:
        payload = bytes.fromhex(entry["payload_hex"])
        refusal = rules.decode(entry["kind"], payload, rules.DEFINED_KINDS)
        assert isinstance(refusal, rules.Refusal), entry["note"]
        assert refusal.reason == "RECORD_MALFORMED", entry["note"]
    return v


def delivery_records() -> dict[str, Any]:
    """Known answers of the trade id and of the three records; the steps' proofs with the
    public inputs they verify over (the export, the earlier deliveries, the quantity)."""
    clearing_hash = hashlib.sha256(b"a clearing").digest()
    ids = [
        {
            "clearing_hash_hex": c.hex(),
            "interval": t,
            "trade_index": k,
            "trade_id_hex": trade_id(c, t, k).hex(),
        }
        for c, t, k in ((clearing_hash, 0, 0), (clearing_hash, 3, 1), (bytes(32), 479, 2**20 - 1))
    ]
    seller, buyer = _Meter("s-1"), _Meter("b-1")
    tid = trade_id(clearing_hash, 3, 1)
    export = (2_000, _scalar("records/export"))
    earlier = (400, _scalar("records/earlier"))
    earlier_c = commit(*earlier).to_bytes()
    allocated = prove_allocation(
        tid, commit(*export), export, [earlier_c], [earlier], 1_500,
        blinding=_scalar("records/allocation"),
    )  # fmt: skip
    allocation = DeliveryAllocation.create(
        seller.key,
        meter_id="s-1",
        period=P,
        interval=3,
        trade_index=1,
        clearing_hash=clearing_hash,
        commitment=allocated.commitment,
        proof=allocated.proof,
        sealed_opening=_sealed(
            "records/allocation", 1_500, allocated.blinding, encryption_key("b-1"),
            delivery_context(tid, ALLOCATION),
        ),
    )  # fmt: skip
    imported = (1_200, _scalar("records/import"))
    delivered = prove_delivery(
        tid, allocated.commitment, (1_500, allocated.blinding), commit(*imported), imported,
        [], [], blinding=_scalar("records/delivery"),
    )  # fmt: skip
    delivery = Delivery.create(
        buyer.key,
        meter_id="b-1",
        period=P,
        interval=3,
        trade_index=1,
        clearing_hash=clearing_hash,
        commitment=delivered.commitment,
        proof=delivered.proof,
        sealed_opening=_sealed(
            "records/delivery", 1_200, delivered.blinding, encryption_key("s-1"),
            delivery_context(tid, DELIVERY),
        ),
    )  # fmt: skip

    def step_case(
        name: str, record: DeliveryAllocation | Delivery, signer: _Meter
    ) -> dict[str, Any]:
        return {
            **_signed_case(name, record, signer),
            "fields": {
                "meter_id": record.meter_id,
                "period": record.period,
                "interval": record.interval,
                "trade_index": record.trade_index,
                "clearing_hash_hex": record.clearing_hash.hex(),
                "commitment_hex": record.commitment.hex(),
                "proof_hex": record.proof.hex(),
                "sealed_opening_hex": record.sealed_opening.hex(),
                "signature_hex": record.signature.hex(),
            },
        }

    defaults = [
        {
            "name": name,
            "fields": {
                "period": d.period,
                "interval": d.interval,
                "trade_index": d.trade_index,
                "clearing_hash_hex": d.clearing_hash.hex(),
                "step": d.step.name,
            },
            "encoding_hex": d.encode().hex(),
            "digest_hex": d.digest().hex(),
        }
        for name, d in (
            (
                "a missed allocation",
                DeliveryDefault(P, 0, 0, clearing_hash, DeliveryStep.ALLOCATION),
            ),
            (
                "a missed delivery",
                DeliveryDefault(P, 479, 2**20 - 1, bytes(32), DeliveryStep.DELIVERY),
            ),
        )
    ]
    return {
        "format": FORMAT,
        "description": "the market's delivery records (record version 1): the trade id,"
        " allocations, deliveries and defaults (fields, canonical encodings, digests,"
        " signed bytes); each step's proof with the public inputs it verifies over",
        "trade_ids": ids,
        "allocations": [
            {
                **step_case("s-1 allocates min(1500, 2000 - 400)", allocation, seller),
                "export_hex": commit(*export).to_bytes().hex(),
                "earlier_hex": [earlier_c.hex()],
                "quantity": 1_500,
            }
        ],
        "deliveries": [
            {
                **step_case("b-1 delivers min(1500, 1200)", delivery, buyer),
                "allocation_hex": allocated.commitment.hex(),
                "import_hex": commit(*imported).to_bytes().hex(),
                "earlier_hex": [],
            }
        ],
        "defaults": defaults,
    }


def main() -> None:
    (DIRECTORY / "records.json").write_text(json.dumps(records(), indent=1) + "\n")
    print(f"wrote {DIRECTORY / 'records.json'}")
    vector = market_rules()
    (DIRECTORY / "rules.json").write_text(json.dumps(vector.to_json(), indent=1) + "\n")
    print(f"wrote {len(vector.entries)} entries to {DIRECTORY / 'rules.json'}")
    (DIRECTORY / "delivery_records.json").write_text(
        json.dumps(delivery_records(), indent=1) + "\n"
    )
    print(f"wrote {DIRECTORY / 'delivery_records.json'}")
    delivery = delivery_rules()
    (DIRECTORY / "delivery_rules.json").write_text(
        json.dumps(delivery.to_json(), indent=1) + "\n"
    )
    print(f"wrote {len(delivery.entries)} entries to {DIRECTORY / 'delivery_rules.json'}")


if __name__ == "__main__":
    main()
