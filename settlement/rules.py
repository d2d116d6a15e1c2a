"""The settlement rules as one pure state machine (settlement-v1.md, "Rules").

Every party that judges a ledger entry uses this module and nothing else: the
service's projection (replaying the log), the service's live checks (before a
request and again under the ledger's write lock) and the auditor. So the
auditor's verdict is exactly what the service accepts.

* :func:`decode` turns a raw entry (kind, payload) into a record, or a
  :class:`Refusal` (R1 ``ENTRY_KIND_UNDEFINED``, R2 ``RECORD_MALFORMED``; a
  witness key's strict decoding includes its proof of possession, C5).
* :func:`check` evaluates the *state rules* R3..R22 and M1..M9 of one record
  against a :class:`LedgerState`, in the documented precedence, and returns the
  first that fails as a :class:`Refusal`, or ``None``. R16..R22 judge the records
  of version 2 (:class:`~settlement.records.CycleTariff`,
  :class:`~settlement.records.CycleBill`: a tariff plan and a bill over a billing
  cycle of several periods); they share R4..R6 with the bills of version 1.
  M1..M9 judge the market's records (:mod:`settlement.market`,
  docs/design/market-v1.md); they share R4..R6 too.
* :func:`apply` moves the state on; call it only when :func:`check` returned
  ``None`` (:func:`step` does both). A refused record changes nothing.

The cryptographic rules (C1..C7: proofs of possession, batch signatures, range,
bill and cycle bill proofs, the market records' signatures) are rules too, but
:func:`check` does not evaluate them: they are expensive and need the proof
machinery; the callers verify them *after* the state rules hold (the service
refuses, the auditor flags). They do not change the state transition: a record
whose state rules hold is applied by the projection and by the auditor alike
(the projection trusts the service that appended it; an entry with a bad
signature or proof written behind the service's back is the auditor's finding).

Version 1 and version 2 tariffs do not interact (a period may have both). A
cycle bill occupies every period of its cycle in the meter's bills, so a bill of
either version for one of them is ``BILL_EXISTS`` (R11, R18).

Identical records (R5): the identical batch, tariff or bill again is
``DUPLICATE_BATCH`` / ``DUPLICATE_TARIFF`` / ``DUPLICATE_BILL`` (and the market's
``DUPLICATE_ENROLMENT``, ``..._MARKET_DAY``, ``..._ORDER``, ``..._CANCELLATION``,
``..._CLEARING``). On a ledger it is a violation; the service answers it with the
original entry's receipt (:data:`IDEMPOTENT`, :meth:`LedgerState.original`).

**The market kinds are opt-in** (:data:`MARKET_KINDS`): :func:`decode` refuses them as
R1 unless the caller passes ``kinds=DEFINED_KINDS``. A judge decodes only the kinds it
judges in full, cryptographic rules included, and the market records' signatures (C7)
are verified by no caller yet: until the service and the auditor do, a market entry on
their ledger stays an undefined kind to them, flagged and not applied.

**Time.** Gate closure (M2, M5, M8) needs the time an entry arrives, and the rules have no
clock: :func:`check` and :func:`step` take it as ``time`` (seconds since the epoch), and
refuse to judge an order, a cancellation or a clearing without it
(:class:`~zkgrid.errors.InvalidArgumentError`). The service passes the time of the
request (its clock, read again under the ledger's write lock), a judge of a ledger the
time of the entry's checkpoint (the checkpoint signed by the transaction that appended
it). The other records ignore it.

Pure: no I/O, no clocks, no globals.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, TypeAlias

from ledger.entries import EntryKind
from settlement.market import (
    MARKET_KINDS,
    Clearing,
    MarketDay,
    MarketEnrolment,
    MarketRecord,
    Order,
    OrderCancellation,
    clear,
    decode_market_record,
)
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
from zkgrid.errors import InvalidArgumentError, Reason

if TYPE_CHECKING:  # the witness scheme (blspy) is imported only to decode a witness key
    from ledger.cosignature import WitnessRegistration

__all__ = [
    "BILL_EXISTS",
    "CHAIN_BROKEN",
    "CLEARING_EXISTS",
    "CLEARING_MISMATCH",
    "CRYPTO_PRECEDENCE",
    "CYCLE_INCOMPLETE",
    "DEFINED_KINDS",
    "DUPLICATE_BATCH",
    "DUPLICATE_BILL",
    "DUPLICATE_CANCELLATION",
    "DUPLICATE_CLEARING",
    "DUPLICATE_ENROLMENT",
    "DUPLICATE_MARKET_DAY",
    "DUPLICATE_ORDER",
    "DUPLICATE_PERIOD",
    "DUPLICATE_TARIFF",
    "ENROLMENT_EXISTS",
    "ENTRY_KIND_UNDEFINED",
    "GATE_CLOSED",
    "GATE_NOT_CLOSED",
    "IDEMPOTENT",
    "INTERVALS_MISMATCH",
    "MARKET_DAY_EXISTS",
    "MARKET_KINDS",
    "METER_EXISTS",
    "METER_REVOKED",
    "NOT_ENROLLED",
    "PRICE_OUT_OF_BOUNDS",
    "RECORD_MALFORMED",
    "SELF_TRADE",
    "SETTLEMENT_KINDS",
    "TARIFF_EXISTS",
    "UNKNOWN_BATCH",
    "UNKNOWN_MARKET_DAY",
    "UNKNOWN_METER",
    "UNKNOWN_ORDER",
    "UNKNOWN_TARIFF",
    "WITNESS_EXISTS",
    "LedgerRecord",
    "LedgerState",
    "MarketState",
    "MeterState",
    "OrderState",
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
# the market (M1..M9)
NOT_ENROLLED: Final = Reason.NOT_ENROLLED
ENROLMENT_EXISTS: Final = Reason.ENROLMENT_EXISTS
DUPLICATE_ENROLMENT: Final = Reason.DUPLICATE_ENROLMENT
UNKNOWN_MARKET_DAY: Final = Reason.UNKNOWN_MARKET_DAY
MARKET_DAY_EXISTS: Final = Reason.MARKET_DAY_EXISTS
DUPLICATE_MARKET_DAY: Final = Reason.DUPLICATE_MARKET_DAY
GATE_CLOSED: Final = Reason.GATE_CLOSED
GATE_NOT_CLOSED: Final = Reason.GATE_NOT_CLOSED
PRICE_OUT_OF_BOUNDS: Final = Reason.PRICE_OUT_OF_BOUNDS
SELF_TRADE: Final = Reason.SELF_TRADE
DUPLICATE_ORDER: Final = Reason.DUPLICATE_ORDER
UNKNOWN_ORDER: Final = Reason.UNKNOWN_ORDER
DUPLICATE_CANCELLATION: Final = Reason.DUPLICATE_CANCELLATION
CLEARING_MISMATCH: Final = Reason.CLEARING_MISMATCH
CLEARING_EXISTS: Final = Reason.CLEARING_EXISTS
DUPLICATE_CLEARING: Final = Reason.DUPLICATE_CLEARING

#: R5: the identical record again. The service answers these with the original receipt.
IDEMPOTENT: Final = frozenset(
    {
        DUPLICATE_BATCH,
        DUPLICATE_TARIFF,
        DUPLICATE_BILL,
        DUPLICATE_ENROLMENT,
        DUPLICATE_MARKET_DAY,
        DUPLICATE_ORDER,
        DUPLICATE_CANCELLATION,
        DUPLICATE_CLEARING,
    }
)

#: The order of the cryptographic rules' reasons (C1..C4), after every state rule.
CRYPTO_PRECEDENCE: Final = (Reason.SIGNATURE_INVALID, Reason.PROOF_MALFORMED, Reason.PROOF_INVALID)

#: The settlement kinds that carry a record (R1): what :func:`decode` decodes by default.
#: COSIGNATURE (7) has no payload defined.
SETTLEMENT_KINDS: Final[frozenset[EntryKind]] = frozenset(
    {
        EntryKind.METER_REGISTRATION,
        EntryKind.METER_REVOCATION,
        EntryKind.READING_BATCH,
        EntryKind.TARIFF,
        EntryKind.BILL,
        EntryKind.WITNESS_KEY,
    }
)
#: Every kind that carries a record: the settlement kinds and the market's
#: (:data:`MARKET_KINDS`, 8..12; opt-in for :func:`decode`, module docstring).
DEFINED_KINDS: Final[frozenset[EntryKind]] = SETTLEMENT_KINDS | MARKET_KINDS

LedgerRecord: TypeAlias = "Record | MarketRecord | WitnessRegistration"

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
class OrderState:
    """An order on the log: where it is, and the cancellation that withdrew it."""

    order: Order
    ref: Ref
    cancelled: Ref | None = None


@dataclass(slots=True)
class MarketState:
    """The market as the log knows it (docs/design/market-v1.md)."""

    #: meter id -> its enrolment (M6)
    enrolments: dict[str, tuple[MarketEnrolment, Ref]] = field(default_factory=dict)
    #: period -> its market day (M7)
    days: dict[str, tuple[MarketDay, Ref]] = field(default_factory=dict)
    #: order hash -> every order applied, live or cancelled (R5, M5)
    orders: dict[bytes, OrderState] = field(default_factory=dict)
    #: period -> its orders not cancelled, by hash, in ledger order (the clearing's input)
    open_orders: dict[str, dict[bytes, Order]] = field(default_factory=dict)
    #: (meter id, period) -> the hashes of the meter's orders of the period not cancelled (M4)
    meter_orders: dict[tuple[str, str], list[bytes]] = field(default_factory=dict)
    #: cancellation digest -> where it is (R5)
    cancellations: dict[bytes, Ref] = field(default_factory=dict)
    #: period -> its clearing (M8)
    clearings: dict[str, tuple[Clearing, Ref]] = field(default_factory=dict)


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
    #: the market's enrolments, market days, orders, cancellations and clearings (M1..M9)
    market: MarketState = field(default_factory=MarketState)
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
        market = self.market
        slot: tuple[object, Ref] | None = None
        if isinstance(record, MarketEnrolment):
            slot = market.enrolments.get(record.meter_id)
        elif isinstance(record, MarketDay):
            slot = market.days.get(record.period)
        elif isinstance(record, Clearing):
            slot = market.clearings.get(record.period)
        elif isinstance(record, Order):
            placed = market.orders.get(d)
            return None if placed is None else placed.ref
        elif isinstance(record, OrderCancellation):
            return market.cancellations.get(d)
        return slot[1] if slot is not None and slot[1].digest == d else None

    def live_orders(self, period: str) -> list[Order]:
        """The live orders of ``period`` in ledger order: placed, not cancelled, and their
        meter not revoked (a revocation withdraws the meter's orders of every period not
        cleared yet). The input of :func:`settlement.market.clear`."""
        orders = self.market.open_orders.get(period, {})
        return [o for o in orders.values() if not self.meters[o.meter_id].revoked]

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


def decode(
    kind: int, payload: bytes, kinds: frozenset[EntryKind] = SETTLEMENT_KINDS
) -> LedgerRecord | Refusal:
    """(R1, R2, C5) The record an entry carries, or why it carries none.

    ``kinds``: the kinds the caller judges (R1 refuses the others); by default the
    settlement kinds, :data:`DEFINED_KINDS` to judge the market too (module docstring).
    """
    if kind not in kinds or kind not in DEFINED_KINDS:
        try:
            name = EntryKind(kind).name
        except ValueError:
            name = str(kind)
        if kind in DEFINED_KINDS:
            detail = f"entry kind {name}: a record this judge does not decode (opt-in)"
        else:
            detail = f"entry kind {name} carries no defined record"
        return Refusal("R1", ENTRY_KIND_UNDEFINED, detail)
    entry_kind = EntryKind(kind)
    if entry_kind in MARKET_KINDS:
        try:
            return decode_market_record(entry_kind, payload)
        except RecordFormatError as exc:
            return Refusal("R2", RECORD_MALFORMED, f"{entry_kind.name}: {exc}")
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
            f"{plan} has a tariff for {_cycle_text(other)}, which overlaps {_cycle_text(tariff)}",
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


# --------------------------------------------------------------------------- the market


def _time(time: int | None, record: MarketRecord) -> int:
    """The entry's time, which M2, M5 and M8 need (module docstring, "Time")."""
    if isinstance(time, bool) or not isinstance(time, int):
        raise InvalidArgumentError(
            f"judging {type(record).__name__} needs the entry's time (seconds since the epoch)"
        )
    return time


def _check_enrolment(
    state: LedgerState, enrolment: MarketEnrolment, digest: bytes
) -> Refusal | None:
    meter = _meter(state, enrolment.meter_id)
    if isinstance(meter, Refusal):
        return meter
    who = f"meter {enrolment.meter_id!r}"
    existing = state.market.enrolments.get(enrolment.meter_id)
    if existing is not None and existing[1].digest == digest:
        return Refusal("R5", DUPLICATE_ENROLMENT, f"{who}: the same enrolment again")
    refused = _revoked(meter)
    if refused is not None:
        return refused
    if existing is not None:
        return Refusal("M6", ENROLMENT_EXISTS, f"{who} is enrolled in the market")
    return None


def _check_market_day(state: LedgerState, day: MarketDay, digest: bytes) -> Refusal | None:
    existing = state.market.days.get(day.period)
    if existing is None:
        return None
    if existing[1].digest == digest:
        return Refusal("R5", DUPLICATE_MARKET_DAY, f"the same market day for {day.period} again")
    return Refusal("M7", MARKET_DAY_EXISTS, f"the market day of {day.period} is published")


def _gate(state: LedgerState, day: MarketDay, time: int, rule: str, what: str) -> Refusal | None:
    """M2, M5: before the market day's gate closure, and the period not cleared."""
    if day.period in state.market.clearings:
        return Refusal(rule, GATE_CLOSED, f"{what}: the market of {day.period} is cleared")
    if time >= day.gate_closure:
        return Refusal(
            rule,
            GATE_CLOSED,
            f"{what}: the gate of {day.period} closed at {day.gate_closure} (seconds since the"
            f" epoch); the entry's time is {time}",
        )
    return None


def _check_order(state: LedgerState, order: Order, digest: bytes, time: int) -> Refusal | None:
    meter = _meter(state, order.meter_id)
    if isinstance(meter, Refusal):
        return meter
    who = f"meter {order.meter_id!r}"
    market = state.market
    if digest in market.orders:
        return Refusal("R5", DUPLICATE_ORDER, f"{who}: the same order again")
    refused = _revoked(meter)
    if refused is not None:
        return refused
    # M1: enrolled, the market day, its intervals
    if order.meter_id not in market.enrolments:
        return Refusal("M1", NOT_ENROLLED, f"{who} is not enrolled in the market")
    found = market.days.get(order.period)
    if found is None:
        return Refusal("M1", UNKNOWN_MARKET_DAY, f"no market day for {order.period}")
    day = found[0]
    interval = meter.registration.interval_minutes
    if interval != day.interval_minutes:
        return Refusal(
            "M1",
            INTERVALS_MISMATCH,
            f"the market of {order.period} trades {day.interval_minutes}-minute intervals;"
            f" {who} reports every {interval} minutes",
        )
    if order.last_interval >= day.intervals:
        return Refusal(
            "M1",
            INTERVALS_MISMATCH,
            f"the order ends at interval {order.last_interval}; the market day has"
            f" {day.intervals} intervals",
        )
    # M2: gate closure
    refused = _gate(state, day, time, "M2", "an order")
    if refused is not None:
        return refused
    # M3: within the period's tariff, interval by interval
    tariff_found = state.tariffs.get(order.period)
    if tariff_found is None:
        return Refusal("M3", UNKNOWN_TARIFF, f"no tariff for {order.period} to bound the price")
    tariff = tariff_found[0]
    if tariff.interval_minutes != day.interval_minutes:
        return Refusal(
            "M3",
            INTERVALS_MISMATCH,
            f"the tariff of {order.period} has {tariff.interval_minutes}-minute intervals;"
            f" the market day has {day.interval_minutes}",
        )
    price = order.limit_price
    for t in range(order.first_interval, order.last_interval + 1):
        low, high = tariff.export_credit[t], tariff.import_price[t]
        if not low <= price <= high:
            return Refusal(
                "M3",
                PRICE_OUT_OF_BOUNDS,
                f"limit price {price} is outside [{low}, {high}] (export credit, import price)"
                f" of interval {t} of {order.period}",
            )
    # M4: no self-trade
    for other_hash in market.meter_orders.get((order.meter_id, order.period), ()):
        other = market.orders[other_hash].order
        if other.side is not order.side and other.overlaps(order):
            return Refusal(
                "M4",
                SELF_TRADE,
                f"{who} has a live {other.side.name.lower()} for intervals"
                f" {other.first_interval}..{other.last_interval} of {order.period}",
            )
    return None


def _check_cancellation(
    state: LedgerState, cancellation: OrderCancellation, digest: bytes, time: int
) -> Refusal | None:
    meter = _meter(state, cancellation.meter_id)
    if isinstance(meter, Refusal):
        return meter
    who = f"meter {cancellation.meter_id!r}"
    market = state.market
    if digest in market.cancellations:
        return Refusal("R5", DUPLICATE_CANCELLATION, f"{who}: the same cancellation again")
    refused = _revoked(meter)
    if refused is not None:
        return refused
    placed = market.orders.get(cancellation.order_hash)
    if placed is None or placed.order.meter_id != cancellation.meter_id or placed.cancelled:
        return Refusal("M5", UNKNOWN_ORDER, f"the cancellation names no live order of {who}")
    day = market.days[placed.order.period][0]  # M1 held for the order
    return _gate(state, day, time, "M5", "a cancellation")


def _check_clearing(
    state: LedgerState, clearing: Clearing, digest: bytes, time: int
) -> Refusal | None:
    period = clearing.period
    market = state.market
    existing = market.clearings.get(period)
    if existing is not None and existing[1].digest == digest:
        return Refusal("R5", DUPLICATE_CLEARING, f"the same clearing of {period} again")
    found = market.days.get(period)
    if found is None:
        return Refusal("M8", UNKNOWN_MARKET_DAY, f"no market day for {period}")
    day = found[0]
    if existing is not None:
        return Refusal("M8", CLEARING_EXISTS, f"the market of {period} is cleared")
    if time < day.gate_closure:
        return Refusal(
            "M8",
            GATE_NOT_CLOSED,
            f"the gate of {period} closes at {day.gate_closure} (seconds since the epoch);"
            f" the entry's time is {time}",
        )
    expected = clear(day, state.live_orders(period))
    if clearing != expected:
        return Refusal(
            "M9", CLEARING_MISMATCH, f"the clearing of {period} {_difference(clearing, expected)}"
        )
    return None


def _difference(got: Clearing, expected: Clearing) -> str:
    """Where a clearing first differs from the recomputation (public facts only)."""
    if got.orders_digest != expected.orders_digest:
        return "names other orders than the live orders of the ledger"
    if len(got.intervals) != len(expected.intervals):
        return f"has {len(got.intervals)} intervals; the market day has {len(expected.intervals)}"
    for t, (a, b) in enumerate(zip(got.intervals, expected.intervals, strict=True)):
        if a.price != b.price:
            return f"prices interval {t} at {a.price}; the recomputation at {b.price}"
        if a.volume != b.volume:
            return f"matches {a.volume} Wh in interval {t}; the recomputation {b.volume} Wh"
        if a.trades != b.trades:
            return f"has other trades in interval {t} than the recomputation"
    return "differs from the recomputation"  # pragma: no cover - equal fields, equal records


def _check_market(
    state: LedgerState, record: MarketRecord, digest: bytes, time: int | None
) -> Refusal | None:
    if isinstance(record, MarketEnrolment):
        return _check_enrolment(state, record, digest)
    if isinstance(record, MarketDay):
        return _check_market_day(state, record, digest)
    if isinstance(record, Order):
        return _check_order(state, record, digest, _time(time, record))
    if isinstance(record, OrderCancellation):
        return _check_cancellation(state, record, digest, _time(time, record))
    return _check_clearing(state, record, digest, _time(time, record))


def _apply_market(state: LedgerState, record: MarketRecord, ref: Ref) -> None:
    market = state.market
    if isinstance(record, MarketEnrolment):
        market.enrolments[record.meter_id] = (record, ref)
    elif isinstance(record, MarketDay):
        market.days[record.period] = (record, ref)
    elif isinstance(record, Order):
        market.orders[ref.digest] = OrderState(record, ref)
        market.open_orders.setdefault(record.period, {})[ref.digest] = record
        market.meter_orders.setdefault((record.meter_id, record.period), []).append(ref.digest)
    elif isinstance(record, OrderCancellation):
        placed = market.orders[record.order_hash]
        placed.cancelled = ref
        order = placed.order
        del market.open_orders[order.period][record.order_hash]
        market.meter_orders[(order.meter_id, order.period)].remove(record.order_hash)
        market.cancellations[ref.digest] = ref
    else:
        market.clearings[record.period] = (record, ref)


_MARKET_TYPES = (MarketEnrolment, MarketDay, Order, OrderCancellation, Clearing)


def check(
    state: LedgerState,
    record: LedgerRecord,
    digest: bytes | None = None,
    *,
    time: int | None = None,
) -> Refusal | None:
    """(R3..R22, M1..M9) The first state rule ``record`` breaks in ``state``, by precedence.

    ``digest``: the record's :func:`record_digest` when the caller has it (saves a hash).
    ``time``: when the entry arrives, seconds since the epoch; required for an order, a
    cancellation and a clearing (module docstring, "Time"). The cryptographic rules
    C1..C7 are not evaluated here.
    """
    if isinstance(record, _MARKET_TYPES):
        d = record_digest(record) if digest is None else digest
        return _check_market(state, record, d, time)
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
    if isinstance(record, _MARKET_TYPES):
        _apply_market(state, record, ref)
    elif isinstance(record, MeterRegistration):
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


def step(
    state: LedgerState, record: LedgerRecord, ref: Ref, *, time: int | None = None
) -> Refusal | None:
    """:func:`check`, then :func:`apply` when no rule is broken; the refusal otherwise."""
    refusal = check(state, record, ref.digest, time=time)
    if refusal is None:
        apply(state, record, ref)
    return refusal
