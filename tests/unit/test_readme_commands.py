"""Every command in the README parses as written (issue 11 §6).

The README's ``sh`` blocks are read line by line: continuation lines joined,
comments dropped, ``VAR="..."`` assignments remembered and ``$VAR`` expanded,
redirections, ``&`` and ``&&`` handled. Each ``zkgrid ...`` command and each
``python -m bench.X ...`` command is handed to its own ``main`` with argparse's
``parse_args`` stopped right after parsing: the flags and their values must be
what the command's parser accepts (a misspelt or removed flag fails here), and
nothing runs. ``make TARGET`` lines name targets the Makefile has. Other
commands (``cp``, ``cd``) are left alone.
"""

from __future__ import annotations

import argparse
import importlib
import re
import shlex
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


class _Parsed(BaseException):
    """Raised by the patched ``parse_args`` once the arguments parsed."""


def shell_commands(text: str) -> Iterator[tuple[int, list[str], dict[str, str]]]:
    """(line number, argv, exported variables) of every simple command in the ``sh``
    blocks of ``text`` (``export A=1 B=2`` lines feed the exported variables)."""
    variables: dict[str, str] = {}
    exported: dict[str, str] = {}
    in_block = False
    pending = ""
    start = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("```"):
            in_block = line.strip() in ("```sh", "```bash", "```shell")
            continue
        if not in_block:
            continue
        if not pending:
            start = number
        pending += line.rstrip("\\").rstrip() + " " if line.endswith("\\") else line
        if line.endswith("\\"):
            continue
        command, pending = pending, ""
        try:
            words = shlex.split(command, comments=True)
        except ValueError as exc:  # an unbalanced quote: the README is wrong
            raise AssertionError(f"README line {start}: {exc}") from None
        for part in _split_commands(words):
            assignment = re.fullmatch(r"([A-Z_][A-Z0-9_]*)=(.*)", part[0]) if part else None
            if assignment and len(part) == 1:
                variables[assignment.group(1)] = assignment.group(2)
                continue
            if part[0] == "export":
                for word in part[1:]:
                    name, _, value = word.partition("=")
                    exported[name] = variables[name] = value
                continue
            yield start, _expand(part, variables), dict(exported)


def _split_commands(words: list[str]) -> Iterator[list[str]]:
    current: list[str] = []
    skip_next = False
    for word in words:
        if skip_next:
            skip_next = False
            continue
        if word in ("&&", "||", ";", "&", "|"):
            if current:
                yield current
            current = []
        elif word in (">", ">>", "<", "2>"):
            skip_next = True  # the redirection's file
        elif word.startswith((">", "2>")):
            continue
        else:
            current.append(word)
    if current:
        yield current


def _expand(words: list[str], variables: dict[str, str]) -> list[str]:
    out: list[str] = []
    for word in words:
        match = re.fullmatch(r"\$\{?([A-Z_][A-Z0-9_]*)\}?", word)
        if match and match.group(1) in variables:
            out += shlex.split(variables[match.group(1)])
        else:
            out.append(word)
    return out


def _entry(argv: list[str]) -> tuple[Callable[[list[str]], Any], list[str]] | None:
    """The ``main`` that runs ``argv`` and the arguments it gets, or None (not ours)."""
    if argv[0] == "zkgrid":
        from cli.main import main

        return main, argv[1:]
    if len(argv) >= 3 and argv[0].endswith(("python", "python3")) and argv[1] == "-m":
        module = importlib.import_module(argv[2])
        return module.main, argv[3:]
    return None


def _readme_commands() -> list[tuple[int, list[str], dict[str, str]]]:
    return list(shell_commands(README.read_text(encoding="utf-8")))


def test_the_readme_has_commands() -> None:
    commands = [argv for _, argv, _ in _readme_commands()]
    assert any(argv[:2] == ["zkgrid", "serve"] for argv in commands)
    assert any(argv[:3] == ["zkgrid", "meter", "submit"] for argv in commands)
    assert any(argv[0] == "make" for argv in commands)


@pytest.mark.parametrize(
    ("line", "argv", "env"),
    _readme_commands(),
    ids=lambda v: str(v) if isinstance(v, int) else "",
)
def test_readme_command_parses(
    line: int, argv: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if argv[0] == "make":
        makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
        for target in argv[1:]:
            assert re.search(rf"^{re.escape(target)}:", makefile, re.M), (line, target)
        return
    found = _entry(argv)
    if found is None:
        return  # cp, cd, ...: not ours to check
    main, args = found
    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(self: argparse.ArgumentParser, *a: Any, **k: Any) -> Any:
        namespace = original(self, *a, **k)
        raise _Parsed(namespace)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    try:
        code = main(args)
    except _Parsed:
        return
    except SystemExit as exc:
        code = exc.code
    raise AssertionError(f"README line {line}: {shlex.join(argv)} did not parse (exit {code})")
