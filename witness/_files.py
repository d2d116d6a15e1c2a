"""The witness's key and state files: small JSON files, written 0600, never overwritten.

Moved as they were from ``ledger/witness.py``; the shared private-file helper
(``zkgrid/_internal/files.py``) is to replace :func:`write_new_file` and
:func:`fsync_dir`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ledger.cosignature import WitnessArgumentError, WitnessFormatError

__all__ = ["MAX_FILE_BYTES", "fsync_dir", "load_json_object", "read_small_file", "write_new_file"]

MAX_FILE_BYTES = 1 << 16


def read_small_file(path: Path, what: str) -> str:
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise WitnessArgumentError(f"cannot read the {what} {path}: {e.strerror}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise WitnessFormatError(f"{what} is larger than {MAX_FILE_BYTES} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise WitnessFormatError(f"{what} is not UTF-8") from None


def load_json_object(text: str, what: str, keys: frozenset[str]) -> dict[str, object]:
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        raise WitnessFormatError(f"{what} is not JSON") from None
    if not isinstance(obj, dict):
        raise WitnessFormatError(f"{what} must be a JSON object")
    if set(obj) != keys:
        raise WitnessFormatError(f"{what} must have exactly the fields {sorted(keys)}")
    return obj


def write_new_file(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 and ``data``; refuse if it exists. Durable (fsync)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        raise WitnessArgumentError(f"{path} already exists; refusing to overwrite it") from None
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)  # whatever the umask
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    if os.name != "posix":  # pragma: no cover - directories cannot be opened elsewhere
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
