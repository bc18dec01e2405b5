"""The optimizer, its learning-rate schedule, gradient clipping and early stopping of a training,
built from an :class:`~ptychodus_pinn_torch.config.engine.EngineConfig`.

Defaults are upstream TF's Keras fit (specs/ENGINE.md ENG-001): Adam lr 1e-3,
ReduceLROnPlateau(factor 0.5, patience 2, min_lr 1e-4, min_delta 1e-4), EarlyStopping(loss,
patience 3, min_delta 0).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import torch

from ptychodus_pinn_torch.config.engine import EngineConfig, PlateauSettings


class EarlyStopping:
    """Keras EarlyStopping(monitor='loss', patience, min_delta=0, mode='min')."""

    def __init__(self, patience: int | None) -> None:
        self.patience = patience
        self.best = math.inf
        self.wait = 0

    def step(self, value: float) -> bool:
        """Record an epoch's loss; True when training should stop."""
        if value < self.best:
            self.best = value
            self.wait = 0
            return False
        self.wait += 1
        return self.patience is not None and self.wait >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {"best": float(self.best), "wait": int(self.wait)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.best = float(state["best"])
        self.wait = int(state["wait"])


def make_optimizer(
    params: Iterable[torch.nn.Parameter], config: EngineConfig
) -> torch.optim.Optimizer:
    """``TrainingConfig.optimizer``: 'adam' (betas ``adam_beta1/2``, L2 ``weight_decay``),
    'adamw' (decoupled ``weight_decay``), 'sgd' (``momentum``, L2 ``weight_decay``), at
    ``EngineConfig.step_size`` (the learning rate, times ``fine_tune_gamma`` when fine-tuning)."""
    t = config.training
    trainable = [p for p in params if p.requires_grad]
    lr = config.step_size
    betas = (float(t.adam_beta1), float(t.adam_beta2))
    if t.optimizer == "adam":
        return torch.optim.Adam(trainable, lr=lr, betas=betas, weight_decay=t.weight_decay)
    if t.optimizer == "adamw":
        return torch.optim.AdamW(trainable, lr=lr, betas=betas, weight_decay=t.weight_decay)
    if t.optimizer == "sgd":
        return torch.optim.SGD(trainable, lr=lr, momentum=t.momentum,
                               weight_decay=t.weight_decay)
    raise ValueError(
        f"TrainingConfig.optimizer={t.optimizer!r} is not accepted; use 'adam', 'adamw' or 'sgd'"
    )


def make_scheduler(
    optimizer: torch.optim.Optimizer, plateau: PlateauSettings
) -> torch.optim.lr_scheduler.ReduceLROnPlateau:
    """ReduceLROnPlateau with an absolute improvement threshold and no cooldown (Keras'
    ``min_delta`` semantics)."""
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer,
        mode="min",
        factor=plateau.factor,
        patience=plateau.patience,
        threshold=plateau.threshold,
        threshold_mode="abs",
        min_lr=plateau.min_lr,
    )


class LearningRateSchedule:
    """The learning rate of every epoch (``TrainingConfig.scheduler``, ``lr_warmup_epochs``).

    Warm-up: during the first ``lr_warmup_epochs`` epochs the lr rises linearly from lr/10
    (``lr·(0.1 + 0.9·e/warmup)``, upstream WarmupCosine's ramp, used for every scheduler).
    Then: 'Default' / 'ReduceLROnPlateau' step a plateau on the watched loss; 'Exponential'
    multiplies by 0.95 per epoch (upstream γ); 'WarmupCosine' follows a cosine from lr to
    ``lr_min_ratio·lr`` over the remaining epochs.
    """

    EXPONENTIAL_GAMMA = 0.95

    def __init__(self, optimizer: torch.optim.Optimizer, config: EngineConfig) -> None:
        self.optimizer = optimizer
        self.base_lr = float(config.step_size)
        t = config.training
        self.kind = str(t.scheduler)
        self.warmup = int(t.lr_warmup_epochs)
        self.epochs = int(t.nepochs)
        self.min_ratio = float(t.lr_min_ratio)
        plateau = config.plateau()
        self.plateau = None if plateau is None else make_scheduler(optimizer, plateau)

    def _set(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def start_epoch(self, epoch: int) -> None:
        """Set the lr of 0-based ``epoch`` (warm-up and the epoch-indexed schedules)."""
        if epoch < self.warmup:
            self._set(self.base_lr * (0.1 + 0.9 * epoch / self.warmup))
            return
        after = epoch - self.warmup
        if self.kind == "Exponential":
            self._set(self.base_lr * self.EXPONENTIAL_GAMMA**after)
        elif self.kind == "WarmupCosine":
            span = max(self.epochs - self.warmup - 1, 1)
            cos = 0.5 * (1.0 + math.cos(math.pi * min(after, span) / span))
            self._set(self.base_lr * (self.min_ratio + (1.0 - self.min_ratio) * cos))
        elif epoch == self.warmup and self.warmup > 0:
            self._set(self.base_lr)  # the plateau takes over from the full lr

    def scale(self, factor: float) -> None:
        """Multiply the learning rate from now on by ``factor`` (a training stage's drop)."""
        self.base_lr *= factor
        self._set(float(self.optimizer.param_groups[0]["lr"]) * factor)

    def end_epoch(self, epoch: int, watched_loss: float) -> None:
        """After 0-based ``epoch``: step the plateau (after the warm-up) on ``watched_loss``."""
        if self.plateau is not None and epoch + 1 >= self.warmup:
            self.plateau.step(watched_loss)

    def state_dict(self) -> dict[str, Any]:
        return {"plateau": None if self.plateau is None else self.plateau.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if self.plateau is not None and state.get("plateau") is not None:
            self.plateau.load_state_dict(state["plateau"])


def clip_gradients(model: torch.nn.Module, config: EngineConfig) -> None:
    """``TrainingConfig.gradient_clip_val`` (None: off) by ``gradient_clip_algorithm``: 'norm'
    clips the total gradient norm, 'value' each gradient element to ±val, 'agc' each unit's
    gradient norm to ``val·max(|w_unit|, 1e-3)`` (adaptive gradient clipping, Brock et al.
    2021; a unit is one output row of a weight, a whole 0-/1-D tensor)."""
    t = config.training
    if t.gradient_clip_val is None:
        return
    val = float(t.gradient_clip_val)
    if t.gradient_clip_algorithm == "norm":
        torch.nn.utils.clip_grad_norm_(model.parameters(), val)
    elif t.gradient_clip_algorithm == "value":
        torch.nn.utils.clip_grad_value_(model.parameters(), val)
    elif t.gradient_clip_algorithm == "agc":
        _adaptive_clip(model, val)
    else:
        raise ValueError(
            f"TrainingConfig.gradient_clip_algorithm={t.gradient_clip_algorithm!r} is not "
            "accepted; use 'norm', 'value' or 'agc'"
        )


def _unit_norms(x: torch.Tensor) -> torch.Tensor:
    """Norm of every unit of ``x`` (over all dims but the first when ndim > 1), broadcastable."""
    if x.ndim <= 1:
        return x.norm().reshape([1] * x.ndim) if x.ndim else x.norm()
    return x.flatten(1).norm(dim=1).reshape([-1] + [1] * (x.ndim - 1))


@torch.no_grad()
def _adaptive_clip(model: torch.nn.Module, clipping: float, eps: float = 1e-3) -> None:
    for p in model.parameters():
        if p.grad is None or p.is_complex():
            continue
        max_norm = _unit_norms(p.detach()).clamp(min=eps) * clipping
        g_norm = _unit_norms(p.grad)
        scale = (max_norm / g_norm.clamp(min=1e-6)).clamp(max=1.0)
        p.grad.mul_(torch.where(g_norm > max_norm, scale, torch.ones_like(scale)))


__all__ = [
    "EarlyStopping",
    "LearningRateSchedule",
    "clip_gradients",
    "make_optimizer",
    "make_scheduler",
]
