"""Audit benchmark: ``zkgrid audit`` of a 1,000-meter day (96 intervals), full and incremental.

::

    python -m bench.audit [--meters 1000] [--interval-minutes 15] [--workers N]

The day's batches (commitments, 32-bit range proof over 192 values, signature)
come from the end-to-end benchmark's cache (``.zkgrid/bench-cache/``, see
:mod:`bench.e2e`), generated on a spawn process pool when missing (~15
minutes for 1,000 meters on 2 cores). Bill proofs are computed before the timed
phases (a few milliseconds each).

A fresh SQLite ledger gets the registrations, the tariff and the batches
(appended in chunks straight to the store: this measures the auditor, not the
service), then the bills. Timed:

* **export** of the whole day with ``zkgrid ledger export``'s code path;
* **full**: a fresh auditor audits the whole day's archive (target <= 30 s for
  1,000 meters: every signature, the tree, every range proof and bill proof);
* **incremental**: an auditor whose state covers the day up to the batches
  runs ``--since-last`` over the archive after the bills were appended (it
  verifies only the bills, against the commitments its state kept).

Prints one JSON document on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.e2e import DEFAULT_CACHE, PERIOD, cached_bill, load_or_generate
from cli.community import time_of_use_tariff
from ledger.checkpoint import CheckpointSigner
from ledger.entries import EntryKind
from service.export import export_ledger
from service.storage import open_store
from settlement.records import MeterRegistration
from verifier.audit import AuditOptions, Auditor, AuditResult
from verifier.sources import ArchiveSource
from verifier.state import AuditorState, load_state, save_state

ORIGIN = "zkgrid.bench/audit"
TARGET_FULL_S = 30.0
_APPEND_CHUNK = 200


def _audit(
    archive: Path, signer: CheckpointSigner, state: AuditorState | None, workers: int | None
) -> AuditResult:
    source = ArchiveSource(archive)
    try:
        options = AuditOptions(
            log_key=signer.verifier(), since_last=state is not None, workers=workers
        )
        return Auditor(source, options, state).run()
    finally:
        source.close()


def _figures(result: AuditResult) -> dict[str, object]:
    f = result.figures
    return {
        "ok": result.ok,
        "violations": len(result.violations),
        "entries": f.entries,
        "batches": f.batches,
        "bills": f.bills,
        "seconds": round(f.seconds, 3),
        "entries_per_second": round(f.entries_per_second, 1),
        "timings": {k: round(v, 3) for k, v in f.timings.items()},
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.audit", description=__doc__)
    parser.add_argument("--meters", type=int, default=1000)
    parser.add_argument("--interval-minutes", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument(
        "--workers", type=int, default=None, help="audit processes (default: one per core)"
    )
    parser.add_argument("--json", action="store_true", help="the figures as JSON on stdout")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    cores = os.cpu_count() or 1
    meters = load_or_generate(args.meters, args.interval_minutes, args.seed, args.cache, cores, log)
    tariff = time_of_use_tariff(PERIOD, args.interval_minutes)
    log("proving bills")
    bills = [cached_bill(m, tariff) for m in meters]
    signer = CheckpointSigner.generate("zkgrid-bench")

    with tempfile.TemporaryDirectory(prefix="zkgrid-bench-audit-") as tmp:
        work = Path(tmp)
        url = f"sqlite:///{work / 'ledger.db'}"
        log("building the ledger")
        with open_store(url, signer, ORIGIN, sqlite_synchronous="NORMAL") as store:
            items: list[tuple[EntryKind | int, bytes]] = [
                (
                    EntryKind.METER_REGISTRATION,
                    MeterRegistration.create(m.key, m.meter_id, args.interval_minutes).encode(),
                )
                for m in meters
            ]
            items.append((EntryKind.TARIFF, tariff.encode()))
            items += [(EntryKind.READING_BATCH, m.batch.encode()) for m in meters]
            for i in range(0, len(items), _APPEND_CHUNK):
                store.append_batch(items[i : i + _APPEND_CHUNK])
            export_ledger(url, work / "batches.zla")
            bill_items: list[tuple[EntryKind | int, bytes]] = [
                (EntryKind.BILL, b.encode()) for b in bills
            ]
            for i in range(0, len(bill_items), _APPEND_CHUNK):
                store.append_batch(bill_items[i : i + _APPEND_CHUNK])
            size = store.size()
        t0 = time.perf_counter()
        export_ledger(url, work / "day.zla")
        export_s = time.perf_counter() - t0
        archive_bytes = (work / "day.zla").stat().st_size

        log("full audit of the day")
        full = _audit(work / "day.zla", signer, None, args.workers)
        log("audit up to the batches (to seed the incremental state)")
        seeded = _audit(work / "batches.zla", signer, None, args.workers)
        if seeded.new_state is None:
            raise SystemExit("bench.audit: the seed audit found violations")
        state_path = work / "state.json"
        save_state(state_path, seeded.new_state)
        state_bytes = state_path.stat().st_size
        log("incremental audit (--since-last) of the bills")
        t0 = time.perf_counter()
        state = load_state(state_path)
        incremental = _audit(work / "day.zla", signer, state, args.workers)
        incremental_s = time.perf_counter() - t0

    doc = {
        "bench": "audit",
        "python": platform.python_version(),
        "cores": cores,
        "meters": args.meters,
        "interval_minutes": args.interval_minutes,
        "entries": size,
        "archive_bytes": archive_bytes,
        "export_s": round(export_s, 3),
        "full": {**_figures(full), "target_s": TARGET_FULL_S if args.meters == 1000 else None},
        "seed_audit": _figures(seeded),
        "incremental": {
            **_figures(incremental),
            "state_bytes_before": state_bytes,
            "seconds_with_state_load": round(incremental_s, 3),
        },
    }
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print(
            f"audit of {size} entries ({args.meters} meters): full {doc['full']}, incremental"
            f" {doc['incremental']}"
        )
    return 0 if full.ok and incremental.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
