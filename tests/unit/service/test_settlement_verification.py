"""The micro-batch proof verifier: concurrent submitters, a mix of good and bad proofs,
exactly the bad ones fail, clean shutdown."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from service.errors import InvalidRequest, ProofInvalid, VerifierClosed, VerifierFailed
from service.verification import MicroBatcher, ProofVerifier
from zkgrid.errors import VerificationError
from zkp.pedersen import commit
from zkp.rangeproof import RangeProof, RangeProofStatement
from zkp.sigma import LinearCombinationClaim, LinearCombinationProof


def _statements(count: int) -> list[tuple[RangeProofStatement, bool]]:
    """``count`` statements of 4 values each; every third one is bad (another context,
    another commitment, or a commitment list of the wrong size)."""
    out = []
    for i in range(count):
        bundle = RangeProof.prove([i, 2 * i, 7, 2**32 - 1], 32, context=b"ctx%d" % i)
        good = RangeProofStatement(bundle.proof, bundle.commitments, 32, b"ctx%d" % i)
        kind = i % 6
        if kind == 2:
            out.append((RangeProofStatement(bundle.proof, bundle.commitments, 32, b"other"), False))
        elif kind == 5:
            swapped = [bundle.commitments[1], bundle.commitments[0], *bundle.commitments[2:]]
            out.append((RangeProofStatement(bundle.proof, swapped, 32, b"ctx%d" % i), False))
        else:
            out.append((good, True))
    return out


@pytest.mark.parametrize("processes", [0, 2])
def test_concurrent_submitters_get_exactly_their_result(processes: int) -> None:
    statements = _statements(24)
    results: dict[int, str] = {}
    lock = threading.Lock()
    barrier = threading.Barrier(len(statements))
    with ProofVerifier(max_batch=8, max_wait_s=0.02, processes=processes) as verifier:

        def worker(i: int, statement: RangeProofStatement) -> None:
            barrier.wait()
            try:
                verifier.verify(statement, timeout=60)
                outcome = "ok"
            except ProofInvalid:
                outcome = "invalid"
            with lock:
                results[i] = outcome

        threads = [
            threading.Thread(target=worker, args=(i, s)) for i, (s, _) in enumerate(statements)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        sizes = list(verifier.range_proofs.batch_sizes)
    assert results == {i: "ok" if good else "invalid" for i, (_, good) in enumerate(statements)}
    assert sum(sizes) == len(statements)
    assert max(sizes) > 1  # statements were actually batched
    assert max(sizes) <= 8


def test_shape_errors_fail_only_their_statement() -> None:
    (good, _), *_ = _statements(1)
    wrong_count = RangeProofStatement(good.proof, list(good.commitments)[:3], 32, good.context)
    wrong_bits = RangeProofStatement(good.proof, good.commitments, 16, good.context)
    with ProofVerifier(max_wait_s=0.05) as verifier:
        futures = [verifier.submit(s) for s in (good, wrong_count, good, wrong_bits)]
        outcomes = [f.exception(timeout=60) for f in futures]
    assert outcomes[0] is None
    assert outcomes[2] is None
    assert isinstance(outcomes[1], ProofInvalid)
    assert isinstance(outcomes[3], ProofInvalid)
    assert outcomes[1].reason == "PROOF_INVALID"


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


def test_close_verifies_what_is_queued_then_refuses() -> None:
    (good, _), *_ = _statements(1)
    verifier = ProofVerifier(max_wait_s=0.5)
    futures = [verifier.submit(good) for _ in range(3)]
    verifier.close()
    assert all(f.result(timeout=0) is None for f in futures)
    with pytest.raises(VerifierClosed):
        verifier.submit(good)
    verifier.close()  # idempotent


def test_unexpected_errors_fail_the_batch_not_the_thread() -> None:
    calls: list[int] = []

    def verify_batch(items: Sequence[int]) -> None:
        calls.append(len(items))
        if 13 in items:
            raise RuntimeError("boom")
        if any(i < 0 for i in items):
            raise VerificationError("bad")

    def find_invalid(items: Sequence[int]) -> list[int]:
        return [i for i, x in enumerate(items) if x < 0]

    batcher: MicroBatcher[int] = MicroBatcher("test", verify_batch, find_invalid, max_wait_s=0)
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


@pytest.mark.parametrize(("max_batch", "max_wait_s"), [(0, 0.01), (True, 0.01), (4, -1), (4, 5)])
def test_arguments(max_batch: int, max_wait_s: float) -> None:
    with pytest.raises(InvalidRequest):
        ProofVerifier(max_batch=max_batch, max_wait_s=max_wait_s)


def test_a_lost_worker_process_does_not_fail_proofs() -> None:
    (good, _), (_, _), (bad, _) = _statements(3)
    with ProofVerifier(max_wait_s=0.05, processes=1) as verifier:
        verifier.verify(good, timeout=60)
        pool = verifier._pool
        assert pool is not None
        for process in list(pool._processes.values()):
            process.kill()
            process.join()
        futures = [verifier.submit(s) for s in (good, bad, good)]
        outcomes = [f.exception(timeout=60) for f in futures]
        assert outcomes[0] is None
        assert outcomes[2] is None
        assert isinstance(outcomes[1], ProofInvalid)
        verifier.verify(good, timeout=60)


def test_a_broken_pool_is_replaced_and_the_batch_verified_here(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from concurrent.futures.process import BrokenProcessPool

    (good, _), *_ = _statements(1)
    other = RangeProofStatement(good.proof, good.commitments, 32, b"another context")
    with ProofVerifier(max_wait_s=0.2, processes=1) as verifier:
        broken = verifier._pool
        assert broken is not None

        def refuse(*_args: object, **_kwargs: object) -> None:
            raise BrokenProcessPool("a worker died")

        monkeypatch.setattr(broken, "submit", refuse)
        futures = [verifier.submit(s) for s in (good, other, good)]  # one batch of three
        outcomes = [f.exception(timeout=60) for f in futures]
        assert outcomes[0] is None
        assert isinstance(outcomes[1], ProofInvalid)
        assert outcomes[2] is None
        assert verifier._pool is not broken
        assert list(verifier.range_proofs.batch_sizes) == [3]
