from zkgrid.settlement.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Side(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SIDE_UNSPECIFIED: _ClassVar[Side]
    SIDE_OFFER: _ClassVar[Side]
    SIDE_BID: _ClassVar[Side]

class OrderStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_STATUS_UNSPECIFIED: _ClassVar[OrderStatus]
    ORDER_STATUS_LIVE: _ClassVar[OrderStatus]
    ORDER_STATUS_CANCELLED: _ClassVar[OrderStatus]
    ORDER_STATUS_WITHDRAWN: _ClassVar[OrderStatus]

class DeliveryStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DELIVERY_STATUS_UNSPECIFIED: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_PENDING: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_ALLOCATED: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_DELIVERED: _ClassVar[DeliveryStatus]
    DELIVERY_STATUS_DEFAULTED: _ClassVar[DeliveryStatus]

class DeliveryStepKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DELIVERY_STEP_UNSPECIFIED: _ClassVar[DeliveryStepKind]
    DELIVERY_STEP_ALLOCATION: _ClassVar[DeliveryStepKind]
    DELIVERY_STEP_DELIVERY: _ClassVar[DeliveryStepKind]
SIDE_UNSPECIFIED: Side
SIDE_OFFER: Side
SIDE_BID: Side
ORDER_STATUS_UNSPECIFIED: OrderStatus
ORDER_STATUS_LIVE: OrderStatus
ORDER_STATUS_CANCELLED: OrderStatus
ORDER_STATUS_WITHDRAWN: OrderStatus
DELIVERY_STATUS_UNSPECIFIED: DeliveryStatus
DELIVERY_STATUS_PENDING: DeliveryStatus
DELIVERY_STATUS_ALLOCATED: DeliveryStatus
DELIVERY_STATUS_DELIVERED: DeliveryStatus
DELIVERY_STATUS_DEFAULTED: DeliveryStatus
DELIVERY_STEP_UNSPECIFIED: DeliveryStepKind
DELIVERY_STEP_ALLOCATION: DeliveryStepKind
DELIVERY_STEP_DELIVERY: DeliveryStepKind

class EnrolRequest(_message.Message):
    __slots__ = ("enrolment",)
    ENROLMENT_FIELD_NUMBER: _ClassVar[int]
    enrolment: bytes
    def __init__(self, enrolment: _Optional[bytes] = ...) -> None: ...

class EnrolResponse(_message.Message):
    __slots__ = ("receipt",)
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    receipt: _common_pb2.Receipt
    def __init__(self, receipt: _Optional[_Union[_common_pb2.Receipt, _Mapping]] = ...) -> None: ...

class PublishMarketDayRequest(_message.Message):
    __slots__ = ("market_day",)
    MARKET_DAY_FIELD_NUMBER: _ClassVar[int]
    market_day: bytes
    def __init__(self, market_day: _Optional[bytes] = ...) -> None: ...

class PublishMarketDayResponse(_message.Message):
    __slots__ = ("receipt",)
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    receipt: _common_pb2.Receipt
    def __init__(self, receipt: _Optional[_Union[_common_pb2.Receipt, _Mapping]] = ...) -> None: ...

class SubmitOrderRequest(_message.Message):
    __slots__ = ("order",)
    ORDER_FIELD_NUMBER: _ClassVar[int]
    order: bytes
    def __init__(self, order: _Optional[bytes] = ...) -> None: ...

class SubmitOrderResponse(_message.Message):
    __slots__ = ("receipt", "order_hash")
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    ORDER_HASH_FIELD_NUMBER: _ClassVar[int]
    receipt: _common_pb2.Receipt
    order_hash: bytes
    def __init__(self, receipt: _Optional[_Union[_common_pb2.Receipt, _Mapping]] = ..., order_hash: _Optional[bytes] = ...) -> None: ...

class CancelOrderRequest(_message.Message):
    __slots__ = ("cancellation",)
    CANCELLATION_FIELD_NUMBER: _ClassVar[int]
    cancellation: bytes
    def __init__(self, cancellation: _Optional[bytes] = ...) -> None: ...

class CancelOrderResponse(_message.Message):
    __slots__ = ("receipt",)
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    receipt: _common_pb2.Receipt
    def __init__(self, receipt: _Optional[_Union[_common_pb2.Receipt, _Mapping]] = ...) -> None: ...

class ListOrdersRequest(_message.Message):
    __slots__ = ("meter_id", "period")
    METER_ID_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    meter_id: str
    period: str
    def __init__(self, meter_id: _Optional[str] = ..., period: _Optional[str] = ...) -> None: ...

class MarketOrder(_message.Message):
    __slots__ = ("order", "order_hash", "ledger_index", "status", "cancellation_index")
    ORDER_FIELD_NUMBER: _ClassVar[int]
    ORDER_HASH_FIELD_NUMBER: _ClassVar[int]
    LEDGER_INDEX_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CANCELLATION_INDEX_FIELD_NUMBER: _ClassVar[int]
    order: bytes
    order_hash: bytes
    ledger_index: int
    status: OrderStatus
    cancellation_index: int
    def __init__(self, order: _Optional[bytes] = ..., order_hash: _Optional[bytes] = ..., ledger_index: _Optional[int] = ..., status: _Optional[_Union[OrderStatus, str]] = ..., cancellation_index: _Optional[int] = ...) -> None: ...

class ListOrdersResponse(_message.Message):
    __slots__ = ("orders",)
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    orders: _containers.RepeatedCompositeFieldContainer[MarketOrder]
    def __init__(self, orders: _Optional[_Iterable[_Union[MarketOrder, _Mapping]]] = ...) -> None: ...

class GetMarketResultRequest(_message.Message):
    __slots__ = ("period",)
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    period: str
    def __init__(self, period: _Optional[str] = ...) -> None: ...

class IntervalResult(_message.Message):
    __slots__ = ("interval", "price", "volume")
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    interval: int
    price: int
    volume: int
    def __init__(self, interval: _Optional[int] = ..., price: _Optional[int] = ..., volume: _Optional[int] = ...) -> None: ...

class GetMarketResultResponse(_message.Message):
    __slots__ = ("market_day", "cleared", "intervals", "clearing", "receipt")
    MARKET_DAY_FIELD_NUMBER: _ClassVar[int]
    CLEARED_FIELD_NUMBER: _ClassVar[int]
    INTERVALS_FIELD_NUMBER: _ClassVar[int]
    CLEARING_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    market_day: bytes
    cleared: bool
    intervals: _containers.RepeatedCompositeFieldContainer[IntervalResult]
    clearing: bytes
    receipt: _common_pb2.Receipt
    def __init__(self, market_day: _Optional[bytes] = ..., cleared: _Optional[bool] = ..., intervals: _Optional[_Iterable[_Union[IntervalResult, _Mapping]]] = ..., clearing: _Optional[bytes] = ..., receipt: _Optional[_Union[_common_pb2.Receipt, _Mapping]] = ...) -> None: ...

class ListTradesRequest(_message.Message):
    __slots__ = ("meter_id", "period")
    METER_ID_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    meter_id: str
    period: str
    def __init__(self, meter_id: _Optional[str] = ..., period: _Optional[str] = ...) -> None: ...

class MarketTrade(_message.Message):
    __slots__ = ("interval", "index", "side", "counterparty", "seller", "buyer", "quantity_wh", "price")
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    COUNTERPARTY_FIELD_NUMBER: _ClassVar[int]
    SELLER_FIELD_NUMBER: _ClassVar[int]
    BUYER_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_WH_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    interval: int
    index: int
    side: Side
    counterparty: str
    seller: str
    buyer: str
    quantity_wh: int
    price: int
    def __init__(self, interval: _Optional[int] = ..., index: _Optional[int] = ..., side: _Optional[_Union[Side, str]] = ..., counterparty: _Optional[str] = ..., seller: _Optional[str] = ..., buyer: _Optional[str] = ..., quantity_wh: _Optional[int] = ..., price: _Optional[int] = ...) -> None: ...

class ListTradesResponse(_message.Message):
    __slots__ = ("cleared", "trades", "clearing_hash")
    CLEARED_FIELD_NUMBER: _ClassVar[int]
    TRADES_FIELD_NUMBER: _ClassVar[int]
    CLEARING_HASH_FIELD_NUMBER: _ClassVar[int]
    cleared: bool
    trades: _containers.RepeatedCompositeFieldContainer[MarketTrade]
    clearing_hash: bytes
    def __init__(self, cleared: _Optional[bool] = ..., trades: _Optional[_Iterable[_Union[MarketTrade, _Mapping]]] = ..., clearing_hash: _Optional[bytes] = ...) -> None: ...

class ClearRequest(_message.Message):
    __slots__ = ("period",)
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    period: str
    def __init__(self, period: _Optional[str] = ...) -> None: ...

class ClearResponse(_message.Message):
    __slots__ = ("receipt", "clearing", "appended")
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    CLEARING_FIELD_NUMBER: _ClassVar[int]
    APPENDED_FIELD_NUMBER: _ClassVar[int]
    receipt: _common_pb2.Receipt
    clearing: bytes
    appended: bool
    def __init__(self, receipt: _Optional[_Union[_common_pb2.Receipt, _Mapping]] = ..., clearing: _Optional[bytes] = ..., appended: _Optional[bool] = ...) -> None: ...

class SubmitAllocationRequest(_message.Message):
    __slots__ = ("allocation",)
    ALLOCATION_FIELD_NUMBER: _ClassVar[int]
    allocation: bytes
    def __init__(self, allocation: _Optional[bytes] = ...) -> None: ...

class SubmitAllocationResponse(_message.Message):
    __slots__ = ("receipt",)
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    receipt: _common_pb2.Receipt
    def __init__(self, receipt: _Optional[_Union[_common_pb2.Receipt, _Mapping]] = ...) -> None: ...

class SubmitDeliveryRequest(_message.Message):
    __slots__ = ("delivery",)
    DELIVERY_FIELD_NUMBER: _ClassVar[int]
    delivery: bytes
    def __init__(self, delivery: _Optional[bytes] = ...) -> None: ...

class SubmitDeliveryResponse(_message.Message):
    __slots__ = ("receipt",)
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    receipt: _common_pb2.Receipt
    def __init__(self, receipt: _Optional[_Union[_common_pb2.Receipt, _Mapping]] = ...) -> None: ...

class RecordDefaultsRequest(_message.Message):
    __slots__ = ("period",)
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    period: str
    def __init__(self, period: _Optional[str] = ...) -> None: ...

class RecordedDefault(_message.Message):
    __slots__ = ("delivery_default", "receipt")
    DELIVERY_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    delivery_default: bytes
    receipt: _common_pb2.Receipt
    def __init__(self, delivery_default: _Optional[bytes] = ..., receipt: _Optional[_Union[_common_pb2.Receipt, _Mapping]] = ...) -> None: ...

class RecordDefaultsResponse(_message.Message):
    __slots__ = ("defaults",)
    DEFAULTS_FIELD_NUMBER: _ClassVar[int]
    defaults: _containers.RepeatedCompositeFieldContainer[RecordedDefault]
    def __init__(self, defaults: _Optional[_Iterable[_Union[RecordedDefault, _Mapping]]] = ...) -> None: ...

class GetMessagesRequest(_message.Message):
    __slots__ = ("meter_id", "period")
    METER_ID_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    meter_id: str
    period: str
    def __init__(self, meter_id: _Optional[str] = ..., period: _Optional[str] = ...) -> None: ...

class TradeMessages(_message.Message):
    __slots__ = ("interval", "index", "side", "counterparty", "quantity_wh", "price", "status", "allocation", "allocation_index", "delivery", "delivery_index", "defaulted_step", "trade_id")
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    COUNTERPARTY_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_WH_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ALLOCATION_FIELD_NUMBER: _ClassVar[int]
    ALLOCATION_INDEX_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_INDEX_FIELD_NUMBER: _ClassVar[int]
    DEFAULTED_STEP_FIELD_NUMBER: _ClassVar[int]
    TRADE_ID_FIELD_NUMBER: _ClassVar[int]
    interval: int
    index: int
    side: Side
    counterparty: str
    quantity_wh: int
    price: int
    status: DeliveryStatus
    allocation: bytes
    allocation_index: int
    delivery: bytes
    delivery_index: int
    defaulted_step: DeliveryStepKind
    trade_id: bytes
    def __init__(self, interval: _Optional[int] = ..., index: _Optional[int] = ..., side: _Optional[_Union[Side, str]] = ..., counterparty: _Optional[str] = ..., quantity_wh: _Optional[int] = ..., price: _Optional[int] = ..., status: _Optional[_Union[DeliveryStatus, str]] = ..., allocation: _Optional[bytes] = ..., allocation_index: _Optional[int] = ..., delivery: _Optional[bytes] = ..., delivery_index: _Optional[int] = ..., defaulted_step: _Optional[_Union[DeliveryStepKind, str]] = ..., trade_id: _Optional[bytes] = ...) -> None: ...

class GetMessagesResponse(_message.Message):
    __slots__ = ("cleared", "clearing_hash", "trades")
    CLEARED_FIELD_NUMBER: _ClassVar[int]
    CLEARING_HASH_FIELD_NUMBER: _ClassVar[int]
    TRADES_FIELD_NUMBER: _ClassVar[int]
    cleared: bool
    clearing_hash: bytes
    trades: _containers.RepeatedCompositeFieldContainer[TradeMessages]
    def __init__(self, cleared: _Optional[bool] = ..., clearing_hash: _Optional[bytes] = ..., trades: _Optional[_Iterable[_Union[TradeMessages, _Mapping]]] = ...) -> None: ...
