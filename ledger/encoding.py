"""The canonical byte encoding shared by every ledger record (docs/design/settlement-v1.md).

A record is a u8 version, then its fields in a fixed order: integers
fixed-width big-endian (u16, u32, u64; i64 two's complement), fixed-size byte
strings as they are, variable byte strings and UTF-8 text as
``u32 length || bytes``, lists as ``u32 count || items``. The reader is strict:
every length is bounded before anything is read, and trailing bytes are an error.
"""

from __future__ import annotations

import struct

from zkgrid.errors import ProofFormatError

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_I64 = struct.Struct(">q")

U32_MAX = 0xFFFFFFFF


def utf8_bytes(value: object, what: str, limit: int, error: type[Exception]) -> bytes:
    """``value`` as UTF-8, if it is a string of at most ``limit`` bytes; ``error`` else."""
    if not isinstance(value, str):
        raise error(f"{what} must be a string")
    try:
        raw = value.encode("utf-8")
    except UnicodeEncodeError:
        raise error(f"{what} is not valid UTF-8 text") from None
    if len(raw) > limit:
        raise error(f"{what} is longer than {limit} bytes")
    return raw


def u32_prefixed(data: bytes) -> bytes:
    """``u32(len(data)) || data``."""
    return _U32.pack(len(data)) + data


class CanonicalWriter:
    """Builds one record: the version byte first, then fields in order."""

    __slots__ = ("_parts",)

    def __init__(self, version: int) -> None:
        self._parts: list[bytes] = [bytes([version])]

    def u16(self, v: int) -> None:
        self._parts.append(_U16.pack(v))

    def u32(self, v: int) -> None:
        self._parts.append(_U32.pack(v))

    def u64(self, v: int) -> None:
        self._parts.append(_U64.pack(v))

    def i64(self, v: int) -> None:
        self._parts.append(_I64.pack(v))

    def fixed(self, data: bytes) -> None:
        self._parts.append(data)

    def blob(self, data: bytes) -> None:
        self._parts.append(_U32.pack(len(data)))
        self._parts.append(data)

    def text(self, value: str) -> None:
        self.blob(value.encode("utf-8"))

    def count(self, n: int) -> None:
        self._parts.append(_U32.pack(n))

    def getvalue(self) -> bytes:
        return b"".join(self._parts)


class CanonicalReader:
    """Reads one record strictly; every failure raises ``error`` (a ProofFormatError)."""

    __slots__ = ("_data", "_error", "_pos", "_what")

    def __init__(
        self, data: object, what: str, version: int, error: type[ProofFormatError]
    ) -> None:
        self._error = error
        if not isinstance(data, bytes | bytearray | memoryview):
            raise error(f"{what} must be bytes")
        self._data = bytes(data)
        self._what = what
        self._pos = 0
        found = self._take(1, "version")[0]
        if found != version:
            raise error(f"{what}: unknown version {found}")

    def _take(self, n: int, field: str) -> bytes:
        end = self._pos + n
        if end > len(self._data):
            raise self._error(f"{self._what}: truncated in {field}")
        out = self._data[self._pos : end]
        self._pos = end
        return out

    def u16(self, field: str) -> int:
        return int(_U16.unpack(self._take(2, field))[0])

    def u32(self, field: str, max_value: int = U32_MAX) -> int:
        value = int(_U32.unpack(self._take(4, field))[0])
        if value > max_value:
            raise self._error(f"{self._what}: {field} is larger than {max_value}")
        return value

    def u64(self, field: str) -> int:
        return int(_U64.unpack(self._take(8, field))[0])

    def i64(self, field: str) -> int:
        return int(_I64.unpack(self._take(8, field))[0])

    def fixed(self, n: int, field: str) -> bytes:
        return self._take(n, field)

    def blob(self, field: str, max_size: int) -> bytes:
        length = self.u32(field)
        if length > max_size:
            raise self._error(f"{self._what}: {field} is longer than {max_size} bytes")
        return self._take(length, field)

    def text(self, field: str, max_bytes: int) -> str:
        raw = self.blob(field, max_bytes)
        try:
            return raw.decode("utf-8", errors="strict")
        except UnicodeDecodeError:
            raise self._error(f"{self._what}: {field} is not valid UTF-8") from None

    def count(self, field: str, max_count: int) -> int:
        n = self.u32(field)
        if n > max_count:
            raise self._error(f"{self._what}: {field} has more than {max_count} items")
        return n

    def finish(self) -> None:
        if self._pos != len(self._data):
            raise self._error(f"{self._what}: {len(self._data) - self._pos} trailing bytes")
