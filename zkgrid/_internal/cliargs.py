"""Command-line argument parsing shared by the ``zkgrid`` subcommands (``audit``, ``witness``).

:class:`OneLineParser` reports a bad command line as a :class:`UsageError`
(one line, exit status 2) instead of printing the usage and exiting.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from zkgrid.errors import UsageError

__all__ = ["OneLineParser", "UsageError"]


class OneLineParser(argparse.ArgumentParser):
    """An argument parser that raises :class:`UsageError` instead of printing the usage and
    exiting (``zkgrid audit`` and ``zkgrid witness``)."""

    def error(self, message: str) -> NoReturn:  # one line, exit 2, no usage dump
        raise UsageError(message)
