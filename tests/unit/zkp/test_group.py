"""zkp.group: encodings, hash-to-curve and multi-scalar multiplication."""

from __future__ import annotations

import hashlib
import os
import secrets
from concurrent.futures import ThreadPoolExecutor

import pytest

from zkgrid.errors import InvalidArgumentError, ProofFormatError
from zkp import generators, group
from zkp.group import (
    BASE_POINT,
    CURVE_B,
    FIELD_PRIME,
    ORDER,
    PARALLEL_MSM_THRESHOLD,
    Point,
    decode_point,
    decode_points,
    decode_scalar,
    encode_point,
    encode_scalar,
    hash_to_point,
    identity,
    msm,
    mul,
    random_scalar,
)

P = FIELD_PRIME


def _rhs(x: int) -> int:
    return (x * x * x - 3 * x + CURVE_B) % P


def _is_square(v: int) -> bool:
    return v != 0 and pow(v, (P - 1) // 2, P) == 1


def _affine(point: Point) -> tuple[int, int]:
    x, y = point.get_affine()
    return int(x), int(y)


def _x_without_point() -> int:
    x = 1
    while _is_square(_rhs(x)):
        x += 1
    return x


# --- point encoding -------------------------------------------------------------------


def test_point_round_trip_both_parities() -> None:
    prefixes = set()
    for _ in range(16):
        point = mul(random_scalar(), BASE_POINT)
        data = encode_point(point)
        assert len(data) == 33
        prefixes.add(data[0])
        assert decode_point(data) == point
        assert encode_point(decode_point(data)) == data
    assert prefixes == {2, 3}


def test_base_point_encoding_is_the_standard_one() -> None:
    gx = 0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296
    assert encode_point(BASE_POINT) == b"\x03" + gx.to_bytes(32, "big")


def test_identity_has_no_encoding() -> None:
    with pytest.raises(InvalidArgumentError):
        encode_point(identity())


@pytest.mark.parametrize("length", [0, 1, 32, 34, 65])
def test_decode_point_rejects_wrong_length(length: int) -> None:
    good = encode_point(mul(random_scalar(), BASE_POINT))
    data = (good * 3)[:length]
    with pytest.raises(ProofFormatError):
        decode_point(data)


def test_decode_point_rejects_trailing_byte() -> None:
    good = encode_point(mul(random_scalar(), BASE_POINT))
    with pytest.raises(ProofFormatError):
        decode_point(good + b"\x00")


def test_decode_point_rejects_uncompressed_encoding() -> None:
    point = mul(random_scalar(), BASE_POINT)
    x, y = _affine(point)
    with pytest.raises(ProofFormatError):
        decode_point(b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big"))


@pytest.mark.parametrize("prefix", [0x00, 0x01, 0x04, 0x05, 0x06, 0x07, 0xFF])
def test_decode_point_rejects_bad_prefix(prefix: int) -> None:
    good = encode_point(mul(random_scalar(), BASE_POINT))
    with pytest.raises(ProofFormatError):
        decode_point(bytes([prefix]) + good[1:])


def test_decode_point_rejects_all_zero_bytes() -> None:
    with pytest.raises(ProofFormatError):
        decode_point(bytes(33))


@pytest.mark.parametrize("x", [P, P + 1, P + 3, (1 << 256) - 1])
def test_decode_point_rejects_x_not_below_p(x: int) -> None:
    # x - p may well be a valid x-coordinate: the encoding is still not canonical.
    for prefix in (b"\x02", b"\x03"):
        with pytest.raises(ProofFormatError):
            decode_point(prefix + x.to_bytes(32, "big"))


def test_decode_point_rejects_x_without_curve_point() -> None:
    x = _x_without_point()
    for prefix in (b"\x02", b"\x03"):
        with pytest.raises(ProofFormatError):
            decode_point(prefix + x.to_bytes(32, "big"))


def test_decode_points_batch_matches_single_and_rejects_bad() -> None:
    base = mul(random_scalar(), BASE_POINT)
    points = [base]
    for _ in range(599):  # above the 512 threshold of the parallel path
        points.append(points[-1] + BASE_POINT)
    blobs = [encode_point(p) for p in points]
    assert decode_points(blobs) == points
    blobs[300] = b"\x05" + blobs[300][1:]
    with pytest.raises(ProofFormatError):
        decode_points(blobs)


# --- scalar encoding ------------------------------------------------------------------


@pytest.mark.parametrize("x", [0, 1, 2, ORDER - 1, 1 << 255])
def test_scalar_round_trip(x: int) -> None:
    data = encode_scalar(x)
    assert len(data) == 32
    assert decode_scalar(data) == x


def test_encode_scalar_reduces() -> None:
    assert encode_scalar(-1) == encode_scalar(ORDER - 1)
    assert encode_scalar(ORDER + 5) == encode_scalar(5)


@pytest.mark.parametrize("x", [ORDER, ORDER + 1, FIELD_PRIME, (1 << 256) - 1])
def test_decode_scalar_rejects_not_below_order(x: int) -> None:
    with pytest.raises(ProofFormatError):
        decode_scalar(x.to_bytes(32, "big"))


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_decode_scalar_rejects_wrong_length(length: int) -> None:
    with pytest.raises(ProofFormatError):
        decode_scalar(b"\x01" * length)


def test_random_scalar_in_range() -> None:
    values = {random_scalar() for _ in range(64)}
    assert len(values) == 64
    assert all(1 <= v < ORDER for v in values)


# --- hash to curve --------------------------------------------------------------------


def _reference_hash_to_point(label: bytes) -> tuple[int, int]:
    """Independent pure-Python re-derivation from docs/notes/notation.md."""
    dst = b"zkgrid/hash-to-curve/P-256 v1"
    assert P % 4 == 3
    ctr = 0
    while True:
        digest = hashlib.sha256(
            dst + len(label).to_bytes(4, "big") + label + ctr.to_bytes(4, "big")
        ).digest()
        x = int.from_bytes(digest, "big")
        ctr += 1
        if x >= P:
            continue
        rhs = _rhs(x)
        y = pow(rhs, (P + 1) // 4, P)
        if rhs == 0 or y * y % P != rhs:
            continue
        if y % 2:
            y = P - y
        return x, y


DOCUMENTED_LABELS = [
    b"zkgrid/pedersen/H v1",
    b"zkgrid/bulletproofs/U v1",
    *[b"zkgrid/bulletproofs/G/%d v1" % i for i in range(4)],
    *[b"zkgrid/bulletproofs/H/%d v1" % i for i in range(4)],
]


def test_hash_to_point_is_deterministic() -> None:
    assert hash_to_point(b"some label") == hash_to_point(b"some label")
    assert hash_to_point(b"some label") != hash_to_point(b"some label ")


@pytest.mark.parametrize("label", [b"", b"a", *DOCUMENTED_LABELS])
def test_hash_to_point_matches_reference(label: bytes) -> None:
    x, y = _reference_hash_to_point(label)
    assert (y * y - _rhs(x)) % P == 0
    point = hash_to_point(label)
    assert _affine(point) == (x, y)
    assert encode_point(point) == b"\x02" + x.to_bytes(32, "big")


def test_generators_are_the_documented_labels_and_distinct() -> None:
    g_vec, h_vec = generators.bp_generators(4)
    derived = [generators.pedersen_h(), generators.ipa_u(), *g_vec, *h_vec]
    assert [_affine(p) for p in derived] == [
        _reference_hash_to_point(lb) for lb in DOCUMENTED_LABELS
    ]
    encodings = {encode_point(p) for p in [generators.G, *derived]}
    assert len(encodings) == 1 + len(DOCUMENTED_LABELS)
    assert generators.G == BASE_POINT
    assert generators.bp_label("G", 12) == b"zkgrid/bulletproofs/G/12 v1"


# --- msm --------------------------------------------------------------------------------


def _naive(scalars: list[int], points: list[Point]) -> Point:
    total = identity()
    for s, p in zip(scalars, points, strict=True):
        total = total + p.pt_mul(group.to_bn(s))
    return total


@pytest.mark.parametrize("size", [0, 1, 2, 3, 8, 33])
def test_msm_matches_naive_sum(size: int) -> None:
    points = [mul(random_scalar(), BASE_POINT) for _ in range(size)]
    scalars = [secrets.randbelow(ORDER) for _ in range(size)]
    assert msm(scalars, points) == _naive(scalars, points)


def test_msm_reduces_negative_large_and_zero_scalars() -> None:
    points = [mul(random_scalar(), BASE_POINT) for _ in range(4)]
    scalars = [-7, ORDER + 3, 0, 5 * ORDER]
    expected = mul(-7, points[0]) + mul(3, points[1])
    assert msm(scalars, points) == expected
    assert msm([0, 0], points[:2]).is_infinite()


def test_msm_rejects_length_mismatch() -> None:
    with pytest.raises(InvalidArgumentError):
        msm([1, 2], [BASE_POINT])


def test_msm_parallel_path_matches_naive_sum(monkeypatch: pytest.MonkeyPatch) -> None:
    # Force the threaded path even on a one-core machine and check it is taken.
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    calls: list[int] = []
    real_pool = group.worker_pool

    def spy_pool() -> ThreadPoolExecutor:
        calls.append(1)
        return real_pool()

    monkeypatch.setattr(group, "worker_pool", spy_pool)
    size = PARALLEL_MSM_THRESHOLD + 3
    step = mul(random_scalar(), BASE_POINT)
    points = [mul(random_scalar(), BASE_POINT)]
    for _ in range(size - 1):  # cheap distinct points: additions only
        points.append(points[-1] + step)
    scalars = [secrets.randbelow(ORDER) for _ in range(size)]
    result = msm(scalars, points)
    assert calls
    assert result == _naive(scalars, points)


def test_generator_test_vectors_of_notation_md() -> None:
    g_vec, h_vec = generators.bp_generators(1)
    vectors = {
        "H": (
            generators.pedersen_h(),
            "028e7350f1b7c55eb9483f5b7ecc7310ad93ecaa3f9feef3dd1b1355f5f7452834",
        ),
        "U": (
            generators.ipa_u(),
            "028ce83889cf4cbdc0d79cc87bc43584aeeee35fa4835003fe0a23d841d24f47e3",
        ),
        "G_0": (g_vec[0], "02cb07183d2a39835b819710d7eef3a32ed615876d10c6be5287cb1cd5ae417211"),
        "H_0": (h_vec[0], "02ecefb6adb384e4d3a83e9ad97a2dd3f25aeed019c6249de90f5e65d977bccb9e"),
    }
    for name, (point, expected) in vectors.items():
        assert encode_point(point).hex() == expected, name
