"""The auditor catches an edited cycle bill (records version 2).

A dishonest operator holds the log key: it can write any bill into the log and sign
the checkpoints, so the tree is fine and only the bill's circuit proof (C6) can tell.
It can also rewrite a stored bill behind the service's back (the tree then shows it as
well). Every bill here is a real meter's real proof over real batches; the honest bills
next to the edited ones must not be flagged.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from ledger.entries import EntryKind
from settlement.records import CycleBill
from tests.unit.verifier.audit_support import (
    CycleBuilt,
    Outcome,
    audit,
    bill_cycle,
    build_cycle_ledger,
    copy_cycle_ledger,
    cycle_bill,
    cycle_bill_at,
    export,
    open_ledger,
    plan_of,
    read_payload,
    set_payload,
)


@pytest.fixture(scope="module")
def unbilled(tmp_path_factory: pytest.TempPathFactory) -> CycleBuilt:
    """Two meters with their batches of a two-day cycle of 60-minute intervals and the
    cycle tariffs (a default plan with inclining tiers and a demand charge; a plan with
    declining tiers listing the second meter); no cycle bill yet."""
    url = f"sqlite:///{tmp_path_factory.mktemp('unbilled') / 'ledger.db'}"
    return build_cycle_ledger(url, day=None, bill=False)


@pytest.fixture
def ledger(unbilled: CycleBuilt, tmp_path: Path) -> CycleBuilt:
    return copy_cycle_ledger(unbilled, tmp_path)


def _audit(built: CycleBuilt, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Outcome:
    return audit(capsys, "--archive", str(export(built.url, tmp_path / "ledger.zla")))


def _append(built: CycleBuilt, bill: CycleBill) -> int:
    """The operator writes ``bill`` into the log it signs."""
    with open_ledger(built.url) as store:
        return store.append(EntryKind.BILL, bill.encode()).index


def _flagged(outcome: Outcome) -> set[tuple[int, str]]:
    return {(v["index"], v["reason"]) for v in outcome.report["violations"]}


@pytest.mark.parametrize("edit", [-1_000_000, -1, 1])
def test_an_edited_total_signed_into_the_log_is_named(
    ledger: CycleBuilt, tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: int
) -> None:
    honest, dishonest = ledger.meters
    bill_cycle(ledger, [honest])
    bill_cycle(ledger, [dishonest], edit=edit)
    outcome = _audit(ledger, tmp_path, capsys)
    assert outcome.code == 1
    bad = ledger.bill_index[dishonest.meter_id]
    assert _flagged(outcome) == {(bad, "PROOF_INVALID")}  # the tree holds: only C6 tells
    [violation] = outcome.report["violations"]
    assert violation["detail"].startswith("(C6) the cycle bill proof does not verify")
    # the figures still count what the log says (the edited total included)
    figures = outcome.report["figures"]
    assert figures["cycle_bills"] == 2
    assert figures["bill_sums_micro"] == {"EUR": sum(b.total for b in ledger.bills.values())}


def test_an_edited_total_rewritten_in_place_is_named(
    ledger: CycleBuilt, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bill_cycle(ledger)
    honest, dishonest = (ledger.bill_index[sim.meter_id] for sim in ledger.meters)
    stored = cycle_bill_at(ledger.url, dishonest)
    set_payload(ledger.url, dishonest, replace(stored, total=stored.total - 250_000).encode())
    outcome = _audit(ledger, tmp_path, capsys)
    assert outcome.code == 1
    assert {"PROOF_INVALID", "ROOT_MISMATCH"} <= outcome.reasons_at(dishonest)
    assert outcome.reasons_at(honest) == set()
    assert {i for i, r in _flagged(outcome) if r == "PROOF_INVALID"} == {dishonest}


@pytest.mark.parametrize(
    ("where", "reasons"),
    [
        pytest.param(-1, {"PROOF_INVALID"}, id="last scalar"),
        pytest.param(-100, {"PROOF_INVALID"}, id="a middle scalar (mu)"),
        pytest.param(0, {"PROOF_MALFORMED"}, id="a point's prefix"),
        pytest.param(5, {"PROOF_INVALID", "PROOF_MALFORMED"}, id="a point's x"),
        pytest.param(None, {"PROOF_MALFORMED"}, id="one byte short"),
    ],
)
def test_flipped_proof_bytes_are_named(
    ledger: CycleBuilt,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    where: int | None,
    reasons: set[str],
) -> None:
    """The meter's real bill with its proof bytes changed, signed into the log."""
    honest, victim = ledger.meters
    bill_cycle(ledger, [honest])
    real = cycle_bill(victim, plan_of(ledger, victim))
    proof = bytearray(real.proof)
    if where is None:
        del proof[-1]
    elif where == 0:
        proof[0] = 0x05  # not a point's prefix
    else:
        proof[where] ^= 0x01
    index = _append(ledger, replace(real, proof=bytes(proof)))
    outcome = _audit(ledger, tmp_path, capsys)
    assert outcome.code == 1
    flagged = _flagged(outcome)
    assert len(flagged) == 1  # one finding, at the bill: MALFORMED or INVALID, not both
    [(at, reason)] = flagged
    assert at == index
    assert reason in reasons
    assert outcome.report["violations"][0]["detail"].startswith("(C6) ")


def test_proofs_swapped_between_meters_are_named(
    ledger: CycleBuilt, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each meter's bill carries the other's proof (and total): both are named."""
    first, second = ledger.meters
    a = cycle_bill(first, plan_of(ledger, first))
    b = cycle_bill(second, plan_of(ledger, second))
    i = _append(ledger, replace(a, proof=b.proof))
    j = _append(ledger, replace(b, proof=a.proof, total=a.total))
    outcome = _audit(ledger, tmp_path, capsys)
    assert outcome.code == 1
    assert _flagged(outcome) == {(i, "PROOF_INVALID"), (j, "PROOF_INVALID")}


def test_a_valid_bill_replayed_is_refused_and_counted_once(
    ledger: CycleBuilt, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bill_cycle(ledger)
    first = ledger.meters[0].meter_id
    _, payload = read_payload(ledger.url, ledger.bill_index[first])
    with open_ledger(ledger.url) as store:
        again = store.append(EntryKind.BILL, payload).index
    outcome = _audit(ledger, tmp_path, capsys)
    assert outcome.code == 1
    assert _flagged(outcome) == {(again, "DUPLICATE_BILL")}  # R5: the rules, not the proof
    figures = outcome.report["figures"]
    assert figures["cycle_bills"] == 3  # entries seen
    assert figures["bill_sums_micro"] == {"EUR": sum(b.total for b in ledger.bills.values())}


def test_honest_bills_pass(
    ledger: CycleBuilt, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bill_cycle(ledger)
    outcome = _audit(ledger, tmp_path, capsys)
    assert outcome.code == 0, outcome.out
    assert outcome.report["figures"]["cycle_bills"] == 2
