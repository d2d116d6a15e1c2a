"""meter.report: the page is self-contained, shows the plot and the figures, and never calls a
receipt verified when the log key was not pinned. (The page as a browser renders it:
tests/integration/test_meter_view.py, in headless Chromium.)"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from meter.client import MeterClient, StatementLine, VerifiedReceipt, prove_bill_from_openings
from meter.readings import DayReadings
from meter.report import EXPORT_COLOUR, IMPORT_COLOUR, BatchReceipt, Report, render_html
from meter.statement import DetailLine, breakdown, check_bill
from settlement.records import Tariff

ROOT = Path(__file__).resolve().parents[3]
INTERVAL = 240
PERIOD = "2026-11-21"
IMPORTS = (1_000, 2_000, 3_000, 500, 0, 7)
EXPORTS = (0, 0, 4_000, 2_500, 13, 0)
LOG_KEY = "zkgrid-test+01020304+AQ=="


@pytest.fixture
def client(tmp_path: Path) -> Iterator[MeterClient]:
    MeterClient.keygen(tmp_path / "home", "meter-7", INTERVAL)
    c = MeterClient(tmp_path / "home")
    c.build_batch(DayReadings.from_lists(PERIOD, INTERVAL, IMPORTS, EXPORTS))
    c.store.mark_accepted(PERIOD, b"receipt")
    yield c
    c.close()


def _receipt(index: int, pinned: bool) -> VerifiedReceipt:
    return VerifiedReceipt(index, bytes(32), index + 1, bytes(range(32)), "", pinned, b"")


def _report(client: MeterClient, *, pinned: bool = True, forged: bool = False,
            billed: bool = True) -> Report:  # fmt: skip
    stored = client.store.batch(PERIOD)
    assert stored is not None
    tariff = Tariff(PERIOD, INTERVAL, "EUR", 450_000, (100, 200, 300, 400, 500, 600), (80,) * 6)
    bill = prove_bill_from_openings(stored, tariff, client.meter_id)
    if forged:
        bill = dataclasses.replace(bill, total=bill.total + 1)
    line = StatementLine(bill, _receipt(9, pinned)) if billed else None
    violations = tuple(check_bill(bill, tariff, stored)) if billed else ()
    detail = DetailLine(PERIOD, tariff, _receipt(1, pinned), stored, line,
                        breakdown(tariff, stored.imports, stored.exports), violations)  # fmt: skip
    return Report(
        meter_id=client.meter_id,
        period=PERIOD,
        stored=stored,
        detail=detail,
        batch_receipt=BatchReceipt(_receipt(3, pinned), None),
        log_key=LOG_KEY if pinned else None,
        generated=datetime(2026, 11, 22, 8, 0, tzinfo=UTC),
    )


def _external_references(page: str) -> list[str]:
    """Anything a browser would fetch: src/href/url()/@import not local (#) or data:."""
    found = re.findall(r"""(?:src|href)\s*=\s*["']?(?!#|data:)([^"'\s>]+)""", page)
    found += re.findall(r"""url\(\s*["']?(?!#|data:)([^)"']+)""", page)
    found += re.findall(r"@import", page)
    return found


def test_the_page_is_self_contained(client: MeterClient) -> None:
    page = render_html(_report(client))
    assert _external_references(page) == []
    assert "<script" not in page.lower()
    assert "Content-Security-Policy" in page
    assert "default-src 'none'" in page
    assert page.count("<svg") == 1
    assert "<?xml" not in page
    assert "<!DOCTYPE svg" not in page
    # The only URLs left are XML namespace names, which nothing fetches.
    urls = set(re.findall(r"https?://[^\s\"'<>]+", page))
    assert urls <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}


def test_the_page_shows_the_plot_and_the_figures(client: MeterClient) -> None:
    page = render_html(_report(client))
    svg = page[page.index("<svg") : page.index("</svg>")]
    # One bar per interval and series (and its legend patch), in the plot's colours.
    assert svg.count(IMPORT_COLOUR) >= len(IMPORTS)
    assert svg.count(EXPORT_COLOUR) >= len(EXPORTS)
    assert "import (Wh)" in svg
    assert "export (Wh)" in svg
    assert "hour of the day (UTC)" in svg
    assert "6.507 kWh" in page  # import total
    assert "6.513 kWh" in page  # export total
    assert "0.45 EUR" in page  # fixed charge
    assert "1.6042 EUR" in page  # energy charge
    assert "-0.52104 EUR" in page  # feed-in credit: 80 x 6513
    assert page.count("1.53316 EUR") == 2  # recomputed here, and the ledger's
    assert "matches the ledger's bill" in page
    assert "meter-7" in page
    assert "4294967295" not in page
    for value in IMPORTS:
        assert f"<td>{value}</td>" in page


def test_verified_only_with_a_pinned_key(client: MeterClient) -> None:
    pinned = render_html(_report(client, pinned=True))
    assert pinned.count('data-verified="true"') == 3
    assert LOG_KEY in pinned
    unpinned = render_html(_report(client, pinned=False))
    assert 'data-verified="true"' not in unpinned
    assert unpinned.count('data-verified="false"') == 3
    assert "Nothing here is verified" in unpinned
    assert ">verified<" not in unpinned


def test_a_mismatch_is_on_the_page(client: MeterClient) -> None:
    page = render_html(_report(client, forged=True))
    assert "does NOT match" in page
    assert 'data-reason="PROOF_INVALID"' in page
    assert "matches the ledger" not in page


def test_no_bill_yet(client: MeterClient) -> None:
    page = render_html(_report(client, billed=False))
    assert "holds no bill for this period yet" in page
    assert "1.53316 EUR" in page  # the local breakdown is still shown
    assert 'id="ledger-total"' not in page


def test_report_help_loads_no_matplotlib() -> None:
    probe = (
        "import contextlib, io, json, sys\n"
        "from cli.main import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):\n"
        "    main(['meter', 'report', '--help'])\n"
        "assert 'self-contained' in out.getvalue()\n"
        "print(json.dumps(sorted(m for m in sys.modules\n"
        "    if m.split('.')[0] in ('matplotlib', 'numpy', 'grpc', 'zkp', 'petlib'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
