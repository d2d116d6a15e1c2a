"""Start-up of a proof-verifying worker process (an audit pool worker, a service verifier).

A ``spawn`` worker starts a fresh interpreter, imports the auditor's work-unit module
(``verifier.audit``) and needs the 8,192 Bulletproofs generator pairs of a 192-value
32-bit range proof. Measured from the parent (pool created -> first result), with the
worker's own split (imports, generators), for a cold generator cache (an empty cache
directory: derived) and a warm one (loaded and checked, zkp/generators.py).

    python -m bench.worker_startup [--runs 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

PAIRS = 32 * 256  # a 192-value, 32-bit proof pads to 256 values


def _worker() -> dict[str, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    import verifier.audit  # noqa: F401  # what an audit pool worker imports
    from zkp.generators import bp_generators

    t1, c1 = time.perf_counter(), time.process_time()
    bp_generators(PAIRS)
    t2, c2 = time.perf_counter(), time.process_time()
    # CPU seconds too: on a loaded machine they vary far less than the wall clock
    return {
        "imports": t1 - t0,
        "generators": t2 - t1,
        "imports_cpu": c1 - c0,
        "generators_cpu": c2 - c1,
    }


def _start_once(cache_dir: str) -> dict[str, float]:
    os.environ["ZKGRID_CACHE_DIR"] = cache_dir  # inherited by the spawned worker
    context = multiprocessing.get_context("spawn")
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        inside = pool.submit(_worker).result()
        ready = time.perf_counter() - started
    return {"ready": ready, **inside}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results: dict[str, list[dict[str, float]]] = {"cold": [], "warm": []}
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as cache_dir:
            results["cold"].append(_start_once(cache_dir))  # derives (and fills the cache)
            results["warm"].append(_start_once(cache_dir))  # loads the checked cache
    summary = {
        case: {key: round(statistics.median(r[key] for r in runs), 3) for key in runs[0]}
        for case, runs in results.items()
    }
    if args.json:
        print(json.dumps({"pairs": PAIRS, "runs": args.runs, "median_s": summary}))
        return
    for case, figures in summary.items():
        print(
            f"{case:>4}: worker ready {figures['ready']:.3f} s"
            f" (imports {figures['imports']:.3f} s, generators {figures['generators']:.3f} s;"
            f" CPU: imports {figures['imports_cpu']:.3f} s,"
            f" generators {figures['generators_cpu']:.3f} s)"
        )


if __name__ == "__main__":
    main()
