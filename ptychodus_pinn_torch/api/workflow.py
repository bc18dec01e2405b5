"""The four calls of the Python API: load a config, train, predict and stitch, simulate.

Each is a thin layer over the engine the CLI uses, so a script gets the same results as
``pinn-torch train`` / ``reconstruct`` / ``simulate`` with the same settings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from ptychodus_pinn_torch.api.configs import apply_overrides, read_config_file
from ptychodus_pinn_torch.api.model import Model

if TYPE_CHECKING:
    from ptychodus_pinn_torch.config.spec import TrainingConfig
    from ptychodus_pinn_torch.data import RawData
    from ptychodus_pinn_torch.engine.inference import Reconstruction
    from ptychodus_pinn_torch.engine.training import EpochReport

def _as_data(data: RawData | str | Path, name: str, *, map_patterns: bool = False) -> RawData:
    from ptychodus_pinn_torch.data import RawData

    if isinstance(data, RawData):
        return data
    if isinstance(data, str | Path):
        return RawData.from_file(data, map_patterns=map_patterns)
    raise ValueError(f"{name} must be a RawData or a scan file path, got {type(data).__name__}")


def load_config(
    source: str | Path | Mapping[str, Any] | TrainingConfig | None = None,
    overrides: Mapping[str, Any] | None = None,
    **more: Any,
) -> TrainingConfig:
    """A validated training config from a JSON/YAML file, a mapping or a config, with overrides.

    Args:
        source: ``.json``/``.yaml`` file, mapping, ``TrainingConfig`` or None (defaults).
        overrides: ``{"nepochs": 5, "model.gridsize": 2}``; dotted keys reach nested fields.
        **more: further overrides as keywords (``nepochs=5``).

    Returns:
        The spec ``TrainingConfig``; unknown fields and invalid values raise ValueError naming
        them.
    """
    from ptychodus_pinn_torch.config.interop.serialize import spec_from_dict, spec_to_dict
    from ptychodus_pinn_torch.config.spec import TrainingConfig

    if source is None:
        data: Mapping[str, Any] = {"model": {}}
    elif isinstance(source, TrainingConfig):
        data = spec_to_dict(source)
    elif isinstance(source, Mapping):
        data = source
    elif isinstance(source, str | Path):
        data = read_config_file(source)
    else:
        raise ValueError(
            f"config must be a file path, a mapping or a TrainingConfig, got "
            f"{type(source).__name__}"
        )
    merged = apply_overrides(data, {**(overrides or {}), **more})
    merged.setdefault("model", {})
    config = spec_from_dict(merged, "training")
    assert isinstance(config, TrainingConfig)
    return config


def train(
    data: RawData | str | Path,
    config: str | Path | Mapping[str, Any] | TrainingConfig | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    test_data: RawData | str | Path | None = None,
    out_dir: str | Path | None = None,
    on_epoch: Callable[[EpochReport], None] | None = None,
    **more: Any,
) -> Model:
    """Train a model on a scan through the engine's one training pipeline
    (``engine.run.run_training``, as ``pinn-torch train``) and return it.

    Args:
        data: the training scan (``RawData`` or a file any reader accepts).
        config: see :func:`load_config`; ``model.N`` is taken from the data and ``nphotons``
            from the data's metadata unless given.
        overrides: config fields, dotted for nested ones (``{"model.gridsize": 2}``).
        test_data: optional scan whose loss is computed after training.
        out_dir: where the pipeline writes ``wts.h5.zip``, ``history.json`` and checkpoints
            (default: a temporary folder, removed afterwards).
        on_epoch: called with each epoch's report.
        **more: further overrides as keywords: config fields (``nepochs=5``) and engine run
            settings (``EngineConfig`` fields: ``learning_rate``, ``seed``, ``device``,
            ``early_stop_patience``, ``validation_fraction``, ...).

    Returns:
        The trained :class:`Model` (``model.history`` holds the losses).
    """
    import tempfile

    from ptychodus_pinn_torch.config.engine import EngineConfig
    from ptychodus_pinn_torch.engine.events import TrainCallbacks
    from ptychodus_pinn_torch.engine.run import run_training

    raw = _as_data(data, "data")
    test = None if test_data is None else _as_data(test_data, "test_data")
    requested = {**(overrides or {}), **more}
    run_names = {f.name for f in fields(EngineConfig)} - {"training"}
    run_values = {k: v for k, v in requested.items() if k in run_names}
    given = {k: v for k, v in requested.items() if k not in run_names}
    base = load_config(config)
    if "model.N" not in given:
        given["model.N"] = int(raw.N)
    if "nphotons" not in given and not _explicit_nphotons(config):
        nphotons = raw.metadata.get("nphotons")
        if isinstance(nphotons, int | float) and nphotons > 0:
            given["nphotons"] = float(nphotons)
    engine_config = EngineConfig(training=load_config(base, given), **run_values)
    callbacks = TrainCallbacks(on_epoch=() if on_epoch is None else (on_epoch,))
    with tempfile.TemporaryDirectory(prefix="pinn-torch-api-") as scratch:
        folder = Path(scratch) if out_dir is None else Path(out_dir)
        run = run_training(raw, engine_config, folder, test=test, callbacks=callbacks)
    result = run.result
    if not result.history:
        raise ValueError("no epoch finished, so there is no trained model; "
                         + (result.stopped or "check the data"))
    return Model(bundle=result.bundle, history=list(result.history), stopped=result.stopped)


def _explicit_nphotons(config: object) -> bool:
    if isinstance(config, Mapping):
        return "nphotons" in config
    if isinstance(config, str | Path):
        return "nphotons" in read_config_file(config)
    return config is not None  # a TrainingConfig always carries its nphotons


def predict_and_stitch(
    model: Model | str | Path,
    data: RawData | str | Path,
    *,
    batch_size: int = 64,
    device: str = "auto",
    refine_epochs: int = 0,
    keep_patches: bool = False,
) -> Reconstruction:
    """Run the network over every scan position and stitch the object on the data's grid.

    Memory as ``pinn-torch reconstruct``: a scan file's uncompressed float32 patterns stay
    memory-mapped (DATA-241) and only each patch's stitched crop is kept, on disk above 512 MiB
    (ENG-250), so scans larger than memory reconstruct here too.

    Args:
        model: a :class:`Model` or a model archive path.
        data: the scan (``RawData`` or a file).
        batch_size: groups per network call.
        device: "auto", "cpu", "cuda", ...
        refine_epochs: passes of physics refinement after the network (0 = off).
        keep_patches: also return every group's whole (N, N) patch in ``.patches`` (32 KB per
            position at N = 64, all in memory); default False.

    Returns:
        The engine's ``Reconstruction``: ``.object`` (H, W) complex64 on the grid of the
        data's ``objectGuess`` (or a grid covering the scan), ``.coverage`` (H, W) float32.
    """
    from ptychodus_pinn_torch.engine.inference import reconstruct

    if isinstance(model, str | Path):
        model = Model.load(model)
    if not isinstance(model, Model):
        raise ValueError(f"model must be an api.Model or an archive path, got "
                         f"{type(model).__name__}")
    return reconstruct(
        model.bundle, _as_data(data, "data", map_patterns=True), batch_size=batch_size,
        device=device, refine_epochs=refine_epochs, keep_patches=keep_patches,
    )


@overload
def simulate(out: str | Path | None = None, *, experiments: None = None,
             **settings: Any) -> RawData: ...


@overload
def simulate(out: str | Path | None = None, *, experiments: int, **settings: Any,
             ) -> list[RawData]: ...


def simulate(
    out: str | Path | None = None, *, experiments: int | None = None, **settings: Any
) -> RawData | list[RawData]:
    """Simulate a scan, or a set of scans with their own object and probe, as
    ``pinn-torch simulate`` does, and with ``out`` also write it.

    Args:
        out: NPZ file to write (a set writes ``OUT_0.npz`` ... as ``--experiments`` does).
        experiments: None: one scan (``data.simulate.simulate_scan``); K: a list of K scans
            (``data.experiment_sets.simulate_experiments``).
        **settings: the simulator's arguments (object_kind, N, object_shape, scan, overlap,
            nphotons, seed, probe, beamstop_diameter, beamstop_transmission, ...).

    Returns:
        The scan, or the list of scans.
    """
    if experiments is None:
        from ptychodus_pinn_torch.data.simulate import simulate_scan

        raw = simulate_scan(**settings)
        if out is not None:
            raw.to_file(Path(out))
        return raw
    from ptychodus_pinn_torch.data.experiment_sets import experiment_paths, simulate_experiments

    scans = simulate_experiments(experiments, **settings)
    if out is not None:
        for scan, path in zip(scans, experiment_paths(Path(out), experiments), strict=True):
            scan.to_file(path)
    return scans
