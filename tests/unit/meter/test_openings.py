"""meter.openings and meter.home: private files, the local chain and its refusals."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from meter.home import MeterHome, MeterHomeError
from meter.openings import (
    InsecurePermissionsError,
    OpeningStore,
    OpeningStoreError,
    StoredBatch,
    ensure_private_dir,
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[OpeningStore]:
    home = ensure_private_dir(tmp_path / "home")
    s = OpeningStore.in_home(home)
    yield s
    s.close()


def _add(
    store: OpeningStore,
    period: str,
    sequence: int,
    *,
    values: tuple[int, ...] = (1, 2),
    blindings: tuple[int, ...] = (3, 4),
) -> StoredBatch:
    return store.add_pending(
        period=period,
        sequence=sequence,
        interval_minutes=720,
        values=list(values),
        blindings=list(blindings),
        batch=b"batch-" + period.encode(),
        batch_hash=bytes([sequence]) * 32,
    )


def test_store_and_directory_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        home = ensure_private_dir(tmp_path / "a" / "home")
        store = OpeningStore.in_home(home)
        _add(store, "2026-11-21", 0)
        store.close()
    finally:
        os.umask(old)
    assert _mode(home) == 0o700
    assert _mode(home / "openings.db") == 0o600


def test_refuses_a_store_readable_by_others(tmp_path: Path) -> None:
    home = ensure_private_dir(tmp_path / "home")
    OpeningStore.in_home(home).close()
    (home / "openings.db").chmod(0o644)
    with pytest.raises(InsecurePermissionsError, match="0644"):
        OpeningStore.in_home(home)
    (home / "openings.db").chmod(0o600)
    OpeningStore.in_home(home).close()


def test_refuses_a_loose_directory(tmp_path: Path) -> None:
    home = ensure_private_dir(tmp_path / "home")
    home.chmod(0o755)
    with pytest.raises(InsecurePermissionsError):
        OpeningStore.in_home(home)
    with pytest.raises(InsecurePermissionsError):
        ensure_private_dir(home)


def test_round_trip_hides_openings_from_repr(store: OpeningStore) -> None:
    blinding = 2**255 + 12345
    stored = _add(store, "2026-11-21", 0, values=(4294967295, 987654), blindings=(blinding, 7))
    assert stored.values == (4294967295, 987654)
    assert stored.blindings == (blinding, 7)
    assert stored.imports == (4294967295,)
    assert stored.exports == (987654,)
    assert stored.status == "pending"
    assert "987654" not in repr(stored)
    assert str(blinding) not in repr(stored)
    store.mark_accepted("2026-11-21", b"receipt")
    again = store.batch("2026-11-21")
    assert again is not None
    assert again.status == "accepted"
    assert again.receipt == b"receipt"


def test_chain_must_extend_and_periods_are_unique(store: OpeningStore) -> None:
    with pytest.raises(OpeningStoreError, match="next is 0"):
        _add(store, "2026-11-21", 1)
    _add(store, "2026-11-21", 0)
    with pytest.raises(OpeningStoreError, match="already stored"):
        _add(store, "2026-11-21", 1)
    _add(store, "2026-11-22", 1)
    head = store.last_batch()
    assert head is not None
    assert head.sequence == 1
    assert [b.period for b in store.pending()] == ["2026-11-21", "2026-11-22"]


def test_discard_only_the_pending_head(store: OpeningStore) -> None:
    _add(store, "2026-11-21", 0)
    store.mark_accepted("2026-11-21", b"r")
    with pytest.raises(OpeningStoreError, match="accepted"):
        store.discard_pending("2026-11-21")
    _add(store, "2026-11-22", 1)
    store.discard_pending("2026-11-22")
    assert store.batch("2026-11-22") is None
    _add(store, "2026-11-23", 1)


def test_bills_keep_the_first_and_add_the_receipt(store: OpeningStore) -> None:
    store.put_bill("2026-11-21", b"bill", -1234, None)
    store.put_bill("2026-11-21", b"bill", -1234, b"receipt")
    bill = store.bill("2026-11-21")
    assert bill is not None
    assert bill.total == -1234
    assert bill.receipt == b"receipt"
    with pytest.raises(OpeningStoreError, match="different bill"):
        store.put_bill("2026-11-21", b"other", 5, None)


def test_home_key_is_private_and_never_overwritten(tmp_path: Path) -> None:
    home = MeterHome.create(tmp_path / "m", "m-1", 60)
    assert _mode(home.path / "meter.key") == 0o600
    assert _mode(home.path) == 0o700
    assert MeterHome.load(home.path) == home
    assert home.key().public_key == home.public_key
    with pytest.raises(MeterHomeError, match="already"):
        MeterHome.create(tmp_path / "m", "m-1", 60)
    (home.path / "meter.key").chmod(0o640)
    with pytest.raises(InsecurePermissionsError):
        MeterHome.load(home.path)
    assert "PRIVATE" not in repr(home)


def test_cycle_bills_keep_the_first_and_add_the_receipt(store: OpeningStore) -> None:
    store.put_cycle_bill("2026-11-01", "2026-11-30", b"cycle", 12_936_000, None)
    store.put_cycle_bill("2026-11-01", "2026-11-30", b"cycle", 12_936_000, b"receipt")
    store.put_cycle_bill("2026-11-01", "2026-11-30", b"cycle", 12_936_000, None)  # kept
    found = store.cycle_bill("2026-11-01", "2026-11-30")
    assert found is not None
    assert (found.cycle, found.total, found.receipt) == (
        "2026-11-01..2026-11-30", 12_936_000, b"receipt",
    )  # fmt: skip
    assert store.cycle_bill("2026-11-01", "2026-11-29") is None
    with pytest.raises(OpeningStoreError, match=r"different bill for the cycle 2026-11-01\.\."):
        store.put_cycle_bill("2026-11-01", "2026-11-30", b"other", 5, None)
    store.put_cycle_bill("2026-12-01", "2026-12-07", b"week", -1, None)
    assert [c.cycle for c in store.cycle_bills()] == [
        "2026-11-01..2026-11-30", "2026-12-01..2026-12-07",
    ]  # fmt: skip
    batches, bills, cycles = store.snapshot_all()
    assert (batches, bills) == store.snapshot() == ([], [])
    assert cycles == store.cycle_bills()
    assert "b'cycle'" not in repr(found)  # the record bytes are not in the repr


def test_a_store_of_schema_1_opens_reads_and_gains_cycle_bills(tmp_path: Path) -> None:
    """A store written before cycle bills (schema 1: no cycle_bills table, no
    trade_deliveries) is read as it was, gains the tables when opened, and says schema 3
    from then on."""
    import sqlite3

    home = ensure_private_dir(tmp_path / "home")
    path = home / OpeningStore.FILENAME
    with OpeningStore(path) as store:
        _add(store, "2026-11-21", 0)
        store.mark_accepted("2026-11-21", b"r")
        store.put_bill("2026-11-21", b"bill", 7, b"br")
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE cycle_bills")
    conn.execute("DROP TABLE trade_deliveries")
    conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with OpeningStore(path) as store:
        batch = store.batch("2026-11-21")
        assert batch is not None
        assert (batch.status, batch.values) == ("accepted", (1, 2))
        bill = store.bill("2026-11-21")
        assert bill is not None
        assert bill.total == 7
        assert store.cycle_bills() == []
        assert store.trade_deliveries() == []
        store.put_cycle_bill("2026-11-21", "2026-11-21", b"c", 7, None)
    conn = sqlite3.connect(path)
    (version,) = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    conn.close()
    assert version == "3"
