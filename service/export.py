"""``zkgrid ledger export``: write a ledger store's entries and checkpoints to an archive file.

    zkgrid ledger export --db URL --out FILE

The archive (:mod:`ledger.archive`, docs/notes/ledger.md "Export archive")
holds every stored entry and every stored checkpoint, read in one snapshot
(SQLite read transaction, PostgreSQL ``REPEATABLE READ``), so a concurrent
appender cannot tear it. The final checkpoint is the stored one of the largest
size.

The export copies what is stored *as stored*: it does not run the store's
self-check, does not need the log's signing key, and does not skip, renumber
or repair anything (a deleted row is a gap in the indices, a rewritten payload
is exported rewritten, a malformed checkpoint note is exported as it is). That
is what makes ``zkgrid audit --archive`` an audit of the database and not of a
cleaned-up copy: :class:`service.storage.LedgerStore`'s own readers refuse a
store with gaps or malformed checkpoints, so this module reads the tables
directly with keyset pagination.

The file is written to a temporary name next to ``FILE`` (mode 0600) and renamed
when complete (:func:`zkgrid._internal.files.atomic_writer`); exit status 0 on
success, 2 with a one-line message otherwise. The database layer is imported after
the arguments are parsed, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from zkgrid._internal.cliargs import EXIT_STATUS
from zkgrid._internal.files import atomic_writer
from zkgrid.errors import Reason, ZkgridError

if TYPE_CHECKING:  # pragma: no cover - imported by export_ledger
    from sqlalchemy import Connection

    from ledger.archive import ArchiveTrailer

__all__ = ["ExportError", "ExportResult", "export_ledger", "main"]

_CHUNK = 2_000


class ExportError(ZkgridError):
    """The export could not read the store or write the archive."""

    reason = Reason.EXPORT_FAILED


class ExportResult:
    __slots__ = ("final_checkpoint", "origin", "path", "trailer")

    def __init__(self, path: Path, origin: str, trailer: ArchiveTrailer) -> None:
        self.path = path
        self.origin = origin
        self.trailer = trailer
        self.final_checkpoint = trailer.final_checkpoint


def _entries(conn: Connection) -> Iterator[tuple[int, int, bytes]]:
    from service.storage.models import ENTRIES

    cursor = -1
    while True:
        rows = conn.execute(
            ENTRIES.select()
            .with_only_columns(ENTRIES.c.idx, ENTRIES.c.kind, ENTRIES.c.payload)
            .where(ENTRIES.c.idx > cursor)
            .order_by(ENTRIES.c.idx)
            .limit(_CHUNK)
        ).all()
        if not rows:
            return
        for row in rows:
            yield int(row.idx), int(row.kind), bytes(row.payload)
        cursor = int(rows[-1].idx)


def _checkpoints(conn: Connection) -> Iterator[tuple[int, str]]:
    from service.storage.models import CHECKPOINTS

    cursor = -1
    while True:
        rows = conn.execute(
            CHECKPOINTS.select()
            .with_only_columns(CHECKPOINTS.c.size, CHECKPOINTS.c.note)
            .where(CHECKPOINTS.c.size > cursor)
            .order_by(CHECKPOINTS.c.size)
            .limit(_CHUNK)
        ).all()
        if not rows:
            return
        for row in rows:
            yield int(row.size), str(row.note)
        cursor = int(rows[-1].size)


#: ``progress(entries_written, entries_total)``, called every chunk and at the end.
Progress = Callable[[int, int], None]


def _counted(
    entries: Iterator[tuple[int, int, bytes]], total: int, progress: Progress | None
) -> Iterator[tuple[int, int, bytes]]:
    done = 0
    for entry in entries:
        yield entry
        done += 1
        if progress is not None and done % _CHUNK == 0:
            progress(done, total)
    if progress is not None:
        progress(done, total)


def _write(
    conn: Connection, out: BinaryIO, progress: Progress | None = None
) -> tuple[str, ArchiveTrailer]:
    from ledger.archive import write_archive
    from service.storage.models import CHECKPOINTS, META

    meta = conn.execute(META.select().where(META.c.id == 1)).first()
    if meta is None:
        raise ExportError("the store has no ledger_meta row (not a zkgrid ledger)")
    latest = conn.execute(
        CHECKPOINTS.select()
        .with_only_columns(CHECKPOINTS.c.note, CHECKPOINTS.c.size)
        .order_by(CHECKPOINTS.c.size.desc())
        .limit(1)
    ).first()
    if latest is None:
        raise ExportError("the store holds no checkpoint")
    origin = str(meta.origin)
    # A second connection would see another snapshot: entries and checkpoints are
    # interleaved from two keyset cursors over the same connection.
    entries = _counted(_entries(conn), int(latest.size), progress)
    trailer = write_archive(out, origin, entries, _checkpoints(conn), str(latest.note))
    return origin, trailer


def export_ledger(
    url: str, out_path: str | os.PathLike[str], *, progress: Progress | None = None
) -> ExportResult:
    """Export the ledger at ``url`` to ``out_path`` (atomically replaced); ``progress`` is
    told how many entries are written (of the latest checkpoint's size)."""
    from sqlalchemy import create_engine, event
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    from service.storage.errors import StoreConfigError
    from service.storage.store import normalize_url

    normalized = normalize_url(url)
    parsed = make_url(normalized)
    sqlite = parsed.get_backend_name() == "sqlite"
    if sqlite:
        if parsed.database in (None, "", ":memory:"):
            raise StoreConfigError("an in-memory SQLite ledger cannot be exported")
        if not Path(parsed.database).is_file():
            raise ExportError(f"no SQLite ledger at {parsed.database}")
    engine = create_engine(normalized, poolclass=NullPool)
    if sqlite:

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: object, _record: object) -> None:
            dbapi_conn.isolation_level = None  # type: ignore[attr-defined]

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN")  # DEFERRED: the snapshot starts at the first read

    target = Path(out_path)
    try:
        with atomic_writer(target) as out, engine.connect() as conn:
            if not sqlite:
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                origin, trailer = _write(conn, out, progress)
    finally:
        engine.dispose()
    return ExportResult(target, origin, trailer)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zkgrid ledger export",
        description="Write the ledger's entries and signed checkpoints to an archive file"
        " (for zkgrid audit --archive).",
        epilog=EXIT_STATUS,
    )
    parser.add_argument("--db", required=True, metavar="URL", help="ledger store URL")
    parser.add_argument("--out", required=True, metavar="FILE", help="archive file to write")
    parser.add_argument("--json", action="store_true", help="the outcome as JSON on stdout")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args_list = list(sys.argv[1:] if argv is None else argv)
    # ``zkgrid ledger export ...`` arrives here as ``["export", ...]``.
    if args_list and args_list[0] == "export":
        args_list = args_list[1:]
    elif args_list and not args_list[0].startswith("-"):
        print(f"zkgrid ledger: unknown subcommand {args_list[0]!r} (try: export)", file=sys.stderr)
        return 2
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:  # argparse already printed the usage line
        return 0 if exc.code == 0 else 2
    from sqlalchemy.exc import SQLAlchemyError

    try:
        if args.json or not sys.stderr.isatty():
            result = export_ledger(args.db, args.out)
        else:
            from rich.console import Console
            from rich.progress import Progress as Bar

            with Bar(console=Console(stderr=True), transient=True) as bar:
                task = bar.add_task("exporting entries", total=None)
                result = export_ledger(
                    args.db,
                    args.out,
                    progress=lambda done, total: bar.update(task, completed=done, total=total),
                )
    except ZkgridError as exc:
        print(f"zkgrid ledger export: {exc}", file=sys.stderr)
        return 2
    except SQLAlchemyError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"zkgrid ledger export: cannot read the store: {first}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"zkgrid ledger export: cannot write {args.out}: {exc.strerror}", file=sys.stderr)
        return 2
    t = result.trailer
    if args.json:
        doc = {
            "origin": result.origin,
            "path": str(result.path),
            "entries": t.entry_count,
            "checkpoints": t.checkpoint_count,
        }
        print(json.dumps(doc))
        return 0
    print(
        f"exported {t.entry_count} entries and {t.checkpoint_count} checkpoints of"
        f" {result.origin} to {result.path}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
