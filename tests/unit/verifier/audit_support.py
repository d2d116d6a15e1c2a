"""Test support for the auditor: build a settled ledger through the real domain, export it,
tamper with the database behind the store's back, run ``zkgrid audit``. Not a test module."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ledger.checkpoint import CheckpointSigner
from ledger.entries import EntryKind
from service.export import export_ledger
from service.settlement import Settlement
from service.storage import LedgerStore, open_store
from settlement.cycle_bills import prove_cycle_bill
from settlement.periods import cycle_periods
from settlement.records import Bill, CycleBill, CycleTariff, ReadingBatch, Tariff
from tests.unit.service.settlement_support import SimMeter, make_tariff
from verifier import cli

ORIGIN = "zkgrid.test/audit"
SIGNER = CheckpointSigner.from_private_bytes("zkgrid-test", bytes(range(32)))
LOG_KEY = SIGNER.verifier_key()
OTHER_KEY = CheckpointSigner.from_private_bytes("zkgrid-test", bytes(32)).verifier_key()
PERIODS = ("2025-03-01", "2025-03-02")


@dataclass
class Built:
    """A ledger built through the settlement domain, with where each record landed."""

    url: str
    meters: list[SimMeter]
    tariffs: dict[str, Tariff] = field(default_factory=dict)
    batch_index: dict[tuple[str, str], int] = field(default_factory=dict)
    bill_index: dict[tuple[str, str], int] = field(default_factory=dict)
    bill_totals: list[int] = field(default_factory=list)
    size: int = 0


def open_ledger(url: str) -> LedgerStore:
    return open_store(url, SIGNER, ORIGIN, startup_check="quick")


def build_ledger(
    url: str, meters: int = 3, periods: Sequence[str] = PERIODS, *, bill: bool = True
) -> Built:
    """Register ``meters`` meters (4-hour intervals), then per period a tariff, one batch
    per meter and (``bill``) one bill per meter; one entry per append (and checkpoint)."""
    sims = [SimMeter(f"meter-{i:03d}") for i in range(meters)]
    built = Built(url, sims)
    with open_ledger(url) as store, Settlement(store) as settlement:
        for sim in sims:
            settlement.register_meter(sim.registration())
        extend(built, settlement, periods, bill=bill)
        built.size = store.size()
    return built


def extend(
    built: Built, settlement: Settlement, periods: Sequence[str], *, bill: bool = True
) -> None:
    for n, period in enumerate(periods):
        tariff = make_tariff(period, seed=n + len(built.tariffs) + 1)
        settlement.publish_tariff(tariff)
        built.tariffs[period] = tariff
        for sim in built.meters:
            receipt = settlement.submit_readings(sim.batch(period))
            built.batch_index[(sim.meter_id, period)] = receipt.index
        if bill:
            for sim in built.meters:
                b = sim.bill(period, tariff)
                receipt = settlement.submit_bill(b)
                built.bill_index[(sim.meter_id, period)] = receipt.index
                built.bill_totals.append(b.total)


def extend_ledger(built: Built, periods: Sequence[str]) -> None:
    with open_ledger(built.url) as store, Settlement(store) as settlement:
        extend(built, settlement, periods)
        built.size = store.size()


# --------------------------------------------------------------------------- billing cycles
#
# The service does not take records version 2 yet: the cycle tariffs and cycle bills are
# appended to the log directly (as the operator, who holds the log key, can), the meters and
# their batches go through the settlement domain. Every proof is real.

#: A two-day cycle of 60-minute intervals (24 a day): short, so that proving is quick.
CYCLE = ("2026-11-01", "2026-11-02")


def cycle_tariff(
    first: str, last: str, *, plan: str = "home", meters: tuple[str, ...] = (), **over: Any
) -> CycleTariff:
    """A 60-minute cycle tariff with inclining tiers and a demand charge (``over``
    replaces fields: ``tiers=((0, 300), (20_000, 150))`` makes them declining)."""
    fields: dict[str, Any] = {
        "plan": plan,
        "meters": meters,
        "first_period": first,
        "last_period": last,
        "interval_minutes": 60,
        "currency": "EUR",
        "fixed_charge": 4_500_000,
        "import_price": tuple(100 + 5 * (t % 6) for t in range(24)),
        "export_credit": (40,) * 24,
        "tiers": ((0, 50), (30_000, 90)),
        "demand_charge": 6_000_000,
    }
    fields.update(over)
    return CycleTariff(**fields)


def cycle_bill(sim: SimMeter, tariff: CycleTariff) -> CycleBill:
    """The meter's real cycle bill of ``tariff`` from its batches and openings."""
    periods = tariff.periods
    return prove_cycle_bill(
        sim.meter_id,
        tariff,
        [sim.batches[p] for p in periods],
        [(sim.openings[p].values, sim.openings[p].blindings) for p in periods],
    )


@dataclass
class CycleBuilt:
    """A ledger with a day billed under a day's tariff and a cycle billed under cycle
    tariffs (a default plan, and a plan listing the last meter)."""

    url: str
    meters: list[SimMeter]
    tariffs: dict[str, CycleTariff] = field(default_factory=dict)
    tariff_index: dict[str, int] = field(default_factory=dict)
    batch_index: dict[tuple[str, str], int] = field(default_factory=dict)
    #: meter id -> its cycle bill and where it is
    bills: dict[str, CycleBill] = field(default_factory=dict)
    bill_index: dict[str, int] = field(default_factory=dict)
    day_bill_totals: list[int] = field(default_factory=list)
    size: int = 0


def build_cycle_ledger(
    url: str,
    meters: int = 2,
    cycle: Sequence[str] = CYCLE,
    *,
    day: str | None = "2026-10-31",
    bill: bool = True,
    written: int | None = None,
) -> CycleBuilt:
    """Register ``meters`` meters (60-minute intervals); ``day``: a day's tariff, a batch
    and a bill per meter; publish the cycle tariffs ("home", the default plan, and "solar",
    declining tiers, listing the last meter); a batch per meter and period of ``cycle``
    (first and last period; ``written``: of its first periods only, :func:`write_batches`
    adds the others); ``bill``: each meter's cycle bill. One entry per append."""
    sims = [SimMeter(f"meter-{i:03d}", interval_minutes=60) for i in range(meters)]
    built = CycleBuilt(url, sims)
    first, last = cycle[0], cycle[-1]
    with open_ledger(url) as store, Settlement(store) as settlement:
        for sim in sims:
            settlement.register_meter(sim.registration())
        if day is not None:
            day_tariff = make_tariff(day, interval_minutes=60)
            settlement.publish_tariff(day_tariff)
            for sim in sims:
                settlement.submit_readings(sim.batch(day))
            for sim in sims:
                b = sim.bill(day, day_tariff)
                settlement.submit_bill(b)
                built.day_bill_totals.append(b.total)
    home = cycle_tariff(first, last)
    solar = cycle_tariff(
        first,
        last,
        plan="solar",
        meters=(sims[-1].meter_id,),
        tiers=((0, 300), (20_000, 150)),
        demand_charge=0,
    )
    with open_ledger(url) as store:
        for plan in (home, solar):
            built.tariffs[plan.plan] = plan
            built.tariff_index[plan.plan] = store.append(EntryKind.TARIFF, plan.encode()).index
    write_batches(built, cycle_periods(first, last)[:written])
    if bill:
        bill_cycle(built)
    return built


def write_batches(built: CycleBuilt, periods: Sequence[str]) -> None:
    """Each meter's batch of each of ``periods``, through the settlement domain."""
    with open_ledger(built.url) as store, Settlement(store) as settlement:
        for period in periods:
            for sim in built.meters:
                receipt = settlement.submit_readings(sim.batch(period))
                built.batch_index[(sim.meter_id, period)] = receipt.index
        built.size = store.size()


def plan_of(built: CycleBuilt, sim: SimMeter) -> CycleTariff:
    return built.tariffs["solar" if sim is built.meters[-1] else "home"]


def bill_cycle(built: CycleBuilt, sims: Sequence[SimMeter] | None = None, *, edit: int = 0) -> None:
    """Append the cycle bill of each of ``sims`` (default: every meter), its total moved by
    ``edit`` with the proof kept: what a dishonest operator writes into the log it signs."""
    with open_ledger(built.url) as store:
        for sim in built.meters if sims is None else sims:
            b = cycle_bill(sim, plan_of(built, sim))
            if edit:
                b = replace(b, total=b.total + edit)
            built.bills[sim.meter_id] = b
            built.bill_index[sim.meter_id] = store.append(EntryKind.BILL, b.encode()).index
        built.size = store.size()


def copy_cycle_ledger(built: CycleBuilt, directory: Path) -> CycleBuilt:
    """A private copy of a built SQLite ledger in ``directory`` (so a module can build one
    and each test tamper with its own); the meters are shared: write no batches to it."""
    source = Path(built.url.removeprefix("sqlite:///"))
    target = directory / source.name
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{source}{suffix}").exists():
            shutil.copy(f"{source}{suffix}", f"{target}{suffix}")
    return replace(
        built,
        url=f"sqlite:///{target}",
        tariffs=dict(built.tariffs),
        tariff_index=dict(built.tariff_index),
        batch_index=dict(built.batch_index),
        bills=dict(built.bills),
        bill_index=dict(built.bill_index),
        day_bill_totals=list(built.day_bill_totals),
    )


def cycle_bill_at(url: str, index: int) -> CycleBill:
    kind, payload = read_payload(url, index)
    assert kind == EntryKind.BILL
    return CycleBill.decode(payload)


# --------------------------------------------------------------------------- raw tampering


def _engine_url(url: str) -> Any:
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def raw_sql(url: str, *statements: str, params: dict[str, Any] | None = None) -> None:
    """Run statements directly against the database with the append-only triggers off."""
    engine = create_engine(_engine_url(url))
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "sqlite":
                names = [
                    r[0]
                    for r in conn.exec_driver_sql(
                        "SELECT name FROM sqlite_master WHERE type = 'trigger'"
                    )
                ]
                for name in names:
                    conn.exec_driver_sql(f'DROP TRIGGER "{name}"')
            else:
                for table in ("ledger_entries", "ledger_checkpoints", "ledger_nodes"):
                    conn.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            for statement in statements:
                conn.execute(text(statement), params or {})
    finally:
        engine.dispose()


def read_payload(url: str, index: int) -> tuple[int, bytes]:
    engine = create_engine(_engine_url(url))
    try:
        with engine.connect() as conn:
            row = conn.execute(
                text("SELECT kind, payload FROM ledger_entries WHERE idx = :i"), {"i": index}
            ).one()
            return int(row.kind), bytes(row.payload)
    finally:
        engine.dispose()


def set_payload(url: str, index: int, payload: bytes, kind: int | None = None) -> None:
    if kind is None:
        raw_sql(
            url,
            "UPDATE ledger_entries SET payload = :p WHERE idx = :i",
            params={"p": payload, "i": index},
        )
    else:
        raw_sql(
            url,
            "UPDATE ledger_entries SET payload = :p, kind = :k WHERE idx = :i",
            params={"p": payload, "i": index, "k": kind},
        )


def batch_at(url: str, index: int) -> ReadingBatch:
    kind, payload = read_payload(url, index)
    assert kind == EntryKind.READING_BATCH
    return ReadingBatch.decode(payload)


def bill_at(url: str, index: int) -> Bill:
    kind, payload = read_payload(url, index)
    assert kind == EntryKind.BILL
    return Bill.decode(payload)


# --------------------------------------------------------------------------- running the audit


@dataclass
class Outcome:
    code: int
    out: str
    err: str

    @property
    def report(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.out)
        return data

    def reasons_at(self, index: int | None) -> set[str]:
        return {v["reason"] for v in self.report["violations"] if v["index"] == index}

    @property
    def reasons(self) -> set[str]:
        return {v["reason"] for v in self.report["violations"]}


def export(url: str, path: Path) -> Path:
    export_ledger(url, path)
    return path


def audit(
    capsys: pytest.CaptureFixture[str],
    *args: str,
    log_key: str = LOG_KEY,
    json_out: bool = True,
) -> Outcome:
    argv = [*args, "--log-key", log_key, "--workers", "1"]
    if json_out:
        argv.append("--json")
    if "--state" not in args and "--since-last" not in args:
        argv.append("--no-state")
    capsys.readouterr()
    code = cli.main(argv)
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err)
