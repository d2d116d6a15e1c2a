"""service.logs: JSON and text lines, the access log, the append log; service.observers:
the fan-out and how a call's end is read from its context."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any, cast

import grpc
import pytest

from ledger.entries import EntryKind
from service.errors import ProofInvalid
from service.interceptors import rpc_status_for
from service.logs import ACCESS_LOGGER, LEDGER_LOGGER, AccessLog, AppendLog, log_handler
from service.observers import CallObservers, call_outcome


@pytest.fixture
def capture() -> Iterator[Callable[[str, str], io.StringIO]]:
    """Attach a handler of service.logs to the root logger at a level; detach it after."""
    root = logging.getLogger()
    level = root.level
    handlers: list[logging.Handler] = []

    def attach(fmt: str, at: str) -> io.StringIO:
        for old in handlers:
            root.removeHandler(old)
        stream = io.StringIO()
        handler = log_handler(fmt, stream)
        handler.setLevel(at)
        root.addHandler(handler)
        root.setLevel(logging.DEBUG)
        handlers.append(handler)
        return stream

    yield attach
    for handler in handlers:
        root.removeHandler(handler)
    root.setLevel(level)


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_the_structured_fields(
    capture: Callable[[str, str], io.StringIO],
) -> None:
    stream = capture("json", "INFO")
    AccessLog().on_call_end(
        "/zkgrid.settlement.v1.ReadingService/SubmitReadings",
        "meter", "meter-7", grpc.StatusCode.INVALID_ARGUMENT, "PROOF_INVALID", 0.01234,
    )  # fmt: skip
    AppendLog()([(5, EntryKind.READING_BATCH), (6, EntryKind.BILL)], 7)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("x").exception("failed")
    lines = _lines(stream)
    assert [line["logger"] for line in lines] == [ACCESS_LOGGER, LEDGER_LOGGER, LEDGER_LOGGER, "x"]
    rpc = lines[0]
    assert (rpc["event"], rpc["level"]) == ("rpc", "INFO")
    assert rpc["method"] == "/zkgrid.settlement.v1.ReadingService/SubmitReadings"
    assert (rpc["role"], rpc["cn"], rpc["status"], rpc["reason"]) == (
        "meter", "meter-7", "INVALID_ARGUMENT", "PROOF_INVALID",
    )  # fmt: skip
    assert rpc["latency_ms"] == pytest.approx(12.34)
    assert rpc["ts"].endswith("+00:00")
    assert [(a["index"], a["kind"], a["checkpoint_size"]) for a in lines[1:3]] == [
        (5, "READING_BATCH", 7),
        (6, "BILL", 7),
    ]
    assert "ValueError: boom" in lines[3]["exc"]


def test_text_lines_and_quiet_probes(capture: Callable[[str, str], io.StringIO]) -> None:
    stream = capture("text", "INFO")
    log = AccessLog()
    log.on_call_end("/grpc.health.v1.Health/Check", None, None, grpc.StatusCode.OK, None, 0.001)
    log.on_call_end(
        "/zkgrid.settlement.v1.LedgerService/StreamEntries",
        "auditor", "aud-1", grpc.StatusCode.CANCELLED, None, 1.5,
    )  # fmt: skip
    text = stream.getvalue()
    assert "Health" not in text  # probes are DEBUG
    (line,) = text.splitlines()
    assert line.endswith(
        "INFO zkgrid.access: /zkgrid.settlement.v1.LedgerService/StreamEntries CANCELLED"
        " role=auditor cn=aud-1 reason=- 1500.0ms"
    )
    stream = capture("text", "DEBUG")
    log.on_call_end("/grpc.health.v1.Health/Check", None, None, grpc.StatusCode.OK, None, 0.001)
    assert "DEBUG zkgrid.access: /grpc.health.v1.Health/Check OK role=- cn=-" in stream.getvalue()


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def on_call_end(self, *args: Any) -> None:
        self.calls.append(args)


class _Broken:
    def on_call_end(self, *args: Any) -> None:
        raise RuntimeError("observer bug")


def test_one_broken_observer_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    first, last = _Recorder(), _Recorder()
    fan = CallObservers([first, _Broken(), last])
    fan.on_call_end("/m", None, None, grpc.StatusCode.OK, None, 0.5)
    assert first.calls == last.calls == [("/m", None, None, grpc.StatusCode.OK, None, 0.5)]
    assert "_Broken failed" in caplog.text


class _Context:
    """The parts of a grpc server context call_outcome reads."""

    def __init__(
        self,
        code: grpc.StatusCode | None = None,
        trailing: Any = None,
        active: bool = True,
        remaining: float | None = None,
    ) -> None:
        self._code, self._trailing, self._active, self._remaining = (
            code, trailing, active, remaining,
        )  # fmt: skip

    def code(self) -> grpc.StatusCode | None:
        return self._code

    def trailing_metadata(self) -> Any:
        return self._trailing

    def is_active(self) -> bool:
        return self._active

    def time_remaining(self) -> float | None:
        return self._remaining


def test_call_outcome_reads_the_status_and_its_reason() -> None:
    status = rpc_status_for(ProofInvalid("range proof does not verify"), "/p.S/M")
    aborted = _Context(status.code, status.trailing_metadata)
    assert call_outcome(cast(Any, aborted)) == (grpc.StatusCode.INVALID_ARGUMENT, "PROOF_INVALID")
    assert call_outcome(cast(Any, _Context(grpc.StatusCode.DEADLINE_EXCEEDED))) == (
        grpc.StatusCode.DEADLINE_EXCEEDED,
        None,
    )
    assert call_outcome(cast(Any, _Context())) == (grpc.StatusCode.OK, None)
    gone = _Context(active=False, remaining=5.0)
    assert call_outcome(cast(Any, gone)) == (grpc.StatusCode.CANCELLED, None)
    assert call_outcome(cast(Any, _Context(active=False, remaining=-0.1))) == (
        grpc.StatusCode.DEADLINE_EXCEEDED,
        None,
    )


def test_shed_calls_are_logged_once_per_caller_and_interval() -> None:
    """A caller that ignores its retry delay cannot flood the access log: one line per
    caller and reason per interval, then the count of those not logged."""
    import logging as _logging

    import grpc as _grpc

    from service.logs import SHED_LOG_INTERVAL_S, AccessLog

    records: list[_logging.LogRecord] = []

    class Keep(_logging.Handler):
        def emit(self, record: _logging.LogRecord) -> None:
            records.append(record)

    logger = _logging.getLogger("zkgrid.test.shed")
    logger.setLevel(_logging.INFO)
    logger.addHandler(Keep())
    now = [100.0]
    log = AccessLog(logger, clock=lambda: now[0])
    method = "/zkgrid.settlement.v1.ReadingService/SubmitReadings"
    exhausted = _grpc.StatusCode.RESOURCE_EXHAUSTED
    for _ in range(50):
        log.on_call_end(method, "meter", "mallory", exhausted, "FAILURE_BUDGET_EXHAUSTED", 0.001)
    log.on_call_end(method, "meter", "alice", exhausted, "OVERLOADED", 0.001)
    log.on_call_end(method, "meter", "alice", _grpc.StatusCode.OK, None, 0.01)  # never sampled
    assert len(records) == 3
    now[0] += SHED_LOG_INTERVAL_S
    log.on_call_end(method, "meter", "mallory", exhausted, "FAILURE_BUDGET_EXHAUSTED", 0.001)
    assert "(49 more like it not logged)" in records[-1].getMessage()
