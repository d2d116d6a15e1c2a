"""The micro-batch proof verifier (settlement-v1.md: "Range proofs are verified in micro-batches").

Callers (gRPC worker threads) hand over one item each and block on a future.
Background threads collect up to ``max_batch`` items, or whatever arrived
within ``max_wait_s`` of the first one, and check them together: one weighted
multi-scalar multiplication per batch (:meth:`zkp.rangeproof.RangeProof.verify_batch`,
:meth:`zkp.sigma.LinearCombinationProof.verify_batch`,
:meth:`circuits.r1cs.R1CSStatement.verify_batch`). When a batch fails the
bad items are found (``find_invalid`` of each proof type: one batch check, then
bisection, :mod:`zkp.batch`) and only their
futures fail, with :class:`~service.errors.ProofInvalid`; the others succeed.

**Cycle bills' circuit proofs** (records version 2) have their own lanes, because they
differ from the others in size by orders of magnitude: a 3-day bill of 60-minute
intervals is a circuit of a few thousand gates (tens of milliseconds), a 31-day
demand bill of 15-minute intervals about 100,000 (seconds), and a verifier's circuit
holds its constraints in memory (about 170 bytes per gate; its prepared form, during
the check, about 220 more). So

* they never share a batch with range or bill proofs: a big circuit cannot hold up
  the proofs of readings and day bills, which go on in their own lanes as before (the
  lanes share the CPU, no queue; the circuit msm, like the others, runs natively with
  the GIL released, and the Python part of a circuit check, transcript replay and
  flattening, is about 5% of it);
* their lane counts **gates, not proofs** (:class:`MicroBatcher` ``weight``:
  :func:`cycle_bill_weight`, gates plus committed inputs): a batch holds up to
  :data:`CYCLE_MAX_BATCH_WEIGHT` (two of the largest circuits, or a hundred 3-day
  bills; a circuit larger than that is checked alone), so a small bill waits behind
  at most one such batch, and the queue holds up to :data:`CYCLE_MAX_PENDING_WEIGHT`
  (about 200 MB of circuits) before it sheds (``OVERLOADED``, with the expected wait
  from the recent seconds per gate);
* a caller has one proof in flight in the shared lanes and a suspect's go alone, one
  at a time, a fifth of the time, as for every proof (:meth:`ProofVerifier._guarded`).

**The market's delivery steps** (C8: an allocation's or a delivery's circuit proof, a
``min`` gadget or two: tens of gates) have lanes of their own, built as the cycle bills'
(weighed by gates, suspects alone): :meth:`ProofVerifier.verify_delivery_step`.

**Range proofs** arrive as bytes (:class:`RangeJob`: the proof, the commitment
encodings, the bit width, the context). With ``processes`` > 0 whole batches
are parsed and verified in that many worker processes (``spawn``): point
decompression, transcript replay, the scalar vectors and the msm all run
there, under their own GIL, so the request threads of this process (gRPC,
record checks, appends) never wait for the verifier's Python and the other way
round. With ``processes=0`` the same work runs on a thread here. A job whose
bytes do not parse fails with :class:`~service.errors.ProofMalformed`
(``PROOF_MALFORMED``), never ``PROOF_INVALID``.

:meth:`ProofVerifier.close` stops the threads after the items already queued
have been checked; later submissions fail with
:class:`~service.errors.VerifierClosed`.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Generic, NamedTuple, TypeVar

from circuits.r1cs import R1CSStatement
from service.deadlines import remaining_s
from service.errors import (
    DeadlineExceeded,
    InvalidRequest,
    Overloaded,
    ProofInvalid,
    ProofMalformed,
    VerifierClosed,
    VerifierFailed,
)
from zkgrid._internal.processes import die_with_parent
from zkgrid.errors import ProofFormatError, ZkgridError
from zkp.group import Point, decode_points
from zkp.pedersen import Commitment
from zkp.rangeproof import RangeProof, RangeProofStatement
from zkp.sigma import LinearCombinationClaim, LinearCombinationProof

__all__ = [
    "CYCLE_MAX_BATCH_WEIGHT",
    "CYCLE_MAX_PENDING_WEIGHT",
    "DEFAULT_MAX_BATCH",
    "DEFAULT_MAX_PENDING",
    "DEFAULT_MAX_WAIT_S",
    "SUSPECT_CYCLE_MAX_PENDING_WEIGHT",
    "MicroBatcher",
    "ProofVerifier",
    "RangeJob",
    "check_range_jobs",
    "cycle_bill_weight",
    "parse_commitments",
]

_log = logging.getLogger(__name__)

DEFAULT_MAX_BATCH = 128
DEFAULT_MAX_WAIT_S = 0.004
#: Items a micro-batcher holds queued at most; beyond, submissions are shed (``OVERLOADED``).
DEFAULT_MAX_PENDING = 1024

_T = TypeVar("_T")

#: What a batch check says of each item: ``None`` (it holds) or the error to raise.
Outcome = ZkgridError | None


#: Batch sizes a micro-batcher keeps for its statistics (the last ones only).
BATCH_SIZES_KEPT = 1024
#: A caller whose proof failed is verified alone, outside the shared micro-batches, for
#: this long after its last failure (seconds): one bad proof in a shared batch costs a
#: bisection of the whole batch, paid by every honest caller in it.
SUSPECT_FOR_S = 3600.0
#: Suspects remembered at most (the longest-quiet are forgotten first).
MAX_SUSPECTS = 10_000
#: Suspects' proofs (verified one at a time) may use at most this share of the verifier:
#: after a suspect's proof took t seconds, the suspects' lane rests t * (1 - share) / share.
SUSPECT_SHARE = 0.2
#: Suspects' proofs queued at most (beyond, a suspect's request is shed: ``OVERLOADED``).
SUSPECT_MAX_PENDING = 64
#: The cycle bills' lane counts weight (:func:`cycle_bill_weight`: gates plus committed
#: inputs), not proofs. A batch holds at most this much (a heavier circuit alone): two of
#: the largest circuits (2^17 gates), about a hundred 3-day bills of 60-minute intervals.
CYCLE_MAX_BATCH_WEIGHT = 1 << 18
#: Weight queued in the cycle bills' lane at most (beyond, a request is shed): about eight
#: of the largest circuits, some 200 MB of constraints held while they wait.
CYCLE_MAX_PENDING_WEIGHT = 1 << 20
#: Weight queued in the suspects' cycle bill lane at most (one of the largest circuits).
SUSPECT_CYCLE_MAX_PENDING_WEIGHT = 1 << 18


class RangeJob(NamedTuple):
    """A range-proof statement as bytes, as it arrived (parsed where it is verified)."""

    proof: bytes
    commitments: tuple[bytes, ...]
    bits: int
    context: bytes


# ------------------------------------------------------------------ range-proof jobs

#: Outcomes as they cross the process boundary: None, or (kind, message).
_Wire = tuple[str, str] | None


def _kept(points: Sequence[Point], encodings: Sequence[bytes]) -> list[Commitment]:
    # keep the encodings: the proofs' transcripts absorb them
    return [Commitment(p, e) for p, e in zip(points, encodings, strict=True)]


def parse_commitments(encodings: Sequence[bytes]) -> list[Commitment]:
    """A batch's commitments, decoded strictly; :class:`ProofMalformed` if one is not."""
    try:
        return _kept(decode_points(encodings, "commitment"), encodings)
    except ProofFormatError as exc:
        raise ProofMalformed(f"batch commitments: {exc}") from None


def _parse(job: RangeJob) -> RangeProofStatement:
    commitments = parse_commitments(job.commitments)
    try:
        proof = RangeProof.from_bytes(job.proof)
    except ProofFormatError as exc:
        raise ProofMalformed(f"range proof: {exc}") from None
    return RangeProofStatement(proof, commitments, job.bits, job.context)


def _check_range_jobs_wire(jobs: Sequence[RangeJob]) -> list[_Wire]:
    """:func:`check_range_jobs` with picklable outcomes (runs in the worker processes)."""
    out: list[_Wire] = []
    for outcome in check_range_jobs(jobs):
        if outcome is None:
            out.append(None)
        elif isinstance(outcome, ProofMalformed):
            out.append(("malformed", str(outcome)))
        else:
            out.append(("invalid", str(outcome)))
    return out


def _from_wire(wire: _Wire) -> Outcome:
    if wire is None:
        return None
    kind, message = wire
    return ProofMalformed(message) if kind == "malformed" else ProofInvalid(message)


def _parse_all(jobs: Sequence[RangeJob]) -> list[RangeProofStatement | ProofMalformed]:
    """Parse every job; all points in one :func:`~zkp.group.decode_points` call, which
    decompresses them on all cores. If anything is malformed, parse job by job to find
    which (the error is per job)."""
    try:
        points = decode_points([c for job in jobs for c in job.commitments], "commitment")
        proofs = RangeProof.many_from_bytes([job.proof for job in jobs])
    except ProofFormatError:
        out: list[RangeProofStatement | ProofMalformed] = []
        for job in jobs:
            try:
                out.append(_parse(job))
            except ProofMalformed as exc:
                out.append(exc)
        return out
    statements: list[RangeProofStatement | ProofMalformed] = []
    cursor = 0
    for job, proof in zip(jobs, proofs, strict=True):
        mine = points[cursor : cursor + len(job.commitments)]
        cursor += len(job.commitments)
        commitments = _kept(mine, job.commitments)
        statements.append(RangeProofStatement(proof, commitments, job.bits, job.context))
    return statements


def check_range_jobs(jobs: Sequence[RangeJob]) -> list[Outcome]:
    """Parse and verify ``jobs`` as one batch (B2); bisect (B3) if it fails
    (:meth:`RangeProof.find_invalid`).

    Returns, per job, ``None`` or :class:`ProofMalformed` (its bytes do not parse)
    or :class:`ProofInvalid` (it parses but does not verify).
    """
    outcomes: list[Outcome] = [None] * len(jobs)
    parsed: list[tuple[int, RangeProofStatement]] = []
    for i, result in enumerate(_parse_all(jobs)):
        if isinstance(result, ProofMalformed):
            outcomes[i] = result
        else:
            parsed.append((i, result))
    for k in RangeProof.find_invalid([s for _, s in parsed]):
        outcomes[parsed[k][0]] = ProofInvalid("range proof does not verify")
    return outcomes


def _warm_up() -> None:
    """Build the generator tables of a 192-value 32-bit proof once per worker process."""
    from zkp.generators import bp_generators

    bp_generators(32 * 256)


# ------------------------------------------------------------------ the batcher


@dataclass(slots=True)
class _Job(Generic[_T]):
    item: _T
    future: Future[None]
    #: The item's weight (1 unless the batcher weighs its items).
    units: int = 1


_STOP = object()


class MicroBatcher(Generic[_T]):
    """Collects items from many threads and checks them in batches.

    ``check_batch(items)`` returns one outcome per item (``None`` or the error its
    future fails with). ``threads`` batches may be checked at once (each on its
    own background thread); while they are busy, new items queue up and form
    the next batches.

    The queue is bounded (docs/notes/settlement.md, "What a caller can cost"):
    at most ``max_pending`` items wait; beyond that, and whenever the expected
    wait (the queue times the recent seconds per item) would outlast the
    caller's deadline, :meth:`submit` refuses at once with :class:`Overloaded`
    (``OVERLOADED``, with the expected wait as its retry delay) instead of
    letting the caller time out. An item whose caller stopped waiting is
    dropped unchecked. ``share`` < 1 caps the share of time this batcher's
    threads spend checking: after a batch that took ``t`` seconds, the thread
    rests ``t * (1 - share) / share``.

    ``weight``: when given, items are counted by ``weight(item)`` (at least 1) instead
    of one each: ``max_batch`` and ``max_pending`` bound the weight of a batch and of
    the queue (an item heavier than ``max_batch`` is checked alone; one heavier than
    ``max_pending`` is taken only into an empty queue), :attr:`pending` is the weight
    queued and the expected wait is measured per unit of weight. For proofs whose cost
    varies widely (circuits: weight = gates).
    """

    def __init__(
        self,
        name: str,
        check_batch: Callable[[Sequence[_T]], Sequence[Outcome]],
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_wait_s: float = DEFAULT_MAX_WAIT_S,
        threads: int = 1,
        max_pending: int = DEFAULT_MAX_PENDING,
        share: float = 1.0,
        weight: Callable[[_T], int] | None = None,
    ) -> None:
        if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
            raise InvalidRequest("max_batch must be a positive integer")
        if not isinstance(max_wait_s, int | float) or not 0 <= max_wait_s <= 1:
            raise InvalidRequest("max_wait_s must be in [0, 1] seconds")
        if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= 64:
            raise InvalidRequest("threads must be an integer in [1, 64]")
        if isinstance(max_pending, bool) or not isinstance(max_pending, int) or max_pending < 1:
            raise InvalidRequest("max_pending must be a positive integer")
        if not isinstance(share, int | float) or not 0 < share <= 1:
            raise InvalidRequest("share must be in (0, 1]")
        self._name = name
        self._check_batch = check_batch
        self._max_batch = max_batch
        self._max_wait_s = float(max_wait_s)
        self._max_pending = max_pending
        self._share = float(share)
        self._weight = weight
        self._queue: queue.SimpleQueue[_Job[_T] | object] = queue.SimpleQueue()
        self._closed = False
        self._close_lock = threading.Lock()  # also guards the counters below
        self._pending = 0
        #: Recent seconds of checking per item, or per unit of weight (an exponential
        #: average; 0 until measured).
        self._per_item_s = 0.0
        #: Submissions shed (``OVERLOADED``) and items dropped because nobody waited.
        self.shed = 0
        self.dropped = 0
        #: Sizes of the last batches checked (for tests and metrics; bounded).
        self.batch_sizes: deque[int] = deque(maxlen=BATCH_SIZES_KEPT)
        self._threads = [
            threading.Thread(target=self._run, name=f"zkgrid-{name}-{i}", daemon=True)
            for i in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def pending(self) -> int:
        """Items (or their weight) queued and not yet taken for checking."""
        return self._pending

    def _units(self, item: _T) -> int:
        if self._weight is None:
            return 1
        return max(1, int(self._weight(item)))

    def expected_wait_s(self) -> float:
        """How long a new item would wait, from the queue and the recent pace."""
        with self._close_lock:
            return self._expected_wait_s()

    def _expected_wait_s(self) -> float:
        """(lock held)"""
        rounds = self._pending / len(self._threads)
        return rounds * self._per_item_s / self._share

    def submit(self, item: _T, *, deadline_s: float | None = None) -> Future[None]:
        """Queue ``item``; the future completes with ``None`` or fails with its error.

        ``deadline_s``: seconds the caller will wait; the item is shed at once
        (:class:`Overloaded`) if the queue is full or its expected wait is longer.
        """
        future: Future[None] = Future()
        units = self._units(item)
        with self._close_lock:
            if self._closed:
                raise VerifierClosed(f"the {self._name} verifier is closed")
            wait = self._expected_wait_s()
            full = self._pending > 0 and self._pending + units > self._max_pending
            if full or (deadline_s is not None and wait > deadline_s):
                self.shed += 1
                raise Overloaded(
                    f"the {self._name} verifier is overloaded ({self._pending} queued);"
                    f" retry in about {max(1, round(wait))} s",
                    max(1.0, wait),
                )
            self._pending += units
            self._queue.put(_Job(item, future, units))
        return future

    def verify(self, item: _T, timeout: float | None = None) -> None:
        """Submit and wait; raises the item's error (e.g. :class:`ProofInvalid`).

        ``timeout`` defaults to what is left of the current call's deadline
        (:mod:`service.deadlines`); when it passes the item is dropped unchecked and
        :class:`DeadlineExceeded` raised.
        """
        if timeout is None:
            timeout = remaining_s()
        future = self.submit(item, deadline_s=timeout)
        try:
            future.result(None if timeout is None else max(0.0, timeout))
        except FutureTimeout:
            future.cancel()  # still queued: dropped unchecked (set_running_or_notify_cancel)
            raise DeadlineExceeded(
                f"the deadline passed while the {self._name} waited to be verified"
            ) from None

    def close(self, timeout: float | None = 10.0) -> None:
        """Check what is queued, then stop the threads. Idempotent."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            for _ in self._threads:
                self._queue.put(_STOP)
        for thread in self._threads:
            thread.join(timeout)

    # ------------------------------------------------------------------ the threads

    def _collect(self, first: _Job[_T]) -> tuple[list[_Job[_T]], _Job[_T] | None, bool]:
        """A batch from ``first`` on: the jobs, the job taken that did not fit (the first of
        this thread's next batch) and whether a stop was seen."""
        jobs = [first]
        units = first.units
        deadline = time.monotonic() + self._max_wait_s
        while units < self._max_batch:
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
                return jobs, None, True
            job: _Job[_T] = nxt  # type: ignore[assignment]  # only jobs and _STOP are queued
            if units + job.units > self._max_batch:
                return jobs, job, False
            jobs.append(job)
            units += job.units
        return jobs, None, False

    def _run(self) -> None:
        stopping = False
        carried: _Job[_T] | None = None
        while not stopping:
            if carried is None:
                got = self._queue.get()
                if got is _STOP:
                    break
                first: _Job[_T] = got  # type: ignore[assignment]  # a _Job
            else:
                first, carried = carried, None
            jobs, carried, stopping = self._collect(first)
            took = self._process(jobs)
            if self._share < 1.0 and took > 0 and not stopping:
                time.sleep(took * (1.0 - self._share) / self._share)
        # Drain anything queued before close (submit refuses after the _STOPs are queued; a
        # job carried over is always checked first, so none is left here).
        leftovers: list[_Job[_T]] = []
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not _STOP:
                leftovers.append(job)  # type: ignore[arg-type]
        for batch in self._batches(leftovers):
            self._process(batch)

    def _batches(self, jobs: list[_Job[_T]]) -> list[list[_Job[_T]]]:
        """``jobs`` in order, cut into batches of at most ``max_batch`` (one job at least)."""
        out: list[list[_Job[_T]]] = []
        units = 0
        for job in jobs:
            if out and units + job.units <= self._max_batch:
                out[-1].append(job)
                units += job.units
            else:
                out.append([job])
                units = job.units
        return out

    def _process(self, jobs: list[_Job[_T]]) -> float:
        """Check ``jobs`` (those still awaited); return the seconds it took."""
        live = [job for job in jobs if job.future.set_running_or_notify_cancel()]
        with self._close_lock:
            self._pending -= sum(job.units for job in jobs)
            self.dropped += len(jobs) - len(live)
        if not live:
            return 0.0
        self.batch_sizes.append(len(live))
        started = time.monotonic()
        try:
            outcomes = list(self._check_batch([job.item for job in live]))
            if len(outcomes) != len(live):  # pragma: no cover - a checker bug
                raise RuntimeError("batch check returned the wrong number of outcomes")
        except Exception as exc:  # a bug or a resource failure: fail the whole batch
            _log.exception("%s verifier: batch of %d failed unexpectedly", self._name, len(live))
            # Not the proofs' fault: say so (UNAVAILABLE, retryable), never PROOF_INVALID.
            error = (
                exc if isinstance(exc, ZkgridError) else VerifierFailed("proof verifier failed")
            )
            for job in live:
                job.future.set_exception(error)
            return time.monotonic() - started
        took = time.monotonic() - started
        with self._close_lock:
            per_item = took / sum(job.units for job in live)
            self._per_item_s = (
                per_item if self._per_item_s == 0 else 0.8 * self._per_item_s + 0.2 * per_item
            )
        for job, outcome in zip(live, outcomes, strict=True):
            if outcome is None:
                job.future.set_result(None)
            else:
                job.future.set_exception(outcome)
        return took


def _check_bills(items: Sequence[LinearCombinationClaim]) -> list[Outcome]:
    """One (S4) check; the bad claims named by bisection (B3) when it fails."""
    bad = set(LinearCombinationProof.find_invalid(items))
    return [
        ProofInvalid("bill proof does not verify") if i in bad else None for i in range(len(items))
    ]


def _check_cycle_bills(items: Sequence[R1CSStatement]) -> list[Outcome]:
    """One (C11) check; the bad circuit proofs named by (B3') or bisection when it fails
    (a proof whose shape does not fit its circuit is named without a group operation)."""
    bad = set(R1CSStatement.find_invalid(items))
    return [
        ProofInvalid("cycle bill proof does not verify") if i in bad else None
        for i in range(len(items))
    ]


def _check_delivery_steps(items: Sequence[R1CSStatement]) -> list[Outcome]:
    """One (C8) check of delivery steps' circuit proofs; the bad ones named as for cycle
    bills."""
    bad = set(R1CSStatement.find_invalid(items))
    return [
        ProofInvalid("delivery step proof does not verify") if i in bad else None
        for i in range(len(items))
    ]


def cycle_bill_weight(statement: R1CSStatement) -> int:
    """A circuit proof's weight in the cycle bills' lane: its multiplication gates plus its
    committed inputs (what its check costs and its circuit holds, both about linear)."""
    return statement.circuit.gates + statement.circuit.inputs


class ProofVerifier:
    """Micro-batched verification of range proofs (readings), bill proofs and cycle bill
    proofs (circuits).

    Thread-safe. Use as a context manager or call :meth:`close`.

    ``processes`` > 0: range-proof batches are parsed and verified in that many
    ``spawn`` worker processes, one batch per process at a time; 0: on a thread
    of this process. Bill proofs (a few points each) are verified on a thread
    here, and so are cycle bill proofs, in their own lane weighed by gates (module
    docstring): the request thread builds the circuit (it needs the ledger's batches
    and tariff), and its msm runs natively with the GIL released.
    """

    def __init__(
        self,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_wait_s: float = DEFAULT_MAX_WAIT_S,
        processes: int = 0,
    ) -> None:
        if isinstance(processes, bool) or not isinstance(processes, int) or processes < 0:
            raise InvalidRequest("processes must be an integer >= 0")
        self._processes = processes
        self._pool_lock = threading.Lock()
        self._pool = self._new_pool(processes)
        self.range_proofs: MicroBatcher[RangeJob] = MicroBatcher(
            "range proof",
            self._check_range_batch,
            max_batch=max_batch,
            max_wait_s=max_wait_s,
            threads=max(1, processes),
        )
        self.bill_proofs: MicroBatcher[LinearCombinationClaim] = MicroBatcher(
            "bill proof",
            _check_bills,
            max_batch=max_batch,
            max_wait_s=max_wait_s,
        )
        # Suspects' lanes: one proof at a time, a bounded queue, a bounded share of the time.
        self.suspect_range_proofs: MicroBatcher[RangeJob] = MicroBatcher(
            "suspect's range proof",
            self._check_range_batch,
            max_batch=1,
            max_wait_s=0,
            max_pending=SUSPECT_MAX_PENDING,
            share=SUSPECT_SHARE,
        )
        self.suspect_bill_proofs: MicroBatcher[LinearCombinationClaim] = MicroBatcher(
            "suspect's bill proof",
            _check_bills,
            max_batch=1,
            max_wait_s=0,
            max_pending=SUSPECT_MAX_PENDING,
            share=SUSPECT_SHARE,
        )
        self.cycle_bill_proofs: MicroBatcher[R1CSStatement] = MicroBatcher(
            "cycle bill proof",
            _check_cycle_bills,
            max_batch=CYCLE_MAX_BATCH_WEIGHT,
            max_wait_s=max_wait_s,
            max_pending=CYCLE_MAX_PENDING_WEIGHT,
            weight=cycle_bill_weight,
        )
        self.suspect_cycle_bill_proofs: MicroBatcher[R1CSStatement] = MicroBatcher(
            "suspect's cycle bill proof",
            _check_cycle_bills,
            max_batch=1,
            max_wait_s=0,
            max_pending=SUSPECT_CYCLE_MAX_PENDING_WEIGHT,
            share=SUSPECT_SHARE,
            weight=cycle_bill_weight,
        )
        # The market's delivery steps (C8): small circuits (a min gadget or two, tens of
        # gates), weighed by gates like cycle bills, in their own lanes.
        self.delivery_proofs: MicroBatcher[R1CSStatement] = MicroBatcher(
            "delivery step proof",
            _check_delivery_steps,
            max_batch=CYCLE_MAX_BATCH_WEIGHT,
            max_wait_s=max_wait_s,
            max_pending=CYCLE_MAX_PENDING_WEIGHT,
            weight=cycle_bill_weight,
        )
        self.suspect_delivery_proofs: MicroBatcher[R1CSStatement] = MicroBatcher(
            "suspect's delivery step proof",
            _check_delivery_steps,
            max_batch=1,
            max_wait_s=0,
            max_pending=SUSPECT_CYCLE_MAX_PENDING_WEIGHT,
            share=SUSPECT_SHARE,
            weight=cycle_bill_weight,
        )
        self._suspects: OrderedDict[str, float] = OrderedDict()  # caller -> last failure
        #: Proofs of each caller being verified now (bounded: see :meth:`_lane`).
        self._in_flight: dict[str, int] = {}
        self._in_flight_lock = threading.Lock()
        self._suspects_lock = threading.Lock()
        self._clock = time.monotonic

    # ------------------------------------------------------------------ suspects

    def is_suspect(self, caller: str) -> bool:
        """Whether ``caller``'s proofs are verified alone (a proof of theirs failed lately)."""
        with self._suspects_lock:
            since = self._suspects.get(caller)
            if since is None:
                return False
            if self._clock() - since > SUSPECT_FOR_S:
                del self._suspects[caller]
                return False
            return True

    def _suspect(self, caller: str) -> None:
        with self._suspects_lock:
            self._suspects[caller] = self._clock()
            self._suspects.move_to_end(caller)
            while len(self._suspects) > MAX_SUSPECTS:
                self._suspects.popitem(last=False)

    def _lane(
        self, caller: str, shared: MicroBatcher[_T], alone: MicroBatcher[_T]
    ) -> MicroBatcher[_T]:
        """(in-flight lock held) Where ``caller``'s next proof goes: one proof at a time per
        caller in the shared micro-batches, a second one (or any of a suspect's) alone in
        the suspects' lane, and no more: :class:`Overloaded`. An honest meter has one proof
        in flight (its batches are chained); many at once from one caller is a burst that
        would put many bad proofs into one shared batch, each paid for by bisection."""
        in_flight = self._in_flight.get(caller, 0)
        limit = 1 if self.is_suspect(caller) else 2
        if in_flight >= limit:
            raise Overloaded(
                "this caller already has a proof being verified; retry when it is answered",
                1.0,
            )
        return shared if in_flight == 0 and limit == 2 else alone

    def _guarded(
        self,
        caller: str | None,
        shared: MicroBatcher[_T],
        alone: MicroBatcher[_T],
        item: _T,
        timeout: float | None,
    ) -> None:
        """Verify ``item`` in the ``shared`` micro-batches, or in the suspects' lane
        (``alone``: one at a time, a bounded share of the verifier) when ``caller`` is a
        suspect or already has a proof in flight; a failure makes the caller a suspect
        (docs/notes/settlement.md, "What a caller can cost")."""
        if caller is None:
            shared.verify(item, timeout)
            return
        with self._in_flight_lock:
            lane = self._lane(caller, shared, alone)
            self._in_flight[caller] = self._in_flight.get(caller, 0) + 1
        try:
            lane.verify(item, timeout)
        except (ProofInvalid, ProofMalformed):
            self._suspect(caller)
            raise
        finally:
            with self._in_flight_lock:
                left = self._in_flight[caller] - 1
                if left:
                    self._in_flight[caller] = left
                else:
                    del self._in_flight[caller]

    def lanes(
        self,
    ) -> tuple[
        MicroBatcher[RangeJob] | MicroBatcher[LinearCombinationClaim] | MicroBatcher[R1CSStatement],
        ...,
    ]:
        """Every micro-batcher (for statistics and shutdown)."""
        return (
            self.range_proofs,
            self.bill_proofs,
            self.cycle_bill_proofs,
            self.delivery_proofs,
            self.suspect_range_proofs,
            self.suspect_bill_proofs,
            self.suspect_cycle_bill_proofs,
            self.suspect_delivery_proofs,
        )

    def _check_range_batch(self, jobs: Sequence[RangeJob]) -> list[Outcome]:
        pool = self._pool
        if pool is None:
            return check_range_jobs(jobs)
        try:
            wire = pool.submit(_check_range_jobs_wire, list(jobs)).result()
        except BrokenProcessPool:
            # A worker died (killed, out of memory): check here, start a fresh pool.
            _log.error("range proof verifier: worker process lost; restarting the pool")
            with self._pool_lock:
                if self._pool is pool:
                    self._pool = self._new_pool(self._processes)
            pool.shutdown(wait=False, cancel_futures=True)
            return check_range_jobs(jobs)
        return [_from_wire(w) for w in wire]

    @staticmethod
    def _new_pool(processes: int) -> ProcessPoolExecutor | None:
        if not processes:
            return None
        pool = ProcessPoolExecutor(
            processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=die_with_parent,  # no worker outlives a killed server
            initargs=(os.getpid(),),
        )
        for _ in range(processes):  # start the workers and build their tables now
            pool.submit(_warm_up)
        return pool

    def submit(self, job: RangeJob) -> Future[None]:
        """Queue a range-proof job; the future fails with :class:`ProofInvalid` or
        :class:`ProofMalformed`."""
        return self.range_proofs.submit(job)

    def verify(
        self, job: RangeJob, timeout: float | None = None, *, caller: str | None = None
    ) -> None:
        """Verify one range-proof job: batched with concurrent callers, or alone when
        ``caller`` (the meter) sent a proof that failed lately."""
        self._guarded(caller, self.range_proofs, self.suspect_range_proofs, job, timeout)

    def verify_bill(
        self,
        claim: LinearCombinationClaim,
        timeout: float | None = None,
        *,
        caller: str | None = None,
    ) -> None:
        """Verify one bill proof: batched with concurrent callers, or alone for a suspect."""
        self._guarded(caller, self.bill_proofs, self.suspect_bill_proofs, claim, timeout)

    def verify_cycle_bill(
        self,
        statement: R1CSStatement,
        timeout: float | None = None,
        *,
        caller: str | None = None,
    ) -> None:
        """Verify one cycle bill's circuit proof (its statement built by
        :func:`settlement.cycle_bills.cycle_bill_statement`): batched by weight with
        concurrent callers' in the cycle bills' lane, or alone for a suspect."""
        self._guarded(
            caller, self.cycle_bill_proofs, self.suspect_cycle_bill_proofs, statement, timeout
        )

    def verify_delivery_step(
        self,
        statement: R1CSStatement,
        timeout: float | None = None,
        *,
        caller: str | None = None,
    ) -> None:
        """Verify one delivery step's circuit proof (C8; its statement built by
        :func:`settlement.rules.allocation_statement_for` or ``delivery_statement_for``):
        batched by weight with concurrent callers' in the delivery steps' lane, or alone
        for a suspect."""
        self._guarded(
            caller, self.delivery_proofs, self.suspect_delivery_proofs, statement, timeout
        )

    def close(self) -> None:
        for lane in self.lanes():
            lane.close()
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ProofVerifier:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
