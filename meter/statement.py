"""The prosumer's own view of a bill: its breakdown, recomputed locally and checked.

The ledger holds a bill's total and a proof; the meter's opening store holds the
readings behind it. :func:`breakdown` splits a period's bill into the fixed charge,
the energy charge (imports) and the feed-in credit (exports), each obtained from the
settlement's one bill rule, :meth:`settlement.records.Tariff.bill_total`, applied to
part of the readings (the rule is linear, so the parts add up to the whole; this is
checked, not assumed). :func:`check_bill` compares the ledger's bill with what the
local openings and the published tariff give, and names every disagreement with a
:class:`~zkgrid.errors.Reason`:

* ``UNKNOWN_BATCH``: the ledger's bill names another batch than the one this meter
  stored for the period;
* ``UNKNOWN_TARIFF``: it names another tariff than the period's published one;
* ``PROOF_INVALID``: its total differs from the local one and its proof does not
  verify against this meter's commitments (the ledger holds a bill it should not);
* ``OPENING_STORE``: its total differs and its proof verifies: the local openings do
  not open the period's commitments (restore the opening store from a backup); also
  when the store holds no openings for a billed period.

A billing cycle's bill (records version 2, :class:`~settlement.records.CycleBill`) is
recomputed the same way over the openings of every period of its cycle under the plan
(:class:`~settlement.records.CycleTariff`) the service names for the meter:
:func:`check_cycle_bill` gives the same reasons (``UNKNOWN_BATCH`` naming the period,
``UNKNOWN_TARIFF``, ``PROOF_INVALID`` with the circuit proof checked against this
meter's commitments, ``OPENING_STORE``), and its breakdown
(:class:`~settlement.records.CycleBillBreakdown`, the settlement's own
:meth:`~settlement.records.CycleTariff.bill_breakdown`) has the kWh and charge of each
tier and the highest interval import with its demand charge: things only the
prosumer can know (the ledger's proof hides them).

Everything here is local: the readings are read from the opening store and shown to
their owner only; nothing is sent (the service is asked only for the statement and
the tariff, which it publishes).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

from meter.client import CycleStatementLine, MeterClient, StatementLine, VerifiedReceipt
from meter.openings import StoredBatch
from meter.render import receipt_status
from settlement.records import (
    Bill,
    CycleBill,
    CycleBillBreakdown,
    CycleTariff,
    ReadingBatch,
    Tariff,
    bill_coefficients,
)
from zkgrid._internal.rpc import RemoteError
from zkgrid.errors import InvalidArgumentError, Reason, VerificationError, ZkgridError
from zkp.pedersen import Commitment, commit, linear_combination
from zkp.sigma import LinearCombinationProof

__all__ = [
    "Breakdown",
    "CycleDetailLine",
    "DetailLine",
    "DetailedStatement",
    "Violation",
    "breakdown",
    "check_bill",
    "check_cycle_bill",
    "cycle_breakdown",
    "detailed_statement",
    "openings_match_commitments",
    "period_detail",
    "plain_statement",
    "receipt_status",
]


@dataclass(frozen=True)
class Violation:
    """One disagreement between the ledger's bill and the local view (module docstring)."""

    period: str
    reason: Reason
    detail: str

    def to_json(self) -> dict[str, object]:
        return {"period": self.period, "reason": str(self.reason), "detail": self.detail}


@dataclass(frozen=True)
class Breakdown:
    """A bill's parts in micro-currency (``feed_in_credit`` is subtracted) and the energy."""

    currency: str
    fixed_charge: int
    energy_charge: int
    feed_in_credit: int
    total: int
    import_wh: int
    export_wh: int


def breakdown(tariff: Tariff, imports: Sequence[int], exports: Sequence[int]) -> Breakdown:
    """The bill of ``imports``/``exports`` under ``tariff``, in parts.

    Each part is the settlement's rule (:meth:`Tariff.bill_total`) applied to part of
    the readings: the fixed charge is the bill of no energy, the energy charge what the
    imports add to it, the feed-in credit what the exports take off. The parts must add
    up to the rule's total of all the readings (:class:`VerificationError` otherwise).
    """
    zeros = (0,) * tariff.intervals
    fixed = tariff.bill_total(zeros, zeros)
    energy = tariff.bill_total(imports, zeros) - fixed
    credit = fixed - tariff.bill_total(zeros, exports)
    total = tariff.bill_total(imports, exports)
    if fixed + energy - credit != total:  # pragma: no cover - the rule is linear
        raise VerificationError("the bill's parts do not add up to its total")
    return Breakdown(
        currency=tariff.currency,
        fixed_charge=fixed,
        energy_charge=energy,
        feed_in_credit=credit,
        total=total,
        import_wh=sum(imports),
        export_wh=sum(exports),
    )


def openings_match_commitments(stored: StoredBatch) -> bool:
    """Whether the stored values and blindings open the stored batch's commitments.

    One random linear combination (128-bit weights): ``sum w_i*C_i`` against
    ``commit(sum w_i*v_i, sum w_i*r_i)``, one multi-scalar multiplication however many
    values; a wrong opening passes with probability about 2^-128.
    """
    batch = ReadingBatch.decode(stored.batch)
    if len(stored.values) != len(batch.commitments) or len(stored.blindings) != len(
        batch.commitments
    ):
        return False
    commitments = [Commitment.from_bytes(c) for c in batch.commitments]
    weights = [secrets.randbits(128) | 1 for _ in commitments]
    combined = linear_combination(weights, commitments)
    value = sum(w * v for w, v in zip(weights, stored.values, strict=True))
    blinding = sum(w * r for w, r in zip(weights, stored.blindings, strict=True))
    return combined == commit(value, blinding)


def _ledger_proof_holds(bill: Bill, tariff: Tariff, stored: StoredBatch) -> bool:
    batch = ReadingBatch.decode(stored.batch)
    try:
        proof = LinearCombinationProof.from_bytes(bill.proof)
        proof.verify(
            bill_coefficients(tariff),
            [Commitment.from_bytes(c) for c in batch.commitments],
            bill.total,
            constant=tariff.fixed_charge,
            context=bill.proof_context(),
        )
    except ZkgridError:
        return False
    return True


def check_bill(bill: Bill, tariff: Tariff, stored: StoredBatch | None) -> list[Violation]:
    """Every way the ledger's ``bill`` disagrees with the local openings and ``tariff``."""
    period = bill.period
    if stored is None:
        return [
            Violation(
                period,
                Reason.OPENING_STORE,
                "the local opening store holds no readings for this billed period: the bill"
                " cannot be recomputed (restore the store with 'zkgrid meter restore')",
            )
        ]
    found: list[Violation] = []
    if bill.batch_hash != stored.batch_hash:
        found.append(
            Violation(
                period,
                Reason.UNKNOWN_BATCH,
                f"the ledger's bill names batch {bill.batch_hash.hex()[:16]}..., this meter"
                f" stored batch {stored.batch_hash.hex()[:16]}... for the period",
            )
        )
    if bill.tariff_hash != tariff.tariff_hash():
        found.append(
            Violation(
                period,
                Reason.UNKNOWN_TARIFF,
                f"the ledger's bill names tariff {bill.tariff_hash.hex()[:16]}..., the"
                f" published tariff is {tariff.tariff_hash().hex()[:16]}...",
            )
        )
    if found:
        return found
    local = breakdown(tariff, stored.imports, stored.exports).total
    if local == bill.total:
        return []
    difference = f"the ledger's bill is {bill.total}, the local openings give {local} (micro-units)"
    if not _ledger_proof_holds(bill, tariff, stored):
        return [
            Violation(
                period,
                Reason.PROOF_INVALID,
                f"{difference}; its proof does not verify against this meter's commitments",
            )
        ]
    return [
        Violation(
            period,
            Reason.OPENING_STORE,
            f"{difference}; the ledger's proof verifies, so the local openings are not the"
            " committed readings (restore the opening store from a backup)",
        )
    ]


@dataclass(frozen=True)
class DetailLine:
    """One period: the ledger's bill (if any), the tariff, the local batch and the check."""

    period: str
    tariff: Tariff | None
    tariff_receipt: VerifiedReceipt | None
    stored: StoredBatch | None = field(repr=False)
    line: StatementLine | None
    breakdown: Breakdown | None
    violations: tuple[Violation, ...]

    def billed(self) -> tuple[Bill, VerifiedReceipt]:
        """The ledger's bill and its receipt (a statement's lines all have one)."""
        if self.line is None:
            raise InvalidArgumentError(f"the ledger holds no bill for {self.period}")
        return self.line.bill, self.line.receipt

    @property
    def bill(self) -> Bill | None:
        return None if self.line is None else self.line.bill

    @property
    def receipt(self) -> VerifiedReceipt | None:
        return None if self.line is None else self.line.receipt


@dataclass(frozen=True)
class CycleDetailLine:
    """One billing cycle: the ledger's cycle bill, the plan the service names for it, the
    breakdown from the local openings (``None`` when not recomputed: without ``--detail``,
    or when a period's openings or the plan are missing) and the check."""

    line: CycleStatementLine
    tariff: CycleTariff | None
    tariff_receipt: VerifiedReceipt | None
    breakdown: CycleBillBreakdown | None
    violations: tuple[Violation, ...]
    #: The cycle's total export (Wh) from the local openings, with the breakdown.
    export_wh: int | None = None

    @property
    def bill(self) -> CycleBill:
        return self.line.bill

    @property
    def receipt(self) -> VerifiedReceipt:
        return self.line.receipt

    @property
    def cycle(self) -> str:
        return self.line.cycle

    @property
    def currency(self) -> str:
        return self.tariff.currency if self.tariff is not None else self.line.currency


@dataclass(frozen=True)
class DetailedStatement:
    meter_id: str
    lines: tuple[DetailLine, ...]
    cycle_lines: tuple[CycleDetailLine, ...] = ()

    @property
    def violations(self) -> tuple[Violation, ...]:
        return tuple(v for line in self.lines for v in line.violations) + tuple(
            v for cycle in self.cycle_lines for v in cycle.violations
        )

    def totals(self) -> dict[str, int]:
        """The ledger's bills (a day's and the cycles') summed per currency."""
        out: dict[str, int] = {}
        for line in self.lines:
            if line.bill is not None:
                currency = "" if line.tariff is None else line.tariff.currency
                out[currency] = out.get(currency, 0) + line.bill.total
        for cycle in self.cycle_lines:
            out[cycle.currency] = out.get(cycle.currency, 0) + cycle.bill.total
        return out


def _published_tariff(client: MeterClient, period: str) -> tuple[Tariff, VerifiedReceipt] | None:
    try:
        return client.tariff(period)
    except RemoteError as exc:
        if exc.reason in (Reason.UNKNOWN_TARIFF, Reason.NOT_FOUND):
            return None
        raise


def _detail(client: MeterClient, period: str, line: StatementLine | None) -> DetailLine:
    stored = client.store.batch(period)
    published = _published_tariff(client, period)
    tariff, tariff_receipt = published if published is not None else (None, None)
    parts = None
    if tariff is not None and stored is not None:
        if tariff.intervals != len(stored.imports):
            raise InvalidArgumentError(
                f"the tariff of {period} has {tariff.intervals} intervals, the stored"
                f" readings {len(stored.imports)}"
            )
        parts = breakdown(tariff, stored.imports, stored.exports)
    violations: list[Violation] = []
    if line is not None:
        if tariff is None:
            violations.append(
                Violation(
                    period,
                    Reason.UNKNOWN_TARIFF,
                    "the ledger holds a bill for this period but the service returns no tariff",
                )
            )
        else:
            violations = check_bill(line.bill, tariff, stored)
    return DetailLine(period, tariff, tariff_receipt, stored, line, parts, tuple(violations))


def detailed_statement(client: MeterClient, period: str | None = None) -> DetailedStatement:
    """The meter's bills as the ledger holds them (receipts verified), each recomputed from
    the local openings under the published tariff and checked (:func:`check_bill`,
    :func:`check_cycle_bill`)."""
    statement = client.statement(period)
    return DetailedStatement(
        client.meter_id,
        tuple(_detail(client, line.bill.period, line) for line in statement.lines),
        tuple(_cycle_detail(client, line, recompute=True) for line in statement.cycle_lines),
    )


def plain_statement(client: MeterClient, period: str | None = None) -> DetailedStatement:
    """The meter's bills as the ledger holds them (receipts verified) with each period's
    tariff (for its currency) and each cycle's plan; nothing is recomputed or checked."""
    statement = client.statement(period)
    lines = []
    for line in statement.lines:
        tariff, tariff_receipt = client.tariff(line.bill.period)
        lines.append(DetailLine(line.bill.period, tariff, tariff_receipt, None, line, None, ()))
    cycles = tuple(_cycle_detail(client, line, recompute=False) for line in statement.cycle_lines)
    return DetailedStatement(client.meter_id, tuple(lines), cycles)


# --------------------------------------------------------------------------- billing cycles


def cycle_breakdown(tariff: CycleTariff, stored: Sequence[StoredBatch]) -> CycleBillBreakdown:
    """The bill of the cycle from the stored openings of its periods (in order), in parts:
    the settlement's rule, :meth:`CycleTariff.bill_breakdown`."""
    if len(stored) != len(tariff.periods):
        raise InvalidArgumentError(f"one stored batch per period of the cycle ({len(stored)})")
    for period, batch in zip(tariff.periods, stored, strict=True):
        if batch.period != period or len(batch.imports) != tariff.intervals:
            raise InvalidArgumentError(
                f"the stored readings of {batch.period} are not the plan's {period} of"
                f" {tariff.intervals} intervals"
            )
    return tariff.bill_breakdown([b.imports for b in stored], [b.exports for b in stored])


def _ledger_cycle_proof_holds(
    bill: CycleBill, tariff: CycleTariff, stored: Sequence[StoredBatch]
) -> bool:
    from circuits.r1cs import R1CSStatement
    from settlement.cycle_bills import cycle_bill_statement

    batches = [ReadingBatch.decode(s.batch) for s in stored]
    try:
        R1CSStatement.verify_batch([cycle_bill_statement(bill, tariff, batches)])
    except ZkgridError:
        return False
    return True


def check_cycle_bill(
    bill: CycleBill, tariff: CycleTariff, stored: Sequence[StoredBatch | None]
) -> list[Violation]:
    """Every way the ledger's cycle ``bill`` disagrees with the local openings of its periods
    (``stored``, one per period of the cycle, ``None`` where the store has none) and the
    plan ``tariff``."""
    cycle = f"{bill.first_period}..{bill.last_period}"
    missing = [p for p, s in zip(bill.periods, stored, strict=True) if s is None]
    if missing:
        return [
            Violation(
                cycle,
                Reason.OPENING_STORE,
                f"the local opening store holds no readings for {', '.join(missing)} of this"
                " billed cycle: the bill cannot be recomputed (restore the store with"
                " 'zkgrid meter restore')",
            )
        ]
    batches = [s for s in stored if s is not None]
    found: list[Violation] = []
    for period, named, mine in zip(bill.periods, bill.batch_hashes, batches, strict=True):
        if named != mine.batch_hash:
            found.append(
                Violation(
                    cycle,
                    Reason.UNKNOWN_BATCH,
                    f"the ledger's cycle bill names batch {named.hex()[:16]}... for {period},"
                    f" this meter stored batch {mine.batch_hash.hex()[:16]}...",
                )
            )
    if bill.tariff_hash != tariff.tariff_hash() or (
        (tariff.first_period, tariff.last_period) != (bill.first_period, bill.last_period)
    ):
        found.append(
            Violation(
                cycle,
                Reason.UNKNOWN_TARIFF,
                f"the ledger's cycle bill names tariff {bill.tariff_hash.hex()[:16]}..., the"
                f" plan {tariff.plan!r} the service names for this meter is"
                f" {tariff.tariff_hash().hex()[:16]}... (cycle {tariff.first_period}.."
                f"{tariff.last_period})",
            )
        )
    if found:
        return found
    local = cycle_breakdown(tariff, batches).total
    if local == bill.total:
        return []
    difference = f"the ledger's bill is {bill.total}, the local openings give {local} (micro-units)"
    if not _ledger_cycle_proof_holds(bill, tariff, batches):
        return [
            Violation(
                cycle,
                Reason.PROOF_INVALID,
                f"{difference}; its proof does not verify against this meter's commitments",
            )
        ]
    return [
        Violation(
            cycle,
            Reason.OPENING_STORE,
            f"{difference}; the ledger's proof verifies, so the local openings are not the"
            " committed readings (restore the opening store from a backup)",
        )
    ]


def _cycle_tariff(client: MeterClient, period: str) -> tuple[CycleTariff, VerifiedReceipt] | None:
    try:
        return client.cycle_tariff(period)
    except RemoteError as exc:
        if exc.reason in (Reason.UNKNOWN_TARIFF, Reason.NOT_FOUND):
            return None
        raise


def _cycle_detail(
    client: MeterClient, line: CycleStatementLine, *, recompute: bool
) -> CycleDetailLine:
    bill = line.bill
    published = _cycle_tariff(client, bill.first_period)
    if published is None:
        violation = Violation(
            line.cycle,
            Reason.UNKNOWN_TARIFF,
            "the ledger holds a bill for this cycle but the service returns no plan for it",
        )
        return CycleDetailLine(line, None, None, None, (violation,) if recompute else ())
    tariff, tariff_receipt = published
    if not recompute:
        return CycleDetailLine(line, tariff, tariff_receipt, None, ())
    stored = [client.store.batch(p) for p in bill.periods]
    violations = check_cycle_bill(bill, tariff, stored)
    parts = None
    export_wh = None
    complete = [s for s in stored if s is not None]
    if len(complete) == len(stored) and tariff.periods == bill.periods:
        parts = cycle_breakdown(tariff, complete)
        export_wh = sum(sum(s.exports) for s in complete)
    return CycleDetailLine(line, tariff, tariff_receipt, parts, tuple(violations), export_wh)


def period_detail(client: MeterClient, period: str) -> DetailLine:
    """One period's view for the report: the ledger's bill when there is one (else only
    the local breakdown under the published tariff, when there is one)."""
    statement = client.statement(period)
    lines = [line for line in statement.lines if line.bill.period == period]
    return _detail(client, period, lines[0] if lines else None)
