"""The micro-batch proof verifier: concurrent submitters, a mix of good, bad and
malformed proofs, exactly the bad ones fail (and how), in this process and in worker
processes, clean shutdown."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

import pytest

from circuits.r1cs import R1CSStatement
from service.deadlines import call_deadline
from service.errors import (
    DeadlineExceeded,
    InvalidRequest,
    Overloaded,
    ProofInvalid,
    ProofMalformed,
    VerifierClosed,
    VerifierFailed,
)
from service.verification import (
    MicroBatcher,
    Outcome,
    ProofVerifier,
    RangeJob,
    cycle_bill_weight,
)
from settlement.cycle_bills import cycle_bill_statement
from tests.unit.service.settlement_support import SimMeter, make_cycle_tariff
from zkp.pedersen import commit
from zkp.rangeproof import RangeProof
from zkp.sigma import LinearCombinationClaim, LinearCombinationProof

DAY = "2024-03-01"


def _job(bundle_proof: bytes, commitments: Sequence[bytes], bits: int, ctx: bytes) -> RangeJob:
    return RangeJob(bundle_proof, tuple(commitments), bits, ctx)


def _jobs(count: int) -> list[tuple[RangeJob, str]]:
    """``count`` jobs of 4 values each with their expected outcome: every sixth is made
    for another context, another swaps two commitments, another has a corrupted point."""
    out = []
    for i in range(count):
        bundle = RangeProof.prove([i, 2 * i, 7, 2**32 - 1], 32, context=b"ctx%d" % i)
        proof = bundle.proof.to_bytes()
        coms = [c.to_bytes() for c in bundle.commitments]
        kind = i % 6
        if kind == 2:
            out.append((_job(proof, coms, 32, b"other"), "invalid"))
        elif kind == 5:
            out.append((_job(proof, [coms[1], coms[0], *coms[2:]], 32, b"ctx%d" % i), "invalid"))
        elif kind == 3:
            bad = bytearray(proof)
            bad[0] = 0x07  # not a compressed-point prefix
            out.append((_job(bytes(bad), coms, 32, b"ctx%d" % i), "malformed"))
        else:
            out.append((_job(proof, coms, 32, b"ctx%d" % i), "ok"))
    return out


@pytest.mark.parametrize("processes", [0, 1])
def test_concurrent_submitters_get_exactly_their_result(processes: int) -> None:
    jobs = _jobs(24)
    results: dict[int, str] = {}
    lock = threading.Lock()
    barrier = threading.Barrier(len(jobs))
    with ProofVerifier(max_batch=8, max_wait_s=0.02, processes=processes) as verifier:

        def worker(i: int, job: RangeJob) -> None:
            barrier.wait()
            try:
                verifier.verify(job, timeout=60)
                outcome = "ok"
            except ProofMalformed:
                outcome = "malformed"
            except ProofInvalid:
                outcome = "invalid"
            with lock:
                results[i] = outcome

        threads = [threading.Thread(target=worker, args=(i, j)) for i, (j, _) in enumerate(jobs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        sizes = list(verifier.range_proofs.batch_sizes)
    assert results == {i: expected for i, (_, expected) in enumerate(jobs)}
    assert sum(sizes) == len(jobs)
    assert max(sizes) > 1  # jobs were actually batched
    assert max(sizes) <= 8


@pytest.mark.parametrize("processes", [0, 1])
def test_shape_and_format_errors_fail_only_their_job(processes: int) -> None:
    (good, _), *_ = _jobs(1)
    wrong_count = good._replace(commitments=good.commitments[:3])
    wrong_bits = good._replace(bits=16)
    truncated = good._replace(proof=good.proof[:-1])
    off_curve = good._replace(commitments=(b"\x02" + b"\x00" * 31 + b"\x01", *good.commitments[1:]))
    with ProofVerifier(max_wait_s=0.05, processes=processes) as verifier:
        futures = [
            verifier.submit(j) for j in (good, wrong_count, good, wrong_bits, truncated, off_curve)
        ]
        outcomes = [f.exception(timeout=60) for f in futures]
    assert outcomes[0] is None
    assert outcomes[2] is None
    assert isinstance(outcomes[1], ProofInvalid)
    assert isinstance(outcomes[3], ProofInvalid)
    assert outcomes[1].reason == "PROOF_INVALID"
    for malformed in outcomes[4:]:
        assert isinstance(malformed, ProofMalformed)
        assert malformed.reason == "PROOF_MALFORMED"


def test_bill_proofs_are_batched_too() -> None:
    claims = []
    for i in range(6):
        values, blindings = [3 + i, 5], [11 + i, 13]
        commitments = [commit(v, r) for v, r in zip(values, blindings, strict=True)]
        proof, total = LinearCombinationProof.prove(
            [2, -1], commitments, values, blindings, constant=100, context=b"bill"
        )
        claims.append(
            LinearCombinationClaim(proof, [2, -1], commitments, total + (i == 4), 100, b"bill")
        )
    with ProofVerifier(max_wait_s=0.05) as verifier:
        futures = [verifier.bill_proofs.submit(c) for c in claims]
        outcomes = [f.exception(timeout=60) for f in futures]
    assert [o is None for o in outcomes] == [True, True, True, True, False, True]


@pytest.mark.parametrize("processes", [0, 1])
def test_close_verifies_what_is_queued_then_refuses(processes: int) -> None:
    (good, _), *_ = _jobs(1)
    verifier = ProofVerifier(max_wait_s=0.5, processes=processes)
    futures = [verifier.submit(good) for _ in range(3)]
    verifier.close()
    assert all(f.result(timeout=0) is None for f in futures)
    with pytest.raises(VerifierClosed):
        verifier.submit(good)
    verifier.close()  # idempotent


def test_a_lost_worker_process_does_not_fail_proofs() -> None:
    (good, _), (_, _), (bad, _) = _jobs(3)
    with ProofVerifier(max_wait_s=0.05, processes=1) as verifier:
        verifier.verify(good, timeout=60)
        pool = verifier._pool
        assert pool is not None
        for process in list(pool._processes.values()):
            process.kill()
            process.join()
        futures = [verifier.submit(j) for j in (good, bad, good)]
        outcomes = [f.exception(timeout=60) for f in futures]
        assert outcomes[0] is None
        assert outcomes[2] is None
        assert isinstance(outcomes[1], ProofInvalid)
        assert verifier._pool is not pool  # replaced
        verifier.verify(good, timeout=60)


def test_unexpected_errors_fail_the_batch_not_the_thread() -> None:
    def check(items: Sequence[int]) -> list[Outcome]:
        if 13 in items:
            raise RuntimeError("boom")
        return [ProofInvalid("bad") if i < 0 else None for i in items]

    batcher: MicroBatcher[int] = MicroBatcher("test", check, max_wait_s=0)
    try:
        with pytest.raises(VerifierFailed) as info:  # the verifier's fault, not the proof's
            batcher.verify(13, timeout=10)
        assert info.value.reason == "UNAVAILABLE"
        assert "boom" not in str(info.value)
        batcher.verify(1, timeout=10)
        with pytest.raises(ProofInvalid):
            batcher.verify(-1, timeout=10)
    finally:
        batcher.close()


@pytest.mark.parametrize(
    ("max_batch", "max_wait_s", "processes"),
    [(0, 0.01, 0), (True, 0.01, 0), (4, -1, 0), (4, 5, 0), (4, 0.01, -1), (4, 0.01, True)],
)
def test_arguments(max_batch: int, max_wait_s: float, processes: int) -> None:
    with pytest.raises(InvalidRequest):
        ProofVerifier(max_batch=max_batch, max_wait_s=max_wait_s, processes=processes)


def test_a_caller_whose_proof_failed_is_verified_alone_from_then_on() -> None:
    """One bad proof in a shared micro-batch makes every honest caller in it pay for a
    bisection; after its first failure the caller's proofs stay out of shared batches."""
    jobs = _jobs(6)
    good = [job for job, expected in jobs if expected == "ok"]
    bad = next(job for job, expected in jobs if expected == "invalid")
    with ProofVerifier(max_batch=8, max_wait_s=0.01) as verifier:
        verifier.verify(good[0], caller="honest")
        batched = len(verifier.range_proofs.batch_sizes)
        assert batched == 1
        assert not verifier.is_suspect("mallory")
        with pytest.raises(ProofInvalid):
            verifier.verify(bad, caller="mallory")  # through the shared batcher, once
        assert verifier.is_suspect("mallory")
        assert len(verifier.range_proofs.batch_sizes) == batched + 1
        for _ in range(3):
            with pytest.raises(ProofInvalid):
                verifier.verify(bad, caller="mallory")  # alone: no shared batch
        verifier.verify(good[1], caller="mallory")  # a good proof still verifies, alone
        assert len(verifier.range_proofs.batch_sizes) == batched + 1
        assert list(verifier.suspect_range_proofs.batch_sizes) == [1, 1, 1, 1]
        verifier.verify(good[1], caller="honest")
        assert len(verifier.range_proofs.batch_sizes) == batched + 2
        assert not verifier.is_suspect("honest")


def test_suspicion_expires_and_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import service.verification as module

    monkeypatch.setattr(module, "MAX_SUSPECTS", 2)
    with ProofVerifier() as verifier:
        now = [1000.0]
        verifier._clock = lambda: now[0]
        for name in ("a", "b", "c"):
            verifier._suspect(name)
        assert not verifier.is_suspect("a")  # the longest-quiet went first
        assert verifier.is_suspect("b")
        assert verifier.is_suspect("c")
        now[0] += module.SUSPECT_FOR_S + 1
        assert not verifier.is_suspect("b")


def _slow_check(gate: threading.Event) -> Callable[[Sequence[int]], list[Outcome]]:
    def check(items: Sequence[int]) -> list[Outcome]:
        gate.wait(10)
        return [None] * len(items)

    return check


def test_a_full_queue_sheds_load_with_a_retry_delay() -> None:
    gate = threading.Event()
    batcher: MicroBatcher[int] = MicroBatcher(
        "test", _slow_check(gate), max_batch=1, max_wait_s=0, max_pending=3
    )
    try:
        first = batcher.submit(0)
        deadline = time.monotonic() + 5
        while batcher.pending and time.monotonic() < deadline:  # the thread took it
            time.sleep(0.01)
        queued = [batcher.submit(i) for i in (1, 2, 3)]
        assert batcher.pending == 3
        with pytest.raises(Overloaded) as info:
            batcher.submit(4)
        assert info.value.reason == "OVERLOADED"
        assert info.value.retry_after_s is not None
        assert info.value.retry_after_s >= 1
        assert batcher.shed == 1
        gate.set()
        for future in (first, *queued):
            assert future.result(10) is None
        batcher.submit(5).result(10)  # room again
    finally:
        gate.set()
        batcher.close()


def test_a_wait_longer_than_the_deadline_is_shed_at_once() -> None:
    gate = threading.Event()
    gate.set()
    batcher: MicroBatcher[int] = MicroBatcher("test", _slow_check(gate), max_wait_s=0)
    try:
        batcher.verify(1, timeout=5)
        batcher._per_item_s = 2.0  # the recent pace: 2 s per item
        gate.clear()
        running = batcher.submit(2)
        while batcher.pending:
            time.sleep(0.01)
        batcher.submit(3)  # one queued: a new item would wait about 2 s
        with pytest.raises(Overloaded):
            batcher.submit(4, deadline_s=1.0)
        token = call_deadline.set(time.monotonic() + 1.0)  # as the interceptor sets it
        try:
            with pytest.raises(Overloaded):
                batcher.verify(4)
        finally:
            call_deadline.reset(token)
        gate.set()
        running.result(10)
    finally:
        gate.set()
        batcher.close()


def test_an_item_nobody_waits_for_is_dropped_unchecked() -> None:
    gate = threading.Event()
    seen: list[int] = []

    def check(items: Sequence[int]) -> list[Outcome]:
        gate.wait(10)
        seen.extend(items)
        return [None] * len(items)

    batcher: MicroBatcher[int] = MicroBatcher("test", check, max_batch=1, max_wait_s=0)
    try:
        busy = batcher.submit(1)
        while batcher.pending:
            time.sleep(0.01)
        with pytest.raises(DeadlineExceeded) as info:
            batcher.verify(2, timeout=0.05)  # queued behind the busy one; the caller leaves
        assert info.value.reason == "DEADLINE_EXCEEDED"
        gate.set()
        busy.result(10)
        batcher.verify(3, timeout=10)
        assert seen == [1, 3]
        assert batcher.dropped == 1
    finally:
        gate.set()
        batcher.close()


def test_a_bounded_share_rests_between_batches() -> None:
    def check(items: Sequence[int]) -> list[Outcome]:
        time.sleep(0.05)
        return [None] * len(items)

    batcher: MicroBatcher[int] = MicroBatcher("test", check, max_batch=1, max_wait_s=0, share=0.2)
    try:
        futures = [batcher.submit(i) for i in range(3)]
        started = time.monotonic()
        for future in futures:
            future.result(10)
        # 3 checks of 0.05 s with rests of 0.2 s after each of the first two at least
        assert time.monotonic() - started >= 0.5
    finally:
        batcher.close()


def test_one_caller_has_one_proof_in_the_shared_batches_and_one_alone_at_most() -> None:
    """A burst from one caller cannot put many (bad) proofs into one shared batch: the
    second waits in the suspects' lane, the third is shed; other callers are not affected."""
    gate = threading.Event()
    seen: dict[str, list[int]] = {"shared": [], "alone": []}

    def check(lane: str) -> Callable[[Sequence[int]], list[Outcome]]:
        def run(items: Sequence[int]) -> list[Outcome]:
            gate.wait(10)
            seen[lane].extend(items)
            return [None] * len(items)

        return run

    with ProofVerifier() as verifier:
        verifier.range_proofs.close()
        verifier.suspect_range_proofs.close()
        shared: MicroBatcher[int] = MicroBatcher("shared", check("shared"), max_wait_s=0)
        alone: MicroBatcher[int] = MicroBatcher("alone", check("alone"), max_batch=1)
        try:
            results: list[BaseException | None] = []

            def submit(item: int, caller: str) -> None:
                try:
                    verifier._guarded(caller, shared, alone, item, 10)
                    results.append(None)
                except Overloaded as exc:
                    results.append(exc)

            threads = [threading.Thread(target=submit, args=(1, "m"))]
            threads[0].start()
            while not shared.pending and not seen["shared"] and shared.batch_sizes == deque():
                time.sleep(0.01)
            threads.append(threading.Thread(target=submit, args=(2, "m")))
            threads[1].start()
            while verifier._in_flight.get("m") != 2:
                time.sleep(0.01)
            with pytest.raises(Overloaded):
                verifier._guarded("m", shared, alone, 3, 10)  # a third: shed at once
            threads.append(threading.Thread(target=submit, args=(4, "other")))
            threads[2].start()
            while verifier._in_flight.get("other") != 1:
                time.sleep(0.01)
            gate.set()
            for t in threads:
                t.join(10)
            assert results == [None, None, None]
            assert sorted(seen["shared"]) == [1, 4]
            assert seen["alone"] == [2]
            assert verifier._in_flight == {}
        finally:
            gate.set()
            shared.close()
            alone.close()


# ------------------------------------------------------------------ cycle bills (circuits)


def _cycle_statements(count: int) -> tuple[list[R1CSStatement], list[bool]]:
    """``count`` real one-day cycle bill statements of distinct meters (240-minute intervals,
    tiers and a demand charge) and whether each should verify: every third claims a total
    one above its proven bill."""
    tariff = make_cycle_tariff(DAY, DAY, demand_charge=4_000_000)
    statements, honest = [], []
    for i in range(count):
        meter = SimMeter(f"c{i}")
        meter.batch(DAY)
        bill = meter.cycle_bill(tariff)
        good = i % 3 != 1
        if not good:
            bill = dataclasses.replace(bill, total=bill.total + 1)
        statements.append(cycle_bill_statement(bill, tariff, [meter.batches[DAY]]))
        honest.append(good)
    return statements, honest


def test_cycle_bill_proofs_are_batched_and_only_the_bad_ones_fail() -> None:
    statements, honest = _cycle_statements(6)
    with ProofVerifier(max_wait_s=0.05) as verifier:
        futures = [verifier.cycle_bill_proofs.submit(s) for s in statements]
        outcomes = [f.exception(timeout=60) for f in futures]
        assert max(verifier.cycle_bill_proofs.batch_sizes) > 1
        assert not verifier.bill_proofs.batch_sizes  # never in the day bills' lane
    assert [o is None for o in outcomes] == honest
    for outcome in outcomes:
        if outcome is not None:
            assert isinstance(outcome, ProofInvalid)
            assert outcome.reason == "PROOF_INVALID"


def test_a_cycle_bill_proof_is_weighed_by_its_circuit() -> None:
    [statement], _ = _cycle_statements(1)
    weight = cycle_bill_weight(statement)
    assert weight == statement.circuit.gates + statement.circuit.inputs
    assert weight > 32 * 6  # the demand charge's gadget: 32-bit gaps of 6 intervals


def _gated(
    gate: threading.Event, seen: list[list[int]]
) -> Callable[[Sequence[int]], list[Outcome]]:
    def check(items: Sequence[int]) -> list[Outcome]:
        gate.wait(10)
        seen.append(list(items))
        return [None] * len(items)

    return check


def _until_taken(batcher: MicroBatcher[int]) -> None:
    deadline = time.monotonic() + 10
    while batcher.pending and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_weighted_batcher_bounds_its_batches_and_queue_by_weight() -> None:
    gate = threading.Event()
    seen: list[list[int]] = []
    batcher: MicroBatcher[int] = MicroBatcher(
        "weighted", _gated(gate, seen), max_batch=10, max_wait_s=0, max_pending=20,
        weight=lambda item: item,
    )  # fmt: skip
    try:
        busy = batcher.submit(1)
        _until_taken(batcher)  # the thread took it and waits on the gate
        queued = [batcher.submit(w) for w in (4, 5, 3)]
        assert batcher.pending == 12  # weight, not items
        with pytest.raises(Overloaded):
            batcher.submit(9)  # 12 + 9 > 20
        assert batcher.shed == 1
        queued.append(batcher.submit(8))  # 20: just fits
        gate.set()
        for future in (busy, *queued):
            assert future.result(10) is None
        # 4 + 5 fit a batch of 10; 3 did not (carried to the next), nor did 8 after it
        assert seen == [[1], [4, 5], [3], [8]]
        assert list(batcher.batch_sizes) == [1, 2, 1, 1]
        # heavier than a batch: checked alone; heavier than the queue: into an empty one only
        assert batcher.submit(15).result(10) is None
        assert batcher.submit(25).result(10) is None
        assert seen[-2:] == [[15], [25]]
        assert batcher.pending == 0
    finally:
        gate.set()
        batcher.close()


def test_the_expected_wait_of_a_weighted_queue_is_per_unit_of_weight() -> None:
    gate = threading.Event()
    seen: list[list[int]] = []
    batcher: MicroBatcher[int] = MicroBatcher(
        "weighted", _gated(gate, seen), max_batch=100, max_wait_s=0, weight=lambda item: item
    )
    try:
        busy = batcher.submit(1)
        _until_taken(batcher)
        batcher._per_item_s = 0.1  # the recent pace: 0.1 s per unit of weight
        batcher.submit(30)  # 3 s of work queued
        assert batcher.expected_wait_s() == pytest.approx(3.0)
        with pytest.raises(Overloaded) as info:
            batcher.submit(1, deadline_s=2.0)
        assert info.value.retry_after_s == pytest.approx(3.0)
        gate.set()
        busy.result(10)
    finally:
        gate.set()
        batcher.close()


def test_a_weighted_batcher_checks_what_is_queued_when_closed() -> None:
    gate = threading.Event()
    seen: list[list[int]] = []
    batcher: MicroBatcher[int] = MicroBatcher(
        "weighted", _gated(gate, seen), max_batch=5, max_wait_s=0, weight=lambda item: item
    )
    busy = batcher.submit(1)
    _until_taken(batcher)
    queued = [batcher.submit(w) for w in (3, 4, 2, 2)]
    closer = threading.Thread(target=batcher.close)
    closer.start()
    gate.set()
    closer.join(10)
    for future in (busy, *queued):
        assert future.result(0) is None
    assert sorted(w for batch in seen for w in batch) == [1, 2, 2, 3, 4]
    assert all(sum(batch) <= 5 for batch in seen)
    with pytest.raises(VerifierClosed):
        batcher.submit(1)


def test_a_busy_cycle_bill_lane_holds_up_no_other_proof() -> None:
    """Lanes share no queue: while the cycle bills' lane is busy with a (here: endless) big
    circuit, day bills and range proofs are verified as before."""
    gate = threading.Event()
    seen: list[list[int]] = []
    with ProofVerifier() as verifier:
        verifier.cycle_bill_proofs.close()
        blocked: MicroBatcher[int] = MicroBatcher("cycle", _gated(gate, seen), max_wait_s=0)
        verifier.cycle_bill_proofs = blocked  # type: ignore[assignment]
        try:
            stuck = blocked.submit(1)
            values, blindings = [3, 5], [11, 13]
            commitments = [commit(v, r) for v, r in zip(values, blindings, strict=True)]
            proof, total = LinearCombinationProof.prove(
                [2, -1], commitments, values, blindings, constant=100, context=b"bill"
            )
            claim = LinearCombinationClaim(proof, [2, -1], commitments, total, 100, b"bill")
            started = time.monotonic()
            verifier.verify_bill(claim, 10, caller="day-biller")
            (job, _), *_ = _jobs(1)
            verifier.verify(job, 10, caller="reader")
            assert time.monotonic() - started < 5
            assert not stuck.done()
        finally:
            gate.set()
            blocked.close()
