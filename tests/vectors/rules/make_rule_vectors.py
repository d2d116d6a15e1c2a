"""Regenerate tests/vectors/rules/*.json: the settlement rules as data (settlement-v1.md, "Rules").

    .venv/bin/python tests/vectors/rules/make_rule_vectors.py

Each vector is a named sequence of ledger entries (kind and payload hex, as the log
holds them) and, per entry, the reason the rules give (``null``: accepted). The same
vectors run against the service through gRPC and against the auditor on an archive
(tests/integration/test_rule_vectors.py); both must give exactly these reasons.

Per entry:

* ``via``: ``"api"`` when a request can carry it (the service must answer ``reason``),
  ``"ledger"`` when no request can (an undefined kind, a payload that is no record):
  such an entry only reaches a ledger written behind the service's back;
* ``same_as``: for the identical record again (R5), the entry whose receipt the
  service returns;
* ``rule``: the label of the rule that gives ``reason``.

Deterministic: meter keys from fixed scalars, ECDSA with RFC 6979 nonces (low-S),
range and bill proofs with :class:`zkp.drbg.SeededScalars`, BLS keys from fixed
secrets. A cryptographic failure (C1..C4) is always the last entry of its meter, so
that the service (which refuses it) and a ledger holding it (where the state rules
apply it; the cryptographic verdict does not change the state) judge every later
entry alike.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from ledger.cosignature import WitnessRegistration
from ledger.entries import EntryKind
from settlement.records import (
    ZERO_HASH,
    Bill,
    MeterKey,
    MeterRegistration,
    MeterRevocation,
    ReadingBatch,
    Tariff,
    bill_coefficients,
    bill_proof_context,
    reading_proof_context,
)
from witness.keys import WitnessKey
from zkp.drbg import SeededScalars
from zkp.group import Scalar
from zkp.pedersen import Commitment
from zkp.rangeproof import RangeProof
from zkp.sigma import LinearCombinationProof

FORMAT = "zkgrid/settlement-rules v1"
P1, P2, P3, P4 = "2025-06-01", "2025-06-02", "2025-06-03", "2025-06-04"
_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


class _DeterministicKey(MeterKey):
    """A meter key signing with RFC 6979 nonces (vectors only), normalised to low-S."""

    __slots__ = ()

    def sign(self, message: bytes) -> bytes:
        der = self._key.sign(message, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
        r, s = decode_dss_signature(der)
        return encode_dss_signature(r, min(s, _ORDER - s))


def _key(name: str) -> MeterKey:
    value = int.from_bytes(hashlib.sha256(b"zkgrid/rule-vectors/" + name.encode()).digest())
    return _DeterministicKey(ec.derive_private_key(value % (_ORDER - 1) + 1, ec.SECP256R1()))


@dataclass
class _Meter:
    meter_id: str
    interval_minutes: int = 240
    key: MeterKey = field(init=False)
    sequence: int = 0
    prev_hash: bytes = ZERO_HASH
    openings: dict[str, tuple[list[int], list[Scalar]]] = field(default_factory=dict)
    batches: dict[str, ReadingBatch] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.key = _key(self.meter_id)

    def registration(self) -> MeterRegistration:
        return MeterRegistration.create(self.key, self.meter_id, self.interval_minutes)

    def batch(
        self,
        period: str,
        *,
        interval_minutes: int | None = None,
        sequence: int | None = None,
        prev_hash: bytes | None = None,
        signer: MeterKey | None = None,
        proof_context_sequence: int | None = None,
        range_proof: bytes | None = None,
        advance: bool = True,
        salt: str = "",
    ) -> ReadingBatch:
        """A batch for ``period``; every keyword breaks one thing on purpose."""
        minutes = interval_minutes or self.interval_minutes
        seq = self.sequence if sequence is None else sequence
        rng = random.Random(f"{self.meter_id}/{period}/{seq}/{minutes}/{salt}")
        values = [rng.randrange(0, 4000) for _ in range(2 * (1440 // minutes))]
        context_seq = seq if proof_context_sequence is None else proof_context_sequence
        bundle = RangeProof.prove(
            values,
            32,
            context=reading_proof_context(self.meter_id, period, context_seq),
            rng=SeededScalars(f"{self.meter_id}/{period}/{seq}/{salt}".encode()),
        )
        batch = ReadingBatch.create(
            signer or self.key,
            meter_id=self.meter_id,
            period=period,
            interval_minutes=minutes,
            sequence=seq,
            prev_hash=self.prev_hash if prev_hash is None else prev_hash,
            commitments=[c.to_bytes() for c in bundle.commitments],
            range_proof=bundle.proof.to_bytes() if range_proof is None else range_proof,
        )
        if advance:
            self.openings[period] = (values, list(bundle.blindings))
            self.batches[period] = batch
            self.sequence = seq + 1
            self.prev_hash = batch.batch_hash()
        return batch

    def bill(
        self,
        period: str,
        tariff: Tariff,
        *,
        batch_hash: bytes | None = None,
        tariff_hash: bytes | None = None,
        total_offset: int = 0,
        proof: bytes | None = None,
    ) -> Bill:
        """The bill of ``period`` (proven when the meter has the batch's openings)."""
        b_hash = batch_hash or self.batches[period].batch_hash()
        t_hash = tariff_hash or tariff.tariff_hash()
        if period in self.openings and tariff.interval_minutes == self.interval_minutes:
            values, blindings = self.openings[period]
            made, total = LinearCombinationProof.prove(
                bill_coefficients(tariff),
                [Commitment.from_bytes(c) for c in self.batches[period].commitments],
                values,
                blindings,
                constant=tariff.fixed_charge,
                context=bill_proof_context(b_hash, t_hash),
                rng=SeededScalars(f"bill/{self.meter_id}/{period}".encode()),
            )
            proof_bytes = made.to_bytes()
        else:  # a bill the rules refuse before its proof matters
            total = 1000
            proof_bytes = bytes([2]) + bytes(31) + b"\x01" + bytes(31) + b"\x01"
        return Bill(
            self.meter_id,
            period,
            b_hash,
            t_hash,
            total + total_offset,
            proof_bytes if proof is None else proof,
        )


def _tariff(period: str, interval_minutes: int = 240, seed: int = 1) -> Tariff:
    rng = random.Random(f"tariff/{period}/{interval_minutes}/{seed}")
    t = 1440 // interval_minutes
    return Tariff(
        period=period,
        interval_minutes=interval_minutes,
        currency="EUR",
        fixed_charge=rng.randrange(0, 500_000),
        import_price=tuple(rng.randrange(100, 600) for _ in range(t)),
        export_credit=tuple(rng.randrange(0, 200) for _ in range(t)),
    )


def _witness_key(name: str) -> WitnessKey:
    seed = b"zkgrid/rule-vectors/witness/" + name.encode()
    secret = int.from_bytes(hashlib.sha256(seed).digest())
    return WitnessKey(name, secret % (2**252) + 1)


class _Vector:
    def __init__(self, name: str, description: str) -> None:
        self.name = name
        self.description = description
        self.entries: list[dict[str, Any]] = []

    def add(
        self,
        record: Any,
        reason: str | None = None,
        rule: str | None = None,
        note: str = "",
        *,
        same_as: int | None = None,
    ) -> int:
        """Append a record's entry; returns its position."""
        kind = record.to_entry().kind
        return self.raw(kind, record.encode(), reason, rule, note, same_as=same_as, via="api")

    def raw(
        self,
        kind: int,
        payload: bytes,
        reason: str | None,
        rule: str | None,
        note: str,
        *,
        same_as: int | None = None,
        via: str = "ledger",
    ) -> int:
        self.entries.append(
            {
                "kind": int(kind),
                "payload_hex": payload.hex(),
                "reason": reason,
                "rule": rule,
                "via": via,
                "same_as": same_as,
                "note": note,
            }
        )
        return len(self.entries) - 1

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "name": self.name,
            "description": self.description,
            "entries": self.entries,
        }


# --------------------------------------------------------------------------- the vectors


def registrations() -> _Vector:
    v = _Vector("registration", "R3, R4, R6 and C1: registrations and revocations")
    m1 = _Meter("m-1")
    reg = m1.registration()
    v.add(reg, note="register m-1")
    v.add(reg, "METER_EXISTS", "R3", "the identical registration again: ids are never reused")
    other = MeterRegistration.create(_key("m-1/other"), "m-1", 240)
    v.add(other, "METER_EXISTS", "R3", "m-1 with another key")
    forged = MeterRegistration("m-1", other.public_key, 240, reg.pop_signature)
    v.add(forged, "METER_EXISTS", "R3", "precedence: R3 before C1 (a forged PoP for a used id)")
    v.add(MeterRevocation("m-9", "never registered"), "UNKNOWN_METER", "R4", "revoke m-9")
    v.add(MeterRevocation("m-1", "replaced"), note="revoke m-1")
    v.add(MeterRevocation("m-1", "again"), "METER_REVOKED", "R6", "revoke m-1 again")
    v.add(reg, "METER_EXISTS", "R3", "re-register the revoked m-1")
    m2 = _Meter("m-2")
    good = m2.registration()
    bad = MeterRegistration("m-2", good.public_key, 240, reg.pop_signature)
    v.add(bad, "SIGNATURE_INVALID", "C1", "m-2 with a proof of possession that does not verify")
    return v


def batches() -> _Vector:
    v = _Vector("batch", "R4..R9, C2, C3: reading batches and their precedence")
    m1 = _Meter("m-1")
    v.add(m1.registration(), note="register m-1 (240-minute intervals)")
    stranger = _Meter("m-9")
    v.add(stranger.batch(P1), "UNKNOWN_METER", "R4", "a batch of an unregistered meter")
    first = v.add(m1.batch(P1), note="m-1 P1, sequence 0")
    v.add(m1.batches[P1], "DUPLICATE_BATCH", "R5", "the identical batch again", same_as=first)
    v.add(
        m1.batch(P2, interval_minutes=60, advance=False),
        "INTERVALS_MISMATCH",
        "R7",
        "60-minute intervals; the meter registered 240",
    )
    v.add(
        m1.batch(P2, interval_minutes=60, sequence=7, advance=False),
        "INTERVALS_MISMATCH",
        "R7",
        "precedence: R7 before R9 (wrong interval and wrong sequence)",
    )
    v.add(
        m1.batch(P1, advance=False, salt="second"),
        "DUPLICATE_PERIOD",
        "R8",
        "another batch for P1 (sequence 1, linked correctly)",
    )
    v.add(
        m1.batch(P1, sequence=5, advance=False, salt="third"),
        "DUPLICATE_PERIOD",
        "R8",
        "precedence: R8 before R9 (a second P1 that also breaks the chain)",
    )
    v.add(m1.batch(P2, sequence=5, advance=False), "CHAIN_BROKEN", "R9", "sequence 5, next is 1")
    v.add(
        m1.batch(P2, prev_hash=b"\x42" * 32, advance=False),
        "CHAIN_BROKEN",
        "R9",
        "prev_hash is not the hash of the last batch",
    )
    v.add(
        m1.batch(P2, sequence=3, signer=_key("m-9"), advance=False),
        "CHAIN_BROKEN",
        "R9",
        "precedence: state rules before C2 (wrong sequence and a foreign signature)",
    )
    v.add(m1.batch(P3), note="m-1 P3, sequence 1: periods need not come in date order")
    v.add(
        m1.batch(P2, signer=_key("m-9")),
        "SIGNATURE_INVALID",
        "C2",
        "signed by another key (last entry of m-1)",
    )
    m2 = _Meter("m-2")
    v.add(m2.registration(), note="register m-2")
    v.add(
        m2.batch(P1, proof_context_sequence=9),
        "PROOF_INVALID",
        "C3",
        "the range proof was made for another context (last entry of m-2)",
    )
    m3 = _Meter("m-3")
    v.add(m3.registration(), note="register m-3")
    v.add(
        m3.batch(P1, range_proof=b"\x00" * 40),
        "PROOF_MALFORMED",
        "C3",
        "range proof bytes that do not parse (last entry of m-3)",
    )
    return v


def revoked() -> _Vector:
    v = _Vector("revoked", "R6 and its place in the precedence: after R4 and R5")
    m1 = _Meter("m-1")
    v.add(m1.registration(), note="register m-1")
    batch = v.add(m1.batch(P1), note="m-1 P1")
    tariff = _tariff(P1)
    v.add(tariff, note="tariff P1")
    bill = m1.bill(P1, tariff)
    billed = v.add(bill, note="m-1's bill for P1")
    v.add(m1.batch(P2), note="m-1 P2")
    v.add(MeterRevocation("m-1", "stolen"), note="revoke m-1")
    v.add(
        m1.batches[P1], "DUPLICATE_BATCH", "R5", "identical batch after revocation", same_as=batch
    )
    v.add(bill, "DUPLICATE_BILL", "R5", "identical bill after revocation", same_as=billed)
    v.add(m1.batch(P3, advance=False), "METER_REVOKED", "R6", "a new batch after revocation")
    v.add(
        m1.batch(P4, interval_minutes=60, advance=False),
        "METER_REVOKED",
        "R6",
        "precedence: R6 before R7",
    )
    v.add(
        m1.bill(P1, tariff, total_offset=1),
        "METER_REVOKED",
        "R6",
        "precedence: R6 before R11 (another bill for a billed period)",
    )
    v.add(
        m1.bill(P2, _tariff(P2)),
        "METER_REVOKED",
        "R6",
        "precedence: R6 before R13 (a bill naming an unpublished tariff)",
    )
    return v


def tariffs() -> _Vector:
    v = _Vector("tariff", "R5 and R10: one tariff per period")
    tariff = _tariff(P1)
    first = v.add(tariff, note="tariff P1")
    v.add(tariff, "DUPLICATE_TARIFF", "R5", "the identical tariff again", same_as=first)
    v.add(_tariff(P1, seed=2), "TARIFF_EXISTS", "R10", "another tariff for P1")
    v.add(_tariff(P2, interval_minutes=60), note="a 60-minute tariff for P2")
    return v


def bills() -> _Vector:
    v = _Vector("bill", "R4, R5, R11..R14, C4: bills, their references and precedence")
    m1 = _Meter("m-1")
    v.add(m1.registration(), note="register m-1 (240-minute intervals)")
    t1 = _tariff(P1)
    t2 = _tariff(P2, interval_minutes=60)
    v.add(t1, note="tariff P1 (240 minutes)")
    v.add(t2, note="tariff P2 (60 minutes)")
    v.add(m1.batch(P1), note="m-1 P1")
    v.add(m1.batch(P2), note="m-1 P2")
    v.add(m1.batch(P4), note="m-1 P4 (no tariff published for P4)")
    stranger = _Meter("m-9")
    stranger.batches[P1] = m1.batches[P1]
    v.add(stranger.bill(P1, t1), "UNKNOWN_METER", "R4", "a bill of an unregistered meter")
    v.add(
        m1.bill(P1, t1, batch_hash=b"\x13" * 32),
        "UNKNOWN_BATCH",
        "R12",
        "a bill naming a batch hash that is not m-1's P1",
    )
    v.add(
        m1.bill(P3, _tariff(P3), batch_hash=m1.batches[P1].batch_hash()),
        "UNKNOWN_BATCH",
        "R12",
        "precedence: R12 before R13 (no batch for P3, no tariff for P3)",
    )
    v.add(
        m1.bill(P1, t1, tariff_hash=_tariff(P1, seed=2).tariff_hash()),
        "UNKNOWN_TARIFF",
        "R13",
        "a bill naming a tariff that is not P1's",
    )
    v.add(m1.bill(P4, _tariff(P4)), "UNKNOWN_TARIFF", "R13", "no tariff is published for P4")
    v.add(
        m1.bill(P2, t2),
        "INTERVALS_MISMATCH",
        "R14",
        "P2's tariff has 60-minute intervals, the batch 240",
    )
    bill = m1.bill(P1, t1)
    first = v.add(bill, note="m-1's bill for P1")
    v.add(bill, "DUPLICATE_BILL", "R5", "the identical bill again", same_as=first)
    v.add(m1.bill(P1, t1, total_offset=1), "BILL_EXISTS", "R11", "another bill for P1")
    v.add(
        m1.bill(P1, t1, batch_hash=b"\x13" * 32, total_offset=2),
        "BILL_EXISTS",
        "R11",
        "precedence: R11 before R12",
    )
    m2 = _Meter("m-2")
    v.add(m2.registration(), note="register m-2")
    v.add(m2.batch(P1), note="m-2 P1")
    v.add(
        m2.bill(P1, t1, total_offset=1),
        "PROOF_INVALID",
        "C4",
        "a total one micro-unit off: the bill proof does not verify (last entry of m-2)",
    )
    m3 = _Meter("m-3")
    v.add(m3.registration(), note="register m-3")
    v.add(m3.batch(P1), note="m-3 P1")
    v.add(
        m3.bill(P1, t1, proof=b"\x00" * 65),
        "PROOF_MALFORMED",
        "C4",
        "bill proof bytes that do not parse (last entry of m-3)",
    )
    return v


def entries() -> _Vector:
    v = _Vector("entries", "R1 and R2: undefined kinds and payloads are flagged, never skipped")
    m1 = _Meter("m-1")
    reg = m1.registration()
    v.add(reg, note="register m-1")
    v.raw(EntryKind.COSIGNATURE, b"anything at all", "ENTRY_KIND_UNDEFINED", "R1", "kind 7")
    v.raw(EntryKind.COSIGNATURE, b"", "ENTRY_KIND_UNDEFINED", "R1", "kind 7, empty payload")
    for kind, payload in (
        (EntryKind.METER_REGISTRATION, b"\x01garbage"),
        (EntryKind.METER_REVOCATION, b""),
        (EntryKind.READING_BATCH, b"\x02" + bytes(40)),
        (EntryKind.TARIFF, b"\x01"),
        (EntryKind.BILL, reg.encode()),
    ):
        v.raw(kind, payload, "RECORD_MALFORMED", "R2", f"a {kind.name} payload that is no record")
    v.add(_tariff(P1), note="the ledger goes on: tariff P1")
    return v


def witnesses() -> _Vector:
    v = _Vector("witness", "R2 (C5) and R15: witness registrations")
    alpha = _witness_key("alpha")
    bravo = _witness_key("bravo")
    registration = alpha.registration()
    v.add(registration, note="register witness alpha")
    v.add(registration, "WITNESS_EXISTS", "R15", "alpha again")
    v.add(
        WitnessRegistration("alpha-2", registration.public_key, registration.proof_of_possession),
        "WITNESS_EXISTS",
        "R15",
        "alpha's key under another name",
    )
    v.add(
        WitnessRegistration("bravo", bravo.public_key, registration.proof_of_possession),
        "POP_INVALID",
        "C5",
        "bravo's key with alpha's proof of possession",
    )
    v.raw(
        EntryKind.WITNESS_KEY,
        b"\x01not a witness",
        "WITNESS_MALFORMED",
        "R2",
        "a payload that is no witness registration",
        via="api",
    )
    v.add(bravo.registration(), note="register witness bravo")
    return v


VECTORS = (registrations, batches, revoked, tariffs, bills, entries, witnesses)


def main(names: Sequence[str] = ()) -> None:
    directory = Path(__file__).parent
    for make in VECTORS:
        if names and make.__name__ not in names:
            continue
        vector = make()
        path = directory / f"{vector.name}.json"
        path.write_text(json.dumps(vector.to_json(), indent=1) + "\n")
        print(f"wrote {len(vector.entries)} entries to {path}")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
