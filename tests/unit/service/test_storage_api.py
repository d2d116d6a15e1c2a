"""Unit tests of service.storage that need no server: URLs, errors, schema text, arguments."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import pytest

from ledger.checkpoint import CheckpointSigner
from ledger.entries import EntryKind
from service.storage import (
    AppendOnlyViolation,
    EntryNotFound,
    StorageError,
    StoreConfigError,
    StoreIntegrityError,
    StoreUnavailable,
    normalize_url,
    open_store,
)
from service.storage.schema import APPEND_ONLY_MARKER, sqlite_trigger_ddl
from zkgrid.errors import InvalidArgumentError, ZkgridError


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql://postgres@127.0.0.1:5432/db",
            "postgresql+psycopg://postgres@127.0.0.1:5432/db",
        ),
        ("postgres://u:pw@h/db", "postgresql+psycopg://u:pw@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///var/ledger.db", "sqlite:///var/ledger.db"),
        ("sqlite://", "sqlite://"),
    ],
)
def test_normalize_url(url: str, expected: str) -> None:
    assert normalize_url(url) == expected


@pytest.mark.parametrize(
    "url", ["mysql://u@h/db", "postgresql+psycopg2://u@h/db", "sqlite+aiosqlite://", "::"]
)
def test_unsupported_urls_are_config_errors(url: str) -> None:
    with pytest.raises(StoreConfigError) as info:
        normalize_url(url)
    assert isinstance(info.value, InvalidArgumentError)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (StoreUnavailable, "STORE_UNAVAILABLE"),
        (StoreIntegrityError, "STORE_INTEGRITY"),
        (AppendOnlyViolation, "APPEND_ONLY_VIOLATION"),
        (StoreConfigError, "STORE_CONFIG"),
        (EntryNotFound, "NOT_FOUND"),
    ],
)
def test_errors_share_the_root_and_have_reasons(error: type[StorageError], reason: str) -> None:
    assert issubclass(error, StorageError)
    assert issubclass(error, ZkgridError)
    assert error.reason == reason
    assert error("x").reason == reason


def test_sqlite_triggers_cover_every_table_and_operation() -> None:
    ddl = "\n".join(sqlite_trigger_ddl())
    for table in ("ledger_meta", "ledger_entries", "ledger_nodes", "ledger_checkpoints"):
        assert f"BEFORE UPDATE ON {table}" in ddl
        assert f"BEFORE DELETE ON {table}" in ddl
        assert f"BEFORE INSERT ON {table}" in ddl
    assert APPEND_ONLY_MARKER in ddl


@pytest.mark.parametrize("origin", ["", "two\nlines", 7])
def test_open_store_rejects_bad_origins(origin: object, ledger_signer: CheckpointSigner) -> None:
    with pytest.raises(StoreConfigError):
        open_store("sqlite://", ledger_signer, origin)  # type: ignore[arg-type]


def test_open_store_rejects_bad_options(ledger_signer: CheckpointSigner) -> None:
    with pytest.raises(StoreConfigError):
        open_store("sqlite://", ledger_signer, "o", startup_check="none")  # type: ignore[arg-type]
    with pytest.raises(StoreConfigError):
        open_store("sqlite://", ledger_signer, "o", sqlite_synchronous="OFF")  # type: ignore[arg-type]


def test_unreachable_postgres_is_unavailable(ledger_signer: CheckpointSigner) -> None:
    # Port 1 on localhost: nothing listens there.
    with pytest.raises(StoreUnavailable):
        open_store("postgresql://nobody@127.0.0.1:1/none", ledger_signer, "o")


def test_in_memory_store_round_trip(ledger_signer: CheckpointSigner) -> None:
    with open_store("sqlite://", ledger_signer, "unit/ledger") as store:
        assert store.backend == "sqlite"
        assert store.origin == "unit/ledger"
        made = store.append_batch([(EntryKind.BILL, b"a"), (EntryKind.TARIFF, b"b")])
        assert made.indices == (0, 1)
        assert made.leaf_hashes == tuple(store.entry(i).leaf_hash for i in (0, 1))
        assert made.checkpoint == store.latest_checkpoint()
        entry = store.entry(1)
        assert (entry.kind, entry.payload) == (EntryKind.TARIFF, b"b")
        assert store.latest_checkpoint().checkpoint.size == 2


def test_connection_guard_serialises_only_the_shared_in_memory_connection(
    ledger_signer: CheckpointSigner, tmp_path: Path
) -> None:
    with open_store("sqlite://", ledger_signer, "zkgrid.test/guard") as memory:
        guard = memory.connection_guard()
        assert guard is memory.connection_guard()  # one lock for every caller
        with guard, memory.connection_guard():  # re-entrant: the store reads while held
            assert memory.size() == 0
    with open_store(f"sqlite:///{tmp_path / 'l.db'}", ledger_signer, "zkgrid.test/guard") as file:
        assert isinstance(file.connection_guard(), nullcontext)
