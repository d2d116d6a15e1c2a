"""Start-up: the command-line modules parse arguments before importing anything heavy.

``zkgrid meter submit --help`` and friends must answer at once; what makes them slow is
importing grpc, the proof system, the database layer, BLS or rich. These checks run in
a fresh interpreter and look at ``sys.modules``, so unlike a timing they cannot flake.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

#: Modules a ``--help`` must not load (prefix match).
HEAVY = (
    "grpc",
    "py_ecc",
    "sqlmodel",
    "sqlalchemy",
    "rich",
    "zkp",
    "petlib",
    "blspy",
    "cryptography",
)

CLI_MODULES = [
    "cli.main",
    "meter.cli",
    "verifier.cli",
    "service.cli",
    "service.export",
    "service.pki",
]

HELP_COMMANDS = [
    ["meter", "submit", "--help"],
    ["meter", "--help"],
    ["audit", "--help"],
    ["serve", "--help"],
    ["certs", "--help"],
    ["ledger", "export", "--help"],
]


def _loaded_after(code: str) -> list[str]:
    probe = (
        "import json, sys\n"
        f"{code}\n"
        f"heavy = {HEAVY!r}\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in heavy)\n"
        "sys.stderr.flush()\n"
        "print('\\n' + json.dumps(bad))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("module", CLI_MODULES)
def test_importing_a_cli_module_loads_nothing_heavy(module: str) -> None:
    assert _loaded_after(f"import {module}") == []


@pytest.mark.parametrize("argv", HELP_COMMANDS, ids=" ".join)
def test_help_loads_nothing_heavy(argv: list[str]) -> None:
    code = (
        "import contextlib, io\n"
        "from cli.main import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):\n"
        f"    main({argv!r})\n"
        "assert 'usage' in out.getvalue(), out.getvalue()\n"
    )
    assert _loaded_after(code) == []
