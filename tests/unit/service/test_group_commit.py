"""Group commit: concurrent reading batches and bills share a transaction and a
checkpoint, at most one record per meter; a failing record fails alone."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from typing import Any

import pytest

from service.errors import ChainBroken, DuplicatePeriod, ServiceClosing
from service.settlement import (
    Receipt,
    Settlement,
    _AlreadyRecorded,
    _GroupCommitter,
    _GroupOutcome,
    _PendingAppend,
    receipt_for,
)
from service.storage import LedgerStore
from settlement.records import ReadingBatch
from tests.unit.service.settlement_support import SIGNER, SimMeter, open_memory_store, registered

DAY1, DAY2 = "2024-03-01", "2024-03-02"
SIGNED: Any = object()  # stands for the group's checkpoint in the committer-only tests


@pytest.fixture
def store() -> Iterator[LedgerStore]:
    s = open_memory_store()
    yield s
    s.close()


def _pending(record: Any, key: str, check: Any = lambda _time: None) -> _PendingAppend:
    return _PendingAppend(record, record.encode(), check, key, Future())


class _Gate:
    """A commit function that blocks until released, recording each group's keys."""

    def __init__(self) -> None:
        self.groups: list[list[str]] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def commit(self, items: Sequence[_PendingAppend]) -> list[_GroupOutcome]:
        self.groups.append([i.key for i in items])
        self.entered.set()
        self.release.wait(10)
        out: list[_GroupOutcome] = []
        for n, item in enumerate(items):
            if item.key == "boom":
                raise RuntimeError("store failed")
            out.append(DuplicatePeriod("taken") if item.key == "bad" else (n, b"h" * 32, SIGNED))
        return out


class _Rec:
    def __init__(self, tag: str) -> None:
        self.tag = tag

    def encode(self) -> bytes:
        return self.tag.encode()


def _submit(committer: _GroupCommitter, key: str, results: dict[str, Any]) -> threading.Thread:
    def run() -> None:
        try:
            results[key + str(len(results))] = committer.append(_Rec(key), lambda _time: None, key)  # type: ignore[arg-type]
        except Exception as exc:
            results[key + str(len(results))] = exc

    t = threading.Thread(target=run)
    t.start()
    return t


def test_waiting_records_form_one_group_with_one_record_per_key() -> None:
    gate = _Gate()
    committer = _GroupCommitter(gate.commit)
    results: dict[str, Any] = {}
    try:
        first = _submit(committer, "m0", results)
        assert gate.entered.wait(10)  # the first group (m0 alone) is being committed
        threads = [_submit(committer, k, results) for k in ("m1", "m2", "m1", "bad", "m3")]
        while committer._queue.qsize() < 5:  # all queued behind the first group
            threading.Event().wait(0.01)
        gate.release.set()
        for t in [first, *threads]:
            t.join(10)
    finally:
        committer.close()
    assert gate.groups[0] == ["m0"]
    assert gate.groups[1] == ["m1", "m2", "bad", "m3"]  # the second m1 waits
    assert gate.groups[2] == ["m1"]
    errors = [r for r in results.values() if isinstance(r, Exception)]
    assert len(errors) == 1
    assert isinstance(errors[0], DuplicatePeriod)
    assert sum(isinstance(r, tuple) for r in results.values()) == 5


def test_a_store_failure_fails_its_group_only() -> None:
    gate = _Gate()
    gate.release.set()
    committer = _GroupCommitter(gate.commit)
    try:
        with pytest.raises(RuntimeError, match="store failed"):
            committer.append(_Rec("x"), lambda _time: None, "boom")  # type: ignore[arg-type]
        assert committer.append(_Rec("y"), lambda _time: None, "fine") == (0, b"h" * 32, SIGNED)  # type: ignore[arg-type]
    finally:
        committer.close()
    with pytest.raises(ServiceClosing):
        committer.append(_Rec("z"), lambda _time: None, "late")  # type: ignore[arg-type]
    committer.close()  # idempotent


def test_a_group_appends_the_good_records_in_one_transaction(store: LedgerStore) -> None:
    with Settlement(store) as settlement:
        meters = [SimMeter(f"meter-{i}") for i in range(3)]
        registered(settlement, *meters)
        day1 = [m.batch(DAY1) for m in meters]
        early_day2 = meters[1].batch(DAY2)  # meter-1's DAY1 is not on the ledger yet
        items = [_pending(day1[0], "meter-0"), _pending(early_day2, "meter-1"),
                 _pending(day1[2], "meter-2")]  # fmt: skip

        def rules(batch: ReadingBatch) -> Any:
            return lambda time: settlement._state_rules(batch, batch.batch_hash(), time)

        for item in items:
            item.check = rules(item.record)  # type: ignore[arg-type]
        size = store.size()
        checkpoints = len(list(store.checkpoints()))
        outcomes = settlement._append_group(items)
        assert isinstance(outcomes[1], ChainBroken)
        assert store.size() == size + 2
        assert len(list(store.checkpoints())) == checkpoints + 1  # one transaction, one checkpoint
        for outcome, batch in ((outcomes[0], day1[0]), (outcomes[2], day1[2])):
            assert isinstance(outcome, tuple)
            index, lh, signed = outcome
            assert signed.checkpoint.size == size + 2  # the group's checkpoint
            receipt = receipt_for(store, index, lh, signed)
            receipt.verify(SIGNER.verifier(), batch.to_entry())
            assert receipt == settlement._receipt(index, lh)  # as a later GetReceipt gives
        # the state moved on: the same batch again is the original entry
        again = settlement._append_group([_pending(day1[0], "meter-0", rules(day1[0]))])
        assert isinstance(again[0], _AlreadyRecorded)
        assert again[0].ref.index == outcomes[0][0]  # type: ignore[index]


def test_concurrent_submissions_share_checkpoints(store: LedgerStore) -> None:
    meters = [SimMeter(f"meter-{i}") for i in range(8)]
    with Settlement(store) as settlement:
        registered(settlement, *meters)
        before = len(list(store.checkpoints()))
        issued: list[tuple[ReadingBatch, Receipt]] = []
        for period in (DAY1, DAY2):
            batches = [m.batch(period) for m in meters]
            receipts: dict[int, Receipt] = {}
            barrier = threading.Barrier(len(batches))

            def submit(
                i: int, batch: ReadingBatch, barrier: threading.Barrier, out: dict[int, Receipt]
            ) -> None:
                barrier.wait()
                out[i] = settlement.submit_readings(batch, as_meter=batch.meter_id)

            threads = [
                threading.Thread(target=submit, args=(i, b, barrier, receipts))
                for i, b in enumerate(batches)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            assert len(receipts) == len(batches)
            for i, batch in enumerate(batches):
                receipts[i].verify(SIGNER.verifier(), batch.to_entry())
                issued.append((batch, receipts[i]))
        assert store.size() == len(meters) * 3
        for m in meters:
            assert settlement.get_meter(m.meter_id).next_sequence == 2
        # 16 batches, but fewer checkpoints: the micro-batched verifier releases them together
        assert len(list(store.checkpoints())) - before < 2 * len(meters)
        # Receipts are stable: later, the same receipt (the appending group's checkpoint),
        # from GetReceipt and from resubmitting the identical batch.
        for batch, receipt in issued:
            assert settlement.get_receipt(batch.meter_id, batch.period) == receipt
            assert settlement.submit_readings(batch, as_meter=batch.meter_id) == receipt
