"""Exact amounts for people: micro-currency and watt-hours as decimal text, never rounded.

Every amount zkgrid handles is an integer: money in micro-currency units (a bill,
a fixed charge, a per-Wh rate), energy in Wh. Showing one is integer arithmetic
(``divmod``), never ``float`` and never a rounding: a line of 2.975 EUR is shown as
``2.975 EUR``, so two such lines and their total (``5.95 EUR``) add up on the page,
where rounding each line to cents would print 2.98 + 2.98 = 5.95.

No heavy imports: the command line uses this at start-up.
"""

from __future__ import annotations

__all__ = ["MICRO", "format_kwh", "format_money", "format_rate_per_kwh", "micro_to_decimal_text"]

#: Micro-currency units per currency unit.
MICRO = 1_000_000


def _decimal_text(value: int, scale: int, *, min_places: int) -> str:
    """``value / 10**scale`` exactly, with at least ``min_places`` decimals (trailing zeros
    beyond those dropped)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("an exact amount must be an int")
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), 10**scale)
    digits = f"{frac:0{scale}d}".rstrip("0") if scale else ""
    digits = digits.ljust(min_places, "0")
    return f"{sign}{whole}.{digits}" if digits else f"{sign}{whole}"


def micro_to_decimal_text(micro: int) -> str:
    """Micro-currency as exact units with at least two decimals: ``2975000`` -> ``2.975``."""
    return _decimal_text(micro, 6, min_places=2)


def format_money(micro: int, currency: str) -> str:
    """Micro-currency as exact units and the currency, e.g. ``-1.23 EUR``, ``0.000125 EUR``."""
    return f"{micro_to_decimal_text(micro)} {currency}"


def format_kwh(wh: int) -> str:
    """Watt-hours as exact kilowatt-hours, e.g. ``12345`` -> ``12.345 kWh``."""
    return f"{_decimal_text(wh, 3, min_places=0)} kWh"


def format_rate_per_kwh(micro_per_wh: int, currency: str) -> str:
    """A tariff rate (micro-currency per Wh) per kWh: ``250`` -> ``0.25 EUR/kWh``."""
    return f"{micro_to_decimal_text(micro_per_wh * 1000)} {currency}/kWh"
