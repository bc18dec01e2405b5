"""Multi-stage training: a warm-up loss, a blend toward the physics loss, then physics only
(specs/ENGINE.md ENG-220..222). Upstream's fields, our design (upstream HEAD forces one stage).

With ``s1, s2, s3 = stage_1_epochs, stage_2_epochs, stage_3_epochs`` (0-based epoch ``e``):

- stage 1, ``e < s1``: physics weight ``w = 0``;
- stage 2, ``s1 <= e < s1 + s2``: ``p = (e - s1) / s2`` and ``w = p`` (linear),
  ``(1 - cos(pi p)) / 2`` (cosine) or ``p**2`` (exponential), upstream's historical formulas;
- stage 3, ``e >= s1 + s2``: ``w = 1``; the learning rate is multiplied by ``stage_3_lr_factor``
  once, when stage 3 begins.

The loss of an epoch is ``(1 - w) * warm-up + w * physics``. *Physics* is the configured PINN
loss (nll/mae/realspace weights). *Warm-up* is the supervised amplitude and phase MAE against the
labels when the training data carry them (``Y`` or ``objectGuess``), else the diffraction
amplitude MAE ``mean|A_pred - sX|`` (a label-free loss that is smoother than the Poisson NLL far
from the solution). All stages zero = one stage of ``nepochs`` with ``w = 1``: today's training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ptychodus_pinn_torch.config.choices import PHYSICS_WEIGHT_SCHEDULES as SCHEDULES
from ptychodus_pinn_torch.config.engine import EngineConfig


def blend(schedule: str, p: float) -> float:
    """The physics weight at stage-2 progress ``p`` in [0, 1] for ``schedule``."""
    if schedule == "linear":
        return p
    if schedule == "cosine":
        return 0.5 * (1.0 - math.cos(math.pi * p))
    if schedule == "exponential":
        return p * p
    raise ValueError(
        f"physics_weight_schedule={schedule!r} is unknown; accepted values: {list(SCHEDULES)}"
    )


@dataclass(frozen=True)
class StagePlan:
    """The stage lengths (epochs), the blend schedule and the stage-3 learning-rate factor."""

    stage_1: int = 0
    stage_2: int = 0
    stage_3: int = 0
    schedule: str = "cosine"
    lr_factor: float = 0.1

    @classmethod
    def of(cls, config: EngineConfig) -> StagePlan:
        return cls(config.stage_1_epochs, config.stage_2_epochs, config.stage_3_epochs,
                   config.physics_weight_schedule, config.stage_3_lr_factor)

    @property
    def staged(self) -> bool:
        """True when any stage has epochs (else one plain stage)."""
        return self.stage_1 + self.stage_2 + self.stage_3 > 0

    def stage(self, epoch: int) -> int:
        """1, 2 or 3 for 0-based ``epoch`` (0 when not staged)."""
        if not self.staged:
            return 0
        if epoch < self.stage_1:
            return 1
        if epoch < self.stage_1 + self.stage_2:
            return 2
        return 3

    def physics_weight(self, epoch: int) -> float:
        """``w`` of 0-based ``epoch`` (see the module doc)."""
        stage = self.stage(epoch)
        if stage in (0, 3):
            return 1.0
        if stage == 1:
            return 0.0
        return blend(self.schedule, (epoch - self.stage_1) / self.stage_2)

    def lr_drop_at(self, epoch: int) -> bool:
        """True for the first epoch of stage 3 (the learning rate drops before it)."""
        return self.staged and self.stage_3 > 0 and epoch == self.stage_1 + self.stage_2


__all__ = ["SCHEDULES", "StagePlan", "blend"]
