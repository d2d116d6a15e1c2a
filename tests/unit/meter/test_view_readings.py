"""``zkgrid meter readings``: the local store's readings as text, JSON and CSV, offline.

The command reads the opening store only: these tests run it with every way of opening a
gRPC channel replaced by one that fails the test.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import grpc
import pytest

from meter import cli as meter_cli
from meter.client import MeterClient
from meter.readings import DayReadings, parse_readings_csv
from meter.render import readings_csv, readings_document, readings_text

INTERVAL = 240
PERIOD = "2026-11-21"
IMPORTS = (1_000, 2_000, 3_000, 500, 0, 4_294_967_295)
EXPORTS = (0, 0, 4_000, 2_500, 13, 0)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    MeterClient.keygen(path, "meter-7", INTERVAL)
    client = MeterClient(path)
    client.build_batch(DayReadings.from_lists(PERIOD, INTERVAL, IMPORTS, EXPORTS))
    client.close()
    return path


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the command opened a network channel")

    for name in ("insecure_channel", "secure_channel"):
        monkeypatch.setattr(grpc, name, refuse)


def _run(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    code = meter_cli.main(list(args), out=out)
    return code, out.getvalue()


def test_readings_text(home: Path, no_network: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run("readings", "--home", str(home), "--period", PERIOD)
    assert code == 0, capsys.readouterr().err
    lines = out.splitlines()
    assert "meter-7 2026-11-21: 6 intervals of 240 minutes" in lines[0]
    assert "not accepted yet" in lines[0]  # built offline, never submitted
    assert "local opening store" in lines[0]
    assert lines[2].split() == ["2026-11-21T00:00:00Z", "1000", "0"]
    assert lines[7].split() == ["2026-11-21T20:00:00Z", "4294967295", "0"]
    assert lines[8].split() == ["total", str(sum(IMPORTS)), str(sum(EXPORTS))]
    assert "import 4294973.795 kWh, export 6.513 kWh" in lines[9]


def test_readings_json(home: Path, no_network: None) -> None:
    code, out = _run("readings", "--home", str(home), "--period", PERIOD, "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["schema"] == "zkgrid.meter.readings/1"
    assert doc["meter_id"] == "meter-7"
    assert doc["status"] == "pending"
    assert doc["interval_minutes"] == INTERVAL
    assert [i["import_wh"] for i in doc["intervals"]] == list(IMPORTS)
    assert [i["export_wh"] for i in doc["intervals"]] == list(EXPORTS)
    assert doc["intervals"][1]["start"] == "2026-11-21T04:00:00Z"
    assert doc["totals"] == {"import_wh": sum(IMPORTS), "export_wh": sum(EXPORTS)}


def test_readings_csv_reads_back_as_the_submitted_day(home: Path, no_network: None) -> None:
    code, out = _run("readings", "--home", str(home), "--period", PERIOD, "--csv")
    assert code == 0
    again = parse_readings_csv(out, INTERVAL)
    assert again == DayReadings.from_lists(PERIOD, INTERVAL, IMPORTS, EXPORTS)


def test_a_period_without_readings_and_bad_arguments(
    home: Path, no_network: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _run("readings", "--home", str(home), "--period", "2026-11-22")
    assert (code, out) == (1, "")
    err = capsys.readouterr().err
    assert "no readings for 2026-11-22" in err
    assert "zkgrid meter submit" in err
    assert _run("readings", "--home", str(home), "--period", "2026-13-01")[0] == 2
    assert _run("readings", "--home", str(home))[0] == 2  # --period is required
    assert _run("readings", "--home", str(home), "--period", PERIOD, "--json", "--csv")[0] == 2
    code, _ = _run("readings", "--home", str(home), "--id", "meter-8", "--period", PERIOD)
    assert code == 2
    assert "holds meter meter-7, not meter-8" in capsys.readouterr().err


def test_the_renderers_agree_with_each_other(home: Path) -> None:
    client = MeterClient(home)
    stored = client.store.batch(PERIOD)
    client.close()
    assert stored is not None
    doc = readings_document("meter-7", stored)
    text = readings_text("meter-7", stored)
    rows = readings_csv(stored).splitlines()[1:]
    for interval, row in zip(doc["intervals"], rows, strict=True):
        assert row == f"{interval['start']},{interval['import_wh']},{interval['export_wh']}"
        assert interval["start"] in text
