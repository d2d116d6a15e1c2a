"""A witness's BLS secret key, its key file, and co-signing (W2, W3).

Signing goes through ``blspy.PopSchemeMPL`` (ciphersuite
``BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_``, :mod:`ledger.cosignature`).
Key generation is the draft's ``KeyGen`` (draft-irtf-cfrg-bls-signature 2.3),
written here with :mod:`hmac`: blspy's ``key_gen`` follows another derivation,
so the same IKM would give another key than the draft's (and py_ecc's).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from typing import TYPE_CHECKING, Final

from ledger.checkpoint import Checkpoint, SignedCheckpoint
from ledger.cosignature import (
    CIPHERSUITE_ID,
    PUBLIC_KEY_SIZE,
    SIGNATURE_SIZE,
    Cosignature,
    WitnessArgumentError,
    WitnessFormatError,
    WitnessRegistration,
    cosigned_message,
    validate_witness_name,
)
from witness._files import load_json_object, read_private_text, write_new_private_file

if TYPE_CHECKING:  # pragma: no cover
    from blspy import PrivateKey

__all__ = ["CURVE_ORDER", "SECRET_KEY_SIZE", "WitnessKey", "cosign", "key_gen"]

#: r, the order of the BLS12-381 groups: a secret key is in [1, r).
CURVE_ORDER: Final = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001
SECRET_KEY_SIZE: Final = 32

_KEY_FILE_FORMAT = "zkgrid-witness-key"
_FILE_VERSION = 1
_HEX64 = re.compile(r"[0-9a-f]{64}", re.ASCII)
_HEX96 = re.compile(r"[0-9a-f]{96}", re.ASCII)
#: ceil(3 * ceil(log2(r)) / 16): the bytes of HKDF output reduced mod r (48).
_KEYGEN_L = 48
_KEYGEN_SALT = b"BLS-SIG-KEYGEN-SALT-"


def key_gen(ikm: bytes, key_info: bytes = b"") -> int:
    """``KeyGen(IKM, key_info)`` of draft-irtf-cfrg-bls-signature (section 2.3)::

        salt = "BLS-SIG-KEYGEN-SALT-"; SK = 0
        while SK == 0:
            salt = H(salt)
            PRK = HKDF-Extract(salt, IKM || I2OSP(0, 1))
            OKM = HKDF-Expand(PRK, key_info || I2OSP(L, 2), L)
            SK = OS2IP(OKM) mod r

    with ``H`` = SHA-256 and ``L`` = 48. ``IKM`` must be at least 32 bytes.
    """
    if not isinstance(ikm, bytes) or len(ikm) < 32:
        raise WitnessArgumentError("KeyGen needs at least 32 bytes of IKM")
    if not isinstance(key_info, bytes):
        raise WitnessArgumentError("key_info must be bytes")
    salt = _KEYGEN_SALT
    secret = 0
    while secret == 0:
        salt = hashlib.sha256(salt).digest()
        prk = hmac.new(salt, ikm + b"\x00", hashlib.sha256).digest()
        info = key_info + _KEYGEN_L.to_bytes(2, "big")
        okm, block = b"", b""
        for i in range(1, -(-_KEYGEN_L // 32) + 1):  # HKDF-Expand (RFC 5869)
            block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
            okm += block
        secret = int.from_bytes(okm[:_KEYGEN_L], "big") % CURVE_ORDER
    return secret


class WitnessKey:
    """A witness's BLS secret key and name. The secret never appears in ``repr`` or errors.

    Key file (JSON, mode 0600)::

        {"format": "zkgrid-witness-key", "version": 1, "ciphersuite": CIPHERSUITE_ID,
         "name": "<name>", "secret_key": "<64 hex: I2OSP(SK, 32)>", "public_key": "<96 hex>"}

    The public key is redundant and checked on load (it catches a corrupted secret).
    """

    __slots__ = ("_name", "_pop", "_public_key", "_secret", "_sk")

    def __init__(self, name: str, secret_key: int) -> None:
        from blspy import PrivateKey

        self._name = validate_witness_name(name, WitnessArgumentError)
        if isinstance(secret_key, bool) or not isinstance(secret_key, int):
            raise WitnessArgumentError("a witness secret key is an integer")
        if not 0 < secret_key < CURVE_ORDER:
            raise WitnessArgumentError("a witness secret key is in [1, r)")
        self._secret = secret_key
        try:
            raw = secret_key.to_bytes(SECRET_KEY_SIZE, "big")
            self._sk: PrivateKey = PrivateKey.from_bytes(raw)
            self._public_key = bytes(self._sk.get_g1())
        except (ValueError, RuntimeError) as exc:  # pragma: no cover - the range is checked
            raise WitnessArgumentError("a witness secret key is in [1, r)") from exc
        if len(self._public_key) != PUBLIC_KEY_SIZE:  # pragma: no cover - blspy's encoding
            raise WitnessFormatError("blspy returned a public key of an unexpected size")
        self._pop: bytes | None = None

    @classmethod
    def generate(cls, name: str) -> WitnessKey:
        """A fresh key: ``KeyGen(IKM)`` (draft-irtf-cfrg-bls-signature 2.3), 32 bytes of IKM
        from :mod:`secrets`."""
        return cls(name, key_gen(secrets.token_bytes(32)))

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
            from blspy import PopSchemeMPL

            self._pop = bytes(PopSchemeMPL.pop_prove(self._sk))
        return self._pop

    def registration(self) -> WitnessRegistration:
        """The ``WITNESS_KEY`` record of this key (its proof of possession is not re-verified)."""
        return WitnessRegistration(self._name, self._public_key, self.proof_of_possession())

    def sign(self, message: bytes) -> bytes:
        """``Sign(SK, message)`` in the POP ciphersuite: 96 bytes. Prefer :func:`cosign`."""
        if not isinstance(message, bytes):
            raise WitnessArgumentError("message must be bytes")
        from blspy import PopSchemeMPL

        signature = bytes(PopSchemeMPL.sign(self._sk, message))
        if len(signature) != SIGNATURE_SIZE:  # pragma: no cover - blspy's encoding
            raise WitnessFormatError("blspy returned a signature of an unexpected size")
        return signature

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
        obj = load_json_object(text, "witness key file", keys)
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
        if not 0 < secret < CURVE_ORDER:
            raise WitnessFormatError("secret_key is not in [1, r)")
        key = cls(name, secret)
        if key.public_key.hex() != public_hex:
            raise WitnessFormatError("public_key does not match secret_key")
        return key

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the key file with mode 0600; refuse to overwrite an existing file."""
        write_new_private_file(path, (self.to_json() + "\n").encode("utf-8"), "witness key file")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> WitnessKey:
        """Read a key file: a private file (mode 0600, owned by this user, not a symbolic
        link); one that group or others can access is refused (``chmod 600`` it)."""
        return cls.from_json(read_private_text(path, "witness key file"))

    def __repr__(self) -> str:
        return f"WitnessKey(name={self._name!r}, public_key={self._public_key.hex()[:16]}...)"


def cosign(key: WitnessKey, checkpoint: Checkpoint | SignedCheckpoint) -> Cosignature:
    """(W3) ``Sign(SK, cosigned_message(checkpoint))`` under the key's name.

    This does not apply the witness's consistency rule: a witness co-signs
    through :meth:`witness.state.WitnessState.cosign`, which does.
    """
    if not isinstance(key, WitnessKey):
        raise WitnessArgumentError("cosign() takes a WitnessKey")
    return Cosignature(key.name, key.sign(cosigned_message(checkpoint)))
