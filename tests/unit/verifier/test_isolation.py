"""The verifier never imports the service (it must run where the service is not trusted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_verifier_does_not_import_service() -> None:
    code = (
        "import sys\n"
        "import verifier, verifier.audit, verifier.cli, verifier.report, verifier.sources\n"
        "import verifier.state, ledger.archive\n"
        "import grpc\n"
        "from zkgrid.settlement.v1 import ledger_pb2, ledger_pb2_grpc\n"
        "bad = sorted(m for m in sys.modules if m == 'service' or m.startswith('service.'))\n"
        "print(','.join(bad))\n"
        "sys.exit(1 if bad else 0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"service modules loaded: {done.stdout} {done.stderr}"
