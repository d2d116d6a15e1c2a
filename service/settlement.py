"""The settlement domain: meters, reading batches, tariffs and bills over the ledger.

Implements settlement-v1.md, "Service rules". No gRPC here: methods take and
return :mod:`settlement.records` records and the :class:`Receipt` /
:class:`Statement` / :class:`MeterInfo` dataclasses below; the servicers
translate. Readings and blindings never reach the service: every method takes
records, which hold commitments and proofs only.

State is a projection of the log. At start-up the service replays every entry;
afterwards it catches up on entries appended by other replicas whenever it
takes the ledger's write lock (and on reads, cheaply). A request is checked in
two steps:

The rules are :mod:`settlement.rules` (settlement-v1.md, "Rules"), the state
machine the auditor replays too; this module translates a refusal's reason into
its typed error (:mod:`service.errors`) and the identical record again (R5) into
the original receipt. The projection applies every entry through it and records
the entries it refuses (written behind the service's back) as anomalies.

1. *Outside the lock*, against the projection as it is: the state rules (so most
   bad requests fail fast) and then the cryptographic rules, the ECDSA signature
   and the range, bill or cycle bill proof (verified in micro-batches by
   :class:`service.verification.ProofVerifier`).
2. *Under the ledger's write lock* (the ``precondition`` hook of
   :meth:`service.storage.LedgerStore.append_batch`): catch up on entries other
   replicas appended, then the state rules again. Raising there aborts the
   append, so two replicas on one database can never both accept conflicting
   entries. The append returns what it made (indices, leaf hashes, the signed
   checkpoint): the projection applies the record objects held here, and the
   receipts are built from them.

Nothing is appended when a request fails. Resubmitting the identical batch,
bill or tariff returns the original receipt (idempotent).

The market (docs/design/market-v1.md) uses the same machinery from
:mod:`service.market`: its records are judged by the same rules (the projection decodes
every defined kind, the market's included: ``kinds=DEFINED_KINDS``), signed ones are
verified (C7) between the two steps, and they are appended like the others.

**Time.** The market's rules need the time an entry arrives (gate closure: M2, M5, M8).
The service's clock (``clock``, injectable; the submission window reads it too) is read
for the first step, and again under the write lock, once per append transaction: that
time judges every record of the transaction, is stored as its entries' ``created_at``
and is the time the projection applies them with. A projection replaying the log (at
start-up, or catching up on another replica's entries) judges each entry at its stored
``created_at``, so it applies exactly what the appender accepted.

Records version 2 (settlement-v1.md, "Records version 2"): a cycle tariff is
published like a day's tariff (:meth:`Settlement.publish_cycle_tariff`); a cycle
bill (:meth:`Settlement.submit_cycle_bill`) passes the state rules (R4..R6,
R18..R22), then its circuit proof is built against the ledger's batches of the
cycle and the cycle tariff (:func:`settlement.cycle_bills.cycle_bill_statement`)
and verified in the verifier's cycle bills' lane, and it is appended like a day's
bill. A statement lists it once, as the bill of every period of its cycle.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection

from circuits.r1cs import R1CSStatement
from ledger.checkpoint import CheckpointVerifier, SignedCheckpoint
from ledger.entries import Entry, EntryKind
from ledger.inclusion import verify_entry_inclusion
from service.errors import (
    BillExists,
    ChainBroken,
    CycleIncomplete,
    DuplicatePeriod,
    IntervalsMismatch,
    InvalidRequest,
    MeterExists,
    MeterRevoked,
    PermissionDenied,
    ProofMalformed,
    ServiceClosing,
    SettlementError,
    TariffExists,
    UnknownBatch,
    UnknownMeter,
    UnknownTariff,
)
from service.storage import LedgerStore, StoredEntry
from service.verification import ProofVerifier, RangeJob, parse_commitments
from settlement import rules
from settlement.cycle_bills import cycle_bill_statement
from settlement.errors import (
    ClearingExists,
    ClearingMismatch,
    DeadlineNotPassed,
    DeadlinePassed,
    DeliveryExists,
    DeliveryNotReady,
    EnrolmentExists,
    GateClosed,
    GateNotClosed,
    MarketDayExists,
    NotEnrolled,
    PriceOutOfBounds,
    SelfTrade,
    UnknownMarketDay,
    UnknownOrder,
    UnknownTrade,
)
from settlement.market import Clearing, MarketRecord, Order
from settlement.periods import check_submission_window, validate_period
from settlement.records import (
    RANGE_PROOF_BITS,
    Bill,
    CycleBill,
    CycleTariff,
    MeterRegistration,
    MeterRevocation,
    ReadingBatch,
    Record,
    RecordFormatError,
    Tariff,
    bill_coefficients,
    decode_record,
    validate_meter_id,
)
from settlement.rules import LedgerState, MeterState, Ref
from zkgrid.errors import ProofFormatError, ZkgridError
from zkp.sigma import LinearCombinationClaim, LinearCombinationProof

_log = logging.getLogger(__name__)

__all__ = [
    "AppendableRecord",
    "MarketIndex",
    "MeterInfo",
    "Receipt",
    "Settlement",
    "Statement",
    "StatementLine",
    "epoch_seconds",
]

#: What the service appends: a settlement record or a market record.
AppendableRecord = Record | MarketRecord

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)


def epoch_seconds(moment: datetime) -> int:
    """Whole seconds since the epoch (floor) of an aware datetime: the time the rules take
    (M2, M5, M8). A naive datetime is refused (``INVALID_ARGUMENT``): its zone is unknown."""
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise InvalidRequest("the service's clock must give timezone-aware datetimes")
    return (moment - _EPOCH) // _SECOND


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class Receipt:
    """Proof that an entry is in the ledger.

    ``checkpoint`` is the signed note text of the checkpoint of size
    ``tree_size`` (the one signed when the entry was appended, when it exists)
    and ``inclusion_proof`` the RFC 9162 path of leaf ``index`` in that tree.
    """

    index: int
    leaf_hash: bytes
    checkpoint: str
    tree_size: int
    inclusion_proof: tuple[bytes, ...]

    def verify(self, verifier: CheckpointVerifier | str, entry: Entry | None = None) -> None:
        """Check the checkpoint's signature, the inclusion proof and (given) the entry's hash.

        Raises a :class:`~ledger.errors.LedgerError` (see
        :func:`ledger.inclusion.verify_entry_inclusion`).
        """
        verify_entry_inclusion(
            index=self.index,
            leaf_hash=self.leaf_hash,
            checkpoint=self.checkpoint,
            tree_size=self.tree_size,
            inclusion_proof=self.inclusion_proof,
            log_key=verifier,
            entry=entry,
        )


def receipt_for(
    store: LedgerStore, index: int, lh: bytes, signed: SignedCheckpoint | None = None
) -> Receipt:
    """The receipt of entry ``index``: against the checkpoint signed by the transaction
    that appended it (``signed`` when the caller holds it, else
    :meth:`LedgerStore.checkpoint_covering`), so every later request for the entry, a
    resubmission or ``GetReceipt``, returns the same receipt."""
    if signed is None:
        signed = store.checkpoint_covering(index)
    size = signed.checkpoint.size
    proof = store.inclusion_proof(index, size)
    return Receipt(index, lh, signed.to_text(), size, tuple(proof))


@dataclass(frozen=True, slots=True)
class MeterInfo:
    """A registered meter as the ledger knows it."""

    registration: MeterRegistration
    receipt_index: int
    revoked: bool
    revocation_reason: str | None
    #: The sequence the meter's next batch must carry.
    next_sequence: int
    #: The prev_hash the meter's next batch must carry (32 zero bytes before the first).
    last_batch_hash: bytes

    @property
    def meter_id(self) -> str:
        return self.registration.meter_id


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One bill of a statement: a day's :class:`Bill` or a :class:`CycleBill` (the bill of
    every period of its cycle), the currency of its tariff and its receipt."""

    bill: Bill | CycleBill
    currency: str
    receipt: Receipt

    @property
    def period(self) -> str:
        """The bill's period (a cycle bill's first period)."""
        return self.bill.period if isinstance(self.bill, Bill) else self.bill.first_period

    @property
    def periods(self) -> tuple[str, ...]:
        """The periods the bill covers, in order."""
        return (self.bill.period,) if isinstance(self.bill, Bill) else self.bill.periods

    @property
    def total(self) -> int:
        return self.bill.total


@dataclass(frozen=True, slots=True)
class Statement:
    """A meter's bills (one line per bill, by period: a cycle bill once, at its first
    period) and their sum (micro-currency; meaningful when the lines share a currency)."""

    meter_id: str
    lines: tuple[StatementLine, ...]
    total: int


# --------------------------------------------------------------------------- projection


#: The typed error of each state rule's reason (settlement-v1.md, "Rules"); the identical
#: record again (``rules.IDEMPOTENT``) is answered with the original receipt instead.
_REFUSALS: dict[str, type[SettlementError]] = {
    rules.METER_EXISTS: MeterExists,
    rules.UNKNOWN_METER: UnknownMeter,
    rules.METER_REVOKED: MeterRevoked,
    rules.INTERVALS_MISMATCH: IntervalsMismatch,
    rules.DUPLICATE_PERIOD: DuplicatePeriod,
    rules.CHAIN_BROKEN: ChainBroken,
    rules.TARIFF_EXISTS: TariffExists,
    rules.BILL_EXISTS: BillExists,
    rules.UNKNOWN_BATCH: UnknownBatch,
    rules.UNKNOWN_TARIFF: UnknownTariff,
    rules.CYCLE_INCOMPLETE: CycleIncomplete,
    # the market (M1..M9)
    rules.NOT_ENROLLED: NotEnrolled,
    rules.ENROLMENT_EXISTS: EnrolmentExists,
    rules.UNKNOWN_MARKET_DAY: UnknownMarketDay,
    rules.MARKET_DAY_EXISTS: MarketDayExists,
    rules.GATE_CLOSED: GateClosed,
    rules.GATE_NOT_CLOSED: GateNotClosed,
    rules.PRICE_OUT_OF_BOUNDS: PriceOutOfBounds,
    rules.SELF_TRADE: SelfTrade,
    rules.UNKNOWN_ORDER: UnknownOrder,
    rules.CLEARING_MISMATCH: ClearingMismatch,
    rules.CLEARING_EXISTS: ClearingExists,
    # the delivery steps (M10..M13)
    rules.UNKNOWN_TRADE: UnknownTrade,
    rules.DELIVERY_EXISTS: DeliveryExists,
    rules.DEADLINE_PASSED: DeadlinePassed,
    rules.DEADLINE_NOT_PASSED: DeadlineNotPassed,
    rules.DELIVERY_NOT_READY: DeliveryNotReady,
}


@dataclass(slots=True)
class MarketIndex:
    """What the market's lists need beyond :class:`settlement.rules.MarketState` (kept by
    the projection as it applies market records)."""

    #: period -> the hashes of its orders, cancelled ones included, in ledger order
    period_orders: dict[str, list[bytes]] = field(default_factory=dict)
    #: meter id -> the ledger index of its revocation (a revocation before the clearing
    #: withdraws the meter's orders of the period)
    revoked_at: dict[str, int] = field(default_factory=dict)
    #: (period, meter id) -> (interval, trade index) of each of the meter's trades in the
    #: period's clearing, in the clearing's order
    meter_trades: dict[tuple[str, str], list[tuple[int, int]]] = field(default_factory=dict)

    def applied(self, record: rules.LedgerRecord, ref: Ref) -> None:
        """Index ``record``, which the rules just applied at ``ref``."""
        if isinstance(record, Order):
            self.period_orders.setdefault(record.period, []).append(ref.digest)
        elif isinstance(record, MeterRevocation):
            self.revoked_at[record.meter_id] = ref.index
        elif isinstance(record, Clearing):
            for t, result in enumerate(record.intervals):
                for k, trade in enumerate(result.trades):
                    for meter_id in (trade.seller, trade.buyer):
                        self.meter_trades.setdefault((record.period, meter_id), []).append(
                            (t, k)
                        )


class _Projection:
    """The state the rules need (:class:`settlement.rules.LedgerState`), built from the log
    in index order through :func:`settlement.rules.step`: an entry the rules refuse (one
    written behind the service's back) changes nothing and is recorded as an anomaly."""

    def __init__(self) -> None:
        self.applied = 0
        self.ledger = LedgerState()
        #: Ledger index -> the bill appended there, a day's or a cycle's (statements list
        #: them; the meter's ``bills`` name the index of each period's bill).
        self.bills: dict[int, Bill | CycleBill] = {}
        #: (index, reason) of each entry the rules refused, in log order.
        self.anomalies: list[tuple[int, str]] = []
        #: The market's lists (orders by period, revocations, trades by meter).
        self.market = MarketIndex()

    def apply(self, index: int, kind: EntryKind, payload: bytes, lh: bytes, time: int) -> None:
        """Apply a stored entry (catching up: decode it first), judged at ``time`` (the
        entry's stored time, seconds since the epoch: module docstring, "Time")."""
        decoded = rules.decode(kind, payload, kinds=rules.DEFINED_KINDS)
        if isinstance(decoded, rules.Refusal):
            self._advance(index)
            self.anomalies.append((index, decoded.reason))
            return
        self.apply_record(decoded, Ref(index, hashlib.sha256(payload).digest(), lh), time)

    def apply_record(self, record: rules.LedgerRecord, ref: Ref, time: int) -> None:
        """Apply a record the caller holds as an object (the append path), judged at
        ``time`` (the time it was checked at under the write lock)."""
        self._advance(ref.index)
        refusal = rules.step(self.ledger, record, ref, time=time)
        if refusal is not None:
            self.anomalies.append((ref.index, refusal.reason))
            return
        if isinstance(record, Bill | CycleBill):
            self.bills[ref.index] = record
        else:
            self.market.applied(record, ref)

    def _advance(self, index: int) -> None:
        if index != self.applied:
            raise InvalidRequest(f"projection: entry {index} applied out of order")
        self.applied += 1


class _AlreadyRecorded(Exception):
    """Internal: the identical record is already in the log (raised to abort an append)."""

    def __init__(self, ref: Ref) -> None:
        super().__init__("already recorded")
        self.ref = ref


class _GroupRetry(Exception):
    """Internal: an item of a group failed its check; abort and retry without it."""


#: A grouped append's result: (index, leaf hash, the group's checkpoint), the original
#: entry, or the error.
_GroupOutcome = tuple[int, bytes, SignedCheckpoint] | _AlreadyRecorded | Exception


@dataclass(slots=True)
class _PendingAppend:
    record: AppendableRecord
    payload: bytes
    #: The state rules, run under the write lock with the time read there (seconds).
    check: Callable[[int], None]
    key: str
    future: Future[_GroupOutcome]
    #: SHA-256 of ``payload`` when the caller has it.
    digest: bytes | None = None


class _GroupCommitter:
    """Group commit: one thread appends whatever has queued up, together.

    Every append costs a transaction, the Merkle frontier, a consistency check and
    a signed checkpoint (and, on PostgreSQL, round trips); under load these are
    paid once per group of up to ``max_group`` records instead of once per record.
    A group holds at most one record per key (meter id), so the rules checked for
    a record never depend on another record of the same group; a later record with
    the same key waits for the next group. Each record's check runs under the write
    lock exactly as a single append's would (see :meth:`Settlement._append_group`).
    """

    def __init__(
        self, commit: Callable[[Sequence[_PendingAppend]], list[_GroupOutcome]],
        max_group: int = 256,
    ) -> None:  # fmt: skip
        self._commit = commit
        self._max_group = max_group
        self._queue: queue.SimpleQueue[_PendingAppend | None] = queue.SimpleQueue()
        self._closed = False
        self._close_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="zkgrid-commit", daemon=True)
        self._thread.start()

    def append(
        self,
        record: AppendableRecord,
        check: Callable[[int], None],
        key: str,
        payload: bytes | None = None,
        digest: bytes | None = None,
    ) -> tuple[int, bytes, SignedCheckpoint] | _AlreadyRecorded:
        """Queue ``record`` (``payload``: its bytes, when the caller has them) and wait:
        (index, leaf hash, the group's checkpoint), or the original entry; raises the
        check's error."""
        data = record.encode() if payload is None else payload
        pending = _PendingAppend(record, data, check, key, Future(), digest)
        with self._close_lock:
            if self._closed:
                raise ServiceClosing("the settlement service is closing")
            self._queue.put(pending)
        outcome = pending.future.result()
        if isinstance(outcome, _AlreadyRecorded | tuple):
            return outcome
        raise outcome

    def close(self, timeout: float | None = 10.0) -> None:
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        carried: list[_PendingAppend] = []
        stopping = False
        while True:
            if not carried:
                first = self._queue.get()
                if first is None:
                    return
                carried = [first]
            group: list[_PendingAppend] = []
            keys: set[str] = set()
            later: list[_PendingAppend] = []
            incoming = carried
            while True:
                for item in incoming:
                    if item.key in keys or len(group) >= self._max_group:
                        later.append(item)
                    else:
                        keys.add(item.key)
                        group.append(item)
                if stopping or len(group) >= self._max_group:
                    break
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    incoming = []
                    continue
                incoming = [nxt]
            carried = later
            try:
                outcomes = self._commit(group)
            except Exception as exc:  # the store failed: every record of the group fails
                if not isinstance(exc, ZkgridError):
                    _log.exception("group commit of %d records failed", len(group))
                for item in group:
                    item.future.set_exception(exc)
            else:
                for item, outcome in zip(group, outcomes, strict=True):
                    item.future.set_result(outcome)
            if stopping and not carried:
                return


# --------------------------------------------------------------------------- the domain


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Settlement:
    """The settlement service's domain over a :class:`LedgerStore`.

    Thread-safe. ``verifier`` defaults to a private :class:`ProofVerifier`
    with ``verify_processes`` worker processes (closed by :meth:`close`); pass a
    shared one to batch across services. ``group_commit``: reading batches and
    bills submitted concurrently are appended together, one transaction and one
    checkpoint per group (:class:`_GroupCommitter`).
    """

    def __init__(
        self,
        store: LedgerStore,
        verifier: ProofVerifier | None = None,
        *,
        verify_processes: int = 0,
        group_commit: bool = True,
        late_days: int | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if late_days is not None and (
            isinstance(late_days, bool) or not isinstance(late_days, int) or late_days < 0
        ):
            raise InvalidRequest("late_days must be a whole number of days >= 0, or None")
        #: The submission window (settlement-v1.md): readings of a period are taken from its
        #: end until ``late_days`` days after it (``None``: no late limit), by ``clock``.
        self.late_days = late_days
        #: The service's clock: the submission window and the market's gate closure.
        self._clock = clock
        self._store = store
        self._own_verifier = verifier is None
        self._verifier = (
            verifier if verifier is not None else ProofVerifier(processes=verify_processes)
        )
        self._state = _Projection()
        self._lock = threading.Lock()  # guards _state; never held during I/O
        self._committer: _GroupCommitter | None = (
            _GroupCommitter(self._append_group) if group_commit else None
        )
        self.catch_up()

    @property
    def store(self) -> LedgerStore:
        return self._store

    @property
    def verifier(self) -> ProofVerifier:
        return self._verifier

    @property
    def anomalies(self) -> list[int]:
        """Indices of entries the rules would have refused (none unless the log was written
        behind the service's back); the projection ignores them."""
        with self._lock:
            return [index for index, _ in self._state.anomalies]

    @property
    def anomaly_reasons(self) -> list[tuple[int, str]]:
        """(index, reason) of each entry the rules refused: the reasons the auditor gives."""
        with self._lock:
            return list(self._state.anomalies)

    def close(self) -> None:
        if self._committer is not None:
            self._committer.close()
        if self._own_verifier:
            self._verifier.close()

    def __enter__(self) -> Settlement:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ projection upkeep

    def catch_up(self) -> int:
        """Apply the entries appended since the last catch-up; return the applied size."""
        # Read first, then apply: the projection lock is never held during I/O (on
        # in-memory SQLite the store's connection lock would otherwise deadlock with a
        # precondition that holds it and waits for the projection lock).
        new = list(self._store.entries(self._state.applied))
        self._apply_entries(new)
        return self._state.applied

    def _apply_entries(self, entries: Iterable[StoredEntry]) -> None:
        with self._lock:
            for e in entries:
                if e.index < self._state.applied:
                    continue
                time = epoch_seconds(e.created_at)
                self._state.apply(e.index, e.kind, e.payload, e.leaf_hash, time)

    def now(self) -> datetime:
        """The service's clock (an aware datetime; module docstring, "Time")."""
        return self._clock()

    def _now(self) -> tuple[datetime, int]:
        """The clock, and its whole seconds since the epoch (what the rules take)."""
        moment = self._clock()
        return moment, epoch_seconds(moment)

    def _append(
        self,
        record: AppendableRecord,
        payload: bytes,
        digest: bytes,
        check: Callable[[int], None],
        *,
        group_key: str | None = None,
    ) -> Receipt:
        """Append ``record`` (``payload`` its bytes, ``digest`` their SHA-256) if ``check``
        (run under the write lock, after catching up and holding the projection lock, with
        the time read there) passes; the original receipt if it is already there. The entry
        is stored with that time (``created_at``) and the projection applies it at it.

        With a ``group_key`` (the meter id of a reading batch or bill) the append goes
        through the group committer: records appended concurrently share one
        transaction and one checkpoint, at most one per key (see :class:`_GroupCommitter`).
        """
        if group_key is not None and self._committer is not None:
            outcome = self._committer.append(record, check, group_key, payload, digest)
            if isinstance(outcome, _AlreadyRecorded):
                return self._receipt(outcome.ref.index, outcome.ref.leaf_hash)
            index, lh, signed = outcome
            return receipt_for(self._store, index, lh, signed)
        return self._append_alone(record, payload, digest, check)[0]

    def _append_alone(
        self,
        record: AppendableRecord,
        payload: bytes,
        digest: bytes,
        check: Callable[[int], None],
    ) -> tuple[Receipt, bool]:
        """:meth:`_append` in a transaction of its own; whether it appended (``False``: the
        identical record was there: its original receipt)."""
        judged = _Judged()

        def precondition(conn: Connection, size: int) -> None:
            if self._state.applied < size:
                self._apply_entries(self._store.entries_locked(conn, self._state.applied, size))
            judged.read(self._clock)
            with self._lock:
                check(judged.seconds)

        try:
            made = self._store.append(
                record.KIND, payload, precondition=precondition, stamp=judged.stamp
            )
        except _AlreadyRecorded as done:
            return self._receipt(done.ref.index, done.ref.leaf_hash), False
        self._applied(record, Ref(made.index, digest, made.leaf_hash), judged.seconds)
        return receipt_for(self._store, made.index, made.leaf_hash, made.checkpoint), True

    def _applied(self, record: AppendableRecord, ref: Ref, time: int) -> None:
        """Apply ``record``, just appended at ``ref`` and judged at ``time``, to the
        projection (as the object)."""
        with self._lock:
            if self._state.applied == ref.index:
                self._state.apply_record(record, ref, time)
        if self._state.applied <= ref.index:  # pragma: no cover - another thread is mid-apply
            self.catch_up()

    def _group_precondition(
        self,
        items: Sequence[_PendingAppend],
        live: list[int],
        failed: dict[int, Exception],
        judged: _Judged,
    ) -> Callable[[Connection, int], None]:
        """Under the write lock: catch up, read the clock (``judged``), run every live
        item's check at that time; any failure (recorded in ``failed``) aborts the
        transaction."""

        def precondition(conn: Connection, size: int) -> None:
            if self._state.applied < size:
                self._apply_entries(self._store.entries_locked(conn, self._state.applied, size))
            judged.read(self._clock)
            with self._lock:
                for i in live:
                    try:
                        items[i].check(judged.seconds)
                    except (ZkgridError, _AlreadyRecorded) as exc:
                        failed[i] = exc
            if failed:
                raise _GroupRetry

        return precondition

    def _append_group(self, items: Sequence[_PendingAppend]) -> list[_GroupOutcome]:
        """Append ``items`` (distinct keys) in one transaction; an item whose check fails
        gets its error (or :class:`_AlreadyRecorded`) and the others are retried without it."""
        outcomes: dict[int, _GroupOutcome] = {}
        live = list(range(len(items)))
        while live:
            failed: dict[int, Exception] = {}
            judged = _Judged()
            precondition = self._group_precondition(items, live, failed, judged)
            try:
                made = self._store.append_batch(
                    [(items[i].record.KIND, items[i].payload) for i in live],
                    precondition=precondition,
                    stamp=judged.stamp,
                )
            except _GroupRetry:
                for i, exc in failed.items():
                    outcomes[i] = exc
                live = [i for i in live if i not in failed]
                continue
            signed = made.checkpoint  # the group's, for every receipt
            if signed is None:  # pragma: no cover - a non-empty batch always signs
                raise InvalidRequest("the store signed no checkpoint for a group")
            for i, index, lh in zip(live, made.indices, made.leaf_hashes, strict=True):
                item = items[i]
                digest = item.digest or hashlib.sha256(item.payload).digest()
                self._applied(item.record, Ref(index, digest, lh), judged.seconds)
                outcomes[i] = (index, lh, signed)
            break
        return [outcomes[i] for i in range(len(items))]  # every item has its outcome

    def _receipt(self, index: int, lh: bytes | None) -> Receipt:
        if lh is None:  # pragma: no cover - the projection keeps every leaf hash
            lh = self._store.entry(index).leaf_hash
        return receipt_for(self._store, index, lh)

    def _state_rules(self, record: AppendableRecord, digest: bytes, time: int) -> None:
        """The state rules of ``record`` at ``time`` (projection lock held): raises the
        typed error of the first broken rule, or :class:`_AlreadyRecorded` for the
        identical record."""
        refusal = rules.check(self._state.ledger, record, digest, time=time)
        if refusal is None:
            return
        if refusal.reason in rules.IDEMPOTENT:
            original = self._state.ledger.original(record, digest)
            if original is not None:
                raise _AlreadyRecorded(original)
        raise _REFUSALS[refusal.reason](refusal.detail)

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _record(value: object, cls: type[Record], what: str) -> None:
        if not isinstance(value, cls):
            raise InvalidRequest(f"{what} must be a {cls.__name__}")

    @staticmethod
    def _acting_as(as_meter: str | None, meter_id: str) -> None:
        if as_meter is not None and as_meter != meter_id:
            raise PermissionDenied("a meter may act only for its own meter id")

    def _meter(self, meter_id: str) -> MeterState:
        """The meter (projection lock held); UNKNOWN_METER."""
        meter = self._state.ledger.meters.get(meter_id)
        if meter is None:
            raise UnknownMeter(f"meter {meter_id!r} is not registered")
        return meter

    def _checked(self, record: AppendableRecord, payload: bytes) -> tuple[bytes, Ref | None]:
        """Catch up, then the state rules outside the write lock (cheap, so bad requests
        fail fast) at the clock's time: the record's digest, and the original entry of an
        identical record."""
        digest = hashlib.sha256(payload).digest()
        self.catch_up()
        _, time = self._now()
        try:
            with self._lock:
                self._state_rules(record, digest, time)
        except _AlreadyRecorded as done:
            return digest, done.ref
        return digest, None

    def _append_checked(
        self,
        record: AppendableRecord,
        payload: bytes,
        digest: bytes,
        *,
        group_key: str | None = None,
    ) -> Receipt:
        """Append ``record``; its state rules run again under the write lock."""

        def check(time: int) -> None:
            self._state_rules(record, digest, time)

        return self._append(record, payload, digest, check, group_key=group_key)

    # ------------------------------------------------------------------ for service.market
    # The market's domain (service/market.py) uses the machinery above through these.

    def judge(self, record: AppendableRecord, payload: bytes) -> tuple[bytes, Receipt | None]:
        """The first step of a request: catch up, then the state rules at the clock's time
        (the typed error of the first broken rule). Returns the record's digest and, for
        the identical record again (R5), the original entry's receipt."""
        digest, original = self._checked(record, payload)
        if original is None:
            return digest, None
        return digest, self._receipt(original.index, original.leaf_hash)

    def append_judged(
        self,
        record: AppendableRecord,
        payload: bytes,
        digest: bytes,
        *,
        group_key: str | None = None,
    ) -> Receipt:
        """The second step: append ``record`` (its state rules again under the write lock,
        at the clock's time there); the original receipt when the identical record got
        there first. ``group_key``: a meter id, to append through the group committer."""
        return self._append_checked(record, payload, digest, group_key=group_key)

    def append_judged_once(
        self, record: AppendableRecord, payload: bytes, digest: bytes
    ) -> tuple[Receipt, bool]:
        """:meth:`append_judged` in a transaction of its own, telling whether this call
        appended the record (``False``: the identical record was already there)."""

        def check(time: int) -> None:
            self._state_rules(record, digest, time)

        return self._append_alone(record, payload, digest, check)

    def acting_as(self, as_meter: str | None, meter_id: str) -> None:
        """``PERMISSION_DENIED`` unless the calling meter (if any) is ``meter_id``."""
        self._acting_as(as_meter, meter_id)

    def meter_public_key(self, meter_id: str) -> bytes:
        """The registered signing key of ``meter_id`` (``UNKNOWN_METER``)."""
        with self._lock:
            return self._meter(meter_id).registration.public_key

    def receipt_of(self, ref: Ref) -> Receipt:
        """The receipt of the entry at ``ref``."""
        return self._receipt(ref.index, ref.leaf_hash)

    def read_projection(self) -> _ProjectionView:
        """The projection under its lock, for reads (``with settlement.read_projection() as
        (ledger, index): ...``); never hold it during I/O."""
        return _ProjectionView(self._lock, self._state)

    @staticmethod
    def validate_id(meter_id: object) -> None:
        """``INVALID_ARGUMENT`` unless ``meter_id`` is a meter id."""
        Settlement._validate_id(meter_id)

    @staticmethod
    def validate_period(period: object) -> None:
        """``INVALID_ARGUMENT`` unless ``period`` is a canonical ``YYYY-MM-DD`` day."""
        Settlement._validate_period(period)

    # ------------------------------------------------------------------ meters

    def register_meter(self, registration: MeterRegistration) -> Receipt:
        """Append a registration: unused id (R3, else ``METER_EXISTS``), then a valid proof
        of possession (C1, ``SIGNATURE_INVALID``)."""
        self._record(registration, MeterRegistration, "registration")
        payload = registration.encode()
        digest, _ = self._checked(registration, payload)
        registration.verify_pop()  # C1: SIGNATURE_INVALID
        return self._append_checked(registration, payload, digest)

    def revoke_meter(self, meter_id: str, reason: str = "") -> Receipt:
        """Append a revocation of an active meter (``UNKNOWN_METER`` / ``METER_REVOKED``)."""
        try:
            revocation = MeterRevocation(meter_id, reason)
        except RecordFormatError as exc:
            raise InvalidRequest(f"revocation: {exc}") from None
        payload = revocation.encode()
        digest, _ = self._checked(revocation, payload)
        return self._append_checked(revocation, payload, digest)

    def get_meter(self, meter_id: str) -> MeterInfo:
        self._validate_id(meter_id)
        self.catch_up()
        with self._lock:
            meter = self._meter(meter_id)
            return MeterInfo(
                registration=meter.registration,
                receipt_index=meter.ref.index,
                revoked=meter.revocation is not None,
                revocation_reason=None if meter.revocation is None else meter.revocation.reason,
                next_sequence=meter.next_sequence,
                last_batch_hash=meter.last_batch_hash,
            )

    def get_meter_receipt(self, meter_id: str) -> Receipt:
        self._validate_id(meter_id)
        self.catch_up()
        with self._lock:
            ref = self._meter(meter_id).ref
        return self._receipt(ref.index, ref.leaf_hash)

    @staticmethod
    def _validate_id(meter_id: object) -> None:
        try:
            validate_meter_id(meter_id)
        except RecordFormatError as exc:
            raise InvalidRequest(str(exc)) from None

    @staticmethod
    def _validate_period(period: object) -> None:
        try:
            validate_period(period)
        except RecordFormatError as exc:
            raise InvalidRequest(str(exc)) from None

    # ------------------------------------------------------------------ readings

    def submit_readings(self, batch: ReadingBatch, *, as_meter: str | None = None) -> Receipt:
        """Check and append a reading batch; the identical batch returns its original receipt.

        ``as_meter``: the authenticated meter id of the caller (mTLS), if the caller is a
        meter; another meter's batch is ``PERMISSION_DENIED``.
        """
        self._record(batch, ReadingBatch, "batch")
        self._acting_as(as_meter, batch.meter_id)
        payload = batch.encode()
        digest, original = self._checked(batch, payload)
        if original is not None:
            return self._receipt(original.index, original.leaf_hash)
        # PERIOD_NOT_ENDED / PERIOD_CLOSED: the service's clock (not a ledger rule: the log
        # holds no time the auditor could check it against)
        check_submission_window(batch.period, self._clock(), self.late_days)
        with self._lock:
            public_key = self._state.ledger.meters[batch.meter_id].registration.public_key
        # The cryptographic rules, outside every lock.
        batch.verify_signature(public_key)  # C2: SIGNATURE_INVALID
        # C3: PROOF_MALFORMED / PROOF_INVALID; parsed and verified where the verifier runs
        # A meter whose proof failed lately is verified alone (ProofVerifier.is_suspect).
        self._verifier.verify(
            RangeJob(batch.range_proof, batch.commitments, RANGE_PROOF_BITS, batch.proof_context()),
            caller=batch.meter_id,
        )
        return self._append_checked(batch, payload, digest, group_key=batch.meter_id)

    def _batch_ref(self, meter_id: str, period: str) -> Ref:
        """(projection lock held)"""
        ref = self._meter(meter_id).batches.get(period)
        if ref is None:
            raise UnknownBatch(f"meter {meter_id!r} has no batch for {period}")
        return ref

    def get_receipt(self, meter_id: str, period: str, *, as_meter: str | None = None) -> Receipt:
        """The receipt of the meter's batch for ``period`` (``UNKNOWN_BATCH`` if none)."""
        return self.get_batch_receipt(meter_id, period, as_meter=as_meter)[0]

    def get_batch_receipt(
        self, meter_id: str, period: str, *, as_meter: str | None = None
    ) -> tuple[Receipt, bytes]:
        """The receipt of the meter's batch for ``period`` and the batch's hash, both from
        the projection (``UNKNOWN_BATCH`` if none)."""
        self._validate_id(meter_id)
        self._validate_period(period)
        self._acting_as(as_meter, meter_id)
        self.catch_up()
        with self._lock:
            ref = self._batch_ref(meter_id, period)
        return self._receipt(ref.index, ref.leaf_hash), ref.digest

    def get_batch(self, meter_id: str, period: str) -> ReadingBatch:
        """The meter's batch for ``period`` as stored (``UNKNOWN_BATCH`` if none)."""
        self._validate_id(meter_id)
        self._validate_period(period)
        self.catch_up()
        with self._lock:
            index = self._batch_ref(meter_id, period).index
        return self._load_batch(index)

    def _load_batch(self, index: int) -> ReadingBatch:
        entry = self._store.entry(index)
        record = decode_record(Entry(entry.kind, entry.payload))
        if not isinstance(record, ReadingBatch):  # pragma: no cover - projection invariant
            raise UnknownBatch(f"entry {index} is not a reading batch")
        return record

    # ------------------------------------------------------------------ tariffs

    def publish_tariff(self, tariff: Tariff) -> Receipt:
        """Append the period's tariff; the identical tariff returns its original receipt,
        another one is ``TARIFF_EXISTS``."""
        self._record(tariff, Tariff, "tariff")
        payload = tariff.encode()
        digest, original = self._checked(tariff, payload)
        if original is not None:
            return self._receipt(original.index, original.leaf_hash)
        return self._append_checked(tariff, payload, digest)

    def get_tariff(self, period: str) -> tuple[Tariff, Receipt]:
        """The period's tariff and its receipt (``UNKNOWN_TARIFF`` if none)."""
        self._validate_period(period)
        self.catch_up()
        with self._lock:
            found = self._state.ledger.tariffs.get(period)
        if found is None:
            raise UnknownTariff(f"no tariff is published for {period}")
        tariff, ref = found
        return tariff, self._receipt(ref.index, ref.leaf_hash)

    def publish_cycle_tariff(self, tariff: CycleTariff) -> Receipt:
        """Append a tariff plan's cycle tariff (records version 2); the identical one returns
        its original receipt, one overlapping a published plan of the same name, a listed
        meter or the default plan is ``TARIFF_EXISTS`` (R16, R17)."""
        self._record(tariff, CycleTariff, "cycle tariff")
        payload = tariff.encode()
        digest, original = self._checked(tariff, payload)
        if original is not None:
            return self._receipt(original.index, original.leaf_hash)
        return self._append_checked(tariff, payload, digest)

    def get_cycle_tariff(
        self, meter_id: str, period: str, *, as_meter: str | None = None
    ) -> tuple[CycleTariff, Receipt]:
        """The cycle tariff that applies to ``meter_id`` on ``period`` (the plan listing the
        meter, else the default plan: R21) and its receipt; ``UNKNOWN_TARIFF`` if none. The
        meter need not be registered (a plan may list a meter before it is)."""
        self._validate_id(meter_id)
        self._validate_period(period)
        self._acting_as(as_meter, meter_id)
        self.catch_up()
        with self._lock:
            found = self._state.ledger.cycle_tariff_for(meter_id, period)
        if found is None:
            raise UnknownTariff(f"no cycle tariff applies to meter {meter_id!r} on {period}")
        tariff, ref = found
        return tariff, self._receipt(ref.index, ref.leaf_hash)

    # ------------------------------------------------------------------ bills

    def bill_claim(self, bill: Bill, batch: ReadingBatch, tariff: Tariff) -> LinearCombinationClaim:
        """The statement a bill proves: ``sum p_i*C_i`` commits to ``total - fixed``."""
        try:
            proof = LinearCombinationProof.from_bytes(bill.proof)
        except ProofFormatError as exc:
            raise ProofMalformed(f"bill proof: {exc}") from None
        return LinearCombinationClaim(
            proof=proof,
            coefficients=bill_coefficients(tariff),
            commitments=parse_commitments(batch.commitments),
            total=bill.total,
            constant=tariff.fixed_charge,
            context=bill.proof_context(),
        )

    def _prepare_bill(self, bill: object, as_meter: str | None) -> _PreparedBill | Receipt:
        """A bill's checks up to its proof (C4): the record, the caller, the state rules
        (R4..R14); the original receipt of an identical bill; the claim its proof makes."""
        if not isinstance(bill, Bill):
            raise InvalidRequest("bill must be a Bill")
        self._acting_as(as_meter, bill.meter_id)
        payload = bill.encode()
        digest, original = self._checked(bill, payload)
        if original is not None:
            return self._receipt(original.index, original.leaf_hash)
        with self._lock:
            batch_index = self._batch_ref(bill.meter_id, bill.period).index
            tariff = self._state.ledger.tariffs[bill.period][0]
        claim = self.bill_claim(bill, self._load_batch(batch_index), tariff)
        return _PreparedBill(bill, payload, digest, claim)

    def submit_bill(self, bill: Bill, *, as_meter: str | None = None) -> Receipt:
        """Verify the bill against the ledger's batch and tariff and append it.

        The identical bill returns its original receipt; another bill for the same
        (meter, period) is ``BILL_EXISTS``.
        """
        prepared = self._prepare_bill(bill, as_meter)
        if isinstance(prepared, Receipt):
            return prepared
        self._verifier.verify_bill(prepared.claim, caller=bill.meter_id)  # C4: PROOF_INVALID
        return self._append_bill(prepared)

    def _append_bill(self, prepared: _PreparedBill) -> Receipt:
        bill = prepared.bill
        return self._append_checked(
            bill, prepared.payload, prepared.digest, group_key=bill.meter_id
        )

    # ------------------------------------------------------------------ cycle bills

    def _prepare_cycle_bill(
        self, bill: object, as_meter: str | None
    ) -> _PreparedCycleBill | Receipt:
        """A cycle bill's checks up to its proof: the record, the caller, the state rules
        (R4..R6, R18..R22); the original receipt of an identical bill; the statement its
        proof makes, over the ledger's batches of the cycle and the cycle tariff."""
        if not isinstance(bill, CycleBill):
            raise InvalidRequest("cycle bill must be a CycleBill")
        self._acting_as(as_meter, bill.meter_id)
        payload = bill.encode()
        digest, original = self._checked(bill, payload)
        if original is not None:
            return self._receipt(original.index, original.leaf_hash)
        with self._lock:  # the rules held: every batch and the tariff are in the projection
            meter = self._meter(bill.meter_id)
            indices = [meter.batches[period].index for period in bill.periods]
            tariff = self._state.ledger.cycle_tariffs[bill.tariff_hash][0]
        batches = [self._load_batch(index) for index in indices]
        try:  # the circuit over the ledger's commitments, the tariff and the bill's total
            statement = cycle_bill_statement(bill, tariff, batches)
        except ProofFormatError as exc:
            raise ProofMalformed(f"cycle bill proof: {exc}") from None
        return _PreparedCycleBill(bill, payload, digest, statement)

    def submit_cycle_bill(self, bill: CycleBill, *, as_meter: str | None = None) -> Receipt:
        """Verify a cycle bill (records version 2) against the ledger's batches of its cycle
        and its cycle tariff, and append it.

        Refusals, in order: ``PERMISSION_DENIED`` (another meter's bill), the state rules
        (``UNKNOWN_METER``, ``METER_REVOKED``, ``BILL_EXISTS``, ``CYCLE_INCOMPLETE``,
        ``UNKNOWN_BATCH``, ``UNKNOWN_TARIFF``, ``INTERVALS_MISMATCH``), then the circuit
        proof (``PROOF_MALFORMED``, ``PROOF_INVALID``). The identical bill returns its
        original receipt.
        """
        prepared = self._prepare_cycle_bill(bill, as_meter)
        if isinstance(prepared, Receipt):
            return prepared
        cycle_bill = prepared.bill
        self._verifier.verify_cycle_bill(prepared.statement, caller=cycle_bill.meter_id)
        return self._append_checked(
            cycle_bill, prepared.payload, prepared.digest, group_key=cycle_bill.meter_id
        )

    # ------------------------------------------------------------------ statements

    def get_statement(
        self, meter_id: str, period: str | None = None, *, as_meter: str | None = None
    ) -> Statement:
        """The meter's bills with receipts, by period: all of them (a cycle bill once), or
        the one of ``period`` (a cycle bill whose cycle contains it)."""
        self._validate_id(meter_id)
        if period is not None:
            self._validate_period(period)
        self._acting_as(as_meter, meter_id)
        self.catch_up()
        with self._lock:
            meter = self._meter(meter_id)
            if period is None:
                refs = list({ref.index: ref for ref in meter.bills.values()}.values())
            else:
                ref = meter.bills.get(period)
                refs = [] if ref is None else [ref]
            found = [(self._state.bills[ref.index], ref) for ref in refs]
            billed = [(bill, self._currency(bill), ref) for bill, ref in found]
        lines = sorted(
            (
                StatementLine(bill, currency, self._receipt(ref.index, ref.leaf_hash))
                for bill, currency, ref in billed
            ),
            key=lambda line: line.period,
        )
        return Statement(meter_id, tuple(lines), sum(line.total for line in lines))

    def _currency(self, bill: Bill | CycleBill) -> str:
        """(projection lock held) The currency of the bill's tariff."""
        ledger = self._state.ledger
        if isinstance(bill, Bill):
            return ledger.tariffs[bill.period][0].currency
        return ledger.cycle_tariffs[bill.tariff_hash][0].currency

    # ------------------------------------------------------------------ bulk

    def submit_bills(
        self, bills: Sequence[Bill], *, as_meter: str | None = None
    ) -> list[Receipt | ZkgridError]:
        """Submit many bills at once: each goes through :meth:`submit_bill`'s checks, only
        their proofs are verified together (one batch per ``max_batch``); each bill gets its
        receipt or its error, in order."""
        pending: list[tuple[_PreparedBill, Future[None]] | Receipt | ZkgridError] = []
        for bill in bills:
            try:
                prepared = self._prepare_bill(bill, as_meter)
            except ZkgridError as exc:
                pending.append(exc)
                continue
            if isinstance(prepared, Receipt):
                pending.append(prepared)
            else:
                pending.append((prepared, self._verifier.bill_proofs.submit(prepared.claim)))
        results: list[Receipt | ZkgridError] = []
        for item in pending:
            if isinstance(item, Receipt | ZkgridError):
                results.append(item)
                continue
            prepared, proof_checked = item
            try:
                proof_checked.result()  # C4: PROOF_INVALID
                results.append(self._append_bill(prepared))
            except ZkgridError as exc:
                results.append(exc)
        return results


class _Judged:
    """The time one append transaction is judged at: read under the write lock by its
    precondition, then the entries' stored time (``stamp``) and the projection's."""

    __slots__ = ("moment", "seconds")

    def __init__(self) -> None:
        self.moment: datetime | None = None
        self.seconds = 0

    def read(self, clock: Callable[[], datetime]) -> None:
        moment = clock()
        self.seconds = epoch_seconds(moment)
        self.moment = moment.astimezone(UTC)

    def stamp(self) -> datetime:
        """The entries' ``created_at`` (the store calls it after the precondition)."""
        if self.moment is None:  # pragma: no cover - the store runs the precondition first
            raise InvalidRequest("an append stamped before its precondition ran")
        return self.moment


class _ProjectionView:
    """:meth:`Settlement.read_projection`: the ledger state and the market's index, read
    under the projection lock."""

    __slots__ = ("_lock", "_state")

    def __init__(self, lock: threading.Lock, state: _Projection) -> None:
        self._lock = lock
        self._state = state

    def __enter__(self) -> tuple[LedgerState, MarketIndex]:
        self._lock.acquire()
        return self._state.ledger, self._state.market

    def __exit__(self, *_exc: object) -> None:
        self._lock.release()


@dataclass(frozen=True, slots=True)
class _PreparedBill:
    """A bill whose checks passed up to its proof: its bytes, digest and claim."""

    bill: Bill
    payload: bytes
    digest: bytes
    claim: LinearCombinationClaim


@dataclass(frozen=True, slots=True)
class _PreparedCycleBill:
    """A cycle bill whose checks passed up to its proof: its bytes, digest and statement."""

    bill: CycleBill
    payload: bytes
    digest: bytes
    statement: R1CSStatement
