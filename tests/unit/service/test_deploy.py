"""deploy/zkgrid.service: the hardening a process holding a signing key needs, settings
that `zkgrid serve` accepts, and (where systemd is installed) `systemd-analyze verify`
without a single warning."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from service import cli as serve_cli
from service.config import ENV

ROOT = Path(__file__).resolve().parents[3]
UNIT = ROOT / "deploy" / "zkgrid.service"

Unit = dict[str, list[tuple[str, str]]]


def _parse(text: str) -> Unit:
    """systemd's unit syntax: [Section], Key=Value (repeatable), # and ; comments."""
    sections: Unit = {}
    current: list[tuple[str, str]] | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        assert current is not None, f"line {number} is outside a section"
        assert "=" in line, f"line {number} is not Key=Value: {raw!r}"
        key, value = line.split("=", 1)
        current.append((key.strip(), value.strip()))
    return sections


def _values(unit: Unit, section: str, key: str) -> list[str]:
    return [v for k, v in unit[section] if k == key]


def _one(unit: Unit, section: str, key: str) -> str:
    (value,) = _values(unit, section, key)
    return value


@pytest.fixture(scope="module")
def unit() -> Unit:
    return _parse(UNIT.read_text())


def test_the_unit_has_the_hardening_of_a_service_holding_a_signing_key(unit: Unit) -> None:
    assert set(unit) == {"Unit", "Service", "Install"}
    required = {
        "DynamicUser": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "NoNewPrivileges": "yes",
        "CapabilityBoundingSet": "",
        "AmbientCapabilities": "",
        "RestrictSUIDSGID": "yes",
        "RestrictNamespaces": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectControlGroups": "yes",
        "LockPersonality": "yes",
        "SystemCallArchitectures": "native",
        "StateDirectory": "zkgrid",
        "StateDirectoryMode": "0700",
        "UMask": "0077",
        "KillSignal": "SIGTERM",
    }
    for key, value in required.items():
        assert _one(unit, "Service", key) == value, key
    assert set(_one(unit, "Service", "RestrictAddressFamilies").split()) == {
        "AF_INET", "AF_INET6", "AF_UNIX",
    }  # fmt: skip
    filters = _values(unit, "Service", "SystemCallFilter")
    assert "@system-service" in filters
    assert any(f.startswith("~") and "@privileged" in f for f in filters)
    # SIGTERM drains for `grace` (10 s by default): systemd must wait longer.
    assert int(_one(unit, "Service", "TimeoutStopSec")) > 10
    # Exit status 1 is a ledger that failed its self-check (service/cli.py): not restarted.
    assert _one(unit, "Service", "RestartPreventExitStatus") == "1"
    assert serve_cli._VIOLATIONS  # the reasons that exit 1
    assert _one(unit, "Install", "WantedBy") == "multi-user.target"


def test_the_keys_come_as_credentials_the_service_reads(unit: Unit) -> None:
    credentials = dict(v.split(":", 1) for v in _values(unit, "Service", "LoadCredential"))
    assert credentials == {
        "log.key": "/etc/zkgrid/log.key",
        "tls.key": "/etc/zkgrid/tls/server.key",
    }
    environment = dict(
        item.split("=", 1)
        for line in _values(unit, "Service", "Environment")
        for item in shlex.split(line)
    )
    assert environment["ZKGRID_LOG_KEY"] == "%d/log.key"
    assert environment["ZKGRID_TLS_KEY"] == "%d/tls.key"
    variables = {name for name in environment if name.startswith("ZKGRID_")}
    assert variables <= set(ENV.values())


def test_exec_start_is_a_command_line_zkgrid_serve_accepts(unit: Unit) -> None:
    argv = shlex.split(_one(unit, "Service", "ExecStart"))
    assert Path(argv[0]).name == "zkgrid"
    assert argv[1] == "serve"
    args = serve_cli.build_parser().parse_args(argv[2:])
    assert args.config == "/etc/zkgrid/zkgrid.toml"
    assert "/etc/zkgrid/zkgrid.toml" in (ROOT / "deploy" / "zkgrid.toml").read_text()


def _zkgrid_command() -> Path:
    beside = Path(sys.executable).parent / "zkgrid"
    found = beside if beside.exists() else shutil.which("zkgrid")
    assert found, "the zkgrid command is not installed (pip install -e .)"
    return Path(found)


def _verify(path: Path) -> str:
    done = subprocess.run(
        ["systemd-analyze", "verify", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return (done.stdout + done.stderr).strip()


def test_systemd_analyze_verify_finds_nothing(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze is required in CI (.ci/run installs Debian's systemd)")
        pytest.skip("systemd-analyze is not installed: apt-get install systemd (README: Tests)")
    # The unit names /opt/zkgrid's command, absent here: verify a copy naming this one.
    text = UNIT.read_text().replace("/opt/zkgrid/.venv/bin/zkgrid", str(_zkgrid_command()))
    copy = tmp_path / "zkgrid.service"
    copy.write_text(text)
    assert _verify(copy) == ""
    # The check can fail: a misspelt option and a bad value are reported.
    broken = tmp_path / "broken.service"
    broken.write_text(
        text.replace("ProtectHome=yes", "ProtectHomes=yes").replace(
            "ProtectSystem=strict", "ProtectSystem=sometimes"
        )
    )
    report = _verify(broken)
    assert "Unknown key 'ProtectHomes'" in report
    assert "ProtectSystem" in report or "protect system" in report
