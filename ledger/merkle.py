"""RFC 6962 / RFC 9162 Merkle tree maths: hashing, compact ranges, proofs.

Pure functions, no I/O. The storage layer persists the *perfect* nodes of the
tree, addressed by :data:`NodeId` ``(level, index)``; every hash an RFC proof
contains is computed from O(log n) of them, fetched in one bulk call through a
:data:`NodeFetcher`. The equations referenced as ``(Ln)`` are in
docs/notes/ledger.md.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping, Sequence

from ledger.errors import (
    ConsistencyProofError,
    InclusionProofError,
    LedgerArgumentError,
    LedgerFormatError,
    NodeFetchError,
)

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "NodeFetcher",
    "NodeId",
    "consistency_proof",
    "consistency_proof_from_leaves",
    "inclusion_proof",
    "inclusion_proof_from_leaves",
    "leaf_hash",
    "node_hash",
    "root",
    "root_at",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
#: MTH({}) = SHA-256() (L3).
EMPTY_ROOT = hashlib.sha256(b"").digest()

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

#: ``(level, index)``: the perfect subtree over leaves ``[index*2^level, (index+1)*2^level)`` (L4).
NodeId = tuple[int, int]
#: Bulk lookup of stored perfect nodes; must return every requested id.
NodeFetcher = Callable[[Sequence[NodeId]], Mapping[NodeId, bytes]]


# --------------------------------------------------------------------------- hashing


def leaf_hash(data: bytes) -> bytes:
    """(L1) ``SHA-256(0x00 || data)``."""
    return hashlib.sha256(_LEAF_PREFIX + bytes(data)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """(L2) ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(_NODE_PREFIX + bytes(left) + bytes(right)).digest()


# --------------------------------------------------------------------------- helpers


def _check_size_arg(value: object, what: str) -> int:
    """A non-negative int argument of a *generation* function (bool is not an int here)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise LedgerArgumentError(f"{what} must be a non-negative integer")
    return value


def _check_hash_arg(value: object, what: str) -> bytes:
    if not isinstance(value, bytes | bytearray) or len(value) != HASH_SIZE:
        raise LedgerArgumentError(f"{what} must be {HASH_SIZE} bytes")
    return bytes(value)


def _check_hash_input(value: object, what: str) -> bytes:
    """A hash handed to a *verifier*: malformed input is a format error."""
    if not isinstance(value, bytes | bytearray) or len(value) != HASH_SIZE:
        raise LedgerFormatError(f"{what} must be {HASH_SIZE} bytes")
    return bytes(value)


def _check_proof_input(proof: object) -> list[bytes]:
    if isinstance(proof, bytes | bytearray | str) or not isinstance(proof, Sequence):
        raise LedgerFormatError("proof must be a sequence of 32-byte hashes")
    return [_check_hash_input(node, f"proof node {i}") for i, node in enumerate(proof)]


def _split(n: int) -> int:
    """(L3) k: the largest power of two strictly smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _decompose(start: int, end: int) -> list[NodeId]:
    """(L5) The perfect nodes covering ``[start, end)``, left to right.

    For the ranges RFC 6962 uses (``start`` a multiple of a power of two at
    least ``end - start``) this is the binary decomposition of ``end - start``,
    largest subtree first.
    """
    ids: list[NodeId] = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start:
            level = min(level, (start & -start).bit_length() - 1)
        ids.append((level, start >> level))
        start += 1 << level
    return ids


def _fold(hashes: Sequence[bytes]) -> bytes:
    """(L5) Right-to-left fold: ``NH(h0, NH(h1, ... NH(h_{k-2}, h_{k-1})))``."""
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def _range_hashes(ranges: Sequence[tuple[int, int]], fetch: NodeFetcher) -> list[bytes]:
    """MTH(D[a:b]) for each range, from one bulk fetch of perfect nodes."""
    per_range = [_decompose(a, b) for a, b in ranges]
    wanted = list(dict.fromkeys(nid for ids in per_range for nid in ids))
    if not wanted:
        return []
    got = fetch(wanted)
    for nid in wanted:
        value = got.get(nid)
        if not isinstance(value, bytes | bytearray) or len(value) != HASH_SIZE:
            raise NodeFetchError(f"fetcher did not return a {HASH_SIZE}-byte hash for node {nid}")
    return [_fold([bytes(got[nid]) for nid in ids]) for ids in per_range]


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """(L7) The ranges whose MTH form PATH(index, D[0:size]), in proof order."""
    top_down: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:  # PATH(m, D[0:k]) : MTH(D[k:n])
            top_down.append((lo + k, hi))
            hi = lo + k
        else:  # PATH(m - k, D[k:n]) : MTH(D[0:k])
            top_down.append((lo, lo + k))
            lo += k
    top_down.reverse()
    return top_down


def _consistency_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    """(L9) The ranges whose MTH form PROOF(size1, D[0:size2]), in proof order.

    Empty for ``size1 == 0`` and ``size1 == size2`` (L11).
    """
    if size1 == 0 or size1 == size2:
        return []
    top_down: list[tuple[int, int]] = []
    lo, hi, complete = 0, size2, True
    while size1 != hi:  # invariant: lo < size1 <= hi; m = size1 - lo, n = hi - lo
        k = _split(hi - lo)
        if size1 <= lo + k:  # m <= k: SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
            top_down.append((lo + k, hi))
            hi = lo + k
        else:  # m > k: SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
            top_down.append((lo, lo + k))
            lo += k
            complete = False
    top_down.reverse()
    if not complete:  # SUBPROOF(m, D[m], false) = {MTH(D[m])}
        top_down.insert(0, (lo, hi))
    return top_down


# --------------------------------------------------------------------------- compact range


class CompactRange:
    """(L6) The right frontier of a tree of ``size`` leaves.

    ``hashes[i]`` is the hash of the i-th perfect subtree of the binary
    decomposition of ``size`` (largest, leftmost first); their ids are
    :meth:`frontier_ids`. Enough to append leaves and compute the root.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int, hashes: Sequence[bytes]) -> None:
        size = _check_size_arg(size, "size")
        if len(hashes) != size.bit_count():
            raise LedgerArgumentError(
                f"a compact range of size {size} has {size.bit_count()} hashes, got {len(hashes)}"
            )
        self._size = size
        self._hashes = [_check_hash_arg(h, "frontier hash") for h in hashes]

    @classmethod
    def empty(cls) -> CompactRange:
        return cls(0, [])

    @staticmethod
    def frontier_ids(size: int) -> list[NodeId]:
        """The stored perfect nodes whose hashes rebuild the range of ``size``."""
        return _decompose(0, _check_size_arg(size, "size"))

    @property
    def size(self) -> int:
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        return tuple(self._hashes)

    def copy(self) -> CompactRange:
        return CompactRange(self._size, self._hashes)

    def append(self, leaf: bytes) -> list[tuple[NodeId, bytes]]:
        """Append a leaf hash; return every new perfect node, the leaf first."""
        carry = _check_hash_arg(leaf, "leaf hash")
        level, index = 0, self._size
        created: list[tuple[NodeId, bytes]] = [((0, index), carry)]
        while (self._size >> level) & 1:  # a sibling subtree of the same level: merge
            carry = node_hash(self._hashes.pop(), carry)
            level += 1
            index >>= 1
            created.append(((level, index), carry))
        self._hashes.append(carry)
        self._size += 1
        return created

    def root(self) -> bytes:
        """(L5) MTH of the whole tree: the right-to-left fold of the frontier."""
        return _fold(self._hashes) if self._hashes else EMPTY_ROOT

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompactRange):
            return NotImplemented
        return self._size == other._size and self._hashes == other._hashes

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"CompactRange(size={self._size})"


# --------------------------------------------------------------------------- generation


def root_at(size: int, fetch: NodeFetcher) -> bytes:
    """(L3, L5) MTH(D[0:size]) from the perfect nodes of its decomposition."""
    size = _check_size_arg(size, "size")
    if size == 0:
        return EMPTY_ROOT
    return _range_hashes([(0, size)], fetch)[0]


def inclusion_proof(index: int, size: int, fetch: NodeFetcher) -> list[bytes]:
    """(L7) PATH(index, D[0:size]) (RFC 9162 2.1.3.1), with one bulk fetch."""
    size = _check_size_arg(size, "size")
    index = _check_size_arg(index, "index")
    if index >= size:
        raise LedgerArgumentError(f"index {index} is outside a tree of size {size}")
    return _range_hashes(_inclusion_ranges(index, size), fetch)


def consistency_proof(size1: int, size2: int, fetch: NodeFetcher) -> list[bytes]:
    """(L9) PROOF(size1, D[0:size2]) (RFC 9162 2.1.4.1), with one bulk fetch.

    Empty when ``size1 == 0`` or ``size1 == size2`` (L11).
    """
    size1 = _check_size_arg(size1, "size1")
    size2 = _check_size_arg(size2, "size2")
    if size1 > size2:
        raise LedgerArgumentError(f"size1 {size1} is larger than size2 {size2}")
    return _range_hashes(_consistency_ranges(size1, size2), fetch)


def _leaves_fetcher(leaf_hashes: Sequence[bytes]) -> NodeFetcher:
    """A fetcher over an in-memory list: every perfect node, level by level."""
    levels = [[_check_hash_arg(h, f"leaf hash {i}") for i, h in enumerate(leaf_hashes)]]
    while len(levels[-1]) > 1:
        prev = levels[-1]
        levels.append([node_hash(prev[i], prev[i + 1]) for i in range(0, len(prev) - 1, 2)])

    def fetch(ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        out: dict[NodeId, bytes] = {}
        for level, index in ids:
            if not 0 <= level < len(levels) or not 0 <= index < len(levels[level]):
                raise NodeFetchError(f"node {(level, index)} is not a perfect node of the tree")
            out[(level, index)] = levels[level][index]
        return out

    return fetch


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of a list of leaf hashes."""
    return root_at(len(leaf_hashes), _leaves_fetcher(leaf_hashes))


def inclusion_proof_from_leaves(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PATH(index, D_n) over an in-memory list of leaf hashes."""
    return inclusion_proof(index, len(leaf_hashes), _leaves_fetcher(leaf_hashes))


def consistency_proof_from_leaves(size1: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PROOF(size1, D_n) over an in-memory list of leaf hashes."""
    return consistency_proof(size1, len(leaf_hashes), _leaves_fetcher(leaf_hashes))


# --------------------------------------------------------------------------- verification


def _check_verifier_int(value: object, what: str, error: type[Exception]) -> int:
    """An index or size handed to a verifier: non-int is malformed, negative does not verify."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise LedgerFormatError(f"{what} must be an integer")
    if value < 0:
        raise error(f"{what} must not be negative")
    return value


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162 2.1.3.2 (L8): ``leaf_hash`` is leaf ``index`` of the tree ``(size, root)``.

    Raises :class:`LedgerFormatError` for malformed input and
    :class:`InclusionProofError` when the proof does not verify.
    """
    leaf = _check_hash_input(leaf_hash, "leaf hash")
    expected_root = _check_hash_input(root, "root")
    path = _check_proof_input(proof)
    index = _check_verifier_int(index, "index", InclusionProofError)
    size = _check_verifier_int(size, "size", InclusionProofError)
    # ledger.md (L8) step 1: leaf_index < tree_size.
    if index >= size:
        raise InclusionProofError(f"(L8) step 1: index {index} is not below size {size}")
    # ledger.md (L7): |PATH(m, D_n)| is fixed by (m, n); checked up front to bound the work.
    expected_len = len(_inclusion_ranges(index, size))
    if len(path) != expected_len:
        raise InclusionProofError(
            f"(L7) proof length: {len(path)} nodes, expected {expected_len} for index {index}"
            f" in size {size}"
        )
    # ledger.md (L8) steps 2-3.
    fn, sn = index, size - 1
    r = leaf
    # ledger.md (L8) step 4.
    for p in path:
        if sn == 0:  # step 4a
            raise InclusionProofError("(L8) step 4a: proof longer than the path to the root")
        if fn & 1 or fn == sn:  # step 4b: p is a left sibling
            r = node_hash(p, r)
            if not fn & 1:
                while fn != 0 and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:  # p is a right sibling
            r = node_hash(r, p)
        fn >>= 1  # step 4c
        sn >>= 1
    # ledger.md (L8) step 5: sn == 0 and r == root.
    if sn != 0:
        raise InclusionProofError("(L8) step 5: proof shorter than the path to the root")
    if not hmac.compare_digest(r, expected_root):
        raise InclusionProofError("(L8) step 5: recomputed root does not match the root")


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """RFC 9162 2.1.4.2 (L10, L11): the tree ``(size1, root1)`` is a prefix of ``(size2, root2)``.

    Raises :class:`LedgerFormatError` for malformed input and
    :class:`ConsistencyProofError` when the proof does not verify.
    """
    first_hash = _check_hash_input(root1, "root1")
    second_hash = _check_hash_input(root2, "root2")
    path = _check_proof_input(proof)
    first = _check_verifier_int(size1, "size1", ConsistencyProofError)
    second = _check_verifier_int(size2, "size2", ConsistencyProofError)
    # ledger.md (L11): outside 0 < first < second there is nothing to prove.
    if first > second:
        raise ConsistencyProofError(f"(L11) size1 {first} is larger than size2 {second}")
    if first == second:
        if path:
            raise ConsistencyProofError("(L11) size1 == size2 but the proof is not empty")
        if not hmac.compare_digest(first_hash, second_hash):
            raise ConsistencyProofError("(L11) size1 == size2 but the roots differ")
        return
    if first == 0:
        if path:
            raise ConsistencyProofError("(L11) size1 == 0 but the proof is not empty")
        if not hmac.compare_digest(first_hash, EMPTY_ROOT):
            raise ConsistencyProofError("(L11) size1 == 0 but root1 is not MTH({})")
        return
    # ledger.md (L9): |PROOF(m, D_n)| is fixed by (m, n); checked up front to bound the work.
    expected_len = len(_consistency_ranges(first, second))
    if len(path) != expected_len:
        raise ConsistencyProofError(
            f"(L9) proof length: {len(path)} nodes, expected {expected_len} for sizes"
            f" {first} -> {second}"
        )
    # ledger.md (L10) step 1: the proof is not empty (never reached: expected_len >= 1).
    if not path:
        raise ConsistencyProofError("(L10) step 1: empty proof")
    # step 2: first a power of two -> prepend first_hash.
    if first & (first - 1) == 0:
        path = [first_hash, *path]
    # step 3.
    fn, sn = first - 1, second - 1
    # step 4.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # step 5.
    fr = sr = path[0]
    # step 6.
    for c in path[1:]:
        if sn == 0:  # step 6a
            raise ConsistencyProofError("(L10) step 6a: proof longer than the path to the root")
        if fn & 1 or fn == sn:  # step 6b
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn != 0 and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1  # step 6c
        sn >>= 1
    # step 7: fr == first_hash, sr == second_hash, sn == 0.
    if sn != 0:
        raise ConsistencyProofError("(L10) step 7: proof shorter than the path to the root")
    if not hmac.compare_digest(fr, first_hash):
        raise ConsistencyProofError("(L10) step 7: recomputed root1 does not match root1")
    if not hmac.compare_digest(sr, second_hash):
        raise ConsistencyProofError("(L10) step 7: recomputed root2 does not match root2")
