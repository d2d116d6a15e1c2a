"""Property tests of ledger.merkle: proofs verify, mutated proofs never do."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import (
    CompactRange,
    ConsistencyProofError,
    InclusionProofError,
    NodeId,
    consistency_proof,
    consistency_proof_from_leaves,
    inclusion_proof,
    inclusion_proof_from_leaves,
    leaf_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

MAX_N = 300
SETTINGS = settings(max_examples=80, deadline=None)


def make_leaves(salt: bytes, n: int) -> list[bytes]:
    return [leaf_hash(salt + i.to_bytes(4, "big")) for i in range(n)]


@st.composite
def sizes(draw: st.DrawFn) -> tuple[int, int]:
    """(m, n) with 0 <= m <= n <= MAX_N, n >= 1."""
    n = draw(st.integers(1, MAX_N))
    m = draw(st.integers(0, n))
    return m, n


@st.composite
def mutation(draw: st.DrawFn) -> tuple[int, int, int]:
    """(node selector, byte position, non-zero xor mask)."""
    return draw(st.integers(0, 10**6)), draw(st.integers(0, 31)), draw(st.integers(1, 255))


def mutate(proof: list[bytes], where: tuple[int, int, int]) -> list[bytes]:
    node_sel, pos, mask = where
    j = node_sel % len(proof)
    node = bytearray(proof[j])
    node[pos] ^= mask
    return [*proof[:j], bytes(node), *proof[j + 1 :]]


@SETTINGS
@given(sizes(), st.binary(max_size=8))
def test_consistency_verifies(mn: tuple[int, int], salt: bytes) -> None:
    m, n = mn
    leaves = make_leaves(salt, n)
    proof = consistency_proof_from_leaves(m, leaves)
    verify_consistency(m, n, proof, root(leaves[:m]), root(leaves))


@SETTINGS
@given(sizes(), st.data(), st.binary(max_size=8))
def test_inclusion_verifies(mn: tuple[int, int], data: st.DataObject, salt: bytes) -> None:
    _, n = mn
    leaves = make_leaves(salt, n)
    top = root(leaves)
    for index in data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=5)):
        proof = inclusion_proof_from_leaves(index, leaves)
        verify_inclusion(leaves[index], index, n, proof, top)


@SETTINGS
@given(sizes(), mutation(), st.binary(max_size=8))
def test_mutated_consistency_never_verifies(
    mn: tuple[int, int], where: tuple[int, int, int], salt: bytes
) -> None:
    m, n = mn
    if m == 0 or m == n:  # the proof is empty: nothing to mutate
        m, n = max(1, min(m, n - 1)), max(n, 2)
    leaves = make_leaves(salt, n)
    proof = consistency_proof_from_leaves(m, leaves)
    with pytest.raises(ConsistencyProofError):
        verify_consistency(m, n, mutate(proof, where), root(leaves[:m]), root(leaves))


@SETTINGS
@given(sizes(), mutation(), st.data(), st.binary(max_size=8))
def test_mutated_inclusion_never_verifies(
    mn: tuple[int, int], where: tuple[int, int, int], data: st.DataObject, salt: bytes
) -> None:
    _, n = mn
    n = max(n, 2)  # a tree of one leaf has an empty proof
    leaves = make_leaves(salt, n)
    index = data.draw(st.integers(0, n - 1))
    proof = inclusion_proof_from_leaves(index, leaves)
    top = root(leaves)
    with pytest.raises(InclusionProofError):
        verify_inclusion(leaves[index], index, n, mutate(proof, where), top)
    # A mutated leaf or root never verifies either.
    _, pos, mask = where
    bad_leaf = bytearray(leaves[index])
    bad_leaf[pos] ^= mask
    with pytest.raises(InclusionProofError):
        verify_inclusion(bytes(bad_leaf), index, n, proof, top)


@SETTINGS
@given(st.integers(1, MAX_N), st.data(), st.binary(max_size=8))
def test_storage_simulation(n: int, data: st.DataObject, salt: bytes) -> None:
    """Nodes created by CompactRange.append serve the fetch-based proofs."""
    leaves = make_leaves(salt, n)
    stored: dict[NodeId, bytes] = {}
    cr = CompactRange.empty()
    for h in leaves:
        stored.update(cr.append(h))
    assert cr.root() == root(leaves)
    calls = []

    def fetch(ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        calls.append(len(ids))
        return {i: stored[i] for i in ids}

    m = data.draw(st.integers(0, n))
    index = data.draw(st.integers(0, n - 1))
    assert consistency_proof(m, n, fetch) == consistency_proof_from_leaves(m, leaves)
    assert inclusion_proof(index, n, fetch) == inclusion_proof_from_leaves(index, leaves)
    assert all(c <= 2 * n.bit_length() + 1 for c in calls)
    rebuilt = CompactRange(m, [stored[i] for i in CompactRange.frontier_ids(m)])
    assert rebuilt.root() == root(leaves[:m])
