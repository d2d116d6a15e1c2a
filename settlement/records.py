"""Settlement records: the canonical payloads of the ledger's entries (settlement-v1.md).

Pure (stdlib and ``cryptography``): the meter builds these records, the service
checks and appends them, the verifier replays them. Every record is a frozen
dataclass with ``encode() -> bytes`` and a strict ``decode(bytes)`` that accepts
exactly the bytes ``encode()`` produces:

* a record starts with a u8 record version (:data:`RECORD_VERSION`, 1);
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

import hashlib
import re
import struct
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from ledger.encoding import CanonicalReader, CanonicalWriter, utf8_bytes
from ledger.entries import Entry, EntryKind
from settlement.errors import SettlementError
from settlement.periods import (
    MINUTES_PER_DAY,
    RecordFormatError,
    intervals_per_day,
    parse_period,
    validate_period,
)
from zkgrid.errors import InvalidArgumentError, Reason, VerificationError

__all__ = [
    "BILL_CONTEXT_DOMAIN",
    "BILL_PROOF_SIZE",
    "MAX_BATCH_VALUES",
    "MAX_FIXED_CHARGE",
    "MAX_RATE",
    "MAX_REASON_BYTES",
    "METER_REGISTRATION_DOMAIN",
    "MINUTES_PER_DAY",
    "POINT_SIZE",
    "RANGE_PROOF_BITS",
    "READINGS_CONTEXT_DOMAIN",
    "READING_BATCH_DOMAIN",
    "RECORD_TYPES",
    "RECORD_VERSION",
    "ZERO_HASH",
    "Bill",
    "MeterKey",
    "MeterRegistration",
    "MeterRevocation",
    "ReadingBatch",
    "Record",
    "RecordFormatError",
    "SignatureError",
    "Tariff",
    "bill_coefficients",
    "bill_proof_context",
    "decode_record",
    "intervals_per_day",
    "metered_intervals",
    "parse_period",
    "pop_message",
    "reading_proof_context",
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

METER_REGISTRATION_DOMAIN = b"zkgrid/meter-registration v1"
READING_BATCH_DOMAIN = b"zkgrid/reading-batch v1"
READINGS_CONTEXT_DOMAIN = b"zkgrid/readings v1"
BILL_CONTEXT_DOMAIN = b"zkgrid/bill v1"

_FIELD_PRIME = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
_CURVE_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_HALF_ORDER = _CURVE_ORDER // 2

_METER_ID = re.compile(r"[A-Za-z0-9._-]{1,64}", re.ASCII)
_CURRENCY = re.compile(r"[A-Z]{3}", re.ASCII)

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")



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


def _int(value: object, what: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecordFormatError(f"{what} must be an integer")
    if not lo <= value <= hi:
        raise RecordFormatError(f"{what} is outside [{lo}, {hi}]")
    return value


def _bytes(value: object, what: str, *, size: int | None = None, max_size: int = 0) -> bytes:
    if not isinstance(value, bytes):
        raise RecordFormatError(f"{what} must be bytes")
    if size is not None and len(value) != size:
        raise RecordFormatError(f"{what} must be {size} bytes, got {len(value)}")
    if max_size and len(value) > max_size:
        raise RecordFormatError(f"{what} is longer than {max_size} bytes")
    return value


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
    def _decode_with(cls: type[_R], data: object, parse: Callable[[CanonicalReader], _R]) -> _R:
        reader = CanonicalReader(data, cls.__name__, RECORD_VERSION, RecordFormatError)
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
        intervals = intervals_per_day(self.interval_minutes)
        if not isinstance(self.currency, str) or _CURRENCY.fullmatch(self.currency) is None:
            raise RecordFormatError("currency must be an ISO 4217 code (three letters A-Z)")
        _int(self.fixed_charge, "fixed_charge", -MAX_FIXED_CHARGE, MAX_FIXED_CHARGE)
        for name in ("import_price", "export_credit"):
            rates = getattr(self, name)
            if not isinstance(rates, tuple):
                raise RecordFormatError(f"{name} must be a tuple of integers")
            if len(rates) != intervals:
                raise RecordFormatError(f"{name} needs {intervals} rates, got {len(rates)}")
            for t, rate in enumerate(rates):
                _int(rate, f"{name}[{t}]", 0, MAX_RATE)

    @property
    def intervals(self) -> int:
        return len(self.import_price)

    def encode(self) -> bytes:
        w = CanonicalWriter(RECORD_VERSION)
        w.text(self.period)
        w.u16(self.interval_minutes)
        w.text(self.currency)
        w.i64(self.fixed_charge)
        for rates in (self.import_price, self.export_credit):
            w.u32(len(rates))
            for rate in rates:
                w.u64(rate)
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


Record = MeterRegistration | MeterRevocation | ReadingBatch | Tariff | Bill

#: The record type of each settlement entry kind (other kinds carry no settlement record).
RECORD_TYPES: Mapping[EntryKind, type[Record]] = {
    EntryKind.METER_REGISTRATION: MeterRegistration,
    EntryKind.METER_REVOCATION: MeterRevocation,
    EntryKind.READING_BATCH: ReadingBatch,
    EntryKind.TARIFF: Tariff,
    EntryKind.BILL: Bill,
}


def decode_record(entry: Entry) -> Record:
    """Decode the settlement record an entry carries; :class:`RecordFormatError` otherwise."""
    if not isinstance(entry, Entry):
        raise RecordFormatError("expected a ledger.entries.Entry")
    record_type = RECORD_TYPES.get(entry.kind)
    if record_type is None:
        raise RecordFormatError(f"entry kind {entry.kind.name} carries no settlement record")
    return record_type.decode(entry.payload)


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


class MeterKey:
    """A meter's ECDSA P-256 signing key (the private key never leaves the meter)."""

    __slots__ = ("_key", "_public")

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(private_key, ec.EllipticCurvePrivateKey) or not isinstance(
            private_key.curve, ec.SECP256R1
        ):
            raise InvalidArgumentError("a meter key must be an ECDSA P-256 private key")
        self._key = private_key
        self._public = private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
        )

    @classmethod
    def generate(cls) -> MeterKey:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_pem(cls, data: bytes, password: bytes | None = None) -> MeterKey:
        """Load a PKCS#8 or SEC1 PEM private key."""
        try:
            key = serialization.load_pem_private_key(data, password=password)
        except (ValueError, TypeError):
            raise InvalidArgumentError("cannot load the meter key PEM") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise InvalidArgumentError("the PEM does not hold an ECDSA key")
        return cls(key)

    @classmethod
    def from_private_value(cls, value: int) -> MeterKey:
        """A key from its secret scalar (deterministic tests and vectors)."""
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < _CURVE_ORDER:
            raise InvalidArgumentError("private value must be in [1, n)")
        return cls(ec.derive_private_key(value, ec.SECP256R1()))

    def to_pem(self, password: bytes | None = None) -> bytes:
        """PKCS#8 PEM, encrypted when ``password`` is given."""
        algorithm: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password)
            if password
            else serialization.NoEncryption()
        )
        return self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, algorithm
        )

    @property
    def public_key(self) -> bytes:
        """33-byte compressed SEC1 public key."""
        return self._public

    def sign(self, message: bytes) -> bytes:
        """DER ECDSA-SHA256 signature, normalised to low-S."""
        der = self._key.sign(message, ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        if s > _HALF_ORDER:
            s = _CURVE_ORDER - s
        return encode_dss_signature(r, s)

    def __repr__(self) -> str:
        return f"MeterKey(public_key={self._public.hex()})"
