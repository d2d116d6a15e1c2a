"""ledger.merkle against a naive implementation written from RFC 6962 / RFC 9162.

The ``naive_*`` functions below are transcribed from the recursive definitions
(MTH: RFC 6962 2.1, PATH: 2.1.1 / RFC 9162 2.1.3.1, PROOF/SUBPROOF: 2.1.2 /
RFC 9162 2.1.4.1) and share nothing with ledger/ but SHA-256.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from functools import cache

import pytest

from ledger import (
    EMPTY_ROOT,
    HASH_SIZE,
    CompactRange,
    ConsistencyProofError,
    InclusionProofError,
    LedgerArgumentError,
    LedgerError,
    LedgerFormatError,
    NodeFetchError,
    NodeId,
    consistency_proof,
    consistency_proof_from_leaves,
    inclusion_proof,
    inclusion_proof_from_leaves,
    leaf_hash,
    node_hash,
    root,
    root_at,
    verify_consistency,
    verify_inclusion,
)

MAX_N = 64


# ----------------------------------------------------------------------------- naive RFC


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def naive_k(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


@cache  # memoised: the recursion of PATH/PROOF recomputes the same subtrees
def naive_mth(entries: tuple[bytes, ...]) -> bytes:
    """MTH over raw entries (RFC 6962 2.1)."""
    n = len(entries)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return sha256(b"\x00" + entries[0])
    k = naive_k(n)
    return sha256(b"\x01" + naive_mth(entries[:k]) + naive_mth(entries[k:]))


def naive_path(m: int, entries: tuple[bytes, ...]) -> list[bytes]:
    n = len(entries)
    if n == 1:
        return []
    k = naive_k(n)
    if m < k:
        return [*naive_path(m, entries[:k]), naive_mth(entries[k:])]
    return [*naive_path(m - k, entries[k:]), naive_mth(entries[:k])]


def naive_subproof(m: int, entries: tuple[bytes, ...], b: bool) -> list[bytes]:
    n = len(entries)
    if m == n:
        return [] if b else [naive_mth(entries)]
    k = naive_k(n)
    if m <= k:
        return [*naive_subproof(m, entries[:k], b), naive_mth(entries[k:])]
    return [*naive_subproof(m - k, entries[k:], False), naive_mth(entries[:k])]


def naive_proof(m: int, entries: tuple[bytes, ...]) -> list[bytes]:
    return naive_subproof(m, entries, True)


ENTRIES = tuple(f"entry-{i}".encode() for i in range(MAX_N + 1))
LEAVES = [leaf_hash(e) for e in ENTRIES]
ROOTS = [naive_mth(ENTRIES[:n]) for n in range(MAX_N + 1)]


class RecordingFetcher:
    """Serves perfect nodes from the leaves (computed naively) and records each call."""

    def __init__(self, entries: tuple[bytes, ...]) -> None:
        self.entries = entries
        self.calls: list[list[NodeId]] = []

    def __call__(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        self.calls.append(list(ids))
        out = {}
        for level, index in ids:
            lo, hi = index << level, (index + 1) << level
            assert hi <= len(self.entries), "fetch of a node outside the tree"
            out[(level, index)] = naive_mth(self.entries[lo:hi])
        return out

    @property
    def fetched(self) -> int:
        return sum(len(c) for c in self.calls)


def one_flip_per_node(proof: list[bytes], seed: int) -> list[list[bytes]]:
    """For each node position, the proof with one (seed-chosen) bit of that node flipped."""
    out = []
    for pos, node in enumerate(proof):
        bit = (seed * 7 + pos * 61) % (HASH_SIZE * 8)
        mutated = bytearray(node)
        mutated[bit // 8] ^= 1 << (bit % 8)
        out.append([*proof[:pos], bytes(mutated), *proof[pos + 1 :]])
    return out


def log_bound(n: int) -> int:
    """2 * ceil(log2 n) + 1: the node budget of one proof."""
    return 2 * max(n - 1, 0).bit_length() + 1


# ----------------------------------------------------------------------------- hashing


def test_hash_domains() -> None:
    assert HASH_SIZE == 32
    assert sha256(b"") == EMPTY_ROOT
    assert leaf_hash(b"abc") == sha256(b"\x00abc")
    assert node_hash(b"L" * 32, b"R" * 32) == sha256(b"\x01" + b"L" * 32 + b"R" * 32)
    assert leaf_hash(b"") != EMPTY_ROOT


# ----------------------------------------------------------------------------- roots


@pytest.mark.parametrize("n", range(MAX_N + 1))
def test_root_matches_naive(n: int) -> None:
    assert root(LEAVES[:n]) == ROOTS[n]
    fetch = RecordingFetcher(ENTRIES[:n])
    assert root_at(n, fetch) == ROOTS[n]
    assert len(fetch.calls) == (1 if n else 0)
    assert fetch.fetched == n.bit_count()


def test_root_at_prefix_of_a_larger_tree() -> None:
    fetch = RecordingFetcher(ENTRIES)
    for n in range(MAX_N + 1):
        assert root_at(n, fetch) == ROOTS[n]


def test_compact_range_matches_naive_at_every_size() -> None:
    cr = CompactRange.empty()
    assert cr.size == 0
    assert cr.root() == EMPTY_ROOT
    stored: dict[NodeId, bytes] = {}
    for n in range(1, MAX_N + 1):
        created = cr.append(LEAVES[n - 1])
        assert created[0] == ((0, n - 1), LEAVES[n - 1])
        for (level, index), h in created:
            assert (level, index) not in stored
            assert h == naive_mth(ENTRIES[index << level : (index + 1) << level])
            stored[(level, index)] = h
        assert cr.size == n
        assert cr.root() == ROOTS[n]
        # Exactly the perfect nodes exist, each created once.
        assert len(stored) == sum(n >> level for level in range(n.bit_length()))
        # The frontier can be rebuilt from the stored nodes.
        ids = CompactRange.frontier_ids(n)
        assert len(ids) == n.bit_count()
        rebuilt = CompactRange(n, [stored[i] for i in ids])
        assert rebuilt == cr
        assert rebuilt.root() == ROOTS[n]


def test_compact_range_rejects_bad_arguments() -> None:
    with pytest.raises(LedgerArgumentError):
        CompactRange(3, [LEAVES[0]])
    with pytest.raises(LedgerArgumentError):
        CompactRange(1, [b"short"])
    with pytest.raises(LedgerArgumentError):
        CompactRange(-1, [])
    with pytest.raises(LedgerArgumentError):
        CompactRange.empty().append(b"x" * 31)


# ----------------------------------------------------------------------------- inclusion


@pytest.mark.parametrize("n", range(1, MAX_N + 1))
def test_inclusion_proofs_match_naive(n: int) -> None:
    leaves = LEAVES[:n]
    for m in range(n):
        expected = naive_path(m, ENTRIES[:n])
        assert inclusion_proof_from_leaves(m, leaves) == expected
        fetch = RecordingFetcher(ENTRIES[:n])
        assert inclusion_proof(m, n, fetch) == expected
        assert len(fetch.calls) <= 1
        assert fetch.fetched <= log_bound(n)
        if fetch.calls:
            assert len(set(fetch.calls[0])) == len(fetch.calls[0])
        verify_inclusion(leaves[m], m, n, expected, ROOTS[n])
        for bad in one_flip_per_node(expected, seed=m * 131 + n):
            with pytest.raises(InclusionProofError):
                verify_inclusion(leaves[m], m, n, bad, ROOTS[n])


def test_inclusion_over_a_larger_store() -> None:
    """Proofs for an old size must only read nodes inside that size."""
    fetch = RecordingFetcher(ENTRIES)
    for n in (1, 5, 13, 33):
        for m in range(n):
            assert inclusion_proof(m, n, fetch) == naive_path(m, ENTRIES[:n])


# ----------------------------------------------------------------------------- consistency


@pytest.mark.parametrize("n", range(MAX_N + 1))
def test_consistency_proofs_match_naive(n: int) -> None:
    leaves = LEAVES[:n]
    for m in range(n + 1):
        expected = naive_proof(m, ENTRIES[:n]) if m > 0 else []
        assert consistency_proof_from_leaves(m, leaves) == expected
        fetch = RecordingFetcher(ENTRIES[:n])
        assert consistency_proof(m, n, fetch) == expected
        assert len(fetch.calls) <= 1
        assert fetch.fetched <= log_bound(n)
        verify_consistency(m, n, expected, ROOTS[m], ROOTS[n])
        for bad in one_flip_per_node(expected, seed=m * 131 + n):
            with pytest.raises(ConsistencyProofError):
                verify_consistency(m, n, bad, ROOTS[m], ROOTS[n])


def test_consistency_edge_cases() -> None:
    # size1 == size2: empty proof, equal roots.
    verify_consistency(5, 5, [], ROOTS[5], ROOTS[5])
    with pytest.raises(ConsistencyProofError, match="roots differ"):
        verify_consistency(5, 5, [], ROOTS[5], ROOTS[6])
    with pytest.raises(ConsistencyProofError, match="not empty"):
        verify_consistency(5, 5, [LEAVES[0]], ROOTS[5], ROOTS[5])
    # size1 == 0: the empty tree is a prefix of every tree; root1 must be MTH({}).
    verify_consistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT)
    verify_consistency(0, 7, [], EMPTY_ROOT, ROOTS[7])
    with pytest.raises(ConsistencyProofError, match="MTH"):
        verify_consistency(0, 7, [], ROOTS[1], ROOTS[7])
    with pytest.raises(ConsistencyProofError, match="not empty"):
        verify_consistency(0, 7, [ROOTS[7]], EMPTY_ROOT, ROOTS[7])
    # size1 > size2.
    with pytest.raises(ConsistencyProofError, match="larger"):
        verify_consistency(7, 6, [], ROOTS[7], ROOTS[6])
    # 0 < size1 < size2 with an empty proof: RFC 9162 2.1.4.2 step 1 (via the length check).
    with pytest.raises(ConsistencyProofError):
        verify_consistency(4, 7, [], ROOTS[4], ROOTS[7])


# ----------------------------------------------------------------------------- RFC 9162 2.1.5


def test_rfc9162_example_tree() -> None:
    d = ENTRIES[:7]
    a, b, c, dd, e, f, j = (sha256(b"\x00" + x) for x in d)
    g, h, i = node_hash(a, b), node_hash(c, dd), node_hash(e, f)
    k, l = node_hash(g, h), node_hash(i, j)  # noqa: E741 (the RFC's name)
    top = node_hash(k, l)
    hash0 = node_hash(g, c)  # size 3
    hash1 = k  # size 4
    hash2 = node_hash(k, i)  # size 6
    leaves = LEAVES[:7]
    assert root(leaves) == top
    assert root(leaves[:3]) == hash0
    assert root(leaves[:4]) == hash1
    assert root(leaves[:6]) == hash2

    inclusion = {0: [b, h, l], 1: [a, h, l], 3: [c, g, l], 4: [f, j, k], 6: [i, k]}
    for index, expected in inclusion.items():
        assert inclusion_proof_from_leaves(index, leaves) == expected
        verify_inclusion(leaves[index], index, 7, expected, top)

    roots = {3: hash0, 4: hash1, 6: hash2, 7: top}
    consistency = {
        (3, 7): [c, dd, g, l],
        (4, 7): [l],
        (6, 7): [i, j, k],
        (3, 4): [c, dd, g],
        (3, 6): [c, dd, g, i],
        (4, 6): [i],
    }
    for (m, n), expected in consistency.items():
        assert consistency_proof_from_leaves(m, leaves[:n]) == expected
        verify_consistency(m, n, expected, roots[m], roots[n])


# ----------------------------------------------------------------------------- fetch errors


def test_fetcher_missing_or_malformed_node() -> None:
    with pytest.raises(NodeFetchError):
        root_at(5, lambda ids: {})
    with pytest.raises(NodeFetchError):
        inclusion_proof(0, 5, lambda ids: dict.fromkeys(ids, b"x" * 31))
    with pytest.raises(NodeFetchError):
        consistency_proof(3, 5, lambda ids: dict.fromkeys(ids, "not bytes"))  # type: ignore[arg-type]


def test_generation_argument_errors() -> None:
    fetch = RecordingFetcher(ENTRIES[:8])
    with pytest.raises(LedgerArgumentError):
        inclusion_proof(8, 8, fetch)
    with pytest.raises(LedgerArgumentError):
        inclusion_proof(0, 0, fetch)
    with pytest.raises(LedgerArgumentError):
        inclusion_proof(-1, 8, fetch)
    with pytest.raises(LedgerArgumentError):
        inclusion_proof(True, 8, fetch)  # bool is not an index
    with pytest.raises(LedgerArgumentError):
        consistency_proof(5, 4, fetch)
    with pytest.raises(LedgerArgumentError):
        root_at(-1, fetch)
    with pytest.raises(LedgerArgumentError):
        root([b"short"])
    assert fetch.calls == []


# ----------------------------------------------------------------------------- mutations


def flips(proof: list[bytes]) -> list[list[bytes]]:
    """Every proof with exactly one bit flipped."""
    out = []
    for pos, node in enumerate(proof):
        for bit in range(HASH_SIZE * 8):
            mutated = bytearray(node)
            mutated[bit // 8] ^= 1 << (bit % 8)
            out.append([*proof[:pos], bytes(mutated), *proof[pos + 1 :]])
    return out


def flip_bit(value: bytes, bit: int) -> bytes:
    mutated = bytearray(value)
    mutated[bit // 8] ^= 1 << (bit % 8)
    return bytes(mutated)


INCLUSION_CASES = [(0, 1), (0, 2), (1, 2), (2, 3), (0, 7), (3, 7), (6, 7), (5, 8), (12, 13)]
INCLUSION_CASES += [(0, 16), (15, 16), (16, 17), (9, 31), (30, 31), (32, 33), (20, 64)]


@pytest.mark.parametrize(("m", "n"), INCLUSION_CASES)
def test_inclusion_mutations_rejected(m: int, n: int) -> None:
    leaves = LEAVES[:n]
    proof = inclusion_proof_from_leaves(m, leaves)
    top = ROOTS[n]
    verify_inclusion(leaves[m], m, n, proof, top)
    for bad in flips(proof):
        with pytest.raises(InclusionProofError):
            verify_inclusion(leaves[m], m, n, bad, top)
    for bit in range(HASH_SIZE * 8):
        with pytest.raises(InclusionProofError):
            verify_inclusion(flip_bit(leaves[m], bit), m, n, proof, top)
        with pytest.raises(InclusionProofError):
            verify_inclusion(leaves[m], m, n, proof, flip_bit(top, bit))
    # Truncated and extended node lists.
    for bad in (proof[:-1], proof[1:], [*proof, proof[-1] if proof else top], [top, *proof]):
        if bad == proof:
            continue
        with pytest.raises(InclusionProofError):
            verify_inclusion(leaves[m], m, n, bad, top)
    # Wrong index (other leaves of the tree and out of range).
    for other in {m - 1, m + 1, n, n + 5, 0, n - 1} - {m}:
        if other < 0:
            continue
        with pytest.raises(InclusionProofError):
            verify_inclusion(leaves[m], other, n, proof, top)
    # Wrong size, with the genuine root of that size; a root of another size.
    for other in range(max(1, m + 1), min(MAX_N, n + 4) + 1):
        if other == n:
            continue
        with pytest.raises(InclusionProofError):
            verify_inclusion(leaves[m], m, other, proof, ROOTS[other])
        with pytest.raises(InclusionProofError):
            verify_inclusion(leaves[m], m, n, proof, ROOTS[other])
    with pytest.raises(InclusionProofError):
        verify_inclusion(leaves[m], -1, n, proof, top)


CONSISTENCY_CASES = [(1, 2), (1, 3), (2, 3), (3, 7), (4, 7), (6, 7), (5, 8), (8, 13), (7, 16)]
CONSISTENCY_CASES += [(16, 17), (15, 31), (31, 33), (32, 64), (1, 64), (37, 60)]


@pytest.mark.parametrize(("m", "n"), CONSISTENCY_CASES)
def test_consistency_mutations_rejected(m: int, n: int) -> None:
    proof = consistency_proof_from_leaves(m, LEAVES[:n])
    r1, r2 = ROOTS[m], ROOTS[n]
    verify_consistency(m, n, proof, r1, r2)
    for bad in flips(proof):
        with pytest.raises(ConsistencyProofError):
            verify_consistency(m, n, bad, r1, r2)
    for bit in range(HASH_SIZE * 8):
        with pytest.raises(ConsistencyProofError):
            verify_consistency(m, n, proof, flip_bit(r1, bit), r2)
        with pytest.raises(ConsistencyProofError):
            verify_consistency(m, n, proof, r1, flip_bit(r2, bit))
    for bad in (proof[:-1], proof[1:], [*proof, proof[-1]], [r1, *proof], [], [*proof, *proof]):
        with pytest.raises(ConsistencyProofError):
            verify_consistency(m, n, bad, r1, r2)
    # Wrong sizes with the genuine roots of those sizes; roots of other sizes.
    for other in range(max(0, m - 3), min(MAX_N, m + 3) + 1):
        if other in (m,):
            continue
        if other <= n:
            with pytest.raises(ConsistencyProofError):
                verify_consistency(other, n, proof, ROOTS[other], r2)
            with pytest.raises(ConsistencyProofError):
                verify_consistency(m, n, proof, ROOTS[other], r2)
    for other in range(max(0, n - 3), min(MAX_N, n + 3) + 1):
        if other == n:
            continue
        with pytest.raises(ConsistencyProofError):
            verify_consistency(m, other, proof, r1, ROOTS[other])
        with pytest.raises(ConsistencyProofError):
            verify_consistency(m, n, proof, r1, ROOTS[other])
    # Swapped roots and sizes.
    with pytest.raises(ConsistencyProofError):
        verify_consistency(n, m, proof, r2, r1)
    with pytest.raises(ConsistencyProofError):
        verify_consistency(m, n, proof, r2, r1)


# ----------------------------------------------------------------------------- format errors


@pytest.mark.parametrize("bad_node", [b"", b"x" * 31, b"x" * 33, "x" * 32, None, 7], ids=repr)
def test_malformed_proof_nodes(bad_node: object) -> None:
    proof = inclusion_proof_from_leaves(3, LEAVES[:7])
    bad = [proof[0], bad_node, proof[2]]
    with pytest.raises(LedgerFormatError):
        verify_inclusion(LEAVES[3], 3, 7, bad, ROOTS[7])  # type: ignore[arg-type]
    cproof = consistency_proof_from_leaves(3, LEAVES[:7])
    with pytest.raises(LedgerFormatError):
        verify_consistency(3, 7, [cproof[0], bad_node], ROOTS[3], ROOTS[7])  # type: ignore[list-item]


def test_malformed_verifier_inputs() -> None:
    proof = inclusion_proof_from_leaves(3, LEAVES[:7])
    cases: list[tuple[object, ...]] = [
        (LEAVES[3][:31], 3, 7, proof, ROOTS[7]),
        (LEAVES[3], 3, 7, proof, ROOTS[7] + b"\x00"),
        (LEAVES[3], 3, 7, b"".join(proof), ROOTS[7]),
        (LEAVES[3], "3", 7, proof, ROOTS[7]),
        (LEAVES[3], 3, 7.0, proof, ROOTS[7]),
        (LEAVES[3], 3, True, proof, ROOTS[7]),
    ]
    for args in cases:
        with pytest.raises(LedgerFormatError):
            verify_inclusion(*args)  # type: ignore[arg-type]
    with pytest.raises(LedgerFormatError):
        verify_consistency(3, 7, "proof", ROOTS[3], ROOTS[7])  # type: ignore[arg-type]
    with pytest.raises(LedgerFormatError):
        verify_consistency(3, 7, [], ROOTS[3][:-1], ROOTS[7])
    with pytest.raises(LedgerFormatError):
        verify_consistency(None, 7, [], ROOTS[3], ROOTS[7])  # type: ignore[arg-type]


def test_errors_are_ledger_errors() -> None:
    for cls in (InclusionProofError, ConsistencyProofError, LedgerFormatError, NodeFetchError):
        assert issubclass(cls, LedgerError)
        assert cls.reason
