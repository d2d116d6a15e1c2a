"""The settlement gRPC server: build it, run it, drain it.

:func:`build_server` assembles a thread-pool ``grpc.Server`` with the API's
servicers, the standard health service (``grpc.health.v1``, SERVING for the
whole server and each service), server reflection, the one interceptor
(:mod:`service.interceptors`), message-size limits and mutual TLS (or, for
development on loopback only, an insecure port), and binds it.

:func:`serve` is ``zkgrid serve``: open the store (self-checked), build, start,
wait for SIGTERM or SIGINT, then mark every service NOT_SERVING, stop accepting
calls and let in-flight calls finish for ``grace`` seconds
(``server.stop(grace)``), close the store and return 0.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import weakref
from collections.abc import Sequence
from concurrent import futures
from dataclasses import dataclass
from types import FrameType
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from ledger.checkpoint import CheckpointSigner
from service.auth import Authorizer
from service.budgets import FailureBudgets
from service.config import ConfigError, ServiceConfig, split_listen
from service.interceptors import ZkgridInterceptor
from service.logkey import LogKeyError, read_log_key, save_log_key
from service.servicers import (
    LedgerServicer,
    add_domain_servicers,
    add_witness_servicer,
    make_settlement,
)
from service.settlement import Settlement
from service.storage import LedgerStore, LogKeyMismatch, open_store
from service.witnesses import Witnesses
from zkgrid.settlement.v1 import ledger_pb2, ledger_pb2_grpc

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
) -> grpc.Server:
    """A bound (not started) server for ``settlement`` (the domain) and its ledger store.

    ``store`` defaults to ``settlement.store``. ``settlement`` may be ``None``
    to serve the LedgerService alone (tools and tests). With a settlement the
    WitnessService is served too, over ``witnesses`` (default: a
    :class:`~service.witnesses.Witnesses` over the store with
    ``config.witness_quorum``).
    """
    config.validate()
    ledger_store = store if store is not None else settlement.store if settlement else None
    if ledger_store is None:
        raise ConfigError("build_server needs a ledger store")
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="zkgrid-rpc"),
        interceptors=[ZkgridInterceptor(Authorizer(insecure=config.insecure), _budgets(config))],
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
    reflection.enable_server_reflection((*services, health_name, reflection.SERVICE_NAME), server)

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


def serve(config: ServiceConfig) -> int:
    """``zkgrid serve``: run the service until SIGTERM/SIGINT; 0 after a clean drain."""
    config.validate()
    signer, store = _open_signed_store(config)
    try:
        settlement = make_settlement(  # replays the ledger
            store, config.verify_processes, config.late_days
        )
    except BaseException:
        store.close()
        raise
    try:
        server = build_server(settlement, config, store=store)
        server.start()
        info = server_info(server)
        host, _ = split_listen(config.listen)
        logger.info(
            "serving %s on %s:%d (%s); ledger %s, size %d; checkpoint key %s",
            config.origin,
            host,
            info.port,
            "mutual TLS" if info.secure else "INSECURE, dev only",
            store.backend,
            store.size(),
            signer.verifier_key(),
        )
        run_until_signal(server, config.grace)
    finally:
        settlement.close()
        store.close()
    return 0
