"""The worker's progress watchdog (HOST-120) and what a dead worker leaves (HOST-121).

The jobs run in a real child interpreter (this module is importable there: the runner hands
sys.path to the child). Each test creates the stall for real (a job that stops reporting, a
child frozen with SIGSTOP) and asserts the ``stalled`` event, its numbers and that the frozen
child can be ended.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from ptychodus_pinn_torch.host.worker import (
    STOPPED_STALL_S,
    WorkerChannel,
    WorkerRun,
    WorkerStalledError,
    process_state,
)

MODULE = Path(__file__).stem


def job_batches_then_silence(payload: dict[str, Any], channel: WorkerChannel) -> dict[str, Any]:
    """Three batches, then a deadlock-like silence (still running, never reporting)."""
    for batch in range(3):
        channel.emit("batch", {"batch": batch + 1})
        time.sleep(0.05)
    time.sleep(60)
    return {}


def job_steady(payload: dict[str, Any], channel: WorkerChannel) -> dict[str, Any]:
    """A batch every 0.1 s until stopped."""
    batch = 0
    while not channel.should_stop():
        batch += 1
        channel.emit("batch", {"batch": batch})
        time.sleep(0.1)
    return {"batches": batch}


def _events_until(run: WorkerRun, kind: str, timeout: float) -> tuple[dict[str, Any], float]:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        event = run.next_event()
        if event.kind == kind:
            return event.data, time.monotonic() - t0
    raise AssertionError(f"no {kind!r} event within {timeout} s")


def test_no_progress_is_reported_as_stalled() -> None:
    run = WorkerRun(f"{MODULE}:job_batches_then_silence", {}, poll_s=0.1, stall_s=1.5,
                    label="test worker").start()
    try:
        _events_until(run, "batch", 60)
        data, waited = _events_until(run, "stalled", 10)
        assert 1.4 <= data["seconds"] <= 4.0 and data["stopped"] is False
        assert "test worker" in data["message"] and "no batch finished for" in data["message"]
        assert "watchdog 2 s" in data["message"] or "watchdog 1 s" in data["message"]
        assert run.next_event().kind == "heartbeat"  # reported once, not every poll
    finally:
        t0 = time.monotonic()
        run.stop(grace_s=0.5)
        assert time.monotonic() - t0 < 6


def test_sigstopped_worker_detected_and_ended() -> None:
    run = WorkerRun(f"{MODULE}:job_steady", {}, poll_s=0.1, stall_s=600,
                    label="test worker").start()
    assert run.pid is not None
    try:
        _events_until(run, "batch", 60)
        os.kill(run.pid, signal.SIGSTOP)
        data, waited = _events_until(run, "stalled", STOPPED_STALL_S + 5)
        assert data["stopped"] is True and "stopped (SIGSTOP" in data["message"]
        assert waited < STOPPED_STALL_S + 3  # long before the 600 s watchdog
        assert process_state(run.pid) == "T"
    finally:
        t0 = time.monotonic()
        run.stop(grace_s=0.5)  # SIGTERM + SIGCONT, then SIGKILL: a frozen child still ends
        assert time.monotonic() - t0 < 6
    deadline = time.monotonic() + 10
    while process_state(run.pid) not in (None, "Z") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert process_state(run.pid) in (None, "Z")


def test_steady_progress_is_never_stalled() -> None:
    run = WorkerRun(f"{MODULE}:job_steady", {}, poll_s=0.1, stall_s=1.0,
                    label="test worker").start()
    try:
        _events_until(run, "batch", 60)
        kinds = set()
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.5:
            kinds.add(run.next_event().kind)
        assert "stalled" not in kinds
    finally:
        assert run.stop(grace_s=5) is not None  # stopped cleanly, with its result


def test_stalled_error_is_a_died_error() -> None:
    from ptychodus_pinn_torch.host.worker import WorkerDiedError

    assert issubclass(WorkerStalledError, WorkerDiedError)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_process_state_of_self() -> None:
    assert process_state(os.getpid()) == "R"
