"""Regenerate tests/vectors/cycle/*.json: records version 2 (issue 12) as data.

    .venv/bin/python tests/vectors/cycle/make_cycle_vectors.py

* ``records.json``: known-answer vectors of :class:`settlement.records.CycleTariff` and
  :class:`settlement.records.CycleBill`: each record's fields, its canonical encoding,
  its hash (the tariff hash, the bill's digest), a cycle bill's proof context and, for
  tariffs, bills of given readings (:meth:`CycleTariff.bill_breakdown`). Later versions
  of zkgrid must keep decoding these bytes to these fields: do not regenerate them to
  make a failing test pass (a failure means the format changed).
* ``rules.json``: the state rules of records v2 (settlement-v1.md, "Rules": R4..R6,
  R11, R16..R22) in the format of ``tests/vectors/rules/*.json`` (kind, payload, reason,
  rule, same_as), replayed on the pure rules by
  ``tests/unit/settlement/test_cycle_vectors.py``. Entries carrying a record v2 are
  ``"via": "ledger"``: no request of the service carries one yet, so these vectors are
  not among the service's and the auditor's rule vectors (``tests/vectors/rules/``).
  The cycle bills' circuit proofs are placeholder bytes (``circuits/`` makes the real
  ones): these vectors pin the state rules only, not a cryptographic rule.

Deterministic: the meters, batches and version-1 records come from
``tests/vectors/rules/make_rule_vectors.py`` (fixed keys, RFC 6979 signatures, seeded
range and bill proofs).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: import the repository's test helpers
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from ledger.entries import EntryKind
from settlement.records import (
    CycleBill,
    CycleTariff,
    MeterRevocation,
    cycle_periods,
)
from tests.vectors.rules.make_rule_vectors import _Meter, _tariff, _Vector

FORMAT = "zkgrid/records v2"
DIRECTORY = Path(__file__).parent

# --------------------------------------------------------------------------- known answers


def _tariff_fields(t: CycleTariff) -> dict[str, Any]:
    return {
        "plan": t.plan,
        "meters": list(t.meters),
        "first_period": t.first_period,
        "last_period": t.last_period,
        "interval_minutes": t.interval_minutes,
        "currency": t.currency,
        "fixed_charge": t.fixed_charge,
        "import_price": list(t.import_price),
        "export_credit": list(t.export_credit),
        "tiers": [list(tier) for tier in t.tiers],
        "demand_charge": t.demand_charge,
    }


def _bill_fields(b: CycleBill) -> dict[str, Any]:
    return {
        "meter_id": b.meter_id,
        "first_period": b.first_period,
        "last_period": b.last_period,
        "batch_hashes_hex": [h.hex() for h in b.batch_hashes],
        "tariff_hash_hex": b.tariff_hash.hex(),
        "total": b.total,
        "proof_hex": b.proof.hex(),
    }


def _readings(days: int, intervals: int, seed: int, scale: int) -> list[list[int]]:
    """Deterministic readings without a PRNG: a small linear congruence."""
    out, x = [], seed
    for _ in range(days):
        row = []
        for _ in range(intervals):
            x = (x * 1103515245 + 12345) % 2**31
            row.append(x % scale)
        out.append(row)
    return out


def _tariff_case(name: str, tariff: CycleTariff, scales: list[int]) -> dict[str, Any]:
    days = len(tariff.periods)
    bills = []
    for i, scale in enumerate(scales):
        imports = _readings(days, tariff.intervals, 2 * i + 1, scale)
        exports = _readings(days, tariff.intervals, 2 * i + 2, scale // 4 + 1)
        b = tariff.bill_breakdown(imports, exports)
        bills.append(
            {
                "imports": imports,
                "exports": exports,
                "fixed": b.fixed,
                "time_of_use": b.time_of_use,
                "total_import": b.total_import,
                "tier_wh": list(b.tier_wh),
                "tier_charges": list(b.tier_charges),
                "demand_wh": b.demand_wh,
                "demand_charge": b.demand_charge,
                "export_credit": b.export_credit,
                "total": b.total,
            }
        )
    low, high = tariff.bill_bounds()
    return {
        "name": name,
        "fields": _tariff_fields(tariff),
        "encoding_hex": tariff.encode().hex(),
        "tariff_hash_hex": tariff.tariff_hash().hex(),
        "tier_kind": tariff.tier_kind,
        "demand_rate_per_wh": tariff.demand_rate_per_wh,
        "bill_bounds": [low, high],
        "bills": bills,
    }


def _bill_case(name: str, bill: CycleBill) -> dict[str, Any]:
    return {
        "name": name,
        "fields": _bill_fields(bill),
        "encoding_hex": bill.encode().hex(),
        "digest_hex": hashlib.sha256(bill.encode()).hexdigest(),
        "proof_context_hex": bill.proof_context().hex(),
    }


def _hash(label: str) -> bytes:
    return hashlib.sha256(b"zkgrid/cycle-vectors/" + label.encode()).digest()


def records() -> dict[str, Any]:
    inclining = CycleTariff(
        plan="residential-tiered",
        meters=(),
        first_period="2026-11-01",
        last_period="2026-11-03",
        interval_minutes=240,
        currency="EUR",
        fixed_charge=9_000_000,
        import_price=(0,) * 6,
        export_credit=(80,) * 6,
        tiers=((0, 230), (5_000, 280), (12_000, 380)),
        demand_charge=0,
    )
    declining = CycleTariff(
        plan="large-user.declining",
        meters=("factory-1", "factory-2", "mill_3"),
        first_period="2026-02-27",
        last_period="2026-03-02",
        interval_minutes=360,
        currency="USD",
        fixed_charge=-1_500_000,
        import_price=(40, 55, 70, 55),
        export_credit=(0, 10, 20, 10),
        tiers=((0, 120), (4_000, 90), (9_000, 60), (20_000, 60)),
        demand_charge=0,
    )
    demand = CycleTariff(
        plan="business-demand",
        meters=("bakery-12", "workshop-3"),
        first_period="2026-11-01",
        last_period="2026-11-02",
        interval_minutes=60,
        currency="EUR",
        fixed_charge=25_000_000,
        import_price=(120,) * 6 + (190,) * 11 + (260,) * 4 + (190,) * 3,
        export_credit=(50,) * 24,
        tiers=(),
        demand_charge=12_500_000,
    )
    one_day = CycleTariff(
        plan="A",
        meters=("m",),
        first_period="9999-12-31",
        last_period="9999-12-31",
        interval_minutes=1440,
        currency="ZZZ",
        fixed_charge=0,
        import_price=(0,),
        export_credit=(0,),
        tiers=((0, 0),),
        demand_charge=0,
    )
    month = cycle_periods("2026-12-01", "2026-12-31")
    bills = [
        _bill_case(
            "one-period",
            CycleBill(
                "meter-7", "2026-11-21", "2026-11-21", (_hash("b0"),), _hash("t0"), -2, b"\x01"
            ),
        ),
        _bill_case(
            "december",
            CycleBill(
                "meter-7",
                month[0],
                month[-1],
                tuple(_hash(f"dec/{p}") for p in month),
                _hash("t-dec"),
                123_456_789_012,
                bytes(range(256)) * 16,  # the largest proof a cycle bill carries: 4096 bytes
            ),
        ),
    ]
    return {
        "format": FORMAT,
        "description": "CycleTariff and CycleBill (record version 2): fields, canonical"
        " encodings, hashes, proof contexts, and bills of given readings",
        "tariffs": [
            _tariff_case("inclining-3-days", inclining, [2_000, 100]),
            _tariff_case("declining-across-february", declining, [3_000]),
            _tariff_case("demand-60-minutes", demand, [5_000]),
            _tariff_case("one-day-zero-prices", one_day, [10]),
        ],
        "bills": bills,
    }


# --------------------------------------------------------------------------- rule vectors

P1, P2, P3, P4, P5, P6 = cycle_periods("2025-06-01", "2025-06-06")
#: A placeholder circuit proof: the state rules never read it (module docstring).
PROOF = b"\x00placeholder circuit proof"


def _cycle_tariff(
    plan: str,
    first: str,
    last: str,
    meters: tuple[str, ...] = (),
    interval_minutes: int = 240,
    fixed_charge: int = 1_000_000,
) -> CycleTariff:
    t = 1440 // interval_minutes
    return CycleTariff(
        plan=plan,
        meters=meters,
        first_period=first,
        last_period=last,
        interval_minutes=interval_minutes,
        currency="EUR",
        fixed_charge=fixed_charge,
        import_price=tuple(100 + i for i in range(t)),
        export_credit=(40,) * t,
        tiers=((0, 50), (10_000, 80)),
        demand_charge=0,
    )


def _cycle_bill(
    meter: _Meter,
    tariff: CycleTariff | bytes,
    first: str = P1,
    last: str = P3,
    *,
    hashes: tuple[bytes, ...] | None = None,
    total: int = 4_242,
) -> CycleBill:
    if hashes is None:
        hashes = tuple(
            meter.batches[p].batch_hash() if p in meter.batches else _hash(f"none/{p}")
            for p in cycle_periods(first, last)
        )
    tariff_hash = tariff if isinstance(tariff, bytes) else tariff.tariff_hash()
    return CycleBill(meter.meter_id, first, last, hashes, tariff_hash, total, PROOF)


def cycle_rules() -> _Vector:
    v = _Vector(
        "cycle",
        "R4..R6, R11, R16..R22: cycle tariffs and cycle bills (records v2); cycle bill proofs"
        " are placeholders (state rules only)",
    )
    m1, m2, m3 = _Meter("m-1"), _Meter("m-2"), _Meter("m-3", interval_minutes=60)
    for m in (m1, m2, m3):
        v.add(m.registration(), note=f"register {m.meter_id} ({m.interval_minutes} minutes)")
    residential = _cycle_tariff("residential", P1, P3)
    first_tariff = v.add(residential, note="the default plan for P1..P3")
    business = _cycle_tariff("business", P1, P3, ("m-2",))
    v.add(business, note="plan business lists m-2 for P1..P3")
    v.add(
        _cycle_tariff("business", P3, P5, ("m-9",)),
        "TARIFF_EXISTS",
        "R16",
        "plan business again for P3..P5, which overlaps P1..P3",
    )
    v.add(
        _cycle_tariff("solar", P2, P2, ("m-2", "m-5")),
        "TARIFF_EXISTS",
        "R17",
        "plan solar lists m-2, which business lists for an overlapping cycle",
    )
    v.add(
        _cycle_tariff("evening", P3, P6),
        "TARIFF_EXISTS",
        "R17",
        "a second default plan overlapping the default plan of P1..P3",
    )
    v.add(
        residential, "DUPLICATE_TARIFF", "R5", "the identical cycle tariff", same_as=first_tariff
    )
    v.add(_cycle_tariff("business", P4, P6, ("m-2",)), note="plan business for P4..P6")
    hourly = _cycle_tariff("hourly", P1, P3, ("m-3",))
    v.add(hourly, note="plan hourly lists m-3 (a 60-minute meter) with 240-minute intervals")
    day_tariff = _tariff(P2)
    v.add(day_tariff, note="a day's tariff (v1) for P2: v1 and v2 tariffs do not interact")
    v.add(m1.batch(P1), note="m-1 P1")
    v.add(m1.batch(P2), note="m-1 P2")
    for p in (P1, P2, P3):
        v.add(m2.batch(p), note=f"m-2 {p}")
    for p in (P1, P2, P3):
        v.add(m3.batch(p), note=f"m-3 {p}")
    stranger = _Meter("m-9")
    v.add(_cycle_bill(stranger, residential), "UNKNOWN_METER", "R4", "a cycle bill of m-9")
    v.add(
        _cycle_bill(m1, residential),
        "CYCLE_INCOMPLETE",
        "R19",
        "m-1 has no batch for P3 yet",
    )
    v.add(
        _cycle_bill(m1, residential, hashes=(_hash("x"),) * 3),
        "CYCLE_INCOMPLETE",
        "R19",
        "precedence: R19 before R20 (P3 missing, and hashes of no batch)",
    )
    v.add(m1.batch(P3), note="m-1 P3: its cycle P1..P3 is complete")
    in_order = tuple(m1.batches[p].batch_hash() for p in (P1, P2, P3))
    v.add(
        _cycle_bill(m1, residential, hashes=(in_order[1], in_order[0], in_order[2])),
        "UNKNOWN_BATCH",
        "R20",
        "m-1's batch hashes out of period order",
    )
    v.add(
        _cycle_bill(m2, residential, hashes=(*in_order[:2], m2.batches[P3].batch_hash())),
        "UNKNOWN_BATCH",
        "R20",
        "m-2's bill naming m-1's batches",
    )
    v.add(
        _cycle_bill(m1, business),
        "UNKNOWN_TARIFF",
        "R21",
        "plan business does not list m-1",
    )
    v.add(
        _cycle_bill(m1, day_tariff.tariff_hash()),
        "UNKNOWN_TARIFF",
        "R21",
        "a day's tariff (v1) named by a cycle bill",
    )
    v.add(
        _cycle_bill(m1, residential, P1, P2),
        "UNKNOWN_TARIFF",
        "R21",
        "the default plan's cycle is P1..P3, the bill's P1..P2",
    )
    v.add(
        _cycle_bill(m2, residential),
        "UNKNOWN_TARIFF",
        "R21",
        "the default plan does not apply to m-2: plan business lists it",
    )
    v.add(
        _cycle_bill(m3, hourly),
        "INTERVALS_MISMATCH",
        "R22",
        "plan hourly has 240-minute intervals, m-3 reports every 60 minutes",
    )
    bill = _cycle_bill(m1, residential)
    billed = v.add(bill, note="m-1's cycle bill for P1..P3 (default plan)")
    v.add(bill, "DUPLICATE_BILL", "R5", "the identical cycle bill again", same_as=billed)
    v.add(
        _cycle_bill(m1, residential, total=4_243),
        "BILL_EXISTS",
        "R18",
        "another cycle bill for P1..P3",
    )
    v.add(
        m1.bill(P2, day_tariff),
        "BILL_EXISTS",
        "R11",
        "a day's bill (v1) for P2, inside m-1's billed cycle",
    )
    v.add(m2.bill(P2, day_tariff), note="m-2's day bill (v1) for P2")
    v.add(
        _cycle_bill(m2, business),
        "BILL_EXISTS",
        "R18",
        "m-2's cycle P1..P3 holds P2, billed by a day's bill",
    )
    v.add(
        _cycle_bill(m2, business, hashes=(_hash("y"),) * 3),
        "BILL_EXISTS",
        "R18",
        "precedence: R18 before R20",
    )
    v.add(MeterRevocation("m-1", "moved out"), note="revoke m-1")
    v.add(bill, "DUPLICATE_BILL", "R5", "the identical cycle bill after revocation", same_as=billed)
    v.add(
        _cycle_bill(m1, residential, P4, P6),
        "METER_REVOKED",
        "R6",
        "precedence: R6 before R19 (a cycle without batches after revocation)",
    )
    v.raw(EntryKind.TARIFF, b"\x03" + bytes(40), "RECORD_MALFORMED", "R2", "tariff version 3")
    v.raw(
        EntryKind.BILL,
        b"\x02" + bill.encode()[1:] + b"\x00",
        "RECORD_MALFORMED",
        "R2",
        "a cycle bill with a trailing byte",
    )
    v.raw(
        EntryKind.TARIFF,
        bill.encode(),
        "RECORD_MALFORMED",
        "R2",
        "a cycle bill's payload as a tariff",
    )
    v.add(
        _cycle_bill(m3, _hash("nothing")),
        "UNKNOWN_TARIFF",
        "R21",
        "a tariff hash no tariff has (the log goes on after undecodable entries)",
    )
    for entry in v.entries:
        payload = bytes.fromhex(entry["payload_hex"])
        if entry["kind"] in (EntryKind.TARIFF, EntryKind.BILL) and payload[:1] != b"\x01":
            entry["via"] = "ledger"  # no request carries a record v2 yet
    return v


def main() -> None:
    (DIRECTORY / "records.json").write_text(json.dumps(records(), indent=1) + "\n")
    print(f"wrote {DIRECTORY / 'records.json'}")
    vector = cycle_rules()
    (DIRECTORY / "rules.json").write_text(json.dumps(vector.to_json(), indent=1) + "\n")
    print(f"wrote {len(vector.entries)} entries to {DIRECTORY / 'rules.json'}")


if __name__ == "__main__":
    main()
