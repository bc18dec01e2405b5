"""Setting up one training (data on the device, model, optimizer, schedule, DDP wrapper) and
saving / restoring its state in the checkpoint.

:func:`setup` returns a :class:`TrainingSession`; :mod:`.epoch` runs epochs on it and
:mod:`.training` drives the loop.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data.distributed import DistributedSampler

from ptychodus_pinn_torch.config.engine import EngineConfig, LossWeights
from ptychodus_pinn_torch.data.raw_data import RawData
from ptychodus_pinn_torch.engine import checkpoint as ckpt
from ptychodus_pinn_torch.engine import distributed as distmod
from ptychodus_pinn_torch.engine.events import EpochReport
from ptychodus_pinn_torch.engine.gathered import GatheredLabels, GatheredPatterns
from ptychodus_pinn_torch.engine.scan_groups import group_scans
from ptychodus_pinn_torch.engine.schedule import (
    EarlyStopping,
    LearningRateSchedule,
    make_optimizer,
)


@dataclass
class TrainingSession:
    """Everything one training holds while it runs.

    x_all: (G, C, N, N) float32 ``s·X_full`` on the device (model input and MAE target), or a
    :class:`~.gathered.GatheredPatterns` read per batch (several scans, mapped scans);
    pos_all: (G, C, 2) float32 group positions in pixels; y_all: (G, C, N, N) complex64 labels
    (tensor or :class:`~.gathered.GatheredLabels`) or None; train_idx / val_idx: int64 group
    indices (CPU). ``model`` is the bare module, ``train_module`` the one that runs forward
    (the DDP wrapper under torch.distributed). With several training scans, ``probe_bank``
    (S, N, N) complex64 holds each scan's normalized probe and ``scan_of_group`` (G,) int64 the
    scan of each group, on the device (ENG-183); both are None for one scan. ``bad_pixels``
    (S, N, N) bool (True = bad) holds each scan's detector mask (all False for a scan without
    one), on the device; None when no scan has a bad pixel (PHYS-170).
    """

    config: EngineConfig
    device: torch.device
    ctx: distmod.DistContext
    model: torch.nn.Module
    train_module: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: LearningRateSchedule
    early: EarlyStopping
    weights: LossWeights
    scale: float
    x_all: torch.Tensor | GatheredPatterns
    pos_all: torch.Tensor
    y_all: torch.Tensor | GatheredLabels | None
    train_idx: torch.Tensor
    val_idx: torch.Tensor
    fingerprint: dict[str, Any]
    sampler: DistributedSampler[int] | None = None  # under torch.distributed
    probe_bank: torch.Tensor | None = None
    scan_of_group: torch.Tensor | None = None
    bad_pixels: torch.Tensor | None = None
    history: list[EpochReport] = field(default_factory=list)
    start_epoch: int = 0
    #: weight of the physics loss in the current epoch (multi-stage training, .stages); 1 else
    physics_weight: float = 1.0

    @property
    def channels_last(self) -> bool:
        """The memory format the convolutions run in (ENG-207): channels-last or standard."""
        return self.config.uses_channels_last(self.device.type)

    @property
    def autocast_on(self) -> bool:
        return self.config.bf16 and self.device.type == "cuda"

    @property
    def eval_batch_size(self) -> int:
        return max(int(self.config.training.batch_size), 64)


def seed_everything(seed: int, *, deterministic: bool = True, device_type: str = "cpu") -> None:
    """Seed Python, numpy and torch.

    CPU kernels used here are deterministic already; on CUDA ``deterministic`` also asks torch
    for deterministic algorithms (warn-only) and turns off cuDNN autotuning. (Calling
    ``torch.use_deterministic_algorithms`` on CPU would only cost a ~10 s import of inductor.)
    """
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if deterministic and device_type == "cuda":
        import os

        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def validation_count(n_groups: int, fraction: float) -> int:
    """Groups held out for validation: ``round(n·fraction)``, at least 1 when fraction > 0 and
    at least 2 groups exist, and always leaving one group to train on."""
    if fraction <= 0 or n_groups < 2:
        return 0
    return int(min(n_groups - 1, max(1, round(n_groups * fraction))))


def subsample(raw: RawData, n_subsample: int | None, seed: int | None) -> RawData:
    """Upstream's position subsampling of a scan: ``min(n_subsample, M)`` positions drawn
    without replacement by ``numpy.random.choice`` after ``numpy.random.seed(seed)`` (when a
    seed is given), sorted; all M positions when ``n_subsample`` is None or >= M."""
    m = int(raw.n_positions)
    if n_subsample is None or n_subsample >= m:
        return raw
    # upstream seeds the global legacy generator; without a seed it draws from the global
    # state (which EngineConfig.seed has seeded)
    draw = np.random.RandomState(seed).choice if seed is not None else np.random.choice
    idx = np.sort(draw(np.arange(m), size=int(n_subsample), replace=False))
    return raw.subset(idx)


def fingerprint(config: EngineConfig, n_groups: int) -> dict[str, Any]:
    """The settings a checkpoint must share with a training that resumes from it."""
    model = config.model
    return {
        "N": int(model.N),
        "gridsize": int(model.gridsize),
        "n_filters_scale": int(model.n_filters_scale),
        "model_type": str(model.model_type),
        "object_big": bool(model.object_big),
        "probe_big": bool(model.probe_big),
        "n_groups": int(n_groups),
    }


def _probe_bank(probes: Sequence[np.ndarray], probe_scale: float,
                device: torch.device) -> torch.Tensor:
    """(S, N, N) complex64: each scan's probe normalized as the model normalizes its own."""
    from ptychodus_pinn_torch.physics.probe import normalize_probe

    return torch.stack([normalize_probe(torch.as_tensor(p, dtype=torch.complex64), probe_scale)
                        for p in probes]).to(device)


def bad_pixel_bank(scans: Sequence[RawData], N: int,
                   device: torch.device) -> torch.Tensor | None:
    """(S, N, N) bool: each scan's ``bad_pixels`` (all False without one); None when no scan
    marks any pixel bad, so that the losses keep their unmasked mean (PHYS-170)."""
    masks = [np.zeros((N, N), bool) if s.bad_pixels is None else np.asarray(s.bad_pixels, bool)
             for s in scans]
    if not any(m.any() for m in masks):
        return None
    return torch.from_numpy(np.stack(masks)).to(device)


def setup(
    train_data: RawData | Sequence[RawData], config: EngineConfig, device: torch.device,
    ctx: distmod.DistContext,
) -> TrainingSession:
    """Group the data (one scan, or several grouped each on its own, ENG-183), split it, build
    the model, optimizer, schedule and (under DDP) the wrapper and sampler; seeded by
    ``config.seed``. The model keeps the first scan's probe."""
    from ptychodus_pinn_torch.data.normalize import intensity_scale as closed_form_scale
    from ptychodus_pinn_torch.model import build_model

    t = config.training
    scans = [train_data] if isinstance(train_data, RawData) else list(train_data)
    if len(scans) > 1 and t.probe_trainable:
        raise ValueError(
            "TrainingConfig.probe_trainable=True is not supported with several training scans "
            "(each scan keeps its own fixed probe); train with probe_trainable=False"
        )
    seed_everything(config.seed, deterministic=config.deterministic, device_type=device.type)
    scans = [subsample(scan, t.n_subsample, t.subsample_seed) for scan in scans]
    data = group_scans(scans, t, seed=config.seed, need_labels=config.needs_labels)
    n_total = data.x.shape[0]
    n_val = validation_count(n_total, config.validation_fraction)
    split = torch.randperm(n_total, generator=torch.Generator().manual_seed(config.seed))
    val_idx = split[n_total - n_val :].sort().values if n_val else split[:0]
    train_idx = split[: n_total - n_val].sort().values

    scale = float(closed_form_scale(t.nphotons, t.model.N))
    torch.manual_seed(config.seed)
    model = build_model(
        t.model,
        probe=torch.as_tensor(np.asarray(scans[0].probeGuess), dtype=torch.complex64),
        intensity_scale=scale,
        probe_trainable=bool(t.probe_trainable),
        intensity_scale_trainable=bool(t.intensity_scale_trainable),
    ).to(device)
    if config.init_model is not None:  # fine-tuning: start from a trained network (ENG-185)
        from ptychodus_pinn_torch.engine.fine_tune import load_initial_weights

        load_initial_weights(model, config.init_model)
    if config.uses_channels_last(device.type):  # ENG-207
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model.parameters(), config)
    train_module, sampler = _distribute(model, config, device, ctx, n_train=len(train_idx))
    return TrainingSession(
        config=config,
        device=device,
        ctx=ctx,
        model=model,
        train_module=train_module,
        optimizer=optimizer,
        scheduler=LearningRateSchedule(optimizer, config),
        early=EarlyStopping(config.early_stop_patience),
        weights=config.loss_weights(),
        scale=scale,
        x_all=(data.x * scale).to(device),
        pos_all=data.positions.to(device),
        y_all=None if data.y is None else data.y.to(device),
        train_idx=train_idx,
        val_idx=val_idx,
        fingerprint=fingerprint(config, n_total),
        sampler=sampler,
        probe_bank=None if len(scans) == 1 else _probe_bank(data.probes, t.model.probe_scale,
                                                             device),
        scan_of_group=None if len(scans) == 1 else data.scan_of_group.to(device),
        bad_pixels=bad_pixel_bank(scans, int(t.model.N), device),
    )


def _distribute(
    model: torch.nn.Module,
    config: EngineConfig,
    device: torch.device,
    ctx: distmod.DistContext,
    *,
    n_train: int,
) -> tuple[torch.nn.Module, DistributedSampler[int] | None]:
    """(module that runs forward, DistributedSampler or None)."""
    if not ctx.is_distributed:
        return model, None
    import warnings

    from torch.nn.parallel import DistributedDataParallel

    # 1-input-channel convolutions get grads whose strides differ from DDP's bucket views;
    # harmless (torch says so), but it would print on every rank
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view")
    module = DistributedDataParallel(
        model,
        device_ids=[device.index] if device.type == "cuda" else None,
        # supervised losses (and a staged warm-up on labels) leave log_scale without gradient
        find_unused_parameters=config.supervised or config.staged,
    )
    sampler = DistributedSampler(
        range(n_train),
        num_replicas=ctx.world_size,
        rank=ctx.rank,
        shuffle=config.shuffle,
        seed=config.seed,
        drop_last=False,
    )
    return module, sampler


def save_state(session: TrainingSession, directory: Path, epoch: int,
               weights: dict[str, torch.Tensor]) -> Path:
    """Write the checkpoint after ``epoch`` (1-based) with the model ``weights`` of that
    epoch; returns its path."""
    return ckpt.save_checkpoint(
        directory,
        {
            "epoch": epoch,
            "model": weights,
            "optimizer": session.optimizer.state_dict(),
            "scheduler": session.scheduler.state_dict(),
            "early_stop": session.early.state_dict(),
            "history": [h.to_dict() for h in session.history],
            "fingerprint": session.fingerprint,
        },
    )


def restore_state(session: TrainingSession, directory: Path) -> None:
    """Load the checkpoint of ``directory`` into ``session`` (model, optimizer, schedule, early
    stopping, history, next epoch); a checkpoint of another set-up raises CheckpointError."""
    state = ckpt.load_checkpoint(directory, expect=session.fingerprint)
    session.model.load_state_dict(state["model"])
    session.optimizer.load_state_dict(state["optimizer"])
    session.scheduler.load_state_dict(state["scheduler"])
    session.early.load_state_dict(state["early_stop"])
    session.history = [EpochReport.from_dict(h) for h in state["history"]]
    session.start_epoch = int(state["epoch"])


__all__ = [
    "TrainingSession",
    "fingerprint",
    "restore_state",
    "save_state",
    "seed_everything",
    "setup",
    "subsample",
    "validation_count",
]
