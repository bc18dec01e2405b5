"""Training-step and inference throughput of the PtychoPINN engine on this machine.

Times one optimizer step (forward, Poisson NLL, backward, Adam) and one inference batch for a
few model sizes, with and without channels-last, on the CPU (and CUDA when present, with and
without bf16 autocast).

    PYTHONPATH=$PWD .venv/bin/python bench/bench_training.py --threads 2

A benchmark, not a test; numbers depend on the load of the machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def time_steps(
    device: str, n_filters_scale: int, batch: int, channels_last: bool, bf16: bool, steps: int
) -> dict[str, float]:
    """Seconds per training step and per inference batch (median of ``steps``)."""
    import torch

    from ptychodus_pinn_torch.config.spec import ModelConfig
    from ptychodus_pinn_torch.data.simulate import make_probe
    from ptychodus_pinn_torch.engine.losses import LossWeights, compute_loss
    from ptychodus_pinn_torch.model import build_model

    cfg = ModelConfig(N=64, n_filters_scale=n_filters_scale)
    torch.manual_seed(0)
    model = build_model(cfg, probe=make_probe("pinhole", 64), intensity_scale=31.25).to(device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = (torch.rand(batch, 1, 64, 64, device=device) * 30).contiguous(memory_format=fmt)
    pos = torch.zeros(batch, 1, 2, device=device)
    weights = LossWeights()
    use_bf16 = bf16 and device.startswith("cuda")

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    train_times, infer_times = [], []
    for i in range(steps + 1):
        sync()
        t = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=use_bf16):
            out = model(x, pos)
        loss, _ = compute_loss(out, x, None, weights, supervised=False)
        loss.backward()
        opt.step()
        sync()
        if i:
            train_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        with torch.inference_mode():
            model.diffraction_to_obj(x, pos)
        sync()
        if i:
            infer_times.append(time.perf_counter() - t)
    return {
        "train_step_s": float(np.median(train_times)),
        "infer_batch_s": float(np.median(infer_times)),
        "train_groups_per_s": batch / float(np.median(train_times)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        for nfs in (1, 2):
            for cl in (False, True):
                for bf16 in (False, True) if device == "cuda" else (False,):
                    r = time_steps(device, nfs, args.batch_size, cl, bf16, args.steps)
                    row = {
                        "device": device,
                        "n_filters_scale": nfs,
                        "channels_last": cl,
                        "bf16": bf16,
                        "batch": args.batch_size,
                        **{k: round(v, 4) for k, v in r.items()},
                    }
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
