"""Denial of service: the honest throughput of a ``zkgrid serve`` under abuse (issue 10, §1).

::

    python -m bench.dos --json [--backend sqlite|postgres|both] [--meters N] [--seconds S]
                        [--quick]

Every scenario runs on a fresh ledger (a SQLite file in a temporary directory,
or a scratch PostgreSQL database created and dropped, :mod:`bench.pg`) served
by its own ``zkgrid serve --insecure`` process on 127.0.0.1:0, with the
server's defaults (RPC workers, verifier processes: one per two cores): the
server is measured alone, the client threads' GIL stays in this process. Only
the public gRPC API is used (insecure loopback mode: callers name their role
and identity in metadata).

Setup (not timed): the utility registers the ``--meters`` honest meters, one
warm-up meter, :data:`ABUSERS` abusive meters and :data:`ABUSERS` witnesses; the
warm-up meter submits its batch, so the verifier process is up before the
timed phase. The batches are the cached ones of :mod:`bench.e2e`
(``.zkgrid/bench-cache/``, generated once on a process pool: about 1-2 s per
meter per core for 96 intervals), one per meter, replayed in every scenario.

**Honest load**: ``--concurrency`` client threads (closed loop) submit the
honest meters' valid batches until all are answered or ``--seconds`` have
passed. A batch refused with RESOURCE_EXHAUSTED or UNAVAILABLE is retried (its
RetryInfo delay honoured, at most 2 s, at most :data:`HONEST_ATTEMPTS`
attempts), as a real meter would. Honest throughput = batches accepted / wall
time of the honest phase; latency is from the first attempt to the answer.
Receipts are not verified (client CPU would compete with the server's).

**Abuse**, started :data:`WARMUP_S` before the honest phase and stopped at its end:

* ``proof``: reading batches of registered abusive meters, correctly signed,
  that pass every chain and period check (sequence 0, the meter's first batch:
  nothing is appended for them, so they can be resent forever) but whose range
  proof does not verify: the last scalar of a valid proof plus ``k`` (still
  below the group order, so the proof parses: ``PROOF_INVALID``, not
  ``PROOF_MALFORMED``; checked locally once, and against the server once per
  backend), re-signed with the meter's key. :data:`VARIANTS` distinct
  payloads per meter, cycled (a server cannot answer from a cache of bad
  digests).
* ``cosig``: ``AddCosignature`` calls (auditor role) naming the server's latest
  checkpoint and a registered witness, with a well-formed BLS signature by that
  witness's registered key over another checkpoint (same origin and size, a
  random root): ``COSIGNATURE_INVALID``. :data:`VARIANTS` distinct signatures
  per witness.

``full``: one caller, ``--attack-streams`` (default 16) requests in flight, each
resent as soon as it is answered, whatever the answer. ``1%``/``10%``: the abuse is
paced (open loop) at ``p / (1 - p)`` x the clean run's honest rate of the same
backend, from one caller or shared round-robin by :data:`ABUSERS` callers
(distinct meters, or distinct auditor identities each naming its own witness).

The machine this runs on may be shared, and its load drift between scenarios, so
each abuse scenario is paired by default with a clean run just before it (its
own fresh ledger and server): ``ratio_to_clean`` is the scenario's honest rate
over its pair's, and the pace above uses the pair's rate; ``ratio_to_first_clean``
compares with the backend's first clean run (``--unpaired``: no pairs, half the
time, a last clean run shows the drift).

Targets (issue 10): with one abusive caller the honest throughput stays >= 80%
of the clean run; with garbage from many callers >= 70% (stated for 10%; the
1% many-caller scenarios, a weaker attack, are held to the same 70%).
Exit code 0 when every target is met, 1 when one is missed, 2 when the
benchmark could not run.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import platform
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from bench.e2e import DEFAULT_CACHE, PERIOD, CachedMeter, load_or_generate
from bench.pg import backend_url, default_pg_admin_url
from ledger.checkpoint import Checkpoint, SignedCheckpoint
from ledger.cosignature import cosigned_message
from settlement import convert
from settlement.records import RANGE_PROOF_BITS, MeterRegistration, ReadingBatch
from witness.keys import WitnessKey
from zkgrid._internal.channels import dev_metadata
from zkgrid.errors import Reason, ZkgridError
from zkgrid.settlement.v1 import (
    ledger_pb2,
    ledger_pb2_grpc,
    meters_pb2,
    meters_pb2_grpc,
    readings_pb2,
    readings_pb2_grpc,
    witness_pb2,
    witness_pb2_grpc,
)
from zkp.group import ORDER, SCALAR_BYTES
from zkp.pedersen import Commitment
from zkp.rangeproof import RangeProof

ROOT = Path(__file__).resolve().parents[1]
ORIGIN = "zkgrid.bench/dos"
#: Abusive callers of the many-caller scenarios (meters, or auditors with a witness each).
ABUSERS = 20
#: Distinct invalid payloads per abusive meter or witness, cycled.
VARIANTS = 16
#: Seconds the abuse runs before the honest phase starts.
WARMUP_S = 1.0
#: Attempts per honest batch (retried after RESOURCE_EXHAUSTED / UNAVAILABLE only).
HONEST_ATTEMPTS = 5
RETRY_CODES = frozenset({grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE})
MAX_RETRY_DELAY_S = 2.0
#: Threads that send the paced abuse (open loop: a slow answer does not slow the pace).
PACED_SENDERS = 64
TARGET_ONE_CALLER = 0.80
TARGET_MANY_CALLERS = 0.70
UTILITY = dev_metadata("utility")


def log(message: str) -> None:
    print(f"bench.dos: {message}", file=sys.stderr, flush=True)


class CouldNotRun(Exception):
    """The benchmark could not run (exit code 2)."""


# --------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str  # "clean", "proof" or "cosig"
    callers: int = 0  # abusive callers
    fraction: float | None = None  # share of all requests; None: full speed (closed loop)

    @property
    def target(self) -> float | None:
        if self.kind == "clean":
            return None
        return TARGET_ONE_CALLER if self.callers == 1 else TARGET_MANY_CALLERS


def all_scenarios() -> list[Scenario]:
    out = [Scenario("clean", "clean")]
    for kind in ("proof", "cosig"):
        out.append(Scenario(f"{kind}-one-full", kind, 1, None))
        for callers, who in ((1, "one"), (ABUSERS, "many")):
            for pct in (1, 10):
                out.append(Scenario(f"{kind}-{who}-{pct}pct", kind, callers, pct / 100))
    return out


# --------------------------------------------------------------------------- answers


def answer_of(exc: grpc.RpcError) -> tuple[str, float | None]:
    """``"CODE/REASON"`` of a failed call (``REASON`` from its ErrorInfo, ``-`` without one)
    and its RetryInfo delay in seconds, if any."""
    from google.protobuf.message import DecodeError
    from google.rpc import error_details_pb2  # type: ignore[import-untyped]
    from grpc_status import rpc_status

    code = exc.code() if isinstance(exc, grpc.Call) else None
    name = code.name if code is not None else "UNKNOWN"
    reason = "-"
    delay: float | None = None
    try:
        status = rpc_status.from_call(exc) if isinstance(exc, grpc.Call) else None
    except (ValueError, DecodeError):
        status = None
    if status is not None:
        for detail in status.details:
            info = error_details_pb2.ErrorInfo()
            retry = error_details_pb2.RetryInfo()
            if detail.Is(info.DESCRIPTOR) and detail.Unpack(info):
                reason = str(info.reason) or "-"
            elif detail.Is(retry.DESCRIPTOR) and detail.Unpack(retry):
                delay = retry.retry_delay.seconds + retry.retry_delay.nanos / 1e9
    return f"{name}/{reason}", delay


def _percentiles_ms(samples: Sequence[float]) -> dict[str, float | None]:
    if not samples:
        return {"p50": None, "p99": None}
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"p50": round(statistics.median(ordered) * 1e3, 1), "p99": round(p99 * 1e3, 1)}


# --------------------------------------------------------------------------- abusive payloads


def invalid_batches(meter: CachedMeter, count: int) -> list[ReadingBatch]:
    """``count`` batches of ``meter`` signed with its key whose range proof parses but does not
    verify: the proof's last scalar (``b``) plus ``k``, ``k`` = 1..count (mod the order)."""
    proof = meter.batch.range_proof
    head, last = proof[:-SCALAR_BYTES], int.from_bytes(proof[-SCALAR_BYTES:], "big")
    b = meter.batch
    return [
        ReadingBatch.create(
            meter.key,
            meter_id=b.meter_id,
            period=b.period,
            interval_minutes=b.interval_minutes,
            sequence=b.sequence,
            prev_hash=b.prev_hash,
            commitments=b.commitments,
            range_proof=head + ((last + k) % ORDER).to_bytes(SCALAR_BYTES, "big"),
        )
        for k in range(1, count + 1)
    ]


def check_invalid_locally(batch: ReadingBatch, key_public: bytes) -> None:
    """The abusive batch is what it should be: signature valid, proof parses, proof invalid."""
    batch.verify_signature(key_public)
    proof = RangeProof.from_bytes(batch.range_proof)  # raises PROOF_MALFORMED if not
    try:
        proof.verify(
            [Commitment.from_bytes(c) for c in batch.commitments],
            RANGE_PROOF_BITS,
            batch.proof_context(),
        )
    except ZkgridError as exc:
        if exc.reason != Reason.PROOF_INVALID:
            raise CouldNotRun(
                f"the mutated proof fails with {exc.reason}, not PROOF_INVALID"
            ) from None
        return
    raise CouldNotRun("the mutated range proof still verifies")


def invalid_cosignatures(key: WitnessKey, count: int) -> list[bytes]:
    """Signatures by ``key`` over checkpoints that the server never signed (random roots)."""
    return [
        key.sign(cosigned_message(Checkpoint(ORIGIN, 1, secrets.token_bytes(32))))
        for _ in range(count)
    ]


@dataclass
class Abusers:
    """What every scenario's abusers send, built once per run."""

    meters: list[CachedMeter]
    batches: list[list[readings_pb2.SubmitReadingsRequest]]  # per meter, VARIANTS each
    witnesses: list[WitnessKey]
    signatures: list[list[bytes]]  # per witness, VARIANTS each


def build_abusers(meters: list[CachedMeter]) -> Abusers:
    batches = []
    for m in meters:
        bad = invalid_batches(m, VARIANTS)
        batches.append(
            [readings_pb2.SubmitReadingsRequest(batch=convert.reading_batch_to_proto(b))
             for b in bad]
        )  # fmt: skip
    check_invalid_locally(invalid_batches(meters[0], 1)[0], meters[0].key.public_key)
    witnesses = [WitnessKey.generate(f"bench-witness-{i:02d}") for i in range(len(meters))]
    signatures = [invalid_cosignatures(w, VARIANTS) for w in witnesses]
    return Abusers(meters, batches, witnesses, signatures)


# --------------------------------------------------------------------------- the server


def _tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its living descendants (verifier workers)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    wanted = {pid}
    grew = True
    while grew:
        grew = False
        for child, parent in parents.items():
            if parent in wanted and child not in wanted:
                wanted.add(child)
                grew = True
    return sum(times.get(p, 0.0) for p in wanted)


@contextlib.contextmanager
def zkgrid_serve(db_url: str, workdir: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A ``zkgrid serve --insecure`` process on 127.0.0.1:0 over ``db_url``; yields it and its
    target; SIGTERM (then SIGKILL) when done. Its log goes to ``workdir/server.log``."""
    log_path = workdir / "server.log"
    with log_path.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
            [sys.executable, "-m", "cli.main", "serve", "--insecure",
             "--listen", "127.0.0.1:0", "--db", db_url,
             "--log-key", str(workdir / "log.key"), "--origin", ORIGIN,
             "--startup-check", "quick"],
            stdout=subprocess.DEVNULL, stderr=out, cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        port = None
        while time.monotonic() < deadline and port is None:
            found = re.search(rb"serving .* on 127\.0\.0\.1:(\d+)", log_path.read_bytes())
            if found:
                port = int(found.group(1))
            elif proc.poll() is not None:
                break
            else:
                time.sleep(0.05)
        if port is None:
            tail = log_path.read_bytes()[-2000:].decode(errors="replace")
            raise CouldNotRun(f"zkgrid serve did not start; its log ends with:\n{tail}")
        yield proc, f"127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


# --------------------------------------------------------------------------- the load


@dataclass
class AttackStats:
    sent: int = 0
    answers: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, answer: str, latency: float) -> None:
        with self.lock:
            self.answers[answer] += 1
            self.latencies.append(latency)


class Attack:
    """The abuse of one scenario: ``start()``, then ``stop()`` (joins every sender)."""

    def __init__(
        self,
        scenario: Scenario,
        calls: list[Callable[[], Any]],
        *,
        streams: int,
        rate: float | None,
    ) -> None:
        self.scenario = scenario
        self.calls = calls  # one per caller; each sends that caller's next payload
        self.streams = streams
        self.rate = rate
        self.stats = AttackStats()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pool: ThreadPoolExecutor | None = None

    def _one(self, call: Callable[[], Any]) -> None:
        with self.stats.lock:
            self.stats.sent += 1
        start = time.perf_counter()
        try:
            call()
            answer = "OK"
        except grpc.RpcError as exc:
            answer = answer_of(exc)[0]
        self.stats.record(answer, time.perf_counter() - start)

    def _closed_loop(self) -> None:
        call = self.calls[0]
        while not self._stop.is_set():
            self._one(call)

    def _paced(self) -> None:
        assert self.rate is not None
        assert self._pool is not None
        started = time.perf_counter()
        for i in itertools.count():
            due = started + i / self.rate
            if self._stop.wait(max(0.0, due - time.perf_counter())):
                return
            self._pool.submit(self._one, self.calls[i % len(self.calls)])

    def start(self) -> None:
        if self.rate is None:
            self._threads = [
                threading.Thread(target=self._closed_loop, daemon=True) for _ in range(self.streams)
            ]
        else:
            self._pool = ThreadPoolExecutor(PACED_SENDERS, thread_name_prefix="abuse")
            self._threads = [threading.Thread(target=self._paced, daemon=True)]
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


@dataclass
class HonestResult:
    accepted: int
    wall_s: float
    latencies: list[float]
    failed: Counter[str]
    failed_attempts: Counter[str]
    unsent: int


def honest_phase(
    stub: readings_pb2_grpc.ReadingServiceStub,
    requests: Sequence[tuple[str, readings_pb2.SubmitReadingsRequest]],
    *,
    concurrency: int,
    seconds: float,
    timeout: float,
) -> HonestResult:
    """Submit every request from ``concurrency`` threads (closed loop); stop taking new ones
    after ``seconds``."""
    lock = threading.Lock()
    cursor = iter(range(len(requests)))
    latencies: list[float] = []
    failed: Counter[str] = Counter()
    attempts_failed: Counter[str] = Counter()
    accepted = 0
    sent = 0
    started = time.perf_counter()
    deadline = started + seconds

    def worker() -> None:
        nonlocal accepted, sent
        while True:
            with lock:
                if time.perf_counter() > deadline:
                    return
                i = next(cursor, None)
                if i is None:
                    return
                sent += 1
            meter_id, request = requests[i]
            metadata = dev_metadata("meter", meter_id)
            first = time.perf_counter()
            outcome = "OK"
            for attempt in range(HONEST_ATTEMPTS):
                try:
                    response = stub.SubmitReadings(request, metadata=metadata, timeout=timeout)
                    outcome = "OK" if response.HasField("receipt") else "OK/NO_RECEIPT"
                    break
                except grpc.RpcError as exc:
                    outcome, delay = answer_of(exc)
                    with lock:
                        attempts_failed[outcome] += 1
                    if exc.code() not in RETRY_CODES or attempt == HONEST_ATTEMPTS - 1:
                        break
                    time.sleep(min(MAX_RETRY_DELAY_S, delay if delay else 0.05 * 2**attempt))
            with lock:
                if outcome == "OK":
                    accepted += 1
                    latencies.append(time.perf_counter() - first)
                else:
                    failed[outcome] += 1

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    return HonestResult(accepted, wall, latencies, failed, attempts_failed, len(requests) - sent)


# --------------------------------------------------------------------------- one scenario


@dataclass(frozen=True)
class Settings:
    concurrency: int
    attack_streams: int
    seconds: float
    timeout: float
    pg_admin: str
    interval_minutes: int


def _setup(
    channel: grpc.Channel,
    honest: Sequence[CachedMeter],
    warm: CachedMeter,
    abusers: Abusers,
    interval_minutes: int,
) -> None:
    """Register every meter and witness (a few threads), then submit the warm-up batch."""
    meters = meters_pb2_grpc.MeterServiceStub(channel)
    witnesses = witness_pb2_grpc.WitnessServiceStub(channel)

    def register(m: CachedMeter) -> None:
        registration = MeterRegistration.create(m.key, m.meter_id, interval_minutes)
        meters.RegisterMeter(
            meters_pb2.RegisterMeterRequest(registration=convert.registration_to_proto(registration)),
            metadata=UTILITY, timeout=60,
        )  # fmt: skip

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(register, [*honest, warm, *abusers.meters]))
    for w in abusers.witnesses:
        witnesses.RegisterWitness(
            witness_pb2.RegisterWitnessRequest(registration=w.registration().encode()),
            metadata=UTILITY, timeout=60,
        )  # fmt: skip
    readings_pb2_grpc.ReadingServiceStub(channel).SubmitReadings(
        readings_pb2.SubmitReadingsRequest(batch=convert.reading_batch_to_proto(warm.batch)),
        metadata=dev_metadata("meter", warm.meter_id), timeout=120,
    )  # fmt: skip


def _attack_calls(
    scenario: Scenario, target: str, abusers: Abusers, checkpoint: SignedCheckpoint
) -> tuple[list[Callable[[], Any]], list[grpc.Channel]]:
    """One callable per abusive caller (its own channel), each sending its next payload."""
    calls: list[Callable[[], Any]] = []
    channels: list[grpc.Channel] = []
    for i in range(scenario.callers):
        channel = grpc.insecure_channel(target)
        channels.append(channel)
        cycle = itertools.cycle(range(VARIANTS))
        if scenario.kind == "proof":
            meter = abusers.meters[i]
            stub = readings_pb2_grpc.ReadingServiceStub(channel)
            payloads = abusers.batches[i]
            meta = dev_metadata("meter", meter.meter_id)

            def send_batch(
                stub: Any = stub, payloads: Any = payloads, meta: Any = meta, cycle: Any = cycle
            ) -> Any:
                return stub.SubmitReadings(payloads[next(cycle)], metadata=meta, timeout=30)

            calls.append(send_batch)
        else:
            wstub = witness_pb2_grpc.WitnessServiceStub(channel)
            witness = abusers.witnesses[i]
            requests = [
                witness_pb2.AddCosignatureRequest(
                    tree_size=checkpoint.checkpoint.size,
                    root_hash=checkpoint.checkpoint.root,
                    witness_name=witness.name,
                    signature=sig,
                )
                for sig in abusers.signatures[i]
            ]
            wmeta = dev_metadata("auditor", f"bench-auditor-{i:02d}")

            def send_cosig(
                stub: Any = wstub, requests: Any = requests, meta: Any = wmeta, cycle: Any = cycle
            ) -> Any:
                return stub.AddCosignature(requests[next(cycle)], metadata=meta, timeout=30)

            calls.append(send_cosig)
    return calls, channels


def _expect(call: Callable[[], Any], reason: str, what: str) -> None:
    try:
        call()
    except grpc.RpcError as exc:
        answer = answer_of(exc)[0]
        if answer.endswith("/" + reason):
            return
        raise CouldNotRun(f"{what} was answered {answer}, not {reason}") from None
    raise CouldNotRun(f"{what} was accepted")


def run_scenario(
    backend: str,
    scenario: Scenario,
    honest: Sequence[CachedMeter],
    honest_requests: Sequence[tuple[str, readings_pb2.SubmitReadingsRequest]],
    warm: CachedMeter,
    abusers: Abusers,
    settings: Settings,
    clean_rate: float | None,
    *,
    probe: bool = False,
) -> dict[str, Any]:
    """One scenario on a fresh ledger and server. ``clean_rate``: the honest rate the ratio
    and the pace refer to; ``probe``: after the timed phase, check that the server refuses
    the abusive payloads for the reasons the scenarios assume."""
    with (
        tempfile.TemporaryDirectory(prefix="zkgrid-bench-dos-") as tmp,
        backend_url(backend, settings.pg_admin, Path(tmp) / "ledger.db") as url,
        zkgrid_serve(url, Path(tmp)) as (proc, target),
    ):
        channel = grpc.insecure_channel(target)
        channels: list[grpc.Channel] = [channel]
        try:
            grpc.channel_ready_future(channel).result(timeout=30)
            t0 = time.perf_counter()
            _setup(channel, honest, warm, abusers, settings.interval_minutes)
            checkpoint = SignedCheckpoint.from_text(
                ledger_pb2_grpc.LedgerServiceStub(channel)
                .GetCheckpoint(
                    ledger_pb2.GetCheckpointRequest(), metadata=dev_metadata("auditor"), timeout=30
                )
                .checkpoint
            )
            setup_s = time.perf_counter() - t0
            attack: Attack | None = None
            rate = None
            if scenario.kind != "clean":
                calls, more = _attack_calls(scenario, target, abusers, checkpoint)
                channels += more
                if scenario.fraction is not None:
                    if clean_rate is None:
                        raise CouldNotRun("a paced scenario needs the clean run's rate")
                    rate = scenario.fraction / (1 - scenario.fraction) * clean_rate
                attack = Attack(scenario, calls, streams=settings.attack_streams, rate=rate)
                attack.start()
                time.sleep(WARMUP_S)
            stub = readings_pb2_grpc.ReadingServiceStub(channel)
            cpu0, client0 = _tree_cpu_s(proc.pid), time.process_time()
            attack_sent0 = attack.stats.sent if attack is not None else 0
            result = honest_phase(
                stub,
                honest_requests,
                concurrency=settings.concurrency,
                seconds=settings.seconds,
                timeout=settings.timeout,
            )
            cpu1, client1 = _tree_cpu_s(proc.pid), time.process_time()
            attack_sent_during = (attack.stats.sent if attack is not None else 0) - attack_sent0
            if attack is not None:
                attack.stop()
            if probe:
                checks, more = _attack_calls(
                    Scenario("probe", "proof", 1), target, abusers, checkpoint
                )
                channels += more
                _expect(checks[0], "PROOF_INVALID", "an abusive reading batch")
                checks, more = _attack_calls(
                    Scenario("probe", "cosig", 1), target, abusers, checkpoint
                )
                channels += more
                _expect(checks[0], "COSIGNATURE_INVALID", "an invalid cosignature")
        finally:
            for c in channels:
                c.close()
    rate_now = result.accepted / result.wall_s if result.wall_s > 0 else 0.0
    if scenario.kind == "clean" and clean_rate is None:
        clean_rate = rate_now
    ratio = rate_now / clean_rate if clean_rate else None
    row: dict[str, Any] = {
        "scenario": scenario.name,
        "setup_s": round(setup_s, 1),
        "honest": {
            "batches": len(honest_requests),
            "accepted": result.accepted,
            "wall_s": round(result.wall_s, 2),
            "batches_per_s": round(rate_now, 1),
            "rate_exact": round(rate_now, 3),
            "ratio_to_clean": None if ratio is None else round(ratio, 3),
            "latency_ms": _percentiles_ms(result.latencies),
            "failed": dict(result.failed),
            "failed_attempts": dict(result.failed_attempts),
            "unsent_after_cap": result.unsent,
        },
        "server_cpu": {
            "seconds": round(cpu1 - cpu0, 1),
            "cores": round((cpu1 - cpu0) / result.wall_s, 2) if result.wall_s > 0 else None,
        },
        "client_cpu_s": round(client1 - client0, 1),
    }
    if attack is not None:
        stats = attack.stats
        share_den = attack_sent_during + len(honest_requests) - result.unsent
        row["attack"] = {
            "kind": scenario.kind,
            "callers": scenario.callers,
            "mode": "full speed" if scenario.fraction is None else f"{scenario.fraction:.0%}",
            "streams": settings.attack_streams if scenario.fraction is None else None,
            "rate_per_s": None if rate is None else round(rate, 2),
            "sent": stats.sent,
            "sent_during_honest_phase": attack_sent_during,
            "share_of_requests": round(attack_sent_during / share_den, 3) if share_den else None,
            "answers": dict(stats.answers),
            "latency_ms": _percentiles_ms(stats.latencies),
        }
    target_ratio = scenario.target
    row["target_ratio"] = target_ratio
    row["meets_target"] = None if target_ratio is None else bool(ratio and ratio >= target_ratio)
    return row


# --------------------------------------------------------------------------- main


def _server_commit() -> dict[str, Any]:
    def git(*args: str) -> str:
        command = ["git", *args]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)  # noqa: S603
        return done.stdout.strip()

    # Dirty: the server's code differs from the commit (the benchmarks, docs and tests aside).
    changed = git("status", "--porcelain", "--", ".", ":!bench", ":!docs", ":!tests")
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(changed)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.dos",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--meters", type=int, default=None, help="honest meters (default 600)")
    parser.add_argument("--seconds", type=float, default=120.0,
                        help="cap on each honest phase: no new batch is sent after it")  # fmt: skip
    parser.add_argument("--quick", action="store_true",
                        help="a check that it works: 40 meters, 32 threads, 30 s cap")  # fmt: skip
    parser.add_argument("--concurrency", type=int, default=None,
                        help="honest client threads (default 128)")  # fmt: skip
    parser.add_argument("--attack-streams", type=int, default=16,
                        help="requests in flight of a full-speed abuser")  # fmt: skip
    parser.add_argument("--scenarios", default="all",
                        help="comma-separated scenario names (clean runs first)")  # fmt: skip
    parser.add_argument("--unpaired", action="store_true",
                        help="compare with the first clean run only, not with a clean run"
                        " just before each scenario (half the time; a busy machine's drift"
                        " then shows in the ratios)")  # fmt: skip
    parser.add_argument("--interval-minutes", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=60.0, help="per honest request (s)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="processes for the one-off batch generation")  # fmt: skip
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--pg-url", default=default_pg_admin_url(),
                        help="PostgreSQL admin URL (for scratch databases)")  # fmt: skip
    args = parser.parse_args(argv)
    meters = args.meters if args.meters is not None else (40 if args.quick else 600)
    concurrency = args.concurrency if args.concurrency is not None else (32 if args.quick else 128)
    seconds = min(args.seconds, 30.0) if args.quick else args.seconds
    if meters < 1 or concurrency < 1 or args.attack_streams < 1 or seconds <= 0:
        parser.error("--meters, --concurrency, --attack-streams and --seconds must be positive")
    scenarios = all_scenarios()
    if args.scenarios != "all":
        wanted = set(args.scenarios.split(","))
        unknown = wanted - {s.name for s in scenarios}
        if unknown:
            parser.error(
                f"unknown scenarios {sorted(unknown)}; known: {[s.name for s in scenarios]}"
            )
        scenarios = [s for s in scenarios if s.name == "clean" or s.name in wanted]
    try:
        return _run(args, argv, meters, concurrency, seconds, scenarios)
    except CouldNotRun as exc:
        log(f"could not run: {exc}")
        return 2
    except Exception as exc:  # a server, database or bench failure: not a measurement
        traceback.print_exc(file=sys.stderr)
        log(f"could not run: {type(exc).__name__}: {exc}")
        log("check that `zkgrid serve` starts and PostgreSQL is reachable (--pg-url)")
        return 2


def _run(
    args: argparse.Namespace,
    argv: Sequence[str] | None,
    meters: int,
    concurrency: int,
    seconds: float,
    scenarios: list[Scenario],
) -> int:
    started = time.perf_counter()
    load_start = os.getloadavg()
    cached = load_or_generate(
        meters + 1 + ABUSERS,
        args.interval_minutes,
        args.seed,
        args.cache,
        args.workers,
        lambda m: log(m.strip()),
    )
    honest, warm, abusive = cached[:meters], cached[meters], cached[meters + 1 :]
    log(f"building {ABUSERS} abusers' payloads ({VARIANTS} variants each), checking one")
    abusers = build_abusers(abusive)
    honest_requests = [
        (m.meter_id,
         readings_pb2.SubmitReadingsRequest(batch=convert.reading_batch_to_proto(m.batch)))
        for m in honest
    ]  # fmt: skip
    settings = Settings(
        concurrency, args.attack_streams, seconds, args.timeout, args.pg_url,
        args.interval_minutes,
    )  # fmt: skip
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]

    def one(
        backend: str, scenario: Scenario, reference: float | None, probe: bool = False
    ) -> dict[str, Any]:
        log(f"{backend} {scenario.name}: fresh ledger, server, setup ...")
        row = run_scenario(
            backend, scenario, honest, honest_requests, warm, abusers, settings, reference,
            probe=probe,
        )  # fmt: skip
        h = row["honest"]
        log(
            f"{backend} {scenario.name}: {h['batches_per_s']} honest batches/s"
            f" (x{h['ratio_to_clean']}), p50/p99 {h['latency_ms']['p50']}/"
            f"{h['latency_ms']['p99']} ms, failed {h['failed'] or 0},"
            f" attack {row.get('attack', {}).get('answers', '-')}"
            f", server {row['server_cpu']['cores']} cores"
        )
        return row

    results: dict[str, list[dict[str, Any]]] = {}
    for backend in backends:
        rows: list[dict[str, Any]] = []
        first_clean: float | None = None

        for scenario in scenarios:
            if scenario.kind == "clean":
                row = one(backend, scenario, None, probe=True)
                h = row["honest"]
                if h["accepted"] != h["batches"]:
                    raise CouldNotRun(
                        f"{backend}: the clean run accepted {h['accepted']} of {h['batches']}"
                        f" honest batches (failed: {h['failed']}); nothing to compare with"
                    )
                first_clean = h["rate_exact"]
                h["ratio_to_first_clean"] = 1.0
                rows.append(row)
                continue
            assert first_clean is not None
            reference = first_clean
            pair = None
            if not args.unpaired:
                pair = one(backend, Scenario("clean (pair)", "clean"), None)
                reference = pair["honest"]["rate_exact"] or first_clean
            row = one(backend, scenario, reference)
            row["honest"]["ratio_to_first_clean"] = round(
                row["honest"]["rate_exact"] / first_clean, 3
            )
            if pair is not None:
                row["paired_clean"] = {
                    "batches_per_s": pair["honest"]["batches_per_s"],
                    "ratio_to_first_clean": round(pair["honest"]["rate_exact"] / first_clean, 3),
                    "latency_ms": pair["honest"]["latency_ms"],
                    "failed": pair["honest"]["failed"],
                    "server_cpu": pair["server_cpu"],
                }
            rows.append(row)
        if args.unpaired:  # the clean run again: how far the machine drifted meanwhile
            row = one(backend, Scenario("clean-end", "clean"), first_clean)
            rows.append(row)
        results[backend] = rows
    verdicts = [r["meets_target"] for rows in results.values() for r in rows]
    all_met = all(v for v in verdicts if v is not None)
    report = {
        "benchmark": "dos",
        "command": "python -m bench.dos " + " ".join(sys.argv[1:] if argv is None else argv),
        "server": {
            **_server_commit(),
            "command": "zkgrid serve --insecure --listen 127.0.0.1:0 --startup-check quick"
            " (default workers and --verify-processes)",
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_start": [round(x, 2) for x in load_start],
            "load_average_end": [round(x, 2) for x in os.getloadavg()],
        },
        "settings": {
            "meters": meters,
            "interval_minutes": args.interval_minutes,
            "values_per_batch": 2 * (1440 // args.interval_minutes),
            "concurrency": concurrency,
            "attack_streams": args.attack_streams,
            "paired_clean_runs": not args.unpaired,
            "abusive_callers_many": ABUSERS,
            "variants_per_abuser": VARIANTS,
            "warmup_s": WARMUP_S,
            "honest_attempts": HONEST_ATTEMPTS,
            "seconds_cap": seconds,
            "timeout_s": args.timeout,
            "period": PERIOD,
        },
        "targets": {
            "one_caller_ratio_min": TARGET_ONE_CALLER,
            "many_callers_ratio_min": TARGET_MANY_CALLERS,
        },
        "results": results,
        "all_targets_met": all_met,
        "elapsed_s": round(time.perf_counter() - started, 1),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for backend, rows in results.items():
            for r in rows:
                h = r["honest"]
                print(
                    f"{backend:9} {r['scenario']:18} {h['batches_per_s']:7} batches/s"
                    f" x{h['ratio_to_clean']}  p50 {h['latency_ms']['p50']} ms"
                    f"  p99 {h['latency_ms']['p99']} ms  target {r['target_ratio']}"
                    f"  met {r['meets_target']}"
                )
    return 0 if all_met else 1


if __name__ == "__main__":
    sys.exit(main())
