"""Nothing-up-my-sleeve generators, derived once and cached.

Every generator except the P-256 base point is :func:`zkp.group.hash_to_point`
of a versioned, labelled string (docs/notes/notation.md lists them):

* ``G``: the P-256 base point (values are committed on it);
* ``H = hash_to_point(b"zkgrid/pedersen/H v1")`` (blindings);
* ``U = hash_to_point(b"zkgrid/bulletproofs/U v1")`` (inner-product term);
* ``G_i = hash_to_point(b"zkgrid/bulletproofs/G/" + str(i) + b" v1")``,
  ``H_i = hash_to_point(b"zkgrid/bulletproofs/H/" + str(i) + b" v1")`` for i = 0, 1, ...
"""

from __future__ import annotations

import threading
from functools import cache

from zkp.group import BASE_POINT, Point, hash_to_point

G: Point = BASE_POINT


@cache
def pedersen_h() -> Point:
    """``H``: the blinding generator of every Pedersen commitment."""
    return hash_to_point(b"zkgrid/pedersen/H v1")


@cache
def ipa_u() -> Point:
    """``U``: the generator carrying <a, b> in the inner product argument."""
    return hash_to_point(b"zkgrid/bulletproofs/U v1")


def bp_label(kind: str, index: int) -> bytes:
    """The label of the index-th Bulletproofs vector generator (kind "G" or "H")."""
    return b"zkgrid/bulletproofs/%s/%d v1" % (kind.encode(), index)


class _VectorGenerators:
    """Grows the cached lists of ``G_i``/``H_i`` on demand; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._g: list[Point] = []
        self._h: list[Point] = []

    def get(self, count: int) -> tuple[list[Point], list[Point]]:
        if len(self._g) < count:
            with self._lock:
                for i in range(len(self._g), count):
                    self._g.append(hash_to_point(bp_label("G", i)))
                    self._h.append(hash_to_point(bp_label("H", i)))
        return self._g[:count], self._h[:count]


_vectors = _VectorGenerators()


def bp_generators(count: int) -> tuple[list[Point], list[Point]]:
    """The first ``count`` of ``G_i`` and ``H_i``."""
    return _vectors.get(count)
