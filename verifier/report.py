"""Audit output: a human summary (a ``rich`` table, a progress bar on stderr) or JSON."""

from __future__ import annotations

import json
from typing import IO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from verifier.audit import AuditResult

__all__ = ["RichProgress", "render_human", "render_json"]

#: Violations listed in full in the human summary; the rest are counted by reason.
MAX_LISTED = 50

_LABELS = {"entries": "replaying entries", "proofs": "verifying proofs"}


class RichProgress:
    """A :class:`verifier.audit.Progress` drawing one bar per stage on a console."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._tasks: dict[str, int] = {}

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._progress.stop()

    def start(self, name: str, total: int | None) -> None:
        self._tasks[name] = int(self._progress.add_task(_LABELS.get(name, name), total=total))

    def advance(self, name: str, amount: int = 1) -> None:
        task = self._tasks.get(name)
        if task is not None:
            self._progress.advance(task, amount)  # type: ignore[arg-type]


def _money(micro: int) -> str:
    sign = "-" if micro < 0 else ""
    whole, frac = divmod(abs(micro), 1_000_000)
    return f"{sign}{whole:,}.{frac:06d}"


def _of_cycles(count: int) -> str:
    """`` (n of billing cycles)`` when some of the tariffs or bills are a cycle's."""
    return f" ({count:,} of billing cycles)" if count else ""


def render_human(result: AuditResult, console: Console) -> None:
    f = result.figures
    cp = result.checkpoint
    table = Table(title=f"zkgrid audit of {result.source} ({result.mode})", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", overflow="fold")
    table.add_row("log", result.origin or "?")
    if cp is not None:
        table.add_row("checkpoint", f"size {cp.size}, root {cp.root.hex()}")
    if result.previous_size is not None:
        table.add_row("previous audit", f"size {result.previous_size}")
    table.add_row("entries verified", f"{f.entries:,}")
    table.add_row(
        "meters",
        f"{f.meters_total:,} known ({f.meters_registered:,} registered,"
        f" {f.meters_revoked:,} revoked in this run)",
    )
    table.add_row("periods", f"{len(f.periods):,}")
    table.add_row("tariffs", f"{f.tariffs:,}" + _of_cycles(f.cycle_tariffs))
    table.add_row("reading batches", f"{f.batches:,}")
    table.add_row("bills", f"{f.bills:,}" + _of_cycles(f.cycle_bills))
    for currency, total in sorted(f.bill_sums.items()):
        table.add_row(f"sum of bills ({currency})", _money(total))
    table.add_row("time", f"{f.seconds:.2f} s ({f.entries_per_second:,.0f} entries/s)")
    console.print(table)
    if result.ok:
        console.print("[bold green]OK[/]: every check holds")
        return
    console.print(f"[bold red]{len(result.violations)} violation(s)[/]")
    for v in result.violations[:MAX_LISTED]:
        where = "log" if v.index is None else f"entry {v.index}"
        console.print(f"  {where}: {v.reason}: {v.detail}", highlight=False, markup=False)
    rest = result.violations[MAX_LISTED:]
    if rest:
        counts: dict[str, int] = {}
        for v in rest:
            counts[v.reason] = counts.get(v.reason, 0) + 1
        summary = ", ".join(f"{reason} x{n}" for reason, n in sorted(counts.items()))
        console.print(f"  ... and {len(rest)} more: {summary}", highlight=False, markup=False)


def render_json(result: AuditResult, out: IO[str]) -> None:
    out.write(json.dumps(result.to_json(), indent=2, sort_keys=True))
    out.write("\n")
