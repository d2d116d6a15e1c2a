"""``zkgrid tariff publish``'s file handling, offline: a cycle tariff (a plan over a
billing cycle) is told from a day's tariff by its fields, read with the settlement's
parser, and its flags are checked (no --period; --currency and --fixed-charge only when
the file lacks them); a day's tariff works as before. Nothing here connects."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from cli import tariff as tariff_cli
from settlement.records import CycleTariff, Tariff
from settlement.tariff_files import CYCLE_FIELDS, TariffFileError
from zkgrid._internal.cliargs import UsageError

ROOT = Path(__file__).resolve().parents[3]
TIERED = ROOT / "examples" / "tariff-tiered-2026-11.json"
DEMAND = ROOT / "examples" / "tariff-demand-2026-11.json"
DAY_JSON = ROOT / "examples" / "tariff-2026-11-21.json"
DAY_CSV = ROOT / "examples" / "tariff-2026-11-21.csv"


def _args(*argv: str) -> argparse.Namespace:
    return tariff_cli._parser().parse_args(
        ["publish", *argv, "--target", "127.0.0.1:9", "--insecure"]
    )


def _day_json() -> dict[str, object]:
    doc = json.loads(DAY_JSON.read_text())
    assert isinstance(doc, dict)
    return doc


@pytest.mark.parametrize("field", sorted(CYCLE_FIELDS))
def test_any_cycle_field_makes_a_cycle_tariff(field: str) -> None:
    doc = _day_json()
    doc[field] = None
    assert tariff_cli.is_cycle_tariff_text(json.dumps(doc))


@pytest.mark.parametrize(
    "text", [DAY_JSON.read_text(), "[]", "not json", '"plan"', "{}", '{"planned": 1}']
)
def test_other_text_is_not_a_cycle_tariff(text: str) -> None:
    assert not tariff_cli.is_cycle_tariff_text(text)


def test_the_examples_are_cycle_tariffs() -> None:
    assert tariff_cli.is_cycle_tariff_text(TIERED.read_text())
    assert tariff_cli.is_cycle_tariff_text(DEMAND.read_text())


def test_the_tiered_example_reads_as_its_plan() -> None:
    tariff = tariff_cli._tariff_from_file(_args("--file", str(TIERED)))
    assert isinstance(tariff, CycleTariff)
    assert (tariff.plan, tariff.meters) == ("residential-tiered", ())
    assert (tariff.first_period, tariff.last_period) == ("2026-11-01", "2026-11-30")
    assert (tariff.currency, tariff.fixed_charge) == ("EUR", 9_000_000)
    assert tariff.tiers == ((0, 230), (200_000, 280), (400_000, 380))
    assert tariff.tier_kind == "inclining"
    assert tariff.demand_charge == 0


def test_the_demand_example_lists_its_meters() -> None:
    tariff = tariff_cli._tariff_from_file(_args("--file", str(DEMAND)))
    assert isinstance(tariff, CycleTariff)
    assert tariff.meters == ("bakery-12", "workshop-3")
    assert tariff.demand_charge == 12_500_000
    assert tariff.tiers == ()


def test_a_plan_takes_the_currency_and_fixed_charge_it_lacks(tmp_path: Path) -> None:
    doc = json.loads(TIERED.read_text())
    del doc["currency"], doc["fixed_charge"]
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc))
    tariff = tariff_cli._tariff_from_file(
        _args("--file", str(path), "--currency", "CHF", "--fixed-charge", "12.5")
    )
    assert isinstance(tariff, CycleTariff)
    assert (tariff.currency, tariff.fixed_charge) == ("CHF", 12_500_000)
    with pytest.raises(TariffFileError, match="needs a currency"):
        tariff_cli._tariff_from_file(_args("--file", str(path)))


@pytest.mark.parametrize(
    ("argv", "error", "match"),
    [
        (("--period", "2026-11-21"), UsageError, "--period does not apply"),
        (("--currency", "EUR"), TariffFileError, "gives the currency: do not give it again"),
        (("--fixed-charge", "1"), TariffFileError, "gives the fixed charge"),
    ],
)
def test_a_plan_refuses_what_its_file_gives(
    argv: tuple[str, ...], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        tariff_cli._tariff_from_file(_args("--file", str(TIERED), *argv))


def test_a_broken_plan_names_the_file_and_the_field(tmp_path: Path) -> None:
    doc = json.loads(TIERED.read_text())
    doc["tiers"][1]["price_per_kwh"] = "0.2805"
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(TariffFileError, match=r"plan\.json: tiers\[1\]\.price_per_kwh"):
        tariff_cli._tariff_from_file(_args("--file", str(path)))


def test_a_days_tariff_still_needs_its_period() -> None:
    with pytest.raises(UsageError, match="needs --period"):
        tariff_cli._tariff_from_file(_args("--file", str(DAY_JSON)))
    with pytest.raises(UsageError, match="needs --period"):
        tariff_cli._tariff_from_file(_args("--file", str(DAY_CSV), "--currency", "EUR"))
    day = tariff_cli._tariff_from_file(_args("--file", str(DAY_JSON), "--period", "2026-11-21"))
    assert isinstance(day, Tariff)
    assert day.period == "2026-11-21"
    csv = tariff_cli._tariff_from_file(
        _args("--file", str(DAY_CSV), "--period", "2026-11-21", "--currency", "EUR")
    )
    assert isinstance(csv, Tariff)


def test_publish_refuses_a_plan_with_a_period_before_connecting(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = tariff_cli.main(
        ["publish", "--file", str(TIERED), "--period", "2026-11-01",
         "--target", "127.0.0.1:9", "--insecure"]
    )  # fmt: skip
    assert code == 2
    assert "--period does not apply" in capsys.readouterr().err


def test_the_help_stays_true(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        tariff_cli._parser().parse_args(["publish", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "billing cycle's plan" in text
    assert "no --period" in text
    with pytest.raises(SystemExit):
        tariff_cli._parser().parse_args(["show", "--help"])
    assert "--meter" in capsys.readouterr().out
