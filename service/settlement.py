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

1. *Outside the lock*, against the projection as it is: the cheap rules (so most
   bad requests fail fast) and then the expensive checks, the ECDSA signature
   and the range or bill proof (verified in micro-batches by
   :class:`service.verification.ProofVerifier`).
2. *Under the ledger's write lock* (the ``precondition`` hook of
   :meth:`service.storage.LedgerStore.append_batch`): catch up on entries other
   replicas appended, then re-check only the state rules (registration,
   revocation, chain, duplicates). Raising there aborts the append, so two
   replicas on one database can never both accept conflicting entries.

Nothing is appended when a request fails. Resubmitting the identical batch,
bill or tariff returns the original receipt (idempotent).
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from sqlalchemy import Connection

from ledger.checkpoint import CheckpointVerifier, SignedCheckpoint
from ledger.entries import Entry, EntryKind, encode_entry
from ledger.inclusion import verify_entry_inclusion
from ledger.merkle import leaf_hash
from service.errors import (
    BillExists,
    ChainBroken,
    DuplicatePeriod,
    IntervalsMismatch,
    InvalidRequest,
    MeterExists,
    MeterRevoked,
    PermissionDenied,
    ProofMalformed,
    ServiceClosing,
    TariffExists,
    UnknownBatch,
    UnknownMeter,
    UnknownTariff,
)
from service.storage import EntryNotFound, LedgerStore, StoredEntry
from service.verification import ProofVerifier, RangeJob, parse_commitments
from settlement.records import (
    RANGE_PROOF_BITS,
    Bill,
    MeterRegistration,
    MeterRevocation,
    ReadingBatch,
    Record,
    RecordFormatError,
    Tariff,
    bill_coefficients,
    decode_record,
    validate_meter_id,
    validate_period,
)
from zkgrid.errors import ProofFormatError, ZkgridError
from zkp.sigma import LinearCombinationClaim, LinearCombinationProof

_log = logging.getLogger(__name__)

__all__ = [
    "MeterInfo",
    "Receipt",
    "Settlement",
    "Statement",
    "StatementLine",
]


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
    """The receipt of entry ``index``: against ``signed`` when given (the checkpoint of
    the group that appended it), else the checkpoint signed at ``index + 1`` (the same
    for every later request) or, for an entry appended inside a batch, the latest one."""
    if signed is None:
        try:
            signed = store.checkpoint_at(index + 1)
        except EntryNotFound:
            signed = store.latest_checkpoint()
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
    bill: Bill
    currency: str
    receipt: Receipt

    @property
    def period(self) -> str:
        return self.bill.period

    @property
    def total(self) -> int:
        return self.bill.total


@dataclass(frozen=True, slots=True)
class Statement:
    """A meter's bills (one line per period, by period) and their sum (micro-currency)."""

    meter_id: str
    lines: tuple[StatementLine, ...]
    total: int


# --------------------------------------------------------------------------- projection


@dataclass(slots=True)
class _Ref:
    index: int
    leaf_hash: bytes
    digest: bytes  # SHA-256 of the record bytes (batch hash, tariff hash, bill digest)


@dataclass(slots=True)
class _Meter:
    registration: MeterRegistration
    ref: _Ref
    revocation: MeterRevocation | None = None
    next_sequence: int = 0
    last_batch_hash: bytes = bytes(32)
    periods: dict[str, _BatchRef] = field(default_factory=dict)
    bills: dict[str, tuple[Bill, _Ref]] = field(default_factory=dict)


@dataclass(slots=True)
class _BatchRef:
    ref: _Ref
    sequence: int
    interval_minutes: int


class _Projection:
    """The state the rules need, built from the log in index order."""

    def __init__(self) -> None:
        self.applied = 0
        self.meters: dict[str, _Meter] = {}
        self.tariffs: dict[str, tuple[Tariff, _Ref]] = {}
        #: Entries the rules would have refused (written behind the service's back).
        self.anomalies: list[int] = []

    def apply(self, index: int, kind: EntryKind, payload: bytes, lh: bytes) -> None:
        if index != self.applied:
            raise InvalidRequest(f"projection: entry {index} applied out of order")
        self.applied += 1
        if kind not in (
            EntryKind.METER_REGISTRATION,
            EntryKind.METER_REVOCATION,
            EntryKind.READING_BATCH,
            EntryKind.TARIFF,
            EntryKind.BILL,
        ):
            return
        try:
            record = decode_record(Entry(kind, payload))
        except RecordFormatError:
            self.anomalies.append(index)
            return
        ref = _Ref(index, lh, hashlib.sha256(payload).digest())
        if not self._apply_record(record, ref):
            self.anomalies.append(index)

    def _apply_record(self, record: Record, ref: _Ref) -> bool:
        """Apply ``record``; ``False`` (and no change) when the rules would refuse it."""
        if isinstance(record, MeterRegistration):
            if record.meter_id in self.meters:
                return False
            self.meters[record.meter_id] = _Meter(record, ref)
            return True
        if isinstance(record, Tariff):
            if record.period in self.tariffs:
                return False
            self.tariffs[record.period] = (record, ref)
            return True
        meter = self.meters.get(record.meter_id)
        if meter is None or meter.revocation is not None:
            return False
        if isinstance(record, MeterRevocation):
            meter.revocation = record
            return True
        if isinstance(record, ReadingBatch):
            if (
                record.period in meter.periods
                or record.sequence != meter.next_sequence
                or record.prev_hash != meter.last_batch_hash
            ):
                return False
            meter.periods[record.period] = _BatchRef(ref, record.sequence, record.interval_minutes)
            meter.next_sequence = record.sequence + 1
            meter.last_batch_hash = ref.digest
            return True
        if record.period in meter.bills:
            return False
        meter.bills[record.period] = (record, ref)
        return True


class _AlreadyRecorded(Exception):
    """Internal: the identical record is already in the log (raised to abort an append)."""

    def __init__(self, ref: _Ref) -> None:
        super().__init__("already recorded")
        self.ref = ref


class _GroupRetry(Exception):
    """Internal: an item of a group failed its check; abort and retry without it."""


#: A grouped append's result: (index, leaf hash, the group's checkpoint), the original
#: entry, or the error.
_GroupOutcome = tuple[int, bytes, SignedCheckpoint] | _AlreadyRecorded | Exception


@dataclass(slots=True)
class _PendingAppend:
    record: Record
    payload: bytes
    check: Callable[[], None]
    key: str
    future: Future[_GroupOutcome]


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
        self, record: Record, check: Callable[[], None], key: str
    ) -> tuple[int, bytes, SignedCheckpoint] | _AlreadyRecorded:
        """Queue ``record`` and wait: (index, leaf hash, the group's checkpoint), or the
        original entry; raises the check's error."""
        pending = _PendingAppend(record, record.encode(), check, key, Future())
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
    ) -> None:
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
                self._state.apply(e.index, e.kind, e.payload, e.leaf_hash)

    def _append(
        self, record: Record, check: Callable[[], None], *, group_key: str | None = None
    ) -> Receipt:
        """Append ``record`` if ``check`` (run under the write lock, after catching up and
        holding the projection lock) passes; the original receipt if it is already there.

        With a ``group_key`` (the meter id of a reading batch or bill) the append goes
        through the group committer: records appended concurrently share one
        transaction and one checkpoint, at most one per key (see :class:`_GroupCommitter`).
        """
        if group_key is not None and self._committer is not None:
            outcome = self._committer.append(record, check, group_key)
            if isinstance(outcome, _AlreadyRecorded):
                return self._receipt(outcome.ref.index, outcome.ref.leaf_hash)
            index, lh, signed = outcome
            return receipt_for(self._store, index, lh, signed)
        payload = record.encode()

        def precondition(conn: Connection, size: int) -> None:
            if self._state.applied < size:
                self._apply_entries(self._store.entries_locked(conn, self._state.applied, size))
            with self._lock:
                check()

        try:
            index = self._store.append(record.KIND, payload, precondition=precondition)
        except _AlreadyRecorded as done:
            return self._receipt(done.ref.index, done.ref.leaf_hash)
        return self._receipt(index, self._applied(index, record.KIND, payload))

    def _applied(self, index: int, kind: EntryKind, payload: bytes) -> bytes:
        """Apply the entry just appended at ``index`` to the projection; its leaf hash."""
        lh = leaf_hash(encode_entry(kind, payload))
        with self._lock:
            if self._state.applied == index:
                self._state.apply(index, kind, payload, lh)
        if self._state.applied <= index:  # pragma: no cover - another thread is mid-apply
            self.catch_up()
        return lh

    def _group_precondition(
        self, items: Sequence[_PendingAppend], live: list[int], failed: dict[int, Exception]
    ) -> Callable[[Connection, int], None]:
        """Under the write lock: catch up, run every live item's check; any failure
        (recorded in ``failed``) aborts the transaction."""

        def precondition(conn: Connection, size: int) -> None:
            if self._state.applied < size:
                self._apply_entries(self._store.entries_locked(conn, self._state.applied, size))
            with self._lock:
                for i in live:
                    try:
                        items[i].check()
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
            precondition = self._group_precondition(items, live, failed)
            try:
                indices = self._store.append_batch(
                    [(items[i].record.KIND, items[i].payload) for i in live],
                    precondition=precondition,
                )
            except _GroupRetry:
                for i, exc in failed.items():
                    outcomes[i] = exc
                live = [i for i in live if i not in failed]
                continue
            signed = self._store.checkpoint_at(indices[-1] + 1)  # the group's, for every receipt
            for i, index in zip(live, indices, strict=True):
                item = items[i]
                lh = self._applied(index, item.record.KIND, item.payload)
                outcomes[i] = (index, lh, signed)
            break
        return [outcomes[i] for i in range(len(items))]  # every item has its outcome

    def _receipt(self, index: int, lh: bytes) -> Receipt:
        return receipt_for(self._store, index, lh)

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _record(value: object, cls: type[Record], what: str) -> None:
        if not isinstance(value, cls):
            raise InvalidRequest(f"{what} must be a {cls.__name__}")

    @staticmethod
    def _acting_as(as_meter: str | None, meter_id: str) -> None:
        if as_meter is not None and as_meter != meter_id:
            raise PermissionDenied("a meter may act only for its own meter id")

    def _meter(self, meter_id: str, *, active: bool) -> _Meter:
        """The meter (projection lock held); UNKNOWN_METER / METER_REVOKED."""
        meter = self._state.meters.get(meter_id)
        if meter is None:
            raise UnknownMeter(f"meter {meter_id!r} is not registered")
        if active and meter.revocation is not None:
            raise MeterRevoked(f"meter {meter_id!r} is revoked")
        return meter

    # ------------------------------------------------------------------ meters

    def register_meter(self, registration: MeterRegistration) -> Receipt:
        """Append a registration: valid proof of possession, unused id (else ``METER_EXISTS``)."""
        self._record(registration, MeterRegistration, "registration")
        meter_id = registration.meter_id

        def check() -> None:
            if meter_id in self._state.meters:
                raise MeterExists(f"meter {meter_id!r} is already registered")

        self.catch_up()
        with self._lock:
            check()
        registration.verify_pop()  # SIGNATURE_INVALID
        return self._append(registration, check)

    def revoke_meter(self, meter_id: str, reason: str = "") -> Receipt:
        """Append a revocation of an active meter (``UNKNOWN_METER`` / ``METER_REVOKED``)."""
        try:
            revocation = MeterRevocation(meter_id, reason)
        except RecordFormatError as exc:
            raise InvalidRequest(f"revocation: {exc}") from None

        def check() -> None:
            self._meter(meter_id, active=True)

        self.catch_up()
        with self._lock:
            check()
        return self._append(revocation, check)

    def get_meter(self, meter_id: str) -> MeterInfo:
        self._validate_id(meter_id)
        self.catch_up()
        with self._lock:
            meter = self._meter(meter_id, active=False)
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
            ref = self._meter(meter_id, active=False).ref
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

    def _batch_state_rules(self, batch: ReadingBatch, digest: bytes) -> None:
        """The state rules of a batch (projection lock held). Raises _AlreadyRecorded for
        the identical batch."""
        meter = self._meter(batch.meter_id, active=False)
        existing = meter.periods.get(batch.period)
        if existing is not None and existing.ref.digest == digest:
            raise _AlreadyRecorded(existing.ref)
        if meter.revocation is not None:
            raise MeterRevoked(f"meter {batch.meter_id!r} is revoked")
        if batch.interval_minutes != meter.registration.interval_minutes:
            raise IntervalsMismatch(
                f"meter {batch.meter_id!r} reports every {meter.registration.interval_minutes}"
                f" minutes; the batch has {batch.interval_minutes}"
            )
        if existing is not None:
            raise DuplicatePeriod(
                f"meter {batch.meter_id!r} already submitted a batch for {batch.period}"
            )
        if batch.sequence != meter.next_sequence:
            raise ChainBroken(
                f"batch sequence {batch.sequence}; meter {batch.meter_id!r} is at"
                f" {meter.next_sequence}"
            )
        if batch.prev_hash != meter.last_batch_hash:
            raise ChainBroken("prev_hash is not the hash of the meter's last batch")

    def submit_readings(self, batch: ReadingBatch, *, as_meter: str | None = None) -> Receipt:
        """Check and append a reading batch; the identical batch returns its original receipt.

        ``as_meter``: the authenticated meter id of the caller (mTLS), if the caller is a
        meter; another meter's batch is ``PERMISSION_DENIED``.
        """
        self._record(batch, ReadingBatch, "batch")
        self._acting_as(as_meter, batch.meter_id)
        digest = batch.batch_hash()
        self.catch_up()
        try:
            with self._lock:
                self._batch_state_rules(batch, digest)
                public_key = self._state.meters[batch.meter_id].registration.public_key
        except _AlreadyRecorded as done:
            return self._receipt(done.ref.index, done.ref.leaf_hash)
        # Expensive checks, outside every lock.
        batch.verify_signature(public_key)  # SIGNATURE_INVALID
        # PROOF_MALFORMED / PROOF_INVALID; parsed and verified where the verifier runs
        self._verifier.verify(
            RangeJob(batch.range_proof, batch.commitments, RANGE_PROOF_BITS, batch.proof_context())
        )

        def check() -> None:
            self._batch_state_rules(batch, digest)

        return self._append(batch, check, group_key=batch.meter_id)

    def _batch_ref(self, meter_id: str, period: str) -> _BatchRef:
        """(projection lock held)"""
        meter = self._meter(meter_id, active=False)
        ref = meter.periods.get(period)
        if ref is None:
            raise UnknownBatch(f"meter {meter_id!r} has no batch for {period}")
        return ref

    def get_receipt(self, meter_id: str, period: str, *, as_meter: str | None = None) -> Receipt:
        """The receipt of the meter's batch for ``period`` (``UNKNOWN_BATCH`` if none)."""
        self._validate_id(meter_id)
        self._validate_period(period)
        self._acting_as(as_meter, meter_id)
        self.catch_up()
        with self._lock:
            ref = self._batch_ref(meter_id, period).ref
        return self._receipt(ref.index, ref.leaf_hash)

    def get_batch(self, meter_id: str, period: str) -> ReadingBatch:
        """The meter's batch for ``period`` as stored (``UNKNOWN_BATCH`` if none)."""
        self._validate_id(meter_id)
        self._validate_period(period)
        self.catch_up()
        with self._lock:
            index = self._batch_ref(meter_id, period).ref.index
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
        digest = tariff.tariff_hash()

        def check() -> None:
            existing = self._state.tariffs.get(tariff.period)
            if existing is not None:
                if existing[1].digest == digest:
                    raise _AlreadyRecorded(existing[1])
                raise TariffExists(f"the tariff for {tariff.period} is already published")

        self.catch_up()
        try:
            with self._lock:
                check()
        except _AlreadyRecorded as done:
            return self._receipt(done.ref.index, done.ref.leaf_hash)
        return self._append(tariff, check)

    def get_tariff(self, period: str) -> tuple[Tariff, Receipt]:
        """The period's tariff and its receipt (``UNKNOWN_TARIFF`` if none)."""
        self._validate_period(period)
        self.catch_up()
        with self._lock:
            found = self._state.tariffs.get(period)
        if found is None:
            raise UnknownTariff(f"no tariff is published for {period}")
        tariff, ref = found
        return tariff, self._receipt(ref.index, ref.leaf_hash)

    # ------------------------------------------------------------------ bills

    def _bill_state_rules(self, bill: Bill, digest: bytes) -> tuple[_BatchRef, Tariff]:
        """The state rules of a bill (projection lock held)."""
        meter = self._meter(bill.meter_id, active=False)
        existing = meter.bills.get(bill.period)
        if existing is not None and existing[1].digest == digest:
            raise _AlreadyRecorded(existing[1])
        if meter.revocation is not None:
            raise MeterRevoked(f"meter {bill.meter_id!r} is revoked")
        if existing is not None:
            raise BillExists(f"meter {bill.meter_id!r} already has a bill for {bill.period}")
        batch = meter.periods.get(bill.period)
        if batch is None or batch.ref.digest != bill.batch_hash:
            raise UnknownBatch(
                f"the bill does not name meter {bill.meter_id!r}'s batch for {bill.period}"
            )
        found = self._state.tariffs.get(bill.period)
        if found is None or found[1].digest != bill.tariff_hash:
            raise UnknownTariff(f"the bill does not name the published tariff of {bill.period}")
        tariff = found[0]
        if tariff.interval_minutes != batch.interval_minutes:
            raise IntervalsMismatch(
                f"the tariff of {bill.period} has {tariff.interval_minutes}-minute intervals;"
                f" the batch has {batch.interval_minutes}"
            )
        return batch, tariff

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

    def submit_bill(self, bill: Bill, *, as_meter: str | None = None) -> Receipt:
        """Verify the bill against the ledger's batch and tariff and append it.

        The identical bill returns its original receipt; another bill for the same
        (meter, period) is ``BILL_EXISTS``.
        """
        self._record(bill, Bill, "bill")
        self._acting_as(as_meter, bill.meter_id)
        digest = hashlib.sha256(bill.encode()).digest()
        self.catch_up()
        try:
            with self._lock:
                batch_ref, tariff = self._bill_state_rules(bill, digest)
        except _AlreadyRecorded as done:
            return self._receipt(done.ref.index, done.ref.leaf_hash)
        batch = self._load_batch(batch_ref.ref.index)
        self._verifier.verify_bill(self.bill_claim(bill, batch, tariff))  # PROOF_INVALID
        return self._append_bill(bill, digest)

    def _append_bill(self, bill: Bill, digest: bytes) -> Receipt:
        def check() -> None:
            self._bill_state_rules(bill, digest)

        return self._append(bill, check, group_key=bill.meter_id)

    def get_statement(
        self, meter_id: str, period: str | None = None, *, as_meter: str | None = None
    ) -> Statement:
        """The meter's bills (all, or the one of ``period``) with receipts, by period."""
        self._validate_id(meter_id)
        if period is not None:
            self._validate_period(period)
        self._acting_as(as_meter, meter_id)
        self.catch_up()
        with self._lock:
            meter = self._meter(meter_id, active=False)
            bills = sorted(
                (b for p, b in meter.bills.items() if period is None or p == period),
                key=lambda item: item[0].period,
            )
            currencies = {p: self._state.tariffs[p][0].currency for p in meter.bills}
        lines = tuple(
            StatementLine(bill, currencies[bill.period], self._receipt(ref.index, ref.leaf_hash))
            for bill, ref in bills
        )
        return Statement(meter_id, lines, sum(line.total for line in lines))

    # ------------------------------------------------------------------ bulk

    def submit_bills(
        self, bills: Sequence[Bill], *, as_meter: str | None = None
    ) -> list[Receipt | ZkgridError]:
        """Submit many bills at once: their proofs are verified together (one batch per
        ``max_batch``); each bill gets its receipt or its error, in order."""
        futures: list[tuple[Bill, bytes, Future[None] | Receipt | ZkgridError]] = []
        for bill in bills:
            digest = b""
            try:
                self._record(bill, Bill, "bill")
                self._acting_as(as_meter, bill.meter_id)
                digest = hashlib.sha256(bill.encode()).digest()
                self.catch_up()
                with self._lock:
                    batch_ref, tariff = self._bill_state_rules(bill, digest)
                batch = self._load_batch(batch_ref.ref.index)
                claim = self.bill_claim(bill, batch, tariff)
                futures.append((bill, digest, self._verifier.bill_proofs.submit(claim)))
            except _AlreadyRecorded as done:
                futures.append((bill, digest, self._receipt(done.ref.index, done.ref.leaf_hash)))
            except ZkgridError as exc:
                futures.append((bill, digest, exc))
        results: list[Receipt | ZkgridError] = []
        for bill, digest, pending in futures:
            if isinstance(pending, Receipt | ZkgridError):
                results.append(pending)
                continue
            try:
                pending.result()
                results.append(self._append_bill(bill, digest))
            except ZkgridError as exc:
                results.append(exc)
        return results
