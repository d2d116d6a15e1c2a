"""Witness finality benchmark: one FastAggregateVerify for 1, 5 and 20 witnesses.

::

    python -m bench.finality --json [--witnesses 1,5,20] [--repeat 5]

A registry of ``max(witnesses)`` BLS keys is built (PopProve and PopVerify each
timed), every witness co-signs one checkpoint, and for each signer count ``n``
the benchmark measures:

* ``verify_finality`` with an ``n``-of-registry quorum (one ``FastAggregateVerify``);
* its parts: the pairing check on an already-aggregated key (``Verify``, the
  flat part), the sum of ``n`` public keys, and py_ecc's per-key
  ``KeyValidate`` (a G1 subgroup check) that ``FastAggregateVerify`` runs on
  every key: the only terms that grow with ``n``;
* ``Aggregate`` of ``n`` signatures (point additions) and ``aggregate()`` end to
  end: cold, it first verifies each cosignature (``n`` pairing checks); after
  the service verified them on receipt, those checks are remembered.

Times are CPU time (``time.process_time``), medians of ``--repeat`` samples
where repeated; one-off figures (PopProve, PopVerify, Sign per key, the checked
aggregate) are averages over the keys or single runs. py_ecc is pure Python:
absolute figures are slow; the shape is the point.
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

from eth_typing import BLSPubkey, BLSSignature
from py_ecc.bls.ciphersuites import G2ProofOfPossession

from ledger.checkpoint import Checkpoint, CheckpointSigner, SignedCheckpoint
from ledger.merkle import leaf_hash, root
from ledger.witness import (
    CIPHERSUITE_ID,
    Cosignature,
    Quorum,
    WitnessKey,
    WitnessRegistration,
    WitnessRegistry,
    aggregate,
    clear_verification_cache,
    cosign,
    cosigned_message,
    verify_finality,
)

ORIGIN = "zkgrid.bench/finality"


def _median(fn: Callable[[], object], repeat: int) -> float:
    """Median CPU seconds of ``repeat`` calls (no warm-up: py_ecc has no caches to warm).

    CPU time, not wall time: everything here is single-threaded pure Python, and
    on a shared machine wall time mostly measures the neighbours.
    """
    samples = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        samples.append(time.process_time() - start)
    return statistics.median(samples)


def _ms(seconds: float) -> float:
    return round(seconds * 1e3, 1)


def _finality_row(
    registry: WitnessRegistry,
    signed: SignedCheckpoint,
    cosigs: list[Cosignature],
    quorum: Quorum,
    message: bytes,
    repeat: int,
) -> dict[str, Any]:
    """Finality and aggregation figures for ``len(cosigs)`` signers."""
    bls = G2ProofOfPossession
    clear_verification_cache()  # cold: aggregate() verifies every cosignature
    t0 = time.process_time()
    cosigned = aggregate(registry, signed, cosigs)
    aggregate_checked = time.process_time() - t0
    # warm: the service verified each cosignature on receipt (remembered per process)
    aggregate_after_receipt = _median(lambda: aggregate(registry, signed, cosigs), repeat)
    sigs = [BLSSignature(c.signature) for c in cosigs]
    pks = [BLSPubkey(registry.get(name).public_key) for name in cosigned.signers]
    aggregated_pk = bls._AggregatePKs(pks)
    signature = BLSSignature(cosigned.aggregate_signature)
    return {
        "witnesses": len(cosigs),
        "finality_check_ms": _ms(
            _median(lambda: verify_finality(registry, cosigned, quorum), repeat)
        ),
        "pairing_check_on_aggregated_key_ms": _ms(
            _median(lambda: bls.Verify(aggregated_pk, message, signature), repeat)
        ),
        "sum_public_keys_ms": _ms(_median(lambda: bls._AggregatePKs(pks), repeat)),
        "py_ecc_key_validate_all_ms": _ms(
            _median(lambda: [bls.KeyValidate(pk) for pk in pks], repeat)
        ),
        "aggregate_signatures_ms": _ms(_median(lambda: bls.Aggregate(sigs), repeat)),
        "aggregate_with_per_cosignature_checks_ms": _ms(aggregate_checked),
        "aggregate_after_receipt_checks_ms": _ms(aggregate_after_receipt),
        "cosigned_checkpoint_bytes": len(cosigned.encode()),
    }


def run(witness_counts: list[int], repeat: int) -> dict[str, Any]:
    total = max(witness_counts)
    started = time.perf_counter()
    keys = [WitnessKey.generate(f"witness-{i:02d}") for i in range(total)]

    t0 = time.process_time()
    registrations = [k.registration() for k in keys]
    pop_prove = (time.process_time() - t0) / total
    t0 = time.process_time()
    registry = WitnessRegistry(registrations)
    pop_verify = (time.process_time() - t0) / total
    decode = _median(lambda: WitnessRegistration.decode(registrations[0].encode()), repeat)

    log = CheckpointSigner.generate(ORIGIN)
    signed = log.sign(Checkpoint(ORIGIN, 1000, root([leaf_hash(b"%d" % i) for i in range(1000)])))
    message = cosigned_message(signed)
    t0 = time.process_time()
    cosigs = [cosign(k, signed) for k in keys]
    sign = (time.process_time() - t0) / total

    def verify_cold() -> None:
        clear_verification_cache()
        registry.verify_cosignature(signed, cosigs[0])

    verify_one = _median(verify_cold, repeat)

    rows = [
        _finality_row(registry, signed, cosigs[:n], Quorum(n, total), message, repeat)
        for n in witness_counts
    ]
    return {
        "benchmark": "finality",
        "ciphersuite": CIPHERSUITE_ID,
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "py_ecc": version("py-ecc"),
            "platform": platform.platform(),
        },
        "repeat": repeat,
        "registry_size": total,
        "per_key": {
            "pop_prove_ms": _ms(pop_prove),
            "pop_verify_ms": _ms(pop_verify),
            "registration_decode_memoized_ms": _ms(decode),
            "sign_ms": _ms(sign),
            "verify_one_cosignature_ms": _ms(verify_one),
        },
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
    parser.add_argument("--repeat", type=int, default=5, help="samples per median (default 5)")
    args = parser.parse_args(argv)
    try:
        counts = sorted({int(x) for x in args.witnesses.split(",")})
    except ValueError:
        parser.error("--witnesses takes comma-separated integers")
    if not counts or counts[0] < 1 or args.repeat < 1:
        parser.error("witness counts and --repeat must be positive")
    report = run(counts, args.repeat)
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        for key, value in report["per_key"].items():
            print(f"{key:<40} {value:>10.1f}")
        for row in report["finality"]:
            print(
                f"{row['witnesses']:>3} witnesses: finality {row['finality_check_ms']:.1f} ms"
                f" (pairing {row['pairing_check_on_aggregated_key_ms']:.1f},"
                f" key validation {row['py_ecc_key_validate_all_ms']:.1f},"
                f" key sum {row['sum_public_keys_ms']:.1f})"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
