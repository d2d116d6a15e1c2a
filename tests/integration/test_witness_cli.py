"""The witness CLIs end to end against a running service (insecure loopback):
``zkgrid witness keygen/registration/register/finality`` and ``zkgrid audit --cosign``,
including a forked service refused by the witness's memory and caught by the auditor's state."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from cli.main import main as zkgrid
from tests.integration.test_grpc_server import _serve
from tests.unit.service.settlement_support import SimMeter
from tests.unit.verifier.audit_support import LOG_KEY, ORIGIN, SIGNER, audit, build_ledger
from witness.state import WitnessState


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = zkgrid(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_witness_cli_and_audit_cosign(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keyfile = tmp_path / "alpha.key"
    code, out, _ = _run(capsys, "witness", "keygen", "--name", "alpha", "--out", str(keyfile))
    assert code == 0, out
    assert stat.S_IMODE(keyfile.stat().st_mode) == 0o600
    code, registration, _ = _run(capsys, "witness", "registration", "--key", str(keyfile))
    assert code == 0
    registration = registration.strip()
    witness_state = tmp_path / "witness-state.json"
    auditor_state = tmp_path / "auditor-state.json"

    url_a, url_b = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    build_ledger(url_a, meters=2, periods=())
    build_ledger(url_b, meters=3, periods=())  # another history under the same key and origin
    served_a, served_b = _serve(url_a, SIGNER, ORIGIN), _serve(url_b, SIGNER, ORIGIN)
    a, b = next(served_a), next(served_b)
    try:
        targets = {}
        for name, run in (("a", a), ("b", b)):
            target = targets[name] = run.target
            code, out, err = _run(
                capsys,
                "witness",
                "register",
                "--target",
                target,
                "--insecure",
                "--registration",
                registration,
            )
            assert code == 0, err
            assert "registered witness alpha" in out
        code, _, err = _run(
            capsys,
            "witness",
            "register",
            "--target",
            targets["a"],
            "--insecure",
            "--registration",
            registration,
        )
        assert code == 1
        assert "ALREADY_EXISTS" in err

        # audit A, then co-sign its checkpoint
        cosign = ["--cosign", str(keyfile), "--witness-state", str(witness_state)]
        first = audit(
            capsys, "--target", targets["a"], "--insecure", "--state", str(auditor_state), *cosign
        )
        assert first.code == 0, first.err
        assert "co-signed size 3 as witness alpha" in first.err
        assert json.loads(first.out)["checkpoint"]["size"] == 3
        assert WitnessState.load(witness_state).size == 3

        # one witness registered: the majority is 1, so the checkpoint is final for clients
        code, out, err = _run(
            capsys,
            "witness",
            "finality",
            "--target",
            targets["a"],
            "--insecure",
            "--log-key",
            LOG_KEY,
        )
        assert code == 0, err
        assert "latest checkpoint 3, final up to 3" in out
        assert "alpha" in out

        # the log grows: the latest checkpoint is not final until the witness co-signs it
        a.settlement.register_meter(SimMeter("late-meter").registration())
        finality = ["witness", "finality", "--target", targets["a"], "--insecure"]
        code, out, err = _run(capsys, *finality, "--log-key", LOG_KEY)
        assert code == 0, err
        assert "latest checkpoint 4, final up to 3" in out
        code, out, err = _run(capsys, *finality, "--log-key", LOG_KEY, "--require-final", "--json")
        assert code == 1
        assert "the latest checkpoint (4) is not final" in err
        report = json.loads(out)
        assert (report["latest_size"], report["final_size"]) == (4, 3)
        assert report["latest_is_final"] is False
        assert report["log_signature_checked"] is True

        # history B: a fresh auditor finds nothing wrong, but the witness refuses to co-sign
        fresh = audit(capsys, "--target", targets["b"], "--insecure", *cosign)
        assert fresh.code == 1
        assert "NOT co-signing (CHECKPOINT_INCONSISTENT)" in fresh.err
        assert WitnessState.load(witness_state).size == 3
        # ... and the auditor that audited A catches the fork itself (no co-signing attempted)
        forked = audit(
            capsys, "--target", targets["b"], "--insecure", "--state", str(auditor_state), *cosign
        )
        assert forked.code == 1
        assert "LOG_FORK" in forked.out
        assert "co-sign" not in forked.err
        # nothing was co-signed on B
        code, out, err = _run(capsys, "witness", "finality", "--target", targets["b"], "--insecure")
        assert code == 1
        assert "QUORUM_NOT_MET" in err
    finally:
        for gen in (served_a, served_b):
            with pytest.raises(StopIteration):
                next(gen)

    # --cosign applies to a running service only
    archive = audit(capsys, "--archive", str(tmp_path / "none.zla"), *cosign)
    assert archive.code == 2
    assert "--cosign needs --target" in archive.err
