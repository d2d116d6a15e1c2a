"""``zkgrid demo`` runs end to end (a small community, 4-hour intervals, one proving process)."""

from __future__ import annotations

import pytest

from cli import demo


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
