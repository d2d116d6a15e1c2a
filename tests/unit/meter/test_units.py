"""meter.units: amounts shown exactly, so the lines of a statement add up on the page."""

from __future__ import annotations

import pytest

from meter.cli import format_money as cli_format_money
from meter.units import format_kwh, format_money, format_rate_per_kwh, micro_to_decimal_text


@pytest.mark.parametrize(
    ("micro", "text"),
    [
        (0, "0.00"),
        (1, "0.000001"),
        (10_000, "0.01"),
        (2_980_000, "2.98"),
        (2_975_000, "2.975"),
        (5_950_000, "5.95"),
        (5_960_000, "5.96"),
        (-1_230_000, "-1.23"),
        (-500, "-0.0005"),
        (450_000, "0.45"),
        (123_456_789_012, "123456.789012"),
        (-(2**63), "-9223372036854.775808"),
    ],
)
def test_micro_amounts_are_shown_exactly(micro: int, text: str) -> None:
    assert micro_to_decimal_text(micro) == text


def test_two_lines_of_2_98_make_5_96() -> None:
    line = 2_980_000
    total = line + line
    assert total == 5_960_000
    assert format_money(line, "EUR") == "2.98 EUR"
    assert format_money(total, "EUR") == "5.96 EUR"


def test_lines_and_total_agree_where_cents_rounding_would_not() -> None:
    # Rounded to cents (half-even) each 2.975 line would print 2.98 and the exact total 5.95:
    # "2.98 + 2.98 = 5.95". Exact text keeps the page consistent.
    line = 2_975_000
    shown = [format_money(line, "EUR"), format_money(line, "EUR")]
    assert shown == ["2.975 EUR", "2.975 EUR"]
    assert format_money(2 * line, "EUR") == "5.95 EUR"
    from decimal import Decimal

    assert sum(Decimal(s.split()[0]) for s in shown) == Decimal(format_money(2 * line, "EUR")[:-4])


def test_the_command_line_uses_the_exact_text() -> None:
    assert cli_format_money is format_money
    assert cli_format_money(2_975_000, "EUR") == "2.975 EUR"


def test_floats_are_refused() -> None:
    with pytest.raises(TypeError):
        micro_to_decimal_text(2.98)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        format_kwh(True)


@pytest.mark.parametrize(
    ("wh", "text"), [(0, "0 kWh"), (12_345, "12.345 kWh"), (12_000, "12 kWh"), (5, "0.005 kWh")]
)
def test_energy_in_kwh(wh: int, text: str) -> None:
    assert format_kwh(wh) == text


def test_rates_per_kwh() -> None:
    assert format_rate_per_kwh(260, "EUR") == "0.26 EUR/kWh"
    assert format_rate_per_kwh(1, "EUR") == "0.001 EUR/kWh"
    assert format_rate_per_kwh(0, "EUR") == "0.00 EUR/kWh"
