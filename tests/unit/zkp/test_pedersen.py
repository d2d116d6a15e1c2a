"""zkp.pedersen: commitments, homomorphism, encodings."""

from __future__ import annotations

import secrets

import pytest

from zkgrid.errors import InvalidArgumentError, ProofFormatError
from zkp.generators import G, bp_generators, pedersen_h
from zkp.group import ORDER, encode_point, identity, msm, mul, random_scalar
from zkp.pedersen import Commitment, commit, commit_random, linear_combination, vector_commit


def test_commit_is_vG_plus_rH() -> None:
    v, r = 123_456_789, random_scalar()
    assert commit(v, r).point == mul(v, G) + mul(r, pedersen_h())


def test_homomorphism() -> None:
    a, b = 1_000_003, 7_777_777
    r, s = random_scalar(), random_scalar()
    assert commit(a, r) + commit(b, s) == commit(a + b, r + s)
    assert commit(a, r) - commit(b, s) == commit(a - b, r - s)
    assert -commit(a, r) == commit(-a, -r)


@pytest.mark.parametrize("factor", [0, 1, 2, -3, 10**40, ORDER - 1, ORDER + 2])
def test_scale(factor: int) -> None:
    v, r = 424_242, random_scalar()
    c = commit(v, r)
    expected = Commitment(msm([factor * v, factor * r], [G, pedersen_h()]))
    assert c.scale(factor) == expected
    assert c * factor == expected
    assert factor * c == expected


def test_negative_values_are_taken_mod_order() -> None:
    r, s = random_scalar(), random_scalar()
    assert commit(-5, r) == commit(ORDER - 5, r)
    assert commit(-5, r) + commit(5, s) == commit(0, r + s)
    assert commit(-(10**30), r) == commit(ORDER - 10**30, r)
    assert commit(3, -r) == commit(3, ORDER - r)


def test_linear_combination() -> None:
    values = [secrets.randbelow(1 << 32) for _ in range(5)]
    blindings = [random_scalar() for _ in range(5)]
    coefficients = [3, -2, 0, 10**50, -(10**60)]
    commitments = [commit(v, r) for v, r in zip(values, blindings, strict=True)]
    total_v = sum(p * v for p, v in zip(coefficients, values, strict=True))
    total_r = sum(p * r for p, r in zip(coefficients, blindings, strict=True))
    combined = linear_combination(coefficients, commitments)
    assert combined == commit(total_v, total_r)
    manual = Commitment(identity())
    for p, c in zip(coefficients, commitments, strict=True):
        manual = manual + c.scale(p)
    assert combined == manual


def test_linear_combination_rejects_length_mismatch() -> None:
    with pytest.raises(InvalidArgumentError):
        linear_combination([1, 2], [commit(1, 1)])


def test_bytes_round_trip() -> None:
    c = commit(99, random_scalar())
    data = c.to_bytes()
    assert len(data) == 33
    assert data == encode_point(c.point)
    assert Commitment.from_bytes(data) == c
    assert hash(Commitment.from_bytes(data)) == hash(c)
    assert data.hex() in repr(c)


def test_from_bytes_is_strict() -> None:
    data = commit(99, random_scalar()).to_bytes()
    for bad in (data[:-1], data + b"\x00", b"\x04" + data[1:], bytes(33)):
        with pytest.raises(ProofFormatError):
            Commitment.from_bytes(bad)


def test_many_from_bytes() -> None:
    cs = [commit(i, random_scalar()) for i in range(4)]
    blob = b"".join(c.to_bytes() for c in cs)
    assert Commitment.many_from_bytes(blob) == cs
    assert Commitment.many_from_bytes(b"") == []
    for bad in (blob[:-1], blob + b"\x02"):
        with pytest.raises(ProofFormatError):
            Commitment.many_from_bytes(bad)


def test_identity_commitment_has_no_encoding() -> None:
    c = commit(0, 0)
    assert c.point.is_infinite()
    assert repr(c) == "Commitment(identity)"
    with pytest.raises(InvalidArgumentError):
        c.to_bytes()


def test_hiding_sanity() -> None:
    v = 31_415
    encodings = {commit(v, random_scalar()).to_bytes() for _ in range(16)}
    assert len(encodings) == 16
    # and different values under the same blinding differ (binding sanity)
    r = random_scalar()
    assert commit(1, r) != commit(2, r)


def test_commit_random_opens() -> None:
    c, r = commit_random(77)
    assert 1 <= r < ORDER
    assert c == commit(77, r)
    c2, r2 = commit_random(77)
    assert r != r2
    assert c != c2


def test_vector_commit() -> None:
    g_vec, h_vec = bp_generators(4)
    a = [secrets.randbelow(ORDER) for _ in range(4)]
    b = [secrets.randbelow(ORDER) for _ in range(4)]
    blinding = random_scalar()
    expected = identity()
    for x, p in zip(a, g_vec, strict=True):
        expected = expected + mul(x, p)
    for x, p in zip(b, h_vec, strict=True):
        expected = expected + mul(x, p)
    assert vector_commit(a, b, g_vec, h_vec) == expected
    assert vector_commit(a, b, g_vec, h_vec, blinding) == expected + mul(blinding, pedersen_h())
    with pytest.raises(InvalidArgumentError):
        vector_commit(a[:3], b, g_vec, h_vec)
