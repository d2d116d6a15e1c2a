"""A seeded community of prosumers: realistic daily load and PV profiles, and a tariff.

Everything is deterministic in ``seed`` (simulation data, not key material:
``random.Random`` is the right tool). Energies are integer Wh per interval.

Load (average power per interval): a base load, a morning peak (around 07:30),
a small midday bump, an evening peak (around 19:00), multiplicative noise and
occasional appliance spikes (kettle, oven, washing machine).

PV (rooftop panels for some prosumers): a clear-sky bell between sunrise and
sunset (day length and noon elevation from the date at the community's latitude,
solar noon at 12:00 UTC), scaled by the installation's kWp and attenuated by the
day's cloudiness plus passing clouds per interval.

Businesses (:func:`make_businesses`, for the billing-cycle demo): a shop's or a
workshop's load over its opening hours, with machines (ovens, compressors) that run
for a while and set the cycle's peak, little at night; some have larger PV roofs.

Each interval's net flow is what the meter records: ``import = max(load - pv, 0)``
and ``export = max(pv - load, 0)``.

Tariffs: :func:`time_of_use_tariff` (a day's, records version 1) and, for a billing
cycle (records version 2), :func:`tiered_plan` (the default plan: inclining blocks of
the cycle's import) and :func:`demand_plan` (a plan listing the businesses: time of use
and a charge per kW of the cycle's highest interval import).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date

from meter.readings import DayReadings, intervals_per_day, parse_period
from settlement.records import CycleTariff, Tariff, Tier

__all__ = [
    "LATITUDE_DEG",
    "Prosumer",
    "day_readings",
    "demand_plan",
    "forecast_readings",
    "make_businesses",
    "make_community",
    "tiered_plan",
    "time_of_use_tariff",
]

#: The simulated community's latitude (central Europe).
LATITUDE_DEG = 48.0

_FIRST_NAMES = (
    "Ada", "Bram", "Chiara", "Dmitri", "Elif", "Farah", "Goran", "Hana", "Ines", "Jonas",
    "Kaito", "Lena", "Mateo", "Noor", "Oskar", "Priya", "Quentin", "Rosa", "Sven", "Tomas",
    "Ugo", "Vera", "Wim", "Ximena", "Yusuf", "Zofia",
)  # fmt: skip


@dataclass(frozen=True)
class Prosumer:
    """One household of the community and its meter."""

    index: int
    name: str
    meter_id: str
    daily_kwh: float  #: typical consumption per day
    pv_kwp: float  #: rooftop PV peak power, 0 without panels
    evening_weight: float  #: how strongly the household's load peaks in the evening
    #: ``"household"`` or ``"business"`` (opening hours, machines: :func:`make_businesses`)
    kind: str = "household"

    @property
    def has_pv(self) -> bool:
        return self.pv_kwp > 0

    @property
    def is_business(self) -> bool:
        return self.kind == "business"


def make_community(count: int, seed: int = 0, *, pv_share: float = 0.45) -> list[Prosumer]:
    """``count`` prosumers, about ``pv_share`` of them with solar panels."""
    if count < 1:
        raise ValueError("a community has at least one prosumer")
    rng = random.Random(f"zkgrid-community/{seed}")  # noqa: S311 - simulation, not secrets
    out = []
    for i in range(count):
        first = _FIRST_NAMES[i % len(_FIRST_NAMES)]
        suffix = "" if i < len(_FIRST_NAMES) else f" {i // len(_FIRST_NAMES) + 1}"
        has_pv = rng.random() < pv_share
        out.append(
            Prosumer(
                index=i,
                name=first + suffix,
                meter_id=f"meter-{i + 1:04d}",
                daily_kwh=round(rng.uniform(5.0, 16.0), 2),
                pv_kwp=round(rng.uniform(3.0, 9.0), 1) if has_pv else 0.0,
                evening_weight=rng.uniform(0.7, 1.4),
            )
        )
    return out


_BUSINESS_NAMES = (
    "Bakery", "Workshop", "Print shop", "Laundry", "Café", "Joinery", "Florist", "Garage",
)  # fmt: skip


def make_businesses(count: int, seed: int = 0) -> list[Prosumer]:
    """``count`` small businesses (meters ``business-01``...), some with large PV roofs."""
    if count < 0:
        raise ValueError("a negative number of businesses")
    rng = random.Random(f"zkgrid-businesses/{seed}")  # noqa: S311 - simulation, not secrets
    out = []
    for i in range(count):
        name = _BUSINESS_NAMES[i % len(_BUSINESS_NAMES)]
        suffix = "" if i < len(_BUSINESS_NAMES) else f" {i // len(_BUSINESS_NAMES) + 1}"
        has_pv = rng.random() < 0.5
        out.append(
            Prosumer(
                index=i,
                name=name + suffix,
                meter_id=f"business-{i + 1:02d}",
                daily_kwh=round(rng.uniform(60.0, 180.0), 1),
                pv_kwp=round(rng.uniform(10.0, 30.0), 1) if has_pv else 0.0,
                evening_weight=rng.uniform(0.0, 1.0),  # here: how early the day starts
                kind="business",
            )
        )
    return out


def _bump(hour: float, centre: float, width: float) -> float:
    return math.exp(-0.5 * ((hour - centre) / width) ** 2)


def _load_shape(hour: float, evening_weight: float) -> float:
    """Relative load at ``hour`` (not normalised)."""
    return (
        0.35
        + 0.9 * _bump(hour, 7.5, 1.0)
        + 0.35 * _bump(hour, 12.5, 1.2)
        + 1.6 * evening_weight * _bump(hour, 19.0, 1.6)
        + 0.25 * _bump(hour, 22.5, 0.8)
    )


def _solar(day: date) -> tuple[float, float]:
    """(day length in hours, sine of the noon elevation) at :data:`LATITUDE_DEG`."""
    lat = math.radians(LATITUDE_DEG)
    decl = math.radians(23.44) * math.sin(2 * math.pi * (day.timetuple().tm_yday - 81) / 365.0)
    cos_h = max(-1.0, min(1.0, -math.tan(lat) * math.tan(decl)))
    day_length = 2 * math.degrees(math.acos(cos_h)) / 15.0
    noon_elevation = math.pi / 2 - lat + decl
    return day_length, max(0.05, math.sin(noon_elevation))


def day_readings(
    prosumer: Prosumer, period: str, interval_minutes: int = 15, seed: int = 0
) -> DayReadings:
    """The prosumer's meter readings for ``period`` (deterministic in the arguments)."""
    day = parse_period(period)
    t_count = intervals_per_day(interval_minutes)
    rng = random.Random(  # noqa: S311 - simulation, not secrets
        f"zkgrid-readings/{seed}/{prosumer.meter_id}/{period}/{interval_minutes}"
    )
    hours = [(i + 0.5) * interval_minutes / 60.0 for i in range(t_count)]
    if prosumer.is_business:
        shape = [_business_shape(h, prosumer.evening_weight) for h in hours]
    else:
        shape = [_load_shape(h, prosumer.evening_weight) for h in hours]
    # Scale so the day's expected consumption is daily_kwh (±15% day to day).
    day_kwh = prosumer.daily_kwh * rng.uniform(0.85, 1.15)
    scale_w = day_kwh * 1000.0 / (sum(shape) * interval_minutes / 60.0)
    load_w = []
    for s in shape:
        w = s * scale_w * rng.lognormvariate(0.0, 0.18)
        if prosumer.is_business:
            if s > 0.5 and rng.random() < 0.08 * interval_minutes / 15.0:  # a machine runs
                w += rng.choice((6_000.0, 9_000.0, 14_000.0))
        elif rng.random() < 0.04 * interval_minutes / 15.0:  # an appliance runs a while
            w += rng.choice((1800.0, 2200.0, 900.0))
        load_w.append(w)

    pv_w = [0.0] * t_count
    if prosumer.has_pv:
        day_length, noon_sin = _solar(day)
        sunrise = 12.0 - day_length / 2
        cloudiness = rng.betavariate(1.4, 2.2)  # 0 clear ... 1 overcast
        for i, h in enumerate(hours):
            x = (h - sunrise) / day_length
            if not 0.0 < x < 1.0:
                continue
            clear = math.sin(math.pi * x) ** 1.6 * noon_sin * 0.85  # system losses
            passing = 1.0 - cloudiness * rng.uniform(0.4, 1.0)
            pv_w[i] = max(0.0, prosumer.pv_kwp * 1000.0 * clear * passing)

    hours_per_interval = interval_minutes / 60.0
    imports = []
    exports = []
    for load, pv in zip(load_w, pv_w, strict=True):
        net_wh = (load - pv) * hours_per_interval
        imports.append(max(0, round(net_wh)))
        exports.append(max(0, round(-net_wh)))
    return DayReadings(period, interval_minutes, tuple(imports), tuple(exports))


def forecast_readings(
    prosumer: Prosumer, period: str, interval_minutes: int = 15, seed: int = 0
) -> DayReadings:
    """What the prosumer expects of ``period`` the day before (the market demo's orders): the
    same model as :func:`day_readings`, another draw (another day's clouds, appliances), so
    the metered day differs from the expected one as a forecast does."""
    return day_readings(prosumer, period, interval_minutes, _FORECAST_SEED + seed)


#: The forecast's draw (:func:`forecast_readings`): distinct from every ordinary seed's.
_FORECAST_SEED = 1_000_003


def _business_shape(hour: float, early: float) -> float:
    """Relative load of a business at ``hour``: standby at night, opening hours from about
    6 to 18 (earlier for larger ``early``), a midday peak."""
    opens = 7.0 - 2.0 * early
    closes = 18.0
    if opens <= hour < closes:
        return 1.0 + 0.6 * _bump(hour, 11.5, 2.0)
    return 0.12


def _cycle_days(first_period: str, last_period: str) -> int:
    return (parse_period(last_period) - parse_period(first_period)).days + 1


def tiered_plan(
    first_period: str, last_period: str, interval_minutes: int = 15
) -> CycleTariff:
    """The default plan (every meter no other plan lists): inclining blocks of the cycle's
    import, 0.22/kWh up to 6 kWh a day of the cycle, 0.28 up to 12 kWh a day, 0.38 above
    (no time-of-use price on top); feed-in 0.08/kWh; 0.30 a day fixed. EUR."""
    days = _cycle_days(first_period, last_period)
    t_count = intervals_per_day(interval_minutes)
    return CycleTariff(
        plan="residential-tiered",
        meters=(),
        first_period=first_period,
        last_period=last_period,
        interval_minutes=interval_minutes,
        currency="EUR",
        fixed_charge=300_000 * days,
        import_price=(0,) * t_count,
        export_credit=(80,) * t_count,
        tiers=(Tier(0, 220), Tier(6_000 * days, 280), Tier(12_000 * days, 380)),
        demand_charge=0,
    )


def demand_plan(
    first_period: str, last_period: str, meters: list[str], interval_minutes: int = 15
) -> CycleTariff:
    """A plan for ``meters`` (the businesses): 0.09/kWh at night (00-06), 0.14 by day;
    feed-in 0.05/kWh; a demand charge of 0.50 a day of the cycle per kW of the cycle's
    highest interval import (rounded down to what the interval length allows); 1.00 a day
    fixed. EUR."""
    days = _cycle_days(first_period, last_period)
    t_count = intervals_per_day(interval_minutes)
    prices = tuple(
        90 if i * interval_minutes < 6 * 60 else 140 for i in range(t_count)
    )
    # The charge per Wh of the peak, demand_charge * 60 / (minutes * 1000), must be whole.
    step = interval_minutes * 1000 // math.gcd(60, interval_minutes * 1000)
    demand = 500_000 * days // step * step
    return CycleTariff(
        plan="business-demand",
        meters=tuple(sorted(meters)),
        first_period=first_period,
        last_period=last_period,
        interval_minutes=interval_minutes,
        currency="EUR",
        fixed_charge=1_000_000 * days,
        import_price=prices,
        export_credit=(50,) * t_count,
        tiers=(),
        demand_charge=demand,
    )


def time_of_use_tariff(period: str, interval_minutes: int = 15) -> Tariff:
    """Night 00-06 0.16/kWh, day 0.26/kWh, peak 17-21 0.41/kWh; feed-in 0.08/kWh
    (0.06 around midday when everyone exports); 0.45 per day fixed. EUR."""
    parse_period(period)
    t_count = intervals_per_day(interval_minutes)
    prices = []
    credits = []
    for i in range(t_count):
        minute = i * interval_minutes
        if minute < 6 * 60:
            prices.append(160)
        elif 17 * 60 <= minute < 21 * 60:
            prices.append(410)
        else:
            prices.append(260)
        credits.append(60 if 10 * 60 <= minute < 15 * 60 else 80)
    return Tariff(
        period=period,
        interval_minutes=interval_minutes,
        currency="EUR",
        fixed_charge=450_000,
        import_price=tuple(prices),
        export_credit=tuple(credits),
    )
