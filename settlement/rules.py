"""The settlement rules as one pure state machine (settlement-v1.md, "Rules").

Every party that judges a ledger entry uses this module and nothing else: the
service's projection (replaying the log), the service's live checks (before a
request and again under the ledger's write lock) and the auditor. So the
auditor's verdict is exactly what the service accepts.

* :func:`decode` turns a raw entry (kind, payload) into a record, or a
  :class:`Refusal` (R1 ``ENTRY_KIND_UNDEFINED``, R2 ``RECORD_MALFORMED``; a
  witness key's strict decoding includes its proof of possession, C5).
* :func:`check` evaluates the *state rules* R3..R22 and M1..M13 of one record
  against a :class:`LedgerState`, in the documented precedence, and returns the
  first that fails as a :class:`Refusal`, or ``None``. R16..R22 judge the records
  of version 2 (:class:`~settlement.records.CycleTariff`,
  :class:`~settlement.records.CycleBill`: a tariff plan and a bill over a billing
  cycle of several periods); they share R4..R6 with the bills of version 1.
  M1..M9 judge the market's records (:mod:`settlement.market`,
  docs/design/market-v1.md) and M10..M13 its delivery steps and defaults (below); they
  share R4..R6 too.
* :func:`apply` moves the state on; call it only when :func:`check` returned
  ``None`` (:func:`step` does both). A refused record changes nothing.

The cryptographic rules (C1..C8: proofs of possession, batch signatures, range,
bill and cycle bill proofs, the market records' signatures, the delivery steps'
proofs) are rules too, but
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
``..._CLEARING``, ``..._DELIVERY``). On a ledger it is a violation; the service answers it with the
original entry's receipt (:data:`IDEMPOTENT`, :meth:`LedgerState.original`).

**The market kinds are opt-in** (:data:`MARKET_KINDS`): :func:`decode` refuses them as
R1 unless the caller passes ``kinds=DEFINED_KINDS``. A judge decodes only the kinds it
judges in full, cryptographic rules included, and the market records' signatures (C7)
and the delivery proofs (C8) are verified by no caller yet: until the service and the
auditor do, a market entry on their ledger stays an undefined kind to them, flagged and
not applied.

**Time.** Gate closure (M2, M5, M8) and the delivery deadlines (M12) need the time an
entry arrives, and the rules have no clock: :func:`check` and :func:`step` take it as
``time`` (seconds since the epoch), and refuse to judge an order, a cancellation, a
clearing, a delivery step or a default without it
(:class:`~zkgrid.errors.InvalidArgumentError`). The service passes the time of the
request (its clock, read again under the ledger's write lock), a judge of a ledger the
time of the entry's checkpoint (the checkpoint signed by the transaction that appended
it). The other records ignore it.

**Delivery** (docs/design/market-v1.md, "Delivery and settlement over commitments").
For trade ``k`` of interval ``t`` of a cleared period, the seller's
:class:`~settlement.market.DeliveryAllocation` commits ``A``, the buyer's
:class:`~settlement.market.Delivery` commits ``D`` (the delivered energy), and the
utility's :class:`~settlement.market.DeliveryDefault` settles a step missed at its
deadline with nothing delivered (a defaulted allocation defaults the whole trade). The
state keeps per trade ``A``, ``D`` or the default (:class:`TradeState`), and per party and
interval its trades in trade order, so each step finds the ``D_j`` of the party's earlier
trades (:meth:`LedgerState.earlier_deliveries`). A step (after R4, R5
``DUPLICATE_DELIVERY``, R6) and a default (after R5):

* M10 names a trade of the period's clearing (the clearing hash, the interval, the
  index), and a step's meter is its seller (allocation) or buyer (delivery)
  (``UNKNOWN_TRADE``; as M5, another meter's trade is not told apart from none);
* M11 the step is not made and the trade not defaulted; a default's step is missing
  (``DELIVERY_EXISTS``);
* M12 a step's time is before its deadline (the market day's ``seller_deadline`` for an
  allocation, ``buyer_deadline`` for a delivery: ``DEADLINE_PASSED``), a default's at or
  after the missed step's (``DEADLINE_NOT_PASSED``);
* M13 the step's inputs are on the ledger: the trade's allocation (a delivery, and a
  delivery's default), the party's batch of the period, every earlier trade of the
  party in the interval delivered or defaulted (``DELIVERY_NOT_READY``).

Refusals a retry can never lift (M10..M12) come before the one it can (M13). C8, the
step's circuit proof, is verified by the callers over :func:`allocation_statement_for`
and :func:`delivery_statement_for`; :func:`due_defaults` lists the defaults the utility
may append.

Pure: no I/O, no clocks, no globals.
"""

from __future__ import annotations

import bisect
import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, TypeAlias

from ledger.entries import EntryKind
from settlement.market import (
    MARKET_KINDS,
    Clearing,
    Delivery,
    DeliveryAllocation,
    DeliveryDefault,
    DeliveryStep,
    MarketDay,
    MarketEnrolment,
    MarketRecord,
    Order,
    OrderCancellation,
    Side,
    Trade,
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
    from circuits.r1cs import R1CSStatement  # the proof system only for C8's statements
    from ledger.cosignature import WitnessRegistration

__all__ = [
    "BILL_EXISTS",
    "CHAIN_BROKEN",
    "CLEARING_EXISTS",
    "CLEARING_MISMATCH",
    "CRYPTO_PRECEDENCE",
    "CYCLE_INCOMPLETE",
    "DEADLINE_NOT_PASSED",
    "DEADLINE_PASSED",
    "DEFINED_KINDS",
    "DELIVERY_EXISTS",
    "DELIVERY_NOT_READY",
    "DUPLICATE_BATCH",
    "DUPLICATE_BILL",
    "DUPLICATE_CANCELLATION",
    "DUPLICATE_CLEARING",
    "DUPLICATE_DELIVERY",
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
    "UNKNOWN_TRADE",
    "WITNESS_EXISTS",
    "LedgerRecord",
    "LedgerState",
    "MarketState",
    "MeterState",
    "OrderState",
    "Ref",
    "Refusal",
    "TradeState",
    "allocation_statement_for",
    "apply",
    "check",
    "decode",
    "delivery_statement_for",
    "due_defaults",
    "ledger_order_time",
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
# the delivery steps (M10..M13)
UNKNOWN_TRADE: Final = Reason.UNKNOWN_TRADE
DELIVERY_EXISTS: Final = Reason.DELIVERY_EXISTS
DUPLICATE_DELIVERY: Final = Reason.DUPLICATE_DELIVERY
DEADLINE_PASSED: Final = Reason.DEADLINE_PASSED
DEADLINE_NOT_PASSED: Final = Reason.DEADLINE_NOT_PASSED
DELIVERY_NOT_READY: Final = Reason.DELIVERY_NOT_READY

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
        DUPLICATE_DELIVERY,
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
#: (:data:`MARKET_KINDS`, 8..15; opt-in for :func:`decode`, module docstring).
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
class TradeState:
    """A trade's delivery steps as the log knows them (M10..M13): the seller's ``A`` and the
    buyer's ``D`` (33-byte commitments) or the default, each with where it is. The trade's
    delivered energy is ``D``, or 0 (the identity) once defaulted."""

    allocation: bytes | None = None
    allocated: Ref | None = None
    delivery: bytes | None = None
    delivered: Ref | None = None
    default: DeliveryStep | None = None
    defaulted: Ref | None = None

    @property
    def settled(self) -> bool:
        """Whether the trade's delivered energy is fixed: a delivery, or a default (0)."""
        return self.delivery is not None or self.default is not None


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
    #: (period, interval, trade index) -> the trade's steps, once one is applied (M10..M13)
    trades: dict[tuple[str, int, int], TradeState] = field(default_factory=dict)
    #: (period, interval, meter id, side) -> the meter's trades of the interval in trade
    #: order, as seller (``Side.OFFER``) or buyer (``Side.BID``); filled with the clearing
    party_trades: dict[tuple[str, int, str, Side], list[int]] = field(default_factory=dict)


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
    #: the market's enrolments, market days, orders, cancellations, clearings (M1..M9)
    #: and the trades' delivery steps (M10..M13)
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
        elif isinstance(record, DeliveryAllocation | Delivery | DeliveryDefault):
            ref = _step_ref(market.trades.get(_trade_key(record)), record)
            return ref if ref is not None and ref.digest == d else None
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

    def trade(self, period: str, interval: int, index: int) -> Trade | None:
        """Trade ``index`` of ``interval`` in the clearing of ``period``, or ``None``."""
        found = self.market.clearings.get(period)
        if found is None:
            return None
        intervals = found[0].intervals
        if not 0 <= interval < len(intervals) or not 0 <= index < len(intervals[interval].trades):
            return None
        return intervals[interval].trades[index]

    def earlier_trades(
        self, period: str, interval: int, index: int, step: DeliveryStep
    ) -> list[int]:
        """The indices, in trade order, of the earlier trades of the interval (smaller index)
        of the party that makes ``step`` of trade ``index``: the seller's sales for the
        allocation (``S(k)``), the buyer's purchases for the delivery (``B(k)``)
        (docs/notes/market.md). :class:`InvalidArgumentError` for a trade the clearing of
        ``period`` does not have."""
        trade = self.trade(period, interval, index)
        if trade is None:
            raise InvalidArgumentError(f"no trade {index} of interval {interval} of {period}")
        if step is DeliveryStep.ALLOCATION:
            own = self.market.party_trades[(period, interval, trade.seller, Side.OFFER)]
        else:
            own = self.market.party_trades[(period, interval, trade.buyer, Side.BID)]
        return own[: bisect.bisect_left(own, index)]

    def earlier_deliveries(
        self, period: str, interval: int, index: int, step: DeliveryStep
    ) -> list[bytes]:
        """The ``D_j`` (33 bytes each) of :meth:`earlier_trades`, in trade order, defaulted
        trades left out (their ``D_j`` is the identity: no input, docs/notes/market.md
        (D4)): the earlier inputs of the step's statement. :class:`InvalidArgumentError`
        when one of them is neither delivered nor defaulted (M13 has not held)."""
        out: list[bytes] = []
        for j in self.earlier_trades(period, interval, index, step):
            state = self.market.trades.get((period, interval, j))
            if state is None or not state.settled:
                raise InvalidArgumentError(
                    f"trade {j} of interval {interval} of {period} is neither delivered nor"
                    " defaulted"
                )
            if state.delivery is not None:
                out.append(state.delivery)
        return out


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
    """The entry's time, which M2, M5, M8 and M12 need (module docstring, "Time")."""
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


# --------------------------------------------------------------------------- delivery steps

DeliveryRecord: TypeAlias = "DeliveryAllocation | Delivery | DeliveryDefault"


def _trade_key(record: DeliveryRecord) -> tuple[str, int, int]:
    return record.period, record.interval, record.trade_index


def _step_ref(state: TradeState | None, record: DeliveryRecord) -> Ref | None:
    """Where the step (or default) ``record`` would sit in the trade's state (R5)."""
    if state is None:
        return None
    if isinstance(record, DeliveryAllocation):
        return state.allocated
    if isinstance(record, Delivery):
        return state.delivered
    return state.defaulted


def _trade_text(record: DeliveryRecord) -> str:
    return f"trade {record.trade_index} of interval {record.interval} of {record.period}"


def _named_trade(state: LedgerState, record: DeliveryRecord) -> Trade | Refusal:
    """M10: the trade the record names, in the clearing it names (the period's)."""
    found = state.market.clearings.get(record.period)
    trade = state.trade(record.period, record.interval, record.trade_index)
    if found is None or found[1].digest != record.clearing_hash or trade is None:
        return Refusal(
            "M10",
            UNKNOWN_TRADE,
            f"{_trade_text(record)}: the period's clearing has no such trade",
        )
    return trade


def _deadline(state: LedgerState, record: DeliveryRecord, step: DeliveryStep) -> int:
    day = state.market.days[record.period][0]  # M8 held for the clearing
    return day.seller_deadline if step is DeliveryStep.ALLOCATION else day.buyer_deadline


def _check_step(
    state: LedgerState, record: DeliveryAllocation | Delivery, digest: bytes, time: int
) -> Refusal | None:
    """R4, R5, R6, then M10..M13 for a delivery step (module docstring)."""
    meter = _meter(state, record.meter_id)
    if isinstance(meter, Refusal):
        return meter
    who = f"meter {record.meter_id!r}"
    what = _trade_text(record)
    step = record.STEP
    trade_state = state.market.trades.get(_trade_key(record))
    made = _step_ref(trade_state, record)
    if made is not None and made.digest == digest:
        return Refusal("R5", DUPLICATE_DELIVERY, f"{who}: the same {step.context_name} again")
    refused = _revoked(meter)
    if refused is not None:
        return refused
    # M10: the trade, and the meter is its party for this step
    trade = _named_trade(state, record)
    if isinstance(trade, Refusal):
        return trade
    seller = step is DeliveryStep.ALLOCATION
    if (trade.seller if seller else trade.buyer) != record.meter_id:
        # as M5: another meter's trade is not told apart from none (no party is named)
        return Refusal(
            "M10",
            UNKNOWN_TRADE,
            f"{what} is no trade of {who} as {'seller' if seller else 'buyer'}",
        )
    # M11: the step is not made, the trade not defaulted
    if trade_state is not None:
        if trade_state.default is not None:
            return Refusal(
                "M11",
                DELIVERY_EXISTS,
                f"{what} is defaulted (its {trade_state.default.context_name} was missed)",
            )
        if made is not None:
            return Refusal("M11", DELIVERY_EXISTS, f"{what} has its {step.context_name}")
    # M12: before the step's deadline
    deadline = _deadline(state, record, step)
    if time >= deadline:
        return Refusal(
            "M12",
            DEADLINE_PASSED,
            f"the {step.context_name} deadline of {record.period} was {deadline} (seconds since"
            f" the epoch); the entry's time is {time}",
        )
    # M13: the step's inputs are on the ledger
    if not seller and (trade_state is None or trade_state.allocation is None):
        return Refusal("M13", DELIVERY_NOT_READY, f"{what} is not allocated yet")
    if record.period not in meter.batches:
        return Refusal("M13", DELIVERY_NOT_READY, f"{who} has no batch for {record.period}")
    for j in state.earlier_trades(record.period, record.interval, record.trade_index, step):
        earlier = state.market.trades.get((record.period, record.interval, j))
        if earlier is None or not earlier.settled:
            return Refusal(
                "M13",
                DELIVERY_NOT_READY,
                f"{who}'s earlier trade {j} of interval {record.interval} is neither delivered"
                " nor defaulted",
            )
    return None


def _check_default(
    state: LedgerState, default: DeliveryDefault, digest: bytes, time: int
) -> Refusal | None:
    """R5, then M10..M13 for a default (module docstring)."""
    what = _trade_text(default)
    step = default.step
    trade_state = state.market.trades.get(_trade_key(default))
    original = _step_ref(trade_state, default)
    if original is not None and original.digest == digest:
        return Refusal("R5", DUPLICATE_DELIVERY, f"the same default of {what} again")
    trade = _named_trade(state, default)
    if isinstance(trade, Refusal):
        return trade
    # M11: the step is missing, the trade not defaulted
    if trade_state is not None:
        if trade_state.default is not None:
            return Refusal("M11", DELIVERY_EXISTS, f"{what} is defaulted")
        made = trade_state.allocation if step is DeliveryStep.ALLOCATION else trade_state.delivery
        if made is not None:
            return Refusal("M11", DELIVERY_EXISTS, f"{what} has its {step.context_name}")
    # M12: at or after the missed step's deadline
    deadline = _deadline(state, default, step)
    if time < deadline:
        return Refusal(
            "M12",
            DEADLINE_NOT_PASSED,
            f"the {step.context_name} deadline of {default.period} is {deadline} (seconds since"
            f" the epoch); the entry's time is {time}",
        )
    # M13: a missed delivery follows an allocation (without one, the allocation was missed)
    if step is DeliveryStep.DELIVERY and (trade_state is None or trade_state.allocation is None):
        return Refusal(
            "M13",
            DELIVERY_NOT_READY,
            f"{what} is not allocated: its allocation, not its delivery, was missed",
        )
    return None


def _apply_step(market: MarketState, record: DeliveryRecord, ref: Ref) -> None:
    trade_state = market.trades.setdefault(_trade_key(record), TradeState())
    if isinstance(record, DeliveryAllocation):
        trade_state.allocation, trade_state.allocated = record.commitment, ref
    elif isinstance(record, Delivery):
        trade_state.delivery, trade_state.delivered = record.commitment, ref
    else:
        trade_state.default, trade_state.defaulted = record.step, ref


def _index_trades(market: MarketState, clearing: Clearing) -> None:
    """Each party's trades per interval, in trade order (M13's earlier trades)."""
    for t, result in enumerate(clearing.intervals):
        for k, trade in enumerate(result.trades):
            for party, side in ((trade.seller, Side.OFFER), (trade.buyer, Side.BID)):
                market.party_trades.setdefault((clearing.period, t, party, side), []).append(k)


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
    if isinstance(record, DeliveryAllocation | Delivery):
        return _check_step(state, record, digest, _time(time, record))
    if isinstance(record, DeliveryDefault):
        return _check_default(state, record, digest, _time(time, record))
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
    elif isinstance(record, DeliveryAllocation | Delivery | DeliveryDefault):
        _apply_step(market, record, ref)
    else:
        market.clearings[record.period] = (record, ref)
        _index_trades(market, record)


_MARKET_TYPES = (
    MarketEnrolment,
    MarketDay,
    Order,
    OrderCancellation,
    Clearing,
    DeliveryAllocation,
    Delivery,
    DeliveryDefault,
)


def check(
    state: LedgerState,
    record: LedgerRecord,
    digest: bytes | None = None,
    *,
    time: int | None = None,
) -> Refusal | None:
    """(R3..R22, M1..M13) The first state rule ``record`` breaks in ``state``, by precedence.

    ``digest``: the record's :func:`record_digest` when the caller has it (saves a hash).
    ``time``: when the entry arrives, seconds since the epoch; required for an order, a
    cancellation, a clearing, a delivery step and a default (module docstring, "Time").
    The cryptographic rules C1..C8 are not evaluated here.
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


# --------------------------------------------------------------------------- C8, defaults due


def _step_inputs(
    state: LedgerState, record: DeliveryAllocation | Delivery, batch: ReadingBatch
) -> tuple[Trade, bytes, list[bytes]]:
    """The trade, the party's batch commitment of the interval (the seller's export
    ``2t + 1``, the buyer's import ``2t``) and the earlier ``D_j``, from the state."""
    step = record.STEP
    trade = state.trade(record.period, record.interval, record.trade_index)
    found = state.market.clearings.get(record.period)
    if trade is None or found is None or found[1].digest != record.clearing_hash:
        raise InvalidArgumentError(f"{_trade_text(record)} is not a trade of the ledger")
    party = trade.seller if step is DeliveryStep.ALLOCATION else trade.buyer
    if party != record.meter_id:
        raise InvalidArgumentError(f"{_trade_text(record)} is no trade of {record.meter_id!r}")
    if not isinstance(batch, ReadingBatch):
        raise InvalidArgumentError("the party's batch must be a ReadingBatch")
    meter = state.meters.get(party)
    ref = None if meter is None else meter.batches.get(record.period)
    if ref is None or batch.meter_id != party or ref.digest != batch.batch_hash():
        raise InvalidArgumentError(
            f"the batch is not the ledger's batch of {party!r} for {record.period}"
        )
    position = 2 * record.interval + (1 if step is DeliveryStep.ALLOCATION else 0)
    if position >= len(batch.commitments):
        raise InvalidArgumentError(f"the batch has no interval {record.interval}")
    earlier = state.earlier_deliveries(record.period, record.interval, record.trade_index, step)
    return trade, batch.commitments[position], earlier


def allocation_statement_for(
    state: LedgerState, allocation: DeliveryAllocation, batch: ReadingBatch
) -> R1CSStatement:
    """(C8) The statement an allocation's proof must satisfy, from the ledger: the seller's
    export ``E`` of the interval (commitment ``2t + 1`` of ``batch``, the ledger's batch of
    the seller for the period), the ``D_j`` of the seller's earlier trades of the interval
    in trade order (defaults left out), the trade's public quantity and the allocation's
    ``A``, with the context of the trade and the step (docs/notes/market.md (D1), (D2),
    (D4)). For :meth:`~circuits.r1cs.R1CSStatement.verify_batch` and ``find_invalid``.

    Written once for the service and the auditor; call it where the state rules of the
    allocation hold (before or after it is applied: neither changes its inputs).
    :class:`InvalidArgumentError` when they do not (another trade, another batch, an
    earlier trade not settled); :class:`~zkgrid.errors.ProofFormatError` for a proof or a
    commitment that does not parse (``PROOF_MALFORMED``)."""
    from settlement.market_circuits import allocation_statement

    if not isinstance(allocation, DeliveryAllocation):
        raise InvalidArgumentError("allocation_statement_for needs a DeliveryAllocation")
    trade, export, earlier = _step_inputs(state, allocation, batch)
    return allocation_statement(
        allocation.trade_id(),
        export,
        earlier,
        trade.quantity,
        allocation.commitment,
        allocation.proof,
    )


def delivery_statement_for(
    state: LedgerState, delivery: Delivery, batch: ReadingBatch
) -> R1CSStatement:
    """(C8) The statement a delivery's proof must satisfy, from the ledger: the trade's
    allocation ``A``, the buyer's import ``I`` of the interval (commitment ``2t`` of
    ``batch``, the ledger's batch of the buyer for the period), the ``D_j`` of the buyer's
    earlier trades of the interval in trade order (defaults left out) and the delivery's
    ``D`` (docs/notes/market.md (D3), (D4)). As :func:`allocation_statement_for`; also
    :class:`InvalidArgumentError` when the trade is not allocated."""
    from settlement.market_circuits import delivery_statement

    if not isinstance(delivery, Delivery):
        raise InvalidArgumentError("delivery_statement_for needs a Delivery")
    _trade, imported, earlier = _step_inputs(state, delivery, batch)
    trade_state = state.market.trades.get(_trade_key(delivery))
    if trade_state is None or trade_state.allocation is None:
        raise InvalidArgumentError(f"{_trade_text(delivery)} is not allocated")
    return delivery_statement(
        delivery.trade_id(),
        trade_state.allocation,
        imported,
        earlier,
        delivery.commitment,
        delivery.proof,
    )


def ledger_order_time(state: LedgerState, record: LedgerRecord) -> int | None:
    """The time at which ``record``'s time rules (M2, M5, M8, M12) hold when it is judged by
    ledger order alone: for a judge without a signed time of the entry (market-v1.md,
    "Time on the ledger"), an order or a cancellation counts as before its gate closure
    (so only a cleared period closes it, M2), a clearing as at gate closure (M8), a step
    as before its deadline and a default as at it (M12). ``None`` for the records that
    need no time; an order of a period without a market day gets 0 (M1 refuses it
    first)."""
    if isinstance(record, Order | OrderCancellation | Clearing):
        period: str | None
        if isinstance(record, OrderCancellation):
            found = state.market.orders.get(record.order_hash)
            period = found.order.period if found is not None else None
        else:
            period = record.period
        day_ref = state.market.days.get(period) if period is not None else None
        if day_ref is None:
            return 0
        day = day_ref[0]
        return day.gate_closure if isinstance(record, Clearing) else day.gate_closure - 1
    if isinstance(record, DeliveryAllocation | Delivery | DeliveryDefault):
        found_day = state.market.days.get(record.period)
        if found_day is None:
            return 0
        day = found_day[0]
        seller = isinstance(record, DeliveryAllocation) or (
            isinstance(record, DeliveryDefault) and record.step is DeliveryStep.ALLOCATION
        )
        deadline = day.seller_deadline if seller else day.buyer_deadline
        return deadline if isinstance(record, DeliveryDefault) else deadline - 1
    return None


def due_defaults(state: LedgerState, period: str, time: int) -> list[DeliveryDefault]:
    """The defaults the utility may append for ``period`` at ``time`` (seconds since the
    epoch), in trade order: for every trade neither delivered nor defaulted, its allocation
    when it has none and ``time`` is at or after the seller's deadline, else its delivery
    when ``time`` is at or after the buyer's deadline. Each passes :func:`check` at
    ``time`` (the defaults of different trades do not interact). Empty for a period that
    is not cleared. The service's default job and the auditor's completeness check."""
    if isinstance(time, bool) or not isinstance(time, int):
        raise InvalidArgumentError("due_defaults needs a time (seconds since the epoch)")
    found = state.market.clearings.get(period)
    if found is None:
        return []
    clearing, ref = found
    day = state.market.days[period][0]
    out: list[DeliveryDefault] = []
    for t, result in enumerate(clearing.intervals):
        for k in range(len(result.trades)):
            trade_state = state.market.trades.get((period, t, k))
            if trade_state is not None and trade_state.settled:
                continue
            if trade_state is None or trade_state.allocation is None:
                if time >= day.seller_deadline:
                    out.append(DeliveryDefault(period, t, k, ref.digest, DeliveryStep.ALLOCATION))
            elif time >= day.buyer_deadline:
                out.append(DeliveryDefault(period, t, k, ref.digest, DeliveryStep.DELIVERY))
    return out
