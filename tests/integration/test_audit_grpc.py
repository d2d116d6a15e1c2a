"""``zkgrid audit --target``: the auditor reads a running service (mutual TLS with an auditor
certificate, or insecure loopback), full and --since-last (consistency proof first)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from service.config import ServiceConfig
from service.pki import create_ca, issue_client, issue_server, write_issued
from service.server import build_server, server_info
from service.settlement import Settlement
from service.storage import LedgerStore
from tests.unit.verifier.audit_support import (
    Built,
    audit,
    build_ledger,
    export,
    extend,
    open_ledger,
)


@dataclass
class Served:
    target: str
    built: Built
    store: LedgerStore
    settlement: Settlement
    tls: list[str]


def _serve(tmp_path: Path, *, tls: bool) -> Iterator[Served]:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    built = build_ledger(url, periods=("2025-03-01",))
    store = open_ledger(url)
    settlement = Settlement(store)
    flags: list[str] = ["--insecure"]
    if tls:
        ca = create_ca()
        ca_cert, _ = write_issued(ca, tmp_path, "ca")
        server_cert, server_key = write_issued(issue_server(ca), tmp_path, "server")
        cert, key = write_issued(issue_client(ca, "auditor", "auditor-1"), tmp_path, "auditor")
        config = ServiceConfig(
            listen="127.0.0.1:0", tls_cert=server_cert, tls_key=server_key, client_ca=ca_cert
        )
        flags = ["--ca", str(ca_cert), "--cert", str(cert), "--key", str(key)]
    else:
        config = ServiceConfig(listen="127.0.0.1:0", insecure=True)
    server = build_server(settlement, config)
    server.start()
    host = "localhost" if tls else "127.0.0.1"
    try:
        yield Served(f"{host}:{server_info(server).port}", built, store, settlement, flags)
    finally:
        server.stop(None).wait()
        settlement.close()
        store.close()


@pytest.fixture(params=["tls", "insecure"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    yield from _serve(tmp_path, tls=request.param == "tls")


def test_full_and_incremental_over_grpc(
    served: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state.json"
    first = audit(capsys, "--target", served.target, *served.tls, "--state", str(state))
    assert first.code == 0, (first.out, first.err)
    assert first.report["figures"]["entries"] == served.built.size
    assert first.report["figures"]["bills"] == 3
    old_size = served.built.size
    extend(served.built, served.settlement, ("2025-03-02",))
    size = served.store.size()
    assert size == old_size + 7
    second = audit(
        capsys, "--target", served.target, *served.tls, "--state", str(state), "--since-last"
    )
    assert second.code == 0, (second.out, second.err)
    assert second.report["previous_size"] == old_size
    assert second.report["figures"]["entries"] == 7
    assert second.report["checkpoint"]["size"] == size


def test_fork_over_grpc_is_caught(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The auditor saw one history (an archive); the service now serves another."""
    state = tmp_path / "state.json"
    other = tmp_path / "other"
    other.mkdir()
    other_url = f"sqlite:///{other / 'ledger.db'}"
    build_ledger(other_url, meters=2, periods=("2025-03-01",))
    seen = audit(
        capsys, "--archive", str(export(other_url, other / "a.zla")), "--state", str(state)
    )
    assert seen.code == 0
    for served in _serve(tmp_path, tls=False):
        result = audit(
            capsys, "--target", served.target, "--insecure", "--state", str(state), "--since-last"
        )
        assert result.code == 1
        assert "LOG_FORK" in result.reasons_at(None)
