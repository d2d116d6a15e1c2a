"""Test support for the decoder fuzz tests: real seed encodings, byte mutations of them, a
reproducible settings profile and the one assertion they share. Not a test module.

Every fuzz test feeds a decoder bytes (or text) that are either pure random or a real,
valid encoding with a few mutations applied (bit flips, byte overwrites, 32-bit length
fields overwritten with extreme values, inserted, deleted, duplicated or truncated
spans). The decoder may accept the input or refuse it with a
:class:`zkgrid.errors.ZkgridError`; any other exception fails the test.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from functools import cache
from typing import TypeVar

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from ledger.checkpoint import Checkpoint, CheckpointSigner, SignedCheckpoint
from ledger.cosignature import Cosignature, CosignedCheckpoint, WitnessRegistration
from ledger.entries import Entry, EntryKind
from ledger.merkle import root
from settlement.records import (
    Bill,
    MeterRegistration,
    MeterRevocation,
    ReadingBatch,
    Record,
    Tariff,
    bill_coefficients,
    bill_proof_context,
    pop_message,
    reading_proof_context,
)
from witness.keys import WitnessKey, cosign
from zkgrid.errors import ZkgridError
from zkp.drbg import SeededScalars
from zkp.group import ORDER
from zkp.rangeproof import RangeProof
from zkp.sigma import LinearCombinationProof

_In = TypeVar("_In")
_Out = TypeVar("_Out")


#: ``ZKGRID_FUZZ_SCALE=20`` multiplies every example count and draws fresh random inputs
#: (a deeper local search); unset, the counts fit CI's time budget and the inputs are fixed.
_SCALE = float(os.environ.get("ZKGRID_FUZZ_SCALE", "1"))


def fuzz_settings(max_examples: int) -> settings:
    """Reproducible in CI: derandomized, no example database, no deadline (shared machines)."""
    return settings(
        max_examples=max(1, round(max_examples * _SCALE)),
        deadline=None,
        derandomize=_SCALE == 1,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


#: Values written over a 4-byte window: the extremes of every u32 length or count.
_U32_EXTREMES = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFE, 0xFFFF_FFFF)
#: Bytes that mean something to one of the formats: NUL, flags, newline and CR, space, '"',
#: '+', ',', '-', '.', ':', 'Z', 'e', DEL, a UTF-8 continuation and lead byte, 0xFF.
_INTERESTING_BYTES = tuple(b'\x00\x01\x02\x03\n\r "+,-.:Ze\x7f\x80\xc0\xff')
_OPS = ("flip", "set", "u32", "insert", "delete", "duplicate", "truncate")
#: Text formats also get a run of 4,000..6,000 digits inserted (CPython's int() refuses more
#: than 4,300 digits with a bare ValueError: every parser must bound lengths first).
_TEXT_OPS = (*_OPS, "digits")


def _mutate_once(data: bytearray, draw: st.DrawFn, ops: Sequence[str]) -> None:
    op = draw(st.sampled_from(ops))
    at = draw(st.integers(0, len(data)))
    if op == "flip" and data:
        data[at % len(data)] ^= 1 << draw(st.integers(0, 7))
    elif op == "set" and data:
        data[at % len(data)] = draw(st.sampled_from(_INTERESTING_BYTES) | st.integers(0, 255))
    elif op == "u32":
        value = draw(st.sampled_from(_U32_EXTREMES) | st.integers(0, 0xFFFF_FFFF))
        data[at : at + 4] = value.to_bytes(4, "big")
    elif op == "insert":
        data[at:at] = draw(st.binary(min_size=1, max_size=16))
    elif op == "delete":
        del data[at : at + draw(st.integers(1, 16))]
    elif op == "digits":
        data[at:at] = b"9" * draw(st.integers(4_000, 6_000))
    elif op == "duplicate":
        span = bytes(data[at : at + draw(st.integers(1, 64))])
        data[at:at] = span
    else:
        del data[at:]


@st.composite
def mutations(
    draw: st.DrawFn, seeds: Sequence[bytes], max_mutations: int = 4, *, text: bool = False
) -> bytes:
    """One of ``seeds`` with 1..``max_mutations`` mutations applied."""
    data = bytearray(draw(st.sampled_from(seeds)))
    ops = _TEXT_OPS if text else _OPS
    for _ in range(draw(st.integers(1, max_mutations))):
        _mutate_once(data, draw, ops)
    return bytes(data)


def fuzz_bytes(
    seeds: Sequence[bytes], max_random: int = 512, max_mutations: int = 4, *, text: bool = False
) -> st.SearchStrategy[bytes]:
    """Mutated seeds (about three draws in four), unchanged seeds, or pure random bytes
    (``max_random`` = 0: no random bytes, for decoders too slow to spend examples on them)."""
    mutated = mutations(seeds, max_mutations, text=text)
    if max_random == 0:
        return st.one_of(mutated, mutated, mutated, mutated, st.sampled_from(seeds))
    return st.one_of(
        mutated, mutated, mutated, st.sampled_from(seeds), st.binary(max_size=max_random)
    )


def fuzz_text(
    seeds: Sequence[str], max_random: int = 512, max_mutations: int = 4, *, digits: bool = True
) -> st.SearchStrategy[str]:
    """Text decoders: mutated UTF-8 of the seeds decoded leniently, or random text.

    ``digits``: some mutations insert 4,000..6,000 digits (see ``_TEXT_OPS``).
    """
    raw = fuzz_bytes([s.encode("utf-8") for s in seeds], max_random, max_mutations, text=digits)
    return st.one_of(
        raw.map(lambda b: b.decode("utf-8", errors="replace")),
        raw.map(lambda b: b.decode("utf-8", errors="surrogateescape")),
        st.text(max_size=max_random),
    )


def typed_or_accepted(decode: Callable[[_In], _Out], data: _In) -> _Out | None:
    """``decode(data)``; a :class:`ZkgridError` is a refusal (``None``), anything else fails."""
    try:
        result = decode(data)
    except ZkgridError as exc:
        _event(f"refused: {type(exc).__name__}: {re.sub(r'[0-9]+', 'N', str(exc))[:48]}")
        return None
    _event("accepted")
    return result


def _event(text: str) -> None:
    """Hypothesis statistics (``--hypothesis-show-statistics``); nothing outside a test."""
    if currently_in_test_context():
        event(text)


# ----------------------------------------------------------------------------- real seeds
# Deterministic: seeded proofs (zkp.drbg), RFC 6979 ECDSA, Ed25519 and BLS signatures.

ORIGIN = "zkgrid.test/fuzz"
#: The test ledgers' checkpoint key (tests/conftest.py's seed).
SIGNER = CheckpointSigner.from_private_bytes("zkgrid-test", bytes(range(32)))
LOG_KEY = SIGNER.verifier_key()
METER_SECRET = 0xC0FFEE
METER_ID = "meter-fuzz.01"
PERIOD = "2026-11-21"
MINUTES = 240  # 6 intervals: small real batches


def rfc6979_sign(message: bytes) -> bytes:
    """The meter key's ECDSA signature with deterministic nonces, low-S (like MeterKey.sign)."""
    key = ec.derive_private_key(METER_SECRET, ec.SECP256R1())
    der = key.sign(message, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    r, s = decode_dss_signature(der)
    return encode_dss_signature(r, min(s, ORDER - s))


def meter_public_key() -> bytes:
    key = ec.derive_private_key(METER_SECRET, ec.SECP256R1()).public_key()
    return key.public_bytes(Encoding.X962, PublicFormat.CompressedPoint)


@cache
def records() -> tuple[Record, ...]:
    """One valid record of every settlement kind, deterministic, in ledger order."""
    public_key = meter_public_key()
    registration = MeterRegistration(
        METER_ID, public_key, MINUTES, rfc6979_sign(pop_message(METER_ID, public_key, MINUTES))
    )
    t = 1440 // MINUTES
    values = [(1_000 + 37 * i) % 5_000 for i in range(2 * t)]
    bundle = RangeProof.prove(
        values,
        32,
        context=reading_proof_context(METER_ID, PERIOD, 0),
        rng=SeededScalars(b"fuzz/batch"),
    )
    unsigned = ReadingBatch(
        meter_id=METER_ID,
        period=PERIOD,
        interval_minutes=MINUTES,
        sequence=0,
        prev_hash=bytes(32),
        commitments=tuple(c.to_bytes() for c in bundle.commitments),
        range_proof=bundle.proof.to_bytes(),
        signature=b"\x30\x06\x02\x01\x01\x02\x01\x01",
    )
    batch = unsigned.with_signature(rfc6979_sign(unsigned.signed_bytes()))
    tariff = Tariff(
        period=PERIOD,
        interval_minutes=MINUTES,
        currency="EUR",
        fixed_charge=-12_345,
        import_price=tuple(100 + 50 * i for i in range(t)),
        export_credit=tuple(10 * i for i in range(t)),
    )
    proof, total = LinearCombinationProof.prove(
        bill_coefficients(tariff),
        list(bundle.commitments),
        values,
        list(bundle.blindings),
        constant=tariff.fixed_charge,
        context=bill_proof_context(batch.batch_hash(), tariff.tariff_hash()),
        rng=SeededScalars(b"fuzz/bill"),
    )
    bill = Bill(METER_ID, PERIOD, batch.batch_hash(), tariff.tariff_hash(), total, proof.to_bytes())
    revocation = MeterRevocation(METER_ID, "meter replaced \u2014 tampering suspected")
    return registration, tariff, batch, bill, revocation  # an order the auditor accepts


@cache
def witness_material() -> tuple[WitnessRegistration, SignedCheckpoint, Cosignature, bytes]:
    """A registration, a log-signed checkpoint, a cosignature on it and their aggregate.

    The aggregate of one signature is that signature: no pairing is spent on verifying it
    (the decoders check encodings, not signatures).
    """
    key = WitnessKey.from_secret_bytes("auditor-1", (7).to_bytes(32, "big"))
    registration = key.registration()
    leaves = [Entry(EntryKind.BILL, bytes([i])).leaf_hash() for i in range(3)]
    signed = SIGNER.sign(Checkpoint(ORIGIN, 3, root(leaves)))
    cosignature = cosign(key, signed)
    cosigned = CosignedCheckpoint(signed, cosignature.signature, (cosignature.name,))
    return registration, signed, cosignature, cosigned.encode()
