"""The delivery rules (M10..M13, R4..R6 with the delivery records) and C8 on a real ledger
state: real batches with their openings, real delivery proofs, real sealed boxes opened by
the counterparty. Every rule and refusal, the precedence, the defaults, the statements
the service and the auditor verify (settlement.rules.allocation_statement_for,
delivery_statement_for), and the delivered quantities against the plain rule."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from circuits.r1cs import Prover, R1CSStatement
from ledger.entries import EntryKind
from settlement import rules
from settlement.market import (
    Delivery,
    DeliveryAllocation,
    DeliveryDefault,
    DeliveryStep,
    Side,
    Trade,
)
from settlement.market_circuits import (
    ALLOCATION,
    DELIVERY,
    build_delivery,
    delivery_context,
    prove_allocation,
)
from settlement.records import MeterKey, MeterRevocation, SignatureError
from settlement.rules import Ref, TradeState
from settlement.sealed import open_sealed
from tests.unit.settlement.market_delivery_support import (
    AFTER,
    BUYER_DEADLINE,
    DAY,
    SELLER_DEADLINE,
    TARIFF,
    Market,
    P,
    market,
    plain_deliveries,
)
from zkgrid.errors import InvalidArgumentError, ProofFormatError, Reason, VerificationError
from zkp.group import random_scalar
from zkp.pedersen import Commitment, commit

ZERO = [0] * 6


def one_seller() -> Market:
    """s-1 sells to b-1 (300 Wh) and b-2 (500 Wh) in interval 0. A cloudy day: s-1
    exported 600 Wh; b-1 imported 1000 Wh, b-2 only 200 Wh (away)."""
    m = market(
        [("s-1", Side.OFFER, 1_000, 100), ("b-1", Side.BID, 300, 200), ("b-2", Side.BID, 500, 180)],
        {
            "s-1": (ZERO, [600, 0, 0, 0, 0, 9]),
            "b-1": ([1_000, 1, 2, 3, 4, 5], ZERO),
            "b-2": ([200, 0, 0, 0, 0, 0], ZERO),
        },
    )
    assert m.state.market.clearings[P][0].intervals[0].trades == (
        Trade("s-1", "b-1", 300),
        Trade("s-1", "b-2", 500),
    )
    return m


def one_buyer() -> Market:
    """b-1 buys from s-1 (300 Wh) and s-2 (500 Wh) in interval 0. s-1 exported 1000 Wh,
    s-2 400 Wh; b-1 imported 600 Wh."""
    m = market(
        [
            ("b-1", Side.BID, 1_000, 200),
            ("s-1", Side.OFFER, 300, 100),
            ("s-2", Side.OFFER, 500, 120),
        ],
        {
            "b-1": ([600, 0, 0, 0, 0, 0], ZERO),
            "s-1": (ZERO, [1_000, 0, 0, 0, 0, 0]),
            "s-2": (ZERO, [400, 7, 0, 0, 0, 0]),
        },
    )
    assert m.state.market.clearings[P][0].intervals[0].trades == (
        Trade("s-1", "b-1", 300),
        Trade("s-2", "b-1", 500),
    )
    return m


def statement(m: Market, record: DeliveryAllocation | Delivery) -> R1CSStatement:
    batch = m.parties[record.meter_id].batch
    assert batch is not None
    if isinstance(record, DeliveryAllocation):
        return rules.allocation_statement_for(m.state, record, batch)
    return rules.delivery_statement_for(m.state, record, batch)


def verifies(m: Market, record: DeliveryAllocation | Delivery) -> None:
    """C7 and C8 as the service and the auditor check them."""
    record.verify_signature(m.state.meters[record.meter_id].registration.public_key)
    R1CSStatement.verify_batch([statement(m, record)])


def never_verifies(m: Market, record: DeliveryAllocation | Delivery) -> None:
    with pytest.raises(VerificationError):
        R1CSStatement.verify_batch([statement(m, record)])


def relabel(record: Any, **changes: Any) -> Any:
    """The same step for another trade or meter, re-signed by ``key`` when given."""
    key = changes.pop("key", None)
    fields = {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
    fields.update(changes)
    if key is None:
        return type(record)(**fields)
    del fields["signature"]
    return type(record).create(key, **fields)


# --------------------------------------------------------------------------- decoding, time


def test_the_delivery_kinds_are_opt_in_market_kinds() -> None:
    m = one_seller()
    allocation = m.allocation(0, 0)
    default = m.default(0, 1, DeliveryStep.ALLOCATION)
    for record in (allocation, default):
        entry = record.to_entry()
        assert entry.kind in rules.MARKET_KINDS
        refusal = rules.decode(entry.kind, entry.payload)
        assert isinstance(refusal, rules.Refusal)
        assert (refusal.rule, refusal.reason) == ("R1", Reason.ENTRY_KIND_UNDEFINED)
        assert rules.decode(entry.kind, entry.payload, rules.DEFINED_KINDS) == record
    refusal = rules.decode(EntryKind.DELIVERY, default.encode(), rules.DEFINED_KINDS)
    assert isinstance(refusal, rules.Refusal)
    assert (refusal.rule, refusal.reason) == ("R2", Reason.RECORD_MALFORMED)
    assert {13, 14, 15} <= {int(k) for k in rules.DEFINED_KINDS}


def test_steps_and_defaults_need_the_entry_time() -> None:
    m = one_seller()
    for record in (m.allocation(0, 0), m.default(0, 0, DeliveryStep.ALLOCATION)):
        for time in (None, True, 1.5):
            with pytest.raises(InvalidArgumentError, match="needs the entry's time"):
                rules.check(m.state, record, time=time)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the happy paths


def _settled_as_the_plain_rule(m: Market, exports: dict[str, int], imports: dict[str, int]) -> None:
    trades = m.state.market.clearings[P][0].intervals[0].trades
    steps = []
    for k in range(len(trades)):
        allocation = m.ok(m.allocation(0, k), AFTER)
        verifies(m, allocation)
        delivery = m.ok(m.delivery(0, k), AFTER)
        verifies(m, delivery)
        m.receive(0, k)
        steps += [allocation, delivery]
    # both parties hold d_k, and it is the design's rule in trade order
    expected = plain_deliveries(trades, exports, imports)
    for k, trade in enumerate(trades):
        seller, buyer = m.parties[trade.seller], m.parties[trade.buyer]
        assert seller.deliveries[(0, k)] == buyer.deliveries[(0, k)]
        assert seller.deliveries[(0, k)].value == expected[k]
        assert buyer.allocations[(0, k)] == seller.allocations[(0, k)]  # the buyer opened A
        state = m.state.market.trades[(P, 0, k)]
        assert state.allocation == m.steps[(0, k)]["allocation"].commitment
        assert state.delivery == m.steps[(0, k)]["delivery"].commitment
        assert state.settled
        assert state.default is None
    # the auditor's pass: every step's statement at the end, in one batch
    R1CSStatement.verify_batch([statement(m, s) for s in steps])
    assert rules.due_defaults(m.state, P, BUYER_DEADLINE + 1) == []


def test_one_seller_two_buyers() -> None:
    m = one_seller()
    _settled_as_the_plain_rule(m, {"s-1": 600}, {"b-1": 1_000, "b-2": 200})
    # a_1 = min(500, 600 - 300) = 300: the buyer of the second trade learns the seller's
    # remaining export; d_1 = min(300, 200) = 200: b-2 was away
    assert m.parties["b-2"].allocations[(0, 1)].value == 300
    assert m.parties["s-1"].deliveries[(0, 1)].value == 200
    assert m.state.earlier_trades(P, 0, 1, DeliveryStep.ALLOCATION) == [0]
    assert m.state.earlier_trades(P, 0, 1, DeliveryStep.DELIVERY) == []


def test_one_buyer_two_sellers() -> None:
    m = one_buyer()
    _settled_as_the_plain_rule(m, {"s-1": 1_000, "s-2": 400}, {"b-1": 600})
    assert m.parties["b-1"].allocations[(0, 1)].value == 400  # s-2's export binds
    assert m.parties["s-2"].deliveries[(0, 1)].value == 300  # then b-1's remaining import
    assert m.state.earlier_trades(P, 0, 1, DeliveryStep.DELIVERY) == [0]
    assert m.state.earlier_deliveries(P, 0, 1, DeliveryStep.DELIVERY) == [
        m.steps[(0, 0)]["delivery"].commitment
    ]


def test_the_balances_hold_by_construction() -> None:
    """Per interval, Σ_{sold} D_k = Σ_{bought} D_k and the peer-to-peer payments
    p·D_k - p·D_k net to the identity: one D_k per trade, summed by party."""
    m = one_seller()
    m.settle(0)
    trades = m.state.market.clearings[P][0].intervals[0].trades
    price = m.state.market.clearings[P][0].intervals[0].price
    by_party: dict[str, Commitment] = {}
    for k, trade in enumerate(trades):
        d = Commitment.from_bytes(m.state.market.trades[(P, 0, k)].delivery or b"")
        for party in (trade.seller, trade.buyer):
            by_party[party] = by_party[party] + d if party in by_party else d
    assert by_party["s-1"] == by_party["b-1"] + by_party["b-2"]
    assert price * by_party["s-1"] == price * by_party["b-1"] + price * by_party["b-2"]
    opened = sum(m.parties["s-1"].deliveries[(0, k)].value for k in range(2))
    assert opened <= 600  # Σ_{sold} d ≤ E: the openings, by the proofs (D5)


# --------------------------------------------------------------------------- defaults


def test_a_missed_allocation_defaults_the_trade() -> None:
    m = one_seller()
    default = m.default(0, 0, DeliveryStep.ALLOCATION)
    assert m.refused(default, SELLER_DEADLINE - 1) == ("M12", Reason.DEADLINE_NOT_PASSED)
    assert rules.due_defaults(m.state, P, SELLER_DEADLINE - 1) == []
    due = rules.due_defaults(m.state, P, SELLER_DEADLINE)
    assert due == [default, m.default(0, 1, DeliveryStep.ALLOCATION)]
    m.ok(default, SELLER_DEADLINE)
    assert m.state.market.trades[(P, 0, 0)] == TradeState(
        default=DeliveryStep.ALLOCATION, defaulted=Ref(m.size - 1, default.digest())
    )
    # the trade is settled with nothing: no step follows, no second default
    assert m.refused(m.allocation(0, 0), AFTER) == ("M11", Reason.DELIVERY_EXISTS)
    assert m.refused(default, BUYER_DEADLINE) == ("R5", Reason.DUPLICATE_DELIVERY)
    assert m.state.original(default) == Ref(m.size - 1, default.digest())
    assert m.refused(m.default(0, 0, DeliveryStep.DELIVERY), BUYER_DEADLINE) == (
        "M11",
        Reason.DELIVERY_EXISTS,
    )


def test_a_buyer_that_never_delivers_makes_its_sellers_later_trades_late() -> None:
    """The deadlines are per step, not per trade: trade 0's delivery can be defaulted only
    at the buyers' deadline, after the sellers' one, so the seller's later trades of the
    interval cannot be allocated in time and default too (docs/design/market-v1.md,
    "Deadlines and defaults": a known limitation of version 1)."""
    m = one_seller()
    m.ok(m.allocation(0, 0), AFTER)
    delivery_default = m.default(0, 0, DeliveryStep.DELIVERY)
    assert m.refused(delivery_default, BUYER_DEADLINE - 1) == ("M12", Reason.DEADLINE_NOT_PASSED)
    # the seller cannot go on before it (trade 0 is neither delivered nor defaulted) ...
    assert m.refused(m.allocation(0, 1), SELLER_DEADLINE - 1) == (
        "M13",
        Reason.DELIVERY_NOT_READY,
    )
    assert "earlier trade 0" in m.detail
    # ... and at its deadline trade 1 is due as a missed allocation
    assert rules.due_defaults(m.state, P, SELLER_DEADLINE) == [
        m.default(0, 1, DeliveryStep.ALLOCATION)
    ]
    m.ok(delivery_default, BUYER_DEADLINE)
    assert m.refused(m.delivery(0, 0), BUYER_DEADLINE) == ("M11", Reason.DELIVERY_EXISTS)
    assert m.state.earlier_deliveries(P, 0, 1, DeliveryStep.ALLOCATION) == []  # left out
    assert m.refused(m.allocation(0, 1), BUYER_DEADLINE) == ("M12", Reason.DEADLINE_PASSED)


def test_a_default_is_left_out_of_the_later_steps() -> None:
    """s-1 never allocates trade 0; s-2 allocates trade 1 in time; once trade 0 is
    defaulted at the sellers' deadline, b-1 delivers trade 1 with no earlier D_j:
    d_1 = min(min(500, 400), 600 - 0) = 400, the plain rule with d_0 = 0."""
    m = one_buyer()
    m.ok(m.allocation(0, 1), AFTER)
    assert m.refused(m.delivery(0, 1), AFTER) == ("M13", Reason.DELIVERY_NOT_READY)
    m.ok(m.default(0, 0, DeliveryStep.ALLOCATION), SELLER_DEADLINE)
    assert m.state.earlier_trades(P, 0, 1, DeliveryStep.DELIVERY) == [0]
    assert m.state.earlier_deliveries(P, 0, 1, DeliveryStep.DELIVERY) == []
    delivery = m.ok(m.delivery(0, 1), SELLER_DEADLINE + 1)
    verifies(m, delivery)
    assert m.receive(0, 1).value == 400
    trades = m.state.market.clearings[P][0].intervals[0].trades
    assert plain_deliveries(trades, {"s-1": 0, "s-2": 400}, {"b-1": 600}) == [0, 400]


def test_a_missed_delivery_needs_an_allocation() -> None:
    m = one_seller()
    default = m.default(0, 0, DeliveryStep.DELIVERY)
    assert m.refused(default, BUYER_DEADLINE) == ("M13", Reason.DELIVERY_NOT_READY)
    m.ok(m.allocation(0, 0), AFTER)
    m.ok(m.delivery(0, 0), AFTER)
    assert m.refused(default, BUYER_DEADLINE) == ("M11", Reason.DELIVERY_EXISTS)
    assert m.refused(m.default(0, 0, DeliveryStep.ALLOCATION), BUYER_DEADLINE) == (
        "M11",
        Reason.DELIVERY_EXISTS,
    )


def test_due_defaults() -> None:
    m = one_buyer()
    assert rules.due_defaults(m.state, "2025-06-11", BUYER_DEADLINE) == []  # not cleared
    with pytest.raises(InvalidArgumentError):
        rules.due_defaults(m.state, P, None)  # type: ignore[arg-type]
    m.ok(m.allocation(0, 1), AFTER)  # s-2 needs nothing earlier
    assert rules.due_defaults(m.state, P, SELLER_DEADLINE) == [
        m.default(0, 0, DeliveryStep.ALLOCATION)
    ]
    due = rules.due_defaults(m.state, P, BUYER_DEADLINE)
    assert due == [m.default(0, 0, DeliveryStep.ALLOCATION), m.default(0, 1, DeliveryStep.DELIVERY)]
    for default in due:  # each passes the rules at that time, in order
        m.ok(default, BUYER_DEADLINE)
    assert rules.due_defaults(m.state, P, BUYER_DEADLINE + 10**6) == []
    assert all(m.state.market.trades[(P, 0, k)].settled for k in (0, 1))


# --------------------------------------------------------------------------- every refusal


def test_unknown_trades() -> None:
    m = one_seller()
    allocation = m.allocation(0, 0)
    key = m.parties["s-1"].key
    cases = [
        relabel(allocation, clearing_hash=bytes(32), key=key),
        relabel(allocation, interval=1, key=key),  # interval 1 has no trades
        relabel(allocation, interval=6, key=key),  # the day has 6 intervals
        relabel(allocation, trade_index=2, key=key),
        relabel(allocation, period="2025-06-11", key=key),  # not cleared
    ]
    for record in cases:
        assert m.refused(record) == ("M10", Reason.UNKNOWN_TRADE)
    # a party's step for a trade it is not that party of: not told apart from none
    buyer_allocates = relabel(allocation, meter_id="b-1", key=m.parties["b-1"].key)
    refusal = rules.check(m.state, buyer_allocates, time=AFTER)
    assert refusal is not None
    assert (refusal.rule, refusal.reason) == ("M10", Reason.UNKNOWN_TRADE)
    assert "s-1" not in refusal.detail  # the trade's party is not named
    other_buyer = relabel(allocation, meter_id="b-2", key=m.parties["b-2"].key)
    assert m.refused(other_buyer) == ("M10", Reason.UNKNOWN_TRADE)
    m.ok(allocation, AFTER)
    delivery = m.delivery(0, 0)
    assert m.refused(relabel(delivery, meter_id="s-1", key=key)) == ("M10", Reason.UNKNOWN_TRADE)
    assert m.refused(relabel(delivery, meter_id="b-2", key=m.parties["b-2"].key)) == (
        "M10",
        Reason.UNKNOWN_TRADE,
    )
    for default in (
        dataclasses.replace(m.default(0, 0, DeliveryStep.DELIVERY), trade_index=5),
        dataclasses.replace(m.default(0, 0, DeliveryStep.DELIVERY), clearing_hash=bytes(32)),
    ):
        assert m.refused(default, BUYER_DEADLINE) == ("M10", Reason.UNKNOWN_TRADE)


def test_steps_made_are_made_once() -> None:
    m = one_seller()
    allocation = m.ok(m.allocation(0, 0), AFTER)
    index = m.size - 1
    assert m.refused(allocation) == ("R5", Reason.DUPLICATE_DELIVERY)
    assert m.state.original(allocation) == Ref(index, allocation.digest())
    again = m.allocation(0, 0)  # another proof of the same step
    assert m.refused(again) == ("M11", Reason.DELIVERY_EXISTS)
    assert m.state.original(again) is None
    delivery = m.ok(m.delivery(0, 0), AFTER)
    assert m.refused(delivery, BUYER_DEADLINE + 10) == ("R5", Reason.DUPLICATE_DELIVERY)
    assert m.state.original(delivery) == Ref(index + 1, delivery.digest())
    assert m.refused(m.delivery(0, 0)) == ("M11", Reason.DELIVERY_EXISTS)
    assert rules.DUPLICATE_DELIVERY in rules.IDEMPOTENT


def test_deadlines() -> None:
    m = one_seller()
    assert m.refused(m.allocation(0, 0), SELLER_DEADLINE) == ("M12", Reason.DEADLINE_PASSED)
    m.ok(m.allocation(0, 0), SELLER_DEADLINE - 1)
    # the buyer's step may come after the seller's deadline, not at or after its own
    assert m.refused(m.delivery(0, 0), BUYER_DEADLINE) == ("M12", Reason.DEADLINE_PASSED)
    m.ok(m.delivery(0, 0), BUYER_DEADLINE - 1)


def test_steps_before_their_inputs() -> None:
    m = Market()
    for meter_id in ("b-1", "s-1", "s-2"):
        m.meter(meter_id)
    m.ok(TARIFF)
    m.ok(DAY)
    m.order("b-1", Side.BID, 1_000, 200)
    m.order("s-1", Side.OFFER, 300, 100)
    m.order("s-2", Side.OFFER, 500, 120)
    m.clear()
    m.batch("s-2", ZERO, [400, 0, 0, 0, 0, 0])
    # s-1 made its batch but has not sent it: its allocation is not ready
    batch = m.batch("s-1", ZERO, [1_000, 0, 0, 0, 0, 0], append=False)
    assert m.refused(m.allocation(0, 0)) == ("M13", Reason.DELIVERY_NOT_READY)
    assert "no batch" in m.detail
    m.ok(batch)
    # b-1's delivery before either allocation
    m.batch("b-1", [600, 0, 0, 0, 0, 0], ZERO)
    no_allocation = m.allocation(0, 0)  # to have a record to deliver against
    m.steps[(0, 0)] = {"allocation": no_allocation}
    assert m.refused(m.delivery(0, 0)) == ("M13", Reason.DELIVERY_NOT_READY)
    assert "not allocated" in m.detail
    del m.steps[(0, 0)]
    # a delivery before its allocation
    m.ok(m.allocation(0, 1), AFTER)  # s-2's first trade of the interval: ready
    m.ok(m.allocation(0, 0), AFTER)
    # b-1's second purchase before its first is delivered
    assert m.refused(m.delivery(0, 1)) == ("M13", Reason.DELIVERY_NOT_READY)
    assert "earlier trade 0" in m.detail
    m.ok(m.delivery(0, 0), AFTER)
    m.ok(m.delivery(0, 1), AFTER)
    assert [m.receive(0, k).value for k in (0, 1)] == [300, 300]


def test_a_delivery_before_the_allocation_or_the_buyers_batch() -> None:
    m = one_seller()
    m.ok(m.allocation(0, 0), AFTER)
    delivery = m.delivery(0, 0)
    # the same delivery against a trade without allocation: trade 1 (b-2's) is the only
    # other one, so b-2 signs a delivery of trade 1 before s-1 allocated it
    early = relabel(delivery, meter_id="b-2", trade_index=1, key=m.parties["b-2"].key)
    assert m.refused(early) == ("M13", Reason.DELIVERY_NOT_READY)
    assert "not allocated" in m.detail
    m2 = market(
        [("s-1", Side.OFFER, 100, 100), ("b-1", Side.BID, 100, 200)],
        {"s-1": (ZERO, [50, 0, 0, 0, 0, 0])},
    )
    m2.ok(m2.allocation(0, 0), AFTER)
    batch = m2.batch("b-1", [80, 0, 0, 0, 0, 0], ZERO, append=False)
    assert m2.refused(m2.delivery(0, 0)) == ("M13", Reason.DELIVERY_NOT_READY)
    assert "no batch" in m2.detail
    m2.ok(batch)
    m2.ok(m2.delivery(0, 0), AFTER)
    assert m2.receive(0, 0).value == 50


def test_meters_unknown_and_revoked() -> None:
    m = one_seller()
    allocation = m.allocation(0, 0)
    ghost = relabel(allocation, meter_id="ghost", key=MeterKey.from_private_value(99))
    assert m.refused(ghost) == ("R4", Reason.UNKNOWN_METER)
    m.ok(allocation, AFTER)
    m.ok(MeterRevocation("s-1", "moved out"))
    # R5 before R6: the identical step is still its receipt
    assert m.refused(allocation) == ("R5", Reason.DUPLICATE_DELIVERY)
    m.ok(m.delivery(0, 0), AFTER)  # the buyer is not revoked
    m.receive(0, 0)
    # R6 before M10..M13: a revoked seller's later step (its trade then defaults)
    assert m.refused(m.allocation(0, 1)) == ("R6", Reason.METER_REVOKED)
    assert m.refused(relabel(allocation, trade_index=7, key=m.parties["s-1"].key)) == (
        "R6",
        Reason.METER_REVOKED,
    )
    m.ok(m.default(0, 1, DeliveryStep.ALLOCATION), SELLER_DEADLINE)


def test_precedence_of_the_delivery_rules() -> None:
    m = one_seller()
    # M10 before M11..M13: another clearing, late, without the batch
    wrong = relabel(m.allocation(0, 1), clearing_hash=bytes(32), key=m.parties["s-1"].key)
    assert m.refused(wrong, SELLER_DEADLINE) == ("M10", Reason.UNKNOWN_TRADE)
    # M12 before M13: trade 1 is not ready (trade 0 open) and late
    assert m.refused(m.allocation(0, 1), SELLER_DEADLINE) == ("M12", Reason.DEADLINE_PASSED)
    assert m.refused(m.allocation(0, 1), SELLER_DEADLINE - 1) == ("M13", Reason.DELIVERY_NOT_READY)
    # M11 before M12: a step of a defaulted trade, late
    m.ok(m.default(0, 0, DeliveryStep.ALLOCATION), SELLER_DEADLINE)
    assert m.refused(m.allocation(0, 0), BUYER_DEADLINE) == ("M11", Reason.DELIVERY_EXISTS)
    # a default: M11 before M12, M12 before M13
    assert m.refused(m.default(0, 0, DeliveryStep.DELIVERY), 0) == ("M11", Reason.DELIVERY_EXISTS)
    assert m.refused(m.default(0, 1, DeliveryStep.DELIVERY), 0) == (
        "M12",
        Reason.DEADLINE_NOT_PASSED,
    )


def test_the_new_reasons_are_refusals_of_the_rules() -> None:
    new = {
        "UNKNOWN_TRADE",
        "DELIVERY_EXISTS",
        "DUPLICATE_DELIVERY",
        "DEADLINE_PASSED",
        "DEADLINE_NOT_PASSED",
        "DELIVERY_NOT_READY",
    }
    assert {getattr(rules, name) for name in new} == {Reason(name) for name in new}


# --------------------------------------------------------------------------- C7, C8


def test_c8_statements_of_valid_steps_verify() -> None:
    m = one_buyer()
    m.settle(0)
    records = [m.steps[(0, k)][s] for k in (0, 1) for s in ("allocation", "delivery")]
    for record in records:
        verifies(m, record)
    assert R1CSStatement.find_invalid([statement(m, r) for r in records]) == []


def test_an_allocation_proven_over_another_export_never_verifies() -> None:
    m = one_seller()
    seller = m.parties["s-1"]
    tid = m.trade_id(0, 0)
    # the seller proves over interval 5's export (9 Wh), or over a commitment of its own
    # choosing (a sunny day), instead of the ledger's export of interval 0 (600 Wh)
    for export, opening in (
        seller.export_of(5),
        (commit(5_000, 11).to_bytes(), (5_000, 11)),
    ):
        step = prove_allocation(tid, export, opening, [], [], 300)
        forged = relabel(
            m.allocation(0, 0), commitment=step.commitment, proof=step.proof, key=seller.key
        )
        assert rules.check(m.state, forged, time=AFTER) is None  # the state rules hold
        forged.verify_signature(seller.key.public_key)  # and C7
        never_verifies(m, forged)


def test_a_delivery_below_the_min_never_verifies() -> None:
    """The buyer b-2 took 200 Wh of the 300 allocated; it commits to 150 and forces a
    proof through the prover's internals: the statement over the ledger refuses it."""
    m = one_seller()
    m.ok(m.allocation(0, 0), AFTER)
    m.ok(m.delivery(0, 0), AFTER)
    m.receive(0, 0)
    m.ok(m.allocation(0, 1), AFTER)
    buyer = m.parties["b-2"]
    allocation = m.steps[(0, 1)]["allocation"]
    tid = m.trade_id(0, 1)
    a = open_sealed(
        allocation.sealed_opening, buyer.encryption, allocation.commitment,
        delivery_context(tid, ALLOCATION),
    )  # fmt: skip
    assert a.value == 300
    imported, import_opening = buyer.import_of(0)
    prover = Prover()
    av = prover.commit(Commitment.from_bytes(allocation.commitment), a.value, a.blinding)
    iv = prover.commit(Commitment.from_bytes(imported), *import_opening)
    delta = random_scalar()
    claimed = commit(150, delta)
    build_delivery(prover, av, iv, [], prover.commit(claimed, 150, delta))
    proof = prover._prove_unchecked(delivery_context(tid, DELIVERY))
    honest = m.delivery(0, 1)
    forged = relabel(honest, commitment=claimed.to_bytes(), proof=proof.to_bytes(), key=buyer.key)
    assert rules.check(m.state, forged, time=AFTER) is None
    never_verifies(m, forged)
    verifies(m, honest)


def test_a_step_for_another_trade_never_verifies() -> None:
    m = one_seller()
    m.ok(m.allocation(0, 0), AFTER)
    m.ok(m.delivery(0, 0), AFTER)
    m.receive(0, 0)
    first = m.steps[(0, 0)]["allocation"]
    second = m.allocation(0, 1)
    verifies(m, second)
    # trade 0's allocation proof presented for trade 1 (and trade 1's for trade 0)
    key = m.parties["s-1"].key
    moved = relabel(first, trade_index=1, key=key)
    assert rules.check(m.state, moved, time=AFTER) is None
    never_verifies(m, moved)
    # the buyer's delivery proof of trade 0 as the delivery of another trade: the proof
    # binds the trade id (D1), whatever the inputs
    m.ok(second, AFTER)
    delivery = m.steps[(0, 0)]["delivery"]
    moved_delivery = relabel(
        m.delivery(0, 1), commitment=delivery.commitment, proof=delivery.proof,
        key=m.parties["b-2"].key,
    )  # fmt: skip
    never_verifies(m, moved_delivery)
    # an allocation's proof as a delivery of the same trade: another step, another circuit
    as_delivery = relabel(
        m.delivery(0, 1), commitment=second.commitment, proof=second.proof,
        key=m.parties["b-2"].key,
    )  # fmt: skip
    never_verifies(m, as_delivery)


def test_c7_a_step_signed_by_another_key() -> None:
    m = one_seller()
    forged = m.allocation(0, 0, signer=m.parties["b-1"])  # s-1's step, b-1's signature
    assert rules.check(m.state, forged, time=AFTER) is None
    with pytest.raises(SignatureError):
        forged.verify_signature(m.state.meters["s-1"].registration.public_key)
    R1CSStatement.verify_batch([statement(m, forged)])  # the proof itself is honest


def test_c8_malformed_proofs_and_helper_preconditions() -> None:
    m = one_seller()
    allocation = m.allocation(0, 0)
    garbled = relabel(allocation, proof=b"\x01" * 100, key=m.parties["s-1"].key)
    with pytest.raises(ProofFormatError) as info:
        statement(m, garbled)
    assert info.value.reason is Reason.PROOF_MALFORMED
    seller, buyer = m.parties["s-1"], m.parties["b-1"]
    assert seller.batch is not None
    assert buyer.batch is not None
    with pytest.raises(InvalidArgumentError, match="not the ledger's batch"):
        rules.allocation_statement_for(m.state, allocation, buyer.batch)
    with pytest.raises(InvalidArgumentError, match="not a trade of the ledger"):
        rules.allocation_statement_for(
            m.state, relabel(allocation, trade_index=9), seller.batch
        )
    with pytest.raises(InvalidArgumentError, match="no trade of"):
        rules.allocation_statement_for(
            m.state, relabel(allocation, meter_id="b-1"), seller.batch
        )
    with pytest.raises(InvalidArgumentError, match="neither delivered nor defaulted"):
        rules.allocation_statement_for(m.state, relabel(allocation, trade_index=1), seller.batch)
    m.ok(allocation, AFTER)
    delivery = m.delivery(0, 0)
    with pytest.raises(InvalidArgumentError):
        rules.delivery_statement_for(m.state, allocation, buyer.batch)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        rules.allocation_statement_for(m.state, delivery, seller.batch)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="not allocated"):
        rules.delivery_statement_for(
            m.state,
            relabel(delivery, meter_id="b-2", trade_index=1),
            m.parties["b-2"].batch,  # type: ignore[arg-type]
        )
    R1CSStatement.verify_batch([rules.delivery_statement_for(m.state, delivery, buyer.batch)])
    with pytest.raises(InvalidArgumentError):
        m.state.earlier_trades(P, 0, 9, DeliveryStep.ALLOCATION)


def test_statements_are_the_same_before_and_after_the_step_is_applied() -> None:
    """The service verifies before appending, the auditor after applying (and after later
    entries): neither changes what a statement reads."""
    m = one_seller()
    m.ok(m.allocation(0, 0), AFTER)
    m.ok(m.delivery(0, 0), AFTER)
    m.receive(0, 0)
    batch = m.parties["s-1"].batch
    assert batch is not None
    second = m.allocation(0, 1)
    before = rules.allocation_statement_for(m.state, second, batch)
    m.ok(second, AFTER)
    m.ok(m.default(0, 1, DeliveryStep.DELIVERY), BUYER_DEADLINE)
    after = rules.allocation_statement_for(m.state, second, batch)
    assert before.circuit.digest() == after.circuit.digest()
    assert before.context == after.context
    R1CSStatement.verify_batch([before, after])


def test_a_default_is_no_meters_record() -> None:
    """Defaults carry no meter and no signature: R4 and R6 do not apply (by role)."""
    m = one_seller()
    m.ok(MeterRevocation("s-1", "gone"))
    m.ok(m.default(0, 0, DeliveryStep.ALLOCATION), SELLER_DEADLINE)
    assert isinstance(m.steps[(0, 0)]["default"], DeliveryDefault)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    quantities=st.lists(st.integers(1, 1_500), min_size=4, max_size=4),
    readings=st.lists(st.sampled_from([0, 1, 250, 700, 1_499, 3_000]), min_size=4, max_size=4),
)
def test_two_sellers_two_buyers_deliver_the_plain_rule(
    quantities: list[int], readings: list[int]
) -> None:
    """Any quantities and readings (none, tiny, the whole order, more): the steps, proven
    and verified in trade order, deliver exactly the plain rule."""
    q1, q2, q3, q4 = quantities
    e1, e2, i1, i2 = readings
    m = market(
        [
            ("s-1", Side.OFFER, q1, 100),
            ("s-2", Side.OFFER, q2, 110),
            ("b-1", Side.BID, q3, 200),
            ("b-2", Side.BID, q4, 190),
        ],
        {
            "s-1": (ZERO, [e1, 0, 0, 0, 0, 0]),
            "s-2": (ZERO, [e2, 0, 0, 0, 0, 0]),
            "b-1": ([i1, 0, 0, 0, 0, 0], ZERO),
            "b-2": ([i2, 0, 0, 0, 0, 0], ZERO),
        },
    )
    trades = m.state.market.clearings[P][0].intervals[0].trades
    assert sum(t.quantity for t in trades) == min(q1 + q2, q3 + q4)
    m.settle(0)
    expected = plain_deliveries(trades, {"s-1": e1, "s-2": e2}, {"b-1": i1, "b-2": i2})
    assert [m.parties[t.seller].deliveries[(0, k)].value for k, t in enumerate(trades)] == expected
    steps = [m.steps[(0, k)][s] for k in range(len(trades)) for s in ("allocation", "delivery")]
    R1CSStatement.verify_batch([statement(m, s) for s in steps])
