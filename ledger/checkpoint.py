"""Signed checkpoints: C2SP ``tlog-checkpoint`` bodies in C2SP ``signed-note`` envelopes.

::

    <origin>\\n<decimal size>\\n<base64 root>\\n[<extension line>\\n]*     (L13: the note text)
    \\n                                                                  (one blank line)
    — <key name> <base64(key ID (4 bytes) || signature)>\\n                (L14: one or more)

Ed25519 only (signature type 0x01); ``key ID = SHA-256(name || 0x0A || 0x01 || pubkey)[:4]``
and the verifier key string is ``<name>+<hex key ID>+<base64(0x01 || pubkey)>`` (L15).
Parsing is strict, so :meth:`SignedCheckpoint.from_text` and
:meth:`SignedCheckpoint.to_text` round-trip byte for byte.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from ledger.errors import CheckpointSignatureError, LedgerArgumentError, LedgerFormatError
from ledger.merkle import HASH_SIZE

__all__ = [
    "ED25519_SIGNATURE_TYPE",
    "MAX_SIGNATURES",
    "Checkpoint",
    "CheckpointSigner",
    "CheckpointVerifier",
    "NoteSignature",
    "SignedCheckpoint",
    "key_id",
    "parse_verifier_key",
    "verify_checkpoint",
]

#: signed-note signature type identifier of Ed25519.
ED25519_SIGNATURE_TYPE = 0x01
#: Upper bound on signature lines per note (the spec requires accepting at least 16).
MAX_SIGNATURES = 100
#: Tree sizes are uint64 in every tlog implementation.
MAX_TREE_SIZE = 2**64 - 1

_KEY_ID_SIZE = 4
_ED25519_KEY_SIZE = 32
_ED25519_SIG_SIZE = 64
_SIG_PREFIX = "\u2014 "  # em dash, space
_DECIMAL = re.compile(r"0|[1-9][0-9]*", re.ASCII)
#: Digits of MAX_TREE_SIZE: longer size lines are refused before any conversion
#: (CPython refuses int() of more than 4,300 digits with a bare ValueError).
_MAX_SIZE_DIGITS = len(str(MAX_TREE_SIZE))
_KEY_ID_HEX = re.compile(r"[0-9a-fA-F]{8}", re.ASCII)


# ----------------------------------------------------------------------------- helpers


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(text: str, what: str) -> bytes:
    """Strict, canonical standard base64 (RFC 4648 section 4, padded)."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        raise LedgerFormatError(f"{what} is not valid base64") from None
    if _b64encode(raw) != text:
        raise LedgerFormatError(f"{what} is not canonical base64")
    return raw


def _has_control(text: str) -> bool:
    return any(ord(c) < 0x20 for c in text)


def _check_text_line(value: object, what: str) -> str:
    """Non-empty UTF-8 text without control characters (so without newlines)."""
    if not isinstance(value, str) or not value:
        raise LedgerFormatError(f"{what} must be a non-empty string")
    if _has_control(value):
        raise LedgerFormatError(f"{what} contains a control character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise LedgerFormatError(f"{what} is not valid UTF-8") from None
    return value


def _check_key_name(value: object, error: type[Exception] = LedgerFormatError) -> str:
    """(L14) Key names are non-empty, without Unicode spaces or '+'."""
    if not isinstance(value, str) or not value:
        raise error("(L14) key name must be a non-empty string")
    if any(c.isspace() or c == "+" or ord(c) < 0x20 for c in value):
        raise error("(L14) key name contains a space, '+' or a control character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise error("(L14) key name is not valid UTF-8") from None
    return value


def key_id(name: str, public_key: bytes) -> bytes:
    """(L15) ``SHA-256(name || 0x0A || 0x01 || pubkey)[:4]`` for an Ed25519 key."""
    _check_key_name(name, LedgerArgumentError)
    if not isinstance(public_key, bytes) or len(public_key) != _ED25519_KEY_SIZE:
        raise LedgerArgumentError("an Ed25519 public key is 32 bytes")
    data = name.encode("utf-8") + b"\n" + bytes([ED25519_SIGNATURE_TYPE]) + public_key
    return hashlib.sha256(data).digest()[:_KEY_ID_SIZE]


# ----------------------------------------------------------------------------- checkpoint


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """(L13) A tree head: origin, size and root, plus optional extension lines.

    Construction validates every field and raises :class:`LedgerFormatError`.
    """

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_text_line(self.origin, "(L13) origin")
        if not isinstance(self.size, int) or isinstance(self.size, bool):
            raise LedgerFormatError("(L13) size must be an integer")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise LedgerFormatError("(L13) size must be in [0, 2^64)")
        if not isinstance(self.root, bytes) or len(self.root) != HASH_SIZE:
            raise LedgerFormatError(f"(L13) root must be {HASH_SIZE} bytes")
        if not isinstance(self.extensions, tuple):
            raise LedgerFormatError("(L13) extensions must be a tuple of lines")
        for line in self.extensions:
            _check_text_line(line, "(L13) extension line")

    def body_text(self) -> str:
        lines = [self.origin, str(self.size), _b64encode(self.root), *self.extensions]
        return "".join(f"{line}\n" for line in lines)

    def body(self) -> bytes:
        """The signed-note text: the exact bytes every signature covers."""
        return self.body_text().encode("utf-8")

    @classmethod
    def from_body(cls, body: str) -> Checkpoint:
        """Strict parse of a note text (L13), trailing newline included."""
        if not body.endswith("\n"):
            raise LedgerFormatError("(L13) checkpoint body must end with a newline")
        if _has_control(body.replace("\n", "")):
            raise LedgerFormatError("(L13) checkpoint body contains a control character")
        lines = body[:-1].split("\n")
        if len(lines) < 3:
            raise LedgerFormatError("(L13) checkpoint body needs origin, size and root lines")
        origin, size_text, root_text, *extensions = lines
        if not origin:
            raise LedgerFormatError("(L13) empty origin")
        if not _DECIMAL.fullmatch(size_text):
            raise LedgerFormatError("(L13) size is not a decimal without leading zeros")
        if len(size_text) > _MAX_SIZE_DIGITS:
            raise LedgerFormatError("(L13) size does not fit in 64 bits")
        size = int(size_text)
        if size > MAX_TREE_SIZE:
            raise LedgerFormatError("(L13) size does not fit in 64 bits")
        root = _b64decode(root_text, "(L13) root")
        if len(root) != HASH_SIZE:
            raise LedgerFormatError(f"(L13) root is {len(root)} bytes, not {HASH_SIZE}")
        if any(not line for line in extensions):
            raise LedgerFormatError("(L13) empty extension line")
        return cls(origin, size, root, tuple(extensions))


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """(L14) One signature line: key name, 4-byte key ID and the signature bytes."""

    name: str
    key_id: bytes
    signature: bytes

    def __post_init__(self) -> None:
        _check_key_name(self.name)
        if not isinstance(self.key_id, bytes) or len(self.key_id) != _KEY_ID_SIZE:
            raise LedgerFormatError(f"(L14) key ID must be {_KEY_ID_SIZE} bytes")
        if not isinstance(self.signature, bytes) or not self.signature:
            raise LedgerFormatError("(L14) signature must be non-empty bytes")

    def line(self) -> str:
        return f"{_SIG_PREFIX}{self.name} {_b64encode(self.key_id + self.signature)}\n"

    @classmethod
    def from_line(cls, line: str) -> NoteSignature:
        """Strict parse of one signature line, without its newline."""
        if not line.startswith(_SIG_PREFIX):
            raise LedgerFormatError("(L14) signature line must start with an em dash and a space")
        fields = line[len(_SIG_PREFIX) :].split(" ")
        if len(fields) != 2:
            raise LedgerFormatError("(L14) signature line must be '— <name> <base64>'")
        name, blob_text = fields
        _check_key_name(name)
        blob = _b64decode(blob_text, "(L14) signature")
        if len(blob) <= _KEY_ID_SIZE:
            raise LedgerFormatError("(L14) signature shorter than a key ID and a signature")
        return cls(name, blob[:_KEY_ID_SIZE], blob[_KEY_ID_SIZE:])


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    """A checkpoint and its signature lines (the log's and, later, witnesses')."""

    checkpoint: Checkpoint
    signatures: tuple[NoteSignature, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.checkpoint, Checkpoint):
            raise LedgerFormatError("checkpoint must be a Checkpoint")
        if not isinstance(self.signatures, tuple) or not all(
            isinstance(s, NoteSignature) for s in self.signatures
        ):
            raise LedgerFormatError("signatures must be a tuple of NoteSignature")
        if not self.signatures:
            raise LedgerFormatError("(L14) a signed note has at least one signature")
        if len(self.signatures) > MAX_SIGNATURES:
            raise LedgerFormatError(f"(L14) more than {MAX_SIGNATURES} signatures")

    def to_text(self) -> str:
        return self.checkpoint.body_text() + "\n" + "".join(s.line() for s in self.signatures)

    def to_bytes(self) -> bytes:
        return self.to_text().encode("utf-8")

    def with_signature(self, signature: NoteSignature) -> SignedCheckpoint:
        """A copy with one more signature line appended (e.g. a witness cosignature)."""
        return SignedCheckpoint(self.checkpoint, (*self.signatures, signature))

    @classmethod
    def from_text(cls, text: str | bytes) -> SignedCheckpoint:
        """Strict parse; the result's :meth:`to_text` is exactly ``text``."""
        if isinstance(text, bytes | bytearray):
            try:
                text = bytes(text).decode("utf-8")
            except UnicodeDecodeError:
                raise LedgerFormatError("signed note is not valid UTF-8") from None
        if not isinstance(text, str):
            raise LedgerFormatError("signed note must be text")
        if _has_control(text.replace("\n", "")):
            raise LedgerFormatError("signed note contains a control character other than newline")
        if not text.endswith("\n"):
            raise LedgerFormatError("signed note must end with a newline")
        # The note text is separated from the signatures by the last blank line.
        split = text.rfind("\n\n")
        if split < 0:
            raise LedgerFormatError("signed note has no blank line before its signatures")
        body, sig_block = text[: split + 1], text[split + 2 :]
        if not sig_block:
            raise LedgerFormatError("(L14) signed note has no signature lines")
        lines = sig_block[:-1].split("\n")
        if len(lines) > MAX_SIGNATURES:
            raise LedgerFormatError(f"(L14) more than {MAX_SIGNATURES} signatures")
        signatures = tuple(NoteSignature.from_line(line) for line in lines)
        return cls(Checkpoint.from_body(body), signatures)


# ----------------------------------------------------------------------------- keys


@dataclass(frozen=True, slots=True)
class CheckpointVerifier:
    """(L15) A parsed verifier key: name, key ID and Ed25519 public key."""

    name: str
    key_id: bytes
    public_key: bytes

    def __post_init__(self) -> None:
        _check_key_name(self.name)
        if not isinstance(self.public_key, bytes) or len(self.public_key) != _ED25519_KEY_SIZE:
            raise LedgerFormatError("(L15) an Ed25519 public key is 32 bytes")
        if self.key_id != key_id(self.name, self.public_key):
            raise LedgerFormatError("(L15) key ID does not match the key name and public key")
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key)
        except ValueError:
            raise LedgerFormatError("(L15) not a valid Ed25519 public key") from None

    def to_text(self) -> str:
        material = _b64encode(bytes([ED25519_SIGNATURE_TYPE]) + self.public_key)
        return f"{self.name}+{self.key_id.hex()}+{material}"


def parse_verifier_key(text: str) -> CheckpointVerifier:
    """(L15) Parse ``<name>+<8 hex digits>+<base64(0x01 || 32-byte key)>``."""
    if not isinstance(text, str):
        raise LedgerFormatError("verifier key must be a string")
    # The name has no '+'; the base64 may contain '+'.
    parts = text.split("+", 2)
    if len(parts) != 3:
        raise LedgerFormatError("(L15) verifier key must be '<name>+<key ID>+<key>'")
    name, id_hex, material_text = parts
    _check_key_name(name)
    if not _KEY_ID_HEX.fullmatch(id_hex):
        raise LedgerFormatError("(L15) key ID must be 8 hex digits")
    material = _b64decode(material_text, "(L15) verifier key material")
    if len(material) != 1 + _ED25519_KEY_SIZE or material[0] != ED25519_SIGNATURE_TYPE:
        raise LedgerFormatError("(L15) verifier key is not 0x01 || 32-byte Ed25519 key")
    return CheckpointVerifier(name, bytes.fromhex(id_hex), material[1:])


class CheckpointSigner:
    """The log's Ed25519 checkpoint key, named (usually after the origin)."""

    __slots__ = ("_key_id", "_name", "_private_key", "_public_key")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        self._name = _check_key_name(name, LedgerArgumentError)
        if not isinstance(private_key, Ed25519PrivateKey):
            raise LedgerArgumentError("private_key must be an Ed25519PrivateKey")
        self._private_key = private_key
        self._public_key = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self._key_id = key_id(name, self._public_key)

    @classmethod
    def generate(cls, name: str) -> CheckpointSigner:
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, name: str, data: bytes) -> CheckpointSigner:
        """From the 32-byte RFC 8032 private key (seed)."""
        if not isinstance(data, bytes) or len(data) != _ED25519_KEY_SIZE:
            raise LedgerArgumentError("an Ed25519 private key is 32 bytes")
        return cls(name, Ed25519PrivateKey.from_private_bytes(data))

    def private_bytes(self) -> bytes:
        return self._private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    @property
    def name(self) -> str:
        return self._name

    @property
    def public_key(self) -> bytes:
        """The raw 32-byte Ed25519 public key."""
        return self._public_key

    @property
    def key_id(self) -> bytes:
        return self._key_id

    def verifier(self) -> CheckpointVerifier:
        return CheckpointVerifier(self._name, self._key_id, self._public_key)

    def verifier_key(self) -> str:
        """(L15) ``<name>+<hex key ID>+<base64(0x01 || pubkey)>``."""
        return self.verifier().to_text()

    def sign_text(self, text: bytes) -> NoteSignature:
        """(L14) The signature line of this key over an arbitrary note text."""
        return NoteSignature(self._name, self._key_id, self._private_key.sign(bytes(text)))

    def sign(self, checkpoint: Checkpoint) -> SignedCheckpoint:
        if not isinstance(checkpoint, Checkpoint):
            raise LedgerArgumentError("sign() takes a Checkpoint")
        return SignedCheckpoint(checkpoint, (self.sign_text(checkpoint.body()),))

    def __repr__(self) -> str:
        return f"CheckpointSigner(name={self._name!r}, key_id={self._key_id.hex()})"


# ----------------------------------------------------------------------------- verification


def verify_checkpoint(
    text_or_signed: str | bytes | SignedCheckpoint,
    verifier_key: str | CheckpointVerifier,
) -> Checkpoint:
    """Verify the signature of ``verifier_key`` on a signed checkpoint; return the checkpoint.

    Signature lines from other keys (other name or other key ID) are ignored
    (signed-note, "Signatures"). Every line of the expected key must verify.
    Raises :class:`LedgerFormatError` for malformed text or key and
    :class:`CheckpointSignatureError` when no valid signature of the key is present.
    """
    if isinstance(text_or_signed, SignedCheckpoint):
        signed = text_or_signed
    else:
        signed = SignedCheckpoint.from_text(text_or_signed)
    if isinstance(verifier_key, CheckpointVerifier):
        verifier = verifier_key
    else:
        verifier = parse_verifier_key(verifier_key)
    # ledger.md (L14): a signature is the verifier's iff both name and key ID match.
    matching = [
        s for s in signed.signatures if s.name == verifier.name and s.key_id == verifier.key_id
    ]
    if not matching:
        raise CheckpointSignatureError(f"(L14) no signature from key {verifier.name!r}")
    public_key = Ed25519PublicKey.from_public_bytes(verifier.public_key)
    body = signed.checkpoint.body()
    for sig in matching:
        # ledger.md (L14): Ed25519 over the note text (RFC 8032), 64 bytes.
        if len(sig.signature) != _ED25519_SIG_SIZE:
            raise CheckpointSignatureError("(L14) Ed25519 signature is not 64 bytes")
        try:
            public_key.verify(sig.signature, body)
        except InvalidSignature:
            raise CheckpointSignatureError(
                f"(L14) Ed25519 signature of key {verifier.name!r} does not verify"
            ) from None
    return signed.checkpoint
