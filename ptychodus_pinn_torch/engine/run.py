"""The one training pipeline: data files (or scans) in; trained archive, history.json and
checkpoints out. ``pinn-torch train``, the ptychodus training job and the benchmarks all call
:func:`run_training`.

Output layout of a training folder ``OUT``::

    OUT/wts.h5.zip                 the model archive (or the path given as ``archive_path``)
    OUT/history.json               one record per finished epoch plus the run's summary
    OUT/config.json                the resolved configuration (spec layout with its ``engine``
                                   section; ``pinn-torch train --config`` reads it back, CFG-110)
    OUT/checkpoints/checkpoint.pt  rewritten every ``checkpoint_every`` epochs; resume reads it

Under torch.distributed every rank trains and only rank 0 writes. When no epoch finished (Stop
before the first epoch ended) no archive and no history are written: there is no trained model
to keep.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ptychodus_pinn_torch.config.choices import (
    ARCHIVE_NAME,
    CHECKPOINT_DIR_NAME,
    CONFIG_NAME,
    HISTORY_NAME,
)
from ptychodus_pinn_torch.config.engine import EngineConfig
from ptychodus_pinn_torch.config.spec import InferenceConfig
from ptychodus_pinn_torch.data import RawData
from ptychodus_pinn_torch.engine.events import (
    CheckpointEvent,
    TrainCallbacks,
    TrainResult,
)
from ptychodus_pinn_torch.engine.output_folder import (
    ArchiveAtCheckpoint,
    OutputLock,
    StopOnSignal,
    check_writable,
    clean_orphan_temps,
)

if TYPE_CHECKING:  # the archive imports the model; only its type is needed here
    from ptychodus_pinn_torch.engine.archive import ModelBundle
    from ptychodus_pinn_torch.engine.inference import Reconstruction


@dataclass(frozen=True)
class TrainingRun:
    """What :func:`run_training` produced.

    result: the engine's :class:`~ptychodus_pinn_torch.engine.events.TrainResult`.
    archive / history: the files written (None on ranks > 0 and when no epoch finished).
    checkpoint_dir: the folder holding ``checkpoint.pt``.
    seconds: wall time of the training, data loading included.
    signal_name: "SIGTERM" / "SIGINT" when a signal stopped the training (ENG-126), else None.
    """

    result: TrainResult
    archive: Path | None
    history: Path | None
    checkpoint_dir: Path
    seconds: float
    signal_name: str | None = None


def checkpoint_dir_of(out_dir: Path) -> Path:
    """Where a training folder keeps its checkpoint (``OUT/checkpoints``)."""
    return Path(out_dir) / CHECKPOINT_DIR_NAME


TrainSource = RawData | str | Path


def load_scan(source: TrainSource) -> RawData:
    """A scan from a path (any format of ``data.readers``: the NPZ contract, ptychodus' export
    or HDF5 files, a mapped scan), or the scan itself."""
    return source if isinstance(source, RawData) else RawData.from_file(source)


def expand_sources(sources: TrainSource | Sequence[TrainSource]) -> list[TrainSource]:
    """The training scans named by ``sources``: each path or scan as is, except a folder that
    no reader recognizes, which stands for its ``*.npz`` files and mapped-scan subfolders
    (sorted by name; upstream's ``training_directories``). Raises FileNotFoundError for a
    folder without any."""
    from ptychodus_pinn_torch.data.readers import detect_format

    items = [sources] if isinstance(sources, RawData | str | Path) else list(sources)
    out: list[TrainSource] = []
    for item in items:
        if isinstance(item, RawData) or not Path(item).is_dir():
            out.append(item)
            continue
        try:
            detect_format(item)
            out.append(item)  # a scan stored as a folder (mapped, ptychodus' files)
            continue
        except ValueError:
            pass
        found: list[TrainSource] = []
        for child in sorted(Path(item).iterdir()):
            if child.suffix.lower() == ".npz" and child.is_file():
                found.append(child)
            elif child.is_dir():
                try:
                    if detect_format(child) == "mapped":
                        found.append(child)
                except ValueError:
                    continue
        if not found:
            raise FileNotFoundError(f"{item}: no .npz scans or mapped scans in this folder; "
                                    "pass scan files or a folder holding them")
        out.extend(found)
    if not out:
        raise ValueError("no training scans given; pass --train FILE (repeatable) or a folder")
    return out


def describe_sources(sources: Sequence[TrainSource],
                     scans: Sequence[RawData]) -> list[dict[str, Any]]:
    """What the archive records of every training scan (``extra["training_files"]``):
    ``{"path": absolute path or None (in memory), "format", "n_positions", "N"}``."""
    from ptychodus_pinn_torch.data.readers import detect_format

    records = []
    for source, scan in zip(sources, scans, strict=True):
        in_memory = isinstance(source, RawData)
        records.append({
            "path": None if in_memory else str(Path(source).resolve()),
            "format": "in-memory" if in_memory else detect_format(source),
            "n_positions": scan.n_positions, "N": scan.N,
        })
    return records


def run_training(
    train: TrainSource | Sequence[TrainSource] | None,
    config: EngineConfig,
    out_dir: Path | None = None,
    *,
    test: RawData | str | Path | None = None,
    resume: bool = False,
    callbacks: TrainCallbacks | None = None,
    archive_path: Path | None = None,
    sources: Sequence[str | Path] | None = None,
) -> TrainingRun:
    """Train on ``train`` with ``config`` and write the outputs of ``out_dir`` (layout above).

    train: one scan (path or ``RawData``), or several: one model over all of them, each grouped
        on its own with its own probe (ENG-183); a folder of ``.npz`` files stands for them.
        The archive records every training scan (``extra["training_files"]``).
    train / test / out_dir default to ``config.train_data_files`` (several scans, when
    non-empty) else the TrainingConfig's ``train_data_file``, and its ``test_data_file`` and
    ``output_dir``.
    test: a scan whose loss is measured after training (written to history.json).
    resume: continue from ``OUT/checkpoints/checkpoint.pt``.
    callbacks: epoch/batch/checkpoint hooks and the Stop poll.
    archive_path: where the archive goes (default ``OUT/wts.h5.zip``).
    sources: the files the scans of ``train`` were read from, when ``train`` holds scans
        already loaded (recorded in the archive instead of "in-memory").
    Raises ValueError (or FileNotFoundError) for data or settings that cannot train.
    """
    from ptychodus_pinn_torch.engine.archive import save_archive
    from ptychodus_pinn_torch.engine.reporting import write_history
    from ptychodus_pinn_torch.engine.training import train_model

    t0 = time.perf_counter()
    t = config.training
    if train is None and config.train_data_files:
        train = list(config.train_data_files)
    elif train is None:
        if t.train_data_file is None:
            raise ValueError("no training data: pass a scan or set TrainingConfig.train_data_file")
        train = t.train_data_file
    test = t.test_data_file if test is None else test
    out_dir = Path(t.output_dir if out_dir is None else out_dir)
    expanded = expand_sources(train)
    scans = [load_scan(source) for source in expanded]
    named = list(expanded) if sources is None else list(sources)
    if len(named) != len(scans):
        raise ValueError(f"sources names {len(named)} files for {len(scans)} training scans")
    test_raw = None if test is None else load_scan(test)
    ckpt_dir = checkpoint_dir_of(out_dir)
    archive_target = archive_path or out_dir / ARCHIVE_NAME
    training_set = scans[0] if len(scans) == 1 else scans
    provenance: dict[str, Any] = {"training_files": describe_sources(named, scans)}
    if config.init_model is not None:
        provenance["init_model"] = str(Path(config.init_model).resolve())
    if int(os.environ.get("RANK", "0")) != 0:  # only rank 0 writes (and locks)
        result = train_model(training_set, config, test_data=test_raw, callbacks=callbacks,
                             checkpoint_dir=ckpt_dir, resume=resume)
        return TrainingRun(result, None, None, ckpt_dir, time.perf_counter() - t0)

    def write_outputs(bundle: ModelBundle, history: Sequence[Any], stopped: str | None,
                      test_loss: float | None, device: str) -> tuple[Path, Path]:
        bundle.extra.update(provenance)
        archive = save_archive(archive_target, bundle)
        history_path = write_history(
            out_dir / HISTORY_NAME, history, stopped=stopped, test_loss=test_loss,
            device=device, seconds=time.perf_counter() - t0,
            nphotons=config.training.nphotons, N=config.model.N, gridsize=config.model.gridsize,
        )
        return Path(archive), history_path

    def at_checkpoint(bundle: ModelBundle, event: CheckpointEvent) -> None:
        # ENG-126: a training killed after this point leaves a loadable model of this epoch
        epoch = event.report.epoch
        write_outputs(bundle, bundle.history,
                      f"in progress: written at the checkpoint of epoch {epoch}; a run that "
                      f"ends normally replaces it", None, "")

    # ENG-123..125: writable before training, one writer per folder, no orphan temporaries
    check_writable(out_dir, ckpt_dir, archive_target.parent)
    with OutputLock(out_dir), StopOnSignal() as stop:
        clean_orphan_temps(out_dir, ckpt_dir, archive_target.parent)
        write_resolved_config(out_dir / CONFIG_NAME, config)
        saver = ArchiveAtCheckpoint(at_checkpoint)
        extra = TrainCallbacks(on_checkpoint=(saver,), should_stop=stop.requested)
        callbacks = extra if callbacks is None else callbacks.plus(extra)
        result = train_model(training_set, config, test_data=test_raw, callbacks=callbacks,
                             checkpoint_dir=ckpt_dir, resume=resume)
        result.bundle.extra.update(provenance)
        if stop.signal_name is not None and result.stopped:
            result.stopped = f"{stop.signal_name}: {result.stopped}"
        seconds = time.perf_counter() - t0
        if not result.history:
            return TrainingRun(result, None, None, ckpt_dir, seconds, stop.signal_name)
        archive, history = write_outputs(result.bundle, result.history, result.stopped,
                                         result.test_loss, result.device)
    return TrainingRun(result, Path(archive), history, ckpt_dir, seconds, stop.signal_name)


def write_resolved_config(path: Path, config: EngineConfig) -> Path:
    """Write ``config`` as the JSON document ``pinn-torch train --config`` reads (CFG-110):
    the spec layout with an ``engine`` section; replaced atomically."""
    import json

    from ptychodus_pinn_torch.config.interop.documents import engine_to_document
    from ptychodus_pinn_torch.data.atomic_file import atomic_write

    with atomic_write(path) as fh:
        fh.write((json.dumps(engine_to_document(config), indent=2) + "\n").encode("utf-8"))
    return path


#: the file :func:`run_inference` writes into ``InferenceConfig.output_dir``.
RECONSTRUCTION_NAME = "reconstruction.npz"


def run_inference(
    config: InferenceConfig, *, device: str = "auto", batch_size: int = 64
) -> tuple[Reconstruction, Path]:
    """Reconstruct ``config.test_data_file`` with the model of ``config.model_path`` and write
    ``config.output_dir/reconstruction.npz`` (``object`` (H, W) complex64, ``coverage`` (H, W)
    float32). Returns (the reconstruction, the file).

    ``config.model`` must equal the archive's model configuration (a difference is a
    ValueError naming the field); ``n_subsample``/``subsample_seed`` draw the positions used;
    ``neighbor_count`` groups them at gridsize > 1; unsupported fields are refused by name.
    """
    import numpy as np

    from ptychodus_pinn_torch.config.fields import check_supported
    from ptychodus_pinn_torch.config.spec import validate_inference_config
    from ptychodus_pinn_torch.data.npz_io import write_npz
    from ptychodus_pinn_torch.engine.archive import load_archive
    from ptychodus_pinn_torch.engine.inference import reconstruct
    from ptychodus_pinn_torch.engine.session import subsample

    check_supported(config, where="run_inference")
    validate_inference_config(config)
    bundle = load_archive(config.model_path)
    for f in fields(config.model):
        wanted, trained = getattr(config.model, f.name), getattr(bundle.model_config, f.name)
        if wanted != trained:
            raise ValueError(
                f"InferenceConfig.model.{f.name}={wanted!r} but the model in "
                f"{config.model_path} was trained with {f.name}={trained!r}; set the model "
                "configuration the archive was trained with"
            )
    raw = subsample(load_scan(config.test_data_file), config.n_subsample, config.subsample_seed)
    rec = reconstruct(bundle, raw, device=device, batch_size=batch_size,
                      neighbor_count=config.neighbor_count)
    out = Path(config.output_dir) / RECONSTRUCTION_NAME
    write_npz(out, {"object": np.asarray(rec.object, np.complex64),
                    "coverage": np.asarray(rec.coverage, np.float32)})
    return rec, out


__all__ = [
    "RECONSTRUCTION_NAME",
    "TrainSource",
    "TrainingRun",
    "checkpoint_dir_of",
    "describe_sources",
    "expand_sources",
    "load_scan",
    "run_inference",
    "run_training",
    "write_resolved_config",
]
