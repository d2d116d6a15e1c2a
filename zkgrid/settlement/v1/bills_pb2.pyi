from zkgrid.settlement.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SubmitCycleBillRequest(_message.Message):
    __slots__ = ("cycle_bill",)
    CYCLE_BILL_FIELD_NUMBER: _ClassVar[int]
    cycle_bill: bytes
    def __init__(self, cycle_bill: _Optional[bytes] = ...) -> None: ...

class Bill(_message.Message):
    __slots__ = ("meter_id", "period", "batch_hash", "tariff_hash", "total", "proof")
    METER_ID_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    BATCH_HASH_FIELD_NUMBER: _ClassVar[int]
    TARIFF_HASH_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    meter_id: str
    period: str
    batch_hash: bytes
    tariff_hash: bytes
    total: int
    proof: bytes
    def __init__(self, meter_id: _Optional[str] = ..., period: _Optional[str] = ..., batch_hash: _Optional[bytes] = ..., tariff_hash: _Optional[bytes] = ..., total: _Optional[int] = ..., proof: _Optional[bytes] = ...) -> None: ...

class SubmitBillRequest(_message.Message):
    __slots__ = ("bill",)
    BILL_FIELD_NUMBER: _ClassVar[int]
    bill: Bill
    def __init__(self, bill: _Optional[_Union[Bill, _Mapping]] = ...) -> None: ...

class SubmitBillResponse(_message.Message):
    __slots__ = ("receipt",)
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    receipt: _common_pb2.Receipt
    def __init__(self, receipt: _Optional[_Union[_common_pb2.Receipt, _Mapping]] = ...) -> None: ...

class GetStatementRequest(_message.Message):
    __slots__ = ("meter_id", "period")
    METER_ID_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    meter_id: str
    period: str
    def __init__(self, meter_id: _Optional[str] = ..., period: _Optional[str] = ...) -> None: ...

class StatementLine(_message.Message):
    __slots__ = ("bill", "receipt", "currency", "cycle_bill")
    BILL_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    CYCLE_BILL_FIELD_NUMBER: _ClassVar[int]
    bill: Bill
    receipt: _common_pb2.Receipt
    currency: str
    cycle_bill: bytes
    def __init__(self, bill: _Optional[_Union[Bill, _Mapping]] = ..., receipt: _Optional[_Union[_common_pb2.Receipt, _Mapping]] = ..., currency: _Optional[str] = ..., cycle_bill: _Optional[bytes] = ...) -> None: ...

class GetStatementResponse(_message.Message):
    __slots__ = ("meter_id", "lines", "total")
    METER_ID_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    meter_id: str
    lines: _containers.RepeatedCompositeFieldContainer[StatementLine]
    total: int
    def __init__(self, meter_id: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[StatementLine, _Mapping]]] = ..., total: _Optional[int] = ...) -> None: ...
