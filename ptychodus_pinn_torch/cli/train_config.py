"""``pinn-torch train --config FILE``: the file's configuration under the flags given (CFG-110).

The file is read by :mod:`ptychodus_pinn_torch.config.interop.documents` (TF-style spec layout
or PyTorch dataclass layout); each flag the user put on the command line then replaces its
field, whatever its value (a flag left at its default does not).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ptychodus_pinn_torch.cli.config_file import given as given_flags
from ptychodus_pinn_torch.cli.config_file import read_document
from ptychodus_pinn_torch.config.engine import EngineConfig
from ptychodus_pinn_torch.config.spec import ModelConfig

#: train flags that set a spec TrainingConfig field (flag destination -> field)
TRAINING_FLAGS: dict[str, str] = {
    "epochs": "nepochs", "batch_size": "batch_size", "nphotons": "nphotons",
    "n_groups": "n_groups", "neighbor_count": "neighbor_count",
    "enable_oversampling": "enable_oversampling", "neighbor_pool_size": "neighbor_pool_size",
    "test": "test_data_file", "out": "output_dir",
}
#: train flags that set a spec ModelConfig field of the same name
MODEL_FLAGS: tuple[str, ...] = ("gridsize", "n_filters_scale", "model_type", "architecture",
                                "fno_modes", "fno_width", "fno_blocks", "fno_cnn_blocks")
#: train flags that set an EngineConfig field (flag destination -> field)
ENGINE_FLAGS: dict[str, str] = {
    "lr": "learning_rate", "validation_fraction": "validation_fraction",
    "early_stop_patience": "early_stop_patience", "seed": "seed", "device": "device",
    "bf16": "bf16", "channels_last": "channels_last", "threads": "threads",
    "stage_1_epochs": "stage_1_epochs", "stage_2_epochs": "stage_2_epochs",
    "stage_3_epochs": "stage_3_epochs", "physics_weight_schedule": "physics_weight_schedule",
    "stage_3_lr_factor": "stage_3_lr_factor",
}
#: train flags that set an EngineConfig fine-tuning field (flag destination -> field)
FINE_TUNE_FLAGS: dict[str, str] = {"fine_tune_epochs": "epochs_fine_tune",
                                   "fine_tune_gamma": "fine_tune_gamma"}


def config_from_file(args: argparse.Namespace) -> EngineConfig:
    """The engine configuration of ``--config FILE`` with the flags the user gave applied over
    it (CFG-110); sets ``args.train``/``args.test``/``args.out`` (and ``args.init_model`` and
    the fine-tuning values) from the file where no flag gave them. With a model to fine-tune
    (``--init-model`` or ``engine.init_model``, CFG-261) the network is the initial model's: a
    model field the file or a flag sets to another value is a ValueError naming it. A file or
    flag error is a ValueError naming the file or the flag."""
    from dataclasses import replace

    from ptychodus_pinn_torch.config.interop.documents import (
        engine_from_document,
        model_fields_given,
    )

    path = args.config
    flags = given_flags(args)
    init_flag = str(args.init_model) if "init_model" in flags else None
    if init_flag is not None and not Path(init_flag).exists():
        raise FileNotFoundError(f"--init-model {init_flag}: no such file; pass a trained "
                                "wts.h5.zip")
    doc = read_document(path)
    try:
        base = engine_from_document(doc, init_model=init_flag)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"--config {path}: {exc}") from None
    from ptychodus_pinn_torch.model.generators import (
        ATTENTION_FIELDS,
        REGISTRY,
        check_architecture,
    )

    model_values = {f: getattr(args, f) for f in MODEL_FLAGS if f in flags}
    architecture = model_values.get("architecture", base.training.model.architecture)
    if "output_mode" in flags and architecture in REGISTRY:
        model_values[REGISTRY[architecture].output_mode_field] = args.output_mode
    if "attention" in flags:  # the flag lists the switches that are on; the others go off
        switches = {a.strip() for a in args.attention.split(",") if a.strip()}
        if switches - set(ATTENTION_FIELDS):
            raise ValueError(f"--attention {sorted(switches - set(ATTENTION_FIELDS))} is "
                             f"unknown; use a comma list of {', '.join(ATTENTION_FIELDS)}")
        model_values.update({name: name in switches for name in ATTENTION_FIELDS})
    training_values = {field: getattr(args, dest) for dest, field in TRAINING_FLAGS.items()
                       if dest in flags}
    if "model_type" in flags:  # as without a file: supervised training is an MAE objective
        training_values["torch_loss_mode"] = ("mae" if args.model_type == "supervised"
                                              else "poisson")
    if "train" in flags:
        training_values["train_data_file"] = args.train[0]
    engine_values = {field: getattr(args, dest)
                     for dest, field in {**ENGINE_FLAGS, **FINE_TUNE_FLAGS}.items()
                     if dest in flags}
    if "train" in flags:  # several --train: all recorded (ENG-183), the first is train_data_file
        engine_values["train_data_files"] = (tuple(str(p) for p in args.train)
                                             if len(args.train) > 1 else ())
    if "early_stop_patience" in engine_values:
        engine_values["early_stop_patience"] = engine_values["early_stop_patience"] or None
    if "threads" in engine_values:
        engine_values["threads"] = engine_values["threads"] or None
    try:
        model = replace(base.training.model, **model_values)
        if base.init_model is not None:  # CFG-261: the initial model's network
            model = _initial_model(model, model_fields_given(doc) | set(model_values),
                                   base.init_model, path)
        training = replace(base.training, model=model, **training_values)
        config = replace(base, training=training, **engine_values)
        check_architecture(config.model)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"--config {path} with the flags given: {exc}") from None
    t = config.training
    if "train" not in flags and config.train_data_files:
        args.train = [Path(f) for f in config.train_data_files]
    elif "train" not in flags:
        args.train = None if t.train_data_file is None else [Path(t.train_data_file)]
    args.init_model = None if config.init_model is None else Path(config.init_model)
    args.fine_tune_epochs = config.epochs_fine_tune
    args.fine_tune_gamma = config.fine_tune_gamma
    if "test" not in flags:
        args.test = None if t.test_data_file is None else Path(t.test_data_file)
    if "out" not in flags:
        args.out = None if t.output_dir is None else Path(t.output_dir)
    return config


def _initial_model(model: ModelConfig, given: set[str] | frozenset[str], init_model: str,
                   path: Path) -> ModelConfig:
    """The ModelConfig of the model at ``init_model`` (what fine-tuning builds), after checking
    that every field in ``given`` (set by the file or a flag) holds the initial model's value:
    else ValueError naming the field, both values and the fix."""
    from ptychodus_pinn_torch.engine.fine_tune import model_config_of

    if not Path(init_model).exists():
        raise FileNotFoundError(f"--config {path}: engine.init_model {init_model}: no such "
                                "file; pass a trained wts.h5.zip")
    stored = model_config_of(init_model)
    for name in sorted(given):
        ours, theirs = getattr(model, name), getattr(stored, name)
        if ours != theirs:
            raise ValueError(
                f"model.{name}={ours!r} differs from the initial model's {name}={theirs!r} "
                f"(init model {init_model}); set {theirs!r} or drop it")
    return stored
