"""``settlement.convert``: records ⇄ settlement API messages."""

from __future__ import annotations

import pytest

from settlement import convert
from settlement.records import RecordFormatError
from tests.unit.service.settlement_support import SimMeter, make_tariff
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
