"""The one root of every error zkgrid raises on purpose, and the closed set of reasons.

Parse failures and wrong proofs are different things and stay different types:

* :class:`ProofFormatError`: bytes that cannot be parsed (wrong length, a point
  off the curve, a scalar not below the group order, trailing bytes, ...).
* :class:`VerificationError`: well-formed input whose proof or signature is wrong.

Messages never carry secrets (values, blindings, nonces): they name the check
that failed and, at most, public sizes and indices.

**Reasons are a closed set.** ``google.rpc.ErrorInfo.reason`` is a wire contract,
so every reason zkgrid raises, sends, decodes or reports is a member of
:class:`Reason` (a :class:`~enum.StrEnum`: a member *is* its wire string, so
``Reason.PROOF_INVALID == "PROOF_INVALID"``). Each error class is bound to exactly
one member through its ``reason`` class attribute, checked when the class is
defined (:meth:`ZkgridError.__init_subclass__`); an error never changes its
reason per instance (one class per reason instead). Two classes with the same
reason are related: one is a subclass (or an alias) of the other
(``tests/unit/zkgrid/test_reasons.py``). The auditor's findings
(``verifier.audit.Violation``) use the same members, and the service's
interceptor maps every member to a gRPC status code by an explicit table
(``service.interceptors.STATUS_FOR_REASON``). Adding a reason is one line here
(``NAME = "NAME"``) plus its row in that table; a test fails when either is missing.
"""

from __future__ import annotations

from enum import StrEnum, unique

__all__ = [
    "InvalidArgumentError",
    "ProofFormatError",
    "Reason",
    "UsageError",
    "ValueOutOfRangeError",
    "VerificationError",
    "ZkgridError",
    "error_classes",
]


@unique
class Reason(StrEnum):
    """Every machine-readable reason of zkgrid (the value is the wire string, equal to the name).

    Grouped by where they arise; docs/design/settlement-v1.md ("Status codes") gives the
    gRPC status of the ones the service sends, docs/notes/audit.md the auditor's.
    """

    # -- general
    INTERNAL = "INTERNAL"
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    REQUEST_MALFORMED = "REQUEST_MALFORMED"
    USAGE = "USAGE"
    # -- proofs (zkp)
    VALUE_OUT_OF_RANGE = "VALUE_OUT_OF_RANGE"
    PROOF_MALFORMED = "PROOF_MALFORMED"
    PROOF_INVALID = "PROOF_INVALID"
    # -- the log (ledger)
    LEDGER_ERROR = "LEDGER_ERROR"
    LEDGER_MALFORMED = "LEDGER_MALFORMED"
    LEDGER_NODE_MISSING = "LEDGER_NODE_MISSING"
    INCLUSION_PROOF_INVALID = "INCLUSION_PROOF_INVALID"
    CONSISTENCY_PROOF_INVALID = "CONSISTENCY_PROOF_INVALID"
    CHECKPOINT_MALFORMED = "CHECKPOINT_MALFORMED"
    CHECKPOINT_SIGNATURE_INVALID = "CHECKPOINT_SIGNATURE_INVALID"
    RECEIPT_INVALID = "RECEIPT_INVALID"
    ARCHIVE_MALFORMED = "ARCHIVE_MALFORMED"
    ARCHIVE_TRUNCATED = "ARCHIVE_TRUNCATED"
    ENTRY_MALFORMED = "ENTRY_MALFORMED"
    ENTRY_KIND_UNDEFINED = "ENTRY_KIND_UNDEFINED"
    ENTRY_MISSING = "ENTRY_MISSING"
    ENTRY_NOT_CHECKPOINTED = "ENTRY_NOT_CHECKPOINTED"
    ENTRY_OUT_OF_ORDER = "ENTRY_OUT_OF_ORDER"
    LEAF_HASH_MISMATCH = "LEAF_HASH_MISMATCH"
    ROOT_MISMATCH = "ROOT_MISMATCH"
    ORIGIN_MISMATCH = "ORIGIN_MISMATCH"
    LOG_FORK = "LOG_FORK"
    LOG_ROLLBACK = "LOG_ROLLBACK"
    # -- witnesses and cosignatures
    WITNESS_ERROR = "WITNESS_ERROR"
    WITNESS_MALFORMED = "WITNESS_MALFORMED"
    WITNESS_EXISTS = "WITNESS_EXISTS"
    UNKNOWN_WITNESS = "UNKNOWN_WITNESS"
    UNKNOWN_CHECKPOINT = "UNKNOWN_CHECKPOINT"
    POP_INVALID = "POP_INVALID"
    COSIGNATURE_INVALID = "COSIGNATURE_INVALID"
    DUPLICATE_COSIGNATURE = "DUPLICATE_COSIGNATURE"
    AGGREGATE_INVALID = "AGGREGATE_INVALID"
    NOT_FINAL = "NOT_FINAL"
    QUORUM_NOT_MET = "QUORUM_NOT_MET"
    CHECKPOINT_INCONSISTENT = "CHECKPOINT_INCONSISTENT"
    COSIGN_INPUT = "COSIGN_INPUT"
    # -- settlement records and rules
    SETTLEMENT_ERROR = "SETTLEMENT_ERROR"
    RECORD_MALFORMED = "RECORD_MALFORMED"
    SIGNATURE_INVALID = "SIGNATURE_INVALID"
    METER_EXISTS = "METER_EXISTS"
    UNKNOWN_METER = "UNKNOWN_METER"
    METER_REVOKED = "METER_REVOKED"
    INTERVALS_MISMATCH = "INTERVALS_MISMATCH"
    CHAIN_BROKEN = "CHAIN_BROKEN"
    DUPLICATE_PERIOD = "DUPLICATE_PERIOD"
    PERIOD_NOT_ENDED = "PERIOD_NOT_ENDED"
    PERIOD_CLOSED = "PERIOD_CLOSED"
    DUPLICATE_BATCH = "DUPLICATE_BATCH"
    DUPLICATE_TARIFF = "DUPLICATE_TARIFF"
    DUPLICATE_BILL = "DUPLICATE_BILL"
    TARIFF_EXISTS = "TARIFF_EXISTS"
    UNKNOWN_TARIFF = "UNKNOWN_TARIFF"
    UNKNOWN_BATCH = "UNKNOWN_BATCH"
    BILL_EXISTS = "BILL_EXISTS"
    #: A cycle bill (record v2) whose billing cycle has a period without the meter's batch.
    CYCLE_INCOMPLETE = "CYCLE_INCOMPLETE"
    # -- the neighbourhood market (docs/design/market-v1.md; settlement-v1.md, M1..M13)
    #: An order of a meter that has no market enrolment (M1).
    NOT_ENROLLED = "NOT_ENROLLED"
    #: A different enrolment for a meter that is enrolled (M6).
    ENROLMENT_EXISTS = "ENROLMENT_EXISTS"
    #: The identical enrolment again (R5): answered with the original receipt.
    DUPLICATE_ENROLMENT = "DUPLICATE_ENROLMENT"
    #: An order or a clearing for a period without a market day (M1, M8).
    UNKNOWN_MARKET_DAY = "UNKNOWN_MARKET_DAY"
    #: A different market day for a period that has one (M7).
    MARKET_DAY_EXISTS = "MARKET_DAY_EXISTS"
    #: The identical market day again (R5).
    DUPLICATE_MARKET_DAY = "DUPLICATE_MARKET_DAY"
    #: An order or a cancellation at or after its market day's gate closure, or for a
    #: cleared period (M2, M5).
    GATE_CLOSED = "GATE_CLOSED"
    #: A clearing before its market day's gate closure (M8).
    GATE_NOT_CLOSED = "GATE_NOT_CLOSED"
    #: An order priced outside [export credit, import price] of an interval it covers (M3).
    PRICE_OUT_OF_BOUNDS = "PRICE_OUT_OF_BOUNDS"
    #: An order of a meter that has a live order of the other side for a common interval (M4).
    SELF_TRADE = "SELF_TRADE"
    #: The identical order again (R5).
    DUPLICATE_ORDER = "DUPLICATE_ORDER"
    #: A cancellation that names no live order of its meter (M5).
    UNKNOWN_ORDER = "UNKNOWN_ORDER"
    #: The identical cancellation again (R5).
    DUPLICATE_CANCELLATION = "DUPLICATE_CANCELLATION"
    #: A clearing that is not the recomputation from the ledger's live orders (M9).
    CLEARING_MISMATCH = "CLEARING_MISMATCH"
    #: A different clearing for a period that is cleared (M8).
    CLEARING_EXISTS = "CLEARING_EXISTS"
    #: The identical clearing again (R5).
    DUPLICATE_CLEARING = "DUPLICATE_CLEARING"
    #: A delivery step or default that names no trade of the period's clearing, or (a step)
    #: no trade of its meter in that role: another meter's trade is not told apart (M10).
    UNKNOWN_TRADE = "UNKNOWN_TRADE"
    #: A delivery step or default for a step that is made, or a trade that is defaulted (M11).
    DELIVERY_EXISTS = "DELIVERY_EXISTS"
    #: The identical allocation, delivery or default again (R5).
    DUPLICATE_DELIVERY = "DUPLICATE_DELIVERY"
    #: A delivery step at or after its deadline (M12): the step is defaulted instead.
    DEADLINE_PASSED = "DEADLINE_PASSED"
    #: A default before the missed step's deadline (M12).
    DEADLINE_NOT_PASSED = "DEADLINE_NOT_PASSED"
    #: A delivery step before its inputs are on the ledger: the party's batch, the
    #: allocation, the deliveries of the party's earlier trades of the interval (M13).
    DELIVERY_NOT_READY = "DELIVERY_NOT_READY"
    #: A sealed opening that does not decrypt under the recipient's key and the trade's
    #: associated data (docs/notes/market.md (D9)).
    SEALED_BOX_INVALID = "SEALED_BOX_INVALID"
    #: A sealed opening that decrypts but does not open the commitment it came with (D10).
    OPENING_MISMATCH = "OPENING_MISMATCH"
    # -- the service (access, availability, storage, configuration)
    UNAUTHENTICATED = "UNAUTHENTICATED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    NOT_FOUND = "NOT_FOUND"
    UNAVAILABLE = "UNAVAILABLE"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    FAILURE_BUDGET_EXHAUSTED = "FAILURE_BUDGET_EXHAUSTED"
    OVERLOADED = "OVERLOADED"
    SERVICE_ERROR = "SERVICE_ERROR"
    STORAGE_ERROR = "STORAGE_ERROR"
    STORE_UNAVAILABLE = "STORE_UNAVAILABLE"
    STORE_INTEGRITY = "STORE_INTEGRITY"
    STORE_CONFIG = "STORE_CONFIG"
    APPEND_ONLY_VIOLATION = "APPEND_ONLY_VIOLATION"
    CONFIG_INVALID = "CONFIG_INVALID"
    EXPORT_FAILED = "EXPORT_FAILED"
    # -- private files (zkgrid._internal.files): keys, openings, state
    FILE_ACCESS = "FILE_ACCESS"
    FILE_EXISTS = "FILE_EXISTS"
    FILE_UNSAFE = "FILE_UNSAFE"
    FILE_TOO_LARGE = "FILE_TOO_LARGE"
    # -- the meter client
    METER_HOME = "METER_HOME"
    OPENING_STORE = "OPENING_STORE"
    INSECURE_PERMISSIONS = "INSECURE_PERMISSIONS"
    READINGS_INVALID = "READINGS_INVALID"
    # -- the auditor
    AUDIT_INPUT = "AUDIT_INPUT"
    AUDITOR_STATE = "AUDITOR_STATE"

    @classmethod
    def decode(cls, text: str) -> Reason | None:
        """The member whose wire string is ``text``, or ``None`` for a string outside the set."""
        try:
            return cls(text)
        except ValueError:
            return None


#: Every error class defined so far, in definition order (see :func:`error_classes`).
_CLASSES: list[type[ZkgridError]] = []


class ZkgridError(Exception):
    """Root of all zkgrid errors.

    ``reason`` is a class attribute bound to one :class:`Reason` member; a subclass
    either inherits its parent's or declares its own, and a reason that is not a
    member (a plain string included) is refused when the class is defined.
    """

    #: Stable machine-readable reason (the service's ErrorInfo reason). A class attribute;
    #: only a transport wrapper (``meter.client.ServiceError``) sets it per instance, to the
    #: remote error's reason decoded into this set.
    reason: Reason = Reason.INTERNAL
    #: Seconds after which the same call may succeed, when the error knows (a spent failure
    #: budget, shed load); sent as a ``google.rpc.RetryInfo`` and read back by clients.
    retry_after_s: float | None = None

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        reason = cls.__dict__.get("reason", cls.reason)
        if type(reason) is not Reason:
            raise TypeError(
                f"{cls.__module__}.{cls.__qualname__}.reason must be a zkgrid.errors.Reason"
                f" member, not {reason!r}"
            )
        _CLASSES.append(cls)


_CLASSES.append(ZkgridError)


def error_classes() -> tuple[type[ZkgridError], ...]:
    """Every :class:`ZkgridError` class defined in this process (for the reason tests)."""
    return tuple(_CLASSES)


class InvalidArgumentError(ZkgridError, ValueError):
    """A caller passed an argument outside the documented domain."""

    reason = Reason.INVALID_ARGUMENT


class ValueOutOfRangeError(InvalidArgumentError):
    """A prover was asked to prove a value outside [0, 2^n)."""

    reason = Reason.VALUE_OUT_OF_RANGE


class ProofFormatError(ZkgridError):
    """Bytes that cannot be parsed as the expected canonical encoding."""

    reason = Reason.PROOF_MALFORMED


class VerificationError(ZkgridError):
    """Well-formed input that does not verify."""

    reason = Reason.PROOF_INVALID


class UsageError(ZkgridError):
    """A command line that a CLI's argument parser refused (printed on one line, exit 2)."""

    reason = Reason.USAGE
