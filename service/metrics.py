"""The service's Prometheus metrics (``prometheus-client``), served on the admin port.

Every metric lives in one :class:`ServiceMetrics` registry per server (never the
process-global one), fed from three places and read at scrape time from a fourth:

* calls, as a :class:`~service.observers.CallObserver` of the interceptor:
  ``zkgrid_rpc_requests_total{service,method,code,reason}`` and
  ``zkgrid_rpc_duration_seconds{service,method}``;
* appends, as an append listener of the store:
  ``zkgrid_ledger_appends_total{kind}`` (entries this process appended: reading
  batches, bills, registrations, ...);
* the proof verifier, through :class:`InstrumentedVerifier` (a
  :class:`~service.verification.ProofVerifier` whose ``verify``/``verify_bill``/
  ``verify_cycle_bill`` are timed and whose shared micro-batchers' public
  ``batch_sizes`` record feeds a histogram; ``proof`` is ``range``, ``bill`` or
  ``cycle_bill``): ``zkgrid_verification_seconds{proof}`` (a caller's wait for its proof's verdict,
  micro-batch wait included), ``zkgrid_verification_batch_size{proof}`` and
  ``zkgrid_verifier_restarts_total`` (worker pools started after the first: a worker
  process died);
* the store, read when Prometheus scrapes (one indexed read, bounded by
  :data:`STORE_READ_TIMEOUT_S`): ``zkgrid_ledger_size``,
  ``zkgrid_checkpoint_age_seconds`` (since the latest checkpoint was signed: every
  append signs one), ``zkgrid_checkpoint_timestamp_seconds`` and ``zkgrid_store_up``
  (0 when the read failed or timed out; the two before are then left out).

Also ``zkgrid_info{version,origin,backend}``, ``zkgrid_verifier_processes`` and the
client library's ``process_*`` metrics (memory, CPU, open files). Labels hold method
names, status codes, reasons and entry kinds only: never a caller's identity (it is in
the access log) and nothing about readings.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import grpc
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from ledger.entries import EntryKind
from service.errors import ProofMalformed
from service.verification import ProofVerifier, RangeJob

if TYPE_CHECKING:  # pragma: no cover - annotations only
    from service.storage import LedgerStore

__all__ = [
    "STORE_READ_TIMEOUT_S",
    "InstrumentedVerifier",
    "ServiceMetrics",
    "StoreReader",
]

#: Seconds a scrape or a readiness check waits for the store's one read.
STORE_READ_TIMEOUT_S = 3.0
_RPC_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_VERIFY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def _split_method(method: str) -> tuple[str, str]:
    """``/pkg.Service/Method`` -> (``pkg.Service``, ``Method``)."""
    service, _, name = method.lstrip("/").rpartition("/")
    return service, name


class StoreReader:
    """The store's head (size, time of the latest checkpoint), read on one thread with a
    time limit, so a hung database neither blocks a scrape for long nor piles up threads."""

    def __init__(self, store: LedgerStore, timeout_s: float = STORE_READ_TIMEOUT_S) -> None:
        self._store = store
        self._timeout_s = timeout_s
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zkgrid-store-read")

    def head(self) -> tuple[int, datetime]:
        """The latest checkpoint's size and signing time; raises what the read raised, or
        :class:`TimeoutError` after the time limit."""
        future = self._executor.submit(self._store.head)
        try:
            return future.result(timeout=self._timeout_s)
        except FutureTimeout:
            raise TimeoutError(f"the store did not answer within {self._timeout_s:g} s") from None

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class _LedgerCollector:
    """Scrape-time gauges read from the store (see the module doc)."""

    def __init__(self, reader: StoreReader, clock: Callable[[], float] = time.time) -> None:
        self._reader = reader
        self._clock = clock

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("zkgrid_store_up", "1 when the store answered the scrape's read")
        try:
            size, signed_at = self._reader.head()
        except Exception:  # unreachable, timed out: say so, never fail the scrape
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        stamp = signed_at.replace(tzinfo=signed_at.tzinfo or UTC).timestamp()
        return [
            up,
            GaugeMetricFamily(
                "zkgrid_ledger_size", "entries in the ledger (its latest checkpoint)", size
            ),
            GaugeMetricFamily(
                "zkgrid_checkpoint_age_seconds",
                "seconds since the latest checkpoint was signed (every append signs one)",
                max(0.0, self._clock() - stamp),
            ),
            GaugeMetricFamily(
                "zkgrid_checkpoint_timestamp_seconds",
                "when the latest checkpoint was signed (Unix time)",
                stamp,
            ),
        ]


class ServiceMetrics:
    """The metrics of one server: a :class:`~service.observers.CallObserver` and a store
    append listener; :attr:`registry` is what the admin port serves."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "zkgrid_rpc_requests",
            "RPCs finished, by method, status code and ErrorInfo reason",
            ["service", "method", "code", "reason"],
            registry=r,
        )
        self.duration = Histogram(
            "zkgrid_rpc_duration_seconds",
            "RPC latency in the server, by method",
            ["service", "method"],
            buckets=_RPC_BUCKETS,
            registry=r,
        )
        self.appends = Counter(
            "zkgrid_ledger_appends",
            "ledger entries appended by this process, by kind",
            ["kind"],
            registry=r,
        )
        for kind in EntryKind:  # every kind at 0 from the start (rate() and absent alerts)
            self.appends.labels(kind=kind.name.lower())
        self.verification = Histogram(
            "zkgrid_verification_seconds",
            "a caller's wait for its proof's verdict (micro-batch wait included), by proof",
            ["proof"],
            buckets=_VERIFY_BUCKETS,
            registry=r,
        )
        self.batch_sizes = Histogram(
            "zkgrid_verification_batch_size",
            "proofs checked together in one micro-batch, by proof",
            ["proof"],
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.verifier_restarts = Counter(
            "zkgrid_verifier_restarts",
            "verifier worker pools restarted because a worker process died",
            registry=r,
        )
        self.verifier_processes = Gauge(
            "zkgrid_verifier_processes",
            "worker processes verifying range proofs (0: in the server process)",
            registry=r,
        )
        self.info = Gauge(
            "zkgrid_info", "always 1: the build and the ledger served", ["version", "origin",
            "backend"], registry=r,
        )  # fmt: skip
        for proof in ("range", "bill", "cycle_bill"):
            self.verification.labels(proof=proof)
            self.batch_sizes.labels(proof=proof)
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self._lock = threading.Lock()
        self._readers: list[StoreReader] = []

    # ------------------------------------------------------------------ feeds

    def on_call_end(
        self,
        method: str,
        role: str | None,
        identity: str | None,
        code: grpc.StatusCode,
        reason: str | None,
        latency_s: float,
    ) -> None:
        """CallObserver: count the call and its latency (never the caller's identity)."""
        service, name = _split_method(method)
        self.requests.labels(service, name, code.name, reason or "").inc()
        self.duration.labels(service, name).observe(latency_s)

    def on_append(self, entries: Sequence[tuple[int, EntryKind]], checkpoint_size: int) -> None:
        """Store append listener: count the entries appended, by kind."""
        for _index, kind in entries:
            self.appends.labels(kind=kind.name.lower()).inc()

    def watch_store(self, store: LedgerStore, *, origin: str, version: str) -> StoreReader:
        """Count ``store``'s appends and read its head at scrape time; returns the reader
        (the readiness check shares it). Call once per store."""
        store.add_append_listener(self.on_append)
        reader = StoreReader(store)
        self.registry.register(_LedgerCollector(reader))
        self.info.labels(version=version, origin=origin, backend=store.backend).set(1)
        with self._lock:
            self._readers.append(reader)
        return reader

    def close(self) -> None:
        with self._lock:
            readers, self._readers = self._readers, []
        for reader in readers:
            reader.close()


class _ObservedSizes(deque[int]):
    """A micro-batcher's ``batch_sizes`` record that also feeds a histogram."""

    def __init__(self, kept: deque[int], histogram: Any) -> None:
        super().__init__(kept, maxlen=kept.maxlen)
        self._histogram = histogram

    def append(self, size: int) -> None:
        super().append(size)
        self._histogram.observe(size)


class InstrumentedVerifier(ProofVerifier):
    """A :class:`~service.verification.ProofVerifier` that reports to ``metrics``: the time
    each ``verify``/``verify_bill``/``verify_cycle_bill`` caller waits, the micro-batch
    sizes and the worker pool restarts; and that tells the readiness check whether it can
    verify (:meth:`state`)."""

    def __init__(self, metrics: ServiceMetrics, *, processes: int = 0, **kwargs: Any) -> None:
        self._metrics = metrics
        self._pools_started = 0
        self._latest_pool: ProcessPoolExecutor | None = None
        self._closing = False
        super().__init__(processes=processes, **kwargs)
        metrics.verifier_processes.set(processes)
        range_sizes = metrics.batch_sizes.labels(proof="range")
        bill_sizes = metrics.batch_sizes.labels(proof="bill")
        cycle_sizes = metrics.batch_sizes.labels(proof="cycle_bill")
        self.range_proofs.batch_sizes = _ObservedSizes(self.range_proofs.batch_sizes, range_sizes)
        self.bill_proofs.batch_sizes = _ObservedSizes(self.bill_proofs.batch_sizes, bill_sizes)
        self.cycle_bill_proofs.batch_sizes = _ObservedSizes(
            self.cycle_bill_proofs.batch_sizes, cycle_sizes
        )

    def _new_pool(self, processes: int) -> ProcessPoolExecutor | None:  # type: ignore[override]
        # ProofVerifier starts a pool here at construction and again after a worker died.
        pool = ProofVerifier._new_pool(processes)
        if pool is not None:
            self._pools_started += 1
            self._latest_pool = pool
            if self._pools_started > 1:
                self._metrics.verifier_restarts.inc()
        return pool

    def verify(self, *args: Any, **kwargs: Any) -> None:
        started = time.monotonic()
        try:
            super().verify(*args, **kwargs)
        finally:
            self._metrics.verification.labels(proof="range").observe(time.monotonic() - started)

    def verify_bill(self, *args: Any, **kwargs: Any) -> None:
        started = time.monotonic()
        try:
            super().verify_bill(*args, **kwargs)
        finally:
            self._metrics.verification.labels(proof="bill").observe(time.monotonic() - started)

    def verify_cycle_bill(self, *args: Any, **kwargs: Any) -> None:
        started = time.monotonic()
        try:
            super().verify_cycle_bill(*args, **kwargs)
        finally:
            elapsed = time.monotonic() - started
            self._metrics.verification.labels(proof="cycle_bill").observe(elapsed)

    @property
    def restarts(self) -> int:
        """Worker pools started after the first one."""
        return max(0, self._pools_started - 1)

    def state(self) -> str:
        """``in-process``, ``up``, ``broken`` (a worker died; the next range-proof batch
        restarts the pool) or ``closed``."""
        if self._closing:
            return "closed"
        if self._latest_pool is None:
            return "in-process"
        return "broken" if getattr(self._latest_pool, "_broken", False) else "up"

    def restart_if_broken(self, timeout: float = 30.0) -> str:
        """If the worker pool is broken, send one malformed probe job through the verifier,
        which makes it restart the pool (as any range-proof batch would); the state after."""
        if self.state() == "broken":
            probe = RangeJob(b"", (), 0, b"zkgrid readiness probe")
            with contextlib.suppress(ProofMalformed):  # its verdict: the probe is no proof
                self.range_proofs.verify(probe, timeout)
        return self.state()

    def close(self) -> None:
        self._closing = True
        super().close()
