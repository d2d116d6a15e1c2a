"""Neighbourhood-market benchmarks (issue 13), each proof next to its floor measured in
the same run.

    python -m bench.market --json            # a day of 1,000 prosumers, 96 intervals
    python -m bench.market --quick --json    # 100 prosumers (a smoke run, well under a minute)

The day: ``prosumers`` meters, 30 % with PV offering their surplus for each daylight
hour (one order per hour, seeded random Wh per 15-minute interval, limit prices between
the feed-in credit and the import price), the others bidding for their consumption in
six four-hour blocks. Measured:

1. :func:`settlement.market.clear` over the day's orders (target <= 2 s) and its trades;
2. one allocation and one delivery step (prove, verify alone against its floor), the
   sealing and opening of a step's opening to the counterparty, and a batch verification
   of the day's steps (all of them, or ``--sample`` of them: the trades of the busiest
   intervals in trade order, so with real chains of earlier deliveries), per step
   against the floor's per-step share;
3. an estimate of the day settled, from those measured parts: steps x mean prove time /
   2 cores, plus the sealing and opening, plus the batch verification per step x steps.
   The end-to-end gRPC day is not measured here.

Floor: one plain single-threaded petlib ``wsum`` over as many points as the verifier's
multi-scalar multiplication (``2 n' + 3`` generators, the committed inputs, the proof's
``8 + 2k`` points), as in :mod:`bench.circuits`; for a batch, the shared generators once
and every step's own points. Verification times include building the statement (the
circuit on the verifier's side) from the step's bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

from bench.rangeproof import _timeit, wsum_floor
from circuits.r1cs import R1CSProof, R1CSStatement
from settlement.market import MarketDay, Order, Side, clear, trade_id
from settlement.market_circuits import (
    ALLOCATION,
    DELIVERY,
    allocation_statement,
    delivery_context,
    delivery_statement,
    prove_allocation,
    prove_delivery,
)
from settlement.records import MeterKey
from settlement.sealed import EncryptionKey, open_sealed, seal
from zkp.group import Scalar, random_scalar
from zkp.pedersen import commit

PERIOD = "2026-06-21"
INTERVALS = 96
#: Micro-currency per Wh: the feed-in credit and the import price (0.06 and 0.30 per kWh).
FEED_IN = 60
IMPORT = 300
#: Daylight hours with PV surplus (UTC), both included.
SUN = (7, 18)


def _points(proof: bytes, inputs: int) -> int:
    rounds = R1CSProof.from_bytes(proof).rounds
    return 2 * (1 << rounds) + 3 + inputs + 8 + 2 * rounds


def _shared(proof: bytes) -> int:
    return 2 * (1 << R1CSProof.from_bytes(proof).rounds) + 3


# --------------------------------------------------------------------------- the day


def make_orders(prosumers: int, seed: int) -> tuple[list[Order], dict[str, bool]]:
    """The day's orders in ledger order (the meters' in turn), and which meters have PV."""
    rng = random.Random(seed)
    sellers = prosumers * 3 // 10
    pv = {f"meter-{m:04d}": m < sellers for m in range(prosumers)}
    keys = {meter: MeterKey.generate() for meter in pv}
    orders: list[Order] = []
    nonce = 0

    def add(meter: str, side: Side, first: int, last: int, wh: int, price: int) -> None:
        nonlocal nonce
        nonce += 1
        orders.append(Order.create(
            keys[meter], meter_id=meter, period=PERIOD, side=side, first_interval=first,
            last_interval=last, quantity_wh=wh, limit_price=price, nonce=nonce,
        ))  # fmt: skip

    for meter, has_pv in pv.items():
        if has_pv:
            peak = rng.randrange(300, 1_200)  # Wh per 15 minutes at noon (1.2-4.8 kW surplus)
            for hour in range(SUN[0], SUN[1] + 1):
                sun = 1 - abs(hour + 0.5 - 12.5) / 6.5  # a triangle over the day
                wh = max(1, int(peak * sun * rng.uniform(0.7, 1.1)))
                price = rng.randrange(FEED_IN + 5, FEED_IN + 120)
                add(meter, Side.OFFER, 4 * hour, 4 * hour + 3, wh, price)
        else:
            base = rng.randrange(60, 250)  # Wh per 15 minutes (0.24-1 kW)
            for block in range(6):
                wh = max(1, int(base * rng.uniform(0.6, 1.6)))
                price = rng.randrange(IMPORT - 150, IMPORT - 5)
                add(meter, Side.BID, 16 * block, 16 * block + 15, wh, price)
    return orders, pv


# --------------------------------------------------------------------------- the steps


@dataclass
class Step:
    """A proven step, as the service holds it: what its statement needs."""

    kind: str
    tid: bytes
    first: bytes  # allocation: the export E; delivery: the allocation A
    second: bytes  # delivery: the import I; allocation: unused
    earlier: list[bytes]
    quantity: int
    output: bytes
    proof: bytes
    prove_s: float

    def statement(self) -> R1CSStatement:
        if self.kind == ALLOCATION:
            return allocation_statement(
                self.tid, self.first, self.earlier, self.quantity, self.output, self.proof
            )
        return delivery_statement(
            self.tid, self.first, self.second, self.earlier, self.output, self.proof
        )

    @property
    def inputs(self) -> int:
        return len(self.earlier) + (2 if self.kind == ALLOCATION else 3)


class Reading:
    """A party's committed reading of an interval, with the deliveries of its trades so far."""

    def __init__(self, value: int) -> None:
        self.value = value
        self.blinding: Scalar = random_scalar()
        self.commitment = commit(value, self.blinding).to_bytes()
        self.delivered: list[tuple[bytes, tuple[int, Scalar]]] = []


def prove_interval(
    digest: bytes, interval: int, trades: Any, offered: dict[str, int], wanted: dict[str, int],
    rng: random.Random, limit: int,
) -> list[Step]:  # fmt: skip
    """Both steps of the trades of ``interval`` in trade order (the first ones, until
    ``limit`` steps: a prefix keeps every chain of earlier deliveries whole), with the
    parties' readings drawn around their orders (PV 80-110 % of the offer, loads 70-120 %)."""
    readings: dict[str, Reading] = {}
    steps: list[Step] = []
    for k, trade in enumerate(trades):
        if len(steps) >= limit:
            break
        seller = readings.setdefault(
            trade.seller, Reading(int(offered[trade.seller] * rng.uniform(0.8, 1.1)))
        )
        buyer = readings.setdefault(
            trade.buyer, Reading(int(wanted[trade.buyer] * rng.uniform(0.7, 1.2)))
        )
        tid = trade_id(digest, interval, k)
        start = time.perf_counter()
        a = prove_allocation(
            tid, seller.commitment, (seller.value, seller.blinding),
            [c for c, _ in seller.delivered], [o for _, o in seller.delivered], trade.quantity,
        )  # fmt: skip
        a_s = time.perf_counter() - start
        a_value = min(trade.quantity, seller.value - sum(o[0] for _, o in seller.delivered))
        steps.append(Step(ALLOCATION, tid, seller.commitment, b"",
                          [c for c, _ in seller.delivered], trade.quantity, a.commitment,
                          a.proof, a_s))  # fmt: skip
        start = time.perf_counter()
        d = prove_delivery(
            tid, a.commitment, (a_value, a.blinding), buyer.commitment,
            (buyer.value, buyer.blinding), [c for c, _ in buyer.delivered],
            [o for _, o in buyer.delivered],
        )  # fmt: skip
        d_s = time.perf_counter() - start
        d_value = min(a_value, buyer.value - sum(o[0] for _, o in buyer.delivered))
        earlier = [c for c, _ in buyer.delivered]
        steps.append(
            Step(DELIVERY, tid, a.commitment, buyer.commitment, earlier, 0, d.commitment,
                 d.proof, d_s)
        )  # fmt: skip
        for party in (seller, buyer):
            party.delivered.append((d.commitment, (d_value, d.blinding)))
    return steps


def one_step(step: Step, sampled: list[Step], repeat: int) -> dict[str, Any]:
    """Verify one step alone (statement built from bytes), against its floor; its prove
    time is the median over the ``sampled`` steps of its kind."""
    verify_s = _timeit(lambda: R1CSStatement.verify_batch([step.statement()]), repeat)
    points = _points(step.proof, step.inputs)
    floor_s = wsum_floor(points, repeat)
    return {
        "step": step.kind,
        "earlier_inputs": len(step.earlier),
        "inputs": step.inputs,
        "proof_bytes": len(step.proof),
        "prove_median_s": round(statistics.median(s.prove_s for s in sampled), 4),
        "verify_s": round(verify_s, 5),
        "floor_points": points,
        "floor_s": round(floor_s, 5),
        "verify_over_floor": round(verify_s / floor_s, 3),
    }


def sealing(repeat: int) -> dict[str, Any]:
    """Seal a step's opening to the counterparty's key, and open it (decrypt and check)."""
    buyer = EncryptionKey.generate()
    value, blinding = 742, random_scalar()
    commitment = commit(value, blinding).to_bytes()
    context = delivery_context(bytes(32), ALLOCATION)
    box = seal(value, blinding, buyer.public_key, context)
    seal_s = _timeit(lambda: seal(value, blinding, buyer.public_key, context), repeat)
    open_s = _timeit(lambda: open_sealed(box, buyer, commitment, context), repeat)
    return {"box_bytes": len(box), "seal_s": round(seal_s, 6), "open_sealed_s": round(open_s, 6)}


def batch(steps: list[Step], repeat: int) -> dict[str, Any]:
    verify_s = _timeit(lambda: R1CSStatement.verify_batch([s.statement() for s in steps]),
                       repeat)  # fmt: skip
    shared = _shared(steps[0].proof)
    points = shared + sum(_points(s.proof, s.inputs) - shared for s in steps)
    floor_s = wsum_floor(points, repeat)
    return {
        "steps": len(steps),
        "verify_s": round(verify_s, 4),
        "per_step_ms": round(1000 * verify_s / len(steps), 3),
        "floor_points": points,
        "floor_s": round(floor_s, 4),
        "floor_share_ms": round(1000 * floor_s / len(steps), 3),
        "per_step_over_floor_share": round(verify_s / floor_s, 3),
    }


# --------------------------------------------------------------------------- main


def run(prosumers: int, sample: int, repeat: int, seed: int) -> dict[str, Any]:
    def progress(what: str) -> None:
        print(f"bench.market: {what}", file=sys.stderr, flush=True)

    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "day": {"prosumers": prosumers, "with_pv": prosumers * 3 // 10,
                "intervals": INTERVALS, "interval_minutes": 15, "seed": seed},
    }  # fmt: skip
    progress(f"signing the orders of {prosumers} prosumers ...")
    orders, _pv = make_orders(prosumers, seed)
    market_day = MarketDay.with_defaults(PERIOD, 15, 20)
    progress(f"clearing {len(orders)} orders ...")
    clear_s = _timeit(lambda: clear(market_day, orders), repeat)
    clearing = clear(market_day, orders)
    trades = sum(len(r.trades) for r in clearing.intervals)
    busiest = max(len(r.trades) for r in clearing.intervals)
    results["clearing"] = {
        "orders": len(orders),
        "clear_s": round(clear_s, 4),
        "target_s": 2.0,
        "met": clear_s <= 2.0,
        "trades": trades,
        "steps": 2 * trades,
        "intervals_with_trades": sum(1 for r in clearing.intervals if r.trades),
        "most_trades_in_an_interval": busiest,
        "volume_wh": sum(r.volume for r in clearing.intervals),
        "prices": sorted({r.price for r in clearing.intervals if r.volume}),
    }

    # the steps: the busiest intervals' trades in trade order until the sample is reached
    digest = clearing.clearing_hash()
    rng = random.Random(seed + 1)
    order_of = sorted(range(INTERVALS), key=lambda t: -len(clearing.intervals[t].trades))
    steps: list[Step] = []
    for t in order_of:
        if len(steps) >= sample or not clearing.intervals[t].trades:
            break
        offered: dict[str, int] = {}
        wanted: dict[str, int] = {}
        for o in orders:
            if o.covers(t):
                (offered if o.side is Side.OFFER else wanted)[o.meter_id] = o.quantity_wh
        progress(f"proving interval {t} ({len(clearing.intervals[t].trades)} trades) ...")
        steps += prove_interval(
            digest, t, clearing.intervals[t].trades, offered, wanted, rng, sample - len(steps)
        )
    allocation = [s for s in steps if s.kind == ALLOCATION]
    delivery = [s for s in steps if s.kind == DELIVERY]
    results["prove"] = {
        "sampled_steps": len(steps),
        "allocation_mean_s": round(statistics.fmean(s.prove_s for s in allocation), 4),
        "delivery_mean_s": round(statistics.fmean(s.prove_s for s in delivery), 4),
        "mean_s": round(statistics.fmean(s.prove_s for s in steps), 4),
        "max_earlier_inputs": max(len(s.earlier) for s in steps),
    }
    progress("one step of each kind ...")
    results["allocation_step"] = one_step(allocation[0], allocation, repeat)
    results["delivery_step"] = one_step(delivery[0], delivery, repeat)
    results["sealed_opening"] = sealing(repeat)
    progress(f"batch of {len(steps)} steps ...")
    results["batch"] = batch(steps, repeat)

    # the day, estimated from the measured parts
    day_steps = 2 * trades
    prove_day = day_steps * results["prove"]["mean_s"] / 2
    sealed = results["sealed_opening"]
    seal_day = day_steps * (sealed["seal_s"] + sealed["open_sealed_s"]) / 2
    verify_day = day_steps * results["batch"]["per_step_ms"] / 1000
    results["day_estimate"] = {
        "note": "an estimate from the parts measured above (not an end-to-end gRPC day):"
                " steps x mean prove / 2 cores + steps x (seal + open_sealed) / 2 cores"
                " + steps x batch verify per step",
        "steps": day_steps,
        "prove_s": round(prove_day, 1),
        "seal_and_open_s": round(seal_day, 2),
        "batch_verify_s": round(verify_day, 1),
        "total_s": round(clear_s + prove_day + seal_day + verify_day, 1),
    }  # fmt: skip
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.market",
        description="Market benchmarks (issue 13): clearing, delivery steps vs their floors,"
        " the day's settlement estimated from measured parts.",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--quick", action="store_true", help="100 prosumers (a smoke run)")
    parser.add_argument("--prosumers", type=int, help="meters in the market (default 1,000)")
    parser.add_argument(
        "--sample", type=int, help="steps proven and batch-verified, at least (500; quick 100)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed repetitions (median)")
    parser.add_argument("--seed", type=int, default=13, help="seed of the day's orders")
    args = parser.parse_args(argv)
    prosumers = args.prosumers or (100 if args.quick else 1_000)
    sample = args.sample or (100 if args.quick else 500)
    if prosumers < 4 or sample < 2 or args.repeat < 1:
        parser.error("at least 4 prosumers, a sample of 2 steps and 1 repetition")
    start = time.perf_counter()
    results = run(prosumers, sample, args.repeat, args.seed)
    print(f"bench.market: done in {time.perf_counter() - start:.1f} s", file=sys.stderr,
          flush=True)  # fmt: skip
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for name, value in results.items():
            print(name, value)
    return 0


if __name__ == "__main__":
    sys.exit(main())
