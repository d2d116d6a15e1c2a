"""The ledger export archive: a versioned, streamable file of entries and signed checkpoints.

Pure (no database, no network): :class:`ArchiveWriter` writes an archive from
iterables of entries ``(index, kind, payload)`` and checkpoints ``(size, signed
note text)``; :class:`ArchiveReader` reads one back strictly, frame by frame,
without holding the file in memory. The format (docs/notes/ledger.md, "Export
archive")::

    archive    = header frame* trailer
    header     = MAGIC (8 bytes, "ZKGRIDLA") || u16 version (1) || u32 len || origin (UTF-8)
    entry      = 0x45 "E" || u64 index || u16 kind || u32 len || payload
    checkpoint = 0x43 "C" || u64 size || u32 len || signed note text (UTF-8)
    trailer    = 0x54 "T" || u64 entry count || u64 checkpoint count
                 || u32 len || final signed note text (UTF-8) || END ("ZKGRIDEND")

Integers are big-endian. Entry indices are strictly increasing and checkpoint
sizes strictly increasing; a checkpoint of size ``s`` comes after every entry
with index ``< s`` and before every entry with index ``>= s``. Nothing follows
the trailer. A file that ends before its trailer is *truncated*
(:class:`ArchiveTruncatedError`); the trailer's counts must match the frames
read. Indices need not be consecutive: the archive records what the store
holds, and a missing entry is the auditor's finding, not the reader's.

The archive carries no trust: entries and checkpoints are checked by the
auditor against the pinned log key (checkpoint signatures, recomputed roots).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from ledger.encoding import utf8_bytes
from ledger.errors import LedgerArgumentError, LedgerFormatError
from zkgrid.errors import Reason

__all__ = [
    "ARCHIVE_VERSION",
    "MAGIC",
    "MAX_CHECKPOINT_TEXT",
    "MAX_ENTRY_PAYLOAD",
    "ArchiveCheckpoint",
    "ArchiveEntry",
    "ArchiveFormatError",
    "ArchiveHeader",
    "ArchiveReader",
    "ArchiveTrailer",
    "ArchiveTruncatedError",
    "ArchiveWriter",
    "write_archive",
]

MAGIC = b"ZKGRIDLA"
END_MAGIC = b"ZKGRIDEND"
ARCHIVE_VERSION = 1
#: Upper bound on one entry payload in an archive (a 1-minute batch is ~100 kB).
MAX_ENTRY_PAYLOAD = 16 * 1024 * 1024
#: Upper bound on a signed note's text (100 signature lines fit easily).
MAX_CHECKPOINT_TEXT = 64 * 1024
MAX_ORIGIN = 1024

_TAG_ENTRY = 0x45
_TAG_CHECKPOINT = 0x43
_TAG_TRAILER = 0x54
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_ENTRY_HEAD = struct.Struct(">QHI")
_CHECKPOINT_HEAD = struct.Struct(">QI")
_TRAILER_HEAD = struct.Struct(">QQI")
_MAX_U64 = 2**64 - 1


class ArchiveFormatError(LedgerFormatError):
    """Bytes that are not a well-formed archive (bad magic, version, frame or order)."""

    reason = Reason.ARCHIVE_MALFORMED


class ArchiveTruncatedError(ArchiveFormatError):
    """The archive ends before its trailer (or inside a frame)."""

    reason = Reason.ARCHIVE_TRUNCATED


@dataclass(frozen=True, slots=True)
class ArchiveHeader:
    version: int
    origin: str


@dataclass(frozen=True, slots=True)
class ArchiveEntry:
    """One entry as exported: ``kind`` is the raw u16 (the auditor judges unknown kinds)."""

    index: int
    kind: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class ArchiveCheckpoint:
    """One stored checkpoint: the size it was stored under and its signed note text."""

    size: int
    text: str


@dataclass(frozen=True, slots=True)
class ArchiveTrailer:
    entry_count: int
    checkpoint_count: int
    final_checkpoint: str


# --------------------------------------------------------------------------- writer


def _check_u64(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_U64:
        raise LedgerArgumentError(f"{what} must be an integer in [0, 2^64)")
    return value


def _utf8(text: object, what: str, limit: int) -> bytes:
    return utf8_bytes(text, what, limit, LedgerArgumentError)


class ArchiveWriter:
    """Writes one archive to a binary stream: header now, frames as given, trailer on finish."""

    __slots__ = ("_checkpoints", "_entries", "_finished", "_last_index", "_last_size", "_out")

    def __init__(self, out: BinaryIO, origin: str) -> None:
        raw = _utf8(origin, "origin", MAX_ORIGIN)
        if not raw or b"\n" in raw:
            raise LedgerArgumentError("origin must be a non-empty single line")
        self._out = out
        self._entries = 0
        self._checkpoints = 0
        self._last_index = -1
        self._last_size = -1
        self._finished = False
        out.write(MAGIC + _U16.pack(ARCHIVE_VERSION) + _U32.pack(len(raw)) + raw)

    def _check_open(self) -> None:
        if self._finished:
            raise LedgerArgumentError("the archive is already finished")

    def add_entry(self, index: int, kind: int, payload: bytes) -> None:
        self._check_open()
        index = _check_u64(index, "entry index")
        if isinstance(kind, bool) or not isinstance(kind, int) or not 0 <= kind <= 0xFFFF:
            raise LedgerArgumentError("entry kind must be a u16")
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise LedgerArgumentError("entry payload must be bytes")
        body = bytes(payload)
        if len(body) > MAX_ENTRY_PAYLOAD:
            raise LedgerArgumentError(f"entry payload longer than {MAX_ENTRY_PAYLOAD} bytes")
        if index <= self._last_index:
            raise LedgerArgumentError(f"entry index {index} is not above {self._last_index}")
        if index < self._last_size:
            raise LedgerArgumentError(
                f"entry {index} comes after the checkpoint of size {self._last_size}"
            )
        self._out.write(bytes([_TAG_ENTRY]) + _ENTRY_HEAD.pack(index, kind, len(body)) + body)
        self._last_index = index
        self._entries += 1

    def add_checkpoint(self, size: int, text: str) -> None:
        self._check_open()
        size = _check_u64(size, "checkpoint size")
        raw = _utf8(text, "checkpoint text", MAX_CHECKPOINT_TEXT)
        if size <= self._last_size:
            raise LedgerArgumentError(f"checkpoint size {size} is not above {self._last_size}")
        if self._last_index >= size:
            raise LedgerArgumentError(
                f"checkpoint of size {size} comes after entry {self._last_index}"
            )
        self._out.write(bytes([_TAG_CHECKPOINT]) + _CHECKPOINT_HEAD.pack(size, len(raw)) + raw)
        self._last_size = size
        self._checkpoints += 1

    def finish(self, final_checkpoint: str) -> ArchiveTrailer:
        self._check_open()
        raw = _utf8(final_checkpoint, "final checkpoint text", MAX_CHECKPOINT_TEXT)
        self._out.write(
            bytes([_TAG_TRAILER])
            + _TRAILER_HEAD.pack(self._entries, self._checkpoints, len(raw))
            + raw
            + END_MAGIC
        )
        self._finished = True
        return ArchiveTrailer(self._entries, self._checkpoints, final_checkpoint)


def write_archive(
    out: BinaryIO,
    origin: str,
    entries: Iterable[tuple[int, int, bytes]],
    checkpoints: Iterable[tuple[int, str]],
    final_checkpoint: str,
) -> ArchiveTrailer:
    """Write a whole archive, merging entries and checkpoints (both sorted) by position.

    Each checkpoint of size ``s`` is written after the entries with index ``< s``.
    """
    writer = ArchiveWriter(out, origin)
    cps = iter(checkpoints)
    pending = next(cps, None)
    for index, kind, payload in entries:
        while pending is not None and pending[0] <= index:
            writer.add_checkpoint(*pending)
            pending = next(cps, None)
        writer.add_entry(index, kind, payload)
    while pending is not None:
        writer.add_checkpoint(*pending)
        pending = next(cps, None)
    return writer.finish(final_checkpoint)


# --------------------------------------------------------------------------- reader


def _decode_text(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        raise ArchiveFormatError(f"{what} is not valid UTF-8") from None


class ArchiveReader:
    """Strict streaming reader: the header on construction, then :meth:`items`, then the trailer.

    ``skip_payloads_below``: entries with a smaller index are checked for
    framing and order but their payloads are skipped (seeked over when the
    stream is seekable) and they are not yielded: what ``--since-last`` reads.
    """

    def __init__(self, stream: BinaryIO, *, skip_payloads_below: int = 0) -> None:
        self._in = stream
        #: May be changed until :meth:`items` starts.
        self.skip_payloads_below = skip_payloads_below
        self._offset = 0
        self._trailer: ArchiveTrailer | None = None
        self._started = False
        #: Entries read below ``skip_payloads_below`` (framing checked, not yielded).
        self.skipped = 0
        try:
            self._seekable = bool(stream.seekable())
        except (AttributeError, OSError):
            self._seekable = False
        head = self._read(len(MAGIC) + _U16.size + _U32.size, "header")
        if head[: len(MAGIC)] != MAGIC:
            raise ArchiveFormatError("not a zkgrid ledger archive (bad magic)")
        (version,) = _U16.unpack_from(head, len(MAGIC))
        if version != ARCHIVE_VERSION:
            raise ArchiveFormatError(f"unsupported archive version {version}")
        (length,) = _U32.unpack_from(head, len(MAGIC) + _U16.size)
        if not 0 < length <= MAX_ORIGIN:
            raise ArchiveFormatError("archive origin length is out of range")
        origin = _decode_text(self._read(length, "header origin"), "archive origin")
        if "\n" in origin:
            raise ArchiveFormatError("archive origin contains a newline")
        self.header = ArchiveHeader(version, origin)

    def _read(self, n: int, what: str) -> bytes:
        data = self._in.read(n)
        if len(data) != n:
            raise ArchiveTruncatedError(
                f"archive truncated in the {what} at byte {self._offset + len(data)}"
            )
        self._offset += n
        return bytes(data)

    def _skip(self, n: int, what: str) -> None:
        if not self._seekable:
            while n:
                step = min(n, 1 << 20)
                self._read(step, what)
                n -= step
            return
        here = self._in.tell()
        end = self._in.seek(0, 2)
        if end - here < n:
            raise ArchiveTruncatedError(f"archive truncated in the {what} at byte {end}")
        self._in.seek(here + n)
        self._offset += n

    @property
    def trailer(self) -> ArchiveTrailer:
        """The trailer; only after :meth:`items` has been consumed to the end."""
        if self._trailer is None:
            raise LedgerArgumentError("the trailer is read at the end of items()")
        return self._trailer

    def items(self) -> Iterator[ArchiveEntry | ArchiveCheckpoint]:
        """Every frame in order; checks the trailer and that nothing follows it."""
        if self._started:
            raise LedgerArgumentError("items() can be iterated once")
        self._started = True
        entries = checkpoints = 0
        last_index = -1
        last_size = -1
        while True:
            tag = self._read(1, "frame tag")[0]
            if tag == _TAG_ENTRY:
                index, kind, length = _ENTRY_HEAD.unpack(self._read(_ENTRY_HEAD.size, "entry"))
                if length > MAX_ENTRY_PAYLOAD:
                    raise ArchiveFormatError(f"entry {index}: payload length out of range")
                if index <= last_index:
                    raise ArchiveFormatError(
                        f"entry {index} does not follow entry {last_index} (indices must increase)"
                    )
                if index < last_size:
                    raise ArchiveFormatError(
                        f"entry {index} comes after the checkpoint of size {last_size}"
                    )
                last_index = index
                entries += 1
                if index < self.skip_payloads_below:
                    self.skipped += 1
                    self._skip(length, f"payload of entry {index}")
                    continue
                yield ArchiveEntry(index, kind, self._read(length, f"payload of entry {index}"))
            elif tag == _TAG_CHECKPOINT:
                size, length = _CHECKPOINT_HEAD.unpack(
                    self._read(_CHECKPOINT_HEAD.size, "checkpoint")
                )
                if length > MAX_CHECKPOINT_TEXT:
                    raise ArchiveFormatError(f"checkpoint {size}: text length out of range")
                if size <= last_size or last_index >= size:
                    raise ArchiveFormatError(f"checkpoint of size {size} is out of order")
                text = _decode_text(self._read(length, "checkpoint"), f"checkpoint {size}")
                last_size = size
                checkpoints += 1
                yield ArchiveCheckpoint(size, text)
            elif tag == _TAG_TRAILER:
                n_entries, n_checkpoints, length = _TRAILER_HEAD.unpack(
                    self._read(_TRAILER_HEAD.size, "trailer")
                )
                if length > MAX_CHECKPOINT_TEXT:
                    raise ArchiveFormatError("trailer: checkpoint text length out of range")
                final = _decode_text(self._read(length, "trailer"), "final checkpoint")
                if self._read(len(END_MAGIC), "trailer") != END_MAGIC:
                    raise ArchiveFormatError("trailer: bad end marker")
                if self._in.read(1):
                    raise ArchiveFormatError("bytes follow the archive trailer")
                if (n_entries, n_checkpoints) != (entries, checkpoints):
                    raise ArchiveFormatError(
                        f"trailer counts {n_entries} entries and {n_checkpoints} checkpoints;"
                        f" the archive holds {entries} and {checkpoints} (truncated or spliced)"
                    )
                self._trailer = ArchiveTrailer(n_entries, n_checkpoints, final)
                return
            else:
                raise ArchiveFormatError(
                    f"unknown frame tag 0x{tag:02x} at byte {self._offset - 1}"
                )
