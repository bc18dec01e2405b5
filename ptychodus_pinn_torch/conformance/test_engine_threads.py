"""ENG-205: the CPU thread count of each phase (training, inference, refinement) is a setting
that acts, with per-phase defaults, and is restored afterwards."""

from __future__ import annotations

import pytest
import torch

from ptychodus_pinn_torch.conformance.helpers import tiny_engine, tiny_scan
from ptychodus_pinn_torch.engine.archive import ModelBundle
from ptychodus_pinn_torch.engine.events import TrainCallbacks
from ptychodus_pinn_torch.engine.inference import reconstruct
from ptychodus_pinn_torch.engine.threads import PHASE_DEFAULTS, phase_threads, threads_for
from ptychodus_pinn_torch.engine.training import train_model
from ptychodus_pinn_torch.model import build_model


@pytest.mark.spec("ENG-205")
def test_phase_defaults_explicit_counts_and_omp(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert PHASE_DEFAULTS == {"train": None, "inference": None, "refine": 1}
    assert threads_for("refine") == 1 and threads_for("train") is None
    assert threads_for("train", 3) == 3 and threads_for("refine", 0) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert threads_for("refine") is None  # OMP_NUM_THREADS wins over the phase default
    assert threads_for("refine", 3) == 3  # an explicit count wins over both
    before = torch.get_num_threads()
    with phase_threads("refine", 3) as used:
        assert used == 3 == torch.get_num_threads()
    assert torch.get_num_threads() == before
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="threads"):
            threads_for("train", bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="EngineConfig.threads"):
        tiny_engine(engine={"threads": 0})


@pytest.mark.spec("ENG-205")
def test_training_inference_and_refinement_run_with_the_setting(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    scan = tiny_scan()
    before = torch.get_num_threads()
    seen: list[int] = []
    config = tiny_engine(1, engine={"threads": 3})
    train_model(scan, config, callbacks=TrainCallbacks(
        on_epoch=(lambda report: seen.append(torch.get_num_threads()),)))
    assert seen == [3] and torch.get_num_threads() == before
    model = build_model(config.model, probe=scan.probeGuess, intensity_scale=31.25)
    bundle = ModelBundle(model=model, model_config=config.model, intensity_scale=31.25,
                         probe=model.probe.detach().numpy())
    during: list[int] = []

    def record(report):  # type: ignore[no-untyped-def]
        during.append(torch.get_num_threads())

    reconstruct(bundle, scan, device="cpu", refine_epochs=1, on_refine_epoch=record)
    assert during == [1]  # the refinement's default
    reconstruct(bundle, scan, device="cpu", refine_epochs=1, on_refine_epoch=record, threads=2)
    assert during == [1, 2] and torch.get_num_threads() == before
    with pytest.raises(ValueError, match="threads"):
        reconstruct(bundle, scan, device="cpu", threads=-2)
