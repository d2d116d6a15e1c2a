"""The market's delivery steps through a real gRPC server, on SQLite and PostgreSQL, with the
service's clock injected: after a clearing, the sellers and buyers submit real batches for
the period, then real allocation and delivery steps (circuit proofs, openings sealed to the
counterparty's enrolment key, read back through ``GetMessages`` and opened there): a sunny
interval (full delivery), a cloudy one (the seller exported less than it sold), a buyer
away (it imported less than it bought), a seller with two buyers and a buyer with two
sellers in one interval. The delivered quantities (from the openings) are the plain rule's;
a seller proving more than it exported and a buyer proving less than it took are refused
(PROOF_INVALID); a seller that never acts is defaulted by ``RecordDefaults`` after its
deadline; ``GetMessages`` answers a meter for its own trades only. Then the standalone
auditor finds nothing in the export, and names a delivery whose proof the operator
rewrote in its database (C7, C8)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest

from circuits.r1cs import Prover
from ledger.checkpoint import CheckpointSigner
from service.config import ServiceConfig
from service.export import export_ledger
from service.server import build_server, server_info
from service.settlement import Settlement
from service.storage import open_store
from settlement import convert
from settlement.market import Delivery, DeliveryAllocation, DeliveryDefault, DeliveryStep, Trade
from settlement.market_circuits import (
    ALLOCATION,
    DELIVERY,
    allocation_of,
    build_allocation,
    build_delivery,
    delivery_context,
    delivery_of,
    prove_allocation,
    prove_delivery,
)
from settlement.records import MeterKey
from settlement.sealed import Opening, open_sealed, seal
from tests.integration.test_grpc_server import refused
from tests.integration.test_market_grpc import Market, open_market, submit
from tests.unit.service.market_support import DAY, GATE, HOURLY, PERIOD, Clock, Trader
from tests.unit.service.settlement_support import SimMeter
from tests.unit.settlement.market_delivery_support import plain_deliveries
from tests.unit.verifier.audit_support import set_payload
from verifier.cli import main as audit_main
from zkgrid.settlement.v1 import market_pb2, readings_pb2
from zkp.group import random_scalar
from zkp.pedersen import Commitment, commit

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
CODE = grpc.StatusCode
T = 24
#: An hour after the period ended: batches are in, the steps are due.
AFTER = datetime(2024, 6, 3, 1, tzinfo=UTC)
#: Imports and exports (Wh) per meter in the traded intervals (0 elsewhere).
READINGS: dict[str, dict[int, tuple[int, int]]] = {
    # interval: (import, export)
    "s1": {8: (0, 3_000), 9: (0, 400), 11: (0, 1_200)},  # sunny, cloudy, two buyers
    "s2": {10: (0, 2_000), 11: (0, 2_000)},
    "s3": {12: (0, 900)},  # never acts
    "b1": {8: (4_000, 0), 9: (4_000, 0), 11: (5_000, 0)},
    "b2": {10: (300, 0), 11: (1_000, 0)},  # away in 10; two sellers in 11
    "b3": {12: (700, 0)},
}


@pytest.fixture(params=BACKENDS)
def served(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    ledger_signer: CheckpointSigner,
    ledger_origin: str,
) -> Iterator[Market]:
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
    channel = grpc.insecure_channel(f"127.0.0.1:{server_info(server).port}")
    run = Market(channel, store, settlement, ledger_signer, "")
    run.clock = clock
    run.url = url
    try:
        yield run
    finally:
        channel.close()
        server.stop(None).wait()
        settlement.close()
        store.close()


@dataclass
class Party:
    """A trading meter as its owner's software holds it: its keys, its batch's openings,
    and the openings of its trades' outputs (its own and those sealed to it)."""

    trader: Trader
    allocations: dict[tuple[int, int], Opening] = field(default_factory=dict)
    deliveries: dict[tuple[int, int], Opening] = field(default_factory=dict)

    @property
    def meter_id(self) -> str:
        return self.trader.meter_id

    def committed(self, t: int, position: int) -> tuple[bytes, tuple[int, int]]:
        meter = self.trader.meter
        i = 2 * t + position
        openings = meter.openings[PERIOD]
        return meter.batches[PERIOD].commitments[i], (openings.values[i], openings.blindings[i])


def messages(
    run: Market, meter_id: str, caller: str | None = None
) -> market_pb2.GetMessagesResponse:
    return run.market.GetMessages(
        market_pb2.GetMessagesRequest(meter_id=meter_id, period=PERIOD),
        metadata=run.md("meter", caller or meter_id),
        timeout=30,
    )


def _mine(run: Market, party: Party, t: int, k: int) -> market_pb2.TradeMessages:
    for msg in messages(run, party.meter_id).trades:
        if (msg.interval, msg.index) == (t, k):
            return msg
    raise AssertionError(f"{party.meter_id} has no trade {k} of interval {t}")


def _earlier(
    run: Market, party: Party, t: int, k: int, side: int
) -> tuple[list[bytes], list[tuple[int, int]]]:
    """The party's earlier D_j of interval t (defaults left out), with their openings: as
    seller it opens the buyers' sealed deliveries, as buyer it kept its own."""
    commitments, openings = [], []
    for msg in messages(run, party.meter_id).trades:
        if msg.interval != t or msg.index >= k or msg.side != side:
            continue
        if msg.status == market_pb2.DELIVERY_STATUS_DEFAULTED:
            continue
        assert msg.status == market_pb2.DELIVERY_STATUS_DELIVERED
        delivery = Delivery.decode(msg.delivery)
        if side == market_pb2.SIDE_OFFER:
            party.deliveries[(t, msg.index)] = open_sealed(
                delivery.sealed_opening, party.trader.encryption, delivery.commitment,
                delivery_context(msg.trade_id, DELIVERY),
            )  # fmt: skip
        opening = party.deliveries[(t, msg.index)]
        commitments.append(delivery.commitment)
        openings.append((opening.value, opening.blinding))
    return commitments, openings


def allocation(
    run: Market, seller: Party, t: int, k: int, *, claimed: int | None = None
) -> DeliveryAllocation:
    """The seller's step, as its meter makes it from GetMessages; ``claimed`` forces a lie
    through the prover's internals (the constraints do not hold)."""
    msg = _mine(run, seller, t, k)
    assert msg.status == market_pb2.DELIVERY_STATUS_PENDING
    export, export_opening = seller.committed(t, 1)
    earlier, openings = _earlier(run, seller, t, k, market_pb2.SIDE_OFFER)
    if claimed is None:
        proven = prove_allocation(msg.trade_id, export, export_opening, earlier, openings,
                                  msg.quantity_wh)  # fmt: skip
        value, blinding = (
            allocation_of(export_opening[0], [o[0] for o in openings], msg.quantity_wh),
            proven.blinding,
        )
        commitment, proof = proven.commitment, proven.proof
    else:
        prover = Prover()
        e = prover.commit(Commitment.from_bytes(export), *export_opening)
        d = [
            prover.commit(Commitment.from_bytes(c), *o)
            for c, o in zip(earlier, openings, strict=True)
        ]
        value, blinding = claimed, random_scalar()
        a_point = commit(value, blinding)
        build_allocation(prover, e, d, msg.quantity_wh, prover.commit(a_point, value, blinding))
        proof = prover._prove_unchecked(delivery_context(msg.trade_id, ALLOCATION)).to_bytes()
        commitment = a_point.to_bytes()
    seller.allocations[(t, k)] = Opening(value, blinding)
    box = seal(value, blinding, msg.counterparty_encryption_key,
               delivery_context(msg.trade_id, ALLOCATION))  # fmt: skip
    return DeliveryAllocation.create(
        seller.trader.meter.key, meter_id=seller.meter_id, period=PERIOD, interval=t,
        trade_index=k, clearing_hash=messages(run, seller.meter_id).clearing_hash,
        commitment=commitment, proof=proof, sealed_opening=box,
    )  # fmt: skip


def delivery(run: Market, buyer: Party, t: int, k: int, *, claimed: int | None = None) -> Delivery:
    """The buyer's step: opens the seller's sealed allocation (from GetMessages), proves,
    seals to the seller; ``claimed`` forces a lie."""
    msg = _mine(run, buyer, t, k)
    assert msg.status == market_pb2.DELIVERY_STATUS_ALLOCATED
    allocated = DeliveryAllocation.decode(msg.allocation)
    a = open_sealed(allocated.sealed_opening, buyer.trader.encryption, allocated.commitment,
                    delivery_context(msg.trade_id, ALLOCATION))  # fmt: skip
    buyer.allocations[(t, k)] = a
    imported, import_opening = buyer.committed(t, 0)
    earlier, openings = _earlier(run, buyer, t, k, market_pb2.SIDE_BID)
    if claimed is None:
        proven = prove_delivery(msg.trade_id, allocated.commitment, (a.value, a.blinding),
                                imported, import_opening, earlier, openings)  # fmt: skip
        value = delivery_of(a.value, import_opening[0], [o[0] for o in openings])
        blinding, commitment, proof = proven.blinding, proven.commitment, proven.proof
    else:
        prover = Prover()
        av = prover.commit(Commitment.from_bytes(allocated.commitment), a.value, a.blinding)
        iv = prover.commit(Commitment.from_bytes(imported), *import_opening)
        d = [
            prover.commit(Commitment.from_bytes(c), *o)
            for c, o in zip(earlier, openings, strict=True)
        ]
        value, blinding = claimed, random_scalar()
        d_point = commit(value, blinding)
        build_delivery(prover, av, iv, d, prover.commit(d_point, value, blinding))
        proof = prover._prove_unchecked(delivery_context(msg.trade_id, DELIVERY)).to_bytes()
        commitment = d_point.to_bytes()
    buyer.deliveries[(t, k)] = Opening(value, blinding)
    box = seal(value, blinding, msg.counterparty_encryption_key,
               delivery_context(msg.trade_id, DELIVERY))  # fmt: skip
    return Delivery.create(
        buyer.trader.meter.key, meter_id=buyer.meter_id, period=PERIOD, interval=t,
        trade_index=k, clearing_hash=messages(run, buyer.meter_id).clearing_hash,
        commitment=commitment, proof=proof, sealed_opening=box,
    )  # fmt: skip


def send_allocation(run: Market, record: DeliveryAllocation) -> market_pb2.SubmitAllocationResponse:
    return run.market.SubmitAllocation(
        market_pb2.SubmitAllocationRequest(allocation=record.encode()),
        metadata=run.md("meter", record.meter_id),
        timeout=60,
    )


def send_delivery(run: Market, record: Delivery) -> market_pb2.SubmitDeliveryResponse:
    return run.market.SubmitDelivery(
        market_pb2.SubmitDeliveryRequest(delivery=record.encode()),
        metadata=run.md("meter", record.meter_id),
        timeout=60,
    )


def _market_day(run: Market) -> dict[str, Party]:
    """Six meters trade, the period clears, every batch of the period is on the ledger."""
    parties = {n: Party(Trader(SimMeter(n, HOURLY))) for n in READINGS}
    open_market(run, [p.trader for p in parties.values()])
    tr = {n: p.trader for n, p in parties.items()}
    for order in (
        tr["s1"].offer(8, 9, 1_000, 100),
        tr["b1"].bid(8, 9, 1_000, 200),
        tr["s2"].offer(10, 10, 800, 100),
        tr["b2"].bid(10, 10, 800, 200),
        tr["s1"].offer(11, 11, 1_500, 90),
        tr["s2"].offer(11, 11, 1_000, 120),
        tr["b1"].bid(11, 11, 1_000, 250),
        tr["b2"].bid(11, 11, 1_500, 150),
        tr["s3"].offer(12, 12, 500, 100),
        tr["b3"].bid(12, 12, 500, 200),
    ):
        submit(run, order)
    run.clock.at(GATE + timedelta(minutes=1))
    run.market.Clear(market_pb2.ClearRequest(period=PERIOD), metadata=run.md("utility"),
                     timeout=60)  # fmt: skip
    run.clock.at(AFTER)
    for name, party in parties.items():
        imports = [READINGS[name].get(t, (0, 0))[0] for t in range(T)]
        exports = [READINGS[name].get(t, (0, 0))[1] for t in range(T)]
        batch = party.trader.meter.batch(PERIOD, imports, exports)
        run.readings.SubmitReadings(
            readings_pb2.SubmitReadingsRequest(batch=convert.reading_batch_to_proto(batch)),
            metadata=run.md("meter", name),
            timeout=60,
        )
    return parties


def _trades(run: Market) -> dict[int, tuple[Trade, ...]]:
    result = run.market.GetMarketResult(
        market_pb2.GetMarketResultRequest(period=PERIOD), metadata=run.md("utility"), timeout=30
    )
    clearing = convert.clearing_from_bytes(result.clearing)
    return {t: r.trades for t, r in enumerate(clearing.intervals) if r.trades}


def _settle(run: Market, parties: dict[str, Party], trades: dict[int, tuple[Trade, ...]]) -> None:
    """Both steps of every trade but s3's, in trade order, as the meters make them."""
    for t, interval in trades.items():
        for k, trade in enumerate(interval):
            if trade.seller == "s3":
                continue
            send_allocation(run, allocation(run, parties[trade.seller], t, k))
            send_delivery(run, delivery(run, parties[trade.buyer], t, k))


def test_a_market_day_is_delivered_through_the_service(
    served: Market, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = served
    parties = _market_day(run)
    trades = _trades(run)
    assert [(t, [(x.seller, x.buyer, x.quantity) for x in trades[t]]) for t in trades] == [
        (8, [("s1", "b1", 1_000)]),
        (9, [("s1", "b1", 1_000)]),
        (10, [("s2", "b2", 800)]),
        (11, [("s1", "b1", 1_000), ("s1", "b2", 500), ("s2", "b2", 1_000)]),
        (12, [("s3", "b3", 500)]),
    ]
    s1, b2 = parties["s1"], parties["b2"]
    # --- before any step: the buyer's view of its trade; a seller's lie refused
    msg = _mine(run, b2, 11, 1)
    assert msg.status == market_pb2.DELIVERY_STATUS_PENDING
    assert (msg.counterparty, msg.side) == ("s1", market_pb2.SIDE_BID)
    lie = allocation(run, s1, 9, 0, claimed=1_000)  # exported 400, claims 1,000
    refused(run, CODE.INVALID_ARGUMENT, "PROOF_INVALID", lambda: send_allocation(run, lie))
    # the honest steps, every trade in trade order
    size = run.store.size()
    _settle(run, parties, trades)
    assert run.store.size() == size + 2 * 6  # six trades, s3's left
    # --- the delivered quantities are the plain rule's, from the openings both hold
    exports = {n: {t: r[1] for t, r in READINGS[n].items()} for n in READINGS}
    imports = {n: {t: r[0] for t, r in READINGS[n].items()} for n in READINGS}
    for t, interval in trades.items():
        if t == 12:
            continue
        expected = plain_deliveries(
            interval,
            {n: exports[n].get(t, 0) for n in READINGS},
            {n: imports[n].get(t, 0) for n in READINGS},
        )
        for k, trade in enumerate(interval):
            seller_view = _mine(run, parties[trade.seller], t, k)
            assert seller_view.status == market_pb2.DELIVERY_STATUS_DELIVERED
            got = Delivery.decode(seller_view.delivery)
            opened = open_sealed(
                got.sealed_opening, parties[trade.seller].trader.encryption, got.commitment,
                delivery_context(seller_view.trade_id, DELIVERY),
            )  # fmt: skip
            assert opened.value == parties[trade.buyer].deliveries[(t, k)].value == expected[k]
    assert [parties["b1"].deliveries[(8, 0)].value, parties["b1"].deliveries[(9, 0)].value] == [
        1_000,
        400,
    ]  # sunny, cloudy
    assert parties["b2"].deliveries[(10, 0)].value == 300  # the buyer away
    assert [parties[b].deliveries[(11, k)].value for k, b in enumerate(("b1", "b2", "b2"))] == [
        1_000,
        200,
        800,
    ]
    # --- a replayed step is idempotent
    size = run.store.size()
    first = _mine(run, s1, 8, 0)
    again = send_allocation(run, DeliveryAllocation.decode(first.allocation))
    assert again.receipt.ledger_index == first.allocation_index
    assert run.store.size() == size
    # --- GetMessages: a meter's own trades only
    assert {(m.interval, m.index) for m in messages(run, "b2").trades} == {
        (10, 0),
        (11, 1),
        (11, 2),
    }
    refused(run, CODE.PERMISSION_DENIED, "PERMISSION_DENIED", lambda: messages(run, "s1", "b2"))
    # --- s3 never acts: nothing is due before its deadline, the default after it
    utility = run.md("utility")
    nothing = run.market.RecordDefaults(market_pb2.RecordDefaultsRequest(period=PERIOD),
                                        metadata=utility, timeout=60)  # fmt: skip
    assert list(nothing.defaults) == []
    run.clock.at(datetime.fromtimestamp(DAY.seller_deadline, UTC))
    late = allocation(run, parties["s3"], 12, 0)
    refused(run, CODE.FAILED_PRECONDITION, "DEADLINE_PASSED", lambda: send_allocation(run, late))
    recorded = run.market.RecordDefaults(market_pb2.RecordDefaultsRequest(period=PERIOD),
                                         metadata=utility, timeout=60)  # fmt: skip
    [one] = recorded.defaults
    default = convert.delivery_default_from_bytes(one.delivery_default)
    assert (default.interval, default.trade_index, default.step) == (12, 0, DeliveryStep.ALLOCATION)
    assert isinstance(default, DeliveryDefault)
    b3_view = _mine(run, parties["b3"], 12, 0)
    assert b3_view.status == market_pb2.DELIVERY_STATUS_DEFAULTED
    assert b3_view.defaulted_step == market_pb2.DELIVERY_STEP_ALLOCATION
    again_defaults = run.market.RecordDefaults(market_pb2.RecordDefaultsRequest(period=PERIOD),
                                               metadata=utility, timeout=60)  # fmt: skip
    assert list(again_defaults.defaults) == []
    assert run.settlement.anomalies == []
    # --- the standalone auditor finds nothing
    archive = tmp_path / "delivered.zkla"
    export_ledger(run.url, archive)
    capsys.readouterr()
    code = audit_main(
        ["--archive", str(archive), "--log-key", run.signer.verifier().to_text(),
         "--workers", "1", "--json", "--no-state"]
    )  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report["violations"]


def test_a_buyer_proving_less_than_it_took_is_refused(
    served: Market, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """b2 imported 300 Wh in interval 10 and was allocated 800: its delivery is 300; a
    proof of 100 is PROOF_INVALID, nothing appended; the honest one is taken after. The
    auditor, resuming from its state file between the two steps, checks the delivery's
    proof against the commitments it kept (C8 after --since-last)."""
    run = served
    parties = _market_day(run)
    s2, b2 = parties["s2"], parties["b2"]
    send_allocation(run, allocation(run, s2, 10, 0))
    state = tmp_path / "auditor.json"

    def audit(name: str, *more: str) -> None:
        archive = tmp_path / name
        export_ledger(run.url, archive)
        capsys.readouterr()
        code = audit_main(
            ["--archive", str(archive), "--log-key", run.signer.verifier().to_text(),
             "--workers", "1", "--json", "--state", str(state), *more]
        )  # fmt: skip
        report = json.loads(capsys.readouterr().out)
        assert code == 0, report["violations"]

    audit("allocated.zkla")
    lie = delivery(run, b2, 10, 0, claimed=100)
    refused(run, CODE.INVALID_ARGUMENT, "PROOF_INVALID", lambda: send_delivery(run, lie))
    send_delivery(run, delivery(run, b2, 10, 0))
    assert b2.deliveries[(10, 0)].value == 300
    audit("delivered.zkla", "--since-last")
    kept = json.loads(state.read_text())["market_batches"]
    assert {b["meter"] for b in kept.values()} == {"s1", "s2", "s3", "b1", "b2", "b3"}


def test_the_auditor_names_a_rewritten_delivery(
    tmp_path: Path, ledger_signer: CheckpointSigner, ledger_origin: str,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """The operator rewrites a delivery in its database: another commitment, re-signed by a
    key that is not the buyer's (C7), with the proof of another trade (C8)."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    clock = Clock()
    store = open_store(url, ledger_signer, ledger_origin)
    settlement = Settlement(store, clock=clock)
    server = build_server(settlement, ServiceConfig(listen="127.0.0.1:0", insecure=True))
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{server_info(server).port}")
    run = Market(channel, store, settlement, ledger_signer, "")
    run.clock = clock
    run.url = url
    try:
        parties = _market_day(run)
        s1, b1 = parties["s1"], parties["b1"]
        send_allocation(run, allocation(run, s1, 8, 0))
        honest = delivery(run, b1, 8, 0)
        index = send_delivery(run, honest).receipt.ledger_index
        forged = Delivery.create(
            MeterKey.generate(), meter_id="b1", period=PERIOD, interval=8,
            trade_index=0, clearing_hash=honest.clearing_hash,
            commitment=commit(1_000, random_scalar()).to_bytes(), proof=honest.proof,
            sealed_opening=honest.sealed_opening,
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
        assert {"SIGNATURE_INVALID", "PROOF_INVALID"} <= at
        details = " ".join(v["detail"] for v in report["violations"] if v["index"] == index)
        assert "(C7)" in details
        assert "(C8)" in details
    finally:
        channel.close()
        server.stop(None).wait()
        settlement.close()
        store.close()
