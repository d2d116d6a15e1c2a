"""Test support for the auditor: build a settled ledger through the real domain, export it,
tamper with the database behind the store's back, run ``zkgrid audit``. Not a test module."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
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
from settlement.records import Bill, ReadingBatch, Tariff
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
