"""The Python API (ptychodus_pinn_torch.api): configs from JSON/YAML with overrides, train,
save/load, predict_and_stitch, simulate, and the README example script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ptychodus_pinn_torch import api

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "api_quickstart.py"


@pytest.mark.parametrize(
    ("name", "text", "overrides", "needle"),
    [
        ("c.json", '{"nepochz": 3}', {}, "nepochz"),
        ("c.json", "{", {}, "not valid JSON"),
        ("c.yaml", "- 1\n- 2\n", {}, "mapping"),
        ("c.toml", "a = 1", {}, ".toml"),
        ("c.json", '{"model": {"gridsize": 0}}', {}, "gridsize"),
        ("c.json", "{}", {"nepochs.x": 1}, "nepochs"),
    ],
)
def test_bad_configs_are_refused_by_name(
    tmp_path: Path, name: str, text: str, overrides: dict[str, object], needle: str
) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(ValueError, match=None) as info:
        api.load_config(tmp_path / name, overrides)
    assert needle in str(info.value)


def test_bad_arguments_are_refused() -> None:
    scan = api.simulate(seed=4, object_shape=(80, 80), N=64, nphotons=1e6)
    with pytest.raises(ValueError, match="data must be a RawData"):
        api.train(42, {"nepochs": 1})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="model must be an api.Model"):
        api.predict_and_stitch(object(), scan)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="EngineConfig.learning_rate"):
        api.train(scan, {"nepochs": 1}, learning_rate=-1.0)


def test_simulate_writes_the_file(tmp_path: Path) -> None:
    from ptychodus_pinn_torch.data import RawData

    raw = api.simulate(tmp_path / "s.npz", seed=1, object_shape=(80, 80), N=32)
    back = RawData.from_file(tmp_path / "s.npz")
    np.testing.assert_array_equal(back.diff3d, raw.diff3d)
    assert back.N == 32


@pytest.mark.slow
def test_readme_example_is_the_example_script_and_runs(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    body = EXAMPLE.read_text().split('"""', 2)[2].strip()
    assert body in readme
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), str(tmp_path / "out"), "1"],
        capture_output=True, text=True, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "trained 1 epoch(s)" in proc.stdout and "phase SSIM" in proc.stdout
    assert (tmp_path / "out" / "wts.h5.zip").is_file()

