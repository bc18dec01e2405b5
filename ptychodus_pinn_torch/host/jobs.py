"""Jobs that run in the worker child (:mod:`.worker`): they import torch, ptychodus never.

A job is ``fn(payload: dict, channel: WorkerChannel) -> dict`` with a JSON payload.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ptychodus_pinn_torch.host.worker import WorkerChannel

logger = logging.getLogger("ptychodus_pinn_torch.host.jobs")

TRAIN_JOB = "ptychodus_pinn_torch.host.jobs:train_job"
#: the fewest seconds between two ``batch`` messages (the GUI redraws 4 times a second)
BATCH_EVENT_INTERVAL_S = 0.25


def train_job(payload: dict[str, Any], channel: WorkerChannel) -> dict[str, Any]:
    """Train on ``payload["train_file"]`` (NPZ contract) and save the archive.

    payload: ``train_file``, ``test_file`` (or None), ``output_dir``, ``archive_file``,
    ``model_type`` (``"pinn"``/``"supervised"``), ``values`` (``PINNTorchSettings.spec_values()``),
    ``num_threads`` (or None), ``init_model`` (the loaded model's archive when
    ``TrainFromLoadedModel`` is on, else None). ``values["execution"]["mlflow"]`` tracks the
    run with MLflow (ENG-182).
    Emits ``("epoch", EpochReport.to_dict())`` after every epoch and ``("batch", {"batch": k,
    "batches": m})`` at most every :data:`BATCH_EVENT_INTERVAL_S` seconds inside an epoch;
    polls Stop before every batch.
    Runs the one training pipeline (:func:`ptychodus_pinn_torch.engine.run.run_training`):
    ``output_dir/history.json`` and ``output_dir/checkpoints/checkpoint.pt`` as every training.
    Returns ``{"archive": path or None (no epoch finished), "stopped": reason or None,
    "history": [...], "device": str}``.
    """
    import time

    import torch

    from ptychodus_pinn_torch.data import RawData
    from ptychodus_pinn_torch.engine.events import BatchProgress, TrainCallbacks
    from ptychodus_pinn_torch.engine.run import run_training
    from ptychodus_pinn_torch.host.configs import build_engine_config

    if payload.get("num_threads"):
        torch.set_num_threads(int(payload["num_threads"]))
    output_dir = Path(payload["output_dir"])
    # DATA-124: beam-off (all-zero) frames are dropped with a warning, as pinn-torch train does
    train_data = RawData.from_file(payload["train_file"], drop_empty_frames=True)
    n = train_data.N
    init_model = payload.get("init_model")
    config = build_engine_config(payload["values"], N=n, model_type=payload["model_type"],
                                 output_dir=output_dir,
                                 init_model=None if not init_model else Path(init_model))
    logger.info("training %s on %d patterns of %dx%d (%s), %d epochs", payload["model_type"],
                train_data.n_positions, n, n, payload["train_file"], config.epochs)
    last_batch_event = [0.0]

    def on_batch(progress: BatchProgress) -> None:
        now = time.monotonic()
        if (now - last_batch_event[0] >= BATCH_EVENT_INTERVAL_S
                and progress.batch < progress.batches):
            last_batch_event[0] = now
            channel.emit("batch", {"batch": progress.batch, "batches": progress.batches})

    callbacks = TrainCallbacks(
        on_epoch=(lambda report: channel.emit("epoch", report.to_dict()),),
        on_batch=(on_batch,),
        should_stop=channel.should_stop,
    )
    tracker = None
    if payload["values"]["execution"].get("mlflow"):  # [PINNTorchExecution] MlflowTracking
        from ptychodus_pinn_torch.engine.mlflow_tracking import start_training_run

        tracker = start_training_run(config, [str(payload["train_file"])])
        logger.info("MLflow run %s (%s)", tracker.run_id, tracker.uri)
        callbacks = callbacks.plus(TrainCallbacks(on_epoch=(tracker.on_epoch,)))
    try:
        run = run_training(train_data, config, output_dir,
                           test=payload.get("test_file") or None, callbacks=callbacks,
                           archive_path=Path(payload["archive_file"]),
                           sources=[payload["train_file"]])
    except BaseException:
        if tracker is not None:
            tracker.end("FAILED")
        raise
    if tracker is not None:
        if run.archive is None:
            tracker.end("FAILED")
        else:
            from ptychodus_pinn_torch.engine.mlflow_tracking import finish_training_run

            finish_training_run(tracker, config, archive=run.archive, history=run.history)
            logger.info("MLflow run %s: the model is runs:/%s/model", tracker.run_id,
                        tracker.run_id)
    result = run.result
    if result.stopped:
        logger.warning("training ended early: %s", result.stopped)
    if run.archive is not None:
        logger.info("model saved to %s", run.archive)
    return {"archive": None if run.archive is None else str(run.archive),
            "stopped": result.stopped, "history": [r.to_dict() for r in result.history],
            "device": str(result.device)}
