"""``zkgrid demo`` runs end to end (a small community, 4-hour intervals, one proving process)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli import demo
from cli.main import main as zkgrid


def test_demo_small_community(capsys: pytest.CaptureFixture[str]) -> None:
    code = demo.main(["--prosumers", "3", "--interval-minutes", "240", "--workers", "1"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "every batch, bill and receipt verified" in out
    assert out.count("✓") == 3
    assert "known only to that prosumer's own meter client" in out
    assert "final signed checkpoint" in out
    assert "zkgrid.demo/settlement" in out


def test_demo_rejects_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        demo.main(["--prosumers", "0"])
    assert info.value.code == 2


def test_demo_keep_keeps_the_log_key_and_the_audit_it_prints_works(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # the auditor's state goes there
    keep = tmp_path / "kept"
    code = demo.main(["--prosumers", "2", "--interval-minutes", "240", "--workers", "1",
                      "--keep", str(keep)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert (keep / "log.key").stat().st_mode & 0o777 == 0o600
    assert (keep / "log.key.pub").read_text().startswith("zkgrid.demo/settlement+")
    assert "Audit it:" in out
    export, audit, serve = demo.kept_commands(keep)
    assert "zkgrid audit --archive" in out
    assert zkgrid(export[1:]) == 0
    assert zkgrid(audit[1:]) == 0, capsys.readouterr()
    assert "ledger.zkla" in " ".join(audit)
    assert serve[:2] == ["zkgrid", "serve"]
