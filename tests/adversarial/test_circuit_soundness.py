"""A prover that lies about its witness cannot make a circuit proof verify.

The cheating prover is a real :class:`~circuits.r1cs.Prover` that overrides some of the
values it allocates (an ``allocate`` claim, the value given to ``bits``, or a bit gate's
wires, even inconsistent ones); the gadget code runs unchanged and computes everything
after the lie from the lie, as a cheater would. The verifier runs the honest gadget code
on the false statement. In every case the two build the same circuit (same digest), the
prover's :meth:`check` names a broken constraint (except where only a multiplication gate
is broken, which no linear constraint sees), and the proof made without the check
(:meth:`Prover._prove_unchecked`) fails verification, alone and in a batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import pytest

from circuits import gadgets
from circuits.r1cs import (
    ConstraintSystem,
    LinearCombination,
    LinearLike,
    Prover,
    R1CSStatement,
    UnsatisfiedConstraintError,
    Variable,
    q,
)
from tests.unit.circuits.circuit_support import (
    Opening,
    build_verifier,
    openings,
    prove_and_verify,
    statement,
)
from zkgrid.errors import VerificationError

Build = Callable[[ConstraintSystem, list[Variable]], None]
Wires = tuple[int, int, int]


class CheatingProver(Prover):
    """A prover with lies: ``allocations[n]`` replaces the value of the ``n``-th
    :meth:`allocate`, ``bit_values[n]`` the value given to the ``n``-th :meth:`bits`, and
    ``bit_wires[n][i]`` the wires ``(l, r, o)`` of gate ``i`` of the ``n``-th :meth:`bits`
    (``o`` need not be ``l * r``)."""

    def __init__(
        self,
        *,
        allocations: Mapping[int, int] | None = None,
        bit_values: Mapping[int, int] | None = None,
        bit_wires: Mapping[int, Mapping[int, Wires]] | None = None,
    ) -> None:
        super().__init__()
        self.allocations = dict(allocations or {})
        self.bit_values = dict(bit_values or {})
        self.bit_wires = {n: dict(w) for n, w in (bit_wires or {}).items()}
        self.allocate_calls = 0
        self.bits_calls = 0

    def allocate(self, value: int | None) -> Variable:
        n = self.allocate_calls
        self.allocate_calls += 1
        return super().allocate(self.allocations.get(n, value))

    def bits(self, value: int | None, count: int) -> int:
        n = self.bits_calls
        self.bits_calls += 1
        first = super().bits(self.bit_values.get(n, value), count)
        for offset, (left, right, out) in self.bit_wires.get(n, {}).items():
            g = first + offset
            self._a_L[g], self._a_R[g], self._a_O[g] = left % q, right % q, out % q
        return first


def _cheat(
    build: Build, inputs: Sequence[Opening], prover: Prover, *, caught_by_check: bool = True
) -> None:
    """``prover`` (with its lies) builds ``build`` over ``inputs``; the verifier builds the
    same circuit; the proof never verifies."""
    xs = [prover.commit(o.commitment, o.value, o.blinding) for o in inputs]
    build(prover, xs)
    verifier = build_verifier(build, [o.commitment for o in inputs])
    assert prover.digest() == verifier.digest(), "the lie changed the circuit, not the values"
    if caught_by_check:
        with pytest.raises(UnsatisfiedConstraintError):
            prover.check()
        with pytest.raises(UnsatisfiedConstraintError):
            prover.prove(b"cheat")
    else:
        prover.check()  # every linear constraint holds: only a gate is broken
    prover._check_openings()  # the inputs are opened honestly: only the wires lie
    proof = prover._prove_unchecked(b"cheat")
    with pytest.raises(VerificationError):
        verifier.verify(proof, b"cheat")
    honest = statement(_square, openings(7), b"honest")
    lie = verifier.statement(proof, b"cheat")
    with pytest.raises(VerificationError):
        R1CSStatement.verify_batch([honest, lie, honest])
    assert R1CSStatement.find_invalid([honest, lie, honest]) == [1]


def _square(cs: ConstraintSystem, xs: list[Variable]) -> None:
    _, _, out = cs.multiply(xs[0], xs[0])
    cs.constrain(out - 49)


def test_the_cheating_prover_without_lies_is_honest() -> None:
    def build(cs: ConstraintSystem, xs: list[Variable]) -> None:
        p = gadgets.max_of(cs, xs, 8)
        cs.constrain(p - 9)
        cs.constrain(gadgets.minimum(cs, xs[0], xs[1], 8) - 3)

    inputs = openings(3, 9, 4)
    prover = CheatingProver()
    xs = [prover.commit(o.commitment, o.value, o.blinding) for o in inputs]
    build(prover, xs)
    proof = prover.prove(b"c")
    build_verifier(build, [o.commitment for o in inputs]).verify(proof, b"c")
    prove_and_verify(build, inputs, b"c")


# --------------------------------------------------------------------------- wires


def test_a_broken_multiplication_never_verifies() -> None:
    # x = 8 claims x * x = 49: the output wire says 49, the gate says 64.
    class Lying(Prover):
        def multiply(
            self, left: LinearLike, right: LinearLike
        ) -> tuple[Variable, Variable, Variable]:
            wires = super().multiply(left, right)
            self._a_O[-1] = 49
            return wires

    _cheat(_square, openings(8), Lying(), caught_by_check=False)


def test_a_broken_multiplication_in_a_larger_circuit_never_verifies() -> None:
    def build(cs: ConstraintSystem, xs: list[Variable]) -> None:
        x, y = xs
        _, _, xy = cs.multiply(x, y)
        gadgets.range_check(cs, xy, 16)
        _, _, sq = cs.multiply(xy, xy)
        cs.constrain(sq - 36)

    class Lying(Prover):
        def multiply(
            self, left: LinearLike, right: LinearLike
        ) -> tuple[Variable, Variable, Variable]:
            wires = super().multiply(left, right)
            if self.gates > 1:
                self._a_O[-1] = 36  # 5 * 5 claimed to be 36
            return wires

    _cheat(build, openings(1, 5), Lying(), caught_by_check=False)


# --------------------------------------------------------------------------- ranges


def _range(bits: int) -> Build:
    def build(cs: ConstraintSystem, xs: list[Variable]) -> None:
        gadgets.range_check(cs, xs[0], bits)

    return build


@pytest.mark.parametrize(
    ("value", "bits"), [(-1, 8), (-(2**8), 8), (2**8, 8), (2**8 + 5, 8), (-1, 1), (2, 1),
                        (2**32, 32), (q - 1, 64), (2**64, 64)]
)
def test_range_check_outside_the_range(value: int, bits: int) -> None:
    _cheat(_range(bits), [Opening(value, 77)], CheatingProver())


@pytest.mark.parametrize("bits", [8, 32])
def test_range_check_with_bits_that_are_not_bits(bits: int) -> None:
    # 2^bits as the single "bit" b_0 = 2^bits: the sum holds, b_0 (1 - b_0) != 0
    big = 1 << bits
    prover = CheatingProver(bit_wires={0: {0: (big, 1 - big, big * (1 - big))}})
    _cheat(_range(bits), [Opening(big, 5)], prover)
    # -1 as b_0 = -1
    prover = CheatingProver(bit_values={0: 0}, bit_wires={0: {0: (-1, 2, -2)}})
    _cheat(_range(bits), [Opening(-1, 5)], prover)


@pytest.mark.parametrize("bits", [8, 32])
def test_range_check_with_a_broken_bit_gate(bits: int) -> None:
    # b_0 = 2^bits, 1 - b_0 on the right, and an output wire of 0: every linear
    # constraint holds (the sum, o = 0, l + r - 1 = 0); only the gate is broken.
    big = 1 << bits
    prover = CheatingProver(bit_wires={0: {0: (big, 1 - big, 0)}})
    _cheat(_range(bits), [Opening(big, 5)], prover, caught_by_check=False)
    prover = CheatingProver(bit_values={0: 0}, bit_wires={0: {0: (-1, 2, 0)}})
    _cheat(_range(bits), [Opening(-1, 5)], prover, caught_by_check=False)


@pytest.mark.parametrize(("a", "b"), [(1, 0), (200, 100), (255, 0), (0, -1)])
def test_less_or_equal_with_a_greater(a: int, b: int) -> None:
    def build(cs: ConstraintSystem, xs: list[Variable]) -> None:
        gadgets.less_or_equal(cs, xs[0], xs[1], 8)

    _cheat(build, openings(a, b), CheatingProver())
    # the cheater's best bits: b - a + 2^8 (the range check's sum is then off by 2^8)
    _cheat(build, openings(a, b), CheatingProver(bit_values={0: b - a + 256}))


@pytest.mark.parametrize(("a", "b"), [(5, 5), (6, 5)])
def test_less_than_with_a_not_less(a: int, b: int) -> None:
    def build(cs: ConstraintSystem, xs: list[Variable]) -> None:
        gadgets.less_than(cs, xs[0], xs[1], 8)

    _cheat(build, openings(a, b), CheatingProver())


@pytest.mark.parametrize("value", [2, -1, 3])
def test_assert_boolean_with_a_non_boolean(value: int) -> None:
    def build(cs: ConstraintSystem, xs: list[Variable]) -> None:
        gadgets.assert_boolean(cs, xs[0])

    _cheat(build, openings(value), CheatingProver())


# --------------------------------------------------------------------------- max and min


def _claim(
    gadget: Callable[[ConstraintSystem, list[Variable]], LinearCombination | Variable],
    claimed: int,
) -> Build:
    def build(cs: ConstraintSystem, xs: list[Variable]) -> None:
        cs.constrain(gadget(cs, xs) - claimed)

    return build


DEMAND = [120, 410, 380, 405, 0, 77]


@pytest.mark.parametrize("claimed", [405, 380, 400, 0, -1])
def test_max_of_below_the_true_maximum(claimed: int) -> None:
    build = _claim(lambda cs, xs: gadgets.max_of(cs, xs, 16), claimed)
    _cheat(build, openings(*DEMAND), CheatingProver(allocations={0: claimed}))


@pytest.mark.parametrize("claimed", [411, 500, 2**16 - 1])
def test_max_of_above_every_value(claimed: int) -> None:
    build = _claim(lambda cs, xs: gadgets.max_of(cs, xs, 16), claimed)
    _cheat(build, openings(*DEMAND), CheatingProver(allocations={0: claimed}))


@pytest.mark.parametrize("claimed", [77, 120, 1, 411])
def test_min_of_above_the_true_minimum(claimed: int) -> None:
    build = _claim(lambda cs, xs: gadgets.min_of(cs, xs, 16), claimed)
    _cheat(build, openings(*DEMAND), CheatingProver(allocations={0: claimed}))


def test_max_of_with_the_gaps_bits_chosen_to_match_a_low_claim() -> None:
    # Claim 405 < 410: the gap 405 - 410 = -5 is not a 16-bit integer; the cheater's bits
    # for it are those of 2^16 - 5 (the sum is then off by 2^16).
    build = _claim(lambda cs, xs: gadgets.max_of(cs, xs, 16), 405)
    lie = CheatingProver(allocations={0: 405}, bit_values={1: 2**16 - 5})
    _cheat(build, openings(*DEMAND), lie)


@pytest.mark.parametrize(("a", "b"), [(3, 9), (9, 3), (0, 255), (100, 101)])
def test_minimum_and_maximum_with_the_wrong_selector(a: int, b: int) -> None:
    # The selector is the first bit the gadget allocates; flipped, |a - b| comes out as
    # -|a - b| and the minimum as the maximum (and the other way round).
    flip = CheatingProver(bit_values={0: int(not a <= b)})
    _cheat(_claim(lambda cs, xs: gadgets.minimum(cs, xs[0], xs[1], 8), max(a, b)),
           openings(a, b), flip)  # fmt: skip
    flip = CheatingProver(bit_values={0: int(not a <= b)})
    _cheat(_claim(lambda cs, xs: gadgets.maximum(cs, xs[0], xs[1], 8), min(a, b)),
           openings(a, b), flip)  # fmt: skip


def test_minimum_with_a_wrong_selector_and_the_spread_bits_of_its_negation() -> None:
    a, b = 3, 9  # honest s = 1, d = 6; the lie s = 0, d = -6 (bits of 2^8 - 6)
    lie = CheatingProver(bit_values={0: 0, 1: 256 - 6})
    _cheat(_claim(lambda cs, xs: gadgets.minimum(cs, xs[0], xs[1], 8), 9), openings(a, b), lie)


# --------------------------------------------------------------------------- tariffs


def tier_cost(x: int, starts: Sequence[int], rates: Sequence[int]) -> int:
    cost = 0
    for i, (start, rate) in enumerate(zip(starts, rates, strict=True)):
        end = starts[i + 1] if i + 1 < len(starts) else None
        used = max(0, x - start) if end is None else min(max(0, x - start), end - start)
        cost += rate * used
    return cost


def affine_pieces(starts: Sequence[int], rates: Sequence[int]) -> list[tuple[int, int]]:
    return [(tier_cost(s, starts, rates) - r * s, r) for s, r in zip(starts, rates, strict=True)]


DECLINING = ([0, 100, 300], [12, 8, 5])
INCLINING = ([0, 100, 300], [5, 8, 12])


def test_declining_tariff_filled_out_of_order() -> None:
    # 250 Wh: in order 100 @ 12 + 150 @ 8 = 2,400. Out of order, the cheap tiers first:
    # 200 @ 8 (all of tier 1) + 50 @ 12 = 2,200; or all 250 @ 5 (tier 2) = 1,250.
    starts, rates = DECLINING
    pieces = affine_pieces(starts, rates)
    x = 250
    assert tier_cost(x, starts, rates) == 2400
    for cheaper in (200 * 8 + 50 * 12, 250 * 5, 2399):
        build = _claim(lambda cs, xs: gadgets.concave_piecewise(cs, xs[0], pieces, 16), cheaper)
        _cheat(build, openings(x), CheatingProver(allocations={0: cheaper}))


def test_declining_tariff_at_another_tiers_line() -> None:
    # A claim equal to another piece's line (above the minimum: an overpaid bill):
    # the product of the gaps is zero, only a range check breaks.
    starts, rates = DECLINING
    pieces = affine_pieces(starts, rates)
    x = 1000
    lines = [a + r * x for a, r in pieces]
    true = tier_cost(x, starts, rates)
    for claimed in sorted(set(lines) - {true}):
        build = _claim(lambda cs, xs: gadgets.concave_piecewise(cs, xs[0], pieces, 16), claimed)
        _cheat(build, openings(x), CheatingProver(allocations={0: claimed}))


def test_inclining_tariff_below_the_true_cost() -> None:
    starts, rates = INCLINING
    pieces = affine_pieces(starts, rates)
    x = 1000
    true = tier_cost(x, starts, rates)
    lines = [a + r * x for a, r in pieces]
    assert max(lines) == true
    for claimed in [*sorted(set(lines) - {true}), true - 1, x * min(rates)]:
        build = _claim(lambda cs, xs: gadgets.convex_piecewise(cs, xs[0], pieces, 16), claimed)
        _cheat(build, openings(x), CheatingProver(allocations={0: claimed}))


def test_piecewise_linear_with_a_tier_skipped() -> None:
    # x = 250 under the declining tariff: segment 1 is max(x - 100, 0) then min(., 200).
    # Flipping the selector of that max turns 150 into 0: the bill drops tier 1.
    starts, rates = DECLINING
    x = 250
    honest = tier_cost(x, starts, rates)

    def cost(cs: ConstraintSystem, xs: list[Variable]) -> LinearCombination:
        return gadgets.piecewise_linear(cs, xs[0], starts, rates, 12)

    # bits() calls: segment 0 min (selector 0, range 1), segment 1 max (selector 2, range 3);
    # the honest selector of max(150, 0) is 0 (s = [a <= b]), the lie 1.
    lie = CheatingProver(bit_values={2: 1})
    xs = [lie.commit(o.commitment, o.value, o.blinding) for o in openings(x)]
    cheaper = lie.value(cost(lie, xs))
    assert cheaper == 100 * 12 < honest
    _cheat(_claim(cost, cheaper), openings(x), CheatingProver(bit_values={2: 1}))


# --------------------------------------------------------------------------- select


def _selection(claimed: int) -> Build:
    def build(cs: ConstraintSystem, xs: list[Variable]) -> None:
        condition = gadgets.bit(cs, None if cs.value(xs[0]) is None else 1)
        cs.constrain(gadgets.select(cs, condition, xs[1], xs[2]) - claimed)

    return build


@pytest.mark.parametrize("condition", [2, -1, 5])
def test_select_with_a_non_boolean_condition(condition: int) -> None:
    x, y = 10, 30  # select(c, x, y) = c (x - y) + y: c = 2 gives -10, c = -1 gives 50
    claimed = condition * (x - y) + y
    wires = (condition, 1 - condition, condition * (1 - condition))
    _cheat(_selection(claimed), openings(0, x, y), CheatingProver(bit_wires={0: {0: wires}}))


def test_select_with_a_non_boolean_condition_and_a_broken_gate() -> None:
    x, y = 10, 30
    wires = (2, -1, 0)  # b (1 - b) written as 0
    _cheat(_selection(2 * (x - y) + y), openings(0, x, y),
           CheatingProver(bit_wires={0: {0: wires}}), caught_by_check=False)  # fmt: skip
