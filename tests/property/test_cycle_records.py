"""Property tests of records version 2: every valid cycle tariff and cycle bill round-trips and
decodes strictly, and a cycle tariff's bill is what an independent computation gives."""

from __future__ import annotations

import datetime as dt
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from settlement.records import (
    MAX_CIRCUIT_PROOF_BYTES,
    MAX_FIXED_CHARGE,
    MAX_RATE,
    MAX_READING,
    CycleBill,
    CycleTariff,
    RecordFormatError,
    decode_record,
)

SETTINGS = settings(max_examples=60, deadline=None)
#: Interval lengths whose day is small enough for quick examples (T <= 24).
INTERVALS = [60, 120, 180, 240, 360, 480, 720, 1440]
ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"

names = st.text(alphabet=ALPHABET, min_size=1, max_size=64)
days = st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 11, 30))
hashes = st.binary(min_size=32, max_size=32)


@st.composite
def cycles(draw: st.DrawFn) -> tuple[str, str, int]:
    first = draw(days)
    length = draw(st.integers(1, 31))
    return first.isoformat(), (first + dt.timedelta(days=length - 1)).isoformat(), length


@st.composite
def tier_lists(draw: st.DrawFn) -> tuple[tuple[int, int], ...]:
    count = draw(st.integers(0, 8))
    if count == 0:
        return ()
    gaps = draw(st.lists(st.integers(1, 50_000), min_size=count - 1, max_size=count - 1))
    starts = [0, *itertools.accumulate(gaps)]
    prices = sorted(draw(st.lists(st.integers(0, MAX_RATE), min_size=count, max_size=count)))
    if draw(st.booleans()):
        prices.reverse()  # declining blocks
    return tuple(zip(starts, prices, strict=True))


@st.composite
def cycle_tariffs(draw: st.DrawFn) -> CycleTariff:
    minutes = draw(st.sampled_from(INTERVALS))
    t = 1440 // minutes
    first, last, _ = draw(cycles())
    rates = st.lists(st.integers(0, MAX_RATE), min_size=t, max_size=t).map(tuple)
    multiple = minutes * 1000 // 60  # every interval here divides by 3: a whole rate per Wh
    return CycleTariff(
        plan=draw(names),
        meters=tuple(sorted(draw(st.sets(names, max_size=12)))),
        first_period=first,
        last_period=last,
        interval_minutes=minutes,
        currency=draw(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=3, max_size=3)),
        fixed_charge=draw(st.integers(-MAX_FIXED_CHARGE, MAX_FIXED_CHARGE)),
        import_price=draw(rates),
        export_credit=draw(rates),
        tiers=draw(tier_lists()),
        demand_charge=multiple * draw(st.integers(0, 2**20)),
    )


@st.composite
def cycle_bills(draw: st.DrawFn) -> CycleBill:
    first, last, length = draw(cycles())
    return CycleBill(
        meter_id=draw(names),
        first_period=first,
        last_period=last,
        batch_hashes=tuple(draw(st.lists(hashes, min_size=length, max_size=length))),
        tariff_hash=draw(hashes),
        total=draw(st.integers(-(2**63), 2**63 - 1)),
        proof=draw(st.binary(min_size=1, max_size=MAX_CIRCUIT_PROOF_BYTES)),
    )


records = st.one_of(cycle_tariffs(), cycle_bills())


@SETTINGS
@given(records)
def test_round_trip(record: CycleTariff | CycleBill) -> None:
    data = record.encode()
    assert data[0] == 2
    assert type(record).decode(data) == record
    assert type(record).decode(data).encode() == data
    assert decode_record(record.to_entry()) == record


@SETTINGS
@given(records, st.data())
def test_single_byte_mutations_never_decode_to_the_same_record(
    record: CycleTariff | CycleBill, data: st.DataObject
) -> None:
    raw = bytearray(record.encode())
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] ^= data.draw(st.integers(1, 255))
    try:
        decoded = type(record).decode(bytes(raw))
    except RecordFormatError:
        return
    assert decoded.encode() == bytes(raw)
    assert decoded != record


@SETTINGS
@given(records, st.binary(min_size=1, max_size=8))
def test_trailing_bytes_are_refused(record: CycleTariff | CycleBill, extra: bytes) -> None:
    try:
        type(record).decode(record.encode() + extra)
    except RecordFormatError:
        return
    raise AssertionError("trailing bytes were accepted")


# --------------------------------------------------------------------------- the bill


def _independent_tier_cost(tiers: tuple[tuple[int, int], ...], total: int) -> int:
    """Fill the tiers from the top: whatever lies above a tier's start is charged at its price."""
    cost, remaining = 0, total
    for start, price in reversed(tiers):
        above = max(remaining - start, 0)
        cost += above * price
        remaining -= above
    return cost


def _independent_total(tariff: CycleTariff, imports: list[int], exports: list[int]) -> int:
    """The bill from flat lists (interval i of the cycle is interval i mod T of its day)."""
    t = tariff.intervals
    total = tariff.fixed_charge
    for i, (imp, exp) in enumerate(zip(imports, exports, strict=True)):
        total += tariff.import_price[i % t] * imp - tariff.export_credit[i % t] * exp
    total += _independent_tier_cost(tariff.tiers, sum(imports))
    peak_kw_micro = max(imports) * 60 * tariff.demand_charge  # Wh * 60 / minutes / 1000 kW
    assert peak_kw_micro % (tariff.interval_minutes * 1000) == 0
    return total + peak_kw_micro // (tariff.interval_minutes * 1000)


@st.composite
def billed(draw: st.DrawFn) -> tuple[CycleTariff, list[list[int]], list[list[int]]]:
    tariff = draw(cycle_tariffs())
    n = len(tariff.periods) * tariff.intervals
    scale = draw(st.sampled_from([10, 1_000, 100_000, MAX_READING]))
    readings = st.lists(st.integers(0, scale), min_size=n, max_size=n)
    flat_imports, flat_exports = draw(readings), draw(readings)
    t = tariff.intervals
    return (
        tariff,
        [flat_imports[i : i + t] for i in range(0, n, t)],
        [flat_exports[i : i + t] for i in range(0, n, t)],
    )


@SETTINGS
@given(billed())
def test_the_breakdown_is_the_independent_bill(
    case: tuple[CycleTariff, list[list[int]], list[list[int]]],
) -> None:
    tariff, imports, exports = case
    b = tariff.bill_breakdown(imports, exports)
    flat_imports = [v for day in imports for v in day]
    flat_exports = [v for day in exports for v in day]
    assert b.total == _independent_total(tariff, flat_imports, flat_exports)
    assert sum(b.tier_wh) == (b.total_import if tariff.tiers else 0)
    low, high = tariff.bill_bounds()
    assert low <= b.total <= high
    assert low >= -(2**63)
    assert high < 2**63


@SETTINGS
@given(tier_lists(), st.integers(0, 2**46))
def test_tier_costs_are_the_circuits_affine_pieces(
    tiers: tuple[tuple[int, int], ...], total: int
) -> None:
    """circuits.md: an inclining (convex) cost is the max of its tiers' affine pieces, a
    declining (concave) one the min; the record's tier amounts give the same cost."""
    if not tiers:
        return
    tariff = CycleTariff("p", (), "2026-11-01", "2026-11-01", 1440, "EUR", 0, (0,), (0,), tiers, 0)
    cost = tariff.tier_cost(total)
    assert cost == _independent_tier_cost(tiers, total)
    pieces = [tariff.tier_cost(start) + price * (total - start) for start, price in tiers]
    if tariff.tier_kind == "inclining":
        assert cost == max(pieces)
    else:
        assert tariff.tier_kind == "declining"
        assert cost == min(pieces)


@SETTINGS
@given(st.sampled_from([CycleTariff, CycleBill]), st.binary(max_size=300))
def test_any_bytes_decode_or_raise_a_format_error(
    cls: type[CycleTariff] | type[CycleBill], tail: bytes
) -> None:
    try:
        record = cls.decode(b"\x02" + tail)
    except RecordFormatError:
        return
    assert record.encode() == b"\x02" + tail
