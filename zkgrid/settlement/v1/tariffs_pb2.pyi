from zkgrid.settlement.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Tariff(_message.Message):
    __slots__ = ("period", "interval_minutes", "currency", "fixed_charge", "import_price", "export_credit")
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_MINUTES_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    FIXED_CHARGE_FIELD_NUMBER: _ClassVar[int]
    IMPORT_PRICE_FIELD_NUMBER: _ClassVar[int]
    EXPORT_CREDIT_FIELD_NUMBER: _ClassVar[int]
    period: str
    interval_minutes: int
    currency: str
    fixed_charge: int
    import_price: _containers.RepeatedScalarFieldContainer[int]
    export_credit: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, period: _Optional[str] = ..., interval_minutes: _Optional[int] = ..., currency: _Optional[str] = ..., fixed_charge: _Optional[int] = ..., import_price: _Optional[_Iterable[int]] = ..., export_credit: _Optional[_Iterable[int]] = ...) -> None: ...

class PublishTariffRequest(_message.Message):
    __slots__ = ("tariff",)
    TARIFF_FIELD_NUMBER: _ClassVar[int]
    tariff: Tariff
    def __init__(self, tariff: _Optional[_Union[Tariff, _Mapping]] = ...) -> None: ...

class PublishTariffResponse(_message.Message):
    __slots__ = ("receipt", "tariff_hash")
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    TARIFF_HASH_FIELD_NUMBER: _ClassVar[int]
    receipt: _common_pb2.Receipt
    tariff_hash: bytes
    def __init__(self, receipt: _Optional[_Union[_common_pb2.Receipt, _Mapping]] = ..., tariff_hash: _Optional[bytes] = ...) -> None: ...

class GetTariffRequest(_message.Message):
    __slots__ = ("period",)
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    period: str
    def __init__(self, period: _Optional[str] = ...) -> None: ...

class GetTariffResponse(_message.Message):
    __slots__ = ("tariff", "tariff_hash", "receipt")
    TARIFF_FIELD_NUMBER: _ClassVar[int]
    TARIFF_HASH_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    tariff: Tariff
    tariff_hash: bytes
    receipt: _common_pb2.Receipt
    def __init__(self, tariff: _Optional[_Union[Tariff, _Mapping]] = ..., tariff_hash: _Optional[bytes] = ..., receipt: _Optional[_Union[_common_pb2.Receipt, _Mapping]] = ...) -> None: ...

class PublishCycleTariffRequest(_message.Message):
    __slots__ = ("cycle_tariff",)
    CYCLE_TARIFF_FIELD_NUMBER: _ClassVar[int]
    cycle_tariff: bytes
    def __init__(self, cycle_tariff: _Optional[bytes] = ...) -> None: ...

class GetCycleTariffRequest(_message.Message):
    __slots__ = ("meter_id", "period")
    METER_ID_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    meter_id: str
    period: str
    def __init__(self, meter_id: _Optional[str] = ..., period: _Optional[str] = ...) -> None: ...

class GetCycleTariffResponse(_message.Message):
    __slots__ = ("cycle_tariff", "tariff_hash", "receipt")
    CYCLE_TARIFF_FIELD_NUMBER: _ClassVar[int]
    TARIFF_HASH_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    cycle_tariff: bytes
    tariff_hash: bytes
    receipt: _common_pb2.Receipt
    def __init__(self, cycle_tariff: _Optional[bytes] = ..., tariff_hash: _Optional[bytes] = ..., receipt: _Optional[_Union[_common_pb2.Receipt, _Mapping]] = ...) -> None: ...
