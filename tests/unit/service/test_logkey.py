"""The log key on disk (service/logkey.py): its verifier key beside it, `zkgrid log key show`,
a default path that does not depend on the working directory, and `zkgrid serve` never
making a new key for an existing ledger."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from cli.main import main as zkgrid
from ledger.checkpoint import CheckpointSigner, parse_verifier_key
from service.cli import main as serve_main
from service.config import ServiceConfig, default_log_key_path
from service.logkey import LogKeyError, create_log_key, load_log_key, public_key_path
from service.server import _open_signed_store
from service.storage import open_store

ORIGIN = "grid.example/log"


def test_the_verifier_key_is_written_beside_the_key(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "log.key"
    signer = create_log_key(path, ORIGIN)
    pub = public_key_path(path)
    assert pub.name == "log.key.pub"
    assert stat.S_IMODE(pub.stat().st_mode) == 0o644
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    vkey = pub.read_text().strip()
    assert parse_verifier_key(vkey) == signer.verifier()
    pub.unlink()
    again, created = load_log_key(path, ORIGIN)  # a missing .pub is written again
    assert not created
    assert pub.read_text().strip() == vkey == again.verifier_key()
    pub.write_text(CheckpointSigner.generate(ORIGIN).verifier_key() + "\n")
    with pytest.raises(LogKeyError, match="another verifier key"):
        load_log_key(path, ORIGIN)
    with pytest.raises(LogKeyError, match="does not exist"):
        load_log_key(tmp_path / "missing.key", ORIGIN, create=False)


def test_log_key_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "log.key"
    signer = create_log_key(path, ORIGIN)
    assert zkgrid(["log", "key", "show", "--key", str(path)]) == 0  # name from the .pub
    assert capsys.readouterr().out.strip() == signer.verifier_key()
    assert zkgrid(["log", "key", "show", "--key", str(path), "--origin", ORIGIN, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["key_id"] == signer.key_id.hex()
    assert shown["vkey"] == signer.verifier_key()
    assert zkgrid(["log", "key", "show", "--key", str(tmp_path / "none.key"), "--origin", "o"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_the_default_key_path_does_not_depend_on_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert default_log_key_path() == tmp_path / "home" / ".zkgrid" / "zkgrid-log.key"
    assert ServiceConfig().log_key == default_log_key_path()
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    assert default_log_key_path() == tmp_path / "state" / "zkgrid-log.key"
    from_cli = ServiceConfig.from_sources({"insecure": True}, {})
    assert from_cli.log_key == tmp_path / "state" / "zkgrid-log.key"


def test_serve_never_makes_a_new_key_for_an_existing_ledger(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    key = tmp_path / "log.key"
    config = ServiceConfig(db=db, log_key=key, origin=ORIGIN, insecure=True)
    signer, store = _open_signed_store(config)  # a new ledger: the key is made and saved
    store.close()
    assert key.exists()
    assert public_key_path(key).read_text().strip() == signer.verifier_key()
    ledger_key_id = signer.key_id.hex()

    key.rename(tmp_path / "moved.key")  # lost
    args = ["--db", db, "--log-key", str(key), "--origin", ORIGIN, "--insecure"]
    args += ["--listen", "127.0.0.1:0"]
    assert serve_main(args) == 2
    err = capsys.readouterr().err
    assert f"signed by key id {ledger_key_id}" in err
    assert "restore that key" in err
    assert not key.exists()  # nothing was written

    other = tmp_path / "other.key"
    other_signer = create_log_key(other, ORIGIN)
    assert serve_main([*args[:2], "--log-key", str(other), *args[4:]]) == 2
    err = capsys.readouterr().err
    assert f"this ledger is signed by key id {ledger_key_id}" in err
    assert f"you loaded key id {other_signer.key_id.hex()}" in err
    with open_store(db, signer, ORIGIN) as reopened:  # the ledger is untouched
        assert reopened.size() == 0


def test_log_key_init(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "log.key"
    assert zkgrid(["log", "key", "init", "--key", str(path), "--origin", ORIGIN]) == 0
    vkey = capsys.readouterr().out.strip()
    assert public_key_path(path).read_text().strip() == vkey
    assert parse_verifier_key(vkey).name == ORIGIN
    before = path.read_bytes()
    assert zkgrid(["log", "key", "init", "--key", str(path), "--origin", ORIGIN]) == 1
    assert "never replaced" in capsys.readouterr().err
    assert path.read_bytes() == before
