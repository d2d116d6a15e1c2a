"""A seeded scalar generator for reproducible test vectors only.

Never use it for real proofs: anyone who knows the seed learns every nonce and
blinding, and with them the committed values. Real proving draws from
:func:`zkp.group.random_scalar` (the operating system's CSPRNG).
"""

from __future__ import annotations

import hashlib

from zkp.group import ORDER, Scalar


class SeededScalars:
    """Callable returning the i-th non-zero scalar of SHAKE256(seed || u64(i))."""

    __slots__ = ("_counter", "_seed")

    def __init__(self, seed: bytes) -> None:
        self._seed = b"zkgrid/test-drbg v1" + len(seed).to_bytes(4, "big") + seed
        self._counter = 0

    def __call__(self) -> Scalar:
        while True:
            block = hashlib.shake_256(self._seed + self._counter.to_bytes(8, "big")).digest(64)
            self._counter += 1
            value = int.from_bytes(block, "big") % ORDER
            if value:
                return value
