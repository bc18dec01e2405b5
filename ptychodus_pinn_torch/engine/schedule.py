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


def clip_gradients(model: torch.nn.Module, config: EngineConfig) -> None:
    """``TrainingConfig.gradient_clip_val`` (None: off) by ``gradient_clip_algorithm``: 'norm'
    clips the total gradient norm, 'value' each gradient element to ±val."""
    t = config.training
    if t.gradient_clip_val is None:
        return
    if t.gradient_clip_algorithm == "norm":
        torch.nn.utils.clip_grad_norm_(model.parameters(), float(t.gradient_clip_val))
    elif t.gradient_clip_algorithm == "value":
        torch.nn.utils.clip_grad_value_(model.parameters(), float(t.gradient_clip_val))
    else:
        raise ValueError(
            f"TrainingConfig.gradient_clip_algorithm={t.gradient_clip_algorithm!r} is not "
            "supported by this engine; use 'norm' or 'value'"
        )


__all__ = ["EarlyStopping", "clip_gradients", "make_optimizer", "make_scheduler"]
