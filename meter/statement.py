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

Everything here is local: the readings are read from the opening store and shown to
their owner only; nothing is sent (the service is asked only for the statement and
the tariff, which it publishes).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

from meter.client import MeterClient, StatementLine, VerifiedReceipt
from meter.openings import StoredBatch
from meter.render import receipt_status
from settlement.records import Bill, ReadingBatch, Tariff, bill_coefficients
from zkgrid._internal.rpc import RemoteError
from zkgrid.errors import InvalidArgumentError, Reason, VerificationError, ZkgridError
from zkp.pedersen import Commitment, commit, linear_combination
from zkp.sigma import LinearCombinationProof

__all__ = [
    "Breakdown",
    "DetailLine",
    "DetailedStatement",
    "Violation",
    "breakdown",
    "check_bill",
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
class DetailedStatement:
    meter_id: str
    lines: tuple[DetailLine, ...]

    @property
    def violations(self) -> tuple[Violation, ...]:
        return tuple(v for line in self.lines for v in line.violations)

    def totals(self) -> dict[str, int]:
        """The ledger's bills summed per currency."""
        out: dict[str, int] = {}
        for line in self.lines:
            if line.bill is not None:
                currency = "" if line.tariff is None else line.tariff.currency
                out[currency] = out.get(currency, 0) + line.bill.total
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
    the local openings under the published tariff and checked (:func:`check_bill`)."""
    statement = client.statement(period)
    return DetailedStatement(
        client.meter_id,
        tuple(_detail(client, line.bill.period, line) for line in statement.lines),
    )


def plain_statement(client: MeterClient, period: str | None = None) -> DetailedStatement:
    """The meter's bills as the ledger holds them (receipts verified) with each period's
    tariff (for its currency); nothing is recomputed or checked."""
    lines = []
    for line in client.statement(period).lines:
        tariff, tariff_receipt = client.tariff(line.bill.period)
        lines.append(DetailLine(line.bill.period, tariff, tariff_receipt, None, line, None, ()))
    return DetailedStatement(client.meter_id, tuple(lines))


def period_detail(client: MeterClient, period: str) -> DetailLine:
    """One period's view for the report: the ledger's bill when there is one (else only
    the local breakdown under the published tariff, when there is one)."""
    statement = client.statement(period)
    lines = [line for line in statement.lines if line.bill.period == period]
    return _detail(client, period, lines[0] if lines else None)
