"""``zkgrid audit`` end to end: ledgers built through the settlement domain on a real store,
tampered with directly in SQLite and PostgreSQL, exported as stored and audited."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ledger.entries import EntryKind
from service.export import main as export_main
from settlement.records import ReadingBatch
from tests.unit.service.settlement_support import SimMeter
from tests.unit.verifier.audit_support import (
    LOG_KEY,
    OTHER_KEY,
    audit,
    batch_at,
    bill_at,
    build_ledger,
    export,
    extend_ledger,
    open_ledger,
    raw_sql,
    read_payload,
    set_payload,
)

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return str(request.getfixturevalue("pg_schema_url"))


def _archive(url: str, tmp_path: Path) -> str:
    return str(export(url, tmp_path / "ledger.zla"))


# --------------------------------------------------------------------------- clean


def test_clean_ledger_passes_with_the_right_figures(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    built = build_ledger(db_url)
    result = audit(capsys, "--archive", _archive(db_url, tmp_path))
    assert result.code == 0, result.out
    report = result.report
    assert report["ok"] is True
    assert report["violations"] == []
    assert report["checkpoint"]["size"] == built.size
    figures = report["figures"]
    assert figures["entries"] == built.size == 3 + 2 * (1 + 3 + 3)
    assert figures["meters_total"] == 3
    assert figures["periods"] == 2
    assert figures["tariffs"] == 2
    assert figures["batches"] == 6
    assert figures["bills"] == 6
    assert figures["bill_sums_micro"] == {"EUR": sum(built.bill_totals)}
    assert figures["entries_per_second"] > 0


def test_human_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    build_ledger(url, meters=2, periods=("2025-03-01",))
    result = audit(capsys, "--archive", _archive(url, tmp_path), json_out=False)
    assert result.code == 0
    assert "OK" in result.out
    assert "reading batches" in result.out
    assert "sum of bills (EUR)" in result.out


def test_export_cli_and_empty_ledger(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    open_ledger(url).close()
    out = tmp_path / "empty.zla"
    assert export_main(["--db", url, "--out", str(out)]) == 0
    result = audit(capsys, "--archive", str(out))
    assert result.code == 0, result.out
    assert result.report["figures"]["entries"] == 0
    assert export_main(["--db", f"sqlite:///{tmp_path / 'missing.db'}", "--out", str(out)]) == 2
    assert "no SQLite ledger" in capsys.readouterr().err
    assert export_main(["--db", "mysql://x/y", "--out", str(out)]) == 2
    assert export_main(["--out", str(out)]) == 2


# --------------------------------------------------------------------------- tampering


def test_changed_commitment_is_named(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    built = build_ledger(db_url)
    index = built.batch_index[("meter-001", "2025-03-02")]
    batch = batch_at(db_url, index)
    commitments = list(batch.commitments)
    commitments[0], commitments[1] = commitments[1], commitments[0]
    forged = ReadingBatch(
        batch.meter_id,
        batch.period,
        batch.interval_minutes,
        batch.sequence,
        batch.prev_hash,
        tuple(commitments),
        batch.range_proof,
        batch.signature,
    )
    set_payload(db_url, index, forged.encode())
    result = audit(capsys, "--archive", _archive(db_url, tmp_path))
    assert result.code == 1
    assert {"SIGNATURE_INVALID", "PROOF_INVALID"} <= result.reasons_at(index)
    assert "ROOT_MISMATCH" in result.reasons_at(index)  # one entry per checkpoint: exact
    # The meter's next link and its bill now point at a batch hash that changed.
    assert result.reasons_at(built.bill_index[("meter-001", "2025-03-02")]) == {"UNKNOWN_BATCH"}


def test_changed_proof_byte_is_named(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    built = build_ledger(db_url)
    index = built.batch_index[("meter-002", "2025-03-01")]
    _kind, payload = read_payload(db_url, index)
    batch = ReadingBatch.decode(payload)
    proof = bytearray(batch.range_proof)
    proof[-40] ^= 0x01  # inside the scalars: still parses
    tampered = payload.replace(batch.range_proof, bytes(proof))
    set_payload(db_url, index, tampered)
    result = audit(capsys, "--archive", _archive(db_url, tmp_path))
    assert result.code == 1
    assert "PROOF_INVALID" in result.reasons_at(index)
    assert "SIGNATURE_INVALID" in result.reasons_at(index)
    # Every other batch still verifies: bisection names exactly the bad one.
    flagged = {v["index"] for v in result.report["violations"] if v["reason"] == "PROOF_INVALID"}
    assert flagged == {index}


def test_deleted_entry_is_named(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    built = build_ledger(db_url)
    index = built.batch_index[("meter-000", "2025-03-01")]
    raw_sql(db_url, f"DELETE FROM ledger_entries WHERE idx = {index}")
    result = audit(capsys, "--archive", _archive(db_url, tmp_path))
    assert result.code == 1
    assert "ENTRY_MISSING" in result.reasons_at(index)
    assert "CHAIN_BROKEN" in result.reasons  # the meter's next batch lost its link
    # The same deletion with the later rows renumbered to close the gap.
    raw_sql(
        db_url,
        f"UPDATE ledger_entries SET idx = idx + 1000000 WHERE idx > {index}",
        f"UPDATE ledger_entries SET idx = idx - 1000001 WHERE idx > {index}",
    )
    renumbered = audit(capsys, "--archive", _archive(db_url, tmp_path))
    assert renumbered.code == 1
    assert "ROOT_MISMATCH" in renumbered.reasons_at(index)
    assert "ENTRY_MISSING" in renumbered.reasons_at(built.size - 1)


def test_swapped_entries_are_named(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    built = build_ledger(db_url)
    first = built.batch_index[("meter-000", "2025-03-01")]
    second = built.batch_index[("meter-002", "2025-03-01")]
    k1, p1 = read_payload(db_url, first)
    k2, p2 = read_payload(db_url, second)
    set_payload(db_url, first, p2, k2)
    set_payload(db_url, second, p1, k1)
    result = audit(capsys, "--archive", _archive(db_url, tmp_path))
    assert result.code == 1
    assert "ROOT_MISMATCH" in result.reasons_at(first)


def test_forged_batch_for_unregistered_meter(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The operator (who holds the log key) appends a batch the rules refuse: a well-formed,
    signed batch with a valid range proof, from a meter that was never registered."""
    build_ledger(db_url)
    stranger = SimMeter("meter-999")
    forged = stranger.batch("2025-03-01")
    with open_ledger(db_url) as store:
        index = store.append(EntryKind.READING_BATCH, forged.encode()).index
    result = audit(capsys, "--archive", _archive(db_url, tmp_path))
    assert result.code == 1
    assert result.reasons_at(index) == {"UNKNOWN_METER"}
    assert "ROOT_MISMATCH" not in result.reasons  # the log signed it: only the rules catch it


def test_edited_bill_amount_is_named(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    built = build_ledger(db_url)
    index = built.bill_index[("meter-001", "2025-03-01")]
    bill = bill_at(db_url, index)
    edited = type(bill)(
        bill.meter_id,
        bill.period,
        bill.batch_hash,
        bill.tariff_hash,
        bill.total - 1_000_000,
        bill.proof,
    )
    set_payload(db_url, index, edited.encode())
    result = audit(capsys, "--archive", _archive(db_url, tmp_path))
    assert result.code == 1
    assert {"PROOF_INVALID", "ROOT_MISMATCH"} <= result.reasons_at(index)  # C4
    flagged = {v["index"] for v in result.report["violations"] if v["reason"] == "PROOF_INVALID"}
    assert flagged == {index}


def test_duplicate_bill_appended_by_the_operator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    built = build_ledger(url)
    index = built.bill_index[("meter-000", "2025-03-01")]
    _, payload = read_payload(url, index)
    with open_ledger(url) as store:
        again = store.append(EntryKind.BILL, payload).index
    result = audit(capsys, "--archive", _archive(url, tmp_path))
    assert result.code == 1
    assert result.reasons_at(again) == {"DUPLICATE_BILL"}  # R5: the identical bill again
    assert result.report["figures"]["bill_sums_micro"] == {"EUR": sum(built.bill_totals)}


def test_malformed_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    built = build_ledger(url)
    raw_sql(url, f"UPDATE ledger_checkpoints SET note = 'garbage' WHERE size = {built.size}")
    result = audit(capsys, "--archive", _archive(url, tmp_path))
    assert result.code == 1
    assert "CHECKPOINT_MALFORMED" in result.reasons_at(None)
    assert "Traceback" not in result.err


def test_wrong_log_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    build_ledger(url, meters=1, periods=("2025-03-01",))
    archive = _archive(url, tmp_path)
    result = audit(capsys, "--archive", archive, log_key=OTHER_KEY)
    assert result.code == 1
    assert "CHECKPOINT_SIGNATURE_INVALID" in result.reasons_at(None)
    bad = audit(capsys, "--archive", archive, log_key="not-a-key")
    assert bad.code == 2
    assert bad.out == ""
    assert bad.err.startswith("zkgrid audit: the log key is not a verifier key")
    assert len(bad.err.strip().splitlines()) == 1


def test_truncated_and_unreadable_archives(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    build_ledger(url, meters=1, periods=("2025-03-01",))
    data = Path(_archive(url, tmp_path)).read_bytes()
    for cut in (5, len(data) // 2, len(data) - 1):
        truncated = tmp_path / f"cut{cut}.zla"
        truncated.write_bytes(data[:cut])
        result = audit(capsys, "--archive", str(truncated))
        assert result.code == 2, cut
        assert "truncated" in result.err
        assert len(result.err.strip().splitlines()) == 1
        assert "Traceback" not in result.err
    spliced = tmp_path / "spliced.zla"
    spliced.write_bytes(data + b"x")
    assert audit(capsys, "--archive", str(spliced)).code == 2
    missing = audit(capsys, "--archive", str(tmp_path / "nope.zla"))
    assert missing.code == 2
    assert "cannot open the archive" in missing.err


# --------------------------------------------------------------------------- state


def test_state_file_and_since_last(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    state = tmp_path / "auditor" / "state.json"
    built = build_ledger(url, periods=("2025-03-01",), bill=False)  # open batches
    first = audit(capsys, "--archive", _archive(url, tmp_path), "--state", str(state))
    assert first.code == 0, first.out
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o600
    old_size = built.size
    # Bill the open batches later, and add a day.
    with open_ledger(url) as store:
        from service.settlement import Settlement

        with Settlement(store) as settlement:
            for sim in built.meters:
                settlement.submit_bill(sim.bill("2025-03-01", built.tariffs["2025-03-01"]))
    extend_ledger(built, ("2025-03-02",))
    result = audit(
        capsys, "--archive", _archive(url, tmp_path), "--state", str(state), "--since-last"
    )
    assert result.code == 0, result.out
    report = result.report
    assert report["mode"] == "since-last"
    assert report["previous_size"] == old_size
    assert report["figures"]["entries"] == built.size - old_size
    assert report["figures"]["bills"] == 6
    assert report["figures"]["batches"] == 3
    # The state moved on: a second incremental run has nothing new.
    again = audit(
        capsys, "--archive", _archive(url, tmp_path), "--state", str(state), "--since-last"
    )
    assert again.code == 0
    assert again.report["figures"]["entries"] == 0


def test_forked_log_is_caught_by_the_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Same log key and origin, two histories: whichever the auditor saw first, the other
    is a fork (full audit and --since-last alike)."""
    state = tmp_path / "state.json"
    url_a = f"sqlite:///{tmp_path / 'a.db'}"
    url_b = f"sqlite:///{tmp_path / 'b.db'}"
    build_ledger(url_a, meters=2, periods=("2025-03-01",))
    seen = audit(capsys, "--archive", str(export(url_a, tmp_path / "a.zla")), "--state", str(state))
    assert seen.code == 0
    before = state.read_bytes()
    built_b = build_ledger(url_b, meters=2, periods=("2025-03-01",))  # other keys: other entries
    extend_ledger(built_b, ("2025-03-02",))
    fork = str(export(url_b, tmp_path / "b.zla"))
    full = audit(capsys, "--archive", fork, "--state", str(state))
    assert full.code == 1
    assert "LOG_FORK" in full.reasons_at(None)
    incremental = audit(capsys, "--archive", fork, "--state", str(state), "--since-last")
    assert incremental.code == 1
    assert "LOG_FORK" in incremental.reasons_at(None)
    assert state.read_bytes() == before  # a failed audit never moves the state


def test_rollback_and_bad_state(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    state = tmp_path / "state.json"
    built = build_ledger(url, meters=1, periods=("2025-03-01",))
    old = str(export(url, tmp_path / "old.zla"))
    extend_ledger(built, ("2025-03-02",))
    assert audit(capsys, "--archive", _archive(url, tmp_path), "--state", str(state)).code == 0
    rollback = audit(capsys, "--archive", old, "--state", str(state))
    assert rollback.code == 1
    assert "LOG_ROLLBACK" in rollback.reasons_at(None)
    other = audit(capsys, "--archive", old, "--state", str(state), log_key=OTHER_KEY)
    assert other.code == 2
    assert "another log key" in other.err
    state.write_text("{not json")
    broken = audit(capsys, "--archive", old, "--state", str(state))
    assert broken.code == 2
    assert "not valid JSON" in broken.err
    os.chmod(state, 0o644)
    assert audit(capsys, "--archive", old, "--state", str(state)).code == 2
    fresh = tmp_path / "fresh.json"
    no_state = audit(capsys, "--archive", old, "--state", str(fresh), "--since-last")
    assert no_state.code == 2
    assert "--since-last needs" in no_state.err


def test_log_key_file_and_process_pool(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The spawn pool path (forced with a zero threshold) finds the same bad proof."""
    from verifier.audit import AuditOptions, Auditor
    from verifier.sources import ArchiveSource

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    built = build_ledger(url)
    index = built.batch_index[("meter-000", "2025-03-02")]
    _kind, payload = read_payload(url, index)
    batch = ReadingBatch.decode(payload)
    proof = bytearray(batch.range_proof)
    proof[-40] ^= 0x01
    set_payload(url, index, payload.replace(batch.range_proof, bytes(proof)))
    archive = _archive(url, tmp_path)
    key_file = tmp_path / "log.key"
    key_file.write_text(LOG_KEY + "\n")
    from ledger.checkpoint import parse_verifier_key

    for workers in (2, 1):
        # flush_units=2: proofs are handed over while the replay goes on, and bills
        # arriving after their batch was flushed are verified in units of their own.
        source = ArchiveSource(archive)
        try:
            options = AuditOptions(
                log_key=parse_verifier_key(LOG_KEY),
                workers=workers,
                pool_threshold=0,
                flush_units=2,
            )
            result = Auditor(source, options).run()
        finally:
            source.close()
        found = {(v.index, v.reason) for v in result.violations}
        assert {i for i, reason in found if reason == "PROOF_INVALID"} == {index}, workers
        assert found == {
            (index, "PROOF_INVALID"),
            (index, "ROOT_MISMATCH"),
            (index, "SIGNATURE_INVALID"),
            (built.bill_index[("meter-000", "2025-03-02")], "UNKNOWN_BATCH"),
        }
        assert result.figures.bills == 6
    from verifier import cli

    capsys.readouterr()
    code = cli.main(["--archive", archive, "--log-key-file", str(key_file), "--no-state", "--json"])
    assert code == 1


def test_witness_registrations_are_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ledger.cosignature import WitnessRegistration
    from witness.keys import WitnessKey

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    build_ledger(url)
    alice = WitnessKey.generate("alice")
    bob = WitnessKey.generate("bob")
    forged = WitnessRegistration(
        "mallory", bob.public_key, alice.proof_of_possession()
    ).encode()  # Mallory claims Bob's key with a proof of possession that is not for it
    with open_ledger(url) as store:
        first = store.append(EntryKind.WITNESS_KEY, alice.registration().encode()).index
        again = store.append(EntryKind.WITNESS_KEY, alice.registration().encode()).index
        bad_pop = store.append(EntryKind.WITNESS_KEY, forged).index
        second = store.append(EntryKind.WITNESS_KEY, bob.registration().encode()).index
    state = tmp_path / "state.json"
    result = audit(capsys, "--archive", _archive(url, tmp_path), "--state", str(state))
    assert result.code == 1
    assert result.reasons_at(first) == set()
    assert result.reasons_at(second) == set()
    assert result.reasons_at(again) == {"WITNESS_EXISTS"}
    assert result.reasons_at(bad_pop) == {"POP_INVALID"}
    assert result.report["figures"]["witnesses"] == 2


def test_since_last_remembers_the_witnesses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from witness.keys import WitnessKey

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    build_ledger(url)
    alice = WitnessKey.generate("alice")
    with open_ledger(url) as store:
        store.append(EntryKind.WITNESS_KEY, alice.registration().encode())
    state = tmp_path / "state.json"
    first = audit(capsys, "--archive", _archive(url, tmp_path), "--state", str(state))
    assert first.code == 0, first.out
    with open_ledger(url) as store:
        again = store.append(EntryKind.WITNESS_KEY, alice.registration().encode()).index
    archive = str(export(url, tmp_path / "later.zla"))
    later = audit(capsys, "--archive", archive, "--state", str(state), "--since-last")
    assert later.code == 1
    assert later.reasons_at(again) == {"WITNESS_EXISTS"}
