"""``zkgrid meter report``: one self-contained HTML page of a day, for the prosumer.

The page holds a plot of the day's import and export per interval (matplotlib,
rendered to an inline SVG), the bill's breakdown recomputed from the local openings
under the published tariff and checked against the ledger's bill
(:mod:`meter.statement`), the verification of the receipts (the bill's, the tariff's
and the readings batch's: "verified" only when the log's key is pinned), the tariff
used and the readings per interval.

Self-contained: no script, no external style sheet, font, image or link; the plot is
inline SVG with its text as text. A ``Content-Security-Policy`` of ``default-src
'none'`` (inline styles and ``data:`` images only) makes a browser refuse any load
anyway, so the page opens with no network access and tells nobody it was opened.

matplotlib is imported only here (its ``Agg`` canvas; no ``pyplot``, no global state),
so ``zkgrid --help`` and the other commands never load it. The page shows the
readings: it is written mode 0600 and stays with its owner.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from google.protobuf.message import DecodeError

from ledger.checkpoint import CheckpointVerifier, parse_verifier_key
from ledger.entries import EntryKind
from meter.client import MeterClient, VerifiedReceipt, verify_receipt
from meter.errors import ReceiptError
from meter.openings import OpeningStoreError, StoredBatch
from meter.render import interval_starts, receipt_status, tariff_summary
from meter.statement import DetailLine, period_detail
from meter.units import format_kwh, format_money, format_rate_per_kwh
from zkgrid.settlement.v1 import common_pb2

__all__ = ["EXPORT_COLOUR", "IMPORT_COLOUR", "Report", "build_report", "plot_svg", "render_html"]

_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.DOTALL)

#: The plot's colours (the report's test looks for them in a screenshot).
IMPORT_COLOUR = "#c0392b"
EXPORT_COLOUR = "#1e8449"


@dataclass(frozen=True)
class BatchReceipt:
    """The readings batch's receipt as stored locally, checked again now (or why not)."""

    receipt: VerifiedReceipt | None
    problem: str | None


@dataclass(frozen=True)
class Report:
    meter_id: str
    period: str
    stored: StoredBatch
    detail: DetailLine
    batch_receipt: BatchReceipt
    log_key: str | None
    generated: datetime


def _log_key_text(key: str | CheckpointVerifier | None) -> str | None:
    if key is None:
        return None
    return (
        key.to_text() if isinstance(key, CheckpointVerifier) else parse_verifier_key(key).to_text()
    )


def _batch_receipt(stored: StoredBatch, log_key: str | CheckpointVerifier | None) -> BatchReceipt:
    if stored.receipt is None:
        return BatchReceipt(None, "no receipt stored: the batch is not accepted yet")
    try:
        receipt = common_pb2.Receipt.FromString(stored.receipt)
    except DecodeError:
        return BatchReceipt(None, "the stored receipt does not parse")
    try:
        verified = verify_receipt(receipt, EntryKind.READING_BATCH, stored.batch, log_key)
    except ReceiptError as exc:
        return BatchReceipt(None, str(exc))
    return BatchReceipt(verified, None)


def build_report(client: MeterClient, period: str) -> Report:
    """Gather a day's report: the local readings, the ledger's bill and tariff (fetched,
    receipts verified) and the check (:func:`meter.statement.period_detail`)."""
    stored = client.store.batch(period)
    if stored is None:
        raise OpeningStoreError(
            f"the local opening store holds no readings for {period}: nothing to report"
        )
    detail = period_detail(client, period)
    return Report(
        meter_id=client.meter_id,
        period=period,
        stored=stored,
        detail=detail,
        batch_receipt=_batch_receipt(stored, client.log_key),
        log_key=_log_key_text(client.log_key),
        generated=datetime.now(UTC).replace(microsecond=0),
    )


# --------------------------------------------------------------------------- the plot


def plot_svg(
    period: str, interval_minutes: int, imports: Sequence[int], exports: Sequence[int]
) -> str:
    """The day's import (up) and export (down) per interval as an ``<svg>`` element."""
    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MultipleLocator

    starts = interval_starts(period, interval_minutes, len(imports))
    hours = [ts.hour + ts.minute / 60 for ts in starts]
    width = interval_minutes / 60 * 0.85
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": f"zkgrid-{period}", "font.size": 9}):
        figure = Figure(figsize=(9, 3.6), layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.subplots()
        axes.bar(hours, list(imports), width=width, align="edge", color=IMPORT_COLOUR,
                 label="import (Wh)")  # fmt: skip
        axes.bar(hours, [-v for v in exports], width=width, align="edge", color=EXPORT_COLOUR,
                 label="export (Wh)")  # fmt: skip
        axes.axhline(0, color="#444444", linewidth=0.8)
        axes.set_xlim(0, 24)
        axes.xaxis.set_major_locator(MultipleLocator(3))
        axes.set_xlabel("hour of the day (UTC)")
        axes.yaxis.set_major_formatter(FuncFormatter(lambda y, _pos: f"{abs(y):g}"))
        axes.set_ylabel("Wh per interval (import up, export down)")
        axes.set_title(f"{period}: import and export per {interval_minutes}-minute interval")
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        axes.grid(axis="y", color="#dddddd", linewidth=0.6)
        axes.set_axisbelow(True)
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    # Inline: no XML prolog or doctype; no RDF metadata block (it names outside URIs).
    text = _METADATA.sub("", text[text.index("<svg") :])
    return text.strip()


# --------------------------------------------------------------------------- the page

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; } td, th { padding: 0.15em 0.8em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr.total td { border-top: 1px solid #888; font-weight: bold; }
.ok { color: #1e8449; font-weight: bold; } .bad { color: #c0392b; font-weight: bold; }
.note { color: #555; font-size: 0.9em; } figure { margin: 0; }
svg { max-width: 100%; height: auto; }
code { font-size: 0.85em; word-break: break-all; }
"""

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _receipt_html(what: str, receipt: VerifiedReceipt | None, problem: str | None = None) -> str:
    if receipt is None:
        return f'<li>{_e(what)}: <span class="bad">{_e(problem or "none")}</span></li>'
    status = receipt_status(receipt)
    css = "ok" if receipt.signature_verified else "bad"
    return (
        f"<li>{_e(what)}: ledger index {receipt.ledger_index}, included in the tree of size"
        f" {receipt.tree_size} (root <code>{receipt.root_hash.hex()}</code>):"
        f' <span class="{css}" data-verified="{str(receipt.signature_verified).lower()}">'
        f"{_e(status)}</span></li>"
    )


def _bill_html(report: Report) -> list[str]:
    detail = report.detail
    parts = detail.breakdown
    out = ['<section id="bill"><h2>The bill</h2>']
    if detail.tariff is None:
        out.append("<p>No tariff is published for this period yet: no bill to compute.</p>")
    if parts is not None:
        cur = parts.currency
        rows = [
            ("fixed charge", "", format_money(parts.fixed_charge, cur), "fixed-charge"),
            ("energy charge (import)", format_kwh(parts.import_wh),
             format_money(parts.energy_charge, cur), "energy-charge"),
            ("feed-in credit (export)", format_kwh(parts.export_wh),
             format_money(-parts.feed_in_credit, cur), "feed-in-credit"),
        ]  # fmt: skip
        out.append('<table id="breakdown"><tr><th></th><th>energy</th><th>amount</th></tr>')
        for label, energy, amount, ident in rows:
            out.append(
                f'<tr id="{ident}"><td>{_e(label)}</td><td>{_e(energy)}</td>'
                f"<td>{_e(amount)}</td></tr>"
            )
        out.append(
            f'<tr class="total" id="local-total"><td>total, recomputed here</td><td></td>'
            f"<td>{_e(format_money(parts.total, cur))}</td></tr>"
        )
        bill = detail.bill
        if bill is not None:
            out.append(
                f'<tr id="ledger-total"><td>the ledger\'s bill</td><td></td>'
                f"<td>{_e(format_money(bill.total, cur))}</td></tr>"
            )
        out.append("</table>")
    if detail.bill is None:
        out.append(
            '<p id="check">The ledger holds no bill for this period yet'
            " ('zkgrid meter bill' proves and submits it).</p>"
        )
    elif detail.violations:
        out.append('<p id="check" class="bad">The ledger\'s bill does NOT match:</p><ul>')
        out += [
            f'<li class="bad violation" data-reason="{_e(v.reason)}">{_e(v.reason)}:'
            f" {_e(v.detail)}</li>"
            for v in detail.violations
        ]
        out.append("</ul>")
    else:
        out.append(
            '<p id="check" class="ok">The breakdown recomputed from the readings on this'
            " computer matches the ledger's bill.</p>"
        )
    out.append("</section>")
    return out


def _receipts_html(report: Report) -> list[str]:
    detail = report.detail
    out = ['<section id="receipts"><h2>Receipts</h2>']
    if report.log_key is None:
        out.append(
            '<p class="bad" id="pinning">The log\'s key was not pinned (--log-key): the'
            " receipts below prove inclusion in a tree whose signature was not checked,"
            " which anyone can make. Nothing here is verified.</p>"
        )
    else:
        out.append(
            f'<p id="pinning">Checked against the pinned log key <code>{_e(report.log_key)}'
            "</code>.</p>"
        )
    out.append("<ul>")
    batch = report.batch_receipt
    out.append(_receipt_html("the readings batch", batch.receipt, batch.problem))
    out.append(_receipt_html("the tariff", detail.tariff_receipt, "not published"))
    out.append(_receipt_html("the bill", detail.receipt, "no bill on the ledger yet"))
    out.append("</ul></section>")
    return out


def _tariff_html(report: Report) -> list[str]:
    tariff = report.detail.tariff
    if tariff is None:
        return []
    starts = interval_starts(tariff.period, tariff.interval_minutes, tariff.intervals)
    out = [
        '<section id="tariff"><h2>The tariff used</h2>',
        f"<p>{_e(tariff_summary(tariff))}<br>hash <code>{tariff.tariff_hash().hex()}</code></p>",
        "<details><summary>Rates per interval</summary><table>",
        "<tr><th>interval start (UTC)</th><th>import price</th><th>feed-in credit</th></tr>",
    ]
    for ts, price, credit in zip(starts, tariff.import_price, tariff.export_credit, strict=True):
        out.append(
            f"<tr><td>{ts:%H:%M}</td><td>{_e(format_rate_per_kwh(price, tariff.currency))}</td>"
            f"<td>{_e(format_rate_per_kwh(credit, tariff.currency))}</td></tr>"
        )
    out.append("</table></details></section>")
    return out


def _readings_html(report: Report) -> list[str]:
    stored = report.stored
    starts = interval_starts(stored.period, stored.interval_minutes, len(stored.imports))
    out = [
        '<section id="readings"><h2>Readings per interval</h2><details><summary>'
        f"{len(starts)} intervals of {stored.interval_minutes} minutes</summary>",
        '<table id="readings-table"><tr><th>interval start (UTC)</th><th>import Wh</th>'
        "<th>export Wh</th></tr>",
    ]
    for ts, imp, exp in zip(starts, stored.imports, stored.exports, strict=True):
        out.append(f"<tr><td>{ts:%Y-%m-%dT%H:%M:%SZ}</td><td>{imp}</td><td>{exp}</td></tr>")
    out.append(
        f'<tr class="total"><td>total</td><td>{sum(stored.imports)}</td>'
        f"<td>{sum(stored.exports)}</td></tr></table></details></section>"
    )
    return out


def render_html(report: Report) -> str:
    """The report as one HTML document (everything inline; see the module docstring)."""
    stored = report.stored
    imports, exports = sum(stored.imports), sum(stored.exports)
    svg = plot_svg(stored.period, stored.interval_minutes, stored.imports, stored.exports)
    title = f"zkgrid: meter {report.meter_id}, {report.period}"
    status = (
        "accepted by the ledger"
        if stored.status == "accepted"
        else "built but not accepted by the ledger yet"
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Meter {_e(report.meter_id)}: {_e(report.period)}</h1>",
        '<p class="note">Made on this computer from the meter\'s local opening store on'
        f" {report.generated:%Y-%m-%d %H:%M} UTC. The readings on this page never left it:"
        " keep this file private.</p>",
        '<section id="energy"><h2>Energy</h2>',
        f'<p id="energy-totals">Import <strong id="import-total">{_e(format_kwh(imports))}'
        f'</strong>, export <strong id="export-total">{_e(format_kwh(exports))}</strong>'
        f" ({len(stored.imports)} intervals; the batch is {status}).</p>",
        f'<figure id="plot">{svg}</figure></section>',
        *_bill_html(report),
        *_receipts_html(report),
        *_tariff_html(report),
        *_readings_html(report),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
