"""meter.backup and OpeningStore.merge: a private, checked copy of the openings and its
restore, with the refusals (corruption, another meter, differing openings).

Real batches (offline, T = 6 intervals), no service.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from meter import cli as meter_cli
from meter.backup import BackupError, decode_backup, restore_backup, write_backup
from meter.client import MeterClient, prove_bill_from_openings
from meter.home import MeterHome
from meter.openings import OpeningStore, OpeningStoreError
from meter.readings import DayReadings
from settlement.records import Tariff
from zkgrid._internal.files import FileExistsRefusedError, InsecurePermissionsError

INTERVAL = 240
DAYS = ("2026-11-21", "2026-11-22")


def _readings(period: str, base: int) -> DayReadings:
    return DayReadings.from_lists(
        period, INTERVAL, [base + 10 * t for t in range(6)], [base // 2, 0, 7, 0, 0, 1]
    )


def _fill(home: Path) -> None:
    """Two accepted days (the second chained on the first) and a bill for the first."""
    client = MeterClient(home)
    for i, period in enumerate(DAYS):
        client.build_batch(_readings(period, 1_000 * (i + 1)))
        client.store.mark_accepted(period, f"receipt-{period}".encode())
    stored = client.store.batch(DAYS[0])
    assert stored is not None
    tariff = Tariff(DAYS[0], INTERVAL, "EUR", 450_000, (100,) * 6, (80,) * 6)
    bill = prove_bill_from_openings(stored, tariff, client.meter_id)
    client.store.put_bill(DAYS[0], bill.encode(), bill.total, b"bill-receipt")
    client.close()


@pytest.fixture
def home(tmp_path: Path) -> MeterHome:
    home = MeterClient.keygen(tmp_path / "home", "meter-7", INTERVAL)
    _fill(home.path)
    return home


def _rows(home: MeterHome) -> tuple[list[Any], list[Any]]:
    with home.openings() as store:
        return store.snapshot()


def _wipe_store(home: MeterHome) -> None:
    (home.path / OpeningStore.FILENAME).unlink()
    OpeningStore.in_home(home.path).close()


def _rewrite(path: Path, edit: Any) -> None:
    """Edit the backup's document and give it a matching digest (a deliberate forgery)."""
    doc = json.loads(path.read_text())
    edit(doc)
    body = {k: v for k, v in doc.items() if k != "digest"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    doc["digest"] = "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
    path.write_text(json.dumps(doc))


def test_round_trip_into_an_emptied_store(home: MeterHome, tmp_path: Path) -> None:
    before = _rows(home)
    out = tmp_path / "openings.backup"
    summary = write_backup(home, out)
    assert (summary.meter_id, summary.batches, summary.bills) == ("meter-7", 2, 1)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    doc = json.loads(out.read_text())
    assert doc["format"] == "zkgrid-openings-backup"
    assert doc["version"] == 1
    assert doc["digest"] == summary.digest
    _wipe_store(home)
    assert _rows(home) == ([], [])
    restored, result = restore_backup(home, out)
    assert restored == summary
    assert (result.batches_added, result.bills_added) == (2, 1)
    assert _rows(home) == before
    # Restoring again changes nothing.
    _, again = restore_backup(home, out)
    assert (again.batches_added, again.batches_unchanged, again.bills_unchanged) == (0, 2, 1)
    assert _rows(home) == before


def test_the_backup_file_is_new_and_private(home: MeterHome, tmp_path: Path) -> None:
    out = tmp_path / "b"
    old = os.umask(0)
    try:
        write_backup(home, out)
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    first = out.read_bytes()
    with pytest.raises(FileExistsRefusedError):
        write_backup(home, out)
    assert out.read_bytes() == first
    out.chmod(0o644)
    with pytest.raises(InsecurePermissionsError):
        restore_backup(home, out)


@pytest.mark.parametrize("offset", [0, 200, -40, -3])
def test_a_corrupted_backup_is_refused(home: MeterHome, tmp_path: Path, offset: int) -> None:
    out = tmp_path / "b"
    write_backup(home, out)
    data = bytearray(out.read_bytes())
    data[offset] ^= 0x01
    out.write_bytes(bytes(data))
    _wipe_store(home)
    with pytest.raises(BackupError, match=r"corrupted|not a zkgrid"):
        restore_backup(home, out)
    assert _rows(home) == ([], [])


def test_a_changed_value_is_refused_even_with_a_recomputed_digest(
    home: MeterHome, tmp_path: Path
) -> None:
    out = tmp_path / "b"
    write_backup(home, out)

    def bump(doc: dict[str, Any]) -> None:
        doc["batches"][1]["values"][0] += 1

    _rewrite(out, bump)
    _wipe_store(home)
    with pytest.raises(BackupError, match="do not open its commitments"):
        restore_backup(home, out)
    assert _rows(home) == ([], [])


def test_another_meters_backup_is_refused(home: MeterHome, tmp_path: Path) -> None:
    out = tmp_path / "b"
    write_backup(home, out)
    other = MeterClient.keygen(tmp_path / "other", "meter-8", INTERVAL)
    with pytest.raises(BackupError, match="backup is of meter meter-7"):
        restore_backup(other, out)
    # The same id with another key (a new keygen) is another meter too.
    twin = MeterClient.keygen(tmp_path / "twin", "meter-7", INTERVAL)
    with pytest.raises(BackupError, match="backup is of meter meter-7"):
        restore_backup(twin, out)

    # Relabelled as the twin's (digest recomputed): the batches' signatures give it away.
    def relabel(doc: dict[str, Any]) -> None:
        doc["public_key"] = twin.public_key.hex()

    _rewrite(out, relabel)
    with pytest.raises(BackupError, match="not signed by this meter's key"):
        restore_backup(twin, out)
    assert _rows(twin) == ([], [])


def test_an_unknown_version_is_refused(home: MeterHome, tmp_path: Path) -> None:
    out = tmp_path / "b"
    write_backup(home, out)

    def future(doc: dict[str, Any]) -> None:
        doc["version"] = 4

    _rewrite(out, future)
    with pytest.raises(BackupError, match="version 4"):
        restore_backup(home, out)


def test_differing_openings_are_kept_unless_forced(home: MeterHome, tmp_path: Path) -> None:
    out = tmp_path / "b"
    write_backup(home, out)
    original = _rows(home)
    # The local store now holds other openings for the first day (a rebuilt home).
    _wipe_store(home)
    client = MeterClient(home)
    client.build_batch(_readings(DAYS[0], 5))
    client.close()
    local = _rows(home)
    with pytest.raises(OpeningStoreError, match="different openings for 2026-11-21"):
        restore_backup(home, out)
    assert _rows(home) == local  # nothing was restored, not even the second day
    _, result = restore_backup(home, out, force=True)
    assert (result.batches_replaced, result.batches_added, result.bills_added) == (1, 1, 1)
    assert _rows(home) == original


def test_a_pending_local_batch_becomes_accepted(home: MeterHome, tmp_path: Path) -> None:
    out = tmp_path / "b"
    write_backup(home, out)
    original = _rows(home)
    _wipe_store(home)
    # The same first batch, still pending locally (its acceptance was lost with the store).
    batch = original[0][0]
    with home.openings() as store:
        store.add_pending(
            period=batch.period, sequence=batch.sequence, interval_minutes=INTERVAL,
            values=batch.values, blindings=batch.blindings, batch=batch.batch,
            batch_hash=batch.batch_hash,
        )  # fmt: skip
    _, result = restore_backup(home, out)
    assert (result.batches_updated, result.batches_added) == (1, 1)
    assert _rows(home) == original


def test_decode_refuses_duplicates(home: MeterHome, tmp_path: Path) -> None:
    out = tmp_path / "b"
    write_backup(home, out)

    def twice(doc: dict[str, Any]) -> None:
        doc["bills"].append(doc["bills"][0])

    _rewrite(out, twice)
    with pytest.raises(BackupError, match="appears twice"):
        decode_backup(out.read_bytes(), home)


def test_the_commands(home: MeterHome, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def run(*args: str) -> tuple[int, str, str]:
        buffer = io.StringIO()
        code = meter_cli.main(list(args), out=buffer)
        return code, buffer.getvalue(), capsys.readouterr().err

    out = tmp_path / "b.json"
    code, text, _ = run("backup", "--home", str(home.path), "--out", str(out))
    assert code == 0
    assert "2 batches and 1 bills backed up" in text
    assert "keep it private" in text
    code, _, err = run("backup", "--home", str(home.path), "--out", str(out))
    assert code == 2
    assert "already exists" in err
    _wipe_store(home)
    code, text, _ = run("restore", "--home", str(home.path), "--from", str(out), "--json")
    assert code == 0
    doc = json.loads(text)
    assert doc["schema"] == "zkgrid.meter.restore/1"
    assert (doc["batches_added"], doc["bills_added"]) == (2, 1)
    data = bytearray(out.read_bytes())
    data[-5] ^= 1
    out.write_bytes(bytes(data))
    code, _, err = run("restore", "--home", str(home.path), "--from", str(out))
    assert code == 1
    assert "corrupted" in err
    code, _, err = run("restore", "--home", str(home.path), "--from", str(tmp_path / "none"))
    assert code == 2


def test_keygen_says_to_back_up(tmp_path: Path) -> None:
    buffer = io.StringIO()
    home = tmp_path / "new"
    code = meter_cli.main(["keygen", "--id", "meter-9", "--home", str(home)], out=buffer)
    assert code == 0
    text = buffer.getvalue()
    assert "only copy of the blindings" in text
    assert "zkgrid meter backup --id meter-9 --out FILE" in text


def test_merge_refuses_another_day_at_a_sequence(tmp_path: Path) -> None:
    """OpeningStore.merge directly: the local chain's sequence 0 is another day than the
    backup's; forced, the local day and its bill go (the bill named a batch no longer here)."""
    from meter.openings import StoredBatch, StoredBill, ensure_private_dir

    def batch(period: str) -> StoredBatch:
        return StoredBatch(period, 0, 720, (1, 2), (3, 4), b"batch-" + period.encode(),
                           bytes(32), "accepted", b"r")  # fmt: skip

    home = ensure_private_dir(tmp_path / "h")
    with OpeningStore.in_home(home) as store:
        local = batch("2026-11-20")
        store.add_pending(period=local.period, sequence=0, interval_minutes=720,
                          values=local.values, blindings=local.blindings, batch=local.batch,
                          batch_hash=local.batch_hash)  # fmt: skip
        store.put_bill(local.period, b"bill-20", 5, None)
        incoming = batch("2026-11-21")
        with pytest.raises(OpeningStoreError, match="different openings for 2026-11-21"):
            store.merge([incoming], [])
        assert [b.period for b in store.batches()] == ["2026-11-20"]
        result = store.merge([incoming], [StoredBill("2026-11-21", b"bill-21", 6, None)],
                             force=True)  # fmt: skip
        assert (result.batches_replaced, result.bills_added) == (1, 1)
        assert [b.period for b in store.batches()] == ["2026-11-21"]
        assert store.bill("2026-11-20") is None
        assert store.bill("2026-11-21") == StoredBill("2026-11-21", b"bill-21", 6, None)


# --------------------------------------------------------------------------- cycle bills


def _add_cycle_bill(home: MeterHome, *, receipt: bytes | None = b"cycle-receipt") -> bytes:
    """A real cycle bill of the 1-day cycle DAYS[1] (a tiered plan), stored like the client
    does (before submission, then with its receipt)."""
    from settlement.records import CycleTariff, Tier

    plan = CycleTariff(
        plan="residential-tiered", meters=(), first_period=DAYS[1], last_period=DAYS[1],
        interval_minutes=INTERVAL, currency="EUR", fixed_charge=300_000,
        import_price=(0,) * 6, export_credit=(80,) * 6,
        tiers=(Tier(0, 220), Tier(6_000, 280)), demand_charge=0,
    )  # fmt: skip
    client = MeterClient(home)
    try:
        bill = client.prove_cycle_bill(DAYS[1], DAYS[1], tariff=plan)
        if receipt is not None:
            client.store.put_cycle_bill(DAYS[1], DAYS[1], bill.encode(), bill.total, receipt)
    finally:
        client.close()
    return bill.encode()


def _all_rows(home: MeterHome) -> tuple[list[Any], list[Any], list[Any]]:
    with home.openings() as store:
        return store.snapshot_all()


def test_cycle_bills_round_trip_in_a_version_2_backup(home: MeterHome, tmp_path: Path) -> None:
    record = _add_cycle_bill(home)
    before = _all_rows(home)
    assert [c.bill for c in before[2]] == [record]
    out = tmp_path / "b"
    summary = write_backup(home, out)
    assert (summary.batches, summary.bills, summary.cycle_bills) == (2, 1, 1)
    doc = json.loads(out.read_text())
    assert doc["version"] == 2
    (row,) = doc["cycle_bills"]
    assert (row["first_period"], row["last_period"]) == (DAYS[1], DAYS[1])
    _wipe_store(home)
    restored, result = restore_backup(home, out)
    assert restored == summary
    assert (result.batches_added, result.bills_added, result.cycle_bills_added) == (2, 1, 1)
    assert _all_rows(home) == before
    _, again = restore_backup(home, out)
    assert (again.cycle_bills_added, again.cycle_bills_unchanged) == (0, 1)
    assert _all_rows(home) == before


def test_without_cycle_bills_a_backup_stays_version_1(home: MeterHome, tmp_path: Path) -> None:
    out = tmp_path / "b"
    write_backup(home, out)
    doc = json.loads(out.read_text())
    assert doc["version"] == 1
    assert "cycle_bills" not in doc  # a zkgrid that knows only version 1 restores it


def test_a_receipt_restored_into_a_cycle_bill_without_one(home: MeterHome, tmp_path: Path) -> None:
    _add_cycle_bill(home)
    out = tmp_path / "b"
    write_backup(home, out)
    before = _all_rows(home)
    (cycle,) = before[2]
    _wipe_store(home)  # the store as it was after proving, before the receipt came back
    with home.openings() as store:
        store.merge(before[0], before[1], cycle_bills=[dataclasses.replace(cycle, receipt=None)])
    _, result = restore_backup(home, out)
    assert (result.cycle_bills_updated, result.cycle_bills_added) == (1, 0)
    assert _all_rows(home) == before


def test_another_cycle_bill_is_kept_unless_forced(home: MeterHome, tmp_path: Path) -> None:
    _add_cycle_bill(home)
    out = tmp_path / "b"
    write_backup(home, out)
    before = _all_rows(home)
    (cycle,) = before[2]
    with home.openings() as store:
        store.merge([], [], cycle_bills=[dataclasses.replace(cycle, bill=b"other", total=1)],
                    force=True)  # fmt: skip
        local = store.snapshot_all()
    with pytest.raises(OpeningStoreError, match=r"2026-11-22\.\.2026-11-22 \(cycle bill\)"):
        restore_backup(home, out)
    assert _all_rows(home) == local
    _, result = restore_backup(home, out, force=True)
    assert result.cycle_bills_replaced == 1
    assert _all_rows(home) == before


def test_a_forced_batch_takes_the_cycle_bills_of_its_period(tmp_path: Path) -> None:
    from meter.openings import StoredBatch, StoredCycleBill, ensure_private_dir

    def batch(period: str, value: int) -> StoredBatch:
        return StoredBatch(period, 0, 720, (value, 2), (3, 4), b"batch-" + period.encode(),
                           bytes(32), "accepted", b"r")  # fmt: skip

    home = ensure_private_dir(tmp_path / "h")
    with OpeningStore.in_home(home) as store:
        cycles = [
            StoredCycleBill("2026-11-20", "2026-11-22", b"c", 5, None),
            StoredCycleBill("2026-11-22", "2026-11-23", b"d", 6, None),
        ]
        store.merge([batch("2026-11-21", 1)], [], cycle_bills=cycles)
        store.merge([batch("2026-11-21", 9)], [], force=True)
        assert [c.cycle for c in store.cycle_bills()] == ["2026-11-22..2026-11-23"]


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda d: d["cycle_bills"][0].update(total=d["cycle_bills"][0]["total"] + 1),
         "does not match its row"),
        (lambda d: d["cycle_bills"][0].update(first_period="2026-11-21"),
         "does not match its row"),
        (lambda d: d["cycle_bills"][0].update(bill="AAAA"), "does not decode"),
        (lambda d: d["cycle_bills"].append(d["cycle_bills"][0]), "appears twice"),
        (lambda d: d.pop("cycle_bills"), "'cycle_bills' is missing"),
        (lambda d: d.update(version=1), "version 1 holds no cycle bills"),
    ],
)  # fmt: skip
def test_a_forged_cycle_bill_row_is_refused(
    home: MeterHome, tmp_path: Path, edit: Any, match: str
) -> None:
    _add_cycle_bill(home)
    out = tmp_path / "b"
    write_backup(home, out)
    _rewrite(out, edit)
    _wipe_store(home)
    with pytest.raises(BackupError, match=match):
        restore_backup(home, out)
    assert _all_rows(home) == ([], [], [])


def test_another_meters_cycle_bill_is_refused(home: MeterHome, tmp_path: Path) -> None:
    from settlement.records import CycleBill

    record = CycleBill.decode(_add_cycle_bill(home))
    out = tmp_path / "b"
    write_backup(home, out)
    forged = dataclasses.replace(record, meter_id="meter-8").encode()

    def other(doc: dict[str, Any]) -> None:
        doc["cycle_bills"][0]["bill"] = base64.b64encode(forged).decode()

    _rewrite(out, other)
    with pytest.raises(BackupError, match="does not match its row"):
        restore_backup(home, out)


def test_the_backup_command_counts_cycle_bills(
    home: MeterHome, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _add_cycle_bill(home)
    buffer = io.StringIO()
    out = tmp_path / "b.json"
    assert meter_cli.main(["backup", "--home", str(home.path), "--out", str(out)],
                          out=buffer) == 0  # fmt: skip
    assert "2 batches, 1 bills and 1 cycle bills backed up" in buffer.getvalue()
    _wipe_store(home)
    buffer = io.StringIO()
    assert meter_cli.main(["restore", "--home", str(home.path), "--from", str(out), "--json"],
                          out=buffer) == 0  # fmt: skip
    doc = json.loads(buffer.getvalue())
    assert doc["cycle_bills_added"] == 1


@pytest.mark.parametrize("field", ["first_period", "last_period", "bill", "total", "receipt"])
def test_any_value_in_a_cycle_bill_row_is_refused_or_read_never_crashes(
    home: MeterHome, tmp_path: Path, field: str
) -> None:
    """Every JSON value in place of a field of a cycle bill row (the digest recomputed):
    refused with a BackupError, never another exception."""
    _add_cycle_bill(home)
    out = tmp_path / "b"
    write_backup(home, out)
    original = out.read_text()
    values: list[Any] = [None, True, 0, -1, 2**70, 1.5, "", "x", "AAAA", "2026-13-01", [], {},
                         ["AAAA"], {"a": 1}]  # fmt: skip
    for value in values:
        out.write_text(original)
        _rewrite(out, lambda d, v=value: d["cycle_bills"][0].__setitem__(field, v))
        try:
            decode_backup(out.read_bytes(), home)
        except BackupError:
            continue
        assert field == "receipt"
        assert value is None or isinstance(value, str)  # a receipt is opaque base64 or null
