"""zkgrid._internal.rpc: a failed call (status code + ErrorInfo reason) as a typed error.

The failures come from a real gRPC server in this process that aborts with a rich
status built by ``grpc_status`` (as service.interceptors does), read by a real client.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2  # type: ignore[import-untyped]
from grpc_status import rpc_status

from meter.client import ServiceError
from zkgrid._internal.rpc import ERROR_DOMAIN, MAX_DETAILS, RemoteError, remote_error
from zkgrid.errors import ZkgridError

METHOD = "/zkgrid.test.Echo/Fail"


def _abort_with(
    code: grpc.StatusCode, message: str, *details: Any
) -> Callable[[bytes, grpc.ServicerContext], bytes]:
    def handler(_request: bytes, context: grpc.ServicerContext) -> bytes:
        packed = []
        for detail in details:
            wrapped = any_pb2.Any()
            wrapped.Pack(detail)
            packed.append(wrapped)
        status = status_pb2.Status(
            code=getattr(code_pb2, code.name), message=message, details=packed
        )
        context.abort_with_status(rpc_status.to_status(status))
        raise AssertionError("unreachable")

    return handler


class _Handler(grpc.GenericRpcHandler):  # type: ignore[type-arg]
    def __init__(self) -> None:
        self.behaviour: Callable[[bytes, grpc.ServicerContext], bytes] | None = None

    def service(self, details: grpc.HandlerCallDetails) -> Any:
        if details.method != METHOD or self.behaviour is None:
            return None
        return grpc.unary_unary_rpc_method_handler(self.behaviour)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[_Handler, grpc.Channel]]:
    handler = _Handler()
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=2), handlers=[handler])
    port = srv.add_insecure_port("127.0.0.1:0")
    srv.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield handler, channel
    finally:
        channel.close()
        srv.stop(None)


def _fail(server: tuple[_Handler, grpc.Channel], behaviour: Any) -> grpc.RpcError:
    handler, channel = server
    handler.behaviour = behaviour
    call = channel.unary_unary(METHOD, None, None)
    with pytest.raises(grpc.RpcError) as info:
        call(b"", timeout=10)
    return info.value


def _info(reason: str, domain: str = ERROR_DOMAIN) -> error_details_pb2.ErrorInfo:
    return error_details_pb2.ErrorInfo(reason=reason, domain=domain, metadata={"method": "Fail"})


def test_error_info_reason_and_code(server: tuple[_Handler, grpc.Channel]) -> None:
    exc = _fail(
        server,
        _abort_with(grpc.StatusCode.NOT_FOUND, "no tariff for 2026-11-21", _info("UNKNOWN_TARIFF")),
    )
    error = remote_error(exc, "GetTariff")
    assert isinstance(error, RemoteError)
    assert isinstance(error, ZkgridError)
    assert error.reason == "UNKNOWN_TARIFF"
    assert error.code == grpc.StatusCode.NOT_FOUND
    assert error.details == "no tariff for 2026-11-21"
    assert str(error) == "GetTariff failed: UNKNOWN_TARIFF: no tariff for 2026-11-21"
    assert not error.transient
    assert ServiceError is RemoteError  # the meter client raises this very type


def test_error_info_after_other_details(server: tuple[_Handler, grpc.Channel]) -> None:
    other = error_details_pb2.RetryInfo()
    exc = _fail(
        server,
        _abort_with(grpc.StatusCode.INVALID_ARGUMENT, "bad", other, _info("PROOF_INVALID")),
    )
    assert remote_error(exc).reason == "PROOF_INVALID"


def test_without_error_info_the_code_is_the_reason(server: tuple[_Handler, grpc.Channel]) -> None:
    exc = _fail(server, _abort_with(grpc.StatusCode.PERMISSION_DENIED, "no"))
    error = remote_error(exc)
    assert error.reason == "PERMISSION_DENIED"
    assert error.code == grpc.StatusCode.PERMISSION_DENIED
    assert str(error) == "PERMISSION_DENIED: no"


def test_foreign_domain_or_malformed_reason_is_not_trusted(
    server: tuple[_Handler, grpc.Channel],
) -> None:
    foreign = _fail(
        server,
        _abort_with(grpc.StatusCode.ABORTED, "x", _info("PROOF_INVALID", domain="example.com")),
    )
    # Not our domain: the status code's name, outside the closed set: SERVICE_ERROR.
    error = remote_error(foreign)
    assert error.reason == "SERVICE_ERROR"
    assert str(error).startswith("ABORTED")
    for bad in ("proof invalid", "X" * 65, "", "PROOF\nINVALID", "NOT_A_REASON"):
        exc = _fail(server, _abort_with(grpc.StatusCode.UNAVAILABLE, "x", _info(bad)))
        assert remote_error(exc).reason == "UNAVAILABLE", bad


def test_details_are_bounded_and_printable(server: tuple[_Handler, grpc.Channel]) -> None:
    exc = _fail(server, _abort_with(grpc.StatusCode.INTERNAL, "a\x1b[31mb" + "z" * 2000))
    error = remote_error(exc)
    assert "\x1b" not in error.details
    assert len(error.details) == MAX_DETAILS


def test_unreachable_service_is_transient() -> None:
    channel = grpc.insecure_channel("127.0.0.1:1")
    try:
        with pytest.raises(grpc.RpcError) as info:
            channel.unary_unary(METHOD, None, None)(b"", timeout=5)
    finally:
        channel.close()
    error = remote_error(info.value, "Fail")
    assert error.reason in ("UNAVAILABLE", "DEADLINE_EXCEEDED")
    assert error.transient
    assert str(error).startswith("Fail failed: ")
