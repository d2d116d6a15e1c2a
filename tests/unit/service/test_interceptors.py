"""The interceptor's reason -> status table and its behaviour around a servicer."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]

from ledger.errors import InclusionProofError, LedgerFormatError
from service.auth import AuthenticationError, Authorizer, PermissionDeniedError
from service.interceptors import (
    ERROR_DOMAIN,
    STATUS_FOR_REASON,
    ZkgridInterceptor,
    rpc_status_for,
    status_for_reason,
)
from service.storage.errors import (
    AppendOnlyViolation,
    EntryNotFound,
    StoreIntegrityError,
    StoreUnavailable,
)
from settlement.records import RecordFormatError, SignatureError
from zkgrid.errors import (
    InvalidArgumentError,
    ProofFormatError,
    Reason,
    VerificationError,
    ZkgridError,
)

C = grpc.StatusCode

TABLE = [
    ("UNAUTHENTICATED", C.UNAUTHENTICATED),
    ("PERMISSION_DENIED", C.PERMISSION_DENIED),
    ("NOT_FOUND", C.NOT_FOUND),
    ("UNKNOWN_METER", C.NOT_FOUND),
    ("UNKNOWN_TARIFF", C.NOT_FOUND),
    ("UNKNOWN_BATCH", C.NOT_FOUND),
    ("METER_EXISTS", C.ALREADY_EXISTS),
    ("TARIFF_EXISTS", C.ALREADY_EXISTS),
    ("BILL_EXISTS", C.ALREADY_EXISTS),
    ("DUPLICATE_PERIOD", C.ALREADY_EXISTS),
    ("CHAIN_BROKEN", C.FAILED_PRECONDITION),
    ("METER_REVOKED", C.FAILED_PRECONDITION),
    ("INVALID_ARGUMENT", C.INVALID_ARGUMENT),
    ("VALUE_OUT_OF_RANGE", C.INVALID_ARGUMENT),
    ("INTERVALS_MISMATCH", C.INVALID_ARGUMENT),
    ("PROOF_MALFORMED", C.INVALID_ARGUMENT),
    ("RECORD_MALFORMED", C.INVALID_ARGUMENT),
    ("LEDGER_MALFORMED", C.INVALID_ARGUMENT),
    ("PROOF_INVALID", C.INVALID_ARGUMENT),
    ("SIGNATURE_INVALID", C.INVALID_ARGUMENT),
    ("STORE_UNAVAILABLE", C.UNAVAILABLE),
    ("UNAVAILABLE", C.UNAVAILABLE),
    ("STORE_INTEGRITY", C.INTERNAL),
    ("APPEND_ONLY_VIOLATION", C.INTERNAL),
    ("LEDGER_NODE_MISSING", C.INTERNAL),
    ("INTERNAL", C.INTERNAL),
    ("UNKNOWN_WITNESS", C.NOT_FOUND),
    ("UNKNOWN_CHECKPOINT", C.NOT_FOUND),
    ("WITNESS_EXISTS", C.ALREADY_EXISTS),
    ("DUPLICATE_COSIGNATURE", C.ALREADY_EXISTS),
    ("COSIGNATURE_INVALID", C.INVALID_ARGUMENT),
    ("WITNESS_MALFORMED", C.INVALID_ARGUMENT),
    ("POP_INVALID", C.INVALID_ARGUMENT),
]


@pytest.mark.parametrize(("reason", "code"), TABLE)
def test_reason_table(reason: str, code: grpc.StatusCode) -> None:
    """The codes the service sent before the table became explicit (wire compatibility)."""
    assert status_for_reason(Reason(reason)) is code


def test_every_reason_has_exactly_one_row() -> None:
    assert set(STATUS_FOR_REASON) == set(Reason)
    with pytest.raises(KeyError):
        status_for_reason("SOMETHING_NEW")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (AuthenticationError("no certificate"), C.UNAUTHENTICATED),
        (PermissionDeniedError("nope"), C.PERMISSION_DENIED),
        (EntryNotFound("index 9 is outside a tree of size 3"), C.NOT_FOUND),
        (RecordFormatError("bad"), C.INVALID_ARGUMENT),
        (SignatureError("bad"), C.INVALID_ARGUMENT),
        (LedgerFormatError("bad"), C.INVALID_ARGUMENT),
        (InclusionProofError("bad"), C.INVALID_ARGUMENT),
        (StoreUnavailable("db down at host secret-host"), C.UNAVAILABLE),
        (StoreIntegrityError("root mismatch"), C.INTERNAL),
        (AppendOnlyViolation("trigger"), C.INTERNAL),
    ],
)
def test_library_errors_map_by_reason(error: ZkgridError, code: grpc.StatusCode) -> None:
    status = rpc_status_for(error, "/zkgrid.settlement.v1.LedgerService/GetCheckpoint")
    assert status.code is code
    info = _error_info(status)
    assert info.reason == error.reason
    assert info.domain == ERROR_DOMAIN
    assert dict(info.metadata) == {"method": "GetCheckpoint"}


@pytest.mark.parametrize("base", [InvalidArgumentError, ProofFormatError, VerificationError])
def test_an_error_class_outside_the_reason_set_cannot_be_defined(base: type) -> None:
    with pytest.raises(TypeError, match="Reason member"):
        type("Custom", (base,), {"reason": "CUSTOM_PROBLEM"})
    with pytest.raises(TypeError, match="Reason member"):
        type("Custom", (base,), {"reason": "PROOF_INVALID"})  # a string, not the member
    subclass = type("Custom", (base,), {})  # inherits its parent's reason
    assert rpc_status_for(subclass("x"), "/a/B").code is C.INVALID_ARGUMENT


def test_server_faults_get_a_generic_message() -> None:
    secret = "postgresql://user:hunter2@db"
    for error in (StoreIntegrityError(secret), StoreUnavailable(secret), RuntimeError(secret)):
        status = rpc_status_for(error, "/a/B")
        assert secret not in status.details
        assert all(secret.encode() not in v for _, v in status.trailing_metadata)
    assert _error_info(rpc_status_for(RuntimeError("x"), "/a/B")).reason == "INTERNAL"


def test_client_errors_keep_their_public_message() -> None:
    status = rpc_status_for(EntryNotFound("index 9 is outside a tree of size 3"), "/a/B")
    assert status.details == "index 9 is outside a tree of size 3"


def _error_info(status: grpc.Status) -> error_details_pb2.ErrorInfo:
    [(key, value)] = status.trailing_metadata
    assert key == "grpc-status-details-bin"
    proto = status_pb2.Status.FromString(value)
    assert proto.code == status.code.value[0]
    [detail] = proto.details
    info = error_details_pb2.ErrorInfo()
    assert detail.Unpack(info)
    return info


# ----------------------------------------------------------------------------- around a servicer


class _Aborted(Exception):
    pass


class FakeContext:
    """Just enough of grpc.ServicerContext for the interceptor."""

    def __init__(self, metadata: dict[str, str], remaining: float | None = None) -> None:
        self._metadata = metadata
        self._remaining = remaining
        self.status: Any = None
        self._code: Any = None

    def invocation_metadata(self) -> list[tuple[str, str]]:
        return list(self._metadata.items())

    def auth_context(self) -> dict[str, list[bytes]]:
        return {}

    def time_remaining(self) -> float | None:
        return self._remaining

    def code(self) -> Any:
        return self._code

    def abort_with_status(self, status: grpc.Status) -> None:
        self.status = status
        self._code = status.code
        raise _Aborted

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        self._code = code
        self.status = (code, details)
        raise _Aborted


def _handler(method: str, behavior: Any, *, stream: bool = False) -> Any:
    interceptor = ZkgridInterceptor(Authorizer(insecure=True))
    inner = (
        grpc.unary_stream_rpc_method_handler(behavior)
        if stream
        else grpc.unary_unary_rpc_method_handler(behavior)
    )

    class Details:
        pass

    details: Any = Details()
    details.method = method
    details.invocation_metadata = ()
    return interceptor.intercept_service(lambda _d: inner, details)


GET_METER = "/zkgrid.settlement.v1.MeterService/GetMeter"
STREAM = "/zkgrid.settlement.v1.LedgerService/StreamEntries"
UTILITY = {"x-zkgrid-role": "utility", "x-zkgrid-identity": "grid-co"}


def test_unexpected_exception_is_internal_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    def boom(request: Any, context: Any) -> Any:
        raise KeyError("secret-value-123")

    handler = _handler(GET_METER, boom)
    context = FakeContext(UTILITY)
    with pytest.raises(_Aborted):
        handler.unary_unary(object(), context)
    assert context.status.code is C.INTERNAL
    assert context.status.details == "internal error"
    assert "secret-value-123" in caplog.text  # the traceback stays server-side


def test_streaming_errors_raised_mid_stream_are_mapped() -> None:
    def entries(request: Any, context: Any) -> Any:
        yield 1
        raise EntryNotFound("range [0, 9) is outside a ledger of size 1")

    handler = _handler(STREAM, entries, stream=True)
    context = FakeContext(UTILITY)
    stream = handler.unary_stream(object(), context)
    assert next(stream) == 1
    with pytest.raises(_Aborted):
        next(stream)
    assert context.status.code is C.NOT_FOUND


def test_authorization_runs_before_the_servicer() -> None:
    called = []

    def servicer(request: Any, context: Any) -> Any:
        called.append(request)

    handler = _handler(STREAM, servicer, stream=True)
    context = FakeContext({"x-zkgrid-role": "meter", "x-zkgrid-identity": "m1"})
    with pytest.raises(_Aborted):
        list(handler.unary_stream(object(), context))
    assert context.status.code is C.PERMISSION_DENIED
    assert _error_info(context.status).reason == "PERMISSION_DENIED"
    assert called == []


def test_expired_deadline_is_refused_before_the_servicer() -> None:
    def servicer(request: Any, context: Any) -> Any:
        raise AssertionError("must not run")

    context = FakeContext(UTILITY, remaining=-0.1)
    with pytest.raises(_Aborted):
        _handler(GET_METER, servicer).unary_unary(object(), context)
    assert context.status[0] is C.DEADLINE_EXCEEDED


def test_unknown_method_handler_passes_through() -> None:
    interceptor = ZkgridInterceptor(Authorizer(insecure=True))

    class Details:
        method = "/x.Y/Z"
        invocation_metadata = ()

    assert interceptor.intercept_service(lambda _d: None, Details()) is None  # type: ignore[arg-type]


def _decoding_handler(method: str, behavior: Any) -> tuple[ZkgridInterceptor, Any]:
    """A unary handler whose requests are GetMeterRequest bytes, decoded by the interceptor."""
    from zkgrid.settlement.v1 import meters_pb2

    interceptor = ZkgridInterceptor(Authorizer(insecure=True))
    inner = grpc.unary_unary_rpc_method_handler(
        behavior, request_deserializer=meters_pb2.GetMeterRequest.FromString
    )

    class Details:
        pass

    details: Any = Details()
    details.method = method
    details.invocation_metadata = ()
    return interceptor, interceptor.intercept_service(lambda _d: inner, details)


def test_undecodable_request_is_request_malformed_and_counted() -> None:
    called = []
    interceptor, handler = _decoding_handler(GET_METER, lambda r, c: called.append(r))
    junk = b"\x0a\x05\xff\xfe\xfd\xfc\xfb"  # field 1 (meter_id): 5 bytes of invalid UTF-8
    request = handler.request_deserializer(junk)  # never raises: grpc would answer INTERNAL
    context = FakeContext({"x-zkgrid-role": "meter", "x-zkgrid-identity": "m1"})
    with pytest.raises(_Aborted):
        handler.unary_unary(request, context)
    assert context.status.code is C.INVALID_ARGUMENT
    assert _error_info(context.status).reason == "REQUEST_MALFORMED"
    assert interceptor.malformed_requests == 1
    assert called == []
    good = handler.request_deserializer(b"\x0a\x02m1")
    handler.unary_unary(good, FakeContext({"x-zkgrid-role": "meter", "x-zkgrid-identity": "m1"}))
    assert [r.meter_id for r in called] == ["m1"]
    assert interceptor.malformed_requests == 1


def test_undecodable_request_from_a_role_without_access_is_permission_denied() -> None:
    """The role is checked first: junk tells a caller nothing about a method it may not call."""
    interceptor, handler = _decoding_handler(
        "/zkgrid.settlement.v1.MeterService/RegisterMeter", lambda r, c: None
    )
    context = FakeContext({"x-zkgrid-role": "meter", "x-zkgrid-identity": "m1"})
    with pytest.raises(_Aborted):
        handler.unary_unary(handler.request_deserializer(b"\xff\xff"), context)
    assert context.status.code is C.PERMISSION_DENIED
    assert interceptor.malformed_requests == 0
