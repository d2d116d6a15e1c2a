"""Property tests of the witness's consistency rule and of the witness decoders (no pairings)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import Checkpoint, consistency_proof_from_leaves, leaf_hash, root
from ledger.witness import (
    Cosignature,
    CosignedCheckpoint,
    WitnessRefusal,
    WitnessRegistration,
    WitnessState,
)
from zkgrid.errors import ProofFormatError

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
