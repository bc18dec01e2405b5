"""The one configuration the training engine takes: :class:`EngineConfig`.

It holds the spec :class:`~ptychodus_pinn_torch.config.spec.TrainingConfig` (the model, the
data sampling, the loss weights, the optimizer and schedule fields) and the run settings the
spec has no place for (learning rate, validation split, early stopping, seed, device, ...).
Everything the engine reads is derived here, in one place: :func:`plateau_settings` (the
learning-rate schedule) and :func:`EngineConfig.loss_weights` (the loss terms).

The TF-style spec, the PyTorch dataclasses and the legacy dict are translators around it
(``config.bridge``, ``config.legacy``). Upstream's Keras fit settings are the defaults
(specs/ENGINE.md ENG-001). Standard library only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ptychodus_pinn_torch.config.checks import check_bool, check_choice, check_int, check_number
from ptychodus_pinn_torch.config.choices import (
    OPTIMIZERS,
    PHYSICS_WEIGHT_SCHEDULES,
    SCHEDULERS,
)
from ptychodus_pinn_torch.config.fields import check_supported
from ptychodus_pinn_torch.config.spec import (
    ModelConfig,
    TrainingConfig,
    validate_training_config,
)

#: Keras ``ReduceLROnPlateau(val_loss, factor 0.5, patience 2, min_lr 1e-4, min_delta 1e-4)``:
#: what ``TrainingConfig.scheduler = 'Default'`` means here (upstream TF's fit, reference §5.1).
KERAS_PLATEAU_FACTOR = 0.5
KERAS_PLATEAU_PATIENCE = 2
KERAS_MIN_LR = 1e-4
KERAS_MIN_DELTA = 1e-4



def channels_last_on(setting: bool | None, device_type: str) -> bool | None:
    """The one "auto" rule of the channels-last settings (ENG-206 inference, ENG-207
    training): None means on for the CPU (measured faster there), off elsewhere; True/False
    (or anything else, for the caller to refuse by name) pass through."""
    return device_type == "cpu" if setting is None else setting

@dataclass(frozen=True)
class PlateauSettings:
    """ReduceLROnPlateau in torch terms: multiply the lr by ``factor`` after ``patience`` epochs
    without an (absolute) improvement larger than ``threshold``, never below ``min_lr``."""

    factor: float
    patience: int
    min_lr: float
    threshold: float


@dataclass(frozen=True)
class LossWeights:
    """The weights of the loss terms the engine sums (specs/ENGINE.md ENG-002, ENG-003).

    nll, mae, realspace, realspace_mae: the spec TrainingConfig weights; tv: the total-variation
    weight inside the real-space term; amp, phase: the supervised amplitude and phase MAE
    weights; probe_big: the model's ``probe_big`` (the real-space and supervised terms compare
    only the centre N/2 square without it).
    """

    nll: float = 1.0
    mae: float = 0.0
    realspace: float = 0.0
    realspace_mae: float = 0.0
    tv: float = 0.0
    amp: float = 1.0
    phase: float = 1.0
    probe_big: bool = True


@dataclass(frozen=True)
class EngineConfig:
    """Everything the training engine reads.

    training: the spec ``TrainingConfig`` (nested ``model``): batch size per process, epochs,
        loss weights, nphotons, grouping, optimizer and schedule fields.
    learning_rate: optimizer step size (upstream 1e-3).
    validation_fraction: share of the groups held out for ``val_loss`` (Keras
        ``validation_split=0.05``); 0 disables validation (the plateau then watches the train
        loss).
    early_stop_patience: epochs without train-loss improvement before stopping (Keras
        EarlyStopping(loss, patience 3, min_delta 0)); None disables.
    seed: seeds weights, grouping, the split and the shuffling (deterministic on CPU).
    device: "auto" (CUDA when available), "cpu", "cuda", "cuda:K", "mps".
    channels_last: run the convolutions in channels-last memory format (weights and batches);
        False: the standard (contiguous) format; None (default): on for the CPU, where training
        measured faster, off elsewhere (ENG-207).
    bf16: bfloat16 autocast of the network on CUDA (losses stay float32).
    checkpoint_every: write the checkpoint every this many epochs (and at the end).
    shuffle: shuffle the training groups every epoch.
    deterministic: ask torch for deterministic algorithms on CUDA (warn-only where none exist).
    tv_weight: weight of the total-variation term inside the real-space loss (upstream
        ``params['tv_weight']``; acts only with ``training.realspace_weight > 0``).
    init_model: a ``wts.h5.zip`` whose network weights and intensity scale training starts
        from (fine-tuning, ENG-185); None trains from scratch.
    epochs_fine_tune: with ``init_model``, the epochs to run (0: ``training.nepochs``);
        upstream ``TrainingConfig.epochs_fine_tune``.
    fine_tune_gamma: with ``init_model``, the learning rate is ``learning_rate *
        fine_tune_gamma`` (upstream ``fine_tune_gamma``, 0.1).
    stage_1_epochs / stage_2_epochs / stage_3_epochs: multi-stage training (upstream PyTorch
        TrainingConfig names; specs/ENGINE.md ENG-220): warm-up loss, blend toward the physics
        loss, physics only. All 0 (default): one stage. Otherwise they must add up to
        ``training.nepochs`` and ``model_type`` must be 'pinn'.
    physics_weight_schedule: the stage-2 blend, 'linear', 'cosine' (default) or 'exponential'.
    stage_3_lr_factor: the learning rate is multiplied by this when stage 3 begins (0.1).
    threads: CPU threads torch uses while training (>= 1); None: ``OMP_NUM_THREADS`` if set,
        else torch's default (engine.threads, ENG-205).
    accum_steps: accumulate the gradients of this many batches (each loss divided by it)
        before one optimizer step (upstream's manual optimization); 1 steps every batch.
    train_data_files: several training scans (paths of files, or folders standing for their
        ``.npz`` files and mapped scans; upstream PyTorch ``TrainingConfig.training_directories``):
        when non-empty, the pipeline trains one model over all of them (ENG-183) when no scan is
        passed, instead of ``training.train_data_file``; empty (default): that one file.

    Every field of this class and of the spec configs it holds is read or refused by name
    (``config.fields``, specs/CFG.md CFG-100).
    """

    training: TrainingConfig
    learning_rate: float = 1e-3
    validation_fraction: float = 0.05
    early_stop_patience: int | None = 3
    seed: int = 0
    device: str = "auto"
    channels_last: bool | None = None
    bf16: bool = False
    checkpoint_every: int = 1
    shuffle: bool = True
    deterministic: bool = True
    tv_weight: float = 0.0
    init_model: str | None = None
    epochs_fine_tune: int = 0
    fine_tune_gamma: float = 0.1
    stage_1_epochs: int = 0
    stage_2_epochs: int = 0
    stage_3_epochs: int = 0
    physics_weight_schedule: str = "cosine"
    stage_3_lr_factor: float = 0.1
    threads: int | None = None
    accum_steps: int = 1
    train_data_files: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        o = "EngineConfig"
        files = self.train_data_files
        names = () if not isinstance(files, tuple | list) else tuple(
            os.fspath(f) if isinstance(f, os.PathLike) else f for f in files)
        if not isinstance(files, tuple | list) or not all(isinstance(f, str) and f
                                                           for f in names):
            raise ValueError(
                f"EngineConfig.train_data_files={files!r} must be a list of scan paths (files or "
                "folders), e.g. ['a.npz', 'scans/']")
        object.__setattr__(self, "train_data_files", names)
        if not isinstance(self.training, TrainingConfig):
            raise ValueError(
                f"EngineConfig.training must be a spec TrainingConfig, got "
                f"{type(self.training).__name__}; build it as "
                "EngineConfig(training=TrainingConfig(model=ModelConfig(...)))"
            )
        check_number(o, "learning_rate", self.learning_rate, positive=True)
        check_number(o, "validation_fraction", self.validation_fraction, non_negative=True)
        if not self.validation_fraction < 1.0:
            raise ValueError(
                f"EngineConfig.validation_fraction={self.validation_fraction!r} must lie in [0, 1)"
            )
        check_int(o, "early_stop_patience", self.early_stop_patience, minimum=1, optional=True)
        check_int(o, "seed", self.seed, minimum=0)
        if not isinstance(self.device, str) or not self.device:
            raise ValueError(
                f"EngineConfig.device={self.device!r} must be 'auto', 'cpu', 'cuda', 'cuda:K' "
                "or 'mps'"
            )
        if self.channels_last is not None:
            check_bool(o, "channels_last", self.channels_last)
        for name in ("bf16", "shuffle", "deterministic"):
            check_bool(o, name, getattr(self, name))
        check_int(o, "checkpoint_every", self.checkpoint_every, minimum=1)
        check_number(o, "tv_weight", self.tv_weight, non_negative=True)
        check_int(o, "threads", self.threads, minimum=1, optional=True)
        check_int(o, "accum_steps", self.accum_steps, minimum=1)
        _check_fine_tune(self)
        self._check_stages()
        _check_training(self.training)
        for part in (self.training.model, self.training, self):
            check_supported(part, where="this engine")
        plateau = self.plateau()
        if plateau is not None and plateau.min_lr > self.step_size:
            raise ValueError(
                f"the plateau's min_lr={plateau.min_lr!r} exceeds the learning rate "
                f"{self.step_size!r} (EngineConfig.learning_rate={self.learning_rate!r}"
                + ("" if self.init_model is None else
                   f" x fine_tune_gamma={self.fine_tune_gamma!r}") + "); raise it or "
                "lower TrainingConfig.plateau_min_lr (with scheduler='ReduceLROnPlateau')"
            )

    def _check_stages(self) -> None:
        o = "EngineConfig"
        for name in ("stage_1_epochs", "stage_2_epochs", "stage_3_epochs"):
            check_int(o, name, getattr(self, name), minimum=0)
        check_choice(o, "physics_weight_schedule", self.physics_weight_schedule,
                     PHYSICS_WEIGHT_SCHEDULES)
        check_number(o, "stage_3_lr_factor", self.stage_3_lr_factor, positive=True)
        total = self.stage_1_epochs + self.stage_2_epochs + self.stage_3_epochs
        if total and total != self.training.nepochs:
            raise ValueError(
                f"EngineConfig.stage_1_epochs + stage_2_epochs + stage_3_epochs = {total} must "
                f"equal TrainingConfig.nepochs = {self.training.nepochs} (or set all three to 0 "
                "for one stage)"
            )
        if total and self.training.model.model_type != "pinn":
            raise ValueError(
                "EngineConfig.stage_*_epochs blend toward the physics loss and need "
                f"ModelConfig.model_type='pinn', got {self.training.model.model_type!r}; set the "
                "stages to 0 for supervised training"
            )

    @property
    def staged(self) -> bool:
        """True when multi-stage training is on (any stage_*_epochs > 0)."""
        return self.stage_1_epochs + self.stage_2_epochs + self.stage_3_epochs > 0

    @property
    def model(self) -> ModelConfig:
        """The spec ``ModelConfig`` the network is built from (``training.model``)."""
        return self.training.model

    @property
    def epochs(self) -> int:
        """Planned epochs: ``training.nepochs``, or ``epochs_fine_tune`` (> 0) when training
        starts from ``init_model``."""
        if self.init_model is not None and self.epochs_fine_tune > 0:
            return int(self.epochs_fine_tune)
        return int(self.training.nepochs)

    def uses_channels_last(self, device_type: str) -> bool:
        """Whether training on a device of ``device_type`` ('cpu', 'cuda', 'mps') runs the
        convolutions channels-last: ``channels_last``, or on the CPU only when it is None."""
        return bool(channels_last_on(self.channels_last, device_type))

    @property
    def step_size(self) -> float:
        """The optimizer's learning rate: ``learning_rate``, times ``fine_tune_gamma`` when
        training starts from ``init_model`` (upstream's fine-tuning recipe)."""
        if self.init_model is not None:
            return float(self.learning_rate) * float(self.fine_tune_gamma)
        return float(self.learning_rate)

    @property
    def supervised(self) -> bool:
        """True for ``model_type='supervised'`` (trains on the ``Y`` labels)."""
        return self.training.model.model_type == "supervised"

    @property
    def needs_labels(self) -> bool:
        """True when training reads the ``Y`` labels (supervised, or a real-space term)."""
        return self.supervised or self.training.realspace_weight > 0

    def loss_weights(self) -> LossWeights:
        """The loss-term weights of this configuration (the one place they are derived).

        ``torch_loss_mode='mae'`` (PINN; upstream's PyTorch objective switch) drops the Poisson
        NLL and uses the amplitude MAE with weight ``mae_weight`` (1 when that is 0).
        """
        t = self.training
        mae_mode = t.torch_loss_mode == "mae" and not self.supervised
        return LossWeights(
            nll=0.0 if mae_mode else float(t.nll_weight),
            mae=(float(t.mae_weight) or 1.0) if mae_mode else float(t.mae_weight),
            realspace=float(t.realspace_weight),
            realspace_mae=float(t.realspace_mae_weight),
            tv=float(self.tv_weight),
            probe_big=bool(t.model.probe_big),
        )

    def plateau(self) -> PlateauSettings | None:
        """The learning-rate plateau schedule (see :func:`plateau_settings`)."""
        return plateau_settings(self.training)


def plateau_settings(training: TrainingConfig) -> PlateauSettings | None:
    """The ReduceLROnPlateau settings of ``training``.

    ``scheduler='Default'``: upstream TF's Keras recipe (factor 0.5, patience 2, min_lr 1e-4,
    min_delta 1e-4). ``scheduler='ReduceLROnPlateau'``: the spec's ``plateau_factor``,
    ``plateau_patience``, ``plateau_min_lr``, ``plateau_threshold`` (upstream HEAD's PyTorch
    recipe). None for the schedulers without a plateau (Exponential, WarmupCosine).
    """
    if training.scheduler == "Default":
        return PlateauSettings(KERAS_PLATEAU_FACTOR, KERAS_PLATEAU_PATIENCE, KERAS_MIN_LR,
                               KERAS_MIN_DELTA)
    if training.scheduler == "ReduceLROnPlateau":
        return PlateauSettings(float(training.plateau_factor), int(training.plateau_patience),
                               float(training.plateau_min_lr), float(training.plateau_threshold))
    return None


def _check_fine_tune(config: EngineConfig) -> None:
    """``init_model``/``epochs_fine_tune``/``fine_tune_gamma``: typed, and the last two refused
    by name when there is no model to fine-tune."""
    o = "EngineConfig"
    if config.init_model is not None and (not isinstance(config.init_model, str)
                                          or not config.init_model):
        raise ValueError(f"EngineConfig.init_model={config.init_model!r} must be the path of a "
                         "wts.h5.zip (a string) or None")
    check_int(o, "epochs_fine_tune", config.epochs_fine_tune, minimum=0)
    check_number(o, "fine_tune_gamma", config.fine_tune_gamma, positive=True)
    if config.init_model is None:
        for name, default in (("epochs_fine_tune", 0), ("fine_tune_gamma", 0.1)):
            if getattr(config, name) != default:
                raise ValueError(
                    f"EngineConfig.{name}={getattr(config, name)!r} acts only when training "
                    "starts from a model; set EngineConfig.init_model (pinn-torch train "
                    "--init-model wts.h5.zip) or leave it at its default"
                )


def _check_training(config: TrainingConfig) -> None:
    """The TrainingConfig fields the engine relies on, with errors naming the field.

    The spec's own rules (batch_size a power of 2, ...) come first: the archive written at the
    end of a training is checked against them, so a breach must stop the run before it starts.
    """
    o = "TrainingConfig"
    validate_training_config(config)
    if (
        config.model.model_type == "pinn"
        and (config.mae_weight + config.nll_weight + config.realspace_weight) <= 0
    ):
        raise ValueError(
            "TrainingConfig loss weights are all 0 (mae_weight, nll_weight, realspace_weight); "
            "set nll_weight=1 (upstream default) or another weight > 0"
        )
    check_choice(o, "optimizer", config.optimizer, OPTIMIZERS)
    check_choice(o, "scheduler", config.scheduler, SCHEDULERS)
    check_number(o, "momentum", config.momentum, non_negative=True)
    check_number(o, "weight_decay", config.weight_decay, non_negative=True)
    for name in ("adam_beta1", "adam_beta2"):
        value = getattr(config, name)
        check_number(o, name, value, non_negative=True)
        if not value < 1.0:
            raise ValueError(f"TrainingConfig.{name}={value!r} must lie in [0, 1)")
    check_int(o, "lr_warmup_epochs", config.lr_warmup_epochs, minimum=0)
    check_number(o, "lr_min_ratio", config.lr_min_ratio, non_negative=True)
    if config.lr_min_ratio > 1.0:
        raise ValueError(f"TrainingConfig.lr_min_ratio={config.lr_min_ratio!r} must lie in [0, 1]")
    check_number(o, "gradient_clip_val", config.gradient_clip_val, positive=True, optional=True)
    check_int(o, "n_subsample", config.n_subsample, minimum=1, optional=True)
    check_int(o, "subsample_seed", config.subsample_seed, optional=True)
    plateau = plateau_settings(config)
    if plateau is None:
        return
    if not 0.0 < plateau.factor < 1.0:
        raise ValueError(f"TrainingConfig.plateau_factor={plateau.factor!r} must lie in (0, 1)")
    check_int(o, "plateau_patience", plateau.patience, minimum=0)
    check_number(o, "plateau_min_lr", plateau.min_lr, non_negative=True)
    check_number(o, "plateau_threshold", plateau.threshold, non_negative=True)


__all__ = [
    "KERAS_MIN_DELTA",
    "KERAS_MIN_LR",
    "KERAS_PLATEAU_FACTOR",
    "KERAS_PLATEAU_PATIENCE",
    "EngineConfig",
    "LossWeights",
    "PlateauSettings",
    "plateau_settings",
]
