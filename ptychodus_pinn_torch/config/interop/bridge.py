"""Translate between the PyTorch dataclasses (:mod:`.params`) and the TF-style spec
dataclasses (:mod:`.spec`).

PyTorch -> spec: :func:`to_model_config`, :func:`to_training_config`,
:func:`to_inference_config` follow upstream ``ptycho_torch/config_bridge.py`` (reference §6.5,
MUST-raise rules §8A). Spec -> PyTorch (which upstream lacks): :func:`from_spec` returns a
:class:`PyTorchConfigs` whose ``overrides`` carry the spec fields the PyTorch dataclasses cannot
hold, so that ``to_*(..., overrides=configs.overrides.<part>)`` gives the spec configs back.
:func:`to_engine_config` goes on to the engine's one configuration (with the PyTorch
``TrainingConfig`` learning rate, device and accumulation, and an optional ``ExecutionConfig``).

Every PyTorch field is carried, refused by name (``ValueError``) or, where upstream's bridge
ignores it as well, warned about (``UserWarning`` naming it) when set away from its default;
``config.fields`` records which (specs/CFG.md CFG-100).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ptychodus_pinn_torch.config import spec
from ptychodus_pinn_torch.config.engine import EngineConfig
from ptychodus_pinn_torch.config.fields import check_supported, default_of, warn_uncarried
from ptychodus_pinn_torch.config.interop import params as pt

#: PyTorch mode -> spec model_type, and back.
MODE_TO_MODEL_TYPE: Mapping[str, str] = {"Unsupervised": "pinn", "Supervised": "supervised"}
MODEL_TYPE_TO_MODE: Mapping[str, str] = {v: k for k, v in MODE_TO_MODEL_TYPE.items()}
#: PyTorch activation -> spec activation (silu is TF's swish).
ACTIVATION_TO_SPEC: Mapping[str, str] = {
    "silu": "swish", "SiLU": "swish", "swish": "swish",
    "sigmoid": "sigmoid", "softplus": "softplus", "relu": "relu",
}
#: spec activation -> PyTorch activation.
ACTIVATION_TO_TORCH: Mapping[str, str] = {
    "swish": "silu", "sigmoid": "sigmoid", "softplus": "softplus", "relu": "relu",
}
#: spec torch_loss_mode -> PyTorch ModelConfig.loss_function.
LOSS_MODE_TO_LOSS_FUNCTION: Mapping[str, str] = {"poisson": "Poisson", "mae": "MAE"}
#: the PyTorch nphotons default that differs from the TF one (1e9).
PT_DEFAULT_NPHOTONS = 1e5
TF_DEFAULT_NPHOTONS = 1e9

#: generator-registry fields with the same name and meaning in both ModelConfigs (MODEL-222).
GENERATOR_FIELDS: tuple[str, ...] = (
    "architecture", "fno_modes", "fno_width", "fno_blocks", "fno_cnn_blocks",
    "cnn_output_mode", "generator_output_mode", "cbam_encoder", "cbam_bottleneck",
    "cbam_decoder", "eca_encoder", "eca_decoder",
)
#: PyTorch TrainingConfig fields of multi-stage training, carried to the EngineConfig as named.
STAGE_FIELDS: tuple[str, ...] = (
    "stage_1_epochs", "stage_2_epochs", "stage_3_epochs", "physics_weight_schedule",
    "stage_3_lr_factor",
)
#: spec fields the PyTorch dataclasses carry (spec -> PyTorch -> spec is the identity on them).
MODEL_CARRIED: tuple[str, ...] = (
    "N", "gridsize", "n_filters_scale", "model_type", "amp_activation", "object_big",
    "probe_big", "probe_mask", "pad_object", "probe_scale", "gaussian_smoothing_sigma",
    *GENERATOR_FIELDS,
)
TRAINING_CARRIED: tuple[str, ...] = (
    "model", "train_data_file", "test_data_file", "batch_size", "nepochs", "nphotons",
    "n_groups", "subsample_seed", "neighbor_count", "intensity_scale_trainable", "output_dir",
    "torch_loss_mode", "gradient_clip_val",
)
INFERENCE_CARRIED: tuple[str, ...] = ("model", "neighbor_count")
#: spec fields that only travel through ``overrides`` (PyTorch has no faithful place for them).
MODEL_NOT_CARRIED: tuple[str, ...] = tuple(
    n for n in spec.field_names(spec.ModelConfig) if n not in MODEL_CARRIED
)
TRAINING_NOT_CARRIED: tuple[str, ...] = tuple(
    n for n in spec.field_names(spec.TrainingConfig) if n not in TRAINING_CARRIED
)
INFERENCE_NOT_CARRIED: tuple[str, ...] = tuple(
    n for n in spec.field_names(spec.InferenceConfig) if n not in INFERENCE_CARRIED
)


def _check_type(name: str, value: Any, cls: type) -> None:
    if not isinstance(value, cls):
        raise ValueError(
            f"{name} must be a {cls.__module__}.{cls.__qualname__}, got {type(value).__name__}"
        )


def _apply_overrides(kwargs: dict[str, Any], overrides: Mapping[str, Any] | None,
                     target: type) -> dict[str, Any]:
    """``kwargs.update(overrides)``; unknown keys are a ValueError naming them."""
    if overrides is None:
        return kwargs
    if not isinstance(overrides, Mapping):
        raise ValueError(f"overrides must be a dict of {target.__name__} fields, got "
                         f"{type(overrides).__name__}")
    known = set(spec.field_names(target))
    unknown = sorted(str(k) for k in overrides if k not in known)
    if unknown:
        raise ValueError(
            f"unknown {target.__name__} field(s) in overrides: {unknown}; accepted: "
            f"{sorted(known)}"
        )
    kwargs.update(overrides)
    return kwargs


def probe_mask_to_spec(probe_mask: Any) -> bool:
    """PyTorch ``probe_mask`` -> spec bool: None -> False, a bool as is, any mask -> True."""
    if probe_mask is None:
        return False
    if isinstance(probe_mask, bool):
        return probe_mask
    return True


def to_model_config(data: pt.DataConfig, model: pt.ModelConfig,
                    overrides: Mapping[str, Any] | None = None) -> spec.ModelConfig:
    """PyTorch (DataConfig, ModelConfig) -> spec ModelConfig (upstream rules, §6.5).

    ``grid_size`` must be square (gridsize = its side); mode Unsupervised/Supervised ->
    pinn/supervised; silu/SiLU -> swish; ``probe_scale`` is DataConfig's (not checked against
    the TF default 4.0); ``overrides`` are applied last. N is not validated here.
    """
    _check_type("data", data, pt.DataConfig)
    _check_type("model", model, pt.ModelConfig)
    h, w = tuple(data.grid_size)
    if h != w:
        raise ValueError(
            f"Non-square grids not supported by TensorFlow backend: grid_size=({h}, {w}). "
            "Use square grids (e.g., (2, 2)) in DataConfig.grid_size."
        )
    if model.mode not in MODE_TO_MODEL_TYPE:
        raise pt.invalid_mode_error(model.mode)
    if model.amp_activation not in ACTIVATION_TO_SPEC:
        raise pt.unknown_activation_error(model.amp_activation)
    kwargs: dict[str, Any] = dict(
        N=data.N,
        gridsize=h,
        n_filters_scale=model.n_filters_scale,
        model_type=MODE_TO_MODEL_TYPE[model.mode],
        amp_activation=ACTIVATION_TO_SPEC[model.amp_activation],
        object_big=model.object_big,
        probe_big=model.probe_big,
        probe_mask=probe_mask_to_spec(model.probe_mask),
        pad_object=model.pad_object,
        probe_scale=data.probe_scale,
        gaussian_smoothing_sigma=model.gaussian_smoothing_sigma,
        **{name: getattr(model, name) for name in GENERATOR_FIELDS},
    )
    config = spec.ModelConfig(**_apply_overrides(kwargs, overrides, spec.ModelConfig))
    _warn_model_inputs(data, model)
    return config


def _warn_model_inputs(data: pt.DataConfig, model: pt.ModelConfig) -> None:
    """Warn about the DataConfig/ModelConfig fields no translator carries. The channel counts
    only when they contradict ``grid_size`` (they are gridsize**2 here)."""
    warn_uncarried(data, skip=("C",))
    warn_uncarried(model, skip=("C_model", "C_forward", "loss_function"))
    c = int(data.grid_size[0]) * int(data.grid_size[1])
    for obj, name in ((data, "C"), (model, "C_model"), (model, "C_forward")):
        owner = type(obj).__name__
        value = getattr(obj, name)
        if value != default_of(type(obj), name) and value != c:
            warnings.warn(
                f"{owner}.{name}={value!r} has no effect here (the bridge does not carry it): "
                f"the channels are gridsize**2 = {c} from DataConfig.grid_size",
                UserWarning,
                stacklevel=3,
            )


def to_training_config(model: spec.ModelConfig, data: pt.DataConfig, pt_model: pt.ModelConfig,
                       training: pt.TrainingConfig,
                       overrides: Mapping[str, Any] | None = None) -> spec.TrainingConfig:
    """PyTorch configs -> spec TrainingConfig (upstream rules, §6.5).

    After the overrides, in this order: nphotons still at the PyTorch default 1e5 without an
    explicit ``nphotons`` override -> ValueError; ``n_groups`` None -> ValueError;
    ``test_data_file`` None -> one UserWarning; ``train_data_file`` None -> ValueError (the
    spec dataclass turns str paths into Path). ``n_subsample`` is never copied from DataConfig
    (a factor there, a count here).
    """
    _check_type("model", model, spec.ModelConfig)
    _check_type("data", data, pt.DataConfig)
    _check_type("pt_model", pt_model, pt.ModelConfig)
    _check_type("training", training, pt.TrainingConfig)
    overrides = _apply_overrides({}, overrides, spec.TrainingConfig)  # a checked copy
    check_supported(training, where="the bridge")
    warn_uncarried(training)
    if pt_model.loss_function != LOSS_MODE_TO_LOSS_FUNCTION[training.torch_loss_mode]:
        warnings.warn(
            f"ModelConfig.loss_function={pt_model.loss_function!r} has no effect here (the "
            f"bridge does not carry it): the objective follows TrainingConfig.torch_loss_mode="
            f"{training.torch_loss_mode!r}",
            UserWarning,
            stacklevel=2,
        )
    if training.scheduler not in spec.SCHEDULERS and "scheduler" not in overrides:
        raise ValueError(
            f"TrainingConfig.scheduler={training.scheduler!r} has no TF-style equivalent; "
            f"use one of {spec.SCHEDULERS} or pass overrides=dict(scheduler=...)"
        )
    kwargs: dict[str, Any] = dict(
        model=model,
        train_data_file=training.train_data_file,
        test_data_file=training.test_data_file,
        batch_size=training.batch_size,
        nepochs=training.epochs,
        mae_weight=0.0,
        nll_weight=1.0 if training.nll else 0.0,
        realspace_mae_weight=0.0,
        realspace_weight=0.0,
        nphotons=data.nphotons,
        n_groups=training.n_groups,
        n_subsample=None,
        subsample_seed=data.subsample_seed,
        neighbor_count=data.K,
        positions_provided=True,
        probe_trainable=False,
        intensity_scale_trainable=pt_model.intensity_scale_trainable,
        output_dir=training.output_dir or Path("training_outputs"),
        sequential_sampling=False,
        backend="pytorch",
        torch_loss_mode=training.torch_loss_mode,
        gradient_clip_val=training.gradient_clip_val,
    )
    if training.scheduler in spec.SCHEDULERS:
        kwargs["scheduler"] = training.scheduler
    kwargs.update(overrides)
    if "nphotons" not in overrides and data.nphotons == PT_DEFAULT_NPHOTONS:
        raise ValueError(
            f"nphotons default divergence detected: PyTorch default ({PT_DEFAULT_NPHOTONS}) "
            f"differs from TensorFlow default ({TF_DEFAULT_NPHOTONS}). Provide explicit nphotons "
            f"override to resolve: overrides=dict(..., nphotons={TF_DEFAULT_NPHOTONS})"
        )
    if kwargs.get("n_groups") is None:
        raise ValueError(
            "n_groups is required in overrides for TrainingConfig (PyTorch TrainingConfig."
            "n_groups is None). Provide as: overrides=dict(..., n_groups=512)"
        )
    if kwargs.get("test_data_file") is None:
        warnings.warn(
            "test_data_file not provided in TrainingConfig overrides; evaluation during "
            "training and later inference need one (overrides=dict(test_data_file=...))",
            UserWarning,
            stacklevel=2,
        )
    if kwargs.get("train_data_file") is None:
        raise ValueError(
            "train_data_file is required in overrides for TrainingConfig. Provide as: "
            "overrides=dict(train_data_file=Path('train.npz'))"
        )
    return spec.TrainingConfig(**kwargs)


def to_inference_config(model: spec.ModelConfig, data: pt.DataConfig,
                        inference: pt.InferenceConfig,
                        overrides: Mapping[str, Any] | None = None) -> spec.InferenceConfig:
    """PyTorch configs -> spec InferenceConfig (upstream rules, §6.5).

    ``neighbor_count`` = DataConfig.K, backend 'pytorch', paths and sampling None until given in
    ``overrides``; then ``model_path`` and ``test_data_file`` are required (ValueError). The
    PyTorch InferenceConfig's fields are not read.
    """
    _check_type("model", model, spec.ModelConfig)
    _check_type("data", data, pt.DataConfig)
    _check_type("inference", inference, pt.InferenceConfig)
    warn_uncarried(inference)
    kwargs: dict[str, Any] = dict(
        model=model,
        model_path=None,
        test_data_file=None,
        n_groups=None,
        n_subsample=None,
        subsample_seed=None,
        neighbor_count=data.K,
        debug=False,
        output_dir=Path("inference_outputs"),
        backend="pytorch",
    )
    _apply_overrides(kwargs, overrides, spec.InferenceConfig)
    if kwargs.get("model_path") is None:
        raise ValueError(
            "model_path is required in overrides for InferenceConfig. Provide as: "
            "overrides=dict(model_path=Path('model_dir'))"
        )
    if kwargs.get("test_data_file") is None:
        raise ValueError(
            "test_data_file is required in overrides for InferenceConfig. Provide as: "
            "overrides=dict(test_data_file=Path('test.npz'))"
        )
    return spec.InferenceConfig(**kwargs)


#: PyTorch TrainingConfig fields of fine-tuning, carried to the EngineConfig as named; they act
#: only with a model to start from (``init_model``), else EngineConfig refuses them by name.
FINE_TUNE_FIELDS: tuple[str, ...] = ("epochs_fine_tune", "fine_tune_gamma")


def to_engine_config(model: spec.ModelConfig, data: pt.DataConfig, pt_model: pt.ModelConfig,
                     training: pt.TrainingConfig,
                     execution: pt.ExecutionConfig | None = None,
                     overrides: Mapping[str, Any] | None = None, *,
                     init_model: str | None = None) -> EngineConfig:
    """PyTorch configs -> the engine's :class:`~ptychodus_pinn_torch.config.engine.EngineConfig`.

    The spec TrainingConfig is :func:`to_training_config`'s; the PyTorch TrainingConfig adds
    ``learning_rate``, ``accum_steps``, the stage fields (``stage_*_epochs``,
    ``physics_weight_schedule``, ``stage_3_lr_factor``), ``device`` (its default 'cuda'
    means 'auto': CUDA when there is one), ``training_directories`` (-> ``train_data_files``:
    one model over every scan they hold; the first stands in for a missing
    ``train_data_file``) and ``epochs_fine_tune``/``fine_tune_gamma``, which act with
    ``init_model`` (the model to fine-tune, a ``wts.h5.zip`` the PyTorch configs have no field
    for) and are refused by name without it (CFG-263). An ``ExecutionConfig`` overrides with its
    non-default values: ``accelerator`` (through ``params.resolve_accelerator``; 'auto'
    stays 'auto'),
    ``deterministic``, ``learning_rate``, ``accum_steps``, ``early_stop_patience``,
    ``gradient_clip_val`` and ``scheduler``; the rest of it is warned about.
    """
    if init_model is None:
        for name in FINE_TUNE_FIELDS:
            value, default = getattr(training, name), default_of(pt.TrainingConfig, name)
            if value != default:
                raise ValueError(
                    f"TrainingConfig.{name}={value!r} acts only with a model to fine-tune: pass "
                    "init_model='wts.h5.zip' to to_engine_config (pinn-torch train --init-model "
                    f"wts.h5.zip), or leave it at {default!r}")
    directories = [str(d) for d in training.training_directories]
    if directories and training.train_data_file is None and not (
            overrides and overrides.get("train_data_file") is not None):
        overrides = {**(overrides or {}), "train_data_file": directories[0]}
    training_spec = to_training_config(model, data, pt_model, training, overrides)
    engine: dict[str, Any] = {
        "learning_rate": training.learning_rate,
        "accum_steps": training.accum_steps,
        "device": "auto" if training.device == "cuda" else training.device,
        **{name: getattr(training, name) for name in STAGE_FIELDS},
        **{name: getattr(training, name) for name in FINE_TUNE_FIELDS},
        "train_data_files": tuple(directories),
        "init_model": None if init_model is None else str(init_model),
    }
    if execution is not None:
        _check_type("execution", execution, pt.ExecutionConfig)
        warn_uncarried(execution)
        default = pt.ExecutionConfig()
        changed = {f: getattr(execution, f) for f in (
            "accelerator", "deterministic", "learning_rate", "accum_steps",
            "early_stop_patience", "gradient_clip_val", "scheduler")
            if getattr(execution, f) != getattr(default, f)}
        if "accelerator" in changed:
            engine["device"] = pt.resolve_accelerator(execution.accelerator,
                                                      cuda_available=False)
        for name in ("deterministic", "learning_rate", "accum_steps", "early_stop_patience"):
            if name in changed:
                engine[name] = changed[name]
        spec_changes = {k: changed[k] for k in ("gradient_clip_val", "scheduler") if k in changed}
        if spec_changes:
            training_spec = dataclasses.replace(training_spec, **spec_changes)
    return EngineConfig(training=training_spec, **engine)


@dataclass(frozen=True)
class SpecOverrides:
    """The ``overrides`` dicts that give the spec configs back from :class:`PyTorchConfigs`."""

    model: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    inference: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PyTorchConfigs:
    """The PyTorch dataclasses made from spec configs by :func:`from_spec`."""

    data: pt.DataConfig
    model: pt.ModelConfig
    training: pt.TrainingConfig
    inference: pt.InferenceConfig
    overrides: SpecOverrides = field(default_factory=SpecOverrides)


def from_spec(model: spec.ModelConfig, training: spec.TrainingConfig | None = None,
              inference: spec.InferenceConfig | None = None) -> PyTorchConfigs:
    """Spec configs -> PyTorch dataclasses (the direction upstream's bridge lacks).

    The spec configs are validated first (``validate_inference_config`` without file checks).
    gridsize g -> grid_size (g, g), C = C_model = C_forward = g²; model_type pinn/supervised ->
    mode Unsupervised/Supervised; swish -> silu; neighbor_count -> K; nepochs -> epochs;
    nll_weight > 0 -> nll; torch_loss_mode -> torch_loss_mode and loss_function; nphotons,
    subsample_seed, paths and n_groups from training. Without training, nphotons is the TF
    default 1e9 and K the inference neighbor_count (else 4). ``overrides`` holds the spec fields
    PyTorch cannot carry (plus an explicit nphotons, which the bridge requires).
    """
    _check_type("model", model, spec.ModelConfig)
    spec.validate_model_config(model)
    if training is not None:
        _check_type("training", training, spec.TrainingConfig)
        if training.model != model:
            raise ValueError("training.model differs from model; pass the same ModelConfig")
        spec.validate_training_config(training)
    if inference is not None:
        _check_type("inference", inference, spec.InferenceConfig)
        if inference.model != model:
            raise ValueError("inference.model differs from model; pass the same ModelConfig")
        spec.validate_inference_config(inference, check_files=False)

    g = model.gridsize
    c = g * g
    if training is not None:
        k = training.neighbor_count
    elif inference is not None:
        k = inference.neighbor_count
    else:
        k = 4
    data = pt.DataConfig(
        nphotons=training.nphotons if training is not None else TF_DEFAULT_NPHOTONS,
        N=model.N,
        C=c,
        K=k,
        grid_size=(g, g),
        probe_scale=model.probe_scale,
        subsample_seed=training.subsample_seed if training is not None else None,
    )
    loss_mode = training.torch_loss_mode if training is not None else (
        "mae" if model.model_type == "supervised" else "poisson")
    pt_model = pt.ModelConfig(
        mode=MODEL_TYPE_TO_MODE[model.model_type],
        intensity_scale_trainable=(
            training.intensity_scale_trainable if training is not None else False),
        C_model=c,
        C_forward=c,
        n_filters_scale=model.n_filters_scale,
        amp_activation=ACTIVATION_TO_TORCH[model.amp_activation],
        probe_mask=model.probe_mask,
        object_big=model.object_big,
        probe_big=model.probe_big,
        loss_function=LOSS_MODE_TO_LOSS_FUNCTION[loss_mode],
        pad_object=model.pad_object,
        gaussian_smoothing_sigma=model.gaussian_smoothing_sigma,
        **{name: getattr(model, name) for name in GENERATOR_FIELDS},
    )
    if training is not None:
        pt_training = pt.TrainingConfig(
            nll=training.nll_weight > 0,
            epochs=training.nepochs,
            batch_size=training.batch_size,
            gradient_clip_val=training.gradient_clip_val,
            scheduler=training.scheduler if training.scheduler in pt.PT_SCHEDULERS else "Default",
            torch_loss_mode=training.torch_loss_mode,
            train_data_file=training.train_data_file,
            test_data_file=training.test_data_file,
            output_dir=training.output_dir,
            n_groups=training.n_groups,
        )
    else:
        pt_training = pt.TrainingConfig()
    overrides = SpecOverrides(
        model={n: getattr(model, n) for n in MODEL_NOT_CARRIED},
        training=(
            {n: getattr(training, n) for n in TRAINING_NOT_CARRIED}
            | {"nphotons": training.nphotons}
            if training is not None else {}
        ),
        inference=_inference_overrides(inference, k) if inference is not None else {},
    )
    return PyTorchConfigs(data, pt_model, pt_training, pt.InferenceConfig(), overrides)


def from_engine(config: EngineConfig) -> PyTorchConfigs:
    """The engine configuration -> PyTorch dataclasses: :func:`from_spec` of its spec configs,
    plus the EngineConfig fields the PyTorch TrainingConfig holds (``learning_rate``,
    ``accum_steps``, the stage fields, ``device`` ('auto' is PyTorch's 'cuda'),
    ``train_data_files`` -> ``training_directories``, ``epochs_fine_tune``,
    ``fine_tune_gamma``). ``init_model`` has no PyTorch field: pass it back to
    :func:`to_engine_config` (``init_model=``), which then gives ``config`` back on these
    fields (CFG-263)."""
    _check_type("config", config, EngineConfig)
    configs = from_spec(config.model, config.training)
    training = dataclasses.replace(
        configs.training,
        learning_rate=config.learning_rate,
        accum_steps=config.accum_steps,
        device="cuda" if config.device == "auto" else config.device,
        training_directories=list(config.train_data_files),
        **{name: getattr(config, name) for name in (*STAGE_FIELDS, *FINE_TUNE_FIELDS)},
    )
    return dataclasses.replace(configs, training=training)


def _inference_overrides(inference: spec.InferenceConfig, k: int) -> dict[str, Any]:
    out = {n: getattr(inference, n) for n in INFERENCE_NOT_CARRIED}
    if inference.neighbor_count != k:  # K came from the training config
        out["neighbor_count"] = inference.neighbor_count
    return out


def to_spec(configs: PyTorchConfigs, *, training: bool = True, inference: bool = True,
            ) -> tuple[spec.ModelConfig, spec.TrainingConfig | None, spec.InferenceConfig | None]:
    """:func:`to_model_config` / :func:`to_training_config` / :func:`to_inference_config` of
    ``configs`` with its overrides; training (inference) only if asked for and its overrides
    are non-empty, i.e. :func:`from_spec` was given one."""
    ov = configs.overrides
    model = to_model_config(configs.data, configs.model, ov.model)
    train_cfg = None
    if training and ov.training:
        train_cfg = to_training_config(model, configs.data, configs.model, configs.training,
                                       ov.training)
    infer_cfg = None
    if inference and ov.inference:
        infer_cfg = to_inference_config(model, configs.data, configs.inference, ov.inference)
    return model, train_cfg, infer_cfg


__all__ = [
    "PyTorchConfigs", "SpecOverrides", "from_engine", "from_spec", "to_engine_config",
    "to_inference_config",
    "to_model_config",
    "to_spec", "to_training_config", "probe_mask_to_spec",
]
