"""Ledger records (``settlement.records``) ⇄ settlement API messages, field by field.

The one hand-written mapping between the record dataclasses and the generated
``zkgrid.settlement.v1`` messages, shared by the service (``service/servicers.py``),
the meter SDK (``meter/client.py``), the demo and the benches; it imports only
:mod:`ledger` and the generated code, so the meter and the verifier can use it
without importing the service.

Decoding builds the record dataclass, whose constructor validates every field
and raises ``RecordFormatError`` (reason ``RECORD_MALFORMED`` → INVALID_ARGUMENT
on the service); a missing sub-message decodes as its empty default and is
refused the same way.

Records version 2 (``CycleTariff``, ``CycleBill``) travel as their canonical bytes
(``bytes cycle_tariff``, ``bytes cycle_bill``): decoded strictly, and a field that
holds a record of another version (a day's ``Tariff`` or ``Bill``) is
``RecordFormatError`` too.

The market's records (:mod:`settlement.market`: enrolment, market day, order,
cancellation, clearing, the delivery steps and defaults) travel as their canonical bytes
as well (``market.proto``): ``*_from_bytes`` decodes one strictly (``RecordFormatError``
for bytes that are not a record of that kind, empty bytes included), ``*_to_bytes`` is
its ``encode()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from settlement.market import (
    Clearing,
    Delivery,
    DeliveryAllocation,
    DeliveryDefault,
    MarketDay,
    MarketEnrolment,
    Order,
    OrderCancellation,
)
from settlement.records import (
    CYCLE_RECORD_VERSION,
    Bill,
    CycleBill,
    CycleTariff,
    MeterRegistration,
    ReadingBatch,
    RecordFormatError,
    Tariff,
)
from zkgrid.settlement.v1 import bills_pb2, meters_pb2, readings_pb2, tariffs_pb2, witness_pb2

if TYPE_CHECKING:  # pragma: no cover - ledger.cosignature is imported where it is used
    from ledger.cosignature import WitnessRegistration

__all__ = [
    "allocation_from_bytes",
    "allocation_to_bytes",
    "bill_from_proto",
    "bill_to_proto",
    "cancellation_from_bytes",
    "cancellation_to_bytes",
    "clearing_from_bytes",
    "clearing_to_bytes",
    "cycle_bill_from_bytes",
    "cycle_bill_to_bytes",
    "cycle_tariff_from_bytes",
    "cycle_tariff_to_bytes",
    "delivery_default_from_bytes",
    "delivery_default_to_bytes",
    "delivery_from_bytes",
    "delivery_to_bytes",
    "enrolment_from_bytes",
    "enrolment_to_bytes",
    "market_day_from_bytes",
    "market_day_to_bytes",
    "order_from_bytes",
    "order_to_bytes",
    "reading_batch_from_proto",
    "reading_batch_to_proto",
    "registration_from_proto",
    "registration_to_proto",
    "tariff_from_proto",
    "tariff_to_proto",
    "witness_from_proto",
    "witness_to_proto",
]


def registration_from_proto(msg: meters_pb2.MeterRegistration) -> MeterRegistration:
    return MeterRegistration(
        meter_id=msg.meter_id,
        public_key=bytes(msg.public_key),
        interval_minutes=int(msg.interval_minutes),
        pop_signature=bytes(msg.pop_signature),
    )


def registration_to_proto(rec: MeterRegistration) -> meters_pb2.MeterRegistration:
    return meters_pb2.MeterRegistration(
        meter_id=rec.meter_id,
        public_key=rec.public_key,
        interval_minutes=rec.interval_minutes,
        pop_signature=rec.pop_signature,
    )


def reading_batch_from_proto(msg: readings_pb2.ReadingBatch) -> ReadingBatch:
    return ReadingBatch(
        meter_id=msg.meter_id,
        period=msg.period,
        interval_minutes=int(msg.interval_minutes),
        sequence=int(msg.sequence),
        prev_hash=bytes(msg.prev_hash),
        commitments=tuple(bytes(c) for c in msg.commitments),
        range_proof=bytes(msg.range_proof),
        signature=bytes(msg.signature),
    )


def reading_batch_to_proto(rec: ReadingBatch) -> readings_pb2.ReadingBatch:
    return readings_pb2.ReadingBatch(
        meter_id=rec.meter_id,
        period=rec.period,
        interval_minutes=rec.interval_minutes,
        sequence=rec.sequence,
        prev_hash=rec.prev_hash,
        commitments=list(rec.commitments),
        range_proof=rec.range_proof,
        signature=rec.signature,
    )


def tariff_from_proto(msg: tariffs_pb2.Tariff) -> Tariff:
    return Tariff(
        period=msg.period,
        interval_minutes=int(msg.interval_minutes),
        currency=msg.currency,
        fixed_charge=int(msg.fixed_charge),
        import_price=tuple(int(p) for p in msg.import_price),
        export_credit=tuple(int(c) for c in msg.export_credit),
    )


def tariff_to_proto(rec: Tariff) -> tariffs_pb2.Tariff:
    return tariffs_pb2.Tariff(
        period=rec.period,
        interval_minutes=rec.interval_minutes,
        currency=rec.currency,
        fixed_charge=rec.fixed_charge,
        import_price=list(rec.import_price),
        export_credit=list(rec.export_credit),
    )


def bill_from_proto(msg: bills_pb2.Bill) -> Bill:
    return Bill(
        meter_id=msg.meter_id,
        period=msg.period,
        batch_hash=bytes(msg.batch_hash),
        tariff_hash=bytes(msg.tariff_hash),
        total=int(msg.total),
        proof=bytes(msg.proof),
    )


def bill_to_proto(rec: Bill) -> bills_pb2.Bill:
    return bills_pb2.Bill(
        meter_id=rec.meter_id,
        period=rec.period,
        batch_hash=rec.batch_hash,
        tariff_hash=rec.tariff_hash,
        total=rec.total,
        proof=rec.proof,
    )


def _version_2(data: bytes, what: str) -> bytes:
    """``data`` as bytes, if it starts with record version 2 (else RecordFormatError)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise RecordFormatError(f"{what} must be bytes")
    raw = bytes(data)
    if not raw:
        raise RecordFormatError(f"{what} is empty")
    if raw[0] != CYCLE_RECORD_VERSION:
        raise RecordFormatError(
            f"{what} must be a record of version {CYCLE_RECORD_VERSION}; it has version {raw[0]}"
        )
    return raw


def cycle_tariff_from_bytes(data: bytes) -> CycleTariff:
    """A ``cycle_tariff`` field: a :class:`CycleTariff`'s canonical bytes, decoded strictly."""
    return CycleTariff.decode(_version_2(data, "cycle_tariff"))


def cycle_tariff_to_bytes(rec: CycleTariff) -> bytes:
    return rec.encode()


def cycle_bill_from_bytes(data: bytes) -> CycleBill:
    """A ``cycle_bill`` field: a :class:`CycleBill`'s canonical bytes, decoded strictly."""
    return CycleBill.decode(_version_2(data, "cycle_bill"))


def cycle_bill_to_bytes(rec: CycleBill) -> bytes:
    return rec.encode()


def witness_from_proto(msg: witness_pb2.Witness) -> WitnessRegistration:
    """The registration a listed ``Witness`` carries (fields checked syntactically; its
    proof of possession is verified by whoever builds a ``WitnessRegistry`` of it)."""
    from ledger.cosignature import WitnessRegistration

    return WitnessRegistration(msg.name, bytes(msg.public_key), bytes(msg.proof_of_possession))


def witness_to_proto(rec: WitnessRegistration, ledger_index: int) -> witness_pb2.Witness:
    """A registered witness: its ``WITNESS_KEY`` record and that entry's ledger index."""
    return witness_pb2.Witness(
        name=rec.name,
        public_key=rec.public_key,
        proof_of_possession=rec.proof_of_possession,
        ledger_index=ledger_index,
    )


# --------------------------------------------------------------------------- the market


def _record_bytes(data: object, what: str) -> bytes:
    """A ``bytes`` field holding a record: its bytes (RecordFormatError when empty)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise RecordFormatError(f"{what} must be bytes")
    raw = bytes(data)
    if not raw:
        raise RecordFormatError(f"{what} is empty")
    return raw


def enrolment_from_bytes(data: bytes) -> MarketEnrolment:
    """An ``enrolment`` field: a :class:`MarketEnrolment`'s canonical bytes, decoded strictly."""
    return MarketEnrolment.decode(_record_bytes(data, "enrolment"))


def enrolment_to_bytes(rec: MarketEnrolment) -> bytes:
    return rec.encode()


def market_day_from_bytes(data: bytes) -> MarketDay:
    """A ``market_day`` field: a :class:`MarketDay`'s canonical bytes, decoded strictly."""
    return MarketDay.decode(_record_bytes(data, "market_day"))


def market_day_to_bytes(rec: MarketDay) -> bytes:
    return rec.encode()


def order_from_bytes(data: bytes) -> Order:
    """An ``order`` field: an :class:`Order`'s canonical bytes, decoded strictly."""
    return Order.decode(_record_bytes(data, "order"))


def order_to_bytes(rec: Order) -> bytes:
    return rec.encode()


def cancellation_from_bytes(data: bytes) -> OrderCancellation:
    """A ``cancellation`` field: an :class:`OrderCancellation`'s canonical bytes, decoded
    strictly."""
    return OrderCancellation.decode(_record_bytes(data, "cancellation"))


def cancellation_to_bytes(rec: OrderCancellation) -> bytes:
    return rec.encode()


def clearing_from_bytes(data: bytes) -> Clearing:
    """A ``clearing`` field: a :class:`Clearing`'s canonical bytes, decoded strictly."""
    return Clearing.decode(_record_bytes(data, "clearing"))


def clearing_to_bytes(rec: Clearing) -> bytes:
    return rec.encode()


def allocation_from_bytes(data: bytes) -> DeliveryAllocation:
    """An ``allocation`` field: a :class:`DeliveryAllocation`'s canonical bytes, decoded
    strictly."""
    return DeliveryAllocation.decode(_record_bytes(data, "allocation"))


def allocation_to_bytes(rec: DeliveryAllocation) -> bytes:
    return rec.encode()


def delivery_from_bytes(data: bytes) -> Delivery:
    """A ``delivery`` field: a :class:`Delivery`'s canonical bytes, decoded strictly."""
    return Delivery.decode(_record_bytes(data, "delivery"))


def delivery_to_bytes(rec: Delivery) -> bytes:
    return rec.encode()


def delivery_default_from_bytes(data: bytes) -> DeliveryDefault:
    """A ``delivery_default`` field: a :class:`DeliveryDefault`'s canonical bytes, decoded
    strictly."""
    return DeliveryDefault.decode(_record_bytes(data, "delivery_default"))


def delivery_default_to_bytes(rec: DeliveryDefault) -> bytes:
    return rec.encode()
