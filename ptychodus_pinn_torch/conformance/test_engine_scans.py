"""ENG-183..185: one model over several scans, mapped scans streamed, fine-tuning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ptychodus_pinn_torch.config.engine import EngineConfig
from ptychodus_pinn_torch.config.spec import ModelConfig, TrainingConfig
from ptychodus_pinn_torch.data import RawData
from ptychodus_pinn_torch.data.mapped import write_mapped
from ptychodus_pinn_torch.data.simulate import simulate_scan
from ptychodus_pinn_torch.engine import distributed as distmod
from ptychodus_pinn_torch.engine.batches import group_for_training
from ptychodus_pinn_torch.engine.epoch import batch_loss
from ptychodus_pinn_torch.engine.gathered import GatheredPatterns
from ptychodus_pinn_torch.engine.session import setup
from ptychodus_pinn_torch.engine.training import train_model


def _config(**engine: object) -> EngineConfig:
    training = TrainingConfig(model=ModelConfig(N=64, gridsize=1, n_filters_scale=1),
                              batch_size=8, nepochs=1, nphotons=1e6, n_groups=16,
                              backend="pytorch")
    return EngineConfig(training=training, device="cpu", seed=3, validation_fraction=0.25,
                        **engine)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    folder = tmp_path_factory.mktemp("scans")
    a = simulate_scan(N=64, object_shape=(112, 112), overlap=0.5, seed=1, probe="pinhole")
    b = simulate_scan(N=64, object_shape=(112, 112), overlap=0.5, seed=2, probe="defocus")
    a.to_file(folder / "a.npz")
    b.to_file(folder / "b.npz")
    return {"a": a, "b": b, "folder": folder}


def _session(data: RawData | list[RawData], config: EngineConfig):  # type: ignore[no-untyped-def]
    ctx = distmod.init_distributed("cpu")
    return setup(data, config, torch.device("cpu"), ctx)


@pytest.mark.spec("ENG-183")
def test_several_scans_group_within_each_scan_with_their_own_probe(scans) -> None:  # type: ignore[no-untyped-def]
    a, b = scans["a"], scans["b"]
    config = _config()
    session = _session([a, b], config)
    assert isinstance(session.x_all, GatheredPatterns) and session.x_all.shape[0] == 32
    assert session.scan_of_group is not None and session.probe_bank is not None
    assert session.scan_of_group.tolist() == [0] * 16 + [1] * 16
    # each scan's groups are exactly its own grouping (neighbours never cross scans; each scan
    # normalized on its own)
    for s, raw in enumerate((a, b)):
        alone = group_for_training(raw, config.training, seed=config.seed, need_labels=False)
        idx = torch.arange(16) + 16 * s
        torch.testing.assert_close(session.x_all[idx], alone.x * session.scale, rtol=0, atol=0)
        torch.testing.assert_close(session.pos_all[idx], alone.positions, rtol=0, atol=0)
    # scan b's groups are illuminated by b's probe: the same loss as a model holding b's probe
    idx_b = torch.arange(16, 24)
    with torch.no_grad():
        with_bank, _ = batch_loss(session.model, session, idx_b)
        only_b = _session(b, config)
        only_b.model.load_state_dict({**session.model.state_dict(),
                                      "probe_ri": only_b.model.probe_ri.detach().clone()})
        alone_loss, _ = batch_loss(only_b.model, session, idx_b, session.x_all,
                                   session.pos_all, None)
        with_a_probe, _ = batch_loss(session.model, session, idx_b, session.x_all,
                                     session.pos_all, None)
    assert float(with_bank) == pytest.approx(float(alone_loss), rel=1e-6)
    assert abs(float(with_a_probe) - float(with_bank)) > 1e-3 * abs(float(with_bank))
    with pytest.raises(ValueError, match="probe_trainable=True is not supported with several"):
        _session([a, b], EngineConfig(training=TrainingConfig(
            model=ModelConfig(N=64, n_filters_scale=1), nphotons=1e6, n_groups=16,
            probe_trainable=True, backend="pytorch"), device="cpu"))


@pytest.mark.spec("ENG-183")
def test_cli_trains_over_files_and_folders_and_records_them(scans, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from ptychodus_pinn_torch.cli.main import main
    from ptychodus_pinn_torch.engine.archive import peek_archive

    folder: Path = scans["folder"]
    out = tmp_path / "run"
    rc = main(["train", "--train", str(folder), "--out", str(out), "--epochs", "1",
               "--n-groups", "8", "--batch-size", "8", "--n-filters-scale", "1",
               "--device", "cpu", "--no-progress"])
    assert rc == 0
    files = peek_archive(out / "wts.h5.zip")["extra"]["training_files"]
    assert [Path(f["path"]).name for f in files] == ["a.npz", "b.npz"]
    assert [f["n_positions"] for f in files] == [scans["a"].n_positions, scans["b"].n_positions]
    assert {f["format"] for f in files} == {"npz"}
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["train", "--train", str(empty), "--out", str(out)]) == 2


@pytest.mark.spec("ENG-184")
def test_a_mapped_scan_trains_like_the_same_scan_in_memory(scans, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    mapped = RawData.from_file(write_mapped(scans["folder"] / "a.npz", tmp_path / "a.mapped"))
    assert isinstance(mapped.diff3d, np.memmap)
    session = _session(mapped, _config())
    assert isinstance(session.x_all, GatheredPatterns)  # read per batch, never all at once
    streamed = train_model(mapped, _config())
    in_memory = train_model(scans["a"], _config())
    for s, m in zip(streamed.history, in_memory.history, strict=True):
        assert s.train_loss == pytest.approx(m.train_loss, rel=1e-6)
        assert s.val_loss == pytest.approx(m.val_loss, rel=1e-6)


@pytest.mark.spec("ENG-185")
def test_training_starts_from_a_model(scans, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from ptychodus_pinn_torch.cli.main import main
    from ptychodus_pinn_torch.engine.archive import load_archive, save_archive

    first = train_model(scans["a"], _config())
    archive = save_archive(tmp_path / "wts.h5.zip", first.bundle)
    config = _config(init_model=str(archive), epochs_fine_tune=2)
    assert config.epochs == 2 and config.step_size == pytest.approx(1e-4)
    session = _session(scans["b"], config)
    start = load_archive(archive).model.state_dict()
    for key, value in session.model.state_dict().items():
        if key == "probe_ri":  # the new scan's own probe, not the initial model's
            assert not torch.equal(value, start[key])
        else:
            assert torch.equal(value, start[key]), key
    assert session.optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)
    tuned = train_model(scans["b"], config)
    assert [h.epoch for h in tuned.history] == [1, 2] and tuned.history[0].lr == pytest.approx(1e-4)

    with pytest.raises(ValueError, match="EngineConfig.epochs_fine_tune=2 acts only when"):
        _config(epochs_fine_tune=2)
    wider = EngineConfig(training=TrainingConfig(
        model=ModelConfig(N=64, n_filters_scale=2), nphotons=1e6, n_groups=16,
        backend="pytorch"), device="cpu", init_model=str(archive))
    with pytest.raises(ValueError, match="does not fit the one being trained"):
        _session(scans["b"], wider)
    out = tmp_path / "ft"
    common = ["train", "--train", str(scans["folder"] / "b.npz"), "--out", str(out),
              "--n-groups", "8", "--batch-size", "8", "--device", "cpu", "--no-progress",
              "--init-model", str(archive)]
    assert main([*common, "--gridsize", "2"]) == 2  # differs from the model's gridsize 1
    assert main([*common, "--fine-tune-epochs", "1"]) == 0  # n_filters_scale 1 from the model
    assert load_archive(out / "wts.h5.zip").model_config.n_filters_scale == 1
    assert main(["train", "--train", str(scans["folder"] / "b.npz"), "--out", str(out),
                 "--fine-tune-gamma", "0.5"]) == 2
