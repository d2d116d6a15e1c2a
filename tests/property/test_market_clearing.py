"""Properties of the clearing rule (settlement.market.clear; docs/design/market-v1.md,
"Clearing"), checked against independent computations from the orders:

* volume: each interval's trades sum to its volume, which is the most the supply and demand
  curves can exchange, ``max_p min(S(p), D(p))``;
* limits: no meter sells more than its offers priced at most the interval's price, nor buys
  more than its bids priced at least that price (so no trade lies outside both limits and no
  order is filled beyond its quantity);
* no self-trade; the clearing is deterministic, depends on ledger order only through the
  order within each side of each interval, and round-trips as a record.
"""

from __future__ import annotations

from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from settlement.market import (
    MAX_QUANTITY,
    Clearing,
    IntervalResult,
    MarketDay,
    Order,
    Side,
    clear,
    orders_digest,
)
from settlement.records import MAX_RATE

SETTINGS = settings(max_examples=300, deadline=None)
PERIOD = "2025-06-10"
#: clear() never reads signatures: a fixed DER placeholder.
SIGNATURE = b"\x30\x06\x02\x01\x01\x02\x01\x01"

#: Small prices and quantities make ties and margins likely; the full ranges check bounds.
prices = st.one_of(st.integers(0, 12), st.integers(0, MAX_RATE))
quantities = st.one_of(st.integers(1, 30), st.integers(1, MAX_QUANTITY))


@st.composite
def books(draw: st.DrawFn, one_order_per_meter: bool = False) -> tuple[MarketDay, list[Order]]:
    """A market day of 1..4 intervals and live orders in ledger order that satisfy M4 (no
    meter offers and bids for a common interval), as the rules guarantee."""
    minutes = draw(st.sampled_from([360, 480, 720, 1440]))
    day = MarketDay.with_defaults(PERIOD, minutes, 0)
    intervals = day.intervals
    count = draw(st.integers(0, 16))
    pool = [f"m-{i}" for i in range(draw(st.integers(1, 8)))]
    sides: dict[tuple[str, int], Side] = {}
    orders: list[Order] = []
    for k in range(count):
        meter = f"o-{k}" if one_order_per_meter else draw(st.sampled_from(pool))
        side = draw(st.sampled_from(Side))
        first = draw(st.integers(0, intervals - 1))
        last = draw(st.integers(first, intervals - 1))
        span = range(first, last + 1)
        if any(sides.get((meter, t), side) is not side for t in span):
            continue  # M4 refuses it
        for t in span:
            sides[(meter, t)] = side
        quantity, price = draw(quantities), draw(prices)
        orders.append(Order(meter, PERIOD, side, first, last, quantity, price, k, SIGNATURE))
    return day, orders


def _covering(orders: list[Order], t: int, side: Side) -> list[Order]:
    return [o for o in orders if o.side is side and o.covers(t)]


def _most_exchangeable(offers: list[Order], bids: list[Order]) -> int:
    """``max_p min(S(p), D(p))`` over the orders' prices: S(p) the Wh offered at most p,
    D(p) the Wh bid at least p (the greedy match of the merit order reaches it)."""
    best = 0
    for p in {o.limit_price for o in offers + bids}:
        supply = sum(o.quantity_wh for o in offers if o.limit_price <= p)
        demand = sum(o.quantity_wh for o in bids if o.limit_price >= p)
        best = max(best, min(supply, demand))
    return best


@SETTINGS
@given(books())
def test_volume_is_conserved_and_maximal(book: tuple[MarketDay, list[Order]]) -> None:
    day, orders = book
    clearing = clear(day, orders)
    assert len(clearing.intervals) == day.intervals
    for t, result in enumerate(clearing.intervals):
        offers, bids = _covering(orders, t, Side.OFFER), _covering(orders, t, Side.BID)
        sold: dict[str, int] = defaultdict(int)
        bought: dict[str, int] = defaultdict(int)
        for trade in result.trades:
            sold[trade.seller] += trade.quantity
            bought[trade.buyer] += trade.quantity
        assert sum(trade.quantity for trade in result.trades) == result.volume
        assert sum(sold.values()) == sum(bought.values()) == result.volume
        assert result.volume == _most_exchangeable(offers, bids)
        if result.volume == 0:
            assert result == IntervalResult(0, 0, ())
        else:
            assert len(result.trades) <= len(offers) + len(bids) - 1


@SETTINGS
@given(books())
def test_no_trade_outside_both_limits(book: tuple[MarketDay, list[Order]]) -> None:
    day, orders = book
    for t, result in enumerate(clear(day, orders).intervals):
        if result.volume == 0:
            continue
        price = result.price
        sold: dict[str, int] = defaultdict(int)
        bought: dict[str, int] = defaultdict(int)
        for trade in result.trades:
            sold[trade.seller] += trade.quantity
            bought[trade.buyer] += trade.quantity
        for meter, quantity in sold.items():
            willing = sum(
                o.quantity_wh
                for o in _covering(orders, t, Side.OFFER)
                if o.meter_id == meter and o.limit_price <= price
            )
            assert quantity <= willing, (t, meter)
        for meter, quantity in bought.items():
            willing = sum(
                o.quantity_wh
                for o in _covering(orders, t, Side.BID)
                if o.meter_id == meter and o.limit_price >= price
            )
            assert quantity <= willing, (t, meter)
        assert not sold.keys() & bought.keys()  # no self-trade
        assert all(trade.seller != trade.buyer for trade in result.trades)


@SETTINGS
@given(books(one_order_per_meter=True))
def test_each_order_within_its_quantity_and_limit(book: tuple[MarketDay, list[Order]]) -> None:
    """With one order per meter a meter's trades are its order's fills: each at most the
    order's quantity, and only for an order whose limit the price respects; every seller's
    limit <= price <= every buyer's limit."""
    day, orders = book
    by_meter = {o.meter_id: o for o in orders}
    for result in clear(day, orders).intervals:
        filled: dict[str, int] = defaultdict(int)
        for trade in result.trades:
            filled[trade.seller] += trade.quantity
            filled[trade.buyer] += trade.quantity
            assert by_meter[trade.seller].side is Side.OFFER
            assert by_meter[trade.buyer].side is Side.BID
            assert by_meter[trade.seller].limit_price <= result.price
            assert by_meter[trade.buyer].limit_price >= result.price
        for meter, quantity in filled.items():
            assert quantity <= by_meter[meter].quantity_wh


@SETTINGS
@given(books(), st.randoms(use_true_random=False))
def test_deterministic_and_blind_to_irrelevant_orderings(
    book: tuple[MarketDay, list[Order]], rng: object
) -> None:
    day, orders = book
    clearing = clear(day, orders)
    assert clear(day, list(orders)) == clearing
    assert clear(day, tuple(orders)) == clearing
    assert clearing.orders_digest == orders_digest([o.order_hash() for o in orders])
    # Ledger order decides ties within a side only: any interleaving of the offers and the
    # bids that keeps each side's order clears the same intervals (its digest differs).
    offers = [o for o in orders if o.side is Side.OFFER]
    bids = [o for o in orders if o.side is Side.BID]
    merged: list[Order] = []
    i = j = 0
    while i < len(offers) or j < len(bids):
        if j == len(bids) or (i < len(offers) and rng.random() < 0.5):  # type: ignore[attr-defined]
            merged.append(offers[i])
            i += 1
        else:
            merged.append(bids[j])
            j += 1
    assert clear(day, merged).intervals == clearing.intervals
    # ... and orders that share no interval may trade places.
    if day.intervals > 1:
        early = [o for o in orders if o.last_interval == 0]
        late = [o for o in orders if o.first_interval > 0]
        across = [o for o in orders if o.first_interval == 0 < o.last_interval]
        assert (
            clear(day, across + late + early).intervals
            == clear(day, across + early + late).intervals
        )


@SETTINGS
@given(books())
def test_the_clearing_is_a_record(book: tuple[MarketDay, list[Order]]) -> None:
    day, orders = book
    clearing = clear(day, orders)
    assert Clearing.decode(clearing.encode()) == clearing
    assert clearing.period == day.period
