"""TensorFlow-style PtychoPINN spec configuration: ``ModelConfig``, ``TrainingConfig``,
``InferenceConfig`` and their explicit ``validate_*`` functions.

Field names and defaults are those of upstream ``ptycho/config/config.py`` at HEAD (reference
§6.1), without the FNO-only fields. The dataclasses are frozen. As upstream, constructing one does
not validate it (except the ``n_images`` deprecation and the ``n_groups`` default of training);
call :func:`validate_model_config`, :func:`validate_training_config` or
:func:`validate_inference_config` to check the values (specs/CFG.md).

This module imports the standard library only.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from ptychodus_pinn_torch.config.checks import (
    as_optional_path,
    check_bool,
    check_choice,
    check_int,
    check_number,
    check_torch_loss_mode,
)
from ptychodus_pinn_torch.config.choices import (
    AMP_ACTIVATIONS,
    ARCHITECTURES,
    ARCHIVE_NAME,
    BACKENDS,
    GRADIENT_CLIP_ALGORITHMS,
    MODEL_TYPES,
    N_VALUES,
    OPTIMIZERS,
    OUTPUT_MODES,
    SCHEDULERS,
    TORCH_LOSS_MODES,
    UPSTREAM_ONLY_ARCHITECTURES,
)

#: ``TrainingConfig.n_groups`` when neither ``n_groups`` nor ``n_images`` is given.
DEFAULT_TRAINING_N_GROUPS = 512


@dataclass(frozen=True)
class ModelConfig:
    """Network and physics-model settings (upstream ``ptycho.config.config.ModelConfig``).

    ``N`` is the diffraction patch size in pixels, ``gridsize`` the side of the square group of
    ``gridsize**2`` neighbouring scan positions (C channels), ``probe_scale`` the divisor of the
    probe normalization, ``gaussian_smoothing_sigma`` the probe smoothing sigma in pixels.
    """

    N: int = 64
    gridsize: int = 1
    n_filters_scale: int = 2
    model_type: Literal["pinn", "supervised"] = "pinn"
    amp_activation: str = "sigmoid"
    object_big: bool = True
    probe_big: bool = True
    probe_mask: bool = False
    pad_object: bool = True
    probe_scale: float = 4.0
    gaussian_smoothing_sigma: float = 0.0
    # HEAD additions
    architecture: str = "cnn"
    probe_mask_sigma: float = 1.0
    probe_mask_diameter: float | None = None
    fno_modes: int = 12
    fno_width: int = 32
    fno_blocks: int = 4
    fno_cnn_blocks: int = 2
    generator_output_mode: str = "real_imag"
    # PyTorch ModelConfig fields carried here so the engine sees them (specs/MODEL.md MODEL-222)
    cnn_output_mode: str = "amp_phase"
    cbam_encoder: bool = False
    cbam_bottleneck: bool = False
    cbam_decoder: bool = False
    eca_encoder: bool = False
    eca_decoder: bool = False


@dataclass(frozen=True)
class TrainingConfig:
    """Training settings (upstream ``ptycho.config.config.TrainingConfig``).

    ``n_groups`` defaults to 512 after construction; ``n_images`` is deprecated: when given and
    ``n_groups`` is None it emits a DeprecationWarning and becomes ``n_groups``.
    """

    model: ModelConfig
    train_data_file: Path | None = None
    test_data_file: Path | None = None
    batch_size: int = 16
    nepochs: int = 50
    mae_weight: float = 0.0
    nll_weight: float = 1.0
    realspace_mae_weight: float = 0.0
    realspace_weight: float = 0.0
    nphotons: float = 1e9
    n_groups: int | None = None
    n_images: int | None = None
    n_subsample: int | None = None
    subsample_seed: int | None = None
    neighbor_count: int = 4
    positions_provided: bool = True
    probe_trainable: bool = False
    intensity_scale_trainable: bool = True
    output_dir: Path = field(default_factory=lambda: Path("training_outputs"))
    sequential_sampling: bool = False
    # Nov-2025 additions
    enable_oversampling: bool = False
    neighbor_pool_size: int | None = None
    backend: Literal["tensorflow", "pytorch"] = "tensorflow"
    torch_loss_mode: Literal["poisson", "mae"] = "poisson"
    # HEAD additions
    torch_mae_pred_l2_match_target: bool = False
    gradient_clip_val: float | None = None
    gradient_clip_algorithm: str = "norm"
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    scheduler: str = "Default"
    lr_warmup_epochs: int = 0
    lr_min_ratio: float = 0.1
    plateau_factor: float = 0.5
    plateau_patience: int = 2
    plateau_min_lr: float = 5e-5
    plateau_threshold: float = 0.0

    def __post_init__(self) -> None:
        _resolve_n_images(self, "TrainingConfig")
        if self.n_groups is None:
            object.__setattr__(self, "n_groups", DEFAULT_TRAINING_N_GROUPS)
        for name in ("train_data_file", "test_data_file", "output_dir"):
            object.__setattr__(
                self, name, as_optional_path("TrainingConfig", name, getattr(self, name))
            )


@dataclass(frozen=True)
class InferenceConfig:
    """Inference settings (upstream ``ptycho.config.config.InferenceConfig``).

    ``model_path`` (a model directory holding ``wts.h5.zip``, or the archive itself) and
    ``test_data_file`` are required. ``n_groups`` stays None when not given.
    """

    model: ModelConfig
    model_path: Path
    test_data_file: Path
    n_groups: int | None = None
    n_images: int | None = None
    n_subsample: int | None = None
    subsample_seed: int | None = None
    neighbor_count: int = 4
    debug: bool = False
    output_dir: Path = field(default_factory=lambda: Path("inference_outputs"))
    # Nov-2025 additions
    enable_oversampling: bool = False
    neighbor_pool_size: int | None = None
    backend: Literal["tensorflow", "pytorch"] = "tensorflow"

    def __post_init__(self) -> None:
        _resolve_n_images(self, "InferenceConfig")
        for name in ("model_path", "test_data_file", "output_dir"):
            object.__setattr__(
                self, name, as_optional_path("InferenceConfig", name, getattr(self, name))
            )


SpecConfig = ModelConfig | TrainingConfig | InferenceConfig


def _resolve_n_images(cfg: TrainingConfig | InferenceConfig, owner: str) -> None:
    """Upstream's deprecation: ``n_images`` set and ``n_groups`` None -> warn, copy it over."""
    if cfg.n_images is not None and cfg.n_groups is None:
        warnings.warn(
            f"{owner}.n_images is deprecated; use n_groups (n_images={cfg.n_images} is taken "
            "as n_groups)",
            DeprecationWarning,
            stacklevel=4,
        )
        object.__setattr__(cfg, "n_groups", cfg.n_images)


def field_names(cls: type) -> tuple[str, ...]:
    """The dataclass field names of ``cls`` in declaration order."""
    return tuple(f.name for f in fields(cls))


def validate_model_config(config: ModelConfig) -> None:
    """Raise ValueError naming the field if ``config`` breaks a rule of specs/CFG.md.

    Upstream rules: gridsize > 0, n_filters_scale > 0, probe_scale > 0,
    gaussian_smoothing_sigma >= 0, architecture in the accepted set. Added here: N in
    {64, 128, 256}, model_type and amp_activation in their sets, flags are bools.
    """
    owner = "ModelConfig"
    if not isinstance(config, ModelConfig):
        raise ValueError(f"expected a spec ModelConfig, got {type(config).__name__}")
    check_int(owner, "gridsize", config.gridsize, minimum=1)
    check_int(owner, "n_filters_scale", config.n_filters_scale, minimum=1)
    check_number(owner, "probe_scale", config.probe_scale, positive=True)
    check_number(owner, "gaussian_smoothing_sigma", config.gaussian_smoothing_sigma,
                 non_negative=True)
    if config.architecture in UPSTREAM_ONLY_ARCHITECTURES:
        raise ValueError(
            f"ModelConfig.architecture={config.architecture!r} is an upstream FNO generator that "
            f"this PyTorch package does not provide; accepted values: {ARCHITECTURES}"
        )
    check_choice(owner, "architecture", config.architecture, ARCHITECTURES)
    check_int(owner, "N", config.N)
    check_choice(owner, "N", config.N, N_VALUES)
    check_choice(owner, "model_type", config.model_type, MODEL_TYPES)
    check_choice(owner, "amp_activation", config.amp_activation, AMP_ACTIVATIONS)
    for name in ("object_big", "probe_big", "probe_mask", "pad_object"):
        check_bool(owner, name, getattr(config, name))
    check_number(owner, "probe_mask_sigma", config.probe_mask_sigma, non_negative=True)
    for name in ("fno_modes", "fno_width", "fno_blocks", "fno_cnn_blocks"):
        check_int(owner, name, getattr(config, name), minimum=1)
    for name in ("generator_output_mode", "cnn_output_mode"):
        check_choice(owner, name, getattr(config, name), OUTPUT_MODES)
    for name in ("cbam_encoder", "cbam_bottleneck", "cbam_decoder", "eca_encoder",
                 "eca_decoder"):
        check_bool(owner, name, getattr(config, name))
    check_number(owner, "probe_mask_diameter", config.probe_mask_diameter, positive=True,
                 optional=True)


def _validate_backend(owner: str, backend: Any) -> None:
    if backend not in BACKENDS:
        raise ValueError(
            f"Invalid backend: {backend!r}. {owner}.backend must be 'tensorflow' or 'pytorch'."
        )


def _validate_sampling(owner: str, cfg: TrainingConfig | InferenceConfig) -> None:
    check_int(owner, "n_groups", cfg.n_groups, minimum=1, optional=True)
    check_int(owner, "n_images", cfg.n_images, minimum=1, optional=True)
    check_int(owner, "n_subsample", cfg.n_subsample, minimum=1, optional=True)
    check_int(owner, "subsample_seed", cfg.subsample_seed, optional=True)
    check_int(owner, "neighbor_count", cfg.neighbor_count, minimum=1)
    check_int(owner, "neighbor_pool_size", cfg.neighbor_pool_size, minimum=1, optional=True)
    check_bool(owner, "enable_oversampling", cfg.enable_oversampling)
    _validate_backend(owner, cfg.backend)


def validate_training_config(config: TrainingConfig) -> None:
    """Raise ValueError naming the field if ``config`` breaks a rule of specs/CFG.md.

    Upstream rules: batch_size a positive power of 2, nepochs > 0, mae_weight and nll_weight
    in [0, 1], nphotons > 0, backend in {tensorflow, pytorch}, torch_loss_mode in
    {poisson, mae}, supervised models need torch_loss_mode 'mae'. Also checks the model.
    """
    owner = "TrainingConfig"
    if not isinstance(config, TrainingConfig):
        raise ValueError(f"expected a spec TrainingConfig, got {type(config).__name__}")
    validate_model_config(config.model)
    bs = config.batch_size
    if isinstance(bs, bool) or not isinstance(bs, int) or bs <= 0 or bs & (bs - 1):
        raise ValueError(
            f"TrainingConfig.batch_size must be positive power of 2, got {bs!r} "
            "(e.g. 8, 16, 32)"
        )
    check_int(owner, "nepochs", config.nepochs, minimum=1)
    check_number(owner, "mae_weight", config.mae_weight, unit_interval=True)
    check_number(owner, "nll_weight", config.nll_weight, unit_interval=True)
    check_number(owner, "realspace_mae_weight", config.realspace_mae_weight, non_negative=True)
    check_number(owner, "realspace_weight", config.realspace_weight, non_negative=True)
    check_number(owner, "nphotons", config.nphotons, positive=True)
    _validate_sampling(owner, config)
    check_torch_loss_mode(config.torch_loss_mode)
    if config.model.model_type == "supervised" and config.torch_loss_mode != "mae":
        raise ValueError(
            "Supervised mode requires torch_loss_mode='mae' (TrainingConfig.torch_loss_mode="
            f"{config.torch_loss_mode!r} with ModelConfig.model_type='supervised')."
        )
    for name in ("positions_provided", "probe_trainable", "intensity_scale_trainable",
                 "sequential_sampling", "torch_mae_pred_l2_match_target"):
        check_bool(owner, name, getattr(config, name))
    check_number(owner, "gradient_clip_val", config.gradient_clip_val, positive=True,
                 optional=True)
    check_choice(owner, "gradient_clip_algorithm", config.gradient_clip_algorithm,
                 GRADIENT_CLIP_ALGORITHMS)
    check_choice(owner, "optimizer", config.optimizer, OPTIMIZERS)
    check_choice(owner, "scheduler", config.scheduler, SCHEDULERS)
    check_number(owner, "momentum", config.momentum, non_negative=True)
    check_number(owner, "weight_decay", config.weight_decay, non_negative=True)
    for name in ("adam_beta1", "adam_beta2"):
        value = getattr(config, name)
        check_number(owner, name, value, unit_interval=True)
        if value == 1.0:
            raise ValueError(f"TrainingConfig.{name}={value!r} must lie in [0, 1)")
    check_int(owner, "lr_warmup_epochs", config.lr_warmup_epochs, minimum=0)
    check_number(owner, "lr_min_ratio", config.lr_min_ratio, unit_interval=True)
    check_number(owner, "plateau_factor", config.plateau_factor, positive=True)
    check_int(owner, "plateau_patience", config.plateau_patience, minimum=0)
    check_number(owner, "plateau_min_lr", config.plateau_min_lr, non_negative=True)
    check_number(owner, "plateau_threshold", config.plateau_threshold, non_negative=True)


def model_path_candidates(model_path: Path) -> list[Path]:
    """The paths :func:`validate_inference_config` tries for ``model_path``, in order."""
    candidates = [model_path, Path(f"{model_path}.zip")]
    if not model_path.name.endswith(".h5"):
        candidates.append(Path(f"{model_path}.h5.zip"))
    return candidates


def validate_inference_config(config: InferenceConfig, *, check_files: bool = True) -> None:
    """Raise ValueError naming the field if ``config`` breaks a rule of specs/CFG.md.

    With ``check_files`` (the default, as upstream) ``model_path`` must be a directory holding
    ``wts.h5.zip`` or an existing archive path (``.zip`` and ``.h5.zip`` are also tried).
    """
    owner = "InferenceConfig"
    if not isinstance(config, InferenceConfig):
        raise ValueError(f"expected a spec InferenceConfig, got {type(config).__name__}")
    validate_model_config(config.model)
    _validate_sampling(owner, config)
    check_bool(owner, "debug", config.debug)
    if config.model_path is None:
        raise ValueError("InferenceConfig.model_path is required (a model directory or archive)")
    if config.test_data_file is None:
        raise ValueError("InferenceConfig.test_data_file is required (an NPZ file)")
    if not check_files:
        return
    path = Path(config.model_path)
    if path.is_dir():
        if not (path / ARCHIVE_NAME).is_file():
            raise ValueError(
                f"Model archive not found: {path / ARCHIVE_NAME} "
                f"(InferenceConfig.model_path={str(path)!r} is a directory without {ARCHIVE_NAME})"
            )
        return
    candidates = model_path_candidates(path)
    if not any(c.exists() for c in candidates):
        raise ValueError(
            f"model_path does not exist: {path} (also checked "
            + ", ".join(str(c) for c in candidates[1:])
            + "); InferenceConfig.model_path must name a model directory or its wts.h5.zip"
        )


__all__ = [
    # the choice constants live in config.choices; re-exported here for existing callers
    "AMP_ACTIVATIONS", "ARCHITECTURES", "ARCHIVE_NAME", "BACKENDS", "DEFAULT_TRAINING_N_GROUPS",
    "GRADIENT_CLIP_ALGORITHMS", "MODEL_TYPES", "N_VALUES", "OPTIMIZERS", "OUTPUT_MODES",
    "SCHEDULERS", "TORCH_LOSS_MODES", "UPSTREAM_ONLY_ARCHITECTURES",
    "InferenceConfig", "ModelConfig", "SpecConfig", "TrainingConfig", "field_names",
    "model_path_candidates", "validate_inference_config", "validate_model_config",
    "validate_training_config",
]
