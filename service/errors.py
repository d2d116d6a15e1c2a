"""Errors of the settlement service (settlement-v1.md, "Service rules").

Every error is a :class:`zkgrid.errors.ZkgridError` bound to one
:class:`zkgrid.errors.Reason` member, which the gRPC error interceptor maps to a
status code (``service.interceptors.STATUS_FOR_REASON``) and puts into
``google.rpc.ErrorInfo``. Messages carry public facts only (ids, periods,
sequence numbers, indices), never readings, blindings or keys.

The rule refusals are defined once in :mod:`settlement.errors` (the meter client
raises the same classes) and re-exported here. Reasons raised by the service and
defined elsewhere:

* ``SIGNATURE_INVALID``: :class:`settlement.records.SignatureError`;
* ``RECORD_MALFORMED``: :class:`settlement.records.RecordFormatError`;
* ``STORE_UNAVAILABLE`` and the other storage reasons: :mod:`service.storage.errors`.
"""

from __future__ import annotations

from settlement.errors import (
    BillExists,
    ChainBroken,
    CycleIncomplete,
    DuplicatePeriod,
    IntervalsMismatch,
    MeterExists,
    MeterRevoked,
    ProofInvalid,
    ProofMalformed,
    SettlementError,
    TariffExists,
    UnknownBatch,
    UnknownMeter,
    UnknownTariff,
)
from zkgrid.errors import InvalidArgumentError, Reason, ZkgridError

__all__ = [
    "BillExists",
    "ChainBroken",
    "CycleIncomplete",
    "DeadlineExceeded",
    "DuplicatePeriod",
    "IntervalsMismatch",
    "InvalidRequest",
    "MeterExists",
    "MeterRevoked",
    "Overloaded",
    "PermissionDenied",
    "ProofInvalid",
    "ProofMalformed",
    "ServiceClosing",
    "ServiceUnavailable",
    "SettlementError",
    "TariffExists",
    "UnknownBatch",
    "UnknownMeter",
    "UnknownTariff",
    "VerifierClosed",
    "VerifierFailed",
]


class InvalidRequest(SettlementError, InvalidArgumentError):
    """A request argument outside the documented domain (wrong type, bad id or period)."""

    reason = Reason.INVALID_ARGUMENT


class PermissionDenied(ZkgridError):
    """The caller's role or identity may not do this: call the method, or act for this meter
    (a meter submitting for another meter id). ``service.auth.PermissionDeniedError`` is
    this class."""

    reason = Reason.PERMISSION_DENIED


class ServiceUnavailable(SettlementError):
    """The service cannot serve the request now; the client may retry (``UNAVAILABLE``)."""

    reason = Reason.UNAVAILABLE


class VerifierClosed(ServiceUnavailable):
    """The proof verifier was shut down before it verified the request."""


class VerifierFailed(ServiceUnavailable):
    """The proof verifier itself failed (not the proof): the client may retry."""


class ServiceClosing(ServiceUnavailable):
    """The settlement service is shutting down and takes no more appends (retryable)."""


class Overloaded(SettlementError):
    """Load is shed: the verifier's queue is full, or the wait in it would outlast the
    caller's deadline (``OVERLOADED``, RESOURCE_EXHAUSTED with a retry delay)."""

    reason = Reason.OVERLOADED

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s: float | None = retry_after_s


class DeadlineExceeded(SettlementError):
    """The caller's deadline passed while its request waited for the verifier; the work
    was dropped (``DEADLINE_EXCEEDED``)."""

    reason = Reason.DEADLINE_EXCEEDED
