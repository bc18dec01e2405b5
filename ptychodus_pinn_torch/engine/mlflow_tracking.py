"""Optional MLflow tracking of a training run, and models/configs loaded back from a run.

:class:`MlflowRun` is an epoch callback (``on_epoch(EpochReport)``) plus a start and an end:
``start(params)`` opens a run and logs the resolved configuration as params (nested keys joined
with ``.``); each epoch logs ``train_loss``, ``val_loss``, ``lr``, ``epoch_seconds`` and the loss
terms (``term.nll``, ...) as metrics at step = epoch; ``log_outputs`` stores the files of the run
as artifacts (layout in :data:`ARTIFACTS`); ``end(status)`` closes it. :func:`fetch_run_file`
and :func:`load_model_from_run` bring a run's files back; the model goes through the same safe
archive loader as any ``wts.h5.zip`` (nothing unpickled). ENG-180..182.

MLflow (``mlflow-skinny``, a ptychodus dependency) is imported only when used. The default store
is the local folder ``./mlruns`` (MLflow's file store, no server): mlflow >= 3.7 refuses file
stores unless ``MLFLOW_ALLOW_FILE_STORE=true``, and ``mlflow-skinny`` has no SQLAlchemy for a
``sqlite:`` store, so for a local store this module sets that variable (unless the user set it).
A server URI (``http://...``) works the same.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

    from ptychodus_pinn_torch.engine.archive import ModelBundle
    from ptychodus_pinn_torch.engine.training import EpochReport

logger = logging.getLogger(__name__)

__all__ = [
    "ARTIFACTS",
    "DEFAULT_EXPERIMENT",
    "DEFAULT_STORE",
    "MlflowRun",
    "fetch_run_file",
    "finish_training_run",
    "flatten_params",
    "load_model_from_run",
    "parse_runs_uri",
    "resolve_tracking_uri",
    "start_training_run",
]

#: the local store used when no URI is given (relative to the working folder).
DEFAULT_STORE = "mlruns"
DEFAULT_EXPERIMENT = "ptychodus-pinn-torch"
#: where each output lands inside a run's artifacts.
ARTIFACTS: dict[str, str] = {
    "archive": "model/wts.h5.zip",
    "history": "history.json",
    "loss_plot": "loss.png",
    "config": "config.json",
}
#: MLflow's limit on one param value (characters); longer values are cut with a note.
_PARAM_VALUE_MAX = 6000


def _mlflow_client(uri: str) -> MlflowClient:
    try:
        from mlflow.tracking import MlflowClient
    except ImportError as exc:  # pragma: no cover - mlflow-skinny comes with ptychodus
        raise ValueError(
            "MLflow tracking needs the mlflow-skinny package (installed with ptychodus 1.7); "
            "pip install mlflow-skinny, or train without --mlflow"
        ) from exc
    return MlflowClient(tracking_uri=uri)


def resolve_tracking_uri(uri: str | os.PathLike[str] | None) -> str:
    """The MLflow tracking URI for ``uri``: None -> ``$MLFLOW_TRACKING_URI`` when set (MLflow's
    own variable), else the ``file:`` URI of ``./mlruns`` (absolute); a plain path -> its
    ``file:`` URI; any URI with a scheme (``http://``, ``file:``, ...) as is. For local
    (``file:``) stores ``MLFLOW_ALLOW_FILE_STORE`` is set to ``true`` unless set."""
    if uri is None:
        uri = os.environ.get("MLFLOW_TRACKING_URI") or None
    text = DEFAULT_STORE if uri is None else os.fspath(uri)
    if not text.strip():
        raise ValueError("--mlflow-uri is empty; pass a folder (e.g. mlruns) or a server URI")
    if "://" not in text and not text.startswith("file:"):
        text = Path(text).expanduser().resolve().as_uri()
    if text.startswith("file:"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return text


def flatten_params(config: Mapping[str, Any] | object, prefix: str = "") -> dict[str, str]:
    """``{"model.N": "64", ...}``: a (nested) config dict or dataclass as MLflow params.

    Nested mappings/dataclasses are joined with ``.``; lists/tuples and scalars become ``str``;
    None becomes ``"None"``. Values longer than MLflow's limit are cut with ``...``.
    """
    if is_dataclass(config) and not isinstance(config, type):
        config = asdict(config)
    if not isinstance(config, Mapping):
        raise ValueError(f"config must be a mapping or a dataclass, got {type(config).__name__}")
    out: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if is_dataclass(value) and not isinstance(value, type):
            value = asdict(value)
        if isinstance(value, Mapping):
            out.update(flatten_params(value, f"{name}."))
            continue
        text = str(value)
        if len(text) > _PARAM_VALUE_MAX:
            text = text[: _PARAM_VALUE_MAX - 3] + "..."
        out[name] = text
    return out


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(float(value))


class MlflowRun:
    """One MLflow run for one training: ``start`` -> ``on_epoch`` per epoch -> ``log_outputs``
    -> ``end``. Also a context manager (``end("FAILED")`` when the block raises).

    Args:
        uri: tracking URI or local folder (None: ``./mlruns``).
        experiment: experiment name (created when missing).
        run_name: MLflow run name (None: MLflow picks one).
        tags: extra run tags.
    """

    def __init__(self, *, uri: str | os.PathLike[str] | None = None,
                 experiment: str = DEFAULT_EXPERIMENT, run_name: str | None = None,
                 tags: Mapping[str, str] | None = None) -> None:
        if not experiment or not experiment.strip():
            raise ValueError("--experiment is empty; pass an experiment name")
        self.uri = resolve_tracking_uri(uri)
        self.experiment = experiment
        self.run_name = run_name
        self.tags = dict(tags or {})
        self.run_id: str | None = None
        self._client: MlflowClient | None = None

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            self._client = _mlflow_client(self.uri)
        return self._client

    def start(self, params: Mapping[str, Any] | object | None = None) -> str:
        """Open the run (experiment created if missing), log ``params``; returns the run id."""
        from mlflow.entities import Param

        client = self.client
        found = client.get_experiment_by_name(self.experiment)
        experiment_id = (found.experiment_id if found is not None
                         else client.create_experiment(self.experiment))
        tags = {"mlflow.source.name": "pinn-torch", **self.tags}
        run = client.create_run(experiment_id, run_name=self.run_name, tags=tags)
        self.run_id = run.info.run_id
        if params is not None:
            flat = list(flatten_params(params).items())
            for lo in range(0, len(flat), 100):  # MLflow's log_batch takes <= 100 params
                client.log_batch(self.run_id, params=[Param(k, v) for k, v in flat[lo:lo + 100]])
        logger.info("MLflow run %s in experiment %r at %s", self.run_id, self.experiment,
                    self.uri)
        return self.run_id

    def _require_run(self) -> str:
        if self.run_id is None:
            raise RuntimeError("MlflowRun.start() was not called")
        return self.run_id

    def on_epoch(self, report: EpochReport) -> None:
        """Log one epoch's metrics at step ``report.epoch`` (non-finite values skipped)."""
        from mlflow.entities import Metric

        run_id = self._require_run()
        stamp = int(time.time() * 1000)
        values: dict[str, float | None] = {
            "train_loss": report.train_loss, "val_loss": report.val_loss, "lr": report.lr,
            "epoch_seconds": report.seconds,
        }
        values.update({f"term.{k}": v for k, v in report.terms.items()})
        metrics = [Metric(k, float(v), stamp, int(report.epoch))  # type: ignore[arg-type]
                   for k, v in values.items() if _finite(v)]
        if metrics:
            self.client.log_batch(run_id, metrics=metrics)

    __call__ = on_epoch

    def log_outputs(self, **files: Path | None) -> None:
        """Log output files as artifacts: keys of :data:`ARTIFACTS` (``archive``, ``history``,
        ``loss_plot``, ``config``) -> local paths; None or missing files are skipped."""
        run_id = self._require_run()
        unknown = sorted(set(files) - set(ARTIFACTS))
        if unknown:
            raise ValueError(f"unknown MLflow output(s) {unknown}; known: {sorted(ARTIFACTS)}")
        for key, path in files.items():
            if path is None or not Path(path).is_file():
                continue
            target = ARTIFACTS[key]
            folder = str(Path(target).parent) if "/" in target else None
            if Path(path).name != Path(target).name:
                with tempfile.TemporaryDirectory() as tmp:
                    renamed = Path(tmp) / Path(target).name
                    renamed.write_bytes(Path(path).read_bytes())
                    self.client.log_artifact(run_id, str(renamed), folder)
            else:
                self.client.log_artifact(run_id, str(path), folder)

    def end(self, status: str = "FINISHED") -> None:
        """Close the run with ``FINISHED``, ``FAILED`` or ``KILLED`` (no-op if not started)."""
        if self.run_id is not None:
            self.client.set_terminated(self.run_id, status=status)

    def __enter__(self) -> MlflowRun:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            self.end("FINISHED")
        elif issubclass(exc_type, KeyboardInterrupt):
            self.end("KILLED")
        else:
            self.end("FAILED")


def start_training_run(config: object, sources: list[str], *,
                       uri: str | os.PathLike[str] | None = None,
                       experiment: str | None = None) -> MlflowRun:
    """An open run for one training (ENG-182): params = the resolved ``config`` (an
    ``EngineConfig``, logged under ``engine.``) and the training files; a tag lists them."""
    run = MlflowRun(uri=uri, experiment=experiment or DEFAULT_EXPERIMENT,
                    tags={"training_files": ", ".join(sources)[:5000]})
    run.start({"engine": config, "training_files": list(sources)})
    return run


def finish_training_run(run: MlflowRun, config: object, *, archive: Path,
                        history: Path | None, loss_plot: Path | None = None,
                        status: str = "FINISHED") -> None:
    """Log the outputs and the resolved configuration (``config.json``) as artifacts and close
    the run as ``status`` (``FINISHED``; ``KILLED`` for a training a signal stopped after
    saving, CFG-262)."""
    import json

    with tempfile.TemporaryDirectory() as tmp:
        resolved = Path(tmp) / ARTIFACTS["config"]
        data = asdict(config) if is_dataclass(config) and not isinstance(config, type) else config
        resolved.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
        run.log_outputs(archive=archive, history=history, loss_plot=loss_plot, config=resolved)
    run.end(status)


def parse_runs_uri(text: str) -> tuple[str, str]:
    """``runs:/RUN_ID/path`` -> ``(RUN_ID, path)`` (path defaults to the model archive;
    ``runs:/RUN_ID/model`` means ``model/wts.h5.zip``)."""
    if not text.startswith("runs:/"):
        raise ValueError(f"{text!r} is not an MLflow runs:/RUN_ID/PATH URI")
    parts = text[len("runs:/"):].strip("/").split("/", 1)
    if not parts[0]:
        raise ValueError(f"{text!r} names no run; write runs:/RUN_ID/model/wts.h5.zip")
    path = parts[1] if len(parts) == 2 and parts[1] else ARTIFACTS["archive"]
    if path == Path(ARTIFACTS["archive"]).parent.as_posix():
        path = ARTIFACTS["archive"]
    return parts[0], path


def fetch_run_file(run_id: str, path: str, dst: Path, *,
                   uri: str | os.PathLike[str] | None = None) -> Path:
    """Download artifact ``path`` of run ``run_id`` (store ``uri``) into folder ``dst``.

    Raises ValueError naming the run, the path and the store when either is missing.
    """
    from mlflow.exceptions import MlflowException

    resolved = resolve_tracking_uri(uri)
    client = _mlflow_client(resolved)
    try:
        client.get_run(run_id)
    except MlflowException as exc:
        raise ValueError(
            f"MLflow run {run_id!r} not found in {resolved}; check the run id (mlflow ui) and "
            "--mlflow-uri"
        ) from exc
    dst.mkdir(parents=True, exist_ok=True)
    try:
        local = client.download_artifacts(run_id, path, str(dst))
    except (MlflowException, OSError) as exc:
        raise ValueError(
            f"MLflow run {run_id!r} has no artifact {path!r} ({exc}); the run must come from "
            "pinn-torch train --mlflow"
        ) from exc
    result = Path(local)
    if not result.is_file():
        raise ValueError(f"MLflow artifact {path!r} of run {run_id!r} is a folder, not a file; "
                         f"name the file (e.g. {ARTIFACTS['archive']})")
    return result


def load_model_from_run(run_id: str, *, path: str = ARTIFACTS["archive"],
                        uri: str | os.PathLike[str] | None = None,
                        device: str = "cpu") -> ModelBundle:
    """The model archive of an MLflow run, loaded by :func:`engine.archive.load_archive`
    (the safe loader: no unpickling). The download lives in a temporary folder."""
    from ptychodus_pinn_torch.engine.archive import load_archive

    with tempfile.TemporaryDirectory(prefix="pinn-torch-mlflow-") as tmp:
        local = fetch_run_file(run_id, path, Path(tmp), uri=uri)
        return load_archive(local, device=device)
