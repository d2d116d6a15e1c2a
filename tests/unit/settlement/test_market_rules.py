"""The market's state rules in settlement.rules (R4..R6 and M1..M9 with market records):
precedence, the entry's time, live orders, and what applying a record changes. Every rule
and reason is also in the vector (tests/vectors/market/rules.json, test_market_vectors.py)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from ledger.entries import EntryKind
from settlement import rules
from settlement.market import (
    Clearing,
    MarketDay,
    MarketEnrolment,
    Order,
    OrderCancellation,
    Side,
    clear,
)
from settlement.records import MeterKey, MeterRegistration, MeterRevocation, Tariff
from settlement.rules import LedgerState, Ref
from zkgrid.errors import InvalidArgumentError, Reason

P = "2025-06-10"
DAY = MarketDay.with_defaults(P, 240, 25)
GATE = DAY.gate_closure
BEFORE = GATE - 3_600
TARIFF = Tariff(P, 240, "EUR", 0, (300, 300, 300, 400, 300, 300), (50, 50, 50, 80, 50, 50))


class Ledger:
    """A log on the pure rules: appends what the rules accept, returns the refusal else."""

    def __init__(self) -> None:
        self.state = LedgerState()
        self.size = 0
        self.keys: dict[str, MeterKey] = {}

    def append(self, record: Any, time: int | None = BEFORE) -> rules.Refusal | None:
        digest = hashlib.sha256(record.encode()).digest()
        refusal = rules.step(self.state, record, Ref(self.size, digest), time=time)
        if refusal is None:
            self.size += 1
        return refusal

    def ok(self, record: Any, time: int | None = BEFORE) -> Any:
        refusal = self.append(record, time)
        assert refusal is None, refusal
        return record

    def refused(self, record: Any, time: int | None = BEFORE) -> tuple[str, Reason]:
        before = repr(self.state)
        refusal = self.append(record, time)
        assert refusal is not None
        assert repr(self.state) == before  # a refused record changes nothing
        return refusal.rule, refusal.reason

    def meter(self, meter_id: str, *, enrol: bool = True, interval_minutes: int = 240) -> None:
        key = MeterKey.from_private_value(
            int.from_bytes(hashlib.sha256(meter_id.encode()).digest()) % 2**200 + 1
        )
        self.keys[meter_id] = key
        self.ok(MeterRegistration.create(key, meter_id, interval_minutes))
        if enrol:
            self.ok(self.enrolment(meter_id))

    def enrolment(self, meter_id: str, salt: str = "") -> MarketEnrolment:
        ecdh = MeterKey.from_private_value(len(meter_id + salt) + 7).public_key
        return MarketEnrolment.create(self.keys[meter_id], meter_id, ecdh)

    def order(
        self,
        meter_id: str,
        side: Side,
        quantity: int = 100,
        price: int = 100,
        first: int = 0,
        last: int = 0,
        nonce: int = 0,
        period: str = P,
    ) -> Order:
        return Order.create(
            self.keys[meter_id],
            meter_id=meter_id,
            period=period,
            side=side,
            first_interval=first,
            last_interval=last,
            quantity_wh=quantity,
            limit_price=price,
            nonce=nonce,
        )

    def cancel(self, meter_id: str, order: Order) -> OrderCancellation:
        return OrderCancellation.create(self.keys[meter_id], meter_id, order.order_hash())


@pytest.fixture
def ledger() -> Ledger:
    ledger = Ledger()
    for meter_id in ("s-1", "s-2", "b-1", "b-2"):
        ledger.meter(meter_id)
    ledger.ok(TARIFF)
    ledger.ok(DAY)
    return ledger


# --------------------------------------------------------------------------- decoding


def test_the_market_kinds_are_opt_in(ledger: Ledger) -> None:
    order = ledger.order("s-1", Side.OFFER)
    for kind, payload in ((EntryKind.ORDER, order.encode()), (EntryKind.MARKET_DAY, b"")):
        refusal = rules.decode(kind, payload)
        assert isinstance(refusal, rules.Refusal)
        assert (refusal.rule, refusal.reason) == ("R1", "ENTRY_KIND_UNDEFINED")
        assert EntryKind(kind).name in refusal.detail
    assert rules.decode(EntryKind.ORDER, order.encode(), rules.DEFINED_KINDS) == order
    refusal = rules.decode(EntryKind.ORDER, order.encode()[:-1], rules.DEFINED_KINDS)
    assert isinstance(refusal, rules.Refusal)
    assert (refusal.rule, refusal.reason) == ("R2", "RECORD_MALFORMED")
    assert refusal.detail.startswith("ORDER: ")
    # the kinds a caller names cannot define a kind: COSIGNATURE and unknown kinds stay R1
    for raw_kind in (0, int(EntryKind.COSIGNATURE), 16, 0xFFFF):
        refusal = rules.decode(raw_kind, b"", frozenset(EntryKind))
        assert isinstance(refusal, rules.Refusal)
        assert refusal.rule == "R1"
    assert rules.DEFINED_KINDS == rules.SETTLEMENT_KINDS | rules.MARKET_KINDS
    assert not rules.SETTLEMENT_KINDS & rules.MARKET_KINDS


# --------------------------------------------------------------------------- time


def test_orders_cancellations_and_clearings_need_the_entry_time(ledger: Ledger) -> None:
    order = ledger.order("s-1", Side.OFFER)
    for record in (order, ledger.cancel("s-1", order), clear(DAY, [])):
        for time in (None, True, 1.5, "1"):
            with pytest.raises(InvalidArgumentError, match="needs the entry's time"):
                rules.check(ledger.state, record, time=time)  # type: ignore[arg-type]
    # the other records do not read it
    assert rules.check(ledger.state, MarketDay.with_defaults("2025-06-11", 240, 0)) is None
    ledger.meter("s-3", enrol=False)
    assert rules.check(ledger.state, ledger.enrolment("s-3")) is None


def test_gate_closure(ledger: Ledger) -> None:
    offer = ledger.order("s-1", Side.OFFER)
    assert ledger.refused(offer, GATE) == ("M2", Reason.GATE_CLOSED)
    assert ledger.refused(offer, GATE + 10**6) == ("M2", Reason.GATE_CLOSED)
    ledger.ok(offer, GATE - 1)
    cancellation = ledger.cancel("s-1", offer)
    assert ledger.refused(cancellation, GATE) == ("M5", Reason.GATE_CLOSED)
    assert ledger.refused(clear(DAY, [offer]), GATE - 1) == ("M8", Reason.GATE_NOT_CLOSED)
    ledger.ok(clear(DAY, [offer]), GATE)
    # a cleared market is closed whatever the time a caller gives
    assert ledger.refused(ledger.order("s-1", Side.OFFER, nonce=1), 0) == (
        "M2",
        Reason.GATE_CLOSED,
    )
    assert ledger.refused(cancellation, 0) == ("M5", Reason.GATE_CLOSED)


# --------------------------------------------------------------------------- orders


def test_order_precedence(ledger: Ledger) -> None:
    ledger.meter("x-1", enrol=False)
    unknown = Order.create(
        MeterKey.from_private_value(5),
        meter_id="ghost",
        period=P,
        side=Side.OFFER,
        first_interval=0,
        last_interval=0,
        quantity_wh=1,
        limit_price=1,
        nonce=0,
    )
    assert ledger.refused(unknown) == ("R4", Reason.UNKNOWN_METER)
    # M1 before M2 and M3: an unenrolled meter's late order with a bad price
    late = ledger.order("x-1", Side.OFFER, price=1)
    assert ledger.refused(late, GATE) == ("M1", Reason.NOT_ENROLLED)
    other_day = ledger.order("s-1", Side.OFFER, period="2025-06-11")
    assert ledger.refused(other_day, GATE + 10**6) == ("M1", Reason.UNKNOWN_MARKET_DAY)
    # M2 before M3
    assert ledger.refused(ledger.order("s-1", Side.OFFER, price=1), GATE) == (
        "M2",
        Reason.GATE_CLOSED,
    )
    # M3 before M4
    ledger.ok(ledger.order("b-1", Side.BID, price=200))
    assert ledger.refused(ledger.order("b-1", Side.OFFER, price=10)) == (
        "M3",
        Reason.PRICE_OUT_OF_BOUNDS,
    )
    assert ledger.refused(ledger.order("b-1", Side.OFFER, price=100)) == ("M4", Reason.SELF_TRADE)


def test_price_bounds_are_inclusive_and_per_interval(ledger: Ledger) -> None:
    ledger.ok(ledger.order("s-1", Side.OFFER, price=50, first=0, last=2))
    ledger.ok(ledger.order("s-1", Side.OFFER, price=300, first=0, last=5, nonce=1))
    assert ledger.refused(ledger.order("s-1", Side.OFFER, price=50, first=2, last=3)) == (
        "M3",
        Reason.PRICE_OUT_OF_BOUNDS,
    )  # 80 in interval 3
    ledger.ok(ledger.order("s-1", Side.OFFER, price=400, first=3, last=3, nonce=2))
    assert ledger.refused(ledger.order("b-1", Side.BID, price=301, first=3, last=4)) == (
        "M3",
        Reason.PRICE_OUT_OF_BOUNDS,
    )  # 300 in interval 4
    assert ledger.refused(ledger.order("b-1", Side.BID, price=49)) == (
        "M3",
        Reason.PRICE_OUT_OF_BOUNDS,
    )  # a bid below the export credit: the bounds hold for both sides


def test_an_order_needs_the_period_tariff_of_the_market_interval() -> None:
    ledger = Ledger()
    ledger.meter("s-1")
    ledger.ok(DAY)
    offer = ledger.order("s-1", Side.OFFER)
    assert ledger.refused(offer) == ("M3", Reason.UNKNOWN_TARIFF)
    ledger.ok(Tariff(P, 60, "EUR", 0, (300,) * 24, (50,) * 24))
    assert ledger.refused(offer) == ("M3", Reason.INTERVALS_MISMATCH)


def test_the_meter_interval_is_the_market_interval(ledger: Ledger) -> None:
    ledger.meter("h-1", interval_minutes=60)
    assert ledger.refused(ledger.order("h-1", Side.BID)) == ("M1", Reason.INTERVALS_MISMATCH)
    assert ledger.refused(ledger.order("s-1", Side.OFFER, first=5, last=6)) == (
        "M1",
        Reason.INTERVALS_MISMATCH,
    )


def test_self_trade_counts_live_orders_of_the_other_side_only(ledger: Ledger) -> None:
    bid = ledger.ok(ledger.order("b-1", Side.BID, price=200, first=1, last=3))
    ledger.ok(ledger.order("b-1", Side.BID, price=210, first=2, last=5, nonce=1))  # same side
    ledger.ok(ledger.order("b-1", Side.OFFER, first=0, last=0))  # no common interval
    ledger.ok(ledger.order("s-1", Side.OFFER, first=0, last=5))  # another meter
    assert ledger.refused(ledger.order("b-1", Side.OFFER, first=0, last=1, nonce=2)) == (
        "M4",
        Reason.SELF_TRADE,
    )
    assert ledger.refused(ledger.order("b-1", Side.OFFER, first=4, last=4, nonce=2)) == (
        "M4",
        Reason.SELF_TRADE,
    )  # the second bid covers 4
    ledger.ok(ledger.cancel("b-1", bid))
    ledger.ok(ledger.order("b-1", Side.OFFER, first=1, last=1, nonce=3))  # 1 is free now


def test_the_identical_order_is_idempotent_even_after_its_cancellation(ledger: Ledger) -> None:
    offer = ledger.ok(ledger.order("s-1", Side.OFFER))
    index = ledger.size - 1
    assert ledger.refused(offer) == ("R5", Reason.DUPLICATE_ORDER)
    assert ledger.state.original(offer) == Ref(index, offer.order_hash())
    cancellation = ledger.ok(ledger.cancel("s-1", offer))
    assert ledger.refused(offer) == ("R5", Reason.DUPLICATE_ORDER)
    assert ledger.refused(cancellation) == ("R5", Reason.DUPLICATE_CANCELLATION)
    assert ledger.state.original(cancellation) == Ref(index + 1, cancellation.digest())
    # R5 before M2: the identical order after gate closure is still its receipt
    assert ledger.refused(offer, GATE) == ("R5", Reason.DUPLICATE_ORDER)
    assert rules.DUPLICATE_ORDER in rules.IDEMPOTENT


def test_revoked_meters(ledger: Ledger) -> None:
    offer = ledger.ok(ledger.order("s-1", Side.OFFER, price=100))
    ledger.ok(ledger.order("s-2", Side.OFFER, price=120))
    ledger.ok(ledger.order("b-1", Side.BID, price=200))
    ledger.ok(MeterRevocation("s-1", "moved out"))
    assert ledger.refused(ledger.order("s-1", Side.OFFER, nonce=1)) == (
        "R6",
        Reason.METER_REVOKED,
    )
    assert ledger.refused(ledger.cancel("s-1", offer)) == ("R6", Reason.METER_REVOKED)
    assert ledger.refused(offer) == ("R5", Reason.DUPLICATE_ORDER)  # R5 before R6
    assert ledger.refused(ledger.enrolment("s-1", "again")) == ("R6", Reason.METER_REVOKED)
    # the revoked meter's order is no longer live: the clearing goes without it
    live = ledger.state.live_orders(P)
    assert [o.meter_id for o in live] == ["s-2", "b-1"]
    with_it = clear(DAY, [offer, *live])
    assert ledger.refused(with_it, GATE) == ("M9", Reason.CLEARING_MISMATCH)
    ledger.ok(clear(DAY, live), GATE)


# --------------------------------------------------------------------------- cancellations


def test_cancellations(ledger: Ledger) -> None:
    offer = ledger.ok(ledger.order("s-1", Side.OFFER))
    stranger = ledger.cancel("s-2", offer)
    assert ledger.refused(stranger) == ("M5", Reason.UNKNOWN_ORDER)
    never = OrderCancellation.create(ledger.keys["s-1"], "s-1", bytes(32))
    assert ledger.refused(never) == ("M5", Reason.UNKNOWN_ORDER)
    ghost = OrderCancellation.create(MeterKey.from_private_value(9), "ghost", bytes(32))
    assert ledger.refused(ghost) == ("R4", Reason.UNKNOWN_METER)
    cancellation = ledger.ok(ledger.cancel("s-1", offer))
    placed = ledger.state.market.orders[offer.order_hash()]
    assert placed.cancelled == Ref(ledger.size - 1, cancellation.digest())
    assert ledger.state.live_orders(P) == []
    assert ledger.state.market.meter_orders[("s-1", P)] == []
    # a second, different cancellation of it (another signature over the same fields)
    again = ledger.cancel("s-1", offer)
    assert again != cancellation  # ECDSA signatures are randomised
    assert ledger.refused(again) == ("M5", Reason.UNKNOWN_ORDER)


# --------------------------------------------------------------------------- enrolments, days


def test_enrolments(ledger: Ledger) -> None:
    enrolment = ledger.state.market.enrolments["s-1"][0]
    assert ledger.refused(enrolment) == ("R5", Reason.DUPLICATE_ENROLMENT)
    assert ledger.state.original(enrolment) == ledger.state.market.enrolments["s-1"][1]
    assert ledger.refused(ledger.enrolment("s-1", "another key")) == (
        "M6",
        Reason.ENROLMENT_EXISTS,
    )
    assert ledger.state.original(ledger.enrolment("s-1", "another key")) is None
    ghost = MarketEnrolment.create(
        MeterKey.from_private_value(3), "ghost", enrolment.encryption_key
    )
    assert ledger.refused(ghost) == ("R4", Reason.UNKNOWN_METER)


def test_market_days(ledger: Ledger) -> None:
    assert ledger.refused(DAY) == ("R5", Reason.DUPLICATE_MARKET_DAY)
    assert ledger.state.original(DAY) == ledger.state.market.days[P][1]
    other = MarketDay.with_defaults(P, 15, 25)
    assert ledger.refused(other) == ("M7", Reason.MARKET_DAY_EXISTS)
    assert ledger.state.original(other) is None
    ledger.ok(MarketDay.with_defaults("2025-06-11", 15, 25))  # another period


# --------------------------------------------------------------------------- clearings


def test_clearing(ledger: Ledger) -> None:
    orders = [
        ledger.ok(ledger.order("s-1", Side.OFFER, 500, 100, 0, 5)),
        ledger.ok(ledger.order("b-1", Side.BID, 300, 200, 1, 2)),
        ledger.ok(ledger.order("s-2", Side.OFFER, 400, 150, 2, 3)),
        ledger.ok(ledger.order("b-2", Side.BID, 600, 160, 2, 5)),
    ]
    assert ledger.state.live_orders(P) == orders
    result = clear(DAY, orders)
    assert sum(r.volume for r in result.intervals) > 0
    other_period = clear(MarketDay.with_defaults("2025-06-11", 240, 0), [])
    assert ledger.refused(other_period, GATE) == ("M8", Reason.UNKNOWN_MARKET_DAY)
    # every way to differ: the orders named, the price, the volume, the trades, T
    t = 2
    changed = list(result.intervals)
    changed[t] = type(changed[t])(changed[t].price - 1, changed[t].volume, changed[t].trades)
    mismatches = [
        (clear(DAY, orders[:3]), "names other orders"),
        (clear(DAY, orders[::-1]), "names other orders"),
        (Clearing(P, result.orders_digest, tuple(changed)), f"prices interval {t}"),
        (Clearing(P, result.orders_digest, result.intervals[:4]), "has 4 intervals"),
    ]
    for clearing, detail in mismatches:
        refusal = rules.check(ledger.state, clearing, time=GATE)
        assert refusal is not None
        assert (refusal.rule, refusal.reason) == ("M9", Reason.CLEARING_MISMATCH)
        assert detail in refusal.detail
    index = ledger.size
    ledger.ok(result, GATE + 60)
    assert ledger.state.market.clearings[P] == (result, Ref(index, result.clearing_hash()))
    assert ledger.refused(result, GATE + 120) == ("R5", Reason.DUPLICATE_CLEARING)
    assert ledger.state.original(result) == Ref(index, result.clearing_hash())
    assert ledger.refused(clear(DAY, orders[:3]), GATE + 120) == ("M8", Reason.CLEARING_EXISTS)


def test_a_clearing_without_orders(ledger: Ledger) -> None:
    empty = clear(DAY, [])
    assert all(r.volume == 0 and r.price == 0 and not r.trades for r in empty.intervals)
    ledger.ok(empty, GATE)


def test_the_new_reasons_are_refusals_of_the_rules() -> None:
    new = {
        "NOT_ENROLLED",
        "ENROLMENT_EXISTS",
        "DUPLICATE_ENROLMENT",
        "UNKNOWN_MARKET_DAY",
        "MARKET_DAY_EXISTS",
        "DUPLICATE_MARKET_DAY",
        "GATE_CLOSED",
        "GATE_NOT_CLOSED",
        "PRICE_OUT_OF_BOUNDS",
        "SELF_TRADE",
        "DUPLICATE_ORDER",
        "UNKNOWN_ORDER",
        "DUPLICATE_CANCELLATION",
        "CLEARING_MISMATCH",
        "CLEARING_EXISTS",
        "DUPLICATE_CLEARING",
    }
    assert {getattr(rules, name) for name in new} == {Reason(name) for name in new}
    assert {r for r in rules.IDEMPOTENT if r.startswith("DUPLICATE_")} >= {
        Reason(n) for n in new if n.startswith("DUPLICATE_")
    }
