"""Nothing-up-my-sleeve generators, derived once and cached.

Every generator except the P-256 base point is :func:`zkp.group.hash_to_point`
of a versioned, labelled string (docs/notes/notation.md lists them):

* ``G``: the P-256 base point (values are committed on it);
* ``H = hash_to_point(b"zkgrid/pedersen/H v1")`` (blindings);
* ``U = hash_to_point(b"zkgrid/bulletproofs/U v1")`` (inner-product term);
* ``G_i = hash_to_point(b"zkgrid/bulletproofs/G/" + str(i) + b" v1")``,
  ``H_i = hash_to_point(b"zkgrid/bulletproofs/H/" + str(i) + b" v1")`` for i = 0, 1, ...

Deriving the 8,192 pairs of a 192-value 32-bit proof costs about 3.7 s of CPU, so
the vector generators are cached twice (notation.md, "Generator cache"):

* per process: a pair is derived (or loaded) at most once;
* on disk, in blocks of :data:`BLOCK_PAIRS` pairs, in the user's cache directory
  (:func:`cache_dir`), so a new process (a ``spawn`` worker of the auditor or the
  service, every CLI call) loads them instead of deriving them. A block is used
  only when its SHA-256 equals the digest pinned in this module
  (:data:`PINNED_BLOCK_DIGESTS`, which ``tests/unit/zkp/test_generators.py``
  re-derives); a missing, truncated, altered or foreign cache is ignored (the
  pairs are derived) and rewritten, and only blocks matching their pin are ever
  written. The cache can therefore never change a generator.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import sys
import threading
from functools import cache
from pathlib import Path

from petlib.ec import EcPt

from zkp.group import BASE_POINT, GROUP, Point, hash_to_point

__all__ = [
    "BLOCK_PAIRS",
    "CACHE_ENV",
    "PINNED_BLOCK_DIGESTS",
    "G",
    "block_digest",
    "bp_generators",
    "bp_label",
    "cache_dir",
    "ipa_u",
    "pedersen_h",
]

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


# --------------------------------------------------------------------------- the disk cache

#: Generator pairs (G_i, H_i) per cached block.
BLOCK_PAIRS = 1024
#: Environment variable naming the cache directory; set to "" to disable the disk cache.
CACHE_ENV = "ZKGRID_CACHE_DIR"
_UNCOMPRESSED = 4  # SEC1 0x04 || x || y: decoding needs no square root (8x faster)
_POINT_BYTES = 65
_BLOCK_BYTES = BLOCK_PAIRS * 2 * _POINT_BYTES
_MAGIC = b"zkgrid generator cache v1\n"
_DOMAIN = b"zkgrid/generator-cache v1"
_FILE = "generators-v1.bin"

#: SHA-256 of each block (``block_digest``) as derived from the labels above: pairs
#: [1024*j, 1024*(j+1)) for block j, up to 16,384 pairs (64-bit proofs of 256 values).
PINNED_BLOCK_DIGESTS: tuple[str, ...] = (
    'a316ad645c169ff4ecc571ceb2fea668b06d6fa7ad66ed1b33b5ff8551b41de8',
    'a8ef07244d6c42a6228e1b6284f47f3fb5297e578ef1a6633d76fc18a593ecb2',
    'db8b62d64e0e1de96254fe78f96d98109453e7823ab8d15b0b8971c2ef61f46b',
    '1104afdd902cdd4fe86eaae8a808f456b48c12b677508b31f6e0f93ad683d358',
    '82fcde06d32beadff26a95dded75b8d987fe85a73204de535d0c7996e09e61e1',
    'd038a31e357891412826d711190b517f95794baac7fc7bfb27ef8c5499d7b0a1',
    'eadc09e6d6c0d8a665b0e36c640aaa7d45712c848e47ddb4da5fea291c9413ff',
    '259d2de046c44ec2079705faee3f0f46a73a7e3018dcd959730ad3c37d6fdd67',
    '1deffc6a104119310336c95fa7ea0538b18767482c114ebdc69ef9a25e6261b9',
    '70e8e156a31d94653c40293b87c2bf7d4563446313c854576cbb8be1dc83c8a9',
    '2f40f31f2c3c6bba0436f0df0bc22cc8e4f080ea7e0207018fe15568295318fc',
    '18e4bf09cd17159dd52176996bde8e9654ce1cc7eba550ee0dcbd92ff85515c0',
    '50993bc8ad273762b7da4b656165733032f8eaf6016edb55ba7f040b4e0387b0',
    '1274c7b21d69870a3780e9eaea1d149ba66d2902a5771d9cfcf52f24b87632c7',
    'd68b7536cb713e44394fb01958f6ee3094b9be499194985d4cb68d8a1555df80',
    '3c0689052328098a1f9787ee06d2fe0eaf46bcbb9312575c5b1f9601ad28d442',
)


def block_digest(index: int, data: bytes) -> str:
    """``SHA-256(b"zkgrid/generator-cache v1" || u32(index) || data)`` in hex, where
    ``data`` is ``enc(G_i) || enc(H_i)`` for the block's pairs, uncompressed SEC1."""
    return hashlib.sha256(_DOMAIN + index.to_bytes(4, "big") + data).hexdigest()


def cache_dir() -> Path | None:
    """The generator cache's directory: ``$ZKGRID_CACHE_DIR`` if set (empty: no disk
    cache), else the platform's user cache directory + ``zkgrid`` (``$XDG_CACHE_HOME``
    or ``~/.cache`` on Linux, ``~/Library/Caches`` on macOS, ``%LOCALAPPDATA%`` on
    Windows). ``None`` when there is none."""
    configured = os.environ.get(CACHE_ENV)
    if configured is not None:
        return Path(configured).expanduser() if configured else None
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA")
        return Path(base) / "zkgrid" / "Cache" if base else None
    try:
        home = Path.home()
    except RuntimeError:
        return None
    if sys.platform == "darwin":
        return home / "Library" / "Caches" / "zkgrid"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg and os.path.isabs(xdg) else home / ".cache") / "zkgrid"


def _encode_block(g: list[Point], h: list[Point]) -> bytes:
    pairs = zip(g, h, strict=True)
    return b"".join(gi.export(_UNCOMPRESSED) + hi.export(_UNCOMPRESSED) for gi, hi in pairs)


def _read_block(index: int) -> tuple[list[Point], list[Point]] | None:
    """Block ``index`` from the disk cache if it is there and matches its pin, else ``None``."""
    directory = cache_dir()
    if directory is None or index >= len(PINNED_BLOCK_DIGESTS):
        return None
    try:
        with open(directory / _FILE, "rb") as f:
            if f.read(len(_MAGIC)) != _MAGIC:
                return None
            f.seek(len(_MAGIC) + index * _BLOCK_BYTES)
            data = f.read(_BLOCK_BYTES)
    except OSError:
        return None
    if len(data) != _BLOCK_BYTES or block_digest(index, data) != PINNED_BLOCK_DIGESTS[index]:
        return None
    points = [
        EcPt.from_binary(data[i : i + _POINT_BYTES], GROUP)
        for i in range(0, _BLOCK_BYTES, _POINT_BYTES)
    ]
    return points[0::2], points[1::2]


def _write_blocks(g: list[Point], h: list[Point]) -> None:
    """Replace the cache file with the pinned blocks covered by ``g``/``h``, followed by
    the old file's later blocks that match their pins (atomic rename; any failure leaves
    the cache as it was: it is only an optimisation)."""
    directory = cache_dir()
    blocks = min(len(g) // BLOCK_PAIRS, len(PINNED_BLOCK_DIGESTS))
    if directory is None or blocks == 0:
        return
    parts = [_MAGIC]
    for j in range(blocks):
        span = slice(j * BLOCK_PAIRS, (j + 1) * BLOCK_PAIRS)
        data = _encode_block(g[span], h[span])
        if block_digest(j, data) != PINNED_BLOCK_DIGESTS[j]:  # pragma: no cover - a wrong pin
            return
        parts.append(data)
    parts += _valid_blocks_from(blocks)
    temporary = directory / f".{_FILE}.{secrets.token_hex(8)}"
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        with open(temporary, "xb") as f:
            f.write(b"".join(parts))
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, directory / _FILE)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink()


def _valid_blocks_from(first: int) -> list[bytes]:
    """The cache file's blocks ``first, first + 1, ...`` up to the first that fails its pin."""
    directory = cache_dir()
    out: list[bytes] = []
    if directory is None:
        return out
    try:
        with open(directory / _FILE, "rb") as f:
            if f.read(len(_MAGIC)) != _MAGIC:
                return out
            f.seek(len(_MAGIC) + first * _BLOCK_BYTES)
            for j in range(first, len(PINNED_BLOCK_DIGESTS)):
                data = f.read(_BLOCK_BYTES)
                if len(data) != _BLOCK_BYTES or block_digest(j, data) != PINNED_BLOCK_DIGESTS[j]:
                    break
                out.append(data)
    except OSError:
        pass
    return out


class _VectorGenerators:
    """Grows the cached lists of ``G_i``/``H_i`` on demand; thread-safe.

    Whole blocks come from the disk cache when it holds them (checked against their
    pins); everything else is derived, and whole pinned blocks derived here are
    written back.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._g: list[Point] = []
        self._h: list[Point] = []

    def get(self, count: int) -> tuple[list[Point], list[Point]]:
        if len(self._g) < count:
            with self._lock:
                self._grow(count)
        return self._g[:count], self._h[:count]

    def _grow(self, count: int) -> None:
        derived_blocks = False
        while len(self._g) < count:
            start = len(self._g)
            block = start // BLOCK_PAIRS
            if start % BLOCK_PAIRS == 0:
                loaded = _read_block(block)
                if loaded is not None:
                    self._g += loaded[0]
                    self._h += loaded[1]
                    continue
            end = min(count, (block + 1) * BLOCK_PAIRS)
            for i in range(start, end):
                self._g.append(hash_to_point(bp_label("G", i)))
                self._h.append(hash_to_point(bp_label("H", i)))
            derived_blocks |= end % BLOCK_PAIRS == 0 and block < len(PINNED_BLOCK_DIGESTS)
        if derived_blocks:  # the cache lacked a pinned block (or held a bad one): fill it
            _write_blocks(self._g, self._h)


_vectors = _VectorGenerators()


def bp_generators(count: int) -> tuple[list[Point], list[Point]]:
    """The first ``count`` of ``G_i`` and ``H_i``."""
    return _vectors.get(count)
