"""Bulletproofs range proofs (Bünz et al. 2018), aggregated, batch-verifiable.

A proof shows that each of m Pedersen commitments ``V_j = v_j*G + gamma_j*H``
opens to a value in ``[0, 2^n)`` for n in {8, 16, 32, 64}, without revealing
anything else. m values share one proof: inside, m is padded to the next power
of two m' with zero values (blinding 0, so their commitments are the identity
and the verifier simply leaves them out); callers never see the padding.

Equations (docs/notes/rangeproof.md, docs/notes/inner-product.md,
docs/notes/batch-verification.md) are cited in comments as (R1)...(R7),
(I1)...(I5) and (B1)...(B5).

Serialised proof, N = n*m', k = log2(N)::

    A S T1 T2 (L_1 R_1) ... (L_k R_k)   points, 33 bytes each (compressed SEC1)
    tau_x mu t_hat a b                  scalars, 32 bytes each (big-endian, < q)

so a proof is 33*(4 + 2k) + 5*32 bytes: 688 bytes for one 64-bit value
(docs/notes/rangeproof.md, "Proof layout and size").

API::

    bundle = RangeProof.prove(values, bits, blindings=None, context=b"")
    bundle.proof.verify(bundle.commitments, bits, context=b"")   # raises VerificationError
    RangeProof.verify_batch([RangeProofStatement(proof, commitments, bits, context), ...])
    RangeProof.find_invalid(statements) -> list[int]             # bisection
    RangeProof.from_bytes(data) / proof.to_bytes()
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import NamedTuple

from zkgrid.errors import (
    InvalidArgumentError,
    ProofFormatError,
    ValueOutOfRangeError,
    VerificationError,
)
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
    identity,
    is_identity,
    msm,
    msm_sources,
    mul,
    random_scalar,
    to_bn,
    worker_pool,
)
from zkp.innerproduct import batch_invert as _batch_invert
from zkp.innerproduct import inner as _inner
from zkp.innerproduct import powers as _powers
from zkp.innerproduct import prove as _ipa_prove
from zkp.pedersen import Commitment, commit
from zkp.transcript import Transcript

PROTOCOL = b"zkgrid/bulletproofs/rangeproof"
VERSION = 1
SUPPORTED_BITS = (8, 16, 32, 64)
#: Upper bound on aggregated values per proof (a day of 15-minute import and
#: export is 192); keeps a hostile caller from asking for huge generator tables.
MAX_AGGREGATION = 1024

_FIXED_POINTS = 4  # A, S, T1, T2
_SCALARS = 5  # tau_x, mu, t_hat, a, b

Rng = Callable[[], Scalar]

q = ORDER


def _padded(m: int) -> int:
    """The next power of two >= m."""
    return 1 << (m - 1).bit_length()


def proof_size(bits: int, count: int) -> int:
    """Bytes of a proof for ``count`` values of ``bits`` bits."""
    rounds = (bits * _padded(count)).bit_length() - 1
    return POINT_BYTES * (_FIXED_POINTS + 2 * rounds) + SCALAR_BYTES * _SCALARS


def _check_shape(bits: int, count: int) -> None:
    if bits not in SUPPORTED_BITS:
        raise InvalidArgumentError(f"bit width must be one of {SUPPORTED_BITS}, got {bits}")
    if not 1 <= count <= MAX_AGGREGATION:
        raise InvalidArgumentError(f"a proof covers 1..{MAX_AGGREGATION} values, got {count}")


def _start_transcript(
    bits: int, encoded_commitments: Sequence[bytes], context: bytes
) -> Transcript:
    # (R7) domain separator with n and m (the real count, not m'), context, V_j.
    t = Transcript(PROTOCOL, VERSION, [(b"n", bits), (b"m", len(encoded_commitments))])
    t.append(b"context", context)
    for enc in encoded_commitments:
        t.append(b"V", enc)
    return t


class RangeProofBundle(NamedTuple):
    """What the prover gets back: the proof, the commitments and their blindings.

    The blindings (and the values) are the openings: they stay with the prover.
    """

    proof: RangeProof
    commitments: list[Commitment]
    blindings: list[Scalar]


@dataclass(frozen=True)
class RangeProofStatement:
    """One statement for :meth:`RangeProof.verify_batch`."""

    proof: RangeProof
    commitments: Sequence[Commitment]
    bits: int
    context: bytes = b""


@dataclass(frozen=True, eq=False)
class RangeProof:
    """An aggregated Bulletproofs range proof (immutable)."""

    A: Point
    S: Point
    T1: Point
    T2: Point
    L: tuple[Point, ...]
    R: tuple[Point, ...]
    tau_x: Scalar
    mu: Scalar
    t_hat: Scalar
    a: Scalar
    b: Scalar
    _encoded: bytes = field(default=b"", repr=False)

    # --- serialisation ----------------------------------------------------------

    def to_bytes(self) -> bytes:
        if self._encoded:
            return self._encoded
        points = [self.A, self.S, self.T1, self.T2]
        for left, right in zip(self.L, self.R, strict=True):
            points += [left, right]
        scalars = [self.tau_x, self.mu, self.t_hat, self.a, self.b]
        return b"".join(encode_point(p) for p in points) + b"".join(
            encode_scalar(s) for s in scalars
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> RangeProof:
        """Strict parse; raises :class:`~zkgrid.errors.ProofFormatError`."""
        return cls.many_from_bytes([data])[0]

    @classmethod
    def many_from_bytes(cls, blobs: Sequence[bytes]) -> list[RangeProof]:
        """Parse many proofs, decompressing their points on all cores."""
        layouts: list[tuple[int, int]] = []
        point_blobs: list[bytes] = []
        for data in blobs:
            rounds = _rounds_from_length(len(data))
            n_points = _FIXED_POINTS + 2 * rounds
            layouts.append((rounds, n_points))
            point_blobs += [
                data[i * POINT_BYTES : (i + 1) * POINT_BYTES] for i in range(n_points)
            ]
        points = decode_points(point_blobs, "range proof point")
        proofs = []
        cursor = 0
        for data, (rounds, n_points) in zip(blobs, layouts, strict=True):
            pts = points[cursor : cursor + n_points]
            cursor += n_points
            off = n_points * POINT_BYTES
            scalars = [
                decode_scalar(data[off + i * SCALAR_BYTES : off + (i + 1) * SCALAR_BYTES],
                              "range proof scalar")
                for i in range(_SCALARS)
            ]
            proofs.append(
                cls(
                    A=pts[0], S=pts[1], T1=pts[2], T2=pts[3],
                    L=tuple(pts[4::2]), R=tuple(pts[5::2]),
                    tau_x=scalars[0], mu=scalars[1], t_hat=scalars[2],
                    a=scalars[3], b=scalars[4],
                    _encoded=bytes(data),
                )
            )
            if len(proofs[-1].L) != rounds:  # pragma: no cover - layout invariant
                raise ProofFormatError("range proof: inconsistent layout")
        return proofs

    @property
    def rounds(self) -> int:
        """Number of inner-product rounds, log2(n*m')."""
        return len(self.L)

    def _point_encodings(self) -> list[bytes]:
        data = self.to_bytes()
        n_points = _FIXED_POINTS + 2 * self.rounds
        return [data[i * POINT_BYTES : (i + 1) * POINT_BYTES] for i in range(n_points)]

    # --- proving -------------------------------------------------------------------

    @classmethod
    def prove(
        cls,
        values: Sequence[int],
        bits: int,
        blindings: Sequence[Scalar] | None = None,
        *,
        context: bytes = b"",
        rng: Rng | None = None,
    ) -> RangeProofBundle:
        """Commit to ``values`` and prove each lies in ``[0, 2^bits)``.

        ``blindings`` default to fresh random scalars; given ones must be in
        ``[1, q)``. ``context`` (e.g. meter id and period) is bound into the
        proof: it verifies only with the same context. ``rng`` is for
        reproducible test vectors only (see :mod:`zkp.drbg`).

        Raises :class:`~zkgrid.errors.ValueOutOfRangeError` for a value outside
        the range (the message names its index, never the value).
        """
        _check_shape(bits, len(values))
        for j, v in enumerate(values):
            if isinstance(v, bool) or not isinstance(v, int):
                raise InvalidArgumentError(f"value {j} is not an integer")
            if not 0 <= v < 1 << bits:
                raise ValueOutOfRangeError(f"value {j} is outside [0, 2^{bits})")
        return cls._prove_unchecked(values, bits, blindings, context=context, rng=rng)

    @classmethod
    def _prove_unchecked(
        cls,
        values: Sequence[int],
        bits: int,
        blindings: Sequence[Scalar] | None,
        *,
        context: bytes,
        rng: Rng | None,
    ) -> RangeProofBundle:
        """The prover without the range check on ``values``.

        Exists so the soundness tests can push an out-of-range value through;
        such a proof never verifies, because the bits of ``v mod 2^n`` do not
        sum to ``v``.
        """
        draw: Rng = rng if rng is not None else random_scalar
        m = len(values)
        if blindings is None:
            gammas = [draw() for _ in range(m)]
        else:
            if len(blindings) != m:
                raise InvalidArgumentError("need exactly one blinding per value")
            gammas = list(blindings)
            for j, gamma in enumerate(gammas):
                if not 0 < gamma < q:
                    raise InvalidArgumentError(f"blinding {j} must be in [1, q)")
        mp = _padded(m)
        n = bits
        N = n * mp
        g_vec, h_vec = bp_generators(N)
        H = pedersen_h()

        commitments = [commit(v, gamma) for v, gamma in zip(values, gammas, strict=True)]
        encoded_v = [c.to_bytes() for c in commitments]
        t = _start_transcript(bits, encoded_v, context)

        # (R1) bit decomposition, padded with zero values: a_L in {0,1}^N, a_R = a_L - 1.
        a_L = [(v >> i) & 1 for v in values for i in range(n)] + [0] * (n * (mp - m))
        a_R = [x - 1 for x in a_L]
        alpha = draw()
        rho = draw()
        s_L = [draw() for _ in range(N)]
        s_R = [draw() for _ in range(N)]
        # (R1) A = alpha*H + <a_L, G> + <a_R, H>: the bits are 0/1, so additions suffice
        # (bit 1: +G_i, bit 0: -H_i).  S = rho*H + <s_L, G> + <s_R, H>.
        A = H.pt_mul(to_bn(alpha))
        for i in range(N):
            A = A + g_vec[i] if a_L[i] else A - h_vec[i]
        S = msm([rho, *s_L, *s_R], [H, *g_vec, *h_vec])
        t.append_point(b"A", A)  # (R7) A, S -> y, z
        t.append_point(b"S", S)
        y = t.challenge_scalar(b"y")
        z = t.challenge_scalar(b"z")

        # (R2) l(X) = (a_L - z) + s_L X;  r(X) = y^N o (a_R + z + s_R X) + zeta
        # with zeta_{jn+i} = z^(2+j) 2^i.
        y_pow = _powers(y, N)
        z_pows = _powers(z, mp + 3)
        two_pow = _powers(2, n)
        zeta = [z_pows[2 + j] * two_pow[i] % q for j in range(mp) for i in range(n)]
        l0 = [(x - z) % q for x in a_L]
        l1 = s_L
        r0 = [(y_pow[i] * (a_R[i] + z) + zeta[i]) % q for i in range(N)]
        r1 = [y_pow[i] * s_R[i] % q for i in range(N)]
        # (R2) t(X) = <l(X), r(X)> = t0 + t1 X + t2 X^2;  T1 = t1 G + tau1 H, T2 = t2 G + tau2 H.
        t1 = (_inner(l0, r1) + _inner(l1, r0)) % q
        t2 = _inner(l1, r1)
        tau1 = draw()
        tau2 = draw()
        T1 = commit(t1, tau1).point
        T2 = commit(t2, tau2).point
        t.append_point(b"T1", T1)  # (R7) T1, T2 -> x
        t.append_point(b"T2", T2)
        x = t.challenge_scalar(b"x")

        # (R3) l = l(x), r = r(x), t_hat = <l, r>,
        # tau_x = tau2 x^2 + tau1 x + sum_j z^(2+j) gamma_j, mu = alpha + rho x.
        l_vec = [(l0[i] + l1[i] * x) % q for i in range(N)]
        r_vec = [(r0[i] + r1[i] * x) % q for i in range(N)]
        t_hat = _inner(l_vec, r_vec)
        gammas_padded = gammas + [0] * (mp - m)
        tau_x = (tau2 * x * x + tau1 * x + sum(
            z_pows[2 + j] * gammas_padded[j] for j in range(mp))) % q
        mu = (alpha + rho * x) % q
        t.append_scalar(b"tau_x", tau_x)  # (R7) tau_x, mu, t_hat -> w
        t.append_scalar(b"mu", mu)
        t.append_scalar(b"t_hat", t_hat)
        w = t.challenge_scalar(b"w")

        # (R6) the inner product argument on P' = <l, G> + <r, H'> + t_hat Q, Q = w U.
        L, R, a_final, b_final = _ipa_prove(t, g_vec, h_vec, y, w, l_vec, r_vec)
        proof = cls(
            A=A, S=S, T1=T1, T2=T2, L=tuple(L), R=tuple(R),
            tau_x=tau_x, mu=mu, t_hat=t_hat, a=a_final, b=b_final,
        )
        proof = cls(**{**proof.__dict__, "_encoded": proof.to_bytes()})
        return RangeProofBundle(proof, commitments, gammas)

    # --- verification -----------------------------------------------------------

    def verify(self, commitments: Sequence[Commitment], bits: int, context: bytes = b"") -> None:
        """Check this proof against ``commitments`` (in order), ``bits`` and ``context``.

        One multi-scalar multiplication (B1). Raises
        :class:`~zkgrid.errors.VerificationError` if the proof is wrong.
        """
        RangeProof.verify_batch([RangeProofStatement(self, commitments, bits, context)])

    @staticmethod
    def verify_batch(statements: Sequence[RangeProofStatement]) -> None:
        """Check many proofs (any mix of n and m) in one weighted multi-scalar multiplication (B2).

        The O(N) scalar vectors are computed natively (B5) and the msm runs on
        the worker threads, both without the GIL.

        Raises :class:`~zkgrid.errors.VerificationError` if any proof is wrong;
        :meth:`find_invalid` then names which.
        """
        if not statements:
            return
        if not _batch_holds([_prepare(s) for s in statements]):
            if len(statements) == 1:
                raise VerificationError("range proof does not verify (B1)")
            raise VerificationError(f"batch of {len(statements)} range proofs does not verify (B2)")

    @staticmethod
    def find_invalid(statements: Sequence[RangeProofStatement]) -> list[int]:
        """Indices of the proofs that do not verify: one batch check (B2) when they all
        hold, bisection (B3) when not (:func:`zkp.batch.find_invalid`).

        Statements whose shape is wrong (unsupported bit width, a proof made
        for another number of values) are reported as invalid without a group
        operation.
        """
        return batch.find_invalid(statements, _prepare, _batch_holds, summer=_summer)


def _rounds_from_length(length: int) -> int:
    body = length - SCALAR_BYTES * _SCALARS
    if body <= 0 or body % POINT_BYTES:
        raise ProofFormatError(f"range proof: {length} bytes is not a valid proof length")
    n_points = body // POINT_BYTES
    rounds, odd = divmod(n_points - _FIXED_POINTS, 2)
    if odd or rounds < 3 or rounds > (64 * MAX_AGGREGATION).bit_length() - 1:
        raise ProofFormatError(f"range proof: {length} bytes is not a valid proof length")
    return rounds


# --- verification equation ------------------------------------------------------------


@dataclass
class _Prepared:
    """A statement with its transcript replayed: everything but the random weight.

    ``points`` (V_j..., A, S, T1, T2, L..., R...) is empty when the scalars are
    computed in a worker process, which never needs the points.
    """

    bits: int
    padded: int
    m: int
    tau_x: int
    mu: int
    t_hat: int
    a: int
    b: int
    y: int
    z: int
    x: int
    w: int
    u: list[int]
    points: list[Point]


def _check_rounds(bits: int, m: int, rounds: int) -> None:
    needed = (bits * _padded(m)).bit_length() - 1
    if rounds != needed:
        raise VerificationError(
            f"range proof has {rounds} rounds; {m} values of {bits} bits need {needed}"
        )


def _replay(
    bits: int,
    encoded_v: Sequence[bytes],
    context: bytes,
    point_encodings: Sequence[bytes],
    scalars: Sequence[int],
    points: list[Point],
) -> _Prepared:
    """Replay the Fiat-Shamir transcript (R7) from the encodings and the proof's scalars."""
    tau_x, mu, t_hat, a, b = scalars
    rounds = (len(point_encodings) - _FIXED_POINTS) // 2
    t = _start_transcript(bits, encoded_v, context)
    t.append(b"A", point_encodings[0])
    t.append(b"S", point_encodings[1])
    y = t.challenge_scalar(b"y")
    z = t.challenge_scalar(b"z")
    t.append(b"T1", point_encodings[2])
    t.append(b"T2", point_encodings[3])
    x = t.challenge_scalar(b"x")
    t.append_scalar(b"tau_x", tau_x)
    t.append_scalar(b"mu", mu)
    t.append_scalar(b"t_hat", t_hat)
    w = t.challenge_scalar(b"w")
    us = []
    for k in range(rounds):
        t.append(b"L", point_encodings[4 + 2 * k])
        t.append(b"R", point_encodings[5 + 2 * k])
        us.append(t.challenge_scalar(b"u"))
    m = len(encoded_v)
    return _Prepared(bits, _padded(m), m, tau_x, mu, t_hat, a, b, y, z, x, w, us, points)


def _prepare(s: RangeProofStatement) -> _Prepared:
    """Check the statement's shape and replay its transcript, in this process."""
    m = len(s.commitments)
    _check_shape(s.bits, m)
    proof = s.proof
    _check_rounds(s.bits, m, proof.rounds)
    points = [c.point for c in s.commitments]
    points += [proof.A, proof.S, proof.T1, proof.T2, *proof.L, *proof.R]
    return _replay(
        s.bits,
        [c.to_bytes() for c in s.commitments],
        s.context,
        proof._point_encodings(),
        [proof.tau_x, proof.mu, proof.t_hat, proof.a, proof.b],
        points,
    )


def _le(x: int) -> bytes:
    return int(x % q).to_bytes(SCALAR_BYTES, "little")


def _factors(values: Sequence[int]) -> bytes:
    return b"".join(_le(v) for v in values)


def _squarings(base: int, count: int) -> list[int]:
    """``base^(2^l)`` for ``l < count``."""
    out = []
    for _ in range(count):
        out.append(base)
        base = base * base % q
    return out


def _accumulate(
    p: _Prepared,
    weight: int,
    c: int,
    g_acc: ScalarVector,
    h_acc: ScalarVector,
    fixed: list[int],
    scalars: list[int],
    points: list[Point],
) -> None:
    """Add ``weight`` times the single-proof equation (B1) to the batch sums (B2).

    ``fixed`` accumulates the scalars of G, H and U; ``g_acc``/``h_acc`` those
    of the vector generators, as Kronecker products (B5) computed natively;
    the proof's own points go to ``points``.
    """
    n = p.bits
    N = n * p.padded
    rounds = len(p.u)
    y, z, x, w = p.y, p.z, p.x, p.w
    # c: (B1) c E_R + E_I combines (R4) and (R6)/(I3); random, non-zero, from the caller
    y_minus_1 = (y - 1) % q or 1  # y = 1 has probability 1/q; handled below
    us = p.u
    *u_invs, y_inv, y_minus_1_inv = _batch_invert([*us, y, y_minus_1])  # (B4)

    z2 = z * z % q
    z_pows = _powers(z, p.padded + 3)
    # (R5) delta(y, z) = (z - z^2) <1, y^N> - sum_j z^(3+j) <1, 2^n>, j over all m' blocks;
    # <1, y^N> = (y^N - 1)/(y - 1), or N if y = 1.
    y_sum = N if y == 1 else (pow(y, N, q) - 1) * y_minus_1_inv % q
    sum_2n = (1 << n) - 1
    delta = ((z - z2) * y_sum - sum_2n * sum(z_pows[3 + j] for j in range(p.padded))) % q

    # (B1) scalars of the shared generators, weighted (B2), as Kronecker products (B5):
    #   G_i: -z - a s_i
    #   H_i:  z + y^-i zeta_i - b y^-i s_(N-1-i)
    # (I4) s_i = prod_r u_r^-1 * prod_(bit l of i set) u_(k-l)^2      (u_r, r = 1..k)
    # (B5) y^-i zeta_i = z^2 prod_(bit l set) (2/y)^(2^l) for l < log2 n,
    #                                          (z/y^n)^(2^(l - log2 n)) above
    #      y^-i s_(N-1-i) = prod_r u_r * prod_(bit l set) y^(-2^l) u_(k-l)^-2
    log_n = n.bit_length() - 1
    prod_u_inv = 1
    prod_u = 1
    for u, u_inv in zip(us, u_invs, strict=True):
        prod_u_inv = prod_u_inv * u_inv % q
        prod_u = prod_u * u % q
    u_sq = [u * u % q for u in reversed(us)]  # level l uses u_(k-l)
    u_inv_sq = [u * u % q for u in reversed(u_invs)]
    y_inv_pow = _squarings(y_inv, rounds)  # y^(-2^l)
    zeta = _squarings(2 * y_inv % q, log_n) + _squarings(
        z * pow(y_inv, n, q) % q, rounds - log_n
    )
    wz = weight * z % q
    g_acc.add_constant(_le(-wz), N)
    g_acc.add_kronecker(_le(weight * p.a * prod_u_inv), _factors(u_sq), negate=True)
    h_acc.add_constant(_le(wz), N)
    h_acc.add_kronecker(_le(weight * z2), _factors(zeta))
    h_acc.add_kronecker(
        _le(weight * p.b * prod_u),
        _factors([yi * ui % q for yi, ui in zip(y_inv_pow, u_inv_sq, strict=True)]),
        negate=True,
    )
    # (B1) scalars of G, H (from R4 and R6) and U (from I3), weighted (B2):
    fixed[0] += weight * c % q * (p.t_hat - delta)  # G: c (t_hat - delta)
    fixed[1] += weight * (c * p.tau_x - p.mu)  # H: c tau_x - mu
    fixed[2] += weight * w % q * (p.t_hat - p.a * p.b)  # U: w (t_hat - ab)

    # (B1) scalars of the proof's own points; padded V_j = O are absent.
    wc = weight * c % q
    scalars += [-wc * z_pows[2 + j] for j in range(p.m)]  # V_j: -c z^(2+j)
    scalars += [weight, weight * x, -wc * x, -wc * x % q * x]  # A, S, T1, T2
    scalars += [weight * u % q * u for u in us]  # L_k: u_k^2
    scalars += [weight * ui % q * ui for ui in u_invs]  # R_k: u_k^-2
    points += p.points


def _batch_holds(prepared: Sequence[_Prepared]) -> bool:
    """Whether the weighted sum of the equations of ``prepared`` is the identity (B2), with
    fresh weights (1 for a single statement) and combiners (B1)."""
    weights = (
        [1] if len(prepared) == 1 else [secrets.randbelow(q - 1) + 1 for _ in prepared]
    )
    combiners = [secrets.randbelow(q - 1) + 1 for _ in prepared]
    return is_identity(_batch_sum(prepared, weights, combiners))


def _batch_sum(
    prepared: Sequence[_Prepared], weights: Sequence[int], combiners: Sequence[int]
) -> Point:
    """The weighted sum of the equations of ``prepared`` (B2): ``weights[p]`` times
    statement ``p``'s (B1) equation with ``c = combiners[p]`` (the identity when all hold)."""
    size = max(p.bits * p.padded for p in prepared)
    g_acc = ScalarVector(size)
    h_acc = ScalarVector(size)
    fixed = [0, 0, 0]
    scalars: list[int] = []
    points: list[Point] = []
    # The proofs' own points (V_j, A, S, T1, T2, L_k, R_k) go to the worker
    # threads in chunks while this thread computes the next proofs' scalars:
    # petlib and zkp._native release the GIL (docs/notes/batch-verification.md).
    pool = worker_pool()
    partial_sums: list[Future[Point]] = []
    for p, weight, c in zip(prepared, weights, combiners, strict=True):
        _accumulate(p, weight, c, g_acc, h_acc, fixed, scalars, points)
        if len(points) >= _PIPELINE_CHUNK:
            partial_sums.append(pool.submit(_serial_msm, scalars, points))
            scalars, points = [], []
    g_vec, h_vec = bp_generators(size)
    total = msm_sources(
        [[s % q for s in fixed], g_acc, h_acc, [s % q for s in scalars]],
        [G, pedersen_h(), ipa_u(), *g_vec, *h_vec, *points],
    )
    for part in partial_sums:
        total = total + part.result()
    return total


#: Points per chunk handed to a worker thread while scalars are still being computed.
_PIPELINE_CHUNK = 1024


def _summer(
    prepared: Sequence[_Prepared], combiners: Sequence[int]
) -> Callable[[Sequence[int]], Point]:
    """(B3') Weighted sums of the same statements and combiners under several weightings.

    The first sum keeps each statement's own-point part ``P_p = w_p O_p`` (its
    ``V_j, A, S, T1, T2, L_k, R_k`` term, linear in the weight); a later weighting
    ``w'`` reuses them as ``(w'_p / w_p) P_p`` (one scalar multiplication each) and
    pays only for the shared generators' msm: a second weighting costs about the
    ``2 N + 3`` generator points, not the whole batch again.
    """
    first: list[int] = []
    parts: list[Point] = []

    def weighted(weights: Sequence[int]) -> Point:
        if not parts:
            total, own = _split_sum(prepared, weights, combiners, own_parts=True)
            first.extend(weights)
            parts.extend(own)
            return total
        generators, _ = _split_sum(prepared, weights, combiners, own_parts=False)
        scaled = [
            mul(w2 * pow(w1, -1, q) % q, part)
            for w1, w2, part in zip(first, weights, parts, strict=True)
        ]
        total = generators
        for point in scaled:
            total = total + point
        return total

    return weighted


def _split_sum(
    prepared: Sequence[_Prepared],
    weights: Sequence[int],
    combiners: Sequence[int],
    *,
    own_parts: bool,
) -> tuple[Point, list[Point]]:
    """``own_parts``: the weighted sum (B2) and each statement's own-point part, computed
    one statement per worker-thread task; else the shared generators' part alone."""
    size = max(p.bits * p.padded for p in prepared)
    g_acc = ScalarVector(size)
    h_acc = ScalarVector(size)
    fixed = [0, 0, 0]
    pool = worker_pool()
    futures: list[Future[Point]] = []
    for p, weight, c in zip(prepared, weights, combiners, strict=True):
        scalars: list[int] = []
        points: list[Point] = []
        _accumulate(p, weight, c, g_acc, h_acc, fixed, scalars, points)
        if own_parts:
            futures.append(pool.submit(_serial_msm, [s % q for s in scalars], points))
    g_vec, h_vec = bp_generators(size)
    total = msm_sources(
        [[s % q for s in fixed], g_acc, h_acc], [G, pedersen_h(), ipa_u(), *g_vec, *h_vec]
    )
    own = [future.result() for future in futures]
    for point in own:
        total = total + point
    return total, own


def _serial_msm(scalars: Sequence[int], points: Sequence[Point]) -> Point:
    return msm(scalars, points)  # below PARALLEL_MSM_THRESHOLD: this thread only


__all__ = [
    "MAX_AGGREGATION",
    "SUPPORTED_BITS",
    "RangeProof",
    "RangeProofBundle",
    "RangeProofStatement",
    "identity",
    "proof_size",
]
