"""The training loop: one call, :func:`train_model`, turns a
:class:`~ptychodus_pinn_torch.data.RawData` scan and an
:class:`~ptychodus_pinn_torch.config.engine.EngineConfig` into a trained
:class:`~ptychodus_pinn_torch.engine.archive.ModelBundle`.

Upstream's Keras fit settings are the defaults (specs/ENGINE.md): Adam lr 1e-3, 5 % validation
split, ReduceLROnPlateau(val_loss, x0.5, patience 2, min_lr 1e-4), EarlyStopping(loss,
patience 3), loss ``realspace_weight*realspace + mae_weight*MAE(sX, Â) + nll_weight*NLL((sX)²,
Â²)``. ``model_type='supervised'`` trains on the ``Y`` labels instead (amplitude and phase MAE).

The loop is split by job: :mod:`.session` (set-up, checkpoint state), :mod:`.epoch` (one
epoch, evaluation), :mod:`.schedule` (optimizer, plateau, clipping, early stopping). Files in
and archive/history/checkpoints out is :mod:`.run`. Under ``torchrun`` the same call trains
with DistributedDataParallel; rank 0 writes checkpoints and calls the epoch hooks, every rank
returns the same bundle.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ptychodus_pinn_torch.config.engine import EngineConfig
from ptychodus_pinn_torch.data import RawData
from ptychodus_pinn_torch.engine import distributed as distmod
from ptychodus_pinn_torch.engine.archive import ModelBundle
from ptychodus_pinn_torch.engine.devices import select_device
from ptychodus_pinn_torch.engine.epoch import evaluate, run_epoch
from ptychodus_pinn_torch.engine.events import (
    CheckpointEvent,
    EpochReport,
    TrainCallbacks,
    TrainResult,
)
from ptychodus_pinn_torch.engine.scan_groups import group_scans
from ptychodus_pinn_torch.engine.session import (
    TrainingSession,
    restore_state,
    save_state,
    seed_everything,
    setup,
    validation_count,
)
from ptychodus_pinn_torch.engine.stages import StagePlan
from ptychodus_pinn_torch.engine.threads import phase_threads

logger = logging.getLogger(__name__)


def train_model(
    train_data: RawData | Sequence[RawData],
    config: EngineConfig,
    *,
    test_data: RawData | None = None,
    callbacks: TrainCallbacks | None = None,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
) -> TrainResult:
    """Train a PtychoPINN (or its supervised variant) on ``train_data``.

    train_data/test_data: ``RawData`` scans (``diff3d`` (M,N,N) float32 amplitudes, positions in
        object pixels, ``probeGuess`` (N,N) complex64; labels ``Y`` or ``objectGuess`` for
        supervised training). ``train_data`` may be a sequence of scans: one model is trained
        over all of them, each grouped on its own and illuminated by its own probe (ENG-183).
        Memory-mapped scans are read batch by batch (ENG-184).
    config: the :class:`EngineConfig` (spec TrainingConfig plus the run settings).
    callbacks: epoch, batch and checkpoint hooks and the Stop poll (:class:`TrainCallbacks`).
    checkpoint_dir: where ``checkpoint.pt`` is written atomically every ``checkpoint_every``
        epochs; with ``resume=True`` training continues from the checkpoint found there.

    Returns a :class:`TrainResult`. Raises ValueError on settings or data that cannot train.
    """
    if not isinstance(config, EngineConfig):
        raise ValueError(
            f"config must be an EngineConfig, got {type(config).__name__}; wrap a spec "
            "TrainingConfig as EngineConfig(training=...)"
        )
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs checkpoint_dir (the folder holding checkpoint.pt)")
    with phase_threads("train", config.threads):
        return _train_model(train_data, config, test_data=test_data, callbacks=callbacks,
                            checkpoint_dir=checkpoint_dir, resume=resume)


def _train_model(
    train_data: RawData | Sequence[RawData],
    config: EngineConfig,
    *,
    test_data: RawData | None,
    callbacks: TrainCallbacks | None,
    checkpoint_dir: Path | None,
    resume: bool,
) -> TrainResult:
    """:func:`train_model` with the training's thread count in effect."""
    callbacks = TrainCallbacks() if callbacks is None else callbacks
    device = select_device(config.device, local_rank=distmod.local_rank_from_env())
    if config.bf16 and device.type != "cuda":
        logger.warning("bf16 autocast requested on %s; it is only used on CUDA, ignoring", device)
    if device.type == "cuda":
        torch.cuda.set_device(device)  # before NCCL init: one GPU per local rank
    ctx = distmod.init_distributed(device.type)
    try:
        session = setup(train_data, config, device, ctx)
        if resume:
            assert checkpoint_dir is not None
            restore_state(session, checkpoint_dir)
            logger.info("resumed from %s at epoch %d", checkpoint_dir, session.start_epoch)
        stopped = _fit(session, callbacks, checkpoint_dir)
        distmod.barrier(ctx)
        session.model.eval()
        test_loss = None if test_data is None else _test_loss(session, test_data)
        model = session.model.to("cpu").to(memory_format=torch.contiguous_format)
        bundle = make_bundle(model, config, session.history, test_loss)
        return TrainResult(bundle=bundle, history=session.history, stopped=stopped,
                           test_loss=test_loss, device=str(device), rank=ctx.rank)
    finally:
        distmod.shutdown(ctx)


def _fit(
    session: TrainingSession, callbacks: TrainCallbacks, checkpoint_dir: Path | None
) -> str | None:
    """Run the epochs from ``session.start_epoch``; returns why training ended early, or None.
    On Stop or a non-finite loss the model gets back the last finished epoch's weights."""
    config, ctx = session.config, session.ctx
    epochs = config.epochs
    if session.start_epoch >= epochs:
        return f"checkpoint already holds {session.start_epoch} epoch(s) of {epochs}; nothing to do"
    last_good = copy.deepcopy(session.model.state_dict())
    plan = StagePlan.of(config)
    for epoch in range(session.start_epoch, epochs):
        t0 = time.perf_counter()
        session.scheduler.start_epoch(epoch)
        session.physics_weight = plan.physics_weight(epoch)
        if plan.lr_drop_at(epoch):
            session.scheduler.scale(plan.lr_factor)
        lr = float(session.optimizer.param_groups[0]["lr"])
        outcome = run_epoch(session, epoch, callbacks)
        if outcome.aborted is not None:
            session.model.load_state_dict(last_good)
            return outcome.aborted
        val_loss = None
        if len(session.val_idx):
            val_loss = evaluate(session, session.val_idx.to(session.device))
        if not math.isfinite(outcome.train_loss) or (
            val_loss is not None and not math.isfinite(val_loss)
        ):
            session.model.load_state_dict(last_good)
            return (
                f"non-finite loss at the end of epoch {epoch + 1}; kept the weights of "
                f"epoch {epoch} (try a lower learning rate or check the data)"
            )
        # the loss changes definition in stages 1-2: plateau and early stopping watch stage 3
        blending = plan.stage(epoch) in (1, 2)
        if not blending:
            session.scheduler.end_epoch(epoch,
                                        val_loss if val_loss is not None else outcome.train_loss)
        terms = dict(outcome.terms)
        if plan.staged:
            terms["physics_weight"] = session.physics_weight
        report = EpochReport(epoch=epoch + 1, epochs=epochs, train_loss=outcome.train_loss,
                             val_loss=val_loss, lr=lr, seconds=time.perf_counter() - t0,
                             terms=terms)
        session.history.append(report)
        last_good = copy.deepcopy(session.model.state_dict())
        stop_now = False if blending else session.early.step(outcome.train_loss)
        due = (epoch + 1) % config.checkpoint_every == 0 or epoch + 1 == epochs or stop_now
        if checkpoint_dir is not None and ctx.is_main and due:
            _checkpoint(session, checkpoint_dir, report, last_good, callbacks)
        if ctx.is_main:
            callbacks.epoch(report)
        if stop_now:
            return (
                f"early stopping: train loss did not improve for "
                f"{config.early_stop_patience} epochs (epoch {epoch + 1} of {epochs})"
            )
    return None


def _checkpoint(
    session: TrainingSession,
    directory: Path,
    report: EpochReport,
    weights: dict[str, torch.Tensor],
    callbacks: TrainCallbacks,
) -> None:
    path = save_state(session, directory, report.epoch, weights)
    if not callbacks.on_checkpoint:
        return

    def bundle_of_this_epoch() -> ModelBundle:
        model = copy.deepcopy(session.model).to("cpu").to(memory_format=torch.contiguous_format)
        model.load_state_dict(weights)
        return make_bundle(model, session.config, list(session.history), None)

    callbacks.checkpoint(CheckpointEvent(report=report, path=path,
                                         make_bundle=bundle_of_this_epoch))


def _test_loss(session: TrainingSession, test_data: RawData) -> float:
    """The loss over every group of ``test_data`` (sequential grouping, seeded)."""
    config = session.config
    test = group_scans([test_data], config.training, seed=config.seed,
                       need_labels=config.needs_labels, sequential=True)
    device = session.device
    return evaluate(
        session,
        torch.arange(test.x.shape[0], device=device),
        (test.x * session.scale).to(device),
        test.positions.to(device),
        None if test.y is None else test.y.to(device),
        None if test_data.bad_pixels is None
        else torch.from_numpy(np.asarray(test_data.bad_pixels, bool)).to(device),  # PHYS-170
    )


def make_bundle(
    model: torch.nn.Module,
    config: EngineConfig,
    history: list[EpochReport],
    test_loss: float | None,
) -> ModelBundle:
    """Wrap a trained (CPU) model for :func:`~ptychodus_pinn_torch.engine.archive.save_archive`."""
    return ModelBundle(
        model=model,
        model_config=config.model,
        training_config=config.training,
        intensity_scale=float(model.intensity_scale),
        probe=model.probe.detach().cpu().numpy().astype(np.complex64),
        extra={"test_loss": test_loss} if test_loss is not None else {},
        history=[h.to_dict() for h in history],
    )


__all__ = [
    "EpochReport",
    "TrainCallbacks",
    "TrainResult",
    "make_bundle",
    "seed_everything",
    "train_model",
    "validation_count",
]
