"""Concurrent appenders: threads of one store and two store instances (two service
replicas) on the same database get exactly the indices 0..N-1, and the
checkpoints they sign form one consistent history."""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor

from ledger.checkpoint import CheckpointSigner, verify_checkpoint
from ledger.entries import EntryKind
from ledger.merkle import verify_consistency, verify_inclusion
from service.storage import LedgerStore, open_store

REPLICAS = 2
THREADS_PER_REPLICA = 3
ROUNDS = 10  # each round: one single append and one batch of 3


def _worker(store: LedgerStore, tag: str, start: threading.Barrier) -> dict[int, bytes]:
    got: dict[int, bytes] = {}
    start.wait()
    for r in range(ROUNDS):
        payload = f"{tag}/single/{r}".encode()
        got[store.append(EntryKind.READING_BATCH, payload).index] = payload
        batch = [f"{tag}/batch/{r}/{k}".encode() for k in range(3)]
        indices = list(store.append_batch([(EntryKind.BILL, p) for p in batch]).indices)
        assert indices == list(range(indices[0], indices[0] + 3))  # a batch is contiguous
        got.update(zip(indices, batch, strict=True))
    return got


def test_threads_and_replicas_get_gap_free_unique_indices(
    durable_ledger_url: str, ledger_signer: CheckpointSigner, ledger_origin: str
) -> None:
    # Both replicas create/open the same fresh database at the same time.
    with ThreadPoolExecutor(REPLICAS) as pool:
        stores = list(
            pool.map(
                lambda _: open_store(durable_ledger_url, ledger_signer, ledger_origin),
                range(REPLICAS),
            )
        )
    try:
        workers = REPLICAS * THREADS_PER_REPLICA
        start = threading.Barrier(workers)
        with ThreadPoolExecutor(workers) as pool:
            futures = [
                pool.submit(_worker, stores[w % REPLICAS], f"r{w % REPLICAS}t{w}", start)
                for w in range(workers)
            ]
            results = [f.result() for f in futures]
        n = workers * ROUNDS * 4
        appended: dict[int, bytes] = {}
        for got in results:
            assert not appended.keys() & got.keys(), "an index was handed out twice"
            appended.update(got)
        assert sorted(appended) == list(range(n))

        for store in stores:
            assert store.size() == n
            latest = verify_checkpoint(
                store.latest_checkpoint().to_text(), ledger_signer.verifier()
            )
            assert latest.size == n
            assert store.verify_integrity(full=True) == latest
        store = stores[0]
        assert {e.index: e.payload for e in store.entries()} == appended
        # One history: every checkpoint is consistent with the next one.
        cps = [verify_checkpoint(s, ledger_signer.verifier()) for s in store.checkpoints()]
        assert len(cps) == 1 + workers * ROUNDS * 2
        for a, b in itertools.pairwise(cps):
            verify_consistency(
                a.size, b.size, store.consistency_proof(a.size, b.size), a.root, b.root
            )
        for i in (0, n // 2, n - 1):
            entry = stores[1].entry(i)
            verify_inclusion(entry.leaf_hash, i, n, stores[1].inclusion_proof(i), latest.root)
    finally:
        for store in stores:
            store.close()


def test_threads_on_an_in_memory_store(ledger_signer: CheckpointSigner, ledger_origin: str) -> None:
    with open_store("sqlite://", ledger_signer, ledger_origin) as store:
        start = threading.Barrier(4)
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda t: _worker(store, f"t{t}", start), range(4)))
        indices = sorted(i for got in results for i in got)
        assert indices == list(range(4 * ROUNDS * 4))
        assert store.verify_integrity(full=True).size == len(indices)
