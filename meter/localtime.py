"""Readings kept in local time, cut into the UTC days the ledger settles.

Many meters and utilities export readings in local wall-clock time without an
offset (``2026-10-25 02:15``). A settlement period is a UTC day, so such a file
is converted: every row's local time is resolved in the given time zone
(``Europe/Berlin``) to a UTC instant, and the rows are grouped by UTC day.

Daylight saving time is resolved by order, the way the file was written: a local
time that happens twice (the hour repeated when clocks go back: the 100-interval
local day) is taken at its first instant the first time it appears and at its
second the next time; a local time that does not exist (the hour skipped when
clocks go forward: the 92-interval local day) is an error naming the line. Rows
must follow each other in time. A row that carries an explicit offset is taken
as it is.

A UTC day is complete when every interval of it is present; only complete days
become :class:`~meter.readings.DayReadings`; the others are reported with what
is missing (a local file usually starts and ends in the middle of a UTC day).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from meter.readings import (
    DayReadings,
    ReadingsFormatError,
    csv_rows,
    intervals_per_day,
    parse_kwh,
    parse_wh,
    units_of_header,
)
from zkgrid.errors import InvalidArgumentError

__all__ = ["Converted", "PartialDay", "convert_local_csv", "local_day_lengths", "time_zone"]

_MAX_TIMESTAMP_CHARS = 64


@dataclass(frozen=True)
class PartialDay:
    """A UTC day the file covers only in part: ``present`` of ``needed`` intervals."""

    period: str
    present: int
    needed: int


@dataclass(frozen=True)
class Converted:
    """The complete UTC days of a local-time file, and the partial ones left out."""

    days: tuple[DayReadings, ...]
    partial: tuple[PartialDay, ...]


def time_zone(name: str) -> tzinfo:
    """The IANA time zone ``name`` (``Europe/Berlin``); :class:`InvalidArgumentError`."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidArgumentError(
            f"unknown time zone {name[:64]!r} (an IANA name such as Europe/Berlin)"
        ) from None


def _candidates(local: datetime, zone: tzinfo) -> list[datetime]:
    """The UTC instants the wall-clock time ``local`` can mean in ``zone`` (none: skipped
    by a DST change; two: repeated by one)."""
    out = []
    for fold in (0, 1):
        instant = local.replace(tzinfo=zone, fold=fold).astimezone(UTC)
        if instant.astimezone(zone).replace(tzinfo=None) == local and instant not in out:
            out.append(instant)
    return sorted(out)


def _instant(text: str, zone: tzinfo, previous: datetime | None, line: int) -> datetime:
    raw = text.strip()
    try:
        ts = datetime.fromisoformat(raw) if 0 < len(raw) <= _MAX_TIMESTAMP_CHARS else None
    except ValueError:
        ts = None
    if ts is None:
        raise ReadingsFormatError(
            "interval_start is not an ISO 8601 date and time (e.g. 2026-10-25T02:15)",
            line=line,
            column="interval_start",
            offending=raw[:_MAX_TIMESTAMP_CHARS],
        )
    if ts.tzinfo is not None:
        return ts.astimezone(UTC)
    options = _candidates(ts, zone)
    if not options:
        raise ReadingsFormatError(
            f"{ts:%Y-%m-%d %H:%M} does not exist in {zone} (the clocks skip it)",
            line=line,
            column="interval_start",
        )
    for instant in options:  # the first one after the previous row
        if previous is None or instant > previous:
            return instant
    raise ReadingsFormatError(
        f"{ts:%Y-%m-%d %H:%M} ({zone}) does not follow the row before it",
        line=line,
        column="interval_start",
    )


def convert_local_csv(
    text: str, zone: tzinfo, interval_minutes: int, *, units: str | None = None
) -> Converted:
    """Cut a local-time readings file into UTC days (module docstring). The header is the
    readings file's (``interval_start,import_wh,export_wh`` or the kWh one)."""
    t_count = intervals_per_day(interval_minutes)
    step = timedelta(minutes=interval_minutes)
    rows = csv_rows(text)
    if not rows:
        raise ReadingsFormatError("the file is empty (a header and the rows needed)")
    line, header_row = rows[0]
    header = [cell.strip().lstrip("\ufeff") for cell in header_row]
    kwh = units_of_header(header, units, line) == "kwh"
    value_of = parse_kwh if kwh else parse_wh
    by_day: dict[str, dict[datetime, tuple[int, int]]] = {}
    previous: datetime | None = None
    for line, row in rows[1:]:
        if all(not cell.strip() for cell in row):
            raise ReadingsFormatError("empty line", line=line)
        if len(row) != 3:
            raise ReadingsFormatError(f"expected 3 columns, found {len(row)}", line=line)
        instant = _instant(row[0], zone, previous, line)
        if previous is not None and instant <= previous:
            raise ReadingsFormatError(
                f"interval {instant:%Y-%m-%dT%H:%M}Z is out of order or repeated",
                line=line,
                column="interval_start",
            )
        minutes = instant.hour * 60 + instant.minute
        if instant.second or instant.microsecond or minutes % interval_minutes:
            raise ReadingsFormatError(
                f"interval {instant:%Y-%m-%dT%H:%M}Z is not aligned to {interval_minutes}-minute"
                " intervals",
                line=line,
                column="interval_start",
            )
        values = (value_of(row[1], line, header[1]), value_of(row[2], line, header[2]))
        by_day.setdefault(instant.date().isoformat(), {})[instant] = values
        previous = instant
    days: list[DayReadings] = []
    partial: list[PartialDay] = []
    for period, rows_of_day in sorted(by_day.items()):
        start = datetime.fromisoformat(period).replace(tzinfo=UTC)
        slots = [start + i * step for i in range(t_count)]
        if all(slot in rows_of_day for slot in slots):
            imports = tuple(rows_of_day[slot][0] for slot in slots)
            exports = tuple(rows_of_day[slot][1] for slot in slots)
            days.append(DayReadings(period, interval_minutes, imports, exports))
        else:
            partial.append(PartialDay(period, len(rows_of_day), t_count))
    return Converted(tuple(days), tuple(partial))


def local_day_lengths(zone: tzinfo, days: Sequence[str], interval_minutes: int) -> list[int]:
    """How many intervals each local day has in ``zone`` (92 or 100 quarter-hours on the
    DST days of Europe/Berlin): for tests and for the command's summary."""
    out = []
    for day in days:
        start = datetime.fromisoformat(day).replace(tzinfo=zone)
        end = (start + timedelta(days=1)).replace(tzinfo=zone)
        span = end.astimezone(UTC) - start.astimezone(UTC)
        out.append(int(span / timedelta(minutes=interval_minutes)))
    return out
