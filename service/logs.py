"""The service's logs: text or JSON lines, an access-log line per call, a line per append.

* :func:`configure_logging` (``zkgrid serve --log-format text|json --log-level ...``):
  every record one line on stderr, either ``time LEVEL logger: message`` or one JSON
  object (``ts``, ``level``, ``logger``, ``msg``, the structured fields below, ``exc``
  with the traceback when there is one).
* :class:`AccessLog`: one line per RPC on the ``zkgrid.access`` logger, at INFO
  (health checks and reflection at DEBUG, so a load balancer's probes do not flood
  it): the method, the caller's role and CN (the certificate's identity, or ``-``),
  the status, the ``ErrorInfo`` reason (or ``-``) and the latency.
  A call the client cancelled or abandoned is ``CANCELLED`` (or
  ``DEADLINE_EXCEEDED``) there, never an ERROR with a traceback.
* :class:`AppendLog`: one line per ledger entry appended, on ``zkgrid.ledger``:
  its index, its kind and the checkpoint size it was signed in; never the payload.

Nothing here ever sees a request or response message: the lines hold method names,
identities (public: they are in the ledger), status codes, reasons, indices and
times only. ``tests/integration/test_privacy.py`` checks no reading or blinding
reaches any log, in both formats.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - annotations only
    import grpc

    from ledger.entries import EntryKind

__all__ = [
    "ACCESS_LOGGER",
    "LEDGER_LOGGER",
    "TEXT_FORMAT",
    "AccessLog",
    "AppendLog",
    "JsonFormatter",
    "configure_logging",
    "log_handler",
]

ACCESS_LOGGER = "zkgrid.access"
LEDGER_LOGGER = "zkgrid.ledger"
#: The attribute of a log record holding its structured fields (``extra={FIELDS: {...}}``).
FIELDS = "zkgrid"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: Methods whose access-log lines are DEBUG (probes and tools, not traffic).
_QUIET_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``ts`` (UTC, ISO 8601, milliseconds), ``level``,
    ``logger``, ``msg``, the record's structured fields, and ``exc`` (the traceback)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, FIELDS, None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                out.setdefault(key, value)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def log_handler(fmt: str = "text", stream: IO[str] | None = None) -> logging.Handler:
    """A handler writing ``fmt`` (``text`` or ``json``) lines to ``stream`` (default stderr)."""
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    return handler


def configure_logging(
    level: str = "INFO", fmt: str = "text", stream: IO[str] | None = None
) -> None:
    """Send every record at ``level`` and above to ``stream`` (default stderr) as ``fmt``
    (``text`` or ``json``) lines; replaces the root logger's handlers."""
    logging.basicConfig(level=level, handlers=[log_handler(fmt, stream)], force=True)


#: Shed calls (RESOURCE_EXHAUSTED: a spent failure budget, load shed) are logged at most
#: once per caller and reason in this many seconds, with the count of those not logged: a
#: caller that ignores its retry delay cannot flood the log (or spend the server's CPU on it).
SHED_LOG_INTERVAL_S = 10.0
#: Callers whose shed-call counts are remembered at most.
SHED_LOG_KEYS = 1024


class AccessLog:
    """A call observer (``ZkgridInterceptor(observer=...)``) writing the access log."""

    def __init__(
        self,
        logger: logging.Logger | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger if logger is not None else logging.getLogger(ACCESS_LOGGER)
        self._clock = clock
        self._shed_lock = threading.Lock()
        #: (caller, reason) -> (when its last line was written, calls not logged since)
        self._shed: OrderedDict[tuple[str, str], tuple[float, int]] = OrderedDict()

    def _sampled(self, identity: str | None, reason: str | None) -> int | None:
        """For a shed call: ``None`` to skip its line, else how many were skipped before."""
        key = (identity or "-", reason or "-")
        now = self._clock()
        with self._shed_lock:
            last, skipped = self._shed.get(key, (float("-inf"), 0))
            if now - last < SHED_LOG_INTERVAL_S:
                self._shed[key] = (last, skipped + 1)
                return None
            self._shed[key] = (now, 0)
            self._shed.move_to_end(key)
            while len(self._shed) > SHED_LOG_KEYS:
                self._shed.popitem(last=False)
            return skipped

    def on_call_end(
        self,
        method: str,
        role: str | None,
        identity: str | None,
        code: grpc.StatusCode,
        reason: str | None,
        latency_s: float,
    ) -> None:
        level = logging.DEBUG if method.startswith(_QUIET_PREFIXES) else logging.INFO
        if not self._logger.isEnabledFor(level):
            return
        skipped = 0
        if code.name == "RESOURCE_EXHAUSTED":
            sampled = self._sampled(identity, reason)
            if sampled is None:
                return
            skipped = sampled
        status = code.name
        latency_ms = round(latency_s * 1000, 3)
        fields: dict[str, object] = {
            "event": "rpc",
            "method": method,
            "status": status,
            "role": role,
            "cn": identity,
            "reason": reason,
            "latency_ms": latency_ms,
        }
        suffix = ""
        if skipped:
            fields["similar_not_logged"] = skipped
            suffix = f" ({skipped} more like it not logged)"
        self._logger.log(
            level,
            "%s %s role=%s cn=%s reason=%s %.1fms%s",
            method,
            status,
            role or "-",
            identity or "-",
            reason or "-",
            latency_ms,
            suffix,
            extra={FIELDS: fields},
        )


class AppendLog:
    """A store append listener (:meth:`LedgerStore.add_append_listener
    <service.storage.LedgerStore.add_append_listener>`) writing one line per entry."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._logger = logger if logger is not None else logging.getLogger(LEDGER_LOGGER)

    def __call__(self, entries: Sequence[tuple[int, EntryKind]], checkpoint_size: int) -> None:
        if not self._logger.isEnabledFor(logging.INFO):
            return
        for index, kind in entries:
            self._logger.info(
                "appended index=%d kind=%s checkpoint_size=%d",
                index,
                kind.name,
                checkpoint_size,
                extra={
                    FIELDS: {
                        "event": "append",
                        "index": index,
                        "kind": kind.name,
                        "checkpoint_size": checkpoint_size,
                    }
                },
            )
