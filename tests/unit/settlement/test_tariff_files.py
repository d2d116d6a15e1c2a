"""Tariff files (settlement/tariff_files.py): exact conversion or a refusal naming the line."""

from __future__ import annotations

import json

import pytest

from settlement.tariff_files import (
    CSV_HEADER,
    TariffFileError,
    money_from_text,
    money_to_text,
    parse_tariff_csv,
    parse_tariff_json,
    rate_from_text,
    rate_to_text,
)

DAY = "2026-11-21"


def _csv(rows: list[str], header: str = ",".join(CSV_HEADER)) -> str:
    return "\n".join([header, *rows]) + "\n"


def _hourly(price: str = "0.253", credit: str = "0.080") -> list[str]:
    return [f"{h:02d}:00,{price},{credit}" for h in range(24)]


def test_prices_per_kwh_convert_exactly_to_micro_per_wh() -> None:
    assert rate_from_text("0.253") == 253
    assert rate_from_text("1") == 1000
    assert rate_from_text("0.001") == 1
    assert rate_to_text(253) == "0.253"
    assert money_from_text("2.98") + money_from_text("2.98") == money_from_text("5.96")
    assert money_to_text(money_from_text("-0.35")) == "-0.350000"
    with pytest.raises(TariffFileError, match="finer than"):
        rate_from_text("0.2534")  # never rounded
    with pytest.raises(TariffFileError, match="negative"):
        rate_from_text("-0.1")
    with pytest.raises(TariffFileError, match="decimal"):
        rate_from_text("1" * 5000)  # bounded before converting
    with pytest.raises(TariffFileError, match="finite"):
        money_from_text("NaN")


def test_a_csv_day_of_hourly_prices() -> None:
    rates = parse_tariff_csv(_csv(_hourly()) + "\n\n", DAY)  # trailing blank lines ignored
    assert rates.interval_minutes == 60
    assert rates.import_price == (253,) * 24
    assert rates.export_credit == (80,) * 24
    tariff = rates.tariff(DAY, currency="EUR", fixed_charge=350_000)
    assert (tariff.period, tariff.fixed_charge, tariff.intervals) == (DAY, 350_000, 24)


def test_iso_timestamps_with_any_offset_are_read_in_utc() -> None:
    rows = [f"2026-11-21T{h + 1:02d}:00:00+01:00,0.2,0.1" for h in range(23)]
    rows.append("2026-11-22T00:00:00+01:00,0.2,0.1")
    assert parse_tariff_csv(_csv(rows), DAY).interval_minutes == 60


@pytest.mark.parametrize(
    ("rows", "line", "message"),
    [
        ([*_hourly()[:5], "05:00,0.25", *_hourly()[6:]], 7, "expected 3 columns"),
        ([*_hourly()[:3], "03:00,abc,0.1", *_hourly()[4:]], 5, "decimal number"),
        ([*_hourly()[:3], "02:00,0.2,0.1", *_hourly()[4:]], 5, "in order"),
        (_hourly()[:23], 2, "intervals of"),  # 23 rows cannot split a day
        (["00:00,0.2,0.1", "00:30,0.2,0.1", *_hourly()[2:]], 3, "starts at 00:30"),
        (["25:00,0.2,0.1"], 2, "HH:MM"),
        (["2026-11-22T00:00:00Z,0.2,0.1"], 2, "not on 2026-11-21"),
        (["2026-11-21T00:00:00,0.2,0.1"], 2, "UTC offset"),
    ],
)
def test_csv_errors_name_the_line(rows: list[str], line: int, message: str) -> None:
    with pytest.raises(TariffFileError, match=message) as info:
        parse_tariff_csv(_csv(rows), DAY)
    assert info.value.line == line
    assert str(info.value).startswith(f"line {line}:")


def test_a_wrong_header_is_shown() -> None:
    with pytest.raises(TariffFileError, match="found start,price,credit") as info:
        parse_tariff_csv(_csv(_hourly(), header="start,price,credit"), DAY)
    assert info.value.line == 1


def test_a_json_tariff() -> None:
    doc = {
        "currency": "EUR",
        "fixed_charge": "0.35",
        "interval_minutes": 360,
        "import_price_per_kwh": ["0.1", "0.2", "0.3", 0.25],
        "export_credit_per_kwh": [0.05, "0", "0", "0.08"],
    }
    rates = parse_tariff_json(json.dumps(doc))
    assert rates.import_price == (100, 200, 300, 250)
    assert rates.export_credit == (50, 0, 0, 80)
    assert (rates.currency, rates.fixed_charge) == ("EUR", 350_000)
    tariff = rates.tariff(DAY, currency="EUR", fixed_charge=350_000)
    assert tariff.intervals == 4
    short = dict(doc, import_price_per_kwh=["0.1"])
    with pytest.raises(TariffFileError, match="needs 4 rates"):
        parse_tariff_json(json.dumps(short)).tariff(DAY, currency="EUR", fixed_charge=0)
    with pytest.raises(TariffFileError, match="unknown field 'tax'"):
        parse_tariff_json(json.dumps(dict(doc, tax="0.2")))
    with pytest.raises(TariffFileError, match="no 'currency'"):
        parse_tariff_json(json.dumps({k: v for k, v in doc.items() if k != "currency"}))
    with pytest.raises(TariffFileError, match="not valid JSON"):
        parse_tariff_json("{")
