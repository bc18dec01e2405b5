"""The ``PINN`` and ``Supervised`` reconstructors of the PtychoPINN-PyTorch library.

- Training runs in a child process (:mod:`.worker`, job :func:`.jobs.train_job`): progress is
  reported every epoch, a heartbeat ``TrainOutput`` is yielded every ``poll_s`` seconds so that
  ptychodus notices Stop promptly (it checks only between yields), a dead child becomes an error
  within seconds. After training (finished or stopped) the saved archive is loaded, so
  ``is_model_loaded()`` is true and Infer can run at once.
- Reconstruction (inference) runs in-process on the loaded model and yields one
  ``ReconstructOutput`` whose product holds the object on the input object's grid and the
  training losses (ptychodus' loss plot reads ``Product.losses``).
- Model files: ``.zip`` archives (``wts.h5.zip`` layout of ``engine.archive``); batch mode finds
  ``model.zip`` (``StandardFileLayout.MODEL_BASENAME`` + extension).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ptychodus.api.product import LossValue
from ptychodus.api.reconstruct import (
    ReconstructInput,
    ReconstructOutput,
    TrainableReconstructor,
    TrainOutput,
)

from ptychodus_pinn_torch.host import conversion, export, model_files
from ptychodus_pinn_torch.host.jobs import TRAIN_JOB
from ptychodus_pinn_torch.host.settings import PINNTorchSettings
from ptychodus_pinn_torch.host.tf_models import ProbeSource, import_tf_model_file, is_tf_archive
from ptychodus_pinn_torch.host.training_status import TrainingStatus
from ptychodus_pinn_torch.host.worker import WorkerDiedError, WorkerRun, WorkerStalledError

logger = logging.getLogger(__name__)

__all__ = ["FEW_EPOCHS", "MODEL_FILE_EXTENSION", "MODEL_FILE_NAME", "PINNTorchReconstructor"]

#: a model trained for fewer epochs than this gets a warning at Infer: its object is coarse
#: (often flat at first); the README's quality section shows the network still improving at 70
FEW_EPOCHS = 10

MODEL_FILE_EXTENSION = ".zip"
#: archive name a training writes in its output folder (batch mode reads ``model.zip``)
MODEL_FILE_NAME = "model" + MODEL_FILE_EXTENSION


class PINNTorchReconstructor(TrainableReconstructor):
    """One reconstructor of the library.

    :param name: ``"PINN"`` or ``"Supervised"`` (the ptychodus reconstructor name).
    :param model_type: ``"pinn"`` or ``"supervised"`` (spec ``ModelConfig.model_type``).
    :param settings: the library's settings groups.
    :param poll_s: heartbeat period of training (seconds); also bounds how late Stop is seen.
    :param stop_grace_s: seconds a stopped training may take to save before it is killed.
    """

    def __init__(self, name: str, model_type: str, settings: PINNTorchSettings, *,
                 poll_s: float = 0.25, stop_grace_s: float = 10.0) -> None:
        self._name = name
        self.model_type = model_type
        self._settings = settings
        self.poll_s = poll_s
        self.stop_grace_s = stop_grace_s
        self._bundle: Any | None = None
        self._model_path: Path | None = None
        self._losses: list[LossValue] = []
        self.last_train_result: dict[str, Any] | None = None
        self.last_worker_pid: int | None = None
        #: seconds from Stop to the worker's saved result (None if the last run was not stopped)
        self.last_stop_latency_s: float | None = None
        #: the running (or last) training: losses per epoch, batch progress, status line
        self.training_status = TrainingStatus()
        #: the loaded product's probe, for converting a TensorFlow model (HOST-170); set by
        #: the library when ptychodus' ProductAPI is known
        self.probe_source: ProbeSource | None = None

    @property
    def name(self) -> str:
        return self._name

    def get_progress_goal(self) -> int:
        return int(self._settings.training.num_epochs.get_value())

    # ---------------------------------------------------------------- reconstruct
    def reconstruct(self, parameters: ReconstructInput) -> Iterator[ReconstructOutput]:
        """Run the loaded model on ``parameters``; yields one output on the input object grid.

        Raises ValueError when no model is loaded or the pattern size differs from the model's.
        """
        if self._bundle is None:
            raise ValueError(
                f"{self._name}: no model is loaded. GUI: Train, or Load Model... from the "
                "\u25be menu. Batch mode (ptychodus -b reconstruct -i IN): put the model "
                f"file at IN/{MODEL_FILE_NAME}"
            )
        from ptychodus_pinn_torch.data import RawData, empty_frames
        from ptychodus_pinn_torch.engine.inference import reconstruct

        arrays = conversion.scan_arrays_from_input(parameters)
        keep = empty_frames.keep_mask(arrays["diff3d"], self._name)  # DATA-124: beam-off frames
        if keep is not None:
            arrays = empty_frames.take_positions(arrays, keep)
        n = int(arrays["diff3d"].shape[1])
        if n != self._bundle.N:
            raise ValueError(
                f"the diffraction patterns are {n}x{n} pixels but the loaded model expects "
                f"{self._bundle.N}x{self._bundle.N}; crop the patterns to {self._bundle.N} "
                "pixels or train a model for this size"
            )
        data = RawData(  # bad_pixels: the refinement leaves them out (PHYS-170, HOST-261)
            arrays["xcoords"], arrays["ycoords"], arrays["xcoords"], arrays["ycoords"],
            arrays["diff3d"], arrays["probeGuess"], arrays["scan_index"], arrays["objectGuess"],
            bad_pixels=arrays.get("bad_pixels"), diffraction_kind="amplitude",
        )
        values = self._settings.spec_values()
        execution = values["execution"]
        self._warn_if_undertrained(int(execution["refine_epochs"]))
        result = reconstruct(self._bundle, data,
                             batch_size=int(execution["inference_batch_size"]),
                             device=str(execution["device"]),
                             refine_epochs=int(execution["refine_epochs"]),
                             keep_patches=False,
                             threads=int(execution["threads"]) or None,
                             neighbor_count=int(values["inference"]["neighbor_count"]))
        obj = conversion.object_on_input_grid(result.object, parameters.product.object_)
        product = conversion.output_product(parameters.product, obj, self._losses)
        yield ReconstructOutput(product=product, progress=self.get_progress_goal())

    def _warn_if_undertrained(self, refine_epochs: int) -> None:
        """Say in the log when the model had few epochs: its object is coarse, often flat."""
        epochs = len(self._losses)
        if epochs >= FEW_EPOCHS:
            return
        if refine_epochs > 0:
            logger.warning(
                "%s: this model was trained for only %d epoch(s); the object shown comes mostly "
                "from the %d physics refinement epoch(s) after the network (Refine after "
                "inference), not from the network", self._name, epochs, refine_epochs)
        else:
            logger.warning(
                "%s: this model was trained for only %d epoch(s); its object is coarse and may "
                "look flat. Train longer (Epochs: 50+), or set 'Refine after inference' "
                "(RefineEpochs) to 10+ for a physics-refined object now",
                self._name, epochs)

    # ---------------------------------------------------------------- model files
    def is_model_loaded(self) -> bool:
        return self._bundle is not None

    def get_model_file_filter(self) -> str:
        return "PtychoPINN-PyTorch Model (*.zip)"

    def get_model_file_extension(self) -> str:
        return MODEL_FILE_EXTENSION

    @property
    def model_path(self) -> Path | None:
        """The archive the loaded model came from (None when none is loaded)."""
        return self._model_path

    @staticmethod
    def _salvage(archive: Path, started: float, reason: str) -> tuple[dict[str, Any] | None, str]:
        """After a worker died or stalled: the result of the archive it wrote at its last
        checkpoint during this run (ENG-126; loaded by ``_finish_training``), or None, and one
        sentence saying what was kept (HOST-121)."""
        from ptychodus_pinn_torch.engine.archive import peek_archive

        try:
            fresh = archive.is_file() and archive.stat().st_mtime >= started - 1.0
            history = list(peek_archive(archive)["history"]) if fresh else []
        except (OSError, ValueError):
            history = []
        if not history:
            return None, "Nothing was kept: no epoch finished before it ended."
        epoch = int(history[-1].get("epoch", len(history)))
        result = {"archive": str(archive), "history": history, "stopped": reason}
        return result, (f"Kept and loaded the model of its last checkpoint (epoch {epoch}): "
                        f"{archive}.")

    def load_model_from_file(self, file_path: Path) -> None:
        """Load a PtychoPINN-PyTorch archive (``.zip``, or a folder holding ``wts.h5.zip``).

        A TensorFlow PtychoPINN archive is converted in memory with the loaded product's probe
        and the NumPhotons setting (HOST-170); Save Model... then writes our archive.
        Raises FileNotFoundError / ``ArchiveError`` (a ValueError) with the engine's message
        for a missing, corrupt or foreign archive, ValueError when a TF model needs a product
        loaded first; the previous model stays loaded.
        """
        from ptychodus_pinn_torch.engine.archive import ForeignArchiveError, load_archive

        imported = False
        try:
            bundle = load_archive(Path(file_path))
        except ForeignArchiveError:
            if not is_tf_archive(Path(file_path)):
                raise
            nphotons = float(self._settings.spec_values()["training"]["nphotons"])
            bundle = import_tf_model_file(Path(file_path), self.probe_source, nphotons)
            imported = True
        archived_type = bundle.model_config.model_type
        if archived_type != self.model_type:
            logger.warning("%s was trained as %r; %s runs it for inference all the same",
                           file_path, archived_type, self._name)
        self._bundle = bundle
        self._model_path = None if imported else Path(file_path)  # never copy the TF zip
        self._losses = conversion.losses_from_history(bundle.history)
        logger.info("loaded model %s (N=%d, gridsize=%d, %d epochs of history)", file_path,
                    bundle.N, bundle.gridsize, len(self._losses))

    def save_model(self, file_path: Path) -> None:
        """Write the loaded model to ``file_path`` (a copy of the archive it came from)."""
        if self._bundle is None:
            raise ValueError(f"{self._name}: no model to save; train one or load a model first")
        file_path = Path(file_path)
        if self._model_path is not None and self._model_path.is_file():
            if self._model_path.resolve() != file_path.resolve():
                shutil.copyfile(self._model_path, file_path)
        else:
            from ptychodus_pinn_torch.engine.archive import save_archive

            save_archive(file_path, self._bundle)
        logger.info("model saved to %s", file_path)

    # ---------------------------------------------------------------- training data
    def get_training_data_file_filter(self) -> str:
        return "NumPy Zipped Archive (*.npz)"

    def export_training_data(self, file_path: Path, parameters: ReconstructInput) -> None:
        export.export_training_npz(Path(file_path), parameters)

    # ---------------------------------------------------------------- train
    def train(self, input_path: Path, output_path: Path) -> Iterator[TrainOutput]:
        """Train in a child process; yields progress every epoch and heartbeats in between.

        The model is loaded when the child has saved it, also after Stop (the last finished
        epoch's weights; nothing is loaded when Stop came before the first epoch ended).
        Raises ``WorkerError`` / ``WorkerDiedError`` (clear one-line messages) when the child
        fails or dies, FileNotFoundError when there is no training data.
        """
        values = self._settings.spec_values()  # validates enumerated settings up front
        output_path = Path(output_path)
        output_path.mkdir(parents=True, exist_ok=True)
        train_file, test_file = export.training_inputs(Path(input_path), output_path)
        from_loaded = bool(values["execution"].get("train_from_loaded_model"))
        if from_loaded and (self._model_path is None or not self._model_path.is_file()):
            raise ValueError(
                f"{self._name}: [PINNTorchExecution] TrainFromLoadedModel is on but no model "
                "file is loaded; load a model (Load Model...) or turn the setting off"
            )
        archive_file = output_path / MODEL_FILE_NAME
        backup = None
        if not values["execution"]["overwrite_model"]:
            backup = model_files.set_aside(archive_file)
            if backup is not None:
                logger.info("%s: the previous model %s is kept as %s", self._name,
                            archive_file, backup.name)
                if self._model_path is not None and self._model_path == archive_file:
                    self._model_path = backup  # the loaded model's file moved
        init_model = None
        if from_loaded:  # after the set-aside above: the loaded file may have moved
            assert self._model_path is not None
            init_model = str(self._model_path)
        payload = {
            "train_file": str(train_file),
            "test_file": None if test_file is None else str(test_file),
            "output_dir": str(output_path),
            "archive_file": str(archive_file),
            "model_type": self.model_type,
            "values": values,
            "init_model": init_model,
            "num_threads": int(os.environ["OMP_NUM_THREADS"])
            if os.environ.get("OMP_NUM_THREADS", "").isdigit() else None,
        }
        planned = int(values["training"]["nepochs"])
        status = self.training_status
        status.start(planned)
        started = time.time()
        run = WorkerRun(TRAIN_JOB, payload, poll_s=self.poll_s, grace_s=self.stop_grace_s,
                        start_timeout_s=float(values["execution"]["worker_start_timeout_s"]),
                        stall_s=float(values["execution"]["worker_stall_timeout_s"]),
                        label=f"{self._name} training worker").start()
        self.last_worker_pid = run.pid
        self.last_stop_latency_s = None
        progress = 0
        salvaged: dict[str, Any] | None = None  # a dead worker's last checkpoint (HOST-121)
        outcome = "failed"  # until the loop ends ("done") or the generator is closed (Stop)
        try:
            # import torch here while the child starts, so that loading the trained model
            # right after a Stop does not add the import time
            import ptychodus_pinn_torch.engine.archive  # noqa: F401

            yield TrainOutput(progress=0)
            while True:
                event = run.next_event()
                if event.kind == "epoch":
                    progress = int(event.data.get("epoch", progress + 1))
                    logger.info("%s %s", self._name, status.on_epoch(event.data))
                    yield TrainOutput(
                        training_loss=conversion.losses_from_history([event.data]),
                        validation_loss=conversion.losses_from_history([event.data], "val_loss"),
                        progress=progress,
                    )
                elif event.kind == "batch":
                    status.on_batch(int(event.data["batch"]), int(event.data["batches"]))
                    yield TrainOutput(progress=progress)
                elif event.kind == "done":
                    break
                elif event.kind == "stalled":  # HOST-120: report it, end the worker
                    logger.error("%s", event.data.get("message"))
                    raise WorkerStalledError(
                        f"{event.data.get('message')}; the worker was ended."
                    )
                else:  # heartbeat or batch: lets ptychodus check its Stop flag
                    yield TrainOutput(progress=progress)
            outcome = "done"
        except GeneratorExit:  # ptychodus closes the generator when Stop is pressed
            outcome = "stopped"
            raise
        except WorkerDiedError as exc:  # died or stalled: say what was kept (HOST-121)
            if not run.finished:
                run.stop(grace_s=0.0)
            salvaged, kept = self._salvage(archive_file, started, str(exc))
            raise type(exc)(f"{exc} {kept}") from None
        finally:
            if not run.finished:  # Stop pressed (generator closed) or an error above
                logger.info("%s: stopping the training worker", self._name)
                t0 = time.monotonic()
                run.stop()
                self.last_stop_latency_s = time.monotonic() - t0
                logger.info("%s: training worker stopped after %.2f s", self._name,
                            self.last_stop_latency_s)
            result = run.result if run.result is not None else salvaged
            self.last_train_result = result
            self._finish_training(result, archive_file, backup, planned, outcome)

    def _finish_training(self, result: dict[str, Any] | None, archive_file: Path,
                         backup: Path | None, planned: int, outcome: str) -> None:
        """Load the trained model, put back a set-aside model when nothing new was saved, and
        say (log + status line) which epoch's weights were kept and where."""
        history = (result or {}).get("history") or []
        saved = bool(result and result.get("archive") and history)
        kept = f"; the previous model is kept as {backup}" if backup is not None else ""
        if saved:
            assert result is not None
            archive = Path(result["archive"])
            self.load_model_from_file(archive)
            epoch = int(history[-1]["epoch"])
            if result.get("stopped"):
                line = (f"stopped at epoch {epoch} of {planned}: kept epoch {epoch}'s weights in "
                        f"{archive}{kept} ({result['stopped']})")
                state = "stopped"
                logger.warning("%s training %s", self._name, line)
            else:
                line = f"finished {epoch} epoch(s); model saved to {archive}{kept}"
                state = "finished"
                logger.info("%s training %s", self._name, line)
        else:
            restored = model_files.restore_backup(archive_file, backup)
            if restored and self._model_path == backup:
                self._model_path = archive_file
            done = self.training_status.snapshot().epochs_done
            state = "failed" if outcome == "failed" else "stopped"
            when = "before its first epoch finished" if done == 0 else f"after epoch {done}"
            line = (f"{state} {when}: no model was saved"
                    + (f"; the previous model is back in {archive_file}" if restored else ""))
            logger.warning("%s training %s", self._name, line)
        self.training_status.finish(state, line)
