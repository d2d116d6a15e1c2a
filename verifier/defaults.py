"""The auditor's defaults that the command line needs before it loads anything heavy."""

from __future__ import annotations

from pathlib import Path

from zkgrid._internal.files import log_file_stem

__all__ = ["DEFAULT_STATE_DIR", "DEFAULT_STATE_PATH", "default_state_path"]

#: Where ``zkgrid audit`` keeps its state between runs, one file per log (``--state``
#: overrides it): ``<key name>+<key id>.json`` of the pinned log key (``zkgrid serve`` names
#: its key after the log's origin), so auditing a second log never reads the
#: first log's state (and never reports a fork between two different logs).
DEFAULT_STATE_DIR = Path("~/.zkgrid/auditor")
#: The single state file of earlier versions (read by nobody by default any more; pass
#: ``--state`` with it to continue from it).
DEFAULT_STATE_PATH = DEFAULT_STATE_DIR / "state.json"


def default_state_path(key_name: str, key_id: bytes) -> Path:
    """``~/.zkgrid/auditor/<key name>+<key id>.json`` (expanded)."""
    return (DEFAULT_STATE_DIR / f"{log_file_stem(key_name, key_id)}.json").expanduser()
