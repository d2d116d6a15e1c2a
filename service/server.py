"""The settlement gRPC server: build it, run it, drain it.

:func:`build_server` assembles a thread-pool ``grpc.Server`` with the API's
servicers, the standard health service (``grpc.health.v1``, SERVING for the
whole server and each service), server reflection (``grpc.reflection.v1`` and
``v1alpha``, :mod:`service.reflection`), the one interceptor
(:mod:`service.interceptors`) with its call observers (the access log of
:mod:`service.logs`, and the metrics of :mod:`service.metrics` when given),
message-size limits and mutual TLS (or, for development on loopback only, an
insecure port), and binds it. Every entry appended to the store is logged
(:class:`service.logs.AppendLog`).

:func:`serve` is ``zkgrid serve``: start the admin port when configured
(:mod:`service.admin`: metrics, liveness, readiness), open the store
(self-checked), build, start, wait for SIGTERM or SIGINT, then mark every
service NOT_SERVING (``/readyz`` answers 503 from then on), stop accepting calls
and let in-flight calls finish for ``grace`` seconds (``server.stop(grace)``),
close the store and return 0.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import weakref
from collections.abc import Callable, Sequence
from concurrent import futures
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from ledger.checkpoint import CheckpointSigner
from service.auth import Authorizer
from service.budgets import FailureBudgets
from service.config import ConfigError, ServiceConfig, split_listen
from service.interceptors import ZkgridInterceptor
from service.logkey import LogKeyError, read_log_key, save_log_key
from service.logs import AccessLog, AppendLog
from service.observers import CallObserver, CallObservers
from service.reflection import enable_reflection
from service.servicers import (
    LedgerServicer,
    add_domain_servicers,
    add_witness_servicer,
)
from service.settlement import Settlement
from service.storage import LedgerStore, LogKeyMismatch, open_store
from service.witnesses import Witnesses
from zkgrid.settlement.v1 import ledger_pb2, ledger_pb2_grpc

if TYPE_CHECKING:  # pragma: no cover - annotations only
    from service.admin import Readiness
    from service.metrics import ServiceMetrics

__all__ = ["ServerInfo", "build_server", "run_until_signal", "serve", "server_info"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """What :func:`build_server` knows about a server it built."""

    port: int
    health: health.HealthServicer
    services: tuple[str, ...]
    secure: bool


_INFO: weakref.WeakKeyDictionary[grpc.Server, ServerInfo] = weakref.WeakKeyDictionary()
#: Stores whose appends are logged already (one AppendLog per store).
_APPENDS_LOGGED: weakref.WeakSet[LedgerStore] = weakref.WeakSet()


def server_info(server: grpc.Server) -> ServerInfo:
    """The bound port, health servicer and service names of a server from :func:`build_server`."""
    return _INFO[server]


def _service_name(descriptor_file: Any, name: str) -> str:
    return str(descriptor_file.services_by_name[name].full_name)


def _budgets(config: ServiceConfig) -> FailureBudgets | None:
    if config.failure_burst == 0:
        return None
    return FailureBudgets(burst=config.failure_burst, refill_s=config.failure_refill_s)


def build_server(
    settlement: Settlement | None,
    config: ServiceConfig,
    *,
    store: LedgerStore | None = None,
    witnesses: Witnesses | None = None,
    metrics: ServiceMetrics | None = None,
) -> grpc.Server:
    """A bound (not started) server for ``settlement`` (the domain) and its ledger store.

    ``store`` defaults to ``settlement.store``. ``settlement`` may be ``None``
    to serve the LedgerService alone (tools and tests). With a settlement the
    WitnessService is served too, over ``witnesses`` (default: a
    :class:`~service.witnesses.Witnesses` over the store with
    ``config.witness_quorum``). Calls go to the access log, and to ``metrics`` when
    given (its store metrics are the caller's to set up:
    :meth:`~service.metrics.ServiceMetrics.watch_store`).
    """
    config.validate()
    ledger_store = store if store is not None else settlement.store if settlement else None
    if ledger_store is None:
        raise ConfigError("build_server needs a ledger store")
    if ledger_store not in _APPENDS_LOGGED and hasattr(ledger_store, "add_append_listener"):
        ledger_store.add_append_listener(AppendLog())
        _APPENDS_LOGGED.add(ledger_store)
    observers: list[CallObserver] = [AccessLog()]
    if metrics is not None:
        observers.append(metrics)
    interceptor = ZkgridInterceptor(
        Authorizer(insecure=config.insecure), _budgets(config), observer=CallObservers(observers)
    )
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="zkgrid-rpc"),
        interceptors=[interceptor],
        options=[
            ("grpc.max_receive_message_length", config.max_receive_bytes),
            ("grpc.max_send_message_length", config.max_send_bytes),
            # Never share a port with another process silently.
            ("grpc.so_reuseport", 0),
        ],
        maximum_concurrent_rpcs=config.workers * 4,
    )
    services: list[str] = []
    ledger_pb2_grpc.add_LedgerServiceServicer_to_server(LedgerServicer(ledger_store), server)
    services.append(_service_name(ledger_pb2.DESCRIPTOR, "LedgerService"))
    if settlement is not None:
        services.extend(add_domain_servicers(settlement, server))
        if witnesses is None:
            witnesses = Witnesses(ledger_store, quorum_threshold=config.witness_quorum)
        services.append(add_witness_servicer(witnesses, server))

    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    for name in services:
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    health_name = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
    enable_reflection((*services, health_name), server)

    host, port = split_listen(config.listen)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if config.insecure:
        bound = server.add_insecure_port(address)
    else:
        key, chain, client_ca = config.tls_material()
        credentials = grpc.ssl_server_credentials(
            [(key, chain)], root_certificates=client_ca, require_client_auth=True
        )
        bound = server.add_secure_port(address, credentials)
    if bound == 0:
        raise ConfigError(f"cannot listen on {config.listen}")
    _INFO[server] = ServerInfo(bound, health_servicer, tuple(services), not config.insecure)
    return server


def run_until_signal(
    server: grpc.Server,
    grace: float,
    signals: Sequence[signal.Signals] = (signal.SIGTERM, signal.SIGINT),
) -> signal.Signals:
    """Block until one of ``signals``, then drain and stop ``server``; return the signal.

    Must run in the main thread (signal handlers). Health turns NOT_SERVING
    first so load balancers stop routing; ``server.stop(grace)`` refuses new
    calls and gives in-flight ones ``grace`` seconds to finish.
    """
    received: list[signal.Signals] = []
    stop = threading.Event()

    def handler(signum: int, _frame: FrameType | None) -> None:
        received.append(signal.Signals(signum))
        stop.set()

    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for s, old in previous.items():
            signal.signal(s, old)
    info = _INFO.get(server)
    if info is not None:
        info.health.enter_graceful_shutdown()
    logger.info("%s: draining in-flight calls (grace %.1fs)", received[0].name, grace)
    server.stop(grace).wait()
    logger.info("stopped")
    return received[0]


def _open_signed_store(config: ServiceConfig) -> tuple[CheckpointSigner, LedgerStore]:
    """The log key and the store. A missing key file is created only for a new ledger:
    for an existing one (signed by a key that is not there) nothing is written and the
    error says to restore the key (service/logkey.py)."""
    path = config.log_key
    if os.path.lexists(path):
        signer = read_log_key(path, config.origin)
        return signer, open_store(
            config.db, signer, config.origin, startup_check=config.startup_check
        )
    signer = CheckpointSigner.generate(config.origin)  # kept in memory until the store agrees
    try:
        store = open_store(config.db, signer, config.origin, startup_check=config.startup_check)
    except LogKeyMismatch as exc:
        raise LogKeyError(
            f"the log key {path} does not exist, and this ledger is signed by key id"
            f" {exc.ledger_key_id}: restore that key from its backup to {path} (or pass"
            " --log-key); zkgrid serve never makes a new key for an existing ledger"
        ) from None
    try:
        save_log_key(path, signer)
    except BaseException:
        store.close()
        raise
    return signer, store


def _serving(health_servicer: health.HealthServicer) -> Callable[[], bool]:
    """Whether the gRPC health service says the whole server is SERVING (not draining)."""
    request = health_pb2.HealthCheckRequest(service="")

    def serving() -> bool:
        # "" is always registered: Check uses its context only to answer NOT_FOUND.
        reply = health_servicer.Check(request, None)  # type: ignore[arg-type]
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    return serving


def serve(config: ServiceConfig) -> int:
    """``zkgrid serve``: run the service until SIGTERM/SIGINT; 0 after a clean drain."""
    from service.admin import AdminServer, Readiness
    from service.metrics import ServiceMetrics

    config.validate()
    metrics = ServiceMetrics()
    readiness = Readiness()
    admin: AdminServer | None = None
    if config.admin_listen is not None:
        # Up before the ledger's start-up check: alive (/healthz), not yet ready (/readyz).
        admin = AdminServer(config.admin_listen, metrics.registry, readiness).start()
        logger.info("admin port (/metrics, /healthz, /readyz) on %s:%d", admin.host, admin.port)
    try:
        signer, store = _open_signed_store(config)
        try:
            _serve_store(config, store, signer.verifier_key(), metrics, readiness)
        finally:
            store.close()
    finally:
        if admin is not None:
            admin.close()
        metrics.close()
    return 0


def _serve_store(
    config: ServiceConfig,
    store: LedgerStore,
    verifier_key: str,
    metrics: ServiceMetrics,
    readiness: Readiness,
) -> None:
    """:func:`serve` once the store is open: verifier, settlement, server, then wait."""
    from service.metrics import InstrumentedVerifier
    from zkgrid import __version__

    verifier = InstrumentedVerifier(metrics, processes=config.verify_processes)
    try:
        reader = metrics.watch_store(store, origin=config.origin, version=__version__)
        settlement = Settlement(store, verifier, late_days=config.late_days)  # replays the ledger
        try:
            server = build_server(settlement, config, store=store, metrics=metrics)
            server.start()
            info = server_info(server)
            readiness.attach(store=reader, verifier=verifier, serving=_serving(info.health))
            host, _ = split_listen(config.listen)
            logger.info(
                "serving %s on %s:%d (%s); ledger %s, size %d; checkpoint key %s",
                config.origin,
                host,
                info.port,
                "mutual TLS" if info.secure else "INSECURE, dev only",
                store.backend,
                store.size(),
                verifier_key,
            )
            run_until_signal(server, config.grace)
        finally:
            settlement.close()
    finally:
        verifier.close()
