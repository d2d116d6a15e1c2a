"""The delivery vectors (tests/vectors/market/delivery_*.json): known answers of the trade
id and of the records of kinds 13..15 (their stored proofs still verify), and the delivery
rules (R4..R6, M10..M13) with C7 and C8 replayed on the pure rules, as a judge of the
market does: the state rules first, then the signature, then the proof over the state."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from circuits.r1cs import R1CSStatement
from ledger.entries import EntryKind, entry_leaf_hash
from settlement import rules
from settlement.market import (
    Delivery,
    DeliveryAllocation,
    DeliveryDefault,
    DeliveryStep,
    decode_market_record,
    trade_id,
)
from settlement.market_circuits import allocation_statement, delivery_statement
from settlement.records import ReadingBatch, SignatureError
from settlement.rules import LedgerState, Ref
from zkgrid.errors import ProofFormatError, VerificationError

VECTORS = Path(__file__).parents[2] / "vectors" / "market"
RECORDS = json.loads((VECTORS / "delivery_records.json").read_text())
RULES = json.loads((VECTORS / "delivery_rules.json").read_text())


def test_the_vectors_are_delivery_records() -> None:
    assert RECORDS["format"] == "zkgrid/market v1"
    for name in ("trade_ids", "allocations", "deliveries", "defaults"):
        assert RECORDS[name], name
    kinds = {entry["kind"] for entry in RULES["entries"]}
    assert {13, 14, 15} <= kinds


@pytest.mark.parametrize("case", RECORDS["trade_ids"], ids=lambda c: c["trade_id_hex"][:8])
def test_trade_id_known_answers(case: dict[str, Any]) -> None:
    clearing_hash = bytes.fromhex(case["clearing_hash_hex"])
    digest = trade_id(clearing_hash, case["interval"], case["trade_index"])
    assert digest.hex() == case["trade_id_hex"]


def _step(case: dict[str, Any], cls: type[DeliveryAllocation] | type[Delivery]) -> Any:
    data = bytes.fromhex(case["encoding_hex"])
    record = cls.decode(data)
    f = case["fields"]
    assert record == cls(
        f["meter_id"],
        f["period"],
        f["interval"],
        f["trade_index"],
        bytes.fromhex(f["clearing_hash_hex"]),
        bytes.fromhex(f["commitment_hex"]),
        bytes.fromhex(f["proof_hex"]),
        bytes.fromhex(f["sealed_opening_hex"]),
        bytes.fromhex(f["signature_hex"]),
    )
    assert record.encode() == data
    assert decode_market_record(cls.KIND, data) == record
    assert record.signed_bytes().hex() == case["signed_bytes_hex"]
    assert record.digest().hex() == case["digest_hex"] == hashlib.sha256(data).hexdigest()
    record.verify_signature(bytes.fromhex(case["public_key_hex"]))
    return record


@pytest.mark.parametrize("case", RECORDS["allocations"], ids=lambda c: c["name"])
def test_allocation_known_answers(case: dict[str, Any]) -> None:
    record = _step(case, DeliveryAllocation)
    statement = allocation_statement(
        record.trade_id(),
        bytes.fromhex(case["export_hex"]),
        [bytes.fromhex(c) for c in case["earlier_hex"]],
        case["quantity"],
        record.commitment,
        record.proof,
    )
    R1CSStatement.verify_batch([statement])  # the stored proof still verifies (C8)


@pytest.mark.parametrize("case", RECORDS["deliveries"], ids=lambda c: c["name"])
def test_delivery_known_answers(case: dict[str, Any]) -> None:
    record = _step(case, Delivery)
    statement = delivery_statement(
        record.trade_id(),
        bytes.fromhex(case["allocation_hex"]),
        bytes.fromhex(case["import_hex"]),
        [bytes.fromhex(c) for c in case["earlier_hex"]],
        record.commitment,
        record.proof,
    )
    R1CSStatement.verify_batch([statement])


@pytest.mark.parametrize("case", RECORDS["defaults"], ids=lambda c: c["name"])
def test_default_known_answers(case: dict[str, Any]) -> None:
    data = bytes.fromhex(case["encoding_hex"])
    f = case["fields"]
    record = DeliveryDefault(
        f["period"],
        f["interval"],
        f["trade_index"],
        bytes.fromhex(f["clearing_hash_hex"]),
        DeliveryStep[f["step"]],
    )
    assert DeliveryDefault.decode(data) == record
    assert record.encode() == data
    assert record.digest().hex() == case["digest_hex"]


# --------------------------------------------------------------------------- the rule vector


def _crypto(
    state: LedgerState, record: Any, batches: dict[tuple[str, str], ReadingBatch]
) -> str | None:
    """C7 then C8 of a delivery step whose state rules hold; the reason, or None."""
    if not isinstance(record, DeliveryAllocation | Delivery):
        return None
    try:
        record.verify_signature(state.meters[record.meter_id].registration.public_key)
    except SignatureError as exc:
        return exc.reason
    batch = batches[(record.meter_id, record.period)]
    try:
        if isinstance(record, DeliveryAllocation):
            statement = rules.allocation_statement_for(state, record, batch)
        else:
            statement = rules.delivery_statement_for(state, record, batch)
        R1CSStatement.verify_batch([statement])
    except ProofFormatError as exc:
        return exc.reason
    except VerificationError as exc:
        return exc.reason
    return None


def test_the_delivery_vector_on_the_pure_rules() -> None:
    state = LedgerState()
    batches: dict[tuple[str, str], ReadingBatch] = {}
    for index, entry in enumerate(RULES["entries"]):
        what = (index, entry["note"])
        payload = bytes.fromhex(entry["payload_hex"])
        expected = entry["reason"]
        decoded = rules.decode(entry["kind"], payload, rules.DEFINED_KINDS)
        if isinstance(decoded, rules.Refusal):
            assert (decoded.reason, decoded.rule) == (expected, entry["rule"]), what
            continue
        digest = hashlib.sha256(payload).digest()
        refusal = rules.check(state, decoded, digest, time=entry["time"])
        if refusal is None:
            # C7, C8 after the state rules; the verdict does not change the state
            assert _crypto(state, decoded, batches) == expected, what
            assert expected is None or entry["rule"] in ("C7", "C8"), what
            rules.apply(state, decoded, Ref(index, digest, entry_leaf_hash(entry["kind"], payload)))
            if isinstance(decoded, ReadingBatch):
                batches[(decoded.meter_id, decoded.period)] = decoded
            continue
        assert (refusal.reason, refusal.rule) == (expected, entry["rule"]), (*what, refusal)
        original = state.original(decoded, digest)
        if entry["same_as"] is not None:
            assert original is not None, what
            assert original.index == entry["same_as"], what
        else:
            assert original is None, what
    # every trade of the day ends delivered or defaulted
    period = "2025-06-10"
    clearing = state.market.clearings[period][0]
    for t, result in enumerate(clearing.intervals):
        for k in range(len(result.trades)):
            assert state.market.trades[(period, t, k)].settled, (t, k)
    assert rules.due_defaults(state, period, entry["time"]) == []


def test_every_delivery_reason_and_rule_is_in_the_vector() -> None:
    given = {(e["reason"], e["rule"]) for e in RULES["entries"]}
    assert {
        ("UNKNOWN_METER", "R4"),
        ("DUPLICATE_DELIVERY", "R5"),
        ("METER_REVOKED", "R6"),
        ("UNKNOWN_TRADE", "M10"),
        ("DELIVERY_EXISTS", "M11"),
        ("DEADLINE_PASSED", "M12"),
        ("DEADLINE_NOT_PASSED", "M12"),
        ("DELIVERY_NOT_READY", "M13"),
        ("SIGNATURE_INVALID", "C7"),
        ("PROOF_INVALID", "C8"),
        ("PROOF_MALFORMED", "C8"),
        ("RECORD_MALFORMED", "R2"),
    } <= given
    kinds = {e["kind"] for e in RULES["entries"] if e["reason"]}
    assert {EntryKind.DELIVERY_ALLOCATION, EntryKind.DELIVERY, EntryKind.DELIVERY_DEFAULT} <= kinds


def test_by_default_a_judge_does_not_decode_the_delivery_kinds() -> None:
    for entry in RULES["entries"]:
        if entry["kind"] in (13, 14, 15):
            refusal = rules.decode(entry["kind"], bytes.fromhex(entry["payload_hex"]))
            assert isinstance(refusal, rules.Refusal)
            assert (refusal.rule, refusal.reason) == ("R1", "ENTRY_KIND_UNDEFINED")
