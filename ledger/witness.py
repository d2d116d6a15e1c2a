"""Witness co-signing of checkpoints with BLS signatures (BLS12-381, IETF proof-of-possession).

A witness (auditor, regulator, consumer association) holds a BLS key
(:class:`WitnessKey`) and is registered on the ledger by a ``WITNESS_KEY`` entry
(:class:`WitnessRegistration`: name, 48-byte G1 public key, 96-byte proof of
possession). Before co-signing a checkpoint the witness checks it is consistent
with the last one it co-signed (:class:`WitnessState`); its cosignature
(:class:`Cosignature`) is a BLS signature over :func:`cosigned_message`. The
service aggregates the cosignatures of one checkpoint into a
:class:`CosignedCheckpoint`, and anyone holding the registry checks finality
with **one** ``FastAggregateVerify`` (:func:`verify_finality`), whatever the
number of signers. docs/notes/witness.md has the equations, labelled ``(Wn)``.

Scheme: ``BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_`` (draft-irtf-cfrg-bls-signature,
minimal-pubkey-size: public keys in G1, signatures in G2), as implemented by
``py_ecc.bls.G2ProofOfPossession``. Every byte string that crosses a trust
boundary is decoded strictly (canonical compressed points, subgroup checks, no
trailing bytes) and a failure raises a :class:`WitnessFormatError`; a
well-formed signature that does not verify raises a
:class:`~zkgrid.errors.VerificationError` subclass. py_ecc's verifiers return
booleans: every ``False`` becomes a raised error here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import secrets
import stat
import struct
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from eth_typing import BLSPubkey, BLSSignature
from eth_utils.exceptions import ValidationError
from py_ecc.bls.ciphersuites import G2ProofOfPossession
from py_ecc.bls.g2_primitives import (
    G1_to_pubkey,
    G2_to_signature,
    pubkey_to_G1,
    signature_to_G2,
    subgroup_check,
)
from py_ecc.optimized_bls12_381.optimized_curve import curve_order, is_inf

from ledger.checkpoint import Checkpoint, CheckpointVerifier, SignedCheckpoint, verify_checkpoint
from ledger.encoding import CanonicalReader, CanonicalWriter
from ledger.entries import Entry, EntryKind
from ledger.errors import LedgerError
from ledger.merkle import EMPTY_ROOT, HASH_SIZE, verify_consistency
from zkgrid.errors import InvalidArgumentError, ProofFormatError, Reason, VerificationError

__all__ = [
    "CIPHERSUITE_ID",
    "COSIGNATURE_DOMAIN",
    "MAX_WITNESSES",
    "POP_CIPHERSUITE_ID",
    "PUBLIC_KEY_SIZE",
    "SECRET_KEY_SIZE",
    "SIGNATURE_SIZE",
    "WITNESS_RECORD_VERSION",
    "Cosignature",
    "CosignatureError",
    "CosignedCheckpoint",
    "DuplicateCosignatureError",
    "FinalityError",
    "FinalityReport",
    "PossessionProofError",
    "Quorum",
    "UnknownWitnessError",
    "WitnessArgumentError",
    "WitnessError",
    "WitnessFormatError",
    "WitnessKey",
    "WitnessRefusal",
    "WitnessRegistration",
    "WitnessRegistry",
    "WitnessState",
    "aggregate",
    "clear_verification_cache",
    "cosign",
    "cosigned_message",
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
SECRET_KEY_SIZE: Final = 32
PUBLIC_KEY_SIZE: Final = 48
SIGNATURE_SIZE: Final = 96
#: Upper bound on registered witnesses and on the signers of a cosigned checkpoint.
MAX_WITNESSES: Final = 1024
#: Upper bound on a witness name, in UTF-8 bytes (signed-note key names have no bound; ours do).
MAX_NAME_BYTES: Final = 128
#: Upper bound on the signed checkpoint note inside a cosigned checkpoint.
MAX_NOTE_BYTES: Final = 1 << 16

_KEY_FILE_FORMAT = "zkgrid-witness-key"
_STATE_FILE_FORMAT = "zkgrid-witness-state"
_FILE_VERSION = 1
_MAX_FILE_BYTES = 1 << 16
_U32 = struct.Struct(">I")
_HEX64 = re.compile(r"[0-9a-f]{64}", re.ASCII)
_HEX96 = re.compile(r"[0-9a-f]{96}", re.ASCII)
_BLS = G2ProofOfPossession
#: What py_ecc raises on malformed input (flags, coordinates, off-curve points).
_PY_ECC_ERRORS = (ValueError, ValidationError, ArithmeticError, IndexError, TypeError)


# ----------------------------------------------------------------------------- errors


class WitnessError(LedgerError):
    """Root of the errors raised by :mod:`ledger.witness`."""

    reason = Reason.WITNESS_ERROR

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = Reason(reason)  # a member, or ValueError


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

    ``reason`` is ``QUORUM_NOT_MET`` (fewer signers than the threshold),
    ``UNKNOWN_WITNESS`` (a signer not in the registry) or ``AGGREGATE_INVALID``
    (the aggregate signature does not verify for the signers' keys).
    """

    reason = Reason.NOT_FINAL


class WitnessRefusal(WitnessError, VerificationError):
    """(W7) The witness refuses to co-sign: the checkpoint is not consistent with its memory.

    ``reason`` is ``ORIGIN_MISMATCH`` (another log) or ``CHECKPOINT_INCONSISTENT``
    (a smaller tree, another root at the same size, or a larger tree whose
    consistency proof from the last co-signed one does not verify).
    """

    reason = Reason.CHECKPOINT_INCONSISTENT


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


def _decode_public_key(data: bytes, what: str = "public key") -> BLSPubkey:
    """(W1) A canonical compressed G1 point, not the identity, in the prime-order subgroup."""
    raw = _fixed_bytes(data, PUBLIC_KEY_SIZE, what)
    try:
        point = pubkey_to_G1(BLSPubkey(raw))
        canonical = G1_to_pubkey(point)
    except _PY_ECC_ERRORS:
        raise WitnessFormatError(f"{what} is not a compressed G1 point") from None
    if canonical != raw:
        raise WitnessFormatError(f"{what} is not the canonical encoding of its point")
    if is_inf(point):
        raise WitnessFormatError(f"{what} is the point at infinity")
    if not subgroup_check(point):
        raise WitnessFormatError(f"{what} is not in the prime-order subgroup of G1")
    return BLSPubkey(raw)


def _decode_signature(data: bytes, what: str = "signature") -> BLSSignature:
    """A canonical compressed G2 point in the prime-order subgroup."""
    raw = _fixed_bytes(data, SIGNATURE_SIZE, what)
    try:
        point = signature_to_G2(BLSSignature(raw))
        canonical = G2_to_signature(point)
    except _PY_ECC_ERRORS:
        raise WitnessFormatError(f"{what} is not a compressed G2 point") from None
    if canonical != raw:
        raise WitnessFormatError(f"{what} is not the canonical encoding of its point")
    if not subgroup_check(point):
        raise WitnessFormatError(f"{what} is not in the prime-order subgroup of G2")
    return BLSSignature(raw)


def _read_small_file(path: Path, what: str) -> str:
    try:
        with path.open("rb") as f:
            raw = f.read(_MAX_FILE_BYTES + 1)
    except OSError as e:
        raise WitnessArgumentError(f"cannot read the {what} {path}: {e.strerror}") from None
    if len(raw) > _MAX_FILE_BYTES:
        raise WitnessFormatError(f"{what} is larger than {_MAX_FILE_BYTES} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise WitnessFormatError(f"{what} is not UTF-8") from None


def _load_json_object(text: str, what: str, keys: frozenset[str]) -> dict[str, object]:
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        raise WitnessFormatError(f"{what} is not JSON") from None
    if not isinstance(obj, dict):
        raise WitnessFormatError(f"{what} must be a JSON object")
    if set(obj) != keys:
        raise WitnessFormatError(f"{what} must have exactly the fields {sorted(keys)}")
    return obj


def _write_new_file(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 and ``data``; refuse if it exists. Durable (fsync)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise WitnessArgumentError(f"{path} already exists; refusing to overwrite it") from None
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)  # whatever the umask
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    if os.name != "posix":  # pragma: no cover - directories cannot be opened elsewhere
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _checkpoint_of(value: object) -> Checkpoint:
    if isinstance(value, SignedCheckpoint):
        return value.checkpoint
    if isinstance(value, Checkpoint):
        return value
    raise WitnessArgumentError("expected a Checkpoint or a SignedCheckpoint")


# ----------------------------------------------------------------------------- keys


class WitnessKey:
    """A witness's BLS secret key and name. The secret never appears in ``repr`` or errors.

    Key file (JSON, mode 0600)::

        {"format": "zkgrid-witness-key", "version": 1, "ciphersuite": CIPHERSUITE_ID,
         "name": "<name>", "secret_key": "<64 hex: I2OSP(SK, 32)>", "public_key": "<96 hex>"}

    The public key is redundant and checked on load (it catches a corrupted secret).
    """

    __slots__ = ("_name", "_pop", "_public_key", "_secret")

    def __init__(self, name: str, secret_key: int) -> None:
        self._name = validate_witness_name(name, WitnessArgumentError)
        if isinstance(secret_key, bool) or not isinstance(secret_key, int):
            raise WitnessArgumentError("a witness secret key is an integer")
        if not 0 < secret_key < curve_order:
            raise WitnessArgumentError("a witness secret key is in [1, r)")
        self._secret = secret_key
        self._public_key = bytes(_BLS.SkToPk(secret_key))
        self._pop: bytes | None = None

    @classmethod
    def generate(cls, name: str) -> WitnessKey:
        """A fresh key: ``KeyGen(IKM)`` (draft-irtf-cfrg-bls-signature 2.3), 32 bytes of IKM
        from :mod:`secrets`."""
        return cls(name, _BLS.KeyGen(secrets.token_bytes(32)))

    @classmethod
    def from_secret_bytes(cls, name: str, data: bytes) -> WitnessKey:
        """From the 32-byte big-endian secret key ``I2OSP(SK, 32)``."""
        if not isinstance(data, bytes) or len(data) != SECRET_KEY_SIZE:
            raise WitnessArgumentError(f"a witness secret key is {SECRET_KEY_SIZE} bytes")
        return cls(name, int.from_bytes(data, "big"))

    def secret_bytes(self) -> bytes:
        return self._secret.to_bytes(SECRET_KEY_SIZE, "big")

    @property
    def name(self) -> str:
        return self._name

    @property
    def public_key(self) -> bytes:
        """The 48-byte compressed G1 public key."""
        return self._public_key

    def proof_of_possession(self) -> bytes:
        """(W2) ``PopProve(SK)``: a 96-byte signature over the public key (computed once)."""
        if self._pop is None:
            self._pop = bytes(_BLS.PopProve(self._secret))
        return self._pop

    def registration(self) -> WitnessRegistration:
        """The ``WITNESS_KEY`` record of this key (its proof of possession is not re-verified)."""
        return WitnessRegistration(self._name, self._public_key, self.proof_of_possession())

    def sign(self, message: bytes) -> bytes:
        """``Sign(SK, message)`` in the POP ciphersuite: 96 bytes. Prefer :func:`cosign`."""
        if not isinstance(message, bytes):
            raise WitnessArgumentError("message must be bytes")
        return bytes(_BLS.Sign(self._secret, message))

    # -- files

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": _KEY_FILE_FORMAT,
                "version": _FILE_VERSION,
                "ciphersuite": CIPHERSUITE_ID,
                "name": self._name,
                "secret_key": self.secret_bytes().hex(),
                "public_key": self._public_key.hex(),
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str) -> WitnessKey:
        """Strict parse of a key file's text; raises :class:`WitnessFormatError`."""
        keys = frozenset(("format", "version", "ciphersuite", "name", "secret_key", "public_key"))
        obj = _load_json_object(text, "witness key file", keys)
        if obj["format"] != _KEY_FILE_FORMAT or obj["version"] != _FILE_VERSION:
            raise WitnessFormatError("not a version 1 zkgrid witness key file")
        if obj["ciphersuite"] != CIPHERSUITE_ID:
            raise WitnessFormatError("witness key file names another ciphersuite")
        name = validate_witness_name(obj["name"])
        secret_hex, public_hex = obj["secret_key"], obj["public_key"]
        if not isinstance(secret_hex, str) or not _HEX64.fullmatch(secret_hex):
            raise WitnessFormatError("secret_key must be 64 lowercase hex digits")
        if not isinstance(public_hex, str) or not _HEX96.fullmatch(public_hex):
            raise WitnessFormatError("public_key must be 96 lowercase hex digits")
        secret = int(secret_hex, 16)
        if not 0 < secret < curve_order:
            raise WitnessFormatError("secret_key is not in [1, r)")
        key = cls(name, secret)
        if key.public_key.hex() != public_hex:
            raise WitnessFormatError("public_key does not match secret_key")
        return key

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the key file with mode 0600; refuse to overwrite an existing file."""
        _write_new_file(Path(path), (self.to_json() + "\n").encode("utf-8"))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> WitnessKey:
        """Read a key file; on POSIX refuse one readable or writable by group or others."""
        p = Path(path)
        if os.name == "posix":
            try:
                mode = p.stat().st_mode
            except OSError as e:
                raise WitnessArgumentError(
                    f"cannot read the witness key {p}: {e.strerror}"
                ) from None
            if stat.S_IMODE(mode) & 0o077:
                raise WitnessArgumentError(
                    f"witness key {p} is accessible by group or others (chmod 600 it)"
                )
        return cls.from_json(_read_small_file(p, "witness key file"))

    def __repr__(self) -> str:
        return f"WitnessKey(name={self._name!r}, public_key={self._public_key.hex()[:16]}...)"


# ----------------------------------------------------------------------------- registration


class _VerifiedCache:
    """A bounded, thread-safe LRU set of digests of checks that succeeded.

    BLS verification is deterministic, so remembering a success is sound; failures
    are never remembered. Keys are SHA-256 digests of everything the check reads.
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

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


#: (W2) Registrations whose points and PopVerify passed in this process.
_POP_VERIFIED = _VerifiedCache(4 * MAX_WITNESSES)
#: (W4) Cosignatures whose Verify passed: the service checks each on receipt, and
#: :func:`aggregate` then re-checks them for free.
_COSIGNATURES_VERIFIED = _VerifiedCache(16 * MAX_WITNESSES)


def clear_verification_cache() -> None:
    """Forget every remembered PopVerify and cosignature Verify (benchmarks, tests)."""
    _POP_VERIFIED.clear()
    _COSIGNATURES_VERIFIED.clear()


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

        Successful checks are remembered for the process (a bounded cache keyed by
        ``SHA-256(pk, pop)``), so a registry rebuilt from the same entries costs no
        further pairings.
        """
        memo = _VerifiedCache.key(self.public_key, self.proof_of_possession)
        if _POP_VERIFIED.seen(memo):
            return
        public_key = _decode_public_key(self.public_key)
        pop = _decode_signature(self.proof_of_possession, "proof of possession")
        if not _BLS.PopVerify(public_key, pop):
            raise PossessionProofError(
                f"(W2) proof of possession of witness {self.name!r} does not verify"
            )
        _POP_VERIFIED.add(memo)

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
    return COSIGNATURE_DOMAIN + _checkpoint_of(checkpoint).body()


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
        _decode_signature(signature, "cosignature")
        return cosig


def cosign(key: WitnessKey, checkpoint: Checkpoint | SignedCheckpoint) -> Cosignature:
    """(W3) ``Sign(SK, cosigned_message(checkpoint))`` under the key's name.

    This does not apply the witness's consistency rule: a witness co-signs
    through :meth:`WitnessState.cosign`, which does.
    """
    if not isinstance(key, WitnessKey):
        raise WitnessArgumentError("cosign() takes a WitnessKey")
    return Cosignature(key.name, key.sign(cosigned_message(checkpoint)))


def verify_cosignature(
    registration: WitnessRegistration,
    checkpoint: Checkpoint | SignedCheckpoint,
    cosignature: Cosignature,
) -> None:
    """(W4) Raise :class:`CosignatureError` unless ``cosignature`` is the registered
    witness's signature over this checkpoint (its name must match too).

    Successes are remembered in a bounded per-process cache keyed by
    ``SHA-256(pk, message, signature)``: verifying a cosignature on receipt makes
    the later :func:`aggregate` of it free.
    """
    if not isinstance(registration, WitnessRegistration):
        raise WitnessArgumentError("verify_cosignature() takes a WitnessRegistration")
    if not isinstance(cosignature, Cosignature):
        raise WitnessArgumentError("verify_cosignature() takes a Cosignature")
    message = cosigned_message(checkpoint)
    if cosignature.name != registration.name:
        raise CosignatureError(
            f"(W4) cosignature is by {cosignature.name!r}, not {registration.name!r}"
        )
    memo = _VerifiedCache.key(registration.public_key, message, cosignature.signature)
    if _COSIGNATURES_VERIFIED.seen(memo):
        return
    signature = _decode_signature(cosignature.signature, "cosignature")
    public_key = _decode_public_key(registration.public_key)
    if not _BLS.Verify(public_key, message, signature):
        raise CosignatureError(
            f"(W4) cosignature of witness {registration.name!r} does not verify"
            f" for checkpoint size {_checkpoint_of(checkpoint).size}"
        )
    _COSIGNATURES_VERIFIED.add(memo)


# ----------------------------------------------------------------------------- registry


class WitnessRegistry:
    """The registered witnesses, in ledger order. Names and public keys are unique.

    Every registration is verified (:meth:`WitnessRegistration.verify`) on
    construction. Distinct public keys matter: the proof of possession binds the
    key, not the name, so without this check one witness could count twice.
    """

    __slots__ = ("_by_name", "_registrations")

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
        :class:`UnknownWitnessError` for a name not in the registry."""
        if not isinstance(cosignature, Cosignature):
            raise WitnessArgumentError("verify_cosignature() takes a Cosignature")
        verify_cosignature(self.get(cosignature.name), checkpoint, cosignature)

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
        _decode_signature(signature, "aggregate signature")
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
    signature = bytes(_BLS.Aggregate([BLSSignature(c.signature) for c in cosigs]))
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
    public_keys: list[BLSPubkey] = []
    for name in cosigned.signers:
        if name not in registry:
            raise FinalityError(
                f"(W6) signer {name!r} is not a registered witness", reason="UNKNOWN_WITNESS"
            )
        public_keys.append(BLSPubkey(registry.get(name).public_key))
    if len(public_keys) < quorum.threshold:
        raise FinalityError(
            f"(W6) {len(public_keys)} signers, quorum {quorum} needs {quorum.threshold}",
            reason="QUORUM_NOT_MET",
        )
    message = cosigned_message(cosigned.checkpoint)
    signature = BLSSignature(cosigned.aggregate_signature)
    # (W6) e(sum pk_i, H(m)) == e(g1, sigma): one pairing check for any number of signers.
    if not _BLS.FastAggregateVerify(public_keys, message, signature):
        raise FinalityError(
            f"(W6) aggregate signature of {len(public_keys)} witnesses does not verify",
            reason="AGGREGATE_INVALID",
        )
    return FinalityReport(cosigned.checkpoint.checkpoint, cosigned.signers, quorum)


# ----------------------------------------------------------------------------- witness memory


class WitnessState:
    """(W7) A witness's memory: the log's origin and the last co-signed size and root.

    State file (JSON, mode 0600, replaced atomically: temporary file, fsync, rename)::

        {"format": "zkgrid-witness-state", "version": 1,
         "origin": "<origin>", "size": <int>, "root": "<base64 of 32 bytes>"}

    A new witness starts at size 0 (root ``MTH({})``), from which every tree is
    an extension. The order a witness must follow is :meth:`cosign`'s:
    authorize, record (persist), and only then sign and release the cosignature,
    so that a crash can never leave a released cosignature that the memory
    does not cover. One process per state file: the file is not locked.
    """

    __slots__ = ("_authorized", "_origin", "_path", "_root", "_size")

    def __init__(
        self,
        origin: str,
        size: int = 0,
        root: bytes = EMPTY_ROOT,
        *,
        path: str | os.PathLike[str] | None = None,
    ) -> None:
        # Checkpoint validates origin, size and root (LedgerFormatError).
        Checkpoint(origin, size, root)
        self._origin = origin
        self._size = size
        self._root = bytes(root)
        self._path = Path(path) if path is not None else None
        self._authorized: Checkpoint | None = None

    @classmethod
    def create(cls, path: str | os.PathLike[str], origin: str) -> WitnessState:
        """A fresh memory (size 0) for ``origin``, saved to a new file (never overwritten:
        resetting a witness's memory would let it co-sign a fork)."""
        state = cls(origin, path=path)
        _write_new_file(Path(path), state._to_json())
        return state

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> WitnessState:
        p = Path(path)
        keys = frozenset(("format", "version", "origin", "size", "root"))
        obj = _load_json_object(_read_small_file(p, "witness state file"), "witness state", keys)
        if obj["format"] != _STATE_FILE_FORMAT or obj["version"] != _FILE_VERSION:
            raise WitnessFormatError("not a version 1 zkgrid witness state file")
        origin, size, root_text = obj["origin"], obj["size"], obj["root"]
        if not isinstance(origin, str):
            raise WitnessFormatError("witness state origin must be a string")
        if isinstance(size, bool) or not isinstance(size, int):
            raise WitnessFormatError("witness state size must be an integer")
        if not isinstance(root_text, str):
            raise WitnessFormatError("witness state root must be base64 text")
        try:
            root = base64.b64decode(root_text.encode("ascii"), validate=True)
        except (UnicodeEncodeError, binascii.Error, ValueError):
            raise WitnessFormatError("witness state root is not base64") from None
        if base64.b64encode(root).decode("ascii") != root_text or len(root) != HASH_SIZE:
            raise WitnessFormatError(f"witness state root is not canonical {HASH_SIZE}-byte base64")
        try:
            return cls(origin, size, root, path=p)
        except LedgerError as e:
            raise WitnessFormatError(f"witness state: {e}") from None

    def _to_json(self) -> bytes:
        obj = {
            "format": _STATE_FILE_FORMAT,
            "version": _FILE_VERSION,
            "origin": self._origin,
            "size": self._size,
            "root": base64.b64encode(self._root).decode("ascii"),
        }
        return (json.dumps(obj, indent=1) + "\n").encode("utf-8")

    def save(self) -> None:
        """Atomically replace the state file (no-op for an in-memory state)."""
        if self._path is None:
            return
        tmp = self._path.with_name(f".{self._path.name}.{secrets.token_hex(8)}.tmp")
        _write_new_file(tmp, self._to_json())
        try:
            os.replace(tmp, self._path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(self._path.parent)

    @property
    def origin(self) -> str:
        return self._origin

    @property
    def size(self) -> int:
        return self._size

    @property
    def root(self) -> bytes:
        return self._root

    @property
    def path(self) -> Path | None:
        return self._path

    def authorize(
        self, checkpoint: Checkpoint | SignedCheckpoint, consistency_proof: Sequence[bytes]
    ) -> None:
        """(W7) Raise :class:`WitnessRefusal` unless ``checkpoint`` extends the memory:
        same origin, size >= last size, and ``consistency_proof`` verifies from
        (last size, last root) to (size, root) (equal sizes need equal roots).

        This checks the tree only; the log's signature on the checkpoint is the
        caller's to verify (``ledger.verify_checkpoint``). A malformed proof raises
        :class:`~ledger.errors.LedgerFormatError`.
        """
        new = _checkpoint_of(checkpoint)
        if new.origin != self._origin:
            raise WitnessRefusal(
                "(W7) checkpoint is for another log origin", reason="ORIGIN_MISMATCH"
            )
        if new.size < self._size:
            raise WitnessRefusal(
                f"(W7) checkpoint size {new.size} is smaller than the last co-signed {self._size}"
            )
        if new.size == self._size and new.root != self._root:
            raise WitnessRefusal(f"(W7) fork: another root at the last co-signed size {self._size}")
        try:
            verify_consistency(self._size, new.size, consistency_proof, self._root, new.root)
        except VerificationError as e:
            raise WitnessRefusal(
                f"(W7) checkpoint size {new.size} is not consistent with the last co-signed"
                f" size {self._size}: {e}"
            ) from e
        self._authorized = new

    def record(self, checkpoint: Checkpoint | SignedCheckpoint) -> None:
        """Remember ``checkpoint`` as the last co-signed one and persist it.

        It must be the checkpoint the last :meth:`authorize` accepted (or the one
        already remembered); anything else raises :class:`WitnessArgumentError`.
        """
        new = _checkpoint_of(checkpoint)
        if (new.origin, new.size, new.root) == (self._origin, self._size, self._root):
            return
        authorized = self._authorized
        if authorized is None or (authorized.origin, authorized.size, authorized.root) != (
            new.origin,
            new.size,
            new.root,
        ):
            raise WitnessArgumentError("record() takes the checkpoint authorize() just accepted")
        previous = (self._size, self._root)
        self._size, self._root = new.size, new.root
        try:
            self.save()
        except BaseException:
            self._size, self._root = previous
            raise
        self._authorized = None

    def cosign(
        self,
        key: WitnessKey,
        checkpoint: Checkpoint | SignedCheckpoint,
        consistency_proof: Sequence[bytes],
    ) -> Cosignature:
        """(W7) authorize, record (persisted), then :func:`cosign`: the safe order."""
        self.authorize(checkpoint, consistency_proof)
        self.record(checkpoint)
        return cosign(key, checkpoint)

    def __repr__(self) -> str:
        return f"WitnessState(origin={self._origin!r}, size={self._size})"
