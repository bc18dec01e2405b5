"""PyTorch-side configuration: ``DataConfig``, ``ModelConfig``, ``TrainingConfig``,
``InferenceConfig`` (upstream ``ptycho_torch/config_params.py``, Oct-2025 plus the Nov-2025
additions, reference §6.4) and ``ExecutionConfig`` (upstream ``PyTorchExecutionConfig``,
reference §6.1).

Names and defaults are upstream's. Unlike upstream, the fields that upstream types as a
``Literal`` are checked when an instance is built (a ValueError naming the field, the value and
the accepted values), so that a typo never reaches the engine. The dataclasses stay mutable as
upstream's; :mod:`ptychodus_pinn_torch.config.bridge` re-checks what it reads.

This module imports the standard library only: ``ModelConfig.probe_mask`` holds None, a bool or
an array-like mask of shape (N, N) without this module looking inside it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ptychodus_pinn_torch.config.checks import (
    as_optional_path,
    check_bool,
    check_choice,
    check_int,
    check_number,
    check_torch_loss_mode,
)
from ptychodus_pinn_torch.config.choices import ARCHITECTURES, OUTPUT_MODES, PT_AMP_ACTIVATIONS

MODES: tuple[str, ...] = ("Unsupervised", "Supervised")
NEIGHBOR_FUNCTIONS: tuple[str, ...] = ("Nearest", "Min_dist", "4_quadrant")
SCAN_PATTERNS: tuple[str, ...] = ("Isotropic", "Rectangular")
NORMALIZE_MODES: tuple[str, ...] = ("Group", "Batch")
DATA_SCALINGS: tuple[str, ...] = ("Parseval", "Max")
LOSS_FUNCTIONS: tuple[str, ...] = ("MAE", "Poisson")
REGULARIZER_LOSSES: tuple[str | None, ...] = ("Total_Variation", "Mean_Deviation", None)
PT_SCHEDULERS: tuple[str, ...] = ("Default", "Exponential", "MultiStage", "Adaptive")
#: upstream Nov-2025 also lists 'tpu'; HEAD rejects it with its own message, as we do.
ACCELERATORS: tuple[str, ...] = ("auto", "cpu", "gpu", "cuda", "mps")
CHECKPOINT_MODES: tuple[str, ...] = ("min", "max")


def invalid_mode_error(mode: Any) -> ValueError:
    """The error for a ``ModelConfig.mode`` outside {Unsupervised, Supervised}."""
    return ValueError(
        f"Invalid mode {mode!r}. Must be 'Unsupervised' or 'Supervised' (ModelConfig.mode)."
    )


def unknown_activation_error(activation: Any) -> ValueError:
    """The error for an activation the bridge cannot map."""
    return ValueError(
        f"Unknown activation {activation!r}. Supported values: {list(PT_AMP_ACTIVATIONS)} "
        "(ModelConfig.amp_activation)."
    )


def _pair(owner: str, name: str, value: Any, *, integer: bool) -> tuple[Any, Any]:
    """Coerce a 2-sequence (a JSON list, say) to a tuple; ValueError otherwise."""
    if isinstance(value, str) or not hasattr(value, "__len__") or len(value) != 2:
        raise ValueError(f"{owner}.{name}={value!r} must be a pair, e.g. (2, 2)")
    a, b = value
    for item in (a, b):
        if integer:
            check_int(owner, name, item, minimum=1)
        else:
            check_number(owner, name, item)
    return (a, b)


@dataclass
class DataConfig:
    """Data and grouping settings. ``N`` patch size (pixels), ``C`` channels per group,
    ``K`` neighbours searched per group, ``grid_size`` (rows, cols) of a group,
    ``n_subsample`` a coordinate-subsampling *factor* (not TF's sample count)."""

    nphotons: float = 1e5
    N: int = 64
    C: int = 4
    K: int = 6
    K_quadrant: int = 30
    n_subsample: int = 7
    grid_size: tuple[int, int] = (2, 2)
    neighbor_function: str = "Nearest"
    min_neighbor_distance: float = 0.0
    max_neighbor_distance: float = 3.0
    scan_pattern: str = "Isotropic"
    normalize: str = "Batch"
    probe_scale: float = 1.0
    probe_normalize: bool = True
    data_scaling: str = "Parseval"
    phase_subtraction: bool = True
    x_bounds: tuple[float, float] = (0.1, 0.9)
    y_bounds: tuple[float, float] = (0.1, 0.9)
    # Nov-2025 addition
    subsample_seed: int | None = None

    def __post_init__(self) -> None:
        o = "DataConfig"
        self.grid_size = _pair(o, "grid_size", self.grid_size, integer=True)
        self.x_bounds = _pair(o, "x_bounds", self.x_bounds, integer=False)
        self.y_bounds = _pair(o, "y_bounds", self.y_bounds, integer=False)
        check_number(o, "nphotons", self.nphotons, positive=True)
        for name in ("N", "C", "K", "K_quadrant", "n_subsample"):
            check_int(o, name, getattr(self, name), minimum=1)
        check_int(o, "subsample_seed", self.subsample_seed, optional=True)
        check_choice(o, "neighbor_function", self.neighbor_function, NEIGHBOR_FUNCTIONS)
        check_choice(o, "scan_pattern", self.scan_pattern, SCAN_PATTERNS)
        check_choice(o, "normalize", self.normalize, NORMALIZE_MODES)
        check_choice(o, "data_scaling", self.data_scaling, DATA_SCALINGS)
        check_number(o, "probe_scale", self.probe_scale, positive=True)
        for name in ("probe_normalize", "phase_subtraction"):
            check_bool(o, name, getattr(self, name))


@dataclass
class ModelConfig:
    """Network settings. ``mode`` 'Unsupervised' (PINN) or 'Supervised'; ``C_model`` and
    ``C_forward`` channel counts; ``probe_mask`` None, a bool, or an (N, N) mask array."""

    mode: str = "Unsupervised"
    intensity_scale_trainable: bool = False
    intensity_scale: float = 10000.0
    max_position_jitter: int = 10
    C_model: int = 1
    n_filters_scale: int = 2
    amp_activation: str = "silu"
    batch_norm: bool = False
    probe_mask: Any = None
    edge_pad: int = 10
    decoder_last_c_outer_fraction: float = 0.125
    decoder_last_amp_channels: int = 1
    eca_encoder: bool = False
    cbam_encoder: bool = False
    cbam_bottleneck: bool = False
    cbam_decoder: bool = False
    eca_decoder: bool = False
    spatial_decoder: bool = False
    decoder_spatial_kernel: int = 7
    object_big: bool = False
    probe_big: bool = True
    offset: int = 6
    C_forward: int = 4
    loss_function: str = "Poisson"
    amp_loss: str | None = None
    phase_loss: str | None = None
    amp_loss_coeff: float = 1.0
    phase_loss_coeff: float = 1.0
    # Nov-2025 additions
    pad_object: bool = True
    gaussian_smoothing_sigma: float = 0.0
    # HEAD generator-registry fields (specs/MODEL.md MODEL-222)
    architecture: str = "cnn"
    fno_modes: int = 12
    fno_width: int = 32
    fno_blocks: int = 4
    fno_cnn_blocks: int = 2
    cnn_output_mode: str = "amp_phase"
    generator_output_mode: str = "real_imag"

    def __post_init__(self) -> None:
        o = "ModelConfig"
        check_choice(o, "architecture", self.architecture, ARCHITECTURES)
        for name in ("cnn_output_mode", "generator_output_mode"):
            check_choice(o, name, getattr(self, name), OUTPUT_MODES)
        for name in ("fno_modes", "fno_width", "fno_blocks", "fno_cnn_blocks"):
            check_int(o, name, getattr(self, name), minimum=1)
        if self.mode not in MODES:
            raise invalid_mode_error(self.mode)
        if self.amp_activation not in PT_AMP_ACTIVATIONS:
            raise unknown_activation_error(self.amp_activation)
        check_choice(o, "loss_function", self.loss_function, LOSS_FUNCTIONS)
        check_choice(o, "amp_loss", self.amp_loss, REGULARIZER_LOSSES)
        check_choice(o, "phase_loss", self.phase_loss, REGULARIZER_LOSSES)
        for name in ("C_model", "n_filters_scale", "C_forward", "decoder_last_amp_channels",
                     "decoder_spatial_kernel"):
            check_int(o, name, getattr(self, name), minimum=1)
        for name in ("max_position_jitter", "edge_pad", "offset"):
            check_int(o, name, getattr(self, name), minimum=0)
        for name in ("intensity_scale_trainable", "batch_norm", "eca_encoder", "cbam_encoder",
                     "cbam_bottleneck", "cbam_decoder", "eca_decoder", "spatial_decoder",
                     "object_big", "probe_big", "pad_object"):
            check_bool(o, name, getattr(self, name))
        check_number(o, "intensity_scale", self.intensity_scale, positive=True)
        check_number(o, "gaussian_smoothing_sigma", self.gaussian_smoothing_sigma,
                     non_negative=True)


@dataclass
class TrainingConfig:
    """Training-loop settings. ``epochs`` passes over the data, ``nll`` whether the Poisson
    NLL is used, ``n_groups`` the number of groups drawn from the training file."""

    training_directories: list[str] = field(default_factory=list)
    nll: bool = True
    device: str = "cuda"
    strategy: str = "ddp"
    n_devices: int = 1
    learning_rate: float = 1e-3
    epochs: int = 50
    batch_size: int = 16
    epochs_fine_tune: int = 0
    fine_tune_gamma: float = 0.1
    scheduler: str = "Default"
    num_workers: int = 4
    accum_steps: int = 1
    gradient_clip_val: float | None = None
    stage_1_epochs: int = 0
    stage_2_epochs: int = 0
    stage_3_epochs: int = 0
    physics_weight_schedule: str = "cosine"
    stage_3_lr_factor: float = 0.1
    experiment_name: str = "Synthetic_Runs"
    notes: str = ""
    model_name: str = "PtychoPINNv2"
    # Nov-2025 additions
    torch_loss_mode: str = "poisson"
    train_data_file: Path | None = None
    test_data_file: Path | None = None
    output_dir: Path = field(default_factory=lambda: Path("training_outputs"))
    n_groups: int | None = None

    def __post_init__(self) -> None:
        o = "TrainingConfig"
        check_bool(o, "nll", self.nll)
        check_choice(o, "scheduler", self.scheduler, PT_SCHEDULERS)
        check_torch_loss_mode(self.torch_loss_mode)
        check_number(o, "learning_rate", self.learning_rate, positive=True)
        for name in ("n_devices", "epochs", "batch_size", "accum_steps"):
            check_int(o, name, getattr(self, name), minimum=1)
        for name in ("epochs_fine_tune", "num_workers", "stage_1_epochs", "stage_2_epochs",
                     "stage_3_epochs"):
            check_int(o, name, getattr(self, name), minimum=0)
        check_number(o, "gradient_clip_val", self.gradient_clip_val, positive=True,
                     optional=True)
        check_int(o, "n_groups", self.n_groups, minimum=1, optional=True)
        for name in ("train_data_file", "test_data_file", "output_dir"):
            setattr(self, name, as_optional_path(o, name, getattr(self, name)))
        if not isinstance(self.training_directories, list):
            self.training_directories = list(self.training_directories)


@dataclass
class InferenceConfig:
    """Inference settings of the PyTorch side (not read by the bridge). ``middle_trim`` pixels
    trimmed from each patch edge when stitching, ``batch_size`` groups per forward pass."""

    middle_trim: int = 32
    batch_size: int = 1000
    experiment_number: int = 0
    pad_eval: bool = True
    window: int = 20

    def __post_init__(self) -> None:
        o = "InferenceConfig"
        check_int(o, "middle_trim", self.middle_trim, minimum=0)
        check_int(o, "batch_size", self.batch_size, minimum=1)
        check_int(o, "experiment_number", self.experiment_number, minimum=0)
        check_bool(o, "pad_eval", self.pad_eval)
        check_int(o, "window", self.window, minimum=0)


@dataclass
class ExecutionConfig:
    """Runtime knobs that never reach the legacy params dict (upstream
    ``PyTorchExecutionConfig``, Nov-2025). Validated on construction (upstream's rules)."""

    accelerator: str = "auto"
    strategy: str = "auto"
    deterministic: bool = True
    gradient_clip_val: float | None = None
    accum_steps: int = 1
    num_workers: int = 0
    pin_memory: bool = False
    persistent_workers: bool = False
    prefetch_factor: int | None = None
    learning_rate: float = 1e-3
    scheduler: str = "Default"
    enable_progress_bar: bool = False
    enable_checkpointing: bool = True
    checkpoint_save_top_k: int = 1
    checkpoint_monitor_metric: str = "val_loss"
    checkpoint_mode: str = "min"
    early_stop_patience: int = 100
    logger_backend: str | None = "csv"
    inference_batch_size: int | None = None
    middle_trim: int = 0
    pad_eval: bool = False

    def __post_init__(self) -> None:
        o = "ExecutionConfig"
        _check_accelerator(self.accelerator)
        check_int(o, "num_workers", self.num_workers, minimum=0)
        check_number(o, "learning_rate", self.learning_rate, positive=True)
        check_int(o, "inference_batch_size", self.inference_batch_size, minimum=1, optional=True)
        check_int(o, "accum_steps", self.accum_steps, minimum=1)
        check_int(o, "checkpoint_save_top_k", self.checkpoint_save_top_k, minimum=0)
        check_int(o, "early_stop_patience", self.early_stop_patience, minimum=1)
        check_choice(o, "checkpoint_mode", self.checkpoint_mode, CHECKPOINT_MODES)
        check_int(o, "prefetch_factor", self.prefetch_factor, minimum=1, optional=True)
        check_number(o, "gradient_clip_val", self.gradient_clip_val, positive=True,
                     optional=True)
        check_int(o, "middle_trim", self.middle_trim, minimum=0)
        for name in ("deterministic", "pin_memory", "persistent_workers",
                     "enable_progress_bar", "enable_checkpointing", "pad_eval"):
            check_bool(o, name, getattr(self, name))


def _check_accelerator(accelerator: Any) -> None:
    if accelerator == "tpu":
        raise ValueError(
            "ExecutionConfig.accelerator='tpu' is not supported by the PyTorch backend; "
            "use 'auto', 'cpu', 'gpu', 'cuda' or 'mps'"
        )
    check_choice("ExecutionConfig", "accelerator", accelerator, ACCELERATORS)


def resolve_accelerator(accelerator: str, *, cuda_available: bool) -> str:
    """Resolve ``ExecutionConfig.accelerator`` to the device kind to use.

    'auto' becomes 'cuda' when ``cuda_available`` else 'cpu' with a UserWarning (upstream
    POLICY-001); 'gpu' becomes 'cuda'; others pass through. The caller (the engine) supplies
    ``cuda_available`` from ``torch.cuda.is_available()`` so this module never imports torch.
    """
    _check_accelerator(accelerator)
    if accelerator == "auto":
        if cuda_available:
            return "cuda"
        warnings.warn(
            "ExecutionConfig.accelerator='auto' found no CUDA device; running on CPU "
            "(POLICY-001). Set accelerator='cpu' to silence this.",
            UserWarning,
            stacklevel=2,
        )
        return "cpu"
    if accelerator == "gpu":
        return "cuda"
    return accelerator
