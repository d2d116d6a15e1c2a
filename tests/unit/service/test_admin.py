"""service.admin over real HTTP on 127.0.0.1:0 and service.metrics' verifier and store
reader: readiness states, what the port refuses, the verifier's metrics with real proofs."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.admin import MAX_CONCURRENT, AdminServer
from service.config import ConfigError
from service.errors import ProofInvalid
from service.metrics import InstrumentedVerifier, ServiceMetrics, StoreReader
from service.storage import StoreUnavailable
from service.verification import BATCH_SIZES_KEPT, RangeJob
from zkp.rangeproof import RangeProof


class _Head:
    """A store whose head() returns, raises, or hangs as told."""

    def __init__(self, result: Any = None, delay: float = 0.0) -> None:
        self.result = (7, datetime.now(UTC)) if result is None else result
        self.delay = delay

    def head(self) -> tuple[int, datetime]:
        time.sleep(self.delay)
        if isinstance(self.result, BaseException):
            raise self.result
        return cast(tuple[int, datetime], self.result)


def _reader(store: _Head, timeout_s: float = 2.0) -> StoreReader:
    return StoreReader(cast(Any, store), timeout_s)


@pytest.fixture
def admin() -> Iterator[AdminServer]:
    server = AdminServer("127.0.0.1:0", ServiceMetrics().registry).start()
    yield server
    server.close()


def _request(server: AdminServer, path: str, method: str = "GET", **headers: str) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request(method, path, headers=headers)
    reply = conn.getresponse()
    body = reply.read()
    conn.close()
    return reply.status, reply.getheader("Content-Type"), body


def test_readiness_follows_the_service(admin: AdminServer) -> None:
    status, kind, body = _request(admin, "/readyz")
    assert (status, kind) == (503, "application/json")
    assert json.loads(body) == {"ready": False, "checks": {"serving": "starting"}}
    assert _request(admin, "/healthz")[::2] == (200, b"ok\n")  # alive while starting

    serving = [True]
    store = _Head()
    admin.readiness.attach(store=_reader(store), verifier=None, serving=lambda: serving[0])
    status, _, body = _request(admin, "/readyz")
    assert status == 200
    assert json.loads(body)["checks"] == {"serving": "ok", "store": "ok", "ledger_size": "7"}

    store.result = StoreUnavailable("the ledger store is unavailable")
    status, _, body = _request(admin, "/readyz")
    assert status == 503
    assert json.loads(body)["checks"]["store"] == "unavailable (STORE_UNAVAILABLE)"

    store.result, store.delay = (7, datetime.now(UTC)), 1.0
    admin.readiness.attach(store=_reader(store, 0.2), verifier=None, serving=lambda: serving[0])
    status, _, body = _request(admin, "/readyz")
    assert status == 503
    assert json.loads(body)["checks"]["store"] == "unavailable (TimeoutError)"

    store.delay = 0.0
    serving[0] = False  # SIGTERM: draining
    status, _, body = _request(admin, "/readyz")
    assert status == 503
    assert json.loads(body)["checks"]["serving"] == "not serving (draining)"

    serving[0] = True
    verifier = InstrumentedVerifier(ServiceMetrics(), processes=0)
    admin.readiness.attach(store=_reader(store), verifier=verifier, serving=lambda: True)
    assert _request(admin, "/readyz")[0] == 200
    verifier.close()
    status, _, body = _request(admin, "/readyz")
    assert status == 503
    assert json.loads(body)["checks"]["verifier"] == "closed"


def test_what_the_admin_port_refuses(admin: AdminServer) -> None:
    assert _request(admin, "/nothing")[0] == 404
    assert _request(admin, "/metrics", "POST")[0] == 501
    status, _, body = _request(admin, "/healthz", "HEAD")
    assert (status, body) == (200, b"")
    # (a handler frees its slot just after its reply: wait for the last one)
    held = [admin.slots.acquire(timeout=5) for _ in range(MAX_CONCURRENT)]
    assert all(held)
    try:
        assert _request(admin, "/metrics")[::2] == (503, b"busy\n")
    finally:
        for _ in held:
            admin.slots.release()
    assert _request(admin, "/metrics")[0] == 200
    with pytest.raises(ConfigError, match="cannot listen on the admin address"):
        AdminServer(f"127.0.0.1:{admin.port}", ServiceMetrics().registry)
    with pytest.raises(ConfigError, match="--admin-listen"):
        AdminServer("no-port", ServiceMetrics().registry)


def test_openmetrics_when_asked(admin: AdminServer) -> None:
    status, kind, body = _request(admin, "/metrics", Accept="application/openmetrics-text")
    assert status == 200
    assert kind.startswith("application/openmetrics-text")
    assert body.rstrip().endswith(b"# EOF")
    status, kind, _ = _request(admin, "/metrics")
    assert kind.startswith("text/plain")


def test_ipv6_loopback() -> None:
    try:
        probe = socket.socket(socket.AF_INET6)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        pytest.fail("this machine has no IPv6 loopback; the admin port supports [::1]")
    server = AdminServer("[::1]:0", ServiceMetrics().registry).start()
    try:
        conn = http.client.HTTPConnection("::1", server.port, timeout=10)
        conn.request("GET", "/healthz")
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        server.close()


def _job(values: list[int], context: bytes, *, valid: bool = True) -> RangeJob:
    bundle = RangeProof.prove(values, 32, context=context)
    return RangeJob(
        bundle.proof.to_bytes(),
        tuple(c.to_bytes() for c in bundle.commitments),
        32,
        context if valid else b"another context",
    )


def _samples(metrics: ServiceMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    from prometheus_client import generate_latest

    out = {}
    for family in text_string_to_metric_families(generate_latest(metrics.registry).decode()):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def test_the_instrumented_verifier_reports_waits_and_batch_sizes() -> None:
    metrics = ServiceMetrics()
    verifier = InstrumentedVerifier(metrics, processes=0, max_wait_s=0.05)
    try:
        good, bad = _job([1, 2], b"a"), _job([3, 4], b"b", valid=False)
        threads = [threading.Thread(target=verifier.verify, args=(good,))]
        errors: list[BaseException] = []

        def verify_bad() -> None:
            try:
                verifier.verify(bad)
            except ProofInvalid as exc:
                errors.append(exc)

        threads.append(threading.Thread(target=verify_bad))
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert len(errors) == 1
        assert verifier.state() == "in-process"
        assert verifier.restarts == 0
        # The public record is still a bounded deque of the sizes.
        sizes = verifier.range_proofs.batch_sizes
        assert sizes.maxlen == BATCH_SIZES_KEPT
        assert sum(sizes) == 2
    finally:
        verifier.close()
    assert verifier.state() == "closed"
    samples = _samples(metrics)
    assert samples[("zkgrid_verification_seconds_count", frozenset({("proof", "range")}))] == 2
    assert samples[("zkgrid_verification_batch_size_sum", frozenset({("proof", "range")}))] == 2
    batches = samples[("zkgrid_verification_batch_size_count", frozenset({("proof", "range")}))]
    assert batches == len(sizes)
    assert samples[("zkgrid_verifier_processes", frozenset())] == 0
