"""``zkgrid market``'s command line without a service: prices and quantities converted
exactly as the tariff files do (inexact input refused, exit 2, before anything is sent),
interval ranges, ISO 8601 times with a zone, the market day a ``day publish`` builds, and
the exit statuses of usage errors."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest

import meter.market
from cli import market as cli
from cli.main import main as zkgrid
from meter.client import VerifiedReceipt
from settlement.market import MarketDay
from zkgrid.errors import UsageError

PERIOD = "2026-12-02"
OFFLINE = ["--target", "127.0.0.1:1", "--insecure", "--timeout", "0.2"]


def _args(**fields: Any) -> Any:
    import argparse

    return argparse.Namespace(**fields)


@pytest.mark.parametrize(
    ("text", "wh", "expected"),
    [("1.5", False, 1_500), ("0.001", False, 1), ("2", False, 2_000), ("1500", True, 1_500),
     ("1500.0", True, 1_500)],
)  # fmt: skip
def test_quantities_convert_exactly(text: str, wh: bool, expected: int) -> None:
    assert cli._wh(_args(quantity=text, wh=wh)) == expected


@pytest.mark.parametrize(
    ("text", "wh"),
    [("1.0005", False), ("-1", False), ("lots", False), ("1.5", True), ("-3", True),
     ("x", True), ("inf", True)],
)  # fmt: skip
def test_inexact_or_bad_quantities_are_refused(text: str, wh: bool) -> None:
    with pytest.raises(UsageError):
        cli._wh(_args(quantity=text, wh=wh))


def test_prices_are_currency_per_kwh_exact_to_a_thousandth() -> None:
    assert cli._rate("0.125", "--price") == 125  # micro-currency per Wh
    assert cli._rate("0.1", "--price") == 100
    assert cli._rate("0", "--price") == 0
    for bad in ("0.1255", "-0.1", "cheap", ""):
        with pytest.raises(UsageError):
            cli._rate(bad, "--price")


def test_interval_ranges() -> None:
    assert cli._intervals("4") == (4, 4)
    assert cli._intervals("40-43") == (40, 43)
    for bad in ("7-4", "x", "-1", "1-", "1-2-3", ""):
        with pytest.raises(UsageError):
            cli._intervals(bad)


def test_times_need_a_zone_and_whole_seconds() -> None:
    assert cli._time("2026-12-01T12:00:00Z", "--gate-closure") == int(
        datetime(2026, 12, 1, 12, tzinfo=UTC).timestamp()
    )
    assert cli._time("2026-12-01T13:00:00+01:00", "--gate-closure") == cli._time(
        "2026-12-01T12:00:00Z", "--gate-closure"
    )
    assert cli._time(None, "--gate-closure") is None
    for bad in ("2026-12-01T12:00:00", "2026-12-01T12:00:00.5Z", "noon"):
        with pytest.raises(UsageError):
            cli._time(bad, "--gate-closure")


def _receipt() -> VerifiedReceipt:
    return VerifiedReceipt(7, b"\1" * 32, 8, b"\2" * 32, "note", False, b"")


def test_day_publish_builds_the_market_day(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[MarketDay] = []

    def publish(channel: Any, day: MarketDay, **_: Any) -> VerifiedReceipt:
        sent.append(day)
        return _receipt()

    monkeypatch.setattr(meter.market, "publish_market_day", publish)
    out = io.StringIO()
    code = cli.main(
        ["day", "publish", "--period", PERIOD, "--interval-minutes", "60", "--credit-rate",
         "0.02", *OFFLINE, "--json"],
        out=out,
    )  # fmt: skip
    assert code == 0
    assert sent == [MarketDay.with_defaults(PERIOD, 60, 20)]
    doc = json.loads(out.getvalue())
    assert doc["gate_closure_utc"] == "2026-12-01 12:00 UTC"
    assert doc["credit_rate_per_kwh"] == "0.020"
    assert doc["receipt"]["ledger_index"] == 7
    code = cli.main(
        ["day", "publish", "--period", PERIOD, "--gate-closure", "2026-11-30T18:00:00Z",
         "--buyer-deadline", "2026-12-10T00:00:00Z", *OFFLINE],
        out=io.StringIO(),
    )  # fmt: skip
    assert code == 0
    custom = sent[-1]
    assert custom.gate_closure == int(datetime(2026, 11, 30, 18, tzinfo=UTC).timestamp())
    assert custom.buyer_deadline == int(datetime(2026, 12, 10, tzinfo=UTC).timestamp())
    assert custom.interval_minutes == 15
    # a gate closure after the period starts is no market day: could not run
    code = cli.main(
        ["day", "publish", "--period", PERIOD, "--gate-closure", "2026-12-02T06:00:00Z",
         *OFFLINE],
        out=io.StringIO(),
    )  # fmt: skip
    assert code == 2
    assert len(sent) == 2


@pytest.mark.parametrize(
    "argv",
    [
        ["offer", "--period", PERIOD, "--intervals", "3", "--quantity", "1.0001", "--price", "0.1"],
        ["bid", "--period", PERIOD, "--intervals", "3", "--quantity", "1", "--price", "0.12345"],
        ["bid", "--period", PERIOD, "--intervals", "5-2", "--quantity", "1", "--price", "0.1"],
        ["cancel", "--order", "not-hex"],
        ["orders", "--period", PERIOD, "--as", "utility", "--id", "m1"],
        ["day", "publish", "--period", PERIOD, "--credit-rate", "0.0001"],
        ["offer", "--period", PERIOD],  # missing flags
        ["nonsense"],
    ],
    ids=["quantity", "price", "intervals", "hash", "home-as-utility", "credit", "usage", "cmd"],
)
def test_usage_errors_exit_2_before_anything_is_sent(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main([*argv, *OFFLINE], out=io.StringIO()) == 2
    err = capsys.readouterr().err
    assert err.startswith("zkgrid market")
    assert err.count("\n") <= 2  # one line (and perhaps the unpinned key's warning)


def test_the_group_is_a_zkgrid_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert zkgrid(["market", "--help"]) == 0
    text = capsys.readouterr().out
    for command in ("enrol", "day", "offer", "bid", "cancel", "orders", "result", "trades"):
        assert command in text
    assert "2 could not run" in " ".join(text.split())
    for sub in (["offer"], ["day", "publish"], ["clear"], ["trades"]):
        assert cli.main([*sub, "--help"]) == 0
    assert "--json" in capsys.readouterr().out
