"""Property tests: circuit gadgets on random small values compute what plain Python computes,
prove and verify exactly when the statement is true."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from circuits import gadgets
from circuits.r1cs import ConstraintSystem, UnsatisfiedConstraintError, Variable
from tests.adversarial.test_circuit_soundness import CheatingProver
from tests.unit.circuits.circuit_support import (
    build_prover,
    build_verifier,
    openings,
    prove_and_verify,
)
from zkgrid.errors import VerificationError

SETTINGS = settings(max_examples=60, deadline=None)


@st.composite
def ranged(draw: st.DrawFn) -> tuple[int, int]:
    bits = draw(st.integers(1, 24))
    top = 1 << bits
    edges = st.sampled_from([0, top - 1, top, -1, -top, top + 1, 2 * top - 1])
    value = draw(st.one_of(edges, st.integers(-2 * top, 2 * top)))
    return value, bits


@SETTINGS
@given(ranged())
def test_range_check_proves_exactly_in_range(case: tuple[int, int]) -> None:
    value, bits = case

    def build(cs: ConstraintSystem, xs: list[Variable]) -> None:
        gadgets.range_check(cs, xs[0], bits)

    if 0 <= value < 1 << bits:
        prove_and_verify(build, openings(value), b"range")
    else:
        prover = build_prover(build, openings(value))
        with pytest.raises(UnsatisfiedConstraintError):
            prover.check()
        with pytest.raises(UnsatisfiedConstraintError):
            prover.prove(b"range")


@st.composite
def close_pair(draw: st.DrawFn) -> tuple[int, int, int]:
    bits = draw(st.integers(1, 20))
    a = draw(st.integers(-(1 << 24), 1 << 24))
    spread = draw(st.integers(-(1 << bits) + 1, (1 << bits) - 1))
    return a, a + spread, bits


@SETTINGS
@given(close_pair())
def test_minimum_and_maximum_are_pythons(case: tuple[int, int, int]) -> None:
    a, b, bits = case

    def build(cs: ConstraintSystem, xs: list[Variable]) -> None:
        low = gadgets.minimum(cs, xs[0], xs[1], bits)
        high = gadgets.maximum(cs, xs[0], xs[1], bits)
        if cs.is_prover:
            assert (cs.value(low), cs.value(high)) == (min(a, b), max(a, b))
        cs.constrain(low - min(a, b))
        cs.constrain(high - max(a, b))

    prove_and_verify(build, openings(a, b), b"minmax")


@st.composite
def value_lists(draw: st.DrawFn) -> tuple[list[int], int]:
    bits = draw(st.integers(1, 16))
    base = draw(st.integers(-1000, 1000))
    values = draw(st.lists(st.integers(0, (1 << bits) - 1), min_size=1, max_size=6))
    return [base + v for v in values], bits


@SETTINGS
@given(value_lists())
def test_max_of_and_min_of_are_pythons(case: tuple[list[int], int]) -> None:
    values, bits = case

    def build(cs: ConstraintSystem, xs: list[Variable]) -> None:
        high = gadgets.max_of(cs, xs, bits)
        low = gadgets.min_of(cs, xs, bits)
        if cs.is_prover:
            assert (cs.value(high), cs.value(low)) == (max(values), min(values))
        cs.constrain(high - max(values))
        cs.constrain(low - min(values))

    prove_and_verify(build, openings(*values), b"extremes")


@settings(max_examples=20, deadline=None)
@given(value_lists(), st.integers(-(1 << 17), 1 << 17).filter(lambda d: d != 0))
def test_max_of_any_other_claim_never_verifies(case: tuple[list[int], int], delta: int) -> None:
    values, bits = case
    claimed = max(values) + delta

    def build(cs: ConstraintSystem, xs: list[Variable]) -> None:
        cs.constrain(gadgets.max_of(cs, xs, bits) - claimed)

    inputs = openings(*values)
    prover = CheatingProver(allocations={0: claimed})
    xs = [prover.commit(o.commitment, o.value, o.blinding) for o in inputs]
    build(prover, xs)
    verifier = build_verifier(build, [o.commitment for o in inputs])
    assert prover.digest() == verifier.digest()
    with pytest.raises(UnsatisfiedConstraintError):
        prover.check()
    with pytest.raises(VerificationError):
        verifier.verify(prover._prove_unchecked(b"lie"), b"lie")


# --------------------------------------------------------------------------- tariffs


def tier_cost(x: int, starts: Sequence[int], rates: Sequence[int]) -> int:
    """The block tariff by hand: each tier filled in order, the last one unbounded."""
    cost = 0
    for i, (start, rate) in enumerate(zip(starts, rates, strict=True)):
        end = starts[i + 1] if i + 1 < len(starts) else None
        used = max(0, x - start) if end is None else min(max(0, x - start), end - start)
        cost += rate * used
    return cost


def affine_pieces(starts: Sequence[int], rates: Sequence[int]) -> list[tuple[int, int]]:
    return [(tier_cost(s, starts, rates) - r * s, r) for s, r in zip(starts, rates, strict=True)]


@st.composite
def tariffs(draw: st.DrawFn) -> tuple[list[int], list[int], int]:
    widths = draw(st.lists(st.integers(1, 500), min_size=0, max_size=3))
    starts = [0, *itertools.accumulate(widths)]
    rates = draw(st.lists(st.integers(0, 50), min_size=len(starts), max_size=len(starts)))
    x = draw(st.one_of(st.sampled_from(starts), st.integers(0, 2 * starts[-1] + 100)))
    return starts, rates, x


@SETTINGS
@given(tariffs())
def test_piecewise_linear_is_the_tariff(case: tuple[list[int], list[int], int]) -> None:
    starts, rates, x = case
    bits = max(x, starts[-1]).bit_length() + 1
    expected = tier_cost(x, starts, rates)

    def build(cs: ConstraintSystem, xs: list[Variable]) -> None:
        cost = gadgets.piecewise_linear(cs, xs[0], starts, rates, bits)
        if cs.is_prover:
            assert cs.value(cost) == expected
        cs.constrain(cost - expected)

    prove_and_verify(build, openings(x), b"tiers")


@SETTINGS
@given(tariffs(), st.booleans())
def test_convex_and_concave_piecewise_are_monotone_tariffs(
    case: tuple[list[int], list[int], int], inclining: bool
) -> None:
    starts, rates, x = case
    rates = sorted(rates, reverse=not inclining)
    pieces = affine_pieces(starts, rates)
    lines = [a + r * x for a, r in pieces]
    expected = tier_cost(x, starts, rates)
    assert expected == (max(lines) if inclining else min(lines))
    bits = (max(lines) - min(lines)).bit_length() + 1
    gadget = gadgets.convex_piecewise if inclining else gadgets.concave_piecewise

    def build(cs: ConstraintSystem, xs: list[Variable]) -> None:
        cost = gadget(cs, xs[0], pieces, bits)
        if cs.is_prover:
            assert cs.value(cost) == expected
        cs.constrain(cost - expected)

    prove_and_verify(build, openings(x), b"monotone")
