"""The meter's cycle bills offline: proving over the local openings of every day of the
cycle (real circuit proofs, T = 6 intervals, 2 days), the refusals naming the period and
what to do, and the prosumer's statement of a cycle: the tiers used and the demand, with
exact numbers computed by hand, checked against the ledger's total (the named reasons).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from meter.client import (
    CycleIncompleteError,
    CycleMismatchError,
    CycleStatementLine,
    MeterClient,
    VerifiedReceipt,
    prove_cycle_bill_in_home,
)
from meter.openings import StoredBatch
from meter.readings import DayReadings
from meter.render import demand_kw_text, statement_csv, statement_document, statement_text
from meter.statement import (
    CycleDetailLine,
    DetailedStatement,
    check_cycle_bill,
    cycle_breakdown,
)
from settlement.records import CycleBill, CycleTariff, Tier
from zkgrid.errors import Reason

INTERVAL = 240
FIRST, LAST = "2026-11-01", "2026-11-02"
IMPORTS = ((1_000, 2_000, 3_000, 500, 0, 700), (1_500, 2_500, 1_000, 0, 4_800, 200))
EXPORTS = ((0, 0, 4_000, 2_500, 0, 0), (0, 0, 1_000, 0, 0, 0))
# By hand: I = 7,200 + 10,000 = 17,200 Wh; exports 6,500 + 1,000 = 7,500 Wh; the highest
# interval import is 4,800 Wh (day 2, 16:00-20:00), 1.2 kW over 4 hours.


def _tiered() -> CycleTariff:
    return CycleTariff(
        plan="residential-tiered", meters=(), first_period=FIRST, last_period=LAST,
        interval_minutes=INTERVAL, currency="EUR", fixed_charge=9_000_000,
        import_price=(0,) * 6, export_credit=(80,) * 6,
        tiers=(Tier(0, 230), Tier(10_000, 280), Tier(15_000, 380)), demand_charge=0,
    )  # fmt: skip


def _demand() -> CycleTariff:
    return CycleTariff(
        plan="business-demand", meters=("meter-7",), first_period=FIRST, last_period=LAST,
        interval_minutes=INTERVAL, currency="EUR", fixed_charge=25_000_000,
        import_price=(120,) * 6, export_credit=(50,) * 6, tiers=(),
        demand_charge=12_500_000,  # 12.50 EUR per kW
    )  # fmt: skip


@pytest.fixture
def client(tmp_path: Path) -> Iterator[MeterClient]:
    MeterClient.keygen(tmp_path / "home", "meter-7", INTERVAL)
    c = MeterClient(tmp_path / "home")
    yield c
    c.close()


def _submit_days(client: MeterClient, days: int = 2) -> list[StoredBatch]:
    out = []
    for period, imports, exports in list(zip((FIRST, LAST), IMPORTS, EXPORTS, strict=True))[
        :days
    ]:
        client.build_batch(DayReadings.from_lists(period, INTERVAL, imports, exports))
        client.store.mark_accepted(period, b"receipt-" + period.encode())
        stored = client.store.batch(period)
        assert stored is not None
        out.append(stored)
    return out


def _receipt(index: int, *, pinned: bool = True) -> VerifiedReceipt:
    return VerifiedReceipt(index, bytes(32), index + 1, bytes(32), "", pinned, b"")


def _detail(
    client: MeterClient, tariff: CycleTariff, bill: CycleBill, stored: list[StoredBatch]
) -> CycleDetailLine:
    line = CycleStatementLine(bill, _receipt(40), tariff.currency)
    return CycleDetailLine(
        line,
        tariff,
        _receipt(3),
        cycle_breakdown(tariff, stored),
        tuple(check_cycle_bill(bill, tariff, list(stored))),
        sum(sum(s.exports) for s in stored),
    )


# --------------------------------------------------------------------------- the numbers


def test_the_tiered_breakdown_by_hand(client: MeterClient) -> None:
    stored = _submit_days(client)
    parts = cycle_breakdown(_tiered(), stored)
    assert parts.total_import == 17_200
    assert parts.tier_wh == (10_000, 5_000, 2_200)
    assert parts.tier_charges == (10_000 * 230, 5_000 * 280, 2_200 * 380)
    assert parts.tier_charges == (2_300_000, 1_400_000, 836_000)
    assert parts.export_credit == 7_500 * 80 == 600_000
    assert parts.total == 9_000_000 + 4_536_000 - 600_000 == 12_936_000


def test_the_demand_breakdown_by_hand(client: MeterClient) -> None:
    stored = _submit_days(client)
    tariff = _demand()
    assert tariff.demand_rate_per_wh == 12_500_000 * 60 // (240 * 1000) == 3_125
    parts = cycle_breakdown(tariff, stored)
    assert parts.demand_wh == 4_800
    assert parts.demand_charge == 4_800 * 3_125 == 15_000_000  # 1.2 kW x 12.50 EUR/kW
    assert parts.time_of_use == 17_200 * 120 == 2_064_000
    assert parts.export_credit == 7_500 * 50 == 375_000
    assert parts.total == 25_000_000 + 2_064_000 + 15_000_000 - 375_000 == 41_689_000
    assert demand_kw_text(4_800, 240) == "1.2 kW"
    assert demand_kw_text(800, 15) == "3.2 kW"
    assert demand_kw_text(0, 15) == "0 kW"
    assert demand_kw_text(3, 9) == "0.02 kW"  # 3 Wh in 9 minutes, exactly
    assert demand_kw_text(1, 9) == "~0.007 kW"  # 0.00666...: not a finite decimal, so marked


# --------------------------------------------------------------------------- proving


def test_the_cycle_bill_is_proven_from_the_local_openings_and_stored(
    client: MeterClient,
) -> None:
    _submit_days(client)
    tariff = _tiered()
    bill = client.prove_cycle_bill(FIRST, LAST, tariff=tariff)
    assert (bill.meter_id, bill.first_period, bill.last_period) == ("meter-7", FIRST, LAST)
    assert bill.total == 12_936_000
    assert bill.tariff_hash == tariff.tariff_hash()
    stored = client.store.cycle_bill(FIRST, LAST)
    assert stored is not None
    assert (stored.bill, stored.total, stored.receipt) == (bill.encode(), bill.total, None)
    # proven once: asked again, the stored bill (not a second proof of other bytes)
    assert client.prove_cycle_bill(FIRST, LAST, tariff=tariff) == bill
    assert check_cycle_bill(bill, tariff, [client.store.batch(FIRST), client.store.batch(LAST)]) \
        == []  # fmt: skip


def test_a_pool_worker_proves_in_the_home(client: MeterClient) -> None:
    _submit_days(client)
    data = prove_cycle_bill_in_home(client.home.path, _demand().encode())
    bill = CycleBill.decode(data)
    assert bill.total == 41_689_000
    stored = client.store.cycle_bill(FIRST, LAST)
    assert stored is not None
    assert stored.bill == data


def test_a_day_missing_from_the_store_is_named_with_what_to_do(client: MeterClient) -> None:
    _submit_days(client, days=1)
    with pytest.raises(CycleIncompleteError) as info:
        client.prove_cycle_bill(FIRST, LAST, tariff=_tiered())
    assert info.value.reason is Reason.CYCLE_INCOMPLETE
    message = str(info.value)
    assert LAST in message
    assert "submit that day first" in message
    assert "zkgrid meter submit --id meter-7" in message
    assert client.store.cycle_bill(FIRST, LAST) is None


def test_a_day_not_accepted_yet_is_named(client: MeterClient) -> None:
    _submit_days(client, days=1)
    client.build_batch(DayReadings.from_lists(LAST, INTERVAL, IMPORTS[1], EXPORTS[1]))
    with pytest.raises(CycleIncompleteError, match=f"the batch for {LAST} .* not accepted yet"):
        client.prove_cycle_bill(FIRST, LAST, tariff=_tiered())


def test_another_cycle_than_the_plans_is_refused_naming_the_plans(
    client: MeterClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _submit_days(client)
    plan = _tiered()  # 2026-11-01..02

    def fetched(period: str) -> tuple[CycleTariff, VerifiedReceipt]:
        assert period == FIRST
        return plan, _receipt(3)

    monkeypatch.setattr(client, "cycle_tariff", fetched)
    with pytest.raises(CycleMismatchError) as info:
        client.prove_cycle_bill(FIRST, "2026-11-07")
    assert info.value.reason is Reason.UNKNOWN_TARIFF
    message = str(info.value)
    assert "residential-tiered" in message
    assert f"bills the cycle {FIRST}..{LAST}, not {FIRST}..2026-11-07" in message
    assert f"--from {FIRST} --to {LAST}" in message
    assert client.prove_cycle_bill(FIRST, LAST).total == 12_936_000  # the plan's own cycle


def test_a_plan_of_other_intervals_is_refused(client: MeterClient) -> None:
    _submit_days(client)
    plan = dataclasses.replace(_tiered(), interval_minutes=60, import_price=(0,) * 24,
                               export_credit=(80,) * 24)  # fmt: skip
    with pytest.raises(Exception, match="60-minute intervals"):
        client.prove_cycle_bill(FIRST, LAST, tariff=plan)


# --------------------------------------------------------------------------- the checks


def test_the_checks_name_each_disagreement(client: MeterClient) -> None:
    stored = _submit_days(client)
    tariff = _demand()
    bill = client.prove_cycle_bill(FIRST, LAST, tariff=tariff)

    forged = dataclasses.replace(bill, total=bill.total - 1)
    (v,) = check_cycle_bill(forged, tariff, list(stored))
    assert v.reason is Reason.PROOF_INVALID  # the circuit proof, checked against the commitments
    assert v.period == f"{FIRST}..{LAST}"
    assert str(bill.total - 1) in v.detail

    values = list(stored[1].values)
    values[8] += 1  # day 2, the import of interval 4 (the peak): 4,801 Wh
    damaged = [stored[0], dataclasses.replace(stored[1], values=tuple(values))]
    (v,) = check_cycle_bill(bill, tariff, damaged)
    assert v.reason is Reason.OPENING_STORE
    assert "restore" in v.detail

    other_batch = dataclasses.replace(bill, batch_hashes=(bill.batch_hashes[0], bytes(32)))
    (v,) = check_cycle_bill(other_batch, tariff, list(stored))
    assert v.reason is Reason.UNKNOWN_BATCH
    assert LAST in v.detail

    other_plan = dataclasses.replace(tariff, fixed_charge=tariff.fixed_charge + 1)
    assert [x.reason for x in check_cycle_bill(bill, other_plan, list(stored))] == [
        Reason.UNKNOWN_TARIFF
    ]

    (v,) = check_cycle_bill(bill, tariff, [stored[0], None])
    assert v.reason is Reason.OPENING_STORE
    assert LAST in v.detail


# --------------------------------------------------------------------------- the statement


def test_the_statement_shows_the_tiers_used(client: MeterClient) -> None:
    stored = _submit_days(client)
    tariff = _tiered()
    bill = client.prove_cycle_bill(FIRST, LAST, tariff=tariff)
    cycle = _detail(client, tariff, bill, stored)
    assert cycle.violations == ()
    statement = DetailedStatement(client.meter_id, (), (cycle,))
    assert statement.totals() == {"EUR": 12_936_000}
    text = statement_text(statement, detail=True)
    lines = text.splitlines()
    assert lines[0].startswith(f"{FIRST}..{LAST}")
    assert "12.936 EUR" in lines[0]
    assert "plan residential-tiered" in lines[0]

    def row(label: str) -> str:
        (found,) = [line for line in lines if line.strip().startswith(label)]
        return found

    assert row("fixed charge").endswith("9.00 EUR")
    assert "17.2 kWh" in row("time-of-use energy")
    assert row("tier 1 from 0 kWh").split()[-2:] == ["2.30", "EUR"]
    assert "10 kWh x 0.23 EUR/kWh" in row("tier 1 from 0 kWh")
    assert "5 kWh x 0.28 EUR/kWh" in row("tier 2 from 10 kWh")
    assert row("tier 2 from 10 kWh").endswith("1.40 EUR")
    assert "2.2 kWh x 0.38 EUR/kWh" in row("tier 3 from 15 kWh")
    assert row("tier 3 from 15 kWh").endswith("0.836 EUR")
    assert "demand" not in text  # the plan has no demand charge
    assert "7.5 kWh" in row("feed-in credit")
    assert row("feed-in credit").endswith("-0.60 EUR")
    assert row("total (local)").endswith("12.936 EUR")
    assert "3 tiers (inclining)" in text
    assert "check: the local breakdown matches the ledger's bill" in text
    assert lines[-1].split() == ["total", "12.936", "EUR"]

    doc = json.loads(json.dumps(statement_document(statement, detail=True)))
    assert doc["lines"] == []
    (jline,) = doc["cycle_lines"]
    assert (jline["first_period"], jline["last_period"], jline["plan"]) == (
        FIRST, LAST, "residential-tiered",
    )  # fmt: skip
    assert jline["bill_total"] == {"micro": 12_936_000, "amount": "12.936"}
    assert jline["matches_ledger"] is True
    tiers = jline["breakdown"]["tiers"]
    assert [(t["start_wh"], t["wh"], t["charge"]["micro"]) for t in tiers] == [
        (0, 10_000, 2_300_000), (10_000, 5_000, 1_400_000), (15_000, 2_200, 836_000),
    ]  # fmt: skip
    assert jline["breakdown"]["tier_charge"]["micro"] == 4_536_000
    assert jline["breakdown"]["import_wh"] == 17_200
    assert jline["breakdown"]["export_wh"] == 7_500
    assert doc["totals"] == [{"currency": "EUR", "micro": 12_936_000, "amount": "12.936"}]

    (csv_row,) = csv.DictReader(io.StringIO(statement_csv(statement, detail=True)))
    assert csv_row["period"] == f"{FIRST}..{LAST}"
    assert int(csv_row["tier_charge_micro"]) == 4_536_000
    assert int(csv_row["local_total_micro"]) == int(csv_row["bill_total_micro"]) == 12_936_000
    assert csv_row["check"] == "ok"


def test_the_statement_shows_the_demand(client: MeterClient) -> None:
    stored = _submit_days(client)
    tariff = _demand()
    bill = client.prove_cycle_bill(FIRST, LAST, tariff=tariff)
    cycle = _detail(client, tariff, bill, stored)
    statement = DetailedStatement(client.meter_id, (), (cycle,))
    text = statement_text(statement, detail=True)
    lines = text.splitlines()
    (demand,) = [line for line in lines if line.strip().startswith("demand (peak)")]
    assert "1.2 kW x 12.50 EUR/kW" in demand
    assert demand.endswith("15.00 EUR")
    (tou,) = [line for line in lines if line.strip().startswith("time-of-use energy")]
    assert tou.endswith("2.064 EUR")
    assert "tier" not in text
    assert "41.689 EUR" in lines[0]
    assert "business-demand (1 meter), EUR, 2 days x 6 x 240 min" in text
    assert "demand 12.50 EUR/kW" in text

    doc = statement_document(statement, detail=True)
    demand_doc = doc["cycle_lines"][0]["breakdown"]["demand"]
    assert demand_doc == {
        "peak_import_wh": 4_800,
        "peak_kw": "1.2",
        "charge_micro_per_kw": 12_500_000,
        "charge": {"micro": 15_000_000, "amount": "15.00"},
    }
    (csv_row,) = csv.DictReader(io.StringIO(statement_csv(statement, detail=True)))
    assert (csv_row["demand_charge_micro"], csv_row["peak_import_wh"]) == ("15000000", "4800")


def test_a_forged_cycle_total_is_a_violation_on_the_statement(client: MeterClient) -> None:
    stored = _submit_days(client)
    tariff = _demand()
    bill = dataclasses.replace(
        client.prove_cycle_bill(FIRST, LAST, tariff=tariff), total=41_689_001
    )
    cycle = _detail(client, tariff, bill, stored)
    statement = DetailedStatement(client.meter_id, (), (cycle,))
    assert [v.reason for v in statement.violations] == [Reason.PROOF_INVALID]
    assert "VIOLATION PROOF_INVALID" in statement_text(statement, detail=True)
    doc = statement_document(statement, detail=True)
    assert doc["cycle_lines"][0]["matches_ledger"] is False
    assert doc["violations"][0]["period"] == f"{FIRST}..{LAST}"
    (csv_row,) = csv.DictReader(io.StringIO(statement_csv(statement, detail=True)))
    assert csv_row["check"] == "PROOF_INVALID"


def test_a_plain_statement_line_of_a_cycle(client: MeterClient) -> None:
    _submit_days(client)
    tariff = _tiered()
    bill = client.prove_cycle_bill(FIRST, LAST, tariff=tariff)
    cycle = CycleDetailLine(CycleStatementLine(bill, _receipt(40, pinned=False), "EUR"),
                            tariff, None, None, ())  # fmt: skip
    statement = DetailedStatement(client.meter_id, (), (cycle,))
    text = statement_text(statement, detail=False)
    assert "inclusion only, log key not pinned" in text
    assert "tier 1" not in text
    assert len(text.splitlines()) == 2  # the line and the total
    doc = statement_document(statement, detail=False)
    assert "breakdown" not in doc["cycle_lines"][0]
    (row,) = csv.DictReader(io.StringIO(statement_csv(statement, detail=False)))
    assert (row["period"], row["bill_total"]) == (f"{FIRST}..{LAST}", "12.936")


def test_the_csv_gains_the_cycle_columns_only_with_a_cycle(client: MeterClient) -> None:
    empty = statement_csv(DetailedStatement(client.meter_id, (), ()), detail=True)
    assert "tier_charge_micro" not in empty  # a statement of days reads as before
    stored = _submit_days(client)
    tariff = _tiered()
    bill = client.prove_cycle_bill(FIRST, LAST, tariff=tariff)
    with_cycle = DetailedStatement(client.meter_id, (), (_detail(client, tariff, bill, stored),))
    header = statement_csv(with_cycle, detail=True).splitlines()[0].split(",")
    assert header[-4:] == ["check", "tier_charge_micro", "demand_charge_micro", "peak_import_wh"]
