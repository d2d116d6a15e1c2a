"""settlement.rules, the one state machine: every rule vector replayed on the pure rules
(the integration test runs the same vectors through the service and the auditor)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from ledger.entries import EntryKind, encode_entry, entry_leaf_hash
from ledger.errors import LedgerArgumentError
from ledger.merkle import leaf_hash
from settlement import rules
from settlement.periods import (
    RecordFormatError,
    intervals_per_day,
    period_of_ordinal,
    period_ordinal,
    validate_period,
)
from settlement.rules import LedgerState, Ref
from zkgrid.errors import Reason

VECTORS = Path(__file__).parents[2] / "vectors" / "rules"
#: Reasons of the cryptographic rules (C1..C5): not evaluated by ``check``.
CRYPTO = {"SIGNATURE_INVALID", "PROOF_MALFORMED", "PROOF_INVALID", "POP_INVALID"}


def load_vectors() -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(VECTORS.glob("*.json"))]


def test_the_vectors_cover_every_reason_of_the_state_machine() -> None:
    # The rules of records v2 (R16..R22) and of the market (M1..M13) have their vectors
    # beside their records' (not run through the service yet): tests/vectors/cycle/rules.json,
    # tests/vectors/market/rules.json and delivery_rules.json.
    cycle = json.loads((VECTORS.parent / "cycle" / "rules.json").read_text())
    market = json.loads((VECTORS.parent / "market" / "rules.json").read_text())
    delivery = json.loads((VECTORS.parent / "market" / "delivery_rules.json").read_text())
    given = {
        e["reason"] for v in [*load_vectors(), cycle, market, delivery] for e in v["entries"]
    }
    state_reasons = {
        value
        for name in rules.__all__
        if name.isupper() and isinstance(value := getattr(rules, name), Reason)
    }
    assert state_reasons <= given
    assert {"SIGNATURE_INVALID", "PROOF_MALFORMED", "PROOF_INVALID", "POP_INVALID"} <= given
    assert {"WITNESS_MALFORMED"} <= given


@pytest.mark.parametrize("vector", load_vectors(), ids=lambda v: v["name"])
def test_vector_on_the_pure_rules(vector: dict[str, Any]) -> None:
    state = LedgerState()
    for index, entry in enumerate(vector["entries"]):
        payload = bytes.fromhex(entry["payload_hex"])
        expected = entry["reason"]
        decoded = rules.decode(entry["kind"], payload)
        if isinstance(decoded, rules.Refusal):
            assert decoded.reason == expected, (index, entry["note"], decoded)
            assert decoded.rule == entry["rule"]
            continue
        digest = hashlib.sha256(payload).digest()
        refusal = rules.check(state, decoded, digest)
        if expected is None or expected in CRYPTO:
            assert refusal is None, (index, entry["note"], refusal)
            rules.apply(state, decoded, Ref(index, digest, entry_leaf_hash(entry["kind"], payload)))
            continue
        assert refusal is not None, (index, entry["note"])
        assert (refusal.reason, refusal.rule) == (expected, entry["rule"]), (index, entry["note"])
        if entry["same_as"] is not None:
            original = state.original(decoded, digest)
            assert original is not None
            assert original.index == entry["same_as"]
        else:
            assert state.original(decoded, digest) is None


def test_a_refused_record_changes_nothing() -> None:
    vector = json.loads((VECTORS / "batch.json").read_text())
    state = LedgerState()
    for index, entry in enumerate(vector["entries"][:3]):
        payload = bytes.fromhex(entry["payload_hex"])
        record = rules.decode(entry["kind"], payload)
        assert not isinstance(record, rules.Refusal)
        rules.step(state, record, Ref(index, hashlib.sha256(payload).digest()))
    before = repr(state)
    chain_broken = vector["entries"][8]
    assert chain_broken["reason"] == "CHAIN_BROKEN"
    payload = bytes.fromhex(chain_broken["payload_hex"])
    record = rules.decode(chain_broken["kind"], payload)
    assert not isinstance(record, rules.Refusal)
    refusal = rules.step(state, record, Ref(99, hashlib.sha256(payload).digest()))
    assert refusal is not None
    assert refusal.reason == "CHAIN_BROKEN"
    assert repr(state) == before


def test_undefined_kinds_are_refused_not_skipped() -> None:
    for kind in (0, int(EntryKind.COSIGNATURE), 8, 0xFFFF):
        refusal = rules.decode(kind, b"")
        assert isinstance(refusal, rules.Refusal)
        assert (refusal.rule, refusal.reason) == ("R1", "ENTRY_KIND_UNDEFINED")


def test_entry_leaf_hash_is_the_envelope_hash_for_any_u16_kind() -> None:
    for kind in EntryKind:
        assert entry_leaf_hash(kind, b"payload") == leaf_hash(encode_entry(kind, b"payload"))
    header = bytes([1]) + (999).to_bytes(2, "big") + (3).to_bytes(4, "big")
    assert entry_leaf_hash(999, b"abc") == leaf_hash(header + b"abc")
    for bad in (-1, 0x10000, True, "1"):
        with pytest.raises(LedgerArgumentError):
            entry_leaf_hash(bad, b"")  # type: ignore[arg-type]
    with pytest.raises(LedgerArgumentError):
        encode_entry(999, b"")  # type: ignore[arg-type]  # the envelope still refuses it


def test_periods_vocabulary() -> None:
    assert period_ordinal("2025-03-01") == 739311
    assert period_of_ordinal(739311) == "2025-03-01"
    assert validate_period("2024-02-29") == "2024-02-29"
    assert intervals_per_day(15) == 96
    for bad_period in ("2025-02-29", "2025-3-01", 20250301, "2025-03-01 "):
        with pytest.raises(RecordFormatError):
            validate_period(bad_period)
    for bad_interval in (0, 7, 1441, True, 15.0):
        with pytest.raises(RecordFormatError):
            intervals_per_day(bad_interval)
    with pytest.raises(RecordFormatError):
        period_of_ordinal(0)
