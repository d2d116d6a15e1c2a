"""``zkgrid demo --days 3``: a billing cycle end to end (a small community, 4-hour
intervals, one proving process): households under the default tiered plan and a business
under the demand-charge plan prove and settle their cycle bills; the auditor re-verifies
every cycle bill's circuit proof from the ledger; the table shows the plans, the tiers and
the peak from the meters' own openings."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli import demo
from cli.main import main as zkgrid


def test_demo_days_3_settles_a_billing_cycle(capsys: pytest.CaptureFixture[str]) -> None:
    code = demo.main(["--prosumers", "3", "--businesses", "1", "--interval-minutes", "240",
                      "--workers", "1", "--days", "3"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "every batch, cycle bill and receipt verified" in out
    assert "Billing cycle 2026-04-21..2026-04-23 (3 days): 3 households, 1 business" in out
    assert out.count("✓") == 4
    rows = [line.split() for line in out.splitlines() if " tiered " in f" {line} "]
    assert len(rows) == 3
    for row in rows:
        assert "+" in row[3]  # the kWh of each tier, from the household's openings
        assert row[4] == "-"  # no peak on the tiered plan
    (bakery,) = [line.split() for line in out.splitlines() if line.strip().startswith("Bakery")]
    assert bakery[1:2] == ["demand"]
    assert bakery[3] == "-"  # no tiers on the demand plan
    assert float(bakery[4]) > 0  # the peak in kW
    assert "business-demand, listing 1 meter" in out
    assert "residential-tiered, the default plan: inclining blocks" in out
    assert "known only to that meter's own client" in out


def test_demo_days_kept_ledger_audits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kept ledger of a cycle demo passes the standalone auditor (records version 2)."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    keep = tmp_path / "kept"
    code = demo.main(["--prosumers", "1", "--businesses", "1", "--interval-minutes", "240",
                      "--workers", "1", "--days", "2", "--keep", str(keep)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    export, audit, _serve = demo.kept_commands(keep)
    assert zkgrid(export[1:]) == 0
    assert zkgrid(audit[1:]) == 0, capsys.readouterr()
