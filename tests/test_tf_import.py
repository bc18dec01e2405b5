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


def test_probe_saved_in_the_archive_needs_no_probe_argument(tmp_path: Path) -> None:
    """ARCH-260 on the TensorFlow fixture: TF 2.21 / Keras 3.15 saved no probe (its
    ProbeIllumination-style raw tf.Variable is untracked, like the fixture's empty
    ``layers/intensity_scaler/vars``), so the import needs a probe; with the autoencoder's probe
    added as Keras 2 saves it, the import takes it from there and still reproduces TF."""
    from ptychodus_pinn_torch.conformance.test_tf_import import (
        _add_autoencoder,
        _upstream_normalized,
    )

    tf = np.load(FIXTURE / "tf_forward.npz")
    with pytest.raises(ValueError, match="--probe"):
        import_tf_archive(FIXTURE / "tf_wts.h5.zip", nphotons=float(tf["nphotons"]))
    archive = tmp_path / "tf_wts.h5.zip"
    archive.write_bytes((FIXTURE / "tf_wts.h5.zip").read_bytes())
    stored = _upstream_normalized(_probe(), 4.0)
    _add_autoencoder(archive, stored)
    bundle = import_tf_archive(archive, nphotons=float(tf["nphotons"]))
    np.testing.assert_allclose(bundle.probe, stored, rtol=0, atol=1e-7)
    model = bundle.model.eval()
    x = torch.from_numpy(tf["x"].transpose(0, 3, 1, 2))
    with torch.no_grad():
        amp, phase = model.generator(x / torch.exp(model.log_scale))
    np.testing.assert_allclose(amp.numpy().transpose(0, 2, 3, 1), tf["amp"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(phase.numpy().transpose(0, 2, 3, 1), tf["phase"], rtol=0,
                               atol=1e-5)
