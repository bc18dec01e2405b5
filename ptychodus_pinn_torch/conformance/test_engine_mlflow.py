"""ENG-180..182: MLflow tracking into a real local store (no mocks) and models loaded back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ptychodus_pinn_torch.engine import mlflow_tracking as mt
from ptychodus_pinn_torch.engine.archive import ArchiveError, load_archive, save_archive
from ptychodus_pinn_torch.engine.events import EpochReport, TrainCallbacks
from ptychodus_pinn_torch.engine.reporting import plot_loss, write_history
from ptychodus_pinn_torch.engine.training import train_model

pytest.importorskip("mlflow")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from ptychodus_pinn_torch.config.engine import EngineConfig
    from ptychodus_pinn_torch.config.spec import ModelConfig, TrainingConfig
    from ptychodus_pinn_torch.data.simulate import simulate_scan

    raw = simulate_scan(N=64, object_shape=(96, 96), overlap=0.5, seed=2)
    config = TrainingConfig(model=ModelConfig(N=64, gridsize=1, n_filters_scale=1),
                            batch_size=4, nepochs=2, nphotons=1e6, n_groups=12,
                            backend="pytorch")
    folder = tmp_path_factory.mktemp("mlflow")
    store = folder / "store"
    run = mt.MlflowRun(uri=store, experiment="conformance", run_name="tiny")
    seen: list[EpochReport] = []

    def on_epoch(report: EpochReport) -> None:
        seen.append(report)
        run.on_epoch(report)

    with run:
        run.start({"training": config, "seed": 1})
        engine = EngineConfig(training=config, device="cpu", seed=1, validation_fraction=0.25)
        result = train_model(raw, engine, callbacks=TrainCallbacks(on_epoch=(on_epoch,)))
        out = folder / "out"
        out.mkdir()
        archive = save_archive(out / "wts.h5.zip", result.bundle)
        history = write_history(out / "history.json", result.history)
        plot = plot_loss(out / "loss.png", result.history)
        cfg = out / "resolved.json"
        cfg.write_text(json.dumps({"N": 32}))
        run.log_outputs(archive=archive, history=history, loss_plot=plot, config=cfg)
    return {"run": run, "store": store, "history": seen, "archive": archive}


@pytest.mark.spec("ENG-180")
def test_run_logs_params_metrics_and_artifacts(trained) -> None:  # type: ignore[no-untyped-def]
    from mlflow.tracking import MlflowClient

    run: mt.MlflowRun = trained["run"]
    client = MlflowClient(tracking_uri=run.uri)
    info = client.get_run(run.run_id)
    assert info.info.status == "FINISHED" and info.info.run_name == "tiny"
    params = info.data.params
    assert params["training.model.N"] == "64" and params["training.nepochs"] == "2"
    assert params["training.batch_size"] == "4" and params["seed"] == "1"
    history: list[EpochReport] = trained["history"]
    for key, attr in (("train_loss", "train_loss"), ("val_loss", "val_loss"), ("lr", "lr")):
        logged = client.get_metric_history(run.run_id, key)
        assert [m.step for m in logged] == [1, 2]
        np.testing.assert_allclose([m.value for m in logged],
                                   [getattr(r, attr) for r in history], rtol=1e-12)
    assert client.get_metric_history(run.run_id, "term.nll")
    names = {a.path for a in client.list_artifacts(run.run_id)}
    assert names == {"model", "history.json", "loss.png", "config.json"}
    assert [a.path for a in client.list_artifacts(run.run_id, "model")] == ["model/wts.h5.zip"]
    # the local store is a plain folder: STORE/<experiment id>/<run id>/artifacts/...
    exp = client.get_experiment_by_name("conformance")
    on_disk = Path(trained["store"]) / exp.experiment_id / run.run_id / "artifacts"
    assert (on_disk / "model" / "wts.h5.zip").read_bytes() == trained["archive"].read_bytes()
    assert json.loads((on_disk / "config.json").read_text()) == {"N": 32}


@pytest.mark.spec("ENG-180")
def test_failed_block_marks_the_run_failed(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    run = mt.MlflowRun(uri=tmp_path / "s")
    with pytest.raises(RuntimeError, match="boom"), run:
        run.start({"a": 1})
        raise RuntimeError("boom")
    assert MlflowClient(run.uri).get_run(run.run_id).info.status == "FAILED"
    assert mt.flatten_params({"a": {"b": [1, 2], "c": None}}) == {"a.b": "[1, 2]", "a.c": "None"}
    with pytest.raises(ValueError, match="experiment"):
        mt.MlflowRun(uri=tmp_path / "s", experiment=" ")
    with pytest.raises(ValueError, match="unknown MLflow output"):
        run.log_outputs(weights=tmp_path)  # type: ignore[arg-type]


@pytest.mark.spec("ENG-181")
def test_model_loads_back_through_the_safe_loader(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run: mt.MlflowRun = trained["run"]
    bundle = mt.load_model_from_run(run.run_id, uri=trained["store"])
    reference = load_archive(trained["archive"])
    for (k, a), (_, b) in zip(bundle.model.state_dict().items(),
                              reference.model.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    assert mt.parse_runs_uri(f"runs:/{run.run_id}/model") == (run.run_id, "model/wts.h5.zip")
    assert mt.parse_runs_uri(f"runs:/{run.run_id}") == (run.run_id, "model/wts.h5.zip")
    assert mt.parse_runs_uri("runs:/abc/history.json") == ("abc", "history.json")
    with pytest.raises(ValueError, match="MLflow run 'nope' not found"):
        mt.load_model_from_run("nope", uri=trained["store"])
    with pytest.raises(ValueError, match="has no artifact 'model/other.zip'"):
        mt.load_model_from_run(run.run_id, path="model/other.zip", uri=trained["store"])

    # a tampered archive inside the store is refused by the same loader (sha256 check)
    hostile = mt.MlflowRun(uri=trained["store"], experiment="conformance")
    hostile.start()
    bad = tmp_path / "wts.h5.zip"
    data = bytearray(trained["archive"].read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    hostile.log_outputs(archive=bad)
    hostile.end()
    with pytest.raises(ArchiveError):
        mt.load_model_from_run(hostile.run_id, uri=trained["store"])


@pytest.mark.spec("ENG-182")
def test_cli_train_and_reconstruct_through_mlflow(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    from ptychodus_pinn_torch.cli.main import main
    from ptychodus_pinn_torch.data.simulate import simulate_scan

    scan = tmp_path / "scan.npz"
    simulate_scan(N=64, object_shape=(96, 96), overlap=0.5, seed=5).to_file(scan)
    store, out = tmp_path / "store", tmp_path / "run"
    rc = main(["train", "--train", str(scan), "--out", str(out), "--epochs", "2",
               "--n-groups", "12", "--batch-size", "4", "--n-filters-scale", "1",
               "--device", "cpu", "--no-progress", "--mlflow-uri", str(store),
               "--experiment", "cli"])
    assert rc == 0
    client = MlflowClient(mt.resolve_tracking_uri(store))
    (run,) = client.search_runs([client.get_experiment_by_name("cli").experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["engine.training.nepochs"] == "2"
    assert run.data.params["engine.learning_rate"] == "0.001"
    history = json.loads((out / "history.json").read_text())["epochs"]
    logged = client.get_metric_history(run.info.run_id, "train_loss")
    assert [m.value for m in logged] == pytest.approx([h["train_loss"] for h in history])
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {
        "model", "history.json", "loss.png", "config.json"}

    by_file, by_run, by_uri = (tmp_path / f"{k}.npz" for k in ("file", "run", "uri"))
    common = ["--data", str(scan), "--device", "cpu", "--mlflow-uri", str(store)]
    assert main(["reconstruct", "--model", str(out / "wts.h5.zip"), "--out", str(by_file),
                 *common]) == 0
    assert main(["reconstruct", "--mlflow-run", run.info.run_id, "--out", str(by_run),
                 *common]) == 0
    assert main(["reconstruct", "--model", f"runs:/{run.info.run_id}/model", "--out",
                 str(by_uri), *common]) == 0
    with np.load(by_file) as a, np.load(by_run) as b, np.load(by_uri) as c:
        np.testing.assert_array_equal(a["object"], b["object"])
        np.testing.assert_array_equal(a["object"], c["object"])
    assert main(["reconstruct", "--mlflow-run", "missing", "--out", str(by_run), *common]) == 2
    assert main(["reconstruct", "--out", str(by_run), *common]) == 2  # neither model nor run
