"""A prosumer's readings for one period: the CSV format and its strict parser.

The CSV has a header and one row per interval of one UTC day, in order::

    interval_start,import_wh,export_wh
    2026-11-21T00:00:00Z,120,0
    2026-11-21T00:15:00Z,118,0
    ...

``interval_start`` is ISO 8601 with an explicit UTC offset (``Z``, ``+00:00``,
``+01:00``: converted to UTC), aligned to the meter's ``interval_minutes``;
``import_wh`` and ``export_wh`` are integers in ``[0, 2^32)``. A file in kWh has
the header ``interval_start,import_kwh,export_kwh`` (or is read with
``units="kwh"``): values with at most three decimals, converted exactly to Wh
(a fraction of a Wh is refused, never rounded). Trailing blank lines are ignored.
Every one of the T = 1440 / interval_minutes intervals of the day
must be present exactly once. Anything else raises :class:`ReadingsFormatError`
naming the CSV line and column.

The readings are the prosumer's own secret: :class:`ReadingsFormatError`
messages never contain a reading. The offending field is kept on the exception
(:attr:`ReadingsFormatError.offending`) so a local terminal can show it to its
owner; nothing that goes to the service or to a logger ever includes it.
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from settlement import periods
from settlement.periods import RecordFormatError
from zkgrid.errors import InvalidArgumentError, Reason

__all__ = [
    "HEADER",
    "HEADER_KWH",
    "MAX_READING",
    "MAX_READINGS_FILE_BYTES",
    "DayReadings",
    "ReadingsFormatError",
    "csv_rows",
    "format_readings_csv",
    "intervals_per_day",
    "parse_kwh",
    "parse_period",
    "parse_readings_csv",
    "parse_wh",
    "read_readings_csv",
    "read_readings_text",
    "units_of_header",
]

HEADER = ("interval_start", "import_wh", "export_wh")
#: The header of a file in kWh (``--units kwh``).
HEADER_KWH = ("interval_start", "import_kwh", "export_kwh")
#: Largest readings file read (a day of 1-minute readings is about 60 KB; a month of
#: local-time rows for ``csv-convert`` a few MB).
MAX_READINGS_FILE_BYTES = 32 << 20
_MAX_TIMESTAMP_CHARS = 64
_KWH = re.compile(r"[0-9]{1,32}(\.[0-9]{1,32})?", re.ASCII)
#: Readings are proven to lie in [0, 2^32) (the batch's 32-bit range proof).
MAX_READING = (1 << 32) - 1
_INTEGER = re.compile(r"[0-9]+", re.ASCII)
_SIGNED_INTEGER = re.compile(r"-[0-9]+", re.ASCII)
_MAX_READING_DIGITS = len(str(MAX_READING))
_DECIMAL = re.compile(r"[+-]?([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII)


class ReadingsFormatError(InvalidArgumentError):
    """The readings CSV is not one complete, ordered, valid day of readings.

    ``line`` is the 1-based CSV line (0 when the problem is not tied to a line),
    ``column`` the column name when one is at fault. The message never carries a
    reading; ``offending`` holds the raw field for the owner's own terminal only.
    """

    reason = Reason.READINGS_INVALID

    def __init__(
        self,
        message: str,
        *,
        line: int = 0,
        column: str | None = None,
        offending: str | None = None,
    ) -> None:
        where = f"line {line}" if line else "readings"
        if column:
            where += f", column {column}"
        super().__init__(f"{where}: {message}")
        self.line = line
        self.column = column
        self.offending = offending


def intervals_per_day(interval_minutes: int) -> int:
    """T = 1440 / interval_minutes (:func:`settlement.periods.intervals_per_day`); a bad
    interval is the meter owner's input error (``INVALID_ARGUMENT``)."""
    try:
        return periods.intervals_per_day(interval_minutes)
    except RecordFormatError as exc:
        raise InvalidArgumentError(str(exc)) from None


def parse_period(text: str) -> date:
    """A period ``YYYY-MM-DD`` (:func:`settlement.periods.parse_period`); a bad one is the
    meter owner's input error (``INVALID_ARGUMENT``)."""
    try:
        return periods.parse_period(text)
    except RecordFormatError as exc:
        raise InvalidArgumentError(str(exc)) from None


@dataclass(frozen=True)
class DayReadings:
    """One period of readings: ``imports[t]`` and ``exports[t]`` in Wh for each interval t.

    Its ``repr`` hides the readings so they cannot end up in a log by accident.
    """

    period: str
    interval_minutes: int
    imports: tuple[int, ...] = field(repr=False)
    exports: tuple[int, ...] = field(repr=False)

    def __post_init__(self) -> None:
        parse_period(self.period)
        t = intervals_per_day(self.interval_minutes)
        if len(self.imports) != t or len(self.exports) != t:
            raise InvalidArgumentError(
                f"a day of {self.interval_minutes}-minute intervals needs {t} imports and exports"
            )
        for name, series in (("import", self.imports), ("export", self.exports)):
            for i, v in enumerate(series):
                if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_READING:
                    raise InvalidArgumentError(f"{name} reading {i} is not an integer in [0, 2^32)")

    @classmethod
    def from_lists(
        cls, period: str, interval_minutes: int, imports: Iterable[int], exports: Iterable[int]
    ) -> DayReadings:
        return cls(period, interval_minutes, tuple(imports), tuple(exports))

    @property
    def intervals(self) -> int:
        return len(self.imports)

    def values(self) -> list[int]:
        """The 2T committed values in commitment order ``[import_0, export_0, import_1, ...]``."""
        out: list[int] = []
        for imp, exp in zip(self.imports, self.exports, strict=True):
            out += [imp, exp]
        return out

    def interval_starts(self) -> list[datetime]:
        start = datetime.combine(parse_period(self.period), datetime.min.time(), tzinfo=UTC)
        step = timedelta(minutes=self.interval_minutes)
        return [start + i * step for i in range(self.intervals)]

    @property
    def total_import_wh(self) -> int:
        return sum(self.imports)

    @property
    def total_export_wh(self) -> int:
        return sum(self.exports)


def _format_ts(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_timestamp(text: str, line: int) -> datetime:
    """An ISO 8601 timestamp with an explicit UTC offset (``Z``, ``+00:00``, ``+01:00``,
    ...), converted to UTC."""
    raw = text.strip()
    if not raw:
        raise ReadingsFormatError("interval_start is empty", line=line, column="interval_start")
    try:
        ts = datetime.fromisoformat(raw) if len(raw) <= _MAX_TIMESTAMP_CHARS else None
    except ValueError:
        ts = None
    if ts is None:
        raise ReadingsFormatError(
            "interval_start is not an ISO 8601 timestamp (e.g. 2026-11-21T00:15:00Z)",
            line=line,
            column="interval_start",
            offending=raw[:_MAX_TIMESTAMP_CHARS],
        )
    if ts.tzinfo is None:
        raise ReadingsFormatError(
            "interval_start needs an explicit UTC offset (Z, +00:00, +01:00, ...); for local"
            " times without one, convert the file with `zkgrid meter csv-convert --tz ZONE`",
            line=line,
            column="interval_start",
            offending=raw,
        )
    return ts.astimezone(UTC)


def parse_wh(text: str, line: int, column: str) -> int:
    raw = text.strip()
    if _INTEGER.fullmatch(raw):
        # Bound the digits before int(): CPython refuses more than 4,300 with a ValueError.
        value = int(raw) if len(raw.lstrip("0")) <= _MAX_READING_DIGITS else MAX_READING + 1
        if value > MAX_READING:
            raise ReadingsFormatError(
                "value is too large (readings must be below 2^32 Wh)",
                line=line,
                column=column,
                offending=raw,
            )
        return value
    if _SIGNED_INTEGER.fullmatch(raw):
        raise ReadingsFormatError(
            "value is negative (readings are Wh >= 0)", line=line, column=column, offending=raw
        )
    if not raw:
        raise ReadingsFormatError("value is missing", line=line, column=column)
    if _DECIMAL.fullmatch(raw):
        raise ReadingsFormatError(
            "value is not an integer number of Wh", line=line, column=column, offending=raw
        )
    raise ReadingsFormatError(
        "value is not a number (expected an integer number of Wh)",
        line=line,
        column=column,
        offending=raw,
    )


def parse_kwh(text: str, line: int, column: str) -> int:
    """A reading in kWh, converted exactly to Wh (at most three decimals)."""
    raw = text.strip()
    if not raw:
        raise ReadingsFormatError("value is missing", line=line, column=column)
    if raw.startswith("-") and _KWH.fullmatch(raw[1:]):
        raise ReadingsFormatError(
            "value is negative (readings are >= 0)", line=line, column=column, offending=raw
        )
    if not _KWH.fullmatch(raw):
        raise ReadingsFormatError(
            "value is not a decimal number of kWh", line=line, column=column, offending=raw
        )
    whole, _, fraction = raw.partition(".")
    if len(fraction.rstrip("0")) > 3:
        raise ReadingsFormatError(
            "value is not a whole number of Wh (kWh with at most three decimals)",
            line=line,
            column=column,
            offending=raw,
        )
    if len(whole.lstrip("0")) > _MAX_READING_DIGITS:
        value = MAX_READING + 1
    else:
        value = int(whole or "0") * 1000 + int((fraction.rstrip("0") + "000")[:3])
    if value > MAX_READING:
        raise ReadingsFormatError(
            "value is too large (readings must be below 2^32 Wh)",
            line=line,
            column=column,
            offending=raw,
        )
    return value


def csv_rows(text: str) -> list[tuple[int, list[str]]]:
    """(line number, cells) of every CSV row of ``text``, trailing blank lines dropped."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        rows = [(reader.line_num, row) for row in reader]
    except csv.Error as exc:
        raise ReadingsFormatError(f"not valid CSV ({exc})", line=reader.line_num) from None
    while rows and all(not cell.strip() for cell in rows[-1][1]):
        rows.pop()
    return rows


def units_of_header(header: list[str], units: str | None, line: int) -> str:
    """``"wh"`` or ``"kwh"``: the header names the unit; ``units`` (``--units``) wins."""
    found = tuple(header)
    named = "wh" if found == HEADER else "kwh" if found == HEADER_KWH else None
    if named is None:
        raise ReadingsFormatError(
            f"the header must be '{','.join(HEADER)}' (or '{','.join(HEADER_KWH)}' for kWh)",
            line=line,
            offending=",".join(header),
        )
    return units if units is not None else named


def parse_readings_csv(
    text: str, interval_minutes: int = 15, *, units: str | None = None
) -> DayReadings:
    """Parse one UTC day of readings; raises :class:`ReadingsFormatError` naming the line.

    Timestamps may carry any explicit UTC offset (converted to UTC). ``units``: ``"wh"``
    or ``"kwh"`` (values in kWh, converted exactly, at most three decimals); ``None``:
    the header says (``import_wh``/``export_wh`` or ``import_kwh``/``export_kwh``).
    Trailing blank lines are ignored; a blank line between rows is an error.
    """
    if units not in (None, "wh", "kwh"):
        raise InvalidArgumentError("units must be 'wh' or 'kwh'")
    t_count = intervals_per_day(interval_minutes)
    step = timedelta(minutes=interval_minutes)
    rows = csv_rows(text)
    value_of = parse_wh
    # Where each well-formed timestamp occurs, to tell "out of order" from "gap".
    line_of: dict[datetime, int] = {}
    for line, row in rows[1:]:
        with contextlib.suppress(ReadingsFormatError):
            if row:
                line_of.setdefault(_parse_timestamp(row[0], line), line)
    header: list[str] | None = None
    seen: dict[datetime, int] = {}
    rows_seen = 0
    day: date | None = None
    day_start: datetime | None = None
    previous: datetime | None = None
    imports: list[int] = []
    exports: list[int] = []
    last_line = 0
    for line, row in rows:
        last_line = line
        if not row or all(not cell.strip() for cell in row):
            raise ReadingsFormatError("empty line", line=line)
        if header is None:
            header = [cell.strip().lstrip("\ufeff") for cell in row]
            if units_of_header(header, units, line) == "kwh":
                value_of = parse_kwh
            continue
        if len(row) != len(HEADER):
            raise ReadingsFormatError(
                f"expected {len(HEADER)} columns, found {len(row)}", line=line
            )
        ts = _parse_timestamp(row[0], line)
        if ts.second or ts.microsecond or (ts.hour * 60 + ts.minute) % interval_minutes:
            raise ReadingsFormatError(
                f"interval_start {_format_ts(ts)} is not aligned to {interval_minutes}-minute"
                " intervals",
                line=line,
                column="interval_start",
            )
        if day is None:
            day = ts.date()
            day_start = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
        assert day_start is not None
        if ts.date() != day:
            raise ReadingsFormatError(
                f"interval_start {_format_ts(ts)} is on another day than {day.isoformat()}"
                " (one period, a UTC day, per file)",
                line=line,
                column="interval_start",
            )
        if ts in seen:
            raise ReadingsFormatError(
                f"duplicate interval {_format_ts(ts)} (first on line {seen[ts]})",
                line=line,
                column="interval_start",
            )
        if previous is not None and ts < previous:
            raise ReadingsFormatError(
                f"interval {_format_ts(ts)} is out of order (after {_format_ts(previous)})",
                line=line,
                column="interval_start",
            )
        expected = day_start + rows_seen * step
        if ts != expected and line_of.get(expected, 0) > line:
            raise ReadingsFormatError(
                f"interval {_format_ts(ts)} is out of order (interval {_format_ts(expected)}"
                f" should come first; it is on line {line_of[expected]})",
                line=line,
                column="interval_start",
            )
        if ts != expected:
            raise ReadingsFormatError(
                f"gap: interval {_format_ts(expected)} is missing before {_format_ts(ts)}",
                line=line,
                column="interval_start",
            )
        imports.append(value_of(row[1], line, header[1]))
        exports.append(value_of(row[2], line, header[2]))
        previous = ts
        seen[ts] = line
        rows_seen += 1
    if header is None:
        raise ReadingsFormatError("the file is empty (a header and one row per interval needed)")
    if day is None or day_start is None:
        raise ReadingsFormatError(f"no readings after the header (need {t_count} rows)")
    if rows_seen < t_count:
        raise ReadingsFormatError(
            f"the file ends after {rows_seen} of {t_count} intervals: interval"
            f" {_format_ts(day_start + rows_seen * step)} and later are missing",
            line=last_line,
        )
    return DayReadings(day.isoformat(), interval_minutes, tuple(imports), tuple(exports))


def read_readings_text(path: str | Path) -> str:
    """A readings file's text (UTF-8, at most :data:`MAX_READINGS_FILE_BYTES`)."""
    from zkgrid._internal.files import read_file

    try:
        return read_file(Path(path), max_bytes=MAX_READINGS_FILE_BYTES).decode("utf-8")
    except UnicodeDecodeError:
        raise ReadingsFormatError("the file is not UTF-8 text") from None


def read_readings_csv(
    path: str | Path, interval_minutes: int = 15, *, units: str | None = None
) -> DayReadings:
    """Read and parse a readings CSV file (UTF-8)."""
    return parse_readings_csv(read_readings_text(path), interval_minutes, units=units)


def format_readings_csv(readings: DayReadings) -> str:
    """The CSV text of ``readings`` (the format :func:`parse_readings_csv` reads)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for ts, imp, exp in zip(
        readings.interval_starts(), readings.imports, readings.exports, strict=True
    ):
        writer.writerow([_format_ts(ts), imp, exp])
    return out.getvalue()
