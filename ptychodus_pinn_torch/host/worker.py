"""Run a long job (training) in a child process that can be stopped and never hangs the caller.

ptychodus' own ``SubprocessReconstructor`` waits forever on a child that dies without saying so
(out-of-memory kill, segfault). This runner does not:

- the child is started with the ``spawn`` context (a fresh interpreter: no inherited CUDA or Qt
  state) and gets only a small JSON payload; big arrays travel as file paths;
- every message is a tuple of plain strings and numbers (``kind``, JSON text); nothing that
  could carry code is exchanged, and nothing is ever unpickled from a file;
- the parent polls the queue with a timeout and checks ``process.is_alive()`` between polls: a
  child that dies without its final message becomes :class:`WorkerDiedError` within
  ``poll_s`` seconds, naming the exit code or signal;
- Stop sets a ``multiprocessing.Event`` the job polls (every batch in training); the child then
  finishes the current step, saves, and reports ``done``. If it does not within ``grace_s``
  seconds it gets SIGTERM, then SIGKILL;
- the child's log records are forwarded to the parent and re-logged under their own logger
  names (so ``ptychodus_pinn_torch.*`` records reach ptychodus' log pane).

A job is a function ``fn(payload: dict, channel: WorkerChannel) -> dict`` named
``"module:function"``; its return value (JSON-able) is the ``done`` message.
"""

from __future__ import annotations

import importlib
import json
import logging
import multiprocessing
import multiprocessing.process
import os
import queue as queue_module
import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

__all__ = [
    "WorkerChannel",
    "WorkerDiedError",
    "WorkerError",
    "WorkerEvent",
    "WorkerRun",
]


class WorkerError(RuntimeError):
    """The job raised in the child; ``child_type`` and ``child_traceback`` tell what."""

    def __init__(self, message: str, child_type: str = "", child_traceback: str = "") -> None:
        super().__init__(message)
        self.child_type = child_type
        self.child_traceback = child_traceback


class WorkerDiedError(RuntimeError):
    """The child ended (killed, out of memory, crashed) without reporting a result."""


@dataclass(frozen=True)
class WorkerEvent:
    """One message of the child: ``kind`` (``"epoch"``, ``"done"``, ... or ``"heartbeat"`` when
    nothing arrived within the poll interval) and its JSON-decoded ``data``."""

    kind: str
    data: dict[str, Any] = field(default_factory=dict)


class WorkerChannel:
    """What a job sees of its parent: :meth:`emit` messages, :meth:`should_stop` polls Stop."""

    def __init__(self, queue: Any, stop_event: Any) -> None:
        self._queue = queue
        self._stop_event = stop_event

    def emit(self, kind: str, data: dict[str, Any] | None = None) -> None:
        """Send ``(kind, json.dumps(data))`` to the parent; ``data`` must be JSON-able."""
        self._queue.put((kind, json.dumps(data or {})))

    def should_stop(self) -> bool:
        """True once the parent asked the job to stop (Stop button, generator closed)."""
        return bool(self._stop_event.is_set())


class _QueueLogHandler(logging.Handler):
    def __init__(self, queue: Any) -> None:
        super().__init__()
        self._queue = queue

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + "".join(traceback.format_exception(*record.exc_info))
            self._queue.put(("log", json.dumps(
                {"level": record.levelno, "name": record.name, "message": message})))
        except Exception:
            self.handleError(record)


def _child_main(target: str, payload_json: str, queue: Any, stop_event: Any,
                log_level: int) -> None:
    """Entry of the spawned process: forward logs, run the job, report done or error."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(_QueueLogHandler(queue))
    root.setLevel(log_level)
    channel = WorkerChannel(queue, stop_event)
    try:
        module_name, _, function_name = target.partition(":")
        function = getattr(importlib.import_module(module_name), function_name)
        result = function(json.loads(payload_json), channel)
        channel.emit("done", result if isinstance(result, dict) else {})
    except BaseException as exc:  # report everything, including KeyboardInterrupt
        queue.put(("error", json.dumps({
            "type": type(exc).__name__,
            "message": str(exc),
            "traceback": traceback.format_exc(),
        })))
    finally:
        queue.close()
        queue.join_thread()


def _describe_exit(exitcode: int | None) -> str:
    if exitcode is None:
        return "is still running"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (the system's out-of-memory killer sends SIGKILL)" if name == "SIGKILL" else ""
        return f"was killed by {name}{hint}"
    return f"exited with code {exitcode}"


class WorkerRun:
    """One child process running one job; iterate :meth:`events` or call :meth:`next_event`.

    :param target: ``"module:function"`` of the job.
    :param payload: JSON-able dict handed to the job.
    :param start_timeout_s: seconds the child may take to send its first message.
    :param poll_s: queue poll interval, i.e. the heartbeat period and the time within which a
        dead child is noticed.
    :param grace_s: seconds a stopped child gets to finish before SIGTERM (then 2 s to SIGKILL).
    :param label: names the job in messages (e.g. ``"training worker"``).
    """

    def __init__(self, target: str, payload: dict[str, Any], *, start_timeout_s: float = 120.0,
                 poll_s: float = 0.25, grace_s: float = 5.0, label: str = "worker") -> None:
        self.target = target
        self.label = label
        self.poll_s = float(poll_s)
        self.grace_s = float(grace_s)
        self.start_timeout_s = float(start_timeout_s)
        self.result: dict[str, Any] | None = None
        self._payload_json = json.dumps(payload)
        self._context = multiprocessing.get_context("spawn")
        self._queue: Any = self._context.Queue()
        self._stop_event: Any = self._context.Event()
        self._process: multiprocessing.process.BaseProcess | None = None
        self._started_at = 0.0
        self._heard_from_child = False
        self._finished = False

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def finished(self) -> bool:
        """True once ``done`` or an error was received, or the child was ended."""
        return self._finished

    def start(self) -> WorkerRun:
        level = logging.getLogger("ptychodus_pinn_torch").getEffectiveLevel()
        self._process = self._context.Process(
            target=_child_main,
            args=(self.target, self._payload_json, self._queue, self._stop_event, level),
            name=f"ptychodus-pinn-torch {self.label}",
            daemon=True,
        )
        self._started_at = time.monotonic()
        self._process.start()
        logger.info("%s started (pid %s)", self.label, self._process.pid)
        return self

    def request_stop(self) -> None:
        """Ask the job to stop at its next poll of ``channel.should_stop()``."""
        self._stop_event.set()

    def _handle(self, kind: str, data_json: str) -> WorkerEvent | None:
        self._heard_from_child = True
        data = json.loads(data_json)
        if kind == "log":
            logging.getLogger(str(data.get("name", "ptychodus_pinn_torch"))).log(
                int(data.get("level", logging.INFO)), "%s", data.get("message", ""))
            return None
        if kind == "error":
            self._finished = True
            self._join()
            message = f"{self.label} failed: {data.get('type')}: {data.get('message')}"
            raise WorkerError(message, str(data.get("type", "")), str(data.get("traceback", "")))
        if kind == "done":
            self._finished = True
            self.result = data
            self._join()
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
                kind, data_json = self._queue.get(timeout=remaining)
            except queue_module.Empty:
                break
            event = self._handle(kind, data_json)
            if event is not None:
                return event
        self._check_alive()
        return WorkerEvent("heartbeat")

    def _check_alive(self) -> None:
        assert self._process is not None
        if not self._process.is_alive():
            # the child may have sent its last messages just before exiting: drain them
            while True:
                try:
                    kind, data_json = self._queue.get(timeout=0.2)
                except queue_module.Empty:
                    break
                event = self._handle(kind, data_json)
                if event is not None and event.kind == "done":
                    return
            self._finished = True
            raise WorkerDiedError(
                f"{self.label} (pid {self._process.pid}) {_describe_exit(self._process.exitcode)}"
                " before it finished; no result was produced. If it ran out of memory, lower "
                "the batch size or the number of groups, or train on the CPU."
            )
        if (not self._heard_from_child
                and time.monotonic() - self._started_at > self.start_timeout_s):
            self.kill()
            raise WorkerDiedError(
                f"{self.label} sent nothing within {self.start_timeout_s:.0f} s of starting and "
                "was ended; raise [PINNTorchExecution] WorkerStartTimeout if the machine is slow."
            )

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
        """SIGTERM, then SIGKILL after 2 s; then release the queue."""
        self._finished = True
        process = self._process
        if process is not None and process.is_alive():
            process.terminate()
            process.join(2.0)
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGKILL)
                process.join(2.0)
        self._join()

    def _join(self) -> None:
        if self._process is not None:
            self._process.join(5.0)
        self._queue.cancel_join_thread()


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
