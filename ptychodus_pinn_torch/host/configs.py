"""Settings values -> the spec configs and engine options the engine trains with.

The settings keys are TF-style spec field names already (see :mod:`.settings`), so a spec
``ModelConfig``/``TrainingConfig`` (what the engine trains with) is built field by field,
validated with the config layer's upstream rules and translated through ``config.bridge``
(spec -> PyTorch dataclasses, :func:`pytorch_configs`); a violation is re-raised naming the
ptychodus setting to change.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ptychodus_pinn_torch.config.engine import EngineConfig
from ptychodus_pinn_torch.config.interop.bridge import PyTorchConfigs
from ptychodus_pinn_torch.config.spec import ModelConfig, TrainingConfig
from ptychodus_pinn_torch.host.settings import PARAMETERS, parameters_of_group

__all__ = ["MODEL_FIELDS", "TRAINING_FIELDS", "build_engine_config", "build_model_config",
           "build_training_config", "pytorch_configs", "setting_name", "with_setting_hint"]

#: spec ModelConfig / TrainingConfig fields the model and training settings groups set.
MODEL_FIELDS = tuple(p.spec_field for p in parameters_of_group("model"))
TRAINING_FIELDS = tuple(p.spec_field for p in parameters_of_group("training"))
#: EngineConfig fields of multi-stage training, from the execution group.
_STAGE_FIELDS = ("stage_1_epochs", "stage_2_epochs", "stage_3_epochs", "physics_weight_schedule",
                 "stage_3_lr_factor")


def setting_name(section: str, spec_field: str) -> str:
    """``"[PINNTorchTraining] BatchSize"`` for (``"training"``, ``"batch_size"``)."""
    for p in PARAMETERS:
        if p.section == section and p.spec_field == spec_field:
            return f"[{p.group}] {p.name}"
    return spec_field


def with_setting_hint(exc: ValueError, section: str, fields: tuple[str, ...]) -> ValueError:
    """``exc`` with "(ptychodus setting: [Group] Name, ...)" appended for every field of
    ``fields`` (of settings group ``section``) that its message names as a whole word."""
    message = str(exc)
    # whole field names only: "mae_weight" must not match inside "realspace_mae_weight"
    hints = [setting_name(section, f) for f in fields if re.search(rf"\b{f}\b", message)]
    if hints:
        message += f" (ptychodus setting: {', '.join(hints)})"
    return ValueError(message)


def build_model_config(values: dict[str, dict[str, Any]], *, N: int,  # noqa: N803
                       model_type: str) -> ModelConfig:
    """Spec ``ModelConfig`` from ``PINNTorchSettings.spec_values()``; ``N`` is the pattern size,
    ``model_type`` ``"pinn"`` or ``"supervised"``. Raises ValueError naming the setting."""
    from ptychodus_pinn_torch.config.spec import validate_model_config
    from ptychodus_pinn_torch.model.generators import check_architecture

    fields = {k: values["model"][k] for k in MODEL_FIELDS}
    try:
        config = ModelConfig(N=int(N), model_type=model_type, **fields)  # type: ignore[arg-type]
        validate_model_config(config)
        check_architecture(config)  # switches the chosen generator cannot honour
    except ValueError as exc:
        raise with_setting_hint(exc, "model", MODEL_FIELDS) from None
    return config


def build_training_config(values: dict[str, dict[str, Any]], *, N: int, model_type: str,  # noqa: N803
                          output_dir: Path) -> TrainingConfig:
    """Spec ``TrainingConfig`` (nested ``ModelConfig``) from the settings values.

    ``backend`` is ``"pytorch"``; ``torch_loss_mode`` is ``"mae"`` for ``model_type
    "supervised"`` (required by the config rules), else ``"poisson"``. Raises ValueError naming
    the ptychodus setting to change.
    """
    from ptychodus_pinn_torch.config.spec import validate_training_config

    model = build_model_config(values, N=N, model_type=model_type)
    fields = {k: values["training"][k] for k in TRAINING_FIELDS}
    try:
        # the supervised variant trains on labels with the MAE loss (upstream Torch rule)
        loss_mode = "mae" if model_type == "supervised" else "poisson"
        config = TrainingConfig(model=model, output_dir=Path(output_dir), backend="pytorch",
                                torch_loss_mode=loss_mode, **fields)
        validate_training_config(config)
        pytorch_configs(config)  # the bridge's rules (spec -> PyTorch) must hold as well
    except ValueError as exc:
        raise with_setting_hint(exc, "training", TRAINING_FIELDS) from None
    return config


def pytorch_configs(training_config: TrainingConfig) -> PyTorchConfigs:
    """The PyTorch dataclasses (``config.bridge.PyTorchConfigs``) of a spec ``TrainingConfig``,
    through ``config.bridge.from_spec``; raises the bridge's ValueError for untranslatable
    settings."""
    from ptychodus_pinn_torch.config.interop.bridge import from_spec

    return from_spec(training_config.model, training_config)


_FINE_TUNE_FIELDS = ("train_from_loaded_model", "epochs_fine_tune", "fine_tune_gamma")


def build_engine_config(values: dict[str, dict[str, Any]], *, N: int, model_type: str,  # noqa: N803
                        output_dir: Path, init_model: Path | None = None) -> EngineConfig:
    """The engine's ``EngineConfig``: the spec TrainingConfig of :func:`build_training_config`
    plus the execution group (device, learning rate, seed, fine-tuning). With ``init_model``
    (``TrainFromLoadedModel`` on and a model loaded) training starts from that archive with its
    network settings (ENG-185). Raises ValueError naming the ptychodus setting to change."""
    import dataclasses


    training = build_training_config(values, N=N, model_type=model_type, output_dir=output_dir)
    execution = values["execution"]
    stages = {k: execution[k] for k in _STAGE_FIELDS}
    fine_tune: dict[str, Any] = {}
    if init_model is not None:
        from ptychodus_pinn_torch.engine.fine_tune import model_config_of

        stored = model_config_of(init_model)
        if int(stored.N) != int(N):
            raise ValueError(
                f"the loaded model was trained at N={stored.N} but the training patterns are "
                f"{N}x{N}; turn off {setting_name('execution', 'train_from_loaded_model')} or "
                "train on data of the model's size"
            )
        training = dataclasses.replace(training, model=stored)
        fine_tune = {"init_model": str(init_model),
                     "epochs_fine_tune": int(execution.get("epochs_fine_tune", 0)),
                     "fine_tune_gamma": float(execution.get("fine_tune_gamma", 0.1))}
    try:
        return EngineConfig(training=training, learning_rate=float(execution["learning_rate"]),
                            seed=int(execution["seed"]), device=str(execution["device"]),
                            threads=int(execution["threads"]) or None, **stages,
                            **fine_tune)
    except ValueError as exc:
        raise with_setting_hint(
            exc, "execution", ("learning_rate", "seed", "device", "threads", *_STAGE_FIELDS,
                               *_FINE_TUNE_FIELDS)
        ) from None
