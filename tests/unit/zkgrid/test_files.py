"""zkgrid._internal.files: private files (0600, O_EXCL, O_NOFOLLOW, atomic replace, checks)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from zkgrid._internal.files import (
    FileExistsRefusedError,
    FileTooLargeError,
    InsecurePermissionsError,
    PrivateFileError,
    UnsafeFileError,
    atomic_writer,
    check_private_dir,
    check_private_file,
    ensure_private_dir,
    read_file,
    read_private,
    replace_private,
    write_new_private,
)
from zkgrid.errors import InvalidArgumentError, ZkgridError

SECRET = b"-----BEGIN PRIVATE KEY-----\nsecret material\n-----END PRIVATE KEY-----\n"


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def loose_umask() -> object:
    old = os.umask(0o000)
    yield None
    os.umask(old)


def test_new_file_is_0600_whatever_the_umask(tmp_path: Path, loose_umask: object) -> None:
    path = tmp_path / "key"
    write_new_private(path, SECRET)
    assert _mode(path) == 0o600
    assert path.read_bytes() == SECRET
    assert read_private(path) == SECRET


def test_o_excl_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "key"
    write_new_private(path, SECRET)
    with pytest.raises(FileExistsRefusedError, match="refusing to overwrite") as info:
        write_new_private(path, b"another key")
    assert info.value.reason == "FILE_EXISTS"
    assert path.read_bytes() == SECRET  # bad input changes nothing
    write_new_private(path, b"another key", overwrite=True)  # asked: replaced atomically
    assert path.read_bytes() == b"another key"
    assert _mode(path) == 0o600


def test_creating_through_a_symlink_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    link = tmp_path / "key"
    link.symlink_to(target)  # dangling: O_CREAT would create the target without O_EXCL
    with pytest.raises(FileExistsRefusedError):
        write_new_private(link, SECRET)
    assert not target.exists()


def test_o_nofollow_refuses_to_read_a_secret_through_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real.key"
    write_new_private(real, SECRET)
    link = tmp_path / "link.key"
    link.symlink_to(real)
    with pytest.raises(UnsafeFileError, match="symbolic link") as info:
        read_private(link)
    assert info.value.reason == "FILE_UNSAFE"
    with pytest.raises(UnsafeFileError, match="symbolic link"):
        check_private_file(link)
    # Public files (certificates) may be reached through a link.
    assert read_file(link) == SECRET


def test_a_secret_readable_by_others_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "key"
    write_new_private(path, SECRET)
    for mode in (0o640, 0o604, 0o660, 0o700 | 0o020):
        os.chmod(path, mode)
        with pytest.raises(InsecurePermissionsError) as info:
            read_private(path)
        message = str(info.value)
        assert f"chmod 600 {path}" in message
        assert f"{mode:04o}" in message
        assert "secret material" not in message  # never the contents
        assert info.value.reason == "INSECURE_PERMISSIONS"
        with pytest.raises(InsecurePermissionsError):
            check_private_file(path)
    os.chmod(path, 0o400)
    assert read_private(path) == SECRET
    check_private_file(path)


def test_reads_are_bounded(tmp_path: Path) -> None:
    path = tmp_path / "big"
    write_new_private(path, b"x" * 101)
    assert read_private(path, max_bytes=101) == b"x" * 101
    with pytest.raises(FileTooLargeError, match="larger than 100 bytes") as info:
        read_private(path, max_bytes=100)
    assert info.value.reason == "FILE_TOO_LARGE"


def test_reading_something_that_is_not_a_regular_file(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(UnsafeFileError, match="not a regular file"):
        read_private(fifo)  # O_NONBLOCK: refused, never hangs
    with pytest.raises(UnsafeFileError):
        read_file(tmp_path)
    with pytest.raises(InvalidArgumentError, match="not a file"):
        check_private_file(tmp_path / "missing")
    with pytest.raises(PrivateFileError, match="cannot open") as info:
        read_file(tmp_path / "missing")
    assert info.value.reason == "FILE_ACCESS"


def test_replace_is_atomic_and_leaves_no_temporary(tmp_path: Path, loose_umask: object) -> None:
    path = tmp_path / "state.json"
    replace_private(path, b"one")
    replace_private(path, b"two")
    assert path.read_bytes() == b"two"
    assert _mode(path) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_replace_does_not_write_through_a_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"untouched")
    path = tmp_path / "state.json"
    path.symlink_to(victim)
    replace_private(path, b"new state")
    assert victim.read_bytes() == b"untouched"
    assert not path.is_symlink()
    assert path.read_bytes() == b"new state"


def test_a_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "archive"
    replace_private(path, b"old")

    class Boom(Exception):
        pass

    def write_half() -> None:
        with atomic_writer(path) as out:
            out.write(b"half of the new")
            raise Boom

    with pytest.raises(Boom):
        write_half()
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["archive"]


def test_atomic_writer_public_mode(tmp_path: Path, loose_umask: object) -> None:
    path = tmp_path / "cert.pem"
    with atomic_writer(path, mode=0o644) as out:
        out.write(b"certificate")
    assert _mode(path) == 0o644


def test_private_directories(tmp_path: Path, loose_umask: object) -> None:
    home = ensure_private_dir(tmp_path / "a" / "home")
    assert _mode(home) == 0o700
    ensure_private_dir(home)  # existing and private: fine
    os.chmod(home, 0o750)
    with pytest.raises(InsecurePermissionsError, match="chmod 700"):
        check_private_dir(home)
    with pytest.raises(InsecurePermissionsError):
        ensure_private_dir(home)
    with pytest.raises(InvalidArgumentError, match="not a directory"):
        check_private_dir(tmp_path / "missing")


def test_errors_are_typed_under_the_root() -> None:
    for cls in (
        PrivateFileError,
        FileExistsRefusedError,
        InsecurePermissionsError,
        UnsafeFileError,
        FileTooLargeError,
    ):
        assert issubclass(cls, ZkgridError)
        assert cls.reason.isupper()
