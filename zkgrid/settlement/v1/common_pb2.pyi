from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class EntryKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENTRY_KIND_UNSPECIFIED: _ClassVar[EntryKind]
    ENTRY_KIND_METER_REGISTRATION: _ClassVar[EntryKind]
    ENTRY_KIND_METER_REVOCATION: _ClassVar[EntryKind]
    ENTRY_KIND_READING_BATCH: _ClassVar[EntryKind]
    ENTRY_KIND_TARIFF: _ClassVar[EntryKind]
    ENTRY_KIND_BILL: _ClassVar[EntryKind]
    ENTRY_KIND_WITNESS_KEY: _ClassVar[EntryKind]
    ENTRY_KIND_COSIGNATURE: _ClassVar[EntryKind]
    ENTRY_KIND_MARKET_ENROLMENT: _ClassVar[EntryKind]
    ENTRY_KIND_MARKET_DAY: _ClassVar[EntryKind]
    ENTRY_KIND_ORDER: _ClassVar[EntryKind]
    ENTRY_KIND_ORDER_CANCELLATION: _ClassVar[EntryKind]
    ENTRY_KIND_CLEARING: _ClassVar[EntryKind]
    ENTRY_KIND_DELIVERY_ALLOCATION: _ClassVar[EntryKind]
    ENTRY_KIND_DELIVERY: _ClassVar[EntryKind]
    ENTRY_KIND_DELIVERY_DEFAULT: _ClassVar[EntryKind]
ENTRY_KIND_UNSPECIFIED: EntryKind
ENTRY_KIND_METER_REGISTRATION: EntryKind
ENTRY_KIND_METER_REVOCATION: EntryKind
ENTRY_KIND_READING_BATCH: EntryKind
ENTRY_KIND_TARIFF: EntryKind
ENTRY_KIND_BILL: EntryKind
ENTRY_KIND_WITNESS_KEY: EntryKind
ENTRY_KIND_COSIGNATURE: EntryKind
ENTRY_KIND_MARKET_ENROLMENT: EntryKind
ENTRY_KIND_MARKET_DAY: EntryKind
ENTRY_KIND_ORDER: EntryKind
ENTRY_KIND_ORDER_CANCELLATION: EntryKind
ENTRY_KIND_CLEARING: EntryKind
ENTRY_KIND_DELIVERY_ALLOCATION: EntryKind
ENTRY_KIND_DELIVERY: EntryKind
ENTRY_KIND_DELIVERY_DEFAULT: EntryKind

class Receipt(_message.Message):
    __slots__ = ("ledger_index", "leaf_hash", "checkpoint", "tree_size", "inclusion_proof")
    LEDGER_INDEX_FIELD_NUMBER: _ClassVar[int]
    LEAF_HASH_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    INCLUSION_PROOF_FIELD_NUMBER: _ClassVar[int]
    ledger_index: int
    leaf_hash: bytes
    checkpoint: str
    tree_size: int
    inclusion_proof: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, ledger_index: _Optional[int] = ..., leaf_hash: _Optional[bytes] = ..., checkpoint: _Optional[str] = ..., tree_size: _Optional[int] = ..., inclusion_proof: _Optional[_Iterable[bytes]] = ...) -> None: ...
