"""The cluster path for real: ``torchrun --nproc-per-node 2 ... pinn-torch train`` on 2 CPU
processes (gloo, env:// rendezvous on 127.0.0.1). The in-process spawn variant is ENG-009."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ptychodus_pinn_torch.data.simulate import simulate_scan

REPO = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# slow: torchrun starts two fresh Python processes that import torch and train 2 tiny epochs
# (about 15 s on a 2-core machine); it is the end-to-end proof of multi-process training.
@pytest.mark.slow
def test_torchrun_two_processes_train_and_rank0_writes_outputs(tmp_path: Path) -> None:
    simulate_scan(object_shape=(96, 96), seed=8, overlap=0.5).to_file(tmp_path / "train.npz")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
        "--master-addr", "127.0.0.1", "--master-port", str(_free_port()),
        "-m", "ptychodus_pinn_torch.cli.main", "train", "--train", "train.npz", "--out", "out",
        "--epochs", "2", "--batch-size", "4", "--n-filters-scale", "1", "--n-groups", "16",
        "--device", "cpu", "--seed", "3",
    ]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("trained 2 epoch(s)") == 1  # only rank 0 reports
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoints", "config.json", "history.json", "loss.png", "wts.h5.zip"]
    hist = json.loads((out / "history.json").read_text())
    assert [e["epoch"] for e in hist["epochs"]] == [1, 2]
    state = torch.load(out / "checkpoints" / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 2
    assert "Grad strides do not match" not in proc.stderr
