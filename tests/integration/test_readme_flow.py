"""README's "Running it" runs as written, through the real ``zkgrid`` command, from a
certificate authority to a verified bill, an audit and a final checkpoint, on SQLite and
on PostgreSQL (issue 11, "Done when").

Each line of the block is run as a separate process in a fresh directory holding a copy
of ``examples/``, with ``HOME`` there too; ``zkgrid`` is ``python -m cli.main`` of this
checkout. Only three things are changed from the text: the port (a free one instead of
50051), the database URL (a fresh one per backend) and ``&`` (the server is started in
the background and waited for). ``VAR=...`` and ``export`` lines set variables, ``>``
writes stdout to its file. Every command must exit 0, and none may run without a pinned
log key.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.unit.test_readme_commands import README, ROOT, _split_commands

_DEFAULT_PORT = "50051"
_DEFAULT_DB = "sqlite:///ledger.db"


def _running_it_block() -> list[tuple[int, str]]:
    """(line, command text) of the README's first ``sh`` block under "## Running it"."""
    lines = README.read_text(encoding="utf-8").splitlines()
    start = lines.index("## Running it")
    begin = next(i for i in range(start, len(lines)) if lines[i] == "```sh")
    out: list[tuple[int, str]] = []
    pending, first = "", 0
    for i in range(begin + 1, len(lines)):
        line = lines[i]
        if line.startswith("```"):
            break
        if not pending:
            first = i + 1
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        out.append((first, pending + line))
        pending = ""
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, server: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"zkgrid serve exited with {server.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError("zkgrid serve did not start listening")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    shutil.copytree(ROOT / "examples", work / "examples")
    (work / "home").mkdir()
    return work


def _run_block(work: Path, db_url: str) -> dict[str, str]:
    """Run the block in ``work``; return each command's stdout + stderr, by line text."""
    import shlex

    port = str(_free_port())
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ZKGRID_")},
        "HOME": str(work / "home"),
        "PYTHONPATH": str(ROOT),
    }
    variables: dict[str, str] = {}
    outputs: dict[str, str] = {}
    server: subprocess.Popen[bytes] | None = None
    try:
        for line, text in _running_it_block():
            text = text.replace(_DEFAULT_PORT, port).replace(_DEFAULT_DB, db_url)
            words = shlex.split(text, comments=True)
            background = words[-1:] == ["&"]
            words = [w for w in words if w != "&"]
            redirect = None
            if ">" in words:
                at = words.index(">")
                redirect, words = work / words[at + 1], words[:at]
            for part in _split_commands(words):
                assignment = re.fullmatch(r"([A-Z_][A-Z0-9_]*)=(.*)", part[0])
                if assignment and len(part) == 1:
                    variables[assignment.group(1)] = assignment.group(2)
                    continue
                if part[0] == "export":
                    for word in part[1:]:
                        name, _, value = word.partition("=")
                        env[name] = variables[name] = value
                    continue
                argv: list[str] = []
                for word in part:
                    match = re.fullmatch(r"\$([A-Z_][A-Z0-9_]*)", word)
                    argv += shlex.split(variables[match.group(1)]) if match else [word]
                if argv[0] == "zkgrid":
                    argv = [sys.executable, "-m", "cli.main", *argv[1:]]
                if background:
                    server = subprocess.Popen(
                        argv, cwd=work, env=env, stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )  # fmt: skip
                    _wait_for_port(int(port), server, time.monotonic() + 60)
                    continue
                done = subprocess.run(
                    argv, cwd=work, env=env, capture_output=True, timeout=300, check=False
                )
                stdout, stderr = done.stdout.decode(), done.stderr.decode()
                assert done.returncode == 0, f"README line {line}: {text}\n{stdout}\n{stderr}"
                assert "no log key is pinned" not in stderr, f"README line {line}"
                assert "signature not checked" not in stdout + stderr, f"README line {line}"
                if redirect is not None:
                    redirect.write_text(stdout)
                outputs[text] = stdout + stderr
    finally:
        if server is not None:
            server.terminate()
            server.wait(30)
    return outputs


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_the_readme_runs_as_written(
    backend: str, workdir: Path, request: pytest.FixtureRequest
) -> None:
    db_url = (
        f"sqlite:///{workdir / 'ledger.db'}"
        if backend == "sqlite"
        else str(request.getfixturevalue("pg_schema_url"))
    )
    outputs = _run_block(workdir, db_url)
    by_command = {text.split("#")[0].split(" $")[0].strip(): out for text, out in outputs.items()}
    bill = next(out for cmd, out in by_command.items() if cmd.startswith("zkgrid meter bill"))
    assert "signature verified" in bill
    statement = next(v for k, v in by_command.items() if k.startswith("zkgrid meter statement"))
    assert "2026-11-21" in statement
    # the 2-day cycle: 0.60 fixed + 13 kWh x 0.23 + 3.46 kWh x 0.28 - 11.652 kWh x 0.08
    cycle = by_command["zkgrid meter bill --id meter-7 --from 2026-11-22 --to 2026-11-23"]
    assert "2026-11-22..2026-11-23 (plan residential-tiered, 2 days): bill 3.62664 EUR" in cycle
    assert "signature verified" in cycle
    assert "3.46 kWh x 0.28 EUR/kWh" in statement
    assert "check: the local breakdown matches the ledger's bill" in statement
    audits = [v for k, v in by_command.items() if k.startswith("zkgrid audit")]
    assert len(audits) == 2
    finality = next(v for k, v in by_command.items() if k.startswith("zkgrid witness finality"))
    assert re.search(r"latest checkpoint (\d+), final up to \1", finality), finality
