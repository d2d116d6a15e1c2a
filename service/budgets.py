"""Failure budgets per caller: the cost of failed verifications falls on whoever sends them.

docs/notes/settlement.md, "What a caller can cost". Every authenticated caller
(role and certificate CN; in insecure mode the claimed ones) has a bucket of
``burst`` failures that refills at one per ``refill_s`` seconds. A request whose
refusal cost the service a verification (a range or bill proof, a signature, a
cosignature or a proof of possession that does not verify: :data:`CHARGED_REASONS`)
takes one failure from its caller's bucket. While a caller's bucket is empty,
its calls to the methods that verify something (:data:`BUDGETED_METHODS`) are
refused *before* any work, with ``FAILURE_BUDGET_EXHAUSTED``
(``RESOURCE_EXHAUSTED`` and a ``google.rpc.RetryInfo`` saying when the next
failure is allowed).

The utility's calls are not budgeted: its certificate runs the service (it registers
meters and publishes tariffs), and a bulk job of its own may carry several bad bills.
Keyed by the transport identity, not by a name inside the request: a caller
cannot spend another caller's budget (a witness name in a cosignature, a meter
id in a bill is whatever the sender writes; the certificate is not). Honest
callers never fail verification, so their buckets stay full and cost nothing
to keep; at most ``max_callers`` buckets are kept, and the ones that have
refilled completely are the ones dropped first (a full bucket is the same as
no bucket).

Thread-safe; ``clock`` is injectable for tests.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from service.errors import Overloaded
from zkgrid.errors import Reason, ZkgridError

__all__ = [
    "BUDGETED_METHODS",
    "CHARGED_REASONS",
    "DEFAULT_BURST",
    "DEFAULT_MAX_CALLERS",
    "DEFAULT_REFILL_S",
    "FailureBudgetExhausted",
    "FailureBudgets",
    "Gate",
]

#: Failures a caller may have in a row before it is refused (for one refill period): each
#: costs the service a verification, and twenty meters allowed two each already cut honest
#: throughput below the issue's target (docs/benchmarks.md); an honest client whose proof
#: failed (a bill made under a stale tariff, say) retries its corrected request after the
#: delay the refusal names. The utility's calls have no budget.
DEFAULT_BURST = 1
#: Seconds for one failure to be forgiven.
DEFAULT_REFILL_S = 60.0
#: Callers whose (partly spent) buckets are remembered at most.
DEFAULT_MAX_CALLERS = 10_000

#: Refusals that cost the service a verification: they spend the caller's budget.
CHARGED_REASONS = frozenset(
    {
        Reason.PROOF_INVALID,
        Reason.PROOF_MALFORMED,
        Reason.SIGNATURE_INVALID,
        Reason.COSIGNATURE_INVALID,
        Reason.POP_INVALID,
    }
)

#: Methods that verify something expensive on the caller's behalf: refused while the
#: caller's budget is spent (reads and cheap calls are never refused by a budget).
BUDGETED_METHODS = frozenset(
    {
        "/zkgrid.settlement.v1.MeterService/RegisterMeter",
        "/zkgrid.settlement.v1.ReadingService/SubmitReadings",
        "/zkgrid.settlement.v1.BillService/SubmitBill",
        "/zkgrid.settlement.v1.BillService/SubmitCycleBill",
        "/zkgrid.settlement.v1.MarketService/Enrol",
        "/zkgrid.settlement.v1.MarketService/SubmitOrder",
        "/zkgrid.settlement.v1.MarketService/CancelOrder",
        "/zkgrid.settlement.v1.MarketService/SubmitAllocation",
        "/zkgrid.settlement.v1.MarketService/SubmitDelivery",
        "/zkgrid.settlement.v1.WitnessService/RegisterWitness",
        "/zkgrid.settlement.v1.WitnessService/AddCosignature",
    }
)


class FailureBudgetExhausted(ZkgridError):
    """The caller's recent requests failed verification too often; retry after
    ``retry_after_s`` seconds (after fixing what made them fail)."""

    reason = Reason.FAILURE_BUDGET_EXHAUSTED

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s: float | None = retry_after_s


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class FailureBudgets:
    """One failure bucket per caller key (module docstring)."""

    def __init__(
        self,
        *,
        burst: int = DEFAULT_BURST,
        refill_s: float = DEFAULT_REFILL_S,
        max_callers: int = DEFAULT_MAX_CALLERS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(burst, bool) or not isinstance(burst, int) or not 1 <= burst <= 1_000_000:
            raise ValueError("burst must be an integer in [1, 1000000]")
        if not isinstance(refill_s, int | float) or not 0 < refill_s <= 86_400:
            raise ValueError("refill_s must be in (0, 86400] seconds")
        if isinstance(max_callers, bool) or not isinstance(max_callers, int) or max_callers < 1:
            raise ValueError("max_callers must be a positive integer")
        self.burst = burst
        self.refill_s = float(refill_s)
        self._max = max_callers
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()  # least recently charged first
        #: Calls refused because their caller's budget was spent (a statistic).
        self.refused = 0

    def _refilled(self, bucket: _Bucket, now: float) -> float:
        return min(float(self.burst), bucket.tokens + (now - bucket.at) / self.refill_s)

    def check(self, caller: str) -> None:
        """Raise :class:`FailureBudgetExhausted` while ``caller`` has no failure left."""
        with self._lock:
            bucket = self._buckets.get(caller)
            if bucket is None:
                return
            tokens = self._refilled(bucket, self._clock())
            if tokens >= 1.0:
                return
            self.refused += 1
            wait = (1.0 - tokens) * self.refill_s
        raise FailureBudgetExhausted(
            f"too many requests of this caller failed verification; retry in"
            f" {math.ceil(wait)} s, after fixing what made them fail",
            wait,
        )

    def charge(self, caller: str) -> None:
        """Take one failure from ``caller``'s bucket (never below zero)."""
        with self._lock:
            now = self._clock()
            bucket = self._buckets.get(caller)
            tokens = float(self.burst) if bucket is None else self._refilled(bucket, now)
            self._buckets[caller] = _Bucket(max(0.0, tokens - 1.0), now)
            self._buckets.move_to_end(caller)
            if len(self._buckets) > self._max:
                self._forget(now)

    def _forget(self, now: float) -> None:
        """(lock held) Drop full buckets, then the least recently charged, to the bound."""
        for key in [k for k, b in self._buckets.items() if self._refilled(b, now) >= self.burst]:
            del self._buckets[key]
        while len(self._buckets) > self._max:
            self._buckets.popitem(last=False)

    def remaining(self, caller: str) -> float:
        """Failures ``caller`` may still have now (``burst`` for an unknown caller)."""
        with self._lock:
            bucket = self._buckets.get(caller)
            return float(self.burst) if bucket is None else self._refilled(bucket, self._clock())

    def __len__(self) -> int:
        with self._lock:
            return len(self._buckets)


class Gate:
    """At most ``concurrency`` holders at once and ``max_waiting`` waiting; a caller that
    would wait beyond that, or longer than ``wait_s``, is shed with :class:`Overloaded`
    (``OVERLOADED``) instead of queueing on a request thread. For CPU-heavy checks that
    run on the request path (a cosignature's pairing)."""

    def __init__(self, name: str, *, concurrency: int, max_waiting: int, wait_s: float) -> None:
        self._name = name
        self._slots = threading.BoundedSemaphore(concurrency)
        self._lock = threading.Lock()
        self._waiting = 0
        self._max_waiting = max_waiting
        self._wait_s = wait_s
        #: Callers shed so far (a statistic).
        self.shed = 0

    def _shed(self) -> Overloaded:
        with self._lock:
            self.shed += 1
        return Overloaded(f"too many {self._name} checks are waiting; retry shortly", 1.0)

    def __enter__(self) -> None:
        if self._slots.acquire(blocking=False):
            return
        with self._lock:
            full = self._waiting >= self._max_waiting
            if not full:
                self._waiting += 1
        if full:
            raise self._shed()
        try:
            acquired = self._slots.acquire(timeout=self._wait_s)
        finally:
            with self._lock:
                self._waiting -= 1
        if not acquired:
            raise self._shed()

    def __exit__(self, *_exc: object) -> None:
        self._slots.release()
