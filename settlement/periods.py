"""Periods and intervals: the one vocabulary of settlement-v1.md ("Model").

A settlement period is a UTC day written ``YYYY-MM-DD``; a meter reports every
``interval_minutes`` minutes, a divisor of a day, so a period has
``T = 1440 / interval_minutes`` intervals. The records, the meter's readings,
the auditor's state and the community profiles all use these functions; none
keeps a copy. Errors are :class:`RecordFormatError` (reason ``RECORD_MALFORMED``,
a format error: the text or number cannot be a period or an interval length),
the error of the records (:mod:`settlement.records` re-exports it).

The submission window (settlement-v1.md, "Submission window"): readings for a
period are taken once it has ended (:class:`PeriodNotEnded` before 00:00 UTC of
the next day) and, when the service sets a late limit of ``N`` days, until
``N`` days after its end (:class:`PeriodClosed` after). The time is the caller's
clock, passed in: the service's (injectable for tests) and the meter client's,
which checks before it proves.

Pure: the standard library and the domain's errors only.
"""

from __future__ import annotations

import datetime as _dt
import re

from settlement.errors import PeriodClosed, PeriodNotEnded, RecordFormatError
from zkgrid.errors import InvalidArgumentError

__all__ = [
    "MAX_CYCLE_PERIODS",
    "MINUTES_PER_DAY",
    "RecordFormatError",
    "check_submission_window",
    "cycle_periods",
    "intervals_per_day",
    "parse_period",
    "period_end",
    "period_of_ordinal",
    "period_ordinal",
    "validate_period",
]

MINUTES_PER_DAY = 1440
#: Periods of a billing cycle at most (a calendar month; records v2, circuits.md).
MAX_CYCLE_PERIODS = 31

_PERIOD = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)


def parse_period(period: object) -> _dt.date:
    """The UTC day named by ``YYYY-MM-DD`` (a real calendar date, nothing else)."""
    if not isinstance(period, str) or _PERIOD.fullmatch(period) is None:
        raise RecordFormatError("period must be a date written YYYY-MM-DD")
    try:
        day = _dt.date.fromisoformat(period)
    except ValueError:
        raise RecordFormatError("period is not a calendar date") from None
    if day.isoformat() != period:  # pragma: no cover - the regex already pins the form
        raise RecordFormatError("period is not in canonical YYYY-MM-DD form")
    return day


def validate_period(period: object) -> str:
    """``period`` if it is a canonical ``YYYY-MM-DD`` date; :class:`RecordFormatError` else."""
    if not isinstance(period, str):
        raise RecordFormatError("period must be a date written YYYY-MM-DD")
    parse_period(period)
    return period


def period_ordinal(period: object) -> int:
    """The period's proleptic Gregorian ordinal (day 1 is 0001-01-01)."""
    return parse_period(period).toordinal()


def period_of_ordinal(ordinal: int) -> str:
    """The inverse of :func:`period_ordinal`."""
    if isinstance(ordinal, bool) or not isinstance(ordinal, int):
        raise RecordFormatError("a day ordinal must be an integer")
    try:
        return _dt.date.fromordinal(ordinal).isoformat()
    except (ValueError, OverflowError):
        raise RecordFormatError("day ordinal out of range") from None


def cycle_periods(first: object, last: object) -> tuple[str, ...]:
    """The periods of the billing cycle ``first..last``: consecutive UTC days, both included,
    1..:data:`MAX_CYCLE_PERIODS` of them, in order; :class:`RecordFormatError` else."""
    start, end = period_ordinal(first), period_ordinal(last)
    if end < start:
        raise RecordFormatError(f"the billing cycle ends ({last}) before it starts ({first})")
    if end - start + 1 > MAX_CYCLE_PERIODS:
        raise RecordFormatError(
            f"a billing cycle is at most {MAX_CYCLE_PERIODS} periods; {first}..{last} is"
            f" {end - start + 1}"
        )
    return tuple(period_of_ordinal(o) for o in range(start, end + 1))


def intervals_per_day(interval_minutes: object) -> int:
    """T = 1440 / interval_minutes; the interval must be 1..1440 minutes and divide a day."""
    if isinstance(interval_minutes, bool) or not isinstance(interval_minutes, int):
        raise RecordFormatError("interval_minutes must be an integer")
    if not 1 <= interval_minutes <= MINUTES_PER_DAY:
        raise RecordFormatError(f"interval_minutes is outside [1, {MINUTES_PER_DAY}]")
    if MINUTES_PER_DAY % interval_minutes:
        raise RecordFormatError("interval_minutes must divide 1440")
    return MINUTES_PER_DAY // interval_minutes


def period_end(period: object) -> _dt.datetime:
    """The instant the period ends: 00:00 UTC of the next day."""
    day = parse_period(period)
    return _dt.datetime(day.year, day.month, day.day, tzinfo=_dt.UTC) + _dt.timedelta(days=1)


def check_submission_window(period: object, now: _dt.datetime, late_days: int | None) -> None:
    """Raise :class:`PeriodNotEnded` before the period's end, :class:`PeriodClosed` more
    than ``late_days`` days after it (``None``: no late limit). ``now`` is timezone-aware."""
    if now.tzinfo is None:
        raise InvalidArgumentError("now must be a timezone-aware datetime")
    end = period_end(period)
    if now < end:
        raise PeriodNotEnded(
            f"period {period} has not ended: readings are taken from {end:%Y-%m-%d %H:%M} UTC"
        )
    if late_days is not None and now > end + _dt.timedelta(days=late_days):
        raise PeriodClosed(
            f"period {period} closed {late_days} days after its end"
            f" ({end + _dt.timedelta(days=late_days):%Y-%m-%d %H:%M} UTC): too late to submit"
        )
