"""The bill of a billing cycle as a circuit (docs/design/circuits.md; docs/notes/r1cs.md).

Written once: the meter client proves with it (:func:`prove_cycle_bill`), the
service and the auditor verify with it (:func:`cycle_bill_statement`), so the
rule a bill is judged by is the rule it was proven under.

The statement, for a :class:`~settlement.records.CycleTariff` over the periods
``d = 1..D`` of the cycle with ``T`` intervals each, the committed readings
``imp_{d,t}``, ``exp_{d,t}`` of the meter's batches (the ledger's commitments,
used as they are) and the public ``total``::

    total = fixed + Σ_{d,t} p_t·imp_{d,t} - Σ_{d,t} c_t·exp_{d,t}
            + tiers(I) + demand_rate·D_max                            (bill)
    I = Σ_{d,t} imp_{d,t}                     (the cycle's import; one allocated variable)
    tiers(I) = Σ_i r_i·clamp(I - s_i, 0, s_{i+1} - s_i)
             = max_i (a_i + r_i·I)   (inclining: convex_piecewise)
             = min_i (a_i + r_i·I)   (declining: concave_piecewise)
    D_max = max_{d,t} imp_{d,t}                (max_of, 32-bit gaps)

where ``a_i = tiers(s_i) - r_i·s_i`` are the lines of the tier segments. Every
reading is below 2^32 (its batch's range proof), so the gadgets' integer
arguments hold (docs/notes/r1cs.md, "Soundness"): the proven total is exactly
the tariff's bill of the committed readings, never below it.

Who learns what: the verifier learns the tariff, the commitments and ``total``;
not ``I``, not ``D_max``, not which tier was reached.
"""

from __future__ import annotations

from collections.abc import Sequence

from circuits.gadgets import concave_piecewise, convex_piecewise, max_of
from circuits.r1cs import (
    ConstraintSystem,
    Kind,
    LinearCombination,
    Prover,
    R1CSProof,
    R1CSStatement,
    Variable,
    Verifier,
)
from settlement.records import (
    MAX_READING,
    RANGE_PROOF_BITS,
    CycleBill,
    CycleTariff,
    ReadingBatch,
    cycle_bill_proof_context,
)
from zkgrid.errors import InvalidArgumentError
from zkp.group import Scalar
from zkp.pedersen import Commitment

__all__ = [
    "DEMAND_BITS",
    "TIER_BITS",
    "build_cycle_bill",
    "cycle_bill_statement",
    "prove_cycle_bill",
    "statement_from_commitments",
    "tier_gap_bits",
    "tier_lines",
]

#: Width of the demand gadget's gaps ``D_max - imp``: readings are below 2^32.
DEMAND_BITS = RANGE_PROOF_BITS
#: Widest gap the tier gadget may need between segment lines (every line is below 2^127).
TIER_BITS = 128


def tier_lines(tiers: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """The line ``(a_i, r_i)`` of each tier's segment: ``a_i + r_i·I`` equals the tiered
    charge for ``I`` inside tier ``i`` (``a_i = charge(s_i) - r_i·s_i``)."""
    lines = []
    charge_at_start = 0
    for i, (start, price) in enumerate(tiers):
        if i:
            previous_start, previous_price = tiers[i - 1]
            charge_at_start += previous_price * (start - previous_start)
        lines.append((charge_at_start - price * start, price))
    return lines


def tier_gap_bits(tariff: CycleTariff) -> int:
    """Bits of the tier gadget's gaps ``|line_i(I) - line_j(I)|`` for every possible cycle
    import ``0 <= I <= I_max`` (``I_max``: every reading of the cycle at 2^32 - 1): a gap
    is linear in ``I``, so its largest magnitude is at ``0`` or ``I_max``. A public
    function of the tariff, so prover and verifier agree; complete for every honest
    ``I``, and at most :data:`TIER_BITS`, so the gadget's soundness argument holds."""
    lines = tier_lines(tariff.tiers)
    most = len(tariff.periods) * tariff.intervals * MAX_READING
    widest = max(
        abs((a_i + r_i * x) - (a_j + r_j * x))
        for a_i, r_i in lines
        for a_j, r_j in lines
        for x in (0, most)
    )
    bits = max(1, widest.bit_length())
    if bits > TIER_BITS:  # pragma: no cover - the record's bounds keep lines below 2^127
        raise InvalidArgumentError("the tariff's tier lines are too far apart for the gadget")
    return bits


def build_cycle_bill(
    cs: ConstraintSystem,
    tariff: CycleTariff,
    imports: Sequence[Variable],
    exports: Sequence[Variable],
    total: int,
) -> None:
    """The constraints of (bill) on ``cs``: ``imports``/``exports`` are the committed
    readings in cycle order (period by period, interval by interval)."""
    count = len(tariff.periods) * tariff.intervals
    if len(imports) != count or len(exports) != count:
        raise InvalidArgumentError(f"the cycle has {count} intervals of import and of export")
    T = tariff.intervals
    terms: list[tuple[int, int, int]] = [(Kind.ONE, 0, tariff.fixed_charge - total)]
    for k, (imp, exp) in enumerate(zip(imports, exports, strict=True)):
        price, credit = tariff.import_price[k % T], tariff.export_credit[k % T]
        if price:
            terms.append((imp.kind, imp.index, price))
        if credit:
            terms.append((exp.kind, exp.index, -credit))
    bill = LinearCombination(terms)
    if tariff.tiers:
        total_import = LinearCombination([(v.kind, v.index, 1) for v in imports])
        value = cs.value(total_import)
        cycle_import = cs.allocate(value)
        cs.constrain(cycle_import - total_import)
        lines = tier_lines(tariff.tiers)
        gadget = concave_piecewise if tariff.tier_kind == "declining" else convex_piecewise
        bill = bill + gadget(cs, cycle_import, lines, tier_gap_bits(tariff))
    rate = tariff.demand_rate_per_wh
    if rate:
        bill = bill + rate * max_of(cs, imports, DEMAND_BITS)
    cs.constrain(bill)


def _commitments(batches: Sequence[ReadingBatch]) -> tuple[list[Commitment], list[Commitment]]:
    imports: list[Commitment] = []
    exports: list[Commitment] = []
    for batch in batches:
        points = Commitment.many_from_bytes(b"".join(batch.commitments))
        imports += points[0::2]
        exports += points[1::2]
    return imports, exports


def cycle_bill_statement(
    bill: CycleBill, tariff: CycleTariff, batches: Sequence[ReadingBatch]
) -> R1CSStatement:
    """The statement that ``bill`` is ``tariff``'s bill of ``batches`` (the cycle's, in
    order), for :meth:`~circuits.r1cs.R1CSStatement.verify_batch` and ``find_invalid``.

    Raises :class:`~zkgrid.errors.ProofFormatError` for a proof or a commitment that
    does not parse; the caller has checked (rules) that the batches and the tariff are
    the ones the bill names.
    """
    proof = R1CSProof.from_bytes(bill.proof)
    imports, exports = _commitments(batches)
    return statement_from_commitments(
        tariff, imports, exports, bill.total, proof, bill.proof_context()
    )


def statement_from_commitments(
    tariff: CycleTariff,
    imports: Sequence[Commitment],
    exports: Sequence[Commitment],
    total: int,
    proof: R1CSProof,
    context: bytes,
) -> R1CSStatement:
    """:func:`cycle_bill_statement` from the cycle's commitments (every import of the
    cycle in order, then every export) rather than its batch records: for a verifier that
    keeps commitments only (the auditor resuming from its saved state)."""
    verifier = Verifier()  # inputs: every import of the cycle, then every export (as the prover)
    build_cycle_bill(
        verifier, tariff, verifier.commit_many(imports), verifier.commit_many(exports), total
    )
    return verifier.statement(proof, context)


def prove_cycle_bill(
    meter_id: str,
    tariff: CycleTariff,
    batches: Sequence[ReadingBatch],
    openings: Sequence[tuple[Sequence[int], Sequence[Scalar]]],
) -> CycleBill:
    """The meter's proven bill of ``tariff``'s cycle from its ``batches`` (one per period,
    in order) and their openings (the values and blindings of each batch's commitments,
    in commitment order: import_0, export_0, import_1, ...)."""
    if len(batches) != len(tariff.periods) or len(openings) != len(batches):
        raise InvalidArgumentError("one batch and one opening per period of the cycle")
    imports_v: list[list[int]] = []
    exports_v: list[list[int]] = []
    imp_open: list[tuple[int, Scalar]] = []
    exp_open: list[tuple[int, Scalar]] = []
    for values, blindings in openings:
        imports_v.append(list(values[0::2]))
        exports_v.append(list(values[1::2]))
        imp_open += list(zip(values[0::2], blindings[0::2], strict=True))
        exp_open += list(zip(values[1::2], blindings[1::2], strict=True))
    total = tariff.bill_breakdown(imports_v, exports_v).total
    commitments_imp, commitments_exp = _commitments(batches)
    prover = Prover()
    imports = [prover.commit(c, v, g) for c, (v, g) in zip(commitments_imp, imp_open, strict=True)]
    exports = [prover.commit(c, v, g) for c, (v, g) in zip(commitments_exp, exp_open, strict=True)]
    build_cycle_bill(prover, tariff, imports, exports, total)
    hashes = tuple(batch.batch_hash() for batch in batches)
    context = cycle_bill_proof_context(
        meter_id, tariff.first_period, tariff.last_period, hashes, tariff.tariff_hash()
    )
    proof = prover.prove(context)
    return CycleBill(
        meter_id=meter_id,
        first_period=tariff.first_period,
        last_period=tariff.last_period,
        batch_hashes=hashes,
        tariff_hash=tariff.tariff_hash(),
        total=total,
        proof=proof.to_bytes(),
    )
