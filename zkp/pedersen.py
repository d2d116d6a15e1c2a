"""Pedersen commitments ``C = v*G + r*H`` on P-256.

Perfectly hiding, computationally binding under the discrete logarithm
assumption (docs/notes/pedersen.md). Values and blindings are scalars mod the
order, so a commitment to a negative value is a commitment to ``q - |v|``;
the homomorphism holds mod ``q``:

    commit(a, r) + commit(b, s) == commit(a + b, r + s)
    k * commit(a, r)            == commit(k * a, k * r)
"""

from __future__ import annotations

from collections.abc import Sequence

from zkgrid.errors import InvalidArgumentError, ProofFormatError
from zkp.generators import G, pedersen_h
from zkp.group import (
    GROUP,
    ORDER,
    POINT_BYTES,
    Point,
    Scalar,
    decode_point,
    encode_point,
    is_identity,
    msm,
    random_scalar,
    to_bn,
)


class Commitment:
    """A Pedersen commitment: an opaque point with homomorphic arithmetic."""

    __slots__ = ("_encoded", "point")

    def __init__(self, point: Point, encoded: bytes | None = None) -> None:
        self.point = point
        self._encoded = encoded  # the 33 bytes it was parsed from, kept for transcripts

    def __add__(self, other: Commitment) -> Commitment:
        return Commitment(self.point + other.point)

    def __sub__(self, other: Commitment) -> Commitment:
        return Commitment(self.point - other.point)

    def __neg__(self) -> Commitment:
        return Commitment(-self.point)

    def scale(self, factor: Scalar) -> Commitment:
        """``factor * C``: commits to ``factor * v`` with blinding ``factor * r``."""
        return Commitment(self.point.pt_mul(to_bn(factor)))

    def __mul__(self, factor: int) -> Commitment:
        return self.scale(factor)

    __rmul__ = __mul__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Commitment) and self.point == other.point

    def __hash__(self) -> int:
        return hash(self.to_bytes()) if not is_identity(self.point) else 0

    def __repr__(self) -> str:
        if is_identity(self.point):
            return "Commitment(identity)"
        return f"Commitment({self.to_bytes().hex()})"

    def to_bytes(self) -> bytes:
        """33-byte compressed encoding."""
        if self._encoded is None:
            self._encoded = encode_point(self.point)
        return self._encoded

    @classmethod
    def from_bytes(cls, data: bytes) -> Commitment:
        """Strict decoding; raises :class:`~zkgrid.errors.ProofFormatError`."""
        return cls(decode_point(data, "commitment"), bytes(data))

    @classmethod
    def many_from_bytes(cls, data: bytes) -> list[Commitment]:
        """Decode a concatenation of 33-byte commitments."""
        if len(data) % POINT_BYTES:
            raise ProofFormatError("commitment list length is not a multiple of 33")
        return [
            cls.from_bytes(data[i : i + POINT_BYTES]) for i in range(0, len(data), POINT_BYTES)
        ]


def commit(value: int, blinding: Scalar) -> Commitment:
    """``value*G + blinding*H``; ``value`` may be negative (taken mod q)."""
    return Commitment(GROUP.wsum([to_bn(value), to_bn(blinding)], [G, pedersen_h()]))


def commit_random(value: int) -> tuple[Commitment, Scalar]:
    """Commit with a fresh random blinding; returns the commitment and the blinding."""
    blinding = random_scalar()
    return commit(value, blinding), blinding


def linear_combination(
    coefficients: Sequence[int], commitments: Sequence[Commitment]
) -> Commitment:
    """``sum(c_i * C_i)`` as one multi-scalar multiplication."""
    if len(coefficients) != len(commitments):
        raise InvalidArgumentError("coefficients and commitments differ in length")
    return Commitment(msm([c % ORDER for c in coefficients], [c.point for c in commitments]))


def vector_commit(
    a: Sequence[Scalar],
    b: Sequence[Scalar],
    g_vec: Sequence[Point],
    h_vec: Sequence[Point],
    blinding: Scalar = 0,
) -> Point:
    """``<a, G> + <b, H> + blinding*H0``: the vector commitments of the inner product argument."""
    if not (len(a) == len(g_vec) and len(b) == len(h_vec)):
        raise InvalidArgumentError("vector commitment: lengths differ")
    scalars = [*a, *b]
    points = [*g_vec, *h_vec]
    if blinding:
        scalars.append(blinding)
        points.append(pedersen_h())
    return msm(scalars, points)
