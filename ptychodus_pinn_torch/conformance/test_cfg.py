"""Conformance tests of specs/CFG.md (configuration)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ptychodus_pinn_torch.config import bridge, legacy, serialize, spec
from ptychodus_pinn_torch.config import params as pt

spec_rule = pytest.mark.spec


def _defaults(cls: type) -> dict[str, object]:
    out: dict[str, object] = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def _training(**kw: object) -> spec.TrainingConfig:
    return spec.TrainingConfig(model=kw.pop("model", spec.ModelConfig()), **kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- CFG-001
@spec_rule("CFG-001")
def test_config_imports_stdlib_only() -> None:
    code = (
        "import sys\n"
        "import ptychodus_pinn_torch.config, ptychodus_pinn_torch.cli.translate\n"
        "bad = [m for m in ('torch', 'numpy', 'ptychodus', 'scipy') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    root = str(Path(__file__).resolve().parents[2])
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=root, timeout=60, check=True)
    assert result.stdout.strip() == ""


@spec_rule("CFG-001")
def test_no_mutable_module_state() -> None:
    with pytest.raises(TypeError):
        legacy.KEY_MAPPINGS["x"] = "y"  # type: ignore[index]
    assert not any(isinstance(v, dict) for k, v in vars(legacy).items() if not k.startswith("_"))


# --------------------------------------------------------------------------- CFG-002..005
@spec_rule("CFG-002")
def test_spec_model_defaults() -> None:
    assert _defaults(spec.ModelConfig) == {
        "N": 64, "gridsize": 1, "n_filters_scale": 2, "model_type": "pinn",
        "amp_activation": "sigmoid", "object_big": True, "probe_big": True,
        "probe_mask": False, "pad_object": True, "probe_scale": 4.0,
        "gaussian_smoothing_sigma": 0.0, "architecture": "cnn", "probe_mask_sigma": 1.0,
        "probe_mask_diameter": None, **GENERATOR_DEFAULTS,
    }
    assert spec.field_names(spec.ModelConfig)[:3] == ("N", "gridsize", "n_filters_scale")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.ModelConfig().N = 128  # type: ignore[misc]


@spec_rule("CFG-003")
def test_spec_training_defaults() -> None:
    t = _training()
    expected = {
        "train_data_file": None, "test_data_file": None, "batch_size": 16, "nepochs": 50,
        "mae_weight": 0.0, "nll_weight": 1.0, "realspace_mae_weight": 0.0,
        "realspace_weight": 0.0, "nphotons": 1e9, "n_groups": 512, "n_images": None,
        "n_subsample": None, "subsample_seed": None, "neighbor_count": 4,
        "positions_provided": True, "probe_trainable": False,
        "intensity_scale_trainable": True, "output_dir": Path("training_outputs"),
        "sequential_sampling": False, "enable_oversampling": False, "neighbor_pool_size": None,
        "backend": "tensorflow", "torch_loss_mode": "poisson",
        "torch_mae_pred_l2_match_target": False, "gradient_clip_val": None,
        "gradient_clip_algorithm": "norm", "optimizer": "adam", "momentum": 0.9,
        "weight_decay": 0.0, "adam_beta1": 0.9, "adam_beta2": 0.999, "scheduler": "Default",
        "lr_warmup_epochs": 0, "lr_min_ratio": 0.1, "plateau_factor": 0.5,
        "plateau_patience": 2, "plateau_min_lr": 5e-5, "plateau_threshold": 0.0,
    }
    actual = {n: getattr(t, n) for n in spec.field_names(spec.TrainingConfig) if n != "model"}
    assert actual == expected
    assert _training(n_groups=7).n_groups == 7
    assert _training(train_data_file="a/b.npz").train_data_file == Path("a/b.npz")


@spec_rule("CFG-004")
def test_spec_inference_defaults() -> None:
    i = spec.InferenceConfig(model=spec.ModelConfig(), model_path="m", test_data_file="t.npz")
    assert (i.model_path, i.test_data_file) == (Path("m"), Path("t.npz"))
    assert (i.n_groups, i.n_images, i.n_subsample, i.subsample_seed) == (None,) * 4
    assert (i.neighbor_count, i.debug, i.output_dir) == (4, False, Path("inference_outputs"))
    assert (i.enable_oversampling, i.neighbor_pool_size, i.backend) == (False, None,
                                                                         "tensorflow")
    with pytest.raises(TypeError):
        spec.InferenceConfig(model=spec.ModelConfig())  # type: ignore[call-arg]


@spec_rule("CFG-005")
def test_n_images_deprecation() -> None:
    with pytest.warns(DeprecationWarning, match="n_images") as rec:
        t = _training(n_images=100)
    assert t.n_groups == 100 and len(rec) == 1 and "n_groups" in str(rec[0].message)
    with pytest.warns(DeprecationWarning):
        i = spec.InferenceConfig(model=spec.ModelConfig(), model_path="m",
                                 test_data_file="t", n_images=9)
    assert i.n_groups == 9
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _training().n_groups == 512


# --------------------------------------------------------------------------- CFG-006..010
@spec_rule("CFG-006")
@pytest.mark.parametrize(
    ("field", "value"),
    [("gridsize", 0), ("n_filters_scale", 0), ("probe_scale", 0.0), ("probe_scale", -1.0),
     ("gaussian_smoothing_sigma", -0.1), ("architecture", "ffno"), ("architecture", "xyz"),
     ("fno_modes", 0), ("cnn_output_mode", "polar"), ("generator_output_mode", "x"),
     ("cbam_encoder", 1),
     ("N", 100), ("model_type", "gan"), ("amp_activation", "tanh"), ("object_big", 1),
     ("probe_mask_diameter", 0.0)],
)
def test_validate_model_config_rejects(field: str, value: object) -> None:
    cfg = spec.ModelConfig(**{field: value})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=field) as exc:
        spec.validate_model_config(cfg)
    assert repr(value) in str(exc.value)


@spec_rule("CFG-006")
def test_validate_model_config_accepts_defaults() -> None:
    spec.validate_model_config(spec.ModelConfig())
    spec.validate_model_config(spec.ModelConfig(N=128, gridsize=2, amp_activation="swish"))


@spec_rule("CFG-007")
@pytest.mark.parametrize(
    ("field", "value", "phrase"),
    [("batch_size", 12, "batch_size must be positive power of 2"),
     ("batch_size", 0, "batch_size must be positive power of 2"),
     ("nepochs", 0, "nepochs"), ("mae_weight", 1.5, "mae_weight"),
     ("nll_weight", -0.1, "nll_weight"), ("nphotons", 0.0, "nphotons"),
     ("n_groups", 0, "n_groups"), ("optimizer", "lbfgs", "optimizer")],
)
def test_validate_training_config_rejects(field: str, value: object, phrase: str) -> None:
    with pytest.raises(ValueError, match=phrase):
        spec.validate_training_config(_training(**{field: value}))


@spec_rule("CFG-007")
def test_validate_training_config_checks_model_and_accepts_defaults() -> None:
    spec.validate_training_config(_training())
    with pytest.raises(ValueError, match="gridsize"):
        spec.validate_training_config(_training(model=spec.ModelConfig(gridsize=0)))


@spec_rule("CFG-008")
def test_invalid_backend() -> None:
    with pytest.raises(ValueError, match="Invalid backend.*TrainingConfig.backend"):
        spec.validate_training_config(_training(backend="jax"))
    inf = spec.InferenceConfig(model=spec.ModelConfig(), model_path="m", test_data_file="t",
                               backend="jax")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Invalid backend.*InferenceConfig.backend"):
        spec.validate_inference_config(inf, check_files=False)


@spec_rule("CFG-009")
def test_torch_loss_mode_rules() -> None:
    with pytest.raises(ValueError, match="Invalid torch_loss_mode='l2'"):
        spec.validate_training_config(_training(torch_loss_mode="l2"))
    sup = spec.ModelConfig(model_type="supervised")
    with pytest.raises(ValueError, match="Supervised mode requires torch_loss_mode='mae'"):
        spec.validate_training_config(_training(model=sup))
    spec.validate_training_config(_training(model=sup, torch_loss_mode="mae"))


@spec_rule("CFG-010")
def test_validate_inference_model_path(tmp_path: Path) -> None:
    def cfg(p: Path) -> spec.InferenceConfig:
        return spec.InferenceConfig(model=spec.ModelConfig(), model_path=p,
                                    test_data_file=tmp_path / "t.npz")

    with pytest.raises(ValueError, match="Model archive not found"):
        spec.validate_inference_config(cfg(tmp_path))
    with pytest.raises(ValueError, match="model_path does not exist.*also checked"):
        spec.validate_inference_config(cfg(tmp_path / "nothing"))
    spec.validate_inference_config(cfg(tmp_path / "nothing"), check_files=False)
    (tmp_path / "wts.h5.zip").write_bytes(b"PK")
    spec.validate_inference_config(cfg(tmp_path))
    spec.validate_inference_config(cfg(tmp_path / "wts.h5.zip"))
    spec.validate_inference_config(cfg(tmp_path / "wts.h5"))  # .zip appended
    spec.validate_inference_config(cfg(tmp_path / "wts"))  # .h5.zip appended


# --------------------------------------------------------------------------- CFG-011..013
@spec_rule("CFG-011")
def test_pytorch_dataclass_defaults() -> None:
    d = _defaults(pt.DataConfig)
    assert d == {
        "nphotons": 1e5, "N": 64, "C": 4, "K": 6, "K_quadrant": 30, "n_subsample": 7,
        "grid_size": (2, 2), "neighbor_function": "Nearest", "min_neighbor_distance": 0.0,
        "max_neighbor_distance": 3.0, "scan_pattern": "Isotropic", "normalize": "Batch",
        "probe_scale": 1.0, "probe_normalize": True, "data_scaling": "Parseval",
        "phase_subtraction": True, "x_bounds": (0.1, 0.9), "y_bounds": (0.1, 0.9),
        "subsample_seed": None,
    }
    m = _defaults(pt.ModelConfig)
    assert m == {
        "mode": "Unsupervised", "intensity_scale_trainable": False, "intensity_scale": 10000.0,
        "max_position_jitter": 10, "C_model": 1, "n_filters_scale": 2,
        "amp_activation": "silu", "batch_norm": False, "probe_mask": None, "edge_pad": 10,
        "decoder_last_c_outer_fraction": 0.125, "decoder_last_amp_channels": 1,
        "eca_encoder": False, "cbam_encoder": False, "cbam_bottleneck": False,
        "cbam_decoder": False, "eca_decoder": False, "spatial_decoder": False,
        "decoder_spatial_kernel": 7, "object_big": False, "probe_big": True, "offset": 6,
        "C_forward": 4, "loss_function": "Poisson", "amp_loss": None, "phase_loss": None,
        "amp_loss_coeff": 1.0, "phase_loss_coeff": 1.0, "pad_object": True,
        "gaussian_smoothing_sigma": 0.0, "architecture": "cnn", "fno_modes": 12,
        "fno_width": 32, "fno_blocks": 4, "fno_cnn_blocks": 2,
        "cnn_output_mode": "amp_phase", "generator_output_mode": "real_imag",
    }
    t = _defaults(pt.TrainingConfig)
    assert t == {
        "training_directories": [], "nll": True, "device": "cuda", "strategy": "ddp",
        "n_devices": 1, "learning_rate": 1e-3, "epochs": 50, "batch_size": 16,
        "epochs_fine_tune": 0, "fine_tune_gamma": 0.1, "scheduler": "Default",
        "num_workers": 4, "accum_steps": 1, "gradient_clip_val": None, "stage_1_epochs": 0,
        "stage_2_epochs": 0, "stage_3_epochs": 0, "physics_weight_schedule": "cosine",
        "stage_3_lr_factor": 0.1, "experiment_name": "Synthetic_Runs", "notes": "",
        "model_name": "PtychoPINNv2", "torch_loss_mode": "poisson", "train_data_file": None,
        "test_data_file": None, "output_dir": Path("training_outputs"), "n_groups": None,
    }
    assert _defaults(pt.InferenceConfig) == {
        "middle_trim": 32, "batch_size": 1000, "experiment_number": 0, "pad_eval": True,
        "window": 20,
    }
    for cls in (pt.DataConfig, pt.ModelConfig, pt.TrainingConfig, pt.InferenceConfig):
        cls()  # defaults are valid


@spec_rule("CFG-012")
@pytest.mark.parametrize(
    ("cls", "field", "value"),
    [(pt.DataConfig, "neighbor_function", "Farthest"), (pt.DataConfig, "scan_pattern", "Hex"),
     (pt.DataConfig, "normalize", "None"), (pt.DataConfig, "data_scaling", "Min"),
     (pt.DataConfig, "K", 0), (pt.DataConfig, "grid_size", (2,)),
     (pt.ModelConfig, "loss_function", "L2"), (pt.ModelConfig, "amp_loss", "TV"),
     (pt.ModelConfig, "phase_loss", "x"), (pt.TrainingConfig, "scheduler", "Cosine"),
     (pt.TrainingConfig, "torch_loss_mode", "l1"), (pt.TrainingConfig, "epochs", 0)],
)
def test_pytorch_literals_checked(cls: type, field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        cls(**{field: value})


@spec_rule("CFG-012")
def test_pytorch_pairs_become_tuples() -> None:
    d = pt.DataConfig(grid_size=[3, 3], x_bounds=[0.0, 1.0])  # type: ignore[arg-type]
    assert d.grid_size == (3, 3) and d.x_bounds == (0.0, 1.0)


@spec_rule("CFG-013")
def test_execution_config_defaults_and_rules() -> None:
    assert _defaults(pt.ExecutionConfig) == {
        "accelerator": "auto", "strategy": "auto", "deterministic": True,
        "gradient_clip_val": None, "accum_steps": 1, "num_workers": 0, "pin_memory": False,
        "persistent_workers": False, "prefetch_factor": None, "learning_rate": 1e-3,
        "scheduler": "Default", "enable_progress_bar": False, "enable_checkpointing": True,
        "checkpoint_save_top_k": 1, "checkpoint_monitor_metric": "val_loss",
        "checkpoint_mode": "min", "early_stop_patience": 100, "logger_backend": "csv",
        "inference_batch_size": None, "middle_trim": 0, "pad_eval": False,
    }
    pt.ExecutionConfig()
    for field, value in [("accelerator", "fpga"), ("accelerator", "tpu"), ("num_workers", -1),
                         ("learning_rate", 0.0), ("inference_batch_size", 0),
                         ("accum_steps", 0), ("checkpoint_save_top_k", -1),
                         ("early_stop_patience", 0), ("checkpoint_mode", "avg")]:
        with pytest.raises(ValueError, match=field):
            pt.ExecutionConfig(**{field: value})  # type: ignore[arg-type]
    assert pt.resolve_accelerator("auto", cuda_available=True) == "cuda"
    with pytest.warns(UserWarning, match="POLICY-001"):
        assert pt.resolve_accelerator("auto", cuda_available=False) == "cpu"
    assert pt.resolve_accelerator("cpu", cuda_available=True) == "cpu"


# --------------------------------------------------------------------------- CFG-014..021
@spec_rule("CFG-014")
@pytest.mark.parametrize(
    ("mode", "act", "mask", "model_type", "spec_act", "spec_mask"),
    [("Unsupervised", "silu", None, "pinn", "swish", False),
     ("Supervised", "SiLU", True, "supervised", "swish", True),
     ("Unsupervised", "sigmoid", [[1.0]], "pinn", "sigmoid", True),
     ("Unsupervised", "relu", False, "pinn", "relu", False),
     ("Unsupervised", "softplus", None, "pinn", "softplus", False),
     ("Unsupervised", "swish", None, "pinn", "swish", False)],
)
def test_to_model_config_mapping(mode: str, act: str, mask: object, model_type: str,
                                 spec_act: str, spec_mask: bool) -> None:
    data = pt.DataConfig(N=128, grid_size=(3, 3), probe_scale=2.5)
    model = pt.ModelConfig(mode=mode, amp_activation=act, probe_mask=mask, n_filters_scale=3,
                           object_big=True, probe_big=False, pad_object=False,
                           gaussian_smoothing_sigma=0.7)
    m = bridge.to_model_config(data, model)
    assert (m.N, m.gridsize, m.model_type, m.amp_activation, m.probe_mask) == (
        128, 3, model_type, spec_act, spec_mask)
    assert (m.n_filters_scale, m.object_big, m.probe_big, m.pad_object) == (3, True, False,
                                                                            False)
    assert (m.probe_scale, m.gaussian_smoothing_sigma) == (2.5, 0.7)
    assert bridge.to_model_config(data, model, {"N": 64, "probe_scale": 4.0}).N == 64


@spec_rule("CFG-015")
def test_to_model_config_must_raise() -> None:
    with pytest.raises(ValueError, match="Non-square grids.*grid_size"):
        bridge.to_model_config(pt.DataConfig(grid_size=(2, 3)), pt.ModelConfig())
    for field, value, phrase in [("mode", "InvalidMode", "Invalid mode"),
                                 ("amp_activation", "unknown_activation", "Unknown activation")]:
        with pytest.raises(ValueError, match=phrase):
            pt.ModelConfig(**{field: value})
        model = pt.ModelConfig()
        setattr(model, field, value)  # mutated after construction: the bridge checks too
        with pytest.raises(ValueError, match=phrase):
            bridge.to_model_config(pt.DataConfig(), model)


def _pt_train(**kw: object) -> spec.TrainingConfig:
    data = kw.pop("data", pt.DataConfig(nphotons=1e9, K=5, subsample_seed=3, n_subsample=7))
    model = pt.ModelConfig(intensity_scale_trainable=True)
    training = kw.pop("training", pt.TrainingConfig(epochs=7, batch_size=8, nll=False,
                                                    n_groups=64, gradient_clip_val=0.5))
    sm = bridge.to_model_config(data, model)  # type: ignore[arg-type]
    return bridge.to_training_config(sm, data, model, training, kw)  # type: ignore[arg-type]


@spec_rule("CFG-016")
def test_to_training_config_mapping() -> None:
    t = _pt_train(train_data_file="tr.npz", test_data_file="te.npz")
    assert (t.batch_size, t.nepochs, t.nll_weight, t.neighbor_count, t.nphotons) == (
        8, 7, 0.0, 5, 1e9)
    assert (t.intensity_scale_trainable, t.backend, t.n_groups, t.subsample_seed) == (
        True, "pytorch", 64, 3)
    assert (t.mae_weight, t.realspace_mae_weight, t.realspace_weight) == (0.0, 0.0, 0.0)
    assert (t.positions_provided, t.probe_trainable, t.sequential_sampling) == (True, False,
                                                                                False)
    assert t.n_subsample is None  # never DataConfig.n_subsample (7)
    assert (t.train_data_file, t.test_data_file) == (Path("tr.npz"), Path("te.npz"))
    assert (t.output_dir, t.torch_loss_mode, t.gradient_clip_val) == (
        Path("training_outputs"), "poisson", 0.5)
    assert _pt_train(train_data_file="a", test_data_file="b", n_subsample=11).n_subsample == 11
    with pytest.raises(ValueError, match="TrainingConfig.scheduler='MultiStage'"):
        _pt_train(training=pt.TrainingConfig(scheduler="MultiStage", n_groups=4),
                  train_data_file="a", test_data_file="b")
    assert _pt_train(training=pt.TrainingConfig(scheduler="MultiStage", n_groups=4),
                     train_data_file="a", test_data_file="b",
                     scheduler="Exponential").scheduler == "Exponential"


@spec_rule("CFG-017")
def test_nphotons_divergence() -> None:
    data = pt.DataConfig()  # nphotons 1e5
    base = dict(train_data_file=Path("a.npz"), test_data_file=Path("b.npz"), n_groups=8)
    with pytest.raises(ValueError) as exc:
        _pt_train(data=data, **base)
    for phrase in ("nphotons default divergence", "overrides", "nphotons="):
        assert phrase in str(exc.value)
    with pytest.raises(ValueError, match="nphotons default divergence"):  # checked first
        _pt_train(data=data, training=pt.TrainingConfig())
    assert _pt_train(data=data, nphotons=1e5, **base).nphotons == 1e5


@spec_rule("CFG-018")
def test_n_groups_and_train_data_file_required() -> None:
    with pytest.raises(ValueError) as exc:
        _pt_train(training=pt.TrainingConfig(), train_data_file="a")
    for phrase in ("n_groups", "overrides", "n_groups="):
        assert phrase in str(exc.value)
    with pytest.raises(ValueError, match="train_data_file is required"):
        _pt_train(test_data_file="b")


@spec_rule("CFG-019")
def test_missing_test_data_file_warns_once() -> None:
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        t = _pt_train(train_data_file="a.npz")
    assert len(rec) == 1 and issubclass(rec[0].category, UserWarning)
    text = str(rec[0].message)
    assert "test_data_file" in text and ("evaluation" in text or "inference" in text)
    assert t.test_data_file is None


@spec_rule("CFG-020")
def test_to_inference_config() -> None:
    data = pt.DataConfig(K=9, subsample_seed=5)
    sm = bridge.to_model_config(data, pt.ModelConfig())
    inf = pt.InferenceConfig(batch_size=3)
    i = bridge.to_inference_config(sm, data, inf, dict(model_path="md", test_data_file="t.npz"))
    assert (i.model_path, i.test_data_file, i.neighbor_count, i.backend, i.debug) == (
        Path("md"), Path("t.npz"), 9, "pytorch", False)
    assert (i.n_groups, i.n_subsample, i.subsample_seed, i.output_dir) == (
        None, None, None, Path("inference_outputs"))
    with pytest.raises(ValueError, match="model_path is required"):
        bridge.to_inference_config(sm, data, inf, dict(test_data_file="t.npz"))
    with pytest.raises(ValueError, match="test_data_file is required"):
        bridge.to_inference_config(sm, data, inf, dict(model_path="md"))
    with pytest.raises(ValueError, match="model_path is required"):  # model_path first
        bridge.to_inference_config(sm, data, inf)


@spec_rule("CFG-021")
def test_unknown_override_keys() -> None:
    with pytest.raises(ValueError, match="nepoch") as exc:
        _pt_train(train_data_file="a", nepoch=3)
    assert "nepochs" in str(exc.value)  # the accepted fields are listed
    with pytest.raises(ValueError, match="gridsizee"):
        bridge.to_model_config(pt.DataConfig(), pt.ModelConfig(), {"gridsizee": 2})


# --------------------------------------------------------------------------- CFG-022..025
@spec_rule("CFG-022")
def test_key_mappings_and_flattening() -> None:
    assert dict(legacy.KEY_MAPPINGS) == {
        "object_big": "object.big", "probe_big": "probe.big", "probe_mask": "probe.mask",
        "probe_trainable": "probe.trainable",
        "intensity_scale_trainable": "intensity_scale.trainable",
        "positions_provided": "positions.provided", "output_dir": "output_prefix",
        "train_data_file": "train_data_file_path", "test_data_file": "test_data_file_path",
    }
    t = _training(train_data_file=Path("x/tr.npz"))
    flat = legacy.dataclass_to_legacy_dict(t)
    assert "model" not in flat and flat["N"] == 64 and flat["object.big"] is True
    assert flat["train_data_file_path"] == "x/tr.npz" and flat["output_prefix"] == (
        "training_outputs")
    assert flat["test_data_file_path"] is None and "object_big" not in flat
    i = spec.InferenceConfig(model=spec.ModelConfig(), model_path=Path("m"),
                             test_data_file=Path("t"))
    assert legacy.dataclass_to_legacy_dict(i)["model_path"] == Path("m")  # unmapped: kept


@spec_rule("CFG-023")
def test_update_legacy_dict() -> None:
    cfg: dict[str, object] = {"test_data_file_path": "keep.npz", "n_subsample": 5}
    legacy.update_legacy_dict(cfg, _training())
    assert cfg["test_data_file_path"] == "keep.npz" and cfg["n_subsample"] == 5
    i = spec.InferenceConfig(model=spec.ModelConfig(), model_path=Path(),
                             test_data_file=Path("t.npz"))
    legacy.update_legacy_dict(cfg, i)
    assert cfg["model_path"] == "." and cfg["test_data_file_path"] == "t.npz"
    assert not any(isinstance(v, Path) for v in cfg.values())
    json.dumps(cfg)


BASELINE_31 = {
    "N": 128, "amp_activation": "swish", "batch_size": 32, "debug": True,
    "gaussian_smoothing_sigma": 0.5, "gridsize": 3, "intensity_scale.trainable": True,
    "mae_weight": 0.3, "model_path": "/canonical/baseline/model_directory",
    "model_type": "pinn", "n_filters_scale": 2, "n_groups": 512, "n_subsample": 1024,
    "neighbor_count": 6, "nepochs": 100, "nll_weight": 0.7, "nphotons": 5e8,
    "object.big": False, "output_prefix": "/canonical/baseline/inference_outputs",
    "pad_object": False, "positions.provided": False, "probe.big": False, "probe.mask": True,
    "probe.trainable": True, "probe_scale": 2.0, "realspace_mae_weight": 0.05,
    "realspace_weight": 0.1, "sequential_sampling": True, "subsample_seed": 99,
    "test_data_file_path": "/canonical/baseline/inference_data.npz",
    "train_data_file_path": "/canonical/baseline/train_data.npz",
}
POST_BASELINE = {
    "backend": "pytorch", "enable_oversampling": False, "torch_loss_mode": "poisson",
    "architecture": "cnn", "probe_mask_sigma": 1.0, "torch_mae_pred_l2_match_target": False,
    "gradient_clip_algorithm": "norm", "optimizer": "adam", "momentum": 0.9,
    "weight_decay": 0.0, "adam_beta1": 0.9, "adam_beta2": 0.999, "scheduler": "Default",
    "lr_warmup_epochs": 0, "lr_min_ratio": 0.1, "plateau_factor": 0.5, "plateau_patience": 2,
    "plateau_min_lr": 5e-5, "plateau_threshold": 0.0,
}
#: spec ModelConfig fields of the generator registry (specs/MODEL.md MODEL-222), in the legacy
#: dict under their own names.
GENERATOR_DEFAULTS = {
    "fno_modes": 12, "fno_width": 32, "fno_blocks": 4, "fno_cnn_blocks": 2,
    "generator_output_mode": "real_imag", "cnn_output_mode": "amp_phase",
    "cbam_encoder": False, "cbam_bottleneck": False, "cbam_decoder": False,
    "eca_encoder": False, "eca_decoder": False,
}


@spec_rule("CFG-024")
def test_params_baseline() -> None:
    data = pt.DataConfig(N=128, grid_size=(3, 3), K=6, nphotons=5e8, probe_scale=2.0)
    model = pt.ModelConfig(mode="Unsupervised", n_filters_scale=2, amp_activation="silu",
                           object_big=False, probe_big=False, intensity_scale_trainable=True)
    training = pt.TrainingConfig(epochs=100, batch_size=32, nll=True)
    sm = bridge.to_model_config(data, model, dict(probe_mask=True, pad_object=False,
                                                  gaussian_smoothing_sigma=0.5))
    st_ = bridge.to_training_config(sm, data, model, training, dict(
        train_data_file=Path("/canonical/baseline/train_data.npz"),
        test_data_file=Path("/canonical/baseline/test_data.npz"), n_groups=1024,
        n_subsample=2048, subsample_seed=42,
        output_dir=Path("/canonical/baseline/training_outputs"), mae_weight=0.3,
        nll_weight=0.7, realspace_mae_weight=0.05, realspace_weight=0.1,
        positions_provided=False, probe_trainable=True, sequential_sampling=True,
        nphotons=5e8))
    si = bridge.to_inference_config(sm, data, pt.InferenceConfig(), dict(
        model_path=Path("/canonical/baseline/model_directory"),
        test_data_file=Path("/canonical/baseline/inference_data.npz"), n_groups=512,
        n_subsample=1024, subsample_seed=99,
        output_dir=Path("/canonical/baseline/inference_outputs"), debug=True))
    cfg: dict[str, object] = {}
    legacy.update_legacy_dict(cfg, st_)
    legacy.update_legacy_dict(cfg, si)
    assert len(BASELINE_31) == 31
    assert {k: cfg[k] for k in BASELINE_31} == BASELINE_31
    assert cfg == BASELINE_31 | POST_BASELINE | GENERATOR_DEFAULTS and len(cfg) == 61


@spec_rule("CFG-025")
def test_mvp_bridge() -> None:
    data = pt.DataConfig(N=128, grid_size=(2, 2), nphotons=1e9, K=7)
    model = pt.ModelConfig(mode="Unsupervised")
    sm = bridge.to_model_config(data, model)
    with pytest.warns(UserWarning, match="test_data_file"):  # as upstream's MVP case
        st_ = bridge.to_training_config(sm, data, model, pt.TrainingConfig(epochs=1), dict(
            train_data_file=Path("train.npz"), n_groups=512, neighbor_count=7, nphotons=1e9))
    si = bridge.to_inference_config(sm, data, pt.InferenceConfig(batch_size=1), dict(
        model_path=Path("model_dir"), test_data_file=Path("test.npz"), n_groups=512,
        neighbor_count=7))
    cfg = legacy.legacy_params(st_, si)
    expected = {"N": 128, "gridsize": 2, "model_type": "pinn",
                "train_data_file_path": "train.npz", "test_data_file_path": "test.npz",
                "model_path": "model_dir", "n_groups": 512, "neighbor_count": 7,
                "nphotons": 1e9}
    assert {k: cfg[k] for k in expected} == expected


# --------------------------------------------------------------------------- CFG-026..029
@spec_rule("CFG-026")
def test_from_spec_mapping() -> None:
    m = spec.ModelConfig(N=128, gridsize=3, model_type="supervised", amp_activation="swish",
                         object_big=False, probe_big=False, probe_mask=True, pad_object=False,
                         probe_scale=2.0, gaussian_smoothing_sigma=0.5, n_filters_scale=3)
    t = _training(model=m, nepochs=9, nll_weight=0.0, neighbor_count=11, nphotons=1e6,
                  torch_loss_mode="mae", subsample_seed=4, intensity_scale_trainable=False,
                  train_data_file="a.npz", n_groups=33, batch_size=64)
    c = bridge.from_spec(m, t)
    assert (c.data.N, c.data.grid_size, c.data.C, c.data.K) == (128, (3, 3), 9, 11)
    assert (c.data.nphotons, c.data.probe_scale, c.data.subsample_seed) == (1e6, 2.0, 4)
    assert (c.model.mode, c.model.amp_activation, c.model.C_model, c.model.C_forward) == (
        "Supervised", "silu", 9, 9)
    assert (c.model.object_big, c.model.probe_big, c.model.probe_mask, c.model.pad_object) == (
        False, False, True, False)
    assert (c.model.loss_function, c.model.n_filters_scale,
            c.model.intensity_scale_trainable) == ("MAE", 3, False)
    assert (c.training.epochs, c.training.nll, c.training.batch_size, c.training.n_groups) == (
        9, False, 64, 33)
    assert c.training.train_data_file == Path("a.npz")
    assert bridge.from_spec(spec.ModelConfig()).data.nphotons == 1e9
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.data = pt.DataConfig()  # type: ignore[misc]
    with pytest.raises(ValueError, match="batch_size"):
        bridge.from_spec(m, _training(model=m, batch_size=3, torch_loss_mode="mae"))
    with pytest.raises(ValueError, match="differs"):
        bridge.from_spec(spec.ModelConfig(), t)


_paths = st.one_of(st.none(), st.sampled_from(["a.npz", "d/b.npz", "/abs/c.npz"]).map(Path))
_model_st = st.builds(
    spec.ModelConfig,
    N=st.sampled_from(spec.N_VALUES), gridsize=st.integers(1, 4),
    n_filters_scale=st.integers(1, 4), model_type=st.sampled_from(spec.MODEL_TYPES),
    amp_activation=st.sampled_from(spec.AMP_ACTIVATIONS), object_big=st.booleans(),
    probe_big=st.booleans(), probe_mask=st.booleans(), pad_object=st.booleans(),
    probe_scale=st.floats(0.1, 10.0), gaussian_smoothing_sigma=st.floats(0.0, 3.0),
    probe_mask_sigma=st.floats(0.0, 3.0),
    probe_mask_diameter=st.one_of(st.none(), st.floats(1.0, 64.0)),
)


@st.composite
def _spec_triplet(draw: st.DrawFn) -> tuple[spec.ModelConfig, spec.TrainingConfig,
                                            spec.InferenceConfig]:
    m = draw(_model_st)
    loss = "mae" if m.model_type == "supervised" else draw(st.sampled_from(spec.TORCH_LOSS_MODES))
    t = spec.TrainingConfig(
        model=m, train_data_file=draw(_paths.filter(lambda p: p is not None)),
        test_data_file=draw(_paths), batch_size=draw(st.sampled_from([1, 2, 16, 64])),
        nepochs=draw(st.integers(1, 500)), mae_weight=draw(st.floats(0, 1)),
        nll_weight=draw(st.floats(0, 1)), realspace_mae_weight=draw(st.floats(0, 2)),
        realspace_weight=draw(st.floats(0, 2)),
        nphotons=draw(st.sampled_from([1e5, 1e9, 3.5e6, 1000])),
        n_groups=draw(st.integers(1, 5000)), n_images=draw(st.none() | st.integers(1, 99)),
        n_subsample=draw(st.none() | st.integers(1, 99)),
        subsample_seed=draw(st.none() | st.integers(0, 2**31)),
        neighbor_count=draw(st.integers(1, 12)), positions_provided=draw(st.booleans()),
        probe_trainable=draw(st.booleans()), intensity_scale_trainable=draw(st.booleans()),
        output_dir=draw(st.sampled_from([Path("out"), Path("/tmp/o")])),
        sequential_sampling=draw(st.booleans()), enable_oversampling=draw(st.booleans()),
        neighbor_pool_size=draw(st.none() | st.integers(1, 20)),
        backend=draw(st.sampled_from(spec.BACKENDS)), torch_loss_mode=loss,
        gradient_clip_val=draw(st.none() | st.floats(0.01, 10)),
        optimizer=draw(st.sampled_from(spec.OPTIMIZERS)),
        scheduler=draw(st.sampled_from(spec.SCHEDULERS)),
        weight_decay=draw(st.floats(0, 0.1)), lr_warmup_epochs=draw(st.integers(0, 5)),
    )
    i = spec.InferenceConfig(
        model=m, model_path=draw(st.sampled_from([Path("m"), Path("/x/wts.h5.zip")])),
        test_data_file=Path("t.npz"), n_groups=draw(st.none() | st.integers(1, 99)),
        n_subsample=draw(st.none() | st.integers(1, 99)),
        subsample_seed=draw(st.none() | st.integers(0, 99)),
        neighbor_count=draw(st.integers(1, 12)), debug=draw(st.booleans()),
        enable_oversampling=draw(st.booleans()),
        backend=draw(st.sampled_from(spec.BACKENDS)),
    )
    return m, t, i


@spec_rule("CFG-027")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_spec_triplet())
def test_spec_torch_spec_round_trip(triplet: tuple[spec.ModelConfig, spec.TrainingConfig,
                                                   spec.InferenceConfig]) -> None:
    m, t, i = triplet
    c = bridge.from_spec(m, t, i)
    assert set(c.overrides.model) <= set(bridge.MODEL_NOT_CARRIED)
    assert set(c.overrides.training) <= set(bridge.TRAINING_NOT_CARRIED) | {"nphotons"}
    assert set(c.overrides.inference) <= set(bridge.INFERENCE_NOT_CARRIED) | {"neighbor_count"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m2 = bridge.to_model_config(c.data, c.model, c.overrides.model)
        t2 = bridge.to_training_config(m2, c.data, c.model, c.training, c.overrides.training)
        i2 = bridge.to_inference_config(m2, c.data, c.inference, c.overrides.inference)
    assert (m2, t2, i2) == (m, t, i)
    # the carried fields come back through the PyTorch dataclasses alone
    bare_m = bridge.to_model_config(c.data, c.model)
    assert all(getattr(bare_m, n) == getattr(m, n) for n in bridge.MODEL_CARRIED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bare_t = bridge.to_training_config(m, c.data, c.model, c.training,
                                           {"nphotons": t.nphotons})
    assert all(getattr(bare_t, n) == getattr(t, n) for n in bridge.TRAINING_CARRIED)


@spec_rule("CFG-027")
def test_carried_partition_is_complete() -> None:
    for cls, carried, not_carried in [
        (spec.ModelConfig, bridge.MODEL_CARRIED, bridge.MODEL_NOT_CARRIED),
        (spec.TrainingConfig, bridge.TRAINING_CARRIED, bridge.TRAINING_NOT_CARRIED),
        (spec.InferenceConfig, bridge.INFERENCE_CARRIED, bridge.INFERENCE_NOT_CARRIED),
    ]:
        assert sorted(carried + not_carried) == sorted(spec.field_names(cls))
        assert not set(carried) & set(not_carried)


@spec_rule("CFG-028")
def test_spec_json_round_trip() -> None:
    m = spec.ModelConfig(N=128, gridsize=2)
    t = _training(model=m, train_data_file=Path("a/b.npz"), n_subsample=3)
    i = spec.InferenceConfig(model=m, model_path=Path("m"), test_data_file=Path("t.npz"))
    for cfg in (m, t, i):
        d = serialize.spec_to_dict(cfg)
        text = json.dumps(d)
        assert serialize.spec_from_dict(json.loads(text)) == cfg
        assert serialize.spec_from_dict(json.loads(text), type(cfg)) == cfg
    bad = serialize.spec_to_dict(t) | {"nepoch": 3}
    with pytest.raises(ValueError, match="nepoch"):
        serialize.spec_from_dict(bad)
    with pytest.raises(ValueError, match="model_path"):
        serialize.spec_from_dict({"model": {}, "test_data_file": "x"}, "inference")
    with pytest.raises(ValueError, match="batch_size"):
        serialize.spec_from_dict(serialize.spec_to_dict(t) | {"batch_size": 3})
    for cfg in (pt.DataConfig(grid_size=(3, 3)), pt.ModelConfig(probe_mask=True),
                pt.TrainingConfig(train_data_file=Path("x")), pt.InferenceConfig(),
                pt.ExecutionConfig()):
        d = json.loads(json.dumps(serialize.torch_to_dict(cfg)))
        assert serialize.torch_from_dict(d, type(cfg)) == cfg
    with pytest.raises(ValueError, match="probe_mask"):
        serialize.torch_to_dict(pt.ModelConfig(probe_mask=object()))
    with pytest.raises(ValueError, match="Kk"):
        serialize.torch_from_dict({"Kk": 3}, "data")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    root = Path(__file__).resolve().parents[2]
    code = "import sys; from ptychodus_pinn_torch.cli.main import main; sys.exit(main())"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          cwd=root, timeout=60)


@spec_rule("CFG-029")
def test_translate_cli_round_trip(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    example = root / "fixtures" / "example_spec_config.json"
    if not example.is_file():
        pytest.skip("fixtures/example_spec_config.json is only in a source checkout")
    original = serialize.spec_from_dict(json.loads(example.read_text()))
    out = _cli("translate", str(example), "--out", str(tmp_path / "pt.json"))
    assert out.returncode == 0, out.stderr
    doc = json.loads((tmp_path / "pt.json").read_text())
    assert set(doc) == {"data", "model", "training", "inference", "overrides"}
    back = _cli("translate", "--to", "spec", str(tmp_path / "pt.json"))
    assert back.returncode == 0, back.stderr
    result = json.loads(back.stdout)
    assert serialize.spec_from_dict(result["training"]) == original
    assert result["legacy_params"]["object.big"] is True
    assert result["legacy_params"]["train_data_file_path"] == str(original.train_data_file)


@spec_rule("CFG-029")
def test_translate_cli_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"model": {"N": 64}, "nepochs": 0, "train_data_file": "a"}))
    r = _cli("translate", str(bad))
    assert r.returncode == 2 and "nepochs" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = _cli("translate", str(tmp_path / "missing.json"))
    assert r.returncode == 2 and "missing.json" in r.stderr
    bad.write_text(json.dumps({"data": {"grid_size": [2, 3]}, "model": {}}))
    r = _cli("translate", "--to", "spec", str(bad))
    assert r.returncode == 2 and "Non-square grids" in r.stderr
