"""A period's tariff as a person writes it: a CSV or JSON file in currency per kWh.

The ledger's :class:`~settlement.records.Tariff` holds integers: rates in
micro-currency per Wh and the fixed charge in micro-currency. People write prices
in currency per kWh (``0.253`` EUR/kWh) and charges in currency (``0.35`` EUR).
The conversion is exact or refused: 1 currency/kWh = 1,000 micro-currency/Wh, so a
price takes at most three decimals (``0.2534`` is refused, never rounded), and a
fixed charge at most six.

**CSV** (``--currency`` and ``--fixed-charge`` given beside it)::

    interval_start,import_price_per_kwh,export_credit_per_kwh
    00:00,0.253,0.080
    00:15,0.253,0.080
    ...

one row per interval of the UTC day, in order; ``interval_start`` is ``HH:MM``
(UTC) or a full ISO 8601 timestamp on the period's day (``2026-12-01T00:15:00Z``);
the interval length is read from the rows (every row one length apart, a
divisor of the day). Trailing blank lines are ignored; errors name the line.

**JSON**::

    {"currency": "EUR", "fixed_charge": "0.35", "interval_minutes": 60,
     "import_price_per_kwh": ["0.25", ...], "export_credit_per_kwh": ["0.08", ...]}

numbers as strings or JSON numbers (a JSON number is read from its text, so
``0.1`` is exactly 0.1).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from settlement.periods import parse_period
from settlement.records import MINUTES_PER_DAY, RecordFormatError, Tariff
from zkgrid.errors import InvalidArgumentError, Reason

__all__ = [
    "CSV_HEADER",
    "MAX_TARIFF_FILE_BYTES",
    "TariffFileError",
    "TariffRates",
    "money_from_text",
    "money_to_text",
    "parse_tariff_csv",
    "parse_tariff_json",
    "rate_from_text",
    "rate_to_text",
]

CSV_HEADER = ("interval_start", "import_price_per_kwh", "export_credit_per_kwh")
#: Largest tariff file read (a day of 1-minute rows is about 40 KB).
MAX_TARIFF_FILE_BYTES = 1 << 20
#: Longest number text read (long before CPython's 4,300-digit limit).
_MAX_NUMBER_CHARS = 32

_MICRO_PER_UNIT = Decimal(1_000_000)
_MICRO_PER_WH_PER_KWH_UNIT = Decimal(1_000)  # 1 unit/kWh = 1e6 micro / 1e3 Wh


class TariffFileError(InvalidArgumentError):
    """The tariff file is not a complete, exact tariff; ``line`` is the 1-based CSV line
    (0 when not tied to a line)."""

    reason = Reason.INVALID_ARGUMENT

    def __init__(self, message: str, *, line: int = 0) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line


@dataclass(frozen=True)
class TariffRates:
    """What a tariff file holds, in the ledger's integer units."""

    interval_minutes: int
    import_price: tuple[int, ...]
    export_credit: tuple[int, ...]
    currency: str | None = None
    fixed_charge: int | None = None

    def tariff(self, period: str, *, currency: str, fixed_charge: int) -> Tariff:
        """The ledger record for ``period``; :class:`TariffFileError` if it is not valid."""
        try:
            return Tariff(
                period=period,
                interval_minutes=self.interval_minutes,
                currency=currency,
                fixed_charge=fixed_charge,
                import_price=self.import_price,
                export_credit=self.export_credit,
            )
        except RecordFormatError as exc:
            raise TariffFileError(str(exc)) from None


def _decimal(text: object, what: str, line: int) -> Decimal:
    raw = str(text).strip()
    if not raw or len(raw) > _MAX_NUMBER_CHARS:
        raise TariffFileError(f"{what} must be a decimal number, not {raw[:20]!r}", line=line)
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise TariffFileError(f"{what} must be a decimal number, not {raw!r}", line=line) from None
    if not value.is_finite():
        raise TariffFileError(f"{what} must be a finite number", line=line)
    return value


def _exact(value: Decimal, scale: Decimal, what: str, line: int, unit: str) -> int:
    scaled = value * scale
    if scaled != scaled.to_integral_value():
        raise TariffFileError(f"{what} {value} is finer than one {unit}", line=line)
    return int(scaled)


def rate_from_text(text: object, what: str = "price", line: int = 0) -> int:
    """A price in currency per kWh -> micro-currency per Wh (exact, >= 0)."""
    value = _decimal(text, what, line)
    if value < 0:
        raise TariffFileError(f"{what} must not be negative", line=line)
    return _exact(value, _MICRO_PER_WH_PER_KWH_UNIT, what, line, "0.001 per kWh")


def rate_to_text(rate: int) -> str:
    """Micro-currency per Wh -> currency per kWh, exactly (three decimals)."""
    return f"{Decimal(rate) / _MICRO_PER_WH_PER_KWH_UNIT:.3f}"


def money_from_text(text: object, what: str = "fixed charge", line: int = 0) -> int:
    """An amount in currency -> micro-currency (exact; may be negative)."""
    return _exact(_decimal(text, what, line), _MICRO_PER_UNIT, what, line, "millionth")


def money_to_text(micro: int) -> str:
    """Micro-currency -> currency, exactly (six decimals)."""
    return f"{Decimal(micro) / _MICRO_PER_UNIT:.6f}"


def _interval_start(text: str, period: str, line: int) -> datetime:
    day = parse_period(period)
    raw = text.strip()
    try:
        if len(raw) == 5 and raw[2] == ":":
            hours, minutes = int(raw[:2]), int(raw[3:])
            if not (0 <= hours < 24 and 0 <= minutes < 60):
                raise ValueError(raw)
            return datetime(day.year, day.month, day.day, hours, minutes, tzinfo=UTC)
        ts = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise TariffFileError(
            f"interval_start must be HH:MM (UTC) or an ISO 8601 timestamp, not {raw[:40]!r}",
            line=line,
        ) from None
    if ts.tzinfo is None:
        raise TariffFileError("interval_start needs an explicit UTC offset", line=line)
    ts = ts.astimezone(UTC)
    if ts.date() != day:
        raise TariffFileError(f"interval_start {raw} is not on {period} (UTC)", line=line)
    return ts


def parse_tariff_csv(text: str, period: str) -> TariffRates:
    """Parse a tariff CSV for ``period`` (module docstring); errors name the line."""
    rows = list(csv.reader(io.StringIO(text, newline="")))
    while rows and not any(cell.strip() for cell in rows[-1]):
        rows.pop()  # trailing blank lines
    if not rows:
        raise TariffFileError("the file is empty")
    header = tuple(cell.strip() for cell in rows[0])
    if header != CSV_HEADER:
        raise TariffFileError(
            f"the header must be {','.join(CSV_HEADER)}; found {','.join(header)[:120]}", line=1
        )
    starts: list[datetime] = []
    imports: list[int] = []
    exports: list[int] = []
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(CSV_HEADER):
            raise TariffFileError(
                f"expected {len(CSV_HEADER)} columns, found {len(row)}", line=number
            )
        start = _interval_start(row[0], period, number)
        if starts and start <= starts[-1]:
            raise TariffFileError("intervals must be in order, without repeats", line=number)
        starts.append(start)
        imports.append(rate_from_text(row[1], "import_price_per_kwh", number))
        exports.append(rate_from_text(row[2], "export_credit_per_kwh", number))
    if not starts:
        raise TariffFileError("the file has a header but no intervals")
    minutes = MINUTES_PER_DAY // len(starts)
    midnight = starts[0].replace(hour=0, minute=0)
    for number, start in enumerate(starts, start=2):
        expected = midnight + timedelta(minutes=(number - 2) * minutes)
        if MINUTES_PER_DAY % len(starts) or start != expected:
            raise TariffFileError(
                f"expected {len(starts)} intervals of {MINUTES_PER_DAY / len(starts):g} minutes"
                f" from 00:00 UTC; this row starts at {start:%H:%M}",
                line=number,
            )
    return TariffRates(minutes, tuple(imports), tuple(exports))


def _field(doc: dict[str, Any], name: str) -> Any:
    if name not in doc:
        raise TariffFileError(f"the JSON tariff has no {name!r}")
    return doc[name]


def parse_tariff_json(text: str) -> TariffRates:
    """Parse a JSON tariff (module docstring)."""
    try:
        doc = json.loads(text, parse_float=str, parse_int=str, parse_constant=str)
    except (ValueError, RecursionError) as exc:
        raise TariffFileError(f"not valid JSON ({str(exc)[:80]})") from None
    if not isinstance(doc, dict):
        raise TariffFileError("the JSON tariff must be an object")
    known = {
        "currency",
        "fixed_charge",
        "interval_minutes",
        "import_price_per_kwh",
        "export_credit_per_kwh",
    }
    unknown = sorted(set(doc) - known)
    if unknown:
        raise TariffFileError(f"unknown field {unknown[0]!r} (known: {', '.join(sorted(known))})")
    currency = _field(doc, "currency")
    if not isinstance(currency, str):
        raise TariffFileError("currency must be a string such as \"EUR\"")
    minutes_text = str(_field(doc, "interval_minutes"))
    if not minutes_text.isdigit() or len(minutes_text) > 4:
        raise TariffFileError("interval_minutes must be a whole number of minutes")
    rates: dict[str, tuple[int, ...]] = {}
    for name in ("import_price_per_kwh", "export_credit_per_kwh"):
        values = _field(doc, name)
        if not isinstance(values, list):
            raise TariffFileError(f"{name} must be a list, one price per interval")
        rates[name] = tuple(rate_from_text(v, f"{name}[{i}]") for i, v in enumerate(values))
    return TariffRates(
        int(minutes_text),
        rates["import_price_per_kwh"],
        rates["export_credit_per_kwh"],
        currency,
        money_from_text(_field(doc, "fixed_charge")),
    )
