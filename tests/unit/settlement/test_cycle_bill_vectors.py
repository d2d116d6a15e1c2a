"""Known-answer cycle bills (tests/vectors/cycle/bills.json): stored bills keep verifying."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from circuits.r1cs import R1CSStatement
from settlement.cycle_bills import cycle_bill_statement
from settlement.records import CycleBill, CycleTariff, ReadingBatch
from zkgrid.errors import VerificationError

VECTORS = json.loads(
    (Path(__file__).parents[2] / "vectors" / "cycle" / "bills.json").read_text()
)["vectors"]


def _decode(vector: dict[str, Any]) -> tuple[CycleTariff, list[ReadingBatch], CycleBill]:
    plan = CycleTariff.decode(bytes.fromhex(vector["tariff"]))
    batches = [ReadingBatch.decode(bytes.fromhex(b)) for b in vector["batches"]]
    return plan, batches, CycleBill.decode(bytes.fromhex(vector["bill"]))


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_a_stored_cycle_bill_still_verifies(vector: dict[str, Any]) -> None:
    plan, batches, bill = _decode(vector)
    assert bill.total == vector["total"]
    assert bill.total == plan.bill_breakdown(vector["imports"], vector["exports"]).total
    assert bill.tariff_hash == plan.tariff_hash()
    assert bill.batch_hashes == tuple(b.batch_hash() for b in batches)
    R1CSStatement.verify_batch([cycle_bill_statement(bill, plan, batches)])


def test_the_stored_bills_batch_and_an_edited_one_is_named() -> None:
    statements = [cycle_bill_statement(b, p, bs) for p, bs, b in map(_decode, VECTORS)]
    R1CSStatement.verify_batch(statements)
    plan, batches, bill = _decode(VECTORS[1])
    edited = dataclasses.replace(bill, total=bill.total - 1)
    statements[1] = cycle_bill_statement(edited, plan, batches)
    with pytest.raises(VerificationError):
        R1CSStatement.verify_batch(statements)
    assert R1CSStatement.find_invalid(statements) == [1]
