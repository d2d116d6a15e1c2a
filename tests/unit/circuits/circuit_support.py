"""Shared by the circuit tests: openings of committed inputs, and one build function that a
prover and a verifier both run (as gadget code is meant to be used).

A build function takes the constraint system and the input variables (already committed,
in order) and adds gates and constraints; on the verifier's side every ``cs.value(...)`` is
``None``, so the same function builds the same circuit without the values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from circuits.r1cs import (
    ConstraintSystem,
    Prover,
    R1CSProof,
    R1CSStatement,
    Variable,
    Verifier,
)
from zkp.group import Scalar, random_scalar
from zkp.pedersen import Commitment, commit

Build = Callable[[ConstraintSystem, list[Variable]], None]


@dataclass(frozen=True)
class Opening:
    """A committed input's value and blinding, and its commitment."""

    value: int
    blinding: Scalar

    @property
    def commitment(self) -> Commitment:
        return commit(self.value, self.blinding)


def openings(*values: int, rng: Callable[[], Scalar] | None = None) -> list[Opening]:
    """Openings of ``values`` with fresh blindings (from ``rng`` when given)."""
    draw = rng if rng is not None else random_scalar
    return [Opening(v, draw()) for v in values]


def build_prover(build: Build, inputs: Sequence[Opening] = ()) -> Prover:
    prover = Prover()
    xs = [prover.commit(o.commitment, o.value, o.blinding) for o in inputs]
    build(prover, xs)
    return prover


def build_verifier(build: Build, commitments: Sequence[Commitment] = ()) -> Verifier:
    verifier = Verifier()
    xs = [verifier.commit(c) for c in commitments]
    build(verifier, xs)
    return verifier


def prove(
    build: Build, inputs: Sequence[Opening] = (), context: bytes = b""
) -> tuple[Prover, R1CSProof]:
    prover = build_prover(build, inputs)
    return prover, prover.prove(context)


def prove_and_verify(
    build: Build, inputs: Sequence[Opening] = (), context: bytes = b""
) -> tuple[Prover, Verifier, R1CSProof]:
    """Prove with ``build``, then verify with a verifier running ``build`` (which must
    build the prover's circuit: the digests are compared first)."""
    prover, proof = prove(build, inputs, context)
    verifier = build_verifier(build, [o.commitment for o in inputs])
    assert verifier.digest() == prover.digest()
    assert (verifier.gates, verifier.constraints, verifier.inputs) == (
        prover.gates,
        prover.constraints,
        prover.inputs,
    )
    verifier.verify(proof, context)
    return prover, verifier, proof


def statement(
    build: Build, inputs: Sequence[Opening] = (), context: bytes = b""
) -> R1CSStatement:
    """A valid statement: ``build`` proven under ``context``."""
    _, proof = prove(build, inputs, context)
    return build_verifier(build, [o.commitment for o in inputs]).statement(proof, context)


def chain(gates: int) -> Build:
    """A circuit of exactly ``gates`` multiplications: ``x * 2 * 2 ...`` constrained to
    ``2^gates x`` for the one committed input ``x`` (a committed input even at 0 gates)."""

    def build(cs: ConstraintSystem, xs: list[Variable]) -> None:
        (x,) = xs
        current = x * 1
        for _ in range(gates):
            _, _, out = cs.multiply(current, 2)
            current = out * 1
        cs.constrain(current - (1 << gates) * x)

    return build
