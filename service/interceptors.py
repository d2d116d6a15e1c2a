"""The settlement API's one server interceptor: deadline, authorization, error mapping.

Every call goes through :class:`ZkgridInterceptor`, which

0. decodes the request itself: bytes that are not a well-formed request message
   (invalid UTF-8 in a string field, a truncated varint, nesting too deep, junk)
   become ``REQUEST_MALFORMED`` (INVALID_ARGUMENT) after the caller's role is
   checked, counted in :attr:`ZkgridInterceptor.malformed_requests` and logged at
   INFO, never gRPC's INTERNAL "Exception deserializing request!";
1. refuses a call whose deadline has already passed (DEADLINE_EXCEEDED);
2. authorizes it with :class:`service.auth.Authorizer` (the one policy table), then
   refuses a caller whose failure budget is spent (:mod:`service.budgets`) on the
   methods that verify something, before any work; a refusal that cost a verification
   spends the caller's budget;
3. runs the servicer and maps any exception to a gRPC status carrying a
   ``google.rpc.ErrorInfo`` (``domain = "zkgrid.settlement.v1"``,
   ``reason`` = the error's ``reason``, ``metadata`` = ``{"method": <name>}``
   and nothing else) in the ``grpc-status-details-bin`` trailer
   (read it with ``grpc_status.rpc_status.from_call``), and a
   ``google.rpc.RetryInfo`` when the error knows when a retry may succeed
   (``ZkgridError.retry_after_s``);
4. tells the optional observer (``ZkgridInterceptor(..., observer=...)``, a
   :class:`service.observers.CallObserver`) of the end of every call: the method, the
   caller's role and identity, the status code, the ``ErrorInfo`` reason and the
   latency. The access log and the metrics observe calls there; the one hook is
   :meth:`ZkgridInterceptor._call_ended`.

Status codes by ``ZkgridError.reason``: one explicit row per
:class:`zkgrid.errors.Reason` member in :data:`STATUS_FOR_REASON` (no name
patterns, no fallback by class: a member without a row fails
``tests/unit/zkgrid/test_reasons.py``). In short:

=====================  ==================================================  =========
gRPC status            reasons                                             message
=====================  ==================================================  =========
UNAUTHENTICATED        ``UNAUTHENTICATED``                                 the error's
PERMISSION_DENIED      ``PERMISSION_DENIED``                               the error's
NOT_FOUND              ``NOT_FOUND``, ``UNKNOWN_METER``, ``_TARIFF``,      the error's
                       ``_BATCH``, ``_WITNESS``, ``_CHECKPOINT``,
                       ``_MARKET_DAY``, ``_ORDER``, ``_TRADE``
ALREADY_EXISTS         ``METER_EXISTS``, ``TARIFF_EXISTS``,                the error's
                       ``BILL_EXISTS``, ``WITNESS_EXISTS``,
                       ``DUPLICATE_PERIOD``, ``_BATCH``, ``_COSIGNATURE``,
                       the market's ``*_EXISTS`` and ``DUPLICATE_*``
FAILED_PRECONDITION    ``CHAIN_BROKEN``, ``METER_REVOKED``,                the error's
                       ``PERIOD_NOT_ENDED``, ``PERIOD_CLOSED``,
                       ``CYCLE_INCOMPLETE``, the market's ``NOT_ENROLLED``,
                       ``GATE_CLOSED``, ``GATE_NOT_CLOSED``, ``SELF_TRADE``,
                       ``DEADLINE_PASSED``, ``DEADLINE_NOT_PASSED``,
                       ``DELIVERY_NOT_READY``
UNAVAILABLE            ``STORE_UNAVAILABLE``, ``UNAVAILABLE``              generic
DEADLINE_EXCEEDED      ``DEADLINE_EXCEEDED``                               generic
RESOURCE_EXHAUSTED     ``FAILURE_BUDGET_EXHAUSTED``, ``OVERLOADED``         the error's
                       (with a RetryInfo)
INVALID_ARGUMENT       ``INVALID_ARGUMENT``, ``VALUE_OUT_OF_RANGE``,       the error's
                       ``INTERVALS_MISMATCH``, every ``*_MALFORMED`` and
                       ``*_INVALID`` (proofs, signatures, records,
                       receipts), the witness refusals, bad configuration
                       or local input
INTERNAL               ``INTERNAL``, the category roots (``LEDGER_ERROR``,  generic
                       ...), ``STORE_INTEGRITY``, ``APPEND_ONLY_VIOLATION``,
                       ``LEDGER_NODE_MISSING``, the auditor's log findings
                       (never sent by the service); non-``ZkgridError``
                       exceptions (reason ``INTERNAL``)
=====================  ==================================================  =========

Why INVALID_ARGUMENT for a wrong proof or signature: the request is wrong
whatever the system's state (unlike FAILED_PRECONDITION, which says "retry
after fixing the state"), and the ErrorInfo reason tells PROOF_INVALID,
SIGNATURE_INVALID and PROOF_MALFORMED apart for clients that care.

"Generic" messages say only what went wrong in general terms; the exception's
text and traceback are logged server-side. Client-facing messages come from
``str(error)``, which by the project's error rules (zkgrid/errors.py) names the
check that failed and at most public sizes and indices, never secrets.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextvars import Token
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NoReturn

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2  # type: ignore[import-untyped]
from grpc_status import rpc_status

from service.auth import Authorizer, Caller, Role, current_caller
from service.budgets import BUDGETED_METHODS, CHARGED_REASONS, FailureBudgets
from service.deadlines import call_deadline
from service.observers import CallObserver, call_outcome
from zkgrid.errors import InvalidArgumentError, Reason, ZkgridError

__all__ = [
    "ERROR_DOMAIN",
    "STATUS_FOR_REASON",
    "ZkgridInterceptor",
    "rpc_status_for",
    "status_for_reason",
]

logger = logging.getLogger(__name__)

ERROR_DOMAIN = "zkgrid.settlement.v1"

#: The one reason -> status table: a row for every Reason member (module docstring).
STATUS_FOR_REASON: Mapping[Reason, grpc.StatusCode] = MappingProxyType(
    {
        Reason.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
        Reason.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
        # NOT_FOUND: the thing named does not exist
        Reason.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
        Reason.UNKNOWN_METER: grpc.StatusCode.NOT_FOUND,
        Reason.UNKNOWN_TARIFF: grpc.StatusCode.NOT_FOUND,
        Reason.UNKNOWN_BATCH: grpc.StatusCode.NOT_FOUND,
        Reason.UNKNOWN_WITNESS: grpc.StatusCode.NOT_FOUND,
        Reason.UNKNOWN_CHECKPOINT: grpc.StatusCode.NOT_FOUND,
        Reason.UNKNOWN_MARKET_DAY: grpc.StatusCode.NOT_FOUND,
        Reason.UNKNOWN_ORDER: grpc.StatusCode.NOT_FOUND,
        Reason.UNKNOWN_TRADE: grpc.StatusCode.NOT_FOUND,
        # ALREADY_EXISTS: a different record holds the slot (the identical one is idempotent)
        Reason.METER_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
        Reason.TARIFF_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
        Reason.BILL_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
        Reason.WITNESS_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
        Reason.DUPLICATE_PERIOD: grpc.StatusCode.ALREADY_EXISTS,
        Reason.DUPLICATE_BATCH: grpc.StatusCode.ALREADY_EXISTS,
        Reason.DUPLICATE_TARIFF: grpc.StatusCode.ALREADY_EXISTS,
        Reason.DUPLICATE_BILL: grpc.StatusCode.ALREADY_EXISTS,
        Reason.DUPLICATE_COSIGNATURE: grpc.StatusCode.ALREADY_EXISTS,
        Reason.ENROLMENT_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
        Reason.MARKET_DAY_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
        Reason.CLEARING_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
        Reason.DELIVERY_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
        Reason.DUPLICATE_ENROLMENT: grpc.StatusCode.ALREADY_EXISTS,
        Reason.DUPLICATE_MARKET_DAY: grpc.StatusCode.ALREADY_EXISTS,
        Reason.DUPLICATE_ORDER: grpc.StatusCode.ALREADY_EXISTS,
        Reason.DUPLICATE_CANCELLATION: grpc.StatusCode.ALREADY_EXISTS,
        Reason.DUPLICATE_CLEARING: grpc.StatusCode.ALREADY_EXISTS,
        Reason.DUPLICATE_DELIVERY: grpc.StatusCode.ALREADY_EXISTS,
        # FAILED_PRECONDITION: the meter's state forbids it
        Reason.CHAIN_BROKEN: grpc.StatusCode.FAILED_PRECONDITION,
        Reason.METER_REVOKED: grpc.StatusCode.FAILED_PRECONDITION,
        Reason.PERIOD_NOT_ENDED: grpc.StatusCode.FAILED_PRECONDITION,
        Reason.PERIOD_CLOSED: grpc.StatusCode.FAILED_PRECONDITION,
        Reason.CYCLE_INCOMPLETE: grpc.StatusCode.FAILED_PRECONDITION,
        Reason.NOT_ENROLLED: grpc.StatusCode.FAILED_PRECONDITION,
        Reason.GATE_CLOSED: grpc.StatusCode.FAILED_PRECONDITION,
        Reason.GATE_NOT_CLOSED: grpc.StatusCode.FAILED_PRECONDITION,
        Reason.SELF_TRADE: grpc.StatusCode.FAILED_PRECONDITION,
        Reason.DEADLINE_PASSED: grpc.StatusCode.FAILED_PRECONDITION,
        Reason.DEADLINE_NOT_PASSED: grpc.StatusCode.FAILED_PRECONDITION,
        Reason.DELIVERY_NOT_READY: grpc.StatusCode.FAILED_PRECONDITION,
        # UNAVAILABLE: retry later (generic message)
        Reason.STORE_UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
        Reason.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
        Reason.DEADLINE_EXCEEDED: grpc.StatusCode.DEADLINE_EXCEEDED,
        # RESOURCE_EXHAUSTED: this caller's failure budget is spent, or load is shed; the
        # status carries a google.rpc.RetryInfo with the delay
        Reason.FAILURE_BUDGET_EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
        Reason.OVERLOADED: grpc.StatusCode.RESOURCE_EXHAUSTED,
        # INVALID_ARGUMENT: the request is wrong whatever the state; the reason tells which
        Reason.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
        Reason.SEALED_BOX_INVALID: grpc.StatusCode.INVALID_ARGUMENT,
        Reason.OPENING_MISMATCH: grpc.StatusCode.INVALID_ARGUMENT,
        Reason.USAGE: grpc.StatusCode.INVALID_ARGUMENT,
        Reason.VALUE_OUT_OF_RANGE: grpc.StatusCode.INVALID_ARGUMENT,
        Reason.INTERVALS_MISMATCH: grpc.StatusCode.INVALID_ARGUMENT,
        Reason.PRICE_OUT_OF_BOUNDS: grpc.StatusCode.INVALID_ARGUMENT,
        Reason.CLEARING_MISMATCH: grpc.StatusCode.INVALID_ARGUMENT,
        Reason.PROOF_MALFORMED: grpc.StatusCode.INVALID_ARGUMENT,
        Reason.PROOF_INVALID: grpc.StatusCode.INVALID_ARGUMENT,
        Reason.RECORD_MALFORMED: grpc.StatusCode.INVALID_ARGUMENT,
        Reason.SIGNATURE_INVALID: grpc.StatusCode.INVALID_ARGUMENT,
        Reason.RECEIPT_INVALID: grpc.StatusCode.INVALID_ARGUMENT,
        Reason.LEDGER_MALFORMED: grpc.StatusCode.INVALID_ARGUMENT,
        Reason.INCLUSION_PROOF_INVALID: grpc.StatusCode.INVALID_ARGUMENT,
        Reason.CONSISTENCY_PROOF_INVALID: grpc.StatusCode.INVALID_ARGUMENT,
        Reason.CHECKPOINT_MALFORMED: grpc.StatusCode.INVALID_ARGUMENT,
        Reason.CHECKPOINT_SIGNATURE_INVALID: grpc.StatusCode.INVALID_ARGUMENT,
        Reason.ARCHIVE_MALFORMED: grpc.StatusCode.INVALID_ARGUMENT,
        Reason.ARCHIVE_TRUNCATED: grpc.StatusCode.INVALID_ARGUMENT,
        Reason.ENTRY_MALFORMED: grpc.StatusCode.INVALID_ARGUMENT,
        Reason.ENTRY_KIND_UNDEFINED: grpc.StatusCode.INVALID_ARGUMENT,
        Reason.WITNESS_MALFORMED: grpc.StatusCode.INVALID_ARGUMENT,
        Reason.POP_INVALID: grpc.StatusCode.INVALID_ARGUMENT,
        Reason.COSIGNATURE_INVALID: grpc.StatusCode.INVALID_ARGUMENT,
        Reason.AGGREGATE_INVALID: grpc.StatusCode.INVALID_ARGUMENT,
        Reason.NOT_FINAL: grpc.StatusCode.INVALID_ARGUMENT,
        Reason.QUORUM_NOT_MET: grpc.StatusCode.INVALID_ARGUMENT,
        Reason.CHECKPOINT_INCONSISTENT: grpc.StatusCode.INVALID_ARGUMENT,
        Reason.ORIGIN_MISMATCH: grpc.StatusCode.INVALID_ARGUMENT,
        Reason.STORE_CONFIG: grpc.StatusCode.INVALID_ARGUMENT,
        Reason.CONFIG_INVALID: grpc.StatusCode.INVALID_ARGUMENT,
        Reason.METER_HOME: grpc.StatusCode.INVALID_ARGUMENT,
        Reason.INSECURE_PERMISSIONS: grpc.StatusCode.INVALID_ARGUMENT,
        Reason.READINGS_INVALID: grpc.StatusCode.INVALID_ARGUMENT,
        Reason.REQUEST_MALFORMED: grpc.StatusCode.INVALID_ARGUMENT,
        # INTERNAL (generic message): server-side faults, category roots, local-only and
        # auditor-only reasons the service never sends
        Reason.INTERNAL: grpc.StatusCode.INTERNAL,
        Reason.LEDGER_ERROR: grpc.StatusCode.INTERNAL,
        Reason.WITNESS_ERROR: grpc.StatusCode.INTERNAL,
        Reason.SETTLEMENT_ERROR: grpc.StatusCode.INTERNAL,
        Reason.STORAGE_ERROR: grpc.StatusCode.INTERNAL,
        Reason.SERVICE_ERROR: grpc.StatusCode.INTERNAL,
        Reason.LEDGER_NODE_MISSING: grpc.StatusCode.INTERNAL,
        Reason.STORE_INTEGRITY: grpc.StatusCode.INTERNAL,
        Reason.APPEND_ONLY_VIOLATION: grpc.StatusCode.INTERNAL,
        Reason.EXPORT_FAILED: grpc.StatusCode.INTERNAL,
        Reason.OPENING_STORE: grpc.StatusCode.INTERNAL,
        Reason.FILE_ACCESS: grpc.StatusCode.INTERNAL,
        Reason.FILE_EXISTS: grpc.StatusCode.INTERNAL,
        Reason.FILE_UNSAFE: grpc.StatusCode.INTERNAL,
        Reason.FILE_TOO_LARGE: grpc.StatusCode.INTERNAL,
        Reason.COSIGN_INPUT: grpc.StatusCode.INTERNAL,
        Reason.AUDIT_INPUT: grpc.StatusCode.INTERNAL,
        Reason.AUDITOR_STATE: grpc.StatusCode.INTERNAL,
        Reason.ENTRY_MISSING: grpc.StatusCode.INTERNAL,
        Reason.ENTRY_NOT_CHECKPOINTED: grpc.StatusCode.INTERNAL,
        Reason.ENTRY_OUT_OF_ORDER: grpc.StatusCode.INTERNAL,
        Reason.LEAF_HASH_MISMATCH: grpc.StatusCode.INTERNAL,
        Reason.ROOT_MISMATCH: grpc.StatusCode.INTERNAL,
        Reason.LOG_FORK: grpc.StatusCode.INTERNAL,
        Reason.LOG_ROLLBACK: grpc.StatusCode.INTERNAL,
    }
)
#: Status codes whose message is replaced by a generic one (server-side faults).
_GENERIC_MESSAGE: dict[grpc.StatusCode, str] = {
    grpc.StatusCode.INTERNAL: "internal error",
    grpc.StatusCode.UNAVAILABLE: "the service is temporarily unavailable; retry later",
    grpc.StatusCode.DEADLINE_EXCEEDED: "the deadline passed",
}


def status_for_reason(reason: Reason) -> grpc.StatusCode:
    """The gRPC status code of a reason (its row in :data:`STATUS_FOR_REASON`)."""
    return STATUS_FOR_REASON[reason]


def rpc_status_for(error: BaseException, method: str) -> grpc.Status:
    """The status (code, message, ErrorInfo detail) sent for ``error`` raised by ``method``."""
    short = method.rsplit("/", 1)[-1] or method
    if isinstance(error, ZkgridError):
        reason = error.reason
        code = status_for_reason(reason)
        message = _GENERIC_MESSAGE.get(code) or str(error) or reason.lower().replace("_", " ")
    else:
        reason = Reason.INTERNAL
        code = grpc.StatusCode.INTERNAL
        message = _GENERIC_MESSAGE[code]
    info = error_details_pb2.ErrorInfo(
        reason=reason.value, domain=ERROR_DOMAIN, metadata={"method": short}
    )
    detail = any_pb2.Any()
    detail.Pack(info)
    details = [detail]
    delay = error.retry_after_s if isinstance(error, ZkgridError) else None
    if delay is not None:
        retry = error_details_pb2.RetryInfo()
        retry.retry_delay.FromNanoseconds(max(0, int(delay * 1e9)))
        extra = any_pb2.Any()
        extra.Pack(retry)
        details.append(extra)
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=message, details=details)
    return rpc_status.to_status(status)


class RequestMalformed(InvalidArgumentError):
    """The request's bytes are not a well-formed message of the method's request type."""

    reason = Reason.REQUEST_MALFORMED


@dataclass(frozen=True, slots=True)
class _Undecodable:
    """Stands for a request whose bytes did not parse, so the failure reaches the
    interceptor as a typed error instead of gRPC's INTERNAL."""

    size: int


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """``deserializer``, returning :class:`_Undecodable` for bytes it cannot parse."""
    if deserializer is None:
        return None

    def decode(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception:  # DecodeError, UnicodeDecodeError, RecursionError, ...: the bytes
            return _Undecodable(len(data))

    return decode


def _budget_key(caller: Caller) -> str:
    return f"{caller.role.value}/{caller.identity}"


def _already_aborted(context: grpc.ServicerContext) -> bool:
    code = getattr(context, "code", None)
    return callable(code) and code() is not None


class ZkgridInterceptor(grpc.ServerInterceptor):  # type: ignore[type-arg]
    """Deadline check, authorization and error mapping for every method (see the module doc)."""

    def __init__(
        self,
        authorizer: Authorizer,
        budgets: FailureBudgets | None = None,
        observer: CallObserver | None = None,
    ) -> None:
        self._authorizer = authorizer
        #: Failure budgets per caller (service.budgets); ``None``: no budgets.
        self.budgets = budgets
        self._malformed_lock = threading.Lock()
        self._malformed_seen = 0
        self._observer = observer

    def _call_ended(self, method: str, context: grpc.ServicerContext, started: float) -> None:
        """The observer hook: runs in each call's ``finally``, before the caller is reset."""
        if self._observer is None:
            return
        try:
            caller = current_caller.get()
            code, reason = call_outcome(context)
            self._observer.on_call_end(
                method,
                None if caller is None else caller.role.value,
                None if caller is None else caller.identity,
                code,
                reason,
                time.monotonic() - started,
            )
        except Exception:  # an observer's bug never fails a call
            logger.exception("the call observer failed")

    @property
    def malformed_requests(self) -> int:
        """Requests refused as ``REQUEST_MALFORMED`` since the server started."""
        return self._malformed_seen

    def _fail(self, error: BaseException, method: str, context: grpc.ServicerContext) -> NoReturn:
        status = rpc_status_for(error, method)
        if status.code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE):
            logger.error("%s failed (%s)", method, type(error).__name__, exc_info=error)
        else:  # the access log has a line for it (service/logs.py)
            reason = getattr(error, "reason", "?")
            logger.debug("%s refused: %s %s", method, status.code.name, reason)
        context.abort_with_status(status)

    def _guard(self, method: str, request: Any, context: grpc.ServicerContext) -> Token[Any]:
        remaining = context.time_remaining()
        if remaining is not None and remaining <= 0:
            context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "the deadline passed before the call")
        # Set at the start of every call on this thread, before anything reads it.
        call_deadline.set(None if remaining is None else time.monotonic() + remaining)
        if isinstance(request, _Undecodable):
            # The role first (an anonymous caller learns nothing), then the typed refusal.
            self._authorizer.authorize(method, None, context, role_only=True)
            with self._malformed_lock:
                self._malformed_seen += 1
            raise RequestMalformed(f"the request ({request.size} bytes) is not a valid message")
        caller = self._authorizer.authorize(method, request, context)
        budget = self._budget_of(caller)
        if budget is not None and method in BUDGETED_METHODS:
            budget[0].check(budget[1])  # FAILURE_BUDGET_EXHAUSTED, before any work
        return current_caller.set(caller)

    def _budget_of(self, caller: Caller | None) -> tuple[FailureBudgets, str] | None:
        """The budgets and the key of ``caller``'s bucket; ``None`` for no budget: no
        budgets configured, or the utility, which runs the service (its certificate can
        register meters and publish tariffs already; its bulk jobs may carry several bad
        bills and must not be cut off by them)."""
        if self.budgets is None or caller is None or caller.role is Role.UTILITY:
            return None
        return self.budgets, _budget_key(caller)

    def _charge(self, error: BaseException) -> None:
        """A refusal that cost a verification spends the caller's failure budget."""
        budget = self._budget_of(current_caller.get())
        charged = isinstance(error, ZkgridError) and error.reason in CHARGED_REASONS
        if budget is not None and charged:
            budget[0].charge(budget[1])

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(method, handler.unary_unary),
                request_deserializer=_tolerant(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._streaming(method, handler.unary_stream, request_is_stream=False),
                request_deserializer=_tolerant(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                self._unary(method, handler.stream_unary, request_is_stream=True),
                request_deserializer=_tolerant(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(
                self._streaming(method, handler.stream_stream, request_is_stream=True),
                request_deserializer=_tolerant(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        return handler

    def _unary(
        self,
        method: str,
        behavior: Callable[[Any, grpc.ServicerContext], Any],
        *,
        request_is_stream: bool = False,
    ) -> Callable[[Any, grpc.ServicerContext], Any]:
        def call(request: Any, context: grpc.ServicerContext) -> Any:
            token: Token[Any] | None = None
            started = time.monotonic()
            try:
                token = self._guard(method, None if request_is_stream else request, context)
                return behavior(request, context)
            except Exception as error:
                if _already_aborted(context):
                    raise
                self._charge(error)
                self._fail(error, method, context)
            finally:
                self._call_ended(method, context, started)
                if token is not None:
                    with contextlib.suppress(ValueError):  # a stream closed from another context
                        current_caller.reset(token)

        return call

    def _streaming(
        self,
        method: str,
        behavior: Callable[[Any, grpc.ServicerContext], Iterator[Any]],
        *,
        request_is_stream: bool,
    ) -> Callable[[Any, grpc.ServicerContext], Iterator[Any]]:
        def call(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            token: Token[Any] | None = None
            started = time.monotonic()
            try:
                token = self._guard(method, None if request_is_stream else request, context)
                yield from behavior(request, context)
            except Exception as error:
                if _already_aborted(context):
                    raise
                self._charge(error)
                self._fail(error, method, context)
            finally:
                self._call_ended(method, context, started)
                if token is not None:
                    with contextlib.suppress(ValueError):  # a stream closed from another context
                        current_caller.reset(token)

        return call
