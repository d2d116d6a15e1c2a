"""The current call's deadline, as the interceptor saw it, for code that waits on others.

:class:`service.interceptors.ZkgridInterceptor` sets :data:`call_deadline` (a
``time.monotonic()`` instant) from the gRPC context for the duration of each
call; the proof verifier reads it to wait no longer than the caller does, to
drop work nobody waits for, and to shed a request whose wait in the queue
would outlast it (``OVERLOADED`` at once instead of ``DEADLINE_EXCEEDED`` later).
Outside a call (tests, tools) it is ``None``: wait without a bound.
"""

from __future__ import annotations

import time
from contextvars import ContextVar

__all__ = ["call_deadline", "remaining_s"]

call_deadline: ContextVar[float | None] = ContextVar("zkgrid_call_deadline", default=None)


def remaining_s() -> float | None:
    """Seconds left before the current call's deadline (``None``: no deadline known)."""
    deadline = call_deadline.get()
    return None if deadline is None else deadline - time.monotonic()
