"""``pinn-torch import-tf`` against TensorFlow itself (ARCH-160): the fixture in tests/tf_fixture
was made once with TensorFlow 2.21 / Keras 3.15 in a scratch venv (make_tf_archive.py there);
TensorFlow is not needed to run this test."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ptychodus_pinn_torch.engine.keras_archive import read_tf_archive
from ptychodus_pinn_torch.engine.tf_import import import_tf_archive

FIXTURE = Path(__file__).resolve().parent / "tf_fixture"


def _probe(n: int = 64) -> np.ndarray:
    r = np.hypot(*np.mgrid[:n, :n] - n // 2)
    return np.exp(-0.5 * (r / (n / 8)) ** 2).astype(np.complex64)


def test_imported_model_reproduces_tensorflow_outputs() -> None:
    tf = np.load(FIXTURE / "tf_forward.npz")
    bundle = import_tf_archive(FIXTURE / "tf_wts.h5.zip", _probe(), nphotons=float(tf["nphotons"]))
    cfg = bundle.model_config
    assert (cfg.N, cfg.gridsize, cfg.n_filters_scale, cfg.amp_activation) == (64, 2, 1, "swish")
    assert cfg.object_big and cfg.probe_big and cfg.pad_object
    assert bundle.intensity_scale == pytest.approx(float(tf["intensity_scale"]), rel=1e-6)
    model = bundle.model.eval()
    x = torch.from_numpy(tf["x"].transpose(0, 3, 1, 2))
    with torch.no_grad():
        amp, phase = model.generator(x / torch.exp(model.log_scale))
    amp = amp.numpy().transpose(0, 2, 3, 1)
    phase = phase.numpy().transpose(0, 2, 3, 1)
    # measured: 8.7e-8 (amplitude, max 0.076) and 4.9e-7 rad (phase), float32 convolutions
    np.testing.assert_allclose(amp, tf["amp"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(phase, tf["phase"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(amp * np.exp(1j * phase), tf["obj"], rtol=0, atol=1e-5)


def test_intensity_scale_from_the_archive_or_nphotons() -> None:
    archive = read_tf_archive(FIXTURE / "tf_wts.h5.zip")
    assert archive.member == "diffraction_to_obj/model.keras"
    assert archive.intensity_scale == pytest.approx(np.sqrt(1e6) / 32)
    assert import_tf_archive(FIXTURE / "tf_wts.h5.zip", _probe()).intensity_scale == (
        pytest.approx(np.sqrt(1e6) / 32, rel=1e-6)
    )
    scaled = import_tf_archive(FIXTURE / "tf_wts.h5.zip", _probe(), nphotons=4e6)
    assert scaled.intensity_scale == pytest.approx(np.sqrt(4e6) / 32, rel=1e-6)
