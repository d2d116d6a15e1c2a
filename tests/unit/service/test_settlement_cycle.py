"""Records version 2 in the settlement domain (in-memory SQLite): cycle tariffs published and
looked up per meter, cycle bills verified against the ledger's batches (real circuit proofs)
and appended, every refusal with nothing appended, idempotence, statements that mix day and
cycle bills, and a replay of the log."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from circuits.r1cs import Prover
from service.errors import CycleIncomplete, ProofInvalid, ProofMalformed
from service.settlement import Receipt, Settlement
from service.storage import LedgerStore
from settlement.cycle_bills import build_cycle_bill
from settlement.records import CycleBill, CycleTariff, MeterRevocation
from tests.unit.service.settlement_support import (
    SIGNER,
    SimMeter,
    make_cycle_tariff,
    make_tariff,
    open_memory_store,
    registered,
)
from zkgrid.errors import ZkgridError
from zkp.group import Scalar
from zkp.pedersen import Commitment

D1, D2, D3, D4 = "2024-03-01", "2024-03-02", "2024-03-03", "2024-03-04"
CYCLE = (D1, D3)


@pytest.fixture
def store() -> Iterator[LedgerStore]:
    s = open_memory_store()
    yield s
    s.close()


@pytest.fixture
def settlement(store: LedgerStore) -> Iterator[Settlement]:
    with Settlement(store) as s:
        yield s


def assert_receipt(receipt: Receipt, record: Any) -> None:
    receipt.verify(SIGNER.verifier(), record.to_entry())


def refused(
    settlement: Settlement, reason: str, call: Callable[..., object], *args: Any, **kwargs: Any
) -> ZkgridError:
    """``call(*args, **kwargs)`` fails with ``reason`` and appends nothing."""
    size = settlement.store.size()
    with pytest.raises(ZkgridError) as info:
        call(*args, **kwargs)
    assert info.value.reason == reason, info.value
    assert settlement.store.size() == size
    return info.value


def with_batches(settlement: Settlement, meter: SimMeter, *periods: str) -> None:
    for period in periods:
        settlement.submit_readings(meter.batch(period), as_meter=meter.meter_id)


def proof_under_context(meter: SimMeter, tariff: CycleTariff, context: bytes) -> bytes:
    """The meter's honest circuit proof of ``tariff``'s bill, bound to ``context`` (as
    :func:`settlement.cycle_bills.prove_cycle_bill` does, but another context)."""
    prover = Prover()
    imports: list[tuple[Commitment, int, Scalar]] = []
    exports: list[tuple[Commitment, int, Scalar]] = []
    for period in tariff.periods:
        batch, op = meter.batches[period], meter.openings[period]
        points = Commitment.many_from_bytes(b"".join(batch.commitments))
        for k, (point, value, blinding) in enumerate(
            zip(points, op.values, op.blindings, strict=True)
        ):
            (imports if k % 2 == 0 else exports).append((point, value, blinding))
    imp = [prover.commit(c, v, g) for c, v, g in imports]
    exp = [prover.commit(c, v, g) for c, v, g in exports]
    build_cycle_bill(prover, tariff, imp, exp, meter.plaintext_cycle_bill(tariff))
    return prover.prove(context).to_bytes()


# --------------------------------------------------------------------------- the flow


def test_cycle_bills_of_two_plans_end_to_end(store: LedgerStore, settlement: Settlement) -> None:
    """A default plan with inclining tiers and a plan with a demand charge listing one meter:
    each meter's proven cycle bill is the tariff's bill of its readings, appended with a
    receipt, and listed once in its statement (also after a replay of the log)."""
    alice, bob = SimMeter("alice"), SimMeter("bob")
    registered(settlement, alice, bob)
    tiered = make_cycle_tariff(*CYCLE, plan="tiered", seed=2)
    demand = make_cycle_tariff(
        *CYCLE, plan="demand", meters=("bob",), tiers=(), demand_charge=8_000_000, seed=3
    )
    assert_receipt(settlement.publish_cycle_tariff(tiered), tiered)
    assert_receipt(settlement.publish_cycle_tariff(demand), demand)
    for meter in (alice, bob):
        with_batches(settlement, meter, D1, D2, D3)
    assert settlement.get_cycle_tariff("alice", D2)[0] == tiered
    assert settlement.get_cycle_tariff("bob", D2)[0] == demand

    bills = {"alice": alice.cycle_bill(tiered), "bob": bob.cycle_bill(demand)}
    plans = {"alice": tiered, "bob": demand}
    for meter in (alice, bob):
        bill = bills[meter.meter_id]
        assert bill.total == meter.plaintext_cycle_bill(plans[meter.meter_id])
        size = store.size()
        receipt = settlement.submit_cycle_bill(bill, as_meter=meter.meter_id)
        assert receipt.index == size
        assert_receipt(receipt, bill)
    assert settlement.verifier.cycle_bill_proofs.batch_sizes  # verified in the cycle lane
    # the breakdown really reaches the tiers and the demand charge
    values = [alice.openings[p].values for p in tiered.periods]
    breakdown = tiered.bill_breakdown([v[0::2] for v in values], [v[1::2] for v in values])
    assert all(charge > 0 for charge in breakdown.tier_charges)
    values = [bob.openings[p].values for p in demand.periods]
    assert demand.bill_breakdown([v[0::2] for v in values], [v[1::2] for v in values]).demand_charge

    for meter in (alice, bob):
        statement = settlement.get_statement(meter.meter_id)
        [line] = statement.lines
        assert line.bill == bills[meter.meter_id]
        assert (line.period, line.periods) == (D1, (D1, D2, D3))
        assert line.currency == "EUR"
        assert statement.total == line.total == bills[meter.meter_id].total
        assert_receipt(line.receipt, line.bill)
        for period in (D1, D2, D3):  # the cycle bill is the bill of every period of its cycle
            assert settlement.get_statement(meter.meter_id, period).lines == statement.lines
        assert settlement.get_statement(meter.meter_id, D4).lines == ()
    assert settlement.anomalies == []
    with Settlement(store) as replica:  # the projection keeps version-2 bills on replay
        assert replica.get_statement("bob") == settlement.get_statement("bob")
        assert replica.get_cycle_tariff("alice", D3) == settlement.get_cycle_tariff("alice", D3)
        assert replica.anomalies == []


def test_a_statement_mixes_day_and_cycle_bills_by_period(settlement: Settlement) -> None:
    meter = SimMeter("m")
    registered(settlement, meter)
    day = make_tariff(D4, seed=4)  # a day's tariff after the cycle
    cycle = make_cycle_tariff(*CYCLE, currency="CHF")
    settlement.publish_tariff(day)
    settlement.publish_cycle_tariff(cycle)
    with_batches(settlement, meter, D4, D1, D2, D3)  # periods need not come in date order
    settlement.submit_bill(meter.bill(D4, day))
    settlement.submit_cycle_bill(meter.cycle_bill(cycle))
    statement = settlement.get_statement("m")
    assert [line.period for line in statement.lines] == [D1, D4]
    assert [line.currency for line in statement.lines] == ["CHF", "EUR"]
    assert isinstance(statement.lines[0].bill, CycleBill)
    expected = [meter.plaintext_cycle_bill(cycle), meter.plaintext_bill(D4, day)]
    assert [line.total for line in statement.lines] == expected
    assert statement.total == sum(expected)
    assert [line.period for line in settlement.get_statement("m", D2).lines] == [D1]
    assert [line.period for line in settlement.get_statement("m", D4).lines] == [D4]


def test_identical_resubmissions_return_the_original_receipt(settlement: Settlement) -> None:
    meter = SimMeter("m")
    registered(settlement, meter)
    tariff = make_cycle_tariff(*CYCLE)
    t_receipt = settlement.publish_cycle_tariff(tariff)
    with_batches(settlement, meter, D1, D2, D3)
    bill = meter.cycle_bill(tariff)
    first = settlement.submit_cycle_bill(bill, as_meter="m")
    size = settlement.store.size()
    assert settlement.publish_cycle_tariff(tariff) == t_receipt
    assert settlement.submit_cycle_bill(bill, as_meter="m") == first
    settlement.revoke_meter("m", "decommissioned")  # still idempotent after a revocation
    assert settlement.submit_cycle_bill(bill) == first
    assert settlement.store.size() == size + 1


# --------------------------------------------------------------------------- cycle tariffs


def test_which_cycle_tariff_applies_to_a_meter(settlement: Settlement) -> None:
    default = make_cycle_tariff(*CYCLE, plan="default")
    listing = make_cycle_tariff(D2, D4, plan="business", meters=("biz", "shop"))
    receipts = {
        "default": settlement.publish_cycle_tariff(default),
        "business": settlement.publish_cycle_tariff(listing),
    }
    tariff, receipt = settlement.get_cycle_tariff("home", D2)
    assert (tariff, receipt) == (default, receipts["default"])
    assert_receipt(receipt, tariff)
    assert settlement.get_cycle_tariff("biz", D4)[0] == listing  # no registration needed
    assert settlement.get_cycle_tariff("shop", D3, as_meter="shop")[0] == listing
    refused(settlement, "UNKNOWN_TARIFF", settlement.get_cycle_tariff, "home", D4)
    refused(settlement, "UNKNOWN_TARIFF", settlement.get_cycle_tariff, "home", "2024-02-29")
    # R21: the default plan does not apply to a meter listed by a plan of an overlapping cycle,
    # even on a day that plan's cycle does not contain
    err = refused(settlement, "UNKNOWN_TARIFF", settlement.get_cycle_tariff, "biz", D1)
    assert "biz" in str(err)
    lookup = settlement.get_cycle_tariff
    refused(settlement, "PERMISSION_DENIED", lookup, "biz", D2, as_meter="home")
    refused(settlement, "INVALID_ARGUMENT", settlement.get_cycle_tariff, "bad id", D2)
    refused(settlement, "INVALID_ARGUMENT", settlement.get_cycle_tariff, "home", "2024-3-2")


def test_cycle_tariff_refusals(settlement: Settlement) -> None:
    settlement.publish_cycle_tariff(make_cycle_tariff(*CYCLE, plan="default"))
    settlement.publish_cycle_tariff(make_cycle_tariff(*CYCLE, plan="gold", meters=("g1",)))
    clash = make_cycle_tariff(D3, D4, plan="gold", meters=("g2",))  # R16: same plan, overlaps
    refused(settlement, "TARIFF_EXISTS", settlement.publish_cycle_tariff, clash)
    other_default = make_cycle_tariff(D2, D2, plan="other")  # R17: a second default plan
    refused(settlement, "TARIFF_EXISTS", settlement.publish_cycle_tariff, other_default)
    relisted = make_cycle_tariff(D3, D4, plan="silver", meters=("g1",))  # R17: a listed meter
    refused(settlement, "TARIFF_EXISTS", settlement.publish_cycle_tariff, relisted)
    day = make_tariff(D1)
    refused(settlement, "INVALID_ARGUMENT", settlement.publish_cycle_tariff, day)
    # a day's tariff and a cycle tariff do not interact
    assert_receipt(settlement.publish_tariff(day), day)


# --------------------------------------------------------------------------- cycle bill refusals


def test_cycle_incomplete_names_the_missing_period(settlement: Settlement) -> None:
    meter = SimMeter("m")
    registered(settlement, meter)
    tariff = make_cycle_tariff(*CYCLE)
    settlement.publish_cycle_tariff(tariff)
    with_batches(settlement, meter, D1, D3)  # no batch for D2 (the chain does not care)
    cheat = SimMeter("m", key=meter.key)
    cheat.batch(D2)  # the meter has readings for D2 but never submitted them
    meter.batches[D2], meter.openings[D2] = cheat.batches[D2], cheat.openings[D2]
    bill = meter.cycle_bill(tariff)
    err = refused(settlement, "CYCLE_INCOMPLETE", settlement.submit_cycle_bill, bill)
    assert isinstance(err, CycleIncomplete)
    assert D2 in str(err)
    assert f"{D1}..{D3}" in str(err)


def test_state_rules_before_the_proof(settlement: Settlement) -> None:
    alice, bob = SimMeter("alice"), SimMeter("bob")
    registered(settlement, alice, bob)
    tariff = make_cycle_tariff(*CYCLE)
    settlement.publish_cycle_tariff(tariff)
    with_batches(settlement, alice, D1, D2, D3)
    bill = alice.cycle_bill(tariff)

    refused(settlement, "PERMISSION_DENIED", settlement.submit_cycle_bill, bill, as_meter="bob")
    refused(settlement, "INVALID_ARGUMENT", settlement.submit_cycle_bill, alice.registration())
    stranger = dataclasses.replace(bill, meter_id="carol")
    refused(settlement, "UNKNOWN_METER", settlement.submit_cycle_bill, stranger)
    # R20: a hash that is not the meter's batch of its period
    hashes = list(bill.batch_hashes)
    hashes[1] = alice.batches[D3].batch_hash()
    swapped = dataclasses.replace(bill, batch_hashes=tuple(hashes))
    refused(settlement, "UNKNOWN_BATCH", settlement.submit_cycle_bill, swapped)
    # R21: a tariff that was never published (a proof made under it does not help)
    unpublished = make_cycle_tariff(*CYCLE, plan="secret", seed=9)
    ghost = alice.cycle_bill(unpublished)
    refused(settlement, "UNKNOWN_TARIFF", settlement.submit_cycle_bill, ghost)
    # R22: a published tariff of the cycle with another interval than the meter's
    hourly = make_cycle_tariff(*CYCLE, 60, plan="hourly", meters=("bob",))
    settlement.publish_cycle_tariff(hourly)
    with_batches(settlement, bob, D1, D2, D3)
    wrong_grid = dataclasses.replace(
        bob.cycle_bill(tariff), tariff_hash=hourly.tariff_hash()
    )  # bob's plan is the hourly one; his meter reports every 240 minutes
    refused(settlement, "INTERVALS_MISMATCH", settlement.submit_cycle_bill, wrong_grid)

    assert_receipt(settlement.submit_cycle_bill(bill), bill)
    # R18: another bill of the billed cycle, day or cycle
    other = dataclasses.replace(bill, total=bill.total + 1)
    refused(settlement, "BILL_EXISTS", settlement.submit_cycle_bill, other)
    day = make_tariff(D2)
    settlement.publish_tariff(day)
    refused(settlement, "BILL_EXISTS", settlement.submit_bill, alice.bill(D2, day))
    settlement.revoke_meter("bob", "stolen")
    refused(settlement, "METER_REVOKED", settlement.submit_cycle_bill, wrong_grid)


def test_a_day_bill_in_the_cycle_refuses_the_cycle_bill(settlement: Settlement) -> None:
    meter = SimMeter("m")
    registered(settlement, meter)
    cycle = make_cycle_tariff(*CYCLE)
    day = make_tariff(D3)
    settlement.publish_cycle_tariff(cycle)
    settlement.publish_tariff(day)
    with_batches(settlement, meter, D1, D2, D3)
    settlement.submit_bill(meter.bill(D3, day))
    err = refused(settlement, "BILL_EXISTS", settlement.submit_cycle_bill, meter.cycle_bill(cycle))
    assert D3 in str(err)


def test_proof_refusals(settlement: Settlement) -> None:
    meter, other = SimMeter("m"), SimMeter("n")
    registered(settlement, meter, other)
    tariff = make_cycle_tariff(*CYCLE, demand_charge=4_000_000)
    settlement.publish_cycle_tariff(tariff)
    with_batches(settlement, meter, D1, D2, D3)
    with_batches(settlement, other, D1, D2, D3)
    bill = meter.cycle_bill(tariff)
    verifier = settlement.verifier

    low = dataclasses.replace(bill, total=bill.total - 1)  # a wrong total
    err = refused(settlement, "PROOF_INVALID", settlement.submit_cycle_bill, low)
    assert isinstance(err, ProofInvalid)
    assert verifier.is_suspect("m")  # from now on its proofs are verified alone
    high = dataclasses.replace(bill, total=bill.total + 10**6)
    refused(settlement, "PROOF_INVALID", settlement.submit_cycle_bill, high)
    assert list(verifier.suspect_cycle_bill_proofs.batch_sizes) == [1]
    # the honest proof bound to another context: another meter's, or no context at all
    for context in (dataclasses.replace(bill, meter_id="n").proof_context(), b""):
        forged = dataclasses.replace(bill, proof=proof_under_context(meter, tariff, context))
        refused(settlement, "PROOF_INVALID", settlement.submit_cycle_bill, forged)
    # another meter's valid proof over its own batches, in this meter's bill
    borrowed = dataclasses.replace(bill, proof=other.cycle_bill(tariff).proof)
    refused(settlement, "PROOF_INVALID", settlement.submit_cycle_bill, borrowed)
    not_a_point = b"\x07" + bill.proof[1:]  # the right size, its first point's prefix wrong
    for garbage in (b"\x00" * 64, b"\x02" * 600, bill.proof[:-32], bill.proof + b"\x00" * 66,
                    not_a_point):  # fmt: skip
        junk = dataclasses.replace(bill, proof=garbage)
        err = refused(settlement, "PROOF_MALFORMED", settlement.submit_cycle_bill, junk)
        assert isinstance(err, ProofMalformed)
    assert not verifier.is_suspect("n")
    assert_receipt(settlement.submit_cycle_bill(bill), bill)  # the honest bill still goes in
    assert settlement.get_statement("m").total == meter.plaintext_cycle_bill(tariff)


def test_the_refused_records_never_reach_the_ledger(store: LedgerStore) -> None:
    """Nothing of a refused cycle bill is appended; the accepted entries replay cleanly."""
    meter = SimMeter("m")
    with Settlement(store) as settlement:
        registered(settlement, meter)
        tariff = make_cycle_tariff(*CYCLE)
        settlement.publish_cycle_tariff(tariff)
        with_batches(settlement, meter, D1, D2, D3)
        bill = meter.cycle_bill(tariff)
        with pytest.raises(ProofInvalid):
            settlement.submit_cycle_bill(dataclasses.replace(bill, total=0))
        settlement.revoke_meter("m", "moved")
        with pytest.raises(ZkgridError):
            settlement.submit_cycle_bill(bill)
    kinds = [e.kind.name for e in store.entries(0)]
    assert kinds == ["METER_REGISTRATION", "TARIFF", *["READING_BATCH"] * 3, "METER_REVOCATION"]
    assert MeterRevocation.decode(next(iter(store.entries(5))).payload).reason == "moved"
