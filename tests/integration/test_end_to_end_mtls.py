"""End to end with mutual TLS: the role is the client certificate's OU, the identity its CN."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.community import time_of_use_tariff
from ledger.checkpoint import CheckpointSigner
from meter import cli as meter_cli
from meter.readings import DayReadings, format_readings_csv
from service import pki
from service.config import ServiceConfig
from service.server import build_server, server_info
from service.settlement import Settlement
from service.storage import open_store

INTERVAL = 240
PERIOD = "2026-11-21"


@pytest.fixture
def tls_service(tmp_path: Path, ledger_signer: CheckpointSigner) -> Iterator[tuple[str, Path]]:
    certs = tmp_path / "certs"
    assert pki.main(["init", str(certs), "--meter", "tls-1", "--meter", "tls-2"]) == 0
    store = open_store(f"sqlite:///{tmp_path / 'ledger.db'}", ledger_signer, "zkgrid.test/tls")
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
        settlement.publish_tariff(time_of_use_tariff(PERIOD, INTERVAL))
        yield f"localhost:{server_info(server).port}", certs
    finally:
        server.stop(grace=1).wait()
        settlement.close()
        store.close()


def test_meter_cli_over_mutual_tls(
    tls_service: tuple[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    ledger_signer: CheckpointSigner,
) -> None:
    target, certs = tls_service
    home = tmp_path / "home"

    def tls(stem: str) -> list[str]:
        return ["--target", target, "--ca", str(certs / "ca.pem"),
                "--cert", str(certs / f"{stem}.pem"), "--key", str(certs / f"{stem}.key"),
                "--log-key", ledger_signer.verifier_key()]  # fmt: skip

    def run(*args: str) -> tuple[int, str, str]:
        out = io.StringIO()
        code = meter_cli.main(list(args), out=out)
        return code, out.getvalue(), capsys.readouterr().err

    assert run("keygen", "--id", "tls-1", "--home", str(home),
               "--interval-minutes", str(INTERVAL))[0] == 0  # fmt: skip
    # A meter certificate may not register meters, only the utility's: the client says so
    # before it connects (the service refuses it too: tests/integration/test_grpc_tls.py).
    code, _, err = run("register", "--submit", "--home", str(home), *tls("meter-tls-1"))
    assert code == 2
    assert "this command needs a utility certificate" in err
    code, out, err = run("register", "--submit", "--home", str(home), *tls("utility"))
    assert code == 0, err
    assert "signature verified" in out

    readings = DayReadings.from_lists(PERIOD, INTERVAL, [5, 6, 7, 8, 9, 10], [0, 0, 3, 4, 0, 0])
    csv_path = tmp_path / "day.csv"
    csv_path.write_text(format_readings_csv(readings))
    # Another meter's certificate cannot submit this meter's readings (checked locally too).
    code, _, err = run("submit", "--csv", str(csv_path), "--home", str(home), *tls("meter-tls-2"))
    assert code == 2
    assert "issued to tls-2, not to tls-1" in err
    # a key that is not the certificate's, and a CA file that is not a certificate
    mixed = tls("meter-tls-1")
    mixed[mixed.index("--key") + 1] = str(certs / "meter-tls-2.key")
    code, _, err = run("submit", "--csv", str(csv_path), "--home", str(home), *mixed)
    assert (code, "is not the key of" in err) == (2, True)
    bad_ca = tls("meter-tls-1")
    bad_ca[bad_ca.index("--ca") + 1] = str(certs / "meter-tls-1.key")
    code, _, err = run("submit", "--csv", str(csv_path), "--home", str(home), *bad_ca)
    assert (code, "is not a PEM certificate bundle" in err) == (2, True)
    code, out, err = run("submit", "--csv", str(csv_path), "--home", str(home), *tls("meter-tls-1"))
    assert code == 0, err
    code, out, err = run("bill", "--period", PERIOD, "--home", str(home), *tls("meter-tls-1"))
    assert code == 0, err
    tariff = time_of_use_tariff(PERIOD, INTERVAL)
    assert f"({tariff.bill_total(readings.imports, readings.exports)} micro-EUR)" in out
    code, out, err = run("statement", "--home", str(home), *tls("meter-tls-1"))
    assert code == 0, err
    assert PERIOD in out
