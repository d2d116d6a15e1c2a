"""Cycle tariff files (settlement/tariff_files.py): plans, cycles, tiers and demand charges,
converted exactly or refused naming the field; the two examples of November 2026."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from settlement.records import CycleTariff, Tier
from settlement.tariff_files import (
    CYCLE_FIELDS,
    CycleTariffRates,
    TariffFileError,
    cycle_tariff_from_json,
    energy_from_text,
    energy_to_text,
    month_cycle,
    parse_cycle_tariff_json,
    parse_tariff_json,
)

EXAMPLES = Path(__file__).parents[3] / "examples"


def _doc(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "plan": "residential-tiered",
        "month": "2026-11",
        "currency": "EUR",
        "fixed_charge": "9",
        "interval_minutes": 360,
        "import_price_per_kwh": ["0"] * 4,
        "export_credit_per_kwh": ["0.08"] * 4,
        "tiers": [
            {"from_kwh": "0", "price_per_kwh": "0.23"},
            {"from_kwh": "200", "price_per_kwh": "0.28"},
            {"from_kwh": 400.5, "price_per_kwh": 0.38},
        ],
    }
    doc.update(over)
    return {k: v for k, v in doc.items() if v is not None}


def _parse(**over: Any) -> CycleTariffRates:
    return parse_cycle_tariff_json(json.dumps(_doc(**over)))


def test_energies_convert_exactly_to_wh() -> None:
    assert energy_from_text("200") == 200_000
    assert energy_from_text("0.001") == 1
    assert energy_from_text(" 12.5 ") == 12_500
    assert energy_to_text(400_500) == "400.500"
    with pytest.raises(TariffFileError, match="finer than one Wh"):
        energy_from_text("0.0005", "tiers[1].from_kwh")
    with pytest.raises(TariffFileError, match="must not be negative"):
        energy_from_text("-1")


def test_a_tiered_month() -> None:
    rates = _parse()
    assert (rates.plan, rates.meters) == ("residential-tiered", ())
    assert (rates.first_period, rates.last_period) == ("2026-11-01", "2026-11-30")
    assert rates.tiers == (Tier(0, 230), Tier(200_000, 280), Tier(400_500, 380))
    assert (rates.currency, rates.fixed_charge, rates.demand_charge) == ("EUR", 9_000_000, 0)
    tariff = rates.cycle_tariff(currency="EUR", fixed_charge=9_000_000)
    assert isinstance(tariff, CycleTariff)
    assert tariff.tier_kind == "inclining"
    assert len(tariff.periods) == 30
    assert tariff.export_credit == (80,) * 4


def test_cycles_months_and_meters() -> None:
    rates = _parse(month=None, cycle={"first": "2026-11-15", "last": "2026-12-14"})
    assert (rates.first_period, rates.last_period) == ("2026-11-15", "2026-12-14")
    assert month_cycle("2028-02") == ("2028-02-01", "2028-02-29")
    assert month_cycle("2026-02") == ("2026-02-01", "2026-02-28")
    assert month_cycle("2026-12") == ("2026-12-01", "2026-12-31")
    rates = _parse(meters=["m-9", "m-10", "m-1"])
    assert rates.meters == ("m-1", "m-10", "m-9")  # sorted into the record's order
    assert rates.cycle_tariff(currency="EUR", fixed_charge=0).lists("m-10")


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"month": None}, "needs its billing cycle"),
        ({"cycle": {"first": "2026-11-01", "last": "2026-11-30"}}, "one of the two"),
        ({"month": "2026-13"}, "not a calendar month"),
        ({"month": "2026-1"}, "YYYY-MM"),
        ({"month": None, "cycle": ["2026-11-01"]}, "cycle must be an object"),
        ({"month": None, "cycle": {"first": "2026-11-01"}}, "no 'last'"),
        ({"month": None, "cycle": {"first": "2026-11-01", "last": "x"}}, "cycle.last"),
        (
            {"month": None, "cycle": {"first": "2026-11-01", "last": "2026-11-02", "x": 1}},
            "unknown field cycle.'x'",
        ),
        ({"plan": None}, "no 'plan'"),
        ({"plan": 5}, "plan must be a string"),
        ({"meters": "m-1"}, "meters must be a list"),
        ({"meters": ["m-1", 2]}, "meters must be a list"),
        ({"meters": ["m-1", "m-2", "m-1"]}, "lists 'm-1' twice"),
        ({"tiers": {"from_kwh": "0"}}, "tiers must be a list"),
        ({"tiers": ["0"]}, r"tiers\[0\] must be an object"),
        ({"tiers": [{"from_kwh": "0"}]}, r"tiers\[0\] has no 'price_per_kwh'"),
        (
            {"tiers": [{"from_kwh": "0", "price_per_kwh": "0.1", "to_kwh": "5"}]},
            r"unknown field tiers\[0\].'to_kwh'",
        ),
        (
            {
                "tiers": [
                    {"from_kwh": "0", "price_per_kwh": "0.1"},
                    {"from_kwh": "1.0001", "price_per_kwh": "0.2"},
                ]
            },
            r"tiers\[1\].from_kwh 1.0001 is finer than one Wh",
        ),
        (
            {"tiers": [{"from_kwh": "0", "price_per_kwh": "0.1234"}]},
            r"tiers\[0\].price_per_kwh 0.1234 is finer than one 0.001 per kWh",
        ),
        ({"demand_charge_per_kw": "12.5000001"}, "demand_charge_per_kw .* finer than one"),
        ({"demand_charge_per_kw": "-1"}, "demand_charge_per_kw must not be negative"),
        ({"tax": "0.2"}, "unknown field 'tax'"),
        ({"interval_minutes": "15.5"}, "whole number of minutes"),
        ({"currency": 978}, "currency must be a string"),
        ({"month": 202611}, "YYYY-MM"),
    ],
)
def test_cycle_file_errors_name_the_field(over: dict[str, Any], message: str) -> None:
    with pytest.raises(TariffFileError, match=message):
        _parse(**over)


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"tiers": [{"from_kwh": "1", "price_per_kwh": "0.1"}]}, "first tier must start at 0"),
        (
            {
                "tiers": [
                    {"from_kwh": "0", "price_per_kwh": "0.1"},
                    {"from_kwh": "5", "price_per_kwh": "0.3"},
                    {"from_kwh": "9", "price_per_kwh": "0.2"},
                ]
            },
            "monotone",
        ),
        ({"demand_charge_per_kw": "0.0001"}, "multiple of 6000 micro-currency per kW"),
        ({"import_price_per_kwh": ["0.1"] * 3}, "needs 4 rates"),
        ({"meters": ["bad id"]}, "meter id"),
        ({"month": None, "cycle": {"first": "2026-11-01", "last": "2026-12-02"}}, "at most 31"),
        ({"plan": "a plan"}, "plan must be"),
    ],
)
def test_record_errors_become_file_errors(over: dict[str, Any], message: str) -> None:
    with pytest.raises(TariffFileError, match=message):
        cycle_tariff_from_json(json.dumps(_doc(**over)))


def test_currency_and_fixed_charge_from_the_file_or_beside_it() -> None:
    bare = json.dumps(_doc(currency=None, fixed_charge=None))
    tariff = cycle_tariff_from_json(bare, currency="CNY", fixed_charge=1_500_000)
    assert (tariff.currency, tariff.fixed_charge) == ("CNY", 1_500_000)
    assert cycle_tariff_from_json(bare, currency="CNY").fixed_charge == 0
    with pytest.raises(TariffFileError, match="needs a currency"):
        cycle_tariff_from_json(bare)
    full = json.dumps(_doc())
    assert cycle_tariff_from_json(full).currency == "EUR"
    with pytest.raises(TariffFileError, match="gives the currency"):
        cycle_tariff_from_json(full, currency="EUR")
    with pytest.raises(TariffFileError, match="gives the fixed charge"):
        cycle_tariff_from_json(full, fixed_charge=0)
    with pytest.raises(TariffFileError, match="ISO 4217"):
        cycle_tariff_from_json(bare, currency="yuan")


def test_a_days_tariff_file_refuses_the_cycle_fields() -> None:
    day = {
        "currency": "EUR",
        "fixed_charge": "0.35",
        "interval_minutes": 720,
        "import_price_per_kwh": ["0.1", "0.2"],
        "export_credit_per_kwh": ["0", "0"],
    }
    assert parse_tariff_json(json.dumps(day)).import_price == (100, 200)
    for name in sorted(CYCLE_FIELDS):
        with pytest.raises(TariffFileError, match=f"field '{name}' belongs to a cycle tariff"):
            parse_tariff_json(json.dumps(dict(day, **{name: "x"})))
    with pytest.raises(TariffFileError, match="not valid JSON"):
        parse_cycle_tariff_json("{")
    with pytest.raises(TariffFileError, match="must be an object"):
        parse_cycle_tariff_json("[]")


def test_the_tiered_example() -> None:
    tariff = cycle_tariff_from_json((EXAMPLES / "tariff-tiered-2026-11.json").read_text())
    assert (tariff.plan, tariff.meters, tariff.is_default) == ("residential-tiered", (), True)
    assert (tariff.first_period, tariff.last_period) == ("2026-11-01", "2026-11-30")
    assert tariff.tier_kind == "inclining"
    assert [start for start, _ in tariff.tiers] == [0, 200_000, 400_000]
    assert tariff.import_price == (0,) * 24  # a purely tiered plan
    assert tariff.demand_charge == 0
    # 450 kWh in the month: 200 at 0.230, 200 at 0.280, 50 at 0.380 = 121 currency units
    day = [625] * 24  # 15 kWh a day
    b = tariff.bill_breakdown([day] * 30, [[0] * 24] * 30)
    assert b.total_import == 450_000
    assert b.tier_charge == 121_000_000
    assert b.total == tariff.fixed_charge + 121_000_000


def test_the_demand_example() -> None:
    tariff = cycle_tariff_from_json((EXAMPLES / "tariff-demand-2026-11.json").read_text())
    assert tariff.plan == "business-demand"
    assert tariff.meters
    assert (tariff.first_period, tariff.last_period) == ("2026-11-01", "2026-11-30")
    assert tariff.tiers == ()
    assert tariff.demand_charge == 12_500_000  # 12.50 per kW
    assert tariff.interval_minutes == 60
    assert tariff.demand_rate_per_wh == 12_500  # a 60-minute Wh is 1/1000 kW
    assert len(set(tariff.import_price)) > 1  # time-of-use prices
