"""``pinn-torch train`` and ``pinn-torch reconstruct`` end to end on a tiny simulated scan."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ptychodus_pinn_torch.cli.main import main
from ptychodus_pinn_torch.data.simulate import simulate_scan


@pytest.fixture(scope="module")
def npz(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("cli")
    train = folder / "train.npz"
    test = folder / "test.npz"
    simulate_scan(object_shape=(96, 96), seed=8, overlap=0.5).to_file(train)
    simulate_scan(object_shape=(96, 96), seed=9, overlap=0.5).to_file(test)
    return train, test


# slow: three real runs (train, reconstruct, resume) in one test, ~5 s on an idle 2-core box plus
# torch's one-off optimizer import; it is the end-to-end proof of the command line.
@pytest.mark.slow
def test_train_then_reconstruct_writes_every_output(npz, tmp_path: Path, capsys) -> None:
    train, test = npz
    out = tmp_path / "run"
    rc = main(["train", "--train", str(train), "--test", str(test), "--out", str(out),
               "--epochs", "2", "--batch-size", "4", "--n-filters-scale", "1", "--n-groups",
               "16", "--device", "cpu", "--seed", "1", "--no-progress"])
    assert rc == 0
    for name in ("wts.h5.zip", "history.json", "loss.png", "checkpoints/checkpoint.pt"):
        assert (out / name).is_file(), name
    hist = json.loads((out / "history.json").read_text())
    assert [e["epoch"] for e in hist["epochs"]] == [1, 2]
    assert hist["nphotons"] == 1e6  # from the data's metadata
    assert hist["test_loss"] is not None and hist["N"] == 64
    assert "trained 2 epoch(s)" in capsys.readouterr().out

    rec = tmp_path / "rec.npz"
    png = tmp_path / "rec.png"
    rc = main(["reconstruct", "--model", str(out / "wts.h5.zip"), "--data", str(test),
               "--out", str(rec), "--png", str(png), "--device", "cpu", "--canvas"])
    assert rc == 0 and png.is_file() and png.stat().st_size > 1000
    with np.load(rec) as z:  # no allow_pickle: plain arrays only
        assert z["object"].dtype == np.complex64 and z["object"].shape == (96, 96)
        assert z["coverage"].dtype == np.float32 and z["coverage"].shape == (96, 96)
        assert z["canvas"].ndim == 3
        assert np.isfinite(z["object"]).all() and (z["coverage"] > 0).any()

    # --resume continues from the checkpoint up to the new epoch count
    rc = main(["train", "--train", str(train), "--out", str(out), "--epochs", "3",
               "--batch-size", "4", "--n-filters-scale", "1", "--n-groups", "16",
               "--device", "cpu", "--seed", "1", "--no-progress", "--resume"])
    assert rc == 0
    hist = json.loads((out / "history.json").read_text())
    assert [e["epoch"] for e in hist["epochs"]] == [1, 2, 3]


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["train", "--train", "missing.npz", "--out", "o"], "missing.npz: no such file"),
        (["train", "--train", "{train}", "--out", "o", "--epochs", "0"], "--epochs must be >= 1"),
        # refused before training, not when the finished model is saved (the archive's rule)
        (["train", "--train", "{train}", "--out", "o", "--batch-size", "6"],
         "batch_size must be positive power of 2"),
        (["train", "--train", "{train}", "--out", "o", "--device", "cuda:7"], "device"),
        (["train", "--train", "{train}", "--out", "o", "--architecture", "fno", "--attention",
          "cbam_encoder"], "(flag --attention)"),
        (["train", "--train", "{train}", "--out", "o", "--fno-modes", "6"], "(flag --fno-modes)"),
        (["train", "--train", "{train}", "--out", "o", "--epochs", "3", "--stage-1-epochs", "2"],
         "must equal TrainingConfig.nepochs = 3"),
        (["reconstruct", "--model", "nope.zip", "--data", "{train}", "--out", "r.npz"],
         "nope.zip"),
        (["reconstruct", "--model", "{train}", "--data", "{train}", "--out", "r.txt"],
         "must end in .npz"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(npz, tmp_path: Path, capsys, argv, needle,
                                           monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    argv = [a.replace("{train}", str(npz[0])) for a in argv]
    rc = main(argv + (["--no-progress"] if argv[0] == "train" else []))
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert needle in err and "Traceback" not in err
    assert len(err.splitlines()) == 1


def test_model_that_is_not_an_archive_is_refused(npz, tmp_path: Path, capsys) -> None:
    rc = main(["reconstruct", "--model", str(npz[0]), "--data", str(npz[0]),
               "--out", str(tmp_path / "r.npz")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "Traceback" not in err and len(err.splitlines()) == 1


def test_supervised_training_from_the_command_line(npz, tmp_path: Path) -> None:
    out = tmp_path / "sup"
    rc = main(["train", "--train", str(npz[0]), "--out", str(out), "--epochs", "1",
               "--batch-size", "8", "--n-filters-scale", "1", "--n-groups", "16",
               "--model-type", "supervised", "--device", "cpu", "--no-progress"])
    assert rc == 0 and (out / "wts.h5.zip").is_file()
    hist = json.loads((out / "history.json").read_text())
    assert set(hist["epochs"][0]["terms"]) == {"amp_mae", "phase_mae"}


def test_more_groups_than_points_at_gridsize_2_names_the_flags(npz, tmp_path: Path, capsys) -> None:
    train, _ = npz
    from ptychodus_pinn_torch.data import RawData

    n = RawData.from_file(train).n_positions
    argv = ["train", "--train", str(train), "--out", str(tmp_path / "o"), "--gridsize", "2",
            "--n-groups", str(n + 1), "--epochs", "1", "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert f"--n-groups {n}" in err[0] and "--enable-oversampling" in err[0]
    assert not (tmp_path / "o" / "wts.h5.zip").exists()


def test_generator_and_stage_flags_reach_the_archive(npz, tmp_path: Path) -> None:
    out = tmp_path / "unet"
    rc = main(["train", "--train", str(npz[0]), "--out", str(out), "--epochs", "2",
               "--batch-size", "8", "--n-filters-scale", "1", "--n-groups", "16",
               "--architecture", "unet", "--attention", "eca_encoder", "--output-mode",
               "real_imag", "--stage-1-epochs", "1", "--stage-3-epochs", "1",
               "--stage-3-lr-factor", "0.5", "--device", "cpu", "--no-progress"])
    assert rc == 0
    from ptychodus_pinn_torch.engine.archive import load_archive

    bundle = load_archive(out)
    mc = bundle.model_config
    assert (mc.architecture, mc.eca_encoder, mc.cnn_output_mode) == ("unet", True, "real_imag")
    assert type(bundle.model.generator).__name__ == "UNet"
    hist = json.loads((out / "history.json").read_text())["epochs"]
    assert [e["terms"]["physics_weight"] for e in hist] == [0.0, 1.0]
    assert [e["lr"] for e in hist] == [pytest.approx(1e-3), pytest.approx(5e-4)]
