"""One conformance suite for every ledger store backend (SQLite file, SQLite memory, PostgreSQL).

Everything a client sees is checked with the pure ``ledger`` package: indices,
entry round trips, proofs verified against the stored signed checkpoints, and
consistency between every pair of checkpoints.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ledger.checkpoint import Checkpoint, CheckpointSigner, verify_checkpoint
from ledger.entries import EntryKind, encode_entry
from ledger.merkle import EMPTY_ROOT, leaf_hash, root, verify_consistency, verify_inclusion
from service.storage import (
    Appended,
    AppendOnlyViolation,
    EntryNotFound,
    LedgerStore,
    LogKeyMismatch,
    StoreConfigError,
    open_store,
)
from service.storage import store as store_module
from zkgrid.errors import InvalidArgumentError


@pytest.fixture
def store(ledger_url: str, ledger_signer: CheckpointSigner, ledger_origin: str) -> Iterator[Any]:
    with open_store(ledger_url, ledger_signer, ledger_origin) as s:
        yield s


def _verified(store: LedgerStore, signer: CheckpointSigner, size: int) -> Checkpoint:
    return verify_checkpoint(store.checkpoint_at(size).to_text(), signer.verifier_key())


def _items(n: int, tag: str = "p") -> list[tuple[EntryKind, bytes]]:
    kinds = list(EntryKind)
    return [(kinds[i % len(kinds)], f"{tag}{i}".encode() * (i % 5 + 1)) for i in range(n)]


def test_empty_store_has_a_signed_size_zero_checkpoint(
    store: LedgerStore, ledger_signer: CheckpointSigner, ledger_origin: str
) -> None:
    assert store.size() == 0
    cp = verify_checkpoint(store.latest_checkpoint().to_text(), ledger_signer.verifier_key())
    assert cp == Checkpoint(ledger_origin, 0, EMPTY_ROOT)
    assert store.root_at(0) == EMPTY_ROOT
    assert list(store.entries()) == []
    assert store.verify_integrity(full=True) == cp


def test_appends_get_consecutive_indices_and_round_trip(store: LedgerStore) -> None:
    before = datetime.now(UTC) - timedelta(seconds=5)
    items = _items(7)
    assert [store.append(kind, payload).index for kind, payload in items] == list(range(7))
    assert store.size() == 7
    for i, (kind, payload) in enumerate(items):
        e = store.entry(i)
        assert (e.index, e.kind, e.payload) == (i, kind, payload)
        assert e.leaf_hash == leaf_hash(encode_entry(kind, payload))
        assert e.leaf_data == encode_entry(kind, payload)
        assert e.created_at.tzinfo is not None
        assert before <= e.created_at <= datetime.now(UTC) + timedelta(seconds=5)


def test_batches_are_atomic_units_with_one_checkpoint_each(
    store: LedgerStore, ledger_signer: CheckpointSigner
) -> None:
    assert store.append_batch(_items(5, "a")).indices == (0, 1, 2, 3, 4)
    assert store.append_batch([]) == Appended((), (), None)
    assert store.append_batch(_items(3, "b")).indices == (5, 6, 7)
    assert store.append(EntryKind.BILL, b"").index == 8
    sizes = [c.checkpoint.size for c in store.checkpoints()]
    assert sizes == [0, 5, 8, 9]
    for size in sizes:
        assert _verified(store, ledger_signer, size).root == store.root_at(size)
    with pytest.raises(EntryNotFound):
        store.checkpoint_at(6)  # inside a batch: never signed


def test_root_matches_ledger_merkle(store: LedgerStore) -> None:
    items = _items(37)
    store.append_batch(items[:20])
    store.append_batch(items[20:])
    leaves = [leaf_hash(encode_entry(k, p)) for k, p in items]
    for size in range(len(items) + 1):
        assert store.root_at(size) == root(leaves[:size])
    assert store.latest_checkpoint().checkpoint.root == root(leaves)


def test_inclusion_proofs_verify_against_stored_checkpoints(
    store: LedgerStore, ledger_signer: CheckpointSigner
) -> None:
    for n in (1, 2, 5, 8, 13):
        store.append_batch(_items(n, f"n{n}-"))
    for signed in store.checkpoints():
        cp = verify_checkpoint(signed.to_text(), ledger_signer.verifier_key())
        for index in range(cp.size):
            entry = store.entry(index)
            proof = store.inclusion_proof(index, cp.size)
            verify_inclusion(entry.leaf_hash, index, cp.size, proof, cp.root)
    # Default size: the latest checkpoint.
    latest = store.latest_checkpoint().checkpoint
    verify_inclusion(
        store.entry(3).leaf_hash, 3, latest.size, store.inclusion_proof(3), latest.root
    )


def test_consistency_proofs_between_every_pair_of_checkpoints(
    store: LedgerStore, ledger_signer: CheckpointSigner
) -> None:
    for n in (1, 3, 4, 7, 16):
        store.append_batch(_items(n, f"c{n}-"))
    cps = [
        verify_checkpoint(s.to_text(), ledger_signer.verifier_key()) for s in store.checkpoints()
    ]
    for a in cps:
        for b in cps:
            if a.size <= b.size:
                proof = store.consistency_proof(a.size, b.size)
                verify_consistency(a.size, b.size, proof, a.root, b.root)
    latest = cps[-1]
    mid = cps[2]
    verify_consistency(
        mid.size, latest.size, store.consistency_proof(mid.size), mid.root, latest.root
    )


def test_entries_stream_in_chunks(store: LedgerStore) -> None:
    items = _items(23)
    store.append_batch(items)
    streamed = list(store.entries(chunk_size=4))
    assert [(e.kind, e.payload) for e in streamed] == items
    assert [e.index for e in store.entries(5, 12, chunk_size=3)] == list(range(5, 12))
    assert list(store.entries(23)) == []
    with pytest.raises(EntryNotFound):
        list(store.entries(0, 24))
    with pytest.raises(EntryNotFound):
        list(store.entries(5, 4))


def test_out_of_range_reads_raise_typed_errors(store: LedgerStore) -> None:
    store.append_batch(_items(4))
    for call in (
        lambda: store.entry(4),
        lambda: store.entry(-1),
        lambda: store.inclusion_proof(4),
        lambda: store.inclusion_proof(0, 5),
        lambda: store.inclusion_proof(2, 2),
        lambda: store.consistency_proof(1, 5),
        lambda: store.consistency_proof(3, 2),
        lambda: store.root_at(5),
        lambda: store.checkpoint_at(3),
    ):
        with pytest.raises(EntryNotFound) as info:
            call()
        assert isinstance(info.value, InvalidArgumentError)
        assert info.value.reason == "NOT_FOUND"


def test_invalid_entries_are_refused_before_anything_is_written(store: LedgerStore) -> None:
    store.append(EntryKind.BILL, b"ok")
    with pytest.raises(InvalidArgumentError):
        store.append_batch([(EntryKind.BILL, b"fine"), (99, b"unknown kind")])
    with pytest.raises(InvalidArgumentError):
        store.append(EntryKind.BILL, "text, not bytes")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        store.append(True, b"a bool is not a kind")
    assert store.size() == 1
    assert store.append(int(EntryKind.TARIFF), b"int kind").index == 1
    assert store.entry(1).kind is EntryKind.TARIFF


def test_a_failure_inside_the_transaction_stores_nothing(
    store: LedgerStore, ledger_signer: CheckpointSigner, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.append_batch(_items(3))
    latest = store.latest_checkpoint()

    class Boom(RuntimeError):
        pass

    def failing_sign(checkpoint: Checkpoint) -> Any:
        raise Boom

    monkeypatch.setattr(store, "_signer", type("S", (), {"sign": staticmethod(failing_sign)})())
    with pytest.raises(Boom):
        store.append_batch(_items(4, "lost"))
    monkeypatch.undo()
    assert store.size() == 3
    assert store.latest_checkpoint() == latest
    assert store.verify_integrity(full=True).size == 3
    # The indices of the failed batch are handed out again: no gap.
    assert store.append_batch(_items(2, "next")).indices == (3, 4)
    assert store.verify_integrity(full=True).size == 5


def test_refuses_to_sign_an_inconsistent_checkpoint(
    store: LedgerStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.append_batch(_items(3))
    from ledger.errors import ConsistencyProofError

    def inconsistent(*_args: object) -> None:
        raise ConsistencyProofError("forced")

    monkeypatch.setattr(store_module, "verify_consistency", inconsistent)
    with pytest.raises(AppendOnlyViolation) as info:
        store.append(EntryKind.BILL, b"x")
    assert info.value.reason == "APPEND_ONLY_VIOLATION"
    monkeypatch.undo()
    assert store.size() == 3
    assert [c.checkpoint.size for c in store.checkpoints()] == [0, 3]


def test_verify_integrity_quick_and_full(store: LedgerStore) -> None:
    store.append_batch(_items(10))
    store.append(EntryKind.BILL, b"last")
    quick = store.verify_integrity(full=False)
    full = store.verify_integrity(full=True, all_signatures=True, chunk_size=3)
    assert quick == full
    assert full.size == 11


def test_reopen_keeps_everything(
    durable_ledger_url: str, ledger_signer: CheckpointSigner, ledger_origin: str
) -> None:
    items = _items(12)
    with open_store(durable_ledger_url, ledger_signer, ledger_origin) as s:
        s.append_batch(items[:9])
        s.append_batch(items[9:])
        latest = s.latest_checkpoint()
    with open_store(durable_ledger_url, ledger_signer, ledger_origin) as s:
        assert s.size() == 12
        assert s.latest_checkpoint() == latest
        assert [(e.kind, e.payload) for e in s.entries()] == items
        assert s.append(EntryKind.BILL, b"after reopen").index == 12
    with open_store(durable_ledger_url, ledger_signer, ledger_origin, startup_check="quick") as s:
        assert s.size() == 13


def test_reopen_with_another_origin_or_key_is_refused(
    durable_ledger_url: str, ledger_signer: CheckpointSigner, ledger_origin: str
) -> None:
    with open_store(durable_ledger_url, ledger_signer, ledger_origin) as s:
        s.append(EntryKind.BILL, b"x")
    with pytest.raises(StoreConfigError):
        open_store(durable_ledger_url, ledger_signer, "another.origin/log")
    other = CheckpointSigner.generate("zkgrid-test")
    with pytest.raises(LogKeyMismatch) as mismatch:  # named before any signature is checked
        open_store(durable_ledger_url, other, ledger_origin)
    assert mismatch.value.reason == "STORE_CONFIG"
    assert f"signed by key id {ledger_signer.key_id.hex()}" in str(mismatch.value)
    assert f"you loaded key id {other.key_id.hex()}" in str(mismatch.value)


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("mysql://root@localhost/db", StoreConfigError),
        ("postgresql+asyncpg://u@h/db", StoreConfigError),
        ("not a url", StoreConfigError),
    ],
)
def test_unsupported_urls(
    url: str, error: type[Exception], ledger_signer: CheckpointSigner
) -> None:
    with pytest.raises(error):
        open_store(url, ledger_signer, "o")
