"""zkgrid audit: argument errors are one line and exit 2; the zkgrid command dispatches."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli import main as zkgrid_cli
from ledger.checkpoint import CheckpointSigner
from verifier import cli

KEY = CheckpointSigner.from_private_bytes("k", bytes(32)).verifier_key()


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--archive", "x.zla"],  # no log key
        ["--log-key", KEY],  # no source
        ["--archive", "x", "--target", "h:1", "--log-key", KEY],
        ["--archive", "x", "--log-key", KEY, "--bogus"],
        ["--archive", "x", "--log-key", KEY, "--state", "s", "--no-state"],
    ],
)
def test_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("zkgrid audit: ")
    assert len(err.strip().splitlines()) == 1


def test_input_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    archive = tmp_path / "a.zla"
    archive.write_bytes(b"not an archive at all")
    cases = [
        (["--archive", str(archive), "--log-key", "nope"], "not a verifier key"),
        (["--archive", str(archive), "--log-key", KEY, "--no-state"], "bad magic"),
        (["--archive", str(archive), "--log-key-file", str(tmp_path / "none")], "log key file"),
        (["--target", "10.1.2.3:50051", "--insecure", "--log-key", KEY, "--no-state"], "loopback"),
        (["--target", "localhost:1", "--log-key", KEY, "--no-state"], "--ca"),
        (
            ["--archive", str(archive), "--log-key", KEY, "--no-state", "--since-last"],
            "--since-last needs",
        ),
        (["--archive", str(archive), "--log-key", KEY, "--no-state", "--insecure"], "TLS flags"),
    ]
    for argv, expected in cases:
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert expected in err, (argv, err)
        assert len(err.strip().splitlines()) == 1


def test_unreachable_service_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["--target", "127.0.0.1:1", "--insecure", "--log-key", KEY, "--no-state"])
    assert code == 2
    assert "GetCheckpoint failed" in capsys.readouterr().err


def test_zkgrid_dispatches_audit_and_ledger_export(capsys: pytest.CaptureFixture[str]) -> None:
    assert zkgrid_cli.main(["audit", "--log-key", KEY]) == 2
    assert "zkgrid audit:" in capsys.readouterr().err
    assert zkgrid_cli.main(["ledger", "export", "--help"]) == 0
    assert "--db" in capsys.readouterr().out
    assert zkgrid_cli.main(["ledger", "frobnicate"]) == 2
