"""Reliability under unlucky scan contents (DATA-121..124): values that overflow float32,
nonsensical metadata, NaN labels, repeated positions, a probe without modes, beam-off frames.

Each test builds the input and asserts the outcome: a one-line DataError naming the key (exit 2
with one stderr line through the CLI), a warning with the numbers, or the frames dropped.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from ptychodus_pinn_torch.cli.main import main
from ptychodus_pinn_torch.conformance.helpers import tiny_scan
from ptychodus_pinn_torch.data import DataError, RawData
from ptychodus_pinn_torch.data.npz_io import write_npz

N = 64


def _arrays(m: int = 16, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "xcoords": rng.uniform(40, 80, m), "ycoords": rng.uniform(40, 80, m),
        "diff3d": rng.uniform(0.1, 1.0, (m, N, N)).astype(np.float32),
        "probeGuess": np.ones((N, N), np.complex64),
    }


def _raw(**changes: object) -> RawData:
    a: dict[str, object] = {**_arrays(), **changes}
    return RawData(a["xcoords"], a["ycoords"], None, None, a["diff3d"], a["probeGuess"], None,
                   a.get("objectGuess"), a.get("Y"), metadata=a.get("metadata"))  # type: ignore[arg-type]


def test_float64_overflowing_float32_refused() -> None:
    diff = _arrays()["diff3d"].astype(np.float64)
    diff[3, 5, 7] = 1e300
    with pytest.raises(DataError) as info:
        _raw(diff3d=diff)
    text = str(info.value)
    assert "\n" not in text
    assert "diff3d has 1 values that are finite in float64 but overflow float32" in text
    assert "(3, 5, 7)" in text and "1e+300" in text


def test_probe_and_object_overflow_refused() -> None:
    probe = np.ones((N, N), np.complex128)
    probe[0, 0] = 1e200
    with pytest.raises(DataError, match="probeGuess has 1 values .* overflow complex64"):
        _raw(probeGuess=probe)
    obj = np.ones((128, 128), np.complex128)
    obj[1, 2] = 1e300j
    with pytest.raises(DataError, match="objectGuess has 1 values .* overflow complex64"):
        _raw(objectGuess=obj)


@pytest.mark.parametrize("bad", [-5, 0, float("nan"), "many", True])
def test_nonsense_nphotons_refused_by_name(bad: object) -> None:
    with pytest.raises(DataError, match=r"metadata nphotons=.* must be a finite number > 0"):
        _raw(metadata={"nphotons": bad})
    assert _raw(metadata={"nphotons": 1e6}).metadata["nphotons"] == 1e6


def test_nphotons_from_file_through_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    arrays = {**_arrays(), "_metadata": np.array(json.dumps({"nphotons": -5}))}
    write_npz(tmp_path / "scan.npz", arrays)
    rc = main(["train", "--train", str(tmp_path / "scan.npz"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "metadata nphotons=-5" in err[0]


def test_nan_labels_refused() -> None:
    y = np.ones((16, N, N), np.complex64)
    y[4, 0, 0] = np.nan
    y[9, 1, 1] = np.inf
    with pytest.raises(DataError, match=r"Y has 2 NaN/Inf values .* in patterns \[4, 9\]"):
        _raw(Y=y)


def test_duplicate_positions_warned(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        _raw(xcoords=np.full(16, 50.0), ycoords=np.full(16, 60.0))
    assert "all 16 scan positions are identical (50, 60)" in caplog.text
    caplog.clear()
    x = np.arange(16.0)
    x[5] = x[4]
    with caplog.at_level(logging.WARNING):
        _raw(xcoords=x, ycoords=np.zeros(16))
    assert "1 of 16 scan positions repeat an earlier one" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        _raw()
    assert "scan positions" not in caplog.text


def test_probe_without_modes_is_one_line(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(DataError, match=r"probeGuess has shape \(0, 64, 64\): a stack of zero"):
        _raw(probeGuess=np.zeros((0, N, N), np.complex64))
    write_npz(tmp_path / "scan.npz", {**_arrays(), "probeGuess": np.zeros((0, N, N), np.complex64)})
    rc = main(["train", "--train", str(tmp_path / "scan.npz"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "zero probe modes" in err[0]


@pytest.fixture(scope="module")
def beam_off(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RawData]:
    """A 16-position simulated scan whose frames 2, 7 and 11 are all zero (beam off)."""
    raw = tiny_scan()
    diff = raw.diff3d.copy()
    diff[[2, 7, 11]] = 0
    arrays = {"xcoords": raw.xcoords, "ycoords": raw.ycoords, "diff3d": diff,
              "probeGuess": raw.probeGuess, "objectGuess": raw.objectGuess,
              "_metadata": np.array(json.dumps(raw.metadata))}
    path = tmp_path_factory.mktemp("beam_off") / "scan.npz"
    write_npz(path, arrays)
    return path, raw


def test_empty_frames_dropped_or_refused(beam_off: tuple[Path, RawData],
                                         caplog: pytest.LogCaptureFixture) -> None:
    path, raw = beam_off
    with pytest.raises(DataError, match=r"3 all-zero patterns \(indices \[2, 7, 11\]\)"):
        RawData.from_file(path)
    with caplog.at_level(logging.WARNING):
        kept = RawData.from_file(path, drop_empty_frames=True)
    assert "dropped 3 of 16 diffraction frames that are all zero (indices 2, 7, 11" in caplog.text
    assert kept.n_positions == 13
    others = [i for i in range(16) if i not in (2, 7, 11)]
    np.testing.assert_array_equal(kept.xcoords, raw.xcoords[others])
    np.testing.assert_array_equal(kept.diff3d, raw.diff3d[others])
    assert kept.metadata["dropped_empty_frames"] == 3


def test_cli_train_and_reconstruct_drop_empty_frames(
    beam_off: tuple[Path, RawData], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    path, _ = beam_off
    out = tmp_path / "run"
    rc = main(["train", "--train", str(path), "--out", str(out), "--keep-empty-frames"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "3 all-zero patterns" in err[0]
    with caplog.at_level(logging.WARNING):
        rc = main(["train", "--train", str(path), "--out", str(out), "--epochs", "1",
                   "--n-groups", "8", "--n-filters-scale", "1", "--batch-size", "4",
                   "--no-progress", "--device", "cpu"])
    assert rc == 0, capsys.readouterr().err
    assert "dropped 3 of 16 diffraction frames" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        rc = main(["reconstruct", "--model", str(out), "--data", str(path), "--out",
                   str(tmp_path / "obj.npz"), "--device", "cpu"])
    assert rc == 0, capsys.readouterr().err
    assert "dropped 3 of 16 diffraction frames" in caplog.text
    assert "reconstructed 13 group(s)" in capsys.readouterr().out
