"""The micro-batch proof verifier (settlement-v1.md: "Range proofs are verified in micro-batches").

Callers (gRPC worker threads) hand over one statement each and block on a
future. A background thread per proof type collects up to ``max_batch``
statements, or whatever arrived within ``max_wait_s`` of the first one, and
verifies them together in one weighted multi-scalar multiplication
(:meth:`zkp.rangeproof.RangeProof.verify_batch`,
:meth:`zkp.sigma.LinearCombinationProof.verify_batch`). When a batch fails it
finds exactly the bad statements (:meth:`RangeProof.find_invalid`, bisection)
and fails only their futures with :class:`~service.errors.ProofInvalid`; the
others succeed. A batch of one costs what a single verification costs.

:meth:`ProofVerifier.close` stops the threads after the statements already
queued have been verified; later submissions fail with
:class:`~service.errors.VerifierClosed`.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Generic, TypeVar

from service.errors import InvalidRequest, ProofInvalid, VerifierClosed, VerifierFailed
from zkgrid.errors import InvalidArgumentError, VerificationError, ZkgridError
from zkp.rangeproof import RangeProof, RangeProofStatement
from zkp.sigma import LinearCombinationClaim, LinearCombinationProof

__all__ = ["DEFAULT_MAX_BATCH", "DEFAULT_MAX_WAIT_S", "MicroBatcher", "ProofVerifier"]

_log = logging.getLogger(__name__)

DEFAULT_MAX_BATCH = 32
DEFAULT_MAX_WAIT_S = 0.004

_T = TypeVar("_T")


@dataclass(slots=True)
class _Job(Generic[_T]):
    item: _T
    future: Future[None]


_STOP = object()


def _bisect_invalid(items: Sequence[_T], verify_batch: Callable[[Sequence[_T]], None]) -> list[int]:
    """Indices of the failing items of a failing batch, by halving (for proof types that
    have no ``find_invalid`` of their own)."""

    def holds(part: Sequence[tuple[int, _T]]) -> bool:
        try:
            verify_batch([item for _, item in part])
        except (VerificationError, InvalidArgumentError):
            return False
        return True

    def search(part: list[tuple[int, _T]]) -> list[int]:
        if not part or holds(part):
            return []
        if len(part) == 1:
            return [part[0][0]]
        mid = len(part) // 2
        return search(part[:mid]) + search(part[mid:])

    return search(list(enumerate(items)))


class MicroBatcher(Generic[_T]):
    """Collects statements from many threads and verifies them in batches on one thread."""

    def __init__(
        self,
        name: str,
        verify_batch: Callable[[Sequence[_T]], None],
        find_invalid: Callable[[Sequence[_T]], list[int]],
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_wait_s: float = DEFAULT_MAX_WAIT_S,
    ) -> None:
        if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
            raise InvalidRequest("max_batch must be a positive integer")
        if not isinstance(max_wait_s, int | float) or not 0 <= max_wait_s <= 1:
            raise InvalidRequest("max_wait_s must be in [0, 1] seconds")
        self._name = name
        self._verify_batch = verify_batch
        self._find_invalid = find_invalid
        self._max_batch = max_batch
        self._max_wait_s = float(max_wait_s)
        self._queue: queue.SimpleQueue[_Job[_T] | object] = queue.SimpleQueue()
        self._closed = False
        self._close_lock = threading.Lock()
        #: Sizes of the batches verified so far (for tests and metrics).
        self.batch_sizes: list[int] = []
        self._thread = threading.Thread(target=self._run, name=f"zkgrid-{name}", daemon=True)
        self._thread.start()

    def submit(self, item: _T) -> Future[None]:
        """Queue ``item``; the future completes with ``None`` or :class:`ProofInvalid`."""
        future: Future[None] = Future()
        with self._close_lock:
            if self._closed:
                raise VerifierClosed(f"the {self._name} verifier is closed")
            self._queue.put(_Job(item, future))
        return future

    def verify(self, item: _T, timeout: float | None = None) -> None:
        """Submit and wait; raises :class:`ProofInvalid` when ``item`` does not verify."""
        self.submit(item).result(timeout)

    def close(self, timeout: float | None = 10.0) -> None:
        """Verify what is queued, then stop the thread. Idempotent."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        self._thread.join(timeout)

    # ------------------------------------------------------------------ the thread

    def _collect(self, first: _Job[_T]) -> tuple[list[_Job[_T]], bool]:
        jobs = [first]
        deadline = time.monotonic() + self._max_wait_s
        while len(jobs) < self._max_batch:
            remaining = deadline - time.monotonic()
            try:
                nxt = (
                    self._queue.get_nowait()
                    if remaining <= 0
                    else self._queue.get(timeout=remaining)
                )
            except queue.Empty:
                break
            if nxt is _STOP:
                return jobs, True
            jobs.append(nxt)  # type: ignore[arg-type]  # only jobs and _STOP are queued
        return jobs, False

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                break
            jobs, stopping = self._collect(first)  # type: ignore[arg-type]  # a _Job
            self._process(jobs)
        # Drain anything queued before close (submit refuses after _STOP is queued).
        leftovers: list[_Job[_T]] = []
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not _STOP:
                leftovers.append(job)  # type: ignore[arg-type]
        for start in range(0, len(leftovers), self._max_batch):
            self._process(leftovers[start : start + self._max_batch])

    def _process(self, jobs: list[_Job[_T]]) -> None:
        live = [job for job in jobs if job.future.set_running_or_notify_cancel()]
        if not live:
            return
        self.batch_sizes.append(len(live))
        items = [job.item for job in live]
        try:
            try:
                self._verify_batch(items)
                bad: set[int] = set()
            except (VerificationError, InvalidArgumentError):
                bad = set(self._find_invalid(items))
                if not bad:  # pragma: no cover - a batch failure must name a culprit
                    bad = set(range(len(items)))
        except Exception as exc:  # a bug or a resource failure: fail the whole batch
            _log.exception("%s verifier: batch of %d failed unexpectedly", self._name, len(live))
            # Not the proofs' fault: say so (UNAVAILABLE, retryable), never PROOF_INVALID.
            error = (
                exc if isinstance(exc, ZkgridError) else VerifierFailed("proof verifier failed")
            )
            for job in live:
                job.future.set_exception(error)
            return
        for i, job in enumerate(live):
            if i in bad:
                job.future.set_exception(ProofInvalid(f"{self._name} does not verify"))
            else:
                job.future.set_result(None)


def _range_find_invalid(items: Sequence[RangeProofStatement]) -> list[int]:
    return RangeProof.find_invalid(items)


def _bill_verify_batch(items: Sequence[LinearCombinationClaim]) -> None:
    LinearCombinationProof.verify_batch(items)


def _bill_find_invalid(items: Sequence[LinearCombinationClaim]) -> list[int]:
    return _bisect_invalid(items, _bill_verify_batch)


class ProofVerifier:
    """Micro-batched verification of range proofs (readings) and bill proofs.

    Thread-safe; one background thread per proof type. Use as a context manager
    or call :meth:`close`.

    ``processes`` > 0 computes the pure-Python scalar part of each range-proof
    batch in that many worker processes (``spawn`` start method), so it runs
    beside the GIL-bound request threads; the multi-scalar multiplication stays
    in this process on threads (docs/notes/batch-verification.md).
    """

    def __init__(
        self,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_wait_s: float = DEFAULT_MAX_WAIT_S,
        processes: int = 0,
    ) -> None:
        if processes < 0:
            raise InvalidRequest("processes must be >= 0")
        self._processes = processes
        self._pool = self._new_pool(processes)
        self.range_proofs: MicroBatcher[RangeProofStatement] = MicroBatcher(
            "range proof",
            self._verify_range_batch,
            _range_find_invalid,
            max_batch=max_batch,
            max_wait_s=max_wait_s,
        )
        self.bill_proofs: MicroBatcher[LinearCombinationClaim] = MicroBatcher(
            "bill proof",
            _bill_verify_batch,
            _bill_find_invalid,
            max_batch=max_batch,
            max_wait_s=max_wait_s,
        )

    def _verify_range_batch(self, statements: Sequence[RangeProofStatement]) -> None:
        pool = self._pool
        if pool is None:
            RangeProof.verify_batch(statements)
            return
        try:
            RangeProof.verify_batch(statements, executor=pool)
        except BrokenProcessPool:
            # A worker died (killed, out of memory): verify here, start a fresh pool.
            _log.error("range proof verifier: worker process lost; restarting the pool")
            self._pool = self._new_pool(self._processes)
            pool.shutdown(wait=False, cancel_futures=True)
            RangeProof.verify_batch(statements)

    @staticmethod
    def _new_pool(processes: int) -> ProcessPoolExecutor | None:
        if not processes:
            return None
        return ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"))

    def submit(self, statement: RangeProofStatement) -> Future[None]:
        """Queue a range-proof statement; the future fails with :class:`ProofInvalid`."""
        return self.range_proofs.submit(statement)

    def verify(self, statement: RangeProofStatement, timeout: float | None = None) -> None:
        """Verify one range-proof statement (batched with concurrent callers)."""
        self.range_proofs.verify(statement, timeout)

    def verify_bill(self, claim: LinearCombinationClaim, timeout: float | None = None) -> None:
        """Verify one bill proof (batched with concurrent callers)."""
        self.bill_proofs.verify(claim, timeout)

    def close(self) -> None:
        self.range_proofs.close()
        self.bill_proofs.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ProofVerifier:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
