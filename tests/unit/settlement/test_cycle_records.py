"""Records version 2: the cycle tariff and the cycle bill (encodings, strict decoding, every
validation error, the bounds, and bills computed by hand)."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from typing import Any

import pytest

from ledger import Entry, EntryKind
from settlement import rules
from settlement.periods import MAX_CYCLE_PERIODS, cycle_periods
from settlement.records import (
    MAX_CIRCUIT_PROOF_BYTES,
    MAX_DEMAND_CHARGE,
    MAX_FIXED_CHARGE,
    MAX_PLAN_METERS,
    MAX_RATE,
    MAX_READING,
    MAX_TIER_START,
    MAX_TIERS,
    RECORD_TYPES,
    RECORD_VERSIONS,
    Bill,
    CycleBill,
    CycleBillBreakdown,
    CycleTariff,
    RecordFormatError,
    Tariff,
    Tier,
    cycle_bill_proof_context,
    decode_record,
    record_type,
)
from zkgrid.errors import InvalidArgumentError

H1, H2, H3 = (hashlib.sha256(bytes([i])).digest() for i in (1, 2, 3))


def make_tariff(**over: Any) -> CycleTariff:
    """Two days of two 12-hour intervals, an inclining three-tier plan."""
    fields: dict[str, Any] = {
        "plan": "residential",
        "meters": (),
        "first_period": "2026-11-01",
        "last_period": "2026-11-02",
        "interval_minutes": 720,
        "currency": "EUR",
        "fixed_charge": 5_000,
        "import_price": (0, 0),
        "export_credit": (10, 20),
        "tiers": ((0, 100), (1_000, 200), (3_000, 400)),
        "demand_charge": 0,
    }
    fields.update(over)
    return CycleTariff(**fields)


def make_bill(**over: Any) -> CycleBill:
    fields: dict[str, Any] = {
        "meter_id": "meter-1",
        "first_period": "2026-11-01",
        "last_period": "2026-11-03",
        "batch_hashes": (H1, H2, H3),
        "tariff_hash": b"\x07" * 32,
        "total": -123_456,
        "proof": b"\x02" * 700,
    }
    fields.update(over)
    return CycleBill(**fields)


def _lp(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


# --------------------------------------------------------------------------- encodings


@pytest.mark.parametrize("factory", [make_tariff, make_bill])
def test_round_trip_entry_and_dispatch(factory: Callable[[], Any]) -> None:
    record = factory()
    data = record.encode()
    assert data[0] == 2
    assert type(record).decode(data) == record
    assert record.to_entry() == Entry(type(record).KIND, data)
    assert decode_record(record.to_entry()) == record
    assert record_type(record.KIND, data) is type(record)
    assert RECORD_VERSIONS[record.KIND][2] is type(record)
    assert RECORD_TYPES[record.KIND] in (Tariff, Bill)  # version 1 stays the kind's type
    decoded = rules.decode(record.KIND, data)
    assert decoded == record


def test_known_cycle_tariff_encoding() -> None:
    tariff = make_tariff(
        meters=("a", "b"),
        fixed_charge=-2,
        import_price=(1, 2),
        export_credit=(3, 4),
        tiers=((0, 5), (6, 7)),
        demand_charge=24_000,
        interval_minutes=720,
    )
    expected = (
        b"\x02"
        + _lp(b"residential")
        + struct.pack(">I", 2)
        + _lp(b"a")
        + _lp(b"b")
        + _lp(b"2026-11-01")
        + _lp(b"2026-11-02")
        + struct.pack(">H", 720)
        + _lp(b"EUR")
        + struct.pack(">q", -2)
        + struct.pack(">IQQ", 2, 1, 2)
        + struct.pack(">IQQ", 2, 3, 4)
        + struct.pack(">IQQQQ", 2, 0, 5, 6, 7)
        + struct.pack(">Q", 24_000)
    )
    assert tariff.encode() == expected
    assert tariff.tariff_hash() == hashlib.sha256(expected).digest()


def test_known_cycle_bill_encoding_and_context() -> None:
    bill = make_bill(total=-2, proof=b"\x09\x08")
    expected = (
        b"\x02"
        + _lp(b"meter-1")
        + _lp(b"2026-11-01")
        + _lp(b"2026-11-03")
        + struct.pack(">I", 3)
        + H1
        + H2
        + H3
        + b"\x07" * 32
        + struct.pack(">q", -2)
        + _lp(b"\x09\x08")
    )
    assert bill.encode() == expected
    context = (
        b"zkgrid/cycle-bill v1"
        + _lp(b"meter-1")
        + _lp(b"2026-11-01")
        + _lp(b"2026-11-03")
        + struct.pack(">I", 3)
        + H1
        + H2
        + H3
        + b"\x07" * 32
    )
    assert bill.proof_context() == context
    made = cycle_bill_proof_context(
        "meter-1", "2026-11-01", "2026-11-03", [H1, H2, H3], b"\x07" * 32
    )
    assert made == context
    # the context changes with every field it binds
    assert make_bill(meter_id="meter-2").proof_context() != context
    assert make_bill(batch_hashes=(H2, H1, H3)).proof_context() != context
    assert make_bill(tariff_hash=b"\x08" * 32).proof_context() != context
    with pytest.raises(RecordFormatError):
        cycle_bill_proof_context("meter-1", "2026-11-01", "2026-11-03", [H1, H2], b"\x07" * 32)
    with pytest.raises(RecordFormatError):
        cycle_bill_proof_context("meter-1", "2026-11-01", "2026-11-03", [H1, H2, b"x"], H1)
    with pytest.raises(RecordFormatError):
        cycle_bill_proof_context("meter 1", "2026-11-01", "2026-11-01", [H1], H1)


def test_version_1_records_keep_their_classes() -> None:
    v1 = Tariff("2026-11-01", 720, "EUR", 0, (1, 2), (0, 0))
    assert decode_record(v1.to_entry()) == v1
    assert record_type(EntryKind.TARIFF, v1.encode()) is Tariff
    # an unknown version goes to the version-1 class, whose strict decoding refuses it
    for version in (0, 3, 255):
        data = bytes([version]) + v1.encode()[1:]
        assert record_type(EntryKind.TARIFF, data) is Tariff
        with pytest.raises(RecordFormatError, match="unknown version"):
            decode_record(Entry(EntryKind.TARIFF, data))
    with pytest.raises(RecordFormatError):
        decode_record(Entry(EntryKind.TARIFF, b""))
    with pytest.raises(RecordFormatError, match="carries no settlement record"):
        record_type(EntryKind.WITNESS_KEY, b"\x01")
    # a version-2 payload of the other kind
    with pytest.raises(RecordFormatError):
        decode_record(Entry(EntryKind.BILL, make_tariff().encode()))
    with pytest.raises(RecordFormatError):
        decode_record(Entry(EntryKind.READING_BATCH, make_tariff().encode()))


# --------------------------------------------------------------------------- strict decoding


@pytest.mark.parametrize("factory", [make_tariff, make_bill])
def test_decode_rejects_truncation_extension_and_versions(factory: Callable[[], Any]) -> None:
    record = factory()
    data = record.encode()
    cls = type(record)
    for cut in range(len(data)):
        with pytest.raises(RecordFormatError):
            cls.decode(data[:cut])
    with pytest.raises(RecordFormatError, match="trailing"):
        cls.decode(data + b"\x00")
    for version in (0, 1, 3, 255):
        with pytest.raises(RecordFormatError):
            cls.decode(bytes([version]) + data[1:])
    with pytest.raises(RecordFormatError):
        cls.decode("not bytes")


def test_decode_refuses_meters_out_of_canonical_order() -> None:
    data = make_tariff(meters=("m-1", "m-2")).encode()
    swapped = data.replace(_lp(b"m-1") + _lp(b"m-2"), _lp(b"m-2") + _lp(b"m-1"))
    assert swapped != data
    with pytest.raises(RecordFormatError, match="strictly ascending"):
        CycleTariff.decode(swapped)
    repeated = data.replace(_lp(b"m-1") + _lp(b"m-2"), _lp(b"m-1") + _lp(b"m-1"))
    with pytest.raises(RecordFormatError, match="strictly ascending"):
        CycleTariff.decode(repeated)


def test_decode_refuses_counts_beyond_the_bounds_before_reading() -> None:
    data = make_tariff().encode()
    zero_meters = _lp(b"residential") + struct.pack(">I", 0)
    huge = data.replace(zero_meters, _lp(b"residential") + struct.pack(">I", MAX_PLAN_METERS + 1))
    with pytest.raises(RecordFormatError, match="more than 10000"):
        CycleTariff.decode(huge)
    tiers = struct.pack(">IQQ", 3, 0, 100)
    assert data.count(tiers) == 1
    with pytest.raises(RecordFormatError, match="more than 8"):
        CycleTariff.decode(data.replace(tiers, struct.pack(">IQQ", 9, 0, 100)))
    bill = make_bill().encode()
    with pytest.raises(RecordFormatError, match="more than 31"):
        CycleBill.decode(bill.replace(struct.pack(">I", 3) + H1, struct.pack(">I", 32) + H1))
    # a count within the bounds that disagrees with the cycle
    with pytest.raises(RecordFormatError, match="3 periods"):
        CycleBill.decode(bill.replace(struct.pack(">I", 3) + H1 + H2, struct.pack(">I", 2) + H1))
    proof = struct.pack(">I", 700)
    with pytest.raises(RecordFormatError, match="longer than 4096"):
        CycleBill.decode(bill.replace(proof, struct.pack(">I", 4097)))
    with pytest.raises(RecordFormatError, match="empty"):
        CycleBill.decode(bill[: -(700 + 4)] + struct.pack(">I", 0))


def test_decode_refuses_bad_field_values() -> None:
    data = make_tariff().encode()
    with pytest.raises(RecordFormatError, match="ISO 4217"):
        CycleTariff.decode(data.replace(b"EUR", b"eur"))
    with pytest.raises(RecordFormatError, match="before it starts"):
        CycleTariff.decode(data.replace(b"2026-11-02", b"2026-10-30"))
    big_price = data.replace(struct.pack(">IQQ", 2, 10, 20), struct.pack(">IQQ", 2, 10, 2**64 - 1))
    with pytest.raises(RecordFormatError, match="export_credit"):
        CycleTariff.decode(big_price)


# --------------------------------------------------------------------------- validation

BAD_TARIFFS: list[tuple[dict[str, Any], str]] = [
    ({"plan": ""}, "plan"),
    ({"plan": "x" * 65}, "plan"),
    ({"plan": "tiered plan"}, "plan"),
    ({"plan": 7}, "plan"),
    ({"meters": ["m-1"]}, "tuple"),
    ({"meters": ("m-2", "m-1")}, "strictly ascending"),
    ({"meters": ("m-1", "m-1")}, "strictly ascending"),
    ({"meters": ("m 1",)}, "meter id"),
    ({"meters": tuple(f"m-{i:05d}" for i in range(MAX_PLAN_METERS + 1))}, "at most 10000"),
    ({"first_period": "2026-11-03"}, "before it starts"),
    ({"last_period": "2026-12-02"}, "at most 31 periods"),
    ({"first_period": "2026-02-30"}, "calendar date"),
    ({"last_period": 20261102}, "YYYY-MM-DD"),
    ({"interval_minutes": 7}, "divide 1440"),
    ({"interval_minutes": 2, "import_price": (0,) * 720, "export_credit": (0,) * 720}, "3 minutes"),
    ({"currency": "eur"}, "ISO 4217"),
    ({"fixed_charge": MAX_FIXED_CHARGE + 1}, "fixed_charge"),
    ({"fixed_charge": 1.5}, "fixed_charge"),
    ({"import_price": [0, 0]}, "tuple"),
    ({"import_price": (0,)}, "needs 2 rates"),
    ({"import_price": (0, -1)}, r"import_price\[1\]"),
    ({"export_credit": (MAX_RATE + 1, 0)}, r"export_credit\[0\]"),
    ({"export_credit": (True, 0)}, "integer"),
    ({"tiers": [(0, 1)]}, "tuple"),
    ({"tiers": tuple((i, 1) for i in range(MAX_TIERS + 1))}, "at most 8 tiers"),
    ({"tiers": ((1, 100),)}, "first tier must start at 0"),
    ({"tiers": ((0, 100), (0, 200))}, "strictly increasing"),
    ({"tiers": ((0, 100), (500, 200), (400, 300))}, "strictly increasing"),
    ({"tiers": ((0, 100), (MAX_TIER_START + 1, 200))}, "start_wh"),
    ({"tiers": ((0, MAX_RATE + 1),)}, r"tiers\[0\] price"),
    ({"tiers": ((0, 100), (10, 300), (20, 200))}, "monotone"),
    ({"tiers": ((0, 300), (10, 100), (20, 200))}, "monotone"),
    ({"tiers": ((0,),)}, "pair"),
    ({"tiers": ((0, 1, 2),)}, "pair"),
    ({"tiers": ((0, "1"),)}, "integer"),
    ({"demand_charge": -1}, "demand_charge"),
    ({"demand_charge": MAX_DEMAND_CHARGE + 1}, "demand_charge"),
    ({"demand_charge": 1_000}, "multiple of 12000"),
]


@pytest.mark.parametrize(("over", "message"), BAD_TARIFFS)
def test_cycle_tariff_refuses(over: dict[str, Any], message: str) -> None:
    with pytest.raises(RecordFormatError, match=message):
        make_tariff(**over)


BAD_BILLS: list[tuple[dict[str, Any], str]] = [
    ({"meter_id": ""}, "meter id"),
    ({"last_period": "2026-10-31"}, "before it starts"),
    ({"last_period": "2026-12-02"}, "at most 31"),
    ({"batch_hashes": [H1, H2, H3]}, "tuple"),
    ({"batch_hashes": (H1, H2)}, "3 periods; the bill names 2"),
    ({"batch_hashes": (H1, H2, H3, H1)}, "names 4"),
    ({"batch_hashes": (H1, H2, b"\x00" * 31)}, r"batch_hashes\[2\] must be 32 bytes"),
    ({"batch_hashes": (H1, H2, "x" * 32)}, "bytes"),
    ({"tariff_hash": b"\x00" * 33}, "tariff_hash"),
    ({"total": 2**63}, "total"),
    ({"total": -(2**63) - 1}, "total"),
    ({"proof": b""}, "empty"),
    ({"proof": b"\x00" * (MAX_CIRCUIT_PROOF_BYTES + 1)}, "longer than 4096"),
    ({"proof": bytearray(b"\x01")}, "bytes"),
]


@pytest.mark.parametrize(("over", "message"), BAD_BILLS)
def test_cycle_bill_refuses(over: dict[str, Any], message: str) -> None:
    with pytest.raises(RecordFormatError, match=message):
        make_bill(**over)


def test_cycle_bill_limits_are_accepted() -> None:
    month = cycle_periods("2026-01-01", "2026-01-31")
    assert len(month) == MAX_CYCLE_PERIODS
    bill = make_bill(
        first_period=month[0],
        last_period=month[-1],
        batch_hashes=(H1,) * 31,
        total=-(2**63),
        proof=b"\xff" * MAX_CIRCUIT_PROOF_BYTES,
    )
    assert CycleBill.decode(bill.encode()) == bill
    assert bill.periods == month
    one = make_bill(first_period="2026-11-01", last_period="2026-11-01", batch_hashes=(H1,))
    assert one.periods == ("2026-11-01",)


def test_cycle_periods_cross_months_and_leap_days() -> None:
    assert cycle_periods("2028-02-28", "2028-03-01") == ("2028-02-28", "2028-02-29", "2028-03-01")
    assert make_tariff(first_period="2026-12-31", last_period="2027-01-01").periods == (
        "2026-12-31",
        "2027-01-01",
    )


@pytest.mark.parametrize(
    ("minutes", "multiple"), [(3, 50), (15, 250), (60, 1_000), (240, 4_000), (1440, 24_000)]
)
def test_demand_charge_must_give_a_whole_rate_per_wh(minutes: int, multiple: int) -> None:
    t = 1440 // minutes
    base = {"interval_minutes": minutes, "import_price": (0,) * t, "export_credit": (0,) * t}
    tariff = make_tariff(**base, demand_charge=7 * multiple)
    # kW = Wh * 60 / minutes / 1000: the charge per Wh of the peak interval
    assert tariff.demand_rate_per_wh * minutes * 1000 == 7 * multiple * 60
    with pytest.raises(RecordFormatError, match=f"multiple of {multiple} micro-currency per kW"):
        make_tariff(**base, demand_charge=7 * multiple + multiple // 2)


def test_the_example_demand_charge_per_kw() -> None:
    """12.50 per kW on 15-minute intervals: 50,000 micro-currency per Wh of the peak."""
    tariff = make_tariff(
        interval_minutes=15,
        import_price=(0,) * 96,
        export_credit=(0,) * 96,
        demand_charge=12_500_000,
    )
    assert tariff.demand_rate_per_wh == 50_000
    # a 40 kW peak: 10,000 Wh in 15 minutes, 40 * 12.50 = 500 currency units
    assert 10_000 * tariff.demand_rate_per_wh == 500_000_000


# --------------------------------------------------------------------------- bounds


def test_bill_bounds_are_the_extreme_bills() -> None:
    tariff = make_tariff(import_price=(7, 9), tiers=((0, 100), (1_000, 200)), demand_charge=24_000)
    low, high = tariff.bill_bounds()
    v = MAX_READING
    everything = tariff.bill_breakdown([[v, v], [v, v]], [[0, 0], [0, 0]])
    nothing = tariff.bill_breakdown([[0, 0], [0, 0]], [[v, v], [v, v]])
    assert (low, high) == (nothing.total, everything.total)
    assert high == 5_000 + 2 * v * 16 + (1_000 * 100 + (4 * v - 1_000) * 200) + 2 * v
    assert low == 5_000 - 2 * v * 30


def _month_3min(**over: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "first_period": "2026-12-01",
        "last_period": "2026-12-31",
        "interval_minutes": 3,
        "import_price": (0,) * 480,
        "export_credit": (0,) * 480,
        "tiers": (),
        "fixed_charge": 0,
    }
    fields.update(over)
    return fields


def test_the_bounds_hold_for_31_days_of_3_minute_intervals() -> None:
    """The largest cycle: 14,880 import values below 2^32. Rates of ~144 per kWh fit."""
    values = 31 * 480 * MAX_READING
    assert values < MAX_TIER_START
    rate = (2**63 - 1) // values  # the largest flat rate whose worst bill fits
    fits = make_tariff(**_month_3min(import_price=(rate,) * 480))
    assert fits.bill_bounds()[1] <= 2**63 - 1
    assert 144_000 < rate < 145_000  # micro-currency per Wh: about 144 per kWh
    with pytest.raises(RecordFormatError, match="i64"):
        make_tariff(**_month_3min(import_price=(rate + 1,) * 480))
    with pytest.raises(RecordFormatError, match="i64"):
        make_tariff(**_month_3min(export_credit=(rate + 1,) * 480))
    with pytest.raises(RecordFormatError, match="i64"):
        make_tariff(**_month_3min(tiers=((0, rate + 1),)))
    with pytest.raises(RecordFormatError, match="i64"):  # tiers on top of the TOU price
        make_tariff(**_month_3min(import_price=(rate,) * 480, tiers=((0, 0), (1, 1))))
    with pytest.raises(RecordFormatError, match="i64"):  # the demand charge alone
        make_tariff(**_month_3min(demand_charge=50 * 2**34))
    with pytest.raises(RecordFormatError, match="i64"):  # the fixed charge on top
        make_tariff(**_month_3min(import_price=(rate,) * 480, fixed_charge=MAX_FIXED_CHARGE))
    # MAX_RATE stays the bound of a rate: on 15-minute days it fits a whole month
    month_15 = make_tariff(
        first_period="2026-12-01",
        last_period="2026-12-31",
        interval_minutes=15,
        import_price=(MAX_RATE,) * 96,
        export_credit=(MAX_RATE,) * 96,
        tiers=(),
    )
    low, high = month_15.bill_bounds()
    assert low >= -(2**63)
    assert high < 2**63


# --------------------------------------------------------------------------- bills by hand


def test_inclining_tiers_by_hand() -> None:
    tariff = make_tariff()  # tiers 0-1000 Wh at 100, 1000-3000 at 200, above at 400
    assert tariff.tier_kind == "inclining"
    b = tariff.bill_breakdown([[400, 300], [500, 600]], [[0, 50], [5, 0]])
    assert b == CycleBillBreakdown(
        fixed=5_000,
        time_of_use=0,
        total_import=1_800,
        tier_wh=(1_000, 800, 0),
        tier_charges=(100_000, 160_000, 0),
        demand_wh=600,
        demand_charge=0,
        export_credit=50 * 20 + 5 * 10,
    )
    assert b.tier_charge == 260_000
    assert b.total == 5_000 + 260_000 - 1_050
    # into the top tier: 4,200 Wh = 1,000 + 2,000 + 1,200
    top = tariff.bill_breakdown([[1_000, 1_100], [1_000, 1_100]], [[0, 0], [0, 0]])
    assert top.tier_wh == (1_000, 2_000, 1_200)
    assert top.tier_charge == 100_000 + 400_000 + 480_000
    # exactly at a threshold: the next tier is empty
    edge = tariff.bill_breakdown([[500, 500], [0, 0]], [[0, 0], [0, 0]])
    assert edge.tier_wh == (1_000, 0, 0)


def test_declining_tiers_by_hand() -> None:
    tariff = make_tariff(tiers=((0, 300), (1_000, 200), (2_000, 100)))
    assert tariff.tier_kind == "declining"
    b = tariff.bill_breakdown([[1_000, 500], [600, 400]], [[0, 0], [0, 0]])
    assert b.total_import == 2_500
    assert b.tier_wh == (1_000, 1_000, 500)
    assert b.tier_charges == (300_000, 200_000, 50_000)
    assert b.total == 5_000 + 550_000


def test_demand_charge_by_hand() -> None:
    """12 per kW on 240-minute intervals: a 2,000 Wh interval is 0.5 kW, 6 currency units."""
    tariff = make_tariff(
        interval_minutes=240,
        import_price=(0,) * 6,
        export_credit=(0,) * 6,
        tiers=(),
        demand_charge=12_000_000,
    )
    assert tariff.demand_rate_per_wh == 3_000
    assert tariff.tier_kind is None
    imports = [[0, 100, 2_000, 50, 0, 0], [1_999, 0, 0, 0, 0, 7]]
    b = tariff.bill_breakdown(imports, [[0] * 6, [0] * 6])
    assert (b.demand_wh, b.demand_charge) == (2_000, 6_000_000)
    assert b.tier_wh == ()
    assert b.tier_charges == ()
    assert b.tier_charge == 0
    assert b.total == 5_000 + 6_000_000


def test_time_of_use_tiers_demand_and_exports_by_hand() -> None:
    tariff = make_tariff(
        last_period="2026-11-03",
        interval_minutes=480,
        import_price=(100, 250, 180),
        export_credit=(0, 80, 40),
        tiers=((0, 0), (2_000, 50), (5_000, 120)),
        demand_charge=8_000_000,  # 8 per kW; 480-minute intervals: 1,000 micro per Wh
        fixed_charge=-3_000,
    )
    imports = [[300, 900, 400], [0, 1_200, 800], [600, 700, 500]]
    exports = [[0, 200, 10], [0, 0, 0], [5, 300, 0]]
    b = tariff.bill_breakdown(imports, exports)
    tou = 100 * (300 + 0 + 600) + 250 * (900 + 1_200 + 700) + 180 * (400 + 800 + 500)
    credit = 80 * (200 + 300) + 40 * 10
    assert b.time_of_use == tou == 1_096_000
    assert b.export_credit == credit == 40_400
    assert b.total_import == 5_400
    assert b.tier_wh == (2_000, 3_000, 400)
    assert b.tier_charges == (0, 150_000, 48_000)
    assert (b.demand_wh, b.demand_charge) == (1_200, 1_200_000)
    assert b.total == -3_000 + 1_096_000 + 198_000 + 1_200_000 - 40_400


def test_tier_kinds() -> None:
    assert make_tariff(tiers=()).tier_kind is None
    assert make_tariff(tiers=((0, 5),)).tier_kind == "inclining"
    assert make_tariff(tiers=((0, 5), (10, 5))).tier_kind == "inclining"  # all equal
    assert make_tariff(tiers=((0, 5), (10, 5), (20, 4))).tier_kind == "declining"
    assert make_tariff(tiers=(Tier(0, 1), Tier(10, 2))).tiers == ((0, 1), (10, 2))


@pytest.mark.parametrize(
    ("imports", "exports", "message"),
    [
        ([[0, 0]], [[0, 0], [0, 0]], r"imports: one list of readings per period \(2\)"),
        ([[0, 0], [0, 0]], [[0, 0], [0]], r"exports\[1\]: one reading per interval \(2\)"),
        ([[0, 0], [0, -1]], [[0, 0], [0, 0]], r"imports\[1\]\[1\] is outside"),
        ([[0, 0], [0, 2**32]], [[0, 0], [0, 0]], r"imports\[1\]\[1\] is outside"),
        ([[0, 0], [0, 1.0]], [[0, 0], [0, 0]], "must be an integer"),
        ([[0, 0], [True, 0]], [[0, 0], [0, 0]], "must be an integer"),
        ("ab", [[0, 0], [0, 0]], "one list"),
    ],
)
def test_bill_breakdown_refuses_bad_readings(imports: Any, exports: Any, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message) as info:
        make_tariff().bill_breakdown(imports, exports)
    assert "2147483648" not in str(info.value)
    assert "4294967296" not in str(info.value)


def test_plan_membership() -> None:
    listed = make_tariff(meters=("a", "m-1", "m-3"))
    assert listed.lists("m-1")
    assert listed.applies_to("m-1")
    assert not listed.lists("m-2")
    assert not listed.applies_to("m-2")
    assert not listed.lists("zz")
    assert not listed.is_default
    default = make_tariff()
    assert default.is_default
    assert default.applies_to("anyone")
    assert not default.lists("anyone")
    assert listed.overlaps(make_tariff(first_period="2026-11-02", last_period="2026-11-05"))
    assert not listed.overlaps(make_tariff(first_period="2026-11-03", last_period="2026-11-05"))
    assert listed.overlaps(make_bill())


def test_records_are_frozen_and_hashable() -> None:
    tariff, bill = make_tariff(), make_bill()
    with pytest.raises(AttributeError):
        tariff.plan = "other"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        bill.total = 0  # type: ignore[misc]
    assert len({tariff, make_tariff(), bill, make_bill()}) == 2
