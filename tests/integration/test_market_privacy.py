"""Privacy of the market's settlement: after two sellers and two buyers trade, submit their
batches and make every delivery step, no reading and no per-trade delivered quantity is in
the ledger's database, in any log record, or in any message that crossed the channel (the
openings travel sealed to the counterparty). Readings and quantities are large and
distinct (at least 10^6), and every trade is delivered in part only, so each delivered
quantity differs from every public order quantity and the search is meaningful. A
positive control finds them in the meters' own stores."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest

from ledger.checkpoint import CheckpointSigner
from meter.client import MeterClient
from meter.home import MeterHome
from meter.market import MarketClient, clear_market, publish_market_day
from meter.readings import DayReadings
from service.config import ServiceConfig
from service.logs import TEXT_FORMAT, JsonFormatter
from service.server import build_server, server_info
from service.settlement import Settlement
from service.storage import open_store
from settlement import convert
from settlement.market import Side
from settlement.records import MeterRegistration, Tariff
from tests.integration.test_privacy import _decimal_pattern, _Recorder
from tests.unit.service.market_support import DAY, GATE, HOURLY, PERIOD, Clock
from zkgrid.settlement.v1 import meters_pb2, meters_pb2_grpc, tariffs_pb2, tariffs_pb2_grpc

UTILITY = (("x-zkgrid-role", "utility"), ("x-zkgrid-identity", "grid-co"))
AFTER_DAY = datetime(2024, 6, 3, 1, tzinfo=UTC)
T = 10
ORDERS = {
    "s1": (Side.OFFER, 3_000_000_000, 100),
    "s2": (Side.OFFER, 2_000_000_000, 110),
    "b1": (Side.BID, 2_500_000_000, 250),
    "b2": (Side.BID, 3_000_000_000, 240),
}
# interval T: the sellers' export, the buyers' import (all below the order quantities)
METERED = {"s1": 1_234_567_891, "s2": 1_987_654_321, "b1": 1_111_222_333, "b2": 1_444_555_666}
TARIFF = Tariff(PERIOD, HOURLY, "EUR", 0, (300,) * 24, (80,) * 24)


def _readings(name: str, seed: int) -> DayReadings:
    """Distinct large readings in every interval; interval T carries METERED."""
    imports = [10**6 + 7919 * (seed * 24 + t) for t in range(24)]
    exports = [2 * 10**6 + 104_729 * (seed * 24 + t) for t in range(24)]
    if ORDERS[name][0] is Side.OFFER:
        exports[T], imports[T] = METERED[name], 0
    else:
        imports[T], exports[T] = METERED[name], 0
    return DayReadings(PERIOD, HOURLY, tuple(imports), tuple(exports))


def _plain(trades: list[tuple[str, str, int]]) -> list[int]:
    left = dict(METERED)
    out = []
    for seller, buyer, q in trades:
        d = min(q, left[seller], left[buyer])
        left[seller] -= d
        left[buyer] -= d
        out.append(d)
    return out


def test_no_reading_or_delivered_quantity_leaves_the_meters(
    tmp_path: Path,
    ledger_signer: CheckpointSigner,
    ledger_origin: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    clock = Clock()
    store = open_store(url, ledger_signer, ledger_origin)
    settlement = Settlement(store, clock=clock)
    server = build_server(
        settlement, ServiceConfig(listen="127.0.0.1:0", insecure=True, failure_burst=0)
    )
    server.start()
    recorder = _Recorder()
    raw = grpc.insecure_channel(f"127.0.0.1:{server_info(server).port}")
    channel = grpc.intercept_channel(raw, recorder)
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
                home, channel, insecure=True, log_key=ledger_signer.verifier_key(),
                clock=lambda: AFTER_DAY,
            )  # fmt: skip
            clients[name] = MarketClient(meter)
        tariffs_pb2_grpc.TariffServiceStub(channel).PublishTariff(
            tariffs_pb2.PublishTariffRequest(tariff=convert.tariff_to_proto(TARIFF)),
            metadata=UTILITY,
            timeout=30,
        )
        publish_market_day(channel, DAY, metadata=UTILITY)
        for name, client in clients.items():
            client.enrol()
            side, wh, price = ORDERS[name]
            client.place(side, PERIOD, T, T, wh, price)
        clock.at(GATE)
        clearing, _, _ = clear_market(channel, PERIOD, metadata=UTILITY)
        trades = [(tr.seller, tr.buyer, tr.quantity) for tr in clearing.intervals[T].trades]
        clock.at(AFTER_DAY)
        for seed, (name, client) in enumerate(clients.items()):
            client.client.submit_readings(_readings(name, seed))
        for _ in range(2 * len(trades) + 1):
            reports = [c.deliver(PERIOD) for c in clients.values()]
            assert not any(r.refused for r in reports)
            if all(all(o.status == "settled" for o in r.outcomes) for r in reports):
                break
        else:
            pytest.fail("the delivery steps did not settle every trade")
        delivered = _plain(trades)
        quantities = {q for _, _, q in trades} | {wh for _, wh, _ in ORDERS.values()}
        assert all(d >= 10**6 and d not in quantities for d in delivered)
        readings: list[int] = []
        for seed, name in enumerate(ORDERS):
            day = _readings(name, seed)
            readings += [v for v in (*day.imports, *day.exports) if v]
        held = [
            row.delivered_wh
            for c in clients.values()
            for row in c.client.store.trade_deliveries(PERIOD)
        ]
        assert {d for d in held if d is not None} == set(delivered)
    finally:
        for c in clients.values():
            c.client.close()
        raw.close()
        server.stop(None).wait()
        settlement.close()
        store.close()

    secrets = [*readings, *delivered]

    def leaks(haystack: bytes) -> list[int]:
        """Each secret found as decimal text or as an 8-byte integer (either byte order)."""
        return [
            v
            for v in secrets
            if _decimal_pattern(v).search(haystack)
            or v.to_bytes(8, "big") in haystack
            or v.to_bytes(8, "little") in haystack
        ]

    own = b"".join(p.read_bytes() for p in sorted((tmp_path / "s1").glob("openings.db*")))
    assert leaks(own), sorted(x.name for x in (tmp_path / "s1").iterdir())  # positive control
    for path in sorted(tmp_path.glob("ledger.db*")):
        assert leaks(path.read_bytes()) == [], path.name
    formatters: list[Callable[[logging.LogRecord], str]] = [
        JsonFormatter().format,
        logging.Formatter(TEXT_FORMAT).format,
    ]
    for fmt in formatters:
        rendered = "\n".join(fmt(r) for r in caplog.records).encode()
        assert b"SubmitDelivery" in rendered
        assert leaks(rendered) == []
    assert len(recorder.blobs) > 40
    found: list[Any] = [leaks(blob) for blob in recorder.blobs]
    assert not any(found)
