"""The rule vectors (tests/vectors/rules/*.json) against the service through gRPC and against
the auditor on an archive, on SQLite and PostgreSQL: both give exactly the vector's reason for
every entry (settlement-v1.md, "Rules").

* Service: a real server on 127.0.0.1:0 and a real channel; every entry a request can carry is
  sent; an accepted one grows the ledger by one, a refused one is the vector's ErrorInfo reason
  with nothing appended, the identical record again (R5) returns the original receipt.
* Auditor: every entry is written through the store, behind the service's back, the ledger is
  exported and ``zkgrid audit`` names exactly the vector's reason at each index; a service
  started on that ledger flags the same indices, with the same reasons, as anomalies (all but
  C1..C4, which its projection does not verify: the service verified them before appending).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from ledger.checkpoint import CheckpointSigner
from ledger.entries import EntryKind
from service.settlement import Settlement
from settlement import convert, rules
from settlement.records import Bill, MeterRegistration, MeterRevocation, ReadingBatch, Tariff
from tests.integration.test_grpc_server import Running, _serve, error_info
from tests.unit.verifier.audit_support import audit, export, open_ledger
from zkgrid.settlement.v1 import (
    bills_pb2,
    meters_pb2,
    readings_pb2,
    tariffs_pb2,
    witness_pb2,
    witness_pb2_grpc,
)

VECTORS = Path(__file__).parents[1] / "vectors" / "rules"
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _vectors() -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(VECTORS.glob("*.json"))]


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return str(request.getfixturevalue("pg_schema_url"))


@pytest.fixture
def served(
    db_url: str, ledger_signer: CheckpointSigner, ledger_origin: str
) -> Iterator[Running]:
    yield from _serve(db_url, ledger_signer, ledger_origin)


def _call(run: Running, kind: int, payload: bytes) -> Callable[[], Any]:
    """The request that carries the entry, as a call returning the response's receipt."""
    utility = run.md("utility", "grid-co")
    if kind == EntryKind.WITNESS_KEY:
        stub = witness_pb2_grpc.WitnessServiceStub(run.channel)
        request = witness_pb2.RegisterWitnessRequest(registration=payload)
        return lambda: stub.RegisterWitness(request, metadata=utility, timeout=30).receipt
    record = rules.decode(kind, payload)
    if isinstance(record, MeterRegistration):
        reg = meters_pb2.RegisterMeterRequest(registration=convert.registration_to_proto(record))
        return lambda: run.meters.RegisterMeter(reg, metadata=utility, timeout=30).receipt
    if isinstance(record, MeterRevocation):
        rev = meters_pb2.RevokeMeterRequest(meter_id=record.meter_id, reason=record.reason)
        return lambda: run.meters.RevokeMeter(rev, metadata=utility, timeout=30).receipt
    if isinstance(record, Tariff):
        tar = tariffs_pb2.PublishTariffRequest(tariff=convert.tariff_to_proto(record))
        return lambda: run.tariffs.PublishTariff(tar, metadata=utility, timeout=30).receipt
    if isinstance(record, ReadingBatch):
        meter = run.md("meter", record.meter_id)
        sub = readings_pb2.SubmitReadingsRequest(batch=convert.reading_batch_to_proto(record))
        return lambda: run.readings.SubmitReadings(sub, metadata=meter, timeout=30).receipt
    assert isinstance(record, Bill), record
    meter = run.md("meter", record.meter_id)
    bill = bills_pb2.SubmitBillRequest(bill=convert.bill_to_proto(record))
    return lambda: run.bills.SubmitBill(bill, metadata=meter, timeout=30).receipt


@pytest.mark.parametrize("vector", _vectors(), ids=lambda v: v["name"])
def test_vector_through_the_service(served: Running, vector: dict[str, Any]) -> None:
    run = served
    placed: dict[int, int] = {}  # vector position -> ledger index on the service's ledger
    for position, entry in enumerate(vector["entries"]):
        if entry["via"] != "api":
            continue  # no request carries it: only a ledger written behind the service's back
        what = (position, entry["note"])
        call = _call(run, entry["kind"], bytes.fromhex(entry["payload_hex"]))
        size = run.store.size()
        expected = entry["reason"]
        if expected is None or expected in rules.IDEMPOTENT:
            receipt = call()
            if expected is None:
                assert run.store.size() == size + 1, what
                assert receipt.ledger_index == size, what
                placed[position] = size
            else:  # the identical record again: the original receipt, nothing appended
                assert run.store.size() == size, what
                assert receipt.ledger_index == placed[entry["same_as"]], what
            continue
        with pytest.raises(grpc.RpcError) as info:
            call()
        assert error_info(info.value).reason == expected, (*what, info.value.details())
        assert run.store.size() == size, what
    assert run.settlement.anomaly_reasons == []


@pytest.mark.parametrize("vector", _vectors(), ids=lambda v: v["name"])
def test_vector_on_a_ledger_written_behind_the_service(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], vector: dict[str, Any]
) -> None:
    entries = vector["entries"]
    with open_ledger(db_url) as store:
        for position, entry in enumerate(entries):
            made = store.append(entry["kind"], bytes.fromhex(entry["payload_hex"]))
            assert made.index == position
    result = audit(capsys, "--archive", str(export(db_url, tmp_path / "ledger.zla")))
    assert result.code == (1 if any(e["reason"] for e in entries) else 0), result.err
    assert result.reasons_at(None) == set()
    for position, entry in enumerate(entries):
        expected = {entry["reason"]} if entry["reason"] else set()
        assert result.reasons_at(position) == expected, (position, entry["note"])
    # The service's projection on the same ledger: the same indices, the same reasons.
    flagged = [
        (position, entry["reason"])
        for position, entry in enumerate(entries)
        if entry["reason"] and (entry["rule"].startswith("R") or entry["rule"] == "C5")
    ]
    with open_ledger(db_url) as store, Settlement(store) as settlement:
        assert settlement.anomaly_reasons == flagged
