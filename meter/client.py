"""The meter SDK: build, prove, sign and submit a prosumer's batches and bills.

Openings (readings and blindings) never leave this package: requests carry only
commitments, proofs, signatures and the bill total. Every receipt the service
returns is checked before it is stored: its leaf hash must be the hash of the
very record this client sent, and its inclusion proof must verify against the
checkpoint it comes with (:func:`ledger.merkle.verify_inclusion`); when the
log's checkpoint key is pinned (``log_key``) the checkpoint's signature is
verified too.

Transient failures (``UNAVAILABLE``, ``DEADLINE_EXCEEDED``) are retried with
exponential backoff; submissions are idempotent on the service side (the
identical batch or bill returns the original receipt), so a retry after a lost
response is safe.

Typical use::

    home = MeterClient.keygen("~/.zkgrid/meter/m-1", "m-1")      # once
    client = MeterClient(home, target="127.0.0.1:50051", insecure=True)
    registration = client.registration_request()                  # the utility submits it
    receipt = client.submit(client.build_batch(readings))
    bill = client.prove_bill("2026-11-21")
    client.submit_bill(bill)
    cycle_bill, receipt = client.settle_cycle("2026-11-01", "2026-11-30")  # a billing cycle
    client.statement()
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import grpc

from ledger.checkpoint import CheckpointVerifier
from ledger.entries import Entry, EntryKind
from ledger.errors import LedgerError, ReceiptError
from ledger.inclusion import verify_entry_inclusion
from meter.home import MeterHome
from meter.openings import OpeningStore, OpeningStoreError, StoredBatch
from meter.readings import DayReadings
from settlement import convert, cycle_bills
from settlement.errors import CycleIncomplete, DuplicatePeriod, UnknownTariff
from settlement.periods import check_submission_window
from settlement.records import (
    RANGE_PROOF_BITS,
    ZERO_HASH,
    Bill,
    CycleBill,
    CycleTariff,
    MeterRegistration,
    ReadingBatch,
    Tariff,
    bill_coefficients,
    bill_proof_context,
    reading_proof_context,
)
from zkgrid._internal.channels import TlsMaterial, client_channel, dev_metadata
from zkgrid._internal.rpc import RemoteError, remote_error
from zkgrid.errors import InvalidArgumentError, Reason, VerificationError
from zkgrid.settlement.v1 import (
    bills_pb2,
    bills_pb2_grpc,
    common_pb2,
    meters_pb2,
    meters_pb2_grpc,
    readings_pb2,
    readings_pb2_grpc,
    tariffs_pb2,
    tariffs_pb2_grpc,
)
from zkp.pedersen import Commitment
from zkp.rangeproof import RangeProof
from zkp.sigma import LinearCombinationProof

__all__ = [
    "BatchConflictError",
    "CycleIncompleteError",
    "CycleMismatchError",
    "CycleStatementLine",
    "MeterClient",
    "ReceiptError",
    "ServiceError",
    "Statement",
    "StatementLine",
    "VerifiedReceipt",
    "build_batch_in_home",
    "checked_cycle_tariff",
    "make_channel",
    "prove_bill_from_openings",
    "prove_cycle_bill_in_home",
    "submit_registration",
    "verify_receipt",
]

log = logging.getLogger(__name__)

#: Refusals after which a pending batch can never be accepted as it is: it is discarded.
_BATCH_FINAL_REFUSALS = frozenset(
    {
        Reason.SIGNATURE_INVALID,
        Reason.INTERVALS_MISMATCH,
        Reason.CHAIN_BROKEN,
        Reason.DUPLICATE_PERIOD,
        Reason.PROOF_MALFORMED,
        Reason.PROOF_INVALID,
        Reason.INVALID_ARGUMENT,
    }
)

_Resp = TypeVar("_Resp")


# --------------------------------------------------------------------------- errors


#: The service refused a request (or stayed unreachable after the retries): ``reason`` is
#: the service's ``google.rpc.ErrorInfo`` reason when it sent one, else the gRPC status
#: code name; ``code`` is the gRPC status code (:mod:`zkgrid._internal.rpc`).
ServiceError = RemoteError


class BatchConflictError(DuplicatePeriod, InvalidArgumentError):
    """The local store already holds a different batch for the period, or one is pending."""

    reason = Reason.DUPLICATE_PERIOD


class CycleMismatchError(UnknownTariff):
    """The cycle asked for is not the cycle of the utility's plan for the meter (the plan's
    cycle is named: bill that one)."""

    reason = Reason.UNKNOWN_TARIFF


class CycleIncompleteError(CycleIncomplete, OpeningStoreError):
    """A period of the cycle has no accepted batch in the local opening store (named, with
    what to do: submit that day first)."""

    reason = Reason.CYCLE_INCOMPLETE


# --------------------------------------------------------------------------- receipts


@dataclass(frozen=True)
class VerifiedReceipt:
    """A receipt whose inclusion proof verified (and, with a pinned key, its signature)."""

    ledger_index: int
    leaf_hash: bytes
    tree_size: int
    root_hash: bytes
    checkpoint: str = field(repr=False)
    signature_verified: bool
    raw: bytes = field(repr=False)  #: the serialised common_pb2.Receipt


def verify_receipt(
    receipt: common_pb2.Receipt,
    kind: EntryKind,
    payload: bytes,
    log_key: str | CheckpointVerifier | None = None,
) -> VerifiedReceipt:
    """Check that ``receipt`` proves the entry ``(kind, payload)`` is in the ledger.

    :func:`ledger.inclusion.verify_entry_inclusion`: the leaf hash must be the RFC 6962
    hash of ``encode_entry(kind, payload)``, the inclusion proof must verify against the
    checkpoint's root and size, and with ``log_key`` the checkpoint must carry a valid
    signature of that key. Raises :class:`ReceiptError`.
    """
    try:
        inclusion = verify_entry_inclusion(
            index=receipt.ledger_index,
            leaf_hash=bytes(receipt.leaf_hash),
            checkpoint=receipt.checkpoint,
            tree_size=receipt.tree_size,
            inclusion_proof=[bytes(h) for h in receipt.inclusion_proof],
            log_key=log_key,
            entry=Entry(kind, payload),
        )
    except LedgerError as exc:
        raise ReceiptError(f"receipt does not verify: {exc}") from None
    return VerifiedReceipt(
        ledger_index=inclusion.index,
        leaf_hash=inclusion.leaf_hash,
        tree_size=inclusion.checkpoint.size,
        root_hash=inclusion.checkpoint.root,
        checkpoint=receipt.checkpoint,
        signature_verified=inclusion.signature_verified,
        raw=receipt.SerializeToString(deterministic=True),
    )


# --------------------------------------------------------------------------- channels


def make_channel(
    target: str,
    *,
    insecure: bool = False,
    ca: str | Path | None = None,
    cert: str | Path | None = None,
    key: str | Path | None = None,
    role: str | None = None,
    identity: str | None = None,
) -> grpc.Channel:
    """A channel to the service: mTLS (``ca``, ``cert``, ``key``) or, for development on
    the loopback interface only, plaintext (``insecure``)
    (:func:`zkgrid._internal.channels.client_channel`; the key must be ``chmod 600``).
    The files are checked first, with the certificate's ``role`` and ``identity`` when
    given (:meth:`~zkgrid._internal.channels.TlsMaterial.check`)."""
    if insecure:
        if ca is not None or cert is not None or key is not None:
            raise InvalidArgumentError("--insecure cannot be combined with --ca/--cert/--key")
        return client_channel(target, insecure=True)
    if ca is None:
        raise InvalidArgumentError("TLS needs --ca (and --cert/--key for mTLS), or --insecure")
    tls = TlsMaterial.from_files(ca, cert, key, role=role, identity=identity)
    return client_channel(target, tls=tls)


def _stub(factory: Callable[..., Any], channel: grpc.Channel) -> Any:
    """A generated (untyped) client stub; responses are type-checked by :class:`_Rpc`."""
    return factory(channel)


class _Rpc:
    """Unary calls with identity metadata, a deadline and retries of transient failures."""

    def __init__(
        self,
        channel: grpc.Channel,
        metadata: Sequence[tuple[str, str]],
        *,
        timeout: float,
        max_attempts: int,
        initial_backoff: float,
    ) -> None:
        self.channel = channel
        self.metadata = tuple(metadata)
        self.timeout = timeout
        self.max_attempts = max(1, max_attempts)
        self.initial_backoff = initial_backoff

    def __call__(
        self, method: Callable[..., Any], request: Any, response_type: type[_Resp], what: str
    ) -> _Resp:
        delay = self.initial_backoff
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = method(request, timeout=self.timeout, metadata=self.metadata)
                if not isinstance(response, response_type):  # pragma: no cover
                    raise TypeError(f"{what}: unexpected response type")
                return response
            except grpc.RpcError as exc:
                error = remote_error(exc, what)
                if not error.transient or attempt == self.max_attempts:
                    raise error from None
                # Backoff with jitter, and no sooner than the service's RetryInfo says.
                wait = delay * random.uniform(0.5, 1.5)  # noqa: S311 - jitter only
                wait = max(wait, min(error.retry_after_s or 0.0, self.timeout))
                log.info(
                    "%s: %s (attempt %d of %d), retrying in %.2fs",
                    what, error.reason, attempt, self.max_attempts, wait,
                )  # fmt: skip
                time.sleep(wait)
                delay = min(delay * 2, 5.0)
        raise AssertionError("unreachable")  # pragma: no cover


def submit_registration(
    channel: grpc.Channel,
    registration: MeterRegistration,
    *,
    metadata: Sequence[tuple[str, str]] = (),
    log_key: str | CheckpointVerifier | None = None,
    timeout: float = 30.0,
) -> VerifiedReceipt:
    """The utility's side of registration: submit a meter's registration request."""
    rpc = _Rpc(channel, metadata, timeout=timeout, max_attempts=6, initial_backoff=0.1)
    stub = _stub(meters_pb2_grpc.MeterServiceStub, channel)
    response = rpc(
        stub.RegisterMeter,
        meters_pb2.RegisterMeterRequest(registration=convert.registration_to_proto(registration)),
        meters_pb2.RegisterMeterResponse,
        "RegisterMeter",
    )
    return verify_receipt(
        response.receipt, EntryKind.METER_REGISTRATION, registration.encode(), log_key
    )


@dataclass(frozen=True)
class Registered:
    """A registration as the ledger holds it: its verified receipt, and whether this call
    appended it (``False``: the identical registration was already there)."""

    registration: MeterRegistration
    receipt: VerifiedReceipt
    appended: bool


def register_or_confirm(
    channel: grpc.Channel,
    registration: MeterRegistration,
    *,
    metadata: Sequence[tuple[str, str]] = (),
    log_key: str | CheckpointVerifier | None = None,
    timeout: float = 30.0,
) -> Registered:
    """Register the meter, or confirm that the ledger already holds this very registration
    (a retry after a lost answer): idempotent for the identical request. Another
    registration under the id stays ``METER_EXISTS`` (ids are never reused)."""
    try:
        receipt = submit_registration(
            channel, registration, metadata=metadata, log_key=log_key, timeout=timeout
        )
        return Registered(registration, receipt, True)
    except RemoteError as exc:
        if exc.reason is not Reason.METER_EXISTS:
            raise
        refusal = exc
    rpc = _Rpc(channel, metadata, timeout=timeout, max_attempts=6, initial_backoff=0.1)
    found = rpc(
        _stub(meters_pb2_grpc.MeterServiceStub, channel).GetMeter,
        meters_pb2.GetMeterRequest(meter_id=registration.meter_id),
        meters_pb2.GetMeterResponse,
        "GetMeter",
    )
    if convert.registration_from_proto(found.registration) != registration:
        raise refusal from None
    receipt = verify_receipt(
        found.receipt, EntryKind.METER_REGISTRATION, registration.encode(), log_key
    )
    return Registered(registration, receipt, False)


def revoke_meter(
    channel: grpc.Channel,
    meter_id: str,
    reason: str,
    *,
    metadata: Sequence[tuple[str, str]] = (),
    log_key: str | CheckpointVerifier | None = None,
    timeout: float = 30.0,
) -> VerifiedReceipt:
    """The utility revokes a meter (the reason is public: it is stored in the ledger)."""
    from settlement.records import MeterRevocation

    revocation = MeterRevocation(meter_id, reason)  # checked here first: RECORD_MALFORMED
    rpc = _Rpc(channel, metadata, timeout=timeout, max_attempts=6, initial_backoff=0.1)
    response = rpc(
        _stub(meters_pb2_grpc.MeterServiceStub, channel).RevokeMeter,
        meters_pb2.RevokeMeterRequest(meter_id=meter_id, reason=reason),
        meters_pb2.RevokeMeterResponse,
        "RevokeMeter",
    )
    return verify_receipt(
        response.receipt, EntryKind.METER_REVOCATION, revocation.encode(), log_key
    )


# --------------------------------------------------------------------------- the client


@dataclass(frozen=True)
class StatementLine:
    bill: Bill
    receipt: VerifiedReceipt


@dataclass(frozen=True)
class CycleStatementLine:
    """A billing cycle's bill on the statement (records version 2); ``currency`` is the one
    the service names for it (its cycle tariff's)."""

    bill: CycleBill
    receipt: VerifiedReceipt
    currency: str

    @property
    def cycle(self) -> str:
        return f"{self.bill.first_period}..{self.bill.last_period}"


@dataclass(frozen=True)
class Statement:
    """The meter's bills: a day's bills (``lines``) and the bills of billing cycles
    (``cycle_lines``); ``total`` sums both (micro-currency)."""

    meter_id: str
    lines: tuple[StatementLine, ...]
    total: int
    cycle_lines: tuple[CycleStatementLine, ...] = ()


def _check_proof_locally(batch: ReadingBatch, commitments: Sequence[Commitment]) -> None:
    RangeProof.from_bytes(batch.range_proof).verify(
        commitments, RANGE_PROOF_BITS, batch.proof_context()
    )


def _appended_receipt(
    receipt: common_pb2.Receipt,
    kind: EntryKind,
    payload: bytes,
    log_key: str | CheckpointVerifier | None,
    what: str,
    again: str,
) -> VerifiedReceipt:
    """:func:`verify_receipt` for an entry the service says it appended: when the receipt
    does not verify, say that the entry may well be in the ledger and how to fetch its
    receipt again (the submission is idempotent)."""
    try:
        return verify_receipt(receipt, kind, payload, log_key)
    except ReceiptError as exc:
        raise ReceiptError(
            f"the service accepted the {what} (it says: ledger index {receipt.ledger_index}),"
            f" but its receipt does not verify: {exc}. The {what} may be in the ledger: run"
            f" `zkgrid {again}` again to fetch its receipt (nothing is appended twice), and"
            " check that --log-key is this log's key"
        ) from None


def _utc_now() -> datetime:
    return datetime.now(UTC)


class MeterClient:
    """One meter's SDK over its home (key, opening store) and, optionally, a channel.

    Without a channel (and target) only the offline operations work:
    :meth:`registration_request` and :meth:`build_batch`.
    """

    def __init__(
        self,
        home: MeterHome | str | Path,
        channel: grpc.Channel | None = None,
        *,
        target: str | None = None,
        insecure: bool = False,
        ca: str | Path | None = None,
        cert: str | Path | None = None,
        key: str | Path | None = None,
        log_key: str | CheckpointVerifier | None = None,
        timeout: float = 30.0,
        max_attempts: int = 6,
        initial_backoff: float = 0.1,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        #: The meter's clock: a period is proven only once it has ended (the service's
        #: submission window, settlement.periods.check_submission_window).
        self._clock = clock
        self.home = home if isinstance(home, MeterHome) else MeterHome.load(home)
        self.meter_id = self.home.meter_id
        self.log_key = log_key
        self._owns_channel = channel is None and target is not None
        if channel is None and target is not None:
            channel = make_channel(
                target,
                insecure=insecure,
                ca=ca,
                cert=cert,
                key=key,
                role="meter",
                identity=self.home.meter_id,
            )
        self._channel = channel
        metadata = dev_metadata("meter", self.meter_id) if insecure else ()
        self._rpc = (
            _Rpc(
                channel,
                metadata,
                timeout=timeout,
                max_attempts=max_attempts,
                initial_backoff=initial_backoff,
            )
            if channel is not None
            else None
        )
        self._store: OpeningStore | None = None

    # --- lifecycle -------------------------------------------------------------------

    @staticmethod
    def keygen(home: str | Path, meter_id: str, interval_minutes: int = 15) -> MeterHome:
        """Create a meter home with a fresh key (refuses an existing one)."""
        return MeterHome.create(Path(home).expanduser(), meter_id, interval_minutes)

    @property
    def store(self) -> OpeningStore:
        if self._store is None:
            self._store = self.home.openings()
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._owns_channel and self._channel is not None:
            self._channel.close()

    def __enter__(self) -> MeterClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @property
    def rpc(self) -> _Rpc:
        if self._rpc is None:
            raise InvalidArgumentError("this operation needs a service: pass a channel or target")
        return self._rpc

    @property
    def channel(self) -> grpc.Channel:
        return self.rpc.channel

    # --- registration ---------------------------------------------------------------

    def registration_request(self) -> MeterRegistration:
        """The meter's registration with its proof of possession (the utility submits it)."""
        return MeterRegistration.create(self.home.key(), self.meter_id, self.home.interval_minutes)

    def meter_status(self) -> meters_pb2.GetMeterResponse:
        stub = _stub(meters_pb2_grpc.MeterServiceStub, self.channel)
        return self.rpc(
            stub.GetMeter,
            meters_pb2.GetMeterRequest(meter_id=self.meter_id),
            meters_pb2.GetMeterResponse,
            "GetMeter",
        )

    # --- readings -------------------------------------------------------------------

    def build_batch(self, readings: DayReadings) -> ReadingBatch:
        """Commit, range-prove and sign a period's readings (offline; ~2 s for 192 values).

        The openings and the batch are stored (``pending``) before this returns, so the
        same period always gets the same batch: calling it again with the identical
        readings returns the stored batch; different readings raise
        :class:`BatchConflictError`. A new period needs the previous batch accepted
        (see :meth:`submit_pending`).
        """
        if readings.interval_minutes != self.home.interval_minutes:
            raise InvalidArgumentError(
                f"readings use {readings.interval_minutes}-minute intervals, the meter is"
                f" registered with {self.home.interval_minutes}"
            )
        store = self.store
        values = readings.values()
        existing = store.batch(readings.period)
        if existing is not None:
            if list(existing.values) != values:
                raise BatchConflictError(
                    f"a different batch for {readings.period} was already built"
                    f" ({existing.status}); one batch per period"
                )
            return ReadingBatch.decode(existing.batch)
        # Before proving: the service takes no batch for a period that has not ended
        # (PERIOD_NOT_ENDED); its late limit is its own (it names PERIOD_CLOSED itself).
        check_submission_window(readings.period, self._clock(), None)
        head = store.last_batch()
        if head is not None and head.status == "pending":
            raise BatchConflictError(
                f"the batch for {head.period} is not accepted yet: submit it first"
            )
        sequence = 0 if head is None else head.sequence + 1
        prev_hash = ZERO_HASH if head is None else head.batch_hash
        context = reading_proof_context(self.meter_id, readings.period, sequence)
        bundle = RangeProof.prove(values, RANGE_PROOF_BITS, context=context)
        batch = ReadingBatch.create(
            self.home.key(),
            meter_id=self.meter_id,
            period=readings.period,
            interval_minutes=readings.interval_minutes,
            sequence=sequence,
            prev_hash=prev_hash,
            commitments=[c.to_bytes() for c in bundle.commitments],
            range_proof=bundle.proof.to_bytes(),
        )
        store.add_pending(
            period=readings.period,
            sequence=sequence,
            interval_minutes=readings.interval_minutes,
            values=values,
            blindings=bundle.blindings,
            batch=batch.encode(),
            batch_hash=batch.batch_hash(),
        )
        log.info("built batch %s/%s sequence %d", self.meter_id, readings.period, sequence)
        return batch

    def submit(self, batch: ReadingBatch) -> VerifiedReceipt:
        """Submit a batch (retrying transient failures) and verify and store its receipt.

        A refusal after which the batch can never be accepted (bad proof or
        signature, broken chain, another batch for the period) discards it from
        the local store so the period can be built again; the error is raised.
        """
        if batch.meter_id != self.meter_id:
            raise InvalidArgumentError("the batch belongs to another meter")
        stub = _stub(readings_pb2_grpc.ReadingServiceStub, self.channel)
        try:
            response = self.rpc(
                stub.SubmitReadings,
                readings_pb2.SubmitReadingsRequest(batch=convert.reading_batch_to_proto(batch)),
                readings_pb2.SubmitReadingsResponse,
                "SubmitReadings",
            )
        except ServiceError as exc:
            stored = self.store.batch(batch.period)
            if (
                exc.reason in _BATCH_FINAL_REFUSALS
                and stored is not None
                and stored.status == "pending"
                and stored.batch == batch.encode()
            ):
                self.store.discard_pending(batch.period)
                log.info(
                    "batch %s/%s refused (%s): discarded", self.meter_id, batch.period, exc.reason
                )
            raise
        payload = batch.encode()
        if bytes(response.batch_hash) != batch.batch_hash():
            raise ReceiptError("the service names another batch hash than the submitted batch's")
        receipt = _appended_receipt(
            response.receipt,
            EntryKind.READING_BATCH,
            payload,
            self.log_key,
            "batch",
            "meter submit",
        )
        stored = self.store.batch(batch.period)
        if stored is not None and stored.batch == payload:
            self.store.mark_accepted(batch.period, receipt.raw)
        return receipt

    def submit_pending(self) -> list[VerifiedReceipt]:
        """Submit every batch built but not yet accepted (e.g. after a crash), in order."""
        return [self.submit(ReadingBatch.decode(b.batch)) for b in self.store.pending()]

    def submit_readings(self, readings: DayReadings) -> VerifiedReceipt:
        """Submit any pending batch, then build (or reuse) and submit this period's batch."""
        existing = self.store.batch(readings.period)
        if existing is None or existing.status == "pending":
            for pending in self.store.pending():
                if pending.period != readings.period:
                    self.submit(ReadingBatch.decode(pending.batch))
        return self.submit(self.build_batch(readings))

    # --- tariffs and bills -------------------------------------------------------------

    def tariff(self, period: str) -> tuple[Tariff, VerifiedReceipt]:
        """Fetch a period's tariff and check it is the ledger's TARIFF record."""
        stub = _stub(tariffs_pb2_grpc.TariffServiceStub, self.channel)
        response = self.rpc(
            stub.GetTariff,
            tariffs_pb2.GetTariffRequest(period=period),
            tariffs_pb2.GetTariffResponse,
            "GetTariff",
        )
        tariff = convert.tariff_from_proto(response.tariff)
        if tariff.period != period:
            raise ReceiptError("the service returned the tariff of another period")
        if bytes(response.tariff_hash) != tariff.tariff_hash():
            raise ReceiptError("the tariff hash does not match the tariff record")
        receipt = verify_receipt(response.receipt, EntryKind.TARIFF, tariff.encode(), self.log_key)
        return tariff, receipt

    def _accepted_batch(self, period: str) -> StoredBatch:
        stored = self.store.batch(period)
        if stored is None:
            raise OpeningStoreError(f"no readings were submitted for {period} from this home")
        if stored.status != "accepted":
            raise OpeningStoreError(f"the batch for {period} is not accepted yet: submit it first")
        return stored

    def prove_bill(self, period: str) -> Bill:
        """Compute the period's bill from the openings and prove it against the ledger's
        commitments under the published tariff (stored locally before it is returned)."""
        stored_bill = self.store.bill(period)
        if stored_bill is not None:
            return Bill.decode(stored_bill.bill)
        stored = self._accepted_batch(period)
        tariff, _ = self.tariff(period)
        bill = prove_bill_from_openings(stored, tariff, self.meter_id)
        self.store.put_bill(period, bill.encode(), bill.total, None)
        return bill

    def local_bill_total(self, period: str, tariff: Tariff) -> int:
        """The plaintext bill from the local openings (never sent anywhere)."""
        stored = self._accepted_batch(period)
        return tariff.bill_total(stored.imports, stored.exports)

    def submit_bill(self, bill: Bill) -> VerifiedReceipt:
        """Submit a proven bill (idempotent) and verify and store its receipt."""
        if bill.meter_id != self.meter_id:
            raise InvalidArgumentError("the bill belongs to another meter")
        stub = _stub(bills_pb2_grpc.BillServiceStub, self.channel)
        response = self.rpc(
            stub.SubmitBill,
            bills_pb2.SubmitBillRequest(bill=convert.bill_to_proto(bill)),
            bills_pb2.SubmitBillResponse,
            "SubmitBill",
        )
        receipt = _appended_receipt(
            response.receipt, EntryKind.BILL, bill.encode(), self.log_key, "bill", "meter bill"
        )
        self.store.put_bill(bill.period, bill.encode(), bill.total, receipt.raw)
        return receipt

    def settle(self, period: str) -> tuple[Bill, VerifiedReceipt]:
        """:meth:`prove_bill` then :meth:`submit_bill`."""
        bill = self.prove_bill(period)
        return bill, self.submit_bill(bill)

    def statement(self, period: str | None = None) -> Statement:
        """The meter's bills as the ledger holds them (a day's bills and cycle bills), every
        receipt verified."""
        stub = _stub(bills_pb2_grpc.BillServiceStub, self.channel)
        response = self.rpc(
            stub.GetStatement,
            bills_pb2.GetStatementRequest(meter_id=self.meter_id, period=period or ""),
            bills_pb2.GetStatementResponse,
            "GetStatement",
        )
        lines = []
        cycle_lines = []
        for line in response.lines:
            if line.cycle_bill:
                cycle_bill = CycleBill.decode(bytes(line.cycle_bill))  # RecordFormatError
                if cycle_bill.meter_id != self.meter_id:
                    raise ReceiptError("the statement holds another meter's bill")
                receipt = verify_receipt(
                    line.receipt, EntryKind.BILL, cycle_bill.encode(), self.log_key
                )
                cycle_lines.append(CycleStatementLine(cycle_bill, receipt, line.currency))
                continue
            bill = convert.bill_from_proto(line.bill)
            if bill.meter_id != self.meter_id:
                raise ReceiptError("the statement holds another meter's bill")
            receipt = verify_receipt(line.receipt, EntryKind.BILL, bill.encode(), self.log_key)
            lines.append(StatementLine(bill, receipt))
        total = sum(line.bill.total for line in lines) + sum(c.bill.total for c in cycle_lines)
        if total != response.total:
            raise ReceiptError("the statement total is not the sum of its bills")
        return Statement(response.meter_id, tuple(lines), total, tuple(cycle_lines))

    # --- billing cycles (records version 2) ----------------------------------------------

    def cycle_tariff(self, period: str) -> tuple[CycleTariff, VerifiedReceipt]:
        """The cycle tariff (plan) that applies to this meter on ``period``, checked: its
        cycle contains the period, it applies to this meter, its hash is the record's and its
        receipt proves it is the ledger's TARIFF entry."""
        stub = _stub(tariffs_pb2_grpc.TariffServiceStub, self.channel)
        response = self.rpc(
            stub.GetCycleTariff,
            tariffs_pb2.GetCycleTariffRequest(meter_id=self.meter_id, period=period),
            tariffs_pb2.GetCycleTariffResponse,
            "GetCycleTariff",
        )
        return checked_cycle_tariff(response, self.meter_id, period, self.log_key)

    def cycle_bill_tariff(self, first_period: str, last_period: str) -> CycleTariff:
        """The plan that bills this meter over ``first_period..last_period``:
        :class:`CycleMismatchError` when the utility's plan has another cycle (named)."""
        tariff, _ = self.cycle_tariff(first_period)
        if (tariff.first_period, tariff.last_period) != (first_period, last_period):
            raise CycleMismatchError(
                f"the utility's plan {tariff.plan!r} for {self.meter_id} bills the cycle"
                f" {tariff.first_period}..{tariff.last_period}, not {first_period}..{last_period}:"
                f" bill that cycle (--from {tariff.first_period} --to {tariff.last_period})"
            )
        return tariff

    def cycle_openings(self, tariff: CycleTariff) -> tuple[list[ReadingBatch], list[StoredBatch]]:
        """The accepted batch of every period of ``tariff``'s cycle and its openings, from the
        local opening store: :class:`CycleIncompleteError` names the first period without
        one and what to do."""
        batches: list[ReadingBatch] = []
        stored_batches: list[StoredBatch] = []
        cycle = f"{tariff.first_period}..{tariff.last_period}"
        for period in tariff.periods:
            stored = self.store.batch(period)
            if stored is None:
                raise CycleIncompleteError(
                    f"the cycle {cycle} needs the readings of every day; the local opening store"
                    f" of {self.meter_id} has none for {period}: submit that day first"
                    f" ('zkgrid meter submit --id {self.meter_id} --csv FILE' with the"
                    f" readings of {period}), then bill the cycle"
                )
            if stored.status != "accepted":
                raise CycleIncompleteError(
                    f"the batch for {period} (cycle {cycle}) is not accepted yet: submit it"
                    " first ('zkgrid meter submit' sends it again), then bill the cycle"
                )
            batch = ReadingBatch.decode(stored.batch)
            if batch.interval_minutes != tariff.interval_minutes:
                raise InvalidArgumentError(
                    f"the plan {tariff.plan!r} uses {tariff.interval_minutes}-minute intervals,"
                    f" the batch of {period} {batch.interval_minutes}"
                )
            batches.append(batch)
            stored_batches.append(stored)
        return batches, stored_batches

    def prove_cycle_bill(
        self, first_period: str, last_period: str, *, tariff: CycleTariff | None = None
    ) -> CycleBill:
        """Prove this meter's bill of the cycle ``first_period..last_period`` under the
        utility's plan for it, from the local openings of every period, over the ledger's
        commitments (a circuit proof: about 25 s for 31 days of 15-minute intervals with a
        demand charge). Stored locally before it is returned; a cycle already proven here
        returns the stored bill. ``tariff``: the plan, when the caller fetched it
        (:meth:`cycle_bill_tariff`)."""
        stored_bill = self.store.cycle_bill(first_period, last_period)
        if stored_bill is not None:
            return CycleBill.decode(stored_bill.bill)
        if tariff is None:
            tariff = self.cycle_bill_tariff(first_period, last_period)
        elif (tariff.first_period, tariff.last_period) != (first_period, last_period):
            raise InvalidArgumentError("the tariff given is of another cycle")
        batches, stored = self.cycle_openings(tariff)
        openings = [(s.values, s.blindings) for s in stored]
        bill = cycle_bills.prove_cycle_bill(self.meter_id, tariff, batches, openings)
        self.store.put_cycle_bill(first_period, last_period, bill.encode(), bill.total, None)
        log.info("proved the cycle bill %s/%s..%s", self.meter_id, first_period, last_period)
        return bill

    def submit_cycle_bill(self, bill: CycleBill) -> VerifiedReceipt:
        """Submit a proven cycle bill (idempotent) and verify and store its receipt."""
        if bill.meter_id != self.meter_id:
            raise InvalidArgumentError("the bill belongs to another meter")
        stub = _stub(bills_pb2_grpc.BillServiceStub, self.channel)
        payload = bill.encode()
        response = self.rpc(
            stub.SubmitCycleBill,
            bills_pb2.SubmitCycleBillRequest(cycle_bill=payload),
            bills_pb2.SubmitBillResponse,
            "SubmitCycleBill",
        )
        receipt = _appended_receipt(
            response.receipt, EntryKind.BILL, payload, self.log_key, "cycle bill", "meter bill"
        )
        self.store.put_cycle_bill(
            bill.first_period, bill.last_period, payload, bill.total, receipt.raw
        )
        return receipt

    def settle_cycle(
        self, first_period: str, last_period: str
    ) -> tuple[CycleBill, VerifiedReceipt]:
        """:meth:`prove_cycle_bill` then :meth:`submit_cycle_bill`."""
        bill = self.prove_cycle_bill(first_period, last_period)
        return bill, self.submit_cycle_bill(bill)


def checked_cycle_tariff(
    response: tariffs_pb2.GetCycleTariffResponse,
    meter_id: str | None,
    period: str,
    log_key: str | CheckpointVerifier | None,
) -> tuple[CycleTariff, VerifiedReceipt]:
    """A GetCycleTariff answer, checked: the record decodes (:class:`RecordFormatError`
    otherwise), its cycle contains ``period``, it
    applies to ``meter_id`` (when given), ``tariff_hash`` is its hash and the receipt proves
    it is the ledger's TARIFF entry (:class:`ReceiptError` otherwise)."""
    tariff = CycleTariff.decode(bytes(response.cycle_tariff))  # RecordFormatError
    if period not in tariff.periods:
        raise ReceiptError(
            f"the service returned the plan of the cycle {tariff.first_period}.."
            f"{tariff.last_period}, which does not contain {period}"
        )
    if meter_id is not None and not tariff.applies_to(meter_id):
        raise ReceiptError(f"the service returned a plan that does not apply to {meter_id}")
    if bytes(response.tariff_hash) != tariff.tariff_hash():
        raise ReceiptError("the tariff hash does not match the cycle tariff record")
    receipt = verify_receipt(response.receipt, EntryKind.TARIFF, tariff.encode(), log_key)
    return tariff, receipt


def prove_bill_from_openings(stored: StoredBatch, tariff: Tariff, meter_id: str) -> Bill:
    """The bill of a stored batch under ``tariff``: ``B`` from the openings and its proof
    over the batch's commitments (the ones on the ledger), bound to both hashes."""
    batch = ReadingBatch.decode(stored.batch)
    if batch.meter_id != meter_id or batch.period != tariff.period:
        raise InvalidArgumentError("the tariff or batch belongs to another meter or period")
    if tariff.interval_minutes != batch.interval_minutes:
        raise InvalidArgumentError(
            f"the tariff for {tariff.period} uses {tariff.interval_minutes}-minute intervals,"
            f" the batch {batch.interval_minutes}"
        )
    tariff_hash = tariff.tariff_hash()
    commitments = [Commitment.from_bytes(c) for c in batch.commitments]
    proof, total = LinearCombinationProof.prove(
        bill_coefficients(tariff),
        commitments,
        list(stored.values),
        list(stored.blindings),
        constant=tariff.fixed_charge,
        context=bill_proof_context(stored.batch_hash, tariff_hash),
    )
    if total != tariff.bill_total(stored.imports, stored.exports):  # pragma: no cover
        raise VerificationError("bill total differs from the plaintext formula")
    return Bill(
        meter_id=meter_id,
        period=tariff.period,
        batch_hash=stored.batch_hash,
        tariff_hash=tariff_hash,
        total=total,
        proof=proof.to_bytes(),
    )


def build_batch_in_home(home: str | Path, readings: DayReadings) -> bytes:
    """Build a batch offline in ``home`` and return its encoding (for process pools)."""
    client = MeterClient(home)
    try:
        return client.build_batch(readings).encode()
    finally:
        client.close()


def prove_cycle_bill_in_home(home: str | Path, cycle_tariff: bytes) -> bytes:
    """Prove a cycle bill offline in ``home`` under the encoded ``cycle_tariff`` (fetched and
    checked by the caller) and return its encoding (for process pools)."""
    tariff = CycleTariff.decode(cycle_tariff)
    client = MeterClient(home)
    try:
        return client.prove_cycle_bill(
            tariff.first_period, tariff.last_period, tariff=tariff
        ).encode()
    finally:
        client.close()
