"""A/B benchmarks of the engine against the bare network, alternated in one process.

- inference: ``engine.inference.reconstruct`` end to end (grouping, network, phase sync,
  stitching; fp32, the same memory format on both sides) against ``diffraction_to_obj`` on
  ready tensors of the same batches: patterns per second and their ratio;
- training: one epoch of ``engine.training.train_model`` (the pipeline's loop: batches,
  losses, optimizer, epoch bookkeeping; no validation, no checkpoint) against the same number
  of bare optimizer steps (forward, ``compute_loss``, backward, Adam) on ready tensors;
- threads: 1 against 2 torch threads for training steps, inference batches and refinement
  epochs, with the CPU time over wall time x threads;
- channels_last / bf16: the bare network's inference in each format.

Each pair is timed A, B, A, B, ... and the ratio of medians is reported. Sizes are small
enough for the shared 2-core machine; see bench/run_all.py.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch


def _scan(object_side: int, seed: int = 11) -> Any:
    from ptychodus_pinn_torch.data.simulate import simulate_scan

    return simulate_scan(object_shape=(object_side, object_side), seed=seed, nphotons=1e9)


def _bundle(scan: Any, n_filters_scale: int) -> Any:
    from ptychodus_pinn_torch.config.spec import ModelConfig
    from ptychodus_pinn_torch.engine.archive import ModelBundle
    from ptychodus_pinn_torch.model import build_model

    cfg = ModelConfig(N=64, n_filters_scale=n_filters_scale)
    torch.manual_seed(0)
    model = build_model(cfg, probe=scan.probeGuess, intensity_scale=31.25)
    return ModelBundle(model=model, model_config=cfg, intensity_scale=31.25,
                       probe=model.probe.detach().numpy())


def _alternate(a: Callable[[], float], b: Callable[[], float], rounds: int) -> tuple[float, float]:
    """Medians of ``a()`` and ``b()`` (each returns seconds), called a, b, a, b, ..."""
    ta, tb = [], []
    for _ in range(rounds):
        ta.append(a())
        tb.append(b())
    return statistics.median(ta), statistics.median(tb)


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def inference_ab(*, object_side: int = 128, n_filters_scale: int = 1, batch: int = 64,
                 rounds: int = 3, channels_last: bool = True) -> dict[str, Any]:
    """End-to-end reconstruct vs the bare network (same batches, same memory format)."""
    from ptychodus_pinn_torch.engine.inference import reconstruct

    scan = _scan(object_side)
    bundle = _bundle(scan, n_filters_scale)
    m = scan.diff3d.shape[0]
    model = bundle.model.eval()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.rand(m, 1, 64, 64) * 30

    def bare() -> float:
        model.to(memory_format=fmt)
        t0 = time.perf_counter()
        with torch.inference_mode():
            for start in range(0, m, batch):
                model.diffraction_to_obj(x[start : start + batch].contiguous(memory_format=fmt))
        seconds = time.perf_counter() - t0
        model.to(memory_format=torch.contiguous_format)
        return seconds

    def engine() -> float:
        return _timed(lambda: reconstruct(bundle, scan, device="cpu", batch_size=batch,
                                          keep_patches=False, channels_last=channels_last))

    engine()  # warm-up (first-call allocations)
    t_engine, t_bare = _alternate(engine, bare, rounds)
    return {"patterns": m, "n_filters_scale": n_filters_scale, "batch": batch,
            "channels_last": channels_last, "engine_s": round(t_engine, 3),
            "bare_s": round(t_bare, 3),
            "engine_patterns_per_s": round(m / t_engine, 1),
            "bare_patterns_per_s": round(m / t_bare, 1),
            "ratio": round(t_bare / t_engine, 3)}


def training_ab(*, object_side: int = 128, n_filters_scale: int = 1, batch: int = 16,
                rounds: int = 2) -> dict[str, Any]:
    """One pipeline epoch (train_model, 1 epoch) vs the same number of bare steps, both in the
    memory format the engine picks for the CPU (channels-last, ENG-207)."""
    from ptychodus_pinn_torch.config.engine import EngineConfig
    from ptychodus_pinn_torch.config.spec import ModelConfig, TrainingConfig
    from ptychodus_pinn_torch.engine.events import TrainCallbacks
    from ptychodus_pinn_torch.engine.losses import compute_loss
    from ptychodus_pinn_torch.engine.memory_format import in_memory_format
    from ptychodus_pinn_torch.engine.training import train_model

    scan = _scan(object_side)
    m = scan.diff3d.shape[0]
    model_cfg = ModelConfig(N=64, n_filters_scale=n_filters_scale)
    config = EngineConfig(
        training=TrainingConfig(model=model_cfg, batch_size=batch, nepochs=1, nphotons=1e9,
                                n_groups=m),
        device="cpu", validation_fraction=0.0, early_stop_patience=None,
    )
    epoch_s: list[float] = []

    def engine() -> float:
        train_model(scan, config, callbacks=TrainCallbacks(
            on_epoch=(lambda report: epoch_s.append(report.seconds),)))
        return epoch_s[-1]

    channels_last = config.uses_channels_last("cpu")
    bundle = _bundle(scan, n_filters_scale)
    model = bundle.model.train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    x = in_memory_format(torch.rand(m, 1, 64, 64) * 30, channels_last)
    pos = torch.zeros(m, 1, 2)
    weights = config.loss_weights()

    def bare() -> float:
        t0 = time.perf_counter()
        for start in range(0, m, batch):
            opt.zero_grad(set_to_none=True)
            xb = x[start : start + batch]
            out = model(xb, pos[start : start + batch])
            loss, _ = compute_loss(out, xb, None, weights, supervised=False)
            loss.backward()
            opt.step()
        return time.perf_counter() - t0

    t_engine, t_bare = _alternate(engine, bare, rounds)
    steps = math.ceil(m / batch)
    return {"groups": m, "steps": steps, "batch": batch, "n_filters_scale": n_filters_scale,
            "channels_last": channels_last, "epoch_s": round(t_engine, 3),
            "bare_steps_s": round(t_bare, 3),
            "ratio": round(t_bare / t_engine, 3)}


def threads_ab(*, object_side: int = 128, rounds: int = 2) -> list[dict[str, Any]]:
    """1 vs 2 threads for training steps, inference batches and refinement epochs."""
    from ptychodus_pinn_torch.engine.losses import LossWeights, compute_loss
    from ptychodus_pinn_torch.engine.refine import refine_object

    scan = _scan(object_side)
    model = _bundle(scan, 1).model
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    x = torch.rand(16, 1, 64, 64) * 30
    pos = torch.zeros(16, 1, 2)
    centres = np.column_stack([scan.xcoords, scan.ycoords])
    flat = np.ones(scan.objectGuess.shape, np.complex64)

    def train() -> None:
        for _ in range(2):
            opt.zero_grad(set_to_none=True)
            loss, _ = compute_loss(model(x, pos), x, None, LossWeights(), supervised=False)
            loss.backward()
            opt.step()

    def infer() -> None:
        with torch.inference_mode():
            for _ in range(2):
                model.diffraction_to_obj(x)

    def refine() -> None:
        refine_object(flat, scan.diff3d, centres, scan.probeGuess, epochs=2,
                      threads=torch.get_num_threads())

    rows = []
    before = torch.get_num_threads()
    for name, fn in (("train", train), ("inference", infer), ("refine", refine)):
        samples: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
        for _ in range(rounds):
            for n in (1, 2):
                torch.set_num_threads(n)
                c0, w0 = time.process_time(), time.perf_counter()
                fn()
                samples[n].append((time.perf_counter() - w0, time.process_time() - c0))
        for n, s in samples.items():
            wall = statistics.median(w for w, _ in s)
            cpu = statistics.median(c for _, c in s)
            rows.append({"phase": name, "threads": n, "wall_s": round(wall, 3),
                         "cpu_s": round(cpu, 3),
                         "cpu_over_wall_x_threads": round(cpu / (wall * n), 3)})
    torch.set_num_threads(before)
    return rows


def formats_ab(*, batch: int = 32, rounds: int = 3) -> list[dict[str, Any]]:
    """The bare network's inference: contiguous vs channels_last, fp32 vs bf16 autocast."""
    from ptychodus_pinn_torch.config.spec import ModelConfig
    from ptychodus_pinn_torch.data.simulate import make_probe
    from ptychodus_pinn_torch.model import build_model

    torch.manual_seed(0)
    model = build_model(ModelConfig(N=64, n_filters_scale=1), probe=make_probe("pinhole", 64),
                        intensity_scale=31.25).eval()
    x = torch.rand(batch, 1, 64, 64) * 30
    variants = [(False, False), (True, False), (False, True), (True, True)]
    times: dict[tuple[bool, bool], list[float]] = {v: [] for v in variants}
    with torch.inference_mode():
        for _ in range(rounds):
            for cl, bf in variants:
                fmt = torch.channels_last if cl else torch.contiguous_format
                model.to(memory_format=fmt)
                xx = x.contiguous(memory_format=fmt)
                t0 = time.perf_counter()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf):
                    model.diffraction_to_obj(xx)
                times[(cl, bf)].append(time.perf_counter() - t0)
    model.to(memory_format=torch.contiguous_format)
    base = statistics.median(times[(False, False)])
    return [{"channels_last": cl, "bf16": bf,
             "patterns_per_s": round(batch / statistics.median(times[(cl, bf)]), 1),
             "speedup": round(base / statistics.median(times[(cl, bf)]), 3)}
            for cl, bf in variants]
