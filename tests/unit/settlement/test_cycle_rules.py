"""The state rules of records version 2 (R16..R22) beyond the vector: details, precedence,
idempotence, the state's indices and version 1 left as it was."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from settlement import rules
from settlement.periods import cycle_periods
from settlement.records import (
    ZERO_HASH,
    Bill,
    CycleBill,
    CycleTariff,
    MeterKey,
    MeterRegistration,
    MeterRevocation,
    ReadingBatch,
    Tariff,
)
from settlement.rules import LedgerState, Ref, Refusal

KEYS = {name: MeterKey.from_private_value(0x1000 + i) for i, name in enumerate("abcdef")}
NOV = cycle_periods("2026-11-01", "2026-11-05")


class Ledger:
    """A log in memory, judged by the pure rules."""

    def __init__(self) -> None:
        self.state = LedgerState()
        self.index = 0
        self.batches: dict[tuple[str, str], ReadingBatch] = {}

    def step(self, record: Any) -> Refusal | None:
        digest = rules.record_digest(record)
        refusal = rules.step(self.state, record, Ref(self.index, digest))
        self.index += 1
        return refusal

    def ok(self, record: Any) -> Any:
        refusal = self.step(record)
        assert refusal is None, refusal
        return record

    def meter(self, meter_id: str, minutes: int = 720) -> None:
        key = KEYS[meter_id[-1]]
        self.ok(MeterRegistration.create(key, meter_id, minutes))

    def batch(self, meter_id: str, period: str) -> ReadingBatch:
        meter = self.state.meters[meter_id]
        minutes = meter.registration.interval_minutes
        batch = ReadingBatch.create(
            KEYS[meter_id[-1]],
            meter_id=meter_id,
            period=period,
            interval_minutes=minutes,
            sequence=meter.next_sequence,
            prev_hash=meter.last_batch_hash,
            commitments=[KEYS["a"].public_key] * (2 * 1440 // minutes),
            range_proof=b"\x01",
        )
        self.batches[(meter_id, period)] = self.ok(batch)
        return batch

    def hashes(self, meter_id: str, periods: tuple[str, ...]) -> tuple[bytes, ...]:
        return tuple(
            self.batches[(meter_id, p)].batch_hash()
            if (meter_id, p) in self.batches
            else b"\xee" * 32
            for p in periods
        )


def tariff(plan: str = "home", first: str = NOV[0], last: str = NOV[2], **over: Any) -> CycleTariff:
    fields: dict[str, Any] = {
        "plan": plan,
        "meters": (),
        "first_period": first,
        "last_period": last,
        "interval_minutes": 720,
        "currency": "EUR",
        "fixed_charge": 100,
        "import_price": (10, 20),
        "export_credit": (1, 2),
        "tiers": ((0, 5), (1_000, 9)),
        "demand_charge": 0,
    }
    fields.update(over)
    return CycleTariff(**fields)


def bill(ledger: Ledger, meter_id: str, t: CycleTariff | bytes, **over: Any) -> CycleBill:
    first = over.pop("first_period", t.first_period if isinstance(t, CycleTariff) else NOV[0])
    last = over.pop("last_period", t.last_period if isinstance(t, CycleTariff) else NOV[2])
    fields: dict[str, Any] = {
        "meter_id": meter_id,
        "first_period": first,
        "last_period": last,
        "batch_hashes": ledger.hashes(meter_id, cycle_periods(first, last)),
        "tariff_hash": t if isinstance(t, bytes) else t.tariff_hash(),
        "total": 77,
        "proof": b"\x01" * 40,
    }
    fields.update(over)
    return CycleBill(**fields)


def refused(ledger: Ledger, record: Any) -> tuple[str, str, str]:
    before = repr(ledger.state)
    refusal = rules.check(ledger.state, record)
    assert refusal is not None
    assert repr(ledger.state) == before  # check is pure
    assert rules.step(ledger.state, record, Ref(999, rules.record_digest(record))) == refusal
    assert repr(ledger.state) == before  # a refused record changes nothing
    return refusal.rule, refusal.reason, refusal.detail


# --------------------------------------------------------------------------- cycle tariffs


def test_one_tariff_per_plan_and_cycle_overlap() -> None:
    ledger = Ledger()
    home = ledger.ok(tariff())
    rule, reason, detail = refused(ledger, tariff(fixed_charge=101))
    assert (rule, reason) == ("R16", "TARIFF_EXISTS")
    assert "'home'" in detail
    assert "2026-11-01..2026-11-03" in detail
    assert refused(ledger, tariff(first=NOV[2], last=NOV[4], meters=("x",)))[:2] == (
        "R16",
        "TARIFF_EXISTS",
    )
    ledger.ok(tariff(first=NOV[3], last=NOV[4]))  # the next cycle of the plan
    assert refused(ledger, home)[:2] == ("R5", "DUPLICATE_TARIFF")
    assert ledger.state.original(home) == Ref(0, home.tariff_hash())


def test_a_meter_is_listed_by_one_plan_per_cycle() -> None:
    ledger = Ledger()
    ledger.ok(tariff("biz", meters=("m-a", "m-b")))
    rule, reason, detail = refused(ledger, tariff("solar", NOV[2], NOV[3], meters=("m-b", "m-c")))
    assert (rule, reason) == ("R17", "TARIFF_EXISTS")
    assert "'m-b'" in detail
    assert "'biz'" in detail
    ledger.ok(tariff("solar", NOV[3], NOV[4], meters=("m-b", "m-c")))  # after biz's cycle
    ledger.ok(tariff("farm", meters=("m-c", "m-d")))  # other meters, the same cycle
    ledger.ok(tariff("home"))  # the default plan beside listing plans


def test_one_default_plan_at_a_time() -> None:
    ledger = Ledger()
    ledger.ok(tariff("home"))
    rule, reason, detail = refused(ledger, tariff("evening", NOV[1], NOV[1]))
    assert (rule, reason) == ("R17", "TARIFF_EXISTS")
    assert "default plan 'home'" in detail
    ledger.ok(tariff("evening", NOV[3], NOV[4]))


def test_day_tariffs_and_cycle_tariffs_do_not_interact() -> None:
    ledger = Ledger()
    day = Tariff(NOV[1], 720, "EUR", 0, (1, 2), (0, 0))
    ledger.ok(day)
    ledger.ok(tariff())
    assert refused(ledger, Tariff(NOV[1], 720, "EUR", 1, (1, 2), (0, 0)))[:2] == (
        "R10",
        "TARIFF_EXISTS",
    )
    assert ledger.state.tariffs[NOV[1]][0] == day
    assert list(ledger.state.cycle_tariffs) == [tariff().tariff_hash()]


def test_the_indices_are_rebuilt_from_the_cycle_tariffs() -> None:
    """A state made from saved fields (the auditor's state file) judges as the live one."""
    ledger = Ledger()
    ledger.ok(tariff("biz", meters=("m-a",)))
    ledger.ok(tariff("home"))
    copy = LedgerState(
        meters=ledger.state.meters,
        tariffs=ledger.state.tariffs,
        witnesses=ledger.state.witnesses,
        cycle_tariffs=dict(ledger.state.cycle_tariffs),
    )
    for record in (
        tariff("biz", NOV[2], NOV[4]),
        tariff("x", meters=("m-a",)),
        tariff("y", NOV[1], NOV[1]),
    ):
        assert rules.check(copy, record) == rules.check(ledger.state, record)
        assert rules.check(copy, record) is not None
    assert rules.check(copy, tariff("x", meters=("m-b",))) is None


# --------------------------------------------------------------------------- cycle bills


def _billing_ledger() -> tuple[Ledger, CycleTariff]:
    ledger = Ledger()
    ledger.meter("m-a")
    home = ledger.ok(tariff())
    return ledger, home


def test_a_cycle_bill_is_accepted_and_idempotent() -> None:
    ledger, home = _billing_ledger()
    for p in NOV[:3]:
        ledger.batch("m-a", p)
    first = bill(ledger, "m-a", home)
    assert rules.check(ledger.state, first) is None
    ledger.ok(first)
    ref = ledger.state.meters["m-a"].bills[NOV[0]]
    assert all(ledger.state.meters["m-a"].bills[p] is ref for p in NOV[:3])
    assert NOV[3] not in ledger.state.meters["m-a"].bills
    assert ledger.state.original(first) == ref
    assert refused(ledger, first)[:2] == ("R5", "DUPLICATE_BILL")
    assert ledger.state.original(bill(ledger, "m-a", home, total=78)) is None
    assert refused(ledger, bill(ledger, "m-a", home, total=78))[:2] == ("R18", "BILL_EXISTS")
    # a day's bill (v1) for a period of the billed cycle
    batch = ledger.batches[("m-a", NOV[1])]
    v1 = Bill("m-a", NOV[1], batch.batch_hash(), b"\x01" * 32, 0, bytes(65))
    assert refused(ledger, v1)[:2] == ("R11", "BILL_EXISTS")
    assert ledger.state.original(v1) is None
    # the identical bill after revocation is still the original (R5 before R6)
    ledger.ok(MeterRevocation("m-a", "moved"))
    assert refused(ledger, first)[:2] == ("R5", "DUPLICATE_BILL")


def test_cycle_incomplete_names_the_first_missing_period() -> None:
    ledger, home = _billing_ledger()
    ledger.batch("m-a", NOV[0])
    ledger.batch("m-a", NOV[2])
    rule, reason, detail = refused(ledger, bill(ledger, "m-a", home))
    assert (rule, reason) == ("R19", "CYCLE_INCOMPLETE")
    assert "2026-11-02" in detail
    assert "2026-11-03" not in detail.split(":")[0]


def test_a_v1_bill_inside_the_cycle_comes_first() -> None:
    ledger, home = _billing_ledger()
    for p in NOV[:3]:
        ledger.batch("m-a", p)
    day = ledger.ok(Tariff(NOV[2], 720, "EUR", 0, (1, 2), (0, 0)))
    batch = ledger.batches[("m-a", NOV[2])]
    ledger.ok(Bill("m-a", NOV[2], batch.batch_hash(), day.tariff_hash(), 5, bytes(65)))
    rule, reason, detail = refused(ledger, bill(ledger, "m-a", home))
    assert (rule, reason) == ("R18", "BILL_EXISTS")
    assert NOV[2] in detail


@pytest.mark.parametrize("swap", [(0, 1), (1, 2)])
def test_batch_hashes_in_period_order(swap: tuple[int, int]) -> None:
    ledger, home = _billing_ledger()
    for p in NOV[:3]:
        ledger.batch("m-a", p)
    hashes = list(ledger.hashes("m-a", NOV[:3]))
    i, j = swap
    hashes[i], hashes[j] = hashes[j], hashes[i]
    rule, reason, detail = refused(ledger, bill(ledger, "m-a", home, batch_hashes=tuple(hashes)))
    assert (rule, reason) == ("R20", "UNKNOWN_BATCH")
    assert f"batch hash {i}" in detail
    assert NOV[i] in detail


def test_the_tariff_must_be_the_cycles_and_apply_to_the_meter() -> None:
    ledger, home = _billing_ledger()
    ledger.meter("m-b")
    ledger.meter("m-c")
    biz = ledger.ok(tariff("biz", meters=("m-b",)))
    # m-c is listed by a plan whose cycle only overlaps the default plan's
    ledger.ok(tariff("late", NOV[2], NOV[4], meters=("m-c",)))
    for m in ("m-a", "m-b", "m-c"):
        for p in NOV[:3]:
            ledger.batch(m, p)
    for m in ("m-a", "m-b", "m-c"):  # another cycle's tariff, an unknown hash
        assert refused(ledger, bill(ledger, m, b"\x42" * 32))[:2] == ("R21", "UNKNOWN_TARIFF")
        wrong_cycle = bill(
            ledger, m, home, last_period=NOV[1], batch_hashes=ledger.hashes(m, NOV[:2])
        )
        assert refused(ledger, wrong_cycle)[:2] == ("R21", "UNKNOWN_TARIFF")
    assert refused(ledger, bill(ledger, "m-a", biz))[:2] == ("R21", "UNKNOWN_TARIFF")
    rule, reason, detail = refused(ledger, bill(ledger, "m-b", home))
    assert (rule, reason, "(plan 'biz' lists it)" in detail) == ("R21", "UNKNOWN_TARIFF", True)
    assert refused(ledger, bill(ledger, "m-c", home))[:2] == ("R21", "UNKNOWN_TARIFF")
    ledger.ok(bill(ledger, "m-a", home))  # the default plan: listed nowhere
    ledger.ok(bill(ledger, "m-b", biz))  # its own plan


def test_the_default_plan_applies_to_a_meter_listed_in_another_cycle() -> None:
    ledger, home = _billing_ledger()
    ledger.ok(tariff("biz", NOV[3], NOV[4], meters=("m-a",)))
    for p in NOV[:3]:
        ledger.batch("m-a", p)
    ledger.ok(bill(ledger, "m-a", home))


def test_the_tariff_interval_must_be_the_meters() -> None:
    ledger = Ledger()
    ledger.meter("m-a", minutes=360)
    hourly = ledger.ok(tariff())  # 720-minute intervals
    for p in NOV[:3]:
        ledger.batch("m-a", p)
    rule, reason, detail = refused(ledger, bill(ledger, "m-a", hourly))
    assert (rule, reason) == ("R22", "INTERVALS_MISMATCH")
    assert "720" in detail
    assert "360" in detail


def test_precedence_of_the_bill_rules() -> None:
    ledger, home = _billing_ledger()
    assert refused(ledger, bill(ledger, "m-z", home))[:2] == ("R4", "UNKNOWN_METER")
    # no batch, a wrong hash and an unknown tariff: R19 first
    assert refused(ledger, bill(ledger, "m-a", b"\x00" * 32))[:2] == ("R19", "CYCLE_INCOMPLETE")
    for p in NOV[:3]:
        ledger.batch("m-a", p)
    bad_hashes = (b"\x00" * 32,) * 3
    odd = bill(ledger, "m-a", b"\x00" * 32, batch_hashes=bad_hashes)
    assert refused(ledger, odd)[:2] == ("R20", "UNKNOWN_BATCH")
    ledger.ok(MeterRevocation("m-a", "gone"))
    assert refused(ledger, bill(ledger, "m-a", home))[:2] == ("R6", "METER_REVOKED")


def test_version_1_is_judged_as_before() -> None:
    """A day's tariff, batch and bill take the same path as without records v2."""
    ledger = Ledger()
    ledger.meter("m-a")
    ledger.ok(tariff())  # a cycle tariff changes nothing for day bills
    day = ledger.ok(Tariff(NOV[0], 720, "EUR", 0, (1, 2), (0, 0)))
    batch = ledger.batch("m-a", NOV[0])
    first = Bill("m-a", NOV[0], batch.batch_hash(), day.tariff_hash(), 5, bytes(65))
    ledger.ok(first)
    assert refused(ledger, first)[:2] == ("R5", "DUPLICATE_BILL")
    assert ledger.state.original(first) == ledger.state.meters["m-a"].bills[NOV[0]]
    other = Bill("m-a", NOV[0], batch.batch_hash(), day.tariff_hash(), 6, bytes(65))
    assert refused(ledger, other)[:2] == ("R11", "BILL_EXISTS")
    assert ledger.state.meters["m-a"].batches[NOV[0]].digest == batch.batch_hash()
    assert batch.prev_hash == ZERO_HASH


def test_record_digest_is_the_tariff_hash() -> None:
    t = tariff()
    assert rules.record_digest(t) == t.tariff_hash() == hashlib.sha256(t.encode()).digest()
