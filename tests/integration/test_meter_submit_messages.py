"""What ``zkgrid meter submit`` says (issue 11 §3): a period that has not ended is refused
before any proving; an identical resubmission says "already submitted at index N"; a
receipt that does not verify under the pinned key says the batch may be in the ledger and
how to fetch its receipt."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cli.main import main as zkgrid
from ledger.checkpoint import CheckpointSigner
from meter.client import MeterClient
from meter.readings import parse_readings_csv
from settlement.errors import PeriodNotEnded
from tests.integration.test_grpc_server import Running
from tests.integration.test_grpc_server import running as running  # the fixture
from tests.unit.service.settlement_support import make_tariff

DAY = "2026-11-21"


def _csv(path: Path, day: str = DAY) -> Path:
    rows = ["interval_start,import_wh,export_wh"]
    rows += [f"{day}T{h:02d}:00:00Z,{100 + h},{h}" for h in range(0, 24, 4)]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_a_period_that_has_not_ended_is_not_proven(tmp_path: Path) -> None:
    home = MeterClient.keygen(tmp_path / "m", "early-1", 240)
    readings = parse_readings_csv(_csv(tmp_path / "r.csv").read_text(), 240)
    client = MeterClient(home, clock=lambda: datetime(2026, 11, 21, 23, 59, tzinfo=UTC))
    with pytest.raises(PeriodNotEnded, match="2026-11-22 00:00 UTC"):
        client.build_batch(readings)
    assert client.store.batch(DAY) is None  # nothing proven or stored
    client.close()


def test_submit_messages(
    running: Running, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "meter"
    assert zkgrid(["meter", "keygen", "--id", "msg-1", "--home", str(home),
                   "--interval-minutes", "240"]) == 0  # fmt: skip
    running.settlement.register_meter(MeterClient(home).registration_request())
    csv = _csv(tmp_path / "readings.csv")
    wrong_key = tmp_path / "wrong.pub"
    wrong_key.write_text(CheckpointSigner.generate("zkgrid-test").verifier_key() + "\n")
    right_key = tmp_path / "log.pub"
    right_key.write_text(running.signer.verifier_key() + "\n")
    submit = ["meter", "submit", "--home", str(home), "--csv", str(csv),
              "--target", running.target, "--insecure"]  # fmt: skip
    capsys.readouterr()

    assert zkgrid([*submit, "--log-key", str(wrong_key)]) == 1
    err = capsys.readouterr().err
    assert "the service accepted the batch (it says: ledger index 1)" in err
    assert "run `zkgrid meter submit` again to fetch its receipt" in err
    assert running.store.size() == 2  # it was appended

    assert zkgrid([*submit, "--log-key", str(right_key)]) == 0
    out = capsys.readouterr().out
    assert "intervals committed" in out  # the local store had not recorded it yet
    assert zkgrid([*submit, "--log-key", str(right_key)]) == 0
    out = capsys.readouterr().out
    assert "already submitted at ledger index 1" in out
    assert "signature verified" in out
    assert running.store.size() == 2

    assert zkgrid([*submit, "--log-key", str(right_key), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["status"], doc["period"], doc["intervals"]) == ("already submitted", DAY, 6)
    assert doc["receipt"]["ledger_index"] == 1
    assert doc["receipt"]["signature_verified"] is True

    tariff = make_tariff(DAY, 240)
    running.settlement.publish_tariff(tariff)
    bill = ["meter", "bill", "--home", str(home), "--period", DAY, "--target", running.target,
            "--insecure", "--log-key", str(right_key), "--json"]  # fmt: skip
    assert zkgrid(bill) == 0
    billed = json.loads(capsys.readouterr().out)
    imports, exports = [100 + h for h in range(0, 24, 4)], [h for h in range(0, 24, 4)]
    assert billed["total_micro"] == tariff.bill_total(imports, exports)
    assert billed["currency"] == "EUR"
    assert billed["receipt"]["ledger_index"] == 3
