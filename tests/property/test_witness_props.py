"""Property tests of the witness's consistency rule, of the witness decoders, and of blspy
(the runtime) against py_ecc (the independent oracle): keys, signatures, aggregates and
proofs of possession made by each verify under the other."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from py_ecc.bls.ciphersuites import G2ProofOfPossession
from py_ecc.bls.g2_primitives import G1_to_pubkey, pubkey_to_G1

from ledger import Checkpoint, CheckpointSigner, consistency_proof_from_leaves, leaf_hash, root
from ledger.cosignature import (
    Cosignature,
    CosignatureError,
    CosignedCheckpoint,
    FinalityError,
    Quorum,
    WitnessFormatError,
    WitnessRegistration,
    WitnessRegistry,
    aggregate,
    cosigned_message,
    decode_public_key,
    verify_cosignature,
    verify_finality,
)
from witness.keys import CURVE_ORDER, WitnessKey, cosign, key_gen
from witness.state import WitnessRefusal, WitnessState
from zkgrid.errors import ProofFormatError

#: The independent oracle (py_ecc, a dev dependency), untyped: it takes NewType'd bytes.
oracle: Any = G2ProofOfPossession
ORIGIN = "zkgrid.test/witness-props"
SETTINGS = settings(max_examples=60, deadline=None)


def make_leaves(salt: bytes, n: int) -> list[bytes]:
    return [leaf_hash(salt + i.to_bytes(4, "big")) for i in range(n)]


@SETTINGS
@given(st.integers(0, 64), st.integers(0, 64), st.integers(0, 64))
def test_extensions_are_accepted(n1: int, n2: int, n3: int) -> None:
    """A witness follows any chain of growing trees of one log."""
    sizes = sorted((n1, n2, n3))
    tree = make_leaves(b"log", sizes[-1])
    state = WitnessState(ORIGIN)
    for n in sizes:
        cp = Checkpoint(ORIGIN, n, root(tree[:n]))
        state.authorize(cp, consistency_proof_from_leaves(state.size, tree[:n]))
        state.record(cp)
        assert (state.size, state.root) == (n, root(tree[:n]))


@SETTINGS
@given(st.integers(1, 64), st.integers(0, 64), st.data())
def test_rewritten_history_is_refused(n1: int, extra: int, data: st.DataObject) -> None:
    """Any change to a leaf the witness already co-signed is refused, whatever the proof."""
    tree = make_leaves(b"log", n1 + extra)
    state = WitnessState(ORIGIN, n1, root(tree[:n1]))
    index = data.draw(st.integers(0, n1 - 1), label="rewritten leaf")
    forged = list(tree)
    forged[index] = leaf_hash(b"forged")
    new = Checkpoint(ORIGIN, len(forged), root(forged))
    honest_proof = consistency_proof_from_leaves(n1, tree)
    with pytest.raises(WitnessRefusal):
        state.authorize(new, consistency_proof_from_leaves(n1, forged))
    with pytest.raises(WitnessRefusal):
        state.authorize(new, honest_proof)
    assert state.size == n1


@SETTINGS
@given(st.binary(max_size=300))
def test_decoders_raise_only_format_errors(blob: bytes) -> None:
    for decode in (WitnessRegistration.decode, Cosignature.decode, CosignedCheckpoint.decode):
        for candidate in (blob, b"\x01" + blob):
            with contextlib.suppress(ProofFormatError):  # anything else propagates
                decode(candidate)


# ----------------------------------------------------------------------------- blspy vs py_ecc

# py_ecc needs about half a second per pairing check: few examples, each checking much.
ORACLE_SETTINGS = settings(max_examples=4, deadline=None)
ORACLE_ORIGIN = "zkgrid.test/witness-oracle"
LOG = CheckpointSigner.generate(ORACLE_ORIGIN)
secret_keys = st.integers(1, CURVE_ORDER - 1)


@ORACLE_SETTINGS
@given(st.lists(secret_keys, min_size=1, max_size=3, unique=True), st.integers(0, 2**32))
def test_blspy_and_py_ecc_agree(secrets_: list[int], size: int) -> None:
    checkpoint = LOG.sign(Checkpoint(ORACLE_ORIGIN, size, leaf_hash(size.to_bytes(8, "big"))))
    message = cosigned_message(checkpoint)
    keys = [WitnessKey(f"w{i}", s) for i, s in enumerate(secrets_)]
    # Keys and proofs of possession: blspy's (witness.keys) and py_ecc's are the same bytes,
    # and each verifies under the other library.
    ours = [k.registration() for k in keys]
    assert [r.public_key for r in ours] == [oracle.SkToPk(s) for s in secrets_]
    assert oracle.PopVerify(ours[0].public_key, ours[0].proof_of_possession)
    theirs = [
        WitnessRegistration(f"w{i}", oracle.SkToPk(s), oracle.PopProve(s))
        for i, s in enumerate(secrets_)
    ]
    registry = WitnessRegistry(theirs)  # PopVerify (blspy) of py_ecc's proofs
    assert theirs == ours
    # Signatures: py_ecc's verify here, ours verify in py_ecc.
    cosigs = [cosign(k, checkpoint) for k in keys]
    assert oracle.Verify(ours[0].public_key, message, cosigs[0].signature)
    oracle_cosigs = [Cosignature(f"w{i}", oracle.Sign(s, message)) for i, s in enumerate(secrets_)]
    assert oracle_cosigs == cosigs
    verify_cosignature(theirs[-1], checkpoint, oracle_cosigs[-1])
    # Aggregates: the same bytes; py_ecc's passes finality here, ours FastAggregateVerify there.
    cosigned = aggregate(registry, checkpoint, cosigs)
    oracle_aggregate = oracle.Aggregate([c.signature for c in oracle_cosigs])
    assert cosigned.aggregate_signature == oracle_aggregate
    assert oracle.FastAggregateVerify(
        [registry.get(n).public_key for n in cosigned.signers], message, oracle_aggregate
    )
    n = len(keys)
    verify_finality(
        registry, CosignedCheckpoint(checkpoint, oracle_aggregate, cosigned.signers), Quorum(n, n)
    )
    # And both refuse the same signatures over another checkpoint.
    other = LOG.sign(Checkpoint(ORACLE_ORIGIN, size + 1, leaf_hash(b"other")))
    with pytest.raises(CosignatureError):
        verify_cosignature(theirs[0], other, cosigs[0])
    with pytest.raises(FinalityError):
        verify_finality(
            registry, CosignedCheckpoint(other, oracle_aggregate, cosigned.signers), Quorum(n, n)
        )


@SETTINGS
@given(st.binary(min_size=32, max_size=64), st.binary(max_size=16))
def test_key_gen_matches_py_ecc(ikm: bytes, info: bytes) -> None:
    assert key_gen(ikm, info) == oracle.KeyGen(ikm, info)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 47), st.integers(0, 255), secret_keys)
def test_public_key_checks_match_py_ecc(at: int, value: int, secret: int) -> None:
    """(W1) A public key with one byte changed is accepted here iff py_ecc's KeyValidate
    accepts it and it is canonical."""
    blob = bytearray(oracle.SkToPk(secret))
    blob[at] = value
    data = bytes(blob)
    try:
        canonical = bytes(G1_to_pubkey(pubkey_to_G1(data))) == data  # type: ignore[arg-type]
    except Exception:
        canonical = False
    expected = canonical and oracle.KeyValidate(data)
    try:
        decode_public_key(data)
        accepted = True
    except WitnessFormatError:
        accepted = False
    assert accepted == expected
