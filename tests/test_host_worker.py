"""The child-process runner: progress, Stop within a second, a killed child, errors, logs.

The jobs below run in a real child interpreter (the target is this test module, importable in
the child because pytest puts tests/ on sys.path and the runner hands sys.path to the child).
"""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from ptychodus_pinn_torch.host.worker import (
    WorkerChannel,
    WorkerDiedError,
    WorkerError,
    WorkerRun,
    run_to_completion,
)

MODULE = Path(__file__).stem


def job_epochs(payload: dict[str, Any], channel: WorkerChannel) -> dict[str, Any]:
    """Sum 0..n-1, one 'epoch' per number, sleeping between 'batches'; stops on request."""
    total = 0
    for epoch in range(payload["epochs"]):
        for _ in range(5):
            if channel.should_stop():
                Path(payload["marker"]).write_text(str(epoch))  # "last checkpoint"
                return {"stopped": True, "epoch": epoch, "total": total}
            time.sleep(payload["batch_s"])
        total += epoch
        logging.getLogger("ptychodus_pinn_torch.test_job").warning("epoch %d done", epoch)
        channel.emit("epoch", {"epoch": epoch + 1, "loss": 1.0 / (epoch + 1)})
    return {"stopped": False, "total": total}


def job_raise(payload: dict[str, Any], channel: WorkerChannel) -> dict[str, Any]:
    raise ValueError(f"bad value {payload['value']!r} in the job")


def job_die(payload: dict[str, Any], channel: WorkerChannel) -> dict[str, Any]:
    channel.emit("epoch", {"epoch": 1})
    time.sleep(0.3)
    os.kill(os.getpid(), signal.SIGKILL)  # what the OOM killer does
    time.sleep(60)
    return {}


def job_hang_silently(payload: dict[str, Any], channel: WorkerChannel) -> dict[str, Any]:
    time.sleep(60)
    return {}


def test_progress_logs_and_result(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    run = WorkerRun(f"{MODULE}:job_epochs",
                    {"epochs": 3, "batch_s": 0.01, "marker": str(tmp_path / "m")},
                    label="test worker")
    epochs: list[int] = []
    with caplog.at_level(logging.INFO):
        result = run_to_completion(
            run, lambda e: epochs.append(e.data["epoch"]) if e.kind == "epoch" else None)
    assert epochs == [1, 2, 3]
    assert result == {"stopped": False, "total": 0 + 1 + 2}
    forwarded = [r for r in caplog.records if r.name == "ptychodus_pinn_torch.test_job"]
    assert [r.getMessage() for r in forwarded] == [f"epoch {i} done" for i in range(3)]


def test_stop_ends_within_a_second_and_keeps_checkpoint(tmp_path: Path) -> None:
    marker = tmp_path / "checkpoint"
    run = WorkerRun(f"{MODULE}:job_epochs",
                    {"epochs": 1000, "batch_s": 0.05, "marker": str(marker)}).start()
    while run.next_event().kind != "epoch":
        pass
    t0 = time.monotonic()
    result = run.stop()
    elapsed = time.monotonic() - t0
    assert elapsed < 1.0, elapsed
    assert result is not None and result["stopped"] is True
    assert marker.read_text() == str(result["epoch"])


def test_child_exception_becomes_worker_error() -> None:
    run = WorkerRun(f"{MODULE}:job_raise", {"value": 7}, label="training worker").start()
    with pytest.raises(WorkerError, match=r"training worker failed: ValueError: bad value 7") as e:
        run_to_completion(run)
    assert "job_raise" in e.value.child_traceback


def test_killed_child_is_an_error_within_seconds_not_a_hang() -> None:
    run = WorkerRun(f"{MODULE}:job_die", {}, poll_s=0.2, label="training worker").start()
    assert run.next_event().kind in ("epoch", "heartbeat")
    t0 = time.monotonic()
    with pytest.raises(WorkerDiedError, match="killed by SIGKILL"):
        run_to_completion(run)
    assert time.monotonic() - t0 < 3.0


def test_silent_child_times_out_and_is_ended() -> None:
    # the job sends nothing at all (no log, no epoch) within the start timeout
    run = WorkerRun(f"{MODULE}:job_hang_silently", {}, start_timeout_s=1.0, poll_s=0.2).start()
    with pytest.raises(WorkerDiedError, match="sent nothing within 1 s"):
        run_to_completion(run)
    assert run.finished


def job_until_stopped(payload: dict[str, Any], channel: WorkerChannel) -> dict[str, Any]:
    Path(payload["pid_file"]).write_text(str(os.getpid()))
    channel.emit("epoch", {"epoch": 1})
    while not channel.should_stop():
        time.sleep(0.05)
    return {"stopped": True}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (ProcessLookupError, OSError):
        return False


def test_unguarded_script_parent_and_orphaned_child_stops(tmp_path: Path) -> None:
    """A caller script without ``if __name__ == "__main__"`` works (no re-import of __main__),
    and when that parent dies the child sees its stdin close and stops by itself."""
    import subprocess
    import sys

    pid_file = tmp_path / "child.pid"
    script = tmp_path / "unguarded.py"
    script.write_text(
        "import os\n"
        "from ptychodus_pinn_torch.host.worker import WorkerRun\n"
        f"run = WorkerRun('{MODULE}:job_until_stopped', {{'pid_file': {str(pid_file)!r}}})\n"
        "run.start()\n"
        "while run.next_event().kind != 'epoch':\n"
        "    pass\n"
        "print('child running', flush=True)\n"
        "os._exit(0)  # the parent vanishes without stopping its child\n"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).parent), str(Path(__file__).parents[1]), env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=60, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "child running" in out.stdout
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while _alive(child):
        assert time.monotonic() < deadline, "orphaned worker kept running"
        time.sleep(0.05)
