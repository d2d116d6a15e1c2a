"""Errors a person can act on (issue 11 §3): a client command against a mutual-TLS service
with the wrong or missing TLS material says what to do, in one line, with exit 2, and
none of gRPC C-core's own log lines reach the terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.checkpoint import CheckpointSigner
from service import pki
from service.config import ServiceConfig
from service.server import build_server, server_info
from service.settlement import Settlement
from service.storage import open_store
from zkgrid._internal.rpc import connection_hint

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def mtls(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    certs = tmp_path / "pki"
    assert pki.main(["init", str(certs)]) == 0
    store = open_store("sqlite://", CheckpointSigner.generate("t"), "t")
    settlement = Settlement(store)
    config = ServiceConfig(
        listen="127.0.0.1:0",
        tls_cert=certs / "server.pem",
        tls_key=certs / "server.key",
        client_ca=certs / "ca.pem",
    )
    server = build_server(settlement, config, store=store)
    server.start()
    try:
        yield f"localhost:{server_info(server).port}", certs
    finally:
        server.stop(None).wait()
        settlement.close()
        store.close()


def _zkgrid(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("GRPC_VERBOSITY", None)
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def test_tls_mistakes_are_explained(mtls: tuple[str, Path], tmp_path: Path) -> None:
    target, certs = mtls
    show = ["tariff", "show", "--period", "2026-11-21", "--target", target, "--timeout", "5",
            "--no-strict"]  # fmt: skip
    no_cert = _zkgrid(*show, "--ca", str(certs / "ca.pem"), "--cert", "", "--key", "")
    assert no_cert.returncode == 2
    plain = _zkgrid(*show, "--insecure")  # plaintext to a TLS service: refused locally
    assert plain.returncode == 2

    other = tmp_path / "other"
    assert pki.main(["init", str(other)]) == 0
    wrong_ca = _zkgrid(
        *show,
        "--ca", str(other / "ca.pem"),
        "--cert", str(certs / "auditor.pem"),
        "--key", str(certs / "auditor.key"),
    )  # fmt: skip
    assert wrong_ca.returncode == 2
    assert "not signed by the CA in --ca" in wrong_ca.stderr
    foreign = _zkgrid(
        *show,
        "--ca", str(certs / "ca.pem"),
        "--cert", str(other / "auditor.pem"),
        "--key", str(other / "auditor.key"),
    )  # fmt: skip
    assert foreign.returncode == 2
    assert "a certificate its client CA signed" in foreign.stderr
    for run in (wrong_ca, foreign):
        assert "ssl_transport_security" not in run.stderr  # no C-core log lines
        assert "the service refused" not in run.stderr
        errors = [line for line in run.stderr.splitlines() if "warning:" not in line]
        assert len(errors) == 1  # one line (and the --no-strict warning)


def test_connection_hints() -> None:
    assert "nothing answers" in (connection_hint("ipv4:1.2.3.4:5: Connection refused") or "")
    assert "--ca" in (connection_hint("... CERTIFICATE_VERIFY_FAILED: unable ...") or "")
    assert connection_hint("a service's own refusal") is None
