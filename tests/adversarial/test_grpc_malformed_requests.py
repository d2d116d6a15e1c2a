"""Requests that are not protobuf get INVALID_ARGUMENT, never INTERNAL (issue 10, §3).

A real server on 127.0.0.1:0 (insecure loopback mode, the caller's role in metadata)
receives raw bytes on every method with a unary request, through
``channel.unary_unary(method, request_serializer=None, ...)``: invalid UTF-8 in a string
field, a truncated varint, a truncated length-delimited field, 200 nested unknown groups
(beyond protobuf's recursion limit of 100) and random bytes. The target behaviour:
``INVALID_ARGUMENT`` with a ``google.rpc.ErrorInfo`` reason, and nothing logged as a server
error. Random bytes that happen to parse get whatever the domain answers, never
``INTERNAL`` or ``UNKNOWN``.

Requests that do parse are fuzzed too: valid requests of every method (real records, a
real cosignature on the server's checkpoint, against a server that already holds the
meter, the tariff, the batch and the witness) with one to three fields changed (strings
to random text or 5,000 digits, bytes mutated, integers to their extremes, repeated fields
shortened, extended or mutated). Whatever the domain answers, it is never ``INTERNAL`` or
``UNKNOWN``: that test passes today and must keep passing.

Before the interceptor (``service/interceptors.py``) decoded requests itself, grpcio
answered ``INTERNAL "Exception deserializing request!"`` and logged it as an error; the
malformed requests are now ``REQUEST_MALFORMED`` and counted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2  # type: ignore[import-untyped]
from grpc_status import rpc_status
from hypothesis import event, given
from hypothesis import strategies as st

from ledger.checkpoint import CheckpointSigner, SignedCheckpoint
from service.auth import POLICY, Role
from service.config import ServiceConfig
from service.server import build_server, server_info
from service.settlement import Settlement
from service.storage import open_store
from settlement import convert
from settlement.cycle_bills import prove_cycle_bill
from settlement.market import (
    Delivery,
    DeliveryAllocation,
    MarketDay,
    MarketEnrolment,
    Order,
    OrderCancellation,
    Side,
)
from settlement.records import (
    Bill,
    CycleTariff,
    MeterKey,
    MeterRegistration,
    ReadingBatch,
    Tariff,
)
from settlement.sealed import EncryptionKey, seal
from tests.property.fuzz_support import (
    METER_ID,
    METER_SECRET,
    MINUTES,
    PERIOD,
    fuzz_bytes,
    fuzz_settings,
    records,
    witness_material,
)
from witness.keys import WitnessKey, cosign
from zkgrid.settlement.v1 import (
    bills_pb2,
    ledger_pb2,
    market_pb2,
    meters_pb2,
    readings_pb2,
    tariffs_pb2,
    witness_pb2,
)
from zkp.drbg import SeededScalars
from zkp.pedersen import commit
from zkp.rangeproof import RangeProof

_Step = TypeVar("_Step", DeliveryAllocation, Delivery)
_FILES = (bills_pb2, ledger_pb2, market_pb2, meters_pb2, readings_pb2, tariffs_pb2, witness_pb2)
#: The market's periods: one whose gate is open by any real clock (orders are taken) and one
#: whose gate closed long ago (it can be cleared).
MARKET_PERIOD, CLOSED_PERIOD = "2099-01-02", "2020-01-02"
_WIRE_VARINT, _WIRE_LEN, _WIRE_START_GROUP, _WIRE_END_GROUP = 0, 2, 3, 4


@dataclass(frozen=True)
class Method:
    path: str  #: "/zkgrid.settlement.v1.MeterService/GetMeter"
    descriptor: MethodDescriptor
    metadata: tuple[tuple[str, str], ...]

    @property
    def request_type(self) -> type[Message]:
        return message_factory.GetMessageClass(self.descriptor.input_type)

    def __str__(self) -> str:
        return self.path.rsplit("/", 2)[-2].rsplit(".", 1)[-1] + "." + self.descriptor.name


def _methods() -> list[Method]:
    """Every method of the settlement API that takes one request (unary or server-streaming)."""
    out = []
    for module in _FILES:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                if method.client_streaming:
                    continue
                path = f"/{service.full_name}/{method.name}"
                roles = POLICY[path].roles
                role = Role.UTILITY if Role.UTILITY in roles else sorted(roles)[0]
                identity = METER_ID if role is Role.METER else f"{role}-fuzz"
                md = (("x-zkgrid-role", str(role)), ("x-zkgrid-identity", identity))
                out.append(Method(path, method, md))
    return out


METHODS = _methods()


# ----------------------------------------------------------------------------- wire bytes


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _tag(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _string_path(message: Descriptor, depth: int = 0) -> bytes | None:
    """Bytes of ``message`` with invalid UTF-8 in its first string field (nested if need be)."""
    bad = b"meter-\xc3\x28\xff"
    for field in message.fields:
        if field.type == FieldDescriptor.TYPE_STRING:
            return _tag(field.number, _WIRE_LEN) + _varint(len(bad)) + bad
    for field in message.fields:
        if field.type == FieldDescriptor.TYPE_MESSAGE and depth < 3:
            inner = _string_path(field.message_type, depth + 1) if field.message_type else None
            if inner is not None:
                return _tag(field.number, _WIRE_LEN) + _varint(len(inner)) + inner
    return None


def _cases(method: Method) -> dict[str, bytes]:
    cases = {
        "truncated-varint": _tag(1, _WIRE_VARINT) + b"\x80",
        "truncated-length": _tag(1, _WIRE_LEN) + _varint(100) + b"abc",
        "nested-unknown-groups": _tag(1000, _WIRE_START_GROUP) * 200
        + _tag(1000, _WIRE_END_GROUP) * 200,
        "junk": b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
    }
    bad_utf8 = _string_path(method.descriptor.input_type)
    if bad_utf8 is not None:
        cases["invalid-utf8"] = bad_utf8
    return cases


CASES = [
    pytest.param(method, name, raw, id=f"{method}-{name}")
    for method in METHODS
    for name, raw in _cases(method).items()
]


def _parses(method: Method, raw: bytes) -> bool:
    try:
        method.request_type.FromString(raw)
    except DecodeError:
        return False
    return True


# ----------------------------------------------------------------------------- the server


@dataclass
class Server:
    channel: grpc.Channel
    #: A valid request of each method (by path), against the server's state.
    seeds: dict[str, Message]

    def call(self, method: Method, raw: bytes) -> tuple[grpc.StatusCode, grpc.RpcError | None]:
        """Send ``raw`` as the request: the status code (OK included) and the error if any."""
        try:
            if method.descriptor.server_streaming:
                stream = self.channel.unary_stream(
                    method.path, request_serializer=None, response_deserializer=None
                )
                for _ in stream(raw, metadata=method.metadata, timeout=10):
                    pass
            else:
                unary = self.channel.unary_unary(
                    method.path, request_serializer=None, response_deserializer=None
                )
                unary(raw, metadata=method.metadata, timeout=10)
        except grpc.RpcError as err:
            return err.code(), err
        return grpc.StatusCode.OK, None


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    signer = CheckpointSigner.from_private_bytes("zkgrid-test", bytes(range(32)))
    path: Path = tmp_path_factory.mktemp("malformed") / "ledger.db"
    store = open_store(f"sqlite:///{path}", signer, "zkgrid.test/malformed")
    settlement = Settlement(store)
    grpc_server = build_server(settlement, ServiceConfig(listen="127.0.0.1:0", insecure=True))
    grpc_server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{server_info(grpc_server).port}")
    try:
        running = Server(channel, {})
        _populate(running)
        yield running
    finally:
        channel.close()
        grpc_server.stop(None).wait()
        settlement.close()
        store.close()


def _method(name: str) -> Method:
    [method] = [m for m in METHODS if m.path.endswith(f"/{name}")]
    return method


def _request(name: str, **fields: Any) -> Message:
    return _method(name).request_type(**fields)


def _cycle_material(batch: ReadingBatch) -> tuple[CycleTariff, bytes]:
    """A one-day cycle tariff (tiers, demand) of the fuzz meter's period and the meter's
    real cycle bill of it (the batch's openings, as fuzz_support made them)."""
    t = 1440 // MINUTES
    cycle = CycleTariff(
        plan="fuzz-plan", meters=(), first_period=PERIOD, last_period=PERIOD,
        interval_minutes=MINUTES, currency="EUR", fixed_charge=5_000,
        import_price=tuple(100 + 10 * i for i in range(t)), export_credit=(20,) * t,
        tiers=((0, 50), (10_000, 80)), demand_charge=8_000,
    )  # fmt: skip
    values = [(1_000 + 37 * i) % 5_000 for i in range(2 * t)]  # as fuzz_support.records
    bundle = RangeProof.prove(
        values, 32, context=batch.proof_context(), rng=SeededScalars(b"fuzz/batch")
    )
    assert [c.to_bytes() for c in bundle.commitments] == list(batch.commitments)
    bill = prove_cycle_bill(METER_ID, cycle, [batch], [(values, list(bundle.blindings))])
    return cycle, bill.encode()


def _market_material() -> tuple[Tariff, MarketDay, MarketDay, MarketEnrolment, Order]:
    """The fuzz meter's market: a tariff and a market day of a period whose gate is open, a
    market day whose gate closed, the meter's enrolment and an order (real signatures)."""
    key = MeterKey.from_private_value(METER_SECRET)
    t = 1440 // MINUTES
    tariff = Tariff(MARKET_PERIOD, MINUTES, "EUR", 0, (300,) * t, (50,) * t)
    open_day = MarketDay.with_defaults(MARKET_PERIOD, MINUTES, 10)
    closed_day = MarketDay.with_defaults(CLOSED_PERIOD, MINUTES, 10)
    enrolment = MarketEnrolment.create(key, METER_ID, EncryptionKey.generate().public_key)
    order = Order.create(
        key, meter_id=METER_ID, period=MARKET_PERIOD, side=Side.OFFER, first_interval=0,
        last_interval=1, quantity_wh=500, limit_price=100, nonce=1,
    )  # fmt: skip
    return tariff, open_day, closed_day, enrolment, order


def _step(kind: type[_Step], enrolment: MarketEnrolment) -> _Step:
    """A well-formed delivery step of the fuzz meter (of a trade no clearing has)."""
    return kind.create(
        MeterKey.from_private_value(METER_SECRET), meter_id=METER_ID, period=CLOSED_PERIOD,
        interval=0, trade_index=0, clearing_hash=b"\7" * 32, commitment=commit(5, 7).to_bytes(),
        proof=b"\1" * 64, sealed_opening=seal(5, 7, enrolment.encryption_key, b"ad"),
    )  # fmt: skip


def _populate(server: Server) -> None:
    """A meter, a tariff, a cycle tariff, the meter's batch, a witness and the meter's
    market (enrolment, two market days, an order) on the ledger, through the API; and a
    valid request of every method (the bills are not submitted: their seeds go deep)."""
    [registration] = [r for r in records() if isinstance(r, MeterRegistration)]
    [tariff] = [r for r in records() if isinstance(r, Tariff)]
    [batch] = [r for r in records() if isinstance(r, ReadingBatch)]
    [bill] = [r for r in records() if isinstance(r, Bill)]
    cycle_tariff, cycle_bill = _cycle_material(batch)
    market_tariff, open_day, closed_day, enrolment, order = _market_material()
    witness, _, _, _ = witness_material()
    seeds = {
        "RegisterMeter": _request(
            "RegisterMeter", registration=convert.registration_to_proto(registration)
        ),
        "PublishTariff": _request("PublishTariff", tariff=convert.tariff_to_proto(tariff)),
        "PublishCycleTariff": _request("PublishCycleTariff", cycle_tariff=cycle_tariff.encode()),
        "SubmitReadings": _request("SubmitReadings", batch=convert.reading_batch_to_proto(batch)),
        "RegisterWitness": _request("RegisterWitness", registration=witness.encode()),
    }
    market_setup = [
        ("PublishTariff", _request("PublishTariff", tariff=convert.tariff_to_proto(market_tariff))),
        ("PublishMarketDay", _request("PublishMarketDay", market_day=closed_day.encode())),
        ("PublishMarketDay", _request("PublishMarketDay", market_day=open_day.encode())),
        ("Enrol", _request("Enrol", enrolment=enrolment.encode())),
        ("SubmitOrder", _request("SubmitOrder", order=order.encode())),
    ]
    for name, request in [*seeds.items(), *market_setup]:
        code, err = server.call(_method(name), request.SerializeToString())
        assert code is grpc.StatusCode.OK, (name, err)
    checkpoint = ledger_pb2.GetCheckpointResponse.FromString(
        server.channel.unary_unary(
            _method("GetCheckpoint").path, request_serializer=None, response_deserializer=None
        )(b"", metadata=_method("GetCheckpoint").metadata, timeout=10)
    ).checkpoint
    key = WitnessKey.from_secret_bytes("auditor-1", (7).to_bytes(32, "big"))
    cosignature = cosign(key, SignedCheckpoint.from_text(checkpoint))
    size = SignedCheckpoint.from_text(checkpoint).checkpoint.size
    seeds |= {
        "RevokeMeter": _request("RevokeMeter", meter_id="meter-other", reason="replaced"),
        "GetMeter": _request("GetMeter", meter_id=METER_ID),
        "GetReceipt": _request("GetReceipt", meter_id=METER_ID, period=PERIOD),
        "GetTariff": _request("GetTariff", period=PERIOD),
        "SubmitBill": _request("SubmitBill", bill=convert.bill_to_proto(bill)),
        "GetStatement": _request("GetStatement", meter_id=METER_ID, period=PERIOD),
        "GetCycleTariff": _request("GetCycleTariff", meter_id=METER_ID, period=PERIOD),
        "SubmitCycleBill": _request("SubmitCycleBill", cycle_bill=cycle_bill),
        "GetCheckpoint": _request("GetCheckpoint", tree_size=size),
        "StreamEntries": _request("StreamEntries", start_index=0, end_index=size),
        "GetInclusionProof": _request("GetInclusionProof", leaf_index=1, tree_size=size),
        "GetConsistencyProof": _request("GetConsistencyProof", first_size=1, second_size=size),
        "AddCosignature": _request(
            "AddCosignature",
            checkpoint=checkpoint,
            witness_name=cosignature.name,
            signature=cosignature.signature,
        ),
        "GetCosignedCheckpoint": _request("GetCosignedCheckpoint", tree_size=size),
        "ListWitnesses": _request("ListWitnesses", tree_size=size),
        "Enrol": _request("Enrol", enrolment=enrolment.encode()),
        "PublishMarketDay": _request("PublishMarketDay", market_day=open_day.encode()),
        "SubmitOrder": _request("SubmitOrder", order=order.encode()),
        "CancelOrder": _request(
            "CancelOrder",
            cancellation=OrderCancellation.create(
                MeterKey.from_private_value(METER_SECRET), METER_ID, order.order_hash()
            ).encode(),
        ),
        "ListOrders": _request("ListOrders", meter_id=METER_ID, period=MARKET_PERIOD),
        "GetMarketResult": _request("GetMarketResult", period=MARKET_PERIOD),
        "ListTrades": _request("ListTrades", meter_id=METER_ID, period=CLOSED_PERIOD),
        "Clear": _request("Clear", period=CLOSED_PERIOD),
        "SubmitAllocation": _request(
            "SubmitAllocation", allocation=_step(DeliveryAllocation, enrolment).encode()
        ),
        "SubmitDelivery": _request("SubmitDelivery", delivery=_step(Delivery, enrolment).encode()),
        "RecordDefaults": _request("RecordDefaults", period=CLOSED_PERIOD),
        "GetMessages": _request("GetMessages", meter_id=METER_ID, period=CLOSED_PERIOD),
    }
    server.seeds.update({_method(name).path: request for name, request in seeds.items()})


# ----------------------------------------------------------------------------- field mutations

_INT_RANGES = {
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
}
_TEXTS = ("", "0", "-1", "2026-02-30", "9999-12-31", "0001-01-01", "a" * 65, "\u2014 x\n", "EUR")


def _value(draw: st.DrawFn, field: FieldDescriptor, current: Any) -> Any:
    """A new value for one scalar field of ``field``'s type, often near ``current``."""
    if field.type == FieldDescriptor.TYPE_STRING:
        text = str(current or "x")
        return draw(
            st.sampled_from(_TEXTS)
            | st.text(max_size=80)
            | st.just("9" * 5_000)
            | st.just(text + text)
            | st.integers(0, len(text)).map(lambda i: text[:i])
        )
    if field.type == FieldDescriptor.TYPE_BYTES:
        return draw(fuzz_bytes([bytes(current) or b"\x00"], max_random=128, max_mutations=2))
    if field.type == FieldDescriptor.TYPE_BOOL:
        return draw(st.booleans())
    lo, hi = _INT_RANGES.get(field.type, (0, 2**31 - 1))
    near = int(current or 0)
    return draw(
        st.sampled_from([lo, hi, 0, 1, hi // 2 + 1])
        | st.integers(lo, hi)
        | st.integers(max(lo, near - 2), min(hi, near + 2))
    )


def _fields(message: Message) -> list[tuple[Message, Any]]:
    """Every (message, field descriptor) pair reachable through set sub-messages."""
    out: list[tuple[Message, Any]] = []
    for field in message.DESCRIPTOR.fields:
        out.append((message, field))
        if field.type != FieldDescriptor.TYPE_MESSAGE:
            continue
        if field.is_repeated:
            for element in getattr(message, field.name):
                out += _fields(element)
        elif message.HasField(field.name):
            out += _fields(getattr(message, field.name))
    return out


def _mutate_field(draw: st.DrawFn, message: Message, field: FieldDescriptor) -> None:
    if field.is_repeated:
        items = getattr(message, field.name)
        op = draw(st.sampled_from(["delete", "duplicate", "change", "clear"]))
        if op == "clear" or not items:
            message.ClearField(field.name)
        elif op == "delete":
            del items[draw(st.integers(0, len(items) - 1))]
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if op == "duplicate":
                items.add().CopyFrom(items[draw(st.integers(0, len(items) - 1))])
        elif op == "duplicate":
            items.append(items[draw(st.integers(0, len(items) - 1))])
        else:
            i = draw(st.integers(0, len(items) - 1))
            items[i] = _value(draw, field, items[i])
    elif field.type == FieldDescriptor.TYPE_MESSAGE:
        message.ClearField(field.name)
    else:
        setattr(message, field.name, _value(draw, field, getattr(message, field.name)))


@st.composite
def changed_requests(draw: st.DrawFn, seeds: dict[str, Message]) -> tuple[Method, bytes]:
    """A valid request of some method with one to three fields changed."""
    method = draw(st.sampled_from(METHODS))
    request = type(seeds[method.path])()
    request.CopyFrom(seeds[method.path])
    for _ in range(draw(st.integers(1, 3))):
        fields = _fields(request)
        if fields:
            _mutate_field(draw, *draw(st.sampled_from(fields)))
    return method, request.SerializeToString()


def _error_reason(err: grpc.RpcError) -> str:
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None, "no grpc-status-details-bin trailer (no ErrorInfo)"
    # one ErrorInfo; a refusal to retry later (OVERLOADED, a spent failure budget) carries
    # a RetryInfo beside it
    infos = []
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            infos.append(info)
    [info] = infos
    assert info.domain == "zkgrid.settlement.v1"
    return str(info.reason)


# ----------------------------------------------------------------------------- tests


def test_every_method_with_a_unary_request_is_covered() -> None:
    """The table of methods is the policy table: nothing is left out of the malformed cases."""
    assert {m.path for m in METHODS} == set(POLICY)
    assert len(CASES) >= 4 * len(METHODS)


@pytest.mark.parametrize(("method", "name", "raw"), CASES)
def test_the_cases_are_really_malformed(method: Method, name: str, raw: bytes) -> None:
    """Each case fails protobuf parsing locally (so the server must refuse it)."""
    assert not _parses(method, raw), name


@pytest.mark.parametrize("method", METHODS, ids=str)
def test_well_formed_raw_bytes_reach_the_service(server: Server, method: Method) -> None:
    """The raw channel path itself works: an empty (default) request gets a domain answer."""
    code, _ = server.call(method, b"")
    assert code not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), str(method)


@pytest.mark.parametrize(("method", "name", "raw"), CASES)
def test_malformed_request_is_invalid_argument(
    server: Server, method: Method, name: str, raw: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        code, err = server.call(method, raw)
    assert code is grpc.StatusCode.INVALID_ARGUMENT, (str(method), name, code)
    assert err is not None
    reason = _error_reason(err)
    assert reason, "an empty ErrorInfo reason"
    assert reason == "REQUEST_MALFORMED"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


@fuzz_settings(60)
@given(st.sampled_from(METHODS), st.binary(max_size=96))
def test_random_request_bytes_never_internal(server: Server, method: Method, raw: bytes) -> None:
    code, _ = server.call(method, raw)
    assert code not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), (str(method), code)
    if not _parses(method, raw):
        assert code is grpc.StatusCode.INVALID_ARGUMENT, (str(method), raw.hex(), code)


@fuzz_settings(60)
@given(data=st.data())
def test_changed_valid_requests_never_internal(server: Server, data: st.DataObject) -> None:
    """Requests that parse but carry nonsense get a domain answer, never INTERNAL (passes today)."""
    method, raw = data.draw(changed_requests(server.seeds))
    code, err = server.call(method, raw)
    event(f"{method}: {code.name} {_error_reason(err) if err is not None else ''}")
    assert code not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), (
        str(method),
        raw.hex(),
        err.details() if err is not None else None,
    )
