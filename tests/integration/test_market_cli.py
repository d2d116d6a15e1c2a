"""``zkgrid market`` end to end: real meter homes, the meter's market client and a real gRPC
server on 127.0.0.1:0 (SQLite, the service's clock injected). The utility publishes a market
day, meters enrol (a new encryption key in each home, mode 0600; enrolling again is the
same enrolment), offer and bid in kWh and currency per kWh (converted exactly; inexact
input is refused before anything is sent), cancel, list their orders; the clearing is
refused before gate closure and idempotent after it; results and trades are checked
against ``settlement.market.clear`` of the orders placed. Exit codes: 0 done, 1 refused,
2 could not run."""

from __future__ import annotations

import io
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest

from cli.market import main as market_main
from ledger.checkpoint import CheckpointSigner
from meter.client import MeterClient
from meter.home import MeterHome
from meter.market import ENROLMENT_FILE, MARKET_KEY_FILE, MarketClient
from service.config import ServiceConfig
from service.server import build_server, server_info
from service.settlement import Settlement
from service.storage import LedgerStore, open_store
from settlement import convert
from settlement.market import Order, clear
from settlement.records import MeterRegistration
from tests.unit.service.market_support import DAY, GATE, HOURLY, PERIOD, TARIFF, Clock
from zkgrid.settlement.v1 import meters_pb2, meters_pb2_grpc, tariffs_pb2, tariffs_pb2_grpc


@dataclass
class Served:
    target: str
    store: LedgerStore
    clock: Clock
    log_key: Path
    homes: dict[str, Path]

    def run(self, *argv: str, home: str | None = None) -> tuple[int, Any]:
        """``zkgrid market ARGV`` against the server; (exit status, JSON output or None)."""
        args = [*argv, "--target", self.target, "--insecure", "--log-key-file", str(self.log_key)]
        if home is not None:
            args += ["--home", str(self.homes[home])]
        out = io.StringIO()
        code = market_main([*args, "--json"], out=out)
        text = out.getvalue()
        return code, json.loads(text) if text else None


@pytest.fixture
def served(tmp_path: Path, ledger_signer: CheckpointSigner, ledger_origin: str) -> Iterator[Served]:
    clock = Clock()
    store = open_store(f"sqlite:///{tmp_path / 'ledger.db'}", ledger_signer, ledger_origin)
    settlement = Settlement(store, clock=clock)
    server = build_server(settlement, ServiceConfig(listen="127.0.0.1:0", insecure=True))
    server.start()
    target = f"127.0.0.1:{server_info(server).port}"
    log_key = tmp_path / "log.pub"
    log_key.write_text(ledger_signer.verifier_key() + "\n")
    homes = {}
    channel = grpc.insecure_channel(target)
    utility = (("x-zkgrid-role", "utility"), ("x-zkgrid-identity", "grid-co"))
    try:
        for name in ("s1", "s2", "b1"):
            home = MeterHome.create(tmp_path / name, name, HOURLY)
            registration = MeterRegistration.create(home.key(), name, HOURLY)
            meters_pb2_grpc.MeterServiceStub(channel).RegisterMeter(
                meters_pb2.RegisterMeterRequest(
                    registration=convert.registration_to_proto(registration)
                ),
                metadata=utility,
                timeout=30,
            )
            homes[name] = home.path
        tariffs_pb2_grpc.TariffServiceStub(channel).PublishTariff(
            tariffs_pb2.PublishTariffRequest(tariff=convert.tariff_to_proto(TARIFF)),
            metadata=utility,
            timeout=30,
        )
        yield Served(target, store, clock, log_key, homes)
    finally:
        channel.close()
        server.stop(None).wait()
        settlement.close()
        store.close()


def test_a_market_day_from_the_command_line(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    run = served
    # --- the utility opens the day (defaults: gate closure D-1 12:00 UTC)
    code, day = run.run("day", "publish", "--period", PERIOD, "--interval-minutes", "60",
                        "--credit-rate", "0.025")  # fmt: skip
    assert code == 0
    assert day["gate_closure"] == DAY.gate_closure
    assert day["credit_rate"] == 25
    assert day["receipt"]["signature_verified"]
    # --- meters enrol: a new encryption key kept in the home, 0600; again: the same
    receipts = {}
    for name in ("s1", "s2", "b1"):
        code, doc = run.run("enrol", home=name)
        assert code == 0
        receipts[name] = doc["receipt"]["ledger_index"]
        for file in (MARKET_KEY_FILE, ENROLMENT_FILE):
            assert stat.S_IMODE(os.stat(run.homes[name] / file).st_mode) == 0o600
    size = run.store.size()
    code, again = run.run("enrol", home="s1")
    assert code == 0
    assert again["receipt"]["ledger_index"] == receipts["s1"]
    assert run.store.size() == size
    # --- orders, in kWh and currency per kWh (exact)
    code, offer = run.run("offer", "--period", PERIOD, "--intervals", "8-10", "--quantity",
                          "1.5", "--price", "0.090", home="s1")  # fmt: skip
    assert code == 0
    assert (offer["quantity_wh"], offer["limit_price"], offer["side"]) == (1_500, 90, "offer")
    code, offer2 = run.run("offer", "--period", PERIOD, "--intervals", "9", "--quantity",
                           "800", "--wh", "--price", "0.12", home="s2")  # fmt: skip
    assert code == 0
    assert (offer2["quantity_wh"], offer2["first_interval"], offer2["last_interval"]) == (800, 9, 9)
    code, bid = run.run("bid", "--period", PERIOD, "--intervals", "8-9", "--quantity", "2",
                        "--price", "0.2", home="b1")  # fmt: skip
    assert code == 0
    code, spare = run.run("offer", "--period", PERIOD, "--intervals", "11", "--quantity",
                          "0.5", "--price", "0.1", home="s2")  # fmt: skip
    assert code == 0
    size = run.store.size()
    for bad in (["--quantity", "1.0005", "--price", "0.1"],  # finer than a Wh
                ["--quantity", "1", "--price", "0.0905"],  # finer than 0.001 per kWh
                ["--quantity", "1.5", "--wh", "--price", "0.1"]):  # fmt: skip
        code, _ = run.run("offer", "--period", PERIOD, "--intervals", "12", *bad, home="s1")
        assert code == 2
    assert "0.0905" in capsys.readouterr().err
    code, _ = run.run("bid", "--period", PERIOD, "--intervals", "10", "--quantity", "1",
                      "--price", "0.2", home="s1")  # fmt: skip
    assert code == 1  # s1 offers in interval 10: a self-trade
    assert "SELF_TRADE" in capsys.readouterr().err
    code, _ = run.run("bid", "--period", PERIOD, "--intervals", "18", "--quantity", "1",
                      "--price", "0.401", home="b1")  # fmt: skip
    assert code == 1
    assert "PRICE_OUT_OF_BOUNDS" in capsys.readouterr().err
    assert run.store.size() == size
    # --- a cancellation, and the orders as the meter and as the utility see them
    code, cancelled = run.run("cancel", "--order", spare["order_hash"], home="s2")
    assert code == 0
    assert cancelled["order_hash"] == spare["order_hash"]
    code, mine = run.run("orders", "--period", PERIOD, home="s2")
    assert code == 0
    assert [(o["order_hash"], o["status"]) for o in mine["orders"]] == [
        (offer2["order_hash"], "live"),
        (spare["order_hash"], "cancelled"),
    ]
    code, _ = run.run("orders", "--period", PERIOD, "--meter", "s1", home="s2")
    assert code == 2  # a meter reads its own: --meter is the utility's or an auditor's
    code, every = run.run("orders", "--period", PERIOD, "--as", "utility")
    assert code == 0
    assert len(every["orders"]) == 4
    # --- the clearing: refused before gate closure, then once, then idempotent
    code, _ = run.run("clear", "--period", PERIOD)
    assert code == 1
    assert "GATE_NOT_CLOSED" in capsys.readouterr().err
    run.clock.at(GATE + timedelta(seconds=30))
    code, _ = run.run("cancel", "--order", offer["order_hash"], home="s1")
    assert code == 1
    assert "GATE_CLOSED" in capsys.readouterr().err
    code, cleared = run.run("clear", "--period", PERIOD)
    assert code == 0
    assert cleared["appended"]
    code, again = run.run("clear", "--period", PERIOD)
    assert code == 0
    assert not again["appended"]
    assert again["receipt"] == cleared["receipt"]
    # --- the result and the trades, against clear() of the orders placed
    placed = [  # the live orders in ledger order
        _orders_of(run, "s1")[offer["order_hash"]],
        _orders_of(run, "s2")[offer2["order_hash"]],
        _orders_of(run, "b1")[bid["order_hash"]],
    ]
    expected = clear(DAY, placed)
    assert cleared["clearing_hash"] == expected.clearing_hash().hex()
    code, result = run.run("result", "--period", PERIOD, home="b1")
    assert code == 0
    assert result["cleared"]
    assert [(r["price"], r["volume_wh"]) for r in result["results"]] == [
        (r.price, r.volume) for r in expected.intervals
    ]
    assert "receipt" not in result  # a meter sees prices and volumes, not the record
    code, audited = run.run("result", "--period", PERIOD, "--as", "auditor")
    assert code == 0
    assert audited["clearing_hash"] == expected.clearing_hash().hex()
    assert audited["receipt"]["signature_verified"]
    code, trades = run.run("trades", "--period", PERIOD, home="b1")
    assert code == 0
    want = [
        (t, k, tr.seller, tr.quantity, r.price)
        for t, r in enumerate(expected.intervals)
        for k, tr in enumerate(r.trades)
        if tr.buyer == "b1"
    ]
    got = [(x["interval"], x["index"], x["counterparty"], x["quantity_wh"], x["price"])
           for x in trades["trades"]]  # fmt: skip
    assert got == want
    assert {x["side"] for x in trades["trades"]} == {"bid"}
    assert {x[2] for x in got} == {"s1", "s2"}  # b1 bought from both sellers
    code, _ = run.run("trades", "--period", PERIOD, "--meter", "b1", "--as", "meter", home="s1")
    assert code == 2


def _orders_of(run: Served, meter: str) -> dict[str, Order]:
    """The meter's orders as its market client lists them (checked), by hash."""
    client = MeterClient(run.homes[meter], target=run.target, insecure=True)
    try:
        return {p.order_hash.hex(): p.order for p in MarketClient(client).orders(PERIOD)}
    finally:
        client.close()


def test_could_not_run_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = MeterHome.create(tmp_path / "m", "m", HOURLY)
    unreachable = ["--target", "127.0.0.1:1", "--insecure", "--timeout", "0.5", "--home",
                   str(home.path)]  # fmt: skip
    assert market_main(["enrol", *unreachable]) == 2
    assert "could not reach the service" in capsys.readouterr().err
    assert market_main(["offer", "--period", PERIOD, "--intervals", "3-1", "--quantity", "1",
                        "--price", "0.1", *unreachable]) == 2  # fmt: skip
    assert market_main(["cancel", "--order", "abc", *unreachable]) == 2
    assert market_main(["enrol", "--target", "127.0.0.1:1", "--insecure", "--home",
                        str(tmp_path / "nowhere")]) == 2  # fmt: skip
    assert market_main(["frobnicate"]) == 2
    assert market_main(["--help"]) == 0
