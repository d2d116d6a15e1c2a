"""Private files, written once: keys, state files, opening stores.

Every function here follows the same rules:

* files are created with mode 0600 (``fchmod`` after ``open``, whatever the umask),
  with ``O_CREAT | O_EXCL`` (a new file never replaces an existing one unless
  the caller asks for a replacement) and ``O_NOFOLLOW`` (a symbolic link where a
  private file belongs is refused, never followed);
* data is durable before a function returns: ``fsync`` of the file, then of its
  directory (so the new name survives a crash too);
* a replacement (:func:`replace_private`, :func:`atomic_writer`) goes through a
  temporary file in the same directory and ``rename``: readers see the old file
  or the new one, never a torn one;
* a secret is read only when nobody but its owner can read or write it
  (:func:`read_private`), and every read is bounded in size;
* failures are :class:`PrivateFileError` subclasses with a ``reason``; messages
  name the path and the check, never the file's contents.

Only ``zkgrid.errors`` is imported: every floor may use this module.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from zkgrid.errors import InvalidArgumentError, Reason, ZkgridError

__all__ = [
    "DEFAULT_MAX_BYTES",
    "PRIVATE_DIR_MODE",
    "PRIVATE_FILE_MODE",
    "FileExistsRefusedError",
    "FileTooLargeError",
    "InsecurePermissionsError",
    "PrivateFileError",
    "UnsafeFileError",
    "atomic_writer",
    "check_private_dir",
    "check_private_file",
    "ensure_private_dir",
    "fsync_dir",
    "log_file_stem",
    "read_file",
    "read_private",
    "replace_private",
    "write_new_private",
]

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700
#: Default bound of a read: keys, certificates, state files and configs are far smaller.
DEFAULT_MAX_BYTES = 1 << 20

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO planted at the path must not hang a read
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC


class PrivateFileError(ZkgridError):
    """A private file or directory could not be created, written or read."""

    reason = Reason.FILE_ACCESS


class FileExistsRefusedError(PrivateFileError, InvalidArgumentError):
    """The file to create already exists (it is never overwritten unless asked)."""

    reason = Reason.FILE_EXISTS


class InsecurePermissionsError(PrivateFileError, InvalidArgumentError):
    """A private file or directory is accessible to group or others, or owned by another user."""

    reason = Reason.INSECURE_PERMISSIONS


class UnsafeFileError(PrivateFileError, InvalidArgumentError):
    """A symbolic link, or something that is not a regular file, where a file belongs."""

    reason = Reason.FILE_UNSAFE


class FileTooLargeError(PrivateFileError, InvalidArgumentError):
    """A file larger than the bound of its read."""

    reason = Reason.FILE_TOO_LARGE


def _access_error(verb: str, path: Path, exc: OSError) -> PrivateFileError:
    if exc.errno == errno.ELOOP:
        return UnsafeFileError(f"{path} is a symbolic link; refusing to follow it")
    return PrivateFileError(f"cannot {verb} {path}: {exc.strerror or type(exc).__name__}")


def _check_owner_and_mode(path: Path, st: os.stat_result, kind: str, mode_hint: int) -> None:
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise InsecurePermissionsError(f"{kind} {path} is owned by another user")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise InsecurePermissionsError(
            f"{kind} {path} has mode {mode:04o}: group or others can access it;"
            f" run `chmod {mode_hint:o} {path}`"
        )


# ----------------------------------------------------------------------------- directories


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """``fsync`` a directory, so that names created or renamed in it are durable."""
    if os.name != "posix":  # pragma: no cover - directories cannot be opened elsewhere
        return
    d = Path(directory)
    try:
        fd = os.open(d, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
    except OSError as exc:
        raise _access_error("open the directory", d, exc) from None
    try:
        os.fsync(fd)
    except OSError as exc:
        raise _access_error("sync the directory", d, exc) from None
    finally:
        os.close(fd)


def check_private_dir(path: str | os.PathLike[str]) -> None:
    """Raise unless ``path`` is a directory owned by this user and closed to group and others."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise InvalidArgumentError(f"{p} is not a directory") from None
    except OSError as exc:
        raise _access_error("inspect", p, exc) from None
    if not stat.S_ISDIR(st.st_mode):
        raise InvalidArgumentError(f"{p} is not a directory")
    _check_owner_and_mode(p, st, "directory", PRIVATE_DIR_MODE)


def ensure_private_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` (and missing parents) with mode 0700 if missing; check it is private."""
    p = Path(path)
    if not p.exists():
        try:
            p.mkdir(mode=PRIVATE_DIR_MODE, parents=True)
            os.chmod(p, PRIVATE_DIR_MODE)  # mkdir's mode is filtered by the umask
        except FileExistsError:
            pass  # created concurrently: checked below like any existing directory
        except OSError as exc:
            raise _access_error("create the directory", p, exc) from None
    check_private_dir(p)
    return p


# ----------------------------------------------------------------------------- writing


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _create(path: Path, mode: int) -> int:
    try:
        fd = os.open(path, _CREATE_FLAGS, mode)
    except FileExistsError:
        # O_CREAT | O_EXCL also fails here when ``path`` is a symbolic link (even a dangling one).
        raise FileExistsRefusedError(f"{path} already exists; refusing to overwrite it") from None
    except OSError as exc:
        raise _access_error("create", path, exc) from None
    try:
        os.fchmod(fd, mode)  # whatever the umask
    except OSError as exc:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise _access_error("set the mode of", path, exc) from None
    return fd


def write_new_private(
    path: str | os.PathLike[str], data: bytes, *, overwrite: bool = False
) -> None:
    """Create ``path`` with mode 0600 holding ``data``, durably.

    An existing file (or a symbolic link) at ``path`` is refused with
    :class:`FileExistsRefusedError` unless ``overwrite``, in which case the file is
    replaced atomically (:func:`replace_private`).
    """
    if overwrite:
        replace_private(path, data)
        return
    p = Path(path)
    fd = _create(p, PRIVATE_FILE_MODE)
    try:
        _write_all(fd, bytes(data))
        os.fsync(fd)
    except OSError as exc:
        os.close(fd)
        p.unlink(missing_ok=True)
        raise _access_error("write", p, exc) from None
    except BaseException:
        os.close(fd)
        p.unlink(missing_ok=True)
        raise
    os.close(fd)
    fsync_dir(p.parent if str(p.parent) else Path("."))


@contextlib.contextmanager
def atomic_writer(
    path: str | os.PathLike[str], *, mode: int = PRIVATE_FILE_MODE
) -> Iterator[BinaryIO]:
    """Write a replacement of ``path``: yields a file in the same directory (``O_EXCL``,
    ``O_NOFOLLOW``, ``mode``); when the block ends normally the file is flushed,
    ``fsync``-ed and renamed over ``path``, then the directory is ``fsync``-ed. When
    the block raises, the temporary file is removed and ``path`` is untouched."""
    p = Path(path)
    directory = p.parent if str(p.parent) else Path(".")
    tmp = directory / f".{p.name}.{secrets.token_hex(8)}.tmp"
    fd = _create(tmp, mode)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, p)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _access_error("write", p, exc) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(directory)


def replace_private(path: str | os.PathLike[str], data: bytes) -> None:
    """Atomically replace (or create) ``path`` with ``data``, mode 0600, durably."""
    with atomic_writer(path) as out:
        out.write(bytes(data))


# ----------------------------------------------------------------------------- reading


def _open_for_read(p: Path, follow_symlinks: bool) -> int:
    flags = os.O_RDONLY | _CLOEXEC | _NONBLOCK | (0 if follow_symlinks else _NOFOLLOW)
    try:
        return os.open(p, flags)
    except OSError as exc:
        raise _access_error("open", p, exc) from None


def check_private_file(path: str | os.PathLike[str]) -> None:
    """Raise unless ``path`` is a regular file (not a symbolic link) that only its owner,
    this user, can access."""
    p = Path(path)
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        raise InvalidArgumentError(f"{p} is not a file") from None
    except OSError as exc:
        raise _access_error("inspect", p, exc) from None
    if stat.S_ISLNK(st.st_mode):
        raise UnsafeFileError(f"{p} is a symbolic link; refusing to follow it")
    if not stat.S_ISREG(st.st_mode):
        raise InvalidArgumentError(f"{p} is not a file")
    _check_owner_and_mode(p, st, "file", PRIVATE_FILE_MODE)


def read_file(
    path: str | os.PathLike[str],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    private: bool = False,
) -> bytes:
    """The bytes of the regular file ``path``, at most ``max_bytes`` of them.

    ``private`` (a secret): the file must not be a symbolic link (``O_NOFOLLOW``), must
    belong to this user and must not be accessible to group or others
    (:class:`InsecurePermissionsError` says which ``chmod`` fixes it). Public files
    (certificates, a log's verifier key) may be reached through a symbolic link.
    """
    p = Path(path)
    fd = _open_for_read(p, follow_symlinks=not private)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeFileError(f"{p} is not a regular file")
        if private:
            _check_owner_and_mode(p, st, "file", PRIVATE_FILE_MODE)
        if st.st_size > max_bytes:
            raise FileTooLargeError(f"{p} is larger than {max_bytes} bytes")
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = os.read(fd, max_bytes + 1 - total)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise FileTooLargeError(f"{p} is larger than {max_bytes} bytes")
        return b"".join(chunks)
    except OSError as exc:
        raise _access_error("read", p, exc) from None
    finally:
        os.close(fd)


def read_private(path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """A secret's bytes: :func:`read_file` with ``private=True``."""
    return read_file(path, max_bytes=max_bytes, private=True)


_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def log_file_stem(origin: str, key_id: bytes) -> str:
    """A file name for one log (the auditor's and a witness's state files): its origin
    (characters outside ``[A-Za-z0-9._-]`` replaced by ``_``, at most 80) and its key id in
    hex, so two logs never share a file."""
    return f"{_UNSAFE_NAME.sub('_', origin)[:80]}+{key_id.hex()}"
