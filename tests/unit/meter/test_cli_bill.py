"""``zkgrid meter bill``'s arguments: a day (--period) or a billing cycle (--cycle, a
calendar month, or --from/--to), mutually exclusive; every refusal is exit 2 with one
line, before anything is read or sent."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from meter import cli as meter_cli


def _parse(*argv: str) -> object:
    return meter_cli._parser().parse_args(["bill", "--id", "meter-7", *argv])


@pytest.mark.parametrize(
    ("argv", "cycle"),
    [
        (("--cycle", "2026-11"), ("2026-11-01", "2026-11-30")),
        (("--cycle", "2028-02"), ("2028-02-01", "2028-02-29")),
        (("--cycle", "2026-12"), ("2026-12-01", "2026-12-31")),
        (("--from", "2026-11-01", "--to", "2026-11-07"), ("2026-11-01", "2026-11-07")),
        (("--from", "2026-11-30", "--to", "2026-11-30"), ("2026-11-30", "2026-11-30")),
        (("--from", "2026-12-20", "--to", "2027-01-19"), ("2026-12-20", "2027-01-19")),
        (("--period", "2026-11-21"), None),
    ],
)
def test_a_day_or_a_cycle(argv: tuple[str, ...], cycle: tuple[str, str] | None) -> None:
    assert meter_cli._cycle_bounds(_parse(*argv)) == cycle  # type: ignore[arg-type]


def _run(tmp_path: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    # --home does not exist: a refusal must come before the home is read
    home = ["--home", str(tmp_path / "no-home"), "--insecure"]
    code = meter_cli.main(["bill", *home, *argv], out=io.StringIO())
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ((), "one of the arguments --period --cycle --from is required"),
        (("--period", "2026-11-21", "--cycle", "2026-11"), "not allowed with argument"),
        (("--cycle", "2026-11", "--from", "2026-11-01"), "not allowed with argument"),
        (("--from", "2026-11-01"), "--from needs --to"),
        (("--to", "2026-11-07"), "one of the arguments --period --cycle --from is required"),
        (("--period", "2026-11-21", "--to", "2026-11-22"), "--to goes with --from"),
        (("--cycle", "2026-13"), "a billing cycle is a calendar month"),
        (("--cycle", "2026-11-01"), "a billing cycle is a calendar month"),
        (("--from", "2026-11-01", "--to", "2026-12-02"), "1 to 31 consecutive days"),
        (("--from", "2026-11-07", "--to", "2026-11-01"), "--to not before --from"),
        (("--from", "2026-11-31", "--to", "2026-12-01"), "--from '2026-11-31'"),
        (("--from", "2026-11-01", "--to", "tomorrow"), "--to 'tomorrow'"),
    ],
)
def test_refusals_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], message: str
) -> None:
    code, err = _run(tmp_path, capsys, *argv)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_a_cycle_without_a_home_is_exit_2_after_parsing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _run(tmp_path, capsys, "--cycle", "2026-11")
    assert code == 2
    assert "no-home" in err


def test_the_help_names_the_cycle_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        meter_cli._parser().parse_args(["bill", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--period", "--cycle", "--from", "--to", "--json"):
        assert flag in text
    assert "calendar month" in text


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_long_proof_shows_the_seconds_passing_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import time

    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    with meter_cli._Ticker("proving the bill of 2026-11-01..2026-11-30"):
        time.sleep(1.3)
    text = terminal.getvalue()
    assert text.startswith("proving the bill of 2026-11-01..2026-11-30...")
    assert "\rproving the bill of 2026-11-01..2026-11-30... 1 s" in text
    assert text.endswith("\n")


def test_nothing_is_shown_off_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    pipe = io.StringIO()
    monkeypatch.setattr("sys.stderr", pipe)
    with meter_cli._Ticker("proving"):
        pass
    assert pipe.getvalue() == ""
