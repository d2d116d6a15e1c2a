"""The ledger store: one interface, SQLite and PostgreSQL backends from one code path.

The ledger's guarantee is the cryptography, not the triggers: every entry is a
leaf of an RFC 6962 Merkle tree whose roots are signed in checkpoints, so a
rewritten entry, node or checkpoint is caught by a consistency proof or by the
start-up self-check, whoever wrote it. The database triggers (see
:mod:`service.storage.schema`) are defence in depth that makes careless
rewrites fail loudly; anyone who controls the database can drop them.

Writes
    Every append (one entry or a batch) is one transaction: take the write lock
    first (SQLite ``BEGIN IMMEDIATE``; PostgreSQL ``SELECT ... FOR UPDATE`` on
    the ``ledger_meta`` row), then read the size and the right frontier *inside*
    the lock (another replica may have appended), insert the entries and every
    new perfect node, check the new root is consistent with the last stored
    checkpoint (a consistency proof verified with
    :func:`ledger.merkle.verify_consistency`), sign a checkpoint for the new
    size and insert it, commit. Either all of it is stored or none of it, and
    concurrent appenders (threads, processes, replicas) get gap-free indices.

Reads
    Proofs are one bulk primary-key read of O(log n) nodes. Entries stream in
    chunks with keyset pagination.

Start-up self-check
    :func:`open_store` runs :meth:`LedgerStore.verify_integrity` before handing
    out the store and raises :class:`StoreIntegrityError` (refusing to serve)
    when what is stored does not match the last signed checkpoint. ``full``
    (the default) re-hashes every entry payload, compares every stored leaf and
    node hash and every checkpoint root, and verifies the last checkpoint's
    signature: O(n), streamed in chunks. ``quick`` verifies the last checkpoint's
    signature and that the stored right frontier rebuilds its root and that no
    entry lies beyond it: O(log n), but blind to a payload altered in the middle.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.pool import StaticPool
from sqlmodel import SQLModel

from ledger.checkpoint import (
    Checkpoint,
    CheckpointSigner,
    SignedCheckpoint,
    verify_checkpoint,
)
from ledger.entries import EntryKind, encode_entry
from ledger.errors import LedgerError, NodeFetchError
from ledger.merkle import (
    EMPTY_ROOT,
    CompactRange,
    NodeFetcher,
    NodeId,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_at,
    verify_consistency,
)
from service.storage.errors import (
    AppendOnlyViolation,
    EntryNotFound,
    LogKeyMismatch,
    StoreConfigError,
    StoreIntegrityError,
    StoreUnavailable,
)
from service.storage.models import CHECKPOINTS, ENTRIES, META, NODES, TABLES
from service.storage.schema import APPEND_ONLY_MARKER, SCHEMA_VERSION, install_triggers

__all__ = [
    "AppendListener",
    "Appended",
    "AppendedEntry",
    "LedgerStore",
    "Precondition",
    "StartupCheck",
    "StoredEntry",
    "normalize_url",
    "open_store",
]

StartupCheck = Literal["full", "quick"]
#: ``precondition(conn, size)`` of :meth:`LedgerStore.append_batch`: runs under the write lock.
Precondition = Callable[[Connection, int], None]
_T = TypeVar("_T")

#: Entries per chunk when streaming (``entries()``, the full self-check).
DEFAULT_CHUNK = 2_000
_log = logging.getLogger(__name__)

#: Seconds a writer waits for the write lock before :class:`StoreUnavailable`.
LOCK_TIMEOUT_S = 30.0
# A constant key for the PostgreSQL advisory lock serialising schema creation.
_PG_INIT_LOCK_KEY = 0x7A6B_6772_6964  # "zkgrid"

_ENTRIES = ENTRIES
_NODES = NODES
_CHECKPOINTS = CHECKPOINTS
_META = META


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """One ledger entry as stored: ``leaf_hash == leaf_hash(encode_entry(kind, payload))``."""

    index: int
    kind: EntryKind
    payload: bytes
    leaf_hash: bytes
    created_at: datetime

    @property
    def leaf_data(self) -> bytes:
        """The leaf's bytes (what the Merkle tree hashes)."""
        return encode_entry(self.kind, self.payload)


@dataclass(frozen=True, slots=True)
class Appended:
    """What :meth:`LedgerStore.append_batch` made, in the order of its items: the entries'
    indices and leaf hashes, and the checkpoint signed in the same transaction (``None``
    only for an empty batch, which appends and signs nothing)."""

    indices: tuple[int, ...]
    leaf_hashes: tuple[bytes, ...]
    checkpoint: SignedCheckpoint | None


@dataclass(frozen=True, slots=True)
class AppendedEntry:
    """What :meth:`LedgerStore.append` made: the entry's index, its leaf hash and the
    checkpoint signed when it was appended (size ``index + 1``)."""

    index: int
    leaf_hash: bytes
    checkpoint: SignedCheckpoint


def normalize_url(url: str) -> str:
    """Map ``postgresql://`` and ``postgres://`` to the psycopg 3 driver; check the scheme."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreConfigError(f"cannot parse the store URL: {exc}") from None
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):
        if parsed.drivername in ("postgresql", "postgres"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        if parsed.drivername != "postgresql+psycopg":
            raise StoreConfigError("PostgreSQL URLs must use the psycopg (3) driver")
    elif backend == "sqlite":
        if parsed.drivername not in ("sqlite", "sqlite+pysqlite"):
            raise StoreConfigError("SQLite URLs must use the default pysqlite driver")
    else:
        raise StoreConfigError(f"unsupported database backend {backend!r}")
    return parsed.render_as_string(hide_password=False)


def _is_sqlite_memory(url: str) -> bool:
    parsed = make_url(url)
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


def _make_engine(url: str, *, sqlite_synchronous: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(
            url,
            pool_size=5,
            max_overflow=10,
            # No pre-ping (a round trip per checkout): a dropped connection fails one
            # call with StoreUnavailable and is replaced by the pool.
            connect_args={"connect_timeout": 10, "application_name": "zkgrid-ledger"},
        )
    memory = _is_sqlite_memory(url)
    if memory:
        engine = create_engine(
            "sqlite://",
            poolclass=StaticPool,
            connect_args={"check_same_thread": False},
        )
    else:
        engine = create_engine(
            url,
            pool_size=5,
            max_overflow=10,
            pool_timeout=LOCK_TIMEOUT_S,
            connect_args={"timeout": LOCK_TIMEOUT_S, "check_same_thread": False},
        )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let the store emit BEGIN itself (pysqlite's implicit BEGIN is DEFERRED only).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={int(LOCK_TIMEOUT_S * 1000)}")
        if not memory:
            _enable_wal(cur)
        cur.execute("PRAGMA recursive_triggers=ON")
        cur.execute(f"PRAGMA synchronous={sqlite_synchronous}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("zkgrid_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _enable_wal(cur: Any) -> None:
    """Switch a SQLite file to WAL (persistent). Two connections racing to switch a
    fresh file get "database is locked" without the busy handler: retry."""
    deadline = time.monotonic() + LOCK_TIMEOUT_S
    delay = 0.005
    while True:
        try:
            mode = cur.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() == "wal":
                return
            cur.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


class _BeyondSize(Exception):
    """Internal: a requested tree size is beyond the committed size."""


def _now() -> datetime:
    return datetime.now(UTC)


def _as_utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; the store only ever writes UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@contextmanager
def _db_errors(action: str) -> Iterator[None]:
    """Translate driver errors into the store's typed errors."""
    try:
        yield
    except DBAPIError as exc:
        text = str(exc.orig) if exc.orig is not None else str(exc)
        if APPEND_ONLY_MARKER in text:
            raise AppendOnlyViolation(f"{action}: the database refused a rewrite ({text})") from exc
        if (
            isinstance(exc, OperationalError)
            or exc.connection_invalidated
            or _sqlstate(exc).startswith(_UNAVAILABLE_SQLSTATES)
        ):
            raise StoreUnavailable(f"{action}: the database is unavailable ({text})") from exc
        raise


#: PostgreSQL error classes after which the same request may succeed later: connection
#: exceptions (08), insufficient resources such as a full disk (53), operator
#: intervention such as a shutdown (57P), and a revoked right (42501: the service
#: recovers when the right is granted again, without a restart).
_UNAVAILABLE_SQLSTATES = ("08", "53", "57P", "42501")


def _sqlstate(exc: DBAPIError) -> str:
    return str(getattr(exc.orig, "sqlstate", None) or "")


#: Told of every committed append: the (index, kind) of each entry appended, and the size of
#: the checkpoint signed with them (:meth:`LedgerStore.add_append_listener`).
AppendListener = Callable[[Sequence[tuple[int, EntryKind]], int], None]


class LedgerStore:
    """An append-only RFC 6962 log of zkgrid entries with signed checkpoints.

    Build it with :func:`open_store`. Thread-safe; several instances (or
    processes, or service replicas) may append to the same database at once.
    """

    def __init__(self, engine: Engine, signer: CheckpointSigner, origin: str) -> None:
        self._engine = engine
        self._signer = signer
        self._verifier = signer.verifier()
        self._origin = origin
        self._sqlite = engine.dialect.name == "sqlite"
        # One shared connection (in-memory SQLite) must not be used by two threads at once.
        self._local_lock: threading.RLock | None = (
            threading.RLock() if isinstance(engine.pool, StaticPool) else None
        )
        self._append_listeners: tuple[AppendListener, ...] = ()

    # ------------------------------------------------------------------ plumbing

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for operators and tests; writes through it bypass the store)."""
        return self._engine

    @property
    def origin(self) -> str:
        return self._origin

    @property
    def backend(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._engine.dialect.name

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> LedgerStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def connection_guard(self) -> AbstractContextManager[Any]:
        """Hold this around any use of a connection of :attr:`engine`.

        An in-memory SQLite store has one shared connection, which two threads must
        not use at once: this is the store's own (re-entrant) lock then, and a no-op
        context otherwise. The store takes it for its own reads and writes;
        components that keep their own tables in the store's database
        (:mod:`service.witnesses`) take it around their connections too.
        """
        return self._local_lock if self._local_lock is not None else nullcontext()

    @contextmanager
    def _read(self, *, snapshot: bool = False) -> Iterator[Connection]:
        """A read transaction; ``snapshot`` makes several statements see one state."""
        with self.connection_guard(), _db_errors("read"), self._engine.connect() as conn:
            if not self._sqlite:
                # Rows are immutable once committed and sizes only grow, so single
                # reads need no transaction: one round trip per statement.
                level = "REPEATABLE READ" if snapshot else "AUTOCOMMIT"
                conn = conn.execution_options(isolation_level=level)
            with conn.begin():
                yield conn

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction holding the ledger's write lock from its first statement."""
        with self.connection_guard(), _db_errors("append"), self._engine.connect() as conn:
            if self._sqlite:
                conn = conn.execution_options(zkgrid_begin="IMMEDIATE")
            with conn.begin():
                if not self._sqlite:
                    conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{int(LOCK_TIMEOUT_S)}s'")
                    locked = conn.exec_driver_sql(
                        "SELECT id FROM ledger_meta WHERE id = 1 FOR UPDATE"
                    ).first()
                    if locked is None:
                        raise StoreIntegrityError("the ledger_meta row is missing")
                yield conn

    # ------------------------------------------------------------------ set-up

    def _initialise(self) -> None:
        """Create tables, triggers, the meta row and the size-0 checkpoint if missing."""
        with self.connection_guard(), _db_errors("initialise"), self._engine.connect() as conn:
            if self._sqlite:
                conn = conn.execution_options(zkgrid_begin="IMMEDIATE")
            with conn.begin():
                if not self._sqlite:
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_INIT_LOCK_KEY})")
                SQLModel.metadata.create_all(conn, tables=list(TABLES))
                install_triggers(conn)
                meta = conn.execute(_META.select().where(_META.c.id == 1)).first()
                if meta is None:
                    conn.execute(
                        insert(_META),
                        {
                            "id": 1,
                            "origin": self._origin,
                            "schema_version": SCHEMA_VERSION,
                            "created_at": _now(),
                        },
                    )
                elif meta.origin != self._origin:
                    raise StoreConfigError(
                        f"the store was created for origin {meta.origin!r}, not {self._origin!r}"
                    )
                elif meta.schema_version != SCHEMA_VERSION:
                    raise StoreConfigError(
                        f"schema version {meta.schema_version} is not supported"
                        f" (expected {SCHEMA_VERSION})"
                    )
                latest = self._latest_row(conn)
                if latest is None:
                    if self._last_entry_index(conn) is not None:
                        raise StoreIntegrityError("entries are stored but no checkpoint is")
                    self._insert_checkpoint(conn, Checkpoint(self._origin, 0, EMPTY_ROOT))
                else:
                    self._check_signer(latest.note)

    def _check_signer(self, note: str) -> None:
        """:class:`LogKeyMismatch` unless the loaded key signed the latest checkpoint (its
        signature itself is verified by the start-up check)."""
        try:
            signed = SignedCheckpoint.from_text(note)
        except LedgerError:
            return  # not a note at all: the start-up check reports it as an integrity failure
        ids = [sig.key_id for sig in signed.signatures]
        if self._signer.key_id in ids:
            return
        theirs = ids[0].hex() if ids else "?"
        raise LogKeyMismatch(
            f"this ledger is signed by key id {theirs}; you loaded key id"
            f" {self._signer.key_id.hex()}: start with the ledger's own log key (restore it"
            " from its backup) or point --db at another ledger",
            theirs,
        )

    # ------------------------------------------------------------------ small queries

    @staticmethod
    def _latest_row(conn: Connection) -> Any:
        return conn.execute(
            _CHECKPOINTS.select().order_by(_CHECKPOINTS.c.size.desc()).limit(1)
        ).first()

    @staticmethod
    def _last_entry_index(conn: Connection) -> int | None:
        row = conn.execute(
            _ENTRIES.select()
            .with_only_columns(_ENTRIES.c.idx)
            .order_by(_ENTRIES.c.idx.desc())
            .limit(1)
        ).first()
        return None if row is None else int(row[0])

    def _current_size(self, conn: Connection) -> int:
        row = conn.execute(
            _CHECKPOINTS.select()
            .with_only_columns(_CHECKPOINTS.c.size)
            .order_by(_CHECKPOINTS.c.size.desc())
            .limit(1)
        ).first()
        if row is None:
            raise StoreIntegrityError("no checkpoint is stored")
        return int(row[0])

    def _fetch_nodes(self, conn: Connection, ids: Sequence[NodeId]) -> dict[NodeId, bytes]:
        """One bulk primary-key read of the requested perfect nodes."""
        if not ids:
            return {}
        if self._sqlite:
            where = " OR ".join(["(level = ? AND idx = ?)"] * len(ids))
            rows = conn.exec_driver_sql(
                f"SELECT level, idx, hash FROM ledger_nodes WHERE {where}",  # noqa: S608 -- placeholders
                tuple(v for nid in ids for v in nid),
            ).all()
        else:
            # One constant statement (psycopg prepares it after a few uses).
            rows = conn.exec_driver_sql(
                "SELECT n.level, n.idx, n.hash FROM ledger_nodes n"
                " JOIN unnest(%s::smallint[], %s::bigint[]) AS w(level, idx)"
                " ON n.level = w.level AND n.idx = w.idx",
                ([level for level, _ in ids], [index for _, index in ids]),
            ).all()
        return {(int(r[0]), int(r[1])): bytes(r[2]) for r in rows}

    def _insert_checkpoint(self, conn: Connection, checkpoint: Checkpoint) -> SignedCheckpoint:
        signed = self._signer.sign(checkpoint)
        conn.execute(
            insert(_CHECKPOINTS),
            {
                "size": checkpoint.size,
                "root": checkpoint.root,
                "note": signed.to_text(),
                "created_at": _now(),
            },
        )
        return signed

    def add_append_listener(self, listener: AppendListener) -> None:
        """Call ``listener(entries, checkpoint_size)`` after each append commits, in the
        appending thread, with the (index, kind) of every entry appended (never a payload).
        The service's append log and metrics listen here (:mod:`service.logs`,
        :mod:`service.metrics`); a listener that raises is logged and ignored (the append
        stands)."""
        self._append_listeners = (*self._append_listeners, listener)

    def _appended(self, entries: Sequence[tuple[int, EntryKind]], checkpoint_size: int) -> None:
        for listener in self._append_listeners:
            try:
                listener(entries, checkpoint_size)
            except Exception:
                _log.exception("an append listener failed (the append stands)")

    # ------------------------------------------------------------------ appends

    def append(
        self,
        kind: EntryKind | int,
        payload: bytes,
        *,
        precondition: Precondition | None = None,
        stamp: Callable[[], datetime] | None = None,
    ) -> AppendedEntry:
        """Append one entry; once committed with its nodes and checkpoint, return its index,
        leaf hash and that checkpoint."""
        made = self.append_batch([(kind, payload)], precondition=precondition, stamp=stamp)
        if made.checkpoint is None:  # pragma: no cover - one item always signs
            raise StoreIntegrityError("an append of one entry signed no checkpoint")
        return AppendedEntry(made.indices[0], made.leaf_hashes[0], made.checkpoint)

    def append_batch(
        self,
        items: Iterable[tuple[EntryKind | int, bytes]],
        *,
        precondition: Precondition | None = None,
        stamp: Callable[[], datetime] | None = None,
    ) -> Appended:
        """Append entries atomically (one transaction, one new checkpoint); return what it
        made (:class:`Appended`: indices, leaf hashes, the signed checkpoint).

        An empty batch appends nothing, signs nothing and returns no indices.

        ``precondition(conn, size)``, when given, runs inside the write transaction,
        holding the ledger's write lock, after the current size is read and before
        anything is inserted: ``size`` is the index the first new entry will get. It
        may read the entries it has not seen yet through ``conn`` (see
        :meth:`entries_locked`); raising aborts the transaction and nothing is
        stored. This is how the settlement service checks rules that depend on the
        log's state without two replicas accepting conflicting entries.

        ``stamp()``, when given, is called under the write lock after the precondition and
        gives the entries' stored time (``created_at``; an aware datetime, stored in UTC):
        the settlement service passes the time it judged them at, which a replay of the log
        judges them at again. Without it the entries are stamped with the wall clock.
        """
        leaves = [self._leaf(kind, payload) for kind, payload in items]
        if not leaves:
            return Appended((), (), None)
        with self._write() as conn:
            latest = self._latest_row(conn)
            if latest is None:
                raise StoreIntegrityError("no checkpoint is stored")
            size = int(latest.size)
            old_root = bytes(latest.root)
            last = self._last_entry_index(conn)
            if (last if last is not None else -1) != size - 1:
                raise StoreIntegrityError(
                    f"the last entry index {last} does not match the last checkpoint size {size}"
                )
            if precondition is not None:
                precondition(conn, size)
            frontier_ids = CompactRange.frontier_ids(size)
            known = self._fetch_nodes(conn, frontier_ids)
            try:
                compact = CompactRange(size, [known[nid] for nid in frontier_ids])
            except KeyError:
                raise StoreIntegrityError(
                    f"a stored frontier node of size {size} is missing"
                ) from None
            if compact.root() != old_root:
                raise StoreIntegrityError(
                    f"the stored frontier of size {size} does not rebuild the last"
                    " checkpoint's root"
                )
            now = _now() if stamp is None else stamp().astimezone(UTC)
            entry_rows: list[dict[str, Any]] = []
            node_rows: list[dict[str, Any]] = []
            for offset, (kind, payload, lh) in enumerate(leaves):
                entry_rows.append(
                    {
                        "idx": size + offset,
                        "kind": int(kind),
                        "payload": payload,
                        "leaf_hash": lh,
                        "created_at": now,
                    }
                )
                for (level, index), h in compact.append(lh):
                    known[(level, index)] = h
                    node_rows.append({"level": level, "idx": index, "hash": h})
            conn.execute(insert(_ENTRIES), entry_rows)
            conn.execute(insert(_NODES), node_rows)
            new_size = compact.size
            new_root = compact.root()

            def fetch(ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
                missing = [nid for nid in ids if nid not in known]
                found = {nid: known[nid] for nid in ids if nid in known}
                found.update(self._fetch_nodes(conn, missing))
                return found

            try:
                proof = consistency_proof(size, new_size, fetch)
                verify_consistency(size, new_size, proof, old_root, new_root)
            except LedgerError as exc:
                raise AppendOnlyViolation(
                    f"refusing to sign size {new_size}: not consistent with the last checkpoint"
                    f" (size {size}): {exc}"
                ) from exc
            signed = self._insert_checkpoint(conn, Checkpoint(self._origin, new_size, new_root))
        if self._append_listeners:
            self._appended([(size + i, kind) for i, (kind, _, _) in enumerate(leaves)], new_size)
        return Appended(tuple(range(size, new_size)), tuple(lh for _, _, lh in leaves), signed)

    def entries_locked(self, conn: Connection, start: int, stop: int) -> list[StoredEntry]:
        """Entries ``[start, stop)`` read through ``conn`` (for a precondition of
        :meth:`append_batch`, which must not open another connection: on in-memory
        SQLite that would deadlock, elsewhere it would not see the locked state)."""
        if not 0 <= start <= stop:
            raise EntryNotFound(f"range [{start}, {stop}) is not a valid range")
        if start == stop:
            return []
        rows = conn.execute(
            _ENTRIES.select()
            .where(_ENTRIES.c.idx >= start, _ENTRIES.c.idx < stop)
            .order_by(_ENTRIES.c.idx)
        ).all()
        out = [self._entry_from_row(row) for row in rows]
        if [e.index for e in out] != list(range(start, stop)):
            raise StoreIntegrityError(f"entries in [{start}, {stop}) are missing")
        return out

    @staticmethod
    def _leaf(kind: EntryKind | int, payload: bytes) -> tuple[EntryKind, bytes, bytes]:
        data = encode_entry(kind, payload)  # type: ignore[arg-type]  # ints are checked  # validates kind and payload (LedgerArgumentError)
        return EntryKind(kind), bytes(payload), leaf_hash(data)

    # ------------------------------------------------------------------ reads

    def size(self) -> int:
        """The number of entries covered by the latest checkpoint."""
        with self._read() as conn:
            return self._current_size(conn)

    def head(self) -> tuple[int, datetime]:
        """The latest checkpoint's size and when it was signed (UTC), in one indexed read
        (the admin port's metrics and readiness check, :mod:`service.admin`)."""
        with self._read() as conn:
            row = self._latest_row(conn)
        if row is None:
            raise StoreIntegrityError("no checkpoint is stored")
        return int(row.size), _as_utc(row.created_at)

    def entry(self, index: int) -> StoredEntry:
        with self._read() as conn:
            row = conn.execute(_ENTRIES.select().where(_ENTRIES.c.idx == index)).first()
            if row is None or index >= self._current_size(conn):
                raise EntryNotFound(f"no entry at index {index}")
        return self._entry_from_row(row)

    def entries(
        self, start: int = 0, end: int | None = None, *, chunk_size: int = DEFAULT_CHUNK
    ) -> Iterator[StoredEntry]:
        """Stream entries ``[start, end)`` (``end`` defaults to the current size) in chunks.

        Each chunk is its own short read, so a slow consumer holds no transaction.
        """
        if chunk_size < 1:
            raise EntryNotFound("chunk_size must be positive")
        size = self.size()
        stop = size if end is None else end
        if not 0 <= start <= stop <= size:
            raise EntryNotFound(f"range [{start}, {stop}) is outside a ledger of size {size}")
        cursor = start
        while cursor < stop:
            with self._read() as conn:
                rows = conn.execute(
                    _ENTRIES.select()
                    .where(_ENTRIES.c.idx >= cursor, _ENTRIES.c.idx < stop)
                    .order_by(_ENTRIES.c.idx)
                    .limit(chunk_size)
                ).all()
            if not rows:
                raise StoreIntegrityError(f"entries from index {cursor} are missing")
            for row in rows:
                if int(row.idx) != cursor:
                    raise StoreIntegrityError(f"entry {cursor} is missing")
                yield self._entry_from_row(row)
                cursor += 1

    @staticmethod
    def _entry_from_row(row: Any) -> StoredEntry:
        try:
            kind = EntryKind(int(row.kind))
        except ValueError:
            raise StoreIntegrityError(f"entry {row.idx} has an unknown kind") from None
        return StoredEntry(
            index=int(row.idx),
            kind=kind,
            payload=bytes(row.payload),
            leaf_hash=bytes(row.leaf_hash),
            created_at=_as_utc(row.created_at),
        )

    def _tree_size(self, conn: Connection, size: int | None, what: str = "size") -> int:
        if size is None:
            return self._current_size(conn)
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise EntryNotFound(f"{what} must be a non-negative integer")
        return size

    def _proof(self, conn: Connection, size: int, make: Callable[[NodeFetcher], _T]) -> _T:
        """Run ``make`` with a fetcher over ``conn``, checking ``size`` exists in the same query.

        Leaf ``size - 1`` is stored iff ``size`` is at most the committed size (entries,
        nodes and checkpoint commit together), so it is fetched as a probe alongside
        the proof's nodes: an explicit size costs no extra round trip.
        """
        probe: NodeId = (0, size - 1)
        probed = size == 0

        def fetch(ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
            nonlocal probed
            got = self._fetch_nodes(conn, ids if probe in ids else [*ids, probe])
            probed = True
            if probe not in got:
                raise _BeyondSize
            return got

        try:
            result = make(fetch)
            if not probed:
                fetch([])
        except _BeyondSize:
            current = self._current_size(conn)
            raise EntryNotFound(f"size {size} is beyond the ledger's size {current}") from None
        except NodeFetchError as exc:
            raise StoreIntegrityError(f"a stored node is missing: {exc}") from exc
        return result

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """PATH(index, D[0:size]) (one query); ``size`` defaults to the current size."""
        with self._read() as conn:
            tree_size = self._tree_size(conn, size)
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < tree_size:
                raise EntryNotFound(f"index {index} is outside a tree of size {tree_size}")
            return self._proof(conn, tree_size, lambda f: inclusion_proof(index, tree_size, f))

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        """PROOF(size1, D[0:size2]) (one query); ``size2`` defaults to the current size."""
        with self._read() as conn:
            second = self._tree_size(conn, size2, "size2")
            first = self._tree_size(conn, size1, "size1")
            if first > second:
                raise EntryNotFound(f"size1 {first} is larger than size2 {second}")
            return self._proof(conn, second, lambda f: consistency_proof(first, second, f))

    def root_at(self, size: int) -> bytes:
        """MTH(D[0:size]) for any size up to the current one."""
        with self._read() as conn:
            tree_size = self._tree_size(conn, size)
            return self._proof(conn, tree_size, lambda f: root_at(tree_size, f))

    def latest_checkpoint(self) -> SignedCheckpoint:
        with self._read() as conn:
            row = self._latest_row(conn)
        if row is None:
            raise StoreIntegrityError("no checkpoint is stored")
        return self._signed_from_row(row)

    def checkpoint_at(self, size: int) -> SignedCheckpoint:
        """The checkpoint signed for exactly ``size`` (one per appended batch)."""
        with self._read() as conn:
            row = conn.execute(_CHECKPOINTS.select().where(_CHECKPOINTS.c.size == size)).first()
        if row is None:
            raise EntryNotFound(f"no checkpoint was signed at size {size}")
        return self._signed_from_row(row)

    def checkpoint_covering(self, index: int) -> SignedCheckpoint:
        """The checkpoint signed by the transaction that appended entry ``index``: the
        smallest one whose tree holds it (every append signs the new size, so the one
        before has a size <= ``index``). The same answer for every later call."""
        with self._read() as conn:
            row = conn.execute(
                _CHECKPOINTS.select()
                .where(_CHECKPOINTS.c.size > index)
                .order_by(_CHECKPOINTS.c.size)
                .limit(1)
            ).first()
        if row is None:
            raise EntryNotFound(f"entry {index} is in no signed checkpoint")
        return self._signed_from_row(row)

    def checkpoints(self, start_size: int = 0) -> Iterator[SignedCheckpoint]:
        """Stream every stored checkpoint with size >= ``start_size``, by size."""
        cursor = start_size
        while True:
            with self._read() as conn:
                rows = conn.execute(
                    _CHECKPOINTS.select()
                    .where(_CHECKPOINTS.c.size >= cursor)
                    .order_by(_CHECKPOINTS.c.size)
                    .limit(DEFAULT_CHUNK)
                ).all()
            if not rows:
                return
            for row in rows:
                yield self._signed_from_row(row)
            cursor = int(rows[-1].size) + 1

    @staticmethod
    def _signed_from_row(row: Any) -> SignedCheckpoint:
        try:
            return SignedCheckpoint.from_text(row.note)
        except LedgerError as exc:
            raise StoreIntegrityError(f"the checkpoint at size {row.size} is malformed") from exc

    # ------------------------------------------------------------------ self-check

    def verify_integrity(
        self, *, full: bool = True, all_signatures: bool = False, chunk_size: int = DEFAULT_CHUNK
    ) -> Checkpoint:
        """Check what is stored against the last signed checkpoint; return that checkpoint.

        Always (``full=False``, O(log n)): the meta row names this origin; the
        last checkpoint's signature verifies with the signer's key and its
        text agrees with its columns; no entry lies beyond it; the stored right
        frontier rebuilds its root.

        ``full=True`` (O(n), streamed in ``chunk_size`` chunks): also re-hash
        every entry's payload and compare it with the stored leaf hash, rebuild
        the tree and compare every stored node and every stored checkpoint's
        root, and check no stray node is stored. ``all_signatures=True`` also
        verifies every checkpoint's signature (about 0.1 ms each).

        Raises :class:`StoreIntegrityError` saying which check failed.
        """
        with self._read(snapshot=True) as conn:
            checkpoint = self._verify_head(conn)
            if full:
                self._verify_all(conn, checkpoint, all_signatures, chunk_size)
        return checkpoint

    def _verify_checkpoint_row(self, row: Any) -> Checkpoint:
        try:
            checkpoint = verify_checkpoint(row.note, self._verifier)
        except LedgerError as exc:
            raise StoreIntegrityError(
                f"the checkpoint at size {row.size} does not verify: {exc}"
            ) from exc
        if (
            checkpoint.origin != self._origin
            or checkpoint.size != int(row.size)
            or checkpoint.root != bytes(row.root)
        ):
            raise StoreIntegrityError(
                f"the signed checkpoint at size {row.size} disagrees with its stored columns"
                " or origin"
            )
        return checkpoint

    def _verify_head(self, conn: Connection) -> Checkpoint:
        meta = conn.execute(_META.select().where(_META.c.id == 1)).first()
        if meta is None:
            raise StoreIntegrityError("the ledger_meta row is missing")
        if meta.origin != self._origin:
            raise StoreConfigError(
                f"the store was created for origin {meta.origin!r}, not {self._origin!r}"
            )
        row = self._latest_row(conn)
        if row is None:
            raise StoreIntegrityError("no checkpoint is stored")
        checkpoint = self._verify_checkpoint_row(row)
        size = checkpoint.size
        last = self._last_entry_index(conn)
        if (last if last is not None else -1) != size - 1:
            raise StoreIntegrityError(
                f"the last entry index {last} does not match the last checkpoint size {size}"
            )
        ids = CompactRange.frontier_ids(size)
        nodes = self._fetch_nodes(conn, ids)
        if any(nid not in nodes for nid in ids):
            raise StoreIntegrityError(f"a stored frontier node of size {size} is missing")
        if CompactRange(size, [nodes[nid] for nid in ids]).root() != checkpoint.root:
            raise StoreIntegrityError(
                "the recomputed root does not match the last checkpoint"
                f" (from the stored frontier of size {size})"
            )
        return checkpoint

    def _verify_all(
        self, conn: Connection, head: Checkpoint, all_signatures: bool, chunk_size: int
    ) -> None:
        size = head.size
        compact = CompactRange.empty()
        checkpoint_rows = iter(
            conn.execute(
                _CHECKPOINTS.select()
                .where(_CHECKPOINTS.c.size <= size)
                .order_by(_CHECKPOINTS.c.size)
                .execution_options(yield_per=chunk_size)
            )
        )
        next_cp = next(checkpoint_rows, None)

        def check_checkpoints() -> Any:
            cp = next_cp
            while cp is not None and int(cp.size) <= compact.size:
                if int(cp.size) < compact.size:
                    raise StoreIntegrityError(f"checkpoint sizes are not increasing at {cp.size}")
                if bytes(cp.root) != compact.root():
                    raise StoreIntegrityError(
                        f"the recomputed root does not match the checkpoint at size {cp.size}"
                    )
                if all_signatures:
                    self._verify_checkpoint_row(cp)
                cp = next(checkpoint_rows, None)
            return cp

        next_cp = check_checkpoints()
        expected_nodes = 0
        cursor = 0
        while cursor < size:
            stop = min(cursor + chunk_size, size)
            rows = conn.execute(
                _ENTRIES.select()
                .where(_ENTRIES.c.idx >= cursor, _ENTRIES.c.idx < stop)
                .order_by(_ENTRIES.c.idx)
            ).all()
            built: dict[NodeId, bytes] = {}
            for row in rows:
                index = int(row.idx)
                if index != compact.size:
                    raise StoreIntegrityError(f"entry {compact.size} is missing")
                try:
                    data = encode_entry(EntryKind(int(row.kind)), bytes(row.payload))
                except (ValueError, LedgerError):
                    raise StoreIntegrityError(f"entry {index} cannot be encoded") from None
                lh = leaf_hash(data)
                if lh != bytes(row.leaf_hash):
                    raise StoreIntegrityError(
                        f"entry {index}: the re-hashed payload does not match the stored leaf hash"
                    )
                built.update(compact.append(lh))
                if next_cp is not None and int(next_cp.size) == compact.size:
                    next_cp = check_checkpoints()
            if compact.size != stop:
                raise StoreIntegrityError(f"entry {compact.size} is missing")
            stored = self._nodes_completed_in(conn, cursor, stop)
            if stored != built:
                bad = sorted(set(stored.items()) ^ set(built.items()))[0][0]
                raise StoreIntegrityError(f"stored node {bad} does not match the re-hashed entries")
            expected_nodes += len(built)
            cursor = stop
        if next_cp is not None:
            raise StoreIntegrityError(f"checkpoint at size {next_cp.size} was never reached")
        if compact.root() != head.root:
            raise StoreIntegrityError(
                "the recomputed root does not match the last checkpoint"
                f" (re-hashing the {size} stored entries)"
            )
        stray = conn.exec_driver_sql(
            "SELECT COUNT(*) FROM ledger_nodes WHERE idx < (%s >> level)"  # noqa: S608
            % ("?" if self._sqlite else "%s"),
            (size,),
        ).scalar_one()
        if int(stray) != expected_nodes:
            raise StoreIntegrityError(
                f"{int(stray)} nodes are stored for size {size}, expected {expected_nodes}"
            )

    @staticmethod
    def _nodes_completed_in(conn: Connection, start: int, stop: int) -> dict[NodeId, bytes]:
        """Stored nodes completed by appending leaves ``[start, stop)``."""
        out: dict[NodeId, bytes] = {}
        level = 0
        while (stop >> level) > (start >> level):
            lo, hi = start >> level, (stop >> level) - 1
            rows = conn.execute(
                _NODES.select().where(
                    _NODES.c.level == level, _NODES.c.idx >= lo, _NODES.c.idx <= hi
                )
            ).all()
            out.update({(level, int(r.idx)): bytes(r.hash) for r in rows})
            level += 1
        return out


def open_store(
    url: str,
    signer: CheckpointSigner,
    origin: str,
    *,
    startup_check: StartupCheck = "full",
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL",
) -> LedgerStore:
    """Open (creating if needed) the ledger at ``url`` and self-check it before serving.

    ``url``: ``sqlite:///path/to/ledger.db`` (WAL mode), ``sqlite://`` (in
    memory, one process), or ``postgresql://user@host:port/db`` (also
    ``postgresql+psycopg://``). ``signer`` signs a checkpoint after every
    appended batch; ``origin`` names the log in its checkpoints and must match
    the one the store was created with.

    ``startup_check``: ``"full"`` (default, O(n): re-hash every payload) or
    ``"quick"`` (O(log n)); see :meth:`LedgerStore.verify_integrity`.
    ``sqlite_synchronous``: ``"FULL"`` (default) makes each commit durable
    across power loss; ``"NORMAL"`` keeps it across process crashes only.
    Raises :class:`StoreIntegrityError` when the self-check fails,
    :class:`StoreUnavailable` when the database cannot be reached.
    """
    if not isinstance(origin, str) or not origin or "\n" in origin:
        raise StoreConfigError("origin must be a non-empty single-line string")
    if startup_check not in ("full", "quick"):
        raise StoreConfigError("startup_check must be 'full' or 'quick'")
    if sqlite_synchronous not in ("FULL", "NORMAL"):
        raise StoreConfigError("sqlite_synchronous must be 'FULL' or 'NORMAL'")
    engine = _make_engine(normalize_url(url), sqlite_synchronous=sqlite_synchronous)
    store = LedgerStore(engine, signer, origin)
    try:
        store._initialise()
        store.verify_integrity(full=startup_check == "full")
    except BaseException:
        engine.dispose()
        raise
    return store
