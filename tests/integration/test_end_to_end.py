"""End to end over a real gRPC server on 127.0.0.1:0 and a real channel.

Meters keep their openings; the service sees commitments, proofs and bill totals.
Intervals of 240 minutes (T = 6, 12 committed values) keep the proving fast.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from cli.community import time_of_use_tariff
from cli.demo import (
    EmbeddedService,
    embedded_service,
    publish_tariff,
    register_meter,
)
from ledger.checkpoint import CheckpointSigner
from meter import cli as meter_cli
from meter.client import MeterClient, ServiceError
from meter.readings import DayReadings, format_readings_csv
from settlement import convert
from settlement.records import ReadingBatch, Tariff
from zkgrid.settlement.v1 import readings_pb2, readings_pb2_grpc
from zkp.rangeproof import RangeProof

INTERVAL = 240
PERIOD = "2026-11-21"
NEXT = "2026-11-22"


@pytest.fixture
def service(durable_ledger_url: str, ledger_signer: CheckpointSigner) -> Iterator[EmbeddedService]:
    with embedded_service(durable_ledger_url, signer=ledger_signer) as svc:
        yield svc


@pytest.fixture
def sqlite_service(tmp_path: Path, ledger_signer: CheckpointSigner) -> Iterator[EmbeddedService]:
    with embedded_service(f"sqlite:///{tmp_path / 'ledger.db'}", signer=ledger_signer) as svc:
        yield svc


def _readings(index: int, period: str = PERIOD) -> DayReadings:
    imports = [100 * index + 37 * t + 5 for t in range(6)]
    exports = [0, 0, 250 * index, 400 + index, 13, 0]
    return DayReadings.from_lists(period, INTERVAL, imports, exports)


def _meters(svc: EmbeddedService, tmp_path: Path, count: int) -> list[MeterClient]:
    clients = []
    for i in range(count):
        home = MeterClient.keygen(tmp_path / f"m{i}", f"meter-{i}", INTERVAL)
        client = MeterClient(home, svc.channel, insecure=True, log_key=svc.log_key)
        register_meter(svc.channel, client.registration_request(), svc.log_key)
        clients.append(client)
    return clients


def _tariff(period: str = PERIOD) -> Tariff:
    return time_of_use_tariff(period, INTERVAL)


def test_a_day_for_several_meters(service: EmbeddedService, tmp_path: Path) -> None:
    clients = _meters(service, tmp_path, 4)
    publish_tariff(service.channel, _tariff(), service.log_key)
    receipts = {}
    for i, client in enumerate(clients):
        receipt = client.submit(client.build_batch(_readings(i)))
        assert receipt.signature_verified
        receipts[client.meter_id] = receipt
    # Idempotent: the identical batch again returns the original receipt.
    for client in clients:
        stored = client.store.batch(PERIOD)
        assert stored is not None
        assert stored.status == "accepted"
        again = client.submit(ReadingBatch.decode(stored.batch))
        assert again.ledger_index == receipts[client.meter_id].ledger_index
        assert again.leaf_hash == receipts[client.meter_id].leaf_hash
    tariff = _tariff()
    for i, client in enumerate(clients):
        bill, receipt = client.settle(PERIOD)
        r = _readings(i)
        assert bill.total == tariff.bill_total(r.imports, r.exports)
        assert receipt.signature_verified
        # Settling again is idempotent too.
        again_bill, again = client.settle(PERIOD)
        assert again_bill == bill
        assert again.ledger_index == receipt.ledger_index
        statement = client.statement()
        assert [line.bill for line in statement.lines] == [bill]
        assert statement.total == bill.total
    # A second day chains on the first.
    publish_tariff(service.channel, _tariff(NEXT), service.log_key)
    first = clients[0].store.batch(PERIOD)
    assert first is not None
    second = clients[0].build_batch(_readings(0, NEXT))
    assert second.sequence == 1
    assert second.prev_hash == first.batch_hash
    clients[0].submit(second)
    clients[0].settle(NEXT)
    assert len(clients[0].statement().lines) == 2
    status = clients[0].meter_status()
    assert status.next_sequence == 2
    for client in clients:
        client.close()


def test_refusals_are_service_errors_with_reasons(
    sqlite_service: EmbeddedService, tmp_path: Path
) -> None:
    svc = sqlite_service
    (client,) = _meters(svc, tmp_path, 1)
    # No tariff yet: the bill cannot be proven.
    client.submit(client.build_batch(_readings(1)))
    with pytest.raises(ServiceError) as info:
        client.prove_bill(PERIOD)
    assert info.value.reason == "UNKNOWN_TARIFF"
    assert info.value.code == grpc.StatusCode.NOT_FOUND
    # Another batch for the same period (built outside the local store's guard).
    key = client.home.key()
    bundle = RangeProof.prove(
        _readings(2).values(), 32, context=_context(client.meter_id, PERIOD, 0)
    )
    other = ReadingBatch.create(
        key,
        meter_id=client.meter_id,
        period=PERIOD,
        interval_minutes=INTERVAL,
        sequence=0,
        prev_hash=bytes(32),
        commitments=[c.to_bytes() for c in bundle.commitments],
        range_proof=bundle.proof.to_bytes(),
    )
    with pytest.raises(ServiceError) as info:
        client.submit(other)
    assert info.value.reason == "DUPLICATE_PERIOD"
    # The accepted batch stays in the local store.
    stored = client.store.batch(PERIOD)
    assert stored is not None
    assert stored.status == "accepted"
    # Someone else's identity cannot submit this meter's batch.
    stub = readings_pb2_grpc.ReadingServiceStub(svc.channel)
    with pytest.raises(grpc.RpcError) as rpc_info:
        stub.SubmitReadings(
            readings_pb2.SubmitReadingsRequest(batch=convert.reading_batch_to_proto(other)),
            metadata=(("x-zkgrid-role", "meter"), ("x-zkgrid-identity", "meter-9")),
        )
    assert rpc_info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    client.close()


def _context(meter_id: str, period: str, sequence: int) -> bytes:
    from settlement.records import reading_proof_context

    return reading_proof_context(meter_id, period, sequence)


class _FlakyInterceptor(grpc.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]
    """Fails calls with UNAVAILABLE: before sending (``drop_requests``) or after the server
    answered (``drop_responses``, a lost response)."""

    def __init__(self, drop_requests: int = 0, drop_responses: int = 0) -> None:
        self.drop_requests = drop_requests
        self.drop_responses = drop_responses
        self.calls = 0

    def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        self.calls += 1
        if self.drop_requests:
            self.drop_requests -= 1
            return _Failed()
        outcome = continuation(details, request)
        if self.drop_responses:
            outcome.result()  # the server did the work
            self.drop_responses -= 1
            return _Failed()
        return outcome


class _Failed(grpc.RpcError, grpc.Call, grpc.Future):  # type: ignore[type-arg]
    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        return "injected"

    def initial_metadata(self) -> Any:
        return ()

    def trailing_metadata(self) -> Any:
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> Any:
        return None

    def add_callback(self, callback: Any) -> bool:
        return False

    def cancel(self) -> bool:
        return False

    def cancelled(self) -> bool:
        return False

    def running(self) -> bool:
        return False

    def done(self) -> bool:
        return True

    def result(self, timeout: Any = None) -> Any:
        raise self

    def exception(self, timeout: Any = None) -> Any:
        return self

    def traceback(self, timeout: Any = None) -> Any:
        return None

    def add_done_callback(self, fn: Any) -> None:
        fn(self)


def test_submit_retries_transient_failures_and_lost_responses(
    sqlite_service: EmbeddedService, tmp_path: Path
) -> None:
    svc = sqlite_service
    flaky = _FlakyInterceptor(drop_requests=2, drop_responses=1)
    channel = grpc.intercept_channel(svc.channel, flaky)
    home = MeterClient.keygen(tmp_path / "m", "meter-r", INTERVAL)
    client = MeterClient(home, channel, insecure=True, log_key=svc.log_key, initial_backoff=0.01)
    register_meter(svc.channel, client.registration_request(), svc.log_key)
    receipt = client.submit(client.build_batch(_readings(3)))
    assert flaky.calls == 4  # two never sent, one answered but lost, one answered
    assert svc.store.size() == 2  # registration + one batch: the retry appended nothing
    assert receipt.ledger_index == 1
    # Out of attempts: the error surfaces as UNAVAILABLE.
    client2 = MeterClient(
        home, grpc.intercept_channel(svc.channel, _FlakyInterceptor(drop_requests=99)),
        insecure=True, max_attempts=3, initial_backoff=0.01,
    )  # fmt: skip
    with pytest.raises(ServiceError) as info:
        client2.statement()
    assert info.value.code == grpc.StatusCode.UNAVAILABLE
    client.close()
    client2.close()


def test_cli_end_to_end(
    sqlite_service: EmbeddedService, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    svc = sqlite_service
    home = tmp_path / "cli-home"
    net = ["--home", str(home), "--target", svc.target, "--insecure"]
    log_key = ["--log-key", svc.signer.verifier_key()]

    def run(*args: str) -> tuple[int, str, str]:
        out = io.StringIO()
        code = meter_cli.main(list(args), out=out)
        return code, out.getvalue(), capsys.readouterr().err

    code, out, _ = run("keygen", "--id", "cli-1", "--home", str(home),
                       "--interval-minutes", str(INTERVAL))  # fmt: skip
    assert code == 0
    assert "cli-1" in out
    code, out, _ = run("register", "--home", str(home))
    assert code == 0
    assert '"meter_id": "cli-1"' in out
    request = tmp_path / "request.json"
    request.write_text(out)
    code, out, _ = run("register", "--submit", "--request", str(request), *net, *log_key)
    assert code == 0, out
    assert "registered meter cli-1" in out
    code, _, err = run("register", "--submit", *net)
    assert code == 1
    assert "METER_EXISTS" in err

    csv_path = tmp_path / "day.csv"
    csv_path.write_text(format_readings_csv(_readings(5)))
    code, out, err = run("submit", "--csv", str(csv_path), *net, *log_key)
    assert code == 0, err
    assert "signature verified" in out
    code, out, err = run("submit", "--csv", str(csv_path), *net)  # idempotent
    assert code == 0, err
    assert "warning: no log key is pinned" in err  # --insecure: warned, not refused
    code, out, err = run("submit", "--csv", str(csv_path), *net, "--strict")
    assert code == 2
    assert "no log key is pinned" in err

    bad = tmp_path / "bad.csv"
    bad.write_text(format_readings_csv(_readings(5)).replace(",13\n", ",-13\n"))
    code, _, err = run("submit", "--csv", str(bad), *net, *log_key)
    assert code == 2
    assert "line 6" in err
    assert err.count("\n") == 1  # one line

    code, _, err = run("bill", "--period", PERIOD, *net)
    assert code == 1
    assert "UNKNOWN_TARIFF" in err
    publish_tariff(svc.channel, _tariff(), svc.log_key)
    code, out, err = run("bill", "--period", PERIOD, *net, *log_key)
    assert code == 0, err
    expected = _tariff().bill_total(_readings(5).imports, _readings(5).exports)
    assert f"({expected} micro-EUR)" in out
    code, out, err = run("statement", *net, *log_key)
    assert code == 0, err
    assert PERIOD in out
    assert "verified" in out
    code, _, err = run("bill", "--period", "2026-13-40", *net)
    assert code == 2
    code, _, err = run("statement", "--home", str(home), "--target", "192.0.2.1:1", "--insecure")
    assert code == 2
    assert "loopback" in err
