"""The inner-product argument's prover and the scalar helpers its protocols share.

Used by the range proofs (:mod:`zkp.rangeproof`) and the circuit proofs
(:mod:`circuits.r1cs`), which both end in the same argument: on ``G`` and
``H'_i = y^-i H_i`` with ``Q = w*U`` (docs/notes/inner-product.md (I1)-(I5)).
"""

from __future__ import annotations

from collections.abc import Sequence

from zkp.generators import ipa_u
from zkp.group import ORDER, Point, Scalar, msm, to_bn, worker_pool
from zkp.transcript import Transcript

__all__ = ["batch_invert", "inner", "powers", "prove"]

q = ORDER


def inner(a: Sequence[int], b: Sequence[int]) -> int:
    """``<a, b> mod q``."""
    return sum(x * y for x, y in zip(a, b, strict=True)) % q


def powers(base: int, count: int) -> list[int]:
    """``[1, base, base^2, ..., base^(count-1)] mod q``."""
    out = [1] * count
    for i in range(1, count):
        out[i] = out[i - 1] * base % q
    return out


def batch_invert(values: Sequence[int]) -> list[int]:
    """Inverses mod q of non-zero ``values`` with one inversion (Montgomery's trick, B4)."""
    prefix = [1] * (len(values) + 1)
    for i, v in enumerate(values):
        prefix[i + 1] = prefix[i] * v % q
    inv = pow(prefix[-1], -1, q)
    out = [0] * len(values)
    for i in range(len(values) - 1, -1, -1):
        out[i] = inv * prefix[i] % q
        inv = inv * values[i] % q
    return out


def prove(
    t: Transcript,
    g_vec: Sequence[Point],
    h_vec: Sequence[Point],
    y: Scalar,
    w: Scalar,
    a: list[int],
    b: list[int],
) -> tuple[list[Point], list[Point], int, int]:
    """Inner product argument on G and H'_i = y^-i H_i, with Q = w*U (I1), (I2).

    Folding G' = u^-1 G_lo + u G_hi and H' = u H_lo + u^-1 H_hi (I2) costs one
    scalar multiplication per pair by keeping common factors aside (I5):
    G_i = g_scale * Gh_i and H'_i = h_scale * y^-i * Hh_i, so
    Gh'_i = Gh_lo_i + u^2 Gh_hi_i and Hh'_i = Hh_lo_i + (u^-2 y^-half) Hh_hi_i.
    The verifier's side is (I3)/(I4), inside (B1).
    """
    U = ipa_u()
    y_inv = pow(y, -1, q)
    y_inv_pow = powers(y_inv, len(a))
    gh = list(g_vec)
    hh = list(h_vec)
    g_scale = 1
    h_scale = 1
    L_out: list[Point] = []
    R_out: list[Point] = []
    pool = worker_pool()
    while len(a) > 1:
        half = len(a) // 2
        a_lo, a_hi = a[:half], a[half:]
        b_lo, b_hi = b[:half], b[half:]
        c_L = inner(a_lo, b_hi)
        c_R = inner(a_hi, b_lo)
        # (I1) L = <a_lo, G_hi> + <b_hi, H'_lo> + c_L Q;  R = <a_hi, G_lo> + <b_lo, H'_hi> + c_R Q
        # as msms over Gh, Hh, U (I5): G_i -> g_scale Gh_i, H'_i -> h_scale y^-i Hh_i.
        l_scalars = [g_scale * x % q for x in a_lo]
        l_scalars += [h_scale * y_inv_pow[i] * b_hi[i] % q for i in range(half)]
        l_scalars.append(w * c_L % q)
        r_scalars = [g_scale * x % q for x in a_hi]
        r_scalars += [h_scale * y_inv_pow[half + i] * b_lo[i] % q for i in range(half)]
        r_scalars.append(w * c_R % q)
        l_job = pool.submit(msm, l_scalars, [*gh[half:], *hh[:half], U])
        R_point = msm(r_scalars, [*gh[:half], *hh[half:], U])
        L_point = l_job.result()
        L_out.append(L_point)
        R_out.append(R_point)
        t.append_point(b"L", L_point)  # (R7) L, R -> u
        t.append_point(b"R", R_point)
        u = t.challenge_scalar(b"u")
        u_inv = pow(u, -1, q)
        # (I2) fold the witness: a' = u a_lo + u^-1 a_hi, b' = u^-1 b_lo + u b_hi.
        a = [(a_lo[i] * u + a_hi[i] * u_inv) % q for i in range(half)]
        b = [(b_lo[i] * u_inv + b_hi[i] * u) % q for i in range(half)]
        if half > 1:  # (I2) fold the bases, in the (I5) form; not needed after the last round
            g_factor = to_bn(u * u)
            h_factor = to_bn(u_inv * u_inv * y_inv_pow[half])
            g_job = pool.submit(_fold, gh[:half], gh[half:], g_factor)
            hh = _fold(hh[:half], hh[half:], h_factor)
            gh = g_job.result()
            g_scale = g_scale * u_inv % q
            h_scale = h_scale * u % q
    return L_out, R_out, a[0], b[0]


def _fold(lo: Sequence[Point], hi: Sequence[Point], factor: object) -> list[Point]:
    return [lo[i] + hi[i].pt_mul(factor) for i in range(len(lo))]  # type: ignore[arg-type]
