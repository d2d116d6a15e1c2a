"""The audit engine: replay a ledger against a pinned log key and report every violation.

One pass over the entries (streamed from a :class:`verifier.sources.LedgerSource`):

* rebuild the Merkle tree leaf by leaf (:class:`ledger.merkle.CompactRange`),
  compare its root with every checkpoint on the way and with the final one,
  whose Ed25519 signature must verify under the pinned log key;
* replay the settlement rules of settlement-v1.md ("Rules") in log order through
  the one state machine the service uses (:mod:`settlement.rules`): an entry
  whose kind or payload is undefined is flagged (R1, R2), an entry that breaks a
  state rule is flagged with the first reason by precedence and *not* applied,
  exactly as the service would have refused it; then the cryptographic rules
  of the entries the state rules accept (C1, C2: each ECDSA signature);
* collect the range proofs, bill proofs and cycle bills' circuit proofs, then
  verify them in batches (:meth:`zkp.rangeproof.RangeProof.find_invalid`,
  :meth:`zkp.sigma.LinearCombinationProof.find_invalid`,
  :meth:`circuits.r1cs.R1CSStatement.find_invalid`: one check per batch, the bad
  entries named when it fails); large audits spread the batches over a
  ``spawn`` process pool (the scalar work is pure Python).

With an :class:`verifier.state.AuditorState` from a previous clean audit the
new tree must extend the old one (``LOG_FORK`` otherwise); ``since_last``
audits only the entries after it. Reason codes are listed in
docs/notes/audit.md.
"""

from __future__ import annotations

import hashlib
import hmac
import multiprocessing
import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from circuits.r1cs import R1CSProof, R1CSStatement
from ledger.checkpoint import Checkpoint, CheckpointVerifier, verify_checkpoint
from ledger.cosignature import WitnessRegistration
from ledger.entries import EntryKind, entry_leaf_hash
from ledger.errors import CheckpointSignatureError, ConsistencyProofError, LedgerFormatError
from ledger.merkle import EMPTY_ROOT, CompactRange, verify_consistency
from settlement import rules
from settlement.cycle_bills import statement_from_commitments
from settlement.market import (
    MARKET_KINDS,
    Clearing,
    Delivery,
    DeliveryAllocation,
    DeliveryDefault,
    DeliveryStep,
    MarketEnrolment,
    Order,
    OrderCancellation,
    Side,
)
from settlement.market_circuits import allocation_statement, delivery_statement
from settlement.records import (
    RANGE_PROOF_BITS,
    Bill,
    CycleBill,
    CycleTariff,
    MeterRegistration,
    MeterRevocation,
    ReadingBatch,
    RecordFormatError,
    SignatureError,
    Tariff,
    bill_coefficients,
    reading_proof_context,
    record_type,
)
from settlement.rules import LedgerState, Ref
from verifier.state import OLD_STATE_VERSIONS, STATE_VERSION, AuditorState, OpenBatch
from zkgrid._internal.processes import die_with_parent
from zkgrid.errors import (
    InvalidArgumentError,
    ProofFormatError,
    Reason,
    ZkgridError,
)
from zkp.group import decode_points
from zkp.pedersen import Commitment
from zkp.rangeproof import RangeProof, RangeProofStatement
from zkp.sigma import LinearCombinationClaim, LinearCombinationProof

__all__ = [
    "AuditError",
    "AuditOptions",
    "AuditResult",
    "Auditor",
    "Figures",
    "Progress",
    "SourceCheckpoint",
    "SourceEntry",
    "Violation",
]

#: Below this many batches (a bill counts 1/8, a cycle bill one per period of its cycle)
#: the proofs are verified in this process (starting a spawn pool costs ~1.5 s).
POOL_THRESHOLD = 48
#: Batches held before their proofs are verified (memory stays bounded on long logs); a
#: cycle bill counts one per period of its cycle.
FLUSH_UNITS = 4096
#: Batches per work unit handed to a pool worker (cycle bills: periods of their cycles).
UNIT_CHUNK = 256
#: The label of a cycle bill's cryptographic rule (its circuit proof), as C4 is a day's
#: bill's (docs/notes/audit.md).
CYCLE_BILL_RULE = "C6"


#: The label of the delivery steps' circuit proofs (market-v1.md, "Delivery records and
#: rules").
DELIVERY_RULE = "C8"
#: Delivery steps' statements verified together (one batch check, bisection on failure).
DELIVERY_CHUNK = 256

#: The entry kinds the auditor judges: the settlement's and the market's, its order book
#: (kinds 8..12) and its delivery steps and defaults (13..15), as the service takes them.
_JUDGED_KINDS = rules.SETTLEMENT_KINDS | frozenset(
    {
        EntryKind.MARKET_ENROLMENT,
        EntryKind.MARKET_DAY,
        EntryKind.ORDER,
        EntryKind.ORDER_CANCELLATION,
        EntryKind.CLEARING,
        EntryKind.DELIVERY_ALLOCATION,
        EntryKind.DELIVERY,
        EntryKind.DELIVERY_DEFAULT,
    }
)


def verify_delivery_steps(jobs: Sequence[tuple[int, str, R1CSStatement]]) -> list[_Finding]:
    """(C8) The delivery steps' circuit proofs of ``jobs`` (index, what, statement): one
    batch check, the bad ones named (``find_invalid``: bisection)."""
    bad = R1CSStatement.find_invalid([job[2] for job in jobs])
    return [
        (jobs[i][0], Reason.PROOF_INVALID, f"({DELIVERY_RULE}) {jobs[i][1]}: proof does not verify")
        for i in bad
    ]


class AuditError(ZkgridError):
    """The audit could not run (bad input, unreadable source, unusable state): exit 2."""

    reason = Reason.AUDIT_INPUT


@dataclass(frozen=True, slots=True)
class Violation:
    """One finding: the entry index it concerns (``None`` for the log as a whole), a reason."""

    index: int | None
    reason: Reason
    detail: str

    def to_json(self) -> dict[str, object]:
        return {"index": self.index, "reason": self.reason, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class SourceEntry:
    index: int
    kind: int
    payload: bytes
    #: The leaf hash the source claims (gRPC), checked against the recomputed one.
    leaf_hash: bytes | None = None


@dataclass(frozen=True, slots=True)
class SourceCheckpoint:
    #: The size the source stored this checkpoint under.
    size: int
    text: str


class LedgerSource(Protocol):
    """Where the entries come from (:mod:`verifier.sources`)."""

    description: str

    def origin(self) -> str | None: ...

    def early_head(self) -> str | None:
        """The final checkpoint text when known before streaming (a live service)."""

    def consistency_proof(self, first: int, second: int) -> list[bytes] | None:
        """RFC 9162 proof between two sizes, or ``None`` when the source cannot serve one."""

    def items(self, start: int) -> Iterable[SourceEntry | SourceCheckpoint]:
        """Entries with index >= ``start`` and checkpoints, in log order."""

    def skipped(self) -> int:
        """Entries below ``start`` the source passed over (after :meth:`items`)."""

    def head(self) -> str:
        """The final checkpoint text (after :meth:`items` is exhausted)."""


class Progress(Protocol):
    def start(self, name: str, total: int | None) -> None: ...

    def advance(self, name: str, amount: int = 1) -> None: ...


class _NoProgress:
    def start(self, name: str, total: int | None) -> None:
        pass

    def advance(self, name: str, amount: int = 1) -> None:
        pass


@dataclass(frozen=True)
class AuditOptions:
    log_key: CheckpointVerifier
    since_last: bool = False
    #: Processes for proof verification; 0 or 1 = in this process; None = one per core.
    workers: int | None = None
    #: Fewer batches and bills than this are verified in this process (a pool costs ~1.5 s).
    pool_threshold: int = POOL_THRESHOLD
    #: Batches collected before their proofs are handed to the verifiers (bounds memory).
    flush_units: int = FLUSH_UNITS


@dataclass
class Figures:
    entries: int = 0
    meters_registered: int = 0
    meters_revoked: int = 0
    meters_total: int = 0
    tariffs: int = 0
    #: Of ``tariffs``, those of record version 2 (a billing cycle's).
    cycle_tariffs: int = 0
    batches: int = 0
    bills: int = 0
    #: Of ``bills``, those of record version 2 (a billing cycle's).
    cycle_bills: int = 0
    witnesses: int = 0
    periods: set[str] = field(default_factory=set)
    bill_sums: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def entries_per_second(self) -> float:
        return self.entries / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "entries": self.entries,
            "meters_registered": self.meters_registered,
            "meters_revoked": self.meters_revoked,
            "meters_total": self.meters_total,
            "periods": len(self.periods),
            "tariffs": self.tariffs,
            "cycle_tariffs": self.cycle_tariffs,
            "batches": self.batches,
            "witnesses": self.witnesses,
            "bills": self.bills,
            "cycle_bills": self.cycle_bills,
            "bill_sums_micro": dict(sorted(self.bill_sums.items())),
            "seconds": round(self.seconds, 3),
            "entries_per_second": round(self.entries_per_second, 1),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }


@dataclass
class AuditResult:
    source: str
    mode: str
    origin: str | None
    checkpoint: Checkpoint | None
    previous_size: int | None
    violations: list[Violation]
    figures: Figures
    new_state: AuditorState | None

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_json(self) -> dict[str, object]:
        cp = self.checkpoint
        return {
            "ok": self.ok,
            "source": self.source,
            "mode": self.mode,
            "origin": self.origin,
            "checkpoint": None
            if cp is None
            else {"origin": cp.origin, "size": cp.size, "root": cp.root.hex()},
            "previous_size": self.previous_size,
            "figures": self.figures.to_json(),
            "violations": [v.to_json() for v in self.violations],
        }


# --------------------------------------------------------------------------- proof work units
#
# A unit is a batch's range proof and/or the bills proven against its commitments,
# as plain picklable tuples (a worker process decodes them itself).

#: (entry index, context, proof bytes)
_RangeJob = tuple[int, bytes, bytes]
#: (entry index, coefficients, total, constant, context, proof bytes)
_BillJob = tuple[int, tuple[int, ...], int, int, bytes, bytes]
#: (batch entry index, commitments, range job or None, bill jobs)
_Unit = tuple[int, tuple[bytes, ...], "_RangeJob | None", list["_BillJob"]]
_Finding = tuple[int, Reason, str]

# A cycle bill is proven against the batches of every period of its cycle, so it does not
# travel with one batch: it is a job of its own, carrying its batches' commitments (the
# open batches' tuples, shared, not copied) and naming its tariff by hash.

#: (entry index, tariff hash, total, context, proof bytes,
#:  ((batch entry index, commitments), ...) one per period of the cycle, in order)
_CycleJob = tuple[int, bytes, int, bytes, bytes, tuple[tuple[int, tuple[bytes, ...]], ...]]
#: (tariff hash -> cycle tariff record bytes, for the jobs that follow; the jobs)
_CycleChunk = tuple[dict[bytes, bytes], list[_CycleJob]]


def _decode_commitments(units: Sequence[_Unit]) -> tuple[list[list[Commitment] | None], list[int]]:
    flat = [c for unit in units for c in unit[1]]
    try:
        points = decode_points(flat, "commitment")
    except ProofFormatError:
        out: list[list[Commitment] | None] = []
        bad: list[int] = []
        for i, unit in enumerate(units):
            try:
                decoded = decode_points(unit[1], "commitment")
                out.append([Commitment(p, e) for p, e in zip(decoded, unit[1], strict=True)])
            except ProofFormatError:
                out.append(None)
                bad.append(i)
        return out, bad
    out = []
    cursor = 0
    for unit in units:
        n = len(unit[1])
        encodings = unit[1]
        out.append(
            [Commitment(p, e) for p, e in zip(points[cursor : cursor + n], encodings, strict=True)]
        )
        cursor += n
    return out, []


def _parse_range_proofs(jobs: Sequence[_RangeJob]) -> list[RangeProof | None]:
    try:
        return list(RangeProof.many_from_bytes([j[2] for j in jobs]))
    except ProofFormatError:
        out: list[RangeProof | None] = []
        for job in jobs:
            try:
                out.append(RangeProof.from_bytes(job[2]))
            except ProofFormatError:
                out.append(None)
        return out


def verify_units(units: Sequence[_Unit]) -> list[_Finding]:
    """Verify the proofs of ``units``; return ``(entry index, reason, detail)`` per failure.

    Top-level and pure so that a ``spawn`` pool worker can run it.
    """
    findings: list[_Finding] = []
    commitments, bad_units = _decode_commitments(units)
    for i in bad_units:
        unit = units[i]
        findings.append((unit[0], Reason.PROOF_MALFORMED, "a commitment is not a P-256 point"))
        for bill in unit[3]:
            findings.append(
                (bill[0], Reason.PROOF_INVALID, f"(C4) its batch (entry {unit[0]}) is malformed")
            )
    # Range proofs: one batch verification, bisection on failure (zkp.batch, B3).
    range_items = [
        (unit[2], coms)
        for unit, coms in zip(units, commitments, strict=True)
        if unit[2] is not None and coms is not None
    ]
    proofs = _parse_range_proofs([job for job, _ in range_items])
    statements: list[RangeProofStatement] = []
    statement_index: list[int] = []
    for (job, coms), proof in zip(range_items, proofs, strict=True):
        if proof is None:
            findings.append((job[0], Reason.PROOF_MALFORMED, "the range proof cannot be parsed"))
            continue
        statements.append(RangeProofStatement(proof, coms, RANGE_PROOF_BITS, job[1]))
        statement_index.append(job[0])
    for bad in RangeProof.find_invalid(statements):
        findings.append(
            (statement_index[bad], Reason.PROOF_INVALID, "the range proof does not verify")
        )
    # Bill proofs: one batch verification (S4), bisection on failure (B3).
    claims: list[tuple[int, LinearCombinationClaim]] = []
    for unit, bill_coms in zip(units, commitments, strict=True):
        if bill_coms is None:
            continue
        for index, coefficients, total, constant, context, proof_bytes in unit[3]:
            try:
                bill_proof = LinearCombinationProof.from_bytes(proof_bytes)
            except ProofFormatError:
                findings.append(
                    (index, Reason.PROOF_MALFORMED, "(C4) the bill proof cannot be parsed")
                )
                continue
            claims.append(
                (
                    index,
                    LinearCombinationClaim(
                        bill_proof, coefficients, bill_coms, total, constant, context
                    ),
                )
            )
    for bad in LinearCombinationProof.find_invalid([claim for _, claim in claims]):
        detail = "(C4) the bill proof does not verify against its batch"
        findings.append((claims[bad][0], Reason.PROOF_INVALID, detail))
    return findings


def _cycle_weight(job: _CycleJob) -> int:
    """A cycle bill's share of a flush or a chunk: the periods of its cycle (a cycle bill's
    circuit grows with its intervals as a batch's range proof does with a day's)."""
    return len(job[5])


def _decode_cycle_commitments(
    jobs: Sequence[_CycleJob],
) -> list[tuple[list[Commitment], list[Commitment]] | int]:
    """Per job, its imports and exports in cycle order (period by period, interval by
    interval: the order :func:`settlement.cycle_bills.prove_cycle_bill` commits them in),
    or the entry index of its first batch with a commitment that is not a point."""
    batches = [batch for job in jobs for batch in job[5]]
    flat = [c for _, commitments in batches for c in commitments]
    points: list[list[Commitment] | None] = []
    try:
        decoded = decode_points(flat, "commitment")
    except ProofFormatError:
        for _, commitments in batches:
            try:
                one = decode_points(commitments, "commitment")
            except ProofFormatError:
                points.append(None)
                continue
            points.append([Commitment(p, e) for p, e in zip(one, commitments, strict=True)])
    else:
        cursor = 0
        for _, commitments in batches:
            n = len(commitments)
            points.append(
                [
                    Commitment(p, e)
                    for p, e in zip(decoded[cursor : cursor + n], commitments, strict=True)
                ]
            )
            cursor += n
    out: list[tuple[list[Commitment], list[Commitment]] | int] = []
    cursor = 0
    for job in jobs:
        imports: list[Commitment] = []
        exports: list[Commitment] = []
        bad: int | None = None
        for batch_index, _ in job[5]:
            coms = points[cursor]
            cursor += 1
            if coms is None:
                bad = batch_index if bad is None else bad
                continue
            imports += coms[0::2]
            exports += coms[1::2]
        out.append((imports, exports) if bad is None else bad)
    return out


def verify_cycle_bills(chunk: _CycleChunk) -> list[_Finding]:
    """Verify the circuit proofs of a chunk of cycle bills (C6): one batch verification
    (C11) over the chunk, the bad ones named when it fails (B3'). Returns ``(entry index,
    reason, detail)`` per failure; top-level and pure so that a ``spawn`` pool worker can
    run it."""
    rule = CYCLE_BILL_RULE
    encoded, jobs = chunk
    tariffs = {digest: CycleTariff.decode(data) for digest, data in encoded.items()}
    findings: list[_Finding] = []
    statements: list[R1CSStatement] = []
    statement_index: list[int] = []
    for job, commitments in zip(jobs, _decode_cycle_commitments(jobs), strict=True):
        index, tariff_hash, total, context, proof_bytes, _ = job
        if isinstance(commitments, int):
            detail = f"({rule}) a batch of its cycle (entry {commitments}) is malformed"
            findings.append((index, Reason.PROOF_INVALID, detail))
            continue
        try:
            proof = R1CSProof.from_bytes(proof_bytes)
        except ProofFormatError:
            detail = f"({rule}) the cycle bill proof cannot be parsed"
            findings.append((index, Reason.PROOF_MALFORMED, detail))
            continue
        try:
            statement = statement_from_commitments(
                tariffs[tariff_hash], commitments[0], commitments[1], total, proof, context
            )
        except InvalidArgumentError as exc:  # pragma: no cover - the rules keep the shape
            detail = f"({rule}) the cycle bill's circuit cannot be built: {exc}"
            findings.append((index, Reason.PROOF_INVALID, detail))
            continue
        statements.append(statement)
        statement_index.append(index)
    for bad in R1CSStatement.find_invalid(statements):
        detail = f"({rule}) the cycle bill proof does not verify against its batches and tariff"
        findings.append((statement_index[bad], Reason.PROOF_INVALID, detail))
    return findings


# --------------------------------------------------------------------------- the engine


class _Pending:
    """A batch's unit under construction (its bills attach to it)."""

    __slots__ = ("bills", "commitments", "index", "range_job")

    def __init__(
        self, index: int, commitments: tuple[bytes, ...], range_job: _RangeJob | None
    ) -> None:
        self.index = index
        self.commitments = commitments
        self.range_job = range_job
        self.bills: list[_BillJob] = []

    def unit(self) -> _Unit:
        return (self.index, self.commitments, self.range_job, self.bills)


class Auditor:
    """One audit run; build it, then :meth:`run`."""

    def __init__(
        self,
        source: LedgerSource,
        options: AuditOptions,
        state: AuditorState | None = None,
        progress: Progress | None = None,
    ) -> None:
        self._source = source
        self._options = options
        self._key = options.log_key
        self._state = state
        self._progress: Progress = progress or _NoProgress()
        self._violations: list[Violation] = []
        self._figures = Figures()
        # the rules' state (restored from the state file for --since-last) and the
        # commitments of the batches without a bill yet (their bills' proofs need them)
        self._ledger = LedgerState()
        self._open: dict[bytes, OpenBatch] = {}
        #: The market entries applied, (index, kind, payload), for the saved state.
        self._market_entries: list[tuple[int, int, bytes]] = []
        #: The commitments C8 needs: a batch of a market participant's period, kept (by
        #: batch hash) until the meter's trades of the period are settled, whether or not
        #: it is billed (a billed batch leaves ``_open``).
        self._market_batches: dict[bytes, OpenBatch] = {}
        #: (meter id, period) -> its trades of the period not settled yet (counted when
        #: first needed, then kept down as steps settle them).
        self._unsettled: dict[tuple[str, str], int] = {}
        #: Delivery steps' statements waiting for their batch check (C8).
        self._delivery_jobs: list[tuple[int, str, R1CSStatement]] = []
        self._units: list[_Pending] = []
        self._pending: dict[bytes, _Pending] = {}
        # cycle bills queued for verification, and their weight (periods) towards a flush
        self._cycle_jobs: list[_CycleJob] = []
        self._cycle_weight = 0
        self._pool: ProcessPoolExecutor | None = None
        self._futures: list[tuple[Future[list[_Finding]], int]] = []
        self._findings: list[_Finding] = []
        self._done_inline = 0
        # tree
        self._tree = CompactRange.empty()
        self._last_good = 0
        self._intermediate_mismatch = False
        self._root_at_previous: bytes | None = None
        self._origin: str | None = None
        self._root_at_checkpoint: tuple[int, bytes] | None = None
        self._previous: Checkpoint | None = None
        if state is not None:
            if state.log_key != self._key.to_text():
                raise AuditError(
                    "the state file was written for another log key; pass its key or use"
                    " another --state"
                )
            try:
                self._previous = verify_checkpoint(state.checkpoint, self._key)
            except (CheckpointSignatureError, LedgerFormatError) as exc:
                raise AuditError(f"the state file's checkpoint does not verify: {exc}") from None

    # ------------------------------------------------------------------ findings

    def _flag(self, index: int | None, reason: Reason | str, detail: str) -> None:
        # Findings use the one closed set (zkgrid.errors.Reason): a string outside it is a bug.
        self._violations.append(Violation(index, Reason(reason), detail))

    # ------------------------------------------------------------------ checkpoints

    def _parse_checkpoint(self, text: str, where: str) -> Checkpoint | None:
        try:
            return verify_checkpoint(text, self._key)
        except CheckpointSignatureError as exc:
            self._flag(None, "CHECKPOINT_SIGNATURE_INVALID", f"{where}: {exc}")
        except LedgerFormatError as exc:
            self._flag(None, "CHECKPOINT_MALFORMED", f"{where}: {exc}")
        return None

    def _on_checkpoint(self, item: SourceCheckpoint) -> None:
        """An intermediate checkpoint: signed by the log, and the tree at its size matches it."""
        state_size = self._previous_size()
        if self._options.since_last and item.size < state_size:
            return  # covered by the previous audit
        cp = self._parse_checkpoint(item.text, f"checkpoint stored at size {item.size}")
        if cp is None:
            return
        if cp.size != item.size:
            self._flag(
                None,
                "CHECKPOINT_MALFORMED",
                f"the checkpoint stored at size {item.size} signs size {cp.size}",
            )
            return
        self._check_origin(cp, f"checkpoint at size {cp.size}")
        previous = self._previous
        if (
            previous is not None
            and cp.size == previous.size
            and not hmac.compare_digest(cp.root, previous.root)
        ):
            self._flag(
                None,
                "LOG_FORK",
                f"the log's checkpoint at size {cp.size} differs from the one this auditor"
                " accepted before: history was rewritten",
            )
        if self._tree.size != cp.size:
            return  # entries are missing: reported as ENTRY_MISSING / ROOT_MISMATCH at the end
        self._root_at_checkpoint = (cp.size, self._tree.root())
        if hmac.compare_digest(self._tree.root(), cp.root):
            if not self._intermediate_mismatch:
                self._last_good = cp.size
        elif not self._intermediate_mismatch:
            self._intermediate_mismatch = True
            self._flag(
                self._last_good if self._last_good < cp.size else None,
                "ROOT_MISMATCH",
                f"entries [{self._last_good}, {cp.size}) do not hash to the root the log"
                f" signed at size {cp.size}",
            )

    def _check_origin(self, cp: Checkpoint, where: str) -> None:
        if self._origin is not None and cp.origin != self._origin:
            self._flag(
                None,
                "ORIGIN_MISMATCH",
                f"{where} names origin {cp.origin!r}, expected {self._origin!r}",
            )

    def _previous_size(self) -> int:
        return 0 if self._previous is None else self._previous.size

    def _state_checkpoint(self) -> Checkpoint:
        if self._previous is None:  # pragma: no cover - callers check
            raise AuditError("no previous checkpoint")
        return self._previous

    # ------------------------------------------------------------------ entries

    def _on_entry(self, item: SourceEntry, position: int) -> None:
        if item.index != position:
            if item.index > position:
                missing = item.index - position
                self._flag(
                    position,
                    "ENTRY_MISSING",
                    f"{missing} entr{'y is' if missing == 1 else 'ies are'} missing before"
                    f" index {item.index}",
                )
            else:  # pragma: no cover - sources enforce increasing indices
                self._flag(item.index, "ENTRY_OUT_OF_ORDER", f"entry {item.index} repeats")
        lh = entry_leaf_hash(item.kind, item.payload)
        if item.leaf_hash is not None and not hmac.compare_digest(lh, item.leaf_hash):
            self._flag(
                item.index,
                "LEAF_HASH_MISMATCH",
                "the served leaf hash is not the hash of the served entry",
            )
        self._tree.append(lh)
        if self._state is not None and self._tree.size == self._previous_size():
            self._root_at_previous = self._tree.root()
        self._figures.entries += 1
        self._progress.advance("entries")
        try:
            kind = EntryKind(item.kind)
        except ValueError:
            self._flag(item.index, "ENTRY_MALFORMED", f"(L12) unknown entry kind {item.kind}")
            return
        self._count(kind, item.payload)
        # R1, R2 (and C5 for a witness key); the market (kinds 8..15) is judged as the
        # service judges it (_JUDGED_KINDS)
        decoded = rules.decode(kind, item.payload, kinds=_JUDGED_KINDS)
        if isinstance(decoded, rules.Refusal):
            self._flag(item.index, decoded.reason, f"({decoded.rule}) {decoded.detail}")
            return
        digest = hashlib.sha256(item.payload).digest()
        # R3..R22, M1..M13 by precedence; the market's time rules by ledger order
        # (market-v1.md, "Time on the ledger": no signed time of an entry yet)
        time = rules.ledger_order_time(self._ledger, decoded)
        refusal = rules.check(self._ledger, decoded, digest, time=time)
        if refusal is not None:
            # Refused, as the service refuses it: flagged, not applied.
            self._flag(item.index, refusal.reason, f"({refusal.rule}) {refusal.detail}")
            return
        self._crypto(item.index, decoded, digest)
        rules.apply(self._ledger, decoded, Ref(item.index, digest, lh))
        if kind in MARKET_KINDS:
            self._market_entries.append((item.index, kind.value, item.payload))
        self._applied(decoded, digest)
        self._market_applied(decoded, digest)

    def _count(self, kind: EntryKind, payload: bytes) -> None:
        """Entries seen, valid or not; a TARIFF or BILL entry is a cycle's by its record
        version (the payload's first byte, as the rules decode it)."""
        if kind is EntryKind.READING_BATCH:
            self._figures.batches += 1
        elif kind is EntryKind.BILL:
            self._figures.bills += 1
            if record_type(kind, payload) is CycleBill:
                self._figures.cycle_bills += 1
        elif kind is EntryKind.TARIFF:
            self._figures.tariffs += 1
            if record_type(kind, payload) is CycleTariff:
                self._figures.cycle_tariffs += 1

    def _crypto(self, index: int, record: rules.LedgerRecord, digest: bytes) -> None:
        """The cryptographic rules of a record its state rules accept (settlement-v1.md,
        "Rules": C1..C4, and C6 for a cycle bill; C5 was checked when a witness key was
        decoded). Signatures here; range, bill and cycle bill proofs are queued and
        verified in batches."""
        if isinstance(record, MeterRegistration):
            try:
                record.verify_pop()  # C1
            except (SignatureError, RecordFormatError) as exc:
                self._flag(index, exc.reason, f"(C1) meter {record.meter_id!r}: {exc}")
        elif isinstance(record, ReadingBatch):
            self._figures.periods.add(record.period)
            public_key = self._ledger.meters[record.meter_id].registration.public_key
            try:
                record.verify_signature(public_key)  # C2
            except (SignatureError, RecordFormatError) as exc:
                who = f"meter {record.meter_id!r} {record.period}"
                self._flag(index, exc.reason, f"(C2) {who}: {exc}")
            context = reading_proof_context(record.meter_id, record.period, record.sequence)
            pending = _Pending(index, record.commitments, (index, context, record.range_proof))
            self._units.append(pending)  # C3
            self._pending[digest] = pending
            if len(self._units) + self._cycle_weight >= self._options.flush_units:
                self._flush(final=False)
        elif isinstance(record, Bill):
            self._bill_proof(index, record)  # C4
        elif isinstance(record, CycleBill):
            self._cycle_bill_proof(index, record)  # C6
        elif isinstance(record, MarketEnrolment | Order | OrderCancellation):
            public_key = self._ledger.meters[record.meter_id].registration.public_key
            try:
                record.verify_signature(public_key)  # C7
            except (SignatureError, RecordFormatError) as exc:
                what = type(record).__name__
                self._flag(index, exc.reason, f"(C7) {what} of meter {record.meter_id!r}: {exc}")
        elif isinstance(record, DeliveryAllocation | Delivery):
            public_key = self._ledger.meters[record.meter_id].registration.public_key
            what = f"{type(record).__name__} of meter {record.meter_id!r}"
            try:
                record.verify_signature(public_key)  # C7
            except (SignatureError, RecordFormatError) as exc:
                self._flag(index, exc.reason, f"(C7) {what}: {exc}")
            self._delivery_proof(index, record, what)  # C8

    def _delivery_proof(self, index: int, record: DeliveryAllocation | Delivery, what: str) -> None:
        """(C8) Queue the statement of a step whose state rules hold, built from the state
        as :func:`settlement.rules.allocation_statement_for` and ``delivery_statement_for``
        build it (the same inputs, from the batch commitments this auditor kept: it keeps
        commitments, not batch records)."""
        ledger = self._ledger
        step = record.STEP
        trade = ledger.trade(record.period, record.interval, record.trade_index)
        if trade is None:  # pragma: no cover - M10 held
            return
        batch_hash = ledger.meters[record.meter_id].batches[record.period].digest  # M13 held
        kept = self._market_batches.get(batch_hash) or self._open.get(batch_hash)
        if kept is None:
            raise AuditError(
                f"entry {index}: the commitments of the batch of {record.meter_id!r} for"
                f" {record.period} are not in the state file; run one full audit"
            )
        seller = step is DeliveryStep.ALLOCATION
        position = 2 * record.interval + (1 if seller else 0)
        if position >= len(kept.commitments):  # pragma: no cover - R10/M1 held
            return
        earlier = ledger.earlier_deliveries(
            record.period, record.interval, record.trade_index, step
        )
        try:
            if isinstance(record, DeliveryAllocation):
                statement = allocation_statement(
                    record.trade_id(), kept.commitments[position], earlier, trade.quantity,
                    record.commitment, record.proof,
                )  # fmt: skip
            else:
                allocation = ledger.market.trades[
                    (record.period, record.interval, record.trade_index)
                ].allocation
                if allocation is None:  # pragma: no cover - M13 held
                    return
                statement = delivery_statement(
                    record.trade_id(), allocation, kept.commitments[position], earlier,
                    record.commitment, record.proof,
                )  # fmt: skip
        except ProofFormatError as exc:
            self._flag(index, exc.reason, f"({DELIVERY_RULE}) {what}: {exc}")
            return
        self._delivery_jobs.append((index, what, statement))
        if len(self._delivery_jobs) >= DELIVERY_CHUNK:
            self._verify_delivery_jobs()

    def _verify_delivery_jobs(self) -> None:
        jobs, self._delivery_jobs = self._delivery_jobs, []
        if jobs:
            self._findings += verify_delivery_steps(jobs)

    # --- which batch commitments C8 still needs

    def _has_trades(self, meter_id: str, period: str) -> bool:
        found = self._ledger.market.clearings.get(period)
        if found is None:
            return False
        parties = self._ledger.market.party_trades
        return any(
            (period, t, meter_id, side) in parties
            for t in range(len(found[0].intervals))
            for side in (Side.OFFER, Side.BID)
        )

    def _unsettled_of(self, meter_id: str, period: str) -> int:
        key = (meter_id, period)
        count = self._unsettled.get(key)
        if count is None:
            market = self._ledger.market
            found = market.clearings.get(period)
            count = 0
            if found is not None:
                for t, result in enumerate(found[0].intervals):
                    for k, trade in enumerate(result.trades):
                        if meter_id in (trade.seller, trade.buyer):
                            state = market.trades.get((period, t, k))
                            count += state is None or not state.settled
            self._unsettled[key] = count
        return count

    def _drop_settled(self, meter_id: str, period: str) -> None:
        """Drop the kept commitments of the meter's batch of ``period`` once C8 needs them
        no more (its trades of the period are all settled, or it has none)."""
        meter = self._ledger.meters.get(meter_id)
        ref = None if meter is None else meter.batches.get(period)
        kept = ref is not None and ref.digest in self._market_batches
        if ref is not None and kept and self._unsettled_of(meter_id, period) == 0:
            del self._market_batches[ref.digest]
            self._unsettled.pop((meter_id, period), None)

    def _market_applied(self, record: rules.LedgerRecord, digest: bytes) -> None:
        """Keep and drop the batch commitments C8 needs as records are applied."""
        market = self._ledger.market
        if isinstance(record, ReadingBatch):
            period = record.period
            if (
                period in market.days
                and record.meter_id in market.enrolments
                and (period not in market.clearings or self._has_trades(record.meter_id, period))
            ):
                self._market_batches[digest] = OpenBatch(
                    record.meter_id, period, record.interval_minutes, record.commitments
                )
        elif isinstance(record, Clearing):
            for batch_hash, kept in list(self._market_batches.items()):
                if kept.period == record.period and not self._has_trades(
                    kept.meter_id, kept.period
                ):
                    del self._market_batches[batch_hash]
        elif isinstance(record, DeliveryAllocation | Delivery | DeliveryDefault):
            state = market.trades[(record.period, record.interval, record.trade_index)]
            if isinstance(record, DeliveryAllocation) or not state.settled:
                return
            trade = self._ledger.trade(record.period, record.interval, record.trade_index)
            if trade is None:  # pragma: no cover - M10 held
                return
            for party in (trade.seller, trade.buyer):
                key = (party, record.period)
                if key in self._unsettled:
                    self._unsettled[key] -= 1
                self._drop_settled(party, record.period)

    def _applied(self, record: rules.LedgerRecord, digest: bytes) -> None:
        """Book-keeping after the rules applied ``record``: figures, open batches."""
        if isinstance(record, MeterRegistration):
            self._figures.meters_registered += 1
        elif isinstance(record, MeterRevocation):
            self._figures.meters_revoked += 1
        elif isinstance(record, WitnessRegistration):
            self._figures.witnesses += 1
        elif isinstance(record, Tariff):
            self._figures.periods.add(record.period)
        elif isinstance(record, CycleTariff):
            self._figures.periods.update(record.periods)
        elif isinstance(record, ReadingBatch):
            self._open[digest] = OpenBatch(
                record.meter_id, record.period, record.interval_minutes, record.commitments
            )
        elif isinstance(record, Bill):
            tariff = self._ledger.tariffs[record.period][0]
            self._figures.bill_sums[tariff.currency] = (
                self._figures.bill_sums.get(tariff.currency, 0) + record.total
            )
            del self._open[record.batch_hash]
        elif isinstance(record, CycleBill):
            currency = self._ledger.cycle_tariffs[record.tariff_hash][0].currency
            self._figures.bill_sums[currency] = (
                self._figures.bill_sums.get(currency, 0) + record.total
            )
            for batch_hash in record.batch_hashes:
                del self._open[batch_hash]

    def _bill_proof(self, index: int, bill: Bill) -> None:
        """Queue the proof of a bill the state rules accept (R12, R13 hold: its batch is
        open and the period's tariff is the one it names)."""
        batch = self._open[bill.batch_hash]
        tariff = self._ledger.tariffs[bill.period][0]
        job: _BillJob = (
            index,
            tuple(bill_coefficients(tariff)),
            bill.total,
            tariff.fixed_charge,
            bill.proof_context(),
            bill.proof,
        )
        pending = self._pending.get(bill.batch_hash)
        if pending is None:  # the batch was audited in an earlier run (--since-last)
            pending = _Pending(-1, batch.commitments, None)
            self._units.append(pending)
            self._pending[bill.batch_hash] = pending
        pending.bills.append(job)

    def _cycle_bill_proof(self, index: int, bill: CycleBill) -> None:
        """Queue the circuit proof of a cycle bill the state rules accept (R18..R22 hold:
        the meter's batch of every period of the cycle is open and is the one the bill
        names, and the tariff is a published cycle tariff of the bill's cycle)."""
        batches = self._ledger.meters[bill.meter_id].batches
        job: _CycleJob = (
            index,
            bill.tariff_hash,
            bill.total,
            bill.proof_context(),
            bill.proof,
            tuple(
                (batches[period].index, self._open[batch_hash].commitments)
                for period, batch_hash in zip(bill.periods, bill.batch_hashes, strict=True)
            ),
        )
        self._cycle_jobs.append(job)
        self._cycle_weight += _cycle_weight(job)
        if len(self._units) + self._cycle_weight >= self._options.flush_units:
            self._flush(final=False)

    # ------------------------------------------------------------------ proofs

    def _workers(self) -> int:
        workers = self._options.workers
        return (os.cpu_count() or 1) if workers is None else workers

    def _flush(self, *, final: bool) -> None:
        """Hand the collected units to the verifiers (a pool works while the replay goes on).

        A bill that arrives after its batch's unit was flushed gets a unit of its own,
        built from the open batch's commitments. Cycle bills go in chunks of their own
        (at most :data:`UNIT_CHUNK` periods of cycles each): a chunk's statements are
        built, verified and dropped by the one worker that gets it.
        """
        units = [p.unit() for p in self._units if p.range_job is not None or p.bills]
        cycle_jobs, cycle_weight = self._cycle_jobs, self._cycle_weight
        self._units = []
        self._pending = {}
        self._cycle_jobs = []
        self._cycle_weight = 0
        if not units and not cycle_jobs:
            return
        workers = self._workers()
        # A bill proof is ~1/8 of a range proof's work: bills alone rarely pay for a pool.
        weight = (
            sum(1 for u in units if u[2] is not None)
            + sum(len(u[3]) for u in units) / 8
            + cycle_weight
        )
        if self._pool is None and (
            workers <= 1 or (final and weight < self._options.pool_threshold)
        ):
            for start in range(0, len(units), UNIT_CHUNK):
                chunk = units[start : start + UNIT_CHUNK]
                self._findings += verify_units(chunk)
                self._done_inline += len(chunk)
            for cycle_chunk in self._cycle_chunks(cycle_jobs, UNIT_CHUNK):
                self._findings += verify_cycle_bills(cycle_chunk)
                self._done_inline += len(cycle_chunk[1])
            return
        if self._pool is None:
            context = multiprocessing.get_context("spawn")  # zkp runs threads: never fork
            self._pool = ProcessPoolExecutor(
                max_workers=workers,
                mp_context=context,
                initializer=die_with_parent,  # no worker outlives a killed audit
                initargs=(os.getpid(),),
            )
        # Chunks no larger than an equal share per worker, so the cores finish together.
        size = max(1, min(UNIT_CHUNK, -(-len(units) // workers)))
        for i in range(0, len(units), size):
            chunk = units[i : i + size]
            self._futures.append((self._pool.submit(verify_units, chunk), len(chunk)))
        share = max(1, min(UNIT_CHUNK, -(-cycle_weight // workers)))
        for cycle_chunk in self._cycle_chunks(cycle_jobs, share):
            future = self._pool.submit(verify_cycle_bills, cycle_chunk)
            self._futures.append((future, len(cycle_chunk[1])))

    def _cycle_chunks(self, jobs: Sequence[_CycleJob], limit: int) -> Iterable[_CycleChunk]:
        """``jobs`` in log order, in chunks of at most ``limit`` periods of cycles (a longer
        cycle alone), each with the records of the cycle tariffs its bills name."""
        chunk: list[_CycleJob] = []
        weight = 0
        for job in jobs:
            if chunk and weight + _cycle_weight(job) > limit:
                yield self._with_tariffs(chunk)
                chunk, weight = [], 0
            chunk.append(job)
            weight += _cycle_weight(job)
        if chunk:
            yield self._with_tariffs(chunk)

    def _with_tariffs(self, jobs: list[_CycleJob]) -> _CycleChunk:
        tariffs = self._ledger.cycle_tariffs
        named = dict.fromkeys(job[1] for job in jobs)
        return {digest: tariffs[digest][0].encode() for digest in named}, jobs

    def _verify_proofs(self) -> None:
        self._verify_delivery_jobs()
        try:
            self._flush(final=True)
            total = self._done_inline + sum(n for _, n in self._futures)
            self._progress.start("proofs", total)
            self._progress.advance("proofs", self._done_inline)
            for future, n in self._futures:
                self._findings += future.result()
                self._progress.advance("proofs", n)
        finally:
            if self._pool is not None:
                self._pool.shutdown(cancel_futures=True)
                self._pool = None
        for index, reason, detail in sorted(self._findings):
            self._flag(index, reason, detail)

    # ------------------------------------------------------------------ the run

    def _restore(self, state: AuditorState) -> None:
        cp = self._state_checkpoint()
        tree = CompactRange(cp.size, state.frontier)
        if tree.root() != cp.root:
            raise AuditError("the state file's frontier does not match its checkpoint")
        self._tree = tree
        self._last_good = cp.size
        self._root_at_previous = cp.root
        if state.ledger is None:
            raise AuditError(
                f"the state file is of version {state.version}, which cannot resume the rules"
                f" ({OLD_STATE_VERSIONS[state.version]}): run one full audit (without"
                f" --since-last) to write version {STATE_VERSION}"
            )
        self._ledger = state.ledger
        self._open = state.open_batches
        self._market_entries = list(state.market_entries)
        self._market_batches = dict(state.market_batches)

    def _check_state_head(self, head: Checkpoint) -> None:
        """The new head must extend the auditor's last accepted checkpoint."""
        if self._state is None:
            return
        previous = self._state_checkpoint()
        if head.size < previous.size:
            self._flag(
                None,
                "LOG_ROLLBACK",
                f"the log's checkpoint has size {head.size}, smaller than the size"
                f" {previous.size} this auditor already accepted",
            )
            return
        proof = self._source.consistency_proof(previous.size, head.size)
        if proof is not None:
            try:
                verify_consistency(previous.size, head.size, proof, previous.root, head.root)
            except (ConsistencyProofError, LedgerFormatError) as exc:
                self._flag(
                    None,
                    "LOG_FORK",
                    f"no consistency from the accepted checkpoint at size {previous.size}"
                    f" to size {head.size}: {exc}",
                )

    def run(self) -> AuditResult:
        try:
            return self._run()
        finally:
            if self._pool is not None:
                self._pool.shutdown(cancel_futures=True)
                self._pool = None

    def _run(self) -> AuditResult:
        started = time.perf_counter()
        timings = self._figures.timings
        mode = "since-last" if self._options.since_last else "full"
        if self._options.since_last:
            if self._state is None:
                raise AuditError("--since-last needs the state of a previous audit (none found)")
            self._restore(self._state)
        if self._state is not None:
            self._origin = self._state.origin
        source_origin = self._source.origin()
        if source_origin is not None:
            if self._origin is not None and source_origin != self._origin:
                raise AuditError(
                    f"the source is the log {source_origin!r}, the state file is for"
                    f" {self._origin!r}"
                )
            self._origin = source_origin
        start = self._tree.size
        early = self._source.early_head()
        head: Checkpoint | None = None
        if early is not None:
            head = self._parse_checkpoint(early, "the log's checkpoint")
            if head is not None:
                self._check_state_head(head)
        self._progress.start("entries", None if head is None else max(0, head.size - start))
        position = start
        for item in self._source.items(start):
            if isinstance(item, SourceCheckpoint):
                self._on_checkpoint(item)
            else:
                self._on_entry(item, position)
                position = item.index + 1
        if self._options.since_last and self._source.skipped() != start:
            self._flag(
                None,
                "LOG_FORK",
                f"the source holds {self._source.skipped()} entries below index {start};"
                f" the accepted checkpoint covers {start}",
            )
        timings["replay"] = time.perf_counter() - started
        if early is None:
            head = self._parse_checkpoint(self._source.head(), "the log's final checkpoint")
            if head is not None:
                self._check_state_head(head)
        if head is not None:
            self._check_head(head, position)
        t0 = time.perf_counter()
        self._verify_proofs()
        timings["proofs"] = time.perf_counter() - t0
        self._figures.seconds = time.perf_counter() - started
        self._figures.meters_total = len(self._ledger.meters)
        self._violations.sort(key=lambda v: (-1 if v.index is None else v.index, v.reason))
        new_state = None
        if head is not None and not self._violations:
            new_state = AuditorState(
                origin=head.origin,
                log_key=self._key.to_text(),
                checkpoint=self._signed_head_text(early),
                frontier=list(self._tree.hashes),
                ledger=self._ledger,
                open_batches=self._open,
                market_entries=self._market_entries,
                market_batches=self._market_batches,
            )
        return AuditResult(
            source=self._source.description,
            mode=mode,
            origin=self._origin,
            checkpoint=head,
            previous_size=None if self._state is None else self._previous_size(),
            violations=self._violations,
            figures=self._figures,
            new_state=new_state,
        )

    def _signed_head_text(self, early: str | None) -> str:
        return early if early is not None else self._source.head()

    def _check_head(self, head: Checkpoint, position: int) -> None:
        """The final checkpoint against the rebuilt tree and the auditor's previous view."""
        self._check_origin(head, "the log's final checkpoint")
        if position > head.size:
            self._flag(
                head.size,
                "ENTRY_NOT_CHECKPOINTED",
                f"{position - head.size} entries from index {head.size} are not covered by"
                f" the final checkpoint (size {head.size})",
            )
        if self._tree.size < head.size:
            self._flag(
                self._tree.size,
                "ENTRY_MISSING",
                f"the source holds {self._tree.size} entries; the log signed {head.size}",
            )
        else:
            if self._tree.size == head.size:
                root: bytes | None = self._tree.root() if self._tree.size else EMPTY_ROOT
            elif self._root_at_checkpoint is not None and self._root_at_checkpoint[0] == head.size:
                root = self._root_at_checkpoint[1]
            else:
                root = None
            if root is None:
                self._flag(
                    head.size,
                    "ROOT_MISMATCH",
                    f"the tree at the final checkpoint's size {head.size} cannot be rebuilt",
                )
            elif not hmac.compare_digest(root, head.root):
                self._flag(
                    self._last_good if self._last_good < head.size else None,
                    "ROOT_MISMATCH",
                    f"the entries do not hash to the root the log signed at size {head.size}"
                    + (
                        f"; the tree agrees with the log's checkpoints up to size {self._last_good}"
                        if self._last_good
                        else ""
                    ),
                )
        if self._state is not None and head.size >= self._previous_size():
            previous = self._state_checkpoint()
            if self._root_at_previous is not None and not hmac.compare_digest(
                self._root_at_previous, previous.root
            ):
                self._flag(
                    None,
                    "LOG_FORK",
                    f"the first {previous.size} entries do not hash to the checkpoint this"
                    " auditor accepted before: history was rewritten",
                )
