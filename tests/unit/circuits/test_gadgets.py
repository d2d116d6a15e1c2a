"""circuits.gadgets: completeness on edge values (prove, then verify with a verifier running
the same gadget code), the outputs' values, and the multipliers each docstring states."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import pytest

from circuits import gadgets
from circuits.r1cs import (
    ConstraintSystem,
    LinearCombination,
    Prover,
    UnsatisfiedConstraintError,
    Variable,
    Verifier,
)
from tests.unit.circuits.circuit_support import build_prover, openings, prove_and_verify
from zkgrid.errors import InvalidArgumentError

Gadget = Callable[[ConstraintSystem, list[Variable]], LinearCombination | Variable | None]


def run(
    values: Sequence[int], gadget: Gadget, expected: int | None = None, context: bytes = b"g"
) -> tuple[int, int]:
    """Prove and verify ``gadget`` over the committed ``values`` (its output constrained to
    ``expected`` when given); returns the multipliers and constraints the gadget added."""
    added: dict[bool, tuple[int, int]] = {}

    def build(cs: ConstraintSystem, xs: list[Variable]) -> None:
        gates, constraints = cs.gates, cs.constraints
        out = gadget(cs, xs)
        added[cs.is_prover] = (cs.gates - gates, cs.constraints - constraints)
        if expected is not None:
            assert out is not None
            if cs.is_prover:
                assert cs.value(out) == expected
            cs.constrain(out - expected)

    prove_and_verify(build, openings(*values), context)
    assert added[True] == added[False]
    return added[True]


def refused(values: Sequence[int], gadget: Gadget, expected: int | None = None) -> None:
    """The honest prover cannot prove ``gadget`` over ``values`` (with output ``expected``)."""

    def build(cs: ConstraintSystem, xs: list[Variable]) -> None:
        out = gadget(cs, xs)
        if expected is not None:
            assert out is not None
            cs.constrain(out - expected)

    prover = build_prover(build, openings(*values))
    with pytest.raises(UnsatisfiedConstraintError):
        prover.check()
    with pytest.raises(UnsatisfiedConstraintError):
        prover.prove()


# --------------------------------------------------------------------------- bits and booleans


@pytest.mark.parametrize("b", [0, 1])
def test_bit(b: int) -> None:
    def gadget(cs: ConstraintSystem, xs: list[Variable]) -> Variable:
        return gadgets.bit(cs, cs.value(xs[0]))

    assert run([b], gadget, expected=b) == (1, 2)
    refused([b], gadget, expected=1 - b)


def test_bit_value_must_be_boolean() -> None:
    for value in (2, -1):
        with pytest.raises(InvalidArgumentError):
            gadgets.bit(Prover(), value)


@pytest.mark.parametrize("b", [0, 1])
def test_assert_boolean(b: int) -> None:
    assert run([b], lambda cs, xs: gadgets.assert_boolean(cs, xs[0])) == (1, 3)


@pytest.mark.parametrize("value", [2, -1, 1 << 40])
def test_assert_boolean_refuses(value: int) -> None:
    refused([value], lambda cs, xs: gadgets.assert_boolean(cs, xs[0]))


# --------------------------------------------------------------------------- ranges


@pytest.mark.parametrize(
    ("value", "bits"),
    [(0, 1), (1, 1), (0, 8), (255, 8), (128, 8), (2**32 - 1, 32), (0, 64), (2**64 - 1, 64),
     (2**128 - 1, 128)],
)
def test_range_check(value: int, bits: int) -> None:
    added = run([value], lambda cs, xs: gadgets.range_check(cs, xs[0], bits))
    assert added == (bits, 2 * bits + 1)


@pytest.mark.parametrize(
    ("value", "bits"), [(2, 1), (-1, 1), (256, 8), (-1, 8), (-255, 8), (2**64, 64), (2**128, 128)]
)
def test_range_check_refuses(value: int, bits: int) -> None:
    refused([value], lambda cs, xs: gadgets.range_check(cs, xs[0], bits))


def test_range_check_of_a_combination() -> None:
    added = run([300, 50], lambda cs, xs: gadgets.range_check(cs, xs[0] - xs[1] - 250, 1))
    assert added == (1, 3)
    refused([300, 51], lambda cs, xs: gadgets.range_check(cs, xs[0] - xs[1] - 250, 1))


@pytest.mark.parametrize("bits", [0, -1, gadgets.MAX_BITS + 1, True])
def test_range_widths_are_checked(bits: int) -> None:
    for call in (
        lambda cs: gadgets.range_check(cs, 0, bits),
        lambda cs: gadgets.less_or_equal(cs, 0, 1, bits),
        lambda cs: gadgets.minimum(cs, 0, 1, bits),
        lambda cs: gadgets.maximum(cs, 0, 1, bits),
        lambda cs: gadgets.max_of(cs, [0, 1], bits),
        lambda cs: gadgets.min_of(cs, [0, 1], bits),
    ):
        for cs in (Prover(), Verifier()):
            with pytest.raises(InvalidArgumentError):
                call(cs)
            assert cs.gates == 0


@pytest.mark.parametrize(("a", "b"), [(0, 0), (5, 5), (4, 5), (0, 255), (-3, 252), (100, 100)])
def test_less_or_equal(a: int, b: int) -> None:
    assert run([a, b], lambda cs, xs: gadgets.less_or_equal(cs, xs[0], xs[1], 8)) == (8, 17)


@pytest.mark.parametrize(("a", "b"), [(1, 0), (6, 5), (0, 256), (255, -1)])
def test_less_or_equal_refuses(a: int, b: int) -> None:
    refused([a, b], lambda cs, xs: gadgets.less_or_equal(cs, xs[0], xs[1], 8))


@pytest.mark.parametrize(("a", "b"), [(0, 1), (4, 5), (0, 256), (-5, 0)])
def test_less_than(a: int, b: int) -> None:
    assert run([a, b], lambda cs, xs: gadgets.less_than(cs, xs[0], xs[1], 8)) == (8, 17)


@pytest.mark.parametrize(("a", "b"), [(0, 0), (5, 5), (6, 5), (0, 257)])
def test_less_than_refuses(a: int, b: int) -> None:
    refused([a, b], lambda cs, xs: gadgets.less_than(cs, xs[0], xs[1], 8))


# --------------------------------------------------------------------------- select


@pytest.mark.parametrize(("c", "x", "y"), [(1, 10, 20), (0, 10, 20), (1, 7, 7), (0, 0, -4)])
def test_select(c: int, x: int, y: int) -> None:
    def gadget(cs: ConstraintSystem, xs: list[Variable]) -> LinearCombination:
        condition = gadgets.bit(cs, cs.value(xs[0]))
        cs.constrain(condition - xs[0])
        before = cs.gates
        out = gadgets.select(cs, condition, xs[1], xs[2])
        assert cs.gates - before == 1
        return out

    assert run([c, x, y], gadget, expected=x if c else y)[0] == 2  # the bit and select's gate
    refused([c, x, y], gadget, expected=(y if c else x) + 1)


def test_select_costs_one_multiplier_and_two_constraints() -> None:
    def gadget(cs: ConstraintSystem, xs: list[Variable]) -> LinearCombination:
        return gadgets.select(cs, xs[0], xs[1], xs[2])

    assert run([1, 3, 4], gadget, expected=3) == (1, 2)


# --------------------------------------------------------------------------- min and max


def _pairs(bits: int) -> list[tuple[int, int]]:
    top = (1 << bits) - 1
    return [(0, 0), (3, 9), (9, 3), (5, 5), (0, top), (top, 0), (-5, 3), (3, -5), (top, top)]


@pytest.mark.parametrize(("a", "b"), _pairs(8))
def test_minimum_and_maximum(a: int, b: int) -> None:
    low = run([a, b], lambda cs, xs: gadgets.minimum(cs, xs[0], xs[1], 8), min(a, b))
    high = run([a, b], lambda cs, xs: gadgets.maximum(cs, xs[0], xs[1], 8), max(a, b))
    assert low[0] == high[0] == 8 + 2


@pytest.mark.parametrize("bits", [1, 32])
def test_minimum_and_maximum_at_the_width(bits: int) -> None:
    top = (1 << bits) - 1
    assert run([top, 0], lambda cs, xs: gadgets.minimum(cs, xs[0], xs[1], bits), 0)[0] == bits + 2
    assert run([0, top], lambda cs, xs: gadgets.maximum(cs, xs[0], xs[1], bits), top)[0] == (
        bits + 2
    )


def test_minimum_refuses_a_spread_beyond_its_width() -> None:
    refused([256, 0], lambda cs, xs: gadgets.minimum(cs, xs[0], xs[1], 8))
    refused([0, 256], lambda cs, xs: gadgets.maximum(cs, xs[0], xs[1], 8))


def test_minimum_of_constants_and_combinations() -> None:
    def gadget(cs: ConstraintSystem, xs: list[Variable]) -> LinearCombination:
        return gadgets.minimum(cs, xs[0] + xs[1], 100, 16)

    run([30, 50], gadget, 80)
    run([70, 50], gadget, 100)


def _lists() -> list[list[int]]:
    return [[7], [0, 0], [3, 9], [9, 3], [4, 4, 4], [1, 5, 2, 5, 0], [255, 0, 17], [0, 17, 255],
            [-3, 8, 2]]  # fmt: skip


@pytest.mark.parametrize("values", _lists())
def test_max_of_and_min_of(values: list[int]) -> None:
    t = len(values)
    high = run(values, lambda cs, xs: gadgets.max_of(cs, xs, 8), max(values))
    low = run(values, lambda cs, xs: gadgets.min_of(cs, xs, 8), min(values))
    # T bits + T - 1 multipliers, and half of one for the claim (a fresh gate here)
    assert high[0] == low[0] == t * 8 + t - 1 + 1


def test_max_of_shares_a_gate_between_two_claims() -> None:
    def gadget(cs: ConstraintSystem, xs: list[Variable]) -> LinearCombination:
        first = gadgets.max_of(cs, xs[:3], 8)
        before = cs.gates
        second = gadgets.min_of(cs, xs[3:], 8)
        assert cs.gates - before == 2 * 8 + 2 - 1  # the claim is the earlier gate's right wire
        return first + second

    assert run([1, 9, 4, 6, 2], gadget, expected=9 + 2)[0] == (3 * 8 + 3) + (2 * 8 + 1)


def test_max_of_refuses_a_spread_beyond_its_width() -> None:
    refused([0, 300], lambda cs, xs: gadgets.max_of(cs, xs, 8))
    refused([0, 300], lambda cs, xs: gadgets.min_of(cs, xs, 8))


def test_max_of_nothing_is_refused() -> None:
    for cs in (Prover(), Verifier()):
        with pytest.raises(InvalidArgumentError):
            gadgets.max_of(cs, [], 8)
        with pytest.raises(InvalidArgumentError):
            gadgets.min_of(cs, [], 8)


def test_total() -> None:
    def gadget(cs: ConstraintSystem, xs: list[Variable]) -> LinearCombination:
        return gadgets.total([*xs, 5, xs[0] * 2])

    assert run([1, 2, 3], gadget, expected=1 + 2 + 3 + 5 + 2) == (0, 0)
    assert gadgets.total([]).terms() == []


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
    """Each tier's line ``a_i + r_i x`` through the cost at the tier's start."""
    return [(tier_cost(s, starts, rates) - r * s, r) for s, r in zip(starts, rates, strict=True)]


INCLINING = ([0, 100, 300], [5, 8, 12])
DECLINING = ([0, 100, 300], [12, 8, 5])
MIXED = ([0, 100, 300, 600], [5, 9, 4, 7])
FLAT = ([0], [7])
READINGS = [0, 1, 99, 100, 101, 250, 299, 300, 301, 600, 1000]


def test_tier_cost_by_hand() -> None:
    assert tier_cost(250, *INCLINING) == 100 * 5 + 150 * 8
    assert tier_cost(1000, *DECLINING) == 100 * 12 + 200 * 8 + 700 * 5
    assert affine_pieces(*INCLINING) == [(0, 5), (500 - 800, 8), (500 + 1600 - 3600, 12)]


@pytest.mark.parametrize("tariff", [INCLINING, DECLINING, MIXED, FLAT], ids=lambda t: str(t[1]))
def test_piecewise_linear(tariff: tuple[list[int], list[int]]) -> None:
    starts, rates = tariff
    segments = len(starts)
    for x in READINGS:
        added = run(
            [x],
            lambda cs, xs: gadgets.piecewise_linear(cs, xs[0], starts, rates, 12),
            tier_cost(x, starts, rates),
        )
        assert added[0] <= 2 * (12 + 2) * segments
        assert added[0] == (2 * segments - 2) * (12 + 2)  # first and last: one clamp each


def test_piecewise_linear_of_a_sum_of_readings() -> None:
    starts, rates = MIXED
    gadget: Gadget = lambda cs, xs: gadgets.piecewise_linear(  # noqa: E731
        cs, gadgets.total(xs), starts, rates, 12
    )
    run([120, 0, 200, 333], gadget, tier_cost(653, starts, rates))
    refused([120, 0, 200, 333], gadget, tier_cost(653, starts, rates) - 1)


def test_piecewise_linear_arguments() -> None:
    bad = [([], []), ([0, 10], [1]), ([5, 10], [1, 2]), ([0, 10, 10], [1, 2, 3]),
           ([0, 10, 5], [1, 2, 3])]  # fmt: skip
    for starts, rates in bad:
        with pytest.raises(InvalidArgumentError):
            gadgets.piecewise_linear(Verifier(), 0, starts, rates, 8)


@pytest.mark.parametrize("tariff", [INCLINING, FLAT], ids=lambda t: str(t[1]))
def test_convex_piecewise_is_an_inclining_tariff(tariff: tuple[list[int], list[int]]) -> None:
    starts, rates = tariff
    pieces = affine_pieces(starts, rates)
    for x in READINGS:
        assert max(a + r * x for a, r in pieces) == tier_cost(x, starts, rates)
        added = run(
            [x], lambda cs, xs: gadgets.convex_piecewise(cs, xs[0], pieces, 16),
            tier_cost(x, starts, rates),
        )  # fmt: skip
        p = len(pieces)
        assert added[0] == p * 16 + p - 1 + 1


def test_concave_piecewise_is_a_declining_tariff() -> None:
    starts, rates = DECLINING
    pieces = affine_pieces(starts, rates)
    for x in READINGS:
        assert min(a + r * x for a, r in pieces) == tier_cost(x, starts, rates)
        added = run(
            [x], lambda cs, xs: gadgets.concave_piecewise(cs, xs[0], pieces, 16),
            tier_cost(x, starts, rates),
        )  # fmt: skip
        assert added[0] == 3 * 16 + 3 - 1 + 1


def test_convex_piecewise_refuses_a_lower_or_higher_cost() -> None:
    starts, rates = INCLINING
    pieces = affine_pieces(starts, rates)
    for x, delta in itertools.product((50, 250, 1000), (-1, 1)):
        refused(
            [x], lambda cs, xs: gadgets.convex_piecewise(cs, xs[0], pieces, 16),
            tier_cost(x, starts, rates) + delta,
        )  # fmt: skip
