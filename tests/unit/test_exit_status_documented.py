"""Every ``zkgrid`` command states the one exit-status scheme in its ``--help`` (issue 11 §3),
and ``zkgrid --help`` does too."""

from __future__ import annotations

import pytest

from cli.main import COMMANDS
from cli.main import main as zkgrid


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_states_the_exit_status(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = zkgrid([command, "--help"])
    except SystemExit as exc:  # argparse's own --help exit
        code = int(exc.code or 0)
    text = " ".join(capsys.readouterr().out.split())
    assert code == 0
    assert "0 ok" in text or "exit 0" in text
    assert "2 when the service could not run" in text or "2 could not run" in text


def test_top_level_help_states_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert zkgrid(["--help"]) == 0
    assert "2 could not run" in capsys.readouterr().out
