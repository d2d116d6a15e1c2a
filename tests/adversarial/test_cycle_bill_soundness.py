"""A cheating meter cannot prove a cycle bill below its true value.

Each cheat is forced through the prover's internals (a Prover that allocates a lie
where the honest gadget would allocate the truth, and ``_prove_unchecked``, which
skips the prover's own constraint check): the prover's check names a broken
constraint, and the proof never verifies against the honest verifier's circuit,
which has exactly the same shape (docs/notes/r1cs.md, "Soundness, and what a
cheating prover can gain").
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from circuits.r1cs import Prover, R1CSStatement, UnsatisfiedConstraintError, Verifier
from settlement.cycle_bills import build_cycle_bill
from settlement.records import CycleTariff, cycle_bill_proof_context
from tests.unit.settlement.cycle_bill_support import METER, Cycle, make_cycle, tariff
from zkgrid.errors import VerificationError
from zkp.pedersen import Commitment

FIRST, LAST = "2026-11-01", "2026-11-02"
IMPORTS = [[900, 1200, 3000, 2500, 400, 0], [700, 1100, 2900, 4100, 350, 20]]
EXPORTS = [[0, 800, 1500, 200, 0, 0], [0, 600, 1800, 100, 0, 0]]


class LyingProver(Prover):
    """Allocates ``lie(value)`` instead of ``value`` for the ``which``-th allocation."""

    def __init__(self, which: int, lie: Callable[[int], int]) -> None:
        super().__init__()
        self._which = which
        self._lie = lie
        self._seen = 0

    def allocate(self, value: int | None) -> object:  # type: ignore[override]
        if value is not None and self._seen == self._which:
            value = self._lie(value)
        self._seen += 1
        return super().allocate(value)


@pytest.fixture(scope="module")
def cycle() -> Cycle:
    return make_cycle(FIRST, LAST, IMPORTS, EXPORTS)


def _commitments(cycle: Cycle) -> tuple[list[Commitment], list[Commitment]]:
    imports: list[Commitment] = []
    exports: list[Commitment] = []
    for batch in cycle.batches:
        points = [Commitment.from_bytes(c) for c in batch.commitments]
        imports += points[0::2]
        exports += points[1::2]
    return imports, exports


def _cheat(cycle: Cycle, plan: CycleTariff, prover: Prover, total: int) -> None:
    """Build the bill circuit on ``prover`` with the cheat's ``total``; the check must name
    a broken constraint and the forced proof must not verify."""
    imp_c, exp_c = _commitments(cycle)
    values = [v for values, _ in cycle.openings for v in values]
    blindings = [g for _, blindings in cycle.openings for g in blindings]
    imp_open = zip(imp_c, values[0::2], blindings[0::2], strict=True)
    exp_open = zip(exp_c, values[1::2], blindings[1::2], strict=True)
    imports = [prover.commit(c, v, g) for c, v, g in imp_open]
    exports = [prover.commit(c, v, g) for c, v, g in exp_open]
    build_cycle_bill(prover, plan, imports, exports, total)
    with pytest.raises(UnsatisfiedConstraintError) as refused:
        prover.check()
    # the message names a constraint, never a value
    assert re.fullmatch(r"constraint \d+ of \d+ does not hold", str(refused.value))
    hashes = tuple(b.batch_hash() for b in cycle.batches)
    context = cycle_bill_proof_context(METER, FIRST, LAST, hashes, plan.tariff_hash())
    proof = prover._prove_unchecked(context)
    verifier = Verifier()
    v_imports = verifier.commit_many(imp_c)
    v_exports = verifier.commit_many(exp_c)
    build_cycle_bill(verifier, plan, v_imports, v_exports, total)
    assert verifier.digest() == prover.digest()  # the same circuit: only the values lie
    with pytest.raises(VerificationError):
        R1CSStatement.verify_batch([verifier.statement(proof, context)])


def test_a_total_below_the_true_bill_never_verifies(cycle: Cycle) -> None:
    plan = tariff(FIRST, LAST, tiers=((0, 100), (5_000, 150)), demand_charge=12_000_000)
    true_total = plan.bill_breakdown(IMPORTS, EXPORTS).total
    _cheat(cycle, plan, Prover(), true_total - 1)


def test_a_demand_claimed_below_an_interval_never_verifies(cycle: Cycle) -> None:
    plan = tariff(FIRST, LAST, demand_charge=12_000_000)
    breakdown = plan.bill_breakdown(IMPORTS, EXPORTS)
    # the demand gadget's allocation is the first: claim the second-highest interval
    second = sorted(v for day in IMPORTS for v in day)[-2]
    lowered = breakdown.total - (breakdown.demand_wh - second) * plan.demand_rate_per_wh
    _cheat(cycle, plan, LyingProver(0, lambda _v: second), lowered)


def test_a_declining_tier_filled_out_of_order_never_verifies(cycle: Cycle) -> None:
    tiers = ((0, 400), (5_000, 150), (12_000, 100))
    plan = tariff(FIRST, LAST, tiers=tiers)
    breakdown = plan.bill_breakdown(IMPORTS, EXPORTS)
    total_import = breakdown.total_import
    assert total_import > 12_000
    # cheapest tier first: everything at the last tier's price, below the true charge
    out_of_order = 100 * total_import
    assert out_of_order < breakdown.tier_charge
    lowered = breakdown.total - breakdown.tier_charge + out_of_order
    # allocations: the cycle import (0), then the tier charge (1)
    _cheat(cycle, plan, LyingProver(1, lambda _v: out_of_order), lowered)


def test_an_inclining_tier_charge_below_the_truth_never_verifies(cycle: Cycle) -> None:
    plan = tariff(FIRST, LAST, tiers=((0, 100), (5_000, 150), (12_000, 400)))
    breakdown = plan.bill_breakdown(IMPORTS, EXPORTS)
    flat = 100 * breakdown.total_import  # as if every Wh were in the first tier
    lowered = breakdown.total - breakdown.tier_charge + flat
    _cheat(cycle, plan, LyingProver(1, lambda _v: flat), lowered)


def test_a_cycle_import_below_the_readings_never_verifies(cycle: Cycle) -> None:
    plan = tariff(FIRST, LAST, tiers=((0, 100), (5_000, 150), (12_000, 400)))
    breakdown = plan.bill_breakdown(IMPORTS, EXPORTS)
    lower_import = breakdown.total_import - 7_000
    lowered = breakdown.total - breakdown.tier_charge + plan.tier_cost(lower_import)
    _cheat(cycle, plan, LyingProver(0, lambda _v: lower_import), lowered)
