"""Range proof benchmarks, each next to its floor measured in the same run.

    python -m bench.rangeproof --json            # everything the README lists
    python -m bench.rangeproof --quick --json    # smaller batches (a smoke run)

The floor of a verification is one plain single-threaded petlib ``wsum`` over
as many points as the verifier's multi-scalar multiplication has, with random
scalars, measured right before or after; so ratios hold on a noisy machine.
Proofs for the batch figures are generated once (on all cores) and cached in
``.zkgrid/bench-cache/``: proving is measured separately.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import ssl
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from zkp.group import GROUP, hash_to_point, random_scalar, to_bn
from zkp.pedersen import Commitment
from zkp.rangeproof import RangeProof, RangeProofStatement

CACHE = Path(".zkgrid/bench-cache")


def _timeit(fn: Callable[[], object], repeat: int) -> float:
    """Median seconds of ``repeat`` calls, after one warm-up call."""
    fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


_POINTS: list[Any] = []


def wsum_floor(n_points: int, repeat: int) -> float:
    """Median seconds of one single-threaded ``wsum`` of ``n_points`` random terms."""
    while len(_POINTS) < n_points:
        _POINTS.append(hash_to_point(b"zkgrid/bench/floor %d" % len(_POINTS)))
    scalars = [to_bn(random_scalar()) for _ in range(n_points)]
    points = _POINTS[:n_points]
    return _timeit(lambda: GROUP.wsum(scalars, points), repeat)


def verifier_points(bits: int, count: int) -> int:
    """Points in the verifier's multi-scalar multiplication for one proof."""
    padded = 1 << (count - 1).bit_length()
    n = bits * padded
    return 2 * n + 3 + count + 4 + 2 * (n.bit_length() - 1)


def batch_points(bits: int, count: int, proofs: int) -> int:
    """Points in the batch msm: shared generators once, per-proof points each."""
    shared = 2 * bits * (1 << (count - 1).bit_length()) + 3
    return shared + proofs * (verifier_points(bits, count) - shared)


def _make(args: tuple[int, int, int]) -> tuple[bytes, list[bytes]]:
    bits, count, seed = args
    values = [(seed * 7919 + i * 104729) % (1 << bits) for i in range(count)]
    bundle = RangeProof.prove(values, bits, context=b"bench/%d" % seed)
    return bundle.proof.to_bytes(), [c.to_bytes() for c in bundle.commitments]


def proof_set(bits: int, count: int, proofs: int) -> list[tuple[bytes, list[bytes]]]:
    """``proofs`` distinct real proofs, generated on all cores and cached on disk."""
    path = CACHE / f"rangeproof-v1-{bits}x{count}-{proofs}.json"
    if path.exists():
        cached = json.loads(path.read_text())
        return [(bytes.fromhex(p), [bytes.fromhex(c) for c in cs]) for p, cs in cached]
    # spawn, not fork: the parent already runs zkp's worker threads.
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1, mp_context=spawn) as pool:
        made = list(pool.map(_make, [(bits, count, s) for s in range(proofs)], chunksize=4))
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([(p.hex(), [c.hex() for c in cs]) for p, cs in made]))
    return made


def _statements(
    blobs: list[tuple[bytes, list[bytes]]], bits: int
) -> list[RangeProofStatement]:
    proofs = RangeProof.many_from_bytes([p for p, _ in blobs])
    return [
        RangeProofStatement(
            proof, [Commitment.from_bytes(c) for c in cs], bits, b"bench/%d" % seed
        )
        for seed, (proof, (_, cs)) in enumerate(zip(proofs, blobs, strict=True))
    ]


def _result(
    name: str, seconds: float, floor: float | None = None, target: str = "",
    limit: float | None = None, **extra: Any,
) -> dict[str, Any]:
    row: dict[str, Any] = {"name": name, "ms": round(seconds * 1e3, 4)}
    if floor is not None:
        row["floor_ms"] = round(floor * 1e3, 4)
        row["ratio"] = round(seconds / floor, 3)
    if target:
        row["target"] = target
    if limit is not None:
        value = row["ratio"] if floor is not None else seconds
        row["meets_target"] = value <= limit
    row.update(extra)
    return row


def run(quick: bool) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    reps = 5 if quick else 30

    # single proofs, prove and verify
    for bits in (64, 32):
        bundle = RangeProof.prove([12345], bits)
        prove_s = _timeit(partial(RangeProof.prove, [12345], bits), reps)
        data = bundle.proof.to_bytes()

        def verify(
            d: bytes = data, b: int = bits, cs: list[Commitment] = bundle.commitments
        ) -> None:
            RangeProof.from_bytes(d).verify(cs, b)

        points = verifier_points(bits, 1)
        floor = wsum_floor(points, reps * 3)
        verify_s = _timeit(verify, reps * 3)
        rows.append(_result(f"prove {bits}-bit x1", prove_s,
                            target="<= 15 ms" if bits == 64 else "",
                            limit=0.015 if bits == 64 else None))
        rows.append(_result(f"verify {bits}-bit x1 (parse included)", verify_s, floor,
                            target="<= 1.4x wsum floor" if bits == 64 else "",
                            limit=1.4 if bits == 64 else None,
                            points=points, proof_bytes=len(data)))

    # a day of import and export: 192 x 32-bit
    values = [(i * 37) % 5000 for i in range(192)]
    agg_reps = 2 if quick else 3
    prove_s = _timeit(lambda: RangeProof.prove(values, 32), agg_reps)
    bundle = RangeProof.prove(values, 32)
    data = bundle.proof.to_bytes()
    points = verifier_points(32, 192)
    floor = wsum_floor(points, agg_reps * 2)
    verify_s = _timeit(lambda: RangeProof.from_bytes(data).verify(bundle.commitments, 32),
                       agg_reps * 2)
    rows.append(_result("prove 32-bit x192", prove_s, target="<= 3 s", limit=3.0))
    rows.append(_result("verify 32-bit x192 (parse included)", verify_s, floor,
                        target="<= 1.5x wsum floor", limit=1.5, points=points,
                        proof_bytes=len(data)))

    # batches
    for bits, count, proofs, limit in ((64, 1, 1000, 2.0), (32, 192, 100, None)):
        if quick:
            proofs //= 10
        blobs = proof_set(bits, count, proofs)
        statements = _statements(blobs, bits)
        points = batch_points(bits, count, proofs)
        floor = wsum_floor(points, 3)
        parse_s = _timeit(partial(_statements, blobs, bits), 3)
        verify_s = _timeit(partial(RangeProof.verify_batch, statements), 3)
        per = verify_s / proofs
        rows.append(_result(
            f"batch verify {proofs} x ({bits}-bit x{count}), per proof", per, floor / proofs,
            target="<= 2x its share of the batch wsum floor" if limit else "", limit=limit,
            batch_points=points, batch_ms=round(verify_s * 1e3, 2),
            parse_per_proof_ms=round(parse_s / proofs * 1e3, 4),
            per_proof_with_parse_ms=round((verify_s + parse_s) / proofs * 1e3, 4),
        ))
    return {
        "benchmark": "rangeproof",
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "openssl": ssl.OPENSSL_VERSION,
            "platform": platform.platform(),
        },
        "quick": quick,
        "results": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.rangeproof",
        description="Benchmark Bulletproofs proving and verification against the wsum floor.",
    )
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument("--quick", action="store_true", help="batches of 100 and 10 proofs")
    args = parser.parse_args(argv)
    report = run(args.quick)
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        for row in report["results"]:
            ratio = f"  ratio {row['ratio']:.2f}" if "ratio" in row else ""
            mark = {True: " ok", False: " MISSED"}.get(row.get("meets_target"), "")
            print(f"{row['name']:<58} {row['ms']:>10.3f} ms{ratio}{mark}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
