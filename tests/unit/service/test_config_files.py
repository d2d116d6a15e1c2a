"""service.config and service.pki on disk: the log key and TLS keys are private files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from service.config import ConfigError, ServiceConfig, load_log_key
from service.pki import create_ca, issue_server, load_issued, write_issued
from zkgrid._internal.files import InsecurePermissionsError, UnsafeFileError


def test_log_key_created_private_then_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "log.key"
    old = os.umask(0o000)
    try:
        first = load_log_key(path, "zkgrid.test/log")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_log_key(path, "zkgrid.test/log")
    assert again.verifier_key() == first.verifier_key()


def test_log_key_refused_when_exposed_or_a_link(tmp_path: Path) -> None:
    path = tmp_path / "log.key"
    load_log_key(path, "zkgrid.test/log")
    before = path.read_bytes()
    os.chmod(path, 0o644)
    with pytest.raises(InsecurePermissionsError, match=f"chmod 600 {path}"):
        load_log_key(path, "zkgrid.test/log")
    os.chmod(path, 0o600)
    link = tmp_path / "link.key"
    link.symlink_to(path)
    with pytest.raises(UnsafeFileError):
        load_log_key(link, "zkgrid.test/log")
    dangling = tmp_path / "dangling.key"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(UnsafeFileError):
        load_log_key(dangling, "zkgrid.test/log")  # never created through the link
    assert not (tmp_path / "nowhere").exists()
    assert path.read_bytes() == before


def test_log_key_that_is_not_a_key(tmp_path: Path) -> None:
    path = tmp_path / "log.key"
    path.write_bytes(b"not a key")
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="PKCS#8"):
        load_log_key(path, "zkgrid.test/log")


def test_server_tls_key_must_be_private(tmp_path: Path) -> None:
    ca = create_ca()
    ca_pem, _ = write_issued(ca, tmp_path, "ca")
    cert, key = write_issued(issue_server(ca), tmp_path, "server")
    config = ServiceConfig(tls_cert=cert, tls_key=key, client_ca=ca_pem)
    key_pem, chain, client_ca = config.tls_material()
    assert key_pem == key.read_bytes()
    assert (chain, client_ca) == (cert.read_bytes(), ca_pem.read_bytes())
    os.chmod(key, 0o640)
    with pytest.raises(InsecurePermissionsError):
        config.tls_material()


def test_certs_rewrite_keys_atomically_and_privately(tmp_path: Path) -> None:
    ca = create_ca()
    _, key = write_issued(ca, tmp_path, "ca")
    first = key.read_bytes()
    write_issued(create_ca(), tmp_path, "ca")  # overwrite, asked for: replaced, still 0600
    assert key.read_bytes() != first
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ca.key", "ca.pem"]
    load_issued(tmp_path, "ca")
    os.chmod(key, 0o644)
    with pytest.raises(InsecurePermissionsError):
        load_issued(tmp_path, "ca")
