"""Every ledger entry kind has its value in the API's EntryKind enum, so StreamEntries can
name every entry the log may hold (a kind missing there would break streaming)."""

from __future__ import annotations

from ledger.entries import EntryKind
from zkgrid.settlement.v1 import common_pb2


def test_every_entry_kind_is_in_the_proto_enum_with_its_value() -> None:
    for kind in EntryKind:
        assert common_pb2.EntryKind.Value(f"ENTRY_KIND_{kind.name}") == kind.value
    assert set(common_pb2.EntryKind.values()) == {0, *(k.value for k in EntryKind)}
