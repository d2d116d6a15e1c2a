"""Zero-knowledge proofs for rank-1 constraint systems with committed inputs.

The single-phase arithmetic-circuit protocol of Bünz et al. 2018, section 5, on
zkp's group, generators and transcript. A constraint system has ``n``
multiplication gates ``a_L[i] * a_R[i] = a_O[i]``, ``m`` committed inputs
``V_j = v_j*G + gamma_j*H`` (the ledger's own Pedersen commitments, used as they
are) and ``Q`` linear constraints, each ``lc = 0`` for a linear combination of
the gates' wires, the inputs and the constant 1. Equations are in
docs/notes/r1cs.md, cited here as (C1)...(C9); the inner-product argument is
docs/notes/inner-product.md (I1)-(I5).

Gadgets are ordinary functions over a :class:`ConstraintSystem`; the prover
(:class:`Prover`, with values) and the verifier (:class:`Verifier`, without)
run the same gadget code and so build the same constraints::

    prover = Prover()
    x = prover.commit(V_x, value=v, blinding=gamma)
    l, r, o = prover.multiply(x, x)          # o = x^2
    prover.constrain(o - 49)                 # x^2 = 49
    proof = prover.prove(context=b"...")

    verifier = Verifier()
    x = verifier.commit(V_x)
    l, r, o = verifier.multiply(x, x)
    verifier.constrain(o - 49)
    verifier.verify(proof, context=b"...")   # raises VerificationError

Serialised proof, with ``n' = max(1, 2^ceil(log2 n))`` and ``k = log2 n'``::

    A_I A_O S T1 T3 T4 T5 T6 (L_1 R_1) ... (L_k R_k)   points, 33 bytes each
    tau_x mu t_hat a b                                   scalars, 32 bytes each

``2k + 13`` elements. The transcript (C9) binds the protocol and its version,
the circuit's digest (its shape and every constraint), the caller's context and
the inputs, so a proof made for one circuit or context never verifies for
another.
"""

from __future__ import annotations

import hashlib
import secrets
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Union

from zkgrid.errors import InvalidArgumentError, ProofFormatError, VerificationError
from zkp import batch
from zkp._native import ScalarVector
from zkp.generators import G, bp_generators, ipa_u, pedersen_h
from zkp.group import (
    ORDER,
    POINT_BYTES,
    SCALAR_BYTES,
    Point,
    Scalar,
    decode_points,
    decode_scalar,
    encode_point,
    encode_scalar,
    is_identity,
    msm,
    msm_sources,
    random_scalar,
)
from zkp.innerproduct import batch_invert, inner, powers
from zkp.innerproduct import prove as prove_inner_product
from zkp.pedersen import Commitment
from zkp.transcript import Transcript

__all__ = [
    "MAX_GATES",
    "MAX_INPUTS",
    "PROTOCOL",
    "VERSION",
    "ConstraintSystem",
    "LinearCombination",
    "Prover",
    "R1CSProof",
    "R1CSStatement",
    "UnsatisfiedConstraintError",
    "Variable",
    "Verifier",
    "proof_size",
]

PROTOCOL = b"zkgrid/r1cs"
VERSION = 1
#: Multiplication gates per proof at most (the pinned generators cover 2^17 pairs).
MAX_GATES = 1 << 17
#: Committed inputs per proof at most (31 days of 3-minute import and export is 29,760).
MAX_INPUTS = 1 << 15
_CIRCUIT_DOMAIN = b"zkgrid/r1cs/circuit v1"
_FIXED_POINTS = 8  # A_I, A_O, S, T1, T3, T4, T5, T6
_SCALARS = 5  # tau_x, mu, t_hat, a, b
_MAX_ROUNDS = MAX_GATES.bit_length() - 1

q = ORDER
_HALF = q // 2

Rng = Callable[[], Scalar]


class UnsatisfiedConstraintError(InvalidArgumentError):
    """The prover's values do not satisfy the circuit (a bug in the caller or its data).

    The message names the constraint's index, never a value.
    """


# --------------------------------------------------------------------------- variables


class Kind(IntEnum):
    """What a variable is: the constant 1, a committed input or a gate's wire."""

    ONE = 0
    COMMITTED = 1
    LEFT = 2
    RIGHT = 3
    OUTPUT = 4


Term = tuple[int, int, int]  # (kind, index, coefficient as a Python int, any sign)
LinearLike = Union["LinearCombination", "Variable", int]


class _Arithmetic:
    """``+``, ``-``, ``*`` (by an int) and unary ``-`` for variables and combinations."""

    __slots__ = ()

    def terms(self) -> list[Term]:
        raise NotImplementedError  # pragma: no cover - abstract

    def __add__(self, other: LinearLike) -> LinearCombination:
        return LinearCombination(self.terms() + as_lc(other).terms())

    def __radd__(self, other: LinearLike) -> LinearCombination:
        return LinearCombination(as_lc(other).terms() + self.terms())

    def __sub__(self, other: LinearLike) -> LinearCombination:
        return LinearCombination(self.terms() + _scaled(as_lc(other).terms(), -1))

    def __rsub__(self, other: LinearLike) -> LinearCombination:
        return LinearCombination(as_lc(other).terms() + _scaled(self.terms(), -1))

    def __neg__(self) -> LinearCombination:
        return LinearCombination(_scaled(self.terms(), -1))

    def __mul__(self, factor: int) -> LinearCombination:
        if isinstance(factor, bool) or not isinstance(factor, int):
            return NotImplemented
        return LinearCombination(_scaled(self.terms(), factor))

    __rmul__ = __mul__


@dataclass(frozen=True, slots=True)
class Variable(_Arithmetic):
    """A variable of a constraint system: the constant 1, an input or a gate's wire."""

    kind: Kind
    index: int

    def terms(self) -> list[Term]:
        return [(self.kind, self.index, 1)]


#: The constant 1 (``lc + 5`` is ``lc + 5 * ONE``).
ONE = Variable(Kind.ONE, 0)


class LinearCombination(_Arithmetic):
    """A sparse sum of ``coefficient * variable`` terms with integer coefficients."""

    __slots__ = ("_terms",)

    def __init__(self, terms: Iterable[Term] = ()) -> None:
        self._terms = list(terms)

    def terms(self) -> list[Term]:
        return self._terms

    def __repr__(self) -> str:
        return f"LinearCombination({len(self._terms)} terms)"


def _scaled(terms: list[Term], factor: int) -> list[Term]:
    return [(k, i, c * factor) for k, i, c in terms]


def as_lc(value: LinearLike) -> LinearCombination:
    """A linear combination from a combination, a variable or an integer constant."""
    if isinstance(value, LinearCombination):
        return value
    if isinstance(value, Variable):
        return LinearCombination(value.terms())
    if isinstance(value, int) and not isinstance(value, bool):
        return LinearCombination([(Kind.ONE, 0, value)])
    raise InvalidArgumentError(f"not a linear combination: {type(value).__name__}")


# --------------------------------------------------------------------------- constraint systems


class ConstraintSystem:
    """Gates, inputs and linear constraints; the part a prover and a verifier share.

    Gadget code calls :meth:`multiply`, :meth:`allocate`, :meth:`allocate_multiplier`,
    :meth:`constrain` and :meth:`value` (``None`` on the verifier's side).
    """

    def __init__(self) -> None:
        self._constraints: list[list[Term]] = []
        #: Runs of boolean gates (first gate, count), in allocation order (:meth:`bits`).
        self._bit_runs: list[tuple[int, int]] = []
        self._bit_count = 0
        self._gates = 0
        self._inputs: list[Commitment] = []
        self._pending: int | None = None  # a gate whose right wire allocate() may still fill
        self._frozen = False  # a Verifier's circuit is fixed once a statement is made of it

    # --- shape -------------------------------------------------------------------------

    @property
    def gates(self) -> int:
        """``n``, the multiplication gates so far."""
        return self._gates

    @property
    def constraints(self) -> int:
        """``Q``, the linear constraints so far (two per :meth:`multiply` and per bit)."""
        return len(self._constraints) + 2 * self._bit_count

    @property
    def inputs(self) -> int:
        """``m``, the committed inputs."""
        return len(self._inputs)

    @property
    def is_prover(self) -> bool:
        return False

    # --- building ----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._frozen:
            raise InvalidArgumentError("the circuit is fixed: a statement was made of it")

    def _add_input(self, commitment: Commitment) -> Variable:
        self._check_open()
        if not isinstance(commitment, Commitment):
            raise InvalidArgumentError("a committed input must be a zkp.pedersen.Commitment")
        if len(self._inputs) >= MAX_INPUTS:
            raise InvalidArgumentError(f"a circuit takes at most {MAX_INPUTS} committed inputs")
        self._inputs.append(commitment)
        return Variable(Kind.COMMITTED, len(self._inputs) - 1)

    def _new_gate(self, left: int | None, right: int | None) -> int:
        self._check_open()
        if self._gates >= MAX_GATES:
            raise InvalidArgumentError(f"a circuit has at most {MAX_GATES} multiplication gates")
        self._gates += 1
        return self._gates - 1

    def multiply(
        self, left: LinearLike, right: LinearLike
    ) -> tuple[Variable, Variable, Variable]:
        """A gate ``out = left * right``: its wires, constrained to ``left`` and ``right``.

        One multiplier and two constraints (C1).
        """
        left_lc, right_lc = as_lc(left), as_lc(right)
        i = self._new_gate(self.value(left_lc), self.value(right_lc))
        l_var, r_var, o_var = (Variable(Kind.LEFT, i), Variable(Kind.RIGHT, i),
                               Variable(Kind.OUTPUT, i))  # fmt: skip
        self._constraints.append([*left_lc.terms(), (Kind.LEFT, i, -1)])
        self._constraints.append([*right_lc.terms(), (Kind.RIGHT, i, -1)])
        return l_var, r_var, o_var

    def allocate_multiplier(
        self, values: tuple[int, int] | None
    ) -> tuple[Variable, Variable, Variable]:
        """A gate with free wires (``values`` on the prover's side): no constraint."""
        i = self._new_gate(*(values if values is not None else (None, None)))
        return Variable(Kind.LEFT, i), Variable(Kind.RIGHT, i), Variable(Kind.OUTPUT, i)

    def allocate(self, value: int | None) -> Variable:
        """A free variable (``value`` on the prover's side): half a multiplier.

        Two consecutive allocations share one gate (its left and right wires).
        """
        if self._pending is not None:
            i, self._pending = self._pending, None
            self._fill_right(i, value)
            return Variable(Kind.RIGHT, i)
        i = self._new_gate(value, 0 if value is not None else None)
        self._pending = i
        return Variable(Kind.LEFT, i)

    def _fill_right(self, gate: int, value: int | None) -> None:
        """The prover stores the right wire's value; the verifier has none."""

    def bits(self, value: int | None, count: int) -> int:
        """``count`` boolean gates holding the bits of ``value`` (least significant first;
        ``value mod 2^count`` on the prover's side): gate ``first + i`` is
        ``b_i (1 - b_i) = 0``, as the constraints ``o = 0`` and ``l + r - 1 = 0`` (C1).
        Returns ``first``; the bit ``b_i`` is ``Variable(Kind.LEFT, first + i)``.
        """
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise InvalidArgumentError("bits: count must be a positive integer")
        self._check_open()
        if self._gates + count > MAX_GATES:
            raise InvalidArgumentError(f"a circuit has at most {MAX_GATES} multiplication gates")
        first = self._gates
        self._push_bits(value, count)
        self._gates += count
        self._bit_count += count
        runs = self._bit_runs
        if runs and runs[-1][0] + runs[-1][1] == first:
            runs[-1] = (runs[-1][0], runs[-1][1] + count)
        else:
            runs.append((first, count))
        return first

    def _push_bits(self, value: int | None, count: int) -> None:
        """The prover stores the bits' wires; the verifier has none."""

    def constrain(self, lc: LinearLike) -> None:
        """The constraint ``lc = 0``."""
        self._check_open()
        self._constraints.append(list(as_lc(lc).terms()))

    def value(self, lc: LinearLike) -> int | None:
        """The prover's value of ``lc`` as an integer in ``(-q/2, q/2]``; ``None`` for a
        verifier."""
        return None

    # --- the statement -----------------------------------------------------------------

    def validate(self) -> None:
        """Raise :class:`~zkgrid.errors.InvalidArgumentError` when a constraint names a
        variable this circuit does not have (a hand-made ``Variable`` out of range)."""
        limits = (1, len(self._inputs), self._gates, self._gates, self._gates)
        for number, row in enumerate(self._constraints):
            for kind, index, coefficient in row:
                if (
                    not 0 <= kind < len(limits)
                    or isinstance(index, bool)
                    or not isinstance(index, int)
                    or not 0 <= index < limits[kind]
                    or isinstance(coefficient, bool)
                    or not isinstance(coefficient, int)
                ):
                    raise InvalidArgumentError(
                        f"constraint {number} names a variable the circuit does not have"
                    )

    def digest(self) -> bytes:
        """(C9) SHA-256 of the circuit: its shape and every constraint's terms, in order.
        Validates the terms first (:meth:`validate`)."""
        self.validate()
        h = hashlib.sha256(_CIRCUIT_DOMAIN)
        h.update(struct.pack(">QQQ", self._gates, len(self._inputs), len(self._constraints)))
        for row in self._constraints:
            h.update(_U32.pack(len(row)))
            h.update(_row_bytes(row))
        h.update(_U32.pack(len(self._bit_runs)))
        h.update(b"".join([struct.pack(">II", first, n) for first, n in self._bit_runs]))
        return h.digest()

    def _transcript(self, context: bytes) -> Transcript:
        if not isinstance(context, bytes):
            raise InvalidArgumentError("context must be bytes")
        t = Transcript(
            PROTOCOL,
            VERSION,
            [(b"n", self._gates), (b"m", len(self._inputs)), (b"q", self.constraints)],
        )
        t.append(b"circuit", self.digest())
        t.append(b"context", context)
        t.append(b"V", b"".join([commitment.to_bytes() for commitment in self._inputs]))
        return t

    def _flatten(self, z: int) -> _Weights:
        """(C2) ``w_X = z^Q · W_X`` for X in L, R, O, V and ``w_c = <z^Q, c>``, where the
        constraint ``lc = 0`` contributes ``W_L, W_R, W_O`` = its wire coefficients,
        ``W_V`` = minus its input coefficients, ``c`` = minus its constant."""
        n, m = self._gates, len(self._inputs)
        rows: list[list[int]] = [[0], [0] * m, [0] * n, [0] * n, [0] * n]
        zq = z
        for row in self._constraints:
            for kind, index, coefficient in row:
                rows[kind][index] += coefficient * zq
            zq = zq * z % q
        # The bits' constraints come after the others, two per bit gate g in order:
        # o_g = 0 (z^j), then l_g + r_g - 1 = 0 (z^(j+1)).
        left, right, out, ones = rows[Kind.LEFT], rows[Kind.RIGHT], rows[Kind.OUTPUT], 0
        for first, count in self._bit_runs:
            for g in range(first, first + count):
                out[g] += zq
                zq = zq * z % q
                left[g] += zq
                right[g] += zq
                ones += zq
                zq = zq * z % q
        rows[Kind.ONE][0] -= ones
        return _Weights(
            left=[x % q for x in rows[Kind.LEFT]],
            right=[x % q for x in rows[Kind.RIGHT]],
            out=[x % q for x in rows[Kind.OUTPUT]],
            inputs=[-x % q for x in rows[Kind.COMMITTED]],
            constant=-rows[Kind.ONE][0] % q,
        )


_U32 = struct.Struct(">I")
_SMALL = struct.Struct(">BIBq")
_LARGE = struct.Struct(">BIB")


def _row_bytes(row: list[Term]) -> bytes:
    """A constraint's terms, each as :func:`_term_bytes`; one ``struct`` call when every
    coefficient is already a small integer (then it is its own centred residue)."""
    flat: list[int] = []
    for kind, index, coefficient in row:
        if not -(1 << 63) <= coefficient < 1 << 63:
            return b"".join([_term_bytes(k, i, c) for k, i, c in row])
        flat += (kind, index, 0, coefficient)
    return struct.pack(">" + "BIBq" * len(row), *flat)


def _term_bytes(kind: int, index: int, coefficient: int) -> bytes:
    """A term's canonical bytes: u8 kind, u32 index, then the coefficient mod q, centred:
    tag 0 and an i64 when it fits, else tag 1 and 32 bytes (the value mod q)."""
    c = coefficient % q
    if c > _HALF:
        c -= q
    if -(1 << 63) <= c < 1 << 63:
        return _SMALL.pack(kind, index, 0, c)
    return _LARGE.pack(kind, index, 1) + (c % q).to_bytes(32, "big")


@dataclass(frozen=True, slots=True)
class _Weights:
    left: list[int]
    right: list[int]
    out: list[int]
    inputs: list[int]
    constant: int


def _padded(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length()) if n > 1 else 1


def proof_size(gates: int) -> int:
    """Bytes of a proof for a circuit of ``gates`` multiplication gates."""
    rounds = _padded(gates).bit_length() - 1
    return POINT_BYTES * (_FIXED_POINTS + 2 * rounds) + SCALAR_BYTES * _SCALARS


def _centred(x: int) -> int:
    x %= q
    return x - q if x > _HALF else x


# --------------------------------------------------------------------------- the prover


class Prover(ConstraintSystem):
    """A constraint system with the prover's values: builds the circuit, then proves it."""

    def __init__(self) -> None:
        super().__init__()
        self._a_L: list[int] = []
        self._a_R: list[int] = []
        self._a_O: list[int] = []
        self._v: list[int] = []
        self._gamma: list[int] = []

    @property
    def is_prover(self) -> bool:
        return True

    def commit(self, commitment: Commitment, value: int, blinding: Scalar) -> Variable:
        """A committed input ``commitment = value*G + blinding*H`` (checked when proving)."""
        for what, x in (("value", value), ("blinding", blinding)):
            if isinstance(x, bool) or not isinstance(x, int):
                raise InvalidArgumentError(f"the input's {what} must be an integer")
        variable = self._add_input(commitment)
        self._v.append(value % q)
        self._gamma.append(blinding % q)
        return variable

    def _new_gate(self, left: int | None, right: int | None) -> int:
        if left is None or right is None:
            raise InvalidArgumentError("the prover needs a value for every wire it allocates")
        i = super()._new_gate(left, right)
        self._a_L.append(left % q)
        self._a_R.append(right % q)
        self._a_O.append(left * right % q)
        return i

    def _push_bits(self, value: int | None, count: int) -> None:
        if value is None:
            raise InvalidArgumentError("the prover needs a value for every wire it allocates")
        bits = [(value >> i) & 1 for i in range(count)]
        self._a_L += bits
        self._a_R += [1 - b for b in bits]
        self._a_O += [0] * count

    def _fill_right(self, gate: int, value: int | None) -> None:
        if value is None:
            raise InvalidArgumentError("the prover needs a value for every wire it allocates")
        self._a_R[gate] = value % q
        self._a_O[gate] = self._a_L[gate] * self._a_R[gate] % q

    def value(self, lc: LinearLike) -> int:
        total = 0
        sources = (None, self._v, self._a_L, self._a_R, self._a_O)
        for kind, index, coefficient in as_lc(lc).terms():
            source = sources[kind]
            total += coefficient * (1 if source is None else source[index])
        return _centred(total)

    def check(self) -> None:
        """Raise :class:`UnsatisfiedConstraintError` naming the first constraint the values
        break (gates hold by construction)."""
        self.validate()
        sources = (None, self._v, self._a_L, self._a_R, self._a_O)
        for number, row in enumerate(self._constraints):
            total = 0
            for kind, index, coefficient in row:
                source = sources[kind]
                total += coefficient * (1 if source is None else source[index])
            if total % q:
                raise UnsatisfiedConstraintError(
                    f"constraint {number} of {self.constraints} does not hold"
                )
        number = len(self._constraints)
        for first, count in self._bit_runs:
            for g in range(first, first + count):
                if self._a_O[g] % q:
                    raise UnsatisfiedConstraintError(
                        f"constraint {number} of {self.constraints} does not hold"
                    )
                if (self._a_L[g] + self._a_R[g] - 1) % q:
                    raise UnsatisfiedConstraintError(
                        f"constraint {number + 1} of {self.constraints} does not hold"
                    )
                number += 2

    def prove(self, context: bytes = b"", *, rng: Rng | None = None) -> R1CSProof:
        """Prove the circuit; ``context`` must be the verifier's. Raises
        :class:`UnsatisfiedConstraintError` when the values break a constraint, and
        :class:`~zkgrid.errors.InvalidArgumentError` when an input's opening does not
        match its commitment."""
        self.check()
        self._check_openings()
        return self._prove_unchecked(context, rng=rng)

    def _check_openings(self) -> None:
        """``sum_j r_j (V_j - v_j G - gamma_j H) = O`` for random ``r_j``: one msm."""
        if not self._inputs:
            return
        weights = [secrets.randbelow(q - 1) + 1 for _ in self._inputs]
        value_sum = sum(r * v for r, v in zip(weights, self._v, strict=True)) % q
        blinding_sum = sum(r * g for r, g in zip(weights, self._gamma, strict=True)) % q
        points = [c.point for c in self._inputs] + [G, pedersen_h()]
        if not is_identity(msm([*weights, -value_sum, -blinding_sum], points)):
            raise InvalidArgumentError("an input's opening does not match its commitment")

    def _prove_unchecked(self, context: bytes, *, rng: Rng | None = None) -> R1CSProof:
        """The prover without :meth:`check`: the soundness tests push values that break
        constraints through here, and such proofs never verify."""
        draw: Rng = rng if rng is not None else random_scalar
        n = self._gates
        n_pad = _padded(n)
        pad = [0] * (n_pad - n)
        g_vec, h_vec = bp_generators(n_pad)
        H = pedersen_h()
        t = self._transcript(context)

        a_L, a_R, a_O = self._a_L + pad, self._a_R + pad, self._a_O + pad
        alpha, beta, rho = draw(), draw(), draw()
        s_L = [draw() for _ in range(n)] + pad
        s_R = [draw() for _ in range(n)] + pad
        # (C3) A_I = alpha H + <a_L, G> + <a_R, H>;  A_O = beta H + <a_O, G>;
        #      S = rho H + <s_L, G> + <s_R, H>  (padding gates are zero: only n terms).
        A_I = msm([alpha, *a_L[:n], *a_R[:n]], [H, *g_vec[:n], *h_vec[:n]])
        A_O = msm([beta, *a_O[:n]], [H, *g_vec[:n]])
        S = msm([rho, *s_L[:n], *s_R[:n]], [H, *g_vec[:n], *h_vec[:n]])
        t.append_point(b"A_I", A_I)  # (C9) A_I, A_O, S -> y, z
        t.append_point(b"A_O", A_O)
        t.append_point(b"S", S)
        y = t.challenge_scalar(b"y")
        z = t.challenge_scalar(b"z")

        weights = self._flatten(z)
        w_L, w_R, w_O = weights.left + pad, weights.right + pad, weights.out + pad
        y_pow = powers(y, n_pad)
        y_inv_pow = powers(pow(y, -1, q), n_pad)
        # (C4) l(X) = (a_L + y^-n o w_R) X + a_O X^2 + s_L X^3
        #      r(X) = (w_O - y^n) + (y^n o a_R + w_L) X + (y^n o s_R) X^3
        l1 = [(a_L[i] + y_inv_pow[i] * w_R[i]) % q for i in range(n_pad)]
        l2 = a_O
        l3 = s_L
        r0 = [(w_O[i] - y_pow[i]) % q for i in range(n_pad)]
        r1 = [(y_pow[i] * a_R[i] + w_L[i]) % q for i in range(n_pad)]
        r3 = [y_pow[i] * s_R[i] % q for i in range(n_pad)]
        # (C5) t(X) = <l(X), r(X)> = sum_{i=1..6} t_i X^i; t_2 is what (C6) checks.
        t1 = inner(l1, r0)
        t3 = (inner(l2, r1) + inner(l3, r0)) % q
        t4 = (inner(l1, r3) + inner(l3, r1)) % q
        t5 = inner(l2, r3)
        t6 = inner(l3, r3)
        taus = {i: draw() for i in (1, 3, 4, 5, 6)}
        coefficients = {1: t1, 3: t3, 4: t4, 5: t5, 6: t6}
        T = {i: msm([coefficients[i], taus[i]], [G, H]) for i in taus}
        for i in (1, 3, 4, 5, 6):  # (C9) T1, T3..T6 -> x
            t.append_point(b"T%d" % i, T[i])
        x = t.challenge_scalar(b"x")

        # (C7) l = l(x), r = r(x), t_hat = <l, r>, tau_x, mu.
        x2, x3 = x * x % q, x * x * x % q
        l_vec = [(l1[i] * x + l2[i] * x2 + l3[i] * x3) % q for i in range(n_pad)]
        r_vec = [(r0[i] + r1[i] * x + r3[i] * x3) % q for i in range(n_pad)]
        t_hat = inner(l_vec, r_vec)
        tau_x = (
            sum(taus[i] * pow(x, i, q) for i in taus) + x2 * inner(weights.inputs, self._gamma)
        ) % q
        mu = (alpha * x + beta * x2 + rho * x3) % q
        t.append_scalar(b"tau_x", tau_x)  # (C9) tau_x, mu, t_hat -> w
        t.append_scalar(b"mu", mu)
        t.append_scalar(b"t_hat", t_hat)
        w = t.challenge_scalar(b"w")
        # (C8) the inner-product argument on P' = <l, G> + <r, H'> + t_hat Q, Q = w U.
        L, R, a_final, b_final = prove_inner_product(t, g_vec, h_vec, y, w, l_vec, r_vec)
        return R1CSProof(
            A_I=A_I, A_O=A_O, S=S, T1=T[1], T3=T[3], T4=T[4], T5=T[5], T6=T[6],
            L=tuple(L), R=tuple(R), tau_x=tau_x, mu=mu, t_hat=t_hat, a=a_final, b=b_final,
        )  # fmt: skip


# --------------------------------------------------------------------------- the proof


@dataclass(frozen=True, eq=False)
class R1CSProof:
    """A circuit proof (immutable); :meth:`to_bytes` / :meth:`from_bytes` are canonical."""

    A_I: Point
    A_O: Point
    S: Point
    T1: Point
    T3: Point
    T4: Point
    T5: Point
    T6: Point
    L: tuple[Point, ...]
    R: tuple[Point, ...]
    tau_x: Scalar
    mu: Scalar
    t_hat: Scalar
    a: Scalar
    b: Scalar
    _encoded: bytes = field(default=b"", repr=False)

    @property
    def rounds(self) -> int:
        return len(self.L)

    def _point_encodings(self) -> list[bytes]:
        data = self.to_bytes()
        return [data[i : i + POINT_BYTES] for i in range(0, len(self._points()) * POINT_BYTES,
                                                         POINT_BYTES)]  # fmt: skip

    def _points(self) -> list[Point]:
        points = [self.A_I, self.A_O, self.S, self.T1, self.T3, self.T4, self.T5, self.T6]
        for left, right in zip(self.L, self.R, strict=True):
            points += [left, right]
        return points

    def _scalars(self) -> list[Scalar]:
        return [self.tau_x, self.mu, self.t_hat, self.a, self.b]

    def to_bytes(self) -> bytes:
        if self._encoded:
            return self._encoded
        return b"".join(encode_point(p) for p in self._points()) + b"".join(
            encode_scalar(s) for s in self._scalars()
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> R1CSProof:
        """Strict parse; raises :class:`~zkgrid.errors.ProofFormatError`."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise ProofFormatError("circuit proof must be bytes")
        data = bytes(data)
        body = len(data) - SCALAR_BYTES * _SCALARS
        rounds, odd = divmod(body // POINT_BYTES - _FIXED_POINTS, 2) if body > 0 else (-1, 0)
        if body <= 0 or body % POINT_BYTES or odd or not 0 <= rounds <= _MAX_ROUNDS:
            raise ProofFormatError(f"circuit proof: {len(data)} bytes is not a valid length")
        n_points = _FIXED_POINTS + 2 * rounds
        points = decode_points(
            [data[i * POINT_BYTES : (i + 1) * POINT_BYTES] for i in range(n_points)],
            "circuit proof point",
        )
        off = n_points * POINT_BYTES
        scalars = [
            decode_scalar(data[off + i * SCALAR_BYTES : off + (i + 1) * SCALAR_BYTES],
                          "circuit proof scalar")
            for i in range(_SCALARS)
        ]  # fmt: skip
        A_I, A_O, S, T1, T3, T4, T5, T6 = points[:_FIXED_POINTS]
        return cls(
            A_I=A_I, A_O=A_O, S=S, T1=T1, T3=T3, T4=T4, T5=T5, T6=T6,
            L=tuple(points[_FIXED_POINTS::2]),
            R=tuple(points[_FIXED_POINTS + 1 :: 2]),
            tau_x=scalars[0], mu=scalars[1], t_hat=scalars[2], a=scalars[3], b=scalars[4],
            _encoded=data,
        )  # fmt: skip


# --------------------------------------------------------------------------- the verifier


class Verifier(ConstraintSystem):
    """A constraint system without values: builds the same circuit, then verifies."""

    def commit(self, commitment: Commitment) -> Variable:
        """The committed input ``commitment`` (its opening is the prover's)."""
        return self._add_input(commitment)

    def commit_many(self, commitments: Sequence[Commitment]) -> list[Variable]:
        """:meth:`commit` for each of ``commitments``, in order."""
        self._check_open()
        first = len(self._inputs)
        if first + len(commitments) > MAX_INPUTS:
            raise InvalidArgumentError(f"a circuit takes at most {MAX_INPUTS} committed inputs")
        if not all(isinstance(c, Commitment) for c in commitments):
            raise InvalidArgumentError("a committed input must be a zkp.pedersen.Commitment")
        self._inputs += commitments
        return [Variable(Kind.COMMITTED, first + j) for j in range(len(commitments))]

    def statement(self, proof: R1CSProof, context: bytes = b"") -> R1CSStatement:
        """This circuit with ``proof`` and ``context``, for :meth:`R1CSStatement.verify_batch`.
        The circuit is fixed from now on (adding to it raises InvalidArgumentError)."""
        self._frozen = True
        return R1CSStatement(self, proof, context)

    def verify(self, proof: R1CSProof, context: bytes = b"") -> None:
        """Raise :class:`~zkgrid.errors.VerificationError` unless ``proof`` proves this
        circuit under ``context``: one multi-scalar multiplication (C10)."""
        R1CSStatement.verify_batch([self.statement(proof, context)])


@dataclass(frozen=True, eq=False)
class R1CSStatement:
    """One circuit, its proof and its context: what batch verification takes."""

    circuit: Verifier
    proof: R1CSProof
    context: bytes = b""

    @staticmethod
    def verify_batch(statements: Sequence[R1CSStatement]) -> None:
        """Check many circuit proofs, of any shapes, in one weighted msm (C11).

        Raises :class:`~zkgrid.errors.VerificationError` if any is wrong;
        :meth:`find_invalid` names which.
        """
        if not statements:
            return
        prepared = [_prepare(s) for s in statements]
        if not _holds(prepared):
            if len(statements) == 1:
                raise VerificationError("circuit proof does not verify (C10)")
            raise VerificationError(
                f"batch of {len(statements)} circuit proofs does not verify (C11)"
            )

    @staticmethod
    def find_invalid(statements: Sequence[R1CSStatement]) -> list[int]:
        """Indices of the statements whose proofs do not verify (zkp.batch: one check when
        all hold, the culprit named from a second weighting or by halving when not)."""
        return batch.find_invalid(statements, _prepare, _holds, summer=_summer)


@dataclass
class _Prepared:
    """A statement with its transcript replayed and its constraints flattened."""

    n_pad: int
    weights: _Weights
    y: int
    z: int
    x: int
    w: int
    u: list[int]
    scalars: list[int]  # tau_x, mu, t_hat, a, b
    points: list[Point]  # V_j..., A_I, A_O, S, T1, T3, T4, T5, T6, L..., R...


def _prepare(statement: R1CSStatement) -> _Prepared:
    """Check the proof's shape against the circuit and replay the transcript (C9)."""
    cs, proof = statement.circuit, statement.proof
    if not isinstance(cs, Verifier) or not isinstance(proof, R1CSProof):
        raise InvalidArgumentError("a statement needs a Verifier and an R1CSProof")
    n_pad = _padded(cs.gates)
    rounds = n_pad.bit_length() - 1
    if proof.rounds != rounds:
        raise VerificationError(
            f"circuit proof has {proof.rounds} rounds; a circuit of {cs.gates} gates needs"
            f" {rounds}"
        )
    t = cs._transcript(statement.context)
    own = proof._points()
    encodings = proof._point_encodings()
    t.append(b"A_I", encodings[0])
    t.append(b"A_O", encodings[1])
    t.append(b"S", encodings[2])
    y = t.challenge_scalar(b"y")
    z = t.challenge_scalar(b"z")
    for i, label in enumerate((b"T1", b"T3", b"T4", b"T5", b"T6")):
        t.append(label, encodings[3 + i])
    x = t.challenge_scalar(b"x")
    t.append_scalar(b"tau_x", proof.tau_x)
    t.append_scalar(b"mu", proof.mu)
    t.append_scalar(b"t_hat", proof.t_hat)
    w = t.challenge_scalar(b"w")
    us = []
    for k in range(rounds):
        t.append(b"L", encodings[_FIXED_POINTS + 2 * k])
        t.append(b"R", encodings[_FIXED_POINTS + 2 * k + 1])
        us.append(t.challenge_scalar(b"u"))
    points = [c.point for c in cs._inputs] + own[:_FIXED_POINTS] + list(proof.L) + list(proof.R)
    return _Prepared(n_pad, cs._flatten(z), y, z, x, w, us, proof._scalars(), points)


def _le(x: int) -> bytes:
    return (x % q).to_bytes(SCALAR_BYTES, "little")


def _factors(values: Sequence[int]) -> bytes:
    return b"".join(_le(v) for v in values)


def _accumulate(
    p: _Prepared,
    weight: int,
    c: int,
    g_acc: ScalarVector,
    h_acc: ScalarVector,
    fixed: list[int],
    scalars: list[int],
) -> None:
    """Add ``weight`` times the single-proof equation (C10) with combiner ``c`` to the
    batch sums (C11): the vector generators' scalars into ``g_acc``, ``h_acc`` (computed
    natively: Kronecker products (I4) and per-gate weighted terms), those of G, H, U into
    ``fixed``, the proof's own points' scalars appended to ``scalars`` (``p.points``
    order)."""
    n_pad = p.n_pad
    y, x, w = p.y, p.x, p.w
    tau_x, mu, t_hat, a, b = p.scalars
    us = p.u
    *u_invs, y_inv = batch_invert([*us, y])
    wts = p.weights
    x2 = x * x % q
    # (C6) delta(y, z) = <y^-n o w_R, w_L>
    delta = 0
    power = 1
    for right, left in zip(wts.right, wts.left, strict=True):
        if right and left:
            delta += power * right % q * left
        power = power * y_inv % q
    delta %= q
    # (I4) s_i = prod_r u_r^-1 * prod_(bit l of i set) u_(k-l)^2;
    #      y^-i s_(n'-1-i) = prod_r u_r * prod_(bit l set) y^(-2^l) u_(k-l)^-2
    prod_u_inv = prod_u = 1
    for u, u_inv in zip(us, u_invs, strict=True):
        prod_u_inv = prod_u_inv * u_inv % q
        prod_u = prod_u * u % q
    u_sq = [u * u % q for u in reversed(us)]
    u_inv_sq = [u * u % q for u in reversed(u_invs)]
    y_inv_2l = []
    power = y_inv
    for _ in range(len(us)):
        y_inv_2l.append(power)
        power = power * power % q
    # (C10) G_i: x y^-i w_R,i - a s_i;   H_i: y^-i (x w_L,i + w_O,i) - 1 - b y^-i s_(n'-1-i)
    g_acc.add_kronecker(_le(weight * a % q * prod_u_inv), _factors(u_sq), negate=True)
    g_acc.add_weighted(_le(weight * x), _le(y_inv), wts.right)
    h_acc.add_kronecker(
        _le(weight * b % q * prod_u),
        _factors([yi * ui % q for yi, ui in zip(y_inv_2l, u_inv_sq, strict=True)]),
        negate=True,
    )
    h_acc.add_weighted(_le(weight * x), _le(y_inv), wts.left)
    h_acc.add_weighted(_le(weight), _le(y_inv), wts.out)
    h_acc.add_constant(_le(-weight), n_pad)
    # (C10) G: c (x^2 (w_c + delta) - t_hat);  H: -mu - c tau_x;  U: w (t_hat - a b)
    wc = weight * c % q
    fixed[0] += wc * ((x2 * (wts.constant + delta) - t_hat) % q)
    fixed[1] -= weight * (mu + c * tau_x)
    fixed[2] += weight * w % q * (t_hat - a * b)
    # (C10) own points: V_j: c x^2 w_V,j;  A_I: x;  A_O: x^2;  S: x^3;
    #       T1, T3..T6: c x^i;  L_k: u_k^2;  R_k: u_k^-2
    wcx2 = wc * x2 % q
    scalars += [wcx2 * v % q for v in wts.inputs]
    scalars += [weight * x % q, weight * x2 % q, weight * x2 % q * x % q]
    scalars += [wc * pow(x, i, q) % q for i in (1, 3, 4, 5, 6)]
    scalars += [weight * u % q * u % q for u in us]
    scalars += [weight * ui % q * ui % q for ui in u_invs]


def _summer(
    prepared: Sequence[_Prepared], combiners: Sequence[int]
) -> Callable[[Sequence[int]], Point]:
    def weighted(weights: Sequence[int]) -> Point:
        return _batch_sum(prepared, weights, combiners)

    return weighted


def _batch_sum(
    prepared: Sequence[_Prepared], weights: Sequence[int], combiners: Sequence[int]
) -> Point:
    """(C11) ``sum_p weights[p] * E_p`` with ``E_p`` statement p's (C10) equation under
    combiner ``combiners[p]``: the identity when every statement holds."""
    size = max(p.n_pad for p in prepared)
    g_acc = ScalarVector(size)
    h_acc = ScalarVector(size)
    fixed = [0, 0, 0]
    scalars: list[int] = []
    points: list[Point] = []
    for p, weight, c in zip(prepared, weights, combiners, strict=True):
        _accumulate(p, weight, c, g_acc, h_acc, fixed, scalars)
        points += p.points
    g_vec, h_vec = bp_generators(size)
    return msm_sources(
        [[s % q for s in fixed], g_acc, h_acc, scalars],
        [G, pedersen_h(), ipa_u(), *g_vec, *h_vec, *points],
    )


def _holds(prepared: Sequence[_Prepared]) -> bool:
    weights = [1] if len(prepared) == 1 else [secrets.randbelow(q - 1) + 1 for _ in prepared]
    combiners = [secrets.randbelow(q - 1) + 1 for _ in prepared]
    return is_identity(_batch_sum(prepared, weights, combiners))
