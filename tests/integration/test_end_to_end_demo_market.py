"""``zkgrid demo --market``: the community trades a day end to end (6 households, hourly
intervals to keep it short, real meter
homes and market clients, the embedded service's clock injected): PV households offer part
of their expected export, the others bid; the market clears at gate closure; every meter
submits its batch and runs its delivery steps until every trade settled. The table shows
each meter's delivered kWh sold and bought and its peer-to-peer payments, from its own
client, netting to exactly zero."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli import demo
from cli.main import main as zkgrid


def test_demo_market_every_trade_settles_and_payments_net_to_zero(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = zkgrid(["demo", "--market", "--prosumers", "6", "--seed", "1",
                   "--interval-minutes", "60", "--workers", "2"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    text = " ".join(out.split())
    assert "every trade settled; the peer-to-peer payments net to zero" in text
    assert "3 PV households offer, 3 households bid" in text
    rows = {
        line.split()[0]: line.split()
        for line in out.splitlines()
        if line.strip() and line.split()[0] in {"Ada", "Bram", "Chiara", "Dmitri", "Elif", "Farah"}
    }
    assert len(rows) == 6
    sold = bought = 0.0
    for name, row in rows.items():
        kwp, trades, sold_bought, p2p, credits, ok = row[1], row[3], row[4], row[5], row[6], row[7]
        assert ok == "✓", name
        assert credits == "n/b"
        assert int(trades) > 0, name
        s, b = (float(x) for x in sold_bought.split("/"))
        sold, bought = sold + s, bought + b
        if kwp == "-":  # a buyer: bought locally, paid its sellers
            assert (s, b > 0, float(p2p) < 0) == (0, True, True), name
        else:  # a seller: sold locally, paid by its buyers
            assert (b, s > 0, float(p2p) > 0) == (0, True, True), name
    (community,) = [line.split() for line in out.splitlines() if line.startswith(" community")]
    assert community[-1] == "0.00"  # the community's peer-to-peer payments, exact
    assert community[-2] == f"{sold:.2f}/{bought:.2f}"


def test_run_demo_market_result(tmp_path: Path) -> None:
    """The run function: every trade of every meter settled, both sides of each trade hold
    the same delivered Wh (the payments net to exactly zero), some energy traded."""
    result = demo.run_demo(
        prosumers=4, seed=2, interval_minutes=60, workers=1, workdir=tmp_path, market=True
    )
    assert result.ok
    assert result.market_day is not None
    parts = [r.market for r in result.prosumers if r.market is not None]
    assert len(parts) == 4
    assert all(m.trades > 0 and m.settled == m.trades for m in parts)
    assert result.p2p_total == 0
    assert sum(m.sold_wh for m in parts) == sum(m.bought_wh for m in parts) > 0
    assert any(volume for _, volume in result.clearing_prices)


def test_demo_market_not_with_days(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        demo.main(["--market", "--days", "2"])
    assert exc.value.code == 2
    assert "--market trades one day" in capsys.readouterr().err
