"""Failure budgets per caller and the gate on pairing checks (service/budgets.py)."""

from __future__ import annotations

import threading
import time

import pytest

from service.budgets import FailureBudgetExhausted, FailureBudgets, Gate
from service.errors import Overloaded
from zkgrid.errors import Reason


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_a_caller_is_refused_after_its_burst_and_forgiven_at_the_refill_rate() -> None:
    clock = Clock()
    budgets = FailureBudgets(burst=3, refill_s=60, clock=clock)
    for _ in range(3):
        budgets.check("meter/mallory")  # nothing spent yet: allowed
        budgets.charge("meter/mallory")
    with pytest.raises(FailureBudgetExhausted) as info:
        budgets.check("meter/mallory")
    assert info.value.reason is Reason.FAILURE_BUDGET_EXHAUSTED
    assert info.value.retry_after_s == pytest.approx(60.0)
    assert "retry in 60 s" in str(info.value)
    budgets.check("meter/honest")  # another caller is not affected
    assert budgets.remaining("meter/honest") == 3
    clock.now += 30
    with pytest.raises(FailureBudgetExhausted) as info:
        budgets.check("meter/mallory")
    assert info.value.retry_after_s == pytest.approx(30.0)
    clock.now += 30
    budgets.check("meter/mallory")  # one failure forgiven
    budgets.charge("meter/mallory")
    with pytest.raises(FailureBudgetExhausted):
        budgets.check("meter/mallory")
    assert budgets.refused == 3
    clock.now += 10 * 60
    assert budgets.remaining("meter/mallory") == 3  # never more than the burst


def test_spending_never_goes_below_zero() -> None:
    clock = Clock()
    budgets = FailureBudgets(burst=2, refill_s=10, clock=clock)
    for _ in range(50):  # failures charged while refused calls keep coming (a race)
        budgets.charge("x")
    clock.now += 10
    budgets.check("x")  # one refill is enough, however many were charged


def test_buckets_are_bounded_and_full_ones_go_first() -> None:
    clock = Clock()
    budgets = FailureBudgets(burst=2, refill_s=10, max_callers=3, clock=clock)
    budgets.charge("old")
    clock.now += 100  # "old" has refilled completely: the same as no bucket
    for name in ("a", "b", "c"):
        budgets.charge(name)
        budgets.charge(name)
    assert len(budgets) == 3
    for name in ("a", "b", "c"):  # the spent ones are all kept
        with pytest.raises(FailureBudgetExhausted):
            budgets.check(name)
    budgets.charge("d")  # beyond the bound, with no full bucket: the least recent goes
    assert len(budgets) == 3
    budgets.check("a")


@pytest.mark.parametrize(
    "kwargs", [{"burst": 0}, {"burst": True}, {"refill_s": 0}, {"max_callers": 0}]
)
def test_arguments(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="must be"):
        FailureBudgets(**kwargs)  # type: ignore[arg-type]


def test_the_gate_sheds_beyond_its_queue_and_its_wait() -> None:
    gate = Gate("test", concurrency=1, max_waiting=1, wait_s=0.2)
    inside = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with gate:
            inside.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    assert inside.wait(5)
    waited: list[BaseException | None] = []

    def wait_in_line() -> None:
        try:
            with gate:
                waited.append(None)
        except Overloaded as exc:
            waited.append(exc)

    waiter = threading.Thread(target=wait_in_line)
    waiter.start()
    time.sleep(0.05)  # the waiter holds the one place in the queue
    with pytest.raises(Overloaded) as info, gate:  # no place left: shed at once
        pass
    assert info.value.reason is Reason.OVERLOADED
    assert info.value.retry_after_s == 1.0
    waiter.join(5)
    assert isinstance(waited[0], Overloaded)  # waited 0.2 s, then shed
    release.set()
    holder.join(5)
    with gate:  # free again
        pass
    assert gate.shed == 2
