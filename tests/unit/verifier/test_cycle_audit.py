"""The auditor and billing cycles (records version 2): cycle tariffs and cycle bills are
counted, every cycle bill's circuit proof is re-verified in chunks (C6), and a resumed
auditor keeps the cycle tariffs. Real batches, real circuit proofs; tampering cases are
tests/adversarial/test_cycle_bill_tampering.py."""

from __future__ import annotations

import json
import pickle
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from circuits.r1cs import R1CSProof, R1CSStatement
from ledger.checkpoint import parse_verifier_key
from ledger.entries import EntryKind
from settlement.cycle_bills import cycle_bill_statement
from tests.unit.verifier.audit_support import (
    CYCLE,
    LOG_KEY,
    CycleBuilt,
    audit,
    bill_cycle,
    build_cycle_ledger,
    copy_cycle_ledger,
    cycle_tariff,
    export,
    open_ledger,
    plan_of,
    read_payload,
    set_payload,
    write_batches,
)
from verifier import audit as audit_module
from verifier.audit import AuditOptions, Auditor, AuditResult
from verifier.sources import ArchiveSource
from verifier.state import STATE_VERSION, load_state
from zkgrid.errors import Reason


@pytest.fixture(scope="module")
def cycle_ledger(tmp_path_factory: pytest.TempPathFactory) -> CycleBuilt:
    """Two meters: a day billed under a day's tariff, then a two-day cycle under two cycle
    tariffs, each meter's cycle bill honest (built once; tests audit copies)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('cycle') / 'ledger.db'}"
    return build_cycle_ledger(url)


@pytest.fixture
def built(cycle_ledger: CycleBuilt, tmp_path: Path) -> CycleBuilt:
    return copy_cycle_ledger(cycle_ledger, tmp_path)


def _run(built: CycleBuilt, tmp_path: Path, **options: Any) -> AuditResult:
    archive = export(built.url, tmp_path / "ledger.zla")
    source = ArchiveSource(archive)
    try:
        opts = AuditOptions(log_key=parse_verifier_key(LOG_KEY), **{"workers": 1, **options})
        return Auditor(source, opts).run()
    finally:
        source.close()


# --------------------------------------------------------------------------- clean


def test_clean_cycle_ledger_passes_with_the_right_figures(
    built: CycleBuilt, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = audit(capsys, "--archive", str(export(built.url, tmp_path / "l.zla")))
    assert result.code == 0, result.out
    figures = result.report["figures"]
    assert figures["entries"] == built.size == 2 + (1 + 2 + 2) + 2 + 2 * 2 + 2
    assert (figures["tariffs"], figures["cycle_tariffs"]) == (3, 2)
    assert (figures["bills"], figures["cycle_bills"]) == (4, 2)
    assert figures["batches"] == 6
    assert figures["periods"] == 3  # the day, and the cycle's two
    cycle_totals = [b.total for b in built.bills.values()]
    assert figures["bill_sums_micro"] == {"EUR": sum(built.day_bill_totals) + sum(cycle_totals)}
    # The bills are the tariffs' bills of the readings (what the proofs say, in the clear).
    for sim in built.meters:
        tariff = plan_of(built, sim)
        values = [sim.openings[p].values for p in tariff.periods]
        plain = tariff.bill_breakdown([v[0::2] for v in values], [v[1::2] for v in values])
        assert built.bills[sim.meter_id].total == plain.total


def test_human_summary_names_the_cycles(
    built: CycleBuilt, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = str(export(built.url, tmp_path / "l.zla"))
    result = audit(capsys, "--archive", archive, json_out=False)
    assert result.code == 0
    assert "(2 of billing cycles)" in result.out


def test_a_flipped_proof_is_named_exactly_among_valid_ones(
    built: CycleBuilt, tmp_path: Path
) -> None:
    """Through the engine's API: the bad cycle bill is named, the good one is not, and the
    finding reads as a day's bill's does (reason code, rule label, entry index)."""
    bad, good = (built.bill_index[sim.meter_id] for sim in built.meters)
    _, payload = read_payload(built.url, bad)
    proof = built.bills[built.meters[0].meter_id].proof
    flipped = bytearray(proof)
    flipped[-1] ^= 0x01  # the last scalar: still parses
    set_payload(built.url, bad, payload.replace(proof, bytes(flipped)))
    result = _run(built, tmp_path)
    proofs = [v for v in result.violations if v.reason is Reason.PROOF_INVALID]
    assert [v.index for v in proofs] == [bad]
    assert proofs[0].detail.startswith("(C6) ")
    assert good not in {v.index for v in result.violations}


# --------------------------------------------------------------------------- chunks


def test_cycle_bills_are_verified_in_chunks(
    built: CycleBuilt, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flush hands the cycle bills over (statements are built and dropped per chunk): with
    a flush after every batch or cycle bill each goes alone, and a chunk holds at most
    UNIT_CHUNK periods of cycles."""
    chunks: list[list[int]] = []
    real = audit_module.verify_cycle_bills

    def spy(chunk: Any) -> Any:
        chunks.append([job[0] for job in chunk[1]])
        assert set(chunk[0]) == {job[1] for job in chunk[1]}  # the tariffs it names, no more
        return real(chunk)

    monkeypatch.setattr(audit_module, "verify_cycle_bills", spy)
    indices = sorted(built.bill_index.values())
    assert _run(built, tmp_path, flush_units=1).ok
    assert chunks == [[i] for i in indices]
    chunks.clear()
    monkeypatch.setattr(audit_module, "UNIT_CHUNK", len(CYCLE))  # one two-day cycle each
    assert _run(built, tmp_path).ok
    assert chunks == [[i] for i in indices]
    chunks.clear()
    monkeypatch.setattr(audit_module, "UNIT_CHUNK", 2 * len(CYCLE))
    assert _run(built, tmp_path).ok
    assert chunks == [indices]


def test_cycle_bills_in_a_process_pool(
    built: CycleBuilt, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The jobs travel to spawn workers (picklable, decoded there) and their findings back."""
    submitted: list[str] = []

    class Pool(ProcessPoolExecutor):
        def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
            submitted.append(fn.__name__)
            return super().submit(fn, *args, **kwargs)

    monkeypatch.setattr(audit_module, "ProcessPoolExecutor", Pool)
    bad = built.bill_index[built.meters[1].meter_id]
    _, payload = read_payload(built.url, bad)
    proof = built.bills[built.meters[1].meter_id].proof
    flipped = bytearray(proof)
    flipped[-1] ^= 0x01
    set_payload(built.url, bad, payload.replace(proof, bytes(flipped)))
    result = _run(built, tmp_path, workers=2, pool_threshold=0)
    assert {(v.index, v.reason) for v in result.violations if v.reason.startswith("PROOF")} == {
        (bad, Reason.PROOF_INVALID)
    }
    assert submitted.count("verify_cycle_bills") == 2  # one chunk per worker


# --------------------------------------------------------------------------- the jobs


def _job(built: CycleBuilt, sim_index: int) -> tuple[Any, Any]:
    sim = built.meters[sim_index]
    bill = built.bills[sim.meter_id]
    tariff = plan_of(built, sim)
    batches = tuple(
        (built.batch_index[(sim.meter_id, p)], sim.batches[p].commitments) for p in tariff.periods
    )
    job = (
        built.bill_index[sim.meter_id],
        bill.tariff_hash,
        bill.total,
        bill.proof_context(),
        bill.proof,
        batches,
    )
    return job, {bill.tariff_hash: tariff.encode()}


def test_the_auditors_statement_is_the_settlement_one(cycle_ledger: CycleBuilt) -> None:
    """The auditor builds a cycle bill's statement from commitments (it keeps no batch
    records): it judges exactly as settlement.cycle_bills.cycle_bill_statement does."""
    for sim in cycle_ledger.meters:
        bill = cycle_ledger.bills[sim.meter_id]
        tariff = plan_of(cycle_ledger, sim)
        batches = [sim.batches[p] for p in tariff.periods]
        job, tariffs = _job(cycle_ledger, cycle_ledger.meters.index(sim))
        assert audit_module.verify_cycle_bills((tariffs, [job])) == []
        assert R1CSStatement.find_invalid([cycle_bill_statement(bill, tariff, batches)]) == []
        edited = (job[0], job[1], job[2] + 1, *job[3:])
        findings = audit_module.verify_cycle_bills((tariffs, [edited]))
        assert [(i, r) for i, r, _ in findings] == [(job[0], Reason.PROOF_INVALID)]
        other = replace(bill, total=bill.total + 1)
        assert R1CSStatement.find_invalid([cycle_bill_statement(other, tariff, batches)]) == [0]


def test_malformed_inputs_of_a_job(cycle_ledger: CycleBuilt) -> None:
    good, tariffs = _job(cycle_ledger, 0)
    other, other_tariffs = _job(cycle_ledger, 1)
    tariffs.update(other_tariffs)
    # a batch of the cycle with a commitment that is not a point: the batch is named
    batch_index, commitments = good[5][1]
    not_a_point = (b"\x02" + b"\xff" * 32, *commitments[1:])
    broken = (*good[:5], (good[5][0], (batch_index, not_a_point)))
    # a proof that does not parse
    unparsable = (*other[:4], b"\x05" + other[4][1:], other[5])
    chunk = (tariffs, [broken, unparsable])
    findings = audit_module.verify_cycle_bills(pickle.loads(pickle.dumps(chunk)))
    assert findings == [
        (good[0], Reason.PROOF_INVALID, f"(C6) a batch of its cycle (entry {batch_index}) is"
         " malformed"),
        (other[0], Reason.PROOF_MALFORMED, "(C6) the cycle bill proof cannot be parsed"),
    ]  # fmt: skip
    with pytest.raises(Exception, match="circuit proof"):
        R1CSProof.from_bytes(unparsable[4])
    # the good ones next to them still verify, in one batch
    assert audit_module.verify_cycle_bills((tariffs, [good, other])) == []


# --------------------------------------------------------------------------- state


def test_resume_keeps_the_cycle_tariffs_and_judges_cycle_bills(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A state saved with cycle tariffs and open batches of a cycle: after it, the cycle
    bills verify against the saved commitments (half the cycle's batches before the state,
    half after) and a second plan of the same cycle is refused (R16: the saved tariffs)."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    built = build_cycle_ledger(url, meters=2, day=None, bill=False)
    state = tmp_path / "state.json"
    first = audit(capsys, "--archive", str(export(url, tmp_path / "a.zla")), "--state", str(state))
    assert first.code == 0, first.out
    saved = load_state(state)
    assert saved is not None
    assert saved.ledger is not None
    assert json.loads(state.read_text())["version"] == STATE_VERSION == 3
    assert {t.plan for t, _ in saved.ledger.cycle_tariffs.values()} == {"home", "solar"}
    assert len(saved.open_batches) == 4
    old_size = built.size
    bill_cycle(built)
    resumed = audit(
        capsys,
        "--archive",
        str(export(url, tmp_path / "b.zla")),
        "--state",
        str(state),
        "--since-last",
    )
    assert resumed.code == 0, resumed.out
    figures = resumed.report["figures"]
    assert figures["entries"] == built.size - old_size == 2
    assert (figures["bills"], figures["cycle_bills"]) == (2, 2)
    assert figures["bill_sums_micro"] == {"EUR": sum(b.total for b in built.bills.values())}
    again = load_state(state)
    assert again is not None
    assert again.ledger is not None
    assert again.open_batches == {}  # every batch of the cycle is billed
    assert len(again.ledger.cycle_tariffs) == 2
    # a second "home" tariff overlapping the cycle: only the saved tariffs can refuse it
    clash = cycle_tariff(CYCLE[0], CYCLE[0], fixed_charge=1)
    with open_ledger(url) as store:
        index = store.append(EntryKind.TARIFF, clash.encode()).index
    refused = audit(
        capsys, "--archive", str(export(url, tmp_path / "c.zla")), "--state", str(state),
        "--since-last",
    )  # fmt: skip
    assert refused.code == 1
    assert refused.reasons_at(index) == {"TARIFF_EXISTS"}
    assert refused.report["figures"]["cycle_tariffs"] == 1


def test_resume_across_a_cycle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The state is saved in the middle of a cycle (its first day's batches open, the
    second day's not yet written): after it, the batches and the bills, an honest one and
    one whose total the operator edited, are judged against the saved commitments."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    built = build_cycle_ledger(url, meters=2, day=None, bill=False, written=1)
    state = tmp_path / "state.json"
    first = audit(capsys, "--archive", str(export(url, tmp_path / "a.zla")), "--state", str(state))
    assert first.code == 0, first.out
    saved = state.read_bytes()
    write_batches(built, CYCLE[1:])
    honest, dishonest = built.meters
    bill_cycle(built, [honest])
    bill_cycle(built, [dishonest], edit=-1_000_000)
    result = audit(
        capsys, "--archive", str(export(url, tmp_path / "b.zla")), "--state", str(state),
        "--since-last",
    )  # fmt: skip
    assert result.code == 1, result.out
    bad = built.bill_index[dishonest.meter_id]
    assert {(v["index"], v["reason"]) for v in result.report["violations"]} == {
        (bad, "PROOF_INVALID")
    }
    assert result.report["figures"]["cycle_bills"] == 2
    assert state.read_bytes() == saved  # a failed audit keeps the last good view


def test_an_older_state_cannot_resume_the_cycle_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A version-2 file kept no cycle tariffs: --since-last refuses it (exit 2, one line);
    a full audit accepts it as the last checkpoint and writes version 3."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    state = tmp_path / "state.json"
    build_cycle_ledger(url, meters=1, cycle=CYCLE[:1], day=None, bill=False)
    archive = str(export(url, tmp_path / "a.zla"))
    assert audit(capsys, "--archive", archive, "--state", str(state)).code == 0
    data = json.loads(state.read_text())
    del data["ledger"]["cycle_tariffs"]
    data["version"] = 2
    state.write_text(json.dumps(data))
    refused = audit(capsys, "--archive", archive, "--state", str(state), "--since-last")
    assert refused.code == 2
    assert refused.err.strip().splitlines() == [
        "zkgrid audit: the state file is of version 2, which cannot resume the rules (it did"
        " not keep the cycle tariffs): run one full audit (without --since-last) to write"
        " version 3"
    ]
    full = audit(capsys, "--archive", archive, "--state", str(state))
    assert full.code == 0, full.out
    assert json.loads(state.read_text())["version"] == 3
    assert audit(capsys, "--archive", archive, "--state", str(state), "--since-last").code == 0
