"""Reliability of reconstruction under unlucky inputs (ENG-120..122): positions that ask for a
huge grid, positions outside the objectGuess grid, objects with NaN pixels or almost no coverage.

Each test builds the input and asserts the outcome: a one-line ValueError (exit 2 with one stderr
line through the CLI) raised before the network runs where the cause is known from the positions,
or a warning naming the numbers.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from ptychodus_pinn_torch.cli.main import main
from ptychodus_pinn_torch.config import spec
from ptychodus_pinn_torch.data import RawData
from ptychodus_pinn_torch.data.npz_limits import MEMORY_BUDGET_ENV
from ptychodus_pinn_torch.engine import inference
from ptychodus_pinn_torch.engine.archive import ModelBundle, save_archive
from ptychodus_pinn_torch.engine.inference import reconstruct
from ptychodus_pinn_torch.engine.result_checks import check_canvas_budget, check_result
from ptychodus_pinn_torch.model import build_model

N = 64


def _probe() -> np.ndarray:
    yy, xx = np.mgrid[:N, :N] - N / 2
    return np.exp(-(xx**2 + yy**2) / (2 * (N / 8) ** 2)).astype(np.complex64)


@pytest.fixture(scope="module")
def bundle() -> ModelBundle:
    torch.manual_seed(0)
    mc = spec.ModelConfig(N=N, n_filters_scale=1)
    model = build_model(mc, probe=_probe(), intensity_scale=10.0)
    return ModelBundle(model=model, model_config=mc, intensity_scale=model.intensity_scale,
                       probe=_probe())


def _data(x: np.ndarray, y: np.ndarray, obj: np.ndarray | None = None) -> RawData:
    rng = np.random.default_rng(1)
    diff = rng.uniform(0.1, 1.0, (x.size, N, N)).astype(np.float32)
    return RawData(x, y, None, None, diff, _probe(), None, obj)


def _no_network(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = inference.predict_patches
    monkeypatch.setattr(inference, "predict_patches",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


def test_spread_positions_refused_before_the_network(
    bundle: ModelBundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Positions spread by 1e4 x 1e4 (e.g. nanometres read as pixels) without objectGuess:
    the covering grid would need > 17 TB at 1e6 spread; here 1e5 pixels a side = 400 GB."""
    x = np.array([0.0, 1e5, 0.0, 1e5, 5e4])
    y = np.array([0.0, 0.0, 1e5, 1e5, 5e4])
    calls = _no_network(monkeypatch)
    with pytest.raises(ValueError) as info:
        reconstruct(bundle, _data(x, y))
    text = str(info.value)
    assert "\n" not in text
    assert "x 0..100000 and y 0..100000" in text and "100065 x 100065 pixels" in text
    assert "memory budget" in text and "object pixels (not metres or nm)" in text
    assert calls == []


def test_canvas_budget_numbers() -> None:
    check_canvas_budget((1000, 1000), np.zeros(1), np.zeros(1), budget=40_000_000)
    with pytest.raises(ValueError, match=r"1001 x 1000 pixels \(38\.2 MiB\)"):
        check_canvas_budget((1001, 1000), np.zeros(1), np.zeros(1), budget=40_000_000)


def test_positions_outside_object_grid(bundle: ModelBundle,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    obj = np.ones((200, 200), np.complex64)
    x = np.full(4, 5000.0)
    y = np.array([5000.0, 5010.0, 5020.0, 5030.0])
    calls = _no_network(monkeypatch)
    with pytest.raises(ValueError, match="none of the 4 patch positions reaches the 200 x 200"):
        reconstruct(bundle, _data(x, y, obj))
    assert calls == []


def test_some_positions_outside_warn(bundle: ModelBundle,
                                     caplog: pytest.LogCaptureFixture) -> None:
    obj = np.ones((200, 200), np.complex64)
    x = np.array([80.0, 100.0, 120.0, 5000.0])
    y = np.array([100.0, 90.0, 110.0, 100.0])
    with caplog.at_level(logging.WARNING):
        result = reconstruct(bundle, _data(x, y, obj))
    assert "1 of 4 patch positions lie entirely outside the 200 x 200" in caplog.text
    assert 0.01 < float(np.mean(result.coverage > 0)) < 1


def test_tiny_coverage_is_an_error(bundle: ModelBundle) -> None:
    obj = np.ones((2000, 2000), np.complex64)  # 4 Mpx grid, 3 patches of 32 x 32 crop
    x = np.array([100.0, 110.0, 120.0])
    with pytest.raises(ValueError, match=r"cover 0\.\d\d% of the 2000 x 2000 object grid, below"):
        reconstruct(bundle, _data(x, x.copy(), obj))


def test_nan_object_is_an_error(bundle: ModelBundle) -> None:
    broken = ModelBundle(model=build_model(bundle.model_config, probe=_probe(),
                                           intensity_scale=10.0),
                         model_config=bundle.model_config, intensity_scale=10.0, probe=_probe())
    with torch.no_grad():
        for p in broken.model.parameters():
            if p.ndim == 1 and p.numel() > 1:  # a bias: every output becomes NaN
                p.fill_(float("nan"))
    x = np.array([80.0, 100.0, 120.0])
    with pytest.raises(ValueError, match=r"has \d+ non-finite pixels \(first at row"):
        reconstruct(broken, _data(x, x.copy()))


def test_check_result_passes_a_good_object() -> None:
    cov = np.zeros((10, 10), np.float32)
    cov[:5] = 1
    assert check_result(np.ones((10, 10), np.complex64), cov) == 0.5


def test_cli_spread_positions_one_line(bundle: ModelBundle, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    model = save_archive(tmp_path / "wts.h5.zip", bundle)
    data = tmp_path / "scan.npz"
    x = np.array([0.0, 1e4, 0.0, 1e4])
    _data(x, np.array([0.0, 0.0, 1e4, 1e4])).to_file(data)
    monkeypatch.setenv(MEMORY_BUDGET_ENV, "1G")
    rc = main(["reconstruct", "--model", str(model), "--data", str(data), "--out",
               str(tmp_path / "out.npz")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert "10065 x 10065 pixels (3.8 GiB), above the memory budget of 1.0 GiB" in err[0]
    assert not (tmp_path / "out.npz").exists()


def test_reconstruct_reports_every_batch(bundle: ModelBundle) -> None:
    calls: list[tuple[int, int]] = []
    x = np.linspace(60.0, 140.0, 10)
    reconstruct(bundle, _data(x, x[::-1].copy()), batch_size=3,
                on_batch=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_progress_lines_on_a_pipe() -> None:
    import io

    from ptychodus_pinn_torch.cli.reconstruct_progress import ReconstructProgress

    stream = io.StringIO()
    progress = ReconstructProgress(stream=stream, every_s=0.0)
    for done in range(1, 6):
        progress(done, 5)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 5 and lines[0].startswith("reconstruct: 1/5 batches (20%)")
    assert "about" in lines[0] and lines[-1].startswith("reconstruct: 5/5 batches (100%)")
    quiet = io.StringIO()
    small = ReconstructProgress(stream=quiet, every_s=0.0)
    small(1, 2)
    small(2, 2)
    assert quiet.getvalue() == ""  # scans of a few batches print nothing


def test_cli_reconstruct_shows_progress(bundle: ModelBundle, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    model = save_archive(tmp_path / "wts.h5.zip", bundle)
    data = tmp_path / "scan.npz"
    x = np.linspace(60.0, 140.0, 12)
    _data(x, x[::-1].copy()).to_file(data)
    argv = ["reconstruct", "--model", str(model), "--data", str(data), "--out",
            str(tmp_path / "out.npz"), "--batch-size", "2"]
    assert main(argv) == 0
    assert "reconstruct: 6/6 batches (100%)" in capsys.readouterr().err
    assert main([*argv, "--no-progress"]) == 0
    assert "batches" not in capsys.readouterr().err


def test_canvas_accumulator_refuses_a_huge_canvas(monkeypatch: pytest.MonkeyPatch) -> None:
    """Direct stitching callers (reassemble_position, stitch_to_object_grid) get the budget
    check too: 1e6 x 1e6 pixels would be 11 TiB."""
    from ptychodus_pinn_torch.stitch.splat import CanvasAccumulator

    monkeypatch.setenv(MEMORY_BUDGET_ENV, "1G")
    with pytest.raises(ValueError, match=r"1000000 x 1000000 pixels \(11175\.9 GiB\), above "
                                         r"the memory budget of 1\.0 GiB"):
        CanvasAccumulator((10**6, 10**6))
    assert CanvasAccumulator((100, 100)).sums.shape == (10000, 3)
