"""A short proof demo: commit to a day of readings, prove, verify, print sizes and timings.

    python -m zkp.demo [--intervals 96] [--seed 1]

One prosumer's day: for each 15-minute interval an import and an export value
in Wh, committed with Pedersen commitments and proven in range [0, 2^32) with
one aggregated Bulletproof; then a bill proof that the tariff-weighted sum of
the commitments opens to the bill, without revealing a reading.
"""

from __future__ import annotations

import argparse
import random
import time

from zkp.rangeproof import RangeProof
from zkp.sigma import LinearCombinationProof


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zkp.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--intervals", type=int, default=96, help="intervals in the day")
    parser.add_argument("--seed", type=int, default=1, help="seed for the made-up readings")
    args = parser.parse_args(argv)
    rnd = random.Random(args.seed)  # noqa: S311 - made-up readings, not key material
    imports = [rnd.randrange(0, 400) for _ in range(args.intervals)]
    exports = [rnd.randrange(0, 300) if 28 <= t <= 72 else 0 for t in range(args.intervals)]
    values = [v for pair in zip(imports, exports, strict=True) for v in pair]
    context = b"zkgrid/demo"

    start = time.perf_counter()
    bundle = RangeProof.prove(values, 32, context=context)
    prove_s = time.perf_counter() - start
    data = bundle.proof.to_bytes()
    start = time.perf_counter()
    RangeProof.from_bytes(data).verify(bundle.commitments, 32, context)
    verify_s = time.perf_counter() - start

    prices = [250 if 68 <= t < 84 else 120 for t in range(args.intervals)]  # micro-currency/Wh
    credits = [60] * args.intervals
    coefficients = [c for pair in zip(prices, (-c for c in credits), strict=True) for c in pair]
    fixed = 400_000
    start = time.perf_counter()
    bill_proof, bill = LinearCombinationProof.prove(
        coefficients, bundle.commitments, values, bundle.blindings, constant=fixed, context=context
    )
    bill_prove_s = time.perf_counter() - start
    start = time.perf_counter()
    bill_proof.verify(coefficients, bundle.commitments, bill, constant=fixed, context=context)
    bill_verify_s = time.perf_counter() - start

    print(f"readings: {args.intervals} intervals, {len(values)} committed values (import, export)")
    print(f"commitments: {len(values)} x 33 bytes = {33 * len(values)} bytes")
    print(f"range proof (32-bit, aggregated m={len(values)}): {len(data)} bytes,"
          f" prove {prove_s * 1e3:.0f} ms, verify {verify_s * 1e3:.0f} ms: verified")
    print(f"bill: {bill / 1e6:.2f} currency units, proof {len(bill_proof.to_bytes())} bytes,"
          f" prove {bill_prove_s * 1e3:.1f} ms, verify {bill_verify_s * 1e3:.1f} ms: verified")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
