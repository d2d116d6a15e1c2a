"""Domain errors of the settlement service (settlement-v1.md, "Service rules").

Every error is a :class:`zkgrid.errors.ZkgridError` whose ``reason`` is the
stable string the gRPC error interceptor maps to a status code and puts into
``google.rpc.ErrorInfo``. Messages carry public facts only (ids, periods,
sequence numbers, indices), never readings, blindings or keys.

Reasons raised by the domain and defined elsewhere:

* ``SIGNATURE_INVALID``: :class:`settlement.records.SignatureError`;
* ``RECORD_MALFORMED``: :class:`settlement.records.RecordFormatError`;
* ``STORE_UNAVAILABLE`` and the other storage reasons: :mod:`service.storage.errors`.
"""

from __future__ import annotations

from zkgrid.errors import InvalidArgumentError, ProofFormatError, VerificationError, ZkgridError

__all__ = [
    "BillExists",
    "ChainBroken",
    "DuplicatePeriod",
    "IntervalsMismatch",
    "InvalidRequest",
    "MeterExists",
    "MeterRevoked",
    "PermissionDenied",
    "ProofInvalid",
    "ProofMalformed",
    "ReceiptInvalid",
    "ServiceClosing",
    "SettlementError",
    "TariffExists",
    "UnknownBatch",
    "UnknownMeter",
    "UnknownTariff",
    "VerifierClosed",
]


class SettlementError(ZkgridError):
    """Root of the settlement domain's errors."""

    reason = "SETTLEMENT_ERROR"


class InvalidRequest(SettlementError, InvalidArgumentError):
    """A request argument outside the documented domain (wrong type, bad id or period)."""

    reason = "INVALID_ARGUMENT"


class PermissionDenied(SettlementError):
    """The caller may not act for this meter (a meter submitting for another meter id)."""

    reason = "PERMISSION_DENIED"


class MeterExists(SettlementError):
    """A registration for a meter id that is already registered (ids are never reused)."""

    reason = "METER_EXISTS"


class UnknownMeter(SettlementError):
    """No registration for this meter id."""

    reason = "UNKNOWN_METER"


class MeterRevoked(SettlementError):
    """The meter is revoked: it can submit nothing more (and cannot be revoked twice)."""

    reason = "METER_REVOKED"


class IntervalsMismatch(SettlementError):
    """The batch (or the tariff a bill uses) has another interval length than the meter."""

    reason = "INTERVALS_MISMATCH"


class ChainBroken(SettlementError):
    """The batch's sequence is not the meter's next one, or prev_hash is not its last batch."""

    reason = "CHAIN_BROKEN"


class DuplicatePeriod(SettlementError):
    """A different batch for a period this meter already submitted."""

    reason = "DUPLICATE_PERIOD"


class ProofMalformed(SettlementError, ProofFormatError):
    """A range proof, bill proof or commitment that cannot be parsed."""

    reason = "PROOF_MALFORMED"


class ProofInvalid(SettlementError, VerificationError):
    """A well-formed range proof or bill proof that does not verify."""

    reason = "PROOF_INVALID"


class ReceiptInvalid(SettlementError, VerificationError):
    """A receipt that does not match its entry or checkpoint."""

    reason = "RECEIPT_INVALID"


class TariffExists(SettlementError):
    """A different tariff for a period that already has one."""

    reason = "TARIFF_EXISTS"


class UnknownTariff(SettlementError):
    """No tariff for the period, or the bill names another tariff than the period's."""

    reason = "UNKNOWN_TARIFF"


class UnknownBatch(SettlementError):
    """No batch of this meter for the period, or the bill names another batch."""

    reason = "UNKNOWN_BATCH"


class BillExists(SettlementError):
    """A different bill for a (meter, period) that already has one."""

    reason = "BILL_EXISTS"


class VerifierClosed(SettlementError):
    """The proof verifier was shut down before it verified the request."""

    reason = "UNAVAILABLE"


class VerifierFailed(SettlementError):
    """The proof verifier itself failed (not the proof): the client may retry."""

    reason = "UNAVAILABLE"


class ServiceClosing(SettlementError):
    """The settlement service is shutting down and takes no more appends (retryable)."""

    reason = "UNAVAILABLE"
