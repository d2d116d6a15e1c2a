"""Circuit-proof benchmarks (issue 12 §5), each next to its floor measured in the same run.

    python -m bench.circuits --json            # everything docs/benchmarks.md lists
    python -m bench.circuits --quick --json    # small sizes (a smoke run, about a minute)

Floor: one plain single-threaded petlib ``wsum`` over as many points as the
verifier's multi-scalar multiplication has (``2 n' + 3`` generators, the
committed inputs, the proof's ``8 + 2k`` points), as for range proofs
(``bench.rangeproof.wsum_floor``). Verification times include building the
circuit on the verifier's side (the gadget code runs there too) and replaying
the transcript; proving times include building it on the prover's side. The
31-day bills need the 131,072 pinned generator pairs: the first run derives them
(about 45 s of CPU) into the generator cache; they are loaded before timing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.rangeproof import _timeit, wsum_floor
from circuits import gadgets
from circuits.r1cs import ConstraintSystem, Prover, R1CSProof, R1CSStatement, Verifier
from settlement.cycle_bills import build_cycle_bill
from settlement.records import CycleTariff
from zkp.generators import bp_generators
from zkp.group import random_scalar
from zkp.pedersen import Commitment, commit
from zkp.rangeproof import RangeProof

Circuit = Callable[[ConstraintSystem, list[Any]], None]


def _verifier_points(gates: int, inputs: int) -> int:
    n_pad = 1 << max(0, (gates - 1).bit_length()) if gates > 1 else 1
    rounds = n_pad.bit_length() - 1
    return 2 * n_pad + 3 + inputs + 8 + 2 * rounds


class Case:
    """A circuit over committed values: prove once, verify (timed) against its floor."""

    def __init__(self, name: str, values: list[int], circuit: Circuit, context: bytes) -> None:
        self.name = name
        self.values = values
        self.blindings = [random_scalar() for _ in values]
        self.commitments = [commit(v, g) for v, g in zip(values, self.blindings, strict=True)]
        self.circuit = circuit
        self.context = context

    def prover(self) -> Prover:
        prover = Prover()
        inputs = [
            prover.commit(c, v, g)
            for c, v, g in zip(self.commitments, self.values, self.blindings, strict=True)
        ]
        self.circuit(prover, inputs)
        return prover

    def statement(self, proof: R1CSProof) -> R1CSStatement:
        verifier = Verifier()
        inputs: list[Any] = verifier.commit_many(self.commitments)
        self.circuit(verifier, inputs)
        return verifier.statement(proof, self.context)


def measure(case: Case, repeat: int) -> dict[str, Any]:
    prover = case.prover()
    bp_generators(1 << max(0, (prover.gates - 1).bit_length()))  # load before timing
    start = time.perf_counter()
    proof = case.prover().prove(case.context)
    prove_s = time.perf_counter() - start
    verify_s = _timeit(lambda: R1CSStatement.verify_batch([case.statement(proof)]), repeat)
    points = _verifier_points(prover.gates, prover.inputs)
    floor_s = wsum_floor(points, repeat)
    return {
        "case": case.name,
        "gates": prover.gates,
        "constraints": prover.constraints,
        "inputs": prover.inputs,
        "proof_bytes": len(proof.to_bytes()),
        "proof_elements": 13 + 2 * proof.rounds,
        "prove_s": round(prove_s, 4),
        "verify_s": round(verify_s, 5),
        "floor_points": points,
        "floor_s": round(floor_s, 5),
        "verify_over_floor": round(verify_s / floor_s, 3),
    }


# --------------------------------------------------------------------------- cases


def _min_case() -> Case:
    def circuit(cs: ConstraintSystem, x: list[Any]) -> None:
        cs.constrain(gadgets.minimum(cs, x[0], x[1], 32) - 1234)

    return Case("min of two (32-bit)", [1234, 99_999], circuit, b"bench/min")


def _max_case() -> Case:
    def circuit(cs: ConstraintSystem, x: list[Any]) -> None:
        cs.constrain(gadgets.maximum(cs, x[0], x[1], 32) - 99_999)

    return Case("max of two (32-bit)", [1234, 99_999], circuit, b"bench/max")


def _range_gadget_case() -> Case:
    def circuit(cs: ConstraintSystem, x: list[Any]) -> None:
        gadgets.range_check(cs, x[0], 16)

    return Case("range gadget (16-bit)", [54_321], circuit, b"bench/range")


def _tariff(days: int, *, tiers: bool, demand: bool) -> CycleTariff:
    first = "2026-11-01" if days > 1 else "2026-11-21"
    last = f"2026-11-{days:02d}" if days > 1 else first
    if days == 31:
        first, last = "2026-10-01", "2026-10-31"
    T = 96
    return CycleTariff(
        plan="bench-tiered" if tiers else "bench-demand",
        meters=(),
        first_period=first,
        last_period=last,
        interval_minutes=15,
        currency="EUR",
        fixed_charge=9_500_000,
        import_price=tuple(0 if tiers else 180 + (t % 8) for t in range(T)),
        export_credit=tuple(60 for _ in range(T)),
        tiers=((0, 200), (150_000 * days // 31, 250), (300_000 * days // 31, 300)) if tiers else (),
        demand_charge=12_500_000 if demand else 0,
    )


def _bill_case(days: int, *, tiers: bool, demand: bool, seed: int = 1) -> Case:
    tariff = _tariff(days, tiers=tiers, demand=demand)
    rng = random.Random(seed)
    count = 96 * days
    values = [rng.randrange(0, 900) for _ in range(count)]  # imports, then exports
    values += [rng.randrange(0, 400) for _ in range(count)]
    imports_v = [values[d * 96 : (d + 1) * 96] for d in range(days)]
    exports_v = [values[count + d * 96 : count + (d + 1) * 96] for d in range(days)]
    total = tariff.bill_breakdown(imports_v, exports_v).total

    def circuit(cs: ConstraintSystem, x: list[Any]) -> None:
        build_cycle_bill(cs, tariff, x[:count], x[count:], total)

    kind = "tiered" if tiers else "demand-charge"
    return Case(f"{kind} bill, {days} day(s) of 15-minute intervals", values, circuit,
                b"bench/bill/%d/%d" % (days, seed))  # fmt: skip


def range_comparison(repeat: int) -> dict[str, Any]:
    """The 16-bit range gadget against zkgrid's own RangeProof, same run."""
    gadget = measure(_range_gadget_case(), repeat)
    start = time.perf_counter()
    bundle = RangeProof.prove([54_321], 16, context=b"bench/range")
    prove_s = time.perf_counter() - start
    commitments: list[Commitment] = bundle.commitments
    verify_s = _timeit(lambda: bundle.proof.verify(commitments, 16, b"bench/range"), repeat)
    return {
        "r1cs_range_gadget": gadget,
        "rangeproof": {"prove_s": round(prove_s, 5), "verify_s": round(verify_s, 5),
                       "proof_bytes": len(bundle.proof.to_bytes())},
    }


def batch_of_bills(count: int, repeat: int) -> dict[str, Any]:
    """``count`` one-day tiered bills (different meters and readings) in one batch."""
    cases = [_bill_case(1, tiers=True, demand=False, seed=s) for s in range(count)]
    proofs = [case.prover().prove(case.context) for case in cases]

    def verify() -> None:
        R1CSStatement.verify_batch([c.statement(p) for c, p in zip(cases, proofs, strict=True)])

    verify_s = _timeit(verify, repeat)
    prover = cases[0].prover()
    one = _verifier_points(prover.gates, prover.inputs)
    shared = 2 * (1 << max(0, (prover.gates - 1).bit_length())) + 3
    points = shared + count * (one - shared)
    floor_s = wsum_floor(points, repeat)
    return {
        "case": f"batch of {count} one-day tiered bills",
        "proofs": count,
        "verify_s": round(verify_s, 4),
        "per_proof_ms": round(1000 * verify_s / count, 3),
        "floor_points": points,
        "floor_s": round(floor_s, 4),
        "floor_share_ms": round(1000 * floor_s / count, 3),
        "per_proof_over_floor_share": round(verify_s / floor_s, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.circuits",
        description="Circuit-proof benchmarks with their wsum floors (issue 12 §5).",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--quick", action="store_true", help="small sizes only (a smoke run)")
    parser.add_argument("--repeat", type=int, default=3, help="timed repetitions (median)")
    args = parser.parse_args(argv)
    long_days = 3 if args.quick else 31
    batch = 10 if args.quick else 100
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("min", lambda: measure(_min_case(), args.repeat)),
        ("max", lambda: measure(_max_case(), args.repeat)),
        ("range_16", lambda: range_comparison(args.repeat)),
        ("tiered_1_day", lambda: measure(_bill_case(1, tiers=True, demand=False), args.repeat)),
        (f"tiered_{long_days}_days",
         lambda: measure(_bill_case(long_days, tiers=True, demand=False), args.repeat)),
        (f"demand_{long_days}_days",
         lambda: measure(_bill_case(long_days, tiers=False, demand=True), 1)),
        (f"batch_{batch}_tiered_1_day", lambda: batch_of_bills(batch, args.repeat)),
    ]  # fmt: skip
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    for name, step in steps:
        start = time.perf_counter()
        print(f"bench.circuits: {name} ...", file=sys.stderr, flush=True)
        results[name] = step()
        print(f"bench.circuits: {name} done in {time.perf_counter() - start:.1f} s",
              file=sys.stderr, flush=True)  # fmt: skip
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for name, value in results.items():
            print(name, value)
    return 0


if __name__ == "__main__":
    sys.exit(main())
