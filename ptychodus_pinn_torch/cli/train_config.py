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
#: train flags that cannot be combined with --config (fine-tune without a file)
NOT_WITH_CONFIG: tuple[str, ...] = ("init_model", "fine_tune_epochs", "fine_tune_gamma")


def config_from_file(args: argparse.Namespace) -> EngineConfig:
    """The engine configuration of ``--config FILE`` with the flags the user gave applied over
    it (CFG-110); sets ``args.train``/``args.test``/``args.out`` from the file where no flag
    gave them. A file or flag error is a ValueError naming the file or the flag."""
    from dataclasses import replace

    from ptychodus_pinn_torch.config.interop.documents import engine_from_document

    path = args.config
    try:
        base = engine_from_document(read_document(path))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"--config {path}: {exc}") from None
    flags = given_flags(args)
    refused = [f for f in NOT_WITH_CONFIG if f in flags]
    if refused or base.init_model is not None:
        what = ", ".join("--" + f.replace("_", "-") for f in refused) or "engine.init_model"
        raise ValueError(f"{what} cannot be used with --config {path} yet; fine-tune with "
                         "flags only (--train, --init-model, ...)")
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
    engine_values = {field: getattr(args, dest) for dest, field in ENGINE_FLAGS.items()
                     if dest in flags}
    if "early_stop_patience" in engine_values:
        engine_values["early_stop_patience"] = engine_values["early_stop_patience"] or None
    if "threads" in engine_values:
        engine_values["threads"] = engine_values["threads"] or None
    try:
        model = replace(base.training.model, **model_values)
        training = replace(base.training, model=model, **training_values)
        config = replace(base, training=training, **engine_values)
        check_architecture(config.model)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"--config {path} with the flags given: {exc}") from None
    t = config.training
    if "train" not in flags:
        args.train = None if t.train_data_file is None else [Path(t.train_data_file)]
    if "test" not in flags:
        args.test = None if t.test_data_file is None else Path(t.test_data_file)
    if "out" not in flags:
        args.out = None if t.output_dir is None else Path(t.output_dir)
    return config
