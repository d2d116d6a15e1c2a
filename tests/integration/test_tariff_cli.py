"""``zkgrid tariff publish`` and ``show`` against a real server (insecure loopback):
the published record is the file's, the receipt verifies under the pinned key, the
identical tariff is idempotent, another is refused (exit 1), a bad file is exit 2
naming the line, before any connection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main as zkgrid
from settlement.tariff_files import CSV_HEADER
from tests.integration.test_grpc_server import Running
from tests.integration.test_grpc_server import running as running  # the fixture

DAY = "2026-11-21"


def _write_csv(path: Path, price: str = "0.253") -> Path:
    rows = [",".join(CSV_HEADER)] + [f"{h:02d}:00,{price},0.080" for h in range(24)]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_publish_and_show_a_tariff(
    running: Running, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log_pub = tmp_path / "log.pub"
    log_pub.write_text(running.signer.verifier_key() + "\n")
    conn = ["--target", running.target, "--insecure", "--log-key-file", str(log_pub)]
    csv_file = _write_csv(tmp_path / "tariff.csv")
    publish = ["tariff", "publish", "--period", DAY, "--file", str(csv_file), "--currency", "EUR"]
    size = running.store.size()
    assert zkgrid([*publish, "--fixed-charge", "0.35", *conn, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ledger_index"] == size
    assert out["receipt"] == "verified"
    assert (out["fixed_charge"], out["currency"]) == ("0.350000", "EUR")
    stored, _ = running.settlement.get_tariff(DAY)
    assert stored.import_price == (253,) * 24
    assert stored.fixed_charge == 350_000

    # the identical tariff again: its original receipt
    assert zkgrid([*publish, "--fixed-charge", "0.35", *conn, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ledger_index"] == size
    assert running.store.size() == size + 1

    # another tariff for the period: refused (exit 1), nothing appended
    other = _write_csv(tmp_path / "other.csv", price="0.300")
    assert zkgrid([*publish[:5], str(other), "--currency", "EUR", *conn]) == 1
    assert "TARIFF_EXISTS" in capsys.readouterr().err
    assert running.store.size() == size + 1

    assert zkgrid(["tariff", "show", "--period", DAY, *conn, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["intervals"][0] == {
        "start": "00:00",
        "import_price_per_kwh": "0.253",
        "export_credit_per_kwh": "0.080",
    }
    assert shown["tariff_hash"] == stored.tariff_hash().hex()
    assert shown["receipt"] == "verified"

    # without a pinned key: says so on stderr, still exit 0
    unpinned = ["--target", running.target, "--insecure"]
    assert zkgrid(["tariff", "show", "--period", DAY, *unpinned]) == 0
    assert "NOT checked" in capsys.readouterr().err

    # no tariff for a period: refused (exit 1)
    assert zkgrid(["tariff", "show", "--period", "2026-11-22", *conn]) == 1
    assert "UNKNOWN_TARIFF" in capsys.readouterr().err


def test_a_bad_file_is_refused_before_connecting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "tariff.csv"
    bad.write_text(",".join(CSV_HEADER) + "\n00:00,0.2534,0.1\n")
    args = ["tariff", "publish", "--period", DAY, "--file", str(bad), "--currency", "EUR"]
    # nothing listens on port 9: the file is refused first
    assert zkgrid([*args, "--target", "127.0.0.1:9", "--insecure"]) == 2
    err = capsys.readouterr().err
    assert "line 2" in err
    assert "finer than" in err
    assert zkgrid([*args[:-2], "--target", "127.0.0.1:9", "--insecure"]) == 2
    assert "needs --currency" in capsys.readouterr().err


def test_an_unreachable_service_is_not_a_refusal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["tariff", "show", "--period", DAY, "--target", "127.0.0.1:9", "--insecure"]
    assert zkgrid([*args, "--timeout", "2"]) == 2
    err = capsys.readouterr().err
    assert "the service refused" not in err
    assert "could not reach the service (UNAVAILABLE" in err
