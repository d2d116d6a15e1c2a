"""Test support for the decoder fuzz tests: byte mutations of real encodings, a reproducible
settings profile and the one assertion they share. Not a test module.

Every fuzz test feeds a decoder bytes (or text) that are either pure random or a real,
valid encoding with a few mutations applied (bit flips, byte overwrites, 32-bit length
fields overwritten with extreme values, inserted, deleted, duplicated or truncated
spans). The decoder may accept the input or refuse it with a
:class:`zkgrid.errors.ZkgridError`; any other exception fails the test.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st

from zkgrid.errors import ZkgridError

_In = TypeVar("_In")
_Out = TypeVar("_Out")


def fuzz_settings(max_examples: int) -> settings:
    """Reproducible in CI: derandomized, no example database, no deadline (shared machines)."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


#: Values written over a 4-byte window: the extremes of every u32 length or count.
_U32_EXTREMES = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFE, 0xFFFF_FFFF)
#: Bytes that mean something to one of the formats: NUL, flags, newline and CR, space, '"',
#: '+', ',', '-', '.', ':', 'Z', 'e', DEL, a UTF-8 continuation and lead byte, 0xFF.
_INTERESTING_BYTES = tuple(b'\x00\x01\x02\x03\n\r "+,-.:Ze\x7f\x80\xc0\xff')
_OPS = ("flip", "set", "u32", "insert", "delete", "duplicate", "truncate")
#: Text formats also get a run of 4,000..6,000 digits inserted (CPython's int() refuses more
#: than 4,300 digits with a bare ValueError: every parser must bound lengths first).
_TEXT_OPS = (*_OPS, "digits")


def _mutate_once(data: bytearray, draw: st.DrawFn, ops: Sequence[str]) -> None:
    op = draw(st.sampled_from(ops))
    at = draw(st.integers(0, len(data)))
    if op == "flip" and data:
        data[at % len(data)] ^= 1 << draw(st.integers(0, 7))
    elif op == "set" and data:
        data[at % len(data)] = draw(st.sampled_from(_INTERESTING_BYTES) | st.integers(0, 255))
    elif op == "u32":
        value = draw(st.sampled_from(_U32_EXTREMES) | st.integers(0, 0xFFFF_FFFF))
        data[at : at + 4] = value.to_bytes(4, "big")
    elif op == "insert":
        data[at:at] = draw(st.binary(min_size=1, max_size=16))
    elif op == "delete":
        del data[at : at + draw(st.integers(1, 16))]
    elif op == "digits":
        data[at:at] = b"9" * draw(st.integers(4_000, 6_000))
    elif op == "duplicate":
        span = bytes(data[at : at + draw(st.integers(1, 64))])
        data[at:at] = span
    else:
        del data[at:]


@st.composite
def mutations(
    draw: st.DrawFn, seeds: Sequence[bytes], max_mutations: int = 4, *, text: bool = False
) -> bytes:
    """One of ``seeds`` with 1..``max_mutations`` mutations applied."""
    data = bytearray(draw(st.sampled_from(seeds)))
    ops = _TEXT_OPS if text else _OPS
    for _ in range(draw(st.integers(1, max_mutations))):
        _mutate_once(data, draw, ops)
    return bytes(data)


def fuzz_bytes(
    seeds: Sequence[bytes], max_random: int = 512, max_mutations: int = 4, *, text: bool = False
) -> st.SearchStrategy[bytes]:
    """Mutated seeds (about three draws in four), unchanged seeds, or pure random bytes
    (``max_random`` = 0: no random bytes, for decoders too slow to spend examples on them)."""
    mutated = mutations(seeds, max_mutations, text=text)
    if max_random == 0:
        return st.one_of(mutated, mutated, mutated, mutated, st.sampled_from(seeds))
    return st.one_of(
        mutated, mutated, mutated, st.sampled_from(seeds), st.binary(max_size=max_random)
    )


def fuzz_text(
    seeds: Sequence[str], max_random: int = 512, max_mutations: int = 4, *, digits: bool = True
) -> st.SearchStrategy[str]:
    """Text decoders: mutated UTF-8 of the seeds decoded leniently, or random text.

    ``digits``: some mutations insert 4,000..6,000 digits (see ``_TEXT_OPS``).
    """
    raw = fuzz_bytes([s.encode("utf-8") for s in seeds], max_random, max_mutations, text=digits)
    return st.one_of(
        raw.map(lambda b: b.decode("utf-8", errors="replace")),
        raw.map(lambda b: b.decode("utf-8", errors="surrogateescape")),
        st.text(max_size=max_random),
    )


def typed_or_accepted(decode: Callable[[_In], _Out], data: _In) -> _Out | None:
    """``decode(data)``; a :class:`ZkgridError` is a refusal (``None``), anything else fails."""
    try:
        result = decode(data)
    except ZkgridError as exc:
        event(f"refused: {type(exc).__name__}: {str(exc)[:40]}")
        return None
    event("accepted")
    return result
