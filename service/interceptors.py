"""The settlement API's one server interceptor: deadline, authorization, error mapping.

Every call goes through :class:`ZkgridInterceptor`, which

1. refuses a call whose deadline has already passed (DEADLINE_EXCEEDED);
2. authorizes it with :class:`service.auth.Authorizer` (the one policy table);
3. runs the servicer and maps any exception to a gRPC status carrying a
   ``google.rpc.ErrorInfo`` (``domain = "zkgrid.settlement.v1"``,
   ``reason`` = the error's ``reason``, ``metadata`` = ``{"method": <name>}``
   and nothing else) in the ``grpc-status-details-bin`` trailer
   (read it with ``grpc_status.rpc_status.from_call``).

Status codes by ``ZkgridError.reason`` (first matching row wins):

=====================================================  =====================  =============
reason                                                  gRPC status            message
=====================================================  =====================  =============
``UNAUTHENTICATED``                                     UNAUTHENTICATED        the error's
``PERMISSION_DENIED``                                   PERMISSION_DENIED      the error's
``NOT_FOUND``, ``UNKNOWN_*`` (UNKNOWN_METER, _TARIFF,   NOT_FOUND              the error's
``_BATCH``)
``METER_EXISTS``, ``TARIFF_EXISTS``, ``BILL_EXISTS``,   ALREADY_EXISTS         the error's
``DUPLICATE_*`` (DUPLICATE_PERIOD), ``*_EXISTS``
``CHAIN_BROKEN``, ``METER_REVOKED``                     FAILED_PRECONDITION    the error's
``STORE_UNAVAILABLE``, ``UNAVAILABLE`` (verifier shut    UNAVAILABLE            generic
down)
``INVALID_ARGUMENT``, ``VALUE_OUT_OF_RANGE``,           INVALID_ARGUMENT       the error's
``INTERVALS_MISMATCH``, ``*_MALFORMED``
(PROOF_MALFORMED, RECORD_MALFORMED, LEDGER_MALFORMED)
``PROOF_INVALID``, ``SIGNATURE_INVALID``,               INVALID_ARGUMENT       the error's
``*_INVALID``
any other reason of an ``InvalidArgumentError``,        INVALID_ARGUMENT       the error's
``ProofFormatError`` or ``VerificationError``
anything else (``STORE_INTEGRITY``,                     INTERNAL               generic
``APPEND_ONLY_VIOLATION``, ``INTERNAL``, ...)
non-``ZkgridError`` exceptions                          INTERNAL (reason       generic
                                                        ``INTERNAL``)
=====================================================  =====================  =============

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
from collections.abc import Callable, Iterator
from contextvars import Token
from typing import Any, NoReturn

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2  # type: ignore[import-untyped]
from grpc_status import rpc_status

from service.auth import Authorizer, current_caller
from zkgrid.errors import InvalidArgumentError, ProofFormatError, VerificationError, ZkgridError

__all__ = [
    "ERROR_DOMAIN",
    "ZkgridInterceptor",
    "rpc_status_for",
    "status_for_reason",
]

logger = logging.getLogger(__name__)

ERROR_DOMAIN = "zkgrid.settlement.v1"

_EXACT: dict[str, grpc.StatusCode] = {
    "UNAUTHENTICATED": grpc.StatusCode.UNAUTHENTICATED,
    "PERMISSION_DENIED": grpc.StatusCode.PERMISSION_DENIED,
    "NOT_FOUND": grpc.StatusCode.NOT_FOUND,
    "CHAIN_BROKEN": grpc.StatusCode.FAILED_PRECONDITION,
    "METER_REVOKED": grpc.StatusCode.FAILED_PRECONDITION,
    "STORE_UNAVAILABLE": grpc.StatusCode.UNAVAILABLE,
    "UNAVAILABLE": grpc.StatusCode.UNAVAILABLE,
    "INVALID_ARGUMENT": grpc.StatusCode.INVALID_ARGUMENT,
    "VALUE_OUT_OF_RANGE": grpc.StatusCode.INVALID_ARGUMENT,
    "INTERVALS_MISMATCH": grpc.StatusCode.INVALID_ARGUMENT,
    "PROOF_INVALID": grpc.StatusCode.INVALID_ARGUMENT,
    "SIGNATURE_INVALID": grpc.StatusCode.INVALID_ARGUMENT,
}
#: Status codes whose message is replaced by a generic one (server-side faults).
_GENERIC_MESSAGE: dict[grpc.StatusCode, str] = {
    grpc.StatusCode.INTERNAL: "internal error",
    grpc.StatusCode.UNAVAILABLE: "the service is temporarily unavailable; retry later",
}


def status_for_reason(reason: str, error: BaseException | None = None) -> grpc.StatusCode:
    """The gRPC status code of a ``ZkgridError.reason`` (the module docstring's table)."""
    code = _EXACT.get(reason)
    if code is not None:
        return code
    if reason.startswith("UNKNOWN_"):
        return grpc.StatusCode.NOT_FOUND
    if reason.startswith("DUPLICATE_") or reason.endswith("_EXISTS"):
        return grpc.StatusCode.ALREADY_EXISTS
    if reason.endswith(("_MALFORMED", "_INVALID")):
        return grpc.StatusCode.INVALID_ARGUMENT
    if isinstance(error, InvalidArgumentError | ProofFormatError | VerificationError):
        return grpc.StatusCode.INVALID_ARGUMENT
    return grpc.StatusCode.INTERNAL


def rpc_status_for(error: BaseException, method: str) -> grpc.Status:
    """The status (code, message, ErrorInfo detail) sent for ``error`` raised by ``method``."""
    short = method.rsplit("/", 1)[-1] or method
    if isinstance(error, ZkgridError):
        reason = str(error.reason)
        code = status_for_reason(reason, error)
        message = _GENERIC_MESSAGE.get(code) or str(error) or reason.lower().replace("_", " ")
    else:
        reason = "INTERNAL"
        code = grpc.StatusCode.INTERNAL
        message = _GENERIC_MESSAGE[code]
    info = error_details_pb2.ErrorInfo(
        reason=reason, domain=ERROR_DOMAIN, metadata={"method": short}
    )
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=message, details=[detail])
    return rpc_status.to_status(status)


def _already_aborted(context: grpc.ServicerContext) -> bool:
    code = getattr(context, "code", None)
    return callable(code) and code() is not None


class ZkgridInterceptor(grpc.ServerInterceptor):  # type: ignore[type-arg]
    """Deadline check, authorization and error mapping for every method (see the module doc)."""

    def __init__(self, authorizer: Authorizer) -> None:
        self._authorizer = authorizer

    def _fail(self, error: BaseException, method: str, context: grpc.ServicerContext) -> NoReturn:
        status = rpc_status_for(error, method)
        if status.code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE):
            logger.error("%s failed (%s)", method, type(error).__name__, exc_info=error)
        else:
            reason = getattr(error, "reason", "?")
            logger.info("%s refused: %s %s", method, status.code.name, reason)
        context.abort_with_status(status)

    def _guard(self, method: str, request: Any, context: grpc.ServicerContext) -> Token[Any]:
        remaining = context.time_remaining()
        if remaining is not None and remaining <= 0:
            context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "the deadline passed before the call")
        return current_caller.set(self._authorizer.authorize(method, request, context))

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
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._streaming(method, handler.unary_stream, request_is_stream=False),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                self._unary(method, handler.stream_unary, request_is_stream=True),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(
                self._streaming(method, handler.stream_stream, request_is_stream=True),
                request_deserializer=handler.request_deserializer,
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
            try:
                token = self._guard(method, None if request_is_stream else request, context)
                return behavior(request, context)
            except Exception as error:
                if _already_aborted(context):
                    raise
                self._fail(error, method, context)
            finally:
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
            try:
                token = self._guard(method, None if request_is_stream else request, context)
                yield from behavior(request, context)
            except Exception as error:
                if _already_aborted(context):
                    raise
                self._fail(error, method, context)
            finally:
                if token is not None:
                    with contextlib.suppress(ValueError):  # a stream closed from another context
                        current_caller.reset(token)

        return call
