"""Checkpoints: C2SP tlog-checkpoint bodies in signed-note envelopes, Ed25519."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import EMPTY_ROOT, leaf_hash, root
from ledger.checkpoint import (
    MAX_SIGNATURES,
    Checkpoint,
    CheckpointSigner,
    CheckpointVerifier,
    NoteSignature,
    SignedCheckpoint,
    key_id,
    parse_verifier_key,
    verify_checkpoint,
)
from ledger.errors import (
    CheckpointSignatureError,
    LedgerArgumentError,
    LedgerError,
    LedgerFormatError,
)

# golang.org/x/mod/sumdb/note known-answer vector (note_test.go / package doc).
GO_SIGNER = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VERIFIER = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    b"If you think cryptography is the answer to your problem,\n"
    b"then you don't know what your problem is.\n"
)
GO_SIG_LINE = (
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXg"
    "KvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)

ORIGIN = "zkgrid.example/ledger"
SEED = hashlib.sha256(b"zkgrid test checkpoint key").digest()
SIGNER = CheckpointSigner.from_private_bytes(ORIGIN, SEED)
ROOT = root([leaf_hash(bytes([i])) for i in range(5)])
CHECKPOINT = Checkpoint(ORIGIN, 5, ROOT)
SIGNED = SIGNER.sign(CHECKPOINT)
TEXT = SIGNED.to_text()
ROOT_B64 = base64.b64encode(ROOT).decode()


def go_signer() -> CheckpointSigner:
    material = base64.b64decode(GO_SIGNER.split("+", 4)[4])
    assert material[0] == 1
    return CheckpointSigner.from_private_bytes("PeterNeumann", material[1:])


# ----------------------------------------------------------------------------- known answers


def test_go_note_known_answer() -> None:
    signer = go_signer()
    assert signer.key_id.hex() == "c74f20a3"
    assert signer.verifier_key() == GO_VERIFIER
    assert signer.sign_text(GO_TEXT).line() == GO_SIG_LINE
    verifier = parse_verifier_key(GO_VERIFIER)
    assert verifier.to_text() == GO_VERIFIER
    assert verifier.public_key == signer.public_key


def test_key_id_definition() -> None:
    expected = hashlib.sha256(ORIGIN.encode() + b"\n\x01" + SIGNER.public_key).digest()[:4]
    assert key_id(ORIGIN, SIGNER.public_key) == expected == SIGNER.key_id


def test_body_format() -> None:
    assert CHECKPOINT.body() == f"{ORIGIN}\n5\n{ROOT_B64}\n".encode()
    assert Checkpoint("o", 0, EMPTY_ROOT).body_text() == (
        "o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
    )
    ext = Checkpoint(ORIGIN, 5, ROOT, ("ext one", "ext two"))
    assert ext.body_text().endswith(f"{ROOT_B64}\next one\next two\n")
    sig_line = SIGNED.signatures[0].line()
    assert f"{ORIGIN}\n5\n{ROOT_B64}\n\n{sig_line}" == TEXT
    assert sig_line.startswith(f"\u2014 {ORIGIN} ")
    blob = base64.b64decode(sig_line.split(" ")[2])
    assert blob[:4] == SIGNER.key_id
    assert len(blob) == 4 + 64


# ----------------------------------------------------------------------------- round trips


def test_round_trip() -> None:
    parsed = SignedCheckpoint.from_text(TEXT)
    assert parsed == SIGNED
    assert parsed.to_text() == TEXT
    assert SignedCheckpoint.from_text(TEXT.encode()) == SIGNED
    assert SIGNED.to_bytes() == TEXT.encode()
    assert verify_checkpoint(TEXT, SIGNER.verifier_key()) == CHECKPOINT
    assert verify_checkpoint(SIGNED, SIGNER.verifier()) == CHECKPOINT


@pytest.mark.parametrize(
    "checkpoint",
    [
        Checkpoint("o", 0, EMPTY_ROOT),
        Checkpoint("example.com/log with spaces ünïcode", 2**64 - 1, ROOT),
        Checkpoint(ORIGIN, 12345, ROOT, ("Timestamp: 1700000000", "— looks like a sig")),
    ],
)
def test_round_trip_variants(checkpoint: Checkpoint) -> None:
    other = CheckpointSigner.generate("witness.example/w1")
    signed = SIGNER.sign(checkpoint).with_signature(other.sign_text(checkpoint.body()))
    text = signed.to_text()
    parsed = SignedCheckpoint.from_text(text)
    assert parsed == signed
    assert parsed.to_text() == text
    assert verify_checkpoint(text, SIGNER.verifier_key()) == checkpoint
    assert verify_checkpoint(text, other.verifier_key()) == checkpoint


def test_signer_keys_round_trip() -> None:
    again = CheckpointSigner.from_private_bytes(ORIGIN, SIGNER.private_bytes())
    assert again.public_key == SIGNER.public_key
    assert again.verifier_key() == SIGNER.verifier_key()
    assert SIGNER.private_bytes() == SEED
    fresh = CheckpointSigner.generate(ORIGIN)
    assert fresh.public_key != SIGNER.public_key
    assert len(fresh.private_bytes()) == 32
    assert SEED.hex() not in repr(SIGNER)
    wrapped = CheckpointSigner(ORIGIN, Ed25519PrivateKey.from_private_bytes(SEED))
    assert wrapped.verifier_key() == SIGNER.verifier_key()


# ----------------------------------------------------------------------------- strict parsing

SIG_LINE = SIGNED.signatures[0].line()
BODY = CHECKPOINT.body_text()


URLSAFE_ROOT = base64.urlsafe_b64encode(b"\xfb" * 32).decode()
ROOT_31 = base64.b64encode(ROOT[:31]).decode()
ROOT_33 = base64.b64encode(ROOT + b"x").decode()
# Same decoded bytes, non-zero padding bits: "...B=" / "...C=" where "...A=" is canonical.
NONCANON_ROOT = ROOT_B64[:42] + ("B" if ROOT_B64[42] != "B" else "C") + "="
ONLY_KEY_ID = base64.b64encode(b"abcd").decode()


def _note(body: str, sigs: str = SIG_LINE) -> str:
    return body + "\n" + sigs


MALFORMED = {
    "missing trailing newline": TEXT[:-1],
    "no blank line": BODY + SIG_LINE,
    "no signature lines": BODY + "\n",
    "empty text": "",
    "only blank line": "\n\n",
    "empty origin": _note(f"\n5\n{ROOT_B64}\n"),
    "two lines only": _note(f"{ORIGIN}\n5\n"),
    "size with leading zero": _note(f"{ORIGIN}\n05\n{ROOT_B64}\n"),
    "size double zero": _note(f"{ORIGIN}\n00\n{ROOT_B64}\n"),
    "size negative": _note(f"{ORIGIN}\n-5\n{ROOT_B64}\n"),
    "size plus sign": _note(f"{ORIGIN}\n+5\n{ROOT_B64}\n"),
    "size hex": _note(f"{ORIGIN}\n0x5\n{ROOT_B64}\n"),
    "size empty": _note(f"{ORIGIN}\n\n{ROOT_B64}\n"),
    "size with space": _note(f"{ORIGIN}\n 5\n{ROOT_B64}\n"),
    "size non-ascii digit": _note(f"{ORIGIN}\n\u0665\n{ROOT_B64}\n"),
    "size underscore": _note(f"{ORIGIN}\n1_0\n{ROOT_B64}\n"),
    "size 2^64": _note(f"{ORIGIN}\n{2**64}\n{ROOT_B64}\n"),
    # Past CPython's 4,300-digit int() limit: a typed error, never a bare ValueError.
    "size of 5000 digits": _note(f"{ORIGIN}\n{'9' * 5000}\n{ROOT_B64}\n"),
    "root bad base64": _note(f"{ORIGIN}\n5\n{ROOT_B64[:-2]}!=\n"),
    "root unpadded": _note(f"{ORIGIN}\n5\n{ROOT_B64.rstrip('=')}\n"),
    "root urlsafe": _note(f"{ORIGIN}\n5\n{URLSAFE_ROOT}\n"),
    "root non-canonical bits": _note(f"{ORIGIN}\n5\n{NONCANON_ROOT}\n"),
    "root 31 bytes": _note(f"{ORIGIN}\n5\n{ROOT_31}\n"),
    "root 33 bytes": _note(f"{ORIGIN}\n5\n{ROOT_33}\n"),
    "empty extension line": _note(f"{ORIGIN}\n5\n{ROOT_B64}\n\next\n"),
    "CRLF line endings": TEXT.replace("\n", "\r\n"),
    "CR in origin": _note(f"{ORIGIN}\r\n5\n{ROOT_B64}\n"),
    "tab in origin": _note(f"zkgrid\t\n5\n{ROOT_B64}\n"),
    "NUL": _note(f"{ORIGIN}\x00\n5\n{ROOT_B64}\n"),
    "sig without em dash": _note(BODY, SIG_LINE[2:]),
    "sig hyphen instead of em dash": _note(BODY, "-" + SIG_LINE[1:]),
    "sig en dash": _note(BODY, "\u2013" + SIG_LINE[1:]),
    "sig no space after dash": _note(BODY, "\u2014" + SIG_LINE[2:]),
    "sig double space": _note(BODY, SIG_LINE.replace(f"{ORIGIN} ", f"{ORIGIN}  ")),
    "sig trailing space": _note(BODY, SIG_LINE[:-1] + " \n"),
    "sig missing blob": _note(BODY, f"\u2014 {ORIGIN}\n"),
    "sig empty name": _note(BODY, SIG_LINE.replace(ORIGIN, "")),
    "sig name with plus": _note(BODY, SIG_LINE.replace(ORIGIN, "a+b")),
    "sig name with nbsp": _note(BODY, SIG_LINE.replace(ORIGIN, "a\u00a0b")),
    "sig bad base64": _note(BODY, f"\u2014 {ORIGIN} !!!!\n"),
    "sig unpadded base64": _note(BODY, SIG_LINE.replace("=\n", "\n")),
    "sig only key id": _note(BODY, f"\u2014 {ORIGIN} {ONLY_KEY_ID}\n"),
    "sig garbage line inside block": _note(BODY, SIG_LINE + "x\n" + SIG_LINE),
    "trailing blank line": TEXT + "\n",
    "too many signatures": _note(BODY, SIG_LINE * (MAX_SIGNATURES + 1)),
}


@pytest.mark.parametrize("text", MALFORMED.values(), ids=MALFORMED.keys())
def test_strict_rejections(text: str) -> None:
    with pytest.raises(LedgerFormatError):
        SignedCheckpoint.from_text(text)
    with pytest.raises(LedgerFormatError):
        verify_checkpoint(text, SIGNER.verifier_key())


def test_rejects_invalid_utf8_and_non_text() -> None:
    with pytest.raises(LedgerFormatError):
        SignedCheckpoint.from_text(TEXT.encode().replace(b"zkgrid", b"zk\xffrid"))
    with pytest.raises(LedgerFormatError):
        SignedCheckpoint.from_text(None)  # type: ignore[arg-type]


def test_accepts_up_to_max_signatures() -> None:
    text = _note(BODY, SIG_LINE * MAX_SIGNATURES)
    assert len(SignedCheckpoint.from_text(text).signatures) == MAX_SIGNATURES


@pytest.mark.parametrize(
    ("origin", "size", "root_hash", "extensions"),
    [
        ("", 1, ROOT, ()),
        ("a\nb", 1, ROOT, ()),
        ("o", -1, ROOT, ()),
        ("o", 2**64, ROOT, ()),
        ("o", True, ROOT, ()),
        ("o", 1, ROOT[:31], ()),
        ("o", 1, ROOT, ("",)),
        ("o", 1, ROOT, ("a\nb",)),
        ("o", 1, ROOT, ["list"]),
        ("\ud800", 1, ROOT, ()),
    ],
)
def test_checkpoint_constructor_validates(
    origin: str, size: int, root_hash: bytes, extensions: tuple[str, ...]
) -> None:
    with pytest.raises(LedgerFormatError):
        Checkpoint(origin, size, root_hash, extensions)


# ----------------------------------------------------------------------------- verification


def test_signature_by_another_key() -> None:
    other_same_name = CheckpointSigner.generate(ORIGIN)
    other_name = CheckpointSigner.generate("someone.else/log")
    for other in (other_same_name, other_name):
        with pytest.raises(CheckpointSignatureError, match="no signature"):
            verify_checkpoint(other.sign(CHECKPOINT).to_text(), SIGNER.verifier_key())


def test_unknown_signatures_are_ignored() -> None:
    other = CheckpointSigner.generate("witness.example/w")
    # An unknown line with a non-Ed25519-sized signature and one sharing only the key name.
    junk = NoteSignature("unknown.example/x", b"\x00\x01\x02\x03", b"\x05" * 3)
    same_name_other_id = NoteSignature(ORIGIN, bytes(a ^ 0xFF for a in SIGNER.key_id), b"z" * 64)
    signed = SignedCheckpoint(
        CHECKPOINT,
        (
            other.sign_text(CHECKPOINT.body()),
            junk,
            same_name_other_id,
            *SIGNED.signatures,
        ),
    )
    assert verify_checkpoint(signed.to_text(), SIGNER.verifier_key()) == CHECKPOINT


def test_bad_signature_from_the_known_key_rejects_the_note() -> None:
    sig = SIGNED.signatures[0]
    forged = NoteSignature(sig.name, sig.key_id, bytes(64))
    short = NoteSignature(sig.name, sig.key_id, sig.signature[:63])
    for signatures in ((forged,), (sig, forged), (forged, sig), (short,)):
        text = SignedCheckpoint(CHECKPOINT, signatures).to_text()
        with pytest.raises(CheckpointSignatureError):
            verify_checkpoint(text, SIGNER.verifier_key())


@pytest.mark.parametrize(
    "altered",
    [
        Checkpoint(ORIGIN, 6, ROOT),
        Checkpoint(ORIGIN, 4, ROOT),
        Checkpoint(ORIGIN, 5, EMPTY_ROOT),
        Checkpoint(ORIGIN, 5, bytes([ROOT[0] ^ 1]) + ROOT[1:]),
        Checkpoint("zkgrid.example/other", 5, ROOT),
        Checkpoint(ORIGIN, 5, ROOT, ("extension",)),
    ],
)
def test_altered_checkpoint_fails(altered: Checkpoint) -> None:
    text = SignedCheckpoint(altered, SIGNED.signatures).to_text()
    with pytest.raises(CheckpointSignatureError, match="does not verify"):
        verify_checkpoint(text, SIGNER.verifier_key())


def test_every_signature_bit_flip_fails() -> None:
    sig = SIGNED.signatures[0]
    for bit in range(64 * 8):
        mutated = bytearray(sig.signature)
        mutated[bit // 8] ^= 1 << (bit % 8)
        text = SignedCheckpoint(
            CHECKPOINT, (NoteSignature(sig.name, sig.key_id, bytes(mutated)),)
        ).to_text()
        with pytest.raises(CheckpointSignatureError):
            verify_checkpoint(text, SIGNER.verifier_key())


# ----------------------------------------------------------------------------- verifier keys

VKEY = SIGNER.verifier_key()
VNAME, VID, VMAT = VKEY.split("+", 2)
RAW_MAT = base64.b64decode(VMAT)


@pytest.mark.parametrize(
    "vkey",
    [
        "",
        VNAME,
        f"{VNAME}+{VID}",
        f"+{VID}+{VMAT}",
        f"{VNAME}+{VID[:7]}+{VMAT}",
        f"{VNAME}+{VID}0+{VMAT}",
        f"{VNAME}+zzzzzzzz+{VMAT}",
        f"{VNAME}+{int(VID, 16) ^ 1:08x}+{VMAT}",  # wrong key ID
        f"other.name+{VID}+{VMAT}",  # key ID of another name
        f"{VNAME}+{VID}+{VMAT[:-1]}",
        f"{VNAME}+{VID}+" + base64.b64encode(b"\x02" + RAW_MAT[1:]).decode(),  # not Ed25519
        f"{VNAME}+{VID}+" + base64.b64encode(RAW_MAT[1:]).decode(),  # no type byte
        f"{VNAME}+{VID}+" + base64.b64encode(RAW_MAT + b"x").decode(),
        f"{VNAME} x+{VID}+{VMAT}",
    ],
)
def test_malformed_verifier_keys(vkey: str) -> None:
    with pytest.raises(LedgerFormatError):
        parse_verifier_key(vkey)
    with pytest.raises(LedgerFormatError):
        verify_checkpoint(TEXT, vkey)


def test_verifier_key_round_trip_and_uppercase_id() -> None:
    parsed = parse_verifier_key(VKEY)
    assert parsed == CheckpointVerifier(ORIGIN, SIGNER.key_id, SIGNER.public_key)
    assert parsed.to_text() == VKEY
    assert parse_verifier_key(f"{VNAME}+{VID.upper()}+{VMAT}") == parsed


@pytest.mark.parametrize("name", ["", "a b", "a+b", "a\nb", "a\u2003b"])
def test_signer_rejects_bad_names(name: str) -> None:
    with pytest.raises(LedgerArgumentError):
        CheckpointSigner.from_private_bytes(name, SEED)


def test_signer_argument_errors() -> None:
    with pytest.raises(LedgerArgumentError):
        CheckpointSigner.from_private_bytes(ORIGIN, SEED[:31])
    with pytest.raises(LedgerArgumentError):
        CheckpointSigner(ORIGIN, "not a key")  # type: ignore[arg-type]
    with pytest.raises(LedgerArgumentError):
        SIGNER.sign("not a checkpoint")  # type: ignore[arg-type]


def test_errors_are_ledger_errors() -> None:
    assert issubclass(CheckpointSignatureError, LedgerError)
    assert CheckpointSignatureError.reason == "CHECKPOINT_SIGNATURE_INVALID"
