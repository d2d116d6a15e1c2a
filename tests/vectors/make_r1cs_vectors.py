"""Regenerate tests/vectors/r1cs_v1.json (run once per format version).

    .venv/bin/python tests/vectors/make_r1cs_vectors.py

The vectors are circuit proofs made with a fixed seed (zkp.drbg.SeededScalars) for the
proof's randomness and another for the inputs' blindings. Later versions of zkgrid must
keep verifying them: they pin the transcript (protocol, version, circuit digest), the
generators, the encodings and the verification equations of version 1, and (while the
prover draws its randomness in the same order) the prover too. Do not regenerate them to
make a failing test pass: a failure means the format changed.

Each vector describes its circuit as data (``circuit``: a kind and its public parameters);
:func:`build` turns the description into the gadget code that both sides run, and
tests/unit/circuits/test_r1cs_vectors.py rebuilds it from the stored description.
The stored openings (values, blindings) are test data from a public seed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from circuits import gadgets
from circuits.r1cs import ConstraintSystem, Prover, Variable, Verifier
from zkp.drbg import SeededScalars
from zkp.pedersen import Commitment, commit

Build = Callable[[ConstraintSystem, list[Variable]], None]

FORMAT = "zkgrid/r1cs v1"


def build(circuit: dict[str, Any]) -> Build:
    """The gadget code of a circuit description (see CASES)."""
    kind = circuit["kind"]
    if kind == "product":
        # x * y = z for committed x, y, z: one gate, no rounds
        def product(cs: ConstraintSystem, xs: list[Variable]) -> None:
            x, y, z = xs
            _, _, out = cs.multiply(x, y)
            cs.constrain(out - z)

        return product
    if kind == "range":
        # the reading is a `bits`-bit integer, and below `limit`
        bits, limit = int(circuit["bits"]), int(circuit["limit"])

        def ranged(cs: ConstraintSystem, xs: list[Variable]) -> None:
            (x,) = xs
            gadgets.range_check(cs, x, bits)
            gadgets.less_than(cs, x, limit, bits)

        return ranged
    if kind == "demand-and-tiers":
        # the highest reading is `demand`; the inclining tariff `pieces` on their total
        # costs `cost`; the total is at most `cap`
        bits = int(circuit["bits"])
        pieces = [(int(a), int(r)) for a, r in circuit["pieces"]]
        demand, cost, cap = int(circuit["demand"]), int(circuit["cost"]), int(circuit["cap"])

        def bill(cs: ConstraintSystem, xs: list[Variable]) -> None:
            cs.constrain(gadgets.max_of(cs, xs, bits) - demand)
            total = gadgets.total(xs)
            cs.constrain(gadgets.convex_piecewise(cs, total, pieces, bits) - cost)
            gadgets.less_or_equal(cs, total, cap, bits)

        return bill
    raise ValueError(f"unknown circuit kind {kind!r}")


CASES: list[tuple[str, dict[str, Any], list[int], bytes]] = [
    ("product-1-gate", {"kind": "product"}, [7, 6, 42], b""),
    ("range-16", {"kind": "range", "bits": 16, "limit": 60000}, [4242], b"zkgrid/vectors"),
    (
        "demand-and-tiers",
        {
            "kind": "demand-and-tiers",
            "bits": 12,
            # tiers from 0, 100, 300 Wh at 5, 8, 12 per Wh: a_i = cost(T_i) - r_i T_i
            "pieces": [[0, 5], [-300, 8], [-1500, 12]],
            "demand": 180,
            "cost": 12 * 470 - 1500,
            "cap": 2000,
        },
        [120, 180, 95, 75],
        b"meter-7/2026-11",
    ),
]


def prover_for(circuit: dict[str, Any], values: list[int], seed: bytes) -> Prover:
    """The circuit's prover with the inputs committed under the vector's blindings."""
    blindings = SeededScalars(seed + b"/blindings")
    prover = Prover()
    xs = []
    for value in values:
        blinding = blindings()
        xs.append(prover.commit(commit(value, blinding), value, blinding))
    build(circuit)(prover, xs)
    return prover


def verifier_for(circuit: dict[str, Any], commitments_hex: list[str]) -> Verifier:
    verifier = Verifier()
    xs = [verifier.commit(Commitment.from_bytes(bytes.fromhex(c))) for c in commitments_hex]
    build(circuit)(verifier, xs)
    return verifier


def main() -> None:
    out = []
    for name, circuit, values, context in CASES:
        seed = name.encode()
        prover = prover_for(circuit, values, seed)
        proof = prover.prove(context, rng=SeededScalars(seed))
        draw = SeededScalars(seed + b"/blindings")  # as prover_for draws them
        pairs = [(value, draw()) for value in values]
        inputs = [{"value": v, "blinding_hex": f"{b:064x}"} for v, b in pairs]
        commitments = [commit(v, b).to_bytes().hex() for v, b in pairs]
        verifier = verifier_for(circuit, commitments)
        verifier.verify(proof, context)
        out.append(
            {
                "name": name,
                "seed": seed.decode(),
                "circuit": circuit,
                "context_hex": context.hex(),
                "inputs": inputs,
                "commitments_hex": commitments,
                "gates": prover.gates,
                "constraints": prover.constraints,
                "digest_hex": prover.digest().hex(),
                "proof_hex": proof.to_bytes().hex(),
            }
        )
    path = Path(__file__).with_name("r1cs_v1.json")
    path.write_text(json.dumps({"format": FORMAT, "vectors": out}, indent=1) + "\n")
    print(f"wrote {len(out)} vectors to {path}")


if __name__ == "__main__":
    main()
