"""verifier.state: round trip, 0600 atomic writes, refusal of broken or exposed files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from verifier.state import (
    AuditorState,
    DaySet,
    MeterView,
    OpenBatch,
    StateError,
    load_state,
    save_state,
)


def _state() -> AuditorState:
    meter = MeterView(b"\x02" + bytes(32), 240, next_sequence=2, last_hash=b"\x11" * 32)
    meter.periods = DaySet([738000, 738001, 738003])
    meter.billed = DaySet([738000])
    return AuditorState(
        origin="o",
        log_key="k+00000000+AQ==",
        checkpoint="o\n0\nroot\n\n— k sig\n",
        frontier=[b"\x01" * 32, b"\x02" * 32],
        meters={"m-1": meter},
        tariffs={"2025-03-01": b"tariff-bytes"},
        open_batches={b"\x05" * 32: OpenBatch("m-1", "2025-03-02", 240, (b"\x02" * 33,) * 4)},
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
    assert loaded.meters["m-1"].periods.ranges() == [[738000, 738001], [738003, 738003]]
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
