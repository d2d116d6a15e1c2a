"""The admin port: plain HTTP for the machine's own tools, no client certificate.

``zkgrid serve --admin-listen HOST:PORT`` (off by default; ``deploy/zkgrid.toml`` puts it
on ``127.0.0.1:9464``) serves, to ``GET`` and ``HEAD`` only:

* ``/metrics``: the Prometheus metrics of :mod:`service.metrics` (text format, or
  OpenMetrics when the scraper asks for it);
* ``/healthz``: ``200 ok`` while the process answers (liveness);
* ``/readyz``: ``200`` when the service can take calls, else ``503``; a JSON body names
  each check: ``serving`` (started, and not draining after SIGTERM: the gRPC health
  status), ``store`` (the store answered one indexed read within
  :data:`~service.metrics.STORE_READ_TIMEOUT_S`) and ``verifier`` (open, and its
  worker pool up: a broken pool, a worker process having died, is restarted by the
  check itself before it answers).

It answers before the ledger is opened (``/readyz`` says ``starting`` until the
service is up), so a slow start-up check (``--startup-check full`` over a long
ledger) is alive but not ready. Nothing here needs or reveals a secret, but anyone
who reaches the port sees the metrics: keep it on loopback or a private network.
At most :data:`MAX_CONCURRENT` requests are answered at once (the others get 503).
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from service.config import ConfigError
from zkgrid._internal.channels import ChannelConfigError, split_host_port
from zkgrid.errors import ZkgridError

if TYPE_CHECKING:  # pragma: no cover - annotations only
    from service.metrics import InstrumentedVerifier, StoreReader

__all__ = ["MAX_CONCURRENT", "AdminServer", "Readiness"]

logger = logging.getLogger(__name__)

#: Admin requests answered at once; more get 503 at once.
MAX_CONCURRENT = 8
#: Seconds a client gets to send its request (a slow client does not hold a thread).
REQUEST_TIMEOUT_S = 10.0


class Readiness:
    """What ``/readyz`` checks; the parts are attached as ``zkgrid serve`` brings them up."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._store: StoreReader | None = None
        self._verifier: InstrumentedVerifier | None = None
        self._serving: Callable[[], bool] | None = None

    def attach(
        self,
        *,
        store: StoreReader,
        verifier: InstrumentedVerifier | None,
        serving: Callable[[], bool],
    ) -> None:
        with self._lock:
            self._store, self._verifier, self._serving = store, verifier, serving

    def check(self) -> tuple[bool, dict[str, str]]:
        """(ready, check -> ``ok`` or what is wrong)."""
        with self._lock:
            store, verifier, serving = self._store, self._verifier, self._serving
        if store is None or serving is None:
            return False, {"serving": "starting"}
        checks: dict[str, str] = {"serving": "ok" if serving() else "not serving (draining)"}
        try:
            size, _signed_at = store.head()
            checks["store"] = "ok"
            checks["ledger_size"] = str(size)
        except ZkgridError as exc:
            checks["store"] = f"unavailable ({exc.reason})"
        except Exception as exc:  # TimeoutError, a driver error: its class, never its text
            checks["store"] = f"unavailable ({type(exc).__name__})"
        if verifier is not None:
            state = verifier.state()
            if state == "broken":
                state = verifier.restart_if_broken()
            checks["verifier"] = "ok" if state in ("up", "in-process") else state
        ready = all(v == "ok" for k, v in checks.items() if k != "ledger_size")
        return ready, checks


class _Handler(BaseHTTPRequestHandler):
    server: _AdminHTTPServer
    timeout = REQUEST_TIMEOUT_S

    def version_string(self) -> str:
        return "zkgrid-admin"

    def do_GET(self) -> None:
        self._answer(head=False)

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def _answer(self, *, head: bool) -> None:
        admin = self.server.admin
        if not admin.slots.acquire(blocking=False):
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, b"busy\n", "text/plain", head)
            return
        try:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
                self._send(HTTPStatus.OK, encoder(admin.registry), content_type, head)
            elif path == "/healthz":
                self._send(HTTPStatus.OK, b"ok\n", "text/plain; charset=utf-8", head)
            elif path == "/readyz":
                ready, checks = admin.readiness.check()
                body = json.dumps({"ready": ready, "checks": checks}, sort_keys=True) + "\n"
                status = HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE
                self._send(status, body.encode(), "application/json", head)
            else:
                self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain", head)
        except Exception:
            logger.exception("admin request %s failed", self.path[:64])
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, b"error\n", "text/plain", head)
        finally:
            admin.slots.release()

    def _send(self, status: HTTPStatus, body: bytes, content_type: str, head: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("admin %s %s", self.address_string(), format % args)


class _AdminHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    admin: AdminServer


class _AdminHTTPServer6(_AdminHTTPServer):
    address_family = socket.AF_INET6


class AdminServer:
    """The admin HTTP server on ``listen`` (``HOST:PORT``; port 0 picks one): started by
    :meth:`start`, stopped by :meth:`close`."""

    def __init__(
        self, listen: str, registry: CollectorRegistry, readiness: Readiness | None = None
    ) -> None:
        try:
            host, port = split_host_port(listen, require_port=True)
        except ChannelConfigError as exc:
            raise ConfigError(f"--admin-listen {exc}") from None
        self.registry = registry
        self.readiness = readiness if readiness is not None else Readiness()
        self.slots = threading.BoundedSemaphore(MAX_CONCURRENT)
        cls = _AdminHTTPServer6 if ":" in host else _AdminHTTPServer
        try:
            self._http = cls((host, port or 0), _Handler)
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on the admin address {listen}: {exc.strerror}"
            ) from None
        self._http.admin = self
        self._thread: threading.Thread | None = None
        self.host = host

    @property
    def port(self) -> int:
        return int(self._http.server_address[1])

    def start(self) -> AdminServer:
        self._thread = threading.Thread(
            target=self._http.serve_forever, name="zkgrid-admin", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self._http.shutdown()
            self._thread.join(5)
        self._http.server_close()
