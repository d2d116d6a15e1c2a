"""The utility's meter commands against a real server (insecure loopback): bulk
registration from a file (one JSON line per request, idempotent when run again, a refused
line does not stop the others, a malformed file sends nothing) and revocation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main as zkgrid
from tests.integration.test_grpc_server import Running
from tests.integration.test_grpc_server import running as running  # the fixture


def _keygen_and_request(tmp_path: Path, meter_id: str, capsys: pytest.CaptureFixture[str]) -> str:
    home = tmp_path / meter_id
    assert zkgrid(["meter", "keygen", "--id", meter_id, "--home", str(home)]) == 0
    capsys.readouterr()
    assert zkgrid(["meter", "register", "--home", str(home), "--format", "base64"]) == 0
    return capsys.readouterr().out.strip()


def test_bulk_registration_and_revocation(
    running: Running, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log_pub = tmp_path / "log.pub"
    log_pub.write_text(running.signer.verifier_key() + "\n")
    conn = ["--target", running.target, "--insecure", "--log-key", str(log_pub)]
    requests = [_keygen_and_request(tmp_path, f"bulk-{i}", capsys) for i in range(3)]
    file = tmp_path / "requests.txt"
    file.write_text("\n".join(requests) + "\n\n")
    bulk = ["meter", "register", "--submit", "--requests", str(file), *conn]

    assert zkgrid(bulk) == 0
    first = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [d["status"] for d in first] == ["registered"] * 3
    assert [d["meter_id"] for d in first] == ["bulk-0", "bulk-1", "bulk-2"]
    assert all(d["signature_verified"] for d in first)
    size = running.store.size()

    assert zkgrid(bulk) == 0  # again (a retry after a lost answer): nothing appended
    again = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [d["status"] for d in again] == ["already registered"] * 3
    assert [d["ledger_index"] for d in again] == [d["ledger_index"] for d in first]
    assert running.store.size() == size

    # another key under a registered id: that line is refused, the others go through
    impostor = _keygen_and_request(tmp_path / "other", "bulk-1", capsys)
    fresh = _keygen_and_request(tmp_path, "bulk-3", capsys)
    file.write_text(f"{impostor}\n{fresh}\n")
    assert zkgrid(bulk) == 1
    mixed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (mixed[0]["status"], mixed[0]["reason"]) == ("refused", "METER_EXISTS")
    assert mixed[1]["status"] == "registered"
    assert running.store.size() == size + 1

    # a malformed line: nothing is sent
    file.write_text(f"{requests[0]}\nnot a request\n")
    assert zkgrid(bulk) == 2
    assert "line 2" in capsys.readouterr().err
    assert running.store.size() == size + 1

    # one request again: idempotent too
    single = tmp_path / "one.txt"
    single.write_text(requests[0])
    assert zkgrid(["meter", "register", "--submit", "--request", str(single), *conn]) == 0
    assert "already registered meter bulk-0" in capsys.readouterr().out

    revoke = ["meter", "revoke", "--id", "bulk-2", "--reason", "replaced", *conn, "--json"]
    assert zkgrid(revoke) == 0
    revoked = json.loads(capsys.readouterr().out)
    assert (revoked["status"], revoked["ledger_index"]) == ("revoked", size + 1)
    assert running.settlement.get_meter("bulk-2").revoked
    assert zkgrid(revoke) == 1
    assert "METER_REVOKED" in capsys.readouterr().err
