"""The core settlement flow and racing replicas on PostgreSQL."""

from __future__ import annotations

import threading

import pytest

from ledger.checkpoint import CheckpointSigner
from service.settlement import Settlement
from service.storage import open_store
from settlement.records import ReadingBatch
from tests.unit.service.settlement_support import SimMeter, make_tariff
from zkgrid.errors import ZkgridError

pytestmark = pytest.mark.postgres

DAY1, DAY2 = "2024-06-01", "2024-06-02"


def test_core_flow_and_replicas_on_postgres(
    pg_schema_url: str, ledger_signer: CheckpointSigner, ledger_origin: str
) -> None:
    meters = [SimMeter("pg-a"), SimMeter("pg-b")]
    with open_store(pg_schema_url, ledger_signer, ledger_origin) as store, Settlement(store) as s:
        for meter in meters:
            s.register_meter(meter.registration())
        tariff = make_tariff(DAY1)
        s.publish_tariff(tariff)
        for meter in meters:
            s.submit_readings(meter.batch(DAY1))
            bill = meter.bill(DAY1, tariff)
            receipt = s.submit_bill(bill)
            receipt.verify(ledger_signer.verifier(), bill.to_entry())
        for meter in meters:
            statement = s.get_statement(meter.meter_id)
            assert statement.total == meter.plaintext_bill(DAY1, tariff)
        size = store.size()
        with pytest.raises(ZkgridError) as info:
            s.submit_bill(meters[0].bill(DAY1, tariff))
        assert info.value.reason == "BILL_EXISTS"
        assert store.size() == size

    # two replicas (own stores, own projections) race conflicting batches of one meter
    with (
        open_store(pg_schema_url, ledger_signer, ledger_origin) as s1,
        open_store(pg_schema_url, ledger_signer, ledger_origin) as s2,
        Settlement(s1) as a,
        Settlement(s2) as b,
    ):
        assert a.get_meter("pg-a").next_sequence == 1
        twin = SimMeter("pg-a", key=meters[0].key)
        twin.sequence, twin.prev_hash = meters[0].sequence, meters[0].prev_hash
        batches = [meters[0].batch(DAY2, advance=False), twin.batch("2024-06-03", advance=False)]
        outcomes: list[str] = []
        barrier = threading.Barrier(2)

        def submit(replica: Settlement, batch: ReadingBatch) -> None:
            barrier.wait()
            try:
                replica.submit_readings(batch)
                outcomes.append("ok")
            except ZkgridError as exc:
                outcomes.append(exc.reason)

        threads = [
            threading.Thread(target=submit, args=(a, batches[0])),
            threading.Thread(target=submit, args=(b, batches[1])),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes) == ["CHAIN_BROKEN", "ok"]
        assert a.get_meter("pg-a").next_sequence == b.get_meter("pg-a").next_sequence == 2
