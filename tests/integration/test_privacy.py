"""Privacy: after a demo-like scenario, nothing the service stores, logs or answers holds a
reading or a blinding.

Searched: the SQLite ledger file and its -wal/-shm/-journal side files, every log record
of every logger at DEBUG (service and clients, in process; the access log and the append
log among them, each record rendered as the text line and as the JSON line
``zkgrid serve --log-format json`` writes), and the serialised bytes of
every request and response message (and error details) that crossed the channel. For
each reading: its decimal string bounded by non-digits (readings are drawn from
[10^6, 2^32) so the search is meaningful); for each blinding: its 32-byte big-endian
encoding and its decimal string. A positive control checks the same search finds them
in the meter's own opening store.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import grpc
import pytest

from cli.community import time_of_use_tariff
from cli.demo import embedded_service, publish_cycle_tariff, publish_tariff, register_meter
from ledger.checkpoint import CheckpointSigner
from meter.client import MeterClient, ServiceError
from meter.readings import DayReadings
from service.logs import ACCESS_LOGGER, LEDGER_LOGGER, TEXT_FORMAT, JsonFormatter
from settlement.records import Bill, CycleTariff
from zkgrid.settlement.v1 import ledger_pb2, ledger_pb2_grpc

INTERVAL = 240
PERIOD = "2026-11-21"
METERS = 3


class _Recorder(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[type-arg]
    grpc.UnaryStreamClientInterceptor,  # type: ignore[type-arg]
):
    """Keeps the bytes of every request, response and error detail on the channel."""

    def __init__(self) -> None:
        self.blobs: list[bytes] = []

    def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        self.blobs.append(request.SerializeToString())
        outcome = continuation(details, request)
        try:
            self.blobs.append(outcome.result().SerializeToString())
        except grpc.RpcError as exc:
            self.blobs.append((exc.details() or "").encode())
            pairs = cast(Sequence[tuple[str, str | bytes]], exc.trailing_metadata() or ())
            for _key, value in pairs:
                self.blobs.append(value if isinstance(value, bytes) else value.encode())
        return outcome

    def intercept_unary_stream(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        self.blobs.append(request.SerializeToString())
        responses = list(continuation(details, request))
        self.blobs.extend(r.SerializeToString() for r in responses)
        return iter(responses)


def _distinct_readings(rng: random.Random, period: str) -> DayReadings:
    t = 1440 // INTERVAL
    return DayReadings.from_lists(
        period,
        INTERVAL,
        [rng.randrange(10**6, 2**32) for _ in range(t)],
        [rng.randrange(10**6, 2**32) for _ in range(t)],
    )


def _decimal_pattern(value: int) -> re.Pattern[bytes]:
    return re.compile(rb"(?<![0-9])" + str(value).encode() + rb"(?![0-9])")


def _leaks(haystack: bytes, values: list[int], blindings: list[int]) -> list[str]:
    found = []
    for v in values:
        if _decimal_pattern(v).search(haystack):
            found.append(f"reading {v}")
    for b in blindings:
        if b.to_bytes(32, "big") in haystack:
            found.append("blinding (32-byte big-endian)")
        if _decimal_pattern(b).search(haystack):
            found.append("blinding (decimal)")
    return found


def _run_scenario(tmp_path: Path) -> tuple[_Recorder, list[MeterClient]]:
    rng = random.Random(20261121)
    signer = CheckpointSigner.generate("zkgrid.test/privacy")
    recorder = _Recorder()
    clients = []
    # failure_burst 2: a refused bill, then its corrected one from the same meter
    with embedded_service(
        f"sqlite:///{tmp_path / 'ledger.db'}", signer=signer, failure_burst=2
    ) as svc:
        channel = grpc.intercept_channel(svc.channel, recorder)
        for i in range(METERS):
            home = MeterClient.keygen(tmp_path / "meters" / f"p-{i}", f"p-{i}", INTERVAL)
            client = MeterClient(home, channel, insecure=True, log_key=svc.log_key)
            register_meter(channel, client.registration_request(), svc.log_key)
            clients.append(client)
        publish_tariff(channel, time_of_use_tariff(PERIOD, INTERVAL), svc.log_key)
        for client in clients:
            readings = _distinct_readings(rng, PERIOD)
            client.submit(client.build_batch(readings))
            client.submit(client.build_batch(readings))  # idempotent resubmission
            bill = client.prove_bill(PERIOD)
            # A refused (tampered) bill first: its error details must not leak either.
            tampered = Bill(bill.meter_id, bill.period, bill.batch_hash, bill.tariff_hash,
                            bill.total + 1, bill.proof)  # fmt: skip
            with pytest.raises(ServiceError) as info:
                client.submit_bill(tampered)
            assert info.value.reason == "PROOF_INVALID"
            client.submit_bill(bill)
            client.submit_bill(bill)  # idempotent
            client.statement()
            client.meter_status()
            client.tariff(PERIOD)
        stub = ledger_pb2_grpc.LedgerServiceStub(channel)
        entries = list(
            stub.StreamEntries(
                ledger_pb2.StreamEntriesRequest(start_index=0),
                metadata=(("x-zkgrid-role", "auditor"),),
            )
        )
        assert len(entries) == 1 + 3 * METERS
    return recorder, clients


def _openings(clients: list[MeterClient]) -> tuple[list[int], list[int]]:
    values: list[int] = []
    blindings: list[int] = []
    for client in clients:
        stored = client.store.batch(PERIOD)
        assert stored is not None
        values += stored.values
        blindings += stored.blindings
    assert len(values) == METERS * 2 * (1440 // INTERVAL)
    return values, blindings


def test_no_reading_or_blinding_leaves_the_meter(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    recorder, clients = _run_scenario(tmp_path)
    values, blindings = _openings(clients)
    for client in clients:
        client.close()

    # Positive control: the search finds the openings where they do live.
    own_store = (tmp_path / "meters" / "p-0" / "openings.db").read_bytes()
    assert _leaks(own_store, values, blindings)

    ledger_files = sorted(tmp_path.glob("ledger.db*"))
    assert ledger_files
    for path in ledger_files:
        assert _leaks(path.read_bytes(), values, blindings) == [], path.name

    assert caplog.records, "no log records captured"
    log_text = "\n".join(
        f"{r.name} {r.levelname} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records
    ).encode()
    assert _leaks(log_text, values, blindings) == []
    # The access log and the append log were written, in both formats, and hold no secret.
    access = [r.getMessage() for r in caplog.records if r.name == ACCESS_LOGGER]
    for i in range(METERS):
        submits = [m for m in access if "/SubmitReadings OK role=meter cn=p-" + str(i) in m]
        assert len(submits) == 2  # the batch and its idempotent resubmission
    assert sum("SubmitBill INVALID_ARGUMENT role=meter" in m and "PROOF_INVALID" in m
               for m in access) == METERS  # fmt: skip
    appended = [r for r in caplog.records if r.name == LEDGER_LOGGER]
    assert len(appended) == 1 + 3 * METERS  # the tariff, and per meter: registration, batch, bill
    for formatter in (JsonFormatter(), logging.Formatter(TEXT_FORMAT)):
        rendered = "\n".join(formatter.format(r) for r in caplog.records).encode()
        assert b"/SubmitReadings" in rendered
        assert b"READING_BATCH" in rendered
        assert _leaks(rendered, values, blindings) == []

    assert len(recorder.blobs) > 30
    for blob in recorder.blobs:
        assert _leaks(blob, values, blindings) == []


# --------------------------------------------------------------------------- cycle bills

CYCLE = ("2026-11-21", "2026-11-22")


def _cycle_plan() -> CycleTariff:
    """A 2-day default plan with inclining tiers and a demand charge (240-minute intervals)."""
    t = 1440 // INTERVAL
    return CycleTariff(
        plan="privacy-plan",
        meters=(),
        first_period=CYCLE[0],
        last_period=CYCLE[1],
        interval_minutes=INTERVAL,
        currency="EUR",
        fixed_charge=1_000_000,
        import_price=(1,) * t,
        export_credit=(1,) * t,
        tiers=((0, 1), (5 * 10**9, 2)),
        demand_charge=4_000,  # 1 micro-currency per Wh of the highest 4-hour import
    )


def test_no_cycle_quantity_leaves_the_meter(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A cycle bill's circuit proof and its flow reveal no reading, no blinding, and none of
    the quantities the prosumer's statement derives from them: the cycle's import, the Wh
    in each tier, the demand (the highest interval import) or its charge."""
    caplog.set_level(logging.DEBUG)
    rng = random.Random(20261122)
    signer = CheckpointSigner.generate("zkgrid.test/privacy-cycle")
    recorder = _Recorder()
    plan = _cycle_plan()
    secrets_found: list[int] = []
    values: list[int] = []
    blindings: list[int] = []
    proofs: list[bytes] = []
    with embedded_service(
        f"sqlite:///{tmp_path / 'ledger.db'}", signer=signer, failure_burst=2
    ) as svc:
        channel = grpc.intercept_channel(svc.channel, recorder)
        publish_cycle_tariff(channel, plan, svc.log_key)
        for i in range(2):
            home = MeterClient.keygen(tmp_path / "meters" / f"c-{i}", f"c-{i}", INTERVAL)
            client = MeterClient(home, channel, insecure=True, log_key=svc.log_key)
            register_meter(channel, client.registration_request(), svc.log_key)
            imports, exports = [], []
            for period in CYCLE:
                readings = _distinct_readings(rng, period)
                client.submit(client.build_batch(readings))
                stored = client.store.batch(period)
                assert stored is not None
                values += stored.values
                blindings += stored.blindings
                imports.append(list(stored.values[0::2]))
                exports.append(list(stored.values[1::2]))
            bill, _receipt = client.settle_cycle(*CYCLE)
            proofs.append(bill.proof)
            breakdown = plan.bill_breakdown(imports, exports)
            assert bill.total == breakdown.total
            derived = [breakdown.total_import, *breakdown.tier_wh, *breakdown.tier_charges,
                       breakdown.demand_charge, breakdown.time_of_use, breakdown.export_credit]
            secrets_found += [d for d in derived if d >= 10**6 and d != bill.total]
            client.statement()
            client.close()
    assert len(secrets_found) >= 8  # the search is meaningful: large, distinct quantities

    def leaks(haystack: bytes) -> list[str]:
        found = _leaks(haystack, values, blindings)
        found += [f"derived {d}" for d in secrets_found if _decimal_pattern(d).search(haystack)]
        return found

    own_store = (tmp_path / "meters" / "c-0" / "openings.db").read_bytes()
    assert _leaks(own_store, values, blindings)  # positive control
    for path in sorted(tmp_path.glob("ledger.db*")):
        assert leaks(path.read_bytes()) == [], path.name
    for formatter in (JsonFormatter(), logging.Formatter(TEXT_FORMAT)):
        rendered = "\n".join(formatter.format(r) for r in caplog.records).encode()
        assert b"SubmitCycleBill" in rendered
        assert leaks(rendered) == []
    assert any(proofs[0] in blob for blob in recorder.blobs)  # the bills crossed this channel
    for blob in recorder.blobs:
        assert leaks(blob) == []
