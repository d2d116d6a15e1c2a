"""The cycle bill circuit (settlement.cycle_bills): completeness per tariff kind, binding to
its batches, tariff and context, and the tier lines against the tariff's own arithmetic."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from circuits.r1cs import R1CSStatement
from settlement.cycle_bills import (
    cycle_bill_statement,
    prove_cycle_bill,
    tier_gap_bits,
    tier_lines,
)
from tests.unit.settlement.cycle_bill_support import METER, Cycle, make_cycle, tariff
from zkgrid.errors import ProofFormatError, VerificationError

FIRST, LAST = "2026-11-01", "2026-11-02"
IMPORTS = [[900, 1200, 3000, 2500, 400, 0], [700, 1100, 2900, 4100, 350, 20]]
EXPORTS = [[0, 800, 1500, 200, 0, 0], [0, 600, 1800, 100, 0, 0]]

INCLINING = ((0, 100), (5_000, 150), (12_000, 400))
DECLINING = ((0, 400), (5_000, 150), (12_000, 100))
KINDS: dict[str, dict[str, Any]] = {
    "time-of-use only": {},
    "inclining tiers": {"tiers": INCLINING, "import_price": (0,) * 6},
    "declining tiers": {"tiers": DECLINING},
    "demand charge": {"demand_charge": 12_000_000},
    "tiers and demand": {"tiers": INCLINING, "demand_charge": 8_000_000, "fixed_charge": -5},
    "one flat tier": {"tiers": ((0, 300),)},
}


@pytest.fixture(scope="module")
def cycle() -> Cycle:
    return make_cycle(FIRST, LAST, IMPORTS, EXPORTS)


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_proven_cycle_bill_verifies_and_its_total_is_the_tariffs(
    kind: str, cycle: Cycle
) -> None:
    plan = tariff(FIRST, LAST, **KINDS[kind])
    bill = prove_cycle_bill(METER, plan, cycle.batches, cycle.openings)
    assert bill.total == plan.bill_breakdown(IMPORTS, EXPORTS).total
    assert bill.batch_hashes == tuple(b.batch_hash() for b in cycle.batches)
    R1CSStatement.verify_batch([cycle_bill_statement(bill, plan, cycle.batches)])


def test_the_demand_and_tier_parts_are_in_the_total(cycle: Cycle) -> None:
    plan = tariff(FIRST, LAST, **KINDS["tiers and demand"])
    breakdown = plan.bill_breakdown(IMPORTS, EXPORTS)
    assert breakdown.demand_wh == 4100
    assert breakdown.total_import == sum(map(sum, IMPORTS))
    assert breakdown.demand_charge == 4100 * plan.demand_rate_per_wh > 0
    assert breakdown.tier_charge > 0


def test_a_bill_does_not_verify_with_another_total(cycle: Cycle) -> None:
    plan = tariff(FIRST, LAST, **KINDS["tiers and demand"])
    bill = prove_cycle_bill(METER, plan, cycle.batches, cycle.openings)
    for delta in (-1, 1, -10_000):
        lowered = dataclasses.replace(bill, total=bill.total + delta)
        with pytest.raises(VerificationError):
            R1CSStatement.verify_batch([cycle_bill_statement(lowered, plan, cycle.batches)])


def test_a_bill_does_not_verify_against_other_batches_or_tariff(cycle: Cycle) -> None:
    plan = tariff(FIRST, LAST, **KINDS["demand charge"])
    bill = prove_cycle_bill(METER, plan, cycle.batches, cycle.openings)
    swapped = [cycle.batches[1], cycle.batches[0]]
    with pytest.raises(VerificationError):
        R1CSStatement.verify_batch([cycle_bill_statement(bill, plan, swapped)])
    other_plan = dataclasses.replace(plan, demand_charge=16_000_000)
    with pytest.raises(VerificationError):
        R1CSStatement.verify_batch([cycle_bill_statement(bill, other_plan, cycle.batches)])
    other_meter = dataclasses.replace(bill, meter_id="meter-8")  # another context
    with pytest.raises(VerificationError):
        R1CSStatement.verify_batch([cycle_bill_statement(other_meter, plan, cycle.batches)])
    other_readings = make_cycle(FIRST, LAST, EXPORTS, IMPORTS)  # same shape, other values
    with pytest.raises(VerificationError):
        R1CSStatement.verify_batch([cycle_bill_statement(bill, plan, other_readings.batches)])


def test_a_malformed_proof_is_a_format_error(cycle: Cycle) -> None:
    plan = tariff(FIRST, LAST)
    bill = prove_cycle_bill(METER, plan, cycle.batches, cycle.openings)
    with pytest.raises(ProofFormatError):
        cycle_bill_statement(dataclasses.replace(bill, proof=bill.proof[:-1]), plan, cycle.batches)


def test_bills_of_different_kinds_batch_and_the_bad_one_is_named(cycle: Cycle) -> None:
    statements = []
    for kind in ("inclining tiers", "declining tiers", "demand charge"):
        plan = tariff(FIRST, LAST, **KINDS[kind])
        bill = prove_cycle_bill(METER, plan, cycle.batches, cycle.openings)
        statements.append(cycle_bill_statement(bill, plan, cycle.batches))
    R1CSStatement.verify_batch(statements)
    plan = tariff(FIRST, LAST, **KINDS["declining tiers"])
    bill = prove_cycle_bill(METER, plan, cycle.batches, cycle.openings)
    statements[1] = cycle_bill_statement(
        dataclasses.replace(bill, total=bill.total - 1), plan, cycle.batches
    )
    assert R1CSStatement.find_invalid(statements) == [1]


@pytest.mark.parametrize("tiers", [INCLINING, DECLINING, ((0, 7),), ((0, 1), (1, 2))])
def test_tier_lines_are_the_tariffs_tier_cost_on_their_segments(
    tiers: tuple[tuple[int, int], ...],
) -> None:
    plan = tariff(FIRST, LAST, tiers=tiers)
    lines = tier_lines(tiers)
    for x in (0, 1, 4_999, 5_000, 5_001, 11_999, 12_000, 50_000, 10**9):
        values = [a + r * x for a, r in lines]
        expected = max(values) if plan.tier_kind == "inclining" else min(values)
        assert plan.tier_cost(x) == expected


def test_tier_gap_bits_cover_every_possible_import() -> None:
    plan = tariff(FIRST, LAST, tiers=INCLINING)
    bits = tier_gap_bits(plan)
    most = 2 * 6 * (2**32 - 1)
    lines = tier_lines(INCLINING)
    for x in (0, 12_000, most // 2, most):
        values = [a + r * x for a, r in lines]
        assert all(max(values) - v < 2**bits for v in values)
    assert bits < 128
