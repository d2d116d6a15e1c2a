"""Gadgets: constraints as ordinary functions over a :class:`~circuits.r1cs.ConstraintSystem`.

The prover and the verifier call the same function; on the prover's side it
also computes the witness (``cs.value(...)``), on the verifier's side every
value is ``None``. Each gadget's multipliers and constraints are in its
docstring and in docs/notes/r1cs.md ("Gadgets"), with its soundness argument:
what a prover who chooses the witness could and could not make it prove.

Integers: every value a gadget reasons about is an integer of magnitude well
below ``q/2`` (``q`` is the P-256 group order, about 2^256): readings are below
2^32 (their range proofs), sums of a cycle's readings below 2^47, charges below
2^127. A range gadget on ``d`` then means the integer ``d`` lies in
``[0, 2^k)``: a negative ``d`` is ``q - |d|`` in the field, far above ``2^k``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from circuits.r1cs import (
    ConstraintSystem,
    Kind,
    LinearCombination,
    LinearLike,
    Variable,
    as_lc,
)
from zkgrid.errors import InvalidArgumentError
from zkp.group import ORDER

__all__ = [
    "MAX_BITS",
    "assert_boolean",
    "bit",
    "concave_piecewise",
    "convex_piecewise",
    "less_or_equal",
    "less_than",
    "max_of",
    "maximum",
    "min_of",
    "minimum",
    "piecewise_linear",
    "range_check",
    "select",
    "total",
]

#: Widest range a gadget proves (far below q/2, so the soundness arguments hold).
MAX_BITS = 128
_INV2 = pow(2, -1, ORDER)


def _bits(bits: int) -> int:
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= MAX_BITS:
        raise InvalidArgumentError(f"a range gadget takes 1..{MAX_BITS} bits")
    return bits


def bit(cs: ConstraintSystem, value: int | None) -> Variable:
    """A new boolean variable (``value`` 0 or 1 on the prover's side).

    1 multiplier ``(b, 1 - b) -> 0``, 2 constraints: ``o = 0``, ``l + r - 1 = 0``;
    so ``b (1 - b) = 0``: ``b`` is 0 or 1 (:meth:`ConstraintSystem.bits`).
    """
    if value is not None and value not in (0, 1):
        raise InvalidArgumentError("a bit is 0 or 1")
    return Variable(Kind.LEFT, cs.bits(value, 1))


def assert_boolean(cs: ConstraintSystem, x: LinearLike) -> None:
    """``x`` is 0 or 1: 1 multiplier ``x (1 - x)``, 3 constraints."""
    _, _, out = cs.multiply(x, 1 - as_lc(x))
    cs.constrain(out)


def range_check(cs: ConstraintSystem, x: LinearLike, bits: int) -> None:
    """``x`` is an integer in ``[0, 2^bits)``: ``bits`` multipliers, ``2 bits + 1``
    constraints (a bit each, and ``x = sum 2^i b_i``)."""
    _bits(bits)
    lc = as_lc(x)
    first = cs.bits(cs.value(lc), bits)
    terms = [(Kind.LEFT, first + i, 1 << i) for i in range(bits)]
    cs.constrain(LinearCombination(terms) - lc)


def less_or_equal(cs: ConstraintSystem, a: LinearLike, b: LinearLike, bits: int) -> None:
    """``a <= b`` for integers with ``|b - a| < 2^bits``: :func:`range_check` on ``b - a``."""
    range_check(cs, as_lc(b) - as_lc(a), bits)


def less_than(cs: ConstraintSystem, a: LinearLike, b: LinearLike, bits: int) -> None:
    """``a < b``: :func:`range_check` on ``b - a - 1``."""
    range_check(cs, as_lc(b) - as_lc(a) - 1, bits)


def select(cs: ConstraintSystem, condition: LinearLike, x: LinearLike, y: LinearLike) -> (
    LinearCombination
):
    """``x`` if ``condition`` else ``y``, for a boolean ``condition`` (from :func:`bit`):
    ``condition (x - y) + y``: 1 multiplier, 2 constraints."""
    _, _, out = cs.multiply(condition, as_lc(x) - as_lc(y))
    return out + y


def _spread(cs: ConstraintSystem, a: LinearLike, b: LinearLike, bits: int) -> LinearCombination:
    """``|a - b|`` as ``d = (2s - 1)(b - a)`` for a prover-chosen bit ``s`` and
    ``d in [0, 2^bits)``: ``bits + 2`` multipliers. Exactly one sign makes ``d`` a
    non-negative integer below ``2^bits`` (both when ``a = b``), so ``d = |a - b|``."""
    a_lc, b_lc = as_lc(a), as_lc(b)
    av, bv = cs.value(a_lc), cs.value(b_lc)
    s = bit(cs, None if av is None or bv is None else int(av <= bv))
    _, _, d = cs.multiply(2 * s - 1, b_lc - a_lc)
    range_check(cs, d, bits)
    return as_lc(d)


def minimum(cs: ConstraintSystem, a: LinearLike, b: LinearLike, bits: int) -> LinearCombination:
    """``min(a, b) = (a + b - |a - b|) / 2`` for integers with ``|a - b| < 2^bits``:
    ``bits + 2`` multipliers. Exact: the prover has no choice left."""
    d = _spread(cs, a, b, _bits(bits))
    return (as_lc(a) + as_lc(b) - d) * _INV2


def maximum(cs: ConstraintSystem, a: LinearLike, b: LinearLike, bits: int) -> LinearCombination:
    """``max(a, b) = (a + b + |a - b|) / 2``: ``bits + 2`` multipliers, exact."""
    d = _spread(cs, a, b, _bits(bits))
    return (as_lc(a) + as_lc(b) + d) * _INV2


def _extreme_of(
    cs: ConstraintSystem, values: Sequence[LinearLike], bits: int, *, largest: bool
) -> Variable:
    lcs = [as_lc(v) for v in values]
    if not lcs:
        raise InvalidArgumentError("the maximum or minimum of no values is undefined")
    _bits(bits)
    known = [cs.value(v) for v in lcs]
    claimed: int | None = None
    if all(k is not None for k in known):
        ints = [k for k in known if k is not None]
        claimed = max(ints) if largest else min(ints)
    p = cs.allocate(claimed)
    gaps = [(p - v) if largest else (v - p) for v in lcs]
    for gap in gaps:  # the claim is on the right side of every value
        range_check(cs, gap, bits)
    product: LinearLike = gaps[0]
    for gap in gaps[1:]:  # ... and equal to one of them: prod of the gaps = 0
        _, _, product = cs.multiply(product, gap)
    cs.constrain(product)
    return p


def max_of(cs: ConstraintSystem, values: Sequence[LinearLike], bits: int) -> Variable:
    """The maximum ``P`` of ``values`` (integers whose differences are below ``2^bits``).

    ``P - x_t in [0, 2^bits)`` for every ``t`` (``P`` is at least every value) and
    ``prod_t (P - x_t) = 0`` (``P`` is one of them): ``T bits + T - 1`` multipliers
    and half of one for ``P``. ``P`` can be neither below the true maximum (some
    ``P - x_t`` would be negative) nor above it (no gap would be zero).
    """
    return _extreme_of(cs, values, bits, largest=True)


def min_of(cs: ConstraintSystem, values: Sequence[LinearLike], bits: int) -> Variable:
    """The minimum of ``values``: as :func:`max_of` with the gaps ``x_t - P``."""
    return _extreme_of(cs, values, bits, largest=False)


def convex_piecewise(
    cs: ConstraintSystem, x: LinearLike, pieces: Sequence[tuple[int, int]], bits: int
) -> Variable:
    """``f(x) = max_i (a_i + r_i x)`` for the affine ``pieces`` ``(a_i, r_i)``: a convex
    piecewise-linear function (an inclining block tariff) is the maximum of its
    pieces' lines. :func:`max_of` over the pieces: ``P bits + P - 1`` multipliers."""
    lc = as_lc(x)
    return max_of(cs, [r * lc + a for a, r in pieces], bits)


def concave_piecewise(
    cs: ConstraintSystem, x: LinearLike, pieces: Sequence[tuple[int, int]], bits: int
) -> Variable:
    """``f(x) = min_i (a_i + r_i x)``: a concave piecewise-linear function (a declining
    block tariff) is the minimum of its pieces' lines. :func:`min_of` over the pieces."""
    lc = as_lc(x)
    return min_of(cs, [r * lc + a for a, r in pieces], bits)


def piecewise_linear(
    cs: ConstraintSystem,
    x: LinearLike,
    starts: Sequence[int],
    rates: Sequence[int],
    bits: int,
) -> LinearCombination:
    """``sum_i r_i u_i`` with ``u_i = clamp(x - s_i, 0, s_(i+1) - s_i)`` (the last segment
    unbounded): any piecewise-linear function of ``x >= 0`` with public breakpoints
    ``starts`` (``s_0 = 0``, increasing) and rates, filled in order. Each bounded
    segment is ``min(max(x - s_i, 0), w_i)``, the last ``max(x - s_last, 0)``: at most
    ``2 (bits + 2)`` multipliers per segment, exact.

    For a convex or concave function :func:`convex_piecewise` or
    :func:`concave_piecewise` is cheaper.
    """
    if len(starts) != len(rates) or not starts or starts[0] != 0:
        raise InvalidArgumentError("piecewise_linear needs starts from 0, one rate each")
    if any(b <= a for a, b in itertools.pairwise(starts)):
        raise InvalidArgumentError("piecewise_linear needs increasing starts")
    lc = as_lc(x)
    out = LinearCombination()
    for i, (start, rate) in enumerate(zip(starts, rates, strict=True)):
        above = lc if start == 0 else maximum(cs, lc - start, 0, bits)
        if i + 1 < len(starts):
            above = minimum(cs, above, starts[i + 1] - start, bits)
        out = out + rate * above
    return out


def total(values: Sequence[LinearLike]) -> LinearCombination:
    """``sum values``: no multiplier, no constraint (a linear combination)."""
    terms = []
    for value in values:
        terms += as_lc(value).terms()
    return LinearCombination(terms)
