"""Conformance of the training engine, inference and the train/reconstruct commands
(specs/ENGINE.md). Tiny sizes: N = 64, n_filters_scale = 1, 16 scan positions."""

from __future__ import annotations

import json
import math
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ptychodus_pinn_torch.config.engine import EngineConfig
from ptychodus_pinn_torch.conformance.helpers import tiny_engine, tiny_scan, tiny_training
from ptychodus_pinn_torch.data import RawData
from ptychodus_pinn_torch.engine.events import EpochReport, TrainCallbacks
from ptychodus_pinn_torch.engine.losses import compute_loss
from ptychodus_pinn_torch.engine.schedule import EarlyStopping, make_scheduler
from ptychodus_pinn_torch.engine.training import train_model


def _on_epoch(fn: Any) -> TrainCallbacks:
    return TrainCallbacks(on_epoch=(fn,))


@pytest.fixture(scope="module")
def scan() -> RawData:
    return tiny_scan()


@pytest.fixture(scope="module")
def two_epochs(scan: RawData, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A 2-epoch run with a checkpoint folder, shared by several rules."""
    folder = tmp_path_factory.mktemp("eng")
    seen: list[EpochReport] = []
    res = train_model(scan, tiny_engine(2), checkpoint_dir=folder, callbacks=_on_epoch(seen.append))
    return {"result": res, "folder": folder, "seen": seen}


@pytest.mark.spec("ENG-001")
def test_fit_defaults_match_upstream() -> None:
    from ptychodus_pinn_torch.engine.schedule import make_optimizer

    o = EngineConfig(training=tiny_training())
    plateau = o.plateau()
    assert (o.learning_rate, o.validation_fraction, plateau.factor, plateau.patience,
            plateau.min_lr, plateau.threshold, o.early_stop_patience) == (
                1e-3, 0.05, 0.5, 2, 1e-4, 1e-4, 3)
    p = torch.nn.Parameter(torch.zeros(1))
    opt = make_optimizer([p], o)
    assert type(opt) is torch.optim.Adam and opt.defaults["betas"] == (0.9, 0.999)
    assert opt.defaults["weight_decay"] == 0.0
    sched = make_scheduler(opt, plateau)
    lrs = []
    for loss in [1.0, 0.99995, 1.0, 1.0] + [1.0] * 10:  # 5e-5 < min_delta: no improvement
        sched.step(loss)
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[:3] == [1e-3] * 3 and lrs[3] == pytest.approx(5e-4)
    assert min(lrs) == pytest.approx(1e-4)
    es = EarlyStopping(3)
    assert [es.step(v) for v in (2.0, 1.0, 1.0, 1.0, 1.0)] == [False, False, False, False, True]
    with pytest.raises(ValueError, match="EngineConfig.validation_fraction"):
        EngineConfig(training=tiny_training(), validation_fraction=1.5)


@pytest.mark.spec("ENG-002")
def test_pinn_loss_is_the_weighted_sum_of_upstream_terms(scan: RawData) -> None:
    from ptychodus_pinn_torch.model import build_model

    cfg = tiny_engine(1, mae_weight=0.3, nll_weight=0.7)
    s = math.sqrt(1e6) / 32.0
    torch.manual_seed(0)
    model = build_model(cfg.model, probe=scan.probeGuess, intensity_scale=s)
    d = scan.diff3d[:4].astype(np.float64)
    x_full = d * np.sqrt(32.0**2 / np.mean(np.sum(d**2, axis=(1, 2))))
    x = torch.from_numpy((x_full * s).astype(np.float32))[:, None]
    with torch.no_grad():
        out = model(x, torch.zeros(4, 1, 2))
        loss, terms = compute_loss(out, x, None, cfg.loss_weights(), supervised=False)
    a = out.pred_amp.numpy().astype(np.float64)
    y = x.numpy().astype(np.float64)
    nll = np.mean(a**2 - y**2 * np.log(np.maximum(a**2, 1e-12)))
    mae = np.mean(np.abs(y - a))
    np.testing.assert_allclose(float(terms["nll"]), 0.7 * nll, rtol=1e-5)
    np.testing.assert_allclose(float(terms["mae"]), 0.3 * mae, rtol=1e-5)
    np.testing.assert_allclose(float(loss), 0.7 * nll + 0.3 * mae, rtol=1e-5)


@pytest.mark.spec("ENG-003")
def test_supervised_mode_learns_from_labels(scan: RawData) -> None:
    res = train_model(scan, tiny_engine(4, model_type="supervised",
                                    engine={"learning_rate": 3e-3}))
    losses = [h.train_loss for h in res.history]
    assert set(res.history[0].terms) == {"amp_mae", "phase_mae"}
    assert losses[-1] < 0.8 * losses[0]
    bare = RawData(scan.xcoords, scan.ycoords, None, None, scan.diff3d, scan.probeGuess, None)
    with pytest.raises(ValueError, match="needs labels"):
        train_model(bare, tiny_engine(1, model_type="supervised"))


@pytest.mark.spec("ENG-004")
def test_seeded_cpu_training_is_deterministic(scan: RawData, two_epochs: dict) -> None:
    again = train_model(scan, tiny_engine(2))
    first = two_epochs["result"]
    assert [h.train_loss for h in again.history] == [h.train_loss for h in first.history]
    for k, v in first.bundle.model.state_dict().items():
        assert torch.equal(v, again.bundle.model.state_dict()[k]), k


@pytest.mark.spec("ENG-005")
def test_checkpoint_is_atomic_and_resume_equals_uninterrupted(
    scan: RawData, two_epochs: dict, tmp_path: Path
) -> None:
    folder = two_epochs["folder"]
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint.pt"]  # no temp leftovers
    state = torch.load(folder / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 2 and len(state["history"]) == 2
    train_model(scan, tiny_engine(1), checkpoint_dir=tmp_path)
    resumed = train_model(scan, tiny_engine(2), checkpoint_dir=tmp_path, resume=True)
    full = two_epochs["result"]
    np.testing.assert_allclose([h.train_loss for h in resumed.history],
                               [h.train_loss for h in full.history], rtol=1e-5)
    for k, v in full.bundle.model.state_dict().items():
        torch.testing.assert_close(resumed.bundle.model.state_dict()[k], v, rtol=1e-5,
                                   atol=1e-6, msg=k)
    other = tiny_engine(3, model={"n_filters_scale": 2})
    with pytest.raises(ValueError, match="n_filters_scale"):
        train_model(scan, other, checkpoint_dir=tmp_path, resume=True)


@pytest.mark.spec("ENG-006")
def test_stop_ends_within_a_batch_and_keeps_the_last_finished_epoch(
    scan: RawData, two_epochs: dict, tmp_path: Path
) -> None:
    polls = {"n": 0}

    def should_stop() -> bool:
        polls["n"] += 1
        return len(seen) == 1  # first poll of epoch 2

    seen: list[EpochReport] = []
    res = train_model(scan, tiny_engine(5), checkpoint_dir=tmp_path,
                      callbacks=TrainCallbacks(on_epoch=(seen.append,), should_stop=should_stop))
    assert res.stopped == "stopped by request during epoch 2; kept the weights of epoch 1"
    assert len(res.history) == 1
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["epoch"] == 1
    # epoch 1 had 4 batches (15 training groups / 4), each polled twice; stop at the next poll
    assert polls["n"] == 2 * 4 + 1
    one = train_model(scan, tiny_engine(1))
    for k, v in one.bundle.model.state_dict().items():
        assert torch.equal(res.bundle.model.state_dict()[k], v), k


@pytest.mark.spec("ENG-007")
def test_non_finite_loss_stops_with_message_and_last_good_weights(scan: RawData) -> None:
    res = train_model(scan, tiny_engine(3, engine={"learning_rate": 1e30}))
    assert res.stopped is not None and res.stopped.startswith("non-finite loss at epoch 1")
    assert "lower learning rate" in res.stopped and res.history == []
    torch.manual_seed(0)
    from ptychodus_pinn_torch.model import build_model

    fresh = build_model(tiny_engine().model, probe=scan.probeGuess, intensity_scale=31.25)
    for k, v in fresh.state_dict().items():
        assert torch.equal(res.bundle.model.state_dict()[k], v), k


@pytest.mark.spec("ENG-008")
def test_inference_stitches_every_position_on_the_data_grid(
    scan: RawData, two_epochs: dict
) -> None:
    from ptychodus_pinn_torch.engine.inference import reconstruct

    bundle = two_epochs["result"].bundle
    a = reconstruct(bundle, scan, batch_size=3, device="cpu", canvas=True)
    b = reconstruct(bundle, scan, batch_size=64, device="cpu")
    assert a.object.shape == scan.objectGuess.shape and a.object.dtype == np.complex64
    assert a.coverage.dtype == np.float32 and a.on_data_grid
    rows, cols = np.rint(scan.ycoords).astype(int), np.rint(scan.xcoords).astype(int)
    assert (a.coverage[rows, cols] > 0).all()
    np.testing.assert_allclose(a.object, b.object, rtol=1e-5, atol=1e-6)
    assert a.canvas is not None and a.canvas.shape[0] == a.canvas.shape[1]
    assert a.canvas.shape[2] == 1
    one = RawData(np.array([47.0]), np.array([50.0]), None, None, scan.diff3d[:1],
                  scan.probeGuess, None, objectGuess=scan.objectGuess)
    r1 = reconstruct(bundle, one, device="cpu")
    np.testing.assert_allclose(r1.object[50, 47], r1.patches[0, 32, 32], rtol=1e-5)
    bare = RawData(scan.xcoords, scan.ycoords, None, None, scan.diff3d, scan.probeGuess, None)
    r2 = reconstruct(bundle, bare, device="cpu")
    assert not r2.on_data_grid and "no objectGuess" in r2.note


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ddp_worker(rank: int, world: int, port: int, folder: str) -> None:
    import os

    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    scan = tiny_scan()
    seen: list[int] = []
    res = train_model(scan, tiny_engine(1), checkpoint_dir=Path(folder) / "ckpt",
                      callbacks=_on_epoch(lambda r: seen.append(r.epoch)))
    torch.save({"state": res.bundle.model.state_dict(), "seen": seen,
                "losses": [h.train_loss for h in res.history],
                "group_left": torch.distributed.is_initialized()},
               Path(folder) / f"rank{rank}.pt")


@pytest.mark.slow
@pytest.mark.spec("ENG-009")
def test_two_gloo_ranks_stay_identical_and_rank0_writes(tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for k, v in r0["state"].items():
        assert torch.equal(v, r1["state"][k]), k
    assert r0["losses"] == r1["losses"]
    assert r0["seen"] == [1] and r1["seen"] == []
    assert not r0["group_left"] and not r1["group_left"]
    assert torch.load(tmp_path / "ckpt" / "checkpoint.pt", weights_only=True)["epoch"] == 1


@pytest.mark.slow
@pytest.mark.spec("ENG-010")
def test_train_and_reconstruct_commands(scan: RawData, tmp_path: Path, capsys) -> None:
    from ptychodus_pinn_torch.cli.main import main

    data = tmp_path / "scan.npz"
    scan.to_file(data)
    out = tmp_path / "run"
    assert main(["train", "--train", str(data), "--out", str(out), "--epochs", "1",
                 "--batch-size", "8", "--n-filters-scale", "1", "--n-groups", "16",
                 "--device", "cpu", "--no-progress"]) == 0
    hist = json.loads((out / "history.json").read_text())
    assert set(hist["epochs"][0]) == {"epoch", "epochs", "train_loss", "val_loss", "lr",
                                      "seconds", "terms"}
    assert hist["nphotons"] == 1e6 and hist["N"] == 64
    assert (out / "wts.h5.zip").is_file() and (out / "loss.png").is_file()
    rec, png = tmp_path / "rec.npz", tmp_path / "rec.png"
    assert main(["reconstruct", "--model", str(out / "wts.h5.zip"), "--data", str(data),
                 "--out", str(rec), "--png", str(png), "--device", "cpu"]) == 0
    with np.load(rec) as z:
        assert z["object"].shape == scan.objectGuess.shape and z["object"].dtype == np.complex64
        assert z["coverage"].dtype == np.float32
    assert png.is_file()
    capsys.readouterr()
    assert main(["train", "--train", str(tmp_path / "nope.npz"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nope.npz" in err and "Traceback" not in err


@pytest.mark.spec("PHYS-170")
def test_training_leaves_the_scans_bad_pixels_out(scan: RawData) -> None:
    import copy

    stop = tiny_scan(beamstop_diameter=6)
    assert stop.bad_pixels is not None and stop.bad_pixels.sum() > 0
    unmasked = copy.copy(stop)
    unmasked.bad_pixels = None
    masked_run = train_model(stop, tiny_engine(1))
    plain_run = train_model(unmasked, tiny_engine(1))
    assert masked_run.history[0].train_loss != pytest.approx(plain_run.history[0].train_loss,
                                                             rel=1e-6)
    a, b = masked_run.bundle.model.state_dict(), plain_run.bundle.model.state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a)
    # an all-False mask trains bit-identical weights to no mask
    all_good = copy.copy(scan)
    all_good.bad_pixels = np.zeros((scan.N, scan.N), bool)
    one, two = train_model(scan, tiny_engine(1)), train_model(all_good, tiny_engine(1))
    assert one.history[0].train_loss == two.history[0].train_loss
    for k, v in one.bundle.model.state_dict().items():
        assert torch.equal(v, two.bundle.model.state_dict()[k]), k
