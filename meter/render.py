"""Text, JSON and CSV for the prosumer's own view (``zkgrid meter readings`` and
``zkgrid meter statement``).

Amounts are exact (:mod:`meter.units`): JSON and CSV carry every amount as an integer
of micro-currency (``*_micro``) and as exact decimal text; energy in Wh. The JSON
documents carry ``"schema": "zkgrid.meter.readings/1"`` or
``"zkgrid.meter.statement/1"``; fields are only ever added to a schema version.

A statement's bills of billing cycles (records version 2) are the document's
``cycle_lines`` (added to ``zkgrid.meter.statement/1``; ``lines`` keeps a day's bills
only), rows of the CSV whose ``period`` is the cycle ``first..last`` (with a cycle bill,
the CSV with ``--detail`` has the columns ``tier_charge_micro``, ``demand_charge_micro``
and ``peak_import_wh`` at its end, empty for a day's bill; without one it is as before)
and a block of the text with the tiers and the demand.

Readings are the prosumer's own: these functions write them to the owner's terminal
or file, never to a log or the service.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from meter.units import format_kwh, format_money, format_rate_per_kwh, micro_to_decimal_text

if TYPE_CHECKING:  # pragma: no cover
    from meter.client import VerifiedReceipt
    from meter.openings import StoredBatch
    from meter.statement import Breakdown, CycleDetailLine, DetailedStatement, DetailLine
    from settlement.records import CycleBillBreakdown, CycleTariff, Tariff

__all__ = [
    "READINGS_SCHEMA",
    "STATEMENT_SCHEMA",
    "cycle_detail_text",
    "cycle_tariff_summary",
    "demand_kw_text",
    "detail_text",
    "interval_starts",
    "readings_csv",
    "readings_document",
    "readings_text",
    "receipt_status",
    "statement_csv",
    "statement_document",
    "statement_json",
    "statement_text",
    "tariff_summary",
]

READINGS_SCHEMA = "zkgrid.meter.readings/1"
STATEMENT_SCHEMA = "zkgrid.meter.statement/1"


def _ts(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def receipt_status(receipt: VerifiedReceipt) -> str:
    """``verified`` only when the pinned log key signed the checkpoint: an unpinned receipt
    proves inclusion in *a* tree, which anyone can make (issue 10 section 5)."""
    return "verified" if receipt.signature_verified else "inclusion only, log key not pinned"


def interval_starts(period: str, interval_minutes: int, count: int) -> list[datetime]:
    """The UTC start of each of ``count`` intervals of ``period`` (``YYYY-MM-DD``)."""
    start = datetime.fromisoformat(period).replace(tzinfo=UTC)
    step = timedelta(minutes=interval_minutes)
    return [start + i * step for i in range(count)]


def _status_text(stored: StoredBatch) -> str:
    if stored.status == "accepted":
        return "accepted by the ledger"
    return "built but not accepted yet: run 'zkgrid meter submit' again"


# --------------------------------------------------------------------------- readings


def readings_document(meter_id: str, stored: StoredBatch) -> dict[str, Any]:
    """The JSON document of one period's readings (schema ``zkgrid.meter.readings/1``)."""
    starts = interval_starts(stored.period, stored.interval_minutes, len(stored.imports))
    return {
        "schema": READINGS_SCHEMA,
        "meter_id": meter_id,
        "period": stored.period,
        "interval_minutes": stored.interval_minutes,
        "status": stored.status,
        "intervals": [
            {"start": _ts(ts), "import_wh": imp, "export_wh": exp}
            for ts, imp, exp in zip(starts, stored.imports, stored.exports, strict=True)
        ],
        "totals": {"import_wh": sum(stored.imports), "export_wh": sum(stored.exports)},
    }


def readings_text(meter_id: str, stored: StoredBatch) -> str:
    starts = interval_starts(stored.period, stored.interval_minutes, len(stored.imports))
    imports, exports = sum(stored.imports), sum(stored.exports)
    width = max(9, len(str(imports)), len(str(exports)))
    lines = [
        f"{meter_id} {stored.period}: {len(starts)} intervals of {stored.interval_minutes}"
        f" minutes, {_status_text(stored)} (from the local opening store)",
        f"{'interval start (UTC)':<22}{'import Wh':>{width + 2}}{'export Wh':>{width + 2}}",
    ]
    for ts, imp, exp in zip(starts, stored.imports, stored.exports, strict=True):
        lines.append(f"{_ts(ts):<22}{imp:>{width + 2}}{exp:>{width + 2}}")
    lines.append(f"{'total':<22}{imports:>{width + 2}}{exports:>{width + 2}}")
    lines.append(f"{'':<22}  import {format_kwh(imports)}, export {format_kwh(exports)}")
    return "\n".join(lines) + "\n"


def readings_csv(stored: StoredBatch) -> str:
    """The readings CSV format ``zkgrid meter submit`` reads (no totals row, so the file
    reads back as it is)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("interval_start", "import_wh", "export_wh"))
    starts = interval_starts(stored.period, stored.interval_minutes, len(stored.imports))
    for ts, imp, exp in zip(starts, stored.imports, stored.exports, strict=True):
        writer.writerow((_ts(ts), imp, exp))
    return out.getvalue()


# --------------------------------------------------------------------------- statement


def _money(micro: int) -> dict[str, Any]:
    return {"micro": micro, "amount": micro_to_decimal_text(micro)}


def _receipt_json(receipt: VerifiedReceipt) -> dict[str, Any]:
    return {
        "ledger_index": receipt.ledger_index,
        "tree_size": receipt.tree_size,
        "root_hash": receipt.root_hash.hex(),
        "signature_verified": receipt.signature_verified,
        "status": receipt_status(receipt),
    }


def _tariff_json(tariff: Tariff, receipt: VerifiedReceipt | None) -> dict[str, Any]:
    return {
        "period": tariff.period,
        "currency": tariff.currency,
        "interval_minutes": tariff.interval_minutes,
        "tariff_hash": tariff.tariff_hash().hex(),
        "fixed_charge": _money(tariff.fixed_charge),
        "import_price_micro_per_wh": list(tariff.import_price),
        "export_credit_micro_per_wh": list(tariff.export_credit),
        "receipt": None if receipt is None else _receipt_json(receipt),
    }


def _breakdown_json(parts: Breakdown) -> dict[str, Any]:
    return {
        "fixed_charge": _money(parts.fixed_charge),
        "energy_charge": _money(parts.energy_charge),
        "feed_in_credit": _money(parts.feed_in_credit),
        "total": _money(parts.total),
        "import_wh": parts.import_wh,
        "export_wh": parts.export_wh,
    }


def _totals_json(totals: dict[str, int]) -> list[dict[str, Any]]:
    return [{"currency": c, **_money(m)} for c, m in sorted(totals.items())]


def _line_json(line: DetailLine, detail: bool) -> dict[str, Any]:
    bill, receipt = line.billed()
    doc: dict[str, Any] = {
        "period": line.period,
        "currency": None if line.tariff is None else line.tariff.currency,
        "bill_total": _money(bill.total),
        "receipt": _receipt_json(receipt),
        "batch_hash": bill.batch_hash.hex(),
        "tariff_hash": bill.tariff_hash.hex(),
    }
    if detail:
        doc["breakdown"] = None if line.breakdown is None else _breakdown_json(line.breakdown)
        doc["tariff"] = (
            None if line.tariff is None else _tariff_json(line.tariff, line.tariff_receipt)
        )
        doc["matches_ledger"] = not line.violations
    return doc


def statement_document(statement: DetailedStatement, *, detail: bool) -> dict[str, Any]:
    """The JSON document of a statement (schema ``zkgrid.meter.statement/1``).

    Every line has the period, currency, the ledger's bill total and its receipt; with
    ``detail`` also the local ``breakdown``, the ``tariff`` used and ``matches_ledger``,
    and the document lists the ``violations`` found (always a list, empty without
    ``detail``). ``cycle_lines`` are the bills of billing cycles: the cycle, the plan, the
    total and the receipt; with ``detail`` the breakdown with its ``tiers`` and
    ``demand``."""
    return {
        "schema": STATEMENT_SCHEMA,
        "meter_id": statement.meter_id,
        "detail": detail,
        "lines": [_line_json(line, detail) for line in statement.lines],
        "cycle_lines": [_cycle_line_json(line, detail) for line in statement.cycle_lines],
        "totals": _totals_json(statement.totals()),
        "violations": [v.to_json() for v in statement.violations] if detail else [],
    }


def statement_json(statement: DetailedStatement, *, detail: bool) -> str:
    return json.dumps(statement_document(statement, detail=detail), indent=2) + "\n"


_CSV_PLAIN = ("period", "currency", "bill_total_micro", "bill_total", "ledger_index", "receipt")
_CSV_DETAIL = (
    "period",
    "currency",
    "fixed_charge_micro",
    "energy_charge_micro",
    "feed_in_credit_micro",
    "local_total_micro",
    "bill_total_micro",
    "bill_total",
    "import_wh",
    "export_wh",
    "tariff_hash",
    "ledger_index",
    "receipt",
    "check",
)
#: The detail CSV's columns of a cycle's parts, after :data:`_CSV_DETAIL`, only when the
#: statement has a cycle bill (so a statement of days reads exactly as before).
_CSV_CYCLE = ("tier_charge_micro", "demand_charge_micro", "peak_import_wh")


def statement_csv(statement: DetailedStatement, *, detail: bool) -> str:
    """One row per bill (a day's, then the cycles', whose ``period`` is ``first..last``);
    with ``detail`` the breakdown in micro-units and the check (``ok`` or the violations'
    reasons, ``;``-separated); for a cycle ``energy_charge_micro`` is the time-of-use
    charge, and the tiers' and the demand charge have their own columns (present when the
    statement has a cycle bill, empty on a day's row)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    cycles = bool(statement.cycle_lines)
    extra: tuple[str, ...] = ("", "", "") if cycles else ()
    writer.writerow((*_CSV_DETAIL, *(_CSV_CYCLE if cycles else ())) if detail else _CSV_PLAIN)
    for line in statement.lines:
        bill, receipt = line.billed()
        currency = "" if line.tariff is None else line.tariff.currency
        total = (bill.total, micro_to_decimal_text(bill.total))
        status = (receipt.ledger_index, receipt_status(receipt))
        if not detail:
            writer.writerow((line.period, currency, *total, *status))
            continue
        parts = line.breakdown
        writer.writerow(
            (
                line.period,
                currency,
                *(
                    ("", "", "", "")
                    if parts is None
                    else (
                        parts.fixed_charge,
                        parts.energy_charge,
                        parts.feed_in_credit,
                        parts.total,
                    )
                ),
                *total,
                *(("", "") if parts is None else (parts.import_wh, parts.export_wh)),
                bill.tariff_hash.hex(),
                *status,
                ";".join(str(v.reason) for v in line.violations) or "ok",
                *extra,
            )
        )
    for cycle in statement.cycle_lines:
        total = (cycle.bill.total, micro_to_decimal_text(cycle.bill.total))
        status = (cycle.receipt.ledger_index, receipt_status(cycle.receipt))
        if not detail:
            writer.writerow((cycle.cycle, cycle.currency, *total, *status))
            continue
        c = cycle.breakdown
        writer.writerow(
            (
                cycle.cycle,
                cycle.currency,
                *(
                    ("", "", "", "")
                    if c is None
                    else (c.fixed, c.time_of_use, c.export_credit, c.total)
                ),
                *total,
                *(("", "") if c is None else (c.total_import, _export_wh(cycle))),
                cycle.bill.tariff_hash.hex(),
                *status,
                ";".join(str(v.reason) for v in cycle.violations) or "ok",
                *(("", "", "") if c is None else (c.tier_charge, c.demand_charge, c.demand_wh)),
            )
        )
    return out.getvalue()


def tariff_summary(tariff: Tariff) -> str:
    """``EUR, 96 x 15 min, import 0.20-0.35 EUR/kWh, feed-in 0.08 EUR/kWh, fixed 0.50 EUR``."""

    def span(rates: Sequence[int]) -> str:
        lo, hi = min(rates), max(rates)
        if lo == hi:
            return format_rate_per_kwh(lo, tariff.currency)
        low = micro_to_decimal_text(lo * 1000)
        return f"{low}-{format_rate_per_kwh(hi, tariff.currency)}"

    return (
        f"{tariff.currency}, {tariff.intervals} x {tariff.interval_minutes} min, import"
        f" {span(tariff.import_price)}, feed-in {span(tariff.export_credit)}, fixed"
        f" {format_money(tariff.fixed_charge, tariff.currency)}"
    )


def detail_text(line: DetailLine) -> list[str]:
    """The breakdown lines of one period (indented), the tariff used and the check."""
    out: list[str] = []
    parts = line.breakdown
    tariff = line.tariff
    if tariff is None:
        out.append("  no tariff is published for this period")
    if parts is not None:
        cur = parts.currency
        width = max(
            len(format_money(m, cur))
            for m in (parts.fixed_charge, parts.energy_charge, -parts.feed_in_credit, parts.total)
        )
        out += [
            f"  {'fixed charge':<16}{'':>16}  {format_money(parts.fixed_charge, cur):>{width}}",
            f"  {'energy charge':<16}{format_kwh(parts.import_wh):>16}"
            f"  {format_money(parts.energy_charge, cur):>{width}}",
            f"  {'feed-in credit':<16}{format_kwh(parts.export_wh):>16}"
            f"  {format_money(-parts.feed_in_credit, cur):>{width}}",
            f"  {'total (local)':<16}{'':>16}  {format_money(parts.total, cur):>{width}}",
        ]
    elif line.stored is None:
        out.append("  no local readings for this period")
    if tariff is not None:
        where = ""
        if line.tariff_receipt is not None:
            where = (
                f"; ledger index {line.tariff_receipt.ledger_index},"
                f" {receipt_status(line.tariff_receipt)}"
            )
        out.append(f"  tariff: {tariff_summary(tariff)}")
        out.append(f"          hash {tariff.tariff_hash().hex()}{where}")
    if line.bill is not None:
        if line.violations:
            out += [f"  VIOLATION {v.reason}: {v.detail}" for v in line.violations]
        else:
            out.append("  check: the local breakdown matches the ledger's bill")
    return out


def statement_text(statement: DetailedStatement, *, detail: bool) -> str:
    """One line per bill (period, total, ledger index, receipt status); with ``detail`` the
    breakdown, the tariff and the check under each; the totals per currency."""
    if not statement.lines and not statement.cycle_lines:
        return f"{statement.meter_id}: no bills yet\n"
    lines: list[str] = []
    for line in statement.lines:
        bill, receipt = line.billed()
        currency = "" if line.tariff is None else line.tariff.currency
        lines.append(
            f"{line.period}  {format_money(bill.total, currency):>16}"
            f"  ledger index {receipt.ledger_index}  {receipt_status(receipt)}"
        )
        if detail:
            lines += detail_text(line)
    for cycle in statement.cycle_lines:
        plan = "" if cycle.tariff is None else f"  plan {cycle.tariff.plan}"
        lines.append(
            f"{cycle.cycle}  {format_money(cycle.bill.total, cycle.currency):>16}"
            f"  ledger index {cycle.receipt.ledger_index}  {receipt_status(cycle.receipt)}{plan}"
        )
        if detail:
            lines += cycle_detail_text(cycle)
    for currency, micro in sorted(statement.totals().items()):
        lines.append(f"total       {format_money(micro, currency):>16}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- billing cycles


def demand_kw_text(demand_wh: int, interval_minutes: int) -> str:
    """The highest interval import as average power over the interval in kW
    (``Wh * 60 / minutes / 1000``), exactly: ``800`` Wh in 15 minutes -> ``3.2 kW``; a value
    that is no finite decimal (intervals of 9 minutes) is shown to 0.001 kW, marked ``~``
    (the demand charge itself is always exact: it is charged per Wh of the peak)."""
    from fractions import Fraction

    kw = Fraction(demand_wh * 60, interval_minutes * 1000)
    micro = kw * 1_000_000
    if micro.denominator == 1:
        return f"{_decimal_kw(int(micro))} kW"
    milli = round(kw * 1000)
    return f"~{_decimal_kw(milli * 1000)} kW"


def _decimal_kw(micro_kw: int) -> str:
    whole, frac = divmod(micro_kw, 1_000_000)
    digits = f"{frac:06d}".rstrip("0")
    return f"{whole}.{digits}" if digits else str(whole)


def _per_kw(micro_per_kw: int, currency: str) -> str:
    return f"{micro_to_decimal_text(micro_per_kw)} {currency}/kW"


def cycle_tariff_summary(tariff: CycleTariff) -> str:
    """``residential-tiered (default plan), EUR, 30 days x 24 x 60 min, 3 tiers
    (inclining), fixed 9.00 EUR per cycle``."""
    count = len(tariff.meters)
    who = "default plan" if tariff.is_default else f"{count} meter{'' if count == 1 else 's'}"
    parts = [
        f"{tariff.plan} ({who}), {tariff.currency}, {len(tariff.periods)} days x"
        f" {tariff.intervals} x {tariff.interval_minutes} min"
    ]
    if tariff.tiers:
        parts.append(f"{len(tariff.tiers)} tiers ({tariff.tier_kind})")
    if tariff.demand_charge:
        parts.append(f"demand {_per_kw(tariff.demand_charge, tariff.currency)}")
    parts.append(f"fixed {format_money(tariff.fixed_charge, tariff.currency)} per cycle")
    return ", ".join(parts)


def _export_wh(cycle: CycleDetailLine) -> int | str:
    return "" if cycle.export_wh is None else cycle.export_wh


def _tier_rows(parts: CycleBillBreakdown, tariff: CycleTariff) -> list[tuple[str, str, int]]:
    rows = []
    for i, ((start, price), wh, charge) in enumerate(
        zip(tariff.tiers, parts.tier_wh, parts.tier_charges, strict=True)
    ):
        label = f"tier {i + 1} from {format_kwh(start)}"
        rows.append((label, f"{format_kwh(wh)} x {format_rate_per_kwh(price, tariff.currency)}",
                     charge))  # fmt: skip
    return rows


def cycle_detail_text(cycle: CycleDetailLine) -> list[str]:
    """The breakdown of one cycle (indented): fixed charge, time-of-use energy, each tier
    (kWh and charge), the demand (the highest interval import in kW and its charge), the
    feed-in credit, the local total; the plan used and the check."""
    out: list[str] = []
    tariff = cycle.tariff
    parts = cycle.breakdown
    if tariff is None:
        out.append("  no plan is published for this cycle")
    if parts is not None and tariff is not None:
        cur = tariff.currency
        rows: list[tuple[str, str, int]] = [("fixed charge", "", parts.fixed)]
        rows.append(("time-of-use energy", format_kwh(parts.total_import), parts.time_of_use))
        rows += _tier_rows(parts, tariff)
        if tariff.demand_charge:
            peak = demand_kw_text(parts.demand_wh, tariff.interval_minutes)
            rows.append(
                ("demand (peak)", f"{peak} x {_per_kw(tariff.demand_charge, cur)}",
                 parts.demand_charge)
            )  # fmt: skip
        export = "" if cycle.export_wh is None else format_kwh(cycle.export_wh)
        rows.append(("feed-in credit", export, -parts.export_credit))
        rows.append(("total (local)", "", parts.total))
        label_w = max(len(r[0]) for r in rows)
        what_w = max(len(r[1]) for r in rows)
        money_w = max(len(format_money(r[2], cur)) for r in rows)
        for label, what, micro in rows:
            out.append(
                f"  {label:<{label_w}}  {what:>{what_w}}  {format_money(micro, cur):>{money_w}}"
            )
    elif tariff is not None and cycle.violations:
        out.append("  not recomputed: see the violation below")
    if tariff is not None:
        where = ""
        if cycle.tariff_receipt is not None:
            where = (
                f"; ledger index {cycle.tariff_receipt.ledger_index},"
                f" {receipt_status(cycle.tariff_receipt)}"
            )
        out.append(f"  plan: {cycle_tariff_summary(tariff)}")
        out.append(f"        hash {tariff.tariff_hash().hex()}{where}")
    if cycle.violations:
        out += [f"  VIOLATION {v.reason}: {v.detail}" for v in cycle.violations]
    else:
        out.append("  check: the local breakdown matches the ledger's bill")
    return out


def _cycle_tariff_json(tariff: CycleTariff, receipt: VerifiedReceipt | None) -> dict[str, Any]:
    return {
        "plan": tariff.plan,
        "meters": list(tariff.meters),
        "first_period": tariff.first_period,
        "last_period": tariff.last_period,
        "currency": tariff.currency,
        "interval_minutes": tariff.interval_minutes,
        "tariff_hash": tariff.tariff_hash().hex(),
        "fixed_charge": _money(tariff.fixed_charge),
        "import_price_micro_per_wh": list(tariff.import_price),
        "export_credit_micro_per_wh": list(tariff.export_credit),
        "tiers": [{"start_wh": s, "price_micro_per_wh": p} for s, p in tariff.tiers],
        "tier_kind": tariff.tier_kind,
        "demand_charge_micro_per_kw": tariff.demand_charge,
        "receipt": None if receipt is None else _receipt_json(receipt),
    }


def _cycle_breakdown_json(cycle: CycleDetailLine) -> dict[str, Any] | None:
    parts, tariff = cycle.breakdown, cycle.tariff
    if parts is None or tariff is None:
        return None
    return {
        "fixed_charge": _money(parts.fixed),
        "time_of_use_charge": _money(parts.time_of_use),
        "import_wh": parts.total_import,
        "export_wh": cycle.export_wh,
        "tiers": [
            {"start_wh": start, "price_micro_per_wh": price, "wh": wh, "charge": _money(charge)}
            for (start, price), wh, charge in zip(
                tariff.tiers, parts.tier_wh, parts.tier_charges, strict=True
            )
        ],
        "tier_charge": _money(parts.tier_charge),
        "demand": {
            "peak_import_wh": parts.demand_wh,
            "peak_kw": demand_kw_text(parts.demand_wh, tariff.interval_minutes).split()[0],
            "charge_micro_per_kw": tariff.demand_charge,
            "charge": _money(parts.demand_charge),
        },
        "feed_in_credit": _money(parts.export_credit),
        "total": _money(parts.total),
    }


def _cycle_line_json(cycle: CycleDetailLine, detail: bool) -> dict[str, Any]:
    bill = cycle.bill
    doc: dict[str, Any] = {
        "first_period": bill.first_period,
        "last_period": bill.last_period,
        "plan": None if cycle.tariff is None else cycle.tariff.plan,
        "currency": cycle.currency,
        "bill_total": _money(bill.total),
        "receipt": _receipt_json(cycle.receipt),
        "batch_hashes": [h.hex() for h in bill.batch_hashes],
        "tariff_hash": bill.tariff_hash.hex(),
    }
    if detail:
        doc["breakdown"] = _cycle_breakdown_json(cycle)
        doc["tariff"] = (
            None if cycle.tariff is None else _cycle_tariff_json(cycle.tariff, cycle.tariff_receipt)
        )
        doc["matches_ledger"] = not cycle.violations
    return doc
