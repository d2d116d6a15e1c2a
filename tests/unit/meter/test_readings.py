"""meter.readings: the CSV parser accepts exactly one complete, ordered UTC day."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from meter.readings import (
    DayReadings,
    ReadingsFormatError,
    format_readings_csv,
    parse_readings_csv,
    read_readings_csv,
)
from zkgrid.errors import InvalidArgumentError

PERIOD = "2026-11-21"


def _rows(interval_minutes: int = 60) -> list[str]:
    t = 1440 // interval_minutes
    rows = ["interval_start,import_wh,export_wh"]
    for i in range(t):
        minutes = i * interval_minutes
        rows.append(f"{PERIOD}T{minutes // 60:02d}:{minutes % 60:02d}:00Z,{100 + i},{i % 3}")
    return rows


def _text(rows: list[str]) -> str:
    return "\n".join(rows) + "\n"


def _error(rows: list[str], interval_minutes: int = 60) -> ReadingsFormatError:
    with pytest.raises(ReadingsFormatError) as info:
        parse_readings_csv(_text(rows), interval_minutes)
    return info.value


def test_parses_a_full_day() -> None:
    readings = parse_readings_csv(_text(_rows()), 60)
    assert readings.period == PERIOD
    assert readings.intervals == 24
    assert readings.imports == tuple(100 + i for i in range(24))
    assert readings.exports == tuple(i % 3 for i in range(24))
    assert readings.values()[:4] == [100, 0, 101, 1]


def test_fifteen_minute_day_and_round_trip(tmp_path: Path) -> None:
    readings = parse_readings_csv(_text(_rows(15)), 15)
    assert readings.intervals == 96
    path = tmp_path / "r.csv"
    path.write_text(format_readings_csv(readings), encoding="utf-8")
    assert read_readings_csv(path, 15) == readings


def test_accepts_plus_zero_offset_crlf_and_spaces() -> None:
    rows = _rows()
    rows[1] = f"{PERIOD}T00:00:00+00:00, 100 ,0"
    readings = parse_readings_csv("\r\n".join(rows) + "\r\n", 60)
    assert readings.imports[0] == 100


def test_error_is_invalid_argument_with_reason() -> None:
    err = _error(_rows()[:1] + _rows()[2:])
    assert isinstance(err, InvalidArgumentError)
    assert err.reason == "READINGS_INVALID"


@pytest.mark.parametrize(
    ("mutate", "line", "words"),
    [
        # gap: the 02:00 row is missing, so line 4 (03:00) is where it shows.
        (lambda r: r[:3] + r[4:], 4, "gap"),
        (lambda r: [*r[:4], r[3], *r[4:]], 5, "duplicate"),
        (lambda r: [r[0], r[1], r[3], r[2], *r[4:]], 3, "out of order"),
        (lambda r: [*r[:4], r[2], *r[5:]], 5, "duplicate"),
        (lambda r: [*r[:4], r[5], r[4], *r[6:]], 5, "out of order"),
        (lambda r: [*r[:3], r[3].replace("T02:00", "T02:30"), *r[4:]], 4, "not aligned"),
        (lambda r: [*r, "2026-11-22T00:00:00Z,1,1"], 26, "another day"),
        (lambda r: [*r[:5], r[5].replace(",104,", ",-104,"), *r[6:]], 6, "negative"),
        (lambda r: [*r[:5], r[5].replace(",104,", ",10.5,"), *r[6:]], 6, "not an integer"),
        (lambda r: [*r[:5], r[5].replace(",104,", ",4294967296,"), *r[6:]], 6, "too large"),
        (lambda r: [*r[:5], r[5].replace(",104,", ",abc,"), *r[6:]], 6, "not a number"),
        (lambda r: [*r[:5], r[5].replace(",104,", ",,"), *r[6:]], 6, "missing"),
        (lambda r: [*r[:5], r[5] + ",7", *r[6:]], 6, "columns"),
        (lambda r: [*r[:5], r[5].replace("Z,", ","), *r[6:]], 6, "explicit UTC offset"),
        # 04:00+01:00 is 03:00 UTC, the row before: an offset is converted, not refused
        (lambda r: [*r[:5], r[5].replace("Z,", "+01:00,"), *r[6:]], 6, "duplicate"),
        (lambda r: [*r[:5], "yesterday" + r[5][20:], *r[6:]], 6, "ISO 8601"),
        (lambda r: r[:10], 10, "ends after 9 of 24"),
        (lambda r: ["start,import,export", *r[1:]], 1, "header"),
        (lambda r: r[1:], 1, "header"),
        (lambda r: [r[0], *r[2:]], 2, "gap"),
        (lambda r: [*r[:5], "", *r[5:]], 6, "empty line"),
    ],
)
def test_errors_name_the_line(
    mutate: Callable[[list[str]], list[str]], line: int, words: str
) -> None:
    err = _error(mutate(_rows()))
    assert err.line == line
    assert f"line {line}" in str(err)
    assert words in str(err)


def test_error_messages_never_carry_the_reading() -> None:
    rows = _rows()
    rows[5] = rows[5].replace(",104,", ",-987654,")
    err = _error(rows)
    assert "987654" not in str(err)
    assert err.offending == "-987654"  # for the owner's own terminal only
    rows = _rows()
    rows[7] = rows[7].replace(",106,", ",98765432109,")
    err = _error(rows)
    assert "98765432109" not in str(err)


def test_the_largest_reading_is_accepted() -> None:
    rows = _rows()
    rows[1] = f"{PERIOD}T00:00:00Z,4294967295,0"
    assert parse_readings_csv(_text(rows), 60).imports[0] == 2**32 - 1


def test_empty_file_and_header_only() -> None:
    with pytest.raises(ReadingsFormatError, match="empty"):
        parse_readings_csv("", 60)
    with pytest.raises(ReadingsFormatError, match="no readings"):
        parse_readings_csv("interval_start,import_wh,export_wh\n", 60)


def test_interval_minutes_must_divide_a_day() -> None:
    with pytest.raises(InvalidArgumentError):
        parse_readings_csv(_text(_rows()), 7)


def test_day_readings_repr_hides_values() -> None:
    readings = DayReadings.from_lists(PERIOD, 240, [123457] * 6, [98765] * 6)
    assert "123457" not in repr(readings)
    assert "98765" not in repr(readings)


def test_any_explicit_offset_is_converted_to_utc() -> None:
    rows = ["interval_start,import_wh,export_wh"]
    rows += [f"2026-11-21T{h + 1:02d}:00:00+01:00,{100 + h},0" for h in range(23)]
    rows.append("2026-11-22T00:00:00+01:00,123,0")
    rows.append("")
    rows.append("   ")  # trailing blank lines are ignored
    readings = parse_readings_csv("\n".join(rows) + "\n", 60)
    assert readings.period == PERIOD
    assert readings.imports == tuple(100 + h for h in range(24))


def test_a_wrong_header_is_shown_to_its_owner_only() -> None:
    err = _error(["time,in,out", *_rows()[1:]])
    assert "import_kwh" in str(err)  # the accepted forms are named
    assert err.offending == "time,in,out"
    err = _error(_rows()[1:])  # no header at all: the first row is data, kept out of the message
    assert "100" not in str(err)
    assert err.offending is not None
    assert err.offending.startswith(PERIOD)


def _kwh_rows(value: str = "0.1") -> list[str]:
    rows = ["interval_start,import_kwh,export_kwh"]
    rows += [f"{PERIOD}T{h:02d}:00:00Z,{value},0.000" for h in range(24)]
    return rows


def test_kwh_converts_exactly_or_is_refused() -> None:
    readings = parse_readings_csv(_text(_kwh_rows("1.234")), 60)
    assert readings.imports == (1234,) * 24
    assert readings.exports == (0,) * 24
    assert parse_readings_csv(_text(_kwh_rows("0.1")), 60).imports[0] == 100
    assert parse_readings_csv(_text(_kwh_rows("2.50000")), 60).imports[0] == 2500
    for bad, words in (("1.2345", "whole number of Wh"), ("-1", "negative"),
                       ("1e3", "decimal number"), ("4294968", "too large")):  # fmt: skip
        with pytest.raises(ReadingsFormatError, match=words) as info:
            parse_readings_csv(_text(_kwh_rows(bad)), 60)
        assert bad not in str(info.value)
    # --units kwh reads a Wh-labelled file as kWh; a kWh header with --units wh is read as Wh
    wh_labelled = _rows()
    assert parse_readings_csv(_text(wh_labelled), 60, units="kwh").imports[0] == 100_000
    with pytest.raises(ReadingsFormatError, match="not an integer"):
        parse_readings_csv(_text(_kwh_rows("0.5")), 60, units="wh")
