"""ENG-120..122: reconstruction refuses huge grids, unreachable grids and wrong objects."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ptychodus_pinn_torch.config import spec
from ptychodus_pinn_torch.data import RawData
from ptychodus_pinn_torch.data.npz_limits import MEMORY_BUDGET_ENV
from ptychodus_pinn_torch.engine.archive import ModelBundle
from ptychodus_pinn_torch.engine.inference import reconstruct
from ptychodus_pinn_torch.engine.result_checks import check_canvas_budget, check_result
from ptychodus_pinn_torch.model import build_model

N = 64


def _bundle() -> ModelBundle:
    torch.manual_seed(0)
    mc = spec.ModelConfig(N=N, n_filters_scale=1)
    probe = np.ones((N, N), np.complex64)
    model = build_model(mc, probe=probe, intensity_scale=10.0)
    return ModelBundle(model=model, model_config=mc, intensity_scale=model.intensity_scale,
                       probe=probe)


def _data(x: np.ndarray, y: np.ndarray, obj: np.ndarray | None = None) -> RawData:
    diff = np.random.default_rng(0).uniform(0.1, 1, (x.size, N, N)).astype(np.float32)
    return RawData(x, y, None, None, diff, np.ones((N, N), np.complex64), None, obj)


@pytest.mark.spec("ENG-120")
def test_grid_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MEMORY_BUDGET_ENV, "1G")
    x = np.array([0.0, 1e4])
    with pytest.raises(ValueError, match=r"x 0\.\.10000 .* 10065 x 10065 pixels .* budget"):
        reconstruct(_bundle(), _data(x, x.copy()), batch_size=2)
    check_canvas_budget((100, 100), x, x, budget=40 * 100 * 100)
    with pytest.raises(ValueError, match="above the memory budget"):
        check_canvas_budget((100, 101), x, x, budget=40 * 100 * 100)


@pytest.mark.spec("ENG-121")
def test_positions_reach_grid() -> None:
    x = np.array([900.0, 950.0])
    with pytest.raises(ValueError, match="none of the 2 patch positions reaches the 100 x 100"):
        reconstruct(_bundle(), _data(x, x.copy(), np.ones((100, 100), np.complex64)))


@pytest.mark.spec("ENG-122")
def test_no_silent_wrong_object() -> None:
    cov = np.ones((10, 10), np.float32)
    obj = np.ones((10, 10), np.complex64)
    assert check_result(obj, cov) == 1.0
    obj[3, 4] = np.nan
    with pytest.raises(ValueError, match=r"1 non-finite pixels \(first at row 3, column 4\)"):
        check_result(obj, cov)
    cov = np.zeros((100, 100), np.float32)
    cov[0, :99] = 1
    with pytest.raises(ValueError, match=r"cover 0\.99% .* below the 1%"):
        check_result(np.ones((100, 100), np.complex64), cov)


@pytest.mark.spec("ENG-128")
def test_reconstruct_progress() -> None:
    calls: list[tuple[int, int]] = []
    x = np.linspace(60.0, 140.0, 5)
    reconstruct(_bundle(), _data(x, x.copy()), batch_size=2,
                on_batch=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 3), (2, 3), (3, 3)]
