"""Witness finality benchmark: one FastAggregateVerify for 1, 5 and 20 witnesses (blspy).

::

    python -m bench.finality --json [--witnesses 1,5,20] [--repeat 25] [--py-ecc-repeat 1]

A registry of ``max(witnesses)`` BLS keys is built, every witness co-signs one
checkpoint, and the benchmark measures, each next to its floor measured in the
same run:

* ``verify_finality`` (:mod:`ledger.cosignature`) for ``n`` signers with an
  ``n``-of-registry quorum: target <= 10 ms at 20 witnesses. Its floor is
  blspy's bare ``PopSchemeMPL.fast_aggregate_verify`` on points already decoded
  (what is left is the strict decoding of the aggregate, the registry look-ups
  and the message);
* ``verify_cosignature`` (one cosignature, decoded strictly, one ``Verify``):
  target <= 5 ms. Its floor is blspy's bare ``PopSchemeMPL.verify``;
* ``aggregate()``: cold (a fresh registry verifies each cosignature), and after
  the service verified them on receipt (the registry remembers them);
* the same operations in py_ecc (``G2ProofOfPossession``, pure Python, the
  library the runtime used before and the tests' oracle), on the same bytes:
  each py_ecc result is checked to agree with blspy's.

Times are CPU time (``time.process_time``; on a shared machine wall time mostly
measures the neighbours), medians of ``--repeat`` samples after one warm-up
call (``--py-ecc-repeat`` for py_ecc, which is 100x slower); a figure and its floor are
sampled alternately.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

from blspy import G1Element, G2Element, PopSchemeMPL
from eth_typing import BLSPubkey, BLSSignature
from py_ecc.bls.ciphersuites import G2ProofOfPossession

from ledger.checkpoint import Checkpoint, CheckpointSigner, SignedCheckpoint
from ledger.cosignature import (
    CIPHERSUITE_ID,
    Cosignature,
    Quorum,
    WitnessRegistration,
    WitnessRegistry,
    aggregate,
    cosigned_message,
    verify_cosignature,
    verify_finality,
)
from ledger.merkle import leaf_hash, root
from witness.keys import WitnessKey, cosign

ORIGIN = "zkgrid.bench/finality"
FINALITY_TARGET_MS = 10.0
COSIGNATURE_TARGET_MS = 5.0
_PY_ECC = G2ProofOfPossession


def _median(fn: Callable[[], object], repeat: int, *, warm: bool = True) -> float:
    """Median CPU seconds of ``repeat`` calls (after one warm-up call if ``warm``)."""
    if warm:
        fn()
    samples = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        samples.append(time.process_time() - start)
    return statistics.median(samples)


def _paired(
    fn: Callable[[], object], floor: Callable[[], object], repeat: int
) -> tuple[float, float]:
    """Median CPU seconds of ``fn`` and of its ``floor``, sampled alternately (after one
    warm-up call each), so that both see the same machine."""
    fn()
    floor()
    ours, theirs = [], []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        ours.append(time.process_time() - start)
        start = time.process_time()
        floor()
        theirs.append(time.process_time() - start)
    return statistics.median(ours), statistics.median(theirs)


def _ms(seconds: float) -> float:
    return round(seconds * 1e3, 3)


def _against_floor(seconds: float, floor: float, target_ms: float | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "ms": _ms(seconds),
        "floor_ms": _ms(floor),
        "ratio": round(seconds / floor, 3) if floor > 0 else None,
    }
    if target_ms is not None:
        row["target"] = f"<= {target_ms:g} ms"
        row["meets_target"] = seconds * 1e3 <= target_ms
    return row


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise SystemExit(f"bench.finality: {what}: the libraries disagree")


def _finality_row(
    registry: WitnessRegistry,
    registrations: list[WitnessRegistration],
    signed: SignedCheckpoint,
    cosigs: list[Cosignature],
    quorum: Quorum,
    repeat: int,
    py_ecc_repeat: int,
) -> dict[str, Any]:
    """Finality and aggregation figures for ``len(cosigs)`` signers."""
    n = len(cosigs)
    message = cosigned_message(signed)
    fresh = WitnessRegistry(
        WitnessRegistration(r.name, r.public_key, r.proof_of_possession) for r in registrations
    )  # new records: their PopVerify runs again (timed below as part of nothing)
    t0 = time.process_time()
    cosigned = aggregate(fresh, signed, cosigs)  # cold: n cosignature checks
    aggregate_cold = time.process_time() - t0
    aggregate_warm = _median(lambda: aggregate(fresh, signed, cosigs), repeat)

    points = [G1Element.from_bytes(registry.get(s).public_key) for s in cosigned.signers]
    signature = G2Element.from_bytes(cosigned.aggregate_signature)
    finality, floor = _paired(
        lambda: verify_finality(registry, cosigned, quorum),
        lambda: PopSchemeMPL.fast_aggregate_verify(points, message, signature),
        repeat,
    )
    sigs = [G2Element.from_bytes(c.signature) for c in cosigs]
    row: dict[str, Any] = {
        "witnesses": n,
        "finality_check": _against_floor(finality, floor, FINALITY_TARGET_MS if n >= 20 else None),
        "aggregate_signatures_ms": _ms(_median(lambda: PopSchemeMPL.aggregate(sigs), repeat)),
        "aggregate_with_per_cosignature_checks_ms": _ms(aggregate_cold),
        "aggregate_after_receipt_checks_ms": _ms(aggregate_warm),
        "cosigned_checkpoint_bytes": len(cosigned.encode()),
    }
    if py_ecc_repeat:
        pks = [BLSPubkey(registry.get(s).public_key) for s in cosigned.signers]
        agg = BLSSignature(cosigned.aggregate_signature)
        _check(_PY_ECC.FastAggregateVerify(pks, message, agg), "FastAggregateVerify")
        py_agg = _PY_ECC.Aggregate([BLSSignature(c.signature) for c in cosigs])
        _check(bytes(py_agg) == cosigned.aggregate_signature, "Aggregate")
        row["py_ecc"] = {
            "finality_check_ms": _ms(
                _median(
                    lambda: _PY_ECC.FastAggregateVerify(pks, message, agg),
                    py_ecc_repeat,
                    warm=False,
                )
            ),
        }
        row["speedup_over_py_ecc"] = round(
            row["py_ecc"]["finality_check_ms"] / max(row["finality_check"]["ms"], 1e-3), 1
        )
    return row


def run(witness_counts: list[int], repeat: int, py_ecc_repeat: int) -> dict[str, Any]:
    total = max(witness_counts)
    started = time.perf_counter()
    keys = [WitnessKey.generate(f"witness-{i:02d}") for i in range(total)]

    t0 = time.process_time()
    registrations = [k.registration() for k in keys]
    pop_prove = (time.process_time() - t0) / total
    t0 = time.process_time()
    registry = WitnessRegistry(registrations)
    pop_verify = (time.process_time() - t0) / total
    encoded = registrations[0].encode()
    decode = _median(lambda: WitnessRegistration.decode(encoded), repeat)

    log = CheckpointSigner.generate(ORIGIN)
    signed = log.sign(Checkpoint(ORIGIN, 1000, root([leaf_hash(b"%d" % i) for i in range(1000)])))
    message = cosigned_message(signed)
    t0 = time.process_time()
    cosigs = [cosign(k, signed) for k in keys]
    sign = (time.process_time() - t0) / total

    first = registrations[0]
    pk_point = G1Element.from_bytes(first.public_key)
    sig_point = G2Element.from_bytes(cosigs[0].signature)
    verify_one, verify_floor = _paired(
        lambda: verify_cosignature(first, signed, cosigs[0]),
        lambda: PopSchemeMPL.verify(pk_point, message, sig_point),
        repeat,
    )

    per_key: dict[str, Any] = {
        "pop_prove_ms": _ms(pop_prove),
        "pop_verify_ms": _ms(pop_verify),
        "registration_decode_ms": _ms(decode),
        "sign_ms": _ms(sign),
        "cosignature_check": _against_floor(verify_one, verify_floor, COSIGNATURE_TARGET_MS),
    }
    if py_ecc_repeat:
        secret = int.from_bytes(keys[0].secret_bytes(), "big")
        pk = BLSPubkey(first.public_key)
        sig = BLSSignature(cosigs[0].signature)
        pop = BLSSignature(first.proof_of_possession)
        _check(bytes(_PY_ECC.Sign(secret, message)) == cosigs[0].signature, "Sign")
        _check(_PY_ECC.Verify(pk, message, sig), "Verify")
        _check(_PY_ECC.PopVerify(pk, pop), "PopVerify")
        per_key["py_ecc"] = {
            "sign_ms": _ms(
                _median(lambda: _PY_ECC.Sign(secret, message), py_ecc_repeat, warm=False)
            ),
            "cosignature_check_ms": _ms(
                _median(lambda: _PY_ECC.Verify(pk, message, sig), py_ecc_repeat, warm=False)
            ),
            "pop_verify_ms": _ms(
                _median(lambda: _PY_ECC.PopVerify(pk, pop), py_ecc_repeat, warm=False)
            ),
        }

    rows = [
        _finality_row(
            registry, registrations, signed, cosigs[:n], Quorum(n, total), repeat, py_ecc_repeat
        )
        for n in witness_counts
    ]
    return {
        "benchmark": "finality",
        "ciphersuite": CIPHERSUITE_ID,
        "library": "blspy.PopSchemeMPL",
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "blspy": version("blspy"),
            "py_ecc": version("py-ecc"),
            "platform": platform.platform(),
        },
        "repeat": repeat,
        "py_ecc_repeat": py_ecc_repeat,
        "registry_size": total,
        "per_key": per_key,
        "finality": rows,
        "total_wall_s": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.finality",
        description="Benchmark BLS witness co-signing and the one-pairing finality check.",
    )
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument("--witnesses", default="1,5,20", help="signer counts (default 1,5,20)")
    parser.add_argument("--repeat", type=int, default=25, help="samples per median (default 25)")
    parser.add_argument(
        "--py-ecc-repeat",
        type=int,
        default=1,
        help="py_ecc samples per median (default 1; 0 skips py_ecc)",
    )
    args = parser.parse_args(argv)
    try:
        counts = sorted({int(x) for x in args.witnesses.split(",")})
    except ValueError:
        parser.error("--witnesses takes comma-separated integers")
    if not counts or counts[0] < 1 or args.repeat < 1 or args.py_ecc_repeat < 0:
        parser.error("witness counts and --repeat must be positive")
    report = run(counts, args.repeat, args.py_ecc_repeat)
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        check = report["per_key"]["cosignature_check"]
        print(
            f"cosignature check {check['ms']:.2f} ms (floor {check['floor_ms']:.2f},"
            f" target {check['target']})"
        )
        for row in report["finality"]:
            fin = row["finality_check"]
            py = row.get("py_ecc", {}).get("finality_check_ms")
            print(
                f"{row['witnesses']:>3} witnesses: finality {fin['ms']:.2f} ms"
                f" (floor {fin['floor_ms']:.2f}, x{fin['ratio']})"
                + ("" if py is None else f", py_ecc {py:.0f} ms")
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
