"""The meter's delivery steps end to end: real meter homes, their market clients and a real
gRPC server (SQLite and PostgreSQL, the service's clock injected). Two sellers and two
buyers trade, submit their batches and run ``deliver`` until nothing is left: each store
then holds, for each trade, the delivered quantity of the plain rule
``d_k = min(q_k, E - Σ, I - Σ)`` in trade order (docs/design/market-v1.md)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest

from cli.market import main as market_main
from ledger.checkpoint import CheckpointSigner
from meter.client import MeterClient
from meter.home import MeterHome
from meter.market import MarketClient, clear_market, peer_enrolment, publish_market_day
from meter.readings import DayReadings
from service.config import ServiceConfig
from service.server import build_server, server_info
from service.settlement import Settlement
from service.storage import open_store
from settlement import convert
from settlement.market import Side
from settlement.records import MeterRegistration
from tests.unit.service.market_support import DAY, GATE, HOURLY, PERIOD, TARIFF, Clock
from zkgrid.settlement.v1 import meters_pb2, meters_pb2_grpc, tariffs_pb2, tariffs_pb2_grpc

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
UTILITY = (("x-zkgrid-role", "utility"), ("x-zkgrid-identity", "grid-co"))
AFTER_DAY = datetime(2024, 6, 3, 1, tzinfo=UTC)  # the period is over, the deadlines are not
T = 10  # the traded interval
# (side, Wh, price): offers cheaper than bids, all within the tariff's bounds at t = 10
ORDERS = {
    "s1": (Side.OFFER, 300, 100),
    "s2": (Side.OFFER, 200, 110),
    "b1": (Side.BID, 250, 250),
    "b2": (Side.BID, 300, 240),
}
# What each meter metered in interval T: the sellers' export, the buyers' import
METERED = {"s1": 180, "s2": 200, "b1": 240, "b2": 90}


def _readings(name: str) -> DayReadings:
    imports = [0] * 24
    exports = [0] * 24
    if ORDERS[name][0] is Side.OFFER:
        exports[T] = METERED[name]
    else:
        imports[T] = METERED[name]
    return DayReadings(PERIOD, HOURLY, tuple(imports), tuple(exports))


@pytest.fixture(params=BACKENDS)
def market(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    ledger_signer: CheckpointSigner,
    ledger_origin: str,
) -> Iterator[tuple[dict[str, MarketClient], Clock, grpc.Channel, list[str]]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
    else:
        url = str(request.getfixturevalue("pg_schema_url"))
    clock = Clock()
    store = open_store(url, ledger_signer, ledger_origin)
    settlement = Settlement(store, clock=clock)
    server = build_server(
        settlement, ServiceConfig(listen="127.0.0.1:0", insecure=True, failure_burst=0)
    )
    server.start()
    target = f"127.0.0.1:{server_info(server).port}"
    channel = grpc.insecure_channel(target)
    clients: dict[str, MarketClient] = {}
    try:
        for name in ORDERS:
            home = MeterHome.create(tmp_path / name, name, HOURLY)
            meters_pb2_grpc.MeterServiceStub(channel).RegisterMeter(
                meters_pb2.RegisterMeterRequest(
                    registration=convert.registration_to_proto(
                        MeterRegistration.create(home.key(), name, HOURLY)
                    )
                ),
                metadata=UTILITY,
                timeout=30,
            )
            meter = MeterClient(
                home, target=target, insecure=True, log_key=ledger_signer.verifier_key(),
                clock=lambda: AFTER_DAY,
            )  # fmt: skip
            clients[name] = MarketClient(meter)
        tariffs_pb2_grpc.TariffServiceStub(channel).PublishTariff(
            tariffs_pb2.PublishTariffRequest(tariff=convert.tariff_to_proto(TARIFF)),
            metadata=UTILITY,
            timeout=30,
        )
        publish_market_day(channel, DAY, metadata=UTILITY)
        log_key = tmp_path / "log.pub"
        log_key.write_text(ledger_signer.verifier_key() + "\n")
        cli_flags = ["--target", target, "--insecure", "--log-key-file", str(log_key)]
        yield clients, clock, channel, cli_flags
    finally:
        for c in clients.values():
            c.client.close()
        channel.close()
        server.stop(None).wait()
        settlement.close()
        store.close()


def plain_rule(trades: list[tuple[str, str, int]]) -> list[int]:
    """d_k = min(q_k, E_s - Σ d of s's earlier trades, I_b - Σ d of b's earlier trades)."""
    left = dict(METERED)
    out = []
    for seller, buyer, q in trades:
        d = min(q, left[seller], left[buyer])
        left[seller] -= d
        left[buyer] -= d
        out.append(d)
    return out


def test_two_sellers_and_two_buyers_deliver_by_the_plain_rule(
    market: tuple[dict[str, MarketClient], Clock, grpc.Channel, list[str]],
) -> None:
    clients, clock, channel, cli_flags = market
    for name, client in clients.items():
        client.enrol()
        side, wh, price = ORDERS[name]
        client.place(side, PERIOD, T, T, wh, price)
    clock.at(GATE)
    clearing, _, _ = clear_market(channel, PERIOD, metadata=UTILITY)
    trades = [(tr.seller, tr.buyer, tr.quantity) for tr in clearing.intervals[T].trades]
    assert len(trades) >= 3  # s1 and s2 each sell to both or one buyer: a chain of earlier trades
    clock.at(AFTER_DAY)
    peers = dict(peer_enrolment(c.enrolment().encode()) for c in clients.values())

    # Before the batches: every step waits, nothing is refused.
    for client in clients.values():
        report = client.deliver(PERIOD, peer_keys=peers)
        assert not report.refused
        assert all(o.status == "waiting" for o in report.outcomes)
    for name, client in clients.items():
        client.client.submit_readings(_readings(name))

    for _ in range(2 * len(trades) + 1):  # the counterparties' keys now come with the messages
        reports = [c.deliver(PERIOD) for c in clients.values()]
        assert not any(r.refused for r in reports), [r.outcomes for r in reports]
        if all(all(o.status == "settled" for o in r.outcomes) for r in reports):
            break
    else:
        pytest.fail("the delivery steps did not settle every trade")

    # the command line: every trade of s1 settled, its delivered energy known (exit 0)
    out = io.StringIO()
    home = str(clients["s1"].home.path)
    code = market_main(
        ["deliver", "--period", PERIOD, "--home", home, *cli_flags, "--json"], out=out
    )
    assert code == 0
    listed = json.loads(out.getvalue())["trades"]
    assert listed
    assert all(t["status"] == "settled" for t in listed)

    expected = plain_rule(trades)
    for name, client in clients.items():
        held = {
            row.trade_index: row.delivered_wh
            for row in client.client.store.trade_deliveries(PERIOD)
        }
        mine = {k: expected[k] for k, (s, b, _) in enumerate(trades) if name in (s, b)}
        assert held == mine, name
    assert expected != [q for _, _, q in trades]  # the readings bind: the rule is exercised
