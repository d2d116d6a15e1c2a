"""cli.community: the businesses of the billing-cycle demo and the two plans (valid cycle
tariffs for every interval length the demo takes), and the demo's cycle arguments."""

from __future__ import annotations

import pytest

from cli import demo
from cli.community import (
    day_readings,
    demand_plan,
    make_businesses,
    make_community,
    tiered_plan,
)
from settlement.records import intervals_per_day


@pytest.mark.parametrize("minutes", [15, 60, 240, 5, 3, 9, 1440])
def test_the_plans_are_valid_for_every_interval(minutes: int) -> None:
    tiered = tiered_plan("2026-04-21", "2026-04-23", minutes)
    assert tiered.is_default
    assert tiered.tier_kind == "inclining"
    assert tiered.tiers == ((0, 220), (18_000, 280), (36_000, 380))  # 6 and 12 kWh a day
    assert tiered.fixed_charge == 900_000
    demand = demand_plan("2026-04-21", "2026-04-23", ["business-02", "business-01"], minutes)
    assert demand.meters == ("business-01", "business-02")
    assert demand.intervals == intervals_per_day(minutes)
    assert 0 < demand.demand_charge <= 1_500_000  # 0.50 a day of the cycle, rounded down
    assert demand.demand_charge * 60 % (minutes * 1000) == 0


def test_businesses_have_opening_hours_and_machines() -> None:
    (bakery, workshop) = make_businesses(2, seed=0)
    assert (bakery.meter_id, workshop.meter_id) == ("business-01", "business-02")
    assert bakery.is_business
    assert bakery.kind == "business"
    assert not make_community(1)[0].is_business
    day = day_readings(bakery, "2026-04-21", 15, 0)
    assert day == day_readings(bakery, "2026-04-21", 15, 0)  # deterministic
    night = sum(day.imports[: 4 * 4])  # 00:00-04:00
    opening = sum(day.imports[10 * 4 : 14 * 4])  # 10:00-14:00
    assert opening > 3 * night
    household = day_readings(make_community(1)[0], "2026-04-21", 15, 0)
    assert max(day.imports) > max(household.imports)  # the machines set the peak


@pytest.mark.parametrize(
    "argv",
    [
        ["--days", "0"],
        ["--days", "32"],
        ["--businesses", "3"],
        ["--days", "3", "--businesses", "-1"],
    ],
)
def test_the_cycle_arguments_are_checked(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        demo.main(argv)
    assert info.value.code == 2
