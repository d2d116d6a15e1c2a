"""Crash safety: a process appending one entry at a time is killed with SIGKILL
mid-stream; the reopened store passes its full start-up check and holds every
append the process acknowledged (printed after ``append`` returned).

This file doubles as the child process: ``python test_store_crash.py URL SEED_HEX ORIGIN``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from ledger.checkpoint import CheckpointSigner
from ledger.entries import EntryKind
from service.storage import open_store

REPO_ROOT = Path(__file__).resolve().parents[2]
ACKS_BEFORE_KILL = 40
ROUNDS = 2


def _child(url: str, seed_hex: str, origin: str) -> None:
    signer = CheckpointSigner.from_private_bytes("zkgrid-test", bytes.fromhex(seed_hex))
    with open_store(url, signer, origin) as store:
        for i in range(1_000_000):
            index = store.append(EntryKind.READING_BATCH, f"child {i}".encode()).index
            sys.stdout.write(f"{index} {i}\n")
            sys.stdout.flush()


def _run_and_kill(url: str, signer: CheckpointSigner, origin: str) -> dict[int, bytes]:
    """Start the child, SIGKILL it after some acknowledgements, return {index: payload}."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    child = subprocess.Popen(
        [sys.executable, __file__, url, signer.private_bytes().hex(), origin],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO_ROOT,
    )
    assert child.stdout is not None
    acked: dict[int, bytes] = {}
    try:
        deadline = time.monotonic() + 60
        while len(acked) < ACKS_BEFORE_KILL:
            line = child.stdout.readline()
            assert line, f"child exited early with {child.wait()}"
            index, i = map(int, line.split())
            acked[index] = f"child {i}".encode()
            assert time.monotonic() < deadline, "child too slow"
    finally:
        child.send_signal(signal.SIGKILL)
    # Lines flushed before the kill are acknowledged appends too.
    for line in child.stdout:
        if line.endswith("\n"):
            index, i = map(int, line.split())
            acked[index] = f"child {i}".encode()
    child.stdout.close()
    assert child.wait() == -signal.SIGKILL
    return acked


def _parent_appends(
    url: str,
    signer: CheckpointSigner,
    origin: str,
    tag: str,
    stop: threading.Event,
    acks: dict[int, bytes],
) -> None:
    with open_store(url, signer, origin, startup_check="quick") as s:
        k = 0
        while not stop.is_set():
            batch = [f"parent {tag}/{k}/{j}".encode() for j in range(3)]
            indices = s.append_batch([(EntryKind.BILL, p) for p in batch]).indices
            acks.update(zip(indices, batch, strict=True))
            k += 1
            time.sleep(0.005)


def test_sigkill_mid_stream_loses_no_acknowledged_append(
    durable_ledger_url: str, ledger_signer: CheckpointSigner, ledger_origin: str
) -> None:
    expected: dict[int, bytes] = {}
    with open_store(durable_ledger_url, ledger_signer, ledger_origin) as store:
        expected[store.append(EntryKind.TARIFF, b"before").index] = b"before"
    for round_ in range(ROUNDS):
        # The parent appends batches concurrently: two processes share the write lock.
        stop = threading.Event()
        parent_acks: dict[int, bytes] = {}

        thread = threading.Thread(
            target=_parent_appends,
            args=(durable_ledger_url, ledger_signer, ledger_origin, f"{round_}", stop, parent_acks),
        )
        thread.start()
        try:
            acked = _run_and_kill(durable_ledger_url, ledger_signer, ledger_origin)
        finally:
            stop.set()
            thread.join()
        assert parent_acks, "the concurrent parent appender made no progress"
        assert not acked.keys() & parent_acks.keys()
        expected.update(acked)
        expected.update(parent_acks)
        # Reopening runs the full start-up check (it raises if anything is inconsistent).
        with open_store(durable_ledger_url, ledger_signer, ledger_origin) as store:
            size = store.size()
            assert max(expected) < size
            stored = {e.index: e.payload for e in store.entries()}
            for index, payload in expected.items():
                assert stored[index] == payload, f"acknowledged append {index} lost"
            # At most the one in-flight child append was committed without being printed.
            assert size - len(expected) <= 1
            expected.update(stored)


if __name__ == "__main__":
    _child(*sys.argv[1:4])
