"""The market's domain in the service (service/market.py) over a real store, with the
service's clock injected: enrolment, market days, orders and cancellations judged by the
rules at the clock's time and signed by the meter's registered key (C7), the clearing
(operator-triggered, recomputed under the write lock), the lists each caller may read, and
a restart that replays every market entry at its stored time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from service.errors import PermissionDenied
from service.market import Cleared, Market, OrderStatus
from service.settlement import Settlement
from service.storage import LedgerStore, open_store
from settlement import market as market_rules
from settlement.errors import (
    ClearingMismatch,
    EnrolmentExists,
    GateClosed,
    GateNotClosed,
    MarketDayExists,
    NotEnrolled,
    PriceOutOfBounds,
    SelfTrade,
    UnknownMarketDay,
    UnknownMeter,
    UnknownOrder,
    UnknownTariff,
)
from settlement.market import MarketDay, Side, clear
from settlement.records import MeterKey, SignatureError
from tests.unit.service.market_support import (
    DAY,
    GATE,
    HOURLY,
    PERIOD,
    TARIFF,
    Clock,
    Trader,
    traders,
)
from tests.unit.service.settlement_support import ORIGIN, SIGNER, SimMeter
from zkgrid.errors import Reason, ZkgridError


@pytest.fixture
def store(tmp_path: Any) -> Iterator[LedgerStore]:
    with open_store(f"sqlite:///{tmp_path / 'ledger.db'}", SIGNER, ORIGIN) as s:
        yield s


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settlement(store: LedgerStore, clock: Clock) -> Iterator[Settlement]:
    with Settlement(store, clock=clock) as s:
        yield s


@pytest.fixture
def market(settlement: Settlement) -> Market:
    return Market(settlement)


def opened(market: Market, *names: str) -> list[Trader]:
    """Meters registered and enrolled, the period's tariff and market day published."""
    people = traders(*names)
    for t in people:
        market.settlement.register_meter(t.meter.registration())
        market.enrol(t.enrolment(), as_meter=t.meter_id)
    market.settlement.publish_tariff(TARIFF)
    market.publish_market_day(DAY)
    return people


def unchanged(store: LedgerStore, error: type[ZkgridError], call: Any) -> ZkgridError:
    size = store.size()
    with pytest.raises(error) as info:
        call()
    assert store.size() == size
    return info.value


# --------------------------------------------------------------------------- enrolment


def test_enrolment_is_signed_by_the_registered_key_and_one_per_meter(
    market: Market, store: LedgerStore
) -> None:
    [alice] = traders("alice")
    unchanged(store, UnknownMeter, lambda: market.enrol(alice.enrolment()))
    market.settlement.register_meter(alice.meter.registration())
    forged = Trader(SimMeter("alice", HOURLY, key=MeterKey.generate())).enrolment()
    error = unchanged(store, SignatureError, lambda: market.enrol(forged, as_meter="alice"))
    assert error.reason is Reason.SIGNATURE_INVALID
    unchanged(store, PermissionDenied, lambda: market.enrol(alice.enrolment(), as_meter="bob"))
    enrolment = alice.enrolment()
    receipt = market.enrol(enrolment, as_meter="alice")
    assert receipt.index == store.size() - 1
    receipt.verify(SIGNER.verifier(), enrolment.to_entry())
    assert market.enrol(enrolment) == receipt  # the identical record: idempotent
    unchanged(store, EnrolmentExists, lambda: market.enrol(alice.enrolment()))  # re-signed


def test_market_day_once_per_period(market: Market, store: LedgerStore) -> None:
    receipt = market.publish_market_day(DAY)
    receipt.verify(SIGNER.verifier(), DAY.to_entry())
    assert market.publish_market_day(DAY) == receipt
    other = MarketDay.with_defaults(PERIOD, HOURLY, 0)
    unchanged(store, MarketDayExists, lambda: market.publish_market_day(other))


# --------------------------------------------------------------------------- orders


def test_orders_are_judged_by_the_rules_at_the_services_clock(
    market: Market, store: LedgerStore, clock: Clock
) -> None:
    [alice] = traders("alice")
    market.settlement.register_meter(alice.meter.registration())
    unchanged(store, NotEnrolled, lambda: market.submit_order(alice.offer(0, 3, 500, 100)))
    market.enrol(alice.enrolment())
    unchanged(store, UnknownMarketDay, lambda: market.submit_order(alice.offer(0, 3, 500, 100)))
    market.publish_market_day(DAY)
    unchanged(store, UnknownTariff, lambda: market.submit_order(alice.offer(0, 3, 500, 100)))
    market.settlement.publish_tariff(TARIFF)
    error = unchanged(
        store, PriceOutOfBounds, lambda: market.submit_order(alice.offer(17, 18, 500, 100))
    )
    assert "interval 18" in str(error)  # [150, 400] there; 100 fits [80, 300] elsewhere
    unchanged(store, PriceOutOfBounds, lambda: market.submit_order(alice.bid(0, 0, 500, 301)))
    offer = alice.offer(0, 3, 500, 100)
    receipt = market.submit_order(offer, as_meter="alice")
    receipt.verify(SIGNER.verifier(), offer.to_entry())
    unchanged(store, SelfTrade, lambda: market.submit_order(alice.bid(3, 5, 500, 200)))
    market.submit_order(alice.bid(4, 5, 500, 200))  # no common interval: fine
    # forged: the order of alice signed by another key
    mallory = Trader(SimMeter("alice", HOURLY, key=MeterKey.generate()))
    error = unchanged(
        store, SignatureError, lambda: market.submit_order(mallory.offer(6, 6, 100, 100))
    )
    assert error.reason is Reason.SIGNATURE_INVALID
    # at and after gate closure: refused; the identical order again is still idempotent
    clock.at(GATE)
    error = unchanged(store, GateClosed, lambda: market.submit_order(alice.offer(6, 6, 100, 90)))
    assert str(DAY.gate_closure) in str(error)
    assert market.submit_order(offer) == receipt


def test_cancellations_withdraw_live_orders_of_the_same_meter_before_the_gate(
    market: Market, store: LedgerStore, clock: Clock
) -> None:
    alice, bob = opened(market, "alice", "bob")
    first, second = alice.offer(0, 1, 400, 100), alice.offer(2, 2, 400, 100)
    market.submit_order(first)
    market.submit_order(second)
    unchanged(
        store, PermissionDenied, lambda: market.cancel_order(alice.cancel(first), as_meter="bob")
    )
    theirs = Trader(bob.meter).cancel(first)  # bob names alice's order: no live order of bob
    unchanged(store, UnknownOrder, lambda: market.cancel_order(theirs))
    cancellation = alice.cancel(first)
    receipt = market.cancel_order(cancellation, as_meter="alice")
    assert market.cancel_order(cancellation) == receipt  # idempotent
    unchanged(store, UnknownOrder, lambda: market.cancel_order(alice.cancel(first)))
    # the same order again after its cancellation is still a replay (its bytes name it)
    assert market.submit_order(first).index == market.list_orders(PERIOD, "alice")[0].index
    clock.at(GATE + timedelta(seconds=1))
    unchanged(store, GateClosed, lambda: market.cancel_order(alice.cancel(second)))
    lines = market.list_orders(PERIOD, "alice", as_meter="alice")
    assert [(line.order, line.status) for line in lines] == [
        (first, OrderStatus.CANCELLED),
        (second, OrderStatus.LIVE),
    ]
    assert lines[0].cancellation_index == receipt.index
    assert lines[0].order_hash == first.order_hash()


# --------------------------------------------------------------------------- the clearing


def test_clearing_is_the_recomputation_of_the_live_orders_after_the_gate(
    market: Market, store: LedgerStore, clock: Clock
) -> None:
    s1, s2, b1, b2 = opened(market, "s1", "s2", "b1", "b2")
    orders = [
        s1.offer(8, 11, 1_500, 90),
        s2.offer(9, 12, 2_000, 120),
        b1.bid(8, 10, 1_000, 250),
        b2.bid(9, 12, 2_500, 150),
        b1.bid(11, 11, 700, 100),
    ]
    for order in orders:
        market.submit_order(order)
    cancelled = s2.offer(8, 8, 900, 85)
    market.submit_order(cancelled)
    market.cancel_order(s2.cancel(cancelled))
    unchanged(store, GateNotClosed, lambda: market.clear(PERIOD))
    unchanged(store, UnknownMarketDay, lambda: market.clear("2024-06-03"))
    assert not market.result(PERIOD).cleared
    assert market.trades(PERIOD, "s1").trades == ()
    clock.at(GATE)
    cleared = market.clear(PERIOD)
    expected = clear(DAY, orders)  # independently: the live orders in ledger order
    assert cleared.appended
    assert cleared.clearing == expected
    assert sum(r.volume for r in expected.intervals) > 0
    cleared.receipt.verify(SIGNER.verifier(), expected.to_entry())
    again = market.clear(PERIOD)
    assert again == Cleared(expected, cleared.receipt, False)
    # after the clearing: the gate is closed for good, the results are public
    unchanged(store, GateClosed, lambda: market.submit_order(s1.offer(0, 0, 10, 100)))
    public = market.result(PERIOD, as_meter="b2")
    assert public.intervals == tuple((r.price, r.volume) for r in expected.intervals)
    assert public.clearing is None
    assert public.receipt is None
    full = market.result(PERIOD)
    assert full.clearing == expected
    assert full.receipt == cleared.receipt
    # each meter's trades, and every trade for the utility
    every = market.trades(PERIOD)
    assert [
        (line.interval, line.index, line.seller, line.buyer, line.quantity) for line in every.trades
    ] == [
        (t, k, trade.seller, trade.buyer, trade.quantity)
        for t, result in enumerate(expected.intervals)
        for k, trade in enumerate(result.trades)
    ]
    for trader in (s1, s2, b1, b2):
        mine = market.trades(PERIOD, trader.meter_id, as_meter=trader.meter_id)
        assert mine.cleared
        assert mine.clearing_hash == expected.clearing_hash()
        want = [
            (t, k, Side.OFFER if tr.seller == trader.meter_id else Side.BID,
             tr.buyer if tr.seller == trader.meter_id else tr.seller, tr.quantity, r.price)
            for t, r in enumerate(expected.intervals)
            for k, tr in enumerate(r.trades)
            if trader.meter_id in (tr.seller, tr.buyer)
        ]  # fmt: skip
        got = [
            (x.interval, x.index, x.side, x.counterparty, x.quantity, x.price) for x in mine.trades
        ]
        assert got == want
        assert want


def test_a_meter_reads_only_its_own_orders_and_trades(market: Market, clock: Clock) -> None:
    alice, bob = opened(market, "alice", "bob")
    market.submit_order(alice.offer(0, 0, 100, 100))
    market.submit_order(bob.bid(0, 0, 100, 200))
    with pytest.raises(PermissionDenied):
        market.list_orders(PERIOD, "bob", as_meter="alice")
    with pytest.raises(PermissionDenied):
        market.list_orders(PERIOD, None, as_meter="alice")
    assert [line.order.meter_id for line in market.list_orders(PERIOD)] == ["alice", "bob"]
    with pytest.raises(UnknownMeter):
        market.list_orders(PERIOD, "carol")
    clock.at(GATE)
    market.clear(PERIOD)
    with pytest.raises(PermissionDenied):
        market.trades(PERIOD, "bob", as_meter="alice")
    with pytest.raises(PermissionDenied):
        market.trades(PERIOD, None, as_meter="alice")
    [trade] = market.trades(PERIOD, "alice", as_meter="alice").trades
    assert (trade.side, trade.counterparty, trade.quantity, trade.price) == (
        Side.OFFER, "bob", 100, 150,
    )  # fmt: skip


def test_a_revocation_withdraws_orders_and_a_stale_clearing_is_computed_again(
    market: Market, store: LedgerStore, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob, carol = opened(market, "alice", "bob", "carol")
    orders = [alice.offer(0, 0, 100, 100), bob.bid(0, 0, 100, 200), carol.offer(0, 0, 100, 90)]
    for order in orders:
        market.submit_order(order)
    clock.at(GATE)
    calls: list[int] = []
    real_clear = market_rules.clear

    def clear_then_revoke(day: MarketDay, live: Any) -> Any:
        result = real_clear(day, live)
        if not calls:  # a revocation lands between the computation and the append
            market.settlement.revoke_meter("carol", "moved away")
        calls.append(len(live))
        return result

    monkeypatch.setattr("service.market.clear", clear_then_revoke)
    cleared = market.clear(PERIOD)
    assert calls == [3, 2]  # computed again without carol's withdrawn offer
    assert cleared.clearing == real_clear(DAY, orders[:2])
    statuses = {line.order.meter_id: line.status for line in market.list_orders(PERIOD)}
    assert statuses == {
        "alice": OrderStatus.LIVE, "bob": OrderStatus.LIVE, "carol": OrderStatus.WITHDRAWN
    }  # fmt: skip
    # a revocation after the clearing does not withdraw what was cleared
    market.settlement.revoke_meter("alice", "sold the house")
    assert market.list_orders(PERIOD, "alice")[0].status == OrderStatus.LIVE


def test_a_clearing_that_keeps_going_stale_is_refused(
    market: Market, store: LedgerStore, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob = opened(market, "alice", "bob")
    market.submit_order(alice.offer(0, 0, 100, 100))
    market.submit_order(bob.bid(0, 0, 100, 200))
    clock.at(GATE)
    stale = clear(DAY, [])  # names no orders: never the recomputation
    monkeypatch.setattr("service.market.clear", lambda day, live: stale)
    error = unchanged(store, ClearingMismatch, lambda: market.clear(PERIOD))
    assert error.reason is Reason.CLEARING_MISMATCH


# --------------------------------------------------------------------------- replay


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def durable_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'replicas.db'}"
    return str(request.getfixturevalue("pg_schema_url"))


def test_a_restart_replays_every_market_entry_at_its_stored_time(durable_url: str) -> None:
    """The entries are stored with the time they were judged at: a new projection (a
    restart) applies each order before and the clearing after the gate, whatever its own
    clock says."""
    clock = Clock()
    with open_store(durable_url, SIGNER, ORIGIN) as store:
        with Settlement(store, clock=clock) as first:
            market = Market(first)
            s1, b1 = opened(market, "s1", "b1")
            offer, bid = s1.offer(0, 5, 800, 100), b1.bid(2, 7, 600, 250)
            market.submit_order(offer)
            market.submit_order(bid)
            late = s1.offer(6, 6, 100, 100)
            market.submit_order(late)
            market.cancel_order(s1.cancel(late))
            clock.at(GATE + timedelta(minutes=5))
            cleared = market.clear(PERIOD)
            seen = market.list_orders(PERIOD)
            mine = market.trades(PERIOD, "b1").trades
            entries = list(store.entries())
        assert entries[-1].created_at == GATE + timedelta(minutes=5)
        for moment in (GATE - timedelta(days=3), GATE + timedelta(days=300)):
            with Settlement(store, clock=lambda m=moment: m) as again:  # type: ignore[misc]
                assert again.anomaly_reasons == []
                replayed = Market(again)
                assert replayed.list_orders(PERIOD) == seen
                assert replayed.result(PERIOD).clearing == cleared.clearing
                assert replayed.trades(PERIOD, "b1").trades == mine


def test_replicas_with_other_clocks_apply_what_the_other_accepted(durable_url: str) -> None:
    """Two services on one database: one before the gate takes orders, one after it clears;
    each catches up on the other's entries without an anomaly, and each judges its own
    requests by its own clock."""
    before, after = Clock(), Clock(GATE + timedelta(hours=1))
    with (
        open_store(durable_url, SIGNER, ORIGIN) as store_a,
        open_store(durable_url, SIGNER, ORIGIN) as store_b,
        Settlement(store_a, clock=before) as a,
        Settlement(store_b, clock=after) as b,
    ):
        early, late = Market(a), Market(b)
        alice, bob = opened(early, "alice", "bob")
        orders = [alice.offer(3, 4, 500, 100), bob.bid(4, 4, 300, 200)]
        for order in orders:
            early.submit_order(order)
        with pytest.raises(GateClosed):  # b's clock is past the gate
            late.submit_order(alice.offer(5, 5, 100, 100))
        assert [line.order for line in late.list_orders(PERIOD)] == orders  # caught up
        cleared = late.clear(PERIOD)
        assert cleared.clearing == clear(DAY, orders)
        assert early.result(PERIOD).clearing == cleared.clearing  # a applied b's clearing
        # cleared already: a answers with it, though its own clock is before the gate
        assert early.clear(PERIOD) == Cleared(cleared.clearing, cleared.receipt, False)
        with pytest.raises(GateClosed):  # cleared: closed for a too
            early.submit_order(alice.offer(5, 5, 100, 100))
        assert a.anomaly_reasons == []
        assert b.anomaly_reasons == []
