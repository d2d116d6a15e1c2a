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

**Cycle tariffs** (record version 2, :class:`~settlement.records.CycleTariff`: a plan's
prices over a billing cycle of several days) are JSON files with the fields of a day's
JSON tariff (``currency`` and ``fixed_charge`` optional: they may come from the command
line instead; the fixed charge is per cycle) and::

    {"plan": "residential-tiered",
     "meters": ["meter-7", "meter-8"],
     "month": "2026-11",
     "tiers": [{"from_kwh": "0", "price_per_kwh": "0.250"},
               {"from_kwh": "200", "price_per_kwh": "0.300"}],
     "demand_charge_per_kw": "12.50"}

``plan`` (required) names the plan; ``meters`` (optional, any order, no repeats) the
meters it applies to, none for the default plan; the cycle is ``"month": "YYYY-MM"`` or
``"cycle": {"first": "YYYY-MM-DD", "last": "YYYY-MM-DD"}`` (one of the two, 1..31 days);
``tiers`` (optional) the blocks of the cycle's total import, from 0 kWh on, their prices
in currency per kWh added to the time-of-use price; ``demand_charge_per_kw`` (optional)
a price per kW of the cycle's highest interval import. Energies convert exactly to Wh
(``from_kwh`` takes at most three decimals), prices to micro-currency per Wh, the demand
charge to micro-currency per kW; anything inexact is refused, naming the field. A day's
tariff file with one of these fields is refused (it would drop them).
"""

from __future__ import annotations

import calendar
import csv
import io
import itertools
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, TypeGuard

from settlement.periods import parse_period
from settlement.records import (
    MINUTES_PER_DAY,
    CycleTariff,
    RecordFormatError,
    Tariff,
    Tier,
    validate_period,
)
from zkgrid.errors import InvalidArgumentError, Reason

__all__ = [
    "CSV_HEADER",
    "CYCLE_FIELDS",
    "MAX_TARIFF_FILE_BYTES",
    "CycleTariffRates",
    "TariffFileError",
    "TariffRates",
    "cycle_tariff_from_json",
    "energy_from_text",
    "energy_to_text",
    "money_from_text",
    "money_to_text",
    "month_cycle",
    "parse_cycle_tariff_json",
    "parse_tariff_csv",
    "parse_tariff_json",
    "rate_from_text",
    "rate_to_text",
]

CSV_HEADER = ("interval_start", "import_price_per_kwh", "export_credit_per_kwh")
#: The fields of a cycle tariff file that a day's tariff file does not have.
CYCLE_FIELDS = frozenset({"plan", "meters", "month", "cycle", "tiers", "demand_charge_per_kw"})
#: Largest tariff file read (a day of 1-minute rows is about 40 KB).
MAX_TARIFF_FILE_BYTES = 1 << 20
#: Longest number text read (long before CPython's 4,300-digit limit).
_MAX_NUMBER_CHARS = 32

_MICRO_PER_UNIT = Decimal(1_000_000)
_MICRO_PER_WH_PER_KWH_UNIT = Decimal(1_000)  # 1 unit/kWh = 1e6 micro / 1e3 Wh
_WH_PER_KWH = Decimal(1_000)
_MONTH = re.compile(r"[0-9]{4}-[0-9]{2}", re.ASCII)
_DAY_FIELDS = frozenset(
    {
        "currency",
        "fixed_charge",
        "interval_minutes",
        "import_price_per_kwh",
        "export_credit_per_kwh",
    }
)


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


def energy_from_text(text: object, what: str = "energy", line: int = 0) -> int:
    """An energy in kWh -> Wh (exact, >= 0)."""
    value = _decimal(text, what, line)
    if value < 0:
        raise TariffFileError(f"{what} must not be negative", line=line)
    return _exact(value, _WH_PER_KWH, what, line, "Wh")


def energy_to_text(wh: int) -> str:
    """Wh -> kWh, exactly (three decimals)."""
    return f"{Decimal(wh) / _WH_PER_KWH:.3f}"


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
    doc = _load_json_object(text, "tariff")
    cycle = sorted(set(doc) & CYCLE_FIELDS)
    if cycle:
        raise TariffFileError(
            f"field {cycle[0]!r} belongs to a cycle tariff (a plan over a billing cycle of"
            " several days); a day's tariff has none"
        )
    _known_fields(doc, _DAY_FIELDS)
    currency = _currency(_field(doc, "currency"))
    minutes, imports, exports = _day_rates(doc)
    return TariffRates(
        minutes, imports, exports, currency, money_from_text(_field(doc, "fixed_charge"))
    )


class _JsonNumber(str):
    """A JSON number, kept as its text (exact); not accepted where a string is needed."""

    __slots__ = ()


def _load_json_object(text: str, what: str) -> dict[str, Any]:
    try:
        doc = json.loads(
            text, parse_float=_JsonNumber, parse_int=_JsonNumber, parse_constant=_JsonNumber
        )
    except (ValueError, RecursionError) as exc:
        raise TariffFileError(f"not valid JSON ({str(exc)[:80]})") from None
    if not isinstance(doc, dict):
        raise TariffFileError(f"the JSON {what} must be an object")
    return doc


def _known_fields(doc: dict[str, Any], known: frozenset[str], where: str = "") -> None:
    unknown = sorted(set(doc) - known)
    if unknown:
        raise TariffFileError(
            f"unknown field {where}{unknown[0]!r} (known: {', '.join(sorted(known))})"
        )


def _is_text(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and not isinstance(value, _JsonNumber)


def _currency(value: object) -> str:
    if not _is_text(value):
        raise TariffFileError("currency must be a string such as \"EUR\"")
    return value


def _day_rates(doc: dict[str, Any]) -> tuple[int, tuple[int, ...], tuple[int, ...]]:
    """interval_minutes and the two lists of per-interval prices of a JSON tariff."""
    minutes_text = str(_field(doc, "interval_minutes"))
    if not minutes_text.isdigit() or len(minutes_text) > 4:
        raise TariffFileError("interval_minutes must be a whole number of minutes")
    rates: dict[str, tuple[int, ...]] = {}
    for name in ("import_price_per_kwh", "export_credit_per_kwh"):
        values = _field(doc, name)
        if not isinstance(values, list):
            raise TariffFileError(f"{name} must be a list, one price per interval")
        rates[name] = tuple(rate_from_text(v, f"{name}[{i}]") for i, v in enumerate(values))
    return int(minutes_text), rates["import_price_per_kwh"], rates["export_credit_per_kwh"]


# --------------------------------------------------------------------------- cycle tariffs


@dataclass(frozen=True)
class CycleTariffRates:
    """What a cycle tariff file holds, in the ledger's integer units (Wh, micro-currency per
    Wh, micro-currency per kW); ``currency`` and ``fixed_charge`` when the file gives them."""

    plan: str
    meters: tuple[str, ...]
    first_period: str
    last_period: str
    interval_minutes: int
    import_price: tuple[int, ...]
    export_credit: tuple[int, ...]
    tiers: tuple[Tier, ...] = ()
    demand_charge: int = 0
    currency: str | None = None
    fixed_charge: int | None = None

    def cycle_tariff(self, *, currency: str, fixed_charge: int) -> CycleTariff:
        """The ledger record; :class:`TariffFileError` if it is not valid."""
        try:
            return CycleTariff(
                plan=self.plan,
                meters=self.meters,
                first_period=self.first_period,
                last_period=self.last_period,
                interval_minutes=self.interval_minutes,
                currency=currency,
                fixed_charge=fixed_charge,
                import_price=self.import_price,
                export_credit=self.export_credit,
                tiers=self.tiers,
                demand_charge=self.demand_charge,
            )
        except RecordFormatError as exc:
            raise TariffFileError(str(exc)) from None


def month_cycle(month: object) -> tuple[str, str]:
    """The first and last period of a calendar month written ``YYYY-MM``."""
    if not _is_text(month) or _MONTH.fullmatch(month) is None:
        raise TariffFileError("month must be written YYYY-MM (e.g. \"2026-11\")")
    year, number = int(month[:4]), int(month[5:])
    if year < 1 or not 1 <= number <= 12:
        raise TariffFileError(f"month {month} is not a calendar month")
    days = calendar.monthrange(year, number)[1]
    return f"{month}-01", f"{month}-{days:02d}"


def _period_field(value: object, what: str) -> str:
    try:
        return validate_period(value)
    except RecordFormatError:
        raise TariffFileError(f"{what} must be a date written YYYY-MM-DD") from None


def _cycle(doc: dict[str, Any]) -> tuple[str, str]:
    if ("month" in doc) == ("cycle" in doc):
        raise TariffFileError(
            "a cycle tariff needs its billing cycle: \"month\": \"YYYY-MM\" or \"cycle\":"
            " {\"first\": \"YYYY-MM-DD\", \"last\": \"YYYY-MM-DD\"} (one of the two)"
        )
    if "month" in doc:
        return month_cycle(doc["month"])
    cycle = doc["cycle"]
    if not isinstance(cycle, dict):
        raise TariffFileError("cycle must be an object {\"first\": ..., \"last\": ...}")
    _known_fields(cycle, frozenset({"first", "last"}), "cycle.")
    for name in ("first", "last"):
        if name not in cycle:
            raise TariffFileError(f"cycle has no {name!r}")
    return _period_field(cycle["first"], "cycle.first"), _period_field(cycle["last"], "cycle.last")


def _meters(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(_is_text(m) for m in value):
        raise TariffFileError("meters must be a list of meter ids (strings)")
    ordered = sorted(value)
    for a, b in itertools.pairwise(ordered):
        if a == b:
            raise TariffFileError(f"meters lists {a[:64]!r} twice")
    return tuple(ordered)


def _tiers(value: object) -> tuple[Tier, ...]:
    if not isinstance(value, list):
        raise TariffFileError("tiers must be a list of {\"from_kwh\", \"price_per_kwh\"} objects")
    tiers = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise TariffFileError(f"tiers[{i}] must be an object {{from_kwh, price_per_kwh}}")
        _known_fields(item, frozenset({"from_kwh", "price_per_kwh"}), f"tiers[{i}].")
        for name in ("from_kwh", "price_per_kwh"):
            if name not in item:
                raise TariffFileError(f"tiers[{i}] has no {name!r}")
        tiers.append(
            Tier(
                energy_from_text(item["from_kwh"], f"tiers[{i}].from_kwh"),
                rate_from_text(item["price_per_kwh"], f"tiers[{i}].price_per_kwh"),
            )
        )
    return tuple(tiers)


def parse_cycle_tariff_json(text: str) -> CycleTariffRates:
    """Parse a JSON cycle tariff (module docstring)."""
    doc = _load_json_object(text, "cycle tariff")
    _known_fields(doc, _DAY_FIELDS | CYCLE_FIELDS)
    plan = _field(doc, "plan")
    if not _is_text(plan):
        raise TariffFileError("plan must be a string such as \"residential-tiered\"")
    first, last = _cycle(doc)
    minutes, imports, exports = _day_rates(doc)
    demand = 0
    if "demand_charge_per_kw" in doc:
        demand = money_from_text(doc["demand_charge_per_kw"], "demand_charge_per_kw")
        if demand < 0:
            raise TariffFileError("demand_charge_per_kw must not be negative")
    return CycleTariffRates(
        plan=plan,
        meters=_meters(doc.get("meters", [])),
        first_period=first,
        last_period=last,
        interval_minutes=minutes,
        import_price=imports,
        export_credit=exports,
        tiers=_tiers(doc.get("tiers", [])),
        demand_charge=demand,
        currency=_currency(doc["currency"]) if "currency" in doc else None,
        fixed_charge=money_from_text(doc["fixed_charge"]) if "fixed_charge" in doc else None,
    )


def cycle_tariff_from_json(
    text: str, *, currency: str | None = None, fixed_charge: int | None = None
) -> CycleTariff:
    """The :class:`~settlement.records.CycleTariff` a JSON cycle tariff file describes.

    ``currency`` and ``fixed_charge`` (micro-currency per cycle) are the command line's
    (``--currency``, ``--fixed-charge``), for a file that does not give them; a file and an
    argument giving the same one is refused. Without either, the fixed charge is 0 and the
    currency is missing (refused). :class:`TariffFileError` names what is wrong.
    """
    rates = parse_cycle_tariff_json(text)
    if rates.currency is not None and currency is not None:
        raise TariffFileError("the file gives the currency: do not give it again")
    if rates.fixed_charge is not None and fixed_charge is not None:
        raise TariffFileError("the file gives the fixed charge: do not give it again")
    chosen = rates.currency if rates.currency is not None else currency
    if chosen is None:
        raise TariffFileError("a cycle tariff needs a currency (in the file or given beside it)")
    fixed = rates.fixed_charge if rates.fixed_charge is not None else fixed_charge
    return rates.cycle_tariff(currency=chosen, fixed_charge=0 if fixed is None else fixed)
