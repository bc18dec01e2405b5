"""CFG-260..264: the command line's configuration files, fine-tuning from a file, and its exit
status after a signal (specs/CFG.md)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from ptychodus_pinn_torch.cli.main import main
from ptychodus_pinn_torch.conformance.helpers import TINY_TRAIN_FLAGS, tiny_scan, tiny_scan_file
from ptychodus_pinn_torch.engine.archive import load_archive

spec_rule = pytest.mark.spec

TRAIN_FLAGS = list(TINY_TRAIN_FLAGS)


@pytest.fixture(scope="module")
def scan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_scan_file(tmp_path_factory.mktemp("scan"))


def _signal_after_first_epoch(out: Path, signum: int) -> threading.Thread:
    """A thread that sends ``signum`` to this process once ``out/history.json`` (written at
    the checkpoint of epoch 1, after the signal handler is installed) exists."""

    def send() -> None:
        deadline = time.monotonic() + 300
        while not (out / "history.json").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signum)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


@spec_rule("CFG-262")
@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_train_stopped_by_a_signal_saves_then_exits_128_plus_signal(
        scan: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], signum: int,
        status: int) -> None:
    out = tmp_path / "run"
    thread = _signal_after_first_epoch(out, signum)
    store = tmp_path / "mlruns"
    rc = main(["train", "--train", str(scan), "--out", str(out), "--epochs", "400",
               "--mlflow-uri", str(store), "--experiment", "sig", *TRAIN_FLAGS])
    thread.join()
    err = [line for line in capsys.readouterr().err.splitlines()
           if line.startswith("pinn-torch train")]  # (MLflow's own lines aside)
    assert rc == status
    name = signal.Signals(signum).name
    assert len(err) == 1 and f"stopped by {name}" in err[0]
    assert str(out / "wts.h5.zip") in err[0]
    epochs = len(load_archive(out / "wts.h5.zip").history)
    assert 1 <= epochs < 400 and f"after epoch {epochs};" in err[0]
    assert name in json.loads((out / "history.json").read_text())["stopped"]
    from mlflow.tracking import MlflowClient

    from ptychodus_pinn_torch.engine.mlflow_tracking import resolve_tracking_uri

    client = MlflowClient(resolve_tracking_uri(store))
    (tracked,) = client.search_runs([client.get_experiment_by_name("sig").experiment_id])
    assert tracked.info.status == "KILLED"  # saved, but not finished


# --- CFG-260: reconstruct --config with a spec InferenceConfig ----------------------------------


@pytest.fixture(scope="module")
def model_dir(scan: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ptychodus_pinn_torch.conformance.helpers import tiny_engine
    from ptychodus_pinn_torch.engine.run import run_training

    out = tmp_path_factory.mktemp("model")
    run_training(scan, tiny_engine(1, model={"n_filters_scale": 1}), out)
    return out


def _write(path: Path, doc: dict) -> Path:
    path.write_text(json.dumps(doc))
    return path


@spec_rule("CFG-260")
def test_reconstruct_reads_a_spec_inference_config(
        scan: Path, model_dir: Path, tmp_path: Path) -> None:
    import numpy as np

    from ptychodus_pinn_torch.config import spec
    from ptychodus_pinn_torch.engine.run import run_inference

    section = {"model": {"N": 64, "gridsize": 1, "n_filters_scale": 1},
               "model_path": str(model_dir), "test_data_file": str(scan),
               "output_dir": str(tmp_path / "inf"), "n_subsample": 8, "subsample_seed": 3,
               "backend": "pytorch"}
    cfg = _write(tmp_path / "inference.json", section)
    assert main(["reconstruct", "--config", str(cfg), "--no-progress", "--device", "cpu"]) == 0
    with np.load(tmp_path / "inf" / "reconstruction.npz") as z:
        got = z["object"]
    model = spec.ModelConfig(N=64, gridsize=1, n_filters_scale=1)
    rec, _ = run_inference(spec.InferenceConfig(
        model=model, model_path=model_dir, test_data_file=scan, output_dir=tmp_path / "ref",
        n_subsample=8, subsample_seed=3), device="cpu")
    np.testing.assert_array_equal(got, rec.object)  # one meaning for both entrances
    # the sampling fields act: all 16 positions give another object
    for key in ("n_subsample", "subsample_seed"):
        del section[key]
    whole = _write(tmp_path / "whole.json", {**section, "output_dir": str(tmp_path / "all")})
    assert main(["reconstruct", "--config", str(whole), "--no-progress", "--device", "cpu"]) == 0
    with np.load(tmp_path / "all" / "reconstruction.npz") as z:
        assert float(np.abs(z["object"] - got).max()) > 1e-3
    # the inference section of `pinn-torch translate --to spec` output, flags over the file
    doc = {"model": {"N": 64}, "training": {"nepochs": 1}, "legacy_params": {},
           "inference": {**section, "output_dir": str(tmp_path / "unused")}}
    translated = _write(tmp_path / "translated.json", doc)
    out = tmp_path / "flag.npz"
    assert main(["reconstruct", "--config", str(translated), "--out", str(out),
                 "--no-progress", "--device", "cpu"]) == 0
    assert out.is_file() and not (tmp_path / "unused").exists()
    settings = json.loads((tmp_path / "flag.config.json").read_text())
    assert settings["model"] == str(model_dir) and settings["data"] == str(scan)


@spec_rule("CFG-260")
@pytest.mark.parametrize("change, named", [
    ({"n_groups": 10}, "InferenceConfig.n_groups"),
    ({"debug": True}, "InferenceConfig.debug"),
    ({"enable_oversampling": True}, "InferenceConfig.enable_oversampling"),
    ({"model_pth": "x"}, "model_pth"),
    ({"model": {"N": 64, "gridsize": 2}}, "InferenceConfig.model.gridsize"),
    ({"model": {"N": 64, "n_filters_scale": 2}}, "InferenceConfig.model.n_filters_scale"),
])
def test_reconstruct_spec_fields_refused_by_name(
        scan: Path, model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        change: dict, named: str) -> None:
    section = {"model": {"N": 64}, "model_path": str(model_dir), "test_data_file": str(scan),
               "output_dir": str(tmp_path / "inf"), **change}
    cfg = _write(tmp_path / "bad.json", section)
    assert main(["reconstruct", "--config", str(cfg), "--no-progress", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and named in err[0] and str(cfg) in err[0], err
    assert not (tmp_path / "inf").exists()


# --- CFG-261: train --init-model with --config -------------------------------------------------


def _fine_tune_doc(scan: Path, out: Path, model: dict | None = None) -> dict:
    return {"model": {"N": 64, **(model or {})}, "train_data_file": str(scan), "nepochs": 5,
            "batch_size": 4, "n_groups": 8, "nphotons": 1e6, "output_dir": str(out),
            "engine": {"device": "cpu", "early_stop_patience": None, "epochs_fine_tune": 2,
                       "fine_tune_gamma": 0.5}}


@spec_rule("CFG-261")
def test_fine_tuning_from_a_config_file(scan: Path, model_dir: Path, tmp_path: Path) -> None:
    init = model_dir / "wts.h5.zip"
    cfg = _write(tmp_path / "ft.json", _fine_tune_doc(scan, tmp_path / "from_file"))
    assert main(["train", "--config", str(cfg), "--init-model", str(init), "--no-progress"]) == 0
    by_file = load_archive(tmp_path / "from_file" / "wts.h5.zip")
    assert by_file.model_config.n_filters_scale == 1  # the initial model's, not the default 2
    assert by_file.extra["init_model"] == str(init.resolve())
    assert len(by_file.history) == 2  # epochs_fine_tune
    assert by_file.history[0]["lr"] == pytest.approx(1e-3 * 0.5)  # learning_rate x gamma
    # the same run with flags only: the same losses, bit for bit
    assert main(["train", "--train", str(scan), "--out", str(tmp_path / "from_flags"),
                 "--init-model", str(init), "--fine-tune-epochs", "2", "--fine-tune-gamma",
                 "0.5", "--epochs", "5", "--batch-size", "4", "--n-groups", "8", "--nphotons",
                 "1e6", "--early-stop-patience", "0", "--device", "cpu", "--no-progress"]) == 0
    by_flags = load_archive(tmp_path / "from_flags" / "wts.h5.zip")
    assert [h["train_loss"] for h in by_file.history] == [
        h["train_loss"] for h in by_flags.history]
    # engine.init_model in the file instead of the flag; a flag over the file's epochs
    doc = _fine_tune_doc(scan, tmp_path / "in_file")
    doc["engine"]["init_model"] = str(init)
    cfg2 = _write(tmp_path / "ft2.json", doc)
    assert main(["train", "--config", str(cfg2), "--fine-tune-epochs", "1",
                 "--no-progress"]) == 0
    assert len(load_archive(tmp_path / "in_file" / "wts.h5.zip").history) == 1
    written = json.loads((tmp_path / "in_file" / "config.json").read_text())
    assert written["engine"]["init_model"] == str(init)
    assert written["engine"]["epochs_fine_tune"] == 1


@spec_rule("CFG-261")
@pytest.mark.parametrize("model, named", [
    ({"gridsize": 2}, "model.gridsize=2 differs from the initial model's gridsize=1"),
    ({"n_filters_scale": 2}, "model.n_filters_scale=2"),
    ({"architecture": "unet"}, "model.architecture='unet'"),
])
def test_fine_tuning_config_that_does_not_match_the_model(
        scan: Path, model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        model: dict, named: str) -> None:
    cfg = _write(tmp_path / "bad.json", _fine_tune_doc(scan, tmp_path / "out", model))
    rc = main(["train", "--config", str(cfg), "--init-model", str(model_dir / "wts.h5.zip"),
               "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and named in err[0] and str(cfg) in err[0], err
    assert not (tmp_path / "out").exists()
    # fine-tuning fields without a model to start from are refused by name
    doc = _fine_tune_doc(scan, tmp_path / "out")
    assert main(["train", "--config", str(_write(tmp_path / "no.json", doc)),
                 "--no-progress"]) == 2
    assert "EngineConfig.epochs_fine_tune=2 acts only when training starts from a model" in (
        capsys.readouterr().err)


# --- CFG-263: the bridge carries training_directories and the fine-tuning fields --------------


@spec_rule("CFG-263")
def test_bridge_carries_directories_and_fine_tuning(scan: Path, model_dir: Path,
                                                    tmp_path: Path) -> None:
    import dataclasses
    import warnings

    from ptychodus_pinn_torch.config.interop import bridge
    from ptychodus_pinn_torch.config.interop import params as pt
    from ptychodus_pinn_torch.engine.run import run_training

    folder = tmp_path / "scans"
    folder.mkdir()
    for seed in (5, 8):
        tiny_scan(seed).to_file(folder / f"s{seed}.npz")
    data = pt.DataConfig(nphotons=1e6, N=64, grid_size=(1, 1), C=1)
    model = pt.ModelConfig(C_model=1, C_forward=1, n_filters_scale=1)
    training = pt.TrainingConfig(training_directories=[str(folder)], n_groups=8, batch_size=4,
                                 epochs=3, epochs_fine_tune=1, fine_tune_gamma=0.5,
                                 test_data_file=str(scan), device="cpu")
    spec_model = bridge.to_model_config(data, model)
    init = str(model_dir / "wts.h5.zip")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        engine = bridge.to_engine_config(spec_model, data, model, training, init_model=init)
        with pytest.raises(ValueError, match=r"TrainingConfig\.epochs_fine_tune=1 acts only"):
            bridge.to_engine_config(spec_model, data, model, training)
    assert engine.train_data_files == (str(folder),)
    assert engine.training.train_data_file == folder  # the first stands in for it
    assert (engine.init_model, engine.epochs, engine.step_size) == (init, 1, 1e-3 * 0.5)
    # and back: from_engine gives the PyTorch fields, to_engine_config the same EngineConfig
    back = bridge.from_engine(engine)
    assert back.training.training_directories == [str(folder)]
    assert (back.training.epochs_fine_tune, back.training.fine_tune_gamma) == (1, 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = bridge.to_engine_config(
            bridge.to_model_config(back.data, back.model, back.overrides.model), back.data,
            back.model, back.training, None, back.overrides.training, init_model=init)
    assert again == engine
    # the pipeline trains one model over every scan the directories hold, fine-tuned
    run = run_training(None, dataclasses.replace(engine, early_stop_patience=None),
                       tmp_path / "out")
    assert run.archive is not None
    files = load_archive(run.archive).extra["training_files"]
    assert [Path(f["path"]).name for f in files] == ["s5.npz", "s8.npz"]
    assert len(run.result.history) == 1


# --- CFG-264: one builder for the command line and the benchmarks ------------------------------


@spec_rule("CFG-264")
def test_command_line_configuration_comes_from_the_shared_builder(scan: Path,
                                                                  tmp_path: Path) -> None:
    import argparse

    from ptychodus_pinn_torch.cli import train as train_cli
    from ptychodus_pinn_torch.config.builder import engine_config_for
    from ptychodus_pinn_torch.config.spec import ModelConfig
    from ptychodus_pinn_torch.data import RawData

    model = ModelConfig(N=64, gridsize=2, n_filters_scale=1, model_type="supervised")
    built = engine_config_for(model, epochs=3, batch_size=4, nphotons=1e6, n_groups=8,
                              neighbor_count=2, train=["a.npz", "b.npz"],
                              early_stop_patience=0, threads=0, learning_rate=2e-3)
    t = built.training
    assert t.neighbor_count == 4  # at least gridsize**2
    assert t.torch_loss_mode == "mae" and t.backend == "pytorch"
    assert (built.early_stop_patience, built.threads) == (None, None)
    assert built.train_data_files == ("a.npz", "b.npz") and t.train_data_file == Path("a.npz")
    explicit = engine_config_for(ModelConfig(N=64), epochs=3, batch_size=4, nphotons=1e6,
                                 n_groups=8, training_fields={"nll_weight": 0.5})
    assert explicit.training.nll_weight == 0.5 and explicit.training.torch_loss_mode == "poisson"
    # pinn-torch train's configuration is the builder's for the same settings
    parser = argparse.ArgumentParser()
    train_cli.add_arguments(parser)
    args = parser.parse_args(["--train", str(scan), "--out", str(tmp_path), "--gridsize", "2",
                              "--n-filters-scale", "1", "--epochs", "3", "--batch-size", "4",
                              "--n-groups", "8", "--nphotons", "1e6", "--lr", "2e-3"])
    from_cli = train_cli.build_configs(args, RawData.from_file(scan))
    same = engine_config_for(ModelConfig(N=64, gridsize=2, n_filters_scale=1), epochs=3,
                             batch_size=4, nphotons=1e6, n_groups=8, train=[scan],
                             output_dir=tmp_path, learning_rate=2e-3)
    assert from_cli == same
