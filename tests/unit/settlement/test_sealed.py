"""Sealed openings (settlement.sealed): round trip, the construction rebuilt here from the
primitives (D7)-(D9), strict decoding, every kind of wrong box with its typed error, the
commitment check (D10), the keys, and the known-answer boxes
(tests/vectors/market_delivery/sealed.json)."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from settlement.errors import RecordFormatError
from settlement.market_circuits import ALLOCATION, DELIVERY, delivery_context
from settlement.sealed import (
    BOX_SIZE,
    SEALED_DOMAIN,
    EncryptionKey,
    Opening,
    OpeningMismatch,
    SealedBoxInvalid,
    SealedFormatError,
    decode,
    open_sealed,
    seal,
    unseal,
    validate_encryption_public_key,
)
from zkgrid.errors import (
    InvalidArgumentError,
    ProofFormatError,
    Reason,
    VerificationError,
)
from zkp.group import ORDER, random_scalar
from zkp.pedersen import commit

VECTORS = json.loads(
    (Path(__file__).parents[2] / "vectors" / "market_delivery" / "sealed.json").read_text()
)["vectors"]

TRADE = hashlib.sha256(b"sealed test trade").digest()
AD = delivery_context(TRADE, ALLOCATION)
VALUE = 2_345
#: A compressed encoding whose x (= 1) has no point on P-256.
OFF_CURVE = b"\x02" + (1).to_bytes(32, "big")
BLINDING = 0x1234_5678_9ABC_DEF0_1122_3344_5566_7788_99AA_BBCC_DDEE_FF00_1357_9BDF_2468_ACE0


@pytest.fixture(scope="module")
def key() -> EncryptionKey:
    return EncryptionKey.generate()


@pytest.fixture(scope="module")
def box(key: EncryptionKey) -> bytes:
    return seal(VALUE, BLINDING, key.public_key, AD)


def _secret_free(error: BaseException) -> None:
    text = str(error)
    for secret in (str(VALUE), f"{BLINDING:x}", f"{BLINDING}"):
        assert secret not in text


# --------------------------------------------------------------------------- round trip


def test_a_sealed_opening_opens_with_the_recipients_key(key: EncryptionKey, box: bytes) -> None:
    assert len(box) == BOX_SIZE == 102
    assert box[0] == 1
    assert box[1:34] != key.public_key
    opening = unseal(box, key, AD)
    assert opening == Opening(VALUE, BLINDING) == (VALUE, BLINDING)
    assert open_sealed(box, key, commit(VALUE, BLINDING), AD) == opening
    assert open_sealed(box, key, commit(VALUE, BLINDING).to_bytes(), AD) == opening
    assert str(VALUE) not in repr(opening)


@pytest.mark.parametrize("value", [0, 1, 2**32 - 1, 2**64 - 1])
@pytest.mark.parametrize("blinding", [0, 1, ORDER - 1])
def test_every_value_and_blinding_round_trips(
    key: EncryptionKey, value: int, blinding: int
) -> None:
    assert unseal(seal(value, blinding, key.public_key, b""), key, b"") == (value, blinding)


def test_boxes_are_randomized(key: EncryptionKey, box: bytes) -> None:
    again = seal(VALUE, BLINDING, key.public_key, AD)
    assert again != box
    assert again[1:34] != box[1:34]
    assert again[34:46] != box[34:46]


def test_the_construction_is_the_documented_one(key: EncryptionKey, box: bytes) -> None:
    """(D7)-(D9) rebuilt from the primitives: ECDH, HKDF-SHA-256 with the domain, the
    associated data and both public keys as info, AES-256-GCM with the header and the
    associated data as aad, plaintext u64 value || 32-byte blinding."""
    ephemeral = box[1:34]
    nonce, ciphertext = box[34:46], box[46:]
    point = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), ephemeral)
    private = ec.derive_private_key(int.from_bytes(key.private_bytes(), "big"), ec.SECP256R1())
    shared = private.exchange(ec.ECDH(), point)
    info = SEALED_DOMAIN + struct.pack(">I", len(AD)) + AD + ephemeral + key.public_key
    aes = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(shared)
    plaintext = AESGCM(aes).decrypt(nonce, ciphertext, box[:46] + AD)
    assert plaintext == VALUE.to_bytes(8, "big") + BLINDING.to_bytes(32, "big")


# --------------------------------------------------------------------------- wrong boxes


def test_another_key_cannot_open_it(box: bytes) -> None:
    with pytest.raises(SealedBoxInvalid) as refused:
        unseal(box, EncryptionKey.generate(), AD)
    _secret_free(refused.value)


def test_other_associated_data_cannot_open_it(key: EncryptionKey, box: bytes) -> None:
    for other in (
        delivery_context(TRADE, DELIVERY),  # the other step of the trade
        delivery_context(hashlib.sha256(b"another trade").digest(), ALLOCATION),
        b"",
        AD + b"\x00",
    ):
        with pytest.raises(SealedBoxInvalid):
            unseal(box, key, other)


@pytest.mark.parametrize("where", ["nonce", "ciphertext", "tag"])
def test_an_edited_box_does_not_open(key: EncryptionKey, box: bytes, where: str) -> None:
    span = {"nonce": range(34, 46), "ciphertext": range(46, 86), "tag": range(86, 102)}[where]
    for i in span:
        for flip in (0x01, 0x80):
            edited = bytearray(box)
            edited[i] ^= flip
            with pytest.raises(SealedBoxInvalid) as refused:
                unseal(bytes(edited), key, AD)
            _secret_free(refused.value)


def test_an_edited_ephemeral_key_does_not_open(key: EncryptionKey, box: bytes) -> None:
    """Off the curve it is a format error; another point is a box that does not decrypt."""
    invalid = format_errors = 0
    for i in range(1, 34):
        edited = bytearray(box)
        edited[i] ^= 0x01
        try:
            unseal(bytes(edited), key, AD)
        except SealedBoxInvalid:
            invalid += 1
        except SealedFormatError:
            format_errors += 1
        else:  # pragma: no cover - the failure this test exists for
            pytest.fail(f"an edit of byte {i} of the ephemeral key opened")
    assert invalid + format_errors == 33
    assert invalid > 0
    # a valid point of another key
    other = bytearray(box)
    other[1:34] = EncryptionKey.generate().public_key
    with pytest.raises(SealedBoxInvalid):
        unseal(bytes(other), key, AD)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda b: b[:-1],  # truncated
        lambda b: b[:46],
        lambda b: b"",
        lambda b: b + b"\x00",  # trailing byte
        lambda b: b"\x02" + b[1:],  # another version
        lambda b: b"\x00" + b[1:],
        lambda b: b[:1] + b"\x04" + b[2:],  # not a compressed point
        lambda b: b[:1] + b"\x02" + b"\xff" * 32 + b[34:],  # x not below p
        lambda b: bytearray(b),  # not bytes
        lambda b: b.hex(),
    ],
)
def test_a_malformed_box_is_a_format_error(key: EncryptionKey, box: bytes, mangle: Any) -> None:
    bad = mangle(box)
    with pytest.raises(SealedFormatError) as refused:
        unseal(bad, key, AD)
    assert refused.value.reason is Reason.RECORD_MALFORMED
    with pytest.raises(SealedFormatError):
        decode(bad)


def test_a_noncanonical_blinding_inside_is_a_format_error(key: EncryptionKey) -> None:
    """Only the sender can make one (the box authenticates it): the recipient refuses it."""
    ephemeral = EncryptionKey.generate()
    nonce = b"\x07" * 12
    header = b"\x01" + ephemeral.public_key + nonce
    shared = ephemeral._exchange(
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), key.public_key)
    )
    info = SEALED_DOMAIN + struct.pack(">I", len(AD)) + AD + ephemeral.public_key
    aes = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=info + key.public_key).derive(shared)  # fmt: skip
    plaintext = (5).to_bytes(8, "big") + ORDER.to_bytes(32, "big")
    bad = header + AESGCM(aes).encrypt(nonce, plaintext, header + AD)
    with pytest.raises(SealedFormatError, match="group order"):
        unseal(bad, key, AD)


def test_an_opening_of_another_commitment_is_refused(key: EncryptionKey, box: bytes) -> None:
    """The sender sealed a wrong opening (or the box is for another commitment)."""
    for other in (commit(VALUE + 1, BLINDING), commit(VALUE, BLINDING + 1),
                  commit(VALUE, random_scalar())):  # fmt: skip
        with pytest.raises(OpeningMismatch) as refused:
            open_sealed(box, key, other, AD)
        _secret_free(refused.value)
    lying = seal(VALUE - 1, BLINDING, key.public_key, AD)
    with pytest.raises(OpeningMismatch):
        open_sealed(lying, key, commit(VALUE, BLINDING), AD)
    with pytest.raises(ProofFormatError):
        open_sealed(box, key, OFF_CURVE, AD)


def test_the_errors_are_typed_and_distinct() -> None:
    assert issubclass(SealedFormatError, RecordFormatError)
    assert issubclass(SealedFormatError, ProofFormatError)
    assert SealedFormatError.reason is Reason.RECORD_MALFORMED
    for cls, reason in (
        (SealedBoxInvalid, Reason.SEALED_BOX_INVALID),
        (OpeningMismatch, Reason.OPENING_MISMATCH),
    ):
        assert issubclass(cls, VerificationError)
        assert not issubclass(cls, ProofFormatError)
        assert cls.reason is reason
    assert not issubclass(OpeningMismatch, SealedBoxInvalid)
    assert not issubclass(SealedBoxInvalid, OpeningMismatch)


# --------------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    ("value", "blinding"),
    [(-1, 1), (2**64, 1), (1, -1), (1, ORDER), (True, 1), (1.0, 1), ("1", 1)],
)
def test_seal_refuses_values_outside_the_encoding(
    key: EncryptionKey, value: Any, blinding: Any
) -> None:
    with pytest.raises(InvalidArgumentError):
        seal(value, blinding, key.public_key, AD)


def test_seal_refuses_a_bad_recipient_key_ad_or_nonce(key: EncryptionKey) -> None:
    for recipient in (OFF_CURVE, key.public_key[:-1], b"\x04" + key.public_key[1:]):
        with pytest.raises(InvalidArgumentError):
            seal(1, 1, recipient, AD)
    with pytest.raises(InvalidArgumentError):
        seal(1, 1, key.public_key, "ad")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        seal(1, 1, key.public_key, AD, nonce=b"\x00" * 11)
    with pytest.raises(InvalidArgumentError):
        unseal(seal(1, 1, key.public_key, AD), key.public_key, AD)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- keys


def test_a_key_round_trips_through_pem_and_raw_bytes(key: EncryptionKey) -> None:
    assert len(key.public_key) == 33
    assert key.public_key[0] in (2, 3)
    assert validate_encryption_public_key(key.public_key) == key.public_key
    for again in (
        EncryptionKey.from_pem(key.to_pem()),
        EncryptionKey.from_pem(key.to_pem(b"pass phrase"), b"pass phrase"),
        EncryptionKey.from_private_bytes(key.private_bytes()),
    ):
        assert again.public_key == key.public_key
        assert again.private_bytes() == key.private_bytes()
    box = seal(7, 9, key.public_key, AD)
    assert unseal(box, EncryptionKey.from_pem(key.to_pem()), AD) == (7, 9)
    assert key.private_bytes().hex() not in repr(key)
    assert key.public_key.hex() in repr(key)


@pytest.mark.parametrize(
    "raw", [b"\x00" * 32, ORDER.to_bytes(32, "big"), b"\xff" * 32, b"\x01" * 31, "01" * 32]
)
def test_a_bad_raw_key_is_refused(raw: Any) -> None:
    with pytest.raises(InvalidArgumentError):
        EncryptionKey.from_private_bytes(raw)


def test_a_bad_pem_is_refused(key: EncryptionKey) -> None:
    with pytest.raises(InvalidArgumentError):
        EncryptionKey.from_pem(b"not a pem")
    with pytest.raises(InvalidArgumentError):
        EncryptionKey.from_pem(key.to_pem(b"right"), b"wrong")
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(InvalidArgumentError):
        EncryptionKey(p384)


@pytest.mark.parametrize("bad", [OFF_CURVE, b"\x04" * 33, b"", "02" * 33, b"\x03" + b"\xff" * 32])
def test_an_encryption_public_key_off_the_curve_is_a_format_error(bad: Any) -> None:
    with pytest.raises(SealedFormatError):
        validate_encryption_public_key(bad)


# --------------------------------------------------------------------------- vectors


def _opening(o: dict[str, Any]) -> tuple[int, int]:
    return o["value"], int(o["blinding"], 16)


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_a_stored_box_opens_with_the_stored_key(vector: dict[str, Any]) -> None:
    key = EncryptionKey.from_private_bytes(bytes.fromhex(vector["recipient_private_key"]))
    assert key.public_key.hex() == vector["recipient_public_key"]
    box, ad = bytes.fromhex(vector["box"]), bytes.fromhex(vector["associated_data"])
    commitment = bytes.fromhex(vector["commitment"])
    assert open_sealed(box, key, commitment, ad) == _opening(vector["opening"])
    # the construction is deterministic given the ephemeral key and the nonce
    ephemeral = EncryptionKey.from_private_bytes(bytes.fromhex(vector["ephemeral_private_key"]))
    again = seal(*_opening(vector["opening"]), key.public_key, ad, ephemeral=ephemeral,
                 nonce=bytes.fromhex(vector["nonce"]))  # fmt: skip
    assert again == box
    with pytest.raises(SealedBoxInvalid):
        unseal(box, key, ad[:-1] + bytes([ad[-1] ^ 1]))
