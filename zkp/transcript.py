"""The Fiat-Shamir transcript (Merlin-style, on SHAKE256).

One running SHAKE256 state absorbs framed messages; a challenge squeezes 64
bytes from a copy of the state and reduces them mod the order, so it is
uniform up to a statistical distance below 2^-250. The challenge is then
absorbed, so later challenges depend on it.

Framing (docs/notes/notation.md): every absorbed item is
``u32(len(label)) || label || u64(len(data)) || data`` (big-endian), so no two
different sequences of appends give the same byte stream.

Every transcript starts with a domain separator: the transcript format
(``zkgrid/transcript v1``), then the protocol's name, its version and its
public parameters (bit width, count, ...) in a fixed order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from zkgrid.errors import InvalidArgumentError
from zkp.group import ORDER, Point, Scalar, encode_point, encode_scalar

TRANSCRIPT_FORMAT = b"zkgrid/transcript v1"


def _frame(label: bytes, data: bytes) -> bytes:
    return len(label).to_bytes(4, "big") + label + len(data).to_bytes(8, "big") + data


class Transcript:
    """A Fiat-Shamir transcript for one proof.

    ``Transcript(b"zkgrid/bulletproofs/rangeproof", 1, [(b"n", 64), (b"m", 1)])`` starts the
    transcript of a version-1 range proof over one 64-bit value.
    """

    __slots__ = ("_state",)

    def __init__(
        self, protocol: bytes, version: int, params: Sequence[tuple[bytes, int]] = ()
    ) -> None:
        if version < 0:
            raise InvalidArgumentError("transcript version must be non-negative")
        self._state = hashlib.shake_256()
        self._state.update(_frame(b"format", TRANSCRIPT_FORMAT))
        self.append(b"protocol", protocol)
        self.append_u64(b"version", version)
        for label, value in params:
            self.append_u64(label, value)

    def append(self, label: bytes, data: bytes) -> None:
        """Absorb ``data`` under ``label``."""
        self._state.update(_frame(label, data))

    def append_u64(self, label: bytes, value: int) -> None:
        if not 0 <= value < 1 << 64:
            raise InvalidArgumentError("transcript integers must fit in 64 bits")
        self.append(label, value.to_bytes(8, "big"))

    def append_point(self, label: bytes, point: Point) -> None:
        self.append(label, encode_point(point))

    def append_points(self, label: bytes, points: Sequence[Point]) -> None:
        self.append_u64(label + b"/count", len(points))
        for point in points:
            self.append_point(label, point)

    def append_scalar(self, label: bytes, scalar: Scalar) -> None:
        self.append(label, encode_scalar(scalar))

    def challenge_scalar(self, label: bytes) -> Scalar:
        """A non-zero challenge, uniform mod the order, bound to all absorbed so far."""
        while True:
            squeeze = self._state.copy()
            squeeze.update(_frame(b"challenge", label))
            challenge = int.from_bytes(squeeze.digest(64), "big") % ORDER
            self.append(label, encode_scalar(challenge))
            if challenge != 0:
                return challenge
