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
from ptychodus_pinn_torch.conformance.helpers import tiny_scan
from ptychodus_pinn_torch.engine.archive import load_archive

spec_rule = pytest.mark.spec

TRAIN_FLAGS = ["--n-groups", "8", "--n-filters-scale", "1", "--batch-size", "4",
               "--no-progress", "--device", "cpu", "--early-stop-patience", "0"]


@pytest.fixture(scope="module")
def scan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scan") / "scan.npz"
    tiny_scan().to_file(path)
    return path


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
    rc = main(["train", "--train", str(scan), "--out", str(out), "--epochs", "400",
               *TRAIN_FLAGS])
    thread.join()
    err = [line for line in capsys.readouterr().err.splitlines()
           if line.startswith("pinn-torch train")]
    assert rc == status
    name = signal.Signals(signum).name
    assert len(err) == 1 and f"stopped by {name}" in err[0]
    assert str(out / "wts.h5.zip") in err[0]
    epochs = len(load_archive(out / "wts.h5.zip").history)
    assert 1 <= epochs < 400 and f"after epoch {epochs};" in err[0]
    assert name in json.loads((out / "history.json").read_text())["stopped"]


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
