"""The submission window (settlement.periods.check_submission_window) and the service's use
of it with an injected clock: no readings before the period ends, none after the late limit,
the identical batch still idempotent, nothing appended and nothing verified when refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from service.settlement import Settlement
from settlement.errors import PeriodClosed, PeriodNotEnded
from settlement.periods import check_submission_window, period_end
from tests.unit.service.settlement_support import SimMeter, open_memory_store
from zkgrid.errors import InvalidArgumentError, Reason

DAY = "2026-11-21"
END = datetime(2026, 11, 22, tzinfo=UTC)


def test_the_window_opens_at_the_end_of_the_day_and_closes_after_the_late_days() -> None:
    assert period_end(DAY) == END
    with pytest.raises(PeriodNotEnded) as info:
        check_submission_window(DAY, END - timedelta(microseconds=1), None)
    assert info.value.reason is Reason.PERIOD_NOT_ENDED
    assert "2026-11-22 00:00 UTC" in str(info.value)
    check_submission_window(DAY, END, None)
    check_submission_window(DAY, END + timedelta(days=3650), None)  # no late limit
    check_submission_window(DAY, END + timedelta(days=7), 7)
    with pytest.raises(PeriodClosed) as closed:
        check_submission_window(DAY, END + timedelta(days=7, seconds=1), 7)
    assert closed.value.reason is Reason.PERIOD_CLOSED
    with pytest.raises(InvalidArgumentError):
        check_submission_window(DAY, datetime(2026, 11, 23), None)  # naive: refused


def test_the_service_refuses_batches_outside_the_window() -> None:
    now = [END - timedelta(hours=1)]
    store = open_memory_store()
    meter = SimMeter("m1")
    with Settlement(store, late_days=2, clock=lambda: now[0]) as settlement:
        settlement.register_meter(meter.registration())
        batch = meter.batch(DAY, advance=False)
        size = store.size()
        with pytest.raises(PeriodNotEnded):
            settlement.submit_readings(batch)
        assert store.size() == size
        assert list(settlement.verifier.range_proofs.batch_sizes) == []  # nothing verified
        now[0] = END + timedelta(days=2, minutes=1)
        with pytest.raises(PeriodClosed):
            settlement.submit_readings(batch)
        now[0] = END + timedelta(hours=8)
        receipt = settlement.submit_readings(batch)
        now[0] = END + timedelta(days=30)  # closed now, but the identical batch is idempotent
        assert settlement.submit_readings(batch).index == receipt.index
    store.close()
