"""Regenerate tests/vectors/rangeproof_v1.json (run once per format version).

    .venv/bin/python tests/vectors/make_rangeproof_vectors.py

The vectors are proofs made with a fixed seed (zkp.drbg.SeededScalars). Later
versions of zkgrid must keep verifying them: they pin the transcript, the
generators, the encodings and the verification equations of version 1. Do not
regenerate them to make a failing test pass: a failure means the format changed.
"""

from __future__ import annotations

import json
from pathlib import Path

from zkp.drbg import SeededScalars
from zkp.rangeproof import RangeProof

CASES = [
    ("single-64", [123456789012345], 64, b""),
    ("single-64-max", [2**64 - 1], 64, b"zkgrid/vectors"),
    ("single-8-zero", [0], 8, b""),
    ("aggregated-16x3", [0, 65535, 4242], 16, b"meter-7/2026-11-21"),
    ("aggregated-32x5", [1, 2, 3, 4000000000, 0], 32, b"ctx"),
]


def main() -> None:
    out = []
    for name, values, bits, context in CASES:
        seed = name.encode()
        bundle = RangeProof.prove(values, bits, context=context, rng=SeededScalars(seed))
        out.append(
            {
                "name": name,
                "seed": seed.decode(),
                "bits": bits,
                "context_hex": context.hex(),
                "commitments_hex": [c.to_bytes().hex() for c in bundle.commitments],
                "proof_hex": bundle.proof.to_bytes().hex(),
            }
        )
    path = Path(__file__).with_name("rangeproof_v1.json")
    path.write_text(json.dumps({"format": "zkgrid/bulletproofs/rangeproof v1", "vectors": out},
                               indent=1) + "\n")
    print(f"wrote {len(out)} vectors to {path}")


if __name__ == "__main__":
    main()
