"""The meter's market client offline: its encryption key kept in the home (0600, distinct
from the signing key), the enrolment stored once and sent again byte for byte, orders and
cancellations signed with the meter's key, and the checks every answer of the service
passes (another meter's order, a hash that is not its record's, a trade of other meters, a
result of another day or with prices that are not its clearing's are refused)."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from meter.client import MeterClient
from meter.errors import ReceiptError
from meter.home import MeterHome, MeterHomeError
from meter.market import (
    ENROLMENT_FILE,
    MARKET_KEY_FILE,
    MarketClient,
    _checked_orders,
    _checked_result,
    _checked_trades,
    encryption_key,
    parse_order_hash,
)
from settlement.market import MarketDay, MarketEnrolment, Order, Side, clear
from settlement.records import MeterKey
from zkgrid.errors import InvalidArgumentError
from zkgrid.settlement.v1 import market_pb2

PERIOD = "2026-12-02"
DAY = MarketDay.with_defaults(PERIOD, 60, 10)


@pytest.fixture
def client(tmp_path: Path) -> MarketClient:
    return MarketClient(MeterClient(MeterHome.create(tmp_path / "m1", "m1", 60)))


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_encryption_key_is_kept_private_beside_the_signing_key(client: MarketClient) -> None:
    home = client.home
    with pytest.raises(MeterHomeError, match="market enrol"):
        encryption_key(home)
    key = encryption_key(home, create=True)
    assert _mode(home.path / MARKET_KEY_FILE) == 0o600
    assert encryption_key(home).public_key == key.public_key  # read back, not made again
    assert key.public_key != home.public_key
    os.chmod(home.path / MARKET_KEY_FILE, 0o644)
    with pytest.raises(InvalidArgumentError):  # group/others may read it: refused
        encryption_key(home)


def test_the_enrolment_is_made_once_and_sent_again_as_it_is(client: MarketClient) -> None:
    enrolment = client.enrolment()
    assert _mode(client.home.path / ENROLMENT_FILE) == 0o600
    enrolment.verify_signature(client.home.public_key)  # signed by the meter's key
    assert enrolment.encryption_key == encryption_key(client.home).public_key
    assert client.enrolment().encode() == enrolment.encode()  # the same bytes, not re-signed
    # a stored enrolment of another key or meter is refused, never sent
    other = MarketEnrolment.create(
        client.home.key(), "m1", MeterKey.generate().public_key
    )  # an encryption key that is not the home's
    (client.home.path / ENROLMENT_FILE).write_bytes(other.encode())
    with pytest.raises(MeterHomeError, match="does not enrol the key"):
        client.enrolment()


def test_orders_and_cancellations_are_signed_by_the_meter(client: MarketClient) -> None:
    order = client.order(Side.BID, PERIOD, 3, 5, 1_200, 180)
    order.verify_signature(client.home.public_key)
    assert (order.meter_id, order.first_interval, order.last_interval) == ("m1", 3, 5)
    assert client.order(Side.BID, PERIOD, 3, 5, 1_200, 180).nonce != order.nonce  # random
    assert client.order(Side.OFFER, PERIOD, 0, 0, 1, 0, nonce=9).nonce == 9
    with pytest.raises(InvalidArgumentError):
        client.order(2, PERIOD, 0, 0, 1, 0)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="32 bytes"):
        client.cancel(b"\1" * 31)
    assert parse_order_hash("ab" * 32) == b"\xab" * 32
    for bad in ("ab" * 31, "zz" * 32, ""):
        with pytest.raises(InvalidArgumentError):
            parse_order_hash(bad)


def _listed(
    order: Order, *, status: market_pb2.OrderStatus = market_pb2.ORDER_STATUS_LIVE
) -> market_pb2.MarketOrder:
    return market_pb2.MarketOrder(
        order=order.encode(), order_hash=order.order_hash(), ledger_index=4, status=status
    )


def test_listed_orders_are_checked(client: MarketClient) -> None:
    mine = client.order(Side.OFFER, PERIOD, 0, 1, 100, 100)
    [placed] = _checked_orders(market_pb2.ListOrdersResponse(orders=[_listed(mine)]), PERIOD, "m1")
    assert (placed.order, placed.status, placed.ledger_index) == (mine, "live", 4)
    theirs = Order.create(
        MeterKey.generate(), meter_id="m2", period=PERIOD, side=Side.BID, first_interval=0,
        last_interval=0, quantity_wh=1, limit_price=1, nonce=1,
    )  # fmt: skip
    bad = [
        (market_pb2.ListOrdersResponse(orders=[_listed(theirs)]), "another meter"),
        (market_pb2.ListOrdersResponse(orders=[_listed(mine)]), "2026-12-03"),
        (
            market_pb2.ListOrdersResponse(
                orders=[_listed(mine, status=market_pb2.ORDER_STATUS_UNSPECIFIED)]
            ),
            "status",
        ),
    ]
    forged = _listed(mine)
    forged.order_hash = hashlib.sha256(b"x").digest()
    bad.append((market_pb2.ListOrdersResponse(orders=[forged]), "hash"))
    for response, what in bad:
        period = "2026-12-03" if what == "2026-12-03" else PERIOD
        with pytest.raises(ReceiptError):
            _checked_orders(response, period, "m1")


def _trade(
    seller: str, buyer: str, side: market_pb2.Side, counterparty: str
) -> market_pb2.MarketTrade:
    return market_pb2.MarketTrade(
        interval=2, index=0, side=side, counterparty=counterparty, seller=seller, buyer=buyer,
        quantity_wh=100, price=150,
    )  # fmt: skip


def test_listed_trades_name_the_meter(client: MarketClient) -> None:
    digest = b"\5" * 32
    good = market_pb2.ListTradesResponse(
        cleared=True, clearing_hash=digest,
        trades=[_trade("m1", "m2", market_pb2.SIDE_OFFER, "m2")],
    )  # fmt: skip
    [trade] = _checked_trades(good, "m1").trades
    assert (trade.side, trade.counterparty, trade.quantity_wh) == (Side.OFFER, "m2", 100)
    for wrong in (
        _trade("m3", "m2", market_pb2.SIDE_OFFER, "m2"),  # not the meter's
        _trade("m1", "m2", market_pb2.SIDE_BID, "m2"),  # the wrong side
        _trade("m1", "m2", market_pb2.SIDE_OFFER, "m3"),  # the wrong counterparty
    ):
        response = market_pb2.ListTradesResponse(cleared=True, clearing_hash=digest, trades=[wrong])
        with pytest.raises(ReceiptError):
            _checked_trades(response, "m1")
    with pytest.raises(ReceiptError):  # trades of an uncleared market
        _checked_trades(market_pb2.ListTradesResponse(trades=good.trades), "m1")
    with pytest.raises(ReceiptError):  # cleared without naming its clearing
        _checked_trades(market_pb2.ListTradesResponse(cleared=True), "m1")


def test_a_result_is_its_days_and_its_clearings(client: MarketClient) -> None:
    seller = client.order(Side.OFFER, PERIOD, 4, 4, 500, 100)
    buyer = Order.create(
        MeterKey.generate(), meter_id="m2", period=PERIOD, side=Side.BID, first_interval=4,
        last_interval=4, quantity_wh=300, limit_price=200, nonce=1,
    )  # fmt: skip
    clearing = clear(DAY, [seller, buyer])
    rows = [
        market_pb2.IntervalResult(interval=t, price=r.price, volume=r.volume)
        for t, r in enumerate(clearing.intervals)
    ]
    response = market_pb2.GetMarketResultResponse(
        market_day=DAY.encode(), cleared=True, intervals=rows
    )
    result = _checked_result(response, PERIOD, None)
    assert result.intervals is not None
    assert result.intervals[4] == (150, 300)
    assert (
        _checked_result(
            market_pb2.GetMarketResultResponse(market_day=DAY.encode()), PERIOD, None
        ).intervals
        is None
    )
    wrong_day = MarketDay.with_defaults("2026-12-03", 60, 10).encode()
    with pytest.raises(ReceiptError):
        _checked_result(market_pb2.GetMarketResultResponse(market_day=wrong_day), PERIOD, None)
    with pytest.raises(ReceiptError):  # an interval missing
        _checked_result(
            market_pb2.GetMarketResultResponse(
                market_day=DAY.encode(), cleared=True, intervals=rows[:-1]
            ),
            PERIOD,
            None,
        )
    tampered = list(rows)
    tampered[4] = market_pb2.IntervalResult(interval=4, price=151, volume=300)
    with pytest.raises(ReceiptError):  # prices that are not the clearing's
        _checked_result(
            market_pb2.GetMarketResultResponse(
                market_day=DAY.encode(), cleared=True, intervals=tampered,
                clearing=clearing.encode(),
            ),
            PERIOD,
            None,
        )  # fmt: skip
