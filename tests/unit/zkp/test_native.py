"""zkp._native: scalar vectors mod q, checked against Python integers."""

from __future__ import annotations

import random
import threading

import pytest
from petlib.bn import Bn

from zkgrid.errors import InvalidArgumentError
from zkp import rangeproof
from zkp._native import ScalarVector
from zkp.group import BASE_POINT, ORDER, hash_to_point, msm, msm_sources
from zkp.pedersen import Commitment
from zkp.rangeproof import RangeProof, RangeProofStatement

q = ORDER


def le(x: int) -> bytes:
    return x.to_bytes(32, "little")


def values(v: ScalarVector) -> list[int]:
    blob = v.to_bytes()
    assert len(blob) == 32 * len(v)
    return [int.from_bytes(blob[i : i + 32], "big") for i in range(0, len(blob), 32)]


def kronecker(root: int, factors: list[int]) -> list[int]:
    out = []
    for i in range(1 << len(factors)):
        x = root
        for level, f in enumerate(factors):
            if i >> level & 1:
                x = x * f % q
        out.append(x)
    return out


EDGE = [0, 1, 2, q - 1, q - 2, 2**255, 2**256 - 2**224 - 1, (q - 1) // 2]


@pytest.mark.parametrize("levels", [0, 1, 2, 5, 9])
def test_add_kronecker_matches_python(levels: int) -> None:
    rnd = random.Random(levels)
    n = (1 << levels) + 3  # longer than the product: the tail stays untouched
    v = ScalarVector(n)
    expected = [0] * n
    for negate in (False, True, False):
        root = rnd.choice([*EDGE, rnd.randrange(q)])
        factors = [rnd.choice([*EDGE, rnd.randrange(q), rnd.randrange(q)]) for _ in range(levels)]
        v.add_kronecker(le(root), b"".join(le(f) for f in factors), negate=negate)
        for i, x in enumerate(kronecker(root, factors)):
            expected[i] = (expected[i] - x if negate else expected[i] + x) % q
    assert values(v) == expected


def test_add_constant_and_wraparound() -> None:
    v = ScalarVector(5)
    v.add_constant(le(q - 1), 3)
    v.add_constant(le(2), 4)
    assert values(v) == [1, 1, 1, 2, 0]
    v.add_kronecker(le(q - 1), b"", negate=True)  # v_0 = q - 1, subtracted
    assert values(v)[0] == 2


def test_random_sums_match_python() -> None:
    rnd = random.Random(7)
    n = 64
    v = ScalarVector(n)
    expected = [0] * n
    for _ in range(20):
        levels = rnd.randrange(7)
        root = rnd.randrange(q)
        factors = [rnd.randrange(q) for _ in range(levels)]
        negate = rnd.random() < 0.5
        v.add_kronecker(le(root), b"".join(le(f) for f in factors), negate=negate)
        for i, x in enumerate(kronecker(root, factors)):
            expected[i] = (expected[i] + (-x if negate else x)) % q
        c = rnd.randrange(q)
        count = rnd.randrange(n + 1)
        v.add_constant(le(c), count)
        for i in range(count):
            expected[i] = (expected[i] + c) % q
    assert values(v) == expected


@pytest.mark.parametrize("bad", [q, q + 1, 2**256 - 1])
def test_unreduced_inputs_are_refused(bad: int) -> None:
    v = ScalarVector(4)
    with pytest.raises(ValueError, match="not reduced"):
        v.add_kronecker(le(bad), b"")
    with pytest.raises(ValueError, match="not reduced"):
        v.add_kronecker(le(1), le(2) + le(bad))
    with pytest.raises(ValueError, match="not reduced"):
        v.add_constant(le(bad), 4)
    assert values(v) == [0, 0, 0, 0]  # nothing changed


def test_shapes_are_checked() -> None:
    v = ScalarVector(4)
    with pytest.raises(ValueError, match="exceeds"):
        v.add_kronecker(le(1), le(2) * 3)  # 2^3 > 4
    with pytest.raises(ValueError, match="32 bytes"):
        v.add_kronecker(b"\x01" * 31, b"")
    with pytest.raises(ValueError, match="multiple of 32"):
        v.add_kronecker(le(1), b"\x00" * 33)
    with pytest.raises(ValueError, match="exceeds"):
        v.add_constant(le(1), 5)
    with pytest.raises(ValueError, match="exceeds"):
        v.add_constant(le(1), -1)
    with pytest.raises(ValueError, match="length"):
        ScalarVector(0)
    with pytest.raises(TypeError):
        v.add_kronecker("1", b"")  # type: ignore[arg-type]
    assert values(v) == [0, 0, 0, 0]


def test_threads_each_with_their_own_vector() -> None:
    """The GIL is released inside; separate vectors on separate threads stay exact."""
    rnd = random.Random(3)
    jobs = [(rnd.randrange(q), [rnd.randrange(q) for _ in range(10)]) for _ in range(4)]
    results: dict[int, list[int]] = {}

    def run(k: int) -> None:
        v = ScalarVector(1 << 10)
        root, factors = jobs[k]
        for _ in range(3):
            v.add_kronecker(le(root), b"".join(le(f) for f in factors))
        results[k] = values(v)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k, (root, factors) in enumerate(jobs):
        assert results[k] == [3 * x % q for x in kronecker(root, factors)]


@pytest.mark.parametrize("n", [1, 5, 300, 4100])  # 4100: split across the worker threads
def test_msm_from_native_vectors_and_ints(n: int) -> None:
    rnd = random.Random(n)
    points = [hash_to_point(b"test/native/%d" % (i % 37)) for i in range(n)]
    vector = ScalarVector(n // 2 or 1)
    levels = len(vector).bit_length() - 1
    root, factors = rnd.randrange(q), [rnd.randrange(q) for _ in range(levels)]
    vector.add_kronecker(le(root), b"".join(le(f) for f in factors))
    head = values(vector)
    tail = [rnd.choice([0, 1, q - 1, rnd.randrange(q)]) for _ in range(n - len(head))]
    expected = msm(head + tail, points)  # reference: ints, then the same native path
    reference = BASE_POINT.group.infinite()
    for s, p in zip(head + tail, points, strict=True):
        reference = reference + p.pt_mul(Bn.from_decimal(str(s)))
    assert expected == reference
    assert msm_sources([vector, tail], points) == reference
    assert msm([s - q for s in head + tail], points) == reference  # any int is reduced


def test_msm_sources_refuses_unreduced_or_mismatched_scalars() -> None:
    points = [BASE_POINT, BASE_POINT]
    with pytest.raises(ValueError, match=r"\[0, q\)"):
        msm_sources([[1, q]], points)
    with pytest.raises(ValueError, match=r"\[0, q\)"):
        msm_sources([[1, -1]], points)
    with pytest.raises(TypeError):
        msm_sources([[1, 2.0]], points)  # type: ignore[list-item]
    with pytest.raises(InvalidArgumentError):
        msm_sources([[1]], points)
    assert msm_sources([[1, 2]], points) == BASE_POINT.pt_mul(Bn(3))


@pytest.mark.parametrize(("bits", "count"), [(8, 1), (16, 3), (32, 2)])
def test_accumulate_matches_the_b1_table(bits: int, count: int) -> None:
    """The Kronecker forms (B5) give the (B1) scalars of G_i and H_i, computed naively."""
    rnd = random.Random(bits * 100 + count)
    bundle = RangeProof.prove([rnd.randrange(1 << bits) for _ in range(count)], bits, context=b"t")
    commitments = [Commitment.from_bytes(c.to_bytes()) for c in bundle.commitments]
    p = rangeproof._prepare(RangeProofStatement(bundle.proof, commitments, bits, b"t"))
    N = p.bits * p.padded
    g_acc, h_acc = ScalarVector(N), ScalarVector(N)
    weight = rnd.randrange(1, q)
    rangeproof._accumulate(p, weight, rnd.randrange(1, q), g_acc, h_acc, [0, 0, 0], [], [])

    k = len(p.u)
    s = []
    for i in range(N):  # (I4), straight from the definition
        x = 1
        for r, u in enumerate(p.u):  # u_(r+1) goes with bit k-1-r of i
            x = x * (u if i >> (k - 1 - r) & 1 else pow(u, -1, q)) % q
        s.append(x)
    y_inv = pow(p.y, -1, q)
    zeta = [pow(p.z, 2 + i // bits, q) * pow(2, i % bits, q) % q for i in range(N)]
    g_expected = [weight * (-p.z - p.a * s[i]) % q for i in range(N)]
    h_expected = [
        weight * (p.z + pow(y_inv, i, q) * (zeta[i] - p.b * s[N - 1 - i])) % q for i in range(N)
    ]
    assert values(g_acc) == g_expected
    assert values(h_acc) == h_expected
