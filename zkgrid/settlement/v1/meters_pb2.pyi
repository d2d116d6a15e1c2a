from zkgrid.settlement.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MeterStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    METER_STATUS_UNSPECIFIED: _ClassVar[MeterStatus]
    METER_STATUS_ACTIVE: _ClassVar[MeterStatus]
    METER_STATUS_REVOKED: _ClassVar[MeterStatus]
METER_STATUS_UNSPECIFIED: MeterStatus
METER_STATUS_ACTIVE: MeterStatus
METER_STATUS_REVOKED: MeterStatus

class MeterRegistration(_message.Message):
    __slots__ = ("meter_id", "public_key", "interval_minutes", "pop_signature")
    METER_ID_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_MINUTES_FIELD_NUMBER: _ClassVar[int]
    POP_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    meter_id: str
    public_key: bytes
    interval_minutes: int
    pop_signature: bytes
    def __init__(self, meter_id: _Optional[str] = ..., public_key: _Optional[bytes] = ..., interval_minutes: _Optional[int] = ..., pop_signature: _Optional[bytes] = ...) -> None: ...

class RegisterMeterRequest(_message.Message):
    __slots__ = ("registration",)
    REGISTRATION_FIELD_NUMBER: _ClassVar[int]
    registration: MeterRegistration
    def __init__(self, registration: _Optional[_Union[MeterRegistration, _Mapping]] = ...) -> None: ...

class RegisterMeterResponse(_message.Message):
    __slots__ = ("receipt",)
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    receipt: _common_pb2.Receipt
    def __init__(self, receipt: _Optional[_Union[_common_pb2.Receipt, _Mapping]] = ...) -> None: ...

class RevokeMeterRequest(_message.Message):
    __slots__ = ("meter_id", "reason")
    METER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    meter_id: str
    reason: str
    def __init__(self, meter_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RevokeMeterResponse(_message.Message):
    __slots__ = ("receipt",)
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    receipt: _common_pb2.Receipt
    def __init__(self, receipt: _Optional[_Union[_common_pb2.Receipt, _Mapping]] = ...) -> None: ...

class GetMeterRequest(_message.Message):
    __slots__ = ("meter_id",)
    METER_ID_FIELD_NUMBER: _ClassVar[int]
    meter_id: str
    def __init__(self, meter_id: _Optional[str] = ...) -> None: ...

class GetMeterResponse(_message.Message):
    __slots__ = ("registration", "status", "revocation_reason", "receipt", "next_sequence", "last_batch_hash")
    REGISTRATION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REVOCATION_REASON_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    NEXT_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    LAST_BATCH_HASH_FIELD_NUMBER: _ClassVar[int]
    registration: MeterRegistration
    status: MeterStatus
    revocation_reason: str
    receipt: _common_pb2.Receipt
    next_sequence: int
    last_batch_hash: bytes
    def __init__(self, registration: _Optional[_Union[MeterRegistration, _Mapping]] = ..., status: _Optional[_Union[MeterStatus, str]] = ..., revocation_reason: _Optional[str] = ..., receipt: _Optional[_Union[_common_pb2.Receipt, _Mapping]] = ..., next_sequence: _Optional[int] = ..., last_batch_hash: _Optional[bytes] = ...) -> None: ...
