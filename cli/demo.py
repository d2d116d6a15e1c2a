"""``zkgrid demo``: a community settles a day of electricity without revealing its readings.

What it does, end to end over real gRPC on the loopback interface:

1. starts an embedded settlement service (``service.server.build_server`` over
   ``service.settlement.Settlement`` and a SQLite ledger in a temporary
   directory, insecure loopback mode);
2. creates a seeded community of prosumers (some with rooftop PV) with
   realistic 15-minute load and PV profiles (:mod:`cli.community`);
3. as the utility, registers every meter and publishes a time-of-use tariff
   with a feed-in credit;
4. every meter client commits to its day of readings, range-proves them (on a
   process pool across the cores), signs and submits the batch, then proves
   and settles its bill; every receipt's inclusion proof is verified against
   its checkpoint, whose signature is checked with the pinned log key;
5. as an auditor, re-verifies every bill proof against the commitments and the
   tariff stored in the ledger;
6. prints a table (imports and exports are known only to each prosumer's own
   client: the service only ever saw commitments, proofs and the bill totals),
   the ledger's size, the final signed checkpoint and the timings.

With ``--days N`` the community settles a billing cycle of N days (records version 2)
instead of one day: the utility publishes two plans for the cycle, the default plan
``residential-tiered`` (inclining blocks of the cycle's import) for the households and
``business-demand`` (time of use and a demand charge per kW of the cycle's highest
interval import) listing ``--businesses`` small businesses; every meter submits a batch
per day, then proves its cycle bill over the commitments of all of them (a circuit proof,
on the process pool) and settles it; the auditor re-verifies the cycle bills' proofs
against the ledger's batches and plans (one batch verification). The table shows each
meter's plan and bill, and, from the meter's own openings (the demo acts as each
prosumer), the kWh of each tier or the peak in kW.

Exit code 0 when every step verified.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import multiprocessing
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import grpc
from rich import box
from rich.console import Console
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from cli.community import (
    Prosumer,
    day_readings,
    demand_plan,
    forecast_readings,
    make_businesses,
    make_community,
    tiered_plan,
    time_of_use_tariff,
)
from ledger.checkpoint import CheckpointSigner, CheckpointVerifier
from ledger.entries import Entry, EntryKind
from meter.cli import format_money
from meter.client import (
    MeterClient,
    VerifiedReceipt,
    build_batch_in_home,
    prove_cycle_bill_in_home,
    submit_registration,
    verify_receipt,
)
from meter.market import MarketClient, clear_market, publish_market_day
from meter.readings import DayReadings
from settlement import convert
from settlement.market import MarketDay, Side
from settlement.periods import MAX_CYCLE_PERIODS, cycle_periods, parse_period
from settlement.records import (
    RECORD_VERSIONS,
    Bill,
    CycleBill,
    CycleBillBreakdown,
    CycleTariff,
    MeterRegistration,
    ReadingBatch,
    Tariff,
    bill_coefficients,
    decode_record,
)
from zkgrid._internal.channels import dev_metadata
from zkgrid._internal.cliargs import EXIT_STATUS
from zkgrid.settlement.v1 import ledger_pb2, ledger_pb2_grpc, tariffs_pb2, tariffs_pb2_grpc
from zkp.pedersen import Commitment
from zkp.sigma import LinearCombinationProof

if TYPE_CHECKING:
    from service.settlement import Settlement
    from service.storage import LedgerStore

__all__ = [
    "DemoResult",
    "EmbeddedService",
    "embedded_service",
    "main",
    "publish_cycle_tariff",
    "publish_tariff",
    "register_meter",
    "run_demo",
]

DEFAULT_PERIOD = "2026-04-21"
ORIGIN = "zkgrid.demo/settlement"
#: The log key's file in a ``--keep`` directory (its verifier key beside it, ``.pub``).
LOG_KEY_FILE = "log.key"
UTILITY_METADATA = dev_metadata("utility")
AUDITOR_METADATA = dev_metadata("auditor")


#: Businesses on the demand-charge plan in a billing-cycle demo (``--businesses``).
DEFAULT_BUSINESSES = 2


#: The part of its expected export (import) of each hour a household offers (bids for) in
#: the market demo (``--market``).
MARKET_SHARE = 0.5
#: The incentive credit per Wh delivered locally that the demo's market day publishes
#: (micro-currency per Wh; the credits themselves are not built yet).
MARKET_CREDIT_RATE = 20


@dataclass
class MarketPart:
    """A prosumer's market day as its own meter client knows it (``--market``): its orders
    and trades, the delivered Wh sold and bought (its opening store), and its peer-to-peer
    revenue (+) or payment (-): each trade's delivered Wh times its interval's clearing
    price, in micro-currency."""

    orders: int = 0
    trades: int = 0
    settled: int = 0
    sold_wh: int = 0
    bought_wh: int = 0
    p2p: int = 0


@dataclass
class ProsumerResult:
    prosumer: Prosumer
    import_wh: int
    export_wh: int
    bill: Bill | None = None
    batch_receipt: VerifiedReceipt | None = None
    bill_receipt: VerifiedReceipt | None = None
    audited: bool = False
    #: A billing-cycle demo: the cycle bill, its plan, and its breakdown from the meter's own
    #: openings (tiers, peak: only the prosumer knows them).
    cycle_bill: CycleBill | None = None
    plan: CycleTariff | None = None
    breakdown: CycleBillBreakdown | None = None
    #: A market demo: the prosumer's market day from its own client.
    market: MarketPart | None = None

    @property
    def total(self) -> int | None:
        if self.cycle_bill is not None:
            return self.cycle_bill.total
        return None if self.bill is None else self.bill.total


@dataclass
class DemoResult:
    period: str
    currency: str
    prosumers: list[ProsumerResult]
    ledger_entries: int
    ledger_bytes: int
    checkpoint: str
    timings: dict[str, float] = field(default_factory=dict)
    workdir: Path | None = None
    #: The billing cycle's last day (a cycle demo; ``period`` is its first), else ``None``.
    last_period: str | None = None
    #: A market demo: the market day, and each interval's clearing price and volume.
    market_day: MarketDay | None = None
    clearing_prices: tuple[tuple[int, int], ...] = ()

    @property
    def p2p_total(self) -> int:
        """The community's peer-to-peer payments (a market demo): zero when every trade's
        buyer and seller hold the same delivered Wh."""
        return sum(r.market.p2p for r in self.prosumers if r.market is not None)

    @property
    def days(self) -> int:
        return 1 if self.last_period is None else len(cycle_periods(self.period, self.last_period))

    @property
    def ok(self) -> bool:
        if self.market_day is not None:
            return self.p2p_total == 0 and all(
                p.market is not None and p.market.settled == p.market.trades
                for p in self.prosumers
            )
        return all(p.audited and p.bill_receipt is not None for p in self.prosumers)


@contextmanager
def _phase(timings: dict[str, float], name: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = time.perf_counter() - start


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description:<31}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _db_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())


@dataclass
class EmbeddedService:
    """A settlement service running in this process on 127.0.0.1 (insecure loopback)."""

    store: LedgerStore
    settlement: Settlement
    server: grpc.Server
    target: str
    channel: grpc.Channel
    signer: CheckpointSigner

    @property
    def log_key(self) -> CheckpointVerifier:
        return self.signer.verifier()


@contextmanager
def embedded_service(
    db_url: str,
    *,
    origin: str = ORIGIN,
    signer: CheckpointSigner | None = None,
    workers: int = 8,
    startup_check: Literal["full", "quick"] = "full",
    verify_processes: int = 0,
    failure_burst: int | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Iterator[EmbeddedService]:
    """Open the ledger at ``db_url``, serve it on an ephemeral loopback port, yield, stop.

    ``clock``: the service's clock (the submission window, the market's gate closure and
    deadlines); the wall clock by default."""
    from service.config import ServiceConfig
    from service.server import build_server, server_info
    from service.settlement import Settlement
    from service.storage import open_store

    signer = signer if signer is not None else CheckpointSigner.generate(origin)
    store = open_store(db_url, signer, origin, startup_check=startup_check)
    settlement: Settlement | None = None
    server: grpc.Server | None = None
    channel: grpc.Channel | None = None
    try:
        if clock is not None:
            settlement = Settlement(store, verify_processes=verify_processes, clock=clock)
        else:
            settlement = Settlement(store, verify_processes=verify_processes)
        config = ServiceConfig(db=db_url, listen="127.0.0.1:0", insecure=True, workers=workers)
        if failure_burst is not None:
            config = dataclasses.replace(config, failure_burst=failure_burst)
        server = build_server(settlement, config, store=store)
        server.start()
        target = f"127.0.0.1:{server_info(server).port}"
        channel = grpc.insecure_channel(target)
        grpc.channel_ready_future(channel).result(timeout=10)
        yield EmbeddedService(store, settlement, server, target, channel, signer)
    finally:
        if channel is not None:
            channel.close()
        if server is not None:
            server.stop(grace=1).wait()
        if settlement is not None:
            settlement.close()
        store.close()


def register_meter(
    channel: grpc.Channel, registration: MeterRegistration, log_key: CheckpointVerifier | None
) -> VerifiedReceipt:
    """The utility registers a meter (its registration request, proof of possession inside)."""
    return submit_registration(channel, registration, metadata=UTILITY_METADATA, log_key=log_key)


def publish_tariff(
    channel: grpc.Channel, tariff: Tariff, log_key: CheckpointVerifier | None
) -> VerifiedReceipt:
    """The utility publishes a period's tariff; the receipt is verified."""
    stub = tariffs_pb2_grpc.TariffServiceStub(channel)
    response = stub.PublishTariff(
        tariffs_pb2.PublishTariffRequest(tariff=convert.tariff_to_proto(tariff)),
        metadata=UTILITY_METADATA,
        timeout=30,
    )
    return verify_receipt(response.receipt, EntryKind.TARIFF, tariff.encode(), log_key)


def publish_cycle_tariff(
    channel: grpc.Channel, tariff: CycleTariff, log_key: CheckpointVerifier | None
) -> VerifiedReceipt:
    """The utility publishes a billing cycle's plan; the receipt is verified."""
    stub = tariffs_pb2_grpc.TariffServiceStub(channel)
    response = stub.PublishCycleTariff(
        tariffs_pb2.PublishCycleTariffRequest(cycle_tariff=tariff.encode()),
        metadata=UTILITY_METADATA,
        timeout=30,
    )
    return verify_receipt(response.receipt, EntryKind.TARIFF, tariff.encode(), log_key)


def _ledger(workdir: Path, db_url: str | None, *, keep_keys: bool) -> tuple[str, CheckpointSigner]:
    """The demo's database URL (SQLite in ``workdir`` by default) and a new log key; a kept
    ledger comes with its log key, so it can be audited and served again."""
    url = db_url if db_url is not None else f"sqlite:///{workdir / 'ledger.db'}"
    signer = CheckpointSigner.generate(ORIGIN)
    if keep_keys:
        from service.logkey import save_log_key

        save_log_key(workdir / LOG_KEY_FILE, signer)
    return url, signer


def _prove_and_submit_batches(
    pool: ProcessPoolExecutor,
    clients: dict[str, MeterClient],
    readings: dict[str, DayReadings],
    progress: Progress,
    proving: TaskID,
    submitting: TaskID | None = None,
) -> dict[str, VerifiedReceipt]:
    """Every meter's batch of ``readings`` proven on ``pool`` (in each meter's home), then
    submitted by its client as it comes back, the receipt checked; receipts by meter id."""
    futures: dict[Future[bytes], str] = {
        pool.submit(build_batch_in_home, clients[m].home.path, readings[m]): m for m in readings
    }
    receipts: dict[str, VerifiedReceipt] = {}
    for fut in as_completed(futures):
        meter_id = futures[fut]
        batch = ReadingBatch.decode(fut.result())
        progress.advance(proving)
        receipts[meter_id] = clients[meter_id].submit(batch)
        if submitting is not None:
            progress.advance(submitting)
    return receipts


def run_demo(
    *,
    prosumers: int = 20,
    seed: int = 0,
    period: str = DEFAULT_PERIOD,
    interval_minutes: int = 15,
    workers: int | None = None,
    workdir: Path,
    console: Console | None = None,
    db_url: str | None = None,
    keep_keys: bool = False,
    days: int | None = None,
    businesses: int = DEFAULT_BUSINESSES,
    market: bool = False,
) -> DemoResult:
    """Run the whole scenario in ``workdir``; returns what happened (raises on failure).

    ``days``: settle a billing cycle of that many days from ``period`` (with ``businesses``
    on the demand-charge plan) instead of the day ``period``. ``market``: the community
    trades the day ``period`` in the neighbourhood market instead (not with ``days``)."""
    if market:
        if days is not None:
            raise ValueError("a market demo trades one day: not with days")
        return _run_market_demo(
            prosumers=prosumers, seed=seed, period=period, interval_minutes=interval_minutes,
            workers=workers, workdir=workdir, console=console, db_url=db_url,
            keep_keys=keep_keys,
        )  # fmt: skip
    if days is not None:
        return _run_cycle_demo(
            prosumers=prosumers, seed=seed, first_period=period, days=days,
            interval_minutes=interval_minutes, workers=workers, workdir=workdir,
            console=console, db_url=db_url, keep_keys=keep_keys, businesses=businesses,
        )  # fmt: skip
    console = console if console is not None else Console()
    timings: dict[str, float] = {}
    workers = workers if workers is not None else max(1, os.cpu_count() or 1)
    url, signer = _ledger(workdir, db_url, keep_keys=keep_keys)
    t_start = time.perf_counter()
    results: list[ProsumerResult] = []
    clients: dict[str, MeterClient] = {}
    with embedded_service(url, signer=signer) as service:
        timings["start service"] = time.perf_counter() - t_start
        channel = service.channel
        log_key = service.log_key
        console.print(
            f"[bold]zkgrid demo[/]: settlement service on {service.target} (insecure loopback,"
            f" dev only), {service.store.backend} ledger"
        )
        try:
            community = make_community(prosumers, seed)
            readings: dict[str, DayReadings] = {}
            with _phase(timings, "keys + registration"), _progress(console) as progress:
                task = progress.add_task("meters: keygen + registration", total=len(community))
                for p in community:
                    home = MeterClient.keygen(
                        workdir / "meters" / p.meter_id, p.meter_id, interval_minutes
                    )
                    client = MeterClient(home, channel, insecure=True, log_key=log_key)
                    clients[p.meter_id] = client
                    # The meter hands its registration request to the utility, which submits it.
                    register_meter(channel, client.registration_request(), log_key)
                    r = day_readings(p, period, interval_minutes, seed)
                    readings[p.meter_id] = r
                    results.append(ProsumerResult(p, r.total_import_wh, r.total_export_wh))
                    progress.advance(task)

            with _phase(timings, "tariff"):
                tariff = time_of_use_tariff(period, interval_minutes)
                publish_tariff(channel, tariff, log_key)

            by_id = {r.prosumer.meter_id: r for r in results}
            with _phase(timings, "prove + submit readings"), _progress(console) as progress:
                proving = progress.add_task(
                    f"readings: prove ({workers} processes)", total=len(community)
                )
                submitting = progress.add_task(
                    "readings: submit + check receipt", total=len(community)
                )
                ctx = multiprocessing.get_context("spawn")
                with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                    receipts = _prove_and_submit_batches(
                        pool, clients, readings, progress, proving, submitting
                    )
                for meter_id, receipt in receipts.items():
                    by_id[meter_id].batch_receipt = receipt

            with _phase(timings, "prove + settle bills"), _progress(console) as progress:
                task = progress.add_task("bills: prove + settle", total=len(community))
                for p in community:
                    bill, receipt = clients[p.meter_id].settle(period)
                    by_id[p.meter_id].bill = bill
                    by_id[p.meter_id].bill_receipt = receipt
                    progress.advance(task)

            with _phase(timings, "audit"):
                _audit(channel, results)
                for p in community:  # each prosumer's statement, its receipts verified
                    statement = clients[p.meter_id].statement(period)
                    if [line.bill for line in statement.lines] != [by_id[p.meter_id].bill]:
                        raise RuntimeError(f"the statement of {p.meter_id} lacks its bill")

            checkpoint = service.store.latest_checkpoint().to_text()
            entries = service.store.size()
        finally:
            for client in clients.values():
                client.close()
    timings["total"] = time.perf_counter() - t_start
    return DemoResult(
        period=period,
        currency=tariff.currency,
        prosumers=results,
        ledger_entries=entries,
        ledger_bytes=_db_bytes(workdir / "ledger.db") if db_url is None else 0,
        checkpoint=checkpoint,
        timings=timings,
        workdir=workdir,
    )


def _run_cycle_demo(
    *,
    prosumers: int,
    seed: int,
    first_period: str,
    days: int,
    interval_minutes: int,
    workers: int | None,
    workdir: Path,
    console: Console | None,
    db_url: str | None,
    keep_keys: bool,
    businesses: int,
) -> DemoResult:
    """The billing-cycle demo (module docstring): ``prosumers`` households on the default
    tiered plan and ``businesses`` on the demand-charge plan settle ``days`` days."""
    if not 1 <= days <= MAX_CYCLE_PERIODS:
        raise ValueError(f"a billing cycle has 1 to {MAX_CYCLE_PERIODS} days")
    start = parse_period(first_period)
    last_period = (start + timedelta(days=days - 1)).isoformat()
    periods = cycle_periods(first_period, last_period)
    console = console if console is not None else Console()
    timings: dict[str, float] = {}
    workers = workers if workers is not None else max(1, os.cpu_count() or 1)
    url, signer = _ledger(workdir, db_url, keep_keys=keep_keys)
    t_start = time.perf_counter()
    results: list[ProsumerResult] = []
    clients: dict[str, MeterClient] = {}
    with embedded_service(url, signer=signer) as service:
        timings["start service"] = time.perf_counter() - t_start
        channel = service.channel
        log_key = service.log_key
        console.print(
            f"[bold]zkgrid demo[/]: settlement service on {service.target} (insecure loopback,"
            f" dev only), {service.store.backend} ledger; billing cycle"
            f" {first_period}..{last_period} ({days} days)"
        )
        try:
            community = make_community(prosumers, seed) + make_businesses(businesses, seed)
            readings: dict[str, list[DayReadings]] = {}
            by_id: dict[str, ProsumerResult] = {}
            with _phase(timings, "keys + registration"), _progress(console) as progress:
                task = progress.add_task("meters: keygen + registration", total=len(community))
                for p in community:
                    home = MeterClient.keygen(
                        workdir / "meters" / p.meter_id, p.meter_id, interval_minutes
                    )
                    client = MeterClient(home, channel, insecure=True, log_key=log_key)
                    clients[p.meter_id] = client
                    register_meter(channel, client.registration_request(), log_key)
                    cycle = [day_readings(p, d, interval_minutes, seed) for d in periods]
                    readings[p.meter_id] = cycle
                    result = ProsumerResult(
                        p,
                        sum(r.total_import_wh for r in cycle),
                        sum(r.total_export_wh for r in cycle),
                    )
                    results.append(result)
                    by_id[p.meter_id] = result
                    progress.advance(task)

            with _phase(timings, "plans"):
                tiered = tiered_plan(first_period, last_period, interval_minutes)
                plans = {p.meter_id: tiered for p in community if not p.is_business}
                publish_cycle_tariff(channel, tiered, log_key)
                business_ids = [p.meter_id for p in community if p.is_business]
                if business_ids:
                    demand = demand_plan(first_period, last_period, business_ids, interval_minutes)
                    publish_cycle_tariff(channel, demand, log_key)
                    plans |= dict.fromkeys(business_ids, demand)

            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                with _phase(timings, "prove + submit readings"), _progress(console) as progress:
                    proving = progress.add_task(
                        f"readings: prove ({workers} processes)", total=len(community) * days
                    )
                    submitting = progress.add_task(
                        "readings: submit + check receipt", total=len(community) * days
                    )
                    for d in range(days):  # a meter's next day extends its accepted chain
                        day_readings_of = {m: readings[m][d] for m in readings}
                        receipts = _prove_and_submit_batches(
                            pool, clients, day_readings_of, progress, proving, submitting
                        )
                        for meter_id, receipt in receipts.items():
                            by_id[meter_id].batch_receipt = receipt

                with _phase(timings, "prove + settle cycle bills"), _progress(
                    console
                ) as progress:
                    proving = progress.add_task(
                        f"cycle bills: prove ({workers} processes)", total=len(community)
                    )
                    settling = progress.add_task(
                        "cycle bills: settle + check receipt", total=len(community)
                    )
                    # Each meter fetches and checks the plan that bills it, then proves offline.
                    fetched = {}
                    for p in community:
                        plan = clients[p.meter_id].cycle_bill_tariff(first_period, last_period)
                        if plan != plans[p.meter_id]:
                            raise RuntimeError(f"{p.meter_id} is billed under another plan")
                        fetched[p.meter_id] = plan
                    bill_futures: dict[Future[bytes], str] = {
                        pool.submit(
                            prove_cycle_bill_in_home,
                            clients[m].home.path,
                            fetched[m].encode(),
                        ): m
                        for m in fetched
                    }
                    for fut in as_completed(bill_futures):
                        meter_id = bill_futures[fut]
                        bill = CycleBill.decode(fut.result())
                        progress.advance(proving)
                        client = clients[meter_id]
                        r = by_id[meter_id]
                        r.cycle_bill = bill
                        r.plan = fetched[meter_id]
                        r.bill_receipt = client.submit_cycle_bill(bill)
                        # The prosumer's own view: the tiers and the peak from its openings.
                        _batches, stored = client.cycle_openings(r.plan)
                        r.breakdown = r.plan.bill_breakdown(
                            [s.imports for s in stored], [s.exports for s in stored]
                        )
                        if r.breakdown.total != bill.total:
                            raise RuntimeError(f"the cycle bill of {meter_id} is not its own")
                        progress.advance(settling)

            with _phase(timings, "audit"):
                _audit_cycles(channel, results)
                for p in community:  # each meter's statement, its receipts verified
                    statement = clients[p.meter_id].statement(first_period)
                    bills = [line.bill for line in statement.cycle_lines]
                    if bills != [by_id[p.meter_id].cycle_bill]:
                        raise RuntimeError(f"the statement of {p.meter_id} lacks its cycle bill")

            checkpoint = service.store.latest_checkpoint().to_text()
            entries = service.store.size()
        finally:
            for client in clients.values():
                client.close()
    timings["total"] = time.perf_counter() - t_start
    return DemoResult(
        period=first_period,
        currency=tiered.currency,
        prosumers=results,
        ledger_entries=entries,
        ledger_bytes=_db_bytes(workdir / "ledger.db") if db_url is None else 0,
        checkpoint=checkpoint,
        timings=timings,
        workdir=workdir,
        last_period=last_period,
    )


class _Clock:
    """The embedded service's clock in a market demo: the day before (orders), then after
    the day (readings, delivery steps)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _market_orders(
    prosumer: Prosumer, expected: DayReadings, tariff: Tariff, seed: int
) -> list[tuple[Side, int, int, int, int]]:
    """A household's orders for the day, one per hour (``(side, first, last, Wh, price)``):
    with PV it offers :data:`MARKET_SHARE` of the hour's lowest expected export per
    interval, else it bids for that share of the hour's lowest expected import; its limit
    price lies between the hour's highest feed-in credit and its lowest import price (a
    seller asks for 20-40% of the way up, a buyer offers 60-90%)."""
    rng = random.Random(f"zkgrid-market/{seed}/{prosumer.meter_id}")  # noqa: S311 - simulation
    side = Side.OFFER if prosumer.has_pv else Side.BID
    fraction = rng.uniform(0.2, 0.4) if side is Side.OFFER else rng.uniform(0.6, 0.9)
    flow = expected.exports if side is Side.OFFER else expected.imports
    block = max(1, 60 // expected.interval_minutes)
    orders = []
    for first in range(0, len(flow), block):
        last = min(first + block, len(flow)) - 1
        quantity = int(min(flow[first : last + 1]) * MARKET_SHARE)
        low = max(tariff.export_credit[first : last + 1])
        high = min(tariff.import_price[first : last + 1])
        if quantity <= 0 or low > high:
            continue
        orders.append((side, first, last, quantity, low + round((high - low) * fraction)))
    return orders


def _run_market_demo(
    *,
    prosumers: int,
    seed: int,
    period: str,
    interval_minutes: int,
    workers: int | None,
    workdir: Path,
    console: Console | None,
    db_url: str | None,
    keep_keys: bool,
) -> DemoResult:
    """The community trades the day ``period`` (``zkgrid demo --market``): orders the day
    before, the clearing at gate closure, the readings and every delivery step after it."""
    console = console if console is not None else Console()
    timings: dict[str, float] = {}
    workers = workers if workers is not None else max(1, os.cpu_count() or 1)
    url, signer = _ledger(workdir, db_url, keep_keys=keep_keys)
    day = MarketDay.with_defaults(period, interval_minutes, MARKET_CREDIT_RATE)
    clock = _Clock(datetime.fromtimestamp(day.gate_closure - 3600, UTC))
    after_day = datetime.fromtimestamp(day.start + 86_400 + 3600, UTC)
    t_start = time.perf_counter()
    results: list[ProsumerResult] = []
    clients: dict[str, MeterClient] = {}
    markets: dict[str, MarketClient] = {}
    parts: dict[str, MarketPart] = {}
    with embedded_service(url, signer=signer, clock=clock) as service:
        timings["start service"] = time.perf_counter() - t_start
        channel = service.channel
        log_key = service.log_key
        console.print(
            f"[bold]zkgrid demo --market[/]: settlement service on {service.target} (insecure"
            f" loopback, dev only), {service.store.backend} ledger; the service's clock starts"
            f" at {clock.now:%Y-%m-%d %H:%M} UTC, before the gate closure"
        )
        try:
            community = make_community(prosumers, seed)
            readings: dict[str, DayReadings] = {}
            with _phase(timings, "keys + registration"), _progress(console) as progress:
                task = progress.add_task("meters: keygen, register, enrol", total=len(community))
                for p in community:
                    home = MeterClient.keygen(
                        workdir / "meters" / p.meter_id, p.meter_id, interval_minutes
                    )
                    client = MeterClient(home, channel, insecure=True, log_key=log_key)
                    clients[p.meter_id] = client
                    register_meter(channel, client.registration_request(), log_key)
                    readings[p.meter_id] = r = day_readings(p, period, interval_minutes, seed)
                    parts[p.meter_id] = MarketPart()
                    results.append(
                        ProsumerResult(
                            p, r.total_import_wh, r.total_export_wh, market=parts[p.meter_id]
                        )
                    )
                    progress.advance(task)

            with _phase(timings, "tariff + market day"):
                tariff = time_of_use_tariff(period, interval_minutes)
                publish_tariff(channel, tariff, log_key)
                publish_market_day(channel, day, metadata=UTILITY_METADATA, log_key=log_key)

            with _phase(timings, "enrol + orders"), _progress(console) as progress:
                task = progress.add_task("market: enrol + place orders", total=len(community))
                for p in community:
                    markets[p.meter_id] = mc = MarketClient(clients[p.meter_id])
                    mc.enrol()
                    expected = forecast_readings(p, period, interval_minutes, seed)
                    for side, first, last, wh, price in _market_orders(p, expected, tariff, seed):
                        mc.place(side, period, first, last, wh, price)
                        parts[p.meter_id].orders += 1
                    progress.advance(task)

            with _phase(timings, "clear"):
                clock.now = datetime.fromtimestamp(day.gate_closure, UTC)
                clearing, _, _ = clear_market(
                    channel, period, metadata=UTILITY_METADATA, log_key=log_key
                )
                prices = tuple((iv.price, iv.volume) for iv in clearing.intervals)

            clock.now = after_day  # the day is over: readings, then the delivery steps
            with _phase(timings, "prove + submit readings"), _progress(console) as progress:
                proving = progress.add_task(
                    f"readings: prove ({workers} processes)", total=len(community)
                )
                ctx = multiprocessing.get_context("spawn")
                with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                    _prove_and_submit_batches(pool, clients, readings, progress, proving)

            # Sellers first: their allocations are what the buyers' steps wait for. A trade's
            # step waits for the meter's earlier trades of its interval: a round per link of
            # the longest chain; a round that changes nothing ends the steps.
            order = sorted(community, key=lambda p: not p.has_pv)
            with _phase(timings, "delivery steps"), _progress(console) as progress:
                task = progress.add_task("market: delivery steps (rounds)", total=None)
                settled = -1
                while True:
                    reports = [markets[p.meter_id].deliver(period) for p in order]
                    outcomes = [o for r in reports for o in r.outcomes]
                    refused = [o for o in outcomes if o.status == "refused"]
                    if refused:
                        raise RuntimeError(f"a delivery step was refused: {refused[0].detail}")
                    progress.advance(task)
                    now_settled = sum(o.status == "settled" for o in outcomes)
                    if now_settled == len(outcomes):
                        break
                    if now_settled == settled and not any(o.status == "made" for o in outcomes):
                        waiting = next(o for o in outcomes if o.status == "waiting")
                        raise RuntimeError(f"the delivery steps are stuck: {waiting.detail}")
                    settled = now_settled

            for p in community:  # what each meter's own client knows
                part = parts[p.meter_id]
                own = markets[p.meter_id].trades(period)
                trade_price = {(t.interval, t.index): t.price for t in own.trades}
                part.trades = len(own.trades)
                for row in clients[p.meter_id].store.trade_deliveries(period):
                    delivered = row.delivered or 0
                    part.settled += row.settled
                    amount = delivered * trade_price[(row.interval, row.trade_index)]
                    if row.side == "seller":
                        part.sold_wh += delivered
                        part.p2p += amount
                    else:
                        part.bought_wh += delivered
                        part.p2p -= amount
            checkpoint = service.store.latest_checkpoint().to_text()
            entries = service.store.size()
        finally:
            for client in clients.values():
                client.close()
    timings["total"] = time.perf_counter() - t_start
    result = DemoResult(
        period=period,
        currency=tariff.currency,
        prosumers=results,
        ledger_entries=entries,
        ledger_bytes=_db_bytes(workdir / "ledger.db") if db_url is None else 0,
        checkpoint=checkpoint,
        timings=timings,
        workdir=workdir,
        market_day=day,
        clearing_prices=prices,
    )
    if result.p2p_total != 0:
        raise RuntimeError(
            f"the community's peer-to-peer payments do not net to zero ({result.p2p_total})"
        )
    return result


@dataclass
class _Ledger:
    """The settlement records of the ledger, as an auditor streams them."""

    entries: int = 0
    batches: dict[bytes, ReadingBatch] = field(default_factory=dict)
    tariffs: dict[bytes, Tariff] = field(default_factory=dict)
    bills: list[Bill] = field(default_factory=list)
    cycle_tariffs: dict[bytes, CycleTariff] = field(default_factory=dict)
    cycle_bills: list[CycleBill] = field(default_factory=list)


def _read_ledger(channel: grpc.Channel) -> _Ledger:
    """Stream every entry (auditor role) and decode its settlement record (any version)."""
    stub = ledger_pb2_grpc.LedgerServiceStub(channel)
    ledger = _Ledger()
    for message in stub.StreamEntries(
        ledger_pb2.StreamEntriesRequest(start_index=0), metadata=AUDITOR_METADATA, timeout=60
    ):
        entry = message.entry
        ledger.entries += 1
        kind = EntryKind(entry.kind)
        if kind not in RECORD_VERSIONS:
            continue
        record = decode_record(Entry(kind, bytes(entry.payload)))
        if isinstance(record, ReadingBatch):
            ledger.batches[record.batch_hash()] = record
        elif isinstance(record, Tariff):
            ledger.tariffs[record.tariff_hash()] = record
        elif isinstance(record, Bill):
            ledger.bills.append(record)
        elif isinstance(record, CycleTariff):
            ledger.cycle_tariffs[record.tariff_hash()] = record
        elif isinstance(record, CycleBill):
            ledger.cycle_bills.append(record)
    return ledger


def _audit_cycles(channel: grpc.Channel, results: Sequence[ProsumerResult]) -> int:
    """As an auditor over gRPC: verify every cycle bill's circuit proof against the batches
    and the plan it names in the ledger, all in one batch verification. Returns the number of
    entries read."""
    from circuits.r1cs import R1CSStatement
    from settlement.cycle_bills import cycle_bill_statement

    ledger = _read_ledger(channel)
    statements = []
    for bill in ledger.cycle_bills:
        tariff = ledger.cycle_tariffs[bill.tariff_hash]
        batches = [ledger.batches[h] for h in bill.batch_hashes]
        statements.append(cycle_bill_statement(bill, tariff, batches))
    R1CSStatement.verify_batch(statements)  # raises VerificationError
    audited = {bill.meter_id: bill for bill in ledger.cycle_bills}
    for r in results:
        r.audited = r.cycle_bill is not None and audited.get(r.prosumer.meter_id) == r.cycle_bill
    return ledger.entries


def _audit(channel: grpc.Channel, results: Sequence[ProsumerResult]) -> int:
    """As an auditor over gRPC: stream the ledger and verify every bill's proof against the
    batch commitments and the tariff in the ledger. Returns the number of entries read."""
    ledger = _read_ledger(channel)
    batches, tariffs, bills = ledger.batches, ledger.tariffs, ledger.bills
    audited = {}
    for bill in bills:
        batch = batches[bill.batch_hash]
        tariff = tariffs[bill.tariff_hash]
        LinearCombinationProof.from_bytes(bill.proof).verify(
            bill_coefficients(tariff),
            [Commitment.from_bytes(c) for c in batch.commitments],
            bill.total,
            tariff.fixed_charge,
            bill.proof_context(),
        )
        audited[bill.meter_id] = bill
    for r in results:
        r.audited = r.bill is not None and audited.get(r.prosumer.meter_id) == r.bill
    return ledger.entries


def _kwh(wh: int) -> str:
    return f"{wh / 1000:.2f}"


def _tiers_text(r: ProsumerResult) -> str:
    if r.breakdown is None or r.plan is None or not r.plan.tiers:
        return "-"
    return "+".join(f"{wh / 1000:.1f}" for wh in r.breakdown.tier_wh)


def _peak_text(r: ProsumerResult) -> str:
    if r.breakdown is None or r.plan is None or not r.plan.demand_charge:
        return "-"
    return f"{r.breakdown.demand_wh * 60 / r.plan.interval_minutes / 1000:.1f}"


#: The plans' short names in the table (the caption says what each is).
_PLAN_LABELS = {"residential-tiered": "tiered", "business-demand": "demand"}


def _plan_caption(result: DemoResult) -> str:
    plans = {r.plan.plan: r.plan for r in result.prosumers if r.plan is not None}
    out = []
    for name, plan in sorted(plans.items(), reverse=True):
        label = _PLAN_LABELS.get(name, name)
        if plan.tiers:
            blocks = ", ".join(
                f"{price / 1000:.2f} from {start / 1000:g} kWh" for start, price in plan.tiers
            )
            out.append(
                f"{label}: {name}, the default plan: {plan.tier_kind} blocks of the cycle's"
                f" import ({plan.currency}/kWh: {blocks})"
            )
        if plan.demand_charge:
            count = len(plan.meters)
            out.append(
                f"{label}: {name}, listing {count} meter{'' if count == 1 else 's'}: time of"
                f" use and {plan.demand_charge / 1e6:.2f} {plan.currency} per kW of the cycle's"
                " highest interval import"
            )
    return "\n".join(out)


def _report_cycle(console: Console, result: DemoResult) -> None:
    homes = sum(1 for r in result.prosumers if not r.prosumer.is_business)
    shops = len(result.prosumers) - homes
    table = Table(
        title=(
            f"Billing cycle {result.period}..{result.last_period} ({result.days} days):"
            f" {homes} households, {shops} business{'' if shops == 1 else 'es'}"
        ),
        caption=(
            "* known only to that meter's own client, from its openings (import/export, the"
            " kWh in each tier, the highest interval import): the service saw commitments,"
            " range proofs and each cycle bill's total, nothing else\n"
            + _plan_caption(result)
        ),
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("meter", no_wrap=True)
    table.add_column("plan", no_wrap=True)
    table.add_column("kWh in/out*", justify="right", no_wrap=True)
    table.add_column("tiers kWh*", justify="right", no_wrap=True)
    table.add_column("peak kW*", justify="right", no_wrap=True)
    table.add_column(f"bill {result.currency}", justify="right", no_wrap=True)
    table.add_column("ok", justify="center", no_wrap=True)
    for r in result.prosumers:
        total = r.total
        plan = "-" if r.plan is None else _PLAN_LABELS.get(r.plan.plan, r.plan.plan)
        table.add_row(
            r.prosumer.name,
            plan,
            f"{_kwh(r.import_wh)}/{_kwh(r.export_wh)}",
            _tiers_text(r),
            _peak_text(r),
            format_money(total, "").strip() if total is not None else "-",
            "[green]✓[/]" if r.audited and r.bill_receipt is not None else "[red]✗[/]",
        )
    total = sum(r.total or 0 for r in result.prosumers)
    table.add_section()
    imported = _kwh(sum(r.import_wh for r in result.prosumers))
    exported = _kwh(sum(r.export_wh for r in result.prosumers))
    table.add_row(
        "community", "", f"{imported}/{exported}", "", "", format_money(total, "").strip(), ""
    )
    console.print(table)
    _report_footer(console, result)


def _report_footer(console: Console, result: DemoResult) -> None:
    size = f"{result.ledger_bytes / 1024:.0f} KiB" if result.ledger_bytes else "n/a"
    console.print(f"ledger: {result.ledger_entries} entries, database {size}")
    console.print(Panel(result.checkpoint.rstrip("\n"), title="final signed checkpoint"))
    phases = "  ".join(f"{k} {v:.1f}s" for k, v in result.timings.items() if k != "total")
    console.print(f"timings: {phases}  [bold]total {result.timings['total']:.1f}s[/]")


def _money(micro: int) -> str:
    return format_money(micro, "").strip()


def _report_market(console: Console, result: DemoResult) -> None:
    day = result.market_day
    if day is None:  # pragma: no cover - only called for a market demo
        return
    traded = [(price, volume) for price, volume in result.clearing_prices if volume]
    sellers = sum(1 for r in result.prosumers if r.prosumer.has_pv)
    rate = f"{day.credit_rate * 1000 / 1e6:.3f}"
    if traded:
        low = min(price for price, _ in traded) * 1000 / 1e6
        high = max(price for price, _ in traded) * 1000 / 1e6
        prices = (
            f"{len(traded)} of {len(result.clearing_prices)} intervals cleared, at"
            f" {low:.3f}..{high:.3f} {result.currency}/kWh"
        )
    else:
        prices = "no interval cleared"
    table = Table(
        title=(
            f"Market of {result.period}: {sellers} PV households offer,"
            f" {len(result.prosumers) - sellers} households bid; {prices}"
        ),
        caption=(
            "* known only to that prosumer's own meter client (its readings and the openings"
            " of its delivery steps): the service saw orders, the clearing and commitments."
            " sold/bought: kWh delivered locally; p2p: delivered Wh x the interval's clearing"
            " price (+ revenue, - payment, the community's total exact); ok: every trade"
            " settled; the community's trades count once.\n"
            f"credits: n/b, the incentive credits ({rate} {result.currency}/kWh delivered"
            " locally, in the market day) and bills with peer-to-peer parts are not built yet"
        ),
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("prosumer", no_wrap=True)
    table.add_column("kWp", justify="right", no_wrap=True)
    table.add_column("kWh in/out*", justify="right", no_wrap=True)
    table.add_column("trades", justify="right", no_wrap=True)
    table.add_column("sold/bought*", justify="right", no_wrap=True)
    table.add_column(f"p2p {result.currency}*", justify="right", no_wrap=True)
    table.add_column("credits", justify="right", no_wrap=True)
    table.add_column("ok", justify="center", no_wrap=True)
    parts = [(r, r.market) for r in result.prosumers if r.market is not None]
    for r, m in parts:
        table.add_row(
            r.prosumer.name,
            f"{r.prosumer.pv_kwp:.1f}" if r.prosumer.has_pv else "-",
            f"{_kwh(r.import_wh)}/{_kwh(r.export_wh)}",
            str(m.trades),
            f"{_kwh(m.sold_wh)}/{_kwh(m.bought_wh)}",
            f"{m.p2p / 1e6:+.2f}" if m.p2p else "0.00",
            "n/b",
            "[green]✓[/]" if m.settled == m.trades else "[red]✗[/]",
        )
    table.add_section()
    table.add_row(
        "community", "",
        f"{_kwh(sum(r.import_wh for r, _ in parts))}/{_kwh(sum(r.export_wh for r, _ in parts))}",
        str(sum(m.trades for _, m in parts) // 2),
        f"{_kwh(sum(m.sold_wh for _, m in parts))}/{_kwh(sum(m.bought_wh for _, m in parts))}",
        _money(result.p2p_total), "", "",
    )  # fmt: skip
    console.print(table)
    _report_footer(console, result)


def _report(console: Console, result: DemoResult) -> None:
    if result.market_day is not None:
        _report_market(console, result)
        return
    if result.last_period is not None:
        _report_cycle(console, result)
        return
    table = Table(
        title=f"Settlement of {result.period}: {len(result.prosumers)} prosumers",
        caption=(
            "* known only to that prosumer's own meter client: the service saw commitments,"
            " range proofs and the bill total, nothing else"
        ),
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("prosumer", no_wrap=True)
    table.add_column("PV", justify="right", no_wrap=True)
    table.add_column("import kWh*", justify="right", no_wrap=True)
    table.add_column("export kWh*", justify="right", no_wrap=True)
    table.add_column(f"bill {result.currency}", justify="right", no_wrap=True)
    table.add_column("verified", justify="center", no_wrap=True)
    for r in result.prosumers:
        bill = r.bill.total if r.bill is not None else None
        table.add_row(
            r.prosumer.name,
            f"{r.prosumer.pv_kwp:.1f} kWp" if r.prosumer.has_pv else "-",
            _kwh(r.import_wh),
            _kwh(r.export_wh),
            format_money(bill, "").strip() if bill is not None else "-",
            "[green]✓[/]" if r.audited and r.bill_receipt is not None else "[red]✗[/]",
        )
    total = sum(r.bill.total for r in result.prosumers if r.bill is not None)
    table.add_section()
    table.add_row(
        "community", "",
        _kwh(sum(r.import_wh for r in result.prosumers)),
        _kwh(sum(r.export_wh for r in result.prosumers)),
        format_money(total, "").strip(), "",
    )  # fmt: skip
    console.print(table)
    _report_footer(console, result)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="zkgrid demo", description=__doc__.splitlines()[0], epilog=EXIT_STATUS
    )
    parser.add_argument("--prosumers", type=int, default=20, help="community size (20)")
    parser.add_argument("--seed", type=int, default=0, help="profile seed (0)")
    parser.add_argument("--period", default=DEFAULT_PERIOD, help=f"day ({DEFAULT_PERIOD})")
    parser.add_argument("--interval-minutes", type=int, default=15, help="interval (15)")
    parser.add_argument("--workers", type=int, help="proving processes (one per core)")
    parser.add_argument(
        "--days",
        type=int,
        metavar="N",
        help="settle a billing cycle of N days (1-31) from --period under cycle plans (tiers"
        " for the households, a demand charge for the businesses) instead of one day",
    )
    parser.add_argument(
        "--market",
        action="store_true",
        help="the community trades --period in the neighbourhood market instead: PV households"
        " offer part of their expected export, the others bid; cleared at gate closure, then"
        " every meter's readings and delivery steps; the table shows each meter's delivered"
        " kWh sold and bought and its peer-to-peer payments (netting to zero)",
    )
    parser.add_argument(
        "--businesses",
        type=int,
        default=DEFAULT_BUSINESSES,
        help=f"with --days: businesses on the demand-charge plan ({DEFAULT_BUSINESSES})",
    )
    parser.add_argument(
        "--keep",
        type=Path,
        help="keep the ledger, the meter homes and the log key here (prints how to audit it)",
    )
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.prosumers < 1:
        parser.error("--prosumers must be at least 1")
    if args.days is not None and not 1 <= args.days <= MAX_CYCLE_PERIODS:
        parser.error(f"--days must be 1 to {MAX_CYCLE_PERIODS} (a billing cycle)")
    if args.businesses < 0:
        parser.error("--businesses must not be negative")
    if args.market and args.days is not None:
        parser.error("--market trades one day: not with --days")
    if args.days is None and args.businesses != DEFAULT_BUSINESSES:
        parser.error("--businesses goes with --days (a billing cycle)")
    logging.basicConfig(level=logging.WARNING)
    console = Console()
    try:
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True, mode=0o700)
            if any(args.keep.iterdir()):
                parser.error(f"--keep {args.keep}: the directory must be empty")
            result = run_demo(
                prosumers=args.prosumers, seed=args.seed, period=args.period,
                interval_minutes=args.interval_minutes, workers=args.workers,
                workdir=args.keep, console=console, keep_keys=True,
                days=args.days, businesses=args.businesses, market=args.market,
            )  # fmt: skip
        else:
            with tempfile.TemporaryDirectory(prefix="zkgrid-demo-") as tmp:
                result = run_demo(
                    prosumers=args.prosumers, seed=args.seed, period=args.period,
                    interval_minutes=args.interval_minutes, workers=args.workers,
                    workdir=Path(tmp), console=console,
                    days=args.days, businesses=args.businesses, market=args.market,
                )  # fmt: skip
    except KeyboardInterrupt:
        console.print("interrupted")
        return 130
    except Exception as exc:
        console.print(f"[red]demo failed:[/] {type(exc).__name__}: {exc}")
        return 1
    _report(console, result)
    if not result.ok:
        if result.market_day is not None:
            console.print("[red]some trades did not settle[/]")
        else:
            console.print("[red]some bills did not verify[/]")
        return 1
    if result.market_day is not None:
        console.print(
            "[green]every order, the clearing, every batch and delivery step accepted; every"
            " trade settled; the peer-to-peer payments net to zero[/]"
        )
    elif result.last_period is not None:
        console.print("[green]every batch, cycle bill and receipt verified[/]")
    else:
        console.print("[green]every batch, bill and receipt verified[/]")
    if args.keep is not None:
        _print_kept(console, args.keep)
    return 0


def kept_commands(keep: Path) -> list[list[str]]:
    """The commands that audit (and serve again) a ledger kept with ``--keep DIR``."""
    db = f"sqlite:///{keep / 'ledger.db'}"
    return [
        ["zkgrid", "ledger", "export", "--db", db, "--out", str(keep / "ledger.zkla")],
        ["zkgrid", "audit", "--archive", str(keep / "ledger.zkla"),
         "--log-key-file", str(keep / (LOG_KEY_FILE + ".pub"))],
        ["zkgrid", "serve", "--db", db, "--log-key", str(keep / LOG_KEY_FILE),
         "--origin", ORIGIN, "--insecure"],
    ]  # fmt: skip


def _print_kept(console: Console, keep: Path) -> None:
    import shlex

    audit, serve = kept_commands(keep)[:2], kept_commands(keep)[2]
    console.print(
        f"kept in {keep}: the ledger, the meters' homes, the log key ({LOG_KEY_FILE}) and its"
        f" verifier key ({LOG_KEY_FILE}.pub). Audit it:"
    )
    for command in audit:
        console.print("  " + shlex.join(command), markup=False, highlight=False)
    console.print("or serve it again:")
    console.print("  " + shlex.join(serve), markup=False, highlight=False)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
