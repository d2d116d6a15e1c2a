"""End-to-end benchmark: a day of 1,000 meters ingested, verified and settled over gRPC.

::

    python -m bench.e2e --json [--meters 1000] [--backend sqlite|postgres|both]

Client proving is excluded: the meters' batches (commitments, 32-bit range
proof over 2T values, signature) and their openings are generated once, on a
process pool across the cores, and cached under ``.zkgrid/bench-cache/`` (one
JSON file per meter, deterministic keys and readings, reused by later runs;
~15 minutes for 1,000 meters of 96 intervals on 2 cores). Each bill proof is
computed before the timed phases too (a few milliseconds each).

For each backend a fresh ledger is served by an embedded service on
127.0.0.1:0 (insecure loopback, as ``zkgrid demo``); the meters are registered
and the tariff published (not timed); then:

* **ingest**: every batch is submitted through gRPC by ``--concurrency`` client
  threads (default 256: at the end of a day a community's meters upload at
  once, and the service batches what is in flight); the service checks
  signature, chain and intervals, verifies the range proofs in micro-batches
  (in its verifier process, ``--verify-processes``) and appends them in groups;
  each client verifies its receipt's inclusion proof. Reported: batches/s
  sustained (meters / wall time) and the per-request latency median and p99.
* **settle**: every bill is submitted the same way (bill proofs verified by the
  service against the ledger's commitments and tariff).
* **whole day** = ingest + settle wall time.

Targets: >= 100 batches/s sustained and a whole day <= 60 s for 1,000 meters.
PostgreSQL: a database ``zkgrid_bench_<hex>`` is created on the admin URL
(``--pg-url``, default ``$ZKGRID_TEST_PG_URL`` or
``postgresql://postgres@127.0.0.1:5432/postgres``) and dropped afterwards.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.pg import backend_url, default_pg_admin_url
from cli.community import day_readings, make_community, time_of_use_tariff
from cli.demo import embedded_service, publish_tariff, register_meter
from ledger.entries import EntryKind
from meter.client import verify_receipt
from service.config import DEFAULT_VERIFY_PROCESSES
from settlement import convert
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
    reading_proof_context,
)
from zkgrid._internal.channels import dev_metadata
from zkgrid.settlement.v1 import bills_pb2, bills_pb2_grpc, readings_pb2, readings_pb2_grpc
from zkp.pedersen import Commitment
from zkp.rangeproof import RangeProof
from zkp.sigma import LinearCombinationProof

DEFAULT_CACHE = Path(".zkgrid/bench-cache")
PERIOD = "2026-04-21"
CACHE_VERSION = 1
TARGET_BATCHES_PER_S = 100.0
TARGET_WHOLE_DAY_S = 60.0
_CURVE_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


# --------------------------------------------------------------------------- the cache


@dataclass(frozen=True)
class CachedMeter:
    meter_id: str
    key: MeterKey
    batch: ReadingBatch
    values: tuple[int, ...]
    blindings: tuple[int, ...]


def _meter_key(seed: int, index: int) -> MeterKey:
    digest = hashlib.sha256(f"zkgrid-bench/e2e/{seed}/{index}".encode()).digest()
    return MeterKey.from_private_value(int.from_bytes(digest, "big") % (_CURVE_ORDER - 1) + 1)


def _cache_dir(root: Path, interval_minutes: int, seed: int) -> Path:
    return root / f"e2e-v{CACHE_VERSION}-{PERIOD}-{interval_minutes}m-seed{seed}"


def _generate(args: tuple[Path, int, int, int, int]) -> str:
    """Worker: prove and sign meter ``index``'s batch and write its cache file."""
    directory, index, count, interval_minutes, seed = args
    prosumer = make_community(count, seed)[index]
    key = _meter_key(seed, index)
    readings = day_readings(prosumer, PERIOD, interval_minutes, seed)
    values = readings.values()
    context = reading_proof_context(prosumer.meter_id, PERIOD, 0)
    bundle = RangeProof.prove(values, RANGE_PROOF_BITS, context=context)
    batch = ReadingBatch.create(
        key,
        meter_id=prosumer.meter_id,
        period=PERIOD,
        interval_minutes=interval_minutes,
        sequence=0,
        prev_hash=ZERO_HASH,
        commitments=[c.to_bytes() for c in bundle.commitments],
        range_proof=bundle.proof.to_bytes(),
    )
    doc = {
        "meter_id": prosumer.meter_id,
        "batch": base64.b64encode(batch.encode()).decode(),
        "values": values,
        "blindings": [format(b, "064x") for b in bundle.blindings],
    }
    path = directory / f"{prosumer.meter_id}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc))
    tmp.replace(path)
    return prosumer.meter_id


def load_or_generate(
    meters: int,
    interval_minutes: int,
    seed: int,
    root: Path,
    workers: int,
    log: Callable[[str], None],
) -> list[CachedMeter]:
    """The first ``meters`` cached meters, generating the missing ones on a process pool."""
    directory = _cache_dir(root, interval_minutes, seed)
    directory.mkdir(parents=True, exist_ok=True)
    # make_community draws prosumer by prosumer, so a smaller community is a prefix of a
    # larger one with the same seed: cache files are valid whatever --meters is.
    size = max(meters, 1000)
    ids = [p.meter_id for p in make_community(size, seed)[:meters]]
    missing = [i for i, m in enumerate(ids) if not (directory / f"{m}.json").is_file()]
    if missing:
        log(f"generating {len(missing)} batches on {workers} processes (cached in {directory})")
        started = time.perf_counter()
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            jobs = [(directory, i, size, interval_minutes, seed) for i in missing]
            for done, _ in enumerate(pool.map(_generate, jobs), 1):
                if done % 50 == 0 or done == len(missing):
                    log(f"  {done}/{len(missing)} ({time.perf_counter() - started:.0f}s)")
    out = []
    for i, meter_id in enumerate(ids):
        doc = json.loads((directory / f"{meter_id}.json").read_text())
        out.append(
            CachedMeter(
                meter_id=meter_id,
                key=_meter_key(seed, i),
                batch=ReadingBatch.decode(base64.b64decode(doc["batch"])),
                values=tuple(doc["values"]),
                blindings=tuple(int(b, 16) for b in doc["blindings"]),
            )
        )
    return out


def cached_bill(meter: CachedMeter, tariff: Tariff) -> Bill:
    """The bill of a cached meter's batch under ``tariff``: total and proof from its openings."""
    batch_hash = meter.batch.batch_hash()
    proof, total = LinearCombinationProof.prove(
        bill_coefficients(tariff),
        [Commitment.from_bytes(c) for c in meter.batch.commitments],
        list(meter.values),
        list(meter.blindings),
        constant=tariff.fixed_charge,
        context=bill_proof_context(batch_hash, tariff.tariff_hash()),
    )
    return Bill(meter.meter_id, PERIOD, batch_hash, tariff.tariff_hash(), total, proof.to_bytes())


# --------------------------------------------------------------------------- backends


def _percentiles_ms(samples: Sequence[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"median": round(statistics.median(ordered) * 1e3, 1), "p99": round(p99 * 1e3, 1)}


def bench_backend(
    backend: str,
    meters: Sequence[CachedMeter],
    interval_minutes: int,
    *,
    concurrency: int,
    pg_admin: str,
    log: Callable[[str], None],
    verify_processes: int = 0,
) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="zkgrid-bench-e2e-") as tmp,
        backend_url(backend, pg_admin, Path(tmp) / "ledger.db") as url,
        embedded_service(
            url,
            workers=max(16, concurrency),
            startup_check="quick",
            verify_processes=verify_processes,
        ) as svc,
    ):
        log(f"{backend}: registering {len(meters)} meters, publishing the tariff")
        t0 = time.perf_counter()
        for m in meters:
            register_meter(
                svc.channel,
                MeterRegistration.create(m.key, m.meter_id, interval_minutes),
                svc.log_key,
            )
        tariff = time_of_use_tariff(PERIOD, interval_minutes)
        publish_tariff(svc.channel, tariff, svc.log_key)
        setup_s = time.perf_counter() - t0
        bills = [cached_bill(m, tariff) for m in meters]  # client side, not timed

        readings_stub = readings_pb2_grpc.ReadingServiceStub(svc.channel)
        bills_stub = bills_pb2_grpc.BillServiceStub(svc.channel)
        log_key = svc.log_key

        def submit_batch(m: CachedMeter) -> float:
            start = time.perf_counter()
            response = readings_stub.SubmitReadings(
                readings_pb2.SubmitReadingsRequest(batch=convert.reading_batch_to_proto(m.batch)),
                metadata=dev_metadata("meter", m.meter_id),
                timeout=120,
            )
            verify_receipt(response.receipt, EntryKind.READING_BATCH, m.batch.encode(), log_key)
            return time.perf_counter() - start

        def submit_bill(bill: Bill) -> float:
            start = time.perf_counter()
            response = bills_stub.SubmitBill(
                bills_pb2.SubmitBillRequest(bill=convert.bill_to_proto(bill)),
                metadata=dev_metadata("meter", bill.meter_id),
                timeout=120,
            )
            verify_receipt(response.receipt, EntryKind.BILL, bill.encode(), log_key)
            return time.perf_counter() - start

        log(f"{backend}: ingesting {len(meters)} batches ({concurrency} client threads)")
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            t0 = time.perf_counter()
            batch_latencies = list(pool.map(submit_batch, meters))
            ingest_s = time.perf_counter() - t0
            log(f"{backend}: settling {len(bills)} bills")
            t0 = time.perf_counter()
            bill_latencies = list(pool.map(submit_bill, bills))
            settle_s = time.perf_counter() - t0
        size = svc.store.size()
    whole_day_s = ingest_s + settle_s
    batches_per_s = len(meters) / ingest_s
    return {
        "backend": backend,
        "meters": len(meters),
        "intervals": 1440 // interval_minutes,
        "setup_s": round(setup_s, 2),
        "ingest_s": round(ingest_s, 2),
        "batches_per_s": round(batches_per_s, 1),
        "batch_latency_ms": _percentiles_ms(batch_latencies),
        "settle_s": round(settle_s, 2),
        "bills_per_s": round(len(bills) / settle_s, 1),
        "bill_latency_ms": _percentiles_ms(bill_latencies),
        "whole_day_s": round(whole_day_s, 2),
        "ledger_entries": size,
        "met": {
            "batches_per_s": batches_per_s >= TARGET_BATCHES_PER_S,
            "whole_day_s": whole_day_s <= TARGET_WHOLE_DAY_S,
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.e2e", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--meters", type=int, default=1000)
    parser.add_argument("--interval-minutes", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument(
        "--concurrency", type=int, default=256, help="client threads (requests in flight)"
    )
    parser.add_argument(
        "--verify-processes",
        type=int,
        default=DEFAULT_VERIFY_PROCESSES,
        help="the service's range-proof verification processes (as zkgrid serve)",
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="processes for the one-off batch generation")  # fmt: skip
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument(
        "--pg-url",
        default=default_pg_admin_url(),
        help="PostgreSQL admin URL (a scratch database is created and dropped)",
    )
    args = parser.parse_args(argv)
    if args.meters < 1 or args.concurrency < 1 or args.workers < 1:
        parser.error("--meters, --concurrency and --workers must be positive")

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    started = time.perf_counter()
    meters = load_or_generate(
        args.meters, args.interval_minutes, args.seed, args.cache, args.workers, log
    )
    # Warm the process-wide generator tables once, so the first backend is not charged for it.
    first = meters[0].batch
    RangeProof.from_bytes(first.range_proof).verify(
        [Commitment.from_bytes(c) for c in first.commitments],
        RANGE_PROOF_BITS,
        first.proof_context(),
    )
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    results = []
    for backend in backends:
        row = bench_backend(
            backend,
            meters,
            args.interval_minutes,
            concurrency=args.concurrency,
            pg_admin=args.pg_url,
            log=log,
            verify_processes=args.verify_processes,
        )
        log(json.dumps(row))
        results.append(row)
    report = {
        "benchmark": "end-to-end",
        "command": "python -m bench.e2e " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "settings": {
            "meters": args.meters,
            "interval_minutes": args.interval_minutes,
            "values_per_batch": 2 * (1440 // args.interval_minutes),
            "range_proof_bits": RANGE_PROOF_BITS,
            "concurrency": args.concurrency,
            "period": PERIOD,
        },
        "results": results,
        "targets": {
            "batches_per_s_min": TARGET_BATCHES_PER_S,
            "whole_day_s_max": TARGET_WHOLE_DAY_S,
        },
        "elapsed_s": round(time.perf_counter() - started, 1),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for r in results:
            print(
                f"{r['backend']:9} meters={r['meters']} batches/s={r['batches_per_s']}"
                f" ingest={r['ingest_s']}s settle={r['settle_s']}s"
                f" whole day={r['whole_day_s']}s"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
