"""ledger.archive: round trip, strict reading, truncation anywhere, ordering rules."""

from __future__ import annotations

import io

import pytest

from ledger.archive import (
    MAGIC,
    ArchiveCheckpoint,
    ArchiveEntry,
    ArchiveFormatError,
    ArchiveReader,
    ArchiveTruncatedError,
    ArchiveWriter,
    write_archive,
)
from ledger.errors import LedgerArgumentError


def _sample() -> bytes:
    out = io.BytesIO()
    write_archive(
        out,
        "zkgrid.test/log",
        [(0, 1, b"reg"), (1, 3, b"batch" * 10), (3, 5, b"")],
        [(0, "cp0\n"), (2, "cp2\n"), (4, "cp4\n")],
        "cp4\n",
    )
    return out.getvalue()


def test_round_trip_in_order() -> None:
    reader = ArchiveReader(io.BytesIO(_sample()))
    assert reader.header.origin == "zkgrid.test/log"
    items = list(reader.items())
    assert items == [
        ArchiveCheckpoint(0, "cp0\n"),
        ArchiveEntry(0, 1, b"reg"),
        ArchiveEntry(1, 3, b"batch" * 10),
        ArchiveCheckpoint(2, "cp2\n"),
        ArchiveEntry(3, 5, b""),
        ArchiveCheckpoint(4, "cp4\n"),
    ]
    assert reader.trailer.entry_count == 3
    assert reader.trailer.checkpoint_count == 3
    assert reader.trailer.final_checkpoint == "cp4\n"


def test_skip_payloads_below() -> None:
    reader = ArchiveReader(io.BytesIO(_sample()), skip_payloads_below=2)
    entries = [i for i in reader.items() if isinstance(i, ArchiveEntry)]
    assert [e.index for e in entries] == [3]
    assert reader.skipped == 2


def test_every_truncation_is_detected() -> None:
    data = _sample()
    for cut in range(len(data)):
        with pytest.raises(ArchiveFormatError):  # truncated, or a short header
            list(ArchiveReader(io.BytesIO(data[:cut])).items())
    with pytest.raises(ArchiveTruncatedError):
        list(ArchiveReader(io.BytesIO(data[:-3])).items())


def test_strict_reader() -> None:
    data = _sample()
    with pytest.raises(ArchiveFormatError, match="bad magic"):
        ArchiveReader(io.BytesIO(b"X" + data[1:]))
    version_bumped = data[: len(MAGIC)] + b"\x00\x02" + data[len(MAGIC) + 2 :]
    with pytest.raises(ArchiveFormatError, match="version"):
        ArchiveReader(io.BytesIO(version_bumped))
    with pytest.raises(ArchiveFormatError, match="follow"):
        list(ArchiveReader(io.BytesIO(data + b"\x00")).items())
    # A frame dropped from the middle (entry 3, tag + 14-byte head, empty payload).
    frame = b"\x45" + (3).to_bytes(8, "big") + (5).to_bytes(2, "big") + bytes(4)
    assert frame in data
    with pytest.raises(ArchiveFormatError, match="trailer counts"):
        list(ArchiveReader(io.BytesIO(data.replace(frame, b""))).items())
    with pytest.raises(ArchiveFormatError, match="unknown frame tag"):
        list(ArchiveReader(io.BytesIO(data.replace(frame, b"\x99" + frame[1:]))).items())


def test_writer_refuses_out_of_order() -> None:
    writer = ArchiveWriter(io.BytesIO(), "o")
    writer.add_entry(0, 1, b"")
    with pytest.raises(LedgerArgumentError):
        writer.add_entry(0, 1, b"")
    with pytest.raises(LedgerArgumentError):
        writer.add_checkpoint(0, "c")
    writer.add_checkpoint(1, "c")
    with pytest.raises(LedgerArgumentError):
        writer.add_entry(0, 1, b"")
    writer.finish("c")
    with pytest.raises(LedgerArgumentError):
        writer.add_entry(5, 1, b"")
    with pytest.raises(LedgerArgumentError):
        ArchiveWriter(io.BytesIO(), "two\nlines")


def test_gaps_are_representable() -> None:
    out = io.BytesIO()
    write_archive(out, "o", [(0, 1, b"a"), (2, 1, b"c")], [(3, "c3")], "c3")
    reader = ArchiveReader(io.BytesIO(out.getvalue()))
    assert [i.index for i in reader.items() if isinstance(i, ArchiveEntry)] == [0, 2]
