"""Witness co-signing: BLS keys, registrations, cosignatures, aggregation, finality, memory.

The scheme is :mod:`ledger.cosignature` (verified through blspy); keys and the
witness's memory are :mod:`witness.keys` and :mod:`witness.state`. Keys, the
registry, the cosignatures and the aggregate are module-scoped fixtures, and
most negative tests fail before any pairing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import stat
import struct
from pathlib import Path
from typing import Any

import pytest
from blspy import G1Element, G2Element, PopSchemeMPL
from py_ecc.bls.ciphersuites import G2ProofOfPossession
from py_ecc.bls.g2_primitives import G1_to_pubkey, subgroup_check
from py_ecc.fields import optimized_bls12_381_FQ as FQ
from py_ecc.optimized_bls12_381.optimized_curve import b, curve_order, field_modulus

from ledger import (
    Checkpoint,
    CheckpointSigner,
    Entry,
    EntryKind,
    SignedCheckpoint,
    consistency_proof_from_leaves,
    leaf_hash,
    root,
)
from ledger.cosignature import (
    CIPHERSUITE_ID,
    COSIGNATURE_DOMAIN,
    PUBLIC_KEY_SIZE,
    SIGNATURE_SIZE,
    Cosignature,
    CosignatureError,
    CosignedCheckpoint,
    DuplicateCosignatureError,
    FinalityError,
    PossessionProofError,
    Quorum,
    UnknownWitnessError,
    WitnessArgumentError,
    WitnessError,
    WitnessFormatError,
    WitnessRegistration,
    WitnessRegistry,
    aggregate,
    cosigned_message,
    decode_public_key,
    validate_witness_name,
    verify_cosignature,
    verify_finality,
)
from ledger.errors import CheckpointSignatureError, LedgerError
from witness.keys import CURVE_ORDER, WitnessKey, cosign, key_gen
from witness.state import OriginMismatch, WitnessRefusal, WitnessState
from zkgrid.errors import (
    InvalidArgumentError,
    ProofFormatError,
    VerificationError,
    ZkgridError,
)

#: The independent oracle (py_ecc, a dev dependency), untyped: it takes NewType'd bytes.
oracle: Any = G2ProofOfPossession
ORIGIN = "zkgrid.test/witness-log"
NAMES = ("auditor", "consumers", "regulator", "utility-watch")
# A valid compressed G1 point that is not on the curve is hard to stumble on; these are
# structurally broken encodings instead (flags, coordinates, identity).
G1_INFINITY = bytes([0xC0]) + bytes(PUBLIC_KEY_SIZE - 1)
G2_INFINITY = bytes([0xC0]) + bytes(SIGNATURE_SIZE - 1)


def leaves(n: int, salt: bytes = b"") -> list[bytes]:
    return [leaf_hash(salt + i.to_bytes(4, "big")) for i in range(n)]


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def keys() -> dict[str, WitnessKey]:
    return {name: WitnessKey.generate(name) for name in NAMES}


@pytest.fixture(scope="module")
def outsider() -> WitnessKey:
    return WitnessKey.generate("mallory")


@pytest.fixture(scope="module")
def registrations(keys: dict[str, WitnessKey]) -> list[WitnessRegistration]:
    return [keys[name].registration() for name in NAMES]


@pytest.fixture(scope="module")
def registry(registrations: list[WitnessRegistration]) -> WitnessRegistry:
    return WitnessRegistry(registrations)  # 4 PopVerify, remembered afterwards


@pytest.fixture(scope="module")
def log() -> CheckpointSigner:
    return CheckpointSigner.generate(ORIGIN)


@pytest.fixture(scope="module")
def tree() -> list[bytes]:
    return leaves(13)


@pytest.fixture(scope="module")
def signed5(log: CheckpointSigner, tree: list[bytes]) -> SignedCheckpoint:
    return log.sign(Checkpoint(ORIGIN, 5, root(tree[:5])))


@pytest.fixture(scope="module")
def signed13(log: CheckpointSigner, tree: list[bytes]) -> SignedCheckpoint:
    return log.sign(Checkpoint(ORIGIN, 13, root(tree)))


@pytest.fixture(scope="module")
def fork5(log: CheckpointSigner) -> SignedCheckpoint:
    return log.sign(Checkpoint(ORIGIN, 5, root(leaves(5, b"fork"))))


@pytest.fixture(scope="module")
def cosigs5(keys: dict[str, WitnessKey], signed5: SignedCheckpoint) -> dict[str, Cosignature]:
    """Cosignatures of the size-5 checkpoint by the first three witnesses."""
    return {name: cosign(keys[name], signed5) for name in NAMES[:3]}


@pytest.fixture(scope="module")
def cosigned5(
    registry: WitnessRegistry, signed5: SignedCheckpoint, cosigs5: dict[str, Cosignature]
) -> CosignedCheckpoint:
    # Deliberately out of name order: aggregate() sorts.
    return aggregate(registry, signed5, [cosigs5[n] for n in reversed(NAMES[:3])])


# ----------------------------------------------------------------------------- errors


def test_error_hierarchy() -> None:
    assert issubclass(WitnessError, LedgerError)
    assert issubclass(WitnessError, ZkgridError)
    assert issubclass(WitnessFormatError, ProofFormatError)
    for cls in (PossessionProofError, CosignatureError, FinalityError, WitnessRefusal):
        assert issubclass(cls, VerificationError)
    assert issubclass(UnknownWitnessError, VerificationError)
    assert issubclass(WitnessArgumentError, InvalidArgumentError)
    assert issubclass(DuplicateCosignatureError, InvalidArgumentError)
    assert WitnessRefusal("x").reason == "CHECKPOINT_INCONSISTENT"
    assert OriginMismatch("x").reason == "ORIGIN_MISMATCH"
    assert WitnessRefusal.reason == "CHECKPOINT_INCONSISTENT"  # the class default is untouched


# ----------------------------------------------------------------------------- keys


def test_key_basics(keys: dict[str, WitnessKey]) -> None:
    key = keys["auditor"]
    assert key.name == "auditor"
    assert len(key.public_key) == PUBLIC_KEY_SIZE
    assert len(key.secret_bytes()) == 32
    assert len(key.proof_of_possession()) == SIGNATURE_SIZE
    assert len({k.public_key for k in keys.values()}) == len(NAMES)
    assert key.secret_bytes().hex() not in repr(key)
    again = WitnessKey.from_secret_bytes("auditor", key.secret_bytes())
    assert again.public_key == key.public_key


@pytest.mark.parametrize("secret", [b"\x00" * 32, b"\xff" * 32, b"\x01" * 31])
def test_key_refuses_bad_secret(secret: bytes) -> None:
    with pytest.raises(WitnessArgumentError):
        WitnessKey.from_secret_bytes("w", secret)


@pytest.mark.parametrize("name", ["", "a b", "a+b", "tab\there", "nl\n", "x" * 129, "\u00a0", 7])
def test_witness_name_rules(name: object) -> None:
    with pytest.raises(WitnessFormatError):
        validate_witness_name(name)
    with pytest.raises(WitnessArgumentError):
        WitnessKey(name, 1)  # type: ignore[arg-type]


def test_key_file_round_trip_0600(keys: dict[str, WitnessKey], tmp_path: Path) -> None:
    key = keys["regulator"]
    path = tmp_path / "witness.key"
    key.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = WitnessKey.load(path)
    assert (loaded.name, loaded.public_key) == (key.name, key.public_key)
    assert loaded.secret_bytes() == key.secret_bytes()
    obj = json.loads(path.read_text())
    assert obj["ciphersuite"] == CIPHERSUITE_ID
    # Never overwritten.
    with pytest.raises(WitnessArgumentError, match="exists"):
        keys["auditor"].save(path)
    assert WitnessKey.load(path).name == "regulator"


def test_key_file_refuses_loose_mode(keys: dict[str, WitnessKey], tmp_path: Path) -> None:
    path = tmp_path / "witness.key"
    keys["auditor"].save(path)
    path.chmod(0o644)
    with pytest.raises(WitnessArgumentError, match="group or others"):
        WitnessKey.load(path)


def test_key_and_state_files_are_private_files(keys: dict[str, WitnessKey], tmp_path: Path) -> None:
    """The key and state files go through zkgrid._internal.files: a symbolic link is refused
    (never followed), a file too large is malformed, and the cause says which check failed."""
    from zkgrid._internal.files import FileTooLargeError, UnsafeFileError

    real = tmp_path / "real.key"
    keys["auditor"].save(real)
    link = tmp_path / "link.key"
    link.symlink_to(real)
    with pytest.raises(WitnessArgumentError, match="symbolic link") as info:
        WitnessKey.load(link)
    assert isinstance(info.value.__cause__, UnsafeFileError)
    with pytest.raises(WitnessArgumentError, match="exists"):
        keys["auditor"].save(link)  # nor written through
    assert WitnessKey.load(real).name == "auditor"
    big = tmp_path / "big.json"
    WitnessState.create(big, ORIGIN)
    big.write_bytes(b" " * ((1 << 16) + 1))
    with pytest.raises(WitnessFormatError, match="larger") as too_large:
        WitnessState.load(big)
    assert isinstance(too_large.value.__cause__, FileTooLargeError)
    state = tmp_path / "state.json"
    WitnessState.create(state, ORIGIN)
    state.chmod(0o644)
    with pytest.raises(WitnessArgumentError, match="group or others"):
        WitnessState.load(state)
    not_utf8 = tmp_path / "latin.key"
    WitnessState.create(not_utf8, ORIGIN)
    not_utf8.write_bytes(b"\xff\xfe")
    with pytest.raises(WitnessFormatError, match="UTF-8"):
        WitnessKey.load(not_utf8)


def test_witness_cli_inputs_fail_typed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Files and channels of `zkgrid witness` fail as typed errors (exit 2), never an
    OSError: bounded reads of the text files, the one loopback rule, readable TLS files."""
    from witness.cli import MAX_TEXT_FILE_BYTES, main
    from witness.cosign import CosignError, open_channel

    big = tmp_path / "log.key"
    big.write_bytes(b"a" * (MAX_TEXT_FILE_BYTES + 1))
    loopback = ["--target", "127.0.0.1:1", "--insecure"]
    assert main(["finality", *loopback, "--log-key-file", str(big)]) == 2
    assert "is larger than" in capsys.readouterr().err
    missing = tmp_path / "missing"
    assert main(["register", *loopback, "--registration", f"@{missing}"]) == 2
    assert f"the registration file: cannot open {missing}" in capsys.readouterr().err
    assert main(["finality", "--target", "example.com:1", "--insecure"]) == 2
    assert "loopback" in capsys.readouterr().err
    with pytest.raises(CosignError, match="cannot open"):
        open_channel(
            "example.com:443",
            ca=str(missing),
            cert=str(missing),
            key=str(missing),
            insecure=False,
            role="auditor",
        )
    with pytest.raises(CosignError, match="--insecure cannot be combined"):
        open_channel("127.0.0.1:1", ca="x", cert=None, key=None, insecure=True, role="auditor")


def test_key_file_strict(keys: dict[str, WitnessKey]) -> None:
    good = json.loads(keys["auditor"].to_json())
    other = keys["consumers"].public_key.hex()
    bad_variants: list[object] = [
        {**good, "public_key": other},  # does not match the secret
        {**good, "secret_key": "00" * 32},  # zero secret
        {**good, "secret_key": good["secret_key"].upper()},
        {**good, "ciphersuite": "BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_NUL_"},
        {**good, "version": 2},
        {**good, "name": "a b"},
        {**good, "extra": 1},
        {k: v for k, v in good.items() if k != "name"},
        [good],
    ]
    for variant in bad_variants:
        with pytest.raises(WitnessFormatError):
            WitnessKey.from_json(json.dumps(variant))
    with pytest.raises(WitnessFormatError):
        WitnessKey.from_json("{not json")
    assert WitnessKey.from_json(json.dumps(good)).public_key == keys["auditor"].public_key


# ----------------------------------------------------------------------------- registrations


def test_registration_round_trip(
    registry: WitnessRegistry, registrations: list[WitnessRegistration]
) -> None:
    reg = registrations[0]
    data = reg.encode()
    assert data[0] == 1
    assert struct.unpack(">I", data[1:5])[0] == len(reg.name)
    assert len(data) == 1 + 4 + len(reg.name) + PUBLIC_KEY_SIZE + SIGNATURE_SIZE
    assert WitnessRegistration.decode(data) == reg
    # A decoded record remembers its (W1, W2) success; a copy or a pickle re-verifies.
    copied = pickle.loads(pickle.dumps(WitnessRegistration.decode(data)))
    assert copied == reg
    assert copied.public_point() is not None
    entry = reg.to_entry()
    assert entry.kind == EntryKind.WITNESS_KEY
    assert WitnessRegistration.from_entry(entry) == reg
    with pytest.raises(WitnessFormatError):
        WitnessRegistration.from_entry(Entry(EntryKind.BILL, data))


def test_registration_strict_decode(registrations: list[WitnessRegistration]) -> None:
    data = registrations[0].encode()
    name_len = len(registrations[0].name)
    pk_at = 5 + name_len
    cases = {
        "trailing": data + b"\x00",
        "truncated": data[:-1],
        "empty": b"",
        "version": b"\x02" + data[1:],
        "name length": data[:1] + struct.pack(">I", name_len + 1) + data[5:],
        "huge name length": data[:1] + struct.pack(">I", 2**32 - 1) + data[5:],
        "bad utf-8": data[:5] + b"\xff" + data[6:],
        "name rules": data[:5] + b" " + data[6:],
        "pk not compressed": data[:pk_at] + bytes([data[pk_at] & 0x7F]) + data[pk_at + 1 :],
        "pk identity": data[:pk_at] + G1_INFINITY + data[pk_at + PUBLIC_KEY_SIZE :],
        "pk x >= p": data[:pk_at] + b"\x9f" + b"\xff" * 47 + data[pk_at + PUBLIC_KEY_SIZE :],
        "pop identity flag": data[:-SIGNATURE_SIZE] + b"\xe0" + bytes(SIGNATURE_SIZE - 1),
        "pop not compressed": data[:-SIGNATURE_SIZE] + bytes(SIGNATURE_SIZE),
    }
    for label, blob in cases.items():
        with pytest.raises(WitnessFormatError):
            WitnessRegistration.decode(blob)
        assert label  # named for the failure report
    with pytest.raises(WitnessFormatError):
        WitnessRegistration.decode("not bytes")  # type: ignore[arg-type]


def test_registration_field_checks(registrations: list[WitnessRegistration]) -> None:
    reg = registrations[0]
    with pytest.raises(WitnessFormatError):
        dataclasses.replace(reg, public_key=reg.public_key[:-1])
    with pytest.raises(WitnessFormatError):
        dataclasses.replace(reg, proof_of_possession=reg.proof_of_possession + b"\x00")
    with pytest.raises(WitnessFormatError):
        dataclasses.replace(reg, name="has space")


def test_registration_refuses_bad_pop(registrations: list[WitnessRegistration]) -> None:
    # A real PoP, of another key: well-formed points, so a verification failure (1 PopVerify).
    swapped = dataclasses.replace(
        registrations[0], proof_of_possession=registrations[1].proof_of_possession
    )
    with pytest.raises(PossessionProofError) as info:
        WitnessRegistration.decode(swapped.encode())
    assert info.value.reason == "POP_INVALID"
    with pytest.raises(PossessionProofError):
        WitnessRegistry([swapped])  # the failure is not remembered as a success


# ----------------------------------------------------------------------------- registry


def test_registry(
    registry: WitnessRegistry,
    registrations: list[WitnessRegistration],
    outsider: WitnessKey,
) -> None:
    assert registry.names == NAMES
    assert len(registry) == 4
    assert "auditor" in registry
    assert "mallory" not in registry
    assert registry.get("consumers") == registrations[1]
    with pytest.raises(UnknownWitnessError):
        registry.get("mallory")
    entries = [Entry(EntryKind.BILL, b"x")] + [r.to_entry() for r in registrations]
    assert WitnessRegistry.from_entries(entries).names == NAMES
    grown = registry.with_registration(outsider.registration())  # 1 PopProve, 1 PopVerify
    assert grown.names == (*NAMES, "mallory")
    assert registry.names == NAMES  # registries are immutable


def test_registry_refuses_duplicates(registrations: list[WitnessRegistration]) -> None:
    with pytest.raises(WitnessArgumentError, match="twice"):
        WitnessRegistry([registrations[0], registrations[0]])
    # Someone else's key and PoP under a new name: the PoP binds the key, not the name.
    copy = dataclasses.replace(registrations[0], name="impostor")
    with pytest.raises(WitnessArgumentError, match="public key"):
        WitnessRegistry([registrations[0], copy])
    with pytest.raises(WitnessArgumentError, match="public key"):
        WitnessRegistry(registrations).with_registration(copy)


# ----------------------------------------------------------------------------- cosignatures


def test_cosigned_message_binds_origin_size_root(signed5: SignedCheckpoint) -> None:
    message = cosigned_message(signed5)
    assert message == COSIGNATURE_DOMAIN + signed5.checkpoint.body()
    assert message.startswith(b"zkgrid/witness-cosignature v1\n" + ORIGIN.encode() + b"\n5\n")
    assert cosigned_message(signed5.checkpoint) == message
    with pytest.raises(WitnessArgumentError):
        cosigned_message(signed5.to_text())  # type: ignore[arg-type]


def test_cosign_and_verify(
    registry: WitnessRegistry,
    signed5: SignedCheckpoint,
    cosigs5: dict[str, Cosignature],
) -> None:
    cosig = cosigs5["auditor"]
    assert cosig.name == "auditor"
    assert len(cosig.signature) == SIGNATURE_SIZE
    verify_cosignature(registry.get("auditor"), signed5, cosig)  # 1 Verify
    # Another witness's registration: refused on the name, before any pairing.
    with pytest.raises(CosignatureError, match="not 'consumers'"):
        verify_cosignature(registry.get("consumers"), signed5, cosig)


def test_cosignature_round_trip_and_strict_decode(cosigs5: dict[str, Cosignature]) -> None:
    cosig = cosigs5["consumers"]
    data = cosig.encode()
    assert Cosignature.decode(data) == cosig
    for blob in (
        data + b"\x00",
        data[:-1],
        b"\x02" + data[1:],
        data[:-SIGNATURE_SIZE] + bytes(SIGNATURE_SIZE),
        data[:-SIGNATURE_SIZE] + b"\xe0" + bytes(SIGNATURE_SIZE - 1),
    ):
        with pytest.raises(WitnessFormatError):
            Cosignature.decode(blob)
    with pytest.raises(WitnessFormatError):
        Cosignature("auditor", b"\x00" * 95)


def test_cosignature_over_another_root_is_refused(
    registry: WitnessRegistry,
    signed5: SignedCheckpoint,
    fork5: SignedCheckpoint,
    signed13: SignedCheckpoint,
    cosigs5: dict[str, Cosignature],
) -> None:
    # Remembered as verified for its own checkpoint; the memory is keyed by the message too.
    registry.verify_cosignature(signed5, cosigs5["auditor"])
    for other in (fork5, signed13):  # 2 Verify
        with pytest.raises(CosignatureError) as info:
            registry.verify_cosignature(other, cosigs5["auditor"])
        assert info.value.reason == "COSIGNATURE_INVALID"


def test_cosignature_by_unknown_key_is_refused(
    registry: WitnessRegistry,
    outsider: WitnessKey,
    signed5: SignedCheckpoint,
    cosigs5: dict[str, Cosignature],
) -> None:
    foreign = cosign(outsider, signed5)  # 1 Sign
    with pytest.raises(UnknownWitnessError):
        registry.verify_cosignature(signed5, foreign)
    with pytest.raises(UnknownWitnessError):
        aggregate(registry, signed5, [cosigs5["auditor"], foreign])
    # The outsider's key under a registered name: the signature does not verify.
    impostor = WitnessKey.from_secret_bytes("auditor", outsider.secret_bytes())
    forged = cosign(impostor, signed5)  # 1 Sign
    with pytest.raises(CosignatureError):
        registry.verify_cosignature(signed5, forged)  # 1 Verify
    with pytest.raises(CosignatureError):
        aggregate(registry, signed5, [forged])  # 1 Verify


def test_aggregate_refuses_duplicates_and_empty(
    registry: WitnessRegistry, signed5: SignedCheckpoint, cosigs5: dict[str, Cosignature]
) -> None:
    with pytest.raises(DuplicateCosignatureError):
        aggregate(registry, signed5, [cosigs5["auditor"], cosigs5["consumers"], cosigs5["auditor"]])
    with pytest.raises(WitnessArgumentError):
        aggregate(registry, signed5, [])
    with pytest.raises(WitnessArgumentError):
        aggregate(registry, signed5.checkpoint, [cosigs5["auditor"]])  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- finality


def test_cosigned_checkpoint_encoding(cosigned5: CosignedCheckpoint) -> None:
    assert cosigned5.signers == ("auditor", "consumers", "regulator")
    data = cosigned5.encode()
    assert CosignedCheckpoint.decode(data) == cosigned5
    assert CosignedCheckpoint.decode(data).encode() == data
    note = cosigned5.checkpoint.to_bytes()
    assert data[5 : 5 + len(note)] == note


def _encode(note: bytes, signature: bytes, names: list[str]) -> bytes:
    out = b"\x01" + struct.pack(">I", len(note)) + note + signature + struct.pack(">I", len(names))
    for n in names:
        out += struct.pack(">I", len(n.encode())) + n.encode()
    return out


def test_cosigned_checkpoint_strict_decode(cosigned5: CosignedCheckpoint) -> None:
    note = cosigned5.checkpoint.to_bytes()
    sig = cosigned5.aggregate_signature
    assert _encode(note, sig, list(cosigned5.signers)) == cosigned5.encode()
    bad = {
        "unsorted": _encode(note, sig, ["consumers", "auditor"]),
        "repeated": _encode(note, sig, ["auditor", "auditor"]),
        "no signers": _encode(note, sig, []),
        "bad name": _encode(note, sig, ["a b"]),
        "trailing": cosigned5.encode() + b"\x00",
        "truncated": cosigned5.encode()[:-1],
        "signature not a point": _encode(note, bytes(SIGNATURE_SIZE), ["auditor"]),
        "note without signature": _encode(cosigned5.checkpoint.checkpoint.body(), sig, ["a"]),
        "count too large": _encode(note, sig, [])[:-4] + struct.pack(">I", 10**6),
    }
    for label, blob in bad.items():
        with pytest.raises((WitnessFormatError, LedgerError)) as info:
            CosignedCheckpoint.decode(blob)
        assert isinstance(info.value, ProofFormatError), label


def test_final_at_quorum(
    registry: WitnessRegistry, cosigned5: CosignedCheckpoint, log: CheckpointSigner
) -> None:
    report = verify_finality(registry, cosigned5, Quorum(3, 4), log_key=log.verifier_key())
    assert report.final
    assert report.checkpoint == cosigned5.checkpoint.checkpoint
    assert report.signers == ("auditor", "consumers", "regulator")
    assert report.quorum == Quorum(3, 4)


def test_below_quorum_is_not_final(
    registry: WitnessRegistry, cosigned5: CosignedCheckpoint
) -> None:
    with pytest.raises(FinalityError) as info:
        verify_finality(registry, cosigned5, Quorum(4, 4))
    assert info.value.reason == "QUORUM_NOT_MET"


def test_quorum_must_match_registry(
    registry: WitnessRegistry, cosigned5: CosignedCheckpoint
) -> None:
    with pytest.raises(WitnessArgumentError, match="registry of 4"):
        verify_finality(registry, cosigned5, Quorum(2, 5))


def test_finality_checks_log_key(registry: WitnessRegistry, cosigned5: CosignedCheckpoint) -> None:
    other_log = CheckpointSigner.generate(ORIGIN)
    with pytest.raises(CheckpointSignatureError):
        verify_finality(registry, cosigned5, Quorum(1, 4), log_key=other_log.verifier())


def test_swapped_signer_fails_aggregate(
    registry: WitnessRegistry, cosigned5: CosignedCheckpoint
) -> None:
    # utility-watch is registered but did not sign: claim it did instead of regulator.
    swapped = dataclasses.replace(cosigned5, signers=("auditor", "consumers", "utility-watch"))
    with pytest.raises(FinalityError) as info:
        verify_finality(registry, swapped, Quorum(2, 4))  # 1 FastAggregateVerify
    assert info.value.reason == "AGGREGATE_INVALID"


def test_unknown_signer_is_not_final(
    registry: WitnessRegistry, cosigned5: CosignedCheckpoint
) -> None:
    claimed = dataclasses.replace(cosigned5, signers=("auditor", "consumers", "mallory"))
    with pytest.raises(FinalityError) as info:
        verify_finality(registry, claimed, Quorum(2, 4))
    assert info.value.reason == "UNKNOWN_WITNESS"


def test_aggregate_over_another_checkpoint_fails(
    registry: WitnessRegistry, cosigned5: CosignedCheckpoint, fork5: SignedCheckpoint
) -> None:
    moved = dataclasses.replace(cosigned5, checkpoint=fork5)
    with pytest.raises(FinalityError) as info:
        verify_finality(registry, moved, Quorum(1, 4))  # 1 FastAggregateVerify
    assert info.value.reason == "AGGREGATE_INVALID"


def test_quorum_validation() -> None:
    assert Quorum.parse("3-of-5") == Quorum(3, 5)
    assert str(Quorum(2, 3)) == "2-of-3"
    for k, n in ((0, 3), (4, 3), (1, 0), (True, 3), (1, 2000)):
        with pytest.raises(WitnessArgumentError):
            Quorum(k, n)
    for text in ("3of5", "03-of-5", "3-of-", "-1-of-5", "6-of-5", "", 3):
        with pytest.raises(WitnessArgumentError):
            Quorum.parse(text)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- witness memory


def _checkpoint(tree: list[bytes], origin: str = ORIGIN) -> Checkpoint:
    return Checkpoint(origin, len(tree), root(tree))


def test_state_accepts_consistent_extension(tmp_path: Path, tree: list[bytes]) -> None:
    path = tmp_path / "state.json"
    state = WitnessState.create(path, ORIGIN)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert (state.size, state.root) == (0, root([]))
    first = _checkpoint(tree[:5])
    state.authorize(first, [])  # from the empty tree, nothing to prove
    state.record(first)
    second = _checkpoint(tree)
    state.authorize(second, consistency_proof_from_leaves(5, tree))
    state.record(second)
    assert (state.size, state.root) == (13, root(tree))
    # Persisted, 0600, atomically replaced (no temporary file left behind).
    loaded = WitnessState.load(path)
    assert (loaded.origin, loaded.size, loaded.root) == (ORIGIN, 13, root(tree))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["state.json"]
    # The same checkpoint again is fine (idempotent).
    loaded.authorize(second, [])
    loaded.record(second)


def test_state_refuses_fork_smaller_inconsistent_and_other_origin(tree: list[bytes]) -> None:
    state = WitnessState(ORIGIN, 8, root(tree[:8]))
    fork = leaves(8, b"fork")
    with pytest.raises(WitnessRefusal, match="fork") as info:
        state.authorize(_checkpoint(fork), [])
    assert info.value.reason == "CHECKPOINT_INCONSISTENT"
    with pytest.raises(WitnessRefusal, match="smaller"):
        state.authorize(_checkpoint(tree[:5]), [])
    # A larger tree that does not extend the remembered one (leaf 3 rewritten).
    rewritten = list(tree)
    rewritten[3] = leaf_hash(b"rewritten")
    with pytest.raises(WitnessRefusal, match="not consistent") as info:
        state.authorize(_checkpoint(rewritten), consistency_proof_from_leaves(8, rewritten))
    assert info.value.reason == "CHECKPOINT_INCONSISTENT"
    # The right tree with a proof for the wrong sizes.
    with pytest.raises(WitnessRefusal):
        state.authorize(_checkpoint(tree), consistency_proof_from_leaves(7, tree))
    with pytest.raises(WitnessRefusal) as info:
        state.authorize(_checkpoint(tree, "zkgrid.test/other-log"), [])
    assert info.value.reason == "ORIGIN_MISMATCH"
    # Nothing was remembered, and a refused checkpoint cannot be recorded.
    assert state.size == 8
    with pytest.raises(WitnessArgumentError):
        state.record(_checkpoint(fork))
    state.authorize(_checkpoint(tree), consistency_proof_from_leaves(8, tree))
    state.record(_checkpoint(tree))
    assert state.size == 13


def test_state_record_needs_authorize(tree: list[bytes]) -> None:
    state = WitnessState(ORIGIN)
    with pytest.raises(WitnessArgumentError):
        state.record(_checkpoint(tree))
    state.authorize(_checkpoint(tree[:4]), [])
    with pytest.raises(WitnessArgumentError):
        state.record(_checkpoint(tree))  # not the authorized one


def test_state_cosign_persists_before_signing(
    tmp_path: Path,
    keys: dict[str, WitnessKey],
    registry: WitnessRegistry,
    signed5: SignedCheckpoint,
    fork5: SignedCheckpoint,
) -> None:
    path = tmp_path / "state.json"
    state = WitnessState.create(path, ORIGIN)
    cosig = state.cosign(keys["auditor"], signed5, [])  # 1 Sign
    assert WitnessState.load(path).size == 5
    registry.verify_cosignature(signed5, cosig)  # 1 Verify
    # A restarted witness still refuses the fork.
    with pytest.raises(WitnessRefusal):
        WitnessState.load(path).cosign(keys["auditor"], fork5, [])


def test_state_files_strict(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    WitnessState.create(path, ORIGIN)
    with pytest.raises(WitnessArgumentError, match="exists"):
        WitnessState.create(path, ORIGIN)  # never reset a witness's memory
    good = json.loads(path.read_text())
    for variant in (
        {**good, "size": -1},
        {**good, "size": "5"},
        {**good, "size": True},
        {**good, "root": "AAAA"},
        {**good, "root": good["root"].rstrip("=")},
        {**good, "origin": ""},
        {**good, "version": 2},
        {**good, "extra": 0},
    ):
        path.write_text(json.dumps(variant))
        with pytest.raises(WitnessFormatError):
            WitnessState.load(path)
    with pytest.raises(WitnessArgumentError):
        WitnessState.load(tmp_path / "missing.json")


# ----------------------------------------------------------------------------- blspy and py_ecc

# Known answer of the ciphersuite: eth2's BLS test vector sign_case_84d45c9c7cca6b92
# (BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_, the DST the consensus specs use).
KAT_SECRET = bytes.fromhex("263dbd792f5b1be47ed85f8938c0f29586af0d3ac7b977f21c278fe1462040e3")
KAT_PUBLIC = bytes.fromhex(
    "a491d1b0ecd9bb917989f0e74f0dea0422eac4a873e5e2644f368dffb9a6e20f"
    "d6e10c1b77654d067c0618f6e5a7f79a"
)
KAT_MESSAGE = bytes(32)
KAT_SIGNATURE = bytes.fromhex(
    "b6ed936746e01f8ecf281f020953fbf1f01debd5657c4a383940b020b26507f6"
    "076334f91e2366c96e9ab279fb5158090352ea1c5b0c9274504f4f0e7053af24"
    "802e51e4568d164fe986834f41e55c8e850ce1f98458c0cfc9ab380b55285a55"
)


def test_ciphersuite_known_answer() -> None:
    key = WitnessKey.from_secret_bytes("kat", KAT_SECRET)
    assert key.public_key == KAT_PUBLIC
    assert key.sign(KAT_MESSAGE) == KAT_SIGNATURE
    assert oracle.Sign(int.from_bytes(KAT_SECRET, "big"), KAT_MESSAGE) == KAT_SIGNATURE
    pk, sig = G1Element.from_bytes(KAT_PUBLIC), G2Element.from_bytes(KAT_SIGNATURE)
    assert PopSchemeMPL.verify(pk, KAT_MESSAGE, sig)
    assert not PopSchemeMPL.verify(pk, b"\x01" + KAT_MESSAGE[1:], sig)


def test_cosignature_vector_made_by_py_ecc(signed5: SignedCheckpoint) -> None:
    """Fixed keys: what py_ecc makes verifies here (blspy), and the bytes are the same."""
    secrets_ = [0x1234 + 7919 * i for i in range(3)]
    names = ("oracle-a", "oracle-b", "oracle-c")
    regs = [
        WitnessRegistration(n, oracle.SkToPk(s), oracle.PopProve(s))
        for n, s in zip(names, secrets_, strict=True)
    ]
    ours = [WitnessKey(n, s) for n, s in zip(names, secrets_, strict=True)]
    assert [k.registration() for k in ours] == regs  # same keys and proofs, byte for byte
    registry = WitnessRegistry(regs)  # 3 PopVerify (blspy) of py_ecc's proofs
    message = cosigned_message(signed5)
    cosigs = [Cosignature(n, oracle.Sign(s, message)) for n, s in zip(names, secrets_, strict=True)]
    assert [cosign(k, signed5) for k in ours] == cosigs
    cosigned = aggregate(registry, signed5, cosigs)
    assert cosigned.aggregate_signature == oracle.Aggregate([c.signature for c in cosigs])
    verify_finality(registry, cosigned, Quorum(3, 3))
    assert oracle.FastAggregateVerify(
        [r.public_key for r in regs], message, cosigned.aggregate_signature
    )


def test_key_gen_is_the_drafts() -> None:
    assert curve_order == CURVE_ORDER
    for ikm in (bytes(32), bytes(range(32)), b"\xff" * 64):
        assert key_gen(ikm) == oracle.KeyGen(ikm)
    assert key_gen(bytes(32), b"info") == oracle.KeyGen(bytes(32), b"info")
    with pytest.raises(WitnessArgumentError):
        key_gen(bytes(31))


def _g1_off_subgroup() -> bytes:
    """A canonical compressed point on E1 outside the order-r subgroup (via py_ecc)."""
    x = 1
    while True:
        y2 = FQ(x) ** 3 + b
        y = y2 ** ((field_modulus + 1) // 4)
        if y * y == y2 and not subgroup_check((FQ(x), y, FQ(1))):
            return bytes(G1_to_pubkey((FQ(x), y, FQ(1))))
        x += 1


def test_point_checks_match_py_ecc(registrations: list[WitnessRegistration]) -> None:
    """(W1) Off the subgroup, off the curve, x >= p: refused as format errors, like py_ecc."""
    off_subgroup = _g1_off_subgroup()
    assert not oracle.KeyValidate(off_subgroup)
    x_not_on_curve = bytes([0x80]) + bytes(46) + b"\x01"  # x = 1: 1 + 4 is not a square mod p
    for blob in (off_subgroup, x_not_on_curve, G1_INFINITY, b"\x9f" + b"\xff" * 47):
        assert not oracle.KeyValidate(blob)
        with pytest.raises(WitnessFormatError):
            decode_public_key(blob)
        reg = dataclasses.replace(registrations[0], public_key=blob)
        with pytest.raises(WitnessFormatError):
            WitnessRegistration.decode(reg.encode())
    assert oracle.KeyValidate(registrations[0].public_key)
    decode_public_key(registrations[0].public_key)


def test_runtime_imports_no_py_ecc_and_ledger_no_bls() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import ledger, ledger.merkle, ledger.archive\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('py_ecc', 'blspy'))\n"
        "assert not heavy, heavy\n"
        "import ledger.cosignature, witness.cli\n"
        "assert 'blspy' not in sys.modules, 'blspy is imported where a point is decoded'\n"
        "import witness.keys, witness.state, witness.cosign, service.witnesses, verifier.cli\n"
        "from witness.keys import WitnessKey\n"
        "reg = WitnessKey('w', 5).registration()\n"
        "ledger.cosignature.WitnessRegistration.decode(reg.encode())\n"
        "assert 'blspy' in sys.modules\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('py_ecc', 'eth_typing'))\n"
        "assert not bad, bad\n"
    )
    root_dir = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root_dir, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def test_witness_party_imports_neither_verifier_nor_service() -> None:
    """Floors: the auditor may import the witness party (zkgrid audit --cosign), never the
    other way round; and `zkgrid witness --help` loads neither BLS nor gRPC."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from witness import cli\n"
        "assert cli.main(['--help']) == 0\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('blspy', 'grpc'))\n"
        "assert not heavy, heavy\n"
        "import witness.keys, witness.state, witness.cosign, witness._files\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('verifier', 'service'))\n"
        "assert not bad, bad\n"
    )
    root_dir = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root_dir, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
