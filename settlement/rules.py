"""The settlement rules as one pure state machine (settlement-v1.md, "Rules").

Every party that judges a ledger entry uses this module and nothing else: the
service's projection (replaying the log), the service's live checks (before a
request and again under the ledger's write lock) and the auditor. So the
auditor's verdict is exactly what the service accepts.

* :func:`decode` turns a raw entry (kind, payload) into a record, or a
  :class:`Refusal` (R1 ``ENTRY_KIND_UNDEFINED``, R2 ``RECORD_MALFORMED``; a
  witness key's strict decoding includes its proof of possession, C5).
* :func:`check` evaluates the *state rules* R3..R22 of one record against a
  :class:`LedgerState`, in the documented precedence, and returns the first
  that fails as a :class:`Refusal`, or ``None``. R16..R22 judge the records of
  version 2 (:class:`~settlement.records.CycleTariff`,
  :class:`~settlement.records.CycleBill`: a tariff plan and a bill over a billing
  cycle of several periods); they share R4..R6 with the bills of version 1.
* :func:`apply` moves the state on; call it only when :func:`check` returned
  ``None`` (:func:`step` does both). A refused record changes nothing.

The cryptographic rules (C1..C5: proofs of possession, batch signatures, range
and bill proofs) are rules too, but :func:`check` does not evaluate them: they
are expensive and need the proof machinery; the callers verify them *after* the
state rules hold (the service refuses, the auditor flags). They do not change
the state transition: a record whose state rules hold is applied by the
projection and by the auditor alike (the projection trusts the service that
appended it; an entry with a bad signature or proof written behind the
service's back is the auditor's finding).

Version 1 and version 2 tariffs do not interact (a period may have both). A
cycle bill occupies every period of its cycle in the meter's bills, so a bill of
either version for one of them is ``BILL_EXISTS`` (R11, R18).

Identical records (R5): the identical batch, tariff or bill again is
``DUPLICATE_BATCH`` / ``DUPLICATE_TARIFF`` / ``DUPLICATE_BILL``. On a ledger it
is a violation; the service answers it with the original entry's receipt
(:data:`IDEMPOTENT`, :meth:`LedgerState.original`).

Pure: no I/O, no clocks, no globals.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, TypeAlias

from ledger.entries import EntryKind
from settlement.periods import period_ordinal
from settlement.records import (
    ZERO_HASH,
    Bill,
    CycleBill,
    CycleTariff,
    MeterRegistration,
    MeterRevocation,
    ReadingBatch,
    Record,
    RecordFormatError,
    Tariff,
    record_type,
)
from zkgrid.errors import Reason

if TYPE_CHECKING:  # the witness scheme (blspy) is imported only to decode a witness key
    from ledger.cosignature import WitnessRegistration

__all__ = [
    "BILL_EXISTS",
    "CHAIN_BROKEN",
    "CRYPTO_PRECEDENCE",
    "CYCLE_INCOMPLETE",
    "DUPLICATE_BATCH",
    "DUPLICATE_BILL",
    "DUPLICATE_PERIOD",
    "DUPLICATE_TARIFF",
    "ENTRY_KIND_UNDEFINED",
    "IDEMPOTENT",
    "INTERVALS_MISMATCH",
    "METER_EXISTS",
    "METER_REVOKED",
    "RECORD_MALFORMED",
    "TARIFF_EXISTS",
    "UNKNOWN_BATCH",
    "UNKNOWN_METER",
    "UNKNOWN_TARIFF",
    "WITNESS_EXISTS",
    "LedgerRecord",
    "LedgerState",
    "MeterState",
    "Ref",
    "Refusal",
    "apply",
    "check",
    "decode",
    "record_digest",
    "step",
]

# --------------------------------------------------------------------------- reasons
# The members of the closed set the rules refuse with (zkgrid.errors.Reason).

ENTRY_KIND_UNDEFINED: Final = Reason.ENTRY_KIND_UNDEFINED
RECORD_MALFORMED: Final = Reason.RECORD_MALFORMED
METER_EXISTS: Final = Reason.METER_EXISTS
UNKNOWN_METER: Final = Reason.UNKNOWN_METER
DUPLICATE_BATCH: Final = Reason.DUPLICATE_BATCH
DUPLICATE_TARIFF: Final = Reason.DUPLICATE_TARIFF
DUPLICATE_BILL: Final = Reason.DUPLICATE_BILL
METER_REVOKED: Final = Reason.METER_REVOKED
INTERVALS_MISMATCH: Final = Reason.INTERVALS_MISMATCH
DUPLICATE_PERIOD: Final = Reason.DUPLICATE_PERIOD
CHAIN_BROKEN: Final = Reason.CHAIN_BROKEN
TARIFF_EXISTS: Final = Reason.TARIFF_EXISTS
BILL_EXISTS: Final = Reason.BILL_EXISTS
UNKNOWN_BATCH: Final = Reason.UNKNOWN_BATCH
UNKNOWN_TARIFF: Final = Reason.UNKNOWN_TARIFF
WITNESS_EXISTS: Final = Reason.WITNESS_EXISTS
CYCLE_INCOMPLETE: Final = Reason.CYCLE_INCOMPLETE

#: R5: the identical record again. The service answers these with the original receipt.
IDEMPOTENT: Final = frozenset({DUPLICATE_BATCH, DUPLICATE_TARIFF, DUPLICATE_BILL})

#: The order of the cryptographic rules' reasons (C1..C4), after every state rule.
CRYPTO_PRECEDENCE: Final = (Reason.SIGNATURE_INVALID, Reason.PROOF_MALFORMED, Reason.PROOF_INVALID)

#: The kinds that carry a record (R1); COSIGNATURE (7) has no payload defined.
_DEFINED_KINDS: Final = frozenset(
    {
        EntryKind.METER_REGISTRATION,
        EntryKind.METER_REVOCATION,
        EntryKind.READING_BATCH,
        EntryKind.TARIFF,
        EntryKind.BILL,
        EntryKind.WITNESS_KEY,
    }
)

LedgerRecord: TypeAlias = "Record | WitnessRegistration"

#: A published cycle tariff in the indices of :class:`LedgerState`: its cycle as day
#: ordinals (first, last) and its tariff hash.
_Cycle: TypeAlias = tuple[int, int, bytes]


@dataclass(frozen=True, slots=True)
class Refusal:
    """The first rule a record breaks: its label (``R8``), reason code and a message."""

    rule: str
    reason: Reason
    detail: str


@dataclass(frozen=True, slots=True)
class Ref:
    """Where an applied record sits in the log.

    ``digest`` is SHA-256 of the record's bytes (the batch hash, the tariff hash, a
    bill's digest); ``leaf_hash`` the entry's Merkle leaf hash when the holder keeps it
    (the service's receipts need it; the auditor's saved state does not).
    """

    index: int
    digest: bytes
    leaf_hash: bytes | None = None


@dataclass(slots=True)
class MeterState:
    """One meter as the log knows it."""

    registration: MeterRegistration
    ref: Ref
    revocation: MeterRevocation | None = None
    #: The sequence the meter's next batch must carry (R9).
    next_sequence: int = 0
    #: The prev_hash the meter's next batch must carry (R9; zeros before the first).
    last_batch_hash: bytes = ZERO_HASH
    #: period -> the meter's batch of that period (R8, R12).
    batches: dict[str, Ref] = field(default_factory=dict)
    #: period -> the meter's bill of that period (R11, R18); a cycle bill (record v2) is
    #: the bill of every period of its cycle (the same ref under each).
    bills: dict[str, Ref] = field(default_factory=dict)

    @property
    def revoked(self) -> bool:
        return self.revocation is not None


@dataclass(slots=True)
class LedgerState:
    """What the rules need to judge the next entry, built from the log in index order."""

    meters: dict[str, MeterState] = field(default_factory=dict)
    #: period -> (its tariff, where it is)
    tariffs: dict[str, tuple[Tariff, Ref]] = field(default_factory=dict)
    #: witness name -> 48-byte BLS public key (R15)
    witnesses: dict[str, bytes] = field(default_factory=dict)
    #: tariff hash -> (a cycle tariff (record v2), where it is) (R16, R17, R21)
    cycle_tariffs: dict[bytes, tuple[CycleTariff, Ref]] = field(default_factory=dict)
    _witness_keys: set[bytes] = field(default_factory=set, init=False, repr=False)
    #: Indices of ``cycle_tariffs``: by plan, by listed meter, and the default plans.
    _plan_cycles: dict[str, list[_Cycle]] = field(default_factory=dict, init=False, repr=False)
    _meter_cycles: dict[str, list[_Cycle]] = field(default_factory=dict, init=False, repr=False)
    _default_cycles: list[_Cycle] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        self._witness_keys = set(self.witnesses.values())
        for digest, (tariff, _ref) in self.cycle_tariffs.items():
            self._index_cycle_tariff(tariff, digest)

    def _index_cycle_tariff(self, tariff: CycleTariff, digest: bytes) -> None:
        cycle = (period_ordinal(tariff.first_period), period_ordinal(tariff.last_period), digest)
        self._plan_cycles.setdefault(tariff.plan, []).append(cycle)
        if tariff.is_default:
            self._default_cycles.append(cycle)
        for meter_id in tariff.meters:
            self._meter_cycles.setdefault(meter_id, []).append(cycle)

    def original(self, record: LedgerRecord, digest: bytes | None = None) -> Ref | None:
        """The entry of the identical record, when ``record`` is one (R5); else ``None``."""
        d = record_digest(record) if digest is None else digest
        if isinstance(record, Tariff):
            found = self.tariffs.get(record.period)
            return found[1] if found is not None and found[1].digest == d else None
        if isinstance(record, CycleTariff):
            cycle = self.cycle_tariffs.get(d)
            return cycle[1] if cycle is not None else None
        if isinstance(record, CycleBill):
            meter = self.meters.get(record.meter_id)
            ref = None if meter is None else meter.bills.get(record.first_period)
            return ref if ref is not None and ref.digest == d else None
        if isinstance(record, ReadingBatch | Bill):
            meter = self.meters.get(record.meter_id)
            if meter is None:
                return None
            table = meter.batches if isinstance(record, ReadingBatch) else meter.bills
            ref = table.get(record.period)
            return ref if ref is not None and ref.digest == d else None
        return None

    def cycle_tariff_for(self, meter_id: str, period: str) -> tuple[CycleTariff, Ref] | None:
        """(R21) The cycle tariff that applies to ``meter_id`` on ``period``: the plan listing
        the meter whose cycle contains the period, else the default plan whose cycle contains
        it unless a plan of a cycle overlapping the default's lists the meter (then none).
        R16 and R17 leave at most one candidate of each kind."""
        day = period_ordinal(period)
        listed = _overlapping(self._meter_cycles.get(meter_id, []), day, day)
        if listed is not None:
            return self.cycle_tariffs[listed]
        default = _overlapping(self._default_cycles, day, day)
        if default is None:
            return None
        tariff, ref = self.cycle_tariffs[default]
        first, last = period_ordinal(tariff.first_period), period_ordinal(tariff.last_period)
        if _overlapping(self._meter_cycles.get(meter_id, []), first, last) is not None:
            return None
        return tariff, ref

    def witness_key_registered(self, public_key: bytes) -> bool:
        return public_key in self._witness_keys


def record_digest(record: LedgerRecord) -> bytes:
    """SHA-256 of the record's canonical bytes."""
    return hashlib.sha256(record.encode()).digest()


# --------------------------------------------------------------------------- decoding


def decode(kind: int, payload: bytes) -> LedgerRecord | Refusal:
    """(R1, R2, C5) The record an entry carries, or why it carries none."""
    if kind not in _DEFINED_KINDS:
        try:
            name = EntryKind(kind).name
        except ValueError:
            name = str(kind)
        return Refusal("R1", ENTRY_KIND_UNDEFINED, f"entry kind {name} carries no defined record")
    entry_kind = EntryKind(kind)
    if entry_kind is EntryKind.WITNESS_KEY:
        from ledger.cosignature import WitnessError, WitnessRegistration

        try:
            return WitnessRegistration.decode(payload)  # C5: checks the proof of possession
        except WitnessError as exc:
            rule = "C5" if exc.reason is Reason.POP_INVALID else "R2"
            return Refusal(rule, exc.reason, str(exc))
    try:
        return record_type(entry_kind, payload).decode(payload)  # by the record version
    except RecordFormatError as exc:
        return Refusal("R2", RECORD_MALFORMED, f"{entry_kind.name}: {exc}")


# --------------------------------------------------------------------------- the state rules


def _meter(state: LedgerState, meter_id: str) -> MeterState | Refusal:
    meter = state.meters.get(meter_id)
    if meter is None:
        return Refusal("R4", UNKNOWN_METER, f"meter {meter_id!r} is not registered")
    return meter


def _revoked(meter: MeterState) -> Refusal | None:
    if meter.revocation is not None:
        return Refusal("R6", METER_REVOKED, f"meter {meter.registration.meter_id!r} is revoked")
    return None


def _check_batch(state: LedgerState, batch: ReadingBatch, digest: bytes) -> Refusal | None:
    meter = _meter(state, batch.meter_id)
    if isinstance(meter, Refusal):
        return meter
    existing = meter.batches.get(batch.period)
    who = f"meter {batch.meter_id!r}"
    if existing is not None and existing.digest == digest:
        return Refusal("R5", DUPLICATE_BATCH, f"{who}: the same batch for {batch.period} again")
    refused = _revoked(meter)
    if refused is not None:
        return refused
    if batch.interval_minutes != meter.registration.interval_minutes:
        return Refusal(
            "R7",
            INTERVALS_MISMATCH,
            f"{who} reports every {meter.registration.interval_minutes} minutes; the batch"
            f" has {batch.interval_minutes}",
        )
    if existing is not None:
        return Refusal("R8", DUPLICATE_PERIOD, f"{who} already has a batch for {batch.period}")
    if batch.sequence != meter.next_sequence:
        return Refusal(
            "R9",
            CHAIN_BROKEN,
            f"batch sequence {batch.sequence}; {who} is at {meter.next_sequence}",
        )
    if batch.prev_hash != meter.last_batch_hash:
        return Refusal("R9", CHAIN_BROKEN, "prev_hash is not the hash of the meter's last batch")
    return None


def _check_bill(state: LedgerState, bill: Bill, digest: bytes) -> Refusal | None:
    meter = _meter(state, bill.meter_id)
    if isinstance(meter, Refusal):
        return meter
    who = f"meter {bill.meter_id!r}"
    existing = meter.bills.get(bill.period)
    if existing is not None and existing.digest == digest:
        return Refusal("R5", DUPLICATE_BILL, f"{who}: the same bill for {bill.period} again")
    refused = _revoked(meter)
    if refused is not None:
        return refused
    if existing is not None:
        return Refusal("R11", BILL_EXISTS, f"{who} already has a bill for {bill.period}")
    batch = meter.batches.get(bill.period)
    if batch is None or batch.digest != bill.batch_hash:
        return Refusal(
            "R12", UNKNOWN_BATCH, f"the bill does not name {who}'s batch for {bill.period}"
        )
    found = state.tariffs.get(bill.period)
    if found is None or found[1].digest != bill.tariff_hash:
        return Refusal(
            "R13", UNKNOWN_TARIFF, f"the bill does not name the published tariff of {bill.period}"
        )
    tariff = found[0]
    # R7 holds for every applied batch: its interval is the meter's.
    interval = meter.registration.interval_minutes
    if tariff.interval_minutes != interval:
        return Refusal(
            "R14",
            INTERVALS_MISMATCH,
            f"the tariff of {bill.period} has {tariff.interval_minutes}-minute intervals;"
            f" the batch has {interval}",
        )
    return None


def _overlapping(cycles: list[_Cycle], first: int, last: int) -> bytes | None:
    """The tariff hash of the first cycle of ``cycles`` sharing a day with ``first..last``."""
    for start, end, digest in cycles:
        if start <= last and first <= end:
            return digest
    return None


def _cycle_text(record: CycleTariff | CycleBill) -> str:
    return f"{record.first_period}..{record.last_period}"


def _check_cycle_tariff(state: LedgerState, tariff: CycleTariff, digest: bytes) -> Refusal | None:
    plan = f"plan {tariff.plan!r}"
    if digest in state.cycle_tariffs:
        return Refusal(
            "R5", DUPLICATE_TARIFF, f"the same tariff of {plan} for {_cycle_text(tariff)} again"
        )
    first, last = period_ordinal(tariff.first_period), period_ordinal(tariff.last_period)
    clash = _overlapping(state._plan_cycles.get(tariff.plan, []), first, last)
    if clash is not None:
        other = state.cycle_tariffs[clash][0]
        return Refusal(
            "R16",
            TARIFF_EXISTS,
            f"{plan} has a tariff for {_cycle_text(other)}, which overlaps"
            f" {_cycle_text(tariff)}",
        )
    if tariff.is_default:
        clash = _overlapping(state._default_cycles, first, last)
        if clash is not None:
            other = state.cycle_tariffs[clash][0]
            return Refusal(
                "R17",
                TARIFF_EXISTS,
                f"the default plan {other.plan!r} of {_cycle_text(other)} overlaps"
                f" {_cycle_text(tariff)}: one default plan at a time",
            )
    for meter_id in tariff.meters:
        clash = _overlapping(state._meter_cycles.get(meter_id, []), first, last)
        if clash is not None:
            other = state.cycle_tariffs[clash][0]
            return Refusal(
                "R17",
                TARIFF_EXISTS,
                f"meter {meter_id!r} is listed by plan {other.plan!r} for"
                f" {_cycle_text(other)}, which overlaps {_cycle_text(tariff)}",
            )
    return None


def _check_cycle_bill(state: LedgerState, bill: CycleBill, digest: bytes) -> Refusal | None:
    meter = _meter(state, bill.meter_id)
    if isinstance(meter, Refusal):
        return meter
    who = f"meter {bill.meter_id!r}"
    cycle = _cycle_text(bill)
    existing = meter.bills.get(bill.first_period)
    if existing is not None and existing.digest == digest:
        return Refusal("R5", DUPLICATE_BILL, f"{who}: the same bill for {cycle} again")
    refused = _revoked(meter)
    if refused is not None:
        return refused
    periods = bill.periods
    for period in periods:
        if period in meter.bills:
            return Refusal(
                "R18", BILL_EXISTS, f"{who} already has a bill for {period} (of the cycle {cycle})"
            )
    for period in periods:
        if period not in meter.batches:
            return Refusal(
                "R19",
                CYCLE_INCOMPLETE,
                f"{who} has no batch for {period}: the cycle {cycle} is not complete",
            )
    for i, (period, batch_hash) in enumerate(zip(periods, bill.batch_hashes, strict=True)):
        if meter.batches[period].digest != batch_hash:
            return Refusal(
                "R20",
                UNKNOWN_BATCH,
                f"batch hash {i} of the bill does not name {who}'s batch for {period}",
            )
    found = state.cycle_tariffs.get(bill.tariff_hash)
    if found is None or (found[0].first_period, found[0].last_period) != (
        bill.first_period,
        bill.last_period,
    ):
        return Refusal(
            "R21", UNKNOWN_TARIFF, f"the bill does not name a published cycle tariff of {cycle}"
        )
    tariff = found[0]
    if not tariff.lists(bill.meter_id):
        listed = _overlapping(
            state._meter_cycles.get(bill.meter_id, []),
            period_ordinal(bill.first_period),
            period_ordinal(bill.last_period),
        )
        if not tariff.is_default or listed is not None:
            return Refusal(
                "R21",
                UNKNOWN_TARIFF,
                f"plan {tariff.plan!r} of {cycle} does not apply to {who}"
                + (
                    f" (plan {state.cycle_tariffs[listed][0].plan!r} lists it)"
                    if listed is not None
                    else ""
                ),
            )
    # R7 holds for every applied batch: its interval is the meter's.
    interval = meter.registration.interval_minutes
    if tariff.interval_minutes != interval:
        return Refusal(
            "R22",
            INTERVALS_MISMATCH,
            f"the tariff of plan {tariff.plan!r} has {tariff.interval_minutes}-minute"
            f" intervals; {who}'s batches have {interval}",
        )
    return None


def check(state: LedgerState, record: LedgerRecord, digest: bytes | None = None) -> Refusal | None:
    """(R3..R22) The first state rule ``record`` breaks in ``state``, by precedence.

    ``digest``: the record's :func:`record_digest` when the caller has it (saves a hash).
    The cryptographic rules C1..C5 are not evaluated here.
    """
    if isinstance(record, MeterRegistration):
        if record.meter_id in state.meters:
            return Refusal("R3", METER_EXISTS, f"meter {record.meter_id!r} is already registered")
        return None
    if isinstance(record, MeterRevocation):
        meter = _meter(state, record.meter_id)
        if isinstance(meter, Refusal):
            return meter
        return _revoked(meter)
    if not isinstance(record, Tariff | ReadingBatch | Bill | CycleTariff | CycleBill):
        # a witness registration
        if record.name in state.witnesses or record.public_key in state._witness_keys:
            return Refusal(
                "R15", WITNESS_EXISTS, f"witness {record.name!r} or its key is registered"
            )
        return None
    d = record_digest(record) if digest is None else digest
    if isinstance(record, CycleTariff):
        return _check_cycle_tariff(state, record, d)
    if isinstance(record, CycleBill):
        return _check_cycle_bill(state, record, d)
    if isinstance(record, Tariff):
        found = state.tariffs.get(record.period)
        if found is None:
            return None
        if found[1].digest == d:
            return Refusal("R5", DUPLICATE_TARIFF, f"the same tariff for {record.period} again")
        return Refusal("R10", TARIFF_EXISTS, f"the tariff for {record.period} is published")
    if isinstance(record, ReadingBatch):
        return _check_batch(state, record, d)
    return _check_bill(state, record, d)


def apply(state: LedgerState, record: LedgerRecord, ref: Ref) -> None:
    """Apply ``record`` at ``ref``; only after :func:`check` returned ``None`` for it."""
    if isinstance(record, MeterRegistration):
        state.meters[record.meter_id] = MeterState(record, ref)
    elif isinstance(record, MeterRevocation):
        state.meters[record.meter_id].revocation = record
    elif isinstance(record, Tariff):
        state.tariffs[record.period] = (record, ref)
    elif isinstance(record, ReadingBatch):
        meter = state.meters[record.meter_id]
        meter.batches[record.period] = ref
        meter.next_sequence = record.sequence + 1
        meter.last_batch_hash = ref.digest
    elif isinstance(record, Bill):
        state.meters[record.meter_id].bills[record.period] = ref
    elif isinstance(record, CycleTariff):
        state.cycle_tariffs[ref.digest] = (record, ref)
        state._index_cycle_tariff(record, ref.digest)
    elif isinstance(record, CycleBill):
        bills = state.meters[record.meter_id].bills
        for period in record.periods:
            bills[period] = ref
    else:  # a witness registration
        state.witnesses[record.name] = record.public_key
        state._witness_keys.add(record.public_key)


def step(state: LedgerState, record: LedgerRecord, ref: Ref) -> Refusal | None:
    """:func:`check`, then :func:`apply` when no rule is broken; the refusal otherwise."""
    refusal = check(state, record, ref.digest)
    if refusal is None:
        apply(state, record, ref)
    return refusal
