"""zkp.transcript: domain separation, framing and challenges."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest

from zkgrid.errors import InvalidArgumentError
from zkp.generators import G, pedersen_h
from zkp.group import ORDER, encode_point, encode_scalar
from zkp.transcript import TRANSCRIPT_FORMAT, Transcript

Build = Callable[[], Transcript]


def _base() -> Transcript:
    return Transcript(b"zkgrid/test", 1, [(b"n", 64), (b"m", 2)])


def _challenge(build: Build) -> int:
    return build().challenge_scalar(b"c")


def _with(*appends: tuple[bytes, bytes], start: Build = _base) -> Build:
    def build() -> Transcript:
        t = start()
        for label, data in appends:
            t.append(label, data)
        return t

    return build


def test_same_appends_same_challenge() -> None:
    build = _with((b"x", b"hello"), (b"y", b"world"))
    assert _challenge(build) == _challenge(build)


VARIANTS: dict[str, Build] = {
    "reference": _with((b"x", b"hello"), (b"y", b"world")),
    "label": _with((b"X", b"hello"), (b"y", b"world")),
    "data": _with((b"x", b"hellp"), (b"y", b"world")),
    "order": _with((b"y", b"world"), (b"x", b"hello")),
    "missing": _with((b"x", b"hello")),
    "extra": _with((b"x", b"hello"), (b"y", b"world"), (b"z", b"")),
    "protocol": _with(
        (b"x", b"hello"),
        (b"y", b"world"),
        start=lambda: Transcript(b"zkgrid/test2", 1, [(b"n", 64), (b"m", 2)]),
    ),
    "version": _with(
        (b"x", b"hello"),
        (b"y", b"world"),
        start=lambda: Transcript(b"zkgrid/test", 2, [(b"n", 64), (b"m", 2)]),
    ),
    "param value": _with(
        (b"x", b"hello"),
        (b"y", b"world"),
        start=lambda: Transcript(b"zkgrid/test", 1, [(b"n", 32), (b"m", 2)]),
    ),
    "param order": _with(
        (b"x", b"hello"),
        (b"y", b"world"),
        start=lambda: Transcript(b"zkgrid/test", 1, [(b"m", 2), (b"n", 64)]),
    ),
    "param missing": _with(
        (b"x", b"hello"),
        (b"y", b"world"),
        start=lambda: Transcript(b"zkgrid/test", 1, [(b"n", 64)]),
    ),
    "param label": _with(
        (b"x", b"hello"),
        (b"y", b"world"),
        start=lambda: Transcript(b"zkgrid/test", 1, [(b"N", 64), (b"m", 2)]),
    ),
}


def test_every_change_changes_the_challenge() -> None:
    challenges = {name: _challenge(build) for name, build in VARIANTS.items()}
    assert len(set(challenges.values())) == len(challenges), challenges


def test_challenge_label_matters() -> None:
    assert _base().challenge_scalar(b"x") != _base().challenge_scalar(b"y")


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ([(b"a", b"bc")], [(b"ab", b"c")]),
        ([(b"d", b"ab"), (b"d", b"c")], [(b"d", b"abc")]),
        ([(b"d", b""), (b"d", b"x")], [(b"d", b"x"), (b"d", b"")]),
        ([(b"", b"ab")], [(b"a", b"b")]),
        # data that looks like a frame of its own
        ([(b"a", b"b")], [(b"a", b"b" + (1).to_bytes(4, "big") + b"x" + bytes(8))]),
    ],
)
def test_framing_prevents_ambiguity(
    first: list[tuple[bytes, bytes]], second: list[tuple[bytes, bytes]]
) -> None:
    assert _challenge(_with(*first)) != _challenge(_with(*second))


def test_successive_challenges_differ_and_chain() -> None:
    t1 = _base()
    c1 = t1.challenge_scalar(b"c")
    c2 = t1.challenge_scalar(b"c")
    assert c1 != c2
    # A challenge depends on all earlier challenges: asking an extra one first changes it.
    t2 = _base()
    t2.challenge_scalar(b"other")
    assert t2.challenge_scalar(b"c") != c1


def test_challenges_are_nonzero_and_below_order() -> None:
    t = _base()
    for i in range(200):
        t.append_u64(b"i", i)
        c = t.challenge_scalar(b"c")
        assert 1 <= c < ORDER


def test_typed_appends_are_framed_bytes() -> None:
    t1 = _base()
    t1.append_point(b"P", pedersen_h())
    t1.append_scalar(b"s", ORDER - 1)
    t1.append_u64(b"u", 7)
    t2 = _base()
    t2.append(b"P", encode_point(pedersen_h()))
    t2.append(b"s", encode_scalar(ORDER - 1))
    t2.append(b"u", (7).to_bytes(8, "big"))
    assert t1.challenge_scalar(b"c") == t2.challenge_scalar(b"c")


def test_append_points_absorbs_the_count() -> None:
    t1 = _base()
    t1.append_points(b"V", [G, pedersen_h()])
    t2 = _base()
    t2.append_points(b"V", [G])
    t2.append_points(b"V", [pedersen_h()])
    assert t1.challenge_scalar(b"c") != t2.challenge_scalar(b"c")


def test_independent_rederivation_of_the_documented_format() -> None:
    """docs/notes/notation.md: the byte stream and the challenge derivation."""

    def frame(label: bytes, data: bytes) -> bytes:
        return len(label).to_bytes(4, "big") + label + len(data).to_bytes(8, "big") + data

    stream = (
        frame(b"format", b"zkgrid/transcript v1")
        + frame(b"protocol", b"zkgrid/test")
        + frame(b"version", (1).to_bytes(8, "big"))
        + frame(b"n", (64).to_bytes(8, "big"))
        + frame(b"m", (2).to_bytes(8, "big"))
        + frame(b"x", b"hello")
    )
    expected = (
        int.from_bytes(hashlib.shake_256(stream + frame(b"challenge", b"c")).digest(64), "big")
        % ORDER
    )
    t = _with((b"x", b"hello"))()
    assert TRANSCRIPT_FORMAT == b"zkgrid/transcript v1"
    assert t.challenge_scalar(b"c") == expected
    # The challenge is absorbed under its label before the next one.
    stream += frame(b"c", expected.to_bytes(32, "big"))
    expected2 = (
        int.from_bytes(hashlib.shake_256(stream + frame(b"challenge", b"d")).digest(64), "big")
        % ORDER
    )
    assert t.challenge_scalar(b"d") == expected2


@pytest.mark.parametrize("value", [-1, 1 << 64, 1 << 70])
def test_u64_out_of_range_is_rejected(value: int) -> None:
    with pytest.raises(InvalidArgumentError):
        _base().append_u64(b"u", value)
    with pytest.raises(InvalidArgumentError):
        Transcript(b"zkgrid/test", 1, [(b"n", value)])


def test_negative_version_is_rejected() -> None:
    with pytest.raises(InvalidArgumentError):
        Transcript(b"zkgrid/test", -1)
