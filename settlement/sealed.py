"""Sealed openings: a commitment's opening encrypted to one party (docs/notes/market.md,
"The sealed opening", (D7)-(D10)).

A delivery step hands the opening ``(value, blinding)`` of its output commitment to the
counterparty through the ledger, readable by that party alone: ephemeral-static ECDH on
P-256 with the recipient's enrolment key (:class:`EncryptionKey`, distinct from its
signing key), HKDF-SHA-256 and AES-256-GCM, with the trade's context as associated data::

    Z      = x(e · P_R)                                       ECDH                (D7)
    K      = HKDF-SHA-256(salt = "", IKM = Z,
                          info = domain || u32 len || ad || P_E || P_R, 32 bytes)  (D8)
    box    = 0x01 || P_E (33) || nonce (12) || AES-256-GCM_K(nonce, u64 value ||
             blinding (32, big-endian), aad = 0x01 || P_E || nonce || ad)         (D9)

102 bytes. :func:`decode` is strict (:class:`SealedFormatError`); a well-formed box that
does not decrypt under the key and associated data (another recipient, an edited byte,
another trade or step) raises :class:`SealedBoxInvalid`; :func:`open_sealed` also checks
that the opening opens the commitment it is for (D10) and raises
:class:`OpeningMismatch` when it does not. No message carries the opening.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from settlement.errors import RecordFormatError, SettlementError
from settlement.keys import P256PrivateKey
from zkgrid.errors import InvalidArgumentError, Reason, VerificationError
from zkp.group import ORDER, Scalar
from zkp.pedersen import Commitment, commit

__all__ = [
    "BOX_SIZE",
    "SEALED_DOMAIN",
    "SEALED_VERSION",
    "EncryptionKey",
    "Opening",
    "OpeningMismatch",
    "SealedBox",
    "SealedBoxInvalid",
    "SealedFormatError",
    "decode",
    "open_sealed",
    "seal",
    "unseal",
    "validate_encryption_public_key",
]

#: Domain of the key derivation (D8).
SEALED_DOMAIN = b"zkgrid/market-sealed-opening v1"
SEALED_VERSION = 1
_POINT = 33
_NONCE = 12
_TAG = 16
_SCALAR = 32
_PLAINTEXT = 8 + _SCALAR
#: Bytes of a sealed box: version, ephemeral key, nonce, ciphertext and tag (D9).
BOX_SIZE = 1 + _POINT + _NONCE + _PLAINTEXT + _TAG
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_MAX_AD = 1 << 16


class SealedFormatError(RecordFormatError):
    """Bytes that are not a canonical sealed box (``RECORD_MALFORMED``), or a decrypted
    opening that is not canonical."""


class SealedBoxInvalid(SettlementError, VerificationError):
    """A well-formed sealed box that does not decrypt under this key and associated data:
    another recipient, an edited byte or another trade or step."""

    reason = Reason.SEALED_BOX_INVALID


class OpeningMismatch(SettlementError, VerificationError):
    """A sealed opening that decrypts but does not open the commitment it was sent for: the
    counterparty refuses it and reports it (docs/design/market-v1.md, "Failure cases")."""

    reason = Reason.OPENING_MISMATCH


class Opening(NamedTuple):
    """The opening of ``value*G + blinding*H``."""

    value: int
    blinding: Scalar

    def __repr__(self) -> str:  # never print an opening
        return "Opening(<secret>)"


# --------------------------------------------------------------------------- keys


def _public_key(data: object, what: str) -> ec.EllipticCurvePublicKey:
    if not isinstance(data, bytes) or len(data) != _POINT or data[0] not in (2, 3):
        raise SealedFormatError(f"{what} is not a 33-byte compressed P-256 point")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), data)
    except ValueError:
        raise SealedFormatError(f"{what} is not a point on P-256") from None


def validate_encryption_public_key(public_key33: object) -> bytes:
    """A canonical 33-byte compressed P-256 point on the curve; :class:`SealedFormatError`
    else (an enrolment's encryption key)."""
    if not isinstance(public_key33, bytes):
        raise SealedFormatError("an encryption public key is bytes")
    _public_key(public_key33, "encryption public key")
    return public_key33


class EncryptionKey(P256PrivateKey):
    """A party's ECDH P-256 key for sealed openings (its enrolment's encryption key,
    distinct from the meter's signing key); the private key never leaves the party."""

    __slots__ = ()
    WHAT: ClassVar[str] = "encryption key"

    @classmethod
    def from_private_bytes(cls, data: bytes) -> EncryptionKey:
        """A key from its secret scalar, 32 bytes big-endian in ``[1, n)``."""
        if not isinstance(data, bytes) or len(data) != _SCALAR:
            raise InvalidArgumentError("a raw encryption key is 32 bytes")
        value = int.from_bytes(data, "big")
        if not 0 < value < ORDER:
            raise InvalidArgumentError("a raw encryption key is in [1, n)")
        return cls(ec.derive_private_key(value, ec.SECP256R1()))

    def private_bytes(self) -> bytes:
        """The secret scalar, 32 bytes big-endian (for the party's own key file)."""
        return self._key.private_numbers().private_value.to_bytes(_SCALAR, "big")

    def _exchange(self, peer: ec.EllipticCurvePublicKey) -> bytes:
        return self._key.exchange(ec.ECDH(), peer)


# --------------------------------------------------------------------------- the box


@dataclass(frozen=True, slots=True)
class SealedBox:
    """A parsed sealed box (D9); :meth:`encode` and :func:`decode` are canonical."""

    ephemeral_key: bytes
    nonce: bytes
    ciphertext: bytes  # the encrypted opening and the 16-byte tag

    def header(self) -> bytes:
        return bytes([SEALED_VERSION]) + self.ephemeral_key + self.nonce

    def encode(self) -> bytes:
        return self.header() + self.ciphertext


def decode(data: object) -> SealedBox:
    """Strict parse of a sealed box: exactly :data:`BOX_SIZE` bytes, version 1, an
    ephemeral key on P-256; :class:`SealedFormatError` else."""
    if not isinstance(data, bytes):
        raise SealedFormatError("a sealed box is bytes")
    if len(data) != BOX_SIZE:
        raise SealedFormatError(f"a sealed box is {BOX_SIZE} bytes, not {len(data)}")
    if data[0] != SEALED_VERSION:
        raise SealedFormatError(f"sealed box version {data[0]} is not {SEALED_VERSION}")
    ephemeral = data[1 : 1 + _POINT]
    _public_key(ephemeral, "the sealed box's ephemeral key")
    nonce = data[1 + _POINT : 1 + _POINT + _NONCE]
    return SealedBox(ephemeral, nonce, data[1 + _POINT + _NONCE :])


def _associated(associated_data: object) -> bytes:
    if not isinstance(associated_data, bytes):
        raise InvalidArgumentError("the associated data is bytes")
    if len(associated_data) > _MAX_AD:
        raise InvalidArgumentError(f"the associated data is at most {_MAX_AD} bytes")
    return associated_data


def _key(shared: bytes, associated_data: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    """(D8) the AES-256 key of a box."""
    info = SEALED_DOMAIN + _U32.pack(len(associated_data)) + associated_data
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=info + ephemeral + recipient
    ).derive(shared)


def seal(
    value: int,
    blinding: Scalar,
    recipient_public_key: bytes,
    associated_data: bytes,
    *,
    ephemeral: EncryptionKey | None = None,
    nonce: bytes | None = None,
) -> bytes:
    """Seal the opening ``(value, blinding)`` to ``recipient_public_key`` (33 bytes) under
    ``associated_data`` (the trade's context): (D7)-(D9). ``ephemeral`` and ``nonce`` are
    fresh random ones unless given (deterministic vectors only: never reuse them)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 64:
        raise InvalidArgumentError("a sealed value is an integer in [0, 2^64)")
    if isinstance(blinding, bool) or not isinstance(blinding, int) or not 0 <= blinding < ORDER:
        raise InvalidArgumentError("a sealed blinding is an integer in [0, q)")
    ad = _associated(associated_data)
    try:
        recipient = _public_key(recipient_public_key, "the recipient's public key")
    except SealedFormatError:
        raise InvalidArgumentError("the recipient's key is not a P-256 public key") from None
    eph = ephemeral if ephemeral is not None else EncryptionKey.generate()
    if nonce is None:
        nonce = os.urandom(_NONCE)
    elif not isinstance(nonce, bytes) or len(nonce) != _NONCE:
        raise InvalidArgumentError(f"a nonce is {_NONCE} bytes")
    key = _key(eph._exchange(recipient), ad, eph.public_key, recipient_public_key)
    header = bytes([SEALED_VERSION]) + eph.public_key + nonce
    plaintext = _U64.pack(value) + blinding.to_bytes(_SCALAR, "big")
    return header + AESGCM(key).encrypt(nonce, plaintext, header + ad)


def unseal(box: bytes, key: EncryptionKey, associated_data: bytes) -> Opening:
    """The opening sealed in ``box`` to ``key`` under ``associated_data``.

    Raises :class:`SealedFormatError` for bytes that are not a sealed box (or a decrypted
    opening that is not canonical) and :class:`SealedBoxInvalid` for a box that does not
    decrypt: another recipient, an edited byte, other associated data."""
    if not isinstance(key, EncryptionKey):
        raise InvalidArgumentError("unseal needs an EncryptionKey")
    ad = _associated(associated_data)
    parsed = decode(box)
    ephemeral = _public_key(parsed.ephemeral_key, "the sealed box's ephemeral key")
    aes = _key(key._exchange(ephemeral), ad, parsed.ephemeral_key, key.public_key)
    try:
        plaintext = AESGCM(aes).decrypt(parsed.nonce, parsed.ciphertext, parsed.header() + ad)
    except InvalidTag:
        raise SealedBoxInvalid(
            "the sealed opening does not decrypt (another recipient, an edited box or"
            " another trade or step)"
        ) from None
    value = _U64.unpack(plaintext[:8])[0]
    blinding = int.from_bytes(plaintext[8:], "big")
    if blinding >= ORDER:
        raise SealedFormatError("the sealed opening's blinding is not below the group order")
    return Opening(value, blinding)


def open_sealed(
    box: bytes, key: EncryptionKey, commitment: Commitment | bytes, context: bytes
) -> Opening:
    """(D10) :func:`unseal`, then check that the opening opens ``commitment``: raises
    :class:`OpeningMismatch` when ``value*G + blinding*H`` is another point (the sender
    sealed a wrong opening), besides :func:`unseal`'s errors."""
    if isinstance(commitment, bytes):
        commitment = Commitment.from_bytes(commitment)
    elif not isinstance(commitment, Commitment):
        raise InvalidArgumentError("open_sealed needs a Commitment or its 33 bytes")
    opening = unseal(box, key, context)
    if commit(opening.value, opening.blinding) != commitment:
        raise OpeningMismatch("the sealed opening does not open its commitment")
    return opening
