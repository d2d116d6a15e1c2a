"""The market's vectors (tests/vectors/market/): known answers of its records and of the
clearing rule, and its state rules (R4..R6, M1..M9) and C7 replayed on the pure rules."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from ledger.entries import Entry, EntryKind, entry_leaf_hash
from settlement import rules
from settlement.market import (
    Clearing,
    IntervalResult,
    MarketDay,
    MarketEnrolment,
    Order,
    OrderCancellation,
    Side,
    Trade,
    clear,
    decode_market_record,
)
from settlement.records import SignatureError
from settlement.rules import LedgerState, Ref

VECTORS = Path(__file__).parents[2] / "vectors" / "market"
RECORDS = json.loads((VECTORS / "records.json").read_text())
RULES = json.loads((VECTORS / "rules.json").read_text())


def _order(fields: dict[str, Any]) -> Order:
    return Order(
        meter_id=fields["meter_id"],
        period=fields["period"],
        side=Side[fields["side"]],
        first_interval=fields["first_interval"],
        last_interval=fields["last_interval"],
        quantity_wh=fields["quantity_wh"],
        limit_price=fields["limit_price"],
        nonce=fields["nonce"],
        signature=bytes.fromhex(fields["signature_hex"]),
    )


def _clearing(fields: dict[str, Any]) -> Clearing:
    return Clearing(
        fields["period"],
        bytes.fromhex(fields["orders_digest_hex"]),
        tuple(
            IntervalResult(r["price"], r["volume"], tuple(Trade(*t) for t in r["trades"]))
            for r in fields["intervals"]
        ),
    )


def test_the_vectors_are_market_records() -> None:
    assert RECORDS["format"] == "zkgrid/market v1"
    for name in ("enrolments", "market_days", "orders", "cancellations", "clearings", "clear"):
        assert RECORDS[name], name
    names = {case["name"] for case in RECORDS["clear"]}
    assert {"no crossing", "pro rata at the margin, with a remainder"} <= names


def _signed(case: dict[str, Any], record: MarketEnrolment | Order | OrderCancellation) -> None:
    data = bytes.fromhex(case["encoding_hex"])
    assert data[0] == 1
    assert record.encode() == data
    assert type(record).decode(data) == record
    assert decode_market_record(record.KIND, data) == record
    assert record.signed_bytes().hex() == case["signed_bytes_hex"]
    assert record.digest().hex() == case["digest_hex"] == hashlib.sha256(data).hexdigest()
    record.verify_signature(bytes.fromhex(case["public_key_hex"]))


@pytest.mark.parametrize("case", RECORDS["enrolments"], ids=lambda c: c["name"])
def test_enrolment_known_answers(case: dict[str, Any]) -> None:
    f = case["fields"]
    record = MarketEnrolment(
        f["meter_id"], bytes.fromhex(f["encryption_key_hex"]), bytes.fromhex(f["signature_hex"])
    )
    _signed(case, record)
    assert record.signed_bytes().startswith(b"zkgrid/market-enrolment v1\x01")


@pytest.mark.parametrize("case", RECORDS["orders"], ids=lambda c: c["name"])
def test_order_known_answers(case: dict[str, Any]) -> None:
    record = _order(case["fields"])
    _signed(case, record)
    assert record.order_hash().hex() == case["digest_hex"]
    assert record.signed_bytes().startswith(b"zkgrid/market-order v1\x01")


@pytest.mark.parametrize("case", RECORDS["cancellations"], ids=lambda c: c["name"])
def test_cancellation_known_answers(case: dict[str, Any]) -> None:
    f = case["fields"]
    record = OrderCancellation(
        f["meter_id"], bytes.fromhex(f["order_hash_hex"]), bytes.fromhex(f["signature_hex"])
    )
    _signed(case, record)
    assert record.signed_bytes().startswith(b"zkgrid/market-cancel v1\x01")


@pytest.mark.parametrize("case", RECORDS["market_days"], ids=lambda c: c["name"])
def test_market_day_known_answers(case: dict[str, Any]) -> None:
    day = MarketDay(**case["fields"])
    data = bytes.fromhex(case["encoding_hex"])
    assert day.encode() == data
    assert MarketDay.decode(data) == day
    assert decode_market_record(EntryKind.MARKET_DAY, data) == day


@pytest.mark.parametrize("case", RECORDS["clearings"], ids=lambda c: c["name"])
def test_clearing_known_answers(case: dict[str, Any]) -> None:
    clearing = _clearing(case["fields"])
    data = bytes.fromhex(case["encoding_hex"])
    assert clearing.encode() == data
    assert Clearing.decode(data) == clearing
    assert clearing.clearing_hash().hex() == case["digest_hex"]


@pytest.mark.parametrize("case", RECORDS["clear"], ids=lambda c: c["name"])
def test_clear_known_answers(case: dict[str, Any]) -> None:
    day = MarketDay.decode(bytes.fromhex(case["market_day_hex"]))
    orders = [Order.decode(bytes.fromhex(h)) for h in case["orders_hex"]]
    result = clear(day, orders)
    assert result.encode().hex() == case["clearing_hex"]
    assert result == _clearing(case["clearing"])


# --------------------------------------------------------------------------- the rule vector


def test_the_rule_vector_covers_every_market_rule() -> None:
    given = {(e["rule"], e["reason"]) for e in RULES["entries"]}
    for pair in [
        ("R2", "RECORD_MALFORMED"),
        ("R4", "UNKNOWN_METER"),
        ("R5", "DUPLICATE_ENROLMENT"),
        ("R5", "DUPLICATE_MARKET_DAY"),
        ("R5", "DUPLICATE_ORDER"),
        ("R5", "DUPLICATE_CANCELLATION"),
        ("R5", "DUPLICATE_CLEARING"),
        ("R6", "METER_REVOKED"),
        ("M1", "NOT_ENROLLED"),
        ("M1", "UNKNOWN_MARKET_DAY"),
        ("M1", "INTERVALS_MISMATCH"),
        ("M2", "GATE_CLOSED"),
        ("M3", "UNKNOWN_TARIFF"),
        ("M3", "INTERVALS_MISMATCH"),
        ("M3", "PRICE_OUT_OF_BOUNDS"),
        ("M4", "SELF_TRADE"),
        ("M5", "UNKNOWN_ORDER"),
        ("M5", "GATE_CLOSED"),
        ("M6", "ENROLMENT_EXISTS"),
        ("M7", "MARKET_DAY_EXISTS"),
        ("M8", "UNKNOWN_MARKET_DAY"),
        ("M8", "GATE_NOT_CLOSED"),
        ("M8", "CLEARING_EXISTS"),
        ("M9", "CLEARING_MISMATCH"),
        ("C7", "SIGNATURE_INVALID"),
    ]:
        assert pair in given, pair
    assert all(e["via"] == "ledger" for e in RULES["entries"])  # no request carries them yet
    times = [e["time"] for e in RULES["entries"]]
    assert times == sorted(times)  # a ledger's checkpoint times never go back


def _c7(state: LedgerState, record: rules.LedgerRecord) -> str | None:
    """C7, as a judge of the market checks it: a meter's market record is signed by the
    meter's registered key."""
    if not isinstance(record, MarketEnrolment | Order | OrderCancellation):
        return None
    key = state.meters[record.meter_id].registration.public_key
    try:
        record.verify_signature(key)
    except SignatureError as exc:
        return exc.reason
    return None


def test_the_rule_vector_on_the_pure_rules() -> None:
    state = LedgerState()
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
            # the cryptographic verdict does not change the state (settlement-v1.md, "Rules")
            assert _c7(state, decoded) == expected, what
            assert expected is None or entry["rule"] == "C7", what
            rules.apply(state, decoded, Ref(index, digest, entry_leaf_hash(entry["kind"], payload)))
            continue
        assert (refusal.reason, refusal.rule) == (expected, entry["rule"]), (*what, refusal)
        original = state.original(decoded, digest)
        if entry["same_as"] is not None:
            assert original is not None, what
            assert original.index == entry["same_as"], what
        else:
            assert original is None, what
    assert set(state.market.clearings) == {"2025-06-10"}


def test_by_default_a_judge_does_not_decode_the_market() -> None:
    """The service and the auditor verify no market signature (C7) yet: to them every
    market entry stays an undefined kind (R1), flagged and never applied."""
    for entry in RULES["entries"]:
        if entry["kind"] in rules.MARKET_KINDS:
            refusal = rules.decode(entry["kind"], bytes.fromhex(entry["payload_hex"]))
            assert isinstance(refusal, rules.Refusal)
            assert (refusal.rule, refusal.reason) == ("R1", "ENTRY_KIND_UNDEFINED")


def test_records_travel_in_their_entries() -> None:
    for case in RECORDS["orders"]:
        order = _order(case["fields"])
        entry = order.to_entry()
        assert entry == Entry(EntryKind.ORDER, order.encode())
        assert rules.decode(entry.kind, entry.payload, rules.DEFINED_KINDS) == order
