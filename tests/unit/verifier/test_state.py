"""verifier.state: round trip, 0600 atomic writes, refusal of broken or exposed files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from settlement import rules
from settlement.records import MeterRevocation
from settlement.rules import LedgerState, MeterState, Ref
from tests.unit.service.settlement_support import SimMeter, make_tariff
from tests.unit.verifier.audit_support import cycle_tariff
from verifier.state import (
    AuditorState,
    OpenBatch,
    StateError,
    load_state,
    save_state,
)

_SIM = SimMeter("m-1")
_REG = _SIM.registration()  # signed once (ECDSA nonces are random)
_HOME = cycle_tariff("2025-03-02", "2025-03-03")
_SOLAR = cycle_tariff("2025-03-02", "2025-03-04", plan="solar", meters=("m-1",))


def _state() -> AuditorState:
    meter = MeterState(
        _REG,
        Ref(0, b"\x10" * 32),
        revocation=MeterRevocation("m-1", "replaced"),
        next_sequence=2,
        last_batch_hash=b"\x11" * 32,
        batches={"2025-03-01": Ref(2, b"\x12" * 32), "2025-03-02": Ref(4, b"\x11" * 32)},
        bills={"2025-03-01": Ref(3, b"\x13" * 32), "2025-03-02": Ref(5, b"\x14" * 32)},
    )
    tariff = make_tariff("2025-03-01")
    ledger = LedgerState(
        meters={"m-1": meter},
        tariffs={"2025-03-01": (tariff, Ref(1, tariff.tariff_hash()))},
        witnesses={"regulator": b"\x07" * 48},
        cycle_tariffs={
            t.tariff_hash(): (t, Ref(i, t.tariff_hash()))
            for i, t in ((7, _SOLAR), (6, _HOME))  # not in log order: saved in log order
        },
    )
    return AuditorState(
        origin="o",
        log_key="k+00000000+AQ==",
        checkpoint="o\n0\nroot\n\n— k sig\n",
        frontier=[b"\x01" * 32, b"\x02" * 32],
        ledger=ledger,
        open_batches={b"\x11" * 32: OpenBatch("m-1", "2025-03-02", 240, (b"\x02" * 33,) * 4)},
    )


def test_round_trip_and_mode(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "state.json"
    assert load_state(path) is None
    save_state(path, _state())
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    loaded = load_state(path)
    assert loaded is not None
    assert loaded.to_json() == _state().to_json()
    assert loaded.ledger is not None
    meter = loaded.ledger.meters["m-1"]
    assert meter.registration == _REG
    assert meter.revocation == MeterRevocation("m-1", "replaced")
    assert meter.batches["2025-03-02"] == Ref(4, b"\x11" * 32)
    assert loaded.ledger.witness_key_registered(b"\x07" * 48)
    expected = _state().ledger
    assert expected is not None
    assert loaded.ledger.cycle_tariffs == expected.cycle_tariffs
    saved = [item[0] for item in loaded.to_json()["ledger"]["cycle_tariffs"]]
    assert saved == [6, 7]
    # the rules' indices are rebuilt: a plan overlapping a saved one is refused (R16, R17)
    assert rules.check(loaded.ledger, cycle_tariff("2025-03-03", "2025-03-03")) is not None
    assert rules.check(loaded.ledger, cycle_tariff("2025-03-05", "2025-03-05")) is None
    save_state(path, _state())  # atomic replace
    assert [p.name for p in path.parent.iterdir()] == ["state.json"]


def test_refuses_exposed_or_broken_files(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    save_state(path, _state())
    os.chmod(path, 0o640)
    with pytest.raises(StateError, match="group or others"):
        load_state(path)
    os.chmod(path, 0o600)
    path.write_text('{"format": "something else"}')
    with pytest.raises(StateError, match="not a zkgrid auditor state"):
        load_state(path)
    path.write_text("[]")
    with pytest.raises(StateError):
        load_state(path)
    data = _state().to_json()
    data["frontier"] = ["!!"]
    import json

    path.write_text(json.dumps(data))
    with pytest.raises(StateError, match="base64"):
        load_state(path)


def test_version_1_is_read_for_its_checkpoint_only(tmp_path: Path) -> None:
    """A version-1 file (days, not hashes) still names the last accepted checkpoint; it
    cannot resume the rules (``ledger`` is None) and is never written again."""
    import json

    path = tmp_path / "state.json"
    old = {
        "format": "zkgrid-auditor-state",
        "version": 1,
        "origin": "o",
        "log_key": "k+00000000+AQ==",
        "checkpoint": "cp",
        "frontier": [],
        "meters": {},
        "tariffs": {},
        "open_batches": {},
    }
    path.write_text(json.dumps(old))
    os.chmod(path, 0o600)
    loaded = load_state(path)
    assert loaded is not None
    assert (loaded.checkpoint, loaded.ledger) == ("cp", None)
    with pytest.raises(StateError, match="version-1"):
        save_state(path, loaded)
    for version in (4, 0, True, "2", None):
        old["version"] = version
        path.write_text(json.dumps(old))
        with pytest.raises(StateError, match="unsupported auditor state version"):
            load_state(path)


def test_version_2_is_read_for_its_checkpoint_only(tmp_path: Path) -> None:
    """A version-2 file kept no cycle tariffs (whatever its log held): like version 1 it
    names the last accepted checkpoint and cannot resume the rules."""
    import json

    path = tmp_path / "state.json"
    data = _state().to_json()
    del data["ledger"]["cycle_tariffs"]
    data["version"] = 2
    path.write_text(json.dumps(data))
    os.chmod(path, 0o600)
    loaded = load_state(path)
    assert loaded is not None
    assert (loaded.version, loaded.ledger, loaded.open_batches) == (2, None, {})
    assert loaded.frontier == _state().frontier
    with pytest.raises(StateError, match="version-2"):
        save_state(path, loaded)


@pytest.mark.parametrize(
    ("cycle_tariffs", "message"),
    [
        ({}, "cycle tariffs is not a list"),
        ([[1]], "cycle tariff 0 is not \\[index, record\\]"),
        ([[1, "AAAA"]], "cycle tariff 0 is malformed"),
        ([[-1, None]], "base64"),
        ("twice", "listed twice"),
        ("negative", "index is not a non-negative integer"),
    ],
)
def test_refuses_broken_cycle_tariffs(tmp_path: Path, cycle_tariffs: object, message: str) -> None:
    import json

    data = _state().to_json()
    entries = data["ledger"]["cycle_tariffs"]
    if cycle_tariffs == "twice":
        cycle_tariffs = [entries[0], [99, entries[0][1]]]
    elif cycle_tariffs == "negative":
        cycle_tariffs = [[-1, entries[0][1]]]
    data["ledger"]["cycle_tariffs"] = cycle_tariffs
    path = tmp_path / "state.json"
    path.write_text(json.dumps(data))
    os.chmod(path, 0o600)
    with pytest.raises(StateError, match=message):
        load_state(path)


def test_the_default_state_is_one_file_per_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two logs audited with the default state: each keeps its own file (named by the
    pinned key's name and id), so the second never reads the first's state and no fork is
    reported; the first resumes from its own with --since-last."""
    from ledger.checkpoint import CheckpointSigner, parse_verifier_key
    from service.settlement import Settlement
    from service.storage import open_store
    from tests.unit.verifier.audit_support import LOG_KEY, build_ledger, export
    from verifier import cli
    from verifier.defaults import default_state_path

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    url_a = f"sqlite:///{tmp_path / 'a.db'}"
    build_ledger(url_a, meters=2, periods=())
    other = CheckpointSigner.from_private_bytes("other-log", bytes(range(1, 33)))
    url_b = f"sqlite:///{tmp_path / 'b.db'}"
    with open_store(url_b, other, "other.example/log") as store, Settlement(store) as s:
        for i in range(3):
            s.register_meter(SimMeter(f"b-{i}").registration())
    archive_a, archive_b = export(url_a, tmp_path / "a.zkla"), export(url_b, tmp_path / "b.zkla")

    def audit(archive: Path, key: str, *more: str) -> int:
        return cli.main(["--archive", str(archive), "--log-key", key, "--workers", "1", *more])

    assert audit(archive_a, LOG_KEY) == 0
    assert audit(archive_b, other.verifier_key()) == 0, capsys.readouterr()
    path_a = default_state_path("zkgrid-test", parse_verifier_key(LOG_KEY).key_id)
    path_b = default_state_path("other-log", other.verifier().key_id)
    assert path_a != path_b
    assert path_a.is_file()
    assert path_b.is_file()
    assert str(path_a).startswith(str(tmp_path / "home" / ".zkgrid" / "auditor"))
    assert audit(archive_a, LOG_KEY, "--since-last") == 0
