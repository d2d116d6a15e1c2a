"""Text, JSON and CSV for the prosumer's own view (``zkgrid meter readings`` and
``zkgrid meter statement``).

Amounts are exact (:mod:`meter.units`): JSON and CSV carry every amount as an integer
of micro-currency (``*_micro``) and as exact decimal text; energy in Wh. The JSON
documents carry ``"schema": "zkgrid.meter.readings/1"`` or
``"zkgrid.meter.statement/1"``; fields are only ever added to a schema version.

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
    from meter.statement import Breakdown, DetailedStatement, DetailLine
    from settlement.records import Tariff

__all__ = [
    "READINGS_SCHEMA",
    "STATEMENT_SCHEMA",
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
    ``detail``)."""
    return {
        "schema": STATEMENT_SCHEMA,
        "meter_id": statement.meter_id,
        "detail": detail,
        "lines": [_line_json(line, detail) for line in statement.lines],
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


def statement_csv(statement: DetailedStatement, *, detail: bool) -> str:
    """One row per bill; with ``detail`` the breakdown in micro-units and the check (``ok``
    or the violations' reasons, ``;``-separated)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_CSV_DETAIL if detail else _CSV_PLAIN)
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
    if not statement.lines:
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
    for currency, micro in sorted(statement.totals().items()):
        lines.append(f"total       {format_money(micro, currency):>16}")
    return "\n".join(lines) + "\n"
