"""Settlement records: the canonical payloads of the ledger's entries (settlement-v1.md).

Pure (stdlib and ``cryptography``): the meter builds these records, the service
checks and appends them, the verifier replays them. Every record is a frozen
dataclass with ``encode() -> bytes`` and a strict ``decode(bytes)`` that accepts
exactly the bytes ``encode()`` produces:

* a record starts with a u8 record version (:data:`RECORD_VERSION`, 1; the cycle
  tariff and the cycle bill of issue 12 are version 2, :data:`CYCLE_RECORD_VERSION`,
  and share the TARIFF and BILL entry kinds: :func:`decode_record` dispatches on that
  byte, :data:`RECORD_VERSIONS`);
* integers are fixed-width big-endian (u16, u32, u64; i64 two's complement);
* byte strings and UTF-8 strings are ``u32 length || bytes``;
* lists are ``u32 count || items``;
* points (public keys, commitments) are 33 bytes, 32-byte hashes are 32 bytes,
  both without a length prefix; proofs and signatures are length-prefixed.

Constructing a record validates every field (``__post_init__``) and raises
:class:`RecordFormatError` (reason ``RECORD_MALFORMED``), so an instance is always
encodable and ``decode(encode(r)) == r``. Points are checked syntactically here
(33 bytes, prefix 0x02/0x03, x below the field prime); whether a commitment lies
on the curve is checked by :mod:`zkp` when the service parses it (a failure there
is ``PROOF_MALFORMED``), while a meter's public key is checked fully.

Signatures are ECDSA P-256 with SHA-256, DER-encoded and *low-S*
(``s <= n/2``): :meth:`MeterKey.sign` normalises, :func:`verify_meter_signature`
refuses high-S and non-canonical DER, so a third party cannot derive a second
valid signature (and thus a second batch hash) from a meter's batch.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import math
import re
import struct
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, NamedTuple, TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from ledger.encoding import CanonicalReader, CanonicalWriter, utf8_bytes
from ledger.entries import Entry, EntryKind
from settlement.errors import SettlementError
from settlement.fields import check_bytes as _bytes
from settlement.fields import check_int as _int
from settlement.keys import P256PrivateKey
from settlement.periods import (
    MAX_CYCLE_PERIODS,
    MINUTES_PER_DAY,
    RecordFormatError,
    cycle_periods,
    intervals_per_day,
    parse_period,
    period_ordinal,
    validate_period,
)
from zkgrid.errors import InvalidArgumentError, Reason, VerificationError

__all__ = [
    "BILL_CONTEXT_DOMAIN",
    "BILL_PROOF_SIZE",
    "CYCLE_BILL_CONTEXT_DOMAIN",
    "CYCLE_RECORD_VERSION",
    "MAX_BATCH_VALUES",
    "MAX_CIRCUIT_PROOF_BYTES",
    "MAX_CYCLE_PERIODS",
    "MAX_DEMAND_CHARGE",
    "MAX_FIXED_CHARGE",
    "MAX_PLAN_METERS",
    "MAX_RATE",
    "MAX_READING",
    "MAX_REASON_BYTES",
    "MAX_TIERS",
    "MAX_TIER_START",
    "METER_REGISTRATION_DOMAIN",
    "MINUTES_PER_DAY",
    "POINT_SIZE",
    "RANGE_PROOF_BITS",
    "READINGS_CONTEXT_DOMAIN",
    "READING_BATCH_DOMAIN",
    "RECORD_TYPES",
    "RECORD_VERSION",
    "RECORD_VERSIONS",
    "ZERO_HASH",
    "Bill",
    "CycleBill",
    "CycleBillBreakdown",
    "CycleTariff",
    "MeterKey",
    "MeterRegistration",
    "MeterRevocation",
    "ReadingBatch",
    "Record",
    "RecordFormatError",
    "SignatureError",
    "Tariff",
    "Tier",
    "bill_coefficients",
    "bill_proof_context",
    "cycle_bill_proof_context",
    "cycle_periods",
    "decode_record",
    "intervals_per_day",
    "metered_intervals",
    "parse_period",
    "pop_message",
    "reading_proof_context",
    "record_type",
    "validate_meter_id",
    "validate_period",
    "validate_public_key",
    "verify_meter_signature",
]

RECORD_VERSION = 1
POINT_SIZE = 33
HASH_SIZE = 32
ZERO_HASH = bytes(HASH_SIZE)
#: Bit width of the readings' range proofs (settlement-v1.md).
RANGE_PROOF_BITS = 32
#: Bytes of a ``zkp.sigma.LinearCombinationProof`` (nonce point and one scalar).
BILL_PROOF_SIZE = 65
#: Upper bound on a tariff's per-Wh rates (micro-currency per Wh, about 524 per kWh).
#: With readings below 2^32 and at most 1440 intervals, ``|sum p_t*v_t| < 2^62``.
MAX_RATE = 2**19
#: Upper bound on ``|fixed_charge|``: together with :data:`MAX_RATE` every bill fits an i64.
MAX_FIXED_CHARGE = 2**62
MAX_REASON_BYTES = 1024
#: Upper bound on a length-prefixed range proof (a 32-bit proof for 1,024 values is ~1.3 kB).
MAX_RANGE_PROOF_BYTES = 1 << 16
#: Values one batch's range proof covers at most (zkp.rangeproof.MAX_AGGREGATION): a day
#: of intervals has 2T values, so a meter's interval is at least 3 minutes (2 * 480 = 960).
MAX_BATCH_VALUES = 1024
#: DER ECDSA P-256 signatures are 8..72 bytes.
_MIN_DER, _MAX_DER = 8, 72

#: The record version of the cycle tariff and the cycle bill (issue 12; circuits.md).
CYCLE_RECORD_VERSION = 2
#: Tiers of a cycle tariff at most.
MAX_TIERS = 8
#: Meters one cycle tariff's plan lists at most (an empty list is the default plan).
MAX_PLAN_METERS = 10_000
#: Upper bound on a cycle tariff's demand charge (micro-currency per kW): about 1.1 million
#: currency units per kW.
MAX_DEMAND_CHARGE = 2**40
#: A reading is range-proved below 2^32 Wh (:data:`RANGE_PROOF_BITS`).
MAX_READING = 2**RANGE_PROOF_BITS - 1
#: Upper bound on a tier's start (Wh): no cycle's import reaches it (31 days of 480
#: intervals of readings below 2^32: 14,880 * (2^32 - 1) < 2^46), so a higher start could
#: never apply.
MAX_TIER_START = 2**46
#: Upper bound on a cycle bill's (opaque) circuit proof: ``2*ceil(log2 n) + 13`` group
#: elements and scalars of 33 bytes is about 1.6 kB for n = 2^17 multipliers.
MAX_CIRCUIT_PROOF_BYTES = 4096

METER_REGISTRATION_DOMAIN = b"zkgrid/meter-registration v1"
READING_BATCH_DOMAIN = b"zkgrid/reading-batch v1"
READINGS_CONTEXT_DOMAIN = b"zkgrid/readings v1"
BILL_CONTEXT_DOMAIN = b"zkgrid/bill v1"
CYCLE_BILL_CONTEXT_DOMAIN = b"zkgrid/cycle-bill v1"

_FIELD_PRIME = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
_CURVE_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_HALF_ORDER = _CURVE_ORDER // 2

_METER_ID = re.compile(r"[A-Za-z0-9._-]{1,64}", re.ASCII)
_CURRENCY = re.compile(r"[A-Z]{3}", re.ASCII)

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1



def metered_intervals(interval_minutes: object) -> int:
    """T for a meter's interval: :func:`intervals_per_day`, and a day's 2T values must fit
    one batch's range proof (:data:`MAX_BATCH_VALUES`), else no batch could ever verify
    and the meter id would be lost (ids are never reused)."""
    intervals = intervals_per_day(interval_minutes)
    if 2 * intervals > MAX_BATCH_VALUES:
        raise RecordFormatError(
            f"a day of {interval_minutes}-minute intervals is {2 * intervals} values; one"
            f" batch proves at most {MAX_BATCH_VALUES}: use an interval of 3 minutes or more"
        )
    return intervals

class SignatureError(SettlementError, VerificationError):
    """A meter signature (or proof of possession) that does not verify."""

    reason = Reason.SIGNATURE_INVALID


# --------------------------------------------------------------------------- field checks


def _point(value: object, what: str) -> bytes:
    data = _bytes(value, what, size=POINT_SIZE)
    if data[0] not in (2, 3):
        raise RecordFormatError(f"{what} is not a compressed point encoding")
    if int.from_bytes(data[1:], "big") >= _FIELD_PRIME:
        raise RecordFormatError(f"{what}: x-coordinate is not below the field prime")
    return data


def validate_meter_id(meter_id: object) -> str:
    """A meter id: 1..64 characters of ``[A-Za-z0-9._-]``; raises :class:`RecordFormatError`."""
    if not isinstance(meter_id, str) or _METER_ID.fullmatch(meter_id) is None:
        raise RecordFormatError("meter id must be 1..64 characters of [A-Za-z0-9._-]")
    return meter_id


def _text(value: object, what: str, max_bytes: int) -> str:
    return utf8_bytes(value, what, max_bytes, RecordFormatError).decode("utf-8")


def _check_prices(tariff: Tariff | CycleTariff, intervals: int) -> None:
    """The currency, the fixed charge and one import price and export credit per interval
    (0..:data:`MAX_RATE`) of a tariff of either version."""
    if not isinstance(tariff.currency, str) or _CURRENCY.fullmatch(tariff.currency) is None:
        raise RecordFormatError("currency must be an ISO 4217 code (three letters A-Z)")
    _int(tariff.fixed_charge, "fixed_charge", -MAX_FIXED_CHARGE, MAX_FIXED_CHARGE)
    for name in ("import_price", "export_credit"):
        rates = getattr(tariff, name)
        if not isinstance(rates, tuple):
            raise RecordFormatError(f"{name} must be a tuple of integers")
        if len(rates) != intervals:
            raise RecordFormatError(f"{name} needs {intervals} rates, got {len(rates)}")
        for t, rate in enumerate(rates):
            _int(rate, f"{name}[{t}]", 0, MAX_RATE)


def _write_prices(w: CanonicalWriter, tariff: Tariff | CycleTariff) -> None:
    """``currency || i64 fixed_charge || u32 T || u64 import_price... || u32 T || u64
    export_credit...``: the part both tariff versions encode alike."""
    w.text(tariff.currency)
    w.i64(tariff.fixed_charge)
    for rates in (tariff.import_price, tariff.export_credit):
        w.u32(len(rates))
        for rate in rates:
            w.u64(rate)


# --------------------------------------------------------------------------- writer / reader


# Every u32 length of a text field is bounded before reading it (no huge allocations).
_MAX_ID_BYTES = 64
_MAX_PERIOD_BYTES = 10
_MAX_CURRENCY_BYTES = 3

_R = TypeVar("_R", bound="_RecordBase")


class _RecordBase(ABC):
    """Shared helpers: ``to_entry`` and the strict decode wrapper."""

    __slots__ = ()

    KIND: ClassVar[EntryKind]

    @abstractmethod
    def encode(self) -> bytes:
        """The record's canonical bytes."""

    def to_entry(self) -> Entry:
        """The ledger entry carrying this record."""
        return Entry(self.KIND, self.encode())

    @classmethod
    def _decode_with(
        cls: type[_R],
        data: object,
        parse: Callable[[CanonicalReader], _R],
        version: int = RECORD_VERSION,
    ) -> _R:
        reader = CanonicalReader(data, cls.__name__, version, RecordFormatError)
        record = parse(reader)
        reader.finish()
        return record


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class MeterRegistration(_RecordBase):
    """A meter's id, public key and interval length, with a proof of possession."""

    KIND: ClassVar[EntryKind] = EntryKind.METER_REGISTRATION

    meter_id: str
    public_key: bytes
    interval_minutes: int
    pop_signature: bytes

    def __post_init__(self) -> None:
        validate_meter_id(self.meter_id)
        validate_public_key(self.public_key)
        metered_intervals(self.interval_minutes)
        _bytes(self.pop_signature, "pop signature", max_size=_MAX_DER)

    def _unsigned(self) -> CanonicalWriter:
        w = CanonicalWriter(RECORD_VERSION)
        w.text(self.meter_id)
        w.fixed(self.public_key)
        w.u16(self.interval_minutes)
        return w

    def signed_bytes(self) -> bytes:
        """What the proof of possession signs: the domain, then every field but the signature."""
        return pop_message(self.meter_id, self.public_key, self.interval_minutes)

    def encode(self) -> bytes:
        w = self._unsigned()
        w.blob(self.pop_signature)
        return w.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> MeterRegistration:
        def parse(r: CanonicalReader) -> MeterRegistration:
            return cls(
                meter_id=r.text("meter_id", _MAX_ID_BYTES),
                public_key=r.fixed(POINT_SIZE, "public_key"),
                interval_minutes=r.u16("interval_minutes"),
                pop_signature=r.blob("pop_signature", _MAX_DER),
            )

        return cls._decode_with(data, parse)

    @classmethod
    def create(cls, key: MeterKey, meter_id: str, interval_minutes: int) -> MeterRegistration:
        """Register ``key`` under ``meter_id``, signing the proof of possession."""
        message = pop_message(meter_id, key.public_key, interval_minutes)
        return cls(meter_id, key.public_key, interval_minutes, key.sign(message))

    def verify_pop(self) -> None:
        """Raise :class:`SignatureError` unless the proof of possession verifies."""
        verify_meter_signature(self.public_key, self.signed_bytes(), self.pop_signature)


def pop_message(meter_id: str, public_key: bytes, interval_minutes: int) -> bytes:
    """``"zkgrid/meter-registration v1" || version || meter_id || public_key || interval``."""
    validate_meter_id(meter_id)
    _point(public_key, "public key")
    metered_intervals(interval_minutes)
    w = CanonicalWriter(RECORD_VERSION)
    w.text(meter_id)
    w.fixed(public_key)
    w.u16(interval_minutes)
    return METER_REGISTRATION_DOMAIN + w.getvalue()


@dataclass(frozen=True, slots=True)
class MeterRevocation(_RecordBase):
    """The utility withdraws a meter: no further batches or bills are accepted for it."""

    KIND: ClassVar[EntryKind] = EntryKind.METER_REVOCATION

    meter_id: str
    reason: str

    def __post_init__(self) -> None:
        validate_meter_id(self.meter_id)
        _text(self.reason, "revocation reason", MAX_REASON_BYTES)

    def encode(self) -> bytes:
        w = CanonicalWriter(RECORD_VERSION)
        w.text(self.meter_id)
        w.text(self.reason)
        return w.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> MeterRevocation:
        def parse(r: CanonicalReader) -> MeterRevocation:
            return cls(
                meter_id=r.text("meter_id", _MAX_ID_BYTES),
                reason=r.text("reason", MAX_REASON_BYTES),
            )

        return cls._decode_with(data, parse)


@dataclass(frozen=True, slots=True)
class ReadingBatch(_RecordBase):
    """One meter's committed readings for one period, range-proved and signed.

    ``commitments`` holds 2T 33-byte points in the order import_0, export_0,
    import_1, export_1, ... with T = 1440 / interval_minutes.
    """

    KIND: ClassVar[EntryKind] = EntryKind.READING_BATCH

    meter_id: str
    period: str
    interval_minutes: int
    sequence: int
    prev_hash: bytes
    commitments: tuple[bytes, ...]
    range_proof: bytes
    signature: bytes

    def __post_init__(self) -> None:
        validate_meter_id(self.meter_id)
        validate_period(self.period)
        intervals = metered_intervals(self.interval_minutes)
        _int(self.sequence, "sequence", 0, 2**64 - 1)
        _bytes(self.prev_hash, "prev_hash", size=HASH_SIZE)
        if self.sequence == 0 and self.prev_hash != ZERO_HASH:
            raise RecordFormatError("prev_hash of sequence 0 must be 32 zero bytes")
        if not isinstance(self.commitments, tuple):
            raise RecordFormatError("commitments must be a tuple of 33-byte points")
        if len(self.commitments) != 2 * intervals:
            raise RecordFormatError(
                f"expected {2 * intervals} commitments (2 per interval), got "
                f"{len(self.commitments)}"
            )
        for i, c in enumerate(self.commitments):
            _point(c, f"commitment {i}")
        _bytes(self.range_proof, "range proof", max_size=MAX_RANGE_PROOF_BYTES)
        if not self.range_proof:
            raise RecordFormatError("range proof is empty")
        _bytes(self.signature, "signature", max_size=_MAX_DER)

    @property
    def intervals(self) -> int:
        """T, the number of intervals of the period."""
        return len(self.commitments) // 2

    def _unsigned(self) -> CanonicalWriter:
        w = CanonicalWriter(RECORD_VERSION)
        w.text(self.meter_id)
        w.text(self.period)
        w.u16(self.interval_minutes)
        w.u64(self.sequence)
        w.fixed(self.prev_hash)
        w.u32(len(self.commitments))
        for c in self.commitments:
            w.fixed(c)
        w.blob(self.range_proof)
        return w

    def signed_bytes(self) -> bytes:
        """``"zkgrid/reading-batch v1" || encode()`` without the trailing signature field."""
        return READING_BATCH_DOMAIN + self._unsigned().getvalue()

    def encode(self) -> bytes:
        w = self._unsigned()
        w.blob(self.signature)
        return w.getvalue()

    def batch_hash(self) -> bytes:
        """SHA-256 of the encoded record, signature included: the chain link and bill anchor."""
        return hashlib.sha256(self.encode()).digest()

    def proof_context(self) -> bytes:
        """The context bound into this batch's range proof."""
        return reading_proof_context(self.meter_id, self.period, self.sequence)

    def verify_signature(self, public_key: bytes) -> None:
        """Raise :class:`SignatureError` unless ``public_key`` signed this batch."""
        verify_meter_signature(public_key, self.signed_bytes(), self.signature)

    @classmethod
    def create(
        cls,
        key: MeterKey,
        *,
        meter_id: str,
        period: str,
        interval_minutes: int,
        sequence: int,
        prev_hash: bytes,
        commitments: Sequence[bytes],
        range_proof: bytes,
    ) -> ReadingBatch:
        """Build and sign a batch with ``key``."""
        unsigned = cls(
            meter_id=meter_id,
            period=period,
            interval_minutes=interval_minutes,
            sequence=sequence,
            prev_hash=prev_hash,
            commitments=tuple(commitments),
            range_proof=range_proof,
            signature=b"\x30\x06\x02\x01\x01\x02\x01\x01",  # placeholder, replaced below
        )
        return unsigned.with_signature(key.sign(unsigned.signed_bytes()))

    def with_signature(self, signature: bytes) -> ReadingBatch:
        return ReadingBatch(
            self.meter_id,
            self.period,
            self.interval_minutes,
            self.sequence,
            self.prev_hash,
            self.commitments,
            self.range_proof,
            signature,
        )

    @classmethod
    def decode(cls, data: bytes) -> ReadingBatch:
        def parse(r: CanonicalReader) -> ReadingBatch:
            meter_id = r.text("meter_id", _MAX_ID_BYTES)
            period = r.text("period", _MAX_PERIOD_BYTES)
            interval_minutes = r.u16("interval_minutes")
            sequence = r.u64("sequence")
            prev_hash = r.fixed(HASH_SIZE, "prev_hash")
            count = r.count("commitments", 2 * MINUTES_PER_DAY)
            commitments = tuple(r.fixed(POINT_SIZE, "commitments") for _ in range(count))
            return cls(
                meter_id=meter_id,
                period=period,
                interval_minutes=interval_minutes,
                sequence=sequence,
                prev_hash=prev_hash,
                commitments=commitments,
                range_proof=r.blob("range_proof", MAX_RANGE_PROOF_BYTES),
                signature=r.blob("signature", _MAX_DER),
            )

        return cls._decode_with(data, parse)


@dataclass(frozen=True, slots=True)
class Tariff(_RecordBase):
    """The utility's prices for a period: rates in micro-currency per Wh, fixed charge in
    micro-currency."""

    KIND: ClassVar[EntryKind] = EntryKind.TARIFF

    period: str
    interval_minutes: int
    currency: str
    fixed_charge: int
    import_price: tuple[int, ...]
    export_credit: tuple[int, ...]

    def __post_init__(self) -> None:
        validate_period(self.period)
        _check_prices(self, intervals_per_day(self.interval_minutes))

    @property
    def intervals(self) -> int:
        return len(self.import_price)

    def encode(self) -> bytes:
        w = CanonicalWriter(RECORD_VERSION)
        w.text(self.period)
        w.u16(self.interval_minutes)
        _write_prices(w, self)
        return w.getvalue()

    def tariff_hash(self) -> bytes:
        """SHA-256 of the encoded tariff record (what a bill points to)."""
        return hashlib.sha256(self.encode()).digest()

    def coefficients(self) -> list[int]:
        return bill_coefficients(self)

    def bill_total(self, imports: Sequence[int], exports: Sequence[int]) -> int:
        """The plaintext bill ``fixed + sum price_t*import_t - sum credit_t*export_t``.

        For meters and tests (the service never sees readings).
        """
        if len(imports) != self.intervals or len(exports) != self.intervals:
            raise InvalidArgumentError("one import and one export reading per interval")
        return (
            self.fixed_charge
            + sum(p * v for p, v in zip(self.import_price, imports, strict=True))
            - sum(c * v for c, v in zip(self.export_credit, exports, strict=True))
        )

    @classmethod
    def decode(cls, data: bytes) -> Tariff:
        def rates(r: CanonicalReader, name: str) -> tuple[int, ...]:
            count = r.count(name, MINUTES_PER_DAY)
            return tuple(r.u64(name) for _ in range(count))

        def parse(r: CanonicalReader) -> Tariff:
            return cls(
                period=r.text("period", _MAX_PERIOD_BYTES),
                interval_minutes=r.u16("interval_minutes"),
                currency=r.text("currency", _MAX_CURRENCY_BYTES),
                fixed_charge=r.i64("fixed_charge"),
                import_price=rates(r, "import_price"),
                export_credit=rates(r, "export_credit"),
            )

        return cls._decode_with(data, parse)


@dataclass(frozen=True, slots=True)
class Bill(_RecordBase):
    """A meter's bill for a period: the total and the proof it matches the ledger's commitments."""

    KIND: ClassVar[EntryKind] = EntryKind.BILL

    meter_id: str
    period: str
    batch_hash: bytes
    tariff_hash: bytes
    total: int
    proof: bytes

    def __post_init__(self) -> None:
        validate_meter_id(self.meter_id)
        validate_period(self.period)
        _bytes(self.batch_hash, "batch_hash", size=HASH_SIZE)
        _bytes(self.tariff_hash, "tariff_hash", size=HASH_SIZE)
        _int(self.total, "total", -(2**63), 2**63 - 1)
        _bytes(self.proof, "bill proof", size=BILL_PROOF_SIZE)

    def encode(self) -> bytes:
        w = CanonicalWriter(RECORD_VERSION)
        w.text(self.meter_id)
        w.text(self.period)
        w.fixed(self.batch_hash)
        w.fixed(self.tariff_hash)
        w.i64(self.total)
        w.blob(self.proof)
        return w.getvalue()

    def proof_context(self) -> bytes:
        return bill_proof_context(self.batch_hash, self.tariff_hash)

    @classmethod
    def decode(cls, data: bytes) -> Bill:
        def parse(r: CanonicalReader) -> Bill:
            return cls(
                meter_id=r.text("meter_id", _MAX_ID_BYTES),
                period=r.text("period", _MAX_PERIOD_BYTES),
                batch_hash=r.fixed(HASH_SIZE, "batch_hash"),
                tariff_hash=r.fixed(HASH_SIZE, "tariff_hash"),
                total=r.i64("total"),
                proof=r.blob("proof", BILL_PROOF_SIZE),
            )

        return cls._decode_with(data, parse)


# --------------------------------------------------------------------------- records v2: cycles


class Tier(NamedTuple):
    """One block of a cycle tariff: from ``start_wh`` of the cycle's total import (Wh) on,
    each Wh costs ``price`` micro-currency on top of the time-of-use price."""

    start_wh: int
    price: int


@dataclass(frozen=True, slots=True)
class CycleBillBreakdown:
    """The parts of a cycle bill, computed in plain integers from the readings
    (:meth:`CycleTariff.bill_breakdown`: for meters and tests; the service never sees
    readings). Amounts in micro-currency, energies in Wh."""

    #: The tariff's fixed charge (per cycle).
    fixed: int
    #: ``sum p_t * import`` over every interval of every period of the cycle.
    time_of_use: int
    #: ``I``, the cycle's total import.
    total_import: int
    #: Wh of ``I`` in each tier (``clamp(I - start_i, 0, start_{i+1} - start_i)``).
    tier_wh: tuple[int, ...]
    #: ``tier_wh[i] * price_i`` for each tier.
    tier_charges: tuple[int, ...]
    #: The cycle's highest interval import.
    demand_wh: int
    #: ``demand_wh * demand_rate_per_wh``.
    demand_charge: int
    #: ``sum c_t * export`` over the cycle.
    export_credit: int

    @property
    def tier_charge(self) -> int:
        """The tiers' charges together."""
        return sum(self.tier_charges)

    @property
    def total(self) -> int:
        """``fixed + time_of_use + tier_charge + demand_charge - export_credit``."""
        return (
            self.fixed
            + self.time_of_use
            + self.tier_charge
            + self.demand_charge
            - self.export_credit
        )


def _demand_multiple(interval_minutes: int) -> int:
    """The demand charges (micro-currency per kW) whose charge per Wh of the highest interval
    import, ``demand_charge * 60 / (interval_minutes * 1000)``, is whole: multiples of this."""
    denominator = interval_minutes * 1000
    return denominator // math.gcd(60, denominator)


def _tier_amounts(tiers: Sequence[tuple[int, int]], total_import: int) -> tuple[int, ...]:
    out = []
    for i, (start, _price) in enumerate(tiers):
        above = max(total_import - start, 0)
        if i + 1 < len(tiers):
            above = min(above, tiers[i + 1][0] - start)
        out.append(above)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class CycleTariff(_RecordBase):
    """A tariff plan's prices for a billing cycle (record version 2, entry kind TARIFF).

    ``plan`` names the plan (``residential-tiered``); ``meters`` lists the meters it applies
    to, strictly ascending, or is empty for the default plan (every meter that no plan of an
    overlapping cycle lists: settlement-v1.md, R17, R21). The cycle is the periods
    ``first_period..last_period`` (consecutive UTC days, 1..:data:`MAX_CYCLE_PERIODS`).
    Units: ``import_price`` and ``export_credit`` (one rate per interval of the day, applying
    on every day of the cycle) and the tier prices in micro-currency per Wh, tier starts in
    Wh, ``fixed_charge`` in micro-currency per cycle, ``demand_charge`` in micro-currency per
    kW. The bill of readings ``imp[d][t]``, ``exp[d][t]`` (period ``d``, interval ``t``)::

        B = fixed + sum p_t*imp[d][t] + sum_i r_i*u_i + delta*D - sum c_t*exp[d][t]

    with ``I = sum imp[d][t]`` the cycle's import, ``u_i = clamp(I - s_i, 0, s_{i+1} - s_i)``
    the Wh of tier ``i`` (the last tier unbounded), ``D = max imp[d][t]`` the highest interval
    import and ``delta`` = :attr:`demand_rate_per_wh` = ``demand_charge * 60 /
    (interval_minutes * 1000)`` (kW = Wh * 60 / interval_minutes / 1000). The tier charge is
    added to the time-of-use price (a purely tiered tariff has zero time-of-use prices).
    Tier prices are monotone: non-decreasing (inclining blocks, a convex cost) or
    non-increasing (declining blocks, a concave one): :attr:`tier_kind`.

    **Bounds: every bill is an exact i64.** A reading is below 2^32 (its batch's range proof),
    a meter's interval is at least 3 minutes (:func:`metered_intervals`, also required here:
    T <= 480) and a cycle has at most 31 periods, so a cycle has ``N = P*T <= 14,880 < 2^14``
    import values and ``I <= N * (2^32 - 1) < 2^46`` (:data:`MAX_TIER_START`). The field
    bounds of version 1 do not suffice over a cycle: ``sum p_t*imp`` alone could reach
    ``2^14 * 2^19 * 2^32 = 2^65``. A lower :data:`MAX_RATE` for version 2 would refuse real
    tariffs in currencies of small units (300 KRW/kWh is 300,000 micro-KRW/Wh), so the rates
    keep the bounds of version 1 and the record refuses itself when one of its bills could
    leave the i64 range. ``B`` is non-decreasing in every import and non-increasing in every
    export (all prices, tier prices and the demand rate are >= 0), so its extremes are
    attained and exact (:meth:`bill_bounds`, with ``V = 2^32 - 1``)::

        max B = fixed + P*V*sum p_t + tier_cost(P*T*V) + delta*V   (every import V)
        min B = fixed - P*V*sum c_t                                 (every export V)

    and both must lie in ``[-2^63, 2^63)``. Every part of a breakdown (time of use, each tier
    charge, the demand charge, the export credit) lies in ``[0, 2^63)`` too. For scale: over
    31 days of 15-minute intervals ``P*T*V < 1.28e13`` Wh, so the highest time-of-use price
    plus the highest tier price may reach about 720 currency units per kWh (144 with
    3-minute intervals). Further bounds: ``|fixed_charge| <=`` :data:`MAX_FIXED_CHARGE`,
    rates and tier prices ``<=`` :data:`MAX_RATE`, ``demand_charge <=``
    :data:`MAX_DEMAND_CHARGE`, at most :data:`MAX_TIERS` tiers and :data:`MAX_PLAN_METERS`
    meters.
    """

    KIND: ClassVar[EntryKind] = EntryKind.TARIFF
    VERSION: ClassVar[int] = CYCLE_RECORD_VERSION

    plan: str
    meters: tuple[str, ...]
    first_period: str
    last_period: str
    interval_minutes: int
    currency: str
    fixed_charge: int
    import_price: tuple[int, ...]
    export_credit: tuple[int, ...]
    tiers: tuple[tuple[int, int], ...]
    demand_charge: int

    def __post_init__(self) -> None:
        if not isinstance(self.plan, str) or _METER_ID.fullmatch(self.plan) is None:
            raise RecordFormatError("plan must be 1..64 characters of [A-Za-z0-9._-]")
        self._check_meters()
        cycle_periods(self.first_period, self.last_period)
        _check_prices(self, metered_intervals(self.interval_minutes))
        self._check_tiers()
        _int(self.demand_charge, "demand_charge", 0, MAX_DEMAND_CHARGE)
        multiple = _demand_multiple(self.interval_minutes)
        if self.demand_charge % multiple:
            raise RecordFormatError(
                f"demand_charge must be a multiple of {multiple} micro-currency per kW with"
                f" {self.interval_minutes}-minute intervals (so that its charge per Wh of the"
                " highest interval import is a whole number)"
            )
        low, high = self.bill_bounds()
        if high > _I64_MAX or low < _I64_MIN:
            raise RecordFormatError(
                f"a bill of this tariff can leave the i64 range (readings up to 2^32 - 1 Wh in"
                f" each of {len(self.periods)} x {self.intervals} intervals): lower its prices or"
                " charges, or shorten its cycle"
            )

    def _check_meters(self) -> None:
        if not isinstance(self.meters, tuple):
            raise RecordFormatError("meters must be a tuple of meter ids")
        if len(self.meters) > MAX_PLAN_METERS:
            raise RecordFormatError(f"a plan lists at most {MAX_PLAN_METERS} meters")
        for i, meter_id in enumerate(self.meters):
            validate_meter_id(meter_id)
            if i and self.meters[i - 1] >= meter_id:
                raise RecordFormatError(
                    f"meters must be strictly ascending (sorted, no repeats): {meter_id!r}"
                    f" follows {self.meters[i - 1]!r}"
                )

    def _check_tiers(self) -> None:
        if not isinstance(self.tiers, tuple):
            raise RecordFormatError("tiers must be a tuple of (start_wh, price) pairs")
        if len(self.tiers) > MAX_TIERS:
            raise RecordFormatError(f"a tariff has at most {MAX_TIERS} tiers")
        for i, tier in enumerate(self.tiers):
            if not isinstance(tier, tuple) or len(tier) != 2:
                raise RecordFormatError(f"tiers[{i}] must be a (start_wh, price) pair")
            start = _int(tier[0], f"tiers[{i}] start_wh", 0, MAX_TIER_START)
            _int(tier[1], f"tiers[{i}] price", 0, MAX_RATE)
            if i == 0 and start != 0:
                raise RecordFormatError("the first tier must start at 0 Wh")
            if i and start <= self.tiers[i - 1][0]:
                raise RecordFormatError(
                    f"tier starts must be strictly increasing: tiers[{i}] starts at {start} Wh,"
                    f" tiers[{i - 1}] at {self.tiers[i - 1][0]} Wh"
                )
        if self.tiers and self.tier_kind is None:
            raise RecordFormatError(
                "tier prices must be monotone: non-decreasing (inclining blocks) or"
                " non-increasing (declining blocks), not rising and falling"
            )

    # ----------------------------------------------------------------- the cycle and the plan

    @property
    def periods(self) -> tuple[str, ...]:
        """The periods of the cycle, in order."""
        return cycle_periods(self.first_period, self.last_period)

    @property
    def intervals(self) -> int:
        """T, the number of intervals of a period."""
        return len(self.import_price)

    @property
    def is_default(self) -> bool:
        """The default plan: it lists no meters."""
        return not self.meters

    def lists(self, meter_id: str) -> bool:
        """Whether the plan lists ``meter_id`` (a default plan lists none)."""
        i = bisect.bisect_left(self.meters, meter_id)
        return i < len(self.meters) and self.meters[i] == meter_id

    def applies_to(self, meter_id: str) -> bool:
        """Whether this record applies to ``meter_id`` on its own: the plan lists it, or it is
        the default plan. The rules add that a default plan applies only to a meter no plan of
        an overlapping cycle lists (settlement-v1.md, R21)."""
        return self.is_default or self.lists(meter_id)

    def overlaps(self, other: CycleTariff | CycleBill) -> bool:
        """Whether the cycles of ``self`` and ``other`` share a period."""
        return (
            period_ordinal(self.first_period) <= period_ordinal(other.last_period)
            and period_ordinal(other.first_period) <= period_ordinal(self.last_period)
        )

    # ----------------------------------------------------------------- the charges

    @property
    def tier_kind(self) -> str | None:
        """``"inclining"`` (non-decreasing prices; all equal counts as inclining),
        ``"declining"`` (non-increasing), or ``None`` without tiers (or, for fields a record
        refuses, prices that rise and fall)."""
        if not self.tiers:
            return None
        prices = [price for _start, price in self.tiers]
        pairs = list(itertools.pairwise(prices))
        if all(a <= b for a, b in pairs):
            return "inclining"
        if all(a >= b for a, b in pairs):
            return "declining"
        return None

    @property
    def demand_rate_per_wh(self) -> int:
        """``demand_charge * 60 / (interval_minutes * 1000)``: micro-currency per Wh of the
        cycle's highest interval import (whole: the record refuses another demand charge)."""
        return self.demand_charge * 60 // (self.interval_minutes * 1000)

    def tier_amounts(self, total_import: int) -> tuple[int, ...]:
        """Wh of a cycle import ``total_import`` in each tier."""
        _int(total_import, "total_import", 0, 2**64 - 1)
        return _tier_amounts(self.tiers, total_import)

    def tier_cost(self, total_import: int) -> int:
        """``sum_i price_i * u_i``: the tiers' charge for a cycle import ``total_import``."""
        amounts = self.tier_amounts(total_import)
        return sum(u * price for u, (_start, price) in zip(amounts, self.tiers, strict=True))

    def bill_bounds(self) -> tuple[int, int]:
        """The smallest and the largest bill of any readings below 2^32 (class docstring)."""
        days = len(self.periods)
        most = days * MAX_READING
        largest = (
            self.fixed_charge
            + most * sum(self.import_price)
            + self.tier_cost(most * self.intervals)
            + self.demand_rate_per_wh * MAX_READING
        )
        return self.fixed_charge - most * sum(self.export_credit), largest

    def bill_breakdown(
        self, imports: Sequence[Sequence[int]], exports: Sequence[Sequence[int]]
    ) -> CycleBillBreakdown:
        """The plaintext bill of the cycle: ``imports`` and ``exports`` hold one list per
        period of the cycle, in order, each of T readings (Wh, ``0 <= v < 2^32``).

        For meters and tests (the service never sees readings); errors name positions only.
        """
        days = len(self.periods)
        for name, table in (("imports", imports), ("exports", exports)):
            if isinstance(table, str | bytes) or len(table) != days:
                raise InvalidArgumentError(f"{name}: one list of readings per period ({days})")
            for d, day in enumerate(table):
                if isinstance(day, str | bytes) or len(day) != self.intervals:
                    raise InvalidArgumentError(
                        f"{name}[{d}]: one reading per interval ({self.intervals})"
                    )
                for t, value in enumerate(day):
                    if isinstance(value, bool) or not isinstance(value, int):
                        raise InvalidArgumentError(f"{name}[{d}][{t}] must be an integer")
                    if not 0 <= value <= MAX_READING:
                        raise InvalidArgumentError(f"{name}[{d}][{t}] is outside [0, 2^32)")
        time_of_use = sum(
            p * v for day in imports for p, v in zip(self.import_price, day, strict=True)
        )
        credit = sum(c * v for day in exports for c, v in zip(self.export_credit, day, strict=True))
        total_import = sum(sum(day) for day in imports)
        tier_wh = _tier_amounts(self.tiers, total_import)
        demand_wh = max(max(day) for day in imports)
        return CycleBillBreakdown(
            fixed=self.fixed_charge,
            time_of_use=time_of_use,
            total_import=total_import,
            tier_wh=tier_wh,
            tier_charges=tuple(u * p for u, (_s, p) in zip(tier_wh, self.tiers, strict=True)),
            demand_wh=demand_wh,
            demand_charge=demand_wh * self.demand_rate_per_wh,
            export_credit=credit,
        )

    # ----------------------------------------------------------------- encoding

    def encode(self) -> bytes:
        w = CanonicalWriter(CYCLE_RECORD_VERSION)
        w.text(self.plan)
        w.u32(len(self.meters))
        for meter_id in self.meters:
            w.text(meter_id)
        w.text(self.first_period)
        w.text(self.last_period)
        w.u16(self.interval_minutes)
        _write_prices(w, self)
        w.u32(len(self.tiers))
        for start, price in self.tiers:
            w.u64(start)
            w.u64(price)
        w.u64(self.demand_charge)
        return w.getvalue()

    def tariff_hash(self) -> bytes:
        """SHA-256 of the encoded record (what a cycle bill points to)."""
        return hashlib.sha256(self.encode()).digest()

    @classmethod
    def decode(cls, data: bytes) -> CycleTariff:
        def rates(r: CanonicalReader, name: str) -> tuple[int, ...]:
            count = r.count(name, MINUTES_PER_DAY)
            return tuple(r.u64(name) for _ in range(count))

        def parse(r: CanonicalReader) -> CycleTariff:
            plan = r.text("plan", _MAX_ID_BYTES)
            count = r.count("meters", MAX_PLAN_METERS)
            meters = tuple(r.text("meters", _MAX_ID_BYTES) for _ in range(count))
            first = r.text("first_period", _MAX_PERIOD_BYTES)
            last = r.text("last_period", _MAX_PERIOD_BYTES)
            interval_minutes = r.u16("interval_minutes")
            currency = r.text("currency", _MAX_CURRENCY_BYTES)
            fixed_charge = r.i64("fixed_charge")
            import_price = rates(r, "import_price")
            export_credit = rates(r, "export_credit")
            tier_count = r.count("tiers", MAX_TIERS)
            tiers = tuple(Tier(r.u64("tiers"), r.u64("tiers")) for _ in range(tier_count))
            return cls(
                plan=plan,
                meters=meters,
                first_period=first,
                last_period=last,
                interval_minutes=interval_minutes,
                currency=currency,
                fixed_charge=fixed_charge,
                import_price=import_price,
                export_credit=export_credit,
                tiers=tiers,
                demand_charge=r.u64("demand_charge"),
            )

        return cls._decode_with(data, parse, CYCLE_RECORD_VERSION)


@dataclass(frozen=True, slots=True)
class CycleBill(_RecordBase):
    """A meter's bill for a billing cycle (record version 2, entry kind BILL): the hash of its
    batch of every period of the cycle (in period order), the cycle tariff's hash, the total
    (micro-currency) and the circuit proof that the total is that tariff's bill of the
    batches' committed readings. The proof is opaque here (1..:data:`MAX_CIRCUIT_PROOF_BYTES`
    bytes); ``circuits/`` makes and verifies it with :meth:`proof_context`."""

    KIND: ClassVar[EntryKind] = EntryKind.BILL
    VERSION: ClassVar[int] = CYCLE_RECORD_VERSION

    meter_id: str
    first_period: str
    last_period: str
    batch_hashes: tuple[bytes, ...]
    tariff_hash: bytes
    total: int
    proof: bytes

    def __post_init__(self) -> None:
        validate_meter_id(self.meter_id)
        periods = cycle_periods(self.first_period, self.last_period)
        if not isinstance(self.batch_hashes, tuple):
            raise RecordFormatError("batch_hashes must be a tuple of 32-byte hashes")
        if len(self.batch_hashes) != len(periods):
            raise RecordFormatError(
                f"the cycle {self.first_period}..{self.last_period} has {len(periods)} periods;"
                f" the bill names {len(self.batch_hashes)} batch hashes (one per period)"
            )
        for i, h in enumerate(self.batch_hashes):
            _bytes(h, f"batch_hashes[{i}]", size=HASH_SIZE)
        _bytes(self.tariff_hash, "tariff_hash", size=HASH_SIZE)
        _int(self.total, "total", _I64_MIN, _I64_MAX)
        _bytes(self.proof, "circuit proof", max_size=MAX_CIRCUIT_PROOF_BYTES)
        if not self.proof:
            raise RecordFormatError("circuit proof is empty")

    @property
    def periods(self) -> tuple[str, ...]:
        """The periods of the cycle, in order (``batch_hashes[i]`` is of ``periods[i]``)."""
        return cycle_periods(self.first_period, self.last_period)

    def encode(self) -> bytes:
        w = CanonicalWriter(CYCLE_RECORD_VERSION)
        w.text(self.meter_id)
        w.text(self.first_period)
        w.text(self.last_period)
        w.u32(len(self.batch_hashes))
        for h in self.batch_hashes:
            w.fixed(h)
        w.fixed(self.tariff_hash)
        w.i64(self.total)
        w.blob(self.proof)
        return w.getvalue()

    def proof_context(self) -> bytes:
        """The context bound into the bill's circuit proof (:func:`cycle_bill_proof_context`)."""
        return cycle_bill_proof_context(
            self.meter_id, self.first_period, self.last_period, self.batch_hashes, self.tariff_hash
        )

    @classmethod
    def decode(cls, data: bytes) -> CycleBill:
        def parse(r: CanonicalReader) -> CycleBill:
            meter_id = r.text("meter_id", _MAX_ID_BYTES)
            first = r.text("first_period", _MAX_PERIOD_BYTES)
            last = r.text("last_period", _MAX_PERIOD_BYTES)
            count = r.count("batch_hashes", MAX_CYCLE_PERIODS)
            hashes = tuple(r.fixed(HASH_SIZE, "batch_hashes") for _ in range(count))
            return cls(
                meter_id=meter_id,
                first_period=first,
                last_period=last,
                batch_hashes=hashes,
                tariff_hash=r.fixed(HASH_SIZE, "tariff_hash"),
                total=r.i64("total"),
                proof=r.blob("proof", MAX_CIRCUIT_PROOF_BYTES),
            )

        return cls._decode_with(data, parse, CYCLE_RECORD_VERSION)


Record = (
    MeterRegistration | MeterRevocation | ReadingBatch | Tariff | Bill | CycleTariff | CycleBill
)

#: The version-1 record type of each settlement entry kind (other kinds carry no settlement
#: record). TARIFF and BILL entries also carry version-2 records (:class:`CycleTariff`,
#: :class:`CycleBill`): :data:`RECORD_VERSIONS` and :func:`record_type` give the type of a
#: payload by its first byte.
RECORD_TYPES: Mapping[EntryKind, type[Record]] = {
    EntryKind.METER_REGISTRATION: MeterRegistration,
    EntryKind.METER_REVOCATION: MeterRevocation,
    EntryKind.READING_BATCH: ReadingBatch,
    EntryKind.TARIFF: Tariff,
    EntryKind.BILL: Bill,
}

#: The record type of each settlement entry kind by record version (a payload's first byte).
RECORD_VERSIONS: Mapping[EntryKind, Mapping[int, type[Record]]] = {
    EntryKind.METER_REGISTRATION: {RECORD_VERSION: MeterRegistration},
    EntryKind.METER_REVOCATION: {RECORD_VERSION: MeterRevocation},
    EntryKind.READING_BATCH: {RECORD_VERSION: ReadingBatch},
    EntryKind.TARIFF: {RECORD_VERSION: Tariff, CYCLE_RECORD_VERSION: CycleTariff},
    EntryKind.BILL: {RECORD_VERSION: Bill, CYCLE_RECORD_VERSION: CycleBill},
}


def record_type(kind: EntryKind, payload: bytes) -> type[Record]:
    """The record class that decodes ``payload`` of an entry of ``kind``, by the payload's
    record version; a version the kind does not have gives the kind's version-1 class (whose
    strict decoding refuses it). :class:`RecordFormatError` for a kind without records."""
    versions = RECORD_VERSIONS.get(kind)
    if versions is None:
        name = kind.name if isinstance(kind, EntryKind) else repr(kind)
        raise RecordFormatError(f"entry kind {name} carries no settlement record")
    if isinstance(payload, bytes | bytearray | memoryview) and len(payload):
        found = versions.get(payload[0])
        if found is not None:
            return found
    return RECORD_TYPES[kind]


def decode_record(entry: Entry) -> Record:
    """Decode the settlement record an entry carries (by its kind and record version);
    :class:`RecordFormatError` otherwise."""
    if not isinstance(entry, Entry):
        raise RecordFormatError("expected a ledger.entries.Entry")
    return record_type(entry.kind, entry.payload).decode(entry.payload)


# --------------------------------------------------------------------------- contexts


def reading_proof_context(meter_id: str, period: str, sequence: int) -> bytes:
    """``"zkgrid/readings v1" || u32 len || meter_id || u32 len || period || u64 sequence``."""
    mid = validate_meter_id(meter_id).encode("ascii")
    per = validate_period(period).encode("ascii")
    seq = _int(sequence, "sequence", 0, 2**64 - 1)
    return (
        READINGS_CONTEXT_DOMAIN
        + _U32.pack(len(mid))
        + mid
        + _U32.pack(len(per))
        + per
        + _U64.pack(seq)
    )


def bill_proof_context(batch_hash: bytes, tariff_hash: bytes) -> bytes:
    """``"zkgrid/bill v1" || batch_hash || tariff_hash``."""
    return (
        BILL_CONTEXT_DOMAIN
        + _bytes(batch_hash, "batch_hash", size=HASH_SIZE)
        + _bytes(tariff_hash, "tariff_hash", size=HASH_SIZE)
    )


def cycle_bill_proof_context(
    meter_id: str,
    first_period: str,
    last_period: str,
    batch_hashes: Sequence[bytes],
    tariff_hash: bytes,
) -> bytes:
    """``"zkgrid/cycle-bill v1" || u32 len || meter_id || u32 len || first_period || u32 len ||
    last_period || u32 count || batch_hashes (32 B each) || tariff_hash``: the context of a
    cycle bill's circuit proof (one batch hash per period of the cycle, in order)."""
    mid = validate_meter_id(meter_id).encode("ascii")
    periods = cycle_periods(first_period, last_period)
    if isinstance(batch_hashes, bytes | str) or len(batch_hashes) != len(periods):
        raise RecordFormatError(f"one batch hash per period of the cycle ({len(periods)})")
    hashes = b"".join(
        _bytes(h, f"batch_hashes[{i}]", size=HASH_SIZE) for i, h in enumerate(batch_hashes)
    )
    first, last = first_period.encode("ascii"), last_period.encode("ascii")
    return (
        CYCLE_BILL_CONTEXT_DOMAIN
        + _U32.pack(len(mid))
        + mid
        + _U32.pack(len(first))
        + first
        + _U32.pack(len(last))
        + last
        + _U32.pack(len(periods))
        + hashes
        + _bytes(tariff_hash, "tariff_hash", size=HASH_SIZE)
    )


def bill_coefficients(tariff: Tariff) -> list[int]:
    """``[price_0, -credit_0, price_1, -credit_1, ...]``, in commitment order."""
    if not isinstance(tariff, Tariff):
        raise InvalidArgumentError("bill_coefficients needs a Tariff")
    out: list[int] = []
    for price, credit in zip(tariff.import_price, tariff.export_credit, strict=True):
        out += [price, -credit]
    return out


# --------------------------------------------------------------------------- meter keys


def _load_public_key(public_key33: object) -> ec.EllipticCurvePublicKey:
    data = _point(public_key33, "meter public key")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), data)
    except ValueError:
        raise RecordFormatError("meter public key is not a point on P-256") from None


def validate_public_key(public_key33: object) -> bytes:
    """A canonical 33-byte compressed P-256 point on the curve; :class:`RecordFormatError` else."""
    if not isinstance(public_key33, bytes):
        raise RecordFormatError("meter public key must be bytes")
    _load_public_key(public_key33)
    return public_key33


def verify_meter_signature(public_key33: bytes, message: bytes, der: bytes) -> None:
    """Verify a meter's ECDSA P-256/SHA-256 signature (canonical DER, low-S).

    Raises :class:`SignatureError` (reason ``SIGNATURE_INVALID``) for any
    signature that does not verify, is not canonical DER or has ``s > n/2``;
    :class:`RecordFormatError` for a public key that is not a canonical point.
    """
    key = _load_public_key(public_key33)
    if not isinstance(message, bytes) or not isinstance(der, bytes):
        raise SignatureError("message and signature must be bytes")
    try:
        r, s = decode_dss_signature(der)
    except ValueError:
        raise SignatureError("signature is not DER-encoded") from None
    if encode_dss_signature(r, s) != der:
        raise SignatureError("signature is not canonical DER")
    if not (0 < r < _CURVE_ORDER and 0 < s <= _HALF_ORDER):
        raise SignatureError("signature scalars are out of range (high-S is refused)")
    try:
        key.verify(der, message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise SignatureError("meter signature does not verify") from None


class MeterKey(P256PrivateKey):
    """A meter's ECDSA P-256 signing key (the private key never leaves the meter)."""

    __slots__ = ()
    WHAT: ClassVar[str] = "meter key"

    @classmethod
    def from_private_value(cls, value: int) -> MeterKey:
        """A key from its secret scalar (deterministic tests and vectors)."""
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < _CURVE_ORDER:
            raise InvalidArgumentError("private value must be in [1, n)")
        return cls(ec.derive_private_key(value, ec.SECP256R1()))

    def sign(self, message: bytes) -> bytes:
        """DER ECDSA-SHA256 signature, normalised to low-S."""
        der = self._key.sign(message, ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        if s > _HALF_ORDER:
            s = _CURVE_ORDER - s
        return encode_dss_signature(r, s)
