"""The auditor's defaults that the command line needs before it loads anything heavy."""

from __future__ import annotations

from pathlib import Path

__all__ = ["DEFAULT_STATE_PATH"]

#: Where ``zkgrid audit`` keeps its state between runs (``--state`` overrides it).
DEFAULT_STATE_PATH = Path("~/.zkgrid/auditor/state.json")
