from zkgrid.settlement.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReadingBatch(_message.Message):
    __slots__ = ("meter_id", "period", "interval_minutes", "sequence", "prev_hash", "commitments", "range_proof", "signature")
    METER_ID_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_MINUTES_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PREV_HASH_FIELD_NUMBER: _ClassVar[int]
    COMMITMENTS_FIELD_NUMBER: _ClassVar[int]
    RANGE_PROOF_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    meter_id: str
    period: str
    interval_minutes: int
    sequence: int
    prev_hash: bytes
    commitments: _containers.RepeatedScalarFieldContainer[bytes]
    range_proof: bytes
    signature: bytes
    def __init__(self, meter_id: _Optional[str] = ..., period: _Optional[str] = ..., interval_minutes: _Optional[int] = ..., sequence: _Optional[int] = ..., prev_hash: _Optional[bytes] = ..., commitments: _Optional[_Iterable[bytes]] = ..., range_proof: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class SubmitReadingsRequest(_message.Message):
    __slots__ = ("batch",)
    BATCH_FIELD_NUMBER: _ClassVar[int]
    batch: ReadingBatch
    def __init__(self, batch: _Optional[_Union[ReadingBatch, _Mapping]] = ...) -> None: ...

class SubmitReadingsResponse(_message.Message):
    __slots__ = ("receipt", "batch_hash")
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    BATCH_HASH_FIELD_NUMBER: _ClassVar[int]
    receipt: _common_pb2.Receipt
    batch_hash: bytes
    def __init__(self, receipt: _Optional[_Union[_common_pb2.Receipt, _Mapping]] = ..., batch_hash: _Optional[bytes] = ...) -> None: ...

class GetReceiptRequest(_message.Message):
    __slots__ = ("meter_id", "period")
    METER_ID_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    meter_id: str
    period: str
    def __init__(self, meter_id: _Optional[str] = ..., period: _Optional[str] = ...) -> None: ...

class GetReceiptResponse(_message.Message):
    __slots__ = ("receipt", "batch_hash")
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    BATCH_HASH_FIELD_NUMBER: _ClassVar[int]
    receipt: _common_pb2.Receipt
    batch_hash: bytes
    def __init__(self, receipt: _Optional[_Union[_common_pb2.Receipt, _Mapping]] = ..., batch_hash: _Optional[bytes] = ...) -> None: ...
