from zkgrid.settlement.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Witness(_message.Message):
    __slots__ = ("name", "public_key", "proof_of_possession", "ledger_index")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    PROOF_OF_POSSESSION_FIELD_NUMBER: _ClassVar[int]
    LEDGER_INDEX_FIELD_NUMBER: _ClassVar[int]
    name: str
    public_key: bytes
    proof_of_possession: bytes
    ledger_index: int
    def __init__(self, name: _Optional[str] = ..., public_key: _Optional[bytes] = ..., proof_of_possession: _Optional[bytes] = ..., ledger_index: _Optional[int] = ...) -> None: ...

class RegisterWitnessRequest(_message.Message):
    __slots__ = ("registration",)
    REGISTRATION_FIELD_NUMBER: _ClassVar[int]
    registration: bytes
    def __init__(self, registration: _Optional[bytes] = ...) -> None: ...

class RegisterWitnessResponse(_message.Message):
    __slots__ = ("receipt",)
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    receipt: _common_pb2.Receipt
    def __init__(self, receipt: _Optional[_Union[_common_pb2.Receipt, _Mapping]] = ...) -> None: ...

class AddCosignatureRequest(_message.Message):
    __slots__ = ("tree_size", "root_hash", "checkpoint", "witness_name", "signature")
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    ROOT_HASH_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    WITNESS_NAME_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    tree_size: int
    root_hash: bytes
    checkpoint: str
    witness_name: str
    signature: bytes
    def __init__(self, tree_size: _Optional[int] = ..., root_hash: _Optional[bytes] = ..., checkpoint: _Optional[str] = ..., witness_name: _Optional[str] = ..., signature: _Optional[bytes] = ...) -> None: ...

class AddCosignatureResponse(_message.Message):
    __slots__ = ("tree_size", "recorded", "cosignatures", "quorum_threshold")
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    COSIGNATURES_FIELD_NUMBER: _ClassVar[int]
    QUORUM_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    tree_size: int
    recorded: bool
    cosignatures: int
    quorum_threshold: int
    def __init__(self, tree_size: _Optional[int] = ..., recorded: _Optional[bool] = ..., cosignatures: _Optional[int] = ..., quorum_threshold: _Optional[int] = ...) -> None: ...

class GetCosignedCheckpointRequest(_message.Message):
    __slots__ = ("tree_size",)
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    tree_size: int
    def __init__(self, tree_size: _Optional[int] = ...) -> None: ...

class GetCosignedCheckpointResponse(_message.Message):
    __slots__ = ("checkpoint", "tree_size", "root_hash", "aggregate_signature", "signers", "quorum_threshold", "quorum_total", "final", "cosigned_checkpoint")
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    ROOT_HASH_FIELD_NUMBER: _ClassVar[int]
    AGGREGATE_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    SIGNERS_FIELD_NUMBER: _ClassVar[int]
    QUORUM_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    QUORUM_TOTAL_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    COSIGNED_CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    checkpoint: str
    tree_size: int
    root_hash: bytes
    aggregate_signature: bytes
    signers: _containers.RepeatedScalarFieldContainer[str]
    quorum_threshold: int
    quorum_total: int
    final: bool
    cosigned_checkpoint: bytes
    def __init__(self, checkpoint: _Optional[str] = ..., tree_size: _Optional[int] = ..., root_hash: _Optional[bytes] = ..., aggregate_signature: _Optional[bytes] = ..., signers: _Optional[_Iterable[str]] = ..., quorum_threshold: _Optional[int] = ..., quorum_total: _Optional[int] = ..., final: _Optional[bool] = ..., cosigned_checkpoint: _Optional[bytes] = ...) -> None: ...

class ListWitnessesRequest(_message.Message):
    __slots__ = ("tree_size",)
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    tree_size: int
    def __init__(self, tree_size: _Optional[int] = ...) -> None: ...

class ListWitnessesResponse(_message.Message):
    __slots__ = ("witnesses", "tree_size")
    WITNESSES_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    witnesses: _containers.RepeatedCompositeFieldContainer[Witness]
    tree_size: int
    def __init__(self, witnesses: _Optional[_Iterable[_Union[Witness, _Mapping]]] = ..., tree_size: _Optional[int] = ...) -> None: ...
