"""The settlement domain on an in-memory SQLite ledger: the full flow, every refusal reason
(with nothing appended), idempotence, the projection (replay, replicas) and privacy."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ledger.entries import Entry, EntryKind
from service.errors import (
    BillExists,
    ChainBroken,
    DuplicatePeriod,
    IntervalsMismatch,
    InvalidRequest,
    MeterExists,
    MeterRevoked,
    PermissionDenied,
    ProofInvalid,
    ProofMalformed,
    TariffExists,
    UnknownBatch,
    UnknownMeter,
    UnknownTariff,
)
from service.market import Market
from service.settlement import Receipt, Settlement
from service.storage import LedgerStore, open_store
from settlement.market import (
    Clearing,
    Delivery,
    DeliveryAllocation,
    DeliveryDefault,
    MarketDay,
    MarketEnrolment,
    Order,
    OrderCancellation,
)
from settlement.records import (
    ZERO_HASH,
    Bill,
    CycleBill,
    CycleTariff,
    MeterKey,
    MeterRegistration,
    ReadingBatch,
    RecordFormatError,
    Tariff,
)
from tests.unit.service.settlement_support import (
    ORIGIN,
    SIGNER,
    SimMeter,
    make_tariff,
    open_memory_store,
    registered,
)
from zkgrid.errors import ZkgridError
from zkp.group import encode_scalar

DAY1, DAY2, DAY3 = "2024-03-01", "2024-03-02", "2024-03-03"


@pytest.fixture
def store() -> Iterator[LedgerStore]:
    s = open_memory_store()
    yield s
    s.close()


@pytest.fixture
def settlement(store: LedgerStore) -> Iterator[Settlement]:
    with Settlement(store) as s:
        yield s


def assert_receipt(receipt: Receipt, record: Any) -> None:
    receipt.verify(SIGNER.verifier(), record.to_entry())


def refused(settlement: Settlement, reason: str, call: Callable[[], object]) -> ZkgridError:
    """``call`` fails with ``reason`` and appends nothing."""
    size = settlement.store.size()
    with pytest.raises(ZkgridError) as info:
        call()
    assert info.value.reason == reason, info.value
    assert settlement.store.size() == size
    return info.value


def run_flow(settlement: Settlement, meters: list[SimMeter], periods: list[str]) -> None:
    registered(settlement, *meters)
    tariffs = {p: make_tariff(p, meters[0].interval_minutes, seed=i) for i, p in enumerate(periods)}
    for tariff in tariffs.values():
        assert_receipt(settlement.publish_tariff(tariff), tariff)
    for period in periods:
        for meter in meters:
            batch = meter.batch(period)
            assert_receipt(settlement.submit_readings(batch, as_meter=meter.meter_id), batch)
    for period in periods:
        for meter in meters:
            bill = meter.bill(period, tariffs[period])
            # The bill proves exactly the plaintext bill, computed here from the readings.
            assert bill.total == meter.plaintext_bill(period, tariffs[period])
            assert_receipt(settlement.submit_bill(bill), bill)
    for meter in meters:
        statement = settlement.get_statement(meter.meter_id)
        assert [line.period for line in statement.lines] == periods
        expected = [meter.plaintext_bill(p, tariffs[p]) for p in periods]
        assert [line.total for line in statement.lines] == expected
        assert statement.total == sum(expected)
        for line in statement.lines:
            assert line.currency == "EUR"
            assert_receipt(line.receipt, line.bill)
        one = settlement.get_statement(meter.meter_id, periods[-1])
        assert [line.period for line in one.lines] == [periods[-1]]


def test_full_flow_for_several_meters(settlement: Settlement) -> None:
    meters = [SimMeter(f"meter-{i}") for i in range(3)]
    run_flow(settlement, meters, [DAY1, DAY2])
    assert settlement.store.size() == 3 + 2 + 6 + 6
    info = settlement.get_meter("meter-1")
    assert info.next_sequence == 2
    assert info.last_batch_hash == meters[1].batches[DAY2].batch_hash()
    assert not info.revoked
    receipt = settlement.get_receipt("meter-1", DAY1)
    assert_receipt(receipt, meters[1].batches[DAY1])
    assert settlement.get_batch("meter-1", DAY2) == meters[1].batches[DAY2]
    tariff, tariff_receipt = settlement.get_tariff(DAY2)
    assert_receipt(tariff_receipt, tariff)
    registration = settlement.get_meter("meter-2").registration
    assert registration.public_key == meters[2].key.public_key
    assert_receipt(settlement.get_meter_receipt("meter-2"), registration)
    assert settlement.anomalies == []


def test_default_96_intervals(settlement: Settlement) -> None:
    meter = SimMeter("quarter-hour", interval_minutes=15)
    registered(settlement, meter)
    tariff = make_tariff(DAY1, 15)
    settlement.publish_tariff(tariff)
    batch = meter.batch(DAY1)
    assert len(batch.commitments) == 192
    settlement.submit_readings(batch)
    bill = meter.bill(DAY1, tariff)
    assert_receipt(settlement.submit_bill(bill), bill)
    assert settlement.get_statement(meter.meter_id).total == meter.plaintext_bill(DAY1, tariff)


def test_receipts_of_the_original_entry(settlement: Settlement) -> None:
    meter = SimMeter("m")
    registered(settlement, meter)
    batch = meter.batch(DAY1)
    first = settlement.submit_readings(batch)
    assert first.tree_size == first.index + 1
    settlement.publish_tariff(make_tariff(DAY1))
    assert settlement.get_receipt("m", DAY1) == first


# --------------------------------------------------------------------------- idempotence


def test_identical_resubmissions_return_the_original_receipt(settlement: Settlement) -> None:
    meter = SimMeter("m")
    registered(settlement, meter)
    tariff = make_tariff(DAY1)
    t_receipt = settlement.publish_tariff(tariff)
    batch = meter.batch(DAY1)
    b_receipt = settlement.submit_readings(batch)
    bill = meter.bill(DAY1, tariff)
    bill_receipt = settlement.submit_bill(bill)
    size = settlement.store.size()
    assert settlement.publish_tariff(tariff) == t_receipt
    assert settlement.submit_readings(batch) == b_receipt
    assert settlement.submit_bill(bill) == bill_receipt
    assert settlement.store.size() == size
    # still idempotent once the chain has moved on and after a revocation
    settlement.submit_readings(meter.batch(DAY2))
    settlement.revoke_meter("m", "decommissioned")
    assert settlement.submit_readings(batch) == b_receipt
    assert settlement.submit_bill(bill) == bill_receipt


# --------------------------------------------------------------------------- refusals


def test_meter_rules(settlement: Settlement) -> None:
    meter = SimMeter("m")
    reg = meter.registration()
    settlement.register_meter(reg)
    refused(settlement, "METER_EXISTS", lambda: settlement.register_meter(reg))
    other = MeterRegistration.create(MeterKey.generate(), "m", 60)
    err = refused(settlement, "METER_EXISTS", lambda: settlement.register_meter(other))
    assert isinstance(err, MeterExists)
    bad_pop = MeterRegistration("n", reg.public_key, 240, reg.pop_signature)
    refused(settlement, "SIGNATURE_INVALID", lambda: settlement.register_meter(bad_pop))
    err = refused(settlement, "UNKNOWN_METER", lambda: settlement.revoke_meter("nobody", "x"))
    assert isinstance(err, UnknownMeter)
    refused(settlement, "UNKNOWN_METER", lambda: settlement.get_meter("nobody"))
    refused(settlement, "INVALID_ARGUMENT", lambda: settlement.get_meter("bad id"))
    refused(settlement, "INVALID_ARGUMENT", lambda: settlement.revoke_meter("m", "x" * 2000))
    assert_receipt(settlement.revoke_meter("m", "stolen"), _revocation("m", "stolen"))
    info = settlement.get_meter("m")
    assert info.revoked
    assert info.revocation_reason == "stolen"
    err = refused(settlement, "METER_REVOKED", lambda: settlement.revoke_meter("m", "again"))
    assert isinstance(err, MeterRevoked)
    refused(settlement, "METER_EXISTS", lambda: settlement.register_meter(reg))


def _revocation(meter_id: str, reason: str) -> Any:
    from settlement.records import MeterRevocation

    return MeterRevocation(meter_id, reason)


def test_batch_rules(settlement: Settlement) -> None:
    meter = SimMeter("m")
    stranger = SimMeter("stranger")
    registered(settlement, meter)
    refused(settlement, "UNKNOWN_METER", lambda: settlement.submit_readings(stranger.batch(DAY1)))
    # INTERVALS_MISMATCH: a batch of another interval length than registered
    hourly = SimMeter("m", interval_minutes=60, key=meter.key)
    err = refused(
        settlement, "INTERVALS_MISMATCH", lambda: settlement.submit_readings(hourly.batch(DAY1))
    )
    assert isinstance(err, IntervalsMismatch)
    # CHAIN_BROKEN: sequence skipped, or a wrong prev_hash
    meter.sequence = 1
    meter.prev_hash = b"\x01" * 32
    err = refused(
        settlement,
        "CHAIN_BROKEN",
        lambda: settlement.submit_readings(meter.batch(DAY1, advance=False)),
    )
    assert isinstance(err, ChainBroken)
    meter.sequence, meter.prev_hash = 0, ZERO_HASH
    first = meter.batch(DAY1)
    settlement.submit_readings(first)
    meter.prev_hash = b"\x02" * 32
    refused(
        settlement,
        "CHAIN_BROKEN",
        lambda: settlement.submit_readings(meter.batch(DAY2, advance=False)),
    )
    meter.prev_hash = first.batch_hash()
    # DUPLICATE_PERIOD: another batch for DAY1 (correctly chained)
    err = refused(
        settlement,
        "DUPLICATE_PERIOD",
        lambda: settlement.submit_readings(meter.batch(DAY1, advance=False)),
    )
    assert isinstance(err, DuplicatePeriod)
    # PERMISSION_DENIED: a meter submitting another meter's batch
    nxt = meter.batch(DAY2, advance=False)
    err = refused(
        settlement, "PERMISSION_DENIED", lambda: settlement.submit_readings(nxt, as_meter="other")
    )
    assert isinstance(err, PermissionDenied)
    settlement.submit_readings(nxt, as_meter="m")
    meter.accept(nxt, meter.openings.get(DAY2) or _dummy_openings())
    # METER_REVOKED
    settlement.revoke_meter("m", "gone")
    err = refused(
        settlement,
        "METER_REVOKED",
        lambda: settlement.submit_readings(meter.batch(DAY3, advance=False)),
    )
    assert isinstance(err, MeterRevoked)
    refused(settlement, "INVALID_ARGUMENT", lambda: settlement.submit_readings(b"raw"))  # type: ignore[arg-type]


def _dummy_openings() -> Any:
    from tests.unit.service.settlement_support import Openings

    return Openings([], [])


def test_proof_reasons(settlement: Settlement) -> None:
    meter = SimMeter("m")
    registered(settlement, meter)
    good = meter.batch(DAY1, advance=False)
    # PROOF_MALFORMED: a range proof of an impossible length, or a commitment off the curve
    short = ReadingBatch.create(
        meter.key, **{**_fields(good), "range_proof": good.range_proof[:-1]}
    )
    err = refused(settlement, "PROOF_MALFORMED", lambda: settlement.submit_readings(short))
    assert isinstance(err, ProofMalformed)
    off_curve = b"\x02" + (1).to_bytes(32, "big")
    bad_point = ReadingBatch.create(
        meter.key, **{**_fields(good), "commitments": (off_curve, *good.commitments[1:])}
    )
    refused(settlement, "PROOF_MALFORMED", lambda: settlement.submit_readings(bad_point))
    # PROOF_INVALID: a well-formed proof with a flipped scalar byte
    flipped = bytearray(good.range_proof)
    flipped[-40] ^= 1
    bad = ReadingBatch.create(meter.key, **{**_fields(good), "range_proof": bytes(flipped)})
    err = refused(settlement, "PROOF_INVALID", lambda: settlement.submit_readings(bad))
    assert isinstance(err, ProofInvalid)
    # SIGNATURE_INVALID: signed by another key
    forged = good.with_signature(MeterKey.generate().sign(good.signed_bytes()))
    refused(settlement, "SIGNATURE_INVALID", lambda: settlement.submit_readings(forged))
    settlement.submit_readings(good)


def _fields(batch: ReadingBatch) -> dict[str, Any]:
    return {
        "meter_id": batch.meter_id,
        "period": batch.period,
        "interval_minutes": batch.interval_minutes,
        "sequence": batch.sequence,
        "prev_hash": batch.prev_hash,
        "commitments": batch.commitments,
        "range_proof": batch.range_proof,
    }


def test_tariff_rules(settlement: Settlement) -> None:
    tariff = make_tariff(DAY1)
    settlement.publish_tariff(tariff)
    other = make_tariff(DAY1, seed=99)
    err = refused(settlement, "TARIFF_EXISTS", lambda: settlement.publish_tariff(other))
    assert isinstance(err, TariffExists)
    err = refused(settlement, "UNKNOWN_TARIFF", lambda: settlement.get_tariff(DAY2))
    assert isinstance(err, UnknownTariff)
    refused(settlement, "INVALID_ARGUMENT", lambda: settlement.get_tariff("2024-02-30"))


def test_bill_rules(settlement: Settlement) -> None:
    meter = SimMeter("m")
    registered(settlement, meter)
    tariff = make_tariff(DAY1)
    batch = meter.batch(DAY1)
    # UNKNOWN_BATCH: the batch is not on the ledger yet
    bill = meter.bill(DAY1, tariff)
    err = refused(settlement, "UNKNOWN_BATCH", lambda: settlement.submit_bill(bill))
    assert isinstance(err, UnknownBatch)
    settlement.submit_readings(batch)
    # UNKNOWN_TARIFF: no tariff published yet
    refused(settlement, "UNKNOWN_TARIFF", lambda: settlement.submit_bill(bill))
    settlement.publish_tariff(tariff)
    # PERMISSION_DENIED
    refused(settlement, "PERMISSION_DENIED", lambda: settlement.submit_bill(bill, as_meter="x"))
    # PROOF_INVALID: a wrong total
    wrong = _bill(bill, total=bill.total + 1)
    refused(settlement, "PROOF_INVALID", lambda: settlement.submit_bill(wrong))
    # PROOF_MALFORMED: a nonce point that is not on the curve
    malformed = _bill(bill, proof=b"\x02" + (1).to_bytes(32, "big") + bill.proof[33:])
    refused(settlement, "PROOF_MALFORMED", lambda: settlement.submit_bill(malformed))
    # UNKNOWN_BATCH / UNKNOWN_TARIFF: hashes that name nothing on the ledger
    refused(
        settlement,
        "UNKNOWN_BATCH",
        lambda: settlement.submit_bill(_bill(bill, batch_hash=b"\x07" * 32)),
    )
    refused(
        settlement,
        "UNKNOWN_TARIFF",
        lambda: settlement.submit_bill(_bill(bill, tariff_hash=b"\x07" * 32)),
    )
    refused(
        settlement, "UNKNOWN_METER", lambda: settlement.submit_bill(_bill(bill, meter_id="nobody"))
    )
    assert_receipt(settlement.submit_bill(bill), bill)
    # BILL_EXISTS: a second, different (even valid) bill for the period
    err = refused(
        settlement, "BILL_EXISTS", lambda: settlement.submit_bill(meter.bill(DAY1, tariff))
    )
    assert isinstance(err, BillExists)
    # METER_REVOKED
    settlement.submit_readings(meter.batch(DAY2))
    tariff2 = make_tariff(DAY2, seed=5)
    settlement.publish_tariff(tariff2)
    settlement.revoke_meter("m", "gone")
    refused(settlement, "METER_REVOKED", lambda: settlement.submit_bill(meter.bill(DAY2, tariff2)))
    refused(settlement, "UNKNOWN_BATCH", lambda: settlement.get_receipt("m", DAY3))
    refused(settlement, "UNKNOWN_METER", lambda: settlement.get_statement("nobody"))


def test_bill_with_a_tariff_of_another_interval(settlement: Settlement) -> None:
    meter = SimMeter("m", interval_minutes=240)
    registered(settlement, meter)
    settlement.submit_readings(meter.batch(DAY1))
    hourly = make_tariff(DAY1, interval_minutes=60)
    settlement.publish_tariff(hourly)
    fake = Bill("m", DAY1, meter.batches[DAY1].batch_hash(), hourly.tariff_hash(), 0, b"\x02" * 65)
    refused(settlement, "INTERVALS_MISMATCH", lambda: settlement.submit_bill(fake))


def _bill(bill: Bill, **over: Any) -> Bill:
    fields: dict[str, Any] = {
        "meter_id": bill.meter_id,
        "period": bill.period,
        "batch_hash": bill.batch_hash,
        "tariff_hash": bill.tariff_hash,
        "total": bill.total,
        "proof": bill.proof,
    }
    fields.update(over)
    return Bill(**fields)


def test_bulk_bills(settlement: Settlement) -> None:
    meters = [SimMeter(f"m{i}") for i in range(4)]
    registered(settlement, *meters)
    tariff = make_tariff(DAY1)
    settlement.publish_tariff(tariff)
    for meter in meters:
        settlement.submit_readings(meter.batch(DAY1))
    bills = [meter.bill(DAY1, tariff) for meter in meters]
    bills[2] = _bill(bills[2], total=bills[2].total - 1)
    results = settlement.submit_bills([*bills, bills[0]])
    assert isinstance(results[0], Receipt)
    assert isinstance(results[1], Receipt)
    assert isinstance(results[2], ProofInvalid)
    assert isinstance(results[3], Receipt)
    assert results[4] == results[0]
    assert settlement.store.size() == 4 + 1 + 4 + 3


# --------------------------------------------------------------------------- the projection


def test_replay_at_start_up_rebuilds_the_state(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    meters = [SimMeter("a"), SimMeter("b")]
    with open_store(url, SIGNER, ORIGIN) as store, Settlement(store) as first:
        run_flow(first, meters, [DAY1])
        first.revoke_meter("b", "moved")
    with open_store(url, SIGNER, ORIGIN) as store, Settlement(store) as second:
        assert second.get_meter("a").next_sequence == 1
        assert second.get_meter("b").revoked
        assert second.get_statement("a").total == first.get_statement("a").total
        refused(
            second,
            "DUPLICATE_PERIOD",
            lambda: second.submit_readings(meters[0].batch(DAY1, advance=False)),
        )
        refused(
            second,
            "METER_REVOKED",
            lambda: second.submit_readings(meters[1].batch(DAY2, advance=False)),
        )
        second.submit_readings(meters[0].batch(DAY2))


def test_two_replicas_on_one_ledger_catch_up_under_the_lock(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    meter = SimMeter("m")
    with (
        open_store(url, SIGNER, ORIGIN) as store_a,
        open_store(url, SIGNER, ORIGIN) as store_b,
        Settlement(store_a) as a,
        Settlement(store_b) as b,
    ):
        a.register_meter(meter.registration())
        # b has not seen the registration: its cheap pre-check catches up first
        batch = meter.batch(DAY1)
        b.submit_readings(batch)
        # a's projection is stale (sequence 0); its locked precondition must catch up and
        # refuse a conflicting batch for the same sequence
        conflicting = SimMeter("m", key=meter.key)
        other = conflicting.batch(DAY2)
        assert a._state.ledger.meters["m"].next_sequence == 0  # stale on purpose
        size = store_a.size()
        digest = other.batch_hash()
        with pytest.raises(ChainBroken):
            a._append(other, other.encode(), digest, lambda t: a._state_rules(other, digest, t))
        assert store_a.size() == size
        assert a.get_meter("m").next_sequence == 1


def test_records_written_behind_the_service_are_anomalies(store: LedgerStore) -> None:
    meter = SimMeter("m")
    reg = meter.registration()
    store.append(EntryKind.METER_REGISTRATION, reg.encode())
    store.append(EntryKind.METER_REGISTRATION, reg.encode())  # a duplicate
    store.append(EntryKind.BILL, b"\x01garbage")
    store.append(EntryKind.WITNESS_KEY, b"not a witness registration")
    store.append(EntryKind.COSIGNATURE, b"no payload is defined for this kind")
    with Settlement(store) as s:
        assert s.anomalies == [1, 2, 3, 4]
        assert s.anomaly_reasons == [
            (1, "METER_EXISTS"),
            (2, "RECORD_MALFORMED"),
            (3, "WITNESS_MALFORMED"),
            (4, "ENTRY_KIND_UNDEFINED"),
        ]
        assert s.get_meter("m").receipt_index == 0


# --------------------------------------------------------------------------- privacy


def test_the_api_carries_no_readings_or_blindings() -> None:
    """Every public method takes records, ids, periods or reasons: nothing that holds
    values or blindings."""
    allowed = {
        "self",
        "registration",
        "meter_id",
        "reason",
        "batch",
        "period",
        "tariff",
        "bill",
        "bills",
        "as_meter",
        "store",
        "verifier",
        "verify_processes",
        "group_commit",
        "late_days",
        "clock",
        # the plumbing service.market appends its records through (records and their bytes)
        "record",
        "payload",
        "digest",
        "group_key",
        "ref",
        # the market (service/market.py): its records, ids and periods
        "settlement",
        "enrolment",
        "day",
        "order",
        "cancellation",
        # the delivery steps: records carrying commitments, proofs and sealed openings only
        "allocation",
        "delivery",
    }
    for domain in (Settlement, Market):
        for name, member in inspect.getmembers(domain, inspect.isfunction):
            if name.startswith("_") and name != "__init__":
                continue
            params = set(inspect.signature(member).parameters)
            assert params <= allowed, (name, params - allowed)
    records = (MeterRegistration, ReadingBatch, Tariff, Bill, CycleTariff, CycleBill)
    market = (
        MarketEnrolment, MarketDay, Order, OrderCancellation, Clearing, DeliveryAllocation,
        Delivery, DeliveryDefault,
    )  # fmt: skip
    for record in (*records, *market):
        fields = set(record.__dataclass_fields__)
        assert not fields & {"values", "readings", "blindings", "imports", "exports", "openings"}


def test_no_reading_or_blinding_reaches_the_ledger(settlement: Settlement) -> None:
    meters = [SimMeter(f"p{i}") for i in range(2)]
    run_flow(settlement, meters, [DAY1, DAY2])
    payloads = b"".join(e.payload for e in settlement.store.entries())
    with settlement.store.engine.connect() as conn:
        dump = b"".join(
            bytes(row[0]) if isinstance(row[0], bytes | memoryview) else str(row[0]).encode()
            for table in ("ledger_entries", "ledger_checkpoints")
            for row in conn.exec_driver_sql(
                f"SELECT {'payload' if table == 'ledger_entries' else 'note'} FROM {table}"
            )
        )
    for meter in meters:
        for opening in meter.openings.values():
            for blinding in opening.blindings:
                assert encode_scalar(blinding) not in payloads
                assert encode_scalar(blinding) not in dump
            for value in opening.values:
                if value >= 1000:  # short numbers occur by chance in any text
                    assert str(value).encode() not in payloads
    statement = settlement.get_statement("p0")
    assert all(len(line.bill.proof) == 65 for line in statement.lines)


def test_invalid_arguments_are_typed(settlement: Settlement) -> None:
    for call in (
        lambda: settlement.register_meter("m"),  # type: ignore[arg-type]
        lambda: settlement.publish_tariff(None),  # type: ignore[arg-type]
        lambda: settlement.submit_bill(b""),  # type: ignore[arg-type]
        lambda: settlement.get_receipt("m", "yesterday"),
        lambda: settlement.get_statement("m", "2024-3-1"),
    ):
        with pytest.raises(InvalidRequest):
            call()
    with pytest.raises(RecordFormatError):
        Tariff(DAY1, 240, "EUR", 0, (1,) * 6, (1,) * 5)


def test_entries_are_the_records(settlement: Settlement) -> None:
    meter = SimMeter("m")
    registered(settlement, meter)
    batch = meter.batch(DAY1)
    receipt = settlement.submit_readings(batch)
    stored = settlement.store.entry(receipt.index)
    assert Entry(stored.kind, stored.payload) == batch.to_entry()
