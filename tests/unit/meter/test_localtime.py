"""Local-time readings cut into UTC days (meter/localtime.py, `zkgrid meter csv-convert`),
across both daylight-saving changes of Europe/Berlin: a 92- and a 100-interval local day."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cli.main import main as zkgrid
from meter.localtime import convert_local_csv, local_day_lengths, time_zone
from meter.readings import ReadingsFormatError, read_readings_csv
from zkgrid.errors import InvalidArgumentError

BERLIN = time_zone("Europe/Berlin")


def _local_file(first_day: str, days: int) -> tuple[str, int]:
    """Rows every 15 minutes of local wall time, as a meter in Berlin writes them (the
    repeated hour twice, the skipped hour not at all); import = the row's number."""
    start = datetime.fromisoformat(first_day).replace(tzinfo=BERLIN).astimezone(UTC)
    end = (
        (datetime.fromisoformat(first_day) + timedelta(days=days))
        .replace(tzinfo=BERLIN)
        .astimezone(UTC)
    )
    rows = ["interval_start,import_wh,export_wh"]
    n = 0
    at = start
    while at < end:
        local = at.astimezone(BERLIN).replace(tzinfo=None)
        rows.append(f"{local:%Y-%m-%dT%H:%M},{n},{n % 7}")
        n += 1
        at += timedelta(minutes=15)
    return "\n".join(rows) + "\n", n


def test_local_days_have_92_and_100_intervals_on_dst_days() -> None:
    days = ["2026-03-29", "2026-10-25", "2026-11-21"]
    assert local_day_lengths(BERLIN, days, 15) == [92, 100, 96]


@pytest.mark.parametrize(("first", "utc_days"), [("2026-10-24", 2), ("2026-03-28", 2)])
def test_a_local_file_becomes_complete_utc_days(first: str, utc_days: int) -> None:
    text, rows = _local_file(first, 3)
    converted = convert_local_csv(text, BERLIN, 15)
    assert len(converted.days) == utc_days
    # every row is one 15-minute step after the one before, in UTC: row k is instant k
    local_start = datetime.fromisoformat(first).replace(tzinfo=BERLIN).astimezone(UTC)
    for day in converted.days:
        day_start = datetime.fromisoformat(day.period).replace(tzinfo=UTC)
        offset = int((day_start - local_start) / timedelta(minutes=15))
        assert day.imports == tuple(range(offset, offset + 96))
        assert day.exports == tuple(k % 7 for k in range(offset, offset + 96))
    assert sum(p.present for p in converted.partial) + 96 * utc_days == rows
    assert all(p.needed == 96 for p in converted.partial)


def test_a_skipped_local_time_is_refused() -> None:
    text = "interval_start,import_wh,export_wh\n2026-03-29T01:45,1,0\n2026-03-29T02:15,1,0\n"
    with pytest.raises(ReadingsFormatError, match="does not exist in Europe/Berlin") as info:
        convert_local_csv(text, BERLIN, 15)
    assert info.value.line == 3


def test_an_unknown_zone_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="unknown time zone"):
        time_zone("Mars/Olympus")


def test_csv_convert_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text, _ = _local_file("2026-10-24", 3)
    local = tmp_path / "local.csv"
    local.write_text(text)
    out_dir = tmp_path / "utc"
    args = ["meter", "csv-convert", "--csv", str(local), "--tz", "Europe/Berlin",
            "--out-dir", str(out_dir), "--json"]  # fmt: skip
    assert zkgrid(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [Path(p).name for p in doc["written"]] == ["2026-10-24.csv", "2026-10-25.csv"]
    assert [p["period"] for p in doc["partial"]] == ["2026-10-23", "2026-10-26"]
    day = out_dir / "2026-10-25.csv"
    assert stat.S_IMODE(day.stat().st_mode) == 0o600
    assert read_readings_csv(day, 15).intervals == 96  # what `meter submit` reads
    assert zkgrid(args) == 2  # never overwritten without --force
    assert "exists" in capsys.readouterr().err
    assert zkgrid([*args, "--force"]) == 0
