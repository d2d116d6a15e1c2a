"""The witness's key and state files: small JSON files, private (mode 0600).

Creating, replacing and reading them is :mod:`zkgrid._internal.files` (``O_EXCL``,
``O_NOFOLLOW``, fsync of the file and its directory, owner and mode checked on the
open file, bounded reads). What is left here is the witness's side: its errors
(a file that cannot be written or read is a :class:`~ledger.cosignature.WitnessArgumentError`,
one too large or not UTF-8 JSON a :class:`~ledger.cosignature.WitnessFormatError`;
no ``OSError`` escapes) and the strict JSON object loader of both file formats.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager

from ledger.cosignature import WitnessArgumentError, WitnessFormatError
from zkgrid._internal.files import (
    FileTooLargeError,
    PrivateFileError,
    read_private,
    replace_private,
    write_new_private,
)

__all__ = [
    "MAX_FILE_BYTES",
    "load_json_object",
    "read_private_text",
    "replace_private_file",
    "write_new_private_file",
]

#: Bound of a key or state file read (both are a few hundred bytes).
MAX_FILE_BYTES = 1 << 16


@contextmanager
def _witness_errors(what: str) -> Iterator[None]:
    """:class:`PrivateFileError` as the witness's typed errors (the message is kept)."""
    try:
        yield
    except FileTooLargeError as exc:
        raise WitnessFormatError(f"{what}: {exc}") from exc
    except PrivateFileError as exc:
        raise WitnessArgumentError(f"{what}: {exc}") from exc


def read_private_text(path: str | os.PathLike[str], what: str) -> str:
    """The UTF-8 text of the private file ``path`` (not a symbolic link, owned by this user,
    closed to group and others, at most :data:`MAX_FILE_BYTES`)."""
    with _witness_errors(what):
        raw = read_private(path, max_bytes=MAX_FILE_BYTES)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise WitnessFormatError(f"{what} is not UTF-8") from None


def write_new_private_file(path: str | os.PathLike[str], data: bytes, what: str) -> None:
    """Create ``path`` (mode 0600) with ``data``, durably; an existing file is refused."""
    with _witness_errors(what):
        write_new_private(path, data)


def replace_private_file(path: str | os.PathLike[str], data: bytes, what: str) -> None:
    """Atomically replace ``path`` (mode 0600) with ``data``, durably."""
    with _witness_errors(what):
        replace_private(path, data)


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
