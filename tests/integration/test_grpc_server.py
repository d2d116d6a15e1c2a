"""The gRPC server on 127.0.0.1:0 with a real channel (insecure dev mode, roles in metadata):
health, reflection, LedgerService on every store backend, the domain over the wire, and each
domain refusal as its status code + ErrorInfo reason with nothing appended."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2  # type: ignore[import-untyped]
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from ledger.checkpoint import CheckpointSigner, verify_checkpoint
from ledger.entries import EntryKind
from ledger.merkle import verify_consistency, verify_inclusion
from service.cli import main as serve_main
from service.config import ConfigError, ServiceConfig
from service.server import build_server, server_info
from service.settlement import Settlement
from service.storage import LedgerStore, open_store
from settlement import convert
from settlement.records import ReadingBatch
from tests.unit.service.settlement_support import SimMeter, make_tariff
from zkgrid.settlement.v1 import (
    bills_pb2,
    bills_pb2_grpc,
    ledger_pb2,
    ledger_pb2_grpc,
    meters_pb2,
    meters_pb2_grpc,
    readings_pb2,
    readings_pb2_grpc,
    tariffs_pb2,
    tariffs_pb2_grpc,
)

DAY1, DAY2 = "2024-03-01", "2024-03-02"
SERVICES = [
    "zkgrid.settlement.v1.LedgerService",
    "zkgrid.settlement.v1.MeterService",
    "zkgrid.settlement.v1.ReadingService",
    "zkgrid.settlement.v1.TariffService",
    "zkgrid.settlement.v1.BillService",
]


@dataclass
class Running:
    channel: grpc.Channel
    store: LedgerStore
    settlement: Settlement
    signer: CheckpointSigner
    #: The bound address, ``127.0.0.1:<port>`` (for clients that open their own channel).
    target: str

    @property
    def port(self) -> int:
        return int(self.target.rsplit(":", 1)[1])

    def md(self, role: str, identity: str | None = None) -> tuple[tuple[str, str], ...]:
        return (("x-zkgrid-role", role), ("x-zkgrid-identity", identity or role))

    @property
    def meters(self) -> meters_pb2_grpc.MeterServiceStub:
        return meters_pb2_grpc.MeterServiceStub(self.channel)

    @property
    def readings(self) -> readings_pb2_grpc.ReadingServiceStub:
        return readings_pb2_grpc.ReadingServiceStub(self.channel)

    @property
    def tariffs(self) -> tariffs_pb2_grpc.TariffServiceStub:
        return tariffs_pb2_grpc.TariffServiceStub(self.channel)

    @property
    def bills(self) -> bills_pb2_grpc.BillServiceStub:
        return bills_pb2_grpc.BillServiceStub(self.channel)

    @property
    def ledger(self) -> ledger_pb2_grpc.LedgerServiceStub:
        return ledger_pb2_grpc.LedgerServiceStub(self.channel)


def _serve(
    url: str, signer: CheckpointSigner, origin: str, *, failure_burst: int = 0
) -> Iterator[Running]:
    store = open_store(url, signer, origin)
    settlement = Settlement(store)
    # No failure budgets by default: these tests send one refusal after another from one caller
    # to check each refusal's status (the budgets: tests/adversarial/test_failure_budgets.py).
    config = ServiceConfig(listen="127.0.0.1:0", insecure=True, failure_burst=failure_burst)
    server = build_server(settlement, config)
    server.start()
    target = f"127.0.0.1:{server_info(server).port}"
    channel = grpc.insecure_channel(target)
    try:
        yield Running(channel, store, settlement, signer, target)
    finally:
        channel.close()
        server.stop(None).wait()
        settlement.close()
        store.close()


@pytest.fixture
def running(
    tmp_path: Any, ledger_signer: CheckpointSigner, ledger_origin: str
) -> Iterator[Running]:
    yield from _serve(f"sqlite:///{tmp_path / 'ledger.db'}", ledger_signer, ledger_origin)


def error_info(err: grpc.RpcError) -> error_details_pb2.ErrorInfo:
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None, "no grpc-status-details-bin trailer"
    [detail] = status.details
    info = error_details_pb2.ErrorInfo()
    assert detail.Unpack(info)
    assert info.domain == "zkgrid.settlement.v1"
    return info


def refused(
    run: Running, code: grpc.StatusCode, reason: str, call: Callable[[], object]
) -> grpc.RpcError:
    """``call`` fails with ``code`` and ErrorInfo ``reason``, and the ledger does not grow."""
    size = run.store.size()
    with pytest.raises(grpc.RpcError) as info:
        call()
    err = info.value
    assert err.code() is code, (err.code(), err.details())
    assert error_info(err).reason == reason
    assert run.store.size() == size
    return err


# ----------------------------------------------------------------------------- health, reflection


def test_health_serving_for_the_server_and_every_service(running: Running) -> None:
    stub = health_pb2_grpc.HealthStub(running.channel)
    for name in ["", *SERVICES]:
        reply = stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING, name
    with pytest.raises(grpc.RpcError) as info:
        stub.Check(health_pb2.HealthCheckRequest(service="nope.Service"), timeout=5)
    assert info.value.code() is grpc.StatusCode.NOT_FOUND


def test_reflection_lists_and_describes_the_services(running: Running) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(running.channel)
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(
            file_containing_symbol="zkgrid.settlement.v1.ReadingService"
        ),
    ]
    listed, described = list(stub.ServerReflectionInfo(iter(requests), timeout=5))
    names = {s.name for s in listed.list_services_response.service}
    assert set(SERVICES) | {"grpc.health.v1.Health"} <= names
    assert described.file_descriptor_response.file_descriptor_proto


# ----------------------------------------------------------------------------- LedgerService


@pytest.fixture
def ledger_running(
    ledger_url: str, ledger_signer: CheckpointSigner, ledger_origin: str
) -> Iterator[Running]:
    yield from _serve(ledger_url, ledger_signer, ledger_origin)


def test_ledger_service_against_the_store(ledger_running: Running) -> None:
    run = ledger_running
    auditor = run.md("auditor", "aud-1")
    meters = [SimMeter(f"m{i}") for i in range(5)]
    for meter in meters:
        run.settlement.register_meter(meter.registration())
    run.settlement.revoke_meter("m4", "decommissioned")
    size = run.store.size()
    assert size == 6

    cp = run.ledger.GetCheckpoint(ledger_pb2.GetCheckpointRequest(), metadata=auditor, timeout=5)
    latest = verify_checkpoint(cp.checkpoint, run.signer.verifier())
    assert (latest.size, latest.root) == (cp.tree_size, cp.root_hash) == (size, cp.root_hash)
    first = run.ledger.GetCheckpoint(
        ledger_pb2.GetCheckpointRequest(tree_size=1), metadata=auditor, timeout=5
    )
    assert verify_checkpoint(first.checkpoint, run.signer.verifier()).size == 1

    streamed = [
        r.entry
        for r in run.ledger.StreamEntries(
            ledger_pb2.StreamEntriesRequest(start_index=1), metadata=auditor, timeout=5
        )
    ]
    stored = list(run.store.entries(1))
    assert [e.index for e in streamed] == [e.index for e in stored] == list(range(1, size))
    assert [bytes(e.payload) for e in streamed] == [e.payload for e in stored]
    assert [bytes(e.leaf_hash) for e in streamed] == [e.leaf_hash for e in stored]
    assert int(streamed[-1].kind) == EntryKind.METER_REVOCATION
    window = run.ledger.StreamEntries(
        ledger_pb2.StreamEntriesRequest(start_index=2, end_index=4), metadata=auditor, timeout=5
    )
    assert [r.entry.index for r in window] == [2, 3]

    for index in range(size):
        proof = run.ledger.GetInclusionProof(
            ledger_pb2.GetInclusionProofRequest(leaf_index=index), metadata=auditor, timeout=5
        )
        assert proof.tree_size == size
        head = verify_checkpoint(proof.checkpoint, run.signer.verifier())
        verify_inclusion(bytes(proof.leaf_hash), index, size, list(proof.hashes), head.root)
    old = run.ledger.GetInclusionProof(
        ledger_pb2.GetInclusionProofRequest(leaf_index=0, tree_size=3), metadata=auditor, timeout=5
    )
    assert old.tree_size == 3
    assert old.checkpoint == run.store.checkpoint_at(3).to_text()  # one per appended entry
    for first_size in range(size + 1):
        consistency = run.ledger.GetConsistencyProof(
            ledger_pb2.GetConsistencyProofRequest(first_size=first_size),
            metadata=auditor,
            timeout=5,
        )
        verify_consistency(
            first_size,
            size,
            list(consistency.hashes),
            run.store.root_at(first_size),
            latest.root,
        )

    refused(
        run,
        grpc.StatusCode.NOT_FOUND,
        "NOT_FOUND",
        lambda: run.ledger.GetInclusionProof(
            ledger_pb2.GetInclusionProofRequest(leaf_index=size), metadata=auditor, timeout=5
        ),
    )
    refused(
        run,
        grpc.StatusCode.NOT_FOUND,
        "NOT_FOUND",
        lambda: list(
            run.ledger.StreamEntries(
                ledger_pb2.StreamEntriesRequest(start_index=size + 1), metadata=auditor, timeout=5
            )
        ),
    )
    refused(
        run,
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
        lambda: run.ledger.GetCheckpoint(
            ledger_pb2.GetCheckpointRequest(tree_size=2**64 - 1), metadata=auditor, timeout=5
        ),
    )
    # StreamEntries: auditor and utility only; every caller needs a role
    refused(
        run,
        grpc.StatusCode.PERMISSION_DENIED,
        "PERMISSION_DENIED",
        lambda: list(
            run.ledger.StreamEntries(
                ledger_pb2.StreamEntriesRequest(), metadata=run.md("meter", "m0"), timeout=5
            )
        ),
    )
    refused(
        run,
        grpc.StatusCode.UNAUTHENTICATED,
        "UNAUTHENTICATED",
        lambda: run.ledger.GetCheckpoint(ledger_pb2.GetCheckpointRequest(), timeout=5),
    )


# ----------------------------------------------------------------------------- the domain


def test_settlement_flow_over_grpc(running: Running) -> None:
    run = running
    utility, meter_md = run.md("utility", "grid-co"), run.md("meter", "alice")
    alice = SimMeter("alice")
    registration = alice.registration()
    reg = run.meters.RegisterMeter(
        meters_pb2.RegisterMeterRequest(registration=convert.registration_to_proto(registration)),
        metadata=utility,
        timeout=5,
    )
    assert reg.receipt.ledger_index == 0
    tariff = make_tariff(DAY1, 240)
    published = run.tariffs.PublishTariff(
        tariffs_pb2.PublishTariffRequest(tariff=convert.tariff_to_proto(tariff)),
        metadata=utility,
        timeout=5,
    )
    assert bytes(published.tariff_hash) == tariff.tariff_hash()
    batch = alice.batch(DAY1)
    request = readings_pb2.SubmitReadingsRequest(batch=convert.reading_batch_to_proto(batch))
    submitted = run.readings.SubmitReadings(request, metadata=meter_md, timeout=10)
    receipt = submitted.receipt
    head = verify_checkpoint(receipt.checkpoint, run.signer.verifier())
    assert head.size == receipt.tree_size == 3
    verify_inclusion(
        bytes(receipt.leaf_hash),
        receipt.ledger_index,
        receipt.tree_size,
        list(receipt.inclusion_proof),
        head.root,
    )
    assert bytes(receipt.leaf_hash) == batch.to_entry().leaf_hash()
    assert bytes(submitted.batch_hash) == batch.batch_hash()
    # idempotent: the identical batch returns the original receipt
    again = run.readings.SubmitReadings(request, metadata=meter_md, timeout=10)
    assert again.receipt.ledger_index == receipt.ledger_index
    assert run.store.size() == 3

    got = run.readings.GetReceipt(
        readings_pb2.GetReceiptRequest(meter_id="alice", period=DAY1),
        metadata=run.md("auditor", "aud"),
        timeout=5,
    )
    assert got.receipt.ledger_index == receipt.ledger_index
    assert bytes(got.batch_hash) == batch.batch_hash()
    bill = alice.bill(DAY1, tariff)
    run.bills.SubmitBill(
        bills_pb2.SubmitBillRequest(bill=convert.bill_to_proto(bill)), metadata=meter_md, timeout=10
    )
    statement = run.bills.GetStatement(
        bills_pb2.GetStatementRequest(meter_id="alice"), metadata=meter_md, timeout=5
    )
    assert [line.bill.total for line in statement.lines] == [alice.plaintext_bill(DAY1, tariff)]
    assert statement.total == bill.total
    assert statement.lines[0].currency == "EUR"
    assert convert.bill_from_proto(statement.lines[0].bill) == bill
    info = run.meters.GetMeter(
        meters_pb2.GetMeterRequest(meter_id="alice"), metadata=meter_md, timeout=5
    )
    assert info.status == meters_pb2.METER_STATUS_ACTIVE
    assert info.next_sequence == 1
    assert bytes(info.last_batch_hash) == batch.batch_hash()
    assert info.receipt.ledger_index == 0
    assert convert.registration_from_proto(info.registration) == registration
    fetched = run.tariffs.GetTariff(
        tariffs_pb2.GetTariffRequest(period=DAY1), metadata=meter_md, timeout=5
    )
    assert convert.tariff_from_proto(fetched.tariff) == tariff
    assert bytes(fetched.tariff_hash) == tariff.tariff_hash()


def test_every_domain_refusal_maps_to_its_status_and_appends_nothing(running: Running) -> None:
    run = running
    c = grpc.StatusCode
    utility = run.md("utility", "grid-co")
    alice, bob = SimMeter("alice"), SimMeter("bob")
    as_alice, as_bob = run.md("meter", "alice"), run.md("meter", "bob")

    def register(registration: Any, md: Any = utility) -> object:
        request = meters_pb2.RegisterMeterRequest(registration=registration)
        return run.meters.RegisterMeter(request, metadata=md, timeout=5)

    def submit(batch: Any, md: Any = as_alice) -> object:
        request = readings_pb2.SubmitReadingsRequest(batch=batch)
        return run.readings.SubmitReadings(request, metadata=md, timeout=10)

    def publish(tariff: Any, md: Any = utility) -> object:
        request = tariffs_pb2.PublishTariffRequest(tariff=convert.tariff_to_proto(tariff))
        return run.tariffs.PublishTariff(request, metadata=md, timeout=5)

    def submit_bill(bill: Any, md: Any = as_alice) -> object:
        return run.bills.SubmitBill(bills_pb2.SubmitBillRequest(bill=bill), metadata=md, timeout=10)

    def proto(batch: Any) -> Any:
        return convert.reading_batch_to_proto(batch)

    good = alice.batch(DAY1)  # alice's chain now expects sequence 1 after it
    refused(run, c.NOT_FOUND, "UNKNOWN_METER", lambda: submit(proto(good)))

    register(convert.registration_to_proto(alice.registration()))
    register(convert.registration_to_proto(bob.registration()))
    refused(
        run,
        c.ALREADY_EXISTS,
        "METER_EXISTS",
        lambda: register(convert.registration_to_proto(alice.registration())),
    )
    carol = convert.registration_to_proto(SimMeter("carol").registration())
    refused(run, c.PERMISSION_DENIED, "PERMISSION_DENIED", lambda: register(carol, as_alice))
    not_a_point = convert.registration_to_proto(SimMeter("dave").registration())
    not_a_point.public_key = b"\x05" * 33
    refused(run, c.INVALID_ARGUMENT, "RECORD_MALFORMED", lambda: register(not_a_point))
    forged = convert.registration_to_proto(SimMeter("erin").registration())
    forged.pop_signature = convert.registration_to_proto(
        SimMeter("erin").registration()
    ).pop_signature
    refused(run, c.INVALID_ARGUMENT, "SIGNATURE_INVALID", lambda: register(forged))

    # meter A cannot submit as meter B: refused before the domain runs
    refused(run, c.PERMISSION_DENIED, "PERMISSION_DENIED", lambda: submit(proto(good), as_bob))
    tampered = proto(good)
    tampered.signature = proto(bob.batch(DAY1, advance=False)).signature
    refused(run, c.INVALID_ARGUMENT, "SIGNATURE_INVALID", lambda: submit(tampered))
    six_hourly = SimMeter("alice", interval_minutes=360, key=alice.key)
    refused(
        run,
        c.INVALID_ARGUMENT,
        "INTERVALS_MISMATCH",
        lambda: submit(proto(six_hourly.batch(DAY1, advance=False))),
    )
    ahead = SimMeter("alice", key=alice.key, sequence=1)
    refused(
        run,
        c.FAILED_PRECONDITION,
        "CHAIN_BROKEN",
        lambda: submit(proto(ahead.batch(DAY1, advance=False))),
    )

    def resigned(**changes: Any) -> Any:
        fields = {f.name: getattr(good, f.name) for f in dataclasses.fields(good)}
        del fields["signature"]
        fields.update(changes)
        return proto(ReadingBatch.create(alice.key, **fields))

    refused(
        run,
        c.INVALID_ARGUMENT,
        "PROOF_MALFORMED",
        lambda: submit(resigned(range_proof=b"\x00" * 10)),
    )
    other_proof = SimMeter("alice", key=alice.key).batch(DAY1, advance=False).range_proof
    refused(
        run, c.INVALID_ARGUMENT, "PROOF_INVALID", lambda: submit(resigned(range_proof=other_proof))
    )
    refused(
        run,
        c.INVALID_ARGUMENT,
        "RECORD_MALFORMED",
        lambda: submit(readings_pb2.ReadingBatch(meter_id="alice")),
    )

    submit(proto(good))
    refused(
        run,
        c.ALREADY_EXISTS,
        "DUPLICATE_PERIOD",
        lambda: submit(proto(alice.batch(DAY1, advance=False))),
    )
    refused(
        run,
        c.NOT_FOUND,
        "UNKNOWN_BATCH",
        lambda: run.readings.GetReceipt(
            readings_pb2.GetReceiptRequest(meter_id="alice", period=DAY2),
            metadata=as_alice,
            timeout=5,
        ),
    )
    refused(
        run,
        c.PERMISSION_DENIED,
        "PERMISSION_DENIED",
        lambda: run.readings.GetReceipt(
            readings_pb2.GetReceiptRequest(meter_id="alice", period=DAY1),
            metadata=as_bob,
            timeout=5,
        ),
    )

    tariff = make_tariff(DAY1, 240)
    refused(
        run,
        c.NOT_FOUND,
        "UNKNOWN_TARIFF",
        lambda: run.tariffs.GetTariff(
            tariffs_pb2.GetTariffRequest(period=DAY1), metadata=as_alice, timeout=5
        ),
    )
    # a meter certificate/role cannot publish a tariff
    refused(run, c.PERMISSION_DENIED, "PERMISSION_DENIED", lambda: publish(tariff, as_alice))
    publish(tariff)
    publish(tariff)  # idempotent
    refused(run, c.ALREADY_EXISTS, "TARIFF_EXISTS", lambda: publish(make_tariff(DAY1, 240, seed=2)))

    bill = alice.bill(DAY1, tariff)
    wrong_total = convert.bill_to_proto(bill)
    wrong_total.total = bill.total + 1
    refused(run, c.INVALID_ARGUMENT, "PROOF_INVALID", lambda: submit_bill(wrong_total))
    unknown_batch = convert.bill_to_proto(bill)
    unknown_batch.batch_hash = b"\x07" * 32
    refused(run, c.NOT_FOUND, "UNKNOWN_BATCH", lambda: submit_bill(unknown_batch))
    unknown_tariff = convert.bill_to_proto(bill)
    unknown_tariff.tariff_hash = b"\x07" * 32
    refused(run, c.NOT_FOUND, "UNKNOWN_TARIFF", lambda: submit_bill(unknown_tariff))
    refused(
        run,
        c.PERMISSION_DENIED,
        "PERMISSION_DENIED",
        lambda: submit_bill(convert.bill_to_proto(bill), as_bob),
    )
    submit_bill(convert.bill_to_proto(bill))
    submit_bill(convert.bill_to_proto(bill))  # idempotent
    another = alice.bill(DAY1, tariff)  # a fresh proof of the same claim: other bytes
    assert another.proof != bill.proof
    refused(
        run, c.ALREADY_EXISTS, "BILL_EXISTS", lambda: submit_bill(convert.bill_to_proto(another))
    )

    run.meters.RevokeMeter(
        meters_pb2.RevokeMeterRequest(meter_id="alice", reason="stolen"),
        metadata=utility,
        timeout=5,
    )
    refused(
        run,
        c.FAILED_PRECONDITION,
        "METER_REVOKED",
        lambda: submit(proto(alice.batch(DAY2, advance=False))),
    )
    refused(
        run,
        c.NOT_FOUND,
        "UNKNOWN_METER",
        lambda: run.meters.RevokeMeter(
            meters_pb2.RevokeMeterRequest(meter_id="zed", reason="?"), metadata=utility, timeout=5
        ),
    )
    refused(
        run,
        c.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
        lambda: run.meters.GetMeter(
            meters_pb2.GetMeterRequest(meter_id="not a valid id!"), metadata=utility, timeout=5
        ),
    )
    revoked = run.meters.GetMeter(
        meters_pb2.GetMeterRequest(meter_id="alice"), metadata=as_bob, timeout=5
    )
    assert revoked.status == meters_pb2.METER_STATUS_REVOKED
    assert revoked.revocation_reason == "stolen"


# ----------------------------------------------------------------------------- configuration


@pytest.mark.parametrize("host", ["0.0.0.0", "[::]", "192.0.2.10", "example.com"])
def test_insecure_mode_refuses_a_non_loopback_listen_address(host: str) -> None:
    config = ServiceConfig(listen=f"{host}:0", insecure=True)
    with pytest.raises(ConfigError, match="loopback"):
        config.validate()
    with pytest.raises(ConfigError, match="loopback"):
        build_server(None, config, store=object())  # type: ignore[arg-type]


def test_serve_cli_refuses_insecure_non_loopback_before_opening_anything(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "never.db"
    code = serve_main(
        [
            "--insecure",
            "--listen",
            "0.0.0.0:0",
            "--db",
            f"sqlite:///{db}",
            "--log-key",
            str(tmp_path / "k"),
        ]
    )
    assert code == 2
    assert "loopback" in capsys.readouterr().err
    assert not db.exists()
    assert not (tmp_path / "k").exists()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "127.8.9.10"])
def test_insecure_mode_accepts_loopback(host: str) -> None:
    ServiceConfig(listen=f"{host}:0", insecure=True).validate()


def test_tls_needs_all_three_files() -> None:
    with pytest.raises(ConfigError, match="mutual TLS"):
        ServiceConfig(listen="0.0.0.0:0", tls_cert=None).validate()


def test_settings_come_from_flags_over_environment() -> None:
    env = {
        "ZKGRID_DB": "postgresql://u@db/zk",
        "ZKGRID_LISTEN": "127.0.0.1:6000",
        "ZKGRID_INSECURE": "true",
        "ZKGRID_ORIGIN": "env.example/log",
        "ZKGRID_GRACE": "3.5",
    }
    config = ServiceConfig.from_sources({"listen": "localhost:7000", "insecure": None}, env)
    assert config.db == "postgresql://u@db/zk"
    assert config.listen == "localhost:7000"
    assert config.insecure is True
    assert config.origin == "env.example/log"
    assert config.grace == 3.5
    config.validate()
    with pytest.raises(ConfigError):
        ServiceConfig.from_sources({}, {"ZKGRID_INSECURE": "maybe"})
    with pytest.raises(ConfigError):
        ServiceConfig.from_sources({"insecure": True}, {"ZKGRID_WORKERS": "many"})
    tls = ServiceConfig.from_sources(
        {"origin": "grid.example/log"},
        {"ZKGRID_TLS_CERT": "s.pem", "ZKGRID_TLS_KEY": "s.key", "ZKGRID_CLIENT_CA": "ca.pem"},
    )
    assert tls.validate().insecure is False


def test_origin_is_required_outside_insecure_mode() -> None:
    with pytest.raises(ConfigError, match="--origin is required"):
        ServiceConfig.from_sources({"listen": "0.0.0.0:50051"}, {})
    named = ServiceConfig.from_sources({"origin": "grid.example/settlement"}, {})
    assert named.origin == "grid.example/settlement"
    from_env = ServiceConfig.from_sources({}, {"ZKGRID_ORIGIN": "env.example/log"})
    assert from_env.origin == "env.example/log"
    dev = ServiceConfig.from_sources({"insecure": True}, {})
    assert dev.origin == "zkgrid.local/settlement"
