"""A billing cycle's bills through the command line over real gRPC (insecure loopback,
SQLite): the utility publishes two plans for a 3-day cycle from JSON files (a default plan
of inclining tiers, and a demand-charge plan listing one meter), two meters submit their
3 days and bill the cycle (real circuit proofs, checked by the service), and their
statements show the tiers used and the demand, recomputed from their openings and
checked against the ledger's totals; the numbers are computed by hand. The refusals: a
cycle other than the plan's (exit 1, naming the plan's cycle), a day missing from the
opening store (exit 1, naming the day).

Intervals of 240 minutes (T = 6) keep the proving fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main as zkgrid
from meter.readings import DayReadings, format_readings_csv
from tests.integration.test_grpc_server import Running
from tests.integration.test_grpc_server import running as running  # the fixture

INTERVAL = 240
DAYS = ("2026-11-01", "2026-11-02", "2026-11-03")
IMPORTS = (
    (1_000, 2_000, 3_000, 500, 0, 700),
    (1_500, 2_500, 1_000, 0, 4_800, 200),
    (800, 900, 1_100, 1_300, 2_000, 600),
)
EXPORTS = ((0, 0, 4_000, 2_500, 0, 0), (0, 0, 1_000, 0, 0, 0), (0, 0, 3_000, 500, 0, 0))
# By hand: I = 7,200 + 10,000 + 6,700 = 23,900 Wh; exports 6,500 + 1,000 + 3,500 = 11,000 Wh;
# the highest interval import 4,800 Wh (2026-11-02 16:00-20:00): 1.2 kW.
#
# tiered (default plan): 0.90 fixed; tiers 0.23 from 0, 0.28 from 10 kWh, 0.38 from 20 kWh;
#   10,000 x 230 + 10,000 x 280 + 3,900 x 380 = 2,300,000 + 2,800,000 + 1,482,000; feed-in
#   11,000 x 80 = 880,000: 900,000 + 6,582,000 - 880,000 = 6,602,000 micro-EUR.
TIERED_TOTAL = 6_602_000
# demand (bakery-12): 2.50 fixed; 0.12/kWh: 23,900 x 120 = 2,868,000; 12.50 EUR/kW:
#   4,800 Wh x 3,125 = 15,000,000 (1.2 kW x 12.50); feed-in 11,000 x 50 = 550,000:
#   2,500,000 + 2,868,000 + 15,000,000 - 550,000 = 19,818,000 micro-EUR.
DEMAND_TOTAL = 19_818_000


def _plan(path: Path, **fields: object) -> Path:
    doc = {
        "cycle": {"first": DAYS[0], "last": DAYS[-1]},
        "currency": "EUR",
        "interval_minutes": INTERVAL,
        **fields,
    }
    path.write_text(json.dumps(doc))
    return path


def _tiered(tmp_path: Path) -> Path:
    return _plan(
        tmp_path / "tiered.json",
        plan="residential-tiered",
        fixed_charge="0.90",
        import_price_per_kwh=["0.000"] * 6,
        export_credit_per_kwh=["0.080"] * 6,
        tiers=[
            {"from_kwh": "0", "price_per_kwh": "0.230"},
            {"from_kwh": "10", "price_per_kwh": "0.280"},
            {"from_kwh": "20", "price_per_kwh": "0.380"},
        ],
    )


def _demand(tmp_path: Path) -> Path:
    return _plan(
        tmp_path / "demand.json",
        plan="business-demand",
        meters=["bakery-12"],
        fixed_charge="2.50",
        import_price_per_kwh=["0.120"] * 6,
        export_credit_per_kwh=["0.050"] * 6,
        demand_charge_per_kw="12.50",
    )


def _day_files(tmp_path: Path) -> list[Path]:
    files = []
    for day, imports, exports in zip(DAYS, IMPORTS, EXPORTS, strict=True):
        path = tmp_path / f"{day}.csv"
        path.write_text(format_readings_csv(DayReadings.from_lists(day, INTERVAL, imports,
                                                                   exports)))  # fmt: skip
        files.append(path)
    return files


def _meter(
    tmp_path: Path, meter_id: str, conn: list[str], capsys: pytest.CaptureFixture[str]
) -> list[str]:
    """Keygen and registration through the CLI; returns the meter's --home arguments."""
    home = ["--home", str(tmp_path / meter_id)]
    assert zkgrid(["meter", "keygen", "--id", meter_id, *home,
                   "--interval-minutes", str(INTERVAL)]) == 0  # fmt: skip
    request = tmp_path / f"{meter_id}.request"
    assert zkgrid(["meter", "register", *home, "--out", str(request)]) == 0
    assert zkgrid(["meter", "register", "--submit", "--request", str(request), *conn]) == 0
    capsys.readouterr()
    return home


def test_two_meters_bill_a_cycle_under_a_tiered_and_a_demand_plan(
    running: Running, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log_pub = tmp_path / "log.pub"
    log_pub.write_text(running.signer.verifier_key() + "\n")
    conn = ["--target", running.target, "--insecure", "--log-key", str(log_pub)]
    tariff_conn = ["--target", running.target, "--insecure", "--log-key-file", str(log_pub)]

    # the utility publishes the two plans (told from a day's tariff by their fields)
    assert zkgrid(["tariff", "publish", "--file", str(_tiered(tmp_path)), *tariff_conn,
                   "--json"]) == 0  # fmt: skip
    published = json.loads(capsys.readouterr().out)
    assert (published["kind"], published["plan"], published["receipt"]) == (
        "cycle", "residential-tiered", "verified",
    )  # fmt: skip
    assert published["tiers"][1] == {"from_kwh": "10.000", "price_per_kwh": "0.280"}
    assert zkgrid(["tariff", "publish", "--file", str(_demand(tmp_path)), *tariff_conn]) == 0
    text = capsys.readouterr().out
    assert "published plan 'business-demand' for the cycle 2026-11-01..2026-11-03" in text
    assert "demand charge: 12.500000 per kW" in text
    size = running.store.size()
    assert zkgrid(["tariff", "publish", "--file", str(_demand(tmp_path)), *tariff_conn]) == 0
    assert running.store.size() == size  # the identical plan again: its receipt

    homes = {m: _meter(tmp_path, m, conn, capsys) for m in ("meter-7", "bakery-12")}
    days = _day_files(tmp_path)

    # meter-7 has submitted two days: the cycle cannot be billed yet (the day is named)
    for day in days[:2]:
        assert zkgrid(["meter", "submit", *homes["meter-7"], "--csv", str(day), *conn]) == 0
    size = running.store.size()
    bill = ["meter", "bill", "--from", DAYS[0], "--to", DAYS[-1]]
    assert zkgrid([*bill, *homes["meter-7"], *conn]) == 1
    err = capsys.readouterr().err
    assert "the local opening store of meter-7 has none for 2026-11-03" in err
    assert "submit that day first" in err
    assert running.store.size() == size

    # a cycle the plan does not have: refused, naming the plan's
    assert zkgrid(["meter", "bill", "--cycle", "2026-11", *homes["meter-7"], *conn]) == 1
    err = capsys.readouterr().err
    assert "bills the cycle 2026-11-01..2026-11-03, not 2026-11-01..2026-11-30" in err
    assert running.store.size() == size

    assert zkgrid(["meter", "submit", *homes["meter-7"], "--csv", str(days[2]), *conn]) == 0
    for day in days:
        assert zkgrid(["meter", "submit", *homes["bakery-12"], "--csv", str(day), *conn]) == 0
    capsys.readouterr()

    totals = {"meter-7": TIERED_TOTAL, "bakery-12": DEMAND_TOTAL}
    plans = {"meter-7": "residential-tiered", "bakery-12": "business-demand"}
    for meter_id, home in homes.items():
        assert zkgrid([*bill, *home, *conn, "--json"]) == 0, capsys.readouterr().err
        doc = json.loads(capsys.readouterr().out)
        assert doc["total_micro"] == totals[meter_id]
        assert (doc["plan"], doc["periods"]) == (plans[meter_id], 3)
        assert doc["receipt"]["signature_verified"] is True
        size = running.store.size()
        # again: the same bill and its original receipt, nothing appended
        assert zkgrid([*bill, *home, *conn, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["receipt"] == doc["receipt"]
        assert running.store.size() == size

    # meter-7's statement: the tiers used
    statement = ["meter", "statement", "--detail", *conn]
    assert zkgrid([*statement, *homes["meter-7"], "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (line,) = doc["cycle_lines"]
    assert line["matches_ledger"] is True
    assert line["bill_total"]["micro"] == TIERED_TOTAL
    assert [(t["wh"], t["charge"]["micro"]) for t in line["breakdown"]["tiers"]] == [
        (10_000, 2_300_000), (10_000, 2_800_000), (3_900, 1_482_000),
    ]  # fmt: skip
    assert doc["violations"] == []
    assert doc["totals"] == [{"currency": "EUR", "micro": TIERED_TOTAL, "amount": "6.602"}]
    assert zkgrid([*statement, *homes["meter-7"]]) == 0
    text = capsys.readouterr().out
    assert "3.9 kWh x 0.38 EUR/kWh" in text
    assert "check: the local breakdown matches the ledger's bill" in text

    # bakery-12's: the demand, for one day of the cycle too
    assert zkgrid([*statement, *homes["bakery-12"], "--period", DAYS[1], "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (line,) = doc["cycle_lines"]
    assert line["breakdown"]["demand"]["peak_kw"] == "1.2"
    assert line["breakdown"]["demand"]["charge"]["micro"] == 15_000_000
    assert line["bill_total"]["micro"] == DEMAND_TOTAL
    assert line["tariff"]["meters"] == ["bakery-12"]
    assert zkgrid(["meter", "statement", *conn, *homes["bakery-12"]]) == 0
    plain = capsys.readouterr().out
    assert "19.818 EUR" in plain
    assert "plan business-demand" in plain

    # anyone reads the plan that bills a meter
    assert zkgrid(["tariff", "show", "--meter", "bakery-12", "--period", DAYS[2],
                   *tariff_conn, "--json"]) == 0  # fmt: skip
    shown = json.loads(capsys.readouterr().out)
    assert (shown["plan"], shown["demand_charge_per_kw"]) == ("business-demand", "12.500000")
    assert zkgrid(["tariff", "show", "--meter", "meter-7", "--period", DAYS[0],
                   *tariff_conn]) == 0  # fmt: skip
    assert "the default plan" in capsys.readouterr().out

    # the backup carries the cycle bill
    out = tmp_path / "meter-7.backup"
    assert zkgrid(["meter", "backup", *homes["meter-7"], "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cycle_bills"] == 1
