"""The group: NIST P-256 (secp256r1) through petlib, with canonical encodings.

Points are petlib ``EcPt`` values (alias :data:`Point`). Scalars are Python
``int`` values reduced mod :data:`ORDER` (alias :data:`Scalar`): Python integer
arithmetic is several times faster than petlib ``Bn`` for the vector algebra
of the provers and verifiers, so ``Bn`` appears only at the boundary, inside
:func:`msm` and :func:`mul`.

Encodings (docs/notes/notation.md):

* a point is its 33-byte compressed SEC1 encoding, ``0x02|0x03 || x`` (big-endian);
  the identity has no encoding and is never accepted;
* a scalar is 32 bytes big-endian and must be below :data:`ORDER`.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
import weakref
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeAlias

from petlib.bindings import _C, _FFI
from petlib.bn import Bn
from petlib.bn import get_ctx as _petlib_ctx
from petlib.ec import EcGroup, EcPt

from zkgrid.errors import InvalidArgumentError, ProofFormatError
from zkp._native import ScalarVector, fill_bignums_from_ints

#: OpenSSL's NID for prime256v1 / secp256r1 / NIST P-256.
P256_NID = 415

GROUP = EcGroup(P256_NID)

#: Field prime p of P-256.
FIELD_PRIME = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
#: Curve coefficient b of y^2 = x^3 - 3x + b.
CURVE_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
#: Group order q: the scalar field.
ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

POINT_BYTES = 33
SCALAR_BYTES = 32

Point: TypeAlias = EcPt
Scalar: TypeAlias = int

if int(GROUP.order()) != ORDER:  # pragma: no cover - guards a broken petlib/OpenSSL
    raise ImportError("petlib's group 415 is not NIST P-256")

#: The standard P-256 base point.
BASE_POINT: Point = GROUP.generator()

_HASH_TO_CURVE_DST = b"zkgrid/hash-to-curve/P-256 v1"


def identity() -> Point:
    """The point at infinity (never encodable)."""
    return GROUP.infinite()


def is_identity(point: Point) -> bool:
    """Whether ``point`` is the identity (one OpenSSL call; petlib's is_infinite
    builds and compares a second point)."""
    return bool(_C.EC_POINT_is_at_infinity(GROUP.ecg, point.pt))


def to_bn(x: Scalar) -> Bn:
    """Convert an ``int`` to petlib ``Bn`` after reducing mod the order."""
    return Bn.from_binary((x % ORDER).to_bytes(SCALAR_BYTES, "big"))


def mul(x: Scalar, point: Point) -> Point:
    """``x * point``."""
    return point.pt_mul(to_bn(x))


def random_scalar() -> Scalar:
    """A uniformly random non-zero scalar from the operating system's CSPRNG."""
    return 1 + secrets.randbelow(ORDER - 1)


# --- encodings ---------------------------------------------------------------


def encode_point(point: Point) -> bytes:
    """The 33-byte compressed SEC1 encoding; the identity has none."""
    if is_identity(point):
        raise InvalidArgumentError("the identity point has no 33-byte encoding")
    return point.export()


def decode_point(data: bytes, what: str = "point") -> Point:
    """Decode a 33-byte compressed point, rejecting everything non-canonical.

    Rejected: wrong length, a prefix other than 0x02/0x03, x >= p, an x with no
    point on the curve; the identity cannot be expressed in 33 bytes.
    """
    if len(data) != POINT_BYTES:
        raise ProofFormatError(f"{what}: expected {POINT_BYTES} bytes, got {len(data)}")
    if data[0] not in (2, 3):
        raise ProofFormatError(f"{what}: not a compressed point encoding")
    if int.from_bytes(data[1:], "big") >= FIELD_PRIME:
        raise ProofFormatError(f"{what}: x-coordinate is not below the field prime")
    try:
        # OpenSSL computes y = sqrt(x^3 - 3x + b) and fails when there is none.
        return EcPt.from_binary(bytes(data), GROUP)
    except Exception as exc:  # petlib raises a bare Exception("EC exception")
        raise ProofFormatError(f"{what}: not on the curve") from exc


def encode_scalar(x: Scalar) -> bytes:
    """32 bytes big-endian of ``x mod ORDER``."""
    return (x % ORDER).to_bytes(SCALAR_BYTES, "big")


def decode_scalar(data: bytes, what: str = "scalar") -> Scalar:
    """Decode 32 big-endian bytes, rejecting values >= the group order."""
    if len(data) != SCALAR_BYTES:
        raise ProofFormatError(f"{what}: expected {SCALAR_BYTES} bytes, got {len(data)}")
    x = int.from_bytes(data, "big")
    if x >= ORDER:
        raise ProofFormatError(f"{what}: not below the group order")
    return x


_P_BN = Bn.from_binary(FIELD_PRIME.to_bytes(SCALAR_BYTES, "big"))
_EULER_EXPONENT = Bn.from_binary(((FIELD_PRIME - 1) // 2).to_bytes(SCALAR_BYTES, "big"))


def _is_nonzero_square(v: int) -> bool:
    """Euler's criterion in GF(p) (petlib's mod_pow: ~6x faster than ``pow``)."""
    if v == 0:
        return False
    power = Bn.from_binary(v.to_bytes(SCALAR_BYTES, "big")).mod_pow(_EULER_EXPONENT, _P_BN)
    return int(power) == 1


# --- hashing to the curve ---------------------------------------------------------


def hash_to_point(label: bytes) -> Point:
    """A point nobody knows the discrete log of, from a public label.

    Try-and-increment, re-derivable with any P-256 library::

        for ctr = 0, 1, 2, ...:
            x = int(SHA-256(DST || u32(len(label)) || label || u32(ctr)))
            if x < p and x^3 - 3x + b is a non-zero square mod p:
                return the point with x-coordinate x and even y (prefix 0x02)

    with ``DST = b"zkgrid/hash-to-curve/P-256 v1"`` and u32 big-endian.
    """
    prefix = _HASH_TO_CURVE_DST + len(label).to_bytes(4, "big") + label
    for ctr in range(1 << 16):
        digest = hashlib.sha256(prefix + ctr.to_bytes(4, "big")).digest()
        x = int.from_bytes(digest, "big")
        if x >= FIELD_PRIME:
            continue
        rhs = (x * x * x - 3 * x + CURVE_B) % FIELD_PRIME
        if _is_nonzero_square(rhs):
            return EcPt.from_binary(b"\x02" + digest, GROUP)
    raise RuntimeError("hash_to_point: no point found")  # pragma: no cover - probability 2^-65536


# --- multi-scalar multiplication ----------------------------------------------------

#: Below this many points one thread is faster than splitting the work.
PARALLEL_MSM_THRESHOLD = 4096

_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def worker_pool() -> ThreadPoolExecutor:
    """The shared pool (one thread per core) for GIL-free petlib work."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=max(1, os.cpu_count() or 1), thread_name_prefix="zkp"
            )
        return _pool


ScalarSource: TypeAlias = "ScalarVector | list[int]"

#: OpenSSL's ``BIGNUM *BN_bin2bn(const unsigned char *, int, BIGNUM *)`` as petlib loaded it.
_BN_BIN2BN = int(_FFI.cast("uintptr_t", _FFI.addressof(_C, "BN_bin2bn")))


class _BignumArray:
    """A cffi array of allocated OpenSSL BIGNUMs, freed with this object."""

    def __init__(self, capacity: int, reuse: _BignumArray | None = None) -> None:
        self.capacity = capacity
        self.array = _FFI.new("BIGNUM *[]", capacity)
        kept = 0
        if reuse is not None:  # take over its BIGNUMs instead of allocating them again
            kept = reuse.capacity
            for i in range(kept):
                self.array[i] = reuse.array[i]
                reuse.array[i] = _FFI.NULL
        for i in range(kept, capacity):
            self.array[i] = _C.BN_new()
            if self.array[i] == _FFI.NULL:  # pragma: no cover - out of memory
                raise MemoryError("BN_new failed")
        weakref.finalize(self, _free_bignums, self.array, capacity)


def _free_bignums(array: Any, count: int) -> None:
    for i in range(count):
        if array[i] != _FFI.NULL:
            _C.BN_clear_free(array[i])


class _Bignums(threading.local):
    """Per thread, a growing :class:`_BignumArray` reused by every msm on the thread
    (one petlib ``Bn`` object per scalar costs ~2 us of Python)."""

    def __init__(self) -> None:
        self.current: _BignumArray | None = None

    def get(self, n: int) -> Any:
        current = self.current
        if current is None or n > current.capacity:
            capacity = max(n, 2 * current.capacity if current else 0, 1024)
            current = self.current = _BignumArray(capacity, current)
        return current.array


_bignums = _Bignums()


def _bn_ctx() -> Any:
    return _petlib_ctx().bnctx


def _address(pointer: Any) -> int:
    return int(_FFI.cast("uintptr_t", pointer))


def _wsum(count: int, points: Any, bignums: Any) -> Point:
    """One ``EC_POINTs_mul`` over ``count`` entries of two cffi arrays (no GIL inside)."""
    result = EcPt(GROUP)
    ok = _C.EC_POINTs_mul(GROUP.ecg, result.pt, _FFI.NULL, count, points, bignums,
                          _bn_ctx())  # fmt: skip
    if ok != 1:  # pragma: no cover - OpenSSL failure (memory)
        raise MemoryError("EC_POINTs_mul failed")
    return result


def msm(scalars: Sequence[Scalar], points: Sequence[Point]) -> Point:
    """``sum(s_i * P_i)`` as one multi-scalar multiplication (OpenSSL ``EC_POINTs_mul``).

    Any ``int`` scalars (reduced here). Large inputs are split across the cores.
    """
    if len(scalars) != len(points):
        raise InvalidArgumentError("msm: scalars and points differ in length")
    return msm_sources([[s % ORDER for s in scalars]], points)


def msm_sources(sources: Sequence[ScalarSource], points: Sequence[Point]) -> Point:
    """:func:`msm` with the scalars given as consecutive pieces: native
    :class:`~zkp._native.ScalarVector` accumulators and lists of ints in ``[0, q)``.

    The scalars go straight into reused OpenSSL BIGNUMs (``zkp._native``) and the
    points into one cffi array; any msm of at least :data:`PARALLEL_MSM_THRESHOLD`
    points is split into one contiguous chunk per core on the worker pool
    (``EC_POINTs_mul`` releases the GIL).
    """
    count = sum(len(src) for src in sources)
    if count != len(points):
        raise InvalidArgumentError("msm: scalars and points differ in length")
    if not points:
        return identity()
    bignums = _bignums.get(count)
    offset = 0
    for src in sources:
        target = _address(bignums + offset)
        if isinstance(src, list):
            fill_bignums_from_ints(_BN_BIN2BN, target, src)
        else:
            src.fill_bignums(_BN_BIN2BN, target)
        offset += len(src)
    point_array = _FFI.new("EC_POINT *[]", [p.pt for p in points])
    workers = max(1, os.cpu_count() or 1)
    if count < PARALLEL_MSM_THRESHOLD or workers == 1:
        return _wsum(count, point_array, bignums)
    step = -(-count // workers)
    parts = [
        worker_pool().submit(_wsum, min(step, count - i), point_array + i, bignums + i)
        for i in range(0, count, step)
    ]
    total = identity()
    for part in parts:
        total = total + part.result()
    return total


def decode_points(blobs: Sequence[bytes], what: str = "point") -> list[Point]:
    """Decode many points, on all cores when there are many."""
    if len(blobs) < 512:
        return [decode_point(b, what) for b in blobs]
    workers = max(1, os.cpu_count() or 1)
    step = -(-len(blobs) // workers)
    chunks = [blobs[i : i + step] for i in range(0, len(blobs), step)]
    results = worker_pool().map(lambda chunk: [decode_point(b, what) for b in chunk], chunks)
    return [p for chunk in results for p in chunk]
