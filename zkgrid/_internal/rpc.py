"""A failed gRPC call as a typed error, translated once for every client.

The service sends every refusal with a status code and a ``google.rpc.ErrorInfo``
detail (domain ``zkgrid.settlement.v1``) whose ``reason`` is the machine-readable
reason of the error it raised (:mod:`service.interceptors`). :func:`remote_error`
reads both back into a :class:`RemoteError`: ``reason`` is that ErrorInfo reason
when the service sent one, else the status code's name (``UNAVAILABLE`` when the
service cannot be reached, ``DEADLINE_EXCEEDED``, ...).

What comes off the wire is bounded before it is kept: a reason that is not 1..64
of ``[A-Z0-9_]`` is replaced by the status code's name, and the details are cut
to :data:`MAX_DETAILS` printable characters.

``grpc`` and ``grpc_status`` are imported inside :func:`remote_error` only: a
command line can name :class:`RemoteError` in its ``except`` clauses without
paying for them.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from zkgrid.errors import Reason, ZkgridError

if TYPE_CHECKING:  # pragma: no cover
    import grpc

__all__ = [
    "ERROR_DOMAIN",
    "MAX_DETAILS",
    "TRANSIENT_CODES",
    "RemoteError",
    "connection_hint",
    "remote_error",
]

#: The ``ErrorInfo.domain`` of the settlement API's errors.
ERROR_DOMAIN = "zkgrid.settlement.v1"
#: Status codes after which a retry may succeed.
TRANSIENT_CODES = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED"})
#: Longest details text kept from a status.
MAX_DETAILS = 500

_REASON = re.compile(r"[A-Z0-9_]{1,64}", re.ASCII)


class RemoteError(ZkgridError):
    """A call to the service failed: it refused (``reason`` is its ErrorInfo reason) or it
    could not be reached (``reason`` is the status code's name), decoded into
    :class:`~zkgrid.errors.Reason` (``SERVICE_ERROR`` for a reason outside the set).

    ``code`` is the :class:`grpc.StatusCode`; ``details`` the status message; ``what`` the
    call that failed.
    """

    reason = Reason.SERVICE_ERROR

    def __init__(
        self,
        code: grpc.StatusCode,
        reason: str,
        details: str = "",
        what: str = "",
        retry_after_s: float | None = None,
    ) -> None:
        prefix = f"{what} failed: " if what else ""
        super().__init__(f"{prefix}{reason}: {details}" if details else f"{prefix}{reason}")
        self.code = code
        # Decoded into the closed set: the service's reason, else the status code's name
        # when that is a member (UNAVAILABLE, DEADLINE_EXCEEDED, ...), else SERVICE_ERROR
        # (a reason this client does not know; the raw text stays in the message).
        self.reason = Reason.decode(reason) or Reason.decode(code.name) or Reason.SERVICE_ERROR
        self.details = details
        self.what = what
        #: The service's ``google.rpc.RetryInfo`` delay, when it sent one.
        self.retry_after_s = retry_after_s

    @property
    def transient(self) -> bool:
        """True for failures after which the same call may succeed (retry with backoff, and
        no sooner than :attr:`retry_after_s`): an unreachable or late service, and shed load
        (``OVERLOADED``). A spent failure budget is not: the calls that spent it failed
        verification, and the same call would again."""
        code = str(getattr(self.code, "name", ""))
        return code in TRANSIENT_CODES or (
            code == "RESOURCE_EXHAUSTED" and self.reason is Reason.OVERLOADED
        )


def _printable(text: str) -> str:
    cleaned = "".join(c if c.isprintable() else " " for c in text)
    return cleaned if len(cleaned) <= MAX_DETAILS else cleaned[: MAX_DETAILS - 3] + "..."


#: Longest retry delay believed (a day): a larger one is clamped to it.
MAX_RETRY_AFTER_S = 86_400.0


def _status_details(exc: Any) -> tuple[str | None, float | None]:
    """The reason of the status's ErrorInfo detail of our domain and its RetryInfo delay
    (``None`` for what it does not carry)."""
    from google.protobuf.message import DecodeError
    from google.rpc import error_details_pb2  # type: ignore[import-untyped]
    from grpc_status import rpc_status

    reason: str | None = None
    delay: float | None = None
    try:
        status = rpc_status.from_call(exc)
        if status is None:
            return None, None
        for detail in status.details:
            info = error_details_pb2.ErrorInfo()
            retry = error_details_pb2.RetryInfo()
            if detail.Is(info.DESCRIPTOR) and detail.Unpack(info) and info.domain == ERROR_DOMAIN:
                reason = str(info.reason)
            elif detail.Is(retry.DESCRIPTOR) and detail.Unpack(retry):
                seconds = retry.retry_delay.ToNanoseconds() / 1e9
                delay = min(max(0.0, seconds), MAX_RETRY_AFTER_S)
    except (ValueError, DecodeError, OverflowError):
        # A rich status that does not match the call's code and message, or a detail that
        # does not parse: the status code is all that is known.
        return None, None
    return reason, delay


#: What a failed connection's details mean, and what to do (the first match wins).
_CONNECTION_HINTS: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("Connection refused",),
        "nothing answers at that address: check --target and that `zkgrid serve` is running",
    ),
    (
        ("CERTIFICATE_VERIFY_FAILED", "unable to get local issuer"),
        "the service's certificate is not signed by the CA in --ca: pass the CA that signed"
        " the service's certificate",
    ),
    (
        ("Peer name", "not in peer certificate", "hostname mismatch"),
        "the service's certificate does not name the host in --target: use a name it was"
        " issued for (`zkgrid certs init --host NAME`)",
    ),
    (
        ("Socket closed", "Handshake", "handshake"),
        "the service closed the connection while it was being set up: a service with"
        " mutual TLS needs --ca, --cert and --key (a certificate its client CA signed); a"
        " development service started with --insecure needs --insecure",
    ),
    (
        ("DNS resolution failed", "Name or service not known"),
        "the host name in --target does not resolve",
    ),
)


def connection_hint(details: str) -> str | None:
    """What to do about a connection that failed with ``details`` (gRPC's text), or None."""
    for needles, hint in _CONNECTION_HINTS:
        if any(needle in details for needle in needles):
            return hint
    return None


def remote_error(exc: grpc.RpcError, what: str = "") -> RemoteError:
    """The :class:`RemoteError` of a failed call (``what`` names the call in the message)."""
    import grpc

    code = grpc.StatusCode.UNKNOWN
    details = ""
    reason: str | None = None
    delay: float | None = None
    if isinstance(exc, grpc.Call):
        code = exc.code() or grpc.StatusCode.UNKNOWN
        details = _printable(exc.details() or "")
        reason, delay = _status_details(exc)
    if reason is None or not _REASON.fullmatch(reason):
        reason = code.name
    if code == grpc.StatusCode.UNAVAILABLE and reason == "UNAVAILABLE":
        hint = connection_hint(details)  # a connection that failed, not a service's answer
        if hint is not None:
            details = f"{hint} ({details})"
    return RemoteError(code, reason, details, what, delay)
