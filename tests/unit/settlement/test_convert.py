"""``settlement.convert``: records ⇄ settlement API messages."""

from __future__ import annotations

import pytest

from settlement import convert
from settlement.records import RecordFormatError
from tests.unit.service.settlement_support import SimMeter, make_cycle_tariff, make_tariff
from zkgrid.settlement.v1 import bills_pb2, readings_pb2

DAY = "2026-11-21"


def test_every_record_round_trips() -> None:
    meter = SimMeter("alice")
    registration = meter.registration()
    assert convert.registration_from_proto(convert.registration_to_proto(registration)) == (
        registration
    )
    batch = meter.batch(DAY)
    assert convert.reading_batch_from_proto(convert.reading_batch_to_proto(batch)) == batch
    tariff = make_tariff(DAY)
    assert convert.tariff_from_proto(convert.tariff_to_proto(tariff)) == tariff
    bill = meter.bill(DAY, tariff)
    assert convert.bill_from_proto(convert.bill_to_proto(bill)) == bill


def test_cycle_records_travel_as_their_canonical_bytes() -> None:
    meter = SimMeter("alice")
    meter.batch(DAY)
    tariff = make_cycle_tariff(DAY, DAY, demand_charge=4_000_000)
    data = convert.cycle_tariff_to_bytes(tariff)
    assert data == tariff.encode()
    assert convert.cycle_tariff_from_bytes(data) == tariff
    bill = meter.cycle_bill(tariff)
    assert convert.cycle_bill_from_bytes(convert.cycle_bill_to_bytes(bill)) == bill


def test_cycle_fields_refuse_what_is_not_a_version_2_record_of_their_kind() -> None:
    meter = SimMeter("alice")
    meter.batch(DAY)
    day_tariff = make_tariff(DAY)
    tariff = make_cycle_tariff(DAY, DAY)
    bill = meter.cycle_bill(tariff)
    bad = {
        convert.cycle_tariff_from_bytes: [
            b"", day_tariff.encode(), bill.encode(), tariff.encode()[:-1], tariff.encode() + b"\0",
            b"\x03" + tariff.encode()[1:],
        ],
        convert.cycle_bill_from_bytes: [
            b"", meter.bill(DAY, day_tariff).encode(), tariff.encode(), bill.encode()[:-1],
            bill.encode() + b"\0",
        ],
    }  # fmt: skip
    for decode, cases in bad.items():
        for data in cases:
            with pytest.raises(RecordFormatError):
                decode(data)
    with pytest.raises(RecordFormatError, match="version 2; it has version 1"):
        convert.cycle_tariff_from_bytes(day_tariff.encode())


def test_witness_round_trips_with_its_ledger_index() -> None:
    from witness.keys import WitnessKey

    registration = WitnessKey.generate("auditor").registration()
    msg = convert.witness_to_proto(registration, 7)
    assert msg.ledger_index == 7
    assert convert.witness_from_proto(msg) == registration


def test_missing_message_is_refused_by_the_record() -> None:
    with pytest.raises(RecordFormatError):
        convert.reading_batch_from_proto(readings_pb2.ReadingBatch())
    with pytest.raises(RecordFormatError):
        convert.bill_from_proto(bills_pb2.Bill())


def test_convert_imports_neither_service_nor_meter() -> None:
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys\n"
        "import settlement.convert\n"
        "roots = ('service', 'meter', 'verifier')\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in roots)\n"
        "print(','.join(bad))\n"
        "sys.exit(1 if bad else 0)\n"
    )
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"loaded: {done.stdout} {done.stderr}"
