"""The P-256 private keys a party keeps: what a meter's signing key and its encryption key
(sealed openings) share: validation, generation, PEM in and out, the compressed public
key. The private key never leaves its holder; ``repr`` shows the public key only."""

from __future__ import annotations

from typing import ClassVar, Self

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from zkgrid.errors import InvalidArgumentError

__all__ = ["P256PrivateKey"]


class P256PrivateKey:
    """A P-256 private key; subclasses name what it is for (``WHAT``)."""

    __slots__ = ("_key", "_public")

    #: What the key is, in messages ("meter key", "encryption key").
    WHAT: ClassVar[str] = "key"

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(private_key, ec.EllipticCurvePrivateKey) or not isinstance(
            private_key.curve, ec.SECP256R1
        ):
            raise InvalidArgumentError(f"a {self.WHAT} must be a P-256 private key")
        self._key = private_key
        self._public = private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
        )

    @classmethod
    def generate(cls) -> Self:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_pem(cls, data: bytes, password: bytes | None = None) -> Self:
        """Load a PKCS#8 or SEC1 PEM private key."""
        try:
            key = serialization.load_pem_private_key(data, password=password)
        except (ValueError, TypeError):
            raise InvalidArgumentError(f"cannot load the {cls.WHAT} PEM") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise InvalidArgumentError("the PEM does not hold an EC key")
        return cls(key)

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

    def __repr__(self) -> str:
        return f"{type(self).__name__}(public_key={self._public.hex()})"
