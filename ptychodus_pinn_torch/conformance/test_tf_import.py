"""ARCH-160..162: importing models trained by upstream's TensorFlow PtychoPINN (specs/ARCH.md).

Here against Keras-3-layout archives written from an independent description of the format
(config.json graph + per-class numbered HDF5 weight groups), so the suite runs from an install.
Parity with TensorFlow itself is tests/test_tf_import.py, on a fixture made once with
TensorFlow 2.21 / Keras 3.15 (tests/tf_fixture/make_tf_archive.py, in a scratch venv)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from ptychodus_pinn_torch.cli.main import main
from ptychodus_pinn_torch.config.spec import ModelConfig
from ptychodus_pinn_torch.engine.archive import ArchiveError, load_archive
from ptychodus_pinn_torch.engine.keras_archive import read_tf_archive
from ptychodus_pinn_torch.engine.tf_import import analyse, import_tf_archive
from ptychodus_pinn_torch.model import build_model


def _probe(n: int = 64) -> np.ndarray:
    r = np.hypot(*np.mgrid[:n, :n] - n // 2)
    return np.exp(-0.5 * (r / (n / 8)) ** 2).astype(np.complex64)


# --- Keras-3-layout archives written from a description of the format -------------------------


class _Graph:
    """Builds a functional config.json: layer entries with Keras 3 inbound nodes."""

    def __init__(self) -> None:
        self.layers: list[dict] = []

    def add(self, cls: str, name: str, inputs: list[str], op: bool = False, **config: object):
        args = [{"class_name": "__keras_tensor__",
                 "config": {"keras_history": [i, 0, 0]}} for i in inputs]
        self.layers.append({
            "module": "keras.src.ops.numpy" if op else "keras.layers", "class_name": cls,
            "name": name, "config": {"name": name, **config},
            "inbound_nodes": [{"args": [args] if len(args) > 1 else args, "kwargs": {}}],
        })
        return name


def _keras_archive(model: torch.nn.Module, cfg: ModelConfig, path: Path) -> None:
    """A TF-style wts.h5.zip whose Keras model holds ``model``'s generator weights. Heads are
    listed phase first and with their layers interleaved, and layer names are unrelated to the
    HDF5 group names, so the importer can rely only on the graph and the per-class numbering."""
    state = model.state_dict()
    g = _Graph()
    convs: list[tuple[str, str]] = []  # (layer name, our prefix) in config order

    def conv(name: str, src: str, prefix: str) -> str:
        g.add("Conv2D", name, [src], filters=int(state[f"{prefix}.weight"].shape[0]))
        convs.append((name, prefix))
        return name

    c = cfg.gridsize**2
    g.layers.append({"module": "keras.layers", "class_name": "InputLayer", "name": "input",
                     "config": {"name": "input", "batch_shape": [None, cfg.N, cfg.N, c]},
                     "inbound_nodes": []})
    x = g.add("IntensityScaler", "intensity_scaler", ["input"])
    n_enc = len([k for k in state if k.startswith("generator.encoder.")
                 and k.endswith(".0.weight")])
    for b in range(n_enc):
        x = conv(f"enc{b}a", x, f"generator.encoder.{b}.0")
        x = conv(f"enc{b}b", x, f"generator.encoder.{b}.2")
        x = g.add("MaxPooling2D", f"pool{b}", [x])
    outs = {}
    for head, act in (("phase_decoder", "phi"), ("amp_decoder", "amp")):
        p = f"generator.{head}"
        h = x
        n_dec = len([k for k in state if k.startswith(f"{p}.blocks.") and k.endswith(".0.weight")])
        for b in range(n_dec):
            h = conv(f"{act}_blk{b}a", h, f"{p}.blocks.{b}.0")
            h = conv(f"{act}_blk{b}b", h, f"{p}.blocks.{b}.2")
            h = g.add("UpSampling2D", f"{act}_up{b}", [h])
        act_cfg = {"activation_name": "tanh" if act == "phi" else cfg.amp_activation}
        if cfg.pad_object:
            s0 = g.add("GetItem", f"{act}_slice0", [h], op=True)
            centre = conv(f"{act}_centre", s0, f"{p}.last.centre_conv")
            out = g.add("ZeroPadding2D", f"{act}_padded", [g.add("ActivationLayer", act,
                                                                  [centre], **act_cfg)])
            if cfg.probe_big:
                s1 = g.add("GetItem", f"{act}_slice1", [h], op=True)
                b0 = conv(f"{act}_b0", s1, f"{p}.last.border_up.0")
                b1 = conv(f"{act}_b1", b0, f"{p}.last.border_up.2")
                border = conv(f"{act}_border", g.add("UpSampling2D", f"{act}_bup", [b1]),
                              f"{p}.last.border_conv")
                masked = g.add("Multiply", f"{act}_mul", [g.add("Silu", f"{act}_silu", [border],
                                                                 op=True)], op=True)
                out = g.add("Add", f"{act}_add", [out, masked])
        else:
            f0 = conv(f"{act}_f0", h, f"{p}.last.full_up.0")
            f1 = conv(f"{act}_f1", f0, f"{p}.last.full_up.2")
            full = conv(f"{act}_full", g.add("UpSampling2D", f"{act}_fup", [f1]),
                        f"{p}.last.full_conv")
            out = g.add("ActivationLayer", act, [full], **act_cfg)
        outs[act] = out
    g.add("CombineComplexLayer", "obj", [outs["amp"], outs["phi"]])
    weights = io.BytesIO()
    with h5py.File(weights, "w") as h5:
        for k, (_, prefix) in enumerate(convs):
            group = h5.create_group(f"layers/{'conv2d' if k == 0 else f'conv2d_{k}'}/vars")
            group["0"] = state[f"{prefix}.weight"].numpy().transpose(2, 3, 1, 0)
            group["1"] = state[f"{prefix}.bias"].numpy()
    keras_file = io.BytesIO()
    with zipfile.ZipFile(keras_file, "w") as zf:
        zf.writestr("config.json", json.dumps({"class_name": "Functional",
                                               "config": {"layers": g.layers}}))
        zf.writestr("model.weights.h5", weights.getvalue())
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.dill", b"never unpickled")
        zf.writestr("diffraction_to_obj/model.keras", keras_file.getvalue())


@pytest.mark.spec("ARCH-161")
@pytest.mark.parametrize(
    "fields",
    [
        {"N": 64, "gridsize": 1, "amp_activation": "sigmoid"},
        {"N": 64, "gridsize": 2, "object_big": False, "probe_big": False},
        {"N": 64, "gridsize": 1, "pad_object": False, "amp_activation": "softplus"},
        {"N": 128, "gridsize": 1, "amp_activation": "relu"},
    ],
)
def test_every_decoder_layout_maps_back_exactly(tmp_path: Path, fields: dict) -> None:
    cfg = ModelConfig(n_filters_scale=1, **fields)
    torch.manual_seed(0)
    source = build_model(cfg, probe=_probe(cfg.N), intensity_scale=3.0)
    with torch.no_grad():
        for name, p in source.generator.named_parameters():
            if name.endswith("bias"):
                p.normal_(0.0, 0.1)
    _keras_archive(source, cfg, tmp_path / "tf.zip")
    imported = import_tf_archive(tmp_path / "tf.zip", _probe(cfg.N),
                                 nphotons=9.0 * (cfg.N / 2) ** 2)
    got = imported.model_config
    for key in ("N", "gridsize", "amp_activation", "object_big", "probe_big", "pad_object"):
        assert getattr(got, key) == getattr(cfg, key), key
    theirs = source.generator.state_dict()
    for key, value in imported.model.generator.state_dict().items():
        torch.testing.assert_close(value, theirs[key], rtol=0, atol=0, msg=key)
    assert imported.intensity_scale == pytest.approx(3.0)


@pytest.mark.spec("ARCH-160")
def test_only_keras_members_are_read_and_the_scale_rule(tmp_path: Path) -> None:
    cfg = ModelConfig(N=64, gridsize=1, n_filters_scale=1)
    source = build_model(cfg, probe=_probe(), intensity_scale=1.0)
    _keras_archive(source, cfg, tmp_path / "tf.zip")
    scale_file = io.BytesIO()
    with h5py.File(scale_file, "w") as h5:
        h5.attrs["intensity_scale"] = 7.5
    with zipfile.ZipFile(tmp_path / "tf.zip", "a") as zf:
        zf.writestr("diffraction_to_obj/model.h5", scale_file.getvalue())
        zf.writestr("diffraction_to_obj/params.dill", b"\x80\x05 not a pickle: never opened")
    archive = read_tf_archive(tmp_path / "tf.zip")
    assert archive.member == "diffraction_to_obj/model.keras"
    assert archive.intensity_scale == 7.5
    assert import_tf_archive(tmp_path / "tf.zip", _probe()).intensity_scale == pytest.approx(7.5)
    by_photons = import_tf_archive(tmp_path / "tf.zip", _probe(), nphotons=4e6)
    assert by_photons.intensity_scale == pytest.approx(np.sqrt(4e6) / 32, rel=1e-6)
    assert by_photons.extra["imported_from"]["intensity_scale_from"] == "nphotons"


@pytest.mark.spec("ARCH-162")
def test_refusals_name_the_problem(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "empty.zip", "w") as zf:
        zf.writestr("manifest.dill", b"x")
    with pytest.raises(ArchiveError, match="model.keras"):
        read_tf_archive(tmp_path / "empty.zip")
    cfg = ModelConfig(N=64, n_filters_scale=1)
    _keras_archive(build_model(cfg, probe=_probe(), intensity_scale=1.0), cfg, tmp_path / "a.zip")
    with pytest.raises(ValueError, match="--nphotons"):
        import_tf_archive(tmp_path / "a.zip", _probe())  # no model.h5 scale
    with pytest.raises(ValueError, match="probe"):
        import_tf_archive(tmp_path / "a.zip", _probe(32), nphotons=1e6)
    # a kernel of the wrong shape in the weights file is refused, not reshaped
    with zipfile.ZipFile(tmp_path / "a.zip") as zf:
        keras_bytes = zf.read("diffraction_to_obj/model.keras")
    with zipfile.ZipFile(io.BytesIO(keras_bytes)) as kz:
        config, weights = kz.read("config.json"), kz.read("model.weights.h5")
    buf = io.BytesIO(weights)
    with h5py.File(buf, "a") as h5:
        del h5["layers/conv2d_1/vars/0"]
        h5["layers/conv2d_1/vars/0"] = np.zeros((3, 3, 5, 32), np.float32)
    bad = io.BytesIO()
    with zipfile.ZipFile(bad, "w") as kz:
        kz.writestr("config.json", config)
        kz.writestr("model.weights.h5", buf.getvalue())
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as zf:
        zf.writestr("diffraction_to_obj/model.keras", bad.getvalue())
    with pytest.raises(ArchiveError, match="shape"):
        import_tf_archive(tmp_path / "bad.zip", _probe(), nphotons=1e6)
    net = analyse(read_tf_archive(tmp_path / "a.zip").model)
    assert net.model_config.N == 64


@pytest.mark.spec("ARCH-162")
def test_cli_import_tf(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    np.savez(tmp_path / "scan.npz", probeGuess=_probe())
    cfg = ModelConfig(N=64, gridsize=2, n_filters_scale=1)
    _keras_archive(build_model(cfg, probe=_probe(), intensity_scale=1.0), cfg,
                   tmp_path / "tf.zip")
    out = tmp_path / "wts.h5.zip"
    rc = main(["import-tf", str(tmp_path / "tf.zip"), "--out", str(out), "--probe",
               str(tmp_path / "scan.npz"), "--nphotons", "1e6"])
    assert rc == 0
    assert "gridsize 2" in capsys.readouterr().out
    bundle = load_archive(out)
    assert bundle.model_config.gridsize == 2
    assert bundle.extra["imported_from"]["backend"] == "tensorflow"
    assert main(["import-tf", str(tmp_path / "tf.zip"), "--out", str(out), "--probe",
                 str(tmp_path / "missing.npz")]) == 2
    assert "--probe" in capsys.readouterr().err
    assert main(["import-tf", str(tmp_path / "scan.npz"), "--out", str(out), "--probe",
                 str(tmp_path / "scan.npz")]) == 2
    assert "model.keras" in capsys.readouterr().err


@pytest.mark.spec("HOST-170")
def test_ptychodus_load_model_converts_a_tf_archive(tmp_path: Path) -> None:
    """Load Model... in a real ptychodus ModelCore: a TF archive is converted in memory with
    the loaded product's probe and NumPhotons; without a product, one line says what to load."""
    from ptychodus.model.core import ModelCore

    from ptychodus_pinn_torch.host import install as install_mod
    from ptychodus_pinn_torch.host import plugins
    from ptychodus_pinn_torch.host.sample_data import simulate_scan, write_standard_layout

    cfg = ModelConfig(N=64, gridsize=1, n_filters_scale=1)
    source = build_model(cfg, probe=_probe(), intensity_scale=1.0)
    tf_zip = tmp_path / "tf" / "wts.h5.zip"
    tf_zip.parent.mkdir()
    _keras_archive(source, cfg, tf_zip)
    folder = write_standard_layout(tmp_path / "scan", simulate_scan(n_side=4, seed=170))
    algorithm = "ptychopinn-pytorch_pinn"
    plugins.reset_plugin_manager()
    install_mod.install(gui=False)
    with ModelCore() as core:
        api = core.processing_core.processing_api
        library = install_mod.libraries_of(api)[0]
        with pytest.raises(ValueError, match="load the product .* first"):
            api.load_model_from_file(tf_zip, algorithm=algorithm)
        reconstructor = library.reconstructor("PINN")
        assert not reconstructor.is_model_loaded()
        diffraction = core.workflow_api.load_assembled_diffraction_data(folder / "diffraction.h5")
        product = core.workflow_api.load_product(folder / "product.h5", diffraction=diffraction)
        library.training_settings["NumPhotons"].set_value(4e6)
        api.load_model_from_file(tf_zip, algorithm=algorithm)
        assert reconstructor.is_model_loaded() and reconstructor.model_path is None
        assert [p.name for p in tf_zip.parent.iterdir()] == ["wts.h5.zip"]  # nothing written
        saved = tmp_path / "model.zip"
        api.save_model_to_file(saved, algorithm=algorithm)
    got = load_archive(saved)
    probe = product.get_product().probes.get_probe_no_opr().get_array()[0].astype(np.complex64)
    expected = import_tf_archive(tf_zip, probe, nphotons=4e6)
    assert got.intensity_scale == pytest.approx(np.sqrt(4e6) / 32, rel=1e-6)
    np.testing.assert_array_equal(got.probe, expected.probe)
    for key, value in source.generator.state_dict().items():
        torch.testing.assert_close(got.model.generator.state_dict()[key], value, rtol=0, atol=0)


# --- ARCH-260: the probe saved in the archive ---------------------------------------------------


def _add_autoencoder(path: Path, probe: np.ndarray | None) -> None:
    """Add ``autoencoder/model.keras`` to the TF archive at ``path``: upstream's autoencoder
    holds the ``ProbeIllumination`` layer (registered as ``ptycho>ProbeIllumination``). With a
    ``probe`` its weights hold it at ``layers/probe_illumination/vars/0`` as (1, N, N, 1)
    complex64 (what Keras 2 saves for the layer's tracked tf.Variable); with None the group is
    empty (Keras 3 does not track the variable)."""
    layers = [
        {"module": "keras.layers", "class_name": "InputLayer", "name": "input",
         "config": {"name": "input", "batch_shape": [None, 64, 64, 1]}, "inbound_nodes": []},
        {"module": None, "class_name": "ProbeIllumination", "registered_name":
         "ptycho>ProbeIllumination", "name": "probe_illumination",
         "config": {"name": "probe_illumination", "N": 64},
         "inbound_nodes": [{"args": [[{"class_name": "__keras_tensor__",
                                       "config": {"keras_history": ["input", 0, 0]}}]],
                            "kwargs": {}}]},
    ]
    weights = io.BytesIO()
    with h5py.File(weights, "w") as h5:
        group = h5.create_group("layers/probe_illumination/vars")
        if probe is not None:
            group["0"] = probe.astype(np.complex64)[None, :, :, None]
    keras_file = io.BytesIO()
    with zipfile.ZipFile(keras_file, "w") as zf:
        zf.writestr("config.json", json.dumps({"class_name": "Functional",
                                               "config": {"layers": layers}}))
        zf.writestr("model.weights.h5", weights.getvalue())
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("autoencoder/model.keras", keras_file.getvalue())
        zf.writestr("autoencoder/params.dill", b"\x80\x05 not a pickle: never opened")


def _upstream_normalized(probe: np.ndarray, probe_scale: float = 10.0) -> np.ndarray:
    """``P / (probe_scale * mean|disk * P|)`` as upstream stores it (legacy probe_scale 10)."""
    n = probe.shape[0]
    r = np.hypot(*(np.mgrid[:n, :n] - n // 2 + 0.5))
    return (probe / (probe_scale * np.mean(np.abs((r < n // 4) * probe)))).astype(np.complex64)


@pytest.mark.spec("ARCH-260")
def test_probe_taken_from_the_archive(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    cfg = ModelConfig(N=64, gridsize=2, n_filters_scale=1)
    stored = _upstream_normalized(_probe() * np.exp(0.3j))
    _keras_archive(build_model(cfg, probe=_probe(), intensity_scale=1.0), cfg,
                   tmp_path / "tf.zip")
    _add_autoencoder(tmp_path / "tf.zip", stored)
    archive = read_tf_archive(tmp_path / "tf.zip")
    assert archive.probe_member == "autoencoder/model.keras"
    np.testing.assert_array_equal(archive.probe, stored)
    bundle = import_tf_archive(tmp_path / "tf.zip", nphotons=1e6)
    # kept exactly as upstream normalized it (probe_scale 10 recovered, not renormalized to 4)
    np.testing.assert_allclose(bundle.probe, stored, rtol=0, atol=1e-7)
    assert bundle.model_config.probe_scale == pytest.approx(10.0, rel=1e-5)
    assert bundle.extra["imported_from"]["probe_from"] == "archive autoencoder/model.keras"
    # --probe still overrides it (normalized as ours: mean|disk * P| = 1/4)
    given = import_tf_archive(tmp_path / "tf.zip", _probe(), nphotons=1e6)
    assert not np.allclose(given.probe, stored)
    out = tmp_path / "wts.h5.zip"
    assert main(["import-tf", str(tmp_path / "tf.zip"), "--out", str(out),
                 "--nphotons", "1e6"]) == 0
    assert "probe from archive autoencoder/model.keras" in capsys.readouterr().out
    np.testing.assert_allclose(load_archive(out).probe, stored, rtol=0, atol=1e-7)


@pytest.mark.spec("ARCH-260")
def test_archive_without_a_saved_probe_needs_probe(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    cfg = ModelConfig(N=64, gridsize=1, n_filters_scale=1)
    _keras_archive(build_model(cfg, probe=_probe(), intensity_scale=1.0), cfg,
                   tmp_path / "tf.zip")
    _add_autoencoder(tmp_path / "tf.zip", None)  # Keras 3: empty vars group
    assert read_tf_archive(tmp_path / "tf.zip").probe is None
    with pytest.raises(ValueError, match="--probe"):
        import_tf_archive(tmp_path / "tf.zip", nphotons=1e6)
    rc = main(["import-tf", str(tmp_path / "tf.zip"), "--out", str(tmp_path / "w.zip"),
               "--nphotons", "1e6"])
    err = capsys.readouterr().err
    assert rc == 2 and "--probe" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "w.zip").exists()
    # a probe of the wrong shape in the weights is refused, not reshaped
    _keras_archive(build_model(cfg, probe=_probe(), intensity_scale=1.0), cfg,
                   tmp_path / "odd.zip")
    _add_autoencoder(tmp_path / "odd.zip", np.ones((64, 32), np.complex64))
    with pytest.raises(ArchiveError, match="shape"):
        read_tf_archive(tmp_path / "odd.zip")


@pytest.mark.spec("HOST-260")
def test_ptychodus_load_model_takes_the_archive_probe(tmp_path: Path) -> None:
    """Load Model... of a TF archive that saved its probe needs no product loaded."""
    from ptychodus.model.core import ModelCore

    from ptychodus_pinn_torch.host import install as install_mod
    from ptychodus_pinn_torch.host import plugins

    cfg = ModelConfig(N=64, gridsize=1, n_filters_scale=1)
    source = build_model(cfg, probe=_probe(), intensity_scale=1.0)
    tf_zip = tmp_path / "tf" / "wts.h5.zip"
    tf_zip.parent.mkdir()
    _keras_archive(source, cfg, tf_zip)
    stored = _upstream_normalized(_probe())
    _add_autoencoder(tf_zip, stored)
    algorithm = "ptychopinn-pytorch_pinn"
    plugins.reset_plugin_manager()
    install_mod.install(gui=False)
    with ModelCore() as core:
        api = core.processing_core.processing_api
        library = install_mod.libraries_of(api)[0]
        library.training_settings["NumPhotons"].set_value(4e6)
        api.load_model_from_file(tf_zip, algorithm=algorithm)  # no product loaded
        assert library.reconstructor("PINN").is_model_loaded()
        saved = tmp_path / "model.zip"
        api.save_model_to_file(saved, algorithm=algorithm)
    got = load_archive(saved)
    np.testing.assert_allclose(got.probe, stored, rtol=0, atol=1e-7)
    assert got.intensity_scale == pytest.approx(np.sqrt(4e6) / 32, rel=1e-6)
    assert got.extra["imported_from"]["probe_from"] == "archive autoencoder/model.keras"
    for key, value in source.generator.state_dict().items():
        torch.testing.assert_close(got.model.generator.state_dict()[key], value, rtol=0, atol=0)
