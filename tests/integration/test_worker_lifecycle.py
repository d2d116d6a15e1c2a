"""Worker processes die with their parent (issue 10, section 4). Reads Linux's /proc.

A process starts a service proof verifier with a ``spawn`` worker pool (as
``zkgrid serve`` does) and an auditor pool; the test SIGKILLs it and checks that
every process it had started, the workers and multiprocessing's resource tracker
included, is gone within a few seconds, instead of running forever.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys, time
from service.verification import ProofVerifier
verifier = ProofVerifier(processes=2)
time.sleep(0.5)
print("ready", flush=True)
time.sleep(600)
"""


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, state) of ``pid``, or None when it no longer exists."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), fields[0]


def _descendants(root: int) -> set[int]:
    found: set[int] = set()
    frontier = {root}
    while frontier:
        children = set()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                st = _stat(int(entry.name))
                if st is not None and st[0] in frontier:
                    children.add(int(entry.name))
        children -= found
        found |= children
        frontier = children
    return found


def _alive(pid: int) -> bool:
    st = _stat(pid)
    return st is not None and st[1] not in ("Z", "X")


def test_workers_and_resource_tracker_die_with_a_killed_parent() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready"
        deadline = time.monotonic() + 30
        children: set[int] = set()
        while time.monotonic() < deadline and len(children) < 2:
            children = _descendants(proc.pid)
            time.sleep(0.2)
        assert len(children) >= 2, children  # the workers (and the resource tracker)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(p) for p in children):
            time.sleep(0.2)
        assert not [p for p in children if _alive(p)]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
