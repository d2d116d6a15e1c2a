"""Non-interactive Schnorr-family proofs about Pedersen commitments.

Three protocols (docs/notes/sigma.md has the math; equation tags such as
``(S2)`` below refer to it):

* :class:`OpeningProof`: knowledge of ``(v, r)`` with ``C = v*G + r*H``.
* :class:`LinearCombinationProof` (the bill proof): ``sum_i p_i*C_i`` commits to
  ``B - k`` for public integer coefficients ``p_i``, a public constant ``k`` and a
  public total ``B``; a Schnorr proof of knowledge of ``R = sum_i p_i*r_i`` with
  ``sum_i p_i*C_i - (B - k)*G = R*H``. Reveals ``B`` and nothing else.
* :class:`EqualityProof`: ``C1`` and ``C2`` commit to the same value, a Schnorr
  proof of knowledge of ``r1 - r2`` with ``C1 - C2 = (r1 - r2)*H``.

Fiat-Shamir goes through :class:`zkp.transcript.Transcript` with one domain
separator per protocol (``zkgrid/sigma/<name>``, version 1, the number of
commitments as a parameter); the caller's ``context`` and every public input are
absorbed before the nonce point and the challenge.

Every verification is one multi-scalar multiplication whose result must be the
identity. Verifiers raise :class:`~zkgrid.errors.VerificationError`, parsers
raise :class:`~zkgrid.errors.ProofFormatError`, and no message carries a secret.

Encodings: a proof is its nonce point (33 bytes, compressed) followed by its
response scalars (32 bytes each, below the order), nothing else:
:class:`OpeningProof` is 97 bytes, the other two are 65 bytes.

The ``rng`` keyword of the provers and of :meth:`LinearCombinationProof.verify_batch`
exists for deterministic test vectors only: production code must leave it unset,
so nonces and batch weights come from :func:`zkp.group.random_scalar` (``secrets``).
A repeated or predictable nonce reveals the witness.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

from zkgrid.errors import InvalidArgumentError, ProofFormatError, VerificationError
from zkp import batch
from zkp.generators import G, pedersen_h
from zkp.group import (
    GROUP,
    ORDER,
    POINT_BYTES,
    SCALAR_BYTES,
    Point,
    Scalar,
    decode_point,
    decode_scalar,
    encode_point,
    encode_scalar,
    is_identity,
    msm,
    mul,
    random_scalar,
)
from zkp.pedersen import Commitment
from zkp.transcript import Transcript

#: Source of non-zero scalars. Test vectors only; production leaves it ``None``.
ScalarSource = Callable[[], int]

OPENING_PROTOCOL = b"zkgrid/sigma/opening"
LINEAR_COMBINATION_PROTOCOL = b"zkgrid/sigma/linear-combination"
EQUALITY_PROTOCOL = b"zkgrid/sigma/equality"
VERSION = 1

__all__ = [
    "EQUALITY_PROTOCOL",
    "HALF_ORDER",
    "LINEAR_COMBINATION_PROTOCOL",
    "OPENING_PROTOCOL",
    "VERSION",
    "EqualityProof",
    "LinearCombinationClaim",
    "LinearCombinationProof",
    "OpeningProof",
    "ScalarSource",
]


# --- helpers ---------------------------------------------------------------------------


def _fresh_scalar(rng: ScalarSource | None, what: str) -> Scalar:
    """A non-zero scalar from ``secrets``, or from the test-only ``rng``."""
    if rng is None:
        return random_scalar()
    x = rng()
    if not isinstance(x, int):
        raise InvalidArgumentError(f"rng must return an int ({what})")
    x %= ORDER
    if x == 0:
        raise InvalidArgumentError(f"rng returned zero mod the order ({what})")
    return x


def _check_context(context: bytes) -> bytes:
    if not isinstance(context, bytes | bytearray):
        raise InvalidArgumentError("context must be bytes")
    return bytes(context)


def _statement_point(commitment: Commitment, what: str) -> Point:
    """The point of a public commitment; the identity cannot be encoded, so it is refused."""
    if not isinstance(commitment, Commitment):
        raise InvalidArgumentError(f"{what} must be a Commitment")
    if is_identity(commitment.point):
        raise InvalidArgumentError(f"{what} is the identity point")
    return commitment.point


def _check_int(x: int, what: str) -> int:
    if not isinstance(x, int) or isinstance(x, bool):
        raise InvalidArgumentError(f"{what} must be an int")
    return x


def _signed_int_bytes(x: int) -> bytes:
    """Exact encoding of an integer of any size: sign byte, then minimal big-endian magnitude."""
    magnitude = abs(x)
    return (b"\x01" if x < 0 else b"\x00") + magnitude.to_bytes(
        (magnitude.bit_length() + 7) // 8, "big"
    )


def _proof_bytes(data: bytes, name: str, expected: int) -> bytes:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ProofFormatError(f"{name}: expected bytes")
    data = bytes(data)
    if len(data) != expected:
        raise ProofFormatError(f"{name}: expected {expected} bytes, got {len(data)}")
    return data


def _check_nonce_point(point: Point, name: str) -> None:
    if not isinstance(point, Point) or point.group != GROUP or is_identity(point):
        raise InvalidArgumentError(f"{name}: the nonce point must be a non-identity P-256 point")


def _check_response(z: Scalar, name: str) -> None:
    if not isinstance(z, int) or isinstance(z, bool) or not 0 <= z < ORDER:
        raise InvalidArgumentError(f"{name}: a response must be an int in [0, q)")


# --- opening ---------------------------------------------------------------------------


def _opening_transcript(point: Point, context: bytes) -> Transcript:
    """sigma.md (T1)."""
    transcript = Transcript(OPENING_PROTOCOL, VERSION, [(b"m", 1)])
    transcript.append(b"context", context)
    transcript.append_point(b"C", point)
    return transcript


@dataclass(frozen=True)
class OpeningProof:
    """Proof of knowledge of ``(v, r)`` with ``C = v*G + r*H`` (sigma.md, Opening)."""

    nonce_point: Point  #: A = a_v*G + a_r*H
    response_value: Scalar  #: z_v = a_v + c*v
    response_blinding: Scalar  #: z_r = a_r + c*r

    SIZE: ClassVar[int] = POINT_BYTES + 2 * SCALAR_BYTES

    def __post_init__(self) -> None:
        _check_nonce_point(self.nonce_point, "opening proof")
        _check_response(self.response_value, "opening proof")
        _check_response(self.response_blinding, "opening proof")

    @classmethod
    def prove(
        cls,
        commitment: Commitment,
        value: int,
        blinding: Scalar,
        context: bytes = b"",
        *,
        rng: ScalarSource | None = None,
    ) -> OpeningProof:
        """Prove knowledge of the opening ``(value, blinding)`` of ``commitment``.

        ``rng`` is for deterministic test vectors only.
        """
        point = _statement_point(commitment, "commitment")
        context = _check_context(context)
        v = _check_int(value, "value") % ORDER
        r = _check_int(blinding, "blinding") % ORDER
        if msm([v, r], [G, pedersen_h()]) != point:
            raise InvalidArgumentError("opening proof: the opening does not match the commitment")
        a_v = _fresh_scalar(rng, "nonce")
        a_r = _fresh_scalar(rng, "nonce")
        nonce_point = msm([a_v, a_r], [G, pedersen_h()])
        transcript = _opening_transcript(point, context)
        transcript.append_point(b"A", nonce_point)
        c = transcript.challenge_scalar(b"c")
        return cls(nonce_point, (a_v + c * v) % ORDER, (a_r + c * r) % ORDER)

    def verify(self, commitment: Commitment, context: bytes = b"") -> None:
        """Raise :class:`VerificationError` unless the proof holds for ``commitment``."""
        point = _statement_point(commitment, "commitment")
        context = _check_context(context)
        transcript = _opening_transcript(point, context)
        transcript.append_point(b"A", self.nonce_point)
        c = transcript.challenge_scalar(b"c")
        # sigma.md (S1): z_v*G + z_r*H - A - c*C == O
        check = msm(
            [self.response_value, self.response_blinding, ORDER - 1, ORDER - c],
            [G, pedersen_h(), self.nonce_point, point],
        )
        if not is_identity(check):
            raise VerificationError("opening proof: z_v*G + z_r*H == A + c*C fails (sigma.md S1)")

    def to_bytes(self) -> bytes:
        """``A || z_v || z_r``: 97 bytes."""
        return (
            encode_point(self.nonce_point)
            + encode_scalar(self.response_value)
            + encode_scalar(self.response_blinding)
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> OpeningProof:
        """Strict parsing; raises :class:`ProofFormatError`."""
        data = _proof_bytes(data, "opening proof", cls.SIZE)
        a = decode_point(data[:POINT_BYTES], "opening proof A")
        z_v = decode_scalar(data[POINT_BYTES : POINT_BYTES + SCALAR_BYTES], "opening proof z_v")
        z_r = decode_scalar(data[POINT_BYTES + SCALAR_BYTES :], "opening proof z_r")
        return cls(a, z_v, z_r)


# --- linear combination (the bill proof) ------------------------------------------------


def _linear_statement(
    coefficients: Sequence[int], commitments: Sequence[Commitment], constant: int
) -> tuple[list[Scalar], list[Point], list[bytes], Scalar]:
    """Validated coefficients mod q, commitment points and encodings, and ``k mod q``."""
    if len(coefficients) != len(commitments):
        raise InvalidArgumentError(
            f"linear combination: {len(coefficients)} coefficients for "
            f"{len(commitments)} commitments"
        )
    if not commitments:
        raise InvalidArgumentError("linear combination: no commitments")
    scalars = [_check_int(p, f"coefficient {i}") % ORDER for i, p in enumerate(coefficients)]
    points = [_statement_point(c, f"commitment {i}") for i, c in enumerate(commitments)]
    encodings = [c.to_bytes() for c in commitments]  # cached when parsed from bytes
    return scalars, points, encodings, _check_int(constant, "constant") % ORDER


#: (q - 1) / 2: the centred representatives of Z_q are [-HALF_ORDER, HALF_ORDER].
HALF_ORDER = ORDER // 2


def _centred(x: int) -> int:
    """The representative of ``x mod q`` in ``[-(q-1)/2, (q-1)/2]``."""
    x %= ORDER
    return x - ORDER if x > HALF_ORDER else x


def _check_total(total: int, constant: int, what: str) -> int:
    """sigma.md (S2'): ``B - k`` must be centred, so no ``B + q`` claims the same residue."""
    if not -HALF_ORDER <= total - constant <= HALF_ORDER:
        raise VerificationError(f"{what}: |B - k| <= (q-1)/2 fails (sigma.md S2')")
    return total


def _linear_transcript(
    scalars: Sequence[Scalar], encodings: Sequence[bytes], k: Scalar, total: int, context: bytes
) -> Transcript:
    """sigma.md (T2)."""
    transcript = Transcript(LINEAR_COMBINATION_PROTOCOL, VERSION, [(b"m", len(encodings))])
    transcript.append(b"context", context)
    for p, encoding in zip(scalars, encodings, strict=True):
        transcript.append_scalar(b"p", p)
        transcript.append(b"C", encoding)
    transcript.append_scalar(b"k", k)
    transcript.append(b"B", _signed_int_bytes(total))
    return transcript


class LinearCombinationClaim(NamedTuple):
    """One item of :meth:`LinearCombinationProof.verify_batch` (plain tuples of this shape work)."""

    proof: LinearCombinationProof
    coefficients: Sequence[int]
    commitments: Sequence[Commitment]
    total: int
    constant: int = 0
    context: bytes = b""


def _as_claim(raw: object, index: int) -> LinearCombinationClaim:
    if isinstance(raw, LinearCombinationClaim):
        return raw
    if not isinstance(raw, tuple) or not 4 <= len(raw) <= 6:
        raise InvalidArgumentError(
            f"batch item {index}: expected (proof, coefficients, commitments, total"
            "[, constant[, context]])"
        )
    return LinearCombinationClaim(*raw)


class _PreparedClaim(NamedTuple):
    """A claim with its transcript replayed (T2): the (S2) terms, all but the batch weight."""

    h_scalar: Scalar  #: z
    g_scalar: Scalar  #: c*(B - k)
    nonce_point: Point  #: A (scalar -1)
    c_scalars: list[Scalar]  #: -c*p_i
    points: list[Point]  #: C_i


def _prepare_claim(
    cls: type[LinearCombinationProof], raw: object, index: int
) -> _PreparedClaim:
    item = _as_claim(raw, index)
    if not isinstance(item.proof, cls):
        raise InvalidArgumentError(f"batch item {index}: not a linear-combination proof")
    scalars, points, encodings, k = _linear_statement(
        item.coefficients, item.commitments, item.constant
    )
    context = _check_context(item.context)
    # sigma.md (S2') for this item
    total = _check_total(
        _check_int(item.total, f"batch item {index} total"),
        item.constant,
        f"linear-combination batch item {index}",
    )
    h_scalar, g_scalar, c_scalars = item.proof._terms(scalars, encodings, k, total, context)
    return _PreparedClaim(h_scalar, g_scalar, item.proof.nonce_point, c_scalars, points)


def _claims_hold(prepared: Sequence[_PreparedClaim], rng: ScalarSource | None) -> bool:
    """sigma.md (S4) with fresh weights: whether the weighted sum of (S2) is the identity."""
    h_total = 0
    g_total = 0
    scalars_out: list[Scalar] = []
    points_out: list[Point] = []
    for claim in prepared:
        weight = _fresh_scalar(rng, "batch weight")
        h_total += weight * claim.h_scalar
        g_total += weight * claim.g_scalar
        scalars_out.append(ORDER - weight)
        points_out.append(claim.nonce_point)
        scalars_out.extend(weight * s % ORDER for s in claim.c_scalars)
        points_out.extend(claim.points)
    if not points_out:
        return True
    # sigma.md (S4): sum_j w_j*(z_j*H - A_j - c_j*(sum_i p_ji*C_ji - (B_j - k_j)*G)) == O
    check = msm(
        [h_total % ORDER, g_total % ORDER, *scalars_out],
        [pedersen_h(), G, *points_out],
    )
    return is_identity(check)


@dataclass(frozen=True)
class LinearCombinationProof:
    """``sum_i p_i*C_i`` commits to ``B - k`` (sigma.md, Linear combination).

    A Schnorr proof of knowledge of ``R`` with ``sum_i p_i*C_i - (B - k)*G = R*H``.
    """

    nonce_point: Point  #: A = a*H
    response: Scalar  #: z = a + c*R

    SIZE: ClassVar[int] = POINT_BYTES + SCALAR_BYTES

    def __post_init__(self) -> None:
        _check_nonce_point(self.nonce_point, "linear-combination proof")
        _check_response(self.response, "linear-combination proof")

    @classmethod
    def prove(
        cls,
        coefficients: Sequence[int],
        commitments: Sequence[Commitment],
        values: Sequence[int],
        blindings: Sequence[Scalar],
        constant: int = 0,
        context: bytes = b"",
        *,
        rng: ScalarSource | None = None,
    ) -> tuple[LinearCombinationProof, int]:
        """Prove the bill; returns the proof and the total ``B``.

        ``B = d + k`` where ``d`` is the centred representative, in
        ``[-(q-1)/2, (q-1)/2]``, of ``sum_i p_i*v_i mod q``: exactly the integer
        ``sum_i p_i*v_i + k`` whenever ``|sum_i p_i*v_i| <= (q-1)/2`` (sigma.md, What the
        bill proof reveals). ``rng`` is for deterministic test vectors only.
        """
        scalars, points, encodings, k = _linear_statement(coefficients, commitments, constant)
        context = _check_context(context)
        if not len(values) == len(blindings) == len(points):
            raise InvalidArgumentError(
                "linear combination: values, blindings and commitments differ in length"
            )
        combined = sum(p * _check_int(v, "value") for p, v in zip(scalars, values, strict=True))
        total = _centred(combined) + _check_int(constant, "constant")
        big_r = (
            sum(p * _check_int(r, "blinding") for p, r in zip(scalars, blindings, strict=True))
            % ORDER
        )
        # The openings must satisfy the statement: sum p_i*C_i - (B - k)*G - R*H == O.
        consistency = msm(
            [*scalars, (k - total) % ORDER, (ORDER - big_r) % ORDER],
            [*points, G, pedersen_h()],
        )
        if not is_identity(consistency):
            raise InvalidArgumentError(
                "linear-combination proof: the openings do not match the commitments"
            )
        a = _fresh_scalar(rng, "nonce")
        nonce_point = mul(a, pedersen_h())
        transcript = _linear_transcript(scalars, encodings, k, total, context)
        transcript.append_point(b"A", nonce_point)
        c = transcript.challenge_scalar(b"c")
        return cls(nonce_point, (a + c * big_r) % ORDER), total

    def _terms(
        self,
        scalars: Sequence[Scalar],
        encodings: Sequence[bytes],
        k: Scalar,
        total: int,
        context: bytes,
    ) -> tuple[Scalar, Scalar, list[Scalar]]:
        """The challenge-weighted terms of (S2): scalars of H, G and each C_i (A has -1)."""
        transcript = _linear_transcript(scalars, encodings, k, total, context)
        transcript.append_point(b"A", self.nonce_point)
        c = transcript.challenge_scalar(b"c")  # sigma.md (T2)
        return self.response, c * (total - k) % ORDER, [(ORDER - c) * p % ORDER for p in scalars]

    def verify(
        self,
        coefficients: Sequence[int],
        commitments: Sequence[Commitment],
        total: int,
        constant: int = 0,
        context: bytes = b"",
    ) -> None:
        """Raise :class:`VerificationError` unless ``sum_i p_i*C_i`` commits to ``B - k``.

        ``total`` is ``B`` and ``constant`` is ``k``.
        """
        scalars, points, encodings, k = _linear_statement(coefficients, commitments, constant)
        context = _check_context(context)
        # sigma.md (S2'): -(q-1)/2 <= B - k <= (q-1)/2
        total = _check_total(_check_int(total, "total"), constant, "linear-combination proof")
        h_scalar, g_scalar, c_scalars = self._terms(scalars, encodings, k, total, context)
        # sigma.md (S2): z*H - A - c*(sum_i p_i*C_i - (B - k)*G) == O
        check = msm(
            [h_scalar, ORDER - 1, g_scalar, *c_scalars],
            [pedersen_h(), self.nonce_point, G, *points],
        )
        if not is_identity(check):
            raise VerificationError(
                "linear-combination proof: z*H == A + c*(sum p_i*C_i - (B - k)*G) fails "
                "(sigma.md S2)"
            )

    @classmethod
    def verify_batch(
        cls,
        items: Iterable[LinearCombinationClaim],
        *,
        rng: ScalarSource | None = None,
    ) -> None:
        """Verify many bill proofs in one multi-scalar multiplication (sigma.md S4).

        Each item is a :class:`LinearCombinationClaim` (or a tuple of the same shape).
        Raises :class:`VerificationError` if any proof in the batch is invalid (without
        saying which: :meth:`find_invalid` names them). Random weights come from
        ``secrets``; ``rng`` is for deterministic tests only. An empty batch passes.
        """
        prepared = [_prepare_claim(cls, raw, index) for index, raw in enumerate(items)]
        if not _claims_hold(prepared, rng):
            raise VerificationError(
                "linear-combination batch: the weighted sum of (S2) over the batch is not the "
                "identity (sigma.md S4); at least one proof is invalid"
            )

    @classmethod
    def find_invalid(
        cls,
        items: Sequence[LinearCombinationClaim],
        *,
        rng: ScalarSource | None = None,
    ) -> list[int]:
        """Indices (ascending) of the claims whose proof does not verify: one (S4) check
        when they all hold, bisection (batch-verification.md B3) when not.

        A claim that is wrong on its own (not a proof of this type, coefficients and
        commitments that differ in number, ``|B - k| > (q-1)/2``) is invalid without
        a group operation.
        """
        return batch.find_invalid(
            [(index, raw) for index, raw in enumerate(items)],
            lambda item: _prepare_claim(cls, item[1], item[0]),
            lambda prepared: _claims_hold(prepared, rng),
        )

    def to_bytes(self) -> bytes:
        """``A || z``: 65 bytes."""
        return encode_point(self.nonce_point) + encode_scalar(self.response)

    @classmethod
    def from_bytes(cls, data: bytes) -> LinearCombinationProof:
        """Strict parsing; raises :class:`ProofFormatError`."""
        data = _proof_bytes(data, "linear-combination proof", cls.SIZE)
        a = decode_point(data[:POINT_BYTES], "linear-combination proof A")
        z = decode_scalar(data[POINT_BYTES:], "linear-combination proof z")
        return cls(a, z)


# --- equality --------------------------------------------------------------------------


def _equality_transcript(point1: Point, point2: Point, context: bytes) -> Transcript:
    """sigma.md (T3)."""
    transcript = Transcript(EQUALITY_PROTOCOL, VERSION, [(b"m", 2)])
    transcript.append(b"context", context)
    transcript.append_point(b"C1", point1)
    transcript.append_point(b"C2", point2)
    return transcript


@dataclass(frozen=True)
class EqualityProof:
    """``C1`` and ``C2`` commit to the same value (sigma.md, Equality).

    A Schnorr proof of knowledge of ``r1 - r2`` with ``C1 - C2 = (r1 - r2)*H``.
    """

    nonce_point: Point  #: A = a*H
    response: Scalar  #: z = a + c*(r1 - r2)

    SIZE: ClassVar[int] = POINT_BYTES + SCALAR_BYTES

    def __post_init__(self) -> None:
        _check_nonce_point(self.nonce_point, "equality proof")
        _check_response(self.response, "equality proof")

    @classmethod
    def prove(
        cls,
        commitment1: Commitment,
        commitment2: Commitment,
        blinding1: Scalar,
        blinding2: Scalar,
        context: bytes = b"",
        *,
        rng: ScalarSource | None = None,
    ) -> EqualityProof:
        """Prove that ``commitment1`` and ``commitment2`` hide the same value.

        Only the blindings are needed. ``rng`` is for deterministic test vectors only.
        """
        point1 = _statement_point(commitment1, "commitment 1")
        point2 = _statement_point(commitment2, "commitment 2")
        context = _check_context(context)
        delta = (_check_int(blinding1, "blinding 1") - _check_int(blinding2, "blinding 2")) % ORDER
        # The witness must satisfy the statement: C1 - C2 - (r1 - r2)*H == O.
        consistency = msm([1, ORDER - 1, ORDER - delta], [point1, point2, pedersen_h()])
        if not is_identity(consistency):
            raise InvalidArgumentError(
                "equality proof: the commitments do not hide the same value under these blindings"
            )
        a = _fresh_scalar(rng, "nonce")
        nonce_point = mul(a, pedersen_h())
        transcript = _equality_transcript(point1, point2, context)
        transcript.append_point(b"A", nonce_point)
        c = transcript.challenge_scalar(b"c")
        return cls(nonce_point, (a + c * delta) % ORDER)

    def verify(
        self, commitment1: Commitment, commitment2: Commitment, context: bytes = b""
    ) -> None:
        """Raise :class:`VerificationError` unless both commitments hide the same value."""
        point1 = _statement_point(commitment1, "commitment 1")
        point2 = _statement_point(commitment2, "commitment 2")
        context = _check_context(context)
        transcript = _equality_transcript(point1, point2, context)
        transcript.append_point(b"A", self.nonce_point)
        c = transcript.challenge_scalar(b"c")
        # sigma.md (S3): z*H - A - c*C1 + c*C2 == O
        check = msm(
            [self.response, ORDER - 1, ORDER - c, c],
            [pedersen_h(), self.nonce_point, point1, point2],
        )
        if not is_identity(check):
            raise VerificationError("equality proof: z*H == A + c*(C1 - C2) fails (sigma.md S3)")

    def to_bytes(self) -> bytes:
        """``A || z``: 65 bytes."""
        return encode_point(self.nonce_point) + encode_scalar(self.response)

    @classmethod
    def from_bytes(cls, data: bytes) -> EqualityProof:
        """Strict parsing; raises :class:`ProofFormatError`."""
        data = _proof_bytes(data, "equality proof", cls.SIZE)
        a = decode_point(data[:POINT_BYTES], "equality proof A")
        z = decode_scalar(data[POINT_BYTES:], "equality proof z")
        return cls(a, z)
