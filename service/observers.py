"""Observers of finished calls: what the interceptor tells them and how a call ended.

:class:`service.interceptors.ZkgridInterceptor` calls one :class:`CallObserver` at the
end of every call (its ``_call_ended`` hook); :class:`CallObservers` fans that out to
several (the access log of :mod:`service.logs`, the metrics of :mod:`service.metrics`).
:func:`call_outcome` reads how a call ended from its server context: the status code
an abort set (with the ``google.rpc.ErrorInfo`` reason the interceptor put in the
``grpc-status-details-bin`` trailer), ``CANCELLED`` or ``DEADLINE_EXCEEDED`` for a
call the client abandoned, ``OK`` otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Protocol

import grpc
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]

__all__ = ["CallObserver", "CallObservers", "call_outcome"]

logger = logging.getLogger(__name__)

_DETAILS_KEY = "grpc-status-details-bin"


class CallObserver(Protocol):
    """Told of every call's end; must be quick (it runs on the call's thread)."""

    def on_call_end(
        self,
        method: str,
        role: str | None,
        identity: str | None,
        code: grpc.StatusCode,
        reason: str | None,
        latency_s: float,
    ) -> None: ...


class CallObservers:
    """Several observers as one; one that raises is logged and the others still run."""

    def __init__(self, observers: Iterable[CallObserver]) -> None:
        self._observers = tuple(observers)

    def on_call_end(
        self,
        method: str,
        role: str | None,
        identity: str | None,
        code: grpc.StatusCode,
        reason: str | None,
        latency_s: float,
    ) -> None:
        for observer in self._observers:
            try:
                observer.on_call_end(method, role, identity, code, reason, latency_s)
            except Exception:
                logger.exception("call observer %s failed", type(observer).__name__)


def _sent_reason(context: grpc.ServicerContext) -> str | None:
    """The ``ErrorInfo`` reason in the call's ``grpc-status-details-bin`` trailer, if any."""
    trailing = getattr(context, "trailing_metadata", None)
    for key, value in (trailing() if callable(trailing) else None) or ():
        if key == _DETAILS_KEY and isinstance(value, bytes):
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    return str(info.reason)
    return None


def call_outcome(context: grpc.ServicerContext) -> tuple[grpc.StatusCode, str | None]:
    """(status code, ``ErrorInfo`` reason or ``None``) of a call, read when it ends."""
    code = getattr(context, "code", None)
    set_code = code() if callable(code) else None
    if isinstance(set_code, grpc.StatusCode) and set_code is not grpc.StatusCode.OK:
        return set_code, _sent_reason(context)
    if not context.is_active():
        remaining = context.time_remaining()
        if remaining is not None and remaining <= 0:
            return grpc.StatusCode.DEADLINE_EXCEEDED, None
        return grpc.StatusCode.CANCELLED, None
    return grpc.StatusCode.OK, None
