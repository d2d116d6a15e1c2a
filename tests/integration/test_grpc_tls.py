"""Mutual TLS with certificates from the dev CA (service.pki): roles come from the client
certificate, a missing or foreign certificate cannot connect, a meter acts only on its id."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2  # type: ignore[import-untyped]
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from ledger.checkpoint import CheckpointSigner
from service import pki
from service.auth import Role
from service.config import ServiceConfig
from service.server import build_server, server_info
from service.settlement import Settlement
from service.storage import LedgerStore, open_store
from settlement import convert
from tests.unit.service.settlement_support import SimMeter, make_tariff
from zkgrid.settlement.v1 import (
    ledger_pb2,
    ledger_pb2_grpc,
    meters_pb2,
    meters_pb2_grpc,
    readings_pb2,
    readings_pb2_grpc,
    tariffs_pb2,
    tariffs_pb2_grpc,
)

DAY1 = "2024-03-01"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("pki")
    assert pki.main(["init", str(directory), "--meter", "alice", "--meter", "bob"]) == 0
    assert (directory / "meter-alice.key").stat().st_mode & 0o077 == 0
    other = directory / "other"
    assert pki.main(["init", str(other), "--meter", "alice"]) == 0
    return directory


@dataclass
class TlsServer:
    port: int
    certs: Path
    store: LedgerStore

    def channel(self, stem: str | None, ca_dir: Path | None = None) -> grpc.Channel:
        """A channel presenting ``certs/<stem>`` (None: no client certificate)."""
        ca_dir = ca_dir or self.certs
        key = (ca_dir / f"{stem}.key").read_bytes() if stem else None
        chain = (ca_dir / f"{stem}.pem").read_bytes() if stem else None
        credentials = grpc.ssl_channel_credentials(
            root_certificates=(self.certs / "ca.pem").read_bytes(),
            private_key=key,
            certificate_chain=chain,
        )
        return grpc.secure_channel(f"127.0.0.1:{self.port}", credentials)


@pytest.fixture
def server(
    certs: Path, tmp_path: Path, ledger_signer: CheckpointSigner, ledger_origin: str
) -> Iterator[TlsServer]:
    store = open_store(f"sqlite:///{tmp_path / 'ledger.db'}", ledger_signer, ledger_origin)
    settlement = Settlement(store)
    config = ServiceConfig(
        listen="127.0.0.1:0",
        tls_cert=certs / "server.pem",
        tls_key=certs / "server.key",
        client_ca=certs / "ca.pem",
    )
    srv = build_server(settlement, config)
    srv.start()
    try:
        yield TlsServer(server_info(srv).port, certs, store)
    finally:
        srv.stop(None).wait()
        settlement.close()
        store.close()


def _reason(err: grpc.RpcError) -> str:
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    return str(info.reason)


def test_roles_from_certificates(server: TlsServer) -> None:
    alice = SimMeter("alice")
    with server.channel("utility") as utility:
        meters_pb2_grpc.MeterServiceStub(utility).RegisterMeter(
            meters_pb2.RegisterMeterRequest(
                registration=convert.registration_to_proto(alice.registration())
            ),
            timeout=5,
        )
    tariff = convert.tariff_to_proto(make_tariff(DAY1, 240))
    with server.channel("meter-alice") as channel:
        # a meter certificate cannot publish a tariff
        with pytest.raises(grpc.RpcError) as info:
            tariffs_pb2_grpc.TariffServiceStub(channel).PublishTariff(
                tariffs_pb2.PublishTariffRequest(tariff=tariff), timeout=5
            )
        assert info.value.code() is grpc.StatusCode.PERMISSION_DENIED
        assert _reason(info.value) == "PERMISSION_DENIED"
        # role metadata is ignored under mTLS: the certificate decides
        with pytest.raises(grpc.RpcError) as info:
            tariffs_pb2_grpc.TariffServiceStub(channel).PublishTariff(
                tariffs_pb2.PublishTariffRequest(tariff=tariff),
                metadata=(("x-zkgrid-role", "utility"),),
                timeout=5,
            )
        assert info.value.code() is grpc.StatusCode.PERMISSION_DENIED
        # ... and may submit its own readings
        readings = readings_pb2_grpc.ReadingServiceStub(channel)
        batch = alice.batch(DAY1)
        readings.SubmitReadings(
            readings_pb2.SubmitReadingsRequest(batch=convert.reading_batch_to_proto(batch)),
            timeout=10,
        )
        # any role may read checkpoints; only auditors and the utility stream entries
        ledger = ledger_pb2_grpc.LedgerServiceStub(channel)
        assert ledger.GetCheckpoint(ledger_pb2.GetCheckpointRequest(), timeout=5).tree_size == 2
        with pytest.raises(grpc.RpcError) as info:
            list(ledger.StreamEntries(ledger_pb2.StreamEntriesRequest(), timeout=5))
        assert info.value.code() is grpc.StatusCode.PERMISSION_DENIED
    with server.channel("auditor") as channel:
        entries = ledger_pb2_grpc.LedgerServiceStub(channel).StreamEntries(
            ledger_pb2.StreamEntriesRequest(), timeout=5
        )
        assert [r.entry.index for r in entries] == [0, 1]


def test_meter_a_cannot_submit_as_meter_b(server: TlsServer) -> None:
    bob = SimMeter("bob")
    with server.channel("utility") as utility:
        meters_pb2_grpc.MeterServiceStub(utility).RegisterMeter(
            meters_pb2.RegisterMeterRequest(
                registration=convert.registration_to_proto(bob.registration())
            ),
            timeout=5,
        )
    size = server.store.size()
    request = readings_pb2.SubmitReadingsRequest(
        batch=convert.reading_batch_to_proto(bob.batch(DAY1))
    )
    with server.channel("meter-alice") as channel, pytest.raises(grpc.RpcError) as info:
        readings_pb2_grpc.ReadingServiceStub(channel).SubmitReadings(request, timeout=10)
    assert info.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert _reason(info.value) == "PERMISSION_DENIED"
    assert server.store.size() == size
    with server.channel("meter-bob") as channel:
        readings_pb2_grpc.ReadingServiceStub(channel).SubmitReadings(request, timeout=10)
    assert server.store.size() == size + 1


def _health(channel: grpc.Channel) -> int:
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)
    return int(reply.status)


def test_valid_certificate_reaches_health(server: TlsServer) -> None:
    with server.channel("auditor") as channel:
        assert _health(channel) == health_pb2.HealthCheckResponse.SERVING


def test_missing_client_certificate_cannot_connect(server: TlsServer) -> None:
    with server.channel(None) as channel, pytest.raises(grpc.RpcError) as info:
        _health(channel)
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE


def test_certificate_from_another_ca_is_refused(server: TlsServer) -> None:
    with (
        server.channel("meter-alice", ca_dir=server.certs / "other") as channel,
        pytest.raises(grpc.RpcError) as info,
    ):
        _health(channel)
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE


def test_issue_adds_a_client_certificate(certs: Path, tmp_path: Path) -> None:
    assert pki.main(["issue", str(certs), "--role", "meter", "--id", "carol"]) == 0
    issued = pki.load_issued(certs, "meter-carol")
    ca = pki.load_issued(certs, "ca")
    issued.cert.verify_directly_issued_by(ca.cert)
    from service.auth import caller_from_certificate

    caller = caller_from_certificate(issued.cert_pem)
    assert (caller.role, caller.identity) == (Role.METER, "carol")
