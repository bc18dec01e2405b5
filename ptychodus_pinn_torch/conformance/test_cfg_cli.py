"""CFG-260..264: the command line's configuration files, fine-tuning from a file, and its exit
status after a signal (specs/CFG.md)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from ptychodus_pinn_torch.cli.main import main
from ptychodus_pinn_torch.conformance.helpers import tiny_scan
from ptychodus_pinn_torch.engine.archive import load_archive

spec_rule = pytest.mark.spec

TRAIN_FLAGS = ["--n-groups", "8", "--n-filters-scale", "1", "--batch-size", "4",
               "--no-progress", "--device", "cpu", "--early-stop-patience", "0"]


@pytest.fixture(scope="module")
def scan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scan") / "scan.npz"
    tiny_scan().to_file(path)
    return path


def _signal_after_first_epoch(out: Path, signum: int) -> threading.Thread:
    """A thread that sends ``signum`` to this process once ``out/history.json`` (written at
    the checkpoint of epoch 1, after the signal handler is installed) exists."""

    def send() -> None:
        deadline = time.monotonic() + 300
        while not (out / "history.json").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signum)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


@spec_rule("CFG-262")
@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_train_stopped_by_a_signal_saves_then_exits_128_plus_signal(
        scan: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], signum: int,
        status: int) -> None:
    out = tmp_path / "run"
    thread = _signal_after_first_epoch(out, signum)
    rc = main(["train", "--train", str(scan), "--out", str(out), "--epochs", "400",
               *TRAIN_FLAGS])
    thread.join()
    err = [line for line in capsys.readouterr().err.splitlines()
           if line.startswith("pinn-torch train")]
    assert rc == status
    name = signal.Signals(signum).name
    assert len(err) == 1 and f"stopped by {name}" in err[0]
    assert str(out / "wts.h5.zip") in err[0]
    epochs = len(load_archive(out / "wts.h5.zip").history)
    assert 1 <= epochs < 400 and f"after epoch {epochs};" in err[0]
    assert name in json.loads((out / "history.json").read_text())["stopped"]
