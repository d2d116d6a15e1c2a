"""The prosumer's own view over a real gRPC server on 127.0.0.1:0: ``zkgrid meter readings``,
``statement --detail``, ``report`` (rendered in headless Chromium) and ``backup``/``restore``,
through the command line; and what those commands send (statement and tariff requests,
never an opening).

Intervals of 240 minutes (T = 6) keep the proving fast.

Chromium: Debian's ``chromium`` package (``.ci/run`` installs it when missing). Without it
the report's browser test fails when ``CI`` is set and is skipped otherwise (README, Tests).
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import shutil
import socket
import sqlite3
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from cli.community import time_of_use_tariff
from cli.demo import EmbeddedService, embedded_service, publish_tariff, register_meter
from ledger.checkpoint import CheckpointSigner
from meter import cli as meter_cli
from meter.client import MeterClient
from meter.readings import DayReadings, format_readings_csv
from meter.report import EXPORT_COLOUR, IMPORT_COLOUR, build_report, render_html
from meter.statement import detailed_statement
from settlement.records import Tariff

INTERVAL = 240
PERIOD = "2026-11-21"
IMPORTS = (1_200, 800, 2_500, 3_100, 4_400, 950)
EXPORTS = (0, 0, 5_200, 3_300, 120, 0)


@pytest.fixture
def service(durable_ledger_url: str, ledger_signer: CheckpointSigner) -> Iterator[EmbeddedService]:
    with embedded_service(durable_ledger_url, signer=ledger_signer) as svc:
        yield svc


@pytest.fixture
def sqlite_service(tmp_path: Path, ledger_signer: CheckpointSigner) -> Iterator[EmbeddedService]:
    with embedded_service(f"sqlite:///{tmp_path / 'ledger.db'}", signer=ledger_signer) as svc:
        yield svc


def _tariff() -> Tariff:
    return time_of_use_tariff(PERIOD, INTERVAL)


Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    def _run(*args: str) -> tuple[int, str, str]:
        out = io.StringIO()
        code = meter_cli.main(list(args), out=out)
        return code, out.getvalue(), capsys.readouterr().err

    return _run


def _billed_home(svc: EmbeddedService, tmp_path: Path, run: Run) -> tuple[Path, list[str]]:
    """A meter registered, its day submitted and billed through the CLI; returns its home and
    the network arguments (with the pinned log key)."""
    home = tmp_path / "home"
    net = ["--home", str(home), "--target", svc.target, "--insecure"]
    pinned = [*net, "--log-key", svc.signer.verifier_key()]
    code, _, err = run("keygen", "--id", "view-1", "--home", str(home),
                       "--interval-minutes", str(INTERVAL))  # fmt: skip
    assert code == 0, err
    register_meter(svc.channel, MeterClient(home).registration_request(), svc.log_key)
    publish_tariff(svc.channel, _tariff(), svc.log_key)
    csv_path = tmp_path / "day.csv"
    csv_path.write_text(
        format_readings_csv(DayReadings.from_lists(PERIOD, INTERVAL, IMPORTS, EXPORTS))
    )
    code, _, err = run("submit", "--csv", str(csv_path), *pinned)
    assert code == 0, err
    code, _, err = run("bill", "--period", PERIOD, *pinned)
    assert code == 0, err
    return home, pinned


def _expected() -> dict[str, int]:
    tariff = _tariff()
    energy = sum(p * v for p, v in zip(tariff.import_price, IMPORTS, strict=True))
    credit = sum(c * v for c, v in zip(tariff.export_credit, EXPORTS, strict=True))
    return {
        "fixed": tariff.fixed_charge,
        "energy": energy,
        "credit": credit,
        "total": tariff.fixed_charge + energy - credit,
    }


def _damage_local_openings(home: Path) -> None:
    """Change one stored import reading behind the store's back (a damaged disk, say)."""
    conn = sqlite3.connect(home / "openings.db")
    (vals,) = conn.execute("SELECT vals FROM batches WHERE period = ?", (PERIOD,)).fetchone()
    damaged = (int.from_bytes(vals[:4], "big") + 1).to_bytes(4, "big") + vals[4:]
    conn.execute("UPDATE batches SET vals = ? WHERE period = ?", (damaged, PERIOD))
    conn.commit()
    conn.close()


# --------------------------------------------------------------------------- statement --detail


def test_statement_detail_json_on_every_backend(
    service: EmbeddedService, tmp_path: Path, run: Run
) -> None:
    home, pinned = _billed_home(service, tmp_path, run)
    expected = _expected()
    code, out, err = run("statement", "--detail", "--json", *pinned)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["schema"] == "zkgrid.meter.statement/1"
    assert doc["meter_id"] == "view-1"
    assert doc["violations"] == []
    (line,) = doc["lines"]
    assert line["period"] == PERIOD
    assert line["currency"] == "EUR"
    assert line["matches_ledger"] is True
    assert line["bill_total"]["micro"] == expected["total"]
    parts = line["breakdown"]
    assert parts["fixed_charge"]["micro"] == expected["fixed"]
    assert parts["energy_charge"]["micro"] == expected["energy"]
    assert parts["feed_in_credit"]["micro"] == expected["credit"]
    assert parts["total"]["micro"] == expected["total"]
    assert (parts["import_wh"], parts["export_wh"]) == (sum(IMPORTS), sum(EXPORTS))
    assert line["tariff"]["tariff_hash"] == _tariff().tariff_hash().hex()
    assert line["tariff"]["receipt"]["signature_verified"] is True
    assert line["receipt"]["signature_verified"] is True
    assert line["receipt"]["status"] == "verified"
    assert doc["totals"] == [
        {"currency": "EUR", "micro": expected["total"], "amount": line["bill_total"]["amount"]}
    ]

    # Damaged local openings: the ledger's proof verifies, so the local store is at fault.
    _damage_local_openings(home)
    code, out, err = run("statement", "--detail", "--json", *pinned)
    assert code == 1
    doc = json.loads(out)
    assert [v["reason"] for v in doc["violations"]] == ["OPENING_STORE"]
    assert doc["lines"][0]["matches_ledger"] is False
    assert "violation OPENING_STORE" in err


# --------------------------------------------------------------------------- the whole view


def _chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is required in CI (.ci/run installs Debian's package)")
        pytest.skip("chromium is not installed: apt-get install chromium")
    return path


def _browser(page: Path, profile: Path, *args: str) -> str:
    done = subprocess.run(
        [_chromium(), "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
         f"--user-data-dir={profile}", *args, page.resolve().as_uri()],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _colour_pixels(png: Path, colour: str) -> int:
    from matplotlib.image import imread

    image = imread(png)[:, :, :3]
    target = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    close = (abs(image - target) < 3 / 255).all(axis=2)
    return int(close.sum())


def test_readings_statement_report_backup_restore(
    sqlite_service: EmbeddedService, tmp_path: Path, run: Run
) -> None:
    svc = sqlite_service
    home, pinned = _billed_home(svc, tmp_path, run)
    local = ["--home", str(home)]
    unpinned = [*local, "--target", svc.target, "--insecure"]
    expected = _expected()

    # readings: local only, the submitted day.
    code, out, err = run("readings", "--period", PERIOD, "--json", *local)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["status"] == "accepted"
    assert [i["import_wh"] for i in doc["intervals"]] == list(IMPORTS)
    assert [i["export_wh"] for i in doc["intervals"]] == list(EXPORTS)
    code, out, _ = run("readings", "--period", PERIOD, *local)
    assert code == 0
    assert "accepted by the ledger" in out

    # statement --detail as text: verified with the pinned key, not without.
    code, out, err = run("statement", "--detail", *pinned)
    assert code == 0, err
    assert "check: the local breakdown matches the ledger's bill" in out
    assert "  verified" in out
    code, out, err = run("statement", "--detail", *unpinned)
    assert code == 0, err
    assert "inclusion only, log key not pinned" in out
    assert " verified" not in out
    code, out, err = run("statement", "--detail", "--csv", *pinned)
    assert code == 0, err
    assert f",{expected['energy']}," in out.splitlines()[1]
    assert out.splitlines()[1].endswith(",verified,ok")

    # backup, then the report, in Chromium.
    backup = tmp_path / "openings.backup"
    code, _, err = run("backup", "--out", str(backup), *local)
    assert code == 0, err
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600

    page = tmp_path / "report.html"
    code, out, err = run("report", "--period", PERIOD, "--out", str(page), *pinned)
    assert code == 0, err
    assert "the ledger's bill matches the local openings; receipts verified" in out
    assert stat.S_IMODE(page.stat().st_mode) == 0o600
    code, _, err = run("report", "--period", PERIOD, "--out", str(page), *pinned)
    assert code == 2
    assert "--force" in err

    dom = _browser(page, tmp_path / "profile", "--dump-dom")
    assert re.search(r"<svg[^>]*>", dom)
    figure = dom[dom.index('id="plot"') :]
    figure = figure[: figure.index("</figure>")]
    assert "import (Wh)" in figure
    assert "export (Wh)" in figure
    assert figure.count(IMPORT_COLOUR) >= len(IMPORTS)
    assert figure.count(EXPORT_COLOUR) >= len(EXPORTS)
    text = re.sub(r"<[^>]+>", " ", dom)
    text = re.sub(r"\s+", " ", text)
    from meter.units import format_kwh, format_money

    assert f"Import {format_kwh(sum(IMPORTS))}" in text
    assert f"export {format_kwh(sum(EXPORTS))}" in text
    assert f"fixed charge {format_money(expected['fixed'], 'EUR')}" in text
    assert format_money(expected["energy"], "EUR") in text
    assert format_money(-expected["credit"], "EUR") in text
    assert f"the ledger's bill {format_money(expected['total'], 'EUR')}" in text
    assert "matches the ledger's bill" in text
    assert dom.count('data-verified="true"') == 3
    assert "Nothing here is verified" not in text

    shot = tmp_path / "report.png"
    _browser(page, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1200,1400",
             "--hide-scrollbars")  # fmt: skip
    assert _colour_pixels(shot, IMPORT_COLOUR) > 2_000
    assert _colour_pixels(shot, EXPORT_COLOUR) > 1_000

    # Without the pinned key the page says nothing is verified.
    unverified = tmp_path / "unpinned.html"
    code, out, err = run("report", "--period", PERIOD, "--out", str(unverified), *unpinned)
    assert code == 0, err
    assert "receipts NOT verified" in out
    html = unverified.read_text()
    assert 'data-verified="true"' not in html
    assert "Nothing here is verified" in html

    # Damaged openings: the statement and the report say so (exit 1); a restore mends it.
    _damage_local_openings(home)
    code, _, err = run("statement", "--detail", *pinned)
    assert code == 1
    assert "OPENING_STORE" in err
    damaged_page = tmp_path / "damaged.html"
    code, out, err = run("report", "--period", PERIOD, "--out", str(damaged_page), "--json",
                         *pinned)  # fmt: skip
    assert code == 1
    assert json.loads(out)["matches_ledger"] is False
    assert "does NOT match" in damaged_page.read_text()
    code, _, err = run("restore", "--from", str(backup), *local)
    assert code == 1
    assert "--force" in err
    code, _, err = run("restore", "--from", str(backup), "--force", *local)
    assert code == 0, err
    code, _, err = run("statement", "--detail", *pinned)
    assert code == 0, err

    # A lost store: restored from the backup, the view and the bill work again.
    (home / "openings.db").unlink()
    code, _, err = run("readings", "--period", PERIOD, *local)
    assert code == 1
    code, out, err = run("restore", "--from", str(backup), "--json", *local)
    assert code == 0, err
    assert json.loads(out)["batches_added"] == 1
    code, out, err = run("readings", "--period", PERIOD, "--json", *local)
    assert code == 0, err
    assert [i["import_wh"] for i in json.loads(out)["intervals"]] == list(IMPORTS)
    code, out, err = run("bill", "--period", PERIOD, *pinned)  # the stored bill, again
    assert code == 0, err
    code, _, err = run("statement", "--detail", *pinned)
    assert code == 0, err


def test_an_unreachable_service_is_exit_2(tmp_path: Path, run: Run) -> None:
    home = tmp_path / "home"
    assert run("keygen", "--id", "view-2", "--home", str(home))[0] == 0
    code, out, err = run("statement", "--detail", "--home", str(home), "--insecure",
                         "--target", f"127.0.0.1:{_closed_port()}", "--timeout", "1")  # fmt: skip
    assert (code, out) == (2, "")
    assert "could not reach the service" in err
    assert "the service refused" not in err


def _closed_port() -> int:
    """A loopback port with nothing listening (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- privacy


class _Recorder(grpc.UnaryUnaryClientInterceptor):  # type: ignore[type-arg]
    def __init__(self) -> None:
        self.methods: list[str] = []
        self.requests: list[bytes] = []

    def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        self.methods.append(details.method.rsplit("/", 1)[-1])
        self.requests.append(request.SerializeToString())
        return continuation(details, request)


def test_the_view_sends_no_opening(sqlite_service: EmbeddedService, tmp_path: Path) -> None:
    svc = sqlite_service
    rng = random.Random(20261121)
    readings = DayReadings.from_lists(
        PERIOD, INTERVAL,
        [rng.randrange(10**6, 2**32) for _ in range(6)],
        [rng.randrange(10**6, 2**32) for _ in range(6)],
    )  # fmt: skip
    home = MeterClient.keygen(tmp_path / "p", "p-1", INTERVAL)
    with MeterClient(home, svc.channel, insecure=True, log_key=svc.log_key) as client:
        register_meter(svc.channel, client.registration_request(), svc.log_key)
        publish_tariff(svc.channel, _tariff(), svc.log_key)
        client.submit(client.build_batch(readings))
        client.settle(PERIOD)
    recorder = _Recorder()
    channel = grpc.intercept_channel(svc.channel, recorder)
    with MeterClient(home, channel, insecure=True, log_key=svc.log_key) as client:
        statement = detailed_statement(client)
        assert statement.violations == ()
        page = render_html(build_report(client, PERIOD))
        stored = client.store.batch(PERIOD)
    assert stored is not None
    assert str(readings.imports[0]) in page  # the owner's page shows them...
    assert set(recorder.methods) == {"GetStatement", "GetTariff"}  # ...nothing else is asked
    sent = b"".join(recorder.requests)
    for value in stored.values:
        assert re.search(rb"(?<![0-9])" + str(value).encode() + rb"(?![0-9])", sent) is None
        assert value.to_bytes(4, "big") not in sent
    for blinding in stored.blindings:
        assert blinding.to_bytes(32, "big") not in sent
        assert str(blinding).encode() not in sent
