"""service.witnesses without gRPC: registry projection, the cosignature table (append-only,
created next to the store's tables), quorum defaults and configuration. Few pairings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ledger.cosignature import Cosignature, UnknownWitnessError
from ledger.entries import EntryKind
from service.config import ConfigError, ServiceConfig
from service.storage import CosignatureStore, LedgerStore, open_store
from service.witnesses import (
    UnknownCheckpoint,
    Witnesses,
    WitnessExists,
    default_threshold,
)
from tests.unit.service.settlement_support import ORIGIN, SIGNER
from witness.keys import WitnessKey, cosign


@pytest.fixture(scope="module")
def keys() -> list[WitnessKey]:
    return [WitnessKey(f"w{i}", 1000 + i) for i in range(2)]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LedgerStore]:
    s = open_store(f"sqlite:///{tmp_path / 'ledger.db'}", SIGNER, ORIGIN)
    yield s
    s.close()


def test_default_threshold_is_a_majority() -> None:
    assert [default_threshold(n) for n in (0, 1, 2, 3, 4, 5)] == [1, 1, 2, 2, 3, 3]


def test_quorum_from_flag_or_environment() -> None:
    named = {"origin": "grid.example/log"}
    assert ServiceConfig.from_sources(named, {"ZKGRID_WITNESS_QUORUM": "3"}).witness_quorum == 3
    assert ServiceConfig.from_sources({**named, "witness_quorum": 2}, {}).witness_quorum == 2
    assert ServiceConfig.from_sources(named, {}).witness_quorum is None
    with pytest.raises(ConfigError):
        ServiceConfig(insecure=True, witness_quorum=0).validate()


def test_registry_projection_and_refusals(store: LedgerStore, keys: list[WitnessKey]) -> None:
    witnesses = Witnesses(store, quorum_threshold=2)
    receipt = witnesses.register(keys[0].registration())
    assert receipt.index == 0
    store.append(EntryKind.TARIFF, b"not a witness")  # other kinds are skipped
    witnesses.register(keys[1].registration())
    members, size = witnesses.members()
    assert size == 3
    assert [(m.registration.name, m.index) for m in members] == [("w0", 0), ("w1", 2)]
    assert witnesses.registry_at(1).names == ("w0",)
    assert witnesses.threshold(5) == 2
    with pytest.raises(WitnessExists):
        witnesses.register(keys[0].registration())
    assert store.size() == 3
    # a second instance (another replica) projects the same registry from the ledger
    assert Witnesses(store).registry_at(3).names == ("w0", "w1")
    assert Witnesses(store).threshold(3) == 2


def test_cosignature_table_refusals_and_append_only(
    store: LedgerStore, keys: list[WitnessKey]
) -> None:
    witnesses = Witnesses(store)
    witnesses.register(keys[0].registration())
    head = store.latest_checkpoint()
    with pytest.raises(UnknownCheckpoint):
        witnesses.add_cosignature(Cosignature("w0", bytes(96)), tree_size=5, root=bytes(32))
    with pytest.raises(UnknownCheckpoint):
        witnesses.add_cosignature(Cosignature("w0", bytes(96)), tree_size=1, root=bytes(32))
    # w1 registers after size 1: unknown to the checkpoint of size 1
    witnesses.register(keys[1].registration())
    with pytest.raises(UnknownWitnessError):
        witnesses.add_cosignature(cosign(keys[1], head), checkpoint=head.to_text())
    added = witnesses.add_cosignature(cosign(keys[0], head), checkpoint=head.to_text())
    assert (added.tree_size, added.recorded, added.cosignatures, added.quorum_threshold) == (
        1,
        True,
        1,
        1,
    )
    view = witnesses.cosigned()
    assert view.checkpoint.checkpoint.size == 1
    assert view.signers == ("w0",)
    assert (view.quorum_threshold, view.quorum_total) == (1, 1)
    assert view.final
    latest = witnesses.cosigned(store.size())  # no cosignature there yet
    assert latest.cosigned is None
    assert not latest.final
    with store.engine.connect() as conn, pytest.raises(Exception, match="append-only"):
        conn.execute(text("UPDATE witness_cosignatures SET signature = x'00'"))
    with store.engine.connect() as conn, pytest.raises(Exception, match="append-only"):
        conn.execute(text("DELETE FROM witness_cosignatures"))


def test_cosignature_store_on_every_backend(
    ledger_url: str, ledger_signer: Any, ledger_origin: str
) -> None:
    """service.storage.cosignatures: rows never replaced, triggers installed once per
    database (a second store on the same database finds them), same table on PostgreSQL."""
    store = open_store(ledger_url, ledger_signer, ledger_origin)
    try:
        table = CosignatureStore(store)
        assert (table.latest_size(), table.count(3), table.of_size(3)) == (None, 0, [])
        first = table.add(3, "w1", b"\x01" * 96)
        assert (first.recorded, first.count, first.signature) == (True, 1, b"\x01" * 96)
        again = CosignatureStore(store).add(3, "w1", b"\x02" * 96)  # never replaced
        assert (again.recorded, again.count, again.signature) == (False, 1, b"\x01" * 96)
        table.add(3, "w0", b"\x03" * 96)
        table.add(7, "w1", b"\x04" * 96)
        assert table.of_size(3) == [("w0", b"\x03" * 96), ("w1", b"\x01" * 96)]
        assert (table.latest_size(), table.count(3), table.signature(7, "w1")) == (
            7,
            2,
            b"\x04" * 96,
        )
        assert table.signature(7, "w0") is None
        statements = [
            "UPDATE witness_cosignatures SET signature = signature",
            "DELETE FROM witness_cosignatures",
        ]
        if store.backend == "postgresql":
            statements.append("TRUNCATE witness_cosignatures")
        for sql in statements:
            with (
                store.connection_guard(),
                store.engine.connect() as conn,
                pytest.raises(DBAPIError, match="append-only"),
            ):
                conn.execute(text(sql))
        assert table.count(3) == 2
    finally:
        store.close()


def test_the_finality_memo_is_bounded(
    store: LedgerStore, keys: list[WitnessKey], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long-running server asked about ever more checkpoints keeps a bounded memo."""
    import service.witnesses as module

    monkeypatch.setattr(module, "FINALITY_MEMO_SIZE", 2)
    witnesses = Witnesses(store)
    witnesses.register(keys[0].registration())
    for _ in range(4):
        head = store.latest_checkpoint()
        witnesses.add_cosignature(cosign(keys[0], head), checkpoint=head.to_text())
        assert witnesses.cosigned(head.checkpoint.size).final
        store.append(EntryKind.TARIFF, b"another entry %d" % store.size())
    assert len(witnesses._finality) == 2
