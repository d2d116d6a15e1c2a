"""Bills under non-linear tariffs over a billing cycle (records version 2), through a real gRPC
server on 127.0.0.1:0 over a real channel, on SQLite and PostgreSQL: meters registered, a
3-day cycle tariff with inclining tiers (the default plan) and one with a demand charge (a
plan listing one meter) published, a batch of every day submitted, the meters' real cycle
bills (circuit proofs from their batches' openings) submitted and found in their statements;
a cycle with a day missing is CYCLE_INCOMPLETE naming the day; every refusal is its status
and ErrorInfo reason with nothing appended."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import grpc
import pytest

from ledger.checkpoint import CheckpointSigner
from service.settlement import Receipt
from settlement import convert
from settlement.records import CycleBill, CycleTariff
from tests.integration.test_grpc_server import Running, _serve, refused
from tests.unit.service.settlement_support import SimMeter, make_cycle_tariff, make_tariff
from zkgrid._internal.rpc import remote_error
from zkgrid.settlement.v1 import (
    bills_pb2,
    common_pb2,
    meters_pb2,
    readings_pb2,
    tariffs_pb2,
)

D1, D2, D3 = "2024-05-01", "2024-05-02", "2024-05-03"
HOURLY = 60  # 24 intervals a day: 72 import values a cycle
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
CODE = grpc.StatusCode


@pytest.fixture(params=BACKENDS)
def served(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    ledger_signer: CheckpointSigner,
    ledger_origin: str,
) -> Iterator[Running]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
    else:  # a fresh schema of the session's own database (dropped after the session)
        url = str(request.getfixturevalue("pg_schema_url"))
    yield from _serve(url, ledger_signer, ledger_origin)


@pytest.fixture
def sqlite_served(
    tmp_path: Path, ledger_signer: CheckpointSigner, ledger_origin: str
) -> Iterator[Running]:
    yield from _serve(f"sqlite:///{tmp_path / 'ledger.db'}", ledger_signer, ledger_origin)


# --------------------------------------------------------------------------- over the wire


def _receipt(msg: common_pb2.Receipt) -> Receipt:
    return Receipt(
        msg.ledger_index, msg.leaf_hash, msg.checkpoint, msg.tree_size, tuple(msg.inclusion_proof)
    )


def register(run: Running, *meters: SimMeter) -> None:
    utility = run.md("utility", "grid-co")
    for meter in meters:
        reg = convert.registration_to_proto(meter.registration())
        run.meters.RegisterMeter(
            meters_pb2.RegisterMeterRequest(registration=reg), metadata=utility, timeout=30
        )


def publish(
    run: Running, tariff: CycleTariff | bytes, role: str = "utility"
) -> tariffs_pb2.PublishTariffResponse:
    data = tariff.encode() if isinstance(tariff, CycleTariff) else tariff
    request = tariffs_pb2.PublishCycleTariffRequest(cycle_tariff=data)
    return run.tariffs.PublishCycleTariff(request, metadata=run.md(role, "grid-co"), timeout=30)


def submit_days(run: Running, meter: SimMeter, *periods: str) -> None:
    for period in periods:
        batch = convert.reading_batch_to_proto(meter.batch(period))
        run.readings.SubmitReadings(
            readings_pb2.SubmitReadingsRequest(batch=batch),
            metadata=run.md("meter", meter.meter_id),
            timeout=30,
        )


def submit_bill(
    run: Running, bill: CycleBill | bytes, caller: str | None = None
) -> bills_pb2.SubmitBillResponse:
    data = bill.encode() if isinstance(bill, CycleBill) else bill
    who = caller or (bill.meter_id if isinstance(bill, CycleBill) else "nobody")
    return run.bills.SubmitCycleBill(
        bills_pb2.SubmitCycleBillRequest(cycle_bill=data),
        metadata=run.md("meter", who),
        timeout=60,
    )


def get_tariff(
    run: Running, meter_id: str, period: str, role: str = "meter", identity: str | None = None
) -> tariffs_pb2.GetCycleTariffResponse:
    return run.tariffs.GetCycleTariff(
        tariffs_pb2.GetCycleTariffRequest(meter_id=meter_id, period=period),
        metadata=run.md(role, identity or meter_id),
        timeout=30,
    )


def statement(run: Running, meter_id: str, period: str = "") -> bills_pb2.GetStatementResponse:
    return run.bills.GetStatement(
        bills_pb2.GetStatementRequest(meter_id=meter_id, period=period),
        metadata=run.md("meter", meter_id),
        timeout=30,
    )


def tiered_and_demand(meter_listed: str) -> tuple[CycleTariff, CycleTariff]:
    """The default plan with inclining tiers; a demand-charge plan listing one meter."""
    tiered = make_cycle_tariff(
        D1, D3, HOURLY, plan="residential-tiered",
        tiers=((0, 80), (40_000, 160), (120_000, 320)), seed=5,
    )  # fmt: skip
    demand = make_cycle_tariff(
        D1, D3, HOURLY, plan="business-demand", meters=(meter_listed,), tiers=(),
        demand_charge=9_000_000, seed=6,
    )  # fmt: skip
    return tiered, demand


# --------------------------------------------------------------------------- the flow


def test_cycle_bills_through_the_service(served: Running) -> None:
    run = served
    alice, bob, carol = (SimMeter(name, HOURLY) for name in ("alice", "bob", "carol"))
    register(run, alice, bob, carol)
    tiered, demand = tiered_and_demand("carol")
    for tariff in (tiered, demand):
        size = run.store.size()
        published = publish(run, tariff)
        assert published.receipt.ledger_index == size
        assert published.tariff_hash == tariff.tariff_hash()
        _receipt(published.receipt).verify(run.signer.verifier(), tariff.to_entry())
    plans = {"alice": tiered, "bob": tiered, "carol": demand}
    for meter_id, plan in plans.items():
        got = get_tariff(run, meter_id, D2)
        assert convert.cycle_tariff_from_bytes(got.cycle_tariff) == plan
        assert got.tariff_hash == plan.tariff_hash()
        _receipt(got.receipt).verify(run.signer.verifier(), plan.to_entry())
    assert get_tariff(run, "carol", D3, "auditor", "aud-1").tariff_hash == demand.tariff_hash()

    meters = (alice, bob, carol)
    for period in (D1, D2, D3):
        for meter in meters:
            submit_days(run, meter, period)
    bills: dict[str, CycleBill] = {}
    receipts: dict[str, bills_pb2.SubmitBillResponse] = {}
    for meter in meters:
        plan = plans[meter.meter_id]
        bill = meter.cycle_bill(plan)
        assert bill.total == meter.plaintext_cycle_bill(plan)
        size = run.store.size()
        receipts[meter.meter_id] = submit_bill(run, bill)
        assert receipts[meter.meter_id].receipt.ledger_index == size
        _receipt(receipts[meter.meter_id].receipt).verify(run.signer.verifier(), bill.to_entry())
        bills[meter.meter_id] = bill
    # the charges that make these tariffs non-linear are really in the bills
    values = [carol.openings[p].values for p in demand.periods]
    breakdown = demand.bill_breakdown([v[0::2] for v in values], [v[1::2] for v in values])
    assert breakdown.demand_charge > 0
    values = [alice.openings[p].values for p in tiered.periods]
    breakdown = tiered.bill_breakdown([v[0::2] for v in values], [v[1::2] for v in values])
    assert breakdown.tier_charges[-1] > 0

    for meter in meters:
        reply = statement(run, meter.meter_id)
        [line] = reply.lines
        assert not line.HasField("bill")
        assert convert.cycle_bill_from_bytes(line.cycle_bill) == bills[meter.meter_id]
        assert line.currency == "EUR"
        assert reply.total == bills[meter.meter_id].total == meter.plaintext_cycle_bill(
            plans[meter.meter_id]
        )
        assert line.receipt == receipts[meter.meter_id].receipt
        assert statement(run, meter.meter_id, D2).lines == reply.lines
    # the identical bill again: the original receipt, nothing appended
    size = run.store.size()
    assert submit_bill(run, bills["bob"]).receipt == receipts["bob"].receipt
    assert run.store.size() == size
    assert run.settlement.anomaly_reasons == []


def test_a_cycle_with_a_missing_day_is_incomplete(served: Running) -> None:
    run = served
    meter = SimMeter("dora", HOURLY)
    register(run, meter)
    tiered, _ = tiered_and_demand("someone-else")
    publish(run, tiered)
    submit_days(run, meter, D1, D3)  # D2 never sent
    twin = SimMeter("dora", HOURLY, key=meter.key)
    twin.batch(D2)  # readings the meter kept but never submitted
    meter.batches[D2], meter.openings[D2] = twin.batches[D2], twin.openings[D2]
    err = refused(
        run, CODE.FAILED_PRECONDITION, "CYCLE_INCOMPLETE",
        lambda: submit_bill(run, meter.cycle_bill(tiered)),
    )  # fmt: skip
    assert D2 in (err.details() or "")
    # once the day is in, the cycle is billed (the bill names the batch the ledger has)
    meter.batches.pop(D2)
    meter.sequence, meter.prev_hash = 2, meter.batches[D3].batch_hash()
    submit_days(run, meter, D2)
    bill = meter.cycle_bill(tiered)
    submit_bill(run, bill)
    assert statement(run, "dora").total == meter.plaintext_cycle_bill(tiered)


# --------------------------------------------------------------------------- refusals


def test_cycle_refusals_over_the_wire(sqlite_served: Running) -> None:
    run = sqlite_served
    alice, bob = SimMeter("alice", HOURLY), SimMeter("bob", HOURLY)
    register(run, alice, bob)
    tiered, demand = tiered_and_demand("bob")
    day_tariff = make_tariff(D1, HOURLY)
    utility = run.md("utility", "grid-co")

    # tariffs: roles, format, overlap
    for role in ("meter", "auditor"):
        denied = partial(publish, run, tiered, role)
        refused(run, CODE.PERMISSION_DENIED, "PERMISSION_DENIED", denied)
    for junk in (b"", day_tariff.encode(), b"\x02junk", tiered.encode()[:-1]):
        refused(run, CODE.INVALID_ARGUMENT, "RECORD_MALFORMED", partial(publish, run, junk))
    publish(run, tiered)
    publish(run, demand)
    assert publish(run, tiered).receipt.ledger_index == 2  # idempotent
    clash = dataclasses.replace(tiered, fixed_charge=tiered.fixed_charge + 1)
    refused(run, CODE.ALREADY_EXISTS, "TARIFF_EXISTS", lambda: publish(run, clash))
    refused(run, CODE.NOT_FOUND, "UNKNOWN_TARIFF", lambda: get_tariff(run, "alice", "2024-05-04"))
    refused(run, CODE.PERMISSION_DENIED, "PERMISSION_DENIED",
            lambda: get_tariff(run, "bob", D1, "meter", "alice"))  # fmt: skip
    refused(run, CODE.INVALID_ARGUMENT, "INVALID_ARGUMENT", lambda: get_tariff(run, "alice", "May"))

    # bills
    submit_days(run, alice, D1, D2, D3)
    submit_days(run, bob, D1, D2, D3)
    bill = alice.cycle_bill(tiered)
    refused(run, CODE.PERMISSION_DENIED, "PERMISSION_DENIED", lambda: submit_bill(run, bill, "bob"))
    refused(run, CODE.PERMISSION_DENIED, "PERMISSION_DENIED",
            lambda: run.bills.SubmitCycleBill(
                bills_pb2.SubmitCycleBillRequest(cycle_bill=bill.encode()),
                metadata=utility, timeout=30))  # fmt: skip
    day_bill = alice.bill(D1, day_tariff)  # a version-1 bill in the version-2 field
    for junk in (b"", day_bill.encode(), bill.encode()[:-1], b"\x02" + bytes(40)):
        malformed = partial(submit_bill, run, junk, "alice")
        refused(run, CODE.INVALID_ARGUMENT, "RECORD_MALFORMED", malformed)
    wrong_plan = bob.cycle_bill(tiered)  # bob's plan is the demand plan, which lists him
    refused(run, CODE.NOT_FOUND, "UNKNOWN_TARIFF", lambda: submit_bill(run, wrong_plan))
    hashes = (bill.batch_hashes[0], bob.batches[D2].batch_hash(), bill.batch_hashes[2])
    swapped = dataclasses.replace(bill, batch_hashes=hashes)
    refused(run, CODE.NOT_FOUND, "UNKNOWN_BATCH", lambda: submit_bill(run, swapped))
    wrong_total = dataclasses.replace(bill, total=bill.total + 1)
    refused(run, CODE.INVALID_ARGUMENT, "PROOF_INVALID", lambda: submit_bill(run, wrong_total))
    garbage = dataclasses.replace(bill, proof=b"\x07" + bill.proof[1:])
    refused(run, CODE.INVALID_ARGUMENT, "PROOF_MALFORMED", lambda: submit_bill(run, garbage))
    received = submit_bill(run, bill)
    refused(run, CODE.ALREADY_EXISTS, "BILL_EXISTS", lambda: submit_bill(run, wrong_total))
    assert submit_bill(run, bill).receipt == received.receipt
    assert run.settlement.anomaly_reasons == []


def test_a_failed_cycle_bill_spends_the_failure_budget(
    tmp_path: Path, ledger_signer: CheckpointSigner, ledger_origin: str
) -> None:
    """SubmitCycleBill verifies a proof: a bad one spends the meter's budget, and then its
    next cycle bill is refused before any work (the utility's calls have no budget)."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    serving = contextlib.contextmanager(_serve)
    with serving(url, ledger_signer, ledger_origin, failure_burst=1) as run:
        meter = SimMeter("eve", HOURLY)
        register(run, meter)
        tiered, _ = tiered_and_demand("nobody")
        publish(run, tiered)
        submit_days(run, meter, D1, D2, D3)
        bill = meter.cycle_bill(tiered)
        wrong = dataclasses.replace(bill, total=bill.total - 1)
        refused(run, CODE.INVALID_ARGUMENT, "PROOF_INVALID", lambda: submit_bill(run, wrong))
        size = run.store.size()
        with pytest.raises(grpc.RpcError) as info:
            submit_bill(run, bill)  # even the honest bill waits for the budget to refill
        assert info.value.code() is CODE.RESOURCE_EXHAUSTED
        error = remote_error(info.value, "submit")
        assert error.reason == "FAILURE_BUDGET_EXHAUSTED"
        assert error.retry_after_s is not None
        assert run.store.size() == size
