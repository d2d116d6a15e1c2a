"""Property tests (hypothesis) for the algebra of zkp: encodings, homomorphism, sigma proofs."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from zkp.generators import G, pedersen_h
from zkp.group import (
    ORDER,
    decode_point,
    decode_scalar,
    encode_point,
    encode_scalar,
    msm,
    mul,
)
from zkp.pedersen import Commitment, commit, linear_combination
from zkp.sigma import EqualityProof, LinearCombinationProof, OpeningProof

SETTINGS = settings(max_examples=40, deadline=None)

scalars = st.integers(min_value=0, max_value=ORDER - 1)
nonzero_scalars = st.integers(min_value=1, max_value=ORDER - 1)
values = st.integers(min_value=-(1 << 64), max_value=1 << 64)
small_coefficients = st.integers(min_value=-(10**9), max_value=10**9)
coefficients = small_coefficients | st.integers(min_value=-(1 << 300), max_value=1 << 300)


@SETTINGS
@given(a=values, b=values, r=scalars, s=scalars, k=values)
def test_homomorphism(a: int, b: int, r: int, s: int, k: int) -> None:
    assert commit(a, r) + commit(b, s) == commit(a + b, r + s)
    assert commit(a, r) - commit(b, s) == commit(a - b, r - s)
    assert commit(a, r).scale(k) == commit(k * a, k * r)


@SETTINGS
@given(x=nonzero_scalars)
def test_point_round_trip(x: int) -> None:
    point = mul(x, G)
    data = encode_point(point)
    assert len(data) == 33
    assert decode_point(data) == point
    assert Commitment.from_bytes(data).point == point


@SETTINGS
@given(x=scalars)
def test_scalar_round_trip(x: int) -> None:
    assert decode_scalar(encode_scalar(x)) == x


@SETTINGS
@given(x=st.integers())
def test_scalar_encoding_reduces(x: int) -> None:
    assert decode_scalar(encode_scalar(x)) == x % ORDER


@SETTINGS
@given(
    st.lists(st.tuples(coefficients, values, nonzero_scalars), min_size=1, max_size=6),
    values,
    st.binary(max_size=40),
)
def test_linear_combination_proofs_verify(
    rows: list[tuple[int, int, int]], constant: int, context: bytes
) -> None:
    ps = [p for p, _, _ in rows]
    vs = [v for _, v, _ in rows]
    rs = [r for _, _, r in rows]
    cs = [commit(v, r) for v, r in zip(vs, rs, strict=True)]
    proof, total = LinearCombinationProof.prove(ps, cs, vs, rs, constant, context)
    exact = sum(p * v for p, v in zip(ps, vs, strict=True))
    # B - k is the centred representative of sum p_i*v_i mod q (sigma.md)
    assert (total - constant - exact) % ORDER == 0
    assert abs(total - constant) <= ORDER // 2
    if abs(exact) <= ORDER // 2:
        assert total == exact + constant
    # the statement itself: sum p_i*C_i - (B - k)*G is a multiple of H
    combined = linear_combination(ps, cs)
    big_r = sum(p * r for p, r in zip(ps, rs, strict=True))
    assert combined.point - mul(total - constant, G) == mul(big_r, pedersen_h())
    again = LinearCombinationProof.from_bytes(proof.to_bytes())
    again.verify(ps, cs, total, constant, context)
    LinearCombinationProof.verify_batch([(again, ps, cs, total, constant, context)])  # type: ignore[list-item]


@SETTINGS
@given(v=values, r=nonzero_scalars, s=nonzero_scalars, context=st.binary(max_size=40))
def test_opening_and_equality_proofs_verify(v: int, r: int, s: int, context: bytes) -> None:
    c1, c2 = commit(v, r), commit(v, s)
    OpeningProof.from_bytes(OpeningProof.prove(c1, v, r, context).to_bytes()).verify(c1, context)
    eq = EqualityProof.prove(c1, c2, r, s, context)
    EqualityProof.from_bytes(eq.to_bytes()).verify(c1, c2, context)


@SETTINGS
@given(st.lists(st.tuples(scalars, nonzero_scalars), min_size=0, max_size=12))
def test_msm_is_linear(pairs: list[tuple[int, int]]) -> None:
    points = [mul(x, G) for _, x in pairs]
    expected = sum((s * x for s, x in pairs), 0)
    result = msm([s for s, _ in pairs], points)
    if expected % ORDER == 0:
        assert result.is_infinite()
    else:
        assert result == mul(expected, G)
