"""SIGTERM drains: a server in a subprocess finishes an in-flight slow call, then exits 0;
and `zkgrid serve` itself starts, answers health, creates its key 0600 and exits 0 on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from zkgrid.settlement.v1 import ledger_pb2, ledger_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
AUDITOR = (("x-zkgrid-role", "auditor"), ("x-zkgrid-identity", "aud"))

# A LedgerService whose GetCheckpoint takes 1.5 s (a duck-typed store), served by
# build_server and run_until_signal exactly like `zkgrid serve`.
SLOW_SERVER = r"""
import sys, time
from ledger.checkpoint import Checkpoint, CheckpointSigner
from ledger.merkle import EMPTY_ROOT
from service.config import ServiceConfig
from service.server import build_server, run_until_signal, server_info

signer = CheckpointSigner.from_private_bytes("slow", bytes(32))

class SlowStore:
    def latest_checkpoint(self):
        print("call-started", flush=True)
        time.sleep(1.5)
        return signer.sign(Checkpoint("slow", 0, EMPTY_ROOT))

server = build_server(None, ServiceConfig(listen="127.0.0.1:0", insecure=True), store=SlowStore())
server.start()
print(f"port {server_info(server).port}", flush=True)
run_until_signal(server, grace=10)
print("drained", flush=True)
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _read_line(stream: object, pattern: str, deadline: float) -> re.Match[str]:
    while time.monotonic() < deadline:
        line = stream.readline()  # type: ignore[attr-defined]
        if not line:
            break
        match = re.search(pattern, line)
        if match:
            return match
    raise AssertionError(f"no line matching {pattern!r}")


def test_sigterm_drains_an_in_flight_call_then_exits_0() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_SERVER],
        stdout=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 30
        port = int(_read_line(proc.stdout, r"^port (\d+)", deadline).group(1))
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = ledger_pb2_grpc.LedgerServiceStub(channel)
            future = stub.GetCheckpoint.future(
                ledger_pb2.GetCheckpointRequest(), metadata=AUDITOR, timeout=20
            )
            _read_line(proc.stdout, r"^call-started", deadline)
            proc.send_signal(signal.SIGTERM)
            reply = future.result()  # the in-flight call completes despite the SIGTERM
            assert reply.tree_size == 0
            assert reply.checkpoint.startswith("slow\n0\n")
        assert proc.wait(timeout=20) == 0
        assert proc.stdout is not None
        assert "drained" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_zkgrid_serve_runs_and_stops_on_sigterm(tmp_path: Path) -> None:
    key = tmp_path / "log.key"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli.main",
            "serve",
            "--insecure",
            "--listen",
            "127.0.0.1:0",
            "--db",
            f"sqlite:///{tmp_path / 'ledger.db'}",
            "--log-key",
            str(key),
            "--origin",
            "zkgrid.test/serve",
            "--grace",
            "2",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 60
        port = int(_read_line(proc.stderr, r"serving .* on 127\.0\.0\.1:(\d+)", deadline).group(1))
        assert key.stat().st_mode & 0o777 == 0o600
        assert key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="zkgrid.settlement.v1.BillService"),
                timeout=5,
            )
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert proc.stderr is not None
        assert "PRIVATE KEY" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_zkgrid_help(capsys: pytest.CaptureFixture[str]) -> None:
    from cli.main import main

    assert main(["--help"]) == 0
    assert "serve" in capsys.readouterr().out
    for argv in (["serve", "--help"], ["certs", "--help"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--db", "--listen", "--tls-cert", "--client-ca", "--insecure", "--log-key"):
        assert flag in out
    assert main(["nope"]) == 2
