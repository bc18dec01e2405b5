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


def train_job(payload: dict[str, Any], channel: WorkerChannel) -> dict[str, Any]:
    """Train on ``payload["train_file"]`` (NPZ contract) and save the archive.

    payload: ``train_file``, ``test_file`` (or None), ``output_dir``, ``archive_file``,
    ``model_type`` (``"pinn"``/``"supervised"``), ``values`` (``PINNTorchSettings.spec_values()``),
    ``num_threads`` (or None).
    Emits ``("epoch", EpochReport.to_dict())`` after every epoch; polls Stop before every batch.
    Returns ``{"archive": path, "stopped": reason or None, "history": [...], "device": str}``.
    """
    import torch

    from ptychodus_pinn_torch.data import RawData
    from ptychodus_pinn_torch.engine.archive import save_archive
    from ptychodus_pinn_torch.engine.reporting import write_history
    from ptychodus_pinn_torch.engine.training import train_model
    from ptychodus_pinn_torch.host.configs import build_train_options, build_training_config

    if payload.get("num_threads"):
        torch.set_num_threads(int(payload["num_threads"]))
    output_dir = Path(payload["output_dir"])
    output_dir.mkdir(parents=True, exist_ok=True)
    train_data = RawData.from_file(payload["train_file"])
    test_data = RawData.from_file(payload["test_file"]) if payload.get("test_file") else None
    n = train_data.N
    config = build_training_config(payload["values"], N=n, model_type=payload["model_type"],
                                   output_dir=output_dir)
    options = build_train_options(payload["values"])
    logger.info("training %s on %d patterns of %dx%d (%s), %d epochs", payload["model_type"],
                train_data.n_positions, n, n, payload["train_file"], config.nepochs)
    result = train_model(
        train_data, config, test_data=test_data, options=options,
        on_epoch=lambda report: channel.emit("epoch", report.to_dict()),
        should_stop=channel.should_stop,
        checkpoint_dir=output_dir / "checkpoints",
    )
    archive = save_archive(Path(payload["archive_file"]), result.bundle)
    history = [r.to_dict() for r in result.history]
    # the same history.json as `pinn-torch train` (atomic, non-finite values as null)
    write_history(output_dir / "history.json", result.history, stopped=result.stopped,
                  test_loss=result.test_loss, device=str(result.device))
    if result.stopped:
        logger.warning("training ended early: %s", result.stopped)
    logger.info("model saved to %s", archive)
    return {"archive": str(archive), "stopped": result.stopped, "history": history,
            "device": str(result.device)}
