"""The generator cache (notation.md, "Generator cache"): pinned blocks, checked on load,
a bad cache is derived around and repaired, never trusted."""

from __future__ import annotations

from pathlib import Path

import pytest

from zkp import generators
from zkp.generators import BLOCK_PAIRS, PINNED_BLOCK_DIGESTS, block_digest, bp_label
from zkp.group import Point, hash_to_point

CACHE_FILE = "generators-v1.bin"


def _derive_block(index: int) -> tuple[list[Point], list[Point]]:
    span = range(index * BLOCK_PAIRS, (index + 1) * BLOCK_PAIRS)
    return [hash_to_point(bp_label("G", i)) for i in span], [
        hash_to_point(bp_label("H", i)) for i in span
    ]


@pytest.fixture(scope="module")
def block0() -> tuple[list[Point], list[Point]]:
    return _derive_block(0)


@pytest.mark.parametrize("index", [0, 7, 15, 64, len(PINNED_BLOCK_DIGESTS) - 1])
def test_pins_are_the_digests_of_the_derived_blocks(
    index: int, block0: tuple[list[Point], list[Point]]
) -> None:
    g, h = block0 if index == 0 else _derive_block(index)
    assert block_digest(index, generators._encode_block(g, h)) == PINNED_BLOCK_DIGESTS[index]


def test_pinned_blocks_cover_circuits_of_2_to_the_17_gates() -> None:
    # 64-bit range proofs of 256 values need 16 blocks; a 31-day demand-charge bill
    # (2,976 intervals of 15 minutes, 32-bit differences) pads to 2^17 gates.
    assert len(PINNED_BLOCK_DIGESTS) * BLOCK_PAIRS == 1 << 17
    assert len(set(PINNED_BLOCK_DIGESTS)) == len(PINNED_BLOCK_DIGESTS)


class Derivations:
    """``hash_to_point`` as seen by zkp.generators: real points (precomputed for block 0),
    counted, so a test knows whether the cache was used."""

    def __init__(self, block0: tuple[list[Point], list[Point]]) -> None:
        self.calls = 0
        self._known = {bp_label("G", i): p for i, p in enumerate(block0[0])}
        self._known |= {bp_label("H", i): p for i, p in enumerate(block0[1])}

    def __call__(self, label: bytes) -> Point:
        self.calls += 1
        return self._known[label] if label in self._known else hash_to_point(label)


@pytest.fixture
def derivations(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, block0: tuple[list[Point], list[Point]]
) -> Derivations:
    monkeypatch.setenv(generators.CACHE_ENV, str(tmp_path / "cache"))
    counter = Derivations(block0)
    monkeypatch.setattr(generators, "hash_to_point", counter)
    return counter


def _fresh(count: int) -> tuple[list[Point], list[Point]]:
    """A new process's view: an empty in-memory cache."""
    return generators._VectorGenerators().get(count)


def test_cold_start_derives_and_writes_a_warm_start_loads(
    derivations: Derivations, tmp_path: Path, block0: tuple[list[Point], list[Point]]
) -> None:
    assert _fresh(BLOCK_PAIRS) == block0
    assert derivations.calls == 2 * BLOCK_PAIRS
    path = tmp_path / "cache" / CACHE_FILE
    assert path.stat().st_size == len(generators._MAGIC) + generators._BLOCK_BYTES
    derivations.calls = 0
    assert _fresh(BLOCK_PAIRS) == block0
    assert _fresh(10) == (block0[0][:10], block0[1][:10])
    assert derivations.calls == 0  # loaded, not derived


def test_a_partial_block_is_derived_and_not_written(
    derivations: Derivations, tmp_path: Path, block0: tuple[list[Point], list[Point]]
) -> None:
    assert _fresh(10) == (block0[0][:10], block0[1][:10])
    assert derivations.calls == 20
    assert not (tmp_path / "cache" / CACHE_FILE).exists()


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[:-1],  # truncated
        lambda data: data[:100] + bytes([data[100] ^ 1]) + data[101:],  # one bit in G_0
        lambda data: b"another cache format\n" + data[len(generators._MAGIC) :],
        lambda data: data[: len(generators._MAGIC)] + bytes(generators._BLOCK_BYTES),
    ],
)
def test_a_bad_cache_is_never_trusted_and_is_repaired(
    derivations: Derivations,
    tmp_path: Path,
    block0: tuple[list[Point], list[Point]],
    damage: object,
) -> None:
    _fresh(BLOCK_PAIRS)
    path = tmp_path / "cache" / CACHE_FILE
    good = path.read_bytes()
    path.write_bytes(damage(good))  # type: ignore[operator]
    derivations.calls = 0
    assert _fresh(BLOCK_PAIRS) == block0  # the right generators, derived
    assert derivations.calls == 2 * BLOCK_PAIRS
    assert path.read_bytes() == good  # rewritten from the derived points


def test_a_forged_block_with_a_consistent_self_hash_is_refused(
    derivations: Derivations, tmp_path: Path, block0: tuple[list[Point], list[Point]]
) -> None:
    """The check is the pin in the code, not anything the file says about itself."""
    g, h = block0
    forged = generators._encode_block([h[0], *g[1:]], [g[0], *h[1:]])  # G_0 and H_0 swapped
    path = tmp_path / "cache" / CACHE_FILE
    path.parent.mkdir(parents=True)
    path.write_bytes(generators._MAGIC + forged)
    assert _fresh(BLOCK_PAIRS) == block0
    assert derivations.calls == 2 * BLOCK_PAIRS


def test_later_valid_blocks_survive_a_repair(
    derivations: Derivations, tmp_path: Path, block0: tuple[list[Point], list[Point]]
) -> None:
    path = tmp_path / "cache" / CACHE_FILE
    path.parent.mkdir(parents=True)
    second = generators._encode_block(*_derive_block(1))
    path.write_bytes(generators._MAGIC + bytes(generators._BLOCK_BYTES) + second)
    assert _fresh(BLOCK_PAIRS) == block0  # block 0 is bad: derived
    assert path.read_bytes() == generators._MAGIC + generators._encode_block(*block0) + second
    derivations.calls = 0
    g, h = _fresh(2 * BLOCK_PAIRS)
    assert derivations.calls == 0
    assert generators._encode_block(g[BLOCK_PAIRS:], h[BLOCK_PAIRS:]) == second


def test_no_cache_directory_means_no_disk_cache(
    monkeypatch: pytest.MonkeyPatch, derivations: Derivations, tmp_path: Path
) -> None:
    monkeypatch.setenv(generators.CACHE_ENV, "")
    assert generators.cache_dir() is None
    _fresh(BLOCK_PAIRS)
    assert not (tmp_path / "cache").exists()


def test_an_unwritable_cache_directory_is_not_an_error(
    monkeypatch: pytest.MonkeyPatch, derivations: Derivations, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    monkeypatch.setenv(generators.CACHE_ENV, str(blocker / "cache"))
    assert len(_fresh(BLOCK_PAIRS)[0]) == BLOCK_PAIRS
    assert derivations.calls == 2 * BLOCK_PAIRS


def test_default_cache_directory_is_the_users_not_the_repository(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(generators.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    directory = generators.cache_dir()
    assert directory is not None
    repository = Path(generators.__file__).resolve().parents[1]
    assert repository not in directory.resolve().parents
    if directory.parent == tmp_path / "xdg":  # Linux and the other XDG platforms
        assert directory == tmp_path / "xdg" / "zkgrid"
