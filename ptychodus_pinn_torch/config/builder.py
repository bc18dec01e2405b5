"""The engine configuration from command-line style settings: the one builder of
``pinn-torch train`` (``cli.train.build_configs``) and the benchmarks (CFG-264).

It applies the rules the command line has always applied on top of the spec defaults, so that a
script or a benchmark training "like ``pinn-torch train``" gets exactly the same
:class:`~ptychodus_pinn_torch.config.engine.EngineConfig`:

- ``neighbor_count`` is at least ``gridsize**2`` (a group needs that many neighbours);
- supervised training is an amplitude/phase MAE objective (``torch_loss_mode='mae'``, upstream's
  rule), PINN the Poisson NLL;
- ``backend`` is ``'pytorch'``;
- several training scans are all recorded (``EngineConfig.train_data_files``), the first being
  ``TrainingConfig.train_data_file``;
- ``early_stop_patience`` and ``threads`` of 0 mean "off" / "the default" (None).

Standard library only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ptychodus_pinn_torch.config.engine import EngineConfig
from ptychodus_pinn_torch.config.spec import ModelConfig, TrainingConfig

__all__ = ["engine_config_for"]

PathLike = str | os.PathLike[str]


def engine_config_for(
    model: ModelConfig,
    *,
    epochs: int,
    batch_size: int,
    nphotons: float,
    n_groups: int,
    neighbor_count: int = 4,
    enable_oversampling: bool = False,
    neighbor_pool_size: int | None = None,
    train: Sequence[PathLike] = (),
    test: PathLike | None = None,
    output_dir: PathLike | None = None,
    training_fields: Mapping[str, Any] | None = None,
    **engine: Any,
) -> EngineConfig:
    """The EngineConfig of these settings (the rules in the module text).

    Args:
        model: the network (``N`` from the data; an initial model's config when fine-tuning).
        epochs, batch_size, nphotons, n_groups, neighbor_count, enable_oversampling,
            neighbor_pool_size: the spec TrainingConfig fields of the same meaning
            (``epochs`` is ``nepochs``).
        train: the training scans (files or folders); the first is ``train_data_file``, all of
            them ``train_data_files`` when there are several.
        test / output_dir: ``test_data_file`` / ``output_dir`` (None: the spec defaults).
        training_fields: other spec TrainingConfig fields (loss weights, scheduler, ...); they
            win over the rules above (e.g. an explicit ``torch_loss_mode``).
        engine: EngineConfig fields (``learning_rate``, ``seed``, ``device``, ...).

    Raises:
        ValueError naming the field for any value the spec or the engine refuses.
    """
    fields: dict[str, Any] = {
        "model": model,
        "batch_size": batch_size,
        "nepochs": epochs,
        "nphotons": nphotons,
        "n_groups": n_groups,
        "neighbor_count": max(int(neighbor_count), int(model.gridsize) ** 2),
        "enable_oversampling": enable_oversampling,
        "neighbor_pool_size": neighbor_pool_size,
        "backend": "pytorch",
        "torch_loss_mode": "mae" if model.model_type == "supervised" else "poisson",
    }
    sources = [Path(p) for p in train]
    if sources:
        fields["train_data_file"] = sources[0]
    if test is not None:
        fields["test_data_file"] = Path(test)
    if output_dir is not None:
        fields["output_dir"] = Path(output_dir)
    fields.update(training_fields or {})
    run = dict(engine)
    for name in ("early_stop_patience", "threads"):
        if run.get(name) == 0:
            run[name] = None
    if len(sources) > 1:
        run.setdefault("train_data_files", tuple(str(p) for p in sources))
    return EngineConfig(training=TrainingConfig(**fields), **run)
