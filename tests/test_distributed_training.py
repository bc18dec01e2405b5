"""A real torch.distributed run: 2 CPU processes, gloo, env:// rendezvous on 127.0.0.1."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world: int, port: int, folder: str) -> None:
    """One torchrun-like rank: environment as torchrun sets it, then the normal engine call."""
    import os

    os.environ.update({
        "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
        "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
    })
    torch.set_num_threads(1)
    from ptychodus_pinn_torch.config.spec import ModelConfig, TrainingConfig
    from ptychodus_pinn_torch.data.simulate import simulate_scan
    from ptychodus_pinn_torch.engine.training import TrainOptions, train_model

    scan = simulate_scan(object_shape=(96, 96), seed=5, overlap=0.5, nphotons=1e6)
    cfg = TrainingConfig(model=ModelConfig(N=64, n_filters_scale=1), batch_size=4, nepochs=2,
                         nphotons=1e6, n_groups=16)
    seen: list[int] = []
    res = train_model(scan, cfg, options=TrainOptions(device="cpu", early_stop_patience=None),
                      checkpoint_dir=Path(folder) / "ckpt",
                      on_epoch=lambda r: seen.append(r.epoch))
    torch.save({"state": res.bundle.model.state_dict(),
                "losses": [h.train_loss for h in res.history], "callbacks": seen,
                "initialized_after": torch.distributed.is_initialized()},
               Path(folder) / f"rank{rank}.pt")


# slow: spawns two fresh Python processes that each import torch and run a 2-epoch training
# (about 15 s on an idle 2-core machine); it is the only proof that DDP really works.
@pytest.mark.slow
def test_two_process_gloo_training_keeps_ranks_in_sync(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for k, v in r0["state"].items():  # DDP averaged the gradients: identical weights
        assert torch.equal(v, r1["state"][k]), k
    assert r0["losses"] == r1["losses"] and len(r0["losses"]) == 2  # all-reduced epoch losses
    assert r0["callbacks"] == [1, 2] and r1["callbacks"] == []  # rank 0 reports
    assert not r0["initialized_after"] and not r1["initialized_after"]  # group torn down
    ckpt = torch.load(tmp_path / "ckpt" / "checkpoint.pt", weights_only=True)
    assert ckpt["epoch"] == 2
    for k, v in ckpt["model"].items():
        assert torch.equal(v, r0["state"][k]), k
