"""meter.statement and meter.render: a bill's breakdown from the settlement's rule, the checks
against the ledger's bill with their named reasons, and the statement's text, JSON and CSV.

Real batches and bill proofs (offline, T = 6 intervals), no service.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from meter.client import MeterClient, StatementLine, VerifiedReceipt, prove_bill_from_openings
from meter.openings import StoredBatch
from meter.readings import DayReadings
from meter.render import statement_csv, statement_document, statement_text
from meter.statement import (
    DetailedStatement,
    DetailLine,
    breakdown,
    check_bill,
    openings_match_commitments,
)
from settlement.records import Tariff
from zkgrid.errors import Reason

INTERVAL = 240
PERIOD = "2026-11-21"
NEXT = "2026-11-22"
IMPORTS = (1_000, 2_000, 3_000, 500, 0, 7)
EXPORTS = (0, 0, 4_000, 2_500, 13, 0)
PRICES = (100, 200, 300, 400, 500, 600)
CREDITS = (80, 80, 60, 60, 80, 80)
FIXED = 450_000


def _tariff(period: str = PERIOD, *, fixed: int = FIXED, prices: tuple[int, ...] = PRICES,
            credits: tuple[int, ...] = CREDITS) -> Tariff:  # fmt: skip
    return Tariff(period, INTERVAL, "EUR", fixed, prices, credits)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[MeterClient]:
    MeterClient.keygen(tmp_path / "home", "meter-7", INTERVAL)
    c = MeterClient(tmp_path / "home")
    yield c
    c.close()


def _stored(client: MeterClient, period: str = PERIOD) -> StoredBatch:
    client.build_batch(DayReadings.from_lists(period, INTERVAL, IMPORTS, EXPORTS))
    stored = client.store.batch(period)
    assert stored is not None
    client.store.mark_accepted(period, b"receipt")
    stored = client.store.batch(period)
    assert stored is not None
    return stored


def _receipt(index: int, *, pinned: bool = True) -> VerifiedReceipt:
    return VerifiedReceipt(index, bytes(32), index + 1, bytes(32), "", pinned, b"")


# --------------------------------------------------------------------------- breakdown


def test_breakdown_parts_are_exact_and_add_up() -> None:
    parts = breakdown(_tariff(), IMPORTS, EXPORTS)
    energy = 100 * 1_000 + 200 * 2_000 + 300 * 3_000 + 400 * 500 + 500 * 0 + 600 * 7
    credit = 60 * 4_000 + 60 * 2_500 + 80 * 13
    assert parts.fixed_charge == FIXED
    assert parts.energy_charge == energy == 1_604_200
    assert parts.feed_in_credit == credit == 391_040
    assert parts.total == FIXED + energy - credit == _tariff().bill_total(IMPORTS, EXPORTS)
    assert parts.import_wh == sum(IMPORTS)
    assert parts.export_wh == sum(EXPORTS)
    assert parts.currency == "EUR"


def test_breakdown_of_a_negative_fixed_charge_and_no_energy() -> None:
    parts = breakdown(_tariff(fixed=-10), (0,) * 6, (0,) * 6)
    assert (parts.fixed_charge, parts.energy_charge, parts.feed_in_credit, parts.total) == (
        -10, 0, 0, -10,
    )  # fmt: skip


# --------------------------------------------------------------------------- checks


def test_the_ledgers_bill_matches_the_local_openings(client: MeterClient) -> None:
    stored = _stored(client)
    bill = prove_bill_from_openings(stored, _tariff(), client.meter_id)
    assert check_bill(bill, _tariff(), stored) == []
    assert openings_match_commitments(stored)


def test_a_bill_naming_another_batch_or_tariff_is_named(client: MeterClient) -> None:
    stored = _stored(client)
    bill = prove_bill_from_openings(stored, _tariff(), client.meter_id)
    other_batch = dataclasses.replace(bill, batch_hash=bytes(32))
    (v,) = check_bill(other_batch, _tariff(), stored)
    assert v.reason is Reason.UNKNOWN_BATCH
    assert v.period == PERIOD
    other_tariff = _tariff(fixed=FIXED + 1)
    reasons = [v.reason for v in check_bill(bill, other_tariff, stored)]
    assert reasons == [Reason.UNKNOWN_TARIFF]


def test_a_ledger_total_its_proof_does_not_support_is_proof_invalid(client: MeterClient) -> None:
    stored = _stored(client)
    bill = prove_bill_from_openings(stored, _tariff(), client.meter_id)
    forged = dataclasses.replace(bill, total=bill.total - 10_000)
    (v,) = check_bill(forged, _tariff(), stored)
    assert v.reason is Reason.PROOF_INVALID
    assert str(bill.total - 10_000) in v.detail


def test_local_openings_that_are_not_the_committed_ones_are_opening_store(
    client: MeterClient,
) -> None:
    stored = _stored(client)
    bill = prove_bill_from_openings(stored, _tariff(), client.meter_id)
    values = list(stored.values)
    values[0] += 1  # import of interval 0, priced 100 per Wh
    damaged = dataclasses.replace(stored, values=tuple(values))
    assert not openings_match_commitments(damaged)
    (v,) = check_bill(bill, _tariff(), damaged)
    assert v.reason is Reason.OPENING_STORE
    assert "restore" in v.detail
    blindings = list(stored.blindings)
    blindings[3] += 1
    assert not openings_match_commitments(dataclasses.replace(stored, blindings=tuple(blindings)))


def test_a_billed_period_without_local_openings_is_opening_store(client: MeterClient) -> None:
    stored = _stored(client)
    bill = prove_bill_from_openings(stored, _tariff(), client.meter_id)
    (v,) = check_bill(bill, _tariff(), None)
    assert v.reason is Reason.OPENING_STORE


# --------------------------------------------------------------------------- rendering


def _two_days_of_2_98(client: MeterClient) -> DetailedStatement:
    """Two billed days of exactly 2.98 EUR each (a fixed charge, no energy prices)."""
    lines = []
    for index, period in enumerate((PERIOD, NEXT)):
        tariff = _tariff(period, fixed=2_980_000, prices=(0,) * 6, credits=(0,) * 6)
        stored = _stored(client, period)
        bill = prove_bill_from_openings(stored, tariff, client.meter_id)
        assert bill.total == 2_980_000
        parts = breakdown(tariff, stored.imports, stored.exports)
        violations = tuple(check_bill(bill, tariff, stored))
        line = StatementLine(bill, _receipt(10 + index))
        lines.append(
            DetailLine(period, tariff, _receipt(2 + index), stored, line, parts, violations)
        )
    return DetailedStatement(client.meter_id, tuple(lines))


def test_two_bills_of_2_98_total_5_96_in_text_json_and_csv(client: MeterClient) -> None:
    statement = _two_days_of_2_98(client)
    assert statement.violations == ()
    assert statement.totals() == {"EUR": 5_960_000}
    text = statement_text(statement, detail=True)
    assert text.count("2.98 EUR") >= 2
    assert "total" in text.splitlines()[-1]
    assert "5.96 EUR" in text.splitlines()[-1]
    assert "5.95" not in text
    assert "check: the local breakdown matches the ledger's bill" in text
    doc = json.loads(json.dumps(statement_document(statement, detail=True)))
    assert doc["schema"] == "zkgrid.meter.statement/1"
    assert doc["totals"] == [{"currency": "EUR", "micro": 5_960_000, "amount": "5.96"}]
    assert [line["bill_total"] for line in doc["lines"]] == [
        {"micro": 2_980_000, "amount": "2.98"},
        {"micro": 2_980_000, "amount": "2.98"},
    ]
    assert all(line["matches_ledger"] for line in doc["lines"])
    rows = list(csv.DictReader(io.StringIO(statement_csv(statement, detail=True))))
    assert [r["bill_total"] for r in rows] == ["2.98", "2.98"]
    assert sum(int(r["bill_total_micro"]) for r in rows) == 5_960_000
    assert [r["check"] for r in rows] == ["ok", "ok"]


def test_the_detail_shows_the_parts_the_kwh_and_the_tariff(client: MeterClient) -> None:
    stored = _stored(client)
    tariff = _tariff()
    bill = prove_bill_from_openings(stored, tariff, client.meter_id)
    parts = breakdown(tariff, stored.imports, stored.exports)
    line = DetailLine(PERIOD, tariff, _receipt(1), stored, StatementLine(bill, _receipt(5)),
                      parts, ())  # fmt: skip
    statement = DetailedStatement(client.meter_id, (line,))
    text = statement_text(statement, detail=True)
    assert "fixed charge" in text
    assert "0.45 EUR" in text
    assert "energy charge" in text
    assert "6.507 kWh" in text  # sum(IMPORTS) = 6507 Wh
    assert "1.6042 EUR" in text
    assert "feed-in credit" in text
    assert "6.513 kWh" in text
    assert "-0.39104 EUR" in text
    assert bill.total == 1_663_160
    assert "1.66316 EUR" in text
    assert tariff.tariff_hash().hex() in text
    assert "import 0.10-0.60 EUR/kWh" in text
    doc = statement_document(statement, detail=True)
    (jline,) = doc["lines"]
    assert jline["breakdown"]["energy_charge"] == {"micro": 1_604_200, "amount": "1.6042"}
    assert jline["breakdown"]["feed_in_credit"]["micro"] == 391_040
    assert jline["breakdown"]["import_wh"] == 6_507
    assert jline["tariff"]["tariff_hash"] == tariff.tariff_hash().hex()
    assert jline["tariff"]["import_price_micro_per_wh"] == list(PRICES)
    assert jline["receipt"]["signature_verified"] is True
    assert jline["receipt"]["status"] == "verified"


def test_an_unpinned_receipt_is_never_called_verified(client: MeterClient) -> None:
    stored = _stored(client)
    tariff = _tariff()
    bill = prove_bill_from_openings(stored, tariff, client.meter_id)
    line = DetailLine(PERIOD, tariff, _receipt(1, pinned=False), stored,
                      StatementLine(bill, _receipt(5, pinned=False)), None, ())  # fmt: skip
    statement = DetailedStatement(client.meter_id, (line,))
    text = statement_text(statement, detail=False)
    assert "inclusion only, log key not pinned" in text
    assert " verified" not in text
    doc = statement_document(statement, detail=False)
    assert doc["lines"][0]["receipt"]["signature_verified"] is False
    assert "breakdown" not in doc["lines"][0]
    assert doc["violations"] == []


def test_violations_are_listed_with_their_reasons(client: MeterClient) -> None:
    stored = _stored(client)
    tariff = _tariff()
    bill = prove_bill_from_openings(stored, tariff, client.meter_id)
    forged = dataclasses.replace(bill, total=bill.total + 1)
    violations = tuple(check_bill(forged, tariff, stored))
    line = DetailLine(PERIOD, tariff, _receipt(1), stored, StatementLine(forged, _receipt(5)),
                      breakdown(tariff, stored.imports, stored.exports), violations)  # fmt: skip
    statement = DetailedStatement(client.meter_id, (line,))
    assert "VIOLATION PROOF_INVALID" in statement_text(statement, detail=True)
    doc = statement_document(statement, detail=True)
    assert doc["violations"] == [
        {"period": PERIOD, "reason": "PROOF_INVALID", "detail": violations[0].detail}
    ]
    assert doc["lines"][0]["matches_ledger"] is False
    (row,) = csv.DictReader(io.StringIO(statement_csv(statement, detail=True)))
    assert row["check"] == "PROOF_INVALID"
    assert int(row["local_total_micro"]) == bill.total
    assert int(row["bill_total_micro"]) == bill.total + 1


def test_no_bills(client: MeterClient) -> None:
    empty = DetailedStatement(client.meter_id, ())
    assert statement_text(empty, detail=True) == "meter-7: no bills yet\n"
    assert statement_document(empty, detail=True)["lines"] == []
