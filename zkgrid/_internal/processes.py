"""Worker processes that die with their parent.

A ``spawn`` worker (the service's range-proof verifier, the auditor's pool) must not
outlive the process that started it: after a SIGKILL of ``zkgrid serve`` its
workers, and the multiprocessing resource tracker they keep alive, would otherwise
run forever, one more set after every crash and restart. :func:`die_with_parent`
is the pools' ``initializer``: on Linux the kernel sends the worker SIGKILL when its
parent dies (``prctl(PR_SET_PDEATHSIG)``); elsewhere, and as a second line on Linux,
a daemon thread checks every second that the parent is still the one that started it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

__all__ = ["die_with_parent"]

_PR_SET_PDEATHSIG = 1
#: How often the watchdog thread looks at the parent (seconds).
WATCH_INTERVAL_S = 1.0


def _watch(parent: int) -> None:
    while True:
        time.sleep(WATCH_INTERVAL_S)
        if os.getppid() != parent:
            os._exit(1)


def die_with_parent(parent: int) -> None:
    """Make this process exit when process ``parent`` (its parent) is gone."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # no prctl: the watchdog below still works
            pass
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)
    threading.Thread(target=_watch, args=(parent,), name="zkgrid-parent-watch", daemon=True).start()
