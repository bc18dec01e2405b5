"""Run a long job (training) in a child process that can be stopped and never hangs the caller.

ptychodus' own ``SubprocessReconstructor`` waits forever on a child that dies without saying so
(out-of-memory kill, segfault). This runner does not:

- the child is a fresh interpreter (``python -m ptychodus_pinn_torch.host.worker``, no inherited
  CUDA or Qt state, and unlike ``multiprocessing``'s spawn it never re-imports the caller's
  ``__main__``, so scripts without an ``if __name__ == "__main__"`` guard work); it gets a small
  JSON payload on stdin; big arrays travel as file paths;
- messages come back as JSON lines on a private pipe; nothing is ever unpickled;
- the parent polls with a timeout and checks the child's exit status between polls: a child
  that dies without its final message becomes :class:`WorkerDiedError` within ``poll_s``
  seconds, naming the exit code or signal;
- Stop writes ``stop`` to the child's stdin; the job polls ``channel.should_stop()`` (every
  batch in training), finishes the step, saves and reports ``done``. If it does not within
  ``grace_s`` seconds it gets SIGTERM, then SIGKILL. A child whose parent disappears (stdin
  closed) stops the same way;
- the child's log records are forwarded and re-logged under their own logger names (so
  ``ptychodus_pinn_torch.*`` records reach ptychodus' log pane);
- a progress watchdog (``stall_s``): when no progress message (anything but ``log``) arrived
  for ``stall_s`` seconds, or the child is stopped (SIGSTOP, a debugger: state ``T`` in
  ``/proc``) for ``stall_s`` or 5 s whichever is shorter, one ``stalled`` event names how long
  and why, so the caller can report it and stop the run (specs/HOST.md, HOST-120).

A job is a function ``fn(payload: dict, channel: WorkerChannel) -> dict`` named
``"module:function"``; its JSON-able return value is the ``done`` message.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import queue as queue_module
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

logger = logging.getLogger(__name__)

__all__ = [
    "WorkerChannel",
    "WorkerDiedError",
    "WorkerError",
    "WorkerStalledError",
    "WorkerEvent",
    "WorkerRun",
    "run_to_completion",
]

_EOF = object()


class WorkerError(RuntimeError):
    """The job raised in the child; ``child_type`` and ``child_traceback`` tell what."""

    def __init__(self, message: str, child_type: str = "", child_traceback: str = "") -> None:
        super().__init__(message)
        self.child_type = child_type
        self.child_traceback = child_traceback


class WorkerDiedError(RuntimeError):
    """The child ended (killed, out of memory, crashed) without reporting a result."""


class WorkerStalledError(WorkerDiedError):
    """The child made no progress within the watchdog time (frozen, stopped, deadlocked) and
    was ended."""


#: Most seconds a child may sit stopped (SIGSTOP, state T) before it is reported as stalled.
STOPPED_STALL_S = 5.0


def process_state(pid: int) -> str | None:
    """The one-letter state of ``pid`` from ``/proc/PID/stat`` (``R``, ``S``, ``D``, ``T``
    stopped, ``t`` traced, ``Z`` zombie), or None where /proc is unavailable."""
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


@dataclass(frozen=True)
class WorkerEvent:
    """One message of the child: ``kind`` (``"epoch"``, ``"done"``, ... or ``"heartbeat"`` when
    nothing arrived within the poll interval) and its ``data``."""

    kind: str
    data: dict[str, Any] = field(default_factory=dict)


class WorkerChannel:
    """What a job sees of its parent: :meth:`emit` messages, :meth:`should_stop` polls Stop."""

    def __init__(self, stream: IO[str], stop_event: threading.Event) -> None:
        self._stream = stream
        self._stop_event = stop_event
        self._lock = threading.Lock()

    def emit(self, kind: str, data: dict[str, Any] | None = None) -> None:
        """Send one JSON line ``{"kind": kind, "data": data}``; ``data`` must be JSON-able."""
        line = json.dumps({"kind": kind, "data": data or {}})
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()

    def should_stop(self) -> bool:
        """True once the parent asked the job to stop (Stop button, generator closed)."""
        return self._stop_event.is_set()


class _ChannelLogHandler(logging.Handler):
    def __init__(self, channel: WorkerChannel) -> None:
        super().__init__()
        self._channel = channel

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + "".join(traceback.format_exception(*record.exc_info))
            self._channel.emit("log", {"level": record.levelno, "name": record.name,
                                       "message": message})
        except Exception:
            self.handleError(record)


def _describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "is still running"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        hint = " (the system's out-of-memory killer sends SIGKILL)" if name == "SIGKILL" else ""
        return f"was killed by {name}{hint}"
    return f"exited with code {returncode}"


def _child_env() -> dict[str, str]:
    """The parent's environment with its ``sys.path`` on ``PYTHONPATH`` (as spawn would do), so
    the child imports the same modules (source checkouts, test folders) as the parent."""
    env = dict(os.environ)
    paths = [p for p in sys.path if p and os.path.isdir(p)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


class WorkerRun:
    """One child process running one job; call :meth:`start`, then :meth:`next_event`.

    :param target: ``"module:function"`` of the job.
    :param payload: JSON-able dict handed to the job.
    :param start_timeout_s: seconds the child may take to send its first message.
    :param poll_s: poll interval: the heartbeat period and the time within which a dead child
        is noticed.
    :param grace_s: seconds a stopped child gets to finish before SIGTERM (then 2 s to SIGKILL).
    :param label: names the job in messages (e.g. ``"training worker"``).
    :param stall_s: progress watchdog: seconds without a progress message (anything but
        ``log``) after which one ``stalled`` event is returned; None disables it.
    """

    def __init__(self, target: str, payload: dict[str, Any], *, start_timeout_s: float = 120.0,
                 poll_s: float = 0.25, grace_s: float = 5.0, label: str = "worker",
                 stall_s: float | None = None) -> None:
        self.target = target
        self.label = label
        self.poll_s = float(poll_s)
        self.grace_s = float(grace_s)
        self.start_timeout_s = float(start_timeout_s)
        self.result: dict[str, Any] | None = None
        self._payload_json = json.dumps(payload)
        self._process: subprocess.Popen[str] | None = None
        self._lines: queue_module.Queue[Any] = queue_module.Queue()
        self._started_at = 0.0
        self._heard_from_child = False
        self._finished = False
        self.stall_s = None if stall_s is None else float(stall_s)
        self._last_progress = 0.0
        self._stopped_since: float | None = None
        self._stall_reported = False

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def finished(self) -> bool:
        """True once ``done`` or an error was received, or the child was ended."""
        return self._finished

    def start(self) -> WorkerRun:
        level = logging.getLogger("ptychodus_pinn_torch").getEffectiveLevel()
        read_fd, write_fd = os.pipe()
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "ptychodus_pinn_torch.host.worker", "--target",
                 self.target, "--fd", str(write_fd), "--log-level", str(level)],
                stdin=subprocess.PIPE, pass_fds=(write_fd,), env=_child_env(), text=True,
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        self._started_at = self._last_progress = time.monotonic()
        reader = os.fdopen(read_fd, "r", encoding="utf-8")
        threading.Thread(target=self._read_lines, args=(reader,), daemon=True,
                         name=f"{self.label} reader").start()
        self._send(self._payload_json)
        logger.info("%s started (pid %s)", self.label, self._process.pid)
        return self

    def _read_lines(self, reader: IO[str]) -> None:
        with reader:
            for line in reader:
                self._lines.put(line)
        self._lines.put(_EOF)

    def _send(self, line: str) -> None:
        assert self._process is not None and self._process.stdin is not None
        try:
            self._process.stdin.write(line + "\n")
            self._process.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass  # the child is gone; next_event reports how it ended

    def request_stop(self) -> None:
        """Ask the job to stop at its next poll of ``channel.should_stop()``."""
        if self._process is not None:
            self._send("stop")

    def _handle(self, line: str) -> WorkerEvent | None:
        self._heard_from_child = True
        try:
            message = json.loads(line)
            kind, data = str(message["kind"]), dict(message.get("data") or {})
        except (ValueError, KeyError, TypeError):
            logger.warning("%s: unreadable message %r", self.label, line[:200])
            return None
        if kind == "log":
            logging.getLogger(str(data.get("name", "ptychodus_pinn_torch"))).log(
                int(data.get("level", logging.INFO)), "%s", data.get("message", ""))
            return None
        self._last_progress = time.monotonic()  # any message but a log line is progress
        self._stall_reported = False
        if kind == "error":
            self._finished = True
            self._reap()
            message_text = f"{self.label} failed: {data.get('type')}: {data.get('message')}"
            raise WorkerError(message_text, str(data.get("type", "")),
                              str(data.get("traceback", "")))
        if kind == "done":
            self._finished = True
            self.result = data
            self._reap()
        return WorkerEvent(kind, data)

    def next_event(self) -> WorkerEvent:
        """The next message of the child, or a ``heartbeat`` event after ``poll_s`` seconds.

        Raises :class:`WorkerError` if the job raised, :class:`WorkerDiedError` if the child
        died without a result or sent nothing within ``start_timeout_s``.
        """
        if self._process is None:
            raise RuntimeError(f"{self.label} was not started; call start() first")
        if self._finished:
            raise RuntimeError(f"{self.label} has finished; no more events")
        deadline = time.monotonic() + self.poll_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                line = self._lines.get(timeout=remaining)
            except queue_module.Empty:
                break
            if line is _EOF:
                self._died()
            event = self._handle(line)
            if event is not None:
                return event
        return self._check_alive() or self._check_progress() or WorkerEvent("heartbeat")

    def _check_progress(self) -> WorkerEvent | None:
        """The watchdog: one ``stalled`` event when no progress arrived for ``stall_s`` seconds
        or the child has been stopped (SIGSTOP) for ``min(stall_s, 5 s)``; None otherwise."""
        if self.stall_s is None or self._stall_reported or self._process is None:
            return None
        now = time.monotonic()
        state = process_state(self._process.pid)
        if state in ("T", "t"):
            self._stopped_since = self._stopped_since or now
        else:
            self._stopped_since = None
        idle = now - self._last_progress
        frozen = self._stopped_since is not None and (
            now - self._stopped_since >= min(self.stall_s, STOPPED_STALL_S))
        if not frozen and idle < self.stall_s:
            return None
        self._stall_reported = True
        why = ("its process is stopped (SIGSTOP or a debugger)" if frozen
               else f"no batch finished for {idle:.0f} s (watchdog {self.stall_s:.0f} s)")
        return WorkerEvent("stalled", {"seconds": round(idle, 1), "stopped": frozen,
                                       "pid": self._process.pid,
                                       "message": f"{self.label} (pid {self._process.pid}) is "
                                                  f"stalled: {why}"})

    def _died(self) -> None:
        """The message pipe closed without ``done``/``error``: the child is gone."""
        assert self._process is not None
        try:
            self._process.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            self.kill()
        self._finished = True
        raise WorkerDiedError(
            f"{self.label} (pid {self._process.pid}) {_describe_exit(self._process.returncode)}"
            " before it finished; no result was produced. If it ran out of memory, lower the "
            "batch size or the number of groups, or train on the CPU."
        )

    def _check_alive(self) -> WorkerEvent | None:
        """The child's ``done`` event if it exited after sending it, else None (raises if it
        died without a result or never spoke within ``start_timeout_s``)."""
        assert self._process is not None
        if self._process.poll() is not None:
            # the pipe may still hold the child's last lines: read them up to the end
            while True:
                try:
                    line = self._lines.get(timeout=1.0)
                except queue_module.Empty:
                    self._died()
                if line is _EOF:
                    self._died()
                event = self._handle(line)
                if event is not None and event.kind == "done":
                    return event
        if (not self._heard_from_child
                and time.monotonic() - self._started_at > self.start_timeout_s):
            self.kill()
            raise WorkerDiedError(
                f"{self.label} sent nothing within {self.start_timeout_s:.0f} s of starting and "
                "was ended; raise [PINNTorchExecution] WorkerStartTimeout if the machine is slow."
            )
        return None

    def stop(self, grace_s: float | None = None) -> dict[str, Any] | None:
        """Stop the job and wait for it: its ``done`` result, or None if it had to be killed.

        Never raises for the child's state (errors are logged); safe to call more than once.
        """
        if self._process is None:
            return None
        if self._finished:
            return self.result
        self.request_stop()
        grace = self.grace_s if grace_s is None else float(grace_s)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and not self._finished:
            try:
                event = self.next_event()
            except (WorkerError, WorkerDiedError) as exc:
                logger.error("%s", exc)
                break
            if event.kind == "done":
                return self.result
        if not self._finished:
            logger.warning("%s did not stop within %.1f s; terminating it", self.label, grace)
            self.kill()
        return self.result

    def kill(self) -> None:
        """SIGTERM, then SIGKILL after 2 s."""
        self._finished = True
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:  # a stopped (SIGSTOP) child handles SIGTERM only once continued
                os.kill(process.pid, signal.SIGCONT)
            except OSError:
                pass
            try:
                process.wait(2.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(2.0)
        self._reap()

    def _reap(self) -> None:
        """Close the child's stdin and collect its exit status in the background.

        The result is already in hand; a torch process can take seconds to shut down, which
        must not delay the caller. A child still alive after 30 s is killed.
        """
        process = self._process
        if process is None:
            return
        if process.stdin is not None:
            try:
                process.stdin.close()
            except OSError:
                pass

        def reap() -> None:
            try:
                process.wait(timeout=30.0)
            except subprocess.TimeoutExpired:
                logger.warning("%s (pid %s) did not exit after its result; killing it",
                               self.label, process.pid)
                process.kill()
                process.wait()

        threading.Thread(target=reap, daemon=True, name=f"{self.label} reaper").start()


def run_to_completion(run: WorkerRun,
                      on_event: Callable[[WorkerEvent], None] | None = None) -> dict[str, Any]:
    """Start ``run`` if needed, pump events until ``done``; returns the ``done`` data."""
    if run.pid is None:
        run.start()
    while True:
        event = run.next_event()
        if on_event is not None:
            on_event(event)
        if event.kind == "done":
            return event.data


# ------------------------------------------------------------------------------ child side
def _watch_stdin(stop_event: threading.Event) -> None:
    for line in sys.stdin:
        if line.strip() == "stop":
            stop_event.set()
    stop_event.set()  # parent gone (stdin closed): stop as well


def _child_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ptychodus_pinn_torch.host.worker")
    parser.add_argument("--target", required=True)
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--log-level", type=int, default=logging.INFO)
    args = parser.parse_args(argv)
    stream = os.fdopen(args.fd, "w", encoding="utf-8")
    stop_event = threading.Event()
    channel = WorkerChannel(stream, stop_event)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(_ChannelLogHandler(channel))
    root.setLevel(args.log_level)
    try:
        payload = json.loads(sys.stdin.readline())
        threading.Thread(target=_watch_stdin, args=(stop_event,), daemon=True).start()
        module_name, _, function_name = args.target.partition(":")
        function = getattr(importlib.import_module(module_name), function_name)
        result = function(payload, channel)
        channel.emit("done", result if isinstance(result, dict) else {})
        return 0
    except BaseException as exc:  # report everything, including KeyboardInterrupt
        channel.emit("error", {"type": type(exc).__name__, "message": str(exc),
                               "traceback": traceback.format_exc()})
        return 1
    finally:
        stream.close()


if __name__ == "__main__":
    sys.exit(_child_main())
