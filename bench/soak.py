"""Soak: a ``zkgrid serve`` process settles day after day for a fixed time; its memory must
grow no faster than the ledger state it holds (issue 10, section 4).

``python -m bench.soak --json [--minutes 10 --meters 20 --interval-minutes 120]``

The server runs as its own process (``zkgrid serve --insecure`` on 127.0.0.1:0, SQLite in
a temporary directory), so its resident set size is measured alone (``/proc/PID/status``
VmRSS, its verifier worker processes added). The client (this process) registers the
meters, then for each day publishes the tariff, and for every meter proves, signs and
submits the day's batch and proves and submits its bill, until the time is up. RSS is
sampled after every day. After a warm-up (the first fifth of the run) the growth of the
RSS is compared with the growth of the projection the service must hold
(``bench.projection_memory``: bytes per batch or bill, measured in the same run):
``flat`` is true when the RSS grew by at most twice that plus 32 MiB of allocator slack.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import grpc

from bench.projection_memory import measure
from cli.demo import publish_tariff, register_meter
from settlement import convert
from settlement.periods import period_of_ordinal, period_ordinal
from settlement.records import (
    RANGE_PROOF_BITS,
    ZERO_HASH,
    Bill,
    MeterKey,
    MeterRegistration,
    ReadingBatch,
    Tariff,
    bill_coefficients,
    bill_proof_context,
    intervals_per_day,
    reading_proof_context,
)
from zkgrid.settlement.v1 import bills_pb2, bills_pb2_grpc, readings_pb2, readings_pb2_grpc
from zkp.rangeproof import RangeProof
from zkp.sigma import LinearCombinationProof

ROOT = Path(__file__).resolve().parents[1]
FIRST_DAY = "2020-01-01"
ORIGIN = "zkgrid.bench/soak"
SLACK = 32 * 1024 * 1024


def _rss(pid: int) -> int:
    """Resident bytes of ``pid`` and its children (the verifier workers)."""
    total = 0
    pids = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                pids.append(int(entry.name))
    for p in pids:
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        found = re.search(r"VmRSS:\s+(\d+) kB", status)
        total += int(found.group(1)) * 1024 if found else 0
    return total


def _start_server(tmp: Path) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
        [sys.executable, "-m", "cli.main", "serve", "--insecure", "--listen", "127.0.0.1:0",
         "--db", f"sqlite:///{tmp / 'ledger.db'}", "--log-key", str(tmp / "log.key"),
         "--origin", ORIGIN],
        stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert proc.stderr is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        found = re.search(r"serving .* on 127\.0\.0\.1:(\d+)", line)
        if found:
            return proc, int(found.group(1))
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise SystemExit("bench.soak: the server did not start (run `zkgrid serve --help`)")


def _tariff(period: str, interval_minutes: int) -> Tariff:
    t = intervals_per_day(interval_minutes)
    return Tariff(period, interval_minutes, "EUR", 450_000, (260,) * t, (80,) * t)


def run(minutes: float, meters: int, interval_minutes: int) -> dict[str, object]:
    rng = random.Random(7)
    keys = [MeterKey.generate() for _ in range(meters)]
    ids = [f"soak-{i:03d}" for i in range(meters)]
    heads = {m: (0, ZERO_HASH) for m in ids}
    samples: list[tuple[float, int, int]] = []  # (seconds, rss, ledger entries)
    with tempfile.TemporaryDirectory(prefix="zkgrid-soak-") as tmp:
        proc, port = _start_server(Path(tmp))
        try:
            channel = grpc.insecure_channel(f"127.0.0.1:{port}")
            readings = readings_pb2_grpc.ReadingServiceStub(channel)
            bills = bills_pb2_grpc.BillServiceStub(channel)
            meta = (("x-zkgrid-role", "meter"),)
            for key, meter_id in zip(keys, ids, strict=True):
                register_meter(channel, MeterRegistration.create(key, meter_id, interval_minutes),
                               None)  # fmt: skip
            entries = meters
            start = time.monotonic()
            day = period_ordinal(FIRST_DAY)
            while time.monotonic() - start < minutes * 60:
                period = period_of_ordinal(day)
                tariff = _tariff(period, interval_minutes)
                publish_tariff(channel, tariff, None)
                entries += 1
                for key, meter_id in zip(keys, ids, strict=True):
                    seq, prev = heads[meter_id]
                    values = [rng.randrange(0, 4000) for _ in range(2 * tariff.intervals)]
                    context = reading_proof_context(meter_id, period, seq)
                    bundle = RangeProof.prove(values, RANGE_PROOF_BITS, context=context)
                    batch = ReadingBatch.create(
                        key, meter_id=meter_id, period=period, interval_minutes=interval_minutes,
                        sequence=seq, prev_hash=prev,
                        commitments=[c.to_bytes() for c in bundle.commitments],
                        range_proof=bundle.proof.to_bytes(),
                    )  # fmt: skip
                    who = (*meta, ("x-zkgrid-identity", meter_id))
                    readings.SubmitReadings(
                        readings_pb2.SubmitReadingsRequest(
                            batch=convert.reading_batch_to_proto(batch)),
                        metadata=who, timeout=60,
                    )  # fmt: skip
                    heads[meter_id] = (seq + 1, batch.batch_hash())
                    proof, total = LinearCombinationProof.prove(
                        bill_coefficients(tariff), bundle.commitments, values, bundle.blindings,
                        constant=tariff.fixed_charge,
                        context=bill_proof_context(batch.batch_hash(), tariff.tariff_hash()),
                    )  # fmt: skip
                    bill = Bill(meter_id, period, batch.batch_hash(), tariff.tariff_hash(), total,
                                proof.to_bytes())  # fmt: skip
                    bills.SubmitBill(bills_pb2.SubmitBillRequest(bill=convert.bill_to_proto(bill)),
                                     metadata=who, timeout=60)  # fmt: skip
                    entries += 2
                day += 1
                samples.append((time.monotonic() - start, _rss(proc.pid), entries))
            channel.close()
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
    per_entry = measure(100, 10)["bytes_per_batch_or_bill"]
    warm = samples[max(0, len(samples) // 5 - 1)]
    last = samples[-1]
    grown = last[1] - warm[1]
    allowed = 2 * per_entry * (last[2] - warm[2]) + SLACK
    return {
        "benchmark": "soak",
        "minutes": minutes,
        "meters": meters,
        "interval_minutes": interval_minutes,
        "days": len(samples),
        "ledger_entries": last[2],
        "rss_after_warm_up_mib": round(warm[1] / 2**20, 1),
        "rss_end_mib": round(last[1] / 2**20, 1),
        "rss_growth_after_warm_up_mib": round(grown / 2**20, 1),
        "projection_bytes_per_entry": per_entry,
        "allowed_growth_mib": round(allowed / 2**20, 1),
        "flat": grown <= allowed,
        "samples": [(round(t, 1), round(r / 2**20, 1), n) for t, r, n in samples],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--meters", type=int, default=20)
    parser.add_argument("--interval-minutes", type=int, default=120)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    result = run(args.minutes, args.meters, args.interval_minutes)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            if key != "samples":
                print(f"{key}: {value}")
    return 0 if result["flat"] else 1


if __name__ == "__main__":
    sys.exit(main())
