"""Random cycle tariffs and readings: the proven bill verifies and equals a plain-integer
bill computed here independently (fill the tiers in order, take the highest interval)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from circuits.r1cs import R1CSStatement
from settlement.cycle_bills import cycle_bill_statement, prove_cycle_bill
from tests.unit.settlement.cycle_bill_support import METER, make_cycle, tariff

T = 6  # 240-minute intervals
FIRST, LAST = "2026-11-01", "2026-11-02"
readings = st.lists(st.integers(0, 20_000), min_size=T, max_size=T)


@st.composite
def tier_tables(draw: Any) -> tuple[tuple[int, int], ...]:
    count = draw(st.integers(0, 4))
    if count == 0:
        return ()
    gaps = draw(st.lists(st.integers(1, 40_000), min_size=count - 1, max_size=count - 1))
    starts = [0]
    for gap in gaps:
        starts.append(starts[-1] + gap)
    prices = sorted(draw(st.lists(st.integers(0, 2**19), min_size=count, max_size=count)))
    if draw(st.booleans()):
        prices.reverse()
    return tuple(zip(starts, prices, strict=True))


def plain_bill(plan: Any, imports: list[list[int]], exports: list[list[int]]) -> int:
    total = plan.fixed_charge
    for day_imp, day_exp in zip(imports, exports, strict=True):
        for t in range(T):
            total += plan.import_price[t] * day_imp[t] - plan.export_credit[t] * day_exp[t]
    left = sum(map(sum, imports))
    tiers = list(plan.tiers)
    for i, (start, price) in enumerate(tiers):
        width = tiers[i + 1][0] - start if i + 1 < len(tiers) else left
        used = min(left, width)
        total += used * price
        left -= used
    total += max(max(day) for day in imports) * plan.demand_charge * 60 // (240 * 1000)
    return int(total)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    imports=st.lists(readings, min_size=2, max_size=2),
    exports=st.lists(readings, min_size=2, max_size=2),
    tiers=tier_tables(),
    demand=st.integers(0, 5_000).map(lambda k: 4_000 * k),
    prices=st.lists(st.integers(0, 2**19), min_size=T, max_size=T),
    credits=st.lists(st.integers(0, 2**19), min_size=T, max_size=T),
    fixed=st.integers(-(10**9), 10**9),
)
def test_the_proven_bill_is_the_plain_bill(
    imports: list[list[int]],
    exports: list[list[int]],
    tiers: tuple[tuple[int, int], ...],
    demand: int,
    prices: list[int],
    credits: list[int],
    fixed: int,
) -> None:
    plan = tariff(
        FIRST,
        LAST,
        tiers=tiers,
        demand_charge=demand,
        import_price=tuple(prices),
        export_credit=tuple(credits),
        fixed_charge=fixed,
    )
    cycle = make_cycle(FIRST, LAST, imports, exports)
    bill = prove_cycle_bill(METER, plan, cycle.batches, cycle.openings)
    assert bill.total == plain_bill(plan, imports, exports)
    R1CSStatement.verify_batch([cycle_bill_statement(bill, plan, cycle.batches)])
