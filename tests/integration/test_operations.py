"""Operations (issue 11, section 5) against a real `zkgrid serve`: the admin port's
/metrics, /healthz and /readyz over HTTP, JSON access and append logs, a verifier worker
killed and restarted; client cancellations logged as what they are; reflection v1.

The served process is `python -m cli.main serve --admin-listen 127.0.0.1:0
--log-format json --verify-processes 1` on SQLite; the test reads its ports from its
log, makes calls with the meter client (real proofs) and checks what the metrics and
the logs say about them.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, cast

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from cli.community import time_of_use_tariff
from cli.demo import publish_tariff, register_meter
from ledger.checkpoint import CheckpointSigner, parse_verifier_key
from ledger.merkle import EMPTY_ROOT
from meter.client import MeterClient, ServiceError
from meter.readings import DayReadings
from service.config import ServiceConfig
from service.logs import ACCESS_LOGGER
from service.reflection import V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME, v1_message_classes
from service.server import build_server, server_info
from settlement.records import Bill
from zkgrid.settlement.v1 import ledger_pb2, ledger_pb2_grpc, meters_pb2, meters_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
INTERVAL = 240
PERIODS = ("2026-11-21", "2026-11-22")
UTILITY = (("x-zkgrid-role", "utility"), ("x-zkgrid-identity", "ops"))
AUDITOR = (("x-zkgrid-role", "auditor"), ("x-zkgrid-identity", "aud-1"))
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class _Served:
    """A `zkgrid serve` subprocess; its stderr (JSON lines) collected on a thread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, args=(proc.stderr,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with self._cond:
                self.raw.append(line)
                with contextlib.suppress(ValueError):  # asserted on below: all are JSON
                    self.lines.append(json.loads(line))
                self._cond.notify_all()

    def wait_for(self, text: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    if text in line.get("msg", ""):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise AssertionError(f"no log line with {text!r}: {self.raw[-5:]}")
                self._cond.wait(min(left, 0.2))

    def events(self, event: str) -> list[dict[str, Any]]:
        with self._cond:
            return [line for line in self.lines if line.get("event") == event]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[_Served]:
    argv = [
        sys.executable, "-m", "cli.main", "serve", "--insecure",
        "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
        "--db", f"sqlite:///{tmp_path / 'ledger.db'}", "--log-key", str(tmp_path / "log.key"),
        "--origin", "zkgrid.test/ops", "--log-format", "json", "--verify-processes", "1",
        "--grace", "2",
        "--failure-burst", "2",  # a refused bill, then its corrected one from the same meter
    ]  # fmt: skip
    proc = subprocess.Popen(
        argv,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )
    served = _Served(proc)
    try:
        yield served
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return int(reply.status), reply.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()


def _scrape(admin: str) -> Samples:
    status, text = _get(f"{admin}/metrics")
    assert status == 200
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def _readings(rng: random.Random, period: str) -> DayReadings:
    t = 1440 // INTERVAL
    return DayReadings.from_lists(
        period,
        INTERVAL,
        [rng.randrange(0, 5000) for _ in range(t)],
        [rng.randrange(0, 5000) for _ in range(t)],
    )


def _children(pid: int) -> list[tuple[int, str]]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
            found.append((int(entry.name), cmdline))
    return found


def test_metrics_health_and_logs_of_a_real_server(served: _Served, tmp_path: Path) -> None:
    serving = served.wait_for("serving zkgrid.test/ops on 127.0.0.1:")
    admin_line = served.wait_for("admin port")
    grpc_port = int(serving["msg"].split("127.0.0.1:")[1].split()[0])
    admin = f"http://127.0.0.1:{int(admin_line['msg'].rsplit(':', 1)[1])}"
    log_key = parse_verifier_key(serving["msg"].rsplit("checkpoint key ", 1)[1])

    assert _get(f"{admin}/healthz") == (200, "ok\n")
    status, body = _get(f"{admin}/readyz")
    assert status == 200, body
    assert json.loads(body) == {
        "ready": True,
        "checks": {"ledger_size": "0", "serving": "ok", "store": "ok", "verifier": "ok"},
    }
    assert _get(f"{admin}/nothing")[0] == 404
    before = _scrape(admin)
    assert _value(before, "zkgrid_ledger_size") == 0
    assert _value(before, "zkgrid_ledger_appends_total", kind="reading_batch") == 0
    assert _value(before, "zkgrid_verifier_processes") == 1

    rng = random.Random(11)
    channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
    home = MeterClient.keygen(tmp_path / "meter", "ops-7", INTERVAL)
    client = MeterClient(home, channel, insecure=True, log_key=log_key)
    try:
        register_meter(channel, client.registration_request(), log_key)
        publish_tariff(channel, time_of_use_tariff(PERIODS[0], INTERVAL), log_key)
        client.submit(client.build_batch(_readings(rng, PERIODS[0])))
        bill = client.prove_bill(PERIODS[0])
        tampered = Bill(bill.meter_id, bill.period, bill.batch_hash, bill.tariff_hash,
                        bill.total + 1, bill.proof)  # fmt: skip
        with pytest.raises(ServiceError) as refused:
            client.submit_bill(tampered)
        assert refused.value.reason == "PROOF_INVALID"
        client.submit_bill(bill)
        with pytest.raises(grpc.RpcError) as unknown:
            meters_pb2_grpc.MeterServiceStub(channel).GetMeter(
                meters_pb2.GetMeterRequest(meter_id="nobody"), metadata=UTILITY, timeout=10
            )
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND

        after = _scrape(admin)
        requests = "zkgrid_rpc_requests_total"
        assert _value(after, requests, service="zkgrid.settlement.v1.ReadingService",
                      method="SubmitReadings", code="OK", reason="") == 1  # fmt: skip
        assert _value(after, requests, service="zkgrid.settlement.v1.BillService",
                      method="SubmitBill", code="INVALID_ARGUMENT",
                      reason="PROOF_INVALID") == 1  # fmt: skip
        assert _value(after, requests, service="zkgrid.settlement.v1.BillService",
                      method="SubmitBill", code="OK", reason="") == 1  # fmt: skip
        assert _value(after, requests, service="zkgrid.settlement.v1.MeterService",
                      method="GetMeter", code="NOT_FOUND", reason="UNKNOWN_METER") == 1  # fmt: skip
        assert _value(after, "zkgrid_rpc_duration_seconds_count",
                      service="zkgrid.settlement.v1.ReadingService",
                      method="SubmitReadings") == 1  # fmt: skip
        appends = "zkgrid_ledger_appends_total"
        for kind in ("meter_registration", "tariff", "reading_batch", "bill"):
            assert _value(after, appends, kind=kind) == 1, kind
        assert _value(after, appends, kind="cosignature") == 0
        assert _value(after, "zkgrid_ledger_size") == 4
        assert 0 <= _value(after, "zkgrid_checkpoint_age_seconds") < 120
        assert _value(after, "zkgrid_store_up") == 1
        assert _value(after, "zkgrid_verification_seconds_count", proof="range") == 1
        assert _value(after, "zkgrid_verification_seconds_count", proof="bill") == 2
        assert _value(after, "zkgrid_verification_seconds_sum", proof="range") > 0
        assert _value(after, "zkgrid_verification_batch_size_count", proof="range") == 1
        assert _value(after, "zkgrid_verification_batch_size_sum", proof="range") == 1
        # The good bill came after the meter's failed proof: verified alone, not batched.
        assert _value(after, "zkgrid_verification_batch_size_count", proof="bill") == 1
        assert _value(after, "zkgrid_verifier_restarts_total") == 0
        assert _value(after, "zkgrid_info", version="0.1.0", origin="zkgrid.test/ops",
                      backend="sqlite") == 1  # fmt: skip
        assert _value(after, "process_resident_memory_bytes") > 0

        # A verifier worker dies: /readyz restarts the pool, the metric counts it, and
        # the next batch is verified by the new worker.
        workers = [pid for pid, cmd in _children(served.proc.pid) if "spawn_main" in cmd]
        assert len(workers) == 1, _children(served.proc.pid)
        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status, body = _get(f"{admin}/readyz")
            restarted = _value(_scrape(admin), "zkgrid_verifier_restarts_total")
            if restarted == 1:
                break
            time.sleep(0.2)
        assert restarted == 1
        assert status == 200, body
        publish_tariff(channel, time_of_use_tariff(PERIODS[1], INTERVAL), log_key)
        client.submit(client.build_batch(_readings(rng, PERIODS[1])))
        final = _scrape(admin)
        assert _value(final, "zkgrid_verifier_restarts_total") == 1
        assert _value(final, "zkgrid_ledger_appends_total", kind="reading_batch") == 2
        assert _value(final, "zkgrid_ledger_size") == 6
    finally:
        client.close()
        channel.close()

    served.proc.send_signal(signal.SIGTERM)
    assert served.proc.wait(timeout=30) == 0
    served._reader.join(10)

    # Every line is one JSON object; the access log has a line per call.
    assert served.raw
    assert len(served.lines) == len(served.raw), [r for r in served.raw if not r.startswith("{")]
    rpcs = served.events("rpc")
    assert all(r["logger"] == ACCESS_LOGGER for r in rpcs)
    submits = [r for r in rpcs if r["method"].endswith("/SubmitReadings")]
    assert [(r["role"], r["cn"], r["status"], r["reason"]) for r in submits] == [
        ("meter", "ops-7", "OK", None),
        ("meter", "ops-7", "OK", None),
    ]
    assert all(r["latency_ms"] > 0 for r in submits)
    bills = [(r["status"], r["reason"]) for r in rpcs if r["method"].endswith("/SubmitBill")]
    assert bills == [("INVALID_ARGUMENT", "PROOF_INVALID"), ("OK", None)]
    unknown_line = [r for r in rpcs if r["method"].endswith("/GetMeter")]
    assert [(r["role"], r["status"], r["reason"]) for r in unknown_line] == [
        ("utility", "NOT_FOUND", "UNKNOWN_METER")
    ]
    appended = [(a["index"], a["kind"]) for a in served.events("append")]
    assert appended == [
        (0, "METER_REGISTRATION"), (1, "TARIFF"), (2, "READING_BATCH"), (3, "BILL"),
        (4, "TARIFF"), (5, "READING_BATCH"),
    ]  # fmt: skip
    errors = [line for line in served.lines if line["level"] in ("ERROR", "CRITICAL")]
    assert [e["msg"] for e in errors] == [
        "range proof verifier: worker process lost; restarting the pool"
    ]
    assert any("draining" in line["msg"] for line in served.lines)


# ----------------------------------------------------------------------------- cancellations


class _SlowStore:
    """A duck-typed store: a slow checkpoint and an endless slow stream of entries."""

    signer = CheckpointSigner.from_private_bytes("slow", bytes(32))

    def latest_checkpoint(self) -> Any:
        time.sleep(0.8)
        from ledger.checkpoint import Checkpoint

        return self.signer.sign(Checkpoint("slow", 0, EMPTY_ROOT))

    def entries(self, start: int, end: int | None = None) -> Iterator[Any]:
        class _Entry:
            kind = type("K", (), {"name": "BILL"})()
            payload = b"p" * 100
            leaf_hash = bytes(32)

        for index in range(start, 10**9):
            time.sleep(0.002)
            entry = _Entry()
            entry.index = index  # type: ignore[attr-defined]
            yield entry


def test_a_client_going_away_is_logged_as_such_never_as_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG")
    config = ServiceConfig(listen="127.0.0.1:0", insecure=True, workers=4)
    server = build_server(None, config, store=cast(Any, _SlowStore()))
    server.start()
    target = f"127.0.0.1:{server_info(server).port}"
    try:
        channel = grpc.insecure_channel(target)
        stub = ledger_pb2_grpc.LedgerServiceStub(channel)
        with pytest.raises(grpc.RpcError) as late:
            stub.GetCheckpoint(ledger_pb2.GetCheckpointRequest(), metadata=AUDITOR, timeout=0.2)
        assert late.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        from_zero = ledger_pb2.StreamEntriesRequest(start_index=0)
        stream: Any = stub.StreamEntries(from_zero, metadata=AUDITOR)
        for n, _ in enumerate(stream):
            if n == 20:
                stream.cancel()
                break
        second: Any = stub.StreamEntries(from_zero, metadata=AUDITOR)
        next(second)
        channel.close()  # the client disappears mid-stream
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            access = [r for r in caplog.records if r.name == ACCESS_LOGGER]
            if len(access) >= 3:
                break
            time.sleep(0.05)
    finally:
        server.stop(0).wait()
    lines = sorted(r.getMessage() for r in caplog.records if r.name == ACCESS_LOGGER)
    assert len(lines) == 3, lines
    assert "GetCheckpoint DEADLINE_EXCEEDED role=auditor cn=aud-1" in lines[0]
    assert all("StreamEntries CANCELLED role=auditor cn=aud-1" in line for line in lines[1:])
    access = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    assert all(r.levelname == "INFO" for r in access)
    assert [r for r in caplog.records if r.levelno >= 30 or r.exc_info] == []


# ----------------------------------------------------------------------------- reflection v1


def test_reflection_v1_and_v1alpha_list_and_describe_the_services(tmp_path: Path) -> None:
    from cli.demo import embedded_service

    with embedded_service(f"sqlite:///{tmp_path / 'ledger.db'}") as svc:
        request_cls, response_cls = v1_message_classes()
        info = svc.channel.stream_stream(
            f"/{V1_SERVICE_NAME}/ServerReflectionInfo",
            request_serializer=request_cls.SerializeToString,
            response_deserializer=response_cls.FromString,
        )
        replies = list(
            info(
                iter([
                    request_cls(list_services=""),
                    request_cls(file_containing_symbol="zkgrid.settlement.v1.ReadingService"),
                    request_cls(file_containing_symbol=V1_SERVICE_NAME),
                ]),
                timeout=10,
            )
        )  # fmt: skip
        name = type(replies[0]).DESCRIPTOR.full_name
        assert name == "grpc.reflection.v1.ServerReflectionResponse"
        listed = {s.name for s in replies[0].list_services_response.service}
        assert {
            "zkgrid.settlement.v1.ReadingService", "zkgrid.settlement.v1.BillService",
            "zkgrid.settlement.v1.LedgerService", "zkgrid.settlement.v1.WitnessService",
            "grpc.health.v1.Health", V1_SERVICE_NAME, V1ALPHA_SERVICE_NAME,
        } <= listed  # fmt: skip
        files = [
            descriptor_pb2.FileDescriptorProto.FromString(raw)
            for raw in replies[1].file_descriptor_response.file_descriptor_proto
        ]
        services = {f"{f.package}.{s.name}" for f in files for s in f.service}
        assert "zkgrid.settlement.v1.ReadingService" in services
        own = [
            descriptor_pb2.FileDescriptorProto.FromString(raw)
            for raw in replies[2].file_descriptor_response.file_descriptor_proto
        ]
        assert [(f.package, [s.name for s in f.service]) for f in own] == [
            ("grpc.reflection.v1", ["ServerReflection"])
        ]
        # v1alpha still answers, with the same list.
        old = reflection_pb2_grpc.ServerReflectionStub(svc.channel)
        (reply,) = old.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
        )
        assert {s.name for s in reply.list_services_response.service} == listed
