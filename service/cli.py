"""``zkgrid serve``: run the settlement gRPC service.

Every flag can also come from an environment variable and from the TOML file of
``--config`` (flag > environment > file > default); see :mod:`service.config` for the
checks applied before anything is opened and :mod:`service.config_file` for the file.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from service.config import (
    CONFIG_ENV,
    DEFAULT_DB,
    DEFAULT_FAILURE_BURST,
    DEFAULT_FAILURE_REFILL_S,
    DEFAULT_LISTEN,
    DEFAULT_LOG_KEY,
    DEFAULT_ORIGIN,
    ENV,
    LOG_FORMATS,
    LOG_LEVELS,
    ConfigError,
    ServiceConfig,
)
from zkgrid.errors import Reason, ZkgridError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zkgrid serve",
        description=(
            "Run the zkgrid settlement gRPC service (mutual TLS; roles from the client"
            " certificate's OU). SIGTERM/SIGINT drain in-flight calls, then exit 0."
        ),
        epilog=(
            "Settings: a flag wins over its ZKGRID_* variable, which wins over the --config"
            " file, which wins over the default. Exit status: 0 after a clean drain, 1 when"
            " the ledger fails its start-up check, 2 when the service could not run"
            " (settings, keys, files, the database, ports). Insecure mode (--insecure) is for"
            " development"
            " and the demo only: it listens on loopback addresses only, and callers name"
            " their role and identity in the x-zkgrid-role / x-zkgrid-identity metadata."
            " Operator's guide: docs/operations.md."
        ),
    )

    def env(name: str) -> str:
        return f"(env {ENV[name]})"

    parser.add_argument(
        "--db",
        help=f"ledger database: sqlite:///PATH or postgresql://USER@HOST:PORT/DB"
        f" (default {DEFAULT_DB}) {env('db')}",
    )
    parser.add_argument(
        "--listen", help=f"HOST:PORT to listen on (default {DEFAULT_LISTEN}) {env('listen')}"
    )
    parser.add_argument("--tls-cert", help=f"server certificate chain, PEM {env('tls_cert')}")
    parser.add_argument("--tls-key", help=f"server private key, PEM {env('tls_key')}")
    parser.add_argument(
        "--client-ca",
        help=f"CA certificate(s) that sign client certificates, PEM {env('client_ca')}",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        default=None,
        help=f"no TLS; loopback listen addresses only; dev/demo only {env('insecure')}",
    )
    parser.add_argument(
        "--log-key",
        help="Ed25519 checkpoint signing key, PKCS#8 PEM; created (mode 0600, with its"
        " verifier key in <key>.pub) for a new ledger only"
        f" (default {DEFAULT_LOG_KEY}) {env('log_key')}",
    )
    parser.add_argument(
        "--origin",
        help="the ledger's origin line in checkpoints, also the key name; one per deployment,"
        f" required except with --insecure (then default {DEFAULT_ORIGIN}) {env('origin')}",
    )
    parser.add_argument(
        "--workers", type=int, help=f"RPC worker threads (default 128) {env('workers')}"
    )
    parser.add_argument(
        "--grace",
        type=float,
        help=f"seconds in-flight calls get to finish on shutdown (default 10) {env('grace')}",
    )
    parser.add_argument(
        "--startup-check",
        choices=["full", "quick"],
        help="ledger self-check before serving: full re-hashes every entry (O(n)),"
        f" quick checks the last checkpoint (O(log n)) (default full) {env('startup_check')}",
    )
    parser.add_argument(
        "--witness-quorum",
        type=int,
        metavar="K",
        help="witnesses whose cosignatures make a checkpoint final (default: a majority of"
        f" the witnesses registered at that checkpoint) {env('witness_quorum')}",
    )
    parser.add_argument(
        "--verify-processes",
        type=int,
        metavar="N",
        help="worker processes that parse and verify range-proof batches"
        f" (default: one per two cores; 0: in the server process) {env('verify_processes')}",
    )
    parser.add_argument(
        "--late-days",
        type=int,
        metavar="N",
        help="take a period's readings until N days after it ended (default: no limit;"
        f" never before it ended) {env('late_days')}",
    )
    parser.add_argument(
        "--failure-burst",
        type=int,
        metavar="N",
        help="failed verifications (invalid proofs, signatures, cosignatures) a caller may"
        " have in a row before its verifying calls are refused with RESOURCE_EXHAUSTED"
        f" (default {DEFAULT_FAILURE_BURST}; 0: no budgets) {env('failure_burst')}",
    )
    parser.add_argument(
        "--failure-refill-s",
        type=float,
        metavar="S",
        help="seconds for one failure to be forgiven"
        f" (default {DEFAULT_FAILURE_REFILL_S:g}) {env('failure_refill_s')}",
    )
    parser.add_argument(
        "--admin-listen",
        metavar="HOST:PORT",
        help="plain-HTTP admin port: /metrics (Prometheus), /healthz, /readyz; no client"
        " certificate, so keep it on loopback or a private network (default: off)"
        f" {env('admin_listen')}",
    )
    parser.add_argument(
        "--log-format",
        choices=list(LOG_FORMATS),
        help=f"log lines as text or one JSON object each (default text) {env('log_format')}",
    )
    parser.add_argument(
        "--log-level",
        choices=list(LOG_LEVELS),
        help=f"(default INFO; one access-log line per call at INFO) {env('log_level')}",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="TOML file of settings named like the flags (tls_cert = ...); flags and"
        f" ZKGRID_* variables override it (env {CONFIG_ENV})",
    )
    return parser


#: Start-up failures that are findings about the ledger (exit 1), not failures to run (2).
_VIOLATIONS = frozenset({Reason.STORE_INTEGRITY, Reason.APPEND_ONLY_VIOLATION})


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    flags = {name: getattr(args, name, None) for name in ENV}
    config_path = args.config or os.environ.get(CONFIG_ENV) or None
    try:
        file = None
        if config_path is not None:
            from service.config_file import load_config_file

            file = load_config_file(config_path)
        config = ServiceConfig.from_sources(
            flags, file=file, file_name=str(config_path)
        ).validate()
    except ConfigError as exc:
        print(f"zkgrid serve: {exc}", file=sys.stderr)
        return 2
    from service.logs import configure_logging

    configure_logging(config.log_level, config.log_format)
    from service.server import serve

    try:
        return serve(config)
    except ZkgridError as exc:
        # Typed errors name the failed check without secrets (zkgrid/errors.py). A ledger
        # that fails its self-check is a violation found (1); anything else (keys, files,
        # the database, the configuration) means the service could not run (2).
        print(f"zkgrid serve: {exc.reason}: {exc}", file=sys.stderr)
        return 1 if exc.reason in _VIOLATIONS else 2


if __name__ == "__main__":
    raise SystemExit(main())
