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

Deterministic: meter keys from fixed scalars with RFC 6979 signatures
(``tests/vectors/rules/make_rule_vectors.py``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: import the repository's test helpers
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from ledger.entries import EntryKind
from settlement.market import (
    Clearing,
    IntervalResult,
    MarketDay,
    MarketEnrolment,
    Order,
    OrderCancellation,
    Side,
    Trade,
    clear,
    period_start,
)
from settlement.records import MeterKey, MeterRevocation, Tariff
from tests.vectors.rules.make_rule_vectors import _key, _Meter, _Vector

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
    name: str, record: MarketEnrolment | Order | OrderCancellation, signer: _Meter
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


def main() -> None:
    (DIRECTORY / "records.json").write_text(json.dumps(records(), indent=1) + "\n")
    print(f"wrote {DIRECTORY / 'records.json'}")
    vector = market_rules()
    (DIRECTORY / "rules.json").write_text(json.dumps(vector.to_json(), indent=1) + "\n")
    print(f"wrote {len(vector.entries)} entries to {DIRECTORY / 'rules.json'}")


if __name__ == "__main__":
    main()
