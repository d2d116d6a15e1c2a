"""Ledger storage benchmark: append throughput and proof latency on SQLite and PostgreSQL.

::

    python -m bench.ledger --json [--backend sqlite|postgres|both] [--sizes 10000,100000,1000000]

For each backend a fresh store is grown in batches to each size (ascending); at
each size it measures the batched append rate of the growth, a run of one-by-one
appends, inclusion and consistency proof latency (median and p99 over random
proofs against the current size), and the quick and full integrity checks.
PostgreSQL: a database ``zkgrid_bench_<hex>`` is created on the admin URL
(``--pg-url``, default ``$ZKGRID_TEST_PG_URL`` or
``postgresql://postgres@127.0.0.1:5432/postgres``) and dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine

from bench.pg import backend_url, default_pg_admin_url, psycopg_url
from ledger.checkpoint import CheckpointSigner
from ledger.entries import EntryKind
from service.storage import LedgerStore, open_store

ORIGIN = "zkgrid.bench/ledger"
TARGET_BATCHED_SQLITE_PER_S = 5_000
TARGET_PROOF_MEDIAN_MS = 1.0


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"median": round(statistics.median(ordered) * 1e3, 4), "p99": round(p99 * 1e3, 4)}


def _time_each(n: int, call: Callable[[], object]) -> list[float]:
    out: list[float] = []
    for _ in range(n):
        t0 = time.perf_counter()
        call()
        out.append(time.perf_counter() - t0)
    return out


def _time_proofs(
    store: LedgerStore, rng: random.Random, size: int, n: int
) -> tuple[list[float], list[float]]:
    """Latency of ``n`` random inclusion and ``n`` random consistency proofs at ``size``."""
    inclusion = _time_each(n, lambda: store.inclusion_proof(rng.randrange(size), size))
    consistency = _time_each(n, lambda: store.consistency_proof(rng.randrange(1, size), size))
    return inclusion, consistency


def _payload(rng: random.Random, size: int) -> bytes:
    return rng.randbytes(size)


def bench_backend(
    backend: str,
    sizes: list[int],
    *,
    batch: int,
    singles: int,
    proofs: int,
    payload_size: int,
    pg_admin: str,
    full_check: bool,
) -> list[dict[str, Any]]:
    rng = random.Random(2024)  # payloads and proof positions; not security relevant
    signer = CheckpointSigner.from_private_bytes("zkgrid-bench", bytes(32))
    results: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="zkgrid-bench-") as tmp,
        backend_url(backend, pg_admin, Path(tmp) / "bench-ledger.db") as url,
    ):
        store: LedgerStore = open_store(url, signer, ORIGIN)
        try:
            for target in sizes:
                grown = 0
                t0 = time.perf_counter()
                while store.size() < target:
                    n = min(batch, target - store.size())
                    store.append_batch(
                        [(EntryKind.READING_BATCH, _payload(rng, payload_size)) for _ in range(n)]
                    )
                    grown += n
                grow_s = time.perf_counter() - t0
                size = store.size()
                row: dict[str, Any] = {"backend": backend, "size": size, "batch_size": batch}
                row["append_batched_per_s"] = round(grown / grow_s) if grown else None
                row["append_batched_entries_measured"] = grown

                t0 = time.perf_counter()
                for _ in range(singles):
                    store.append(EntryKind.BILL, _payload(rng, payload_size))
                row["append_single_per_s"] = round(singles / (time.perf_counter() - t0))
                row["append_single_entries_measured"] = singles
                size = store.size()
                row["size_after_singles"] = size

                inc, con = _time_proofs(store, rng, size, proofs)
                row["inclusion_proof_ms"] = _percentiles(inc)
                row["consistency_proof_ms"] = _percentiles(con)
                row["proofs_measured"] = proofs

                quick = _time_each(20, lambda: store.verify_integrity(full=False))
                row["verify_quick_ms"] = _percentiles(quick)
                if full_check:
                    t0 = time.perf_counter()
                    store.verify_integrity(full=True)
                    row["verify_full_s"] = round(time.perf_counter() - t0, 2)
                results.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
        finally:
            store.close()
    return results


def _machine(pg_admin: str, backends: list[str]) -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "sqlite": sqlite3.sqlite_version,
    }
    if "postgres" in backends:
        engine = create_engine(psycopg_url(pg_admin))
        with engine.connect() as conn:
            info["postgresql"] = conn.exec_driver_sql("SHOW server_version").scalar_one()
        engine.dispose()
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ledger", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--batch", type=int, default=1000, help="entries per batched append")
    parser.add_argument("--singles", type=int, default=1000, help="one-by-one appends per size")
    parser.add_argument("--proofs", type=int, default=1000, help="proofs of each kind per size")
    parser.add_argument("--payload-size", type=int, default=200)
    parser.add_argument("--no-full-check", action="store_true", help="skip verify_integrity(full)")
    parser.add_argument(
        "--pg-url",
        default=default_pg_admin_url(),
        help="PostgreSQL admin URL (a scratch database is created and dropped)",
    )
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    if any(s < 2 for s in sizes) or args.batch < 1 or args.singles < 1 or args.proofs < 1:
        parser.error("sizes must be >= 2 and counts positive")
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    for backend in backends:
        results += bench_backend(
            backend,
            sizes,
            batch=args.batch,
            singles=args.singles,
            proofs=args.proofs,
            payload_size=args.payload_size,
            pg_admin=args.pg_url,
            full_check=not args.no_full_check,
        )
    largest = {r["backend"]: r for r in results if r["size"] >= max(sizes)}
    report = {
        "benchmark": "ledger-storage",
        "command": "python -m bench.ledger " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": _machine(args.pg_url, backends),
        "settings": {
            "batch": args.batch,
            "singles": args.singles,
            "proofs": args.proofs,
            "payload_size": args.payload_size,
            "sqlite_synchronous": "FULL",
        },
        "results": results,
        "targets": {
            "sqlite_batched_appends_per_s_min": TARGET_BATCHED_SQLITE_PER_S,
            "proof_median_ms_max_at_largest_size": TARGET_PROOF_MEDIAN_MS,
            "met": {
                backend: {
                    "batched_appends": (
                        None
                        if backend != "sqlite"
                        else min(
                            r["append_batched_per_s"] or 0
                            for r in results
                            if r["backend"] == "sqlite"
                        )
                        >= TARGET_BATCHED_SQLITE_PER_S
                    ),
                    "proof_latency": (
                        row["inclusion_proof_ms"]["median"] <= TARGET_PROOF_MEDIAN_MS
                        and row["consistency_proof_ms"]["median"] <= TARGET_PROOF_MEDIAN_MS
                    ),
                }
                for backend, row in largest.items()
            },
        },
        "elapsed_s": round(time.perf_counter() - started, 1),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for r in results:
            print(
                f"{r['backend']:9} n={r['size']:>8} batched={r['append_batched_per_s']}/s"
                f" single={r['append_single_per_s']}/s"
                f" incl={r['inclusion_proof_ms']} cons={r['consistency_proof_ms']}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
