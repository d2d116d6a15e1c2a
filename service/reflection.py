"""gRPC server reflection, ``grpc.reflection.v1`` as well as ``grpc.reflection.v1alpha``.

``grpcio-reflection`` serves only ``v1alpha`` (grpc/grpc#38576), while current tools
(grpcurl, Postman, grpc-java's and grpc-go's clients) ask for ``v1`` first. The two
protocols are the same messages with the same field numbers under another package
name, so ``v1`` is served by the same servicer: its descriptor file (the ``v1alpha``
one renamed) is added to the default descriptor pool once, so that reflection can
describe ``v1`` itself, and its one method is registered as a generic handler that
decodes and encodes with the ``v1alpha`` classes (identical bytes on the wire).
:func:`v1_message_classes` gives the ``v1`` request and response classes (tests,
tools). Both are open to every caller the transport admits (:mod:`service.auth`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_reflection.v1alpha import reflection
from grpc_reflection.v1alpha import reflection_pb2 as v1alpha_pb2

__all__ = [
    "V1ALPHA_SERVICE_NAME",
    "V1_FILE_NAME",
    "V1_SERVICE_NAME",
    "enable_reflection",
    "v1_message_classes",
]

V1ALPHA_SERVICE_NAME: str = reflection.SERVICE_NAME
V1_SERVICE_NAME = "grpc.reflection.v1.ServerReflection"
V1_FILE_NAME = "grpc/reflection/v1/reflection.proto"
_V1ALPHA_PACKAGE = ".grpc.reflection.v1alpha."
_V1_PACKAGE = ".grpc.reflection.v1."
_lock = threading.Lock()


def _rename(holder: Any, attribute: str) -> None:
    """``.grpc.reflection.v1alpha.X`` -> ``.grpc.reflection.v1.X`` in ``holder.attribute``
    (left unset when unset: an empty type name would be a set, invalid one)."""
    name = getattr(holder, attribute)
    if name.startswith(_V1ALPHA_PACKAGE):
        setattr(holder, attribute, _V1_PACKAGE + name[len(_V1ALPHA_PACKAGE) :])


def _ensure_v1_descriptor() -> None:
    """Add ``grpc/reflection/v1/reflection.proto`` to the default pool (once)."""
    pool = descriptor_pool.Default()
    with _lock:
        try:
            pool.FindFileByName(V1_FILE_NAME)
            return
        except KeyError:
            pass
        proto = descriptor_pb2.FileDescriptorProto()
        v1alpha_pb2.DESCRIPTOR.CopyToProto(proto)
        proto.name = V1_FILE_NAME
        proto.package = "grpc.reflection.v1"
        proto.ClearField("options")
        for message in proto.message_type:
            for field in message.field:
                _rename(field, "type_name")
        for service in proto.service:
            for method in service.method:
                _rename(method, "input_type")
                _rename(method, "output_type")
        pool.AddSerializedFile(proto.SerializeToString())


def v1_message_classes() -> tuple[type[Any], type[Any]]:
    """The ``grpc.reflection.v1`` ``ServerReflectionRequest`` and ``...Response`` classes."""
    _ensure_v1_descriptor()
    pool = descriptor_pool.Default()
    return (
        message_factory.GetMessageClass(
            pool.FindMessageTypeByName("grpc.reflection.v1.ServerReflectionRequest")
        ),
        message_factory.GetMessageClass(
            pool.FindMessageTypeByName("grpc.reflection.v1.ServerReflectionResponse")
        ),
    )


def enable_reflection(service_names: Iterable[str], server: grpc.Server) -> tuple[str, ...]:
    """Serve reflection ``v1alpha`` and ``v1`` for ``service_names`` (and themselves) on
    ``server``; return every name listed."""
    _ensure_v1_descriptor()
    names = (*service_names, V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME)
    reflection.enable_server_reflection(names, server)
    servicer = reflection.ReflectionServicer(names)
    handler = grpc.method_handlers_generic_handler(
        V1_SERVICE_NAME,
        {
            "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
                servicer.ServerReflectionInfo,
                request_deserializer=v1alpha_pb2.ServerReflectionRequest.FromString,
                response_serializer=v1alpha_pb2.ServerReflectionResponse.SerializeToString,
            )
        },
    )
    server.add_generic_rpc_handlers((handler,))
    return names
