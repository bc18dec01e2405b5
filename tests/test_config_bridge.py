"""Behaviour of config.bridge beyond the numbered rules: inference-only and model-only
translation, to_spec, conflicts between training and inference, error messages."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from ptychodus_pinn_torch.config import bridge, legacy, spec
from ptychodus_pinn_torch.config import params as pt


def _inference(**kw: object) -> spec.InferenceConfig:
    model = kw.pop("model", spec.ModelConfig())
    return spec.InferenceConfig(model=model, model_path=Path("md"),  # type: ignore[arg-type]
                                test_data_file=Path("t.npz"), **kw)  # type: ignore[arg-type]


def test_model_only_from_spec_gives_model_back() -> None:
    m = spec.ModelConfig(N=256, gridsize=2, amp_activation="relu", probe_mask_diameter=20.0)
    c = bridge.from_spec(m)
    assert c.overrides.training == {} and c.overrides.inference == {}
    assert (c.data.K, c.data.nphotons) == (4, 1e9)
    model, training, inference = bridge.to_spec(c)
    assert model == m and training is None and inference is None


def test_inference_only_takes_k_from_inference() -> None:
    i = _inference(neighbor_count=9, n_groups=10, debug=True)
    c = bridge.from_spec(i.model, inference=i)
    assert c.data.K == 9 and "neighbor_count" not in c.overrides.inference
    _, training, inference = bridge.to_spec(c)
    assert training is None and inference == i


def test_training_and_inference_with_different_neighbor_counts() -> None:
    m = spec.ModelConfig()
    t = spec.TrainingConfig(model=m, train_data_file=Path("a.npz"),
                            test_data_file=Path("b.npz"), neighbor_count=5)
    i = _inference(model=m, neighbor_count=8)
    c = bridge.from_spec(m, t, i)
    assert c.data.K == 5 and c.overrides.inference["neighbor_count"] == 8
    model, training, inference = bridge.to_spec(c)
    assert (model, training, inference) == (m, t, i)
    # legacy dict as upstream's workflows build it: training then inference
    params = legacy.legacy_params(training, inference)
    assert params["neighbor_count"] == 8 and params["train_data_file_path"] == "a.npz"


def test_from_spec_validates_and_names_the_field() -> None:
    with pytest.raises(ValueError, match=r"ModelConfig\.N=100"):
        bridge.from_spec(spec.ModelConfig(N=100))
    bad = _inference(backend="jax")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="InferenceConfig.backend"):
        bridge.from_spec(bad.model, inference=bad)
    with pytest.raises(ValueError, match="training must be"):
        bridge.from_spec(spec.ModelConfig(), pt.TrainingConfig())  # type: ignore[arg-type]


def test_bridge_rejects_wrong_argument_types() -> None:
    with pytest.raises(ValueError, match="data must be"):
        bridge.to_model_config(spec.ModelConfig(), pt.ModelConfig())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="overrides must be a dict"):
        bridge.to_model_config(pt.DataConfig(), pt.ModelConfig(), [("N", 1)])  # type: ignore[arg-type]


def test_probe_mask_array_like_maps_to_true() -> None:
    class FakeTensor:  # stands for a torch tensor without importing torch
        shape = (64, 64)

    model = pt.ModelConfig(probe_mask=FakeTensor())
    assert bridge.to_model_config(pt.DataConfig(), model).probe_mask is True
    assert bridge.probe_mask_to_spec(None) is False


def test_overrides_are_not_mutated() -> None:
    ov = {"train_data_file": "a.npz", "test_data_file": "b.npz", "n_groups": 4,
          "nphotons": 1e9}
    before = dict(ov)
    data, model = pt.DataConfig(), pt.ModelConfig()
    sm = bridge.to_model_config(data, model)
    t = bridge.to_training_config(sm, data, model, pt.TrainingConfig(), ov)
    assert ov == before and t.train_data_file == Path("a.npz")


def test_supervised_round_trip_keeps_mae() -> None:
    m = spec.ModelConfig(model_type="supervised")
    t = spec.TrainingConfig(model=m, train_data_file=Path("a.npz"), torch_loss_mode="mae")
    c = bridge.from_spec(m, t)
    assert c.model.mode == "Supervised" and c.model.loss_function == "MAE"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no test_data_file: the bridge's UserWarning
        _, t2, _ = bridge.to_spec(c)
    assert t2 == t
