"""The witness cosignature scheme (BLS12-381, IETF proof of possession), as pure functions.

A witness (auditor, regulator, consumer association) is registered on the ledger
by a ``WITNESS_KEY`` entry (:class:`WitnessRegistration`: name, 48-byte G1 public
key, 96-byte proof of possession). Its cosignature (:class:`Cosignature`) is a
BLS signature over :func:`cosigned_message` of a checkpoint. The service
aggregates the cosignatures of one checkpoint into a :class:`CosignedCheckpoint`,
and anyone holding the registry checks finality with **one**
``FastAggregateVerify`` (:func:`verify_finality`), whatever the number of
signers. docs/notes/witness.md has the equations, labelled ``(Wn)``.

This module verifies; it holds no key and touches no file. The witness party
(its secret key, its memory of the last co-signed checkpoint, the ``zkgrid
witness`` command) is the package :mod:`witness`.

Scheme: ``BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_`` (draft-irtf-cfrg-bls-signature,
minimal-pubkey-size: public keys in G1, signatures in G2), as implemented by
``blspy.PopSchemeMPL`` (Chia's binding of a native BLS12-381 library). blspy is
imported on first use, so ``import ledger`` does not load it. Every byte string
that crosses a trust boundary is decoded strictly (canonical compressed points,
subgroup checks, a public key that is not the identity, no trailing bytes) and
a failure raises a :class:`WitnessFormatError`; a well-formed signature that
does not verify raises a :class:`~zkgrid.errors.VerificationError` subclass.
blspy's verifiers return booleans and its decoders raise ``ValueError``: both
become the typed errors here.

Nothing is cached per process. Two memos live in the objects a caller holds:
a :class:`WitnessRegistration` remembers that its own (immutable) fields passed
(W1, W2), and a :class:`WitnessRegistry` remembers the cosignatures that
verified against it, so verifying each cosignature on receipt makes the later
:func:`aggregate` with the same registry free of pairings.
"""

from __future__ import annotations

import hashlib
import re
import struct
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, TypeVar

from ledger.checkpoint import Checkpoint, CheckpointVerifier, SignedCheckpoint, verify_checkpoint
from ledger.encoding import CanonicalReader, CanonicalWriter
from ledger.entries import Entry, EntryKind
from ledger.errors import LedgerError
from zkgrid.errors import InvalidArgumentError, ProofFormatError, Reason, VerificationError

if TYPE_CHECKING:  # pragma: no cover - blspy is imported where a point is decoded
    from blspy import G1Element, G2Element

__all__ = [
    "CIPHERSUITE_ID",
    "COSIGNATURE_DOMAIN",
    "MAX_NAME_BYTES",
    "MAX_NOTE_BYTES",
    "MAX_WITNESSES",
    "POP_CIPHERSUITE_ID",
    "PUBLIC_KEY_SIZE",
    "SIGNATURE_SIZE",
    "WITNESS_RECORD_VERSION",
    "AggregateInvalid",
    "Cosignature",
    "CosignatureError",
    "CosignedCheckpoint",
    "DuplicateCosignatureError",
    "FinalityError",
    "FinalityReport",
    "PossessionProofError",
    "Quorum",
    "QuorumNotMet",
    "UnknownWitnessError",
    "UnregisteredSigner",
    "WitnessArgumentError",
    "WitnessError",
    "WitnessFormatError",
    "WitnessRegistration",
    "WitnessRegistry",
    "aggregate",
    "checkpoint_of",
    "cosigned_message",
    "decode_public_key",
    "decode_signature",
    "validate_witness_name",
    "verify_cosignature",
    "verify_finality",
]

#: The signature ciphersuite ID (the DST of hash_to_curve), draft-irtf-cfrg-bls-signature 4.2.3.
CIPHERSUITE_ID: Final = "BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_"
#: The proof-of-possession tag (DST of PopProve / PopVerify).
POP_CIPHERSUITE_ID: Final = "BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_"
#: (W3) What a cosignature signs, followed by the checkpoint body (origin, size, root, extensions).
COSIGNATURE_DOMAIN: Final = b"zkgrid/witness-cosignature v1\n"
#: u8 version that starts every witness record (registration, cosignature, cosigned checkpoint).
WITNESS_RECORD_VERSION: Final = 1
PUBLIC_KEY_SIZE: Final = 48
SIGNATURE_SIZE: Final = 96
#: Upper bound on registered witnesses and on the signers of a cosigned checkpoint.
MAX_WITNESSES: Final = 1024
#: Upper bound on a witness name, in UTF-8 bytes (signed-note key names have no bound; ours do).
MAX_NAME_BYTES: Final = 128
#: Upper bound on the signed checkpoint note inside a cosigned checkpoint.
MAX_NOTE_BYTES: Final = 1 << 16

_U32 = struct.Struct(">I")
#: The compressed encoding of the identity of G1 (a public key must not be it, W1).
_G1_IDENTITY = bytes([0xC0]) + bytes(PUBLIC_KEY_SIZE - 1)
#: What blspy raises on input it refuses (C++ std::invalid_argument and friends, argument types).
_BLSPY_ERRORS = (ValueError, RuntimeError, TypeError)


# ----------------------------------------------------------------------------- errors


class WitnessError(LedgerError):
    """Root of the errors raised by the witness cosignature scheme and the witness party."""

    reason = Reason.WITNESS_ERROR



class WitnessArgumentError(WitnessError, InvalidArgumentError):
    """A caller passed an argument outside the documented domain (or a file already exists)."""

    reason = Reason.INVALID_ARGUMENT


class WitnessFormatError(WitnessError, ProofFormatError):
    """Bytes or text that are not a canonical witness key, record, point or signature."""

    reason = Reason.WITNESS_MALFORMED


class PossessionProofError(WitnessError, VerificationError):
    """(W2) A registration whose proof of possession does not verify."""

    reason = Reason.POP_INVALID


class UnknownWitnessError(WitnessError, VerificationError):
    """A name that is not in the witness registry."""

    reason = Reason.UNKNOWN_WITNESS


class CosignatureError(WitnessError, VerificationError):
    """(W4) A cosignature that does not verify for this witness and checkpoint."""

    reason = Reason.COSIGNATURE_INVALID


class DuplicateCosignatureError(WitnessError, InvalidArgumentError):
    """Two cosignatures (or two signers) with the same witness name."""

    reason = Reason.DUPLICATE_COSIGNATURE


class FinalityError(WitnessError, VerificationError):
    """(W6) A cosigned checkpoint that is not final.

    Raised as one of its subclasses: :class:`QuorumNotMet`, :class:`UnregisteredSigner`
    or :class:`AggregateInvalid`, each with its own reason.
    """

    reason = Reason.NOT_FINAL


class QuorumNotMet(FinalityError):
    """(W6) Fewer signers than the quorum's threshold (checked before any pairing)."""

    reason = Reason.QUORUM_NOT_MET


class UnregisteredSigner(FinalityError, UnknownWitnessError):
    """(W6) A signer of the cosigned checkpoint is not in the registry."""

    reason = Reason.UNKNOWN_WITNESS


class AggregateInvalid(FinalityError):
    """(W6) The aggregate signature does not verify for the signers' keys."""

    reason = Reason.AGGREGATE_INVALID


# ----------------------------------------------------------------------------- helpers


def validate_witness_name(name: object, error: type[WitnessError] = WitnessFormatError) -> str:
    """A witness name: the signed-note key-name rules (non-empty UTF-8 without Unicode
    spaces, '+' or control characters), at most :data:`MAX_NAME_BYTES` bytes."""
    if not isinstance(name, str) or not name:
        raise error("witness name must be a non-empty string")
    if any(c.isspace() or c == "+" or ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise error("witness name contains a space, '+' or a control character")
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        raise error("witness name is not valid UTF-8") from None
    if len(encoded) > MAX_NAME_BYTES:
        raise error(f"witness name is longer than {MAX_NAME_BYTES} bytes")
    return name


def _fixed_bytes(value: object, size: int, what: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != size:
        raise WitnessFormatError(f"{what} must be {size} bytes")
    return value


_P = TypeVar("_P", "G1Element", "G2Element")


def _decode_point(cls: type[_P], raw: bytes, group: str, what: str) -> _P:
    """``cls.from_bytes(raw)`` (flags, ``x < p``, on the curve, in the subgroup), and the
    round trip once more for canonicity (how the py_ecc version checked it)."""
    try:
        point = cls.from_bytes(raw)
        canonical = bytes(point)
    except _BLSPY_ERRORS:
        raise WitnessFormatError(
            f"{what} is not a compressed {group} point of the prime-order subgroup"
        ) from None
    if canonical != raw:
        raise WitnessFormatError(f"{what} is not the canonical encoding of its point")
    return point


def decode_public_key(data: bytes, what: str = "public key") -> G1Element:
    """(W1) A canonical compressed G1 point, in the prime-order subgroup, not the identity
    (refused here: blspy accepts it as a group element)."""
    from blspy import G1Element

    raw = _fixed_bytes(data, PUBLIC_KEY_SIZE, what)
    if raw == _G1_IDENTITY:
        raise WitnessFormatError(f"{what} is the point at infinity")
    return _decode_point(G1Element, raw, "G1", what)


def decode_signature(data: bytes, what: str = "signature") -> G2Element:
    """A canonical compressed G2 point in the prime-order subgroup (the identity is a
    well-formed signature that verifies for no key)."""
    from blspy import G2Element

    return _decode_point(G2Element, _fixed_bytes(data, SIGNATURE_SIZE, what), "G2", what)


def checkpoint_of(value: object) -> Checkpoint:
    """The checkpoint of a :class:`Checkpoint` or a :class:`SignedCheckpoint`."""
    if isinstance(value, SignedCheckpoint):
        return value.checkpoint
    if isinstance(value, Checkpoint):
        return value
    raise WitnessArgumentError("expected a Checkpoint or a SignedCheckpoint")


class _SuccessMemo:
    """A bounded, thread-safe LRU set of digests of checks that succeeded.

    BLS verification is deterministic, so remembering a success is sound; failures
    are never remembered. Keys are SHA-256 digests of everything the check reads.
    One memo belongs to one :class:`WitnessRegistry` (never to the process).
    """

    __slots__ = ("_entries", "_lock", "_max")

    def __init__(self, max_entries: int) -> None:
        self._entries: OrderedDict[bytes, None] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_entries

    @staticmethod
    def key(*parts: bytes) -> bytes:
        h = hashlib.sha256()
        for part in parts:
            h.update(_U32.pack(len(part)))
            h.update(part)
        return h.digest()

    def seen(self, key: bytes) -> bool:
        with self._lock:
            if key not in self._entries:
                return False
            self._entries.move_to_end(key)
            return True

    def add(self, key: bytes) -> None:
        with self._lock:
            self._entries[key] = None
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)


# ----------------------------------------------------------------------------- registration


@dataclass(frozen=True, slots=True)
class WitnessRegistration:
    """The ``WITNESS_KEY`` entry payload::

        u8 version (1) || u32 len || name (UTF-8) || public key (48 B) || proof of possession (96 B)

    Construction checks the fields syntactically (name rules, sizes). :meth:`decode`
    also checks the points (canonical, on the curve, in the subgroup, key not the
    identity) and verifies the proof of possession; so does :meth:`verify`.
    """

    name: str
    public_key: bytes
    proof_of_possession: bytes
    #: The decoded public key once :meth:`verify` passed (the fields are immutable).
    _point: G1Element | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        validate_witness_name(self.name)
        _fixed_bytes(self.public_key, PUBLIC_KEY_SIZE, "public key")
        _fixed_bytes(self.proof_of_possession, SIGNATURE_SIZE, "proof of possession")

    def encode(self) -> bytes:
        w = CanonicalWriter(WITNESS_RECORD_VERSION)
        w.text(self.name)
        w.fixed(self.public_key)
        w.fixed(self.proof_of_possession)
        return w.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> WitnessRegistration:
        """Strict decoding, points checked and proof of possession verified.

        Raises :class:`WitnessFormatError` (bad version, lengths, UTF-8, name,
        points, trailing bytes) or :class:`PossessionProofError`.
        """
        r = CanonicalReader(
            data, "witness registration", WITNESS_RECORD_VERSION, WitnessFormatError
        )
        name = r.text("name", MAX_NAME_BYTES)
        public_key = r.fixed(PUBLIC_KEY_SIZE, "public key")
        pop = r.fixed(SIGNATURE_SIZE, "proof of possession")
        r.finish()
        registration = cls(name, public_key, pop)
        registration.verify()
        return registration

    def verify(self) -> None:
        """(W1, W2) Check both points and ``PopVerify(pk, pop)``; raise unless they hold.

        A success is remembered by this object (its fields cannot change), so a
        registry built from registrations already decoded costs no further pairing.
        """
        self.public_point()

    def public_point(self) -> G1Element:
        """The public key as a blspy point, once (W1, W2) hold (see :meth:`verify`)."""
        if self._point is not None:
            return self._point
        from blspy import PopSchemeMPL

        public_key = decode_public_key(self.public_key)
        pop = decode_signature(self.proof_of_possession, "proof of possession")
        try:
            valid = PopSchemeMPL.pop_verify(public_key, pop)
        except _BLSPY_ERRORS:
            valid = False
        if not valid:
            raise PossessionProofError(
                f"(W2) proof of possession of witness {self.name!r} does not verify"
            )
        object.__setattr__(self, "_point", public_key)
        return public_key

    def __reduce__(self) -> tuple[type[WitnessRegistration], tuple[str, bytes, bytes]]:
        # The fields only: a copy (or another process) verifies for itself.
        return (type(self), (self.name, self.public_key, self.proof_of_possession))

    def to_entry(self) -> Entry:
        return Entry(EntryKind.WITNESS_KEY, self.encode())

    @classmethod
    def from_entry(cls, entry: Entry) -> WitnessRegistration:
        if not isinstance(entry, Entry) or entry.kind != EntryKind.WITNESS_KEY:
            raise WitnessFormatError("not a WITNESS_KEY entry")
        return cls.decode(entry.payload)


# ----------------------------------------------------------------------------- cosignatures


def cosigned_message(checkpoint: Checkpoint | SignedCheckpoint) -> bytes:
    """(W3) ``b"zkgrid/witness-cosignature v1\\n" || checkpoint body`` (origin, size, root)."""
    return COSIGNATURE_DOMAIN + checkpoint_of(checkpoint).body()


@dataclass(frozen=True, slots=True)
class Cosignature:
    """One witness's BLS signature over :func:`cosigned_message` of a checkpoint::

    u8 version (1) || u32 len || name (UTF-8) || signature (96 B)
    """

    name: str
    signature: bytes

    def __post_init__(self) -> None:
        validate_witness_name(self.name)
        _fixed_bytes(self.signature, SIGNATURE_SIZE, "cosignature")

    def encode(self) -> bytes:
        w = CanonicalWriter(WITNESS_RECORD_VERSION)
        w.text(self.name)
        w.fixed(self.signature)
        return w.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> Cosignature:
        """Strict decoding; the signature must be a canonical G2 subgroup point."""
        r = CanonicalReader(data, "cosignature", WITNESS_RECORD_VERSION, WitnessFormatError)
        name = r.text("name", MAX_NAME_BYTES)
        signature = r.fixed(SIGNATURE_SIZE, "signature")
        r.finish()
        cosig = cls(name, signature)
        decode_signature(signature, "cosignature")
        return cosig


def _verify_cosignature(
    registration: WitnessRegistration,
    checkpoint: Checkpoint | SignedCheckpoint,
    cosignature: Cosignature,
    memo: _SuccessMemo | None,
) -> None:
    if not isinstance(registration, WitnessRegistration):
        raise WitnessArgumentError("verify_cosignature() takes a WitnessRegistration")
    if not isinstance(cosignature, Cosignature):
        raise WitnessArgumentError("verify_cosignature() takes a Cosignature")
    message = cosigned_message(checkpoint)
    if cosignature.name != registration.name:
        raise CosignatureError(
            f"(W4) cosignature is by {cosignature.name!r}, not {registration.name!r}"
        )
    digest = b""
    if memo is not None:
        digest = memo.key(registration.public_key, message, cosignature.signature)
        if memo.seen(digest):
            return
    from blspy import PopSchemeMPL

    signature = decode_signature(cosignature.signature, "cosignature")
    public_key = registration.public_point()
    try:
        valid = PopSchemeMPL.verify(public_key, message, signature)
    except _BLSPY_ERRORS:
        valid = False
    if not valid:
        raise CosignatureError(
            f"(W4) cosignature of witness {registration.name!r} does not verify"
            f" for checkpoint size {checkpoint_of(checkpoint).size}"
        )
    if memo is not None:
        memo.add(digest)


def verify_cosignature(
    registration: WitnessRegistration,
    checkpoint: Checkpoint | SignedCheckpoint,
    cosignature: Cosignature,
) -> None:
    """(W4) Raise :class:`CosignatureError` unless ``cosignature`` is the registered
    witness's signature over this checkpoint (its name must match too).

    The registration's points and proof of possession are checked first (W1, W2;
    :class:`WitnessFormatError`, :class:`PossessionProofError`).
    """
    _verify_cosignature(registration, checkpoint, cosignature, None)


# ----------------------------------------------------------------------------- registry


class WitnessRegistry:
    """The registered witnesses, in ledger order. Names and public keys are unique.

    Every registration is verified (:meth:`WitnessRegistration.verify`) on
    construction. Distinct public keys matter: the proof of possession binds the
    key, not the name, so without this check one witness could count twice.
    Cosignatures that verified through :meth:`verify_cosignature` are remembered
    by this registry (bounded), so :func:`aggregate` re-checks them for free.
    """

    __slots__ = ("_by_name", "_memo", "_registrations")

    def __init__(self, registrations: Iterable[WitnessRegistration] = ()) -> None:
        regs = tuple(registrations)
        if len(regs) > MAX_WITNESSES:
            raise WitnessArgumentError(f"more than {MAX_WITNESSES} witnesses")
        by_name: dict[str, WitnessRegistration] = {}
        keys: set[bytes] = set()
        for reg in regs:
            if not isinstance(reg, WitnessRegistration):
                raise WitnessArgumentError("a registry holds WitnessRegistration records")
            if reg.name in by_name:
                raise WitnessArgumentError(f"witness name {reg.name!r} is registered twice")
            if reg.public_key in keys:
                raise WitnessArgumentError(f"witness {reg.name!r} reuses a registered public key")
            by_name[reg.name] = reg
            keys.add(reg.public_key)
        for reg in regs:
            reg.verify()
        self._registrations = regs
        self._by_name = by_name
        self._memo = _SuccessMemo(16 * MAX_WITNESSES)

    @classmethod
    def from_entries(cls, entries: Iterable[Entry]) -> WitnessRegistry:
        """The registry of the ``WITNESS_KEY`` entries among ``entries`` (others are skipped)."""
        return cls(
            WitnessRegistration.from_entry(e)
            for e in entries
            if isinstance(e, Entry) and e.kind == EntryKind.WITNESS_KEY
        )

    def with_registration(self, registration: WitnessRegistration) -> WitnessRegistry:
        """A new registry with ``registration`` appended."""
        return WitnessRegistry((*self._registrations, registration))

    @property
    def registrations(self) -> tuple[WitnessRegistration, ...]:
        return self._registrations

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self._registrations)

    def __len__(self) -> int:
        return len(self._registrations)

    def __iter__(self) -> Iterator[WitnessRegistration]:
        return iter(self._registrations)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def get(self, name: str) -> WitnessRegistration:
        """The registration of ``name``; :class:`UnknownWitnessError` if there is none."""
        reg = self._by_name.get(name) if isinstance(name, str) else None
        if reg is None:
            raise UnknownWitnessError(f"no registered witness named {name!r}")
        return reg

    def verify_cosignature(
        self, checkpoint: Checkpoint | SignedCheckpoint, cosignature: Cosignature
    ) -> None:
        """(W4) :func:`verify_cosignature` against the registration of ``cosignature.name``;
        :class:`UnknownWitnessError` for a name not in the registry. Successes are
        remembered by this registry (keyed by public key, message and signature)."""
        if not isinstance(cosignature, Cosignature):
            raise WitnessArgumentError("verify_cosignature() takes a Cosignature")
        _verify_cosignature(self.get(cosignature.name), checkpoint, cosignature, self._memo)

    def __repr__(self) -> str:
        return f"WitnessRegistry({list(self.names)!r})"


# ----------------------------------------------------------------------------- quorum


@dataclass(frozen=True, slots=True)
class Quorum:
    """``threshold`` of ``total`` witnesses: 1 <= threshold <= total <= MAX_WITNESSES.

    ``total`` must equal the registry size when finality is checked, so that a
    registry that grew is never judged against a stale configuration.
    """

    threshold: int
    total: int

    def __post_init__(self) -> None:
        for value, what in ((self.threshold, "threshold"), (self.total, "total")):
            if isinstance(value, bool) or not isinstance(value, int):
                raise WitnessArgumentError(f"quorum {what} must be an integer")
        if not 1 <= self.total <= MAX_WITNESSES:
            raise WitnessArgumentError(f"quorum total must be in [1, {MAX_WITNESSES}]")
        if not 1 <= self.threshold <= self.total:
            raise WitnessArgumentError("quorum threshold must be in [1, total]")

    @classmethod
    def parse(cls, text: str) -> Quorum:
        """``"k-of-n"`` (e.g. ``"3-of-5"``), decimal without leading zeros."""
        match = (
            re.fullmatch(r"([1-9][0-9]{0,3})-of-([1-9][0-9]{0,3})", text, re.ASCII)
            if isinstance(text, str)
            else None
        )
        if match is None:
            raise WitnessArgumentError("quorum must be written 'k-of-n', e.g. '3-of-5'")
        return cls(int(match[1]), int(match[2]))

    def __str__(self) -> str:
        return f"{self.threshold}-of-{self.total}"


# ----------------------------------------------------------------------------- aggregation


def _name_key(name: str) -> bytes:
    return name.encode("utf-8")


@dataclass(frozen=True, slots=True)
class CosignedCheckpoint:
    """A log-signed checkpoint, the aggregate of its witnesses' cosignatures and who signed::

        u8 version (1) || u32 len || signed note text (UTF-8, the log's signed checkpoint)
                       || aggregate signature (96 B)
                       || u32 count (>= 1) || count x (u32 len || signer name)

    (W5) Signers are witness *names*, sorted strictly by their UTF-8 bytes (so no
    duplicates): self-describing, independent of the registry's order and size,
    and canonical. The aggregate is ``Aggregate`` of the signers' cosignatures.
    """

    checkpoint: SignedCheckpoint
    aggregate_signature: bytes
    signers: tuple[str, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.checkpoint, SignedCheckpoint):
            raise WitnessFormatError("checkpoint must be a SignedCheckpoint")
        _fixed_bytes(self.aggregate_signature, SIGNATURE_SIZE, "aggregate signature")
        if not isinstance(self.signers, tuple) or not self.signers:
            raise WitnessFormatError("signers must be a non-empty tuple of witness names")
        if len(self.signers) > MAX_WITNESSES:
            raise WitnessFormatError(f"more than {MAX_WITNESSES} signers")
        previous: bytes | None = None
        for name in self.signers:
            key = _name_key(validate_witness_name(name))
            if previous is not None and key <= previous:
                raise WitnessFormatError("(W5) signers must be sorted by UTF-8 bytes, no repeats")
            previous = key

    def encode(self) -> bytes:
        w = CanonicalWriter(WITNESS_RECORD_VERSION)
        w.blob(self.checkpoint.to_bytes())
        w.fixed(self.aggregate_signature)
        w.count(len(self.signers))
        for name in self.signers:
            w.text(name)
        return w.getvalue()

    @classmethod
    def decode(cls, data: bytes) -> CosignedCheckpoint:
        """Strict decoding: the note is parsed strictly (ledger.md L13, L14), the aggregate
        must be a canonical G2 subgroup point, signers sorted and unique, no trailing bytes.
        Nothing is verified: that is :func:`verify_finality`."""
        r = CanonicalReader(data, "cosigned checkpoint", WITNESS_RECORD_VERSION, WitnessFormatError)
        note = r.blob("signed checkpoint", MAX_NOTE_BYTES)
        signature = r.fixed(SIGNATURE_SIZE, "aggregate signature")
        count = r.u32("signer count", MAX_WITNESSES)
        signers = tuple(r.text("signer name", MAX_NAME_BYTES) for _ in range(count))
        r.finish()
        cosigned = cls(SignedCheckpoint.from_text(note), signature, signers)
        decode_signature(signature, "aggregate signature")
        return cosigned


def aggregate(
    registry: WitnessRegistry,
    checkpoint: SignedCheckpoint,
    cosignatures: Sequence[Cosignature],
) -> CosignedCheckpoint:
    """(W5) Verify each cosignature (W4), then ``Aggregate`` them.

    Raises :class:`DuplicateCosignatureError` for two cosignatures of one name,
    :class:`UnknownWitnessError` for a name not in ``registry`` (both before any
    pairing), :class:`CosignatureError` for one that does not verify.
    """
    if not isinstance(registry, WitnessRegistry):
        raise WitnessArgumentError("aggregate() takes a WitnessRegistry")
    if not isinstance(checkpoint, SignedCheckpoint):
        raise WitnessArgumentError("aggregate() takes the log's SignedCheckpoint")
    cosigs = list(cosignatures)
    if not cosigs:
        raise WitnessArgumentError("aggregate() needs at least one cosignature")
    if not all(isinstance(c, Cosignature) for c in cosigs):
        raise WitnessArgumentError("aggregate() takes Cosignature records")
    seen: set[str] = set()
    for c in cosigs:
        if c.name in seen:
            raise DuplicateCosignatureError(f"two cosignatures by witness {c.name!r}")
        seen.add(c.name)
        registry.get(c.name)
    for c in cosigs:
        registry.verify_cosignature(checkpoint, c)
    cosigs.sort(key=lambda c: _name_key(c.name))
    from blspy import PopSchemeMPL

    points = [decode_signature(c.signature, "cosignature") for c in cosigs]
    signature = bytes(PopSchemeMPL.aggregate(points))
    return CosignedCheckpoint(checkpoint, signature, tuple(c.name for c in cosigs))


# ----------------------------------------------------------------------------- finality


@dataclass(frozen=True, slots=True)
class FinalityReport:
    """A checkpoint proven final: who signed it, against which quorum."""

    checkpoint: Checkpoint
    signers: tuple[str, ...]
    quorum: Quorum

    @property
    def final(self) -> bool:
        """Always true: :func:`verify_finality` raises instead of returning a non-final report."""
        return len(self.signers) >= self.quorum.threshold


def verify_finality(
    registry: WitnessRegistry,
    cosigned: CosignedCheckpoint,
    quorum: Quorum,
    *,
    log_key: str | CheckpointVerifier | None = None,
) -> FinalityReport:
    """(W6) The checkpoint is final: at least ``quorum.threshold`` registered witnesses
    signed it, checked with ONE ``FastAggregateVerify(signers' pks, message, aggregate)``.

    ``quorum.total`` must equal ``len(registry)`` (:class:`WitnessArgumentError`).
    With ``log_key`` the log's Ed25519 signature on the note is checked first
    (:class:`~ledger.errors.CheckpointSignatureError`). Raises :class:`FinalityError`
    with reason ``UNKNOWN_WITNESS``, ``QUORUM_NOT_MET`` (checked before any
    pairing) or ``AGGREGATE_INVALID``.
    """
    if not isinstance(registry, WitnessRegistry):
        raise WitnessArgumentError("verify_finality() takes a WitnessRegistry")
    if not isinstance(cosigned, CosignedCheckpoint):
        raise WitnessArgumentError("verify_finality() takes a CosignedCheckpoint")
    if not isinstance(quorum, Quorum):
        raise WitnessArgumentError("verify_finality() takes a Quorum")
    if quorum.total != len(registry):
        raise WitnessArgumentError(
            f"quorum {quorum} does not match a registry of {len(registry)} witnesses"
        )
    if log_key is not None:
        verify_checkpoint(cosigned.checkpoint, log_key)
    signers: list[WitnessRegistration] = []
    for name in cosigned.signers:
        if name not in registry:
            raise UnregisteredSigner(f"(W6) signer {name!r} is not a registered witness")
        signers.append(registry.get(name))
    if len(signers) < quorum.threshold:
        raise QuorumNotMet(f"(W6) {len(signers)} signers, quorum {quorum} needs {quorum.threshold}")
    from blspy import PopSchemeMPL

    # Each key passed (W1, W2) when the registry was built: decoded once, kept by its record.
    public_keys = [reg.public_point() for reg in signers]
    message = cosigned_message(cosigned.checkpoint)
    signature = decode_signature(cosigned.aggregate_signature, "aggregate signature")
    # (W6) e(sum pk_i, H(m)) == e(g1, sigma): one pairing check for any number of signers.
    try:
        valid = PopSchemeMPL.fast_aggregate_verify(public_keys, message, signature)
    except _BLSPY_ERRORS:
        valid = False
    if not valid:
        raise AggregateInvalid(
            f"(W6) aggregate signature of {len(public_keys)} witnesses does not verify"
        )
    return FinalityReport(cosigned.checkpoint.checkpoint, cosigned.signers, quorum)
