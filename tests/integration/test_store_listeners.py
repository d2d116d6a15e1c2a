"""LedgerStore.add_append_listener and LedgerStore.head, on every backend: listeners hear
each committed entry's index and kind (never a payload) and nothing of a refused append;
a failing listener leaves the append standing; head() is the latest checkpoint."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ledger.checkpoint import CheckpointSigner
from ledger.entries import EntryKind
from service.storage import open_store


class _Refused(Exception):
    pass


def test_listeners_hear_committed_appends_only(
    ledger_url: str,
    ledger_signer: CheckpointSigner,
    ledger_origin: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    heard: list[tuple[list[tuple[int, EntryKind]], int]] = []

    def listener(entries: Sequence[tuple[int, EntryKind]], size: int) -> None:
        heard.append((list(entries), size))

    def broken(*_args: Any) -> None:
        raise RuntimeError("listener bug")

    before = datetime.now(UTC) - timedelta(seconds=1)
    with open_store(ledger_url, ledger_signer, ledger_origin) as store:
        assert store.head()[0] == 0
        store.add_append_listener(broken)
        store.add_append_listener(listener)
        store.append(EntryKind.TARIFF, b"tariff bytes")
        store.append_batch([(EntryKind.READING_BATCH, b"a"), (EntryKind.BILL, b"b")])

        def refuse(_conn: Any, _size: int) -> None:
            raise _Refused

        with pytest.raises(_Refused):
            store.append(EntryKind.BILL, b"refused", precondition=refuse)
        store.append_batch([])  # appends nothing, tells nobody
        size, signed_at = store.head()
        assert size == store.size() == 3
        assert before <= signed_at <= datetime.now(UTC) + timedelta(seconds=1)
    assert heard == [
        ([(0, EntryKind.TARIFF)], 1),
        ([(1, EntryKind.READING_BATCH), (2, EntryKind.BILL)], 3),
    ]
    failures = [r for r in caplog.records if "append listener failed" in r.getMessage()]
    assert len(failures) == 2  # logged, and the appends stood
    assert all(r.levelno == logging.ERROR for r in failures)
