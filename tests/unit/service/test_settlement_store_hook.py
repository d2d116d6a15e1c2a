"""The precondition hook of ``LedgerStore.append_batch``: runs under the write lock, sees the
size and the entries it has not seen yet, and aborts the append by raising."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Connection

from ledger.checkpoint import CheckpointSigner
from ledger.entries import EntryKind
from service.storage import LedgerStore, open_store
from zkgrid.errors import ZkgridError


class Refused(ZkgridError):
    """A precondition's refusal (reason INTERNAL, inherited)."""


@pytest.fixture
def store(
    ledger_url: str, ledger_signer: CheckpointSigner, ledger_origin: str
) -> Iterator[LedgerStore]:
    s = open_store(ledger_url, ledger_signer, ledger_origin)
    yield s
    s.close()


def test_precondition_sees_size_and_unseen_entries(store: LedgerStore) -> None:
    store.append_batch([(EntryKind.TARIFF, b"a"), (EntryKind.BILL, b"b")])
    seen: list[tuple[int, list[bytes]]] = []

    def check(conn: Connection, size: int) -> None:
        seen.append((size, [e.payload for e in store.entries_locked(conn, 1, size)]))

    index = store.append(EntryKind.BILL, b"c", precondition=check).index
    assert index == 2
    assert seen == [(2, [b"b"])]
    assert store.entries_locked.__doc__


def test_raising_aborts_and_stores_nothing(store: LedgerStore) -> None:
    store.append(EntryKind.TARIFF, b"a")
    checkpoint = store.latest_checkpoint()

    def refuse(_conn: Connection, _size: int) -> None:
        raise Refused("no")

    with pytest.raises(Refused):
        store.append_batch([(EntryKind.BILL, b"x"), (EntryKind.BILL, b"y")], precondition=refuse)
    assert store.size() == 1
    assert store.latest_checkpoint() == checkpoint
    store.verify_integrity()
    assert store.append(EntryKind.BILL, b"z").index == 1


def test_concurrent_conditional_appends_admit_exactly_one(store: LedgerStore) -> None:
    """Ten threads each append b"unique" only if it is not in the log yet: one wins."""
    barrier = threading.Barrier(10)
    results: list[str] = []
    lock = threading.Lock()

    def only_once(conn: Connection, size: int) -> None:
        if any(e.payload == b"unique" for e in store.entries_locked(conn, 0, size)):
            raise Refused("already there")

    def worker() -> None:
        barrier.wait()
        try:
            store.append(EntryKind.BILL, b"unique", precondition=only_once)
            outcome = "ok"
        except Refused:
            outcome = "refused"
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["ok"] + ["refused"] * 9
    assert [e.payload for e in store.entries()] == [b"unique"]
