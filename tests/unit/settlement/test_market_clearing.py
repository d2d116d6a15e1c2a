"""settlement.market.clear, the clearing rule, on examples computed by hand
(docs/design/market-v1.md, "Clearing")."""

from __future__ import annotations

import pytest

from settlement.market import (
    Clearing,
    IntervalResult,
    MarketDay,
    Order,
    Side,
    Trade,
    clear,
    orders_digest,
)
from zkgrid.errors import InvalidArgumentError

PERIOD = "2025-06-10"
#: 360-minute intervals: a day of 4.
DAY = MarketDay.with_defaults(PERIOD, 360, 10)
#: clear() never reads signatures: a fixed DER placeholder keeps these tests fast.
SIGNATURE = b"\x30\x06\x02\x01\x01\x02\x01\x01"
NONE = IntervalResult(0, 0, ())

_nonces = iter(range(10**9))


def offer(meter: str, quantity: int, price: int, first: int = 0, last: int = 0) -> Order:
    return Order(meter, PERIOD, Side.OFFER, first, last, quantity, price, next(_nonces), SIGNATURE)


def bid(meter: str, quantity: int, price: int, first: int = 0, last: int = 0) -> Order:
    return Order(meter, PERIOD, Side.BID, first, last, quantity, price, next(_nonces), SIGNATURE)


def first_interval(orders: list[Order]) -> IntervalResult:
    return clear(DAY, orders).intervals[0]


def test_one_seller_several_buyers() -> None:
    # offers: s 1000 @ 100; bids: b1 300 @ 200, b2 500 @ 180, b3 400 @ 90 (below the offer)
    result = first_interval(
        [offer("s", 1_000, 100), bid("b1", 300, 200), bid("b2", 500, 180), bid("b3", 400, 90)]
    )
    # matched 300 + 500; a* = 100, b* = 180; p = 140
    assert result == IntervalResult(140, 800, (Trade("s", "b1", 300), Trade("s", "b2", 500)))


def test_one_buyer_several_sellers() -> None:
    # bids: b 1000 @ 200; offers: s1 300 @ 150, s2 500 @ 120, s3 800 @ 210 (above the bid)
    result = first_interval(
        [bid("b", 1_000, 200), offer("s1", 300, 150), offer("s2", 500, 120), offer("s3", 800, 210)]
    )
    # merit order s2, s1; a* = 150, b* = 200; p = 175
    assert result == IntervalResult(175, 800, (Trade("s2", "b", 500), Trade("s1", "b", 300)))


def test_pro_rata_at_the_margin_with_a_remainder() -> None:
    # three offers at the marginal price 100: 100, 200, 400 Wh (700 at the margin);
    # bids b2 101 @ 160 (better than the margin: filled in full) and b1 350 @ 140 (marginal)
    orders = [
        offer("s1", 100, 100),
        offer("s2", 200, 100),
        offer("s3", 400, 100),
        bid("b1", 350, 140),
        bid("b2", 101, 160),
    ]
    result = first_interval(orders)
    # Q = 451, a* = 100, b* = 140, p = 120.
    # offers: floor(451*100/700) = 64, floor(451*200/700) = 128, floor(451*400/700) = 257,
    # 449 in all; the 2 Wh left go to s1 and s2 (ledger order): 65, 129, 257.
    # bids: b2 101 in full, b1 takes the rest, 350.
    assert result == IntervalResult(
        120,
        451,
        (
            Trade("s1", "b2", 65),
            Trade("s2", "b2", 36),
            Trade("s2", "b1", 93),
            Trade("s3", "b1", 257),
        ),
    )


def test_pro_rata_on_the_bid_side() -> None:
    # one offer of 10 Wh; three bids at 150 of 10, 10 and 20 Wh: 10 is shared 2.5, 2.5, 5
    orders = [offer("s", 10, 100), bid("b1", 10, 150), bid("b2", 10, 150), bid("b3", 20, 150)]
    result = first_interval(orders)
    # floors 2, 2, 5 (9); the one Wh left goes to b1, the earliest
    assert result == IntervalResult(
        125, 10, (Trade("s", "b1", 3), Trade("s", "b2", 2), Trade("s", "b3", 5))
    )


def test_ties_by_ledger_index() -> None:
    # equal prices: merit order keeps ledger order, on both sides
    orders = [
        bid("b2", 50, 200),
        offer("s2", 50, 100),
        bid("b1", 50, 200),
        offer("s1", 50, 100),
    ]
    result = first_interval(orders)
    assert result == IntervalResult(150, 100, (Trade("s2", "b2", 50), Trade("s1", "b1", 50)))
    # the margin shares pro rata, not first come, first served: each gets half
    result = first_interval([offer("s2", 50, 100), offer("s1", 50, 100), bid("b", 50, 200)])
    assert result == IntervalResult(150, 50, (Trade("s2", "b", 25), Trade("s1", "b", 25)))
    # and an odd Wh goes to the earlier order
    result = first_interval([offer("s2", 50, 100), offer("s1", 50, 100), bid("b", 51, 200)])
    assert result == IntervalResult(150, 51, (Trade("s2", "b", 26), Trade("s1", "b", 25)))


def test_a_better_price_beats_an_earlier_order() -> None:
    result = first_interval([offer("s1", 100, 120), offer("s2", 100, 110), bid("b", 100, 200)])
    assert result == IntervalResult(155, 100, (Trade("s2", "b", 100),))


def test_no_crossing() -> None:
    assert first_interval([offer("s", 100, 201), bid("b", 100, 200)]) == NONE
    assert first_interval([offer("s", 100, 100)]) == NONE
    assert first_interval([bid("b", 100, 100)]) == NONE
    assert first_interval([]) == NONE


def test_equal_prices_clear_at_that_price() -> None:
    assert first_interval([offer("s", 70, 150), bid("b", 100, 150)]) == IntervalResult(
        150, 70, (Trade("s", "b", 70),)
    )


def test_price_zero_with_trades() -> None:
    assert first_interval([offer("s", 5, 0), bid("b", 5, 1)]) == IntervalResult(
        0, 5, (Trade("s", "b", 5),)
    )


def test_a_single_order() -> None:
    clearing = clear(DAY, [offer("s", 100, 100, 0, 3)])
    assert clearing.intervals == (NONE,) * 4
    assert clearing.period == PERIOD


def test_the_price_rounds_down() -> None:
    result = first_interval([offer("s", 1, 100), bid("b", 1, 101)])
    assert result.price == 100  # floor(201 / 2)


def test_the_marginal_prices_are_the_last_matched() -> None:
    # offers 100 @ 50, 100 @ 90; bids 150 @ 300, 100 @ 95, 100 @ 60.
    # greedy: (50, 300) 100, (90, 300) 50, (90, 95) 50; next offer none. a* = 90, b* = 95.
    orders = [
        offer("s1", 100, 50),
        offer("s2", 100, 90),
        bid("b1", 150, 300),
        bid("b2", 100, 95),
        bid("b3", 100, 60),
    ]
    result = first_interval(orders)
    assert result == IntervalResult(
        92,
        200,
        (Trade("s1", "b1", 100), Trade("s2", "b1", 50), Trade("s2", "b2", 50)),
    )


def test_intervals_are_cleared_separately() -> None:
    orders = [
        offer("s", 100, 100, 0, 3),
        bid("b1", 60, 200, 1, 2),
        bid("b2", 80, 150, 2, 3),
    ]
    clearing = clear(DAY, orders)
    assert clearing.intervals == (
        NONE,
        IntervalResult(150, 60, (Trade("s", "b1", 60),)),
        IntervalResult(125, 100, (Trade("s", "b1", 60), Trade("s", "b2", 40))),
        IntervalResult(125, 80, (Trade("s", "b2", 80),)),
    )


def test_the_clearing_names_its_orders() -> None:
    orders = [offer("s", 100, 100), bid("b", 100, 200)]
    clearing = clear(DAY, orders)
    assert clearing.orders_digest == orders_digest([o.order_hash() for o in orders])
    assert clear(DAY, orders[::-1]).orders_digest != clearing.orders_digest
    assert isinstance(clearing, Clearing)
    assert Clearing.decode(clearing.encode()) == clearing


def test_a_meter_may_trade_with_another_meter_twice() -> None:
    orders = [offer("s", 50, 100), offer("s", 50, 110), bid("b", 100, 200)]
    assert first_interval(orders) == IntervalResult(
        155, 100, (Trade("s", "b", 50), Trade("s", "b", 50))
    )


def test_preconditions() -> None:
    with pytest.raises(InvalidArgumentError, match="self-trade"):
        clear(DAY, [offer("m", 10, 100, 0, 1), bid("m", 10, 200, 1, 2)])
    clear(DAY, [offer("m", 10, 100, 0, 1), bid("m", 10, 200, 2, 3)])  # no common interval
    other_day = Order("m", "2025-06-11", Side.OFFER, 0, 0, 10, 100, 1, SIGNATURE)
    with pytest.raises(InvalidArgumentError, match="2025-06-11"):
        clear(DAY, [other_day])
    with pytest.raises(InvalidArgumentError, match="interval 4"):
        clear(DAY, [offer("m", 10, 100, 0, 4)])
    with pytest.raises(InvalidArgumentError):
        clear(DAY, ["not an order"])  # type: ignore[list-item]
    with pytest.raises(InvalidArgumentError):
        clear("not a day", [])  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        clear(DAY, b"bytes")  # type: ignore[arg-type]


def test_a_day_of_96_intervals_and_1000_orders_clears_quickly() -> None:
    """The benchmark's target is 2 s for 1,000 prosumers over 96 intervals; a smoke test."""
    import random
    import time

    rng = random.Random(13)
    day = MarketDay.with_defaults(PERIOD, 15, 10)
    orders = []
    for i in range(1_000):
        side = Side.OFFER if i < 300 else Side.BID
        first = rng.randrange(96)
        last = min(95, first + rng.randrange(48))
        orders.append(
            Order(
                f"m-{i}",
                PERIOD,
                side,
                first,
                last,
                rng.randrange(1, 3_000),
                rng.randrange(50, 300),
                i,
                SIGNATURE,
            )
        )
    start = time.perf_counter()
    clearing = clear(day, orders)
    elapsed = time.perf_counter() - start
    assert sum(r.volume for r in clearing.intervals) > 0
    assert elapsed < 10  # generous: the machine is shared
