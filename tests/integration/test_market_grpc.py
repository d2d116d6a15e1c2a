"""The neighbourhood market through a real gRPC server on 127.0.0.1:0 over a real channel, on
SQLite and PostgreSQL, with the service's clock injected: four meters registered and
enrolled, a tariff and a market day published with gate closure in the service's future,
two sellers offer and two buyers bid over a few hourly intervals, a cancellation; an order
after gate closure (GATE_CLOSED), a self-trade (SELF_TRADE), a price outside the tariff's
bounds (PRICE_OUT_OF_BOUNDS), a forged order (SIGNATURE_INVALID) and another meter's order
(PERMISSION_DENIED) refused with nothing appended, a replayed order idempotent; then the
clearing after gate closure, whose results and each meter's trades are checked against
``settlement.market.clear`` computed here from the orders the test placed; a meter cannot
list another meter's orders or trades."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from functools import partial
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ledger.checkpoint import CheckpointSigner
from service.config import ServiceConfig
from service.export import export_ledger
from service.server import build_server, server_info
from service.settlement import Receipt, Settlement
from service.storage import open_store
from settlement import convert
from settlement.market import Clearing, MarketDay, Order, clear
from settlement.records import MeterKey
from tests.integration.test_grpc_server import Running, refused
from tests.unit.service.market_support import DAY, GATE, HOURLY, PERIOD, TARIFF, Clock, Trader
from tests.unit.service.settlement_support import SimMeter
from tests.unit.verifier.audit_support import set_payload
from verifier.cli import main as audit_main
from zkgrid.settlement.v1 import (
    common_pb2,
    market_pb2,
    market_pb2_grpc,
    meters_pb2,
    tariffs_pb2,
)

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
CODE = grpc.StatusCode
DENIED = CODE.PERMISSION_DENIED


class Market(Running):
    clock: Clock
    url: str

    @property
    def market(self) -> market_pb2_grpc.MarketServiceStub:
        return market_pb2_grpc.MarketServiceStub(self.channel)


@pytest.fixture(params=BACKENDS)
def served(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    ledger_signer: CheckpointSigner,
    ledger_origin: str,
) -> Iterator[Market]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
    else:  # a fresh schema of the session's own database (dropped after the session)
        url = str(request.getfixturevalue("pg_schema_url"))
    clock = Clock()
    store = open_store(url, ledger_signer, ledger_origin)
    settlement = Settlement(store, clock=clock)
    config = ServiceConfig(listen="127.0.0.1:0", insecure=True, failure_burst=0)
    server = build_server(settlement, config)
    server.start()
    target = f"127.0.0.1:{server_info(server).port}"
    channel = grpc.insecure_channel(target)
    run = Market(channel, store, settlement, ledger_signer, target)
    run.clock = clock
    run.url = url
    try:
        yield run
    finally:
        channel.close()
        server.stop(None).wait()
        settlement.close()
        store.close()


def _receipt(msg: common_pb2.Receipt) -> Receipt:
    return Receipt(
        msg.ledger_index, msg.leaf_hash, msg.checkpoint, msg.tree_size, tuple(msg.inclusion_proof)
    )


def submit(run: Market, order: Order, caller: str | None = None) -> market_pb2.SubmitOrderResponse:
    return run.market.SubmitOrder(
        market_pb2.SubmitOrderRequest(order=order.encode()),
        metadata=run.md("meter", caller or order.meter_id),
        timeout=30,
    )


def orders_of(run: Market, meter_id: str, caller: str) -> market_pb2.ListOrdersResponse:
    return run.market.ListOrders(
        market_pb2.ListOrdersRequest(meter_id=meter_id, period=PERIOD),
        metadata=run.md("meter", caller),
        timeout=30,
    )


def trades_of(run: Market, meter_id: str, caller: str) -> market_pb2.ListTradesResponse:
    return run.market.ListTrades(
        market_pb2.ListTradesRequest(meter_id=meter_id, period=PERIOD),
        metadata=run.md("meter", caller),
        timeout=30,
    )


def open_market(run: Market, people: list[Trader]) -> None:
    utility = run.md("utility", "grid-co")
    for trader in people:
        reg = convert.registration_to_proto(trader.meter.registration())
        run.meters.RegisterMeter(
            meters_pb2.RegisterMeterRequest(registration=reg), metadata=utility, timeout=30
        )
    for trader in people:
        enrolment = trader.enrolment()
        reply = run.market.Enrol(
            market_pb2.EnrolRequest(enrolment=enrolment.encode()),
            metadata=run.md("meter", trader.meter_id),
            timeout=30,
        )
        _receipt(reply.receipt).verify(run.signer.verifier(), enrolment.to_entry())
    run.tariffs.PublishTariff(
        tariffs_pb2.PublishTariffRequest(tariff=convert.tariff_to_proto(TARIFF)),
        metadata=utility,
        timeout=30,
    )
    published = run.market.PublishMarketDay(
        market_pb2.PublishMarketDayRequest(market_day=DAY.encode()), metadata=utility, timeout=30
    )
    _receipt(published.receipt).verify(run.signer.verifier(), DAY.to_entry())


def expected_trades(expected: Clearing, meter_id: str) -> list[tuple[object, ...]]:
    """The meter's trades as the API lists them, derived from a clearing computed here."""
    out: list[tuple[object, ...]] = []
    for t, result in enumerate(expected.intervals):
        for k, trade in enumerate(result.trades):
            if meter_id == trade.seller:
                out.append((t, k, market_pb2.SIDE_OFFER, trade.buyer, trade.quantity, result.price))
            elif meter_id == trade.buyer:
                out.append((t, k, market_pb2.SIDE_BID, trade.seller, trade.quantity, result.price))
    return out


def test_a_market_day_through_the_service(served: Market) -> None:
    run = served
    health = health_pb2_grpc.HealthStub(run.channel).Check(
        health_pb2.HealthCheckRequest(service="zkgrid.settlement.v1.MarketService"), timeout=5
    )
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    s1, s2, b1, b2 = people = [Trader(SimMeter(n, HOURLY)) for n in ("s1", "s2", "b1", "b2")]
    open_market(run, people)
    # --- orders before gate closure (the service's clock: four hours before it)
    placed = [
        s1.offer(8, 11, 1_500, 90),
        s2.offer(9, 12, 2_000, 120),
        b1.bid(8, 10, 1_000, 250),
        b2.bid(9, 12, 2_500, 150),
        b1.bid(11, 12, 800, 110),
        s1.offer(12, 12, 600, 95),
    ]
    replies = {}
    for order in placed:
        size = run.store.size()
        reply = submit(run, order)
        assert reply.receipt.ledger_index == size
        assert reply.order_hash == order.order_hash()
        _receipt(reply.receipt).verify(run.signer.verifier(), order.to_entry())
        replies[order.order_hash()] = reply
    # a cancellation of s2's second order
    withdrawn = s2.offer(10, 10, 700, 85)
    submit(run, withdrawn)
    cancellation = s2.cancel(withdrawn)
    cancel = run.market.CancelOrder(
        market_pb2.CancelOrderRequest(cancellation=cancellation.encode()),
        metadata=run.md("meter", "s2"),
        timeout=30,
    )
    _receipt(cancel.receipt).verify(run.signer.verifier(), cancellation.to_entry())
    # --- refusals, nothing appended
    refused(
        run, CODE.FAILED_PRECONDITION, "SELF_TRADE", lambda: submit(run, s1.bid(11, 11, 100, 200))
    )
    refused(
        run, CODE.INVALID_ARGUMENT, "PRICE_OUT_OF_BOUNDS",
        lambda: submit(run, b2.bid(18, 18, 100, 401)),
    )  # fmt: skip
    forged = Trader(SimMeter("b1", HOURLY, key=MeterKey.generate())).bid(13, 13, 500, 200)
    refused(run, CODE.INVALID_ARGUMENT, "SIGNATURE_INVALID", lambda: submit(run, forged))
    refused(
        run,
        CODE.PERMISSION_DENIED,
        "PERMISSION_DENIED",
        lambda: submit(run, b1.bid(13, 13, 1, 100), "b2"),
    )
    refused(run, CODE.INVALID_ARGUMENT, "RECORD_MALFORMED", lambda: run.market.SubmitOrder(
        market_pb2.SubmitOrderRequest(order=placed[0].encode()[:-3]),
        metadata=run.md("meter", "s1"), timeout=30,
    ))  # fmt: skip
    refused(
        run, CODE.FAILED_PRECONDITION, "GATE_NOT_CLOSED",
        lambda: run.market.Clear(
            market_pb2.ClearRequest(period=PERIOD), metadata=run.md("utility"), timeout=30
        ),
    )  # fmt: skip
    # a replayed order: the original receipt, nothing appended
    size = run.store.size()
    assert submit(run, placed[2]).receipt == replies[placed[2].order_hash()].receipt
    assert run.store.size() == size
    # a meter reads its own orders only
    mine = run.market.ListOrders(
        market_pb2.ListOrdersRequest(meter_id="s2", period=PERIOD),
        metadata=run.md("meter", "s2"),
        timeout=30,
    )
    assert [(o.order, o.status) for o in mine.orders] == [
        (placed[1].encode(), market_pb2.ORDER_STATUS_LIVE),
        (withdrawn.encode(), market_pb2.ORDER_STATUS_CANCELLED),
    ]
    assert mine.orders[1].cancellation_index == cancel.receipt.ledger_index
    for meter_id in ("s1", ""):  # another meter's, or every meter's
        refused(run, DENIED, "PERMISSION_DENIED", partial(orders_of, run, meter_id, "s2"))
    everyone = run.market.ListOrders(
        market_pb2.ListOrdersRequest(period=PERIOD), metadata=run.md("auditor", "aud"), timeout=30
    )
    assert len(everyone.orders) == len(placed) + 1
    # --- the gate closes (the service's clock moves on)
    run.clock.at(GATE + timedelta(minutes=1))
    refused(
        run,
        CODE.FAILED_PRECONDITION,
        "GATE_CLOSED",
        lambda: submit(run, s2.offer(13, 13, 100, 100)),
    )
    refused(run, CODE.FAILED_PRECONDITION, "GATE_CLOSED", lambda: run.market.CancelOrder(
        market_pb2.CancelOrderRequest(cancellation=s1.cancel(placed[0]).encode()),
        metadata=run.md("meter", "s1"), timeout=30,
    ))  # fmt: skip
    refused(run, CODE.PERMISSION_DENIED, "PERMISSION_DENIED", lambda: run.market.Clear(
        market_pb2.ClearRequest(period=PERIOD), metadata=run.md("meter", "s1"), timeout=30
    ))  # fmt: skip
    size = run.store.size()
    cleared = run.market.Clear(
        market_pb2.ClearRequest(period=PERIOD), metadata=run.md("utility"), timeout=60
    )
    assert cleared.appended
    assert cleared.receipt.ledger_index == size
    # the clearing is clear() of the live orders in ledger order, computed here
    expected = clear(DAY, placed)
    assert convert.clearing_from_bytes(cleared.clearing) == expected
    _receipt(cleared.receipt).verify(run.signer.verifier(), expected.to_entry())
    traded = [t for t, r in enumerate(expected.intervals) if r.volume]
    assert traded == [8, 9, 10, 11, 12]
    # a seller with several buyers and a buyer with several sellers in one interval
    pairs = [(x.seller, x.buyer) for x in expected.intervals[9].trades]
    assert pairs == [("s1", "b1"), ("s1", "b2"), ("s2", "b2")]
    again = run.market.Clear(
        market_pb2.ClearRequest(period=PERIOD), metadata=run.md("utility"), timeout=60
    )
    assert not again.appended
    assert again.receipt == cleared.receipt
    assert run.store.size() == size + 1
    # --- results: public prices and volumes; the record for the utility and auditors
    for role, identity in (("meter", "b2"), ("auditor", "aud"), ("utility", "grid-co")):
        result = run.market.GetMarketResult(
            market_pb2.GetMarketResultRequest(period=PERIOD), metadata=run.md(role, identity),
            timeout=30,
        )  # fmt: skip
        assert result.cleared
        assert MarketDay.decode(result.market_day) == DAY
        assert [(r.interval, r.price, r.volume) for r in result.intervals] == [
            (t, r.price, r.volume) for t, r in enumerate(expected.intervals)
        ]
        if role == "meter":
            assert not result.clearing
            assert not result.HasField("receipt")
        else:
            assert result.clearing == expected.encode()
            assert result.receipt == cleared.receipt
    # --- each meter's trades, against the clearing computed here
    for trader in people:
        trades = run.market.ListTrades(
            market_pb2.ListTradesRequest(meter_id=trader.meter_id, period=PERIOD),
            metadata=run.md("meter", trader.meter_id),
            timeout=30,
        )
        assert trades.cleared
        assert trades.clearing_hash == expected.clearing_hash()
        got = [
            (x.interval, x.index, x.side, x.counterparty, x.quantity_wh, x.price)
            for x in trades.trades
        ]
        assert got == expected_trades(expected, trader.meter_id)
        assert got  # every meter traded
        sold = sum(x.quantity_wh for x in trades.trades if x.side == market_pb2.SIDE_OFFER)
        bought = sum(x.quantity_wh for x in trades.trades if x.side == market_pb2.SIDE_BID)
        assert (sold == 0) != (bought == 0)  # a seller or a buyer, never both
    assert sum(
        x.quantity_wh
        for x in run.market.ListTrades(
            market_pb2.ListTradesRequest(period=PERIOD), metadata=run.md("utility"), timeout=30
        ).trades
    ) == sum(r.volume for r in expected.intervals)
    for meter_id in ("s1", ""):
        refused(run, DENIED, "PERMISSION_DENIED", partial(trades_of, run, meter_id, "b1"))
    # after the clearing no order is taken, whatever the clock
    refused(run, CODE.FAILED_PRECONDITION, "GATE_CLOSED", lambda: submit(run, b1.bid(0, 0, 1, 100)))
    assert run.settlement.anomalies == []


def test_market_refusals_before_the_market_opens(served: Market) -> None:
    """Without an enrolment, a market day or a tariff the rules name what is missing; a
    market day exists once per period and a meter enrols once."""
    run = served
    alice = Trader(SimMeter("alice", HOURLY))
    utility = run.md("utility", "grid-co")
    run.meters.RegisterMeter(
        meters_pb2.RegisterMeterRequest(
            registration=convert.registration_to_proto(alice.meter.registration())
        ),
        metadata=utility,
        timeout=30,
    )
    order = alice.offer(0, 0, 100, 100)
    refused(run, CODE.FAILED_PRECONDITION, "NOT_ENROLLED", lambda: submit(run, order))
    enrol = market_pb2.EnrolRequest(enrolment=alice.enrolment().encode())
    run.market.Enrol(enrol, metadata=run.md("meter", "alice"), timeout=30)
    refused(run, CODE.ALREADY_EXISTS, "ENROLMENT_EXISTS", lambda: run.market.Enrol(
        market_pb2.EnrolRequest(enrolment=alice.enrolment().encode()),
        metadata=run.md("meter", "alice"), timeout=30,
    ))  # fmt: skip
    refused(run, CODE.NOT_FOUND, "UNKNOWN_MARKET_DAY", lambda: submit(run, order))
    refused(run, CODE.NOT_FOUND, "UNKNOWN_MARKET_DAY", lambda: run.market.GetMarketResult(
        market_pb2.GetMarketResultRequest(period=PERIOD), metadata=utility, timeout=30
    ))  # fmt: skip
    refused(run, CODE.PERMISSION_DENIED, "PERMISSION_DENIED", lambda: run.market.PublishMarketDay(
        market_pb2.PublishMarketDayRequest(market_day=DAY.encode()),
        metadata=run.md("meter", "alice"), timeout=30,
    ))  # fmt: skip
    run.market.PublishMarketDay(
        market_pb2.PublishMarketDayRequest(market_day=DAY.encode()), metadata=utility, timeout=30
    )
    other = MarketDay.with_defaults(PERIOD, HOURLY, 0)
    refused(run, CODE.ALREADY_EXISTS, "MARKET_DAY_EXISTS", lambda: run.market.PublishMarketDay(
        market_pb2.PublishMarketDayRequest(market_day=other.encode()), metadata=utility, timeout=30
    ))  # fmt: skip
    refused(run, CODE.NOT_FOUND, "UNKNOWN_TARIFF", lambda: submit(run, order))
    result = run.market.GetMarketResult(
        market_pb2.GetMarketResultRequest(period=PERIOD), metadata=run.md("meter", "alice"),
        timeout=30,
    )  # fmt: skip
    assert not result.cleared
    assert not result.intervals
    trades = run.market.ListTrades(
        market_pb2.ListTradesRequest(meter_id="alice", period=PERIOD),
        metadata=run.md("meter", "alice"),
        timeout=30,
    )
    assert not trades.cleared
    assert not trades.trades


def test_the_auditor_judges_the_market_as_the_service_does(
    served: Market, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """After enrolments, a market day, orders, a cancellation and a clearing, the standalone
    auditor finds nothing (the order book judged by ledger order, C7 verified); its saved
    state resumes with the market's state, so a later market entry is judged too."""
    run = served
    s1, b1 = people = [Trader(SimMeter(n, HOURLY)) for n in ("s1", "b1")]
    open_market(run, people)
    submit(run, s1.offer(9, 10, 2_000, 120))
    withdrawn = s1.offer(11, 11, 500, 100)
    submit(run, withdrawn)
    run.market.CancelOrder(
        market_pb2.CancelOrderRequest(cancellation=s1.cancel(withdrawn).encode()),
        metadata=run.md("meter", "s1"),
        timeout=30,
    )
    submit(run, b1.bid(9, 10, 1_500, 250))
    run.clock.at(GATE + timedelta(minutes=1))
    assert run.market.Clear(
        market_pb2.ClearRequest(period=PERIOD), metadata=run.md("utility"), timeout=60
    ).appended
    log_key = run.signer.verifier().to_text()
    state = tmp_path / "auditor.json"

    def audit(archive: Path, *more: str) -> dict[str, object]:
        capsys.readouterr()
        code = audit_main(
            ["--archive", str(archive), "--log-key", log_key, "--workers", "1", "--json",
             "--state", str(state), *more]
        )  # fmt: skip
        report: dict[str, object] = json.loads(capsys.readouterr().out)
        assert code == 0, report["violations"]
        return report

    first = tmp_path / "first.zkla"
    export_ledger(run.url, first)
    audit(first)
    # a later market entry, judged from the saved state: the next day's market day
    nxt = MarketDay.with_defaults("2024-06-03", HOURLY, 25)
    run.market.PublishMarketDay(
        market_pb2.PublishMarketDayRequest(market_day=nxt.encode()),
        metadata=run.md("utility", "grid-co"),
        timeout=30,
    )
    second = tmp_path / "second.zkla"
    export_ledger(run.url, second)
    report = audit(second, "--since-last")
    assert report["violations"] == []


def test_the_auditor_names_an_order_signed_by_another_key(
    tmp_path: Path, ledger_signer: CheckpointSigner, ledger_origin: str,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """An operator who rewrites an order in its database, signed by a key that is not the
    meter's, is named by the auditor: C7 at that entry (and the tree no longer matches)."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    clock = Clock()
    store = open_store(url, ledger_signer, ledger_origin)
    settlement = Settlement(store, clock=clock)
    server = build_server(settlement, ServiceConfig(listen="127.0.0.1:0", insecure=True))
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{server_info(server).port}")
    run = Market(channel, store, settlement, ledger_signer, "")
    try:
        b1 = Trader(SimMeter("b1", HOURLY))
        open_market(run, [b1])
        placed = b1.bid(9, 9, 700, 200)
        index = submit(run, placed).receipt.ledger_index
        forged = Order.create(
            MeterKey.generate(), meter_id="b1", period=placed.period, side=placed.side,
            first_interval=9, last_interval=9, quantity_wh=700, limit_price=200,
            nonce=placed.nonce,
        )  # fmt: skip
        set_payload(url, index, forged.encode())
        archive = tmp_path / "ledger.zkla"
        export_ledger(url, archive)
        capsys.readouterr()
        code = audit_main(
            ["--archive", str(archive), "--log-key", ledger_signer.verifier().to_text(),
             "--workers", "1", "--json", "--no-state"]
        )  # fmt: skip
        report = json.loads(capsys.readouterr().out)
        assert code == 1
        at = {v["reason"] for v in report["violations"] if v["index"] == index}
        assert "SIGNATURE_INVALID" in at
    finally:
        channel.close()
        server.stop(None).wait()
        settlement.close()
        store.close()
