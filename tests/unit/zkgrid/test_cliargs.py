"""The client commands' connection flags default from ZKGRID_TARGET, ZKGRID_CA, ZKGRID_CERT,
ZKGRID_KEY and ZKGRID_LOG_KEY_FILE, through one helper (zkgrid._internal.cliargs); a flag
on the command line wins, and flags that exclude a variable's flag drop it."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from cli import tariff as tariff_cli
from meter import cli as meter_cli
from verifier import cli as audit_cli
from witness import cli as witness_cli
from zkgrid._internal.cliargs import CLIENT_ENV, env_default
from zkgrid.errors import UsageError

ROOT = Path(__file__).resolve().parents[3]
ENV = {
    "ZKGRID_TARGET": "svc.example:50051",
    "ZKGRID_CA": "/etc/zkgrid/ca.pem",
    "ZKGRID_CERT": "/etc/zkgrid/me.pem",
    "ZKGRID_KEY": "/etc/zkgrid/me.key",
    "ZKGRID_LOG_KEY_FILE": "/etc/zkgrid/log.pub",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CLIENT_ENV.values():
        monkeypatch.delenv(name, raising=False)


def _parse(parser: Callable[[], argparse.ArgumentParser], *argv: str) -> argparse.Namespace:
    return parser().parse_args(list(argv))


def test_the_table_names_the_five_variables() -> None:
    assert set(CLIENT_ENV.values()) == set(ENV)
    assert env_default("ca", environ={"ZKGRID_CA": ""}) is None  # empty = unset
    assert env_default("target", "fallback:1", environ={}) == "fallback:1"


@pytest.mark.usefixtures("env")
def test_meter_commands_take_every_default_from_the_environment() -> None:
    args = _parse(meter_cli._parser, "statement", "--id", "m-1")
    assert args.target == ENV["ZKGRID_TARGET"]
    assert (args.ca, args.cert, args.key) == (
        Path(ENV["ZKGRID_CA"]),
        Path(ENV["ZKGRID_CERT"]),
        Path(ENV["ZKGRID_KEY"]),
    )
    assert args.log_key == ENV["ZKGRID_LOG_KEY_FILE"]  # --log-key takes a file too


@pytest.mark.usefixtures("env")
def test_a_flag_wins_over_its_variable() -> None:
    args = _parse(
        meter_cli._parser, "statement", "--target", "other:1", "--ca", "x.pem", "--log-key", "k"
    )
    assert (args.target, args.ca, args.log_key) == ("other:1", Path("x.pem"), "k")
    args = _parse(audit_cli._parser, "--target", "other:1", "--log-key-file", "f")
    assert (args.target, args.log_key_file, args.ca) == ("other:1", "f", ENV["ZKGRID_CA"])


def test_without_the_environment_the_old_defaults_hold() -> None:
    args = _parse(meter_cli._parser, "statement", "--id", "m-1")
    assert args.target == meter_cli.DEFAULT_TARGET
    assert (args.ca, args.cert, args.key, args.log_key) == (None, None, None, None)
    with pytest.raises(UsageError, match="--archive --target"):
        _parse(audit_cli._parser, "--log-key", "k")
    with pytest.raises(UsageError, match="--target"):
        _parse(witness_cli._parser, "finality", "--insecure")


@pytest.mark.usefixtures("env")
def test_insecure_drops_the_environments_tls_files_but_not_explicit_ones() -> None:
    for parser, argv in (
        (meter_cli._parser, ["statement"]),
        (audit_cli._parser, []),
        (witness_cli._parser, ["finality"]),
    ):
        args = _parse(parser, *argv, "--insecure")
        assert args.insecure is True
        assert (args.ca, args.cert, args.key) == (None, None, None), parser.__module__
        assert args.target == ENV["ZKGRID_TARGET"]
    # An explicit --ca stays, whatever the order, so the command refuses the mix.
    assert _parse(audit_cli._parser, "--ca", "c.pem", "--insecure").ca == "c.pem"
    assert _parse(audit_cli._parser, "--insecure", "--ca", "c.pem").ca == "c.pem"


@pytest.mark.usefixtures("env")
def test_audit_needs_no_source_or_key_flag_when_the_environment_names_them() -> None:
    args = _parse(audit_cli._parser)
    assert (args.target, args.archive) == (ENV["ZKGRID_TARGET"], None)
    assert (args.log_key, args.log_key_file) == (None, ENV["ZKGRID_LOG_KEY_FILE"])
    # --archive drops the service and its TLS files; --log-key drops the key file.
    args = _parse(audit_cli._parser, "--archive", "a.zkla", "--log-key", "name+00+AA")
    assert args.archive == "a.zkla"
    assert (args.target, args.ca, args.cert, args.key) == (None, None, None, None)
    assert (args.log_key, args.log_key_file) == ("name+00+AA", None)
    # Both sources on the command line are still refused.
    with pytest.raises(UsageError, match="not allowed with"):
        _parse(audit_cli._parser, "--archive", "a", "--target", "t:1")


@pytest.mark.usefixtures("env")
def test_witness_commands_take_the_environment() -> None:
    args = _parse(witness_cli._parser, "finality")
    assert (args.target, args.ca, args.cert, args.key) == (
        ENV["ZKGRID_TARGET"],
        ENV["ZKGRID_CA"],
        ENV["ZKGRID_CERT"],
        ENV["ZKGRID_KEY"],
    )
    assert args.log_key_file == ENV["ZKGRID_LOG_KEY_FILE"]
    args = _parse(witness_cli._parser, "finality", "--log-key", "name+00+AA")
    assert (args.log_key, args.log_key_file) == ("name+00+AA", None)


@pytest.mark.usefixtures("env")
def test_tariff_commands_take_the_environment() -> None:
    args = _parse(tariff_cli._parser, "show", "--period", "2026-11-21")
    assert (args.target, args.ca, args.cert, args.key, args.log_key_file) == (
        ENV["ZKGRID_TARGET"],
        ENV["ZKGRID_CA"],
        ENV["ZKGRID_CERT"],
        ENV["ZKGRID_KEY"],
        ENV["ZKGRID_LOG_KEY_FILE"],
    )
    args = _parse(tariff_cli._parser, "show", "--period", "2026-11-21", "--insecure")
    assert (args.ca, args.cert, args.key) == (None, None, None)


def test_help_names_the_variables(capsys: pytest.CaptureFixture[str]) -> None:
    for parser, argv in (
        (meter_cli._parser, ["submit", "--help"]),
        (audit_cli._parser, ["--help"]),
        (witness_cli._parser, ["finality", "--help"]),
        (tariff_cli._parser, ["show", "--help"]),
    ):
        with pytest.raises(SystemExit):
            parser().parse_args(argv)
        text = " ".join(capsys.readouterr().out.split())
        for var in ("ZKGRID_TARGET", "ZKGRID_CA", "ZKGRID_CERT", "ZKGRID_KEY"):
            assert f"env {var}" in text, (parser.__module__, var)
        assert "ZKGRID_LOG_KEY_FILE" in text


def test_only_the_helper_reads_the_client_variables() -> None:
    """One helper: no client module reads these variables itself."""
    pattern = re.compile(r"ZKGRID_(TARGET|CA|CERT|KEY|LOG_KEY_FILE)\b")
    offenders = []
    for package in ("meter", "verifier", "witness", "cli", "zkgrid"):
        for path in (ROOT / package).rglob("*.py"):
            if path.name == "cliargs.py":
                continue
            code = [
                line
                for line in path.read_text().splitlines()
                if pattern.search(line) and ("environ" in line or "getenv" in line)
            ]
            if code:
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
