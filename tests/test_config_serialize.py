"""Behaviour of config.serialize, config.checks messages and the translate command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ptychodus_pinn_torch.cli.main import main
from ptychodus_pinn_torch.config import params as pt
from ptychodus_pinn_torch.config import serialize, spec


def test_kind_inference_and_names() -> None:
    assert isinstance(serialize.spec_from_dict({"N": 128}), spec.ModelConfig)
    t = serialize.spec_from_dict({"model": {}, "train_data_file": "a"})
    assert isinstance(t, spec.TrainingConfig) and t.n_groups == 512
    i = serialize.spec_from_dict({"model": {}, "model_path": "m", "test_data_file": "t"})
    assert isinstance(i, spec.InferenceConfig) and i.model_path == Path("m")
    with pytest.raises(ValueError, match="unknown config kind 'trainig'"):
        serialize.spec_from_dict({}, "trainig")
    with pytest.raises(ValueError, match="must be given as a JSON object"):
        serialize.spec_from_dict({"model": [1, 2]})


def test_spec_to_dict_is_json_and_keeps_paths_as_text() -> None:
    t = spec.TrainingConfig(model=spec.ModelConfig(), train_data_file=Path("/d/a.npz"))
    d = serialize.spec_to_dict(t)
    assert d["train_data_file"] == "/d/a.npz" and d["output_dir"] == "training_outputs"
    assert isinstance(d["model"], dict) and d["model"]["N"] == 64
    json.dumps(d)
    with pytest.raises(ValueError, match="expects a spec config"):
        serialize.spec_to_dict(pt.DataConfig())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cfg", "fragment"),
    [(spec.ModelConfig(gridsize=-2), "ModelConfig.gridsize=-2 must be >= 1"),
     (spec.ModelConfig(amp_activation="tanh"), "amp_activation='tanh' is not accepted"),
     (spec.ModelConfig(probe_scale=float("nan")), "probe_scale=nan must be a finite number")],
)
def test_messages_name_field_value_and_accepted(cfg: spec.ModelConfig, fragment: str) -> None:
    with pytest.raises(ValueError) as exc:
        spec.validate_model_config(cfg)
    assert fragment in str(exc.value)


def test_inference_validation_requires_paths() -> None:
    i = spec.InferenceConfig(model=spec.ModelConfig(), model_path=None,  # type: ignore[arg-type]
                             test_data_file=Path("t"))
    with pytest.raises(ValueError, match="model_path is required"):
        spec.validate_inference_config(i)


def test_translate_inference_config_both_ways(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "inf.json"
    src.write_text(json.dumps({"model": {"N": 128, "gridsize": 2}, "model_path": "md",
                               "test_data_file": "t.npz", "n_groups": 7, "debug": True}))
    assert main(["translate", str(src), "--out", str(tmp_path / "pt.json")]) == 0
    doc = json.loads((tmp_path / "pt.json").read_text())
    assert doc["data"]["grid_size"] == [2, 2] and doc["data"]["C"] == 4
    assert doc["overrides"]["inference"]["model_path"] == "md"
    assert main(["translate", "--to", "spec", str(tmp_path / "pt.json")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert "training" not in out and out["inference"]["n_groups"] == 7
    assert out["legacy_params"]["model_path"] == "md" and out["legacy_params"]["debug"] is True


def test_translate_model_only_from_stdin(monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps({"N": 64, "gridsize": 3})))
    assert main(["translate", "-"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["model"]["C_model"] == 9 and doc["overrides"]["training"] == {}


def test_translate_rejects_bad_documents(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "x.json"
    src.write_text("{not json")
    assert main(["translate", str(src)]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    src.write_text(json.dumps({"data": {}, "model": {}, "extra": {}}))
    assert main(["translate", "--to", "spec", str(src)]) == 2
    assert "unknown section(s) ['extra']" in capsys.readouterr().err
    src.write_text(json.dumps({"data": {"nphotons": 1e9}, "model": {},
                               "training": {"n_groups": 8}}))
    with pytest.warns(UserWarning, match="test_data_file"):  # warned before the error
        assert main(["translate", "--to", "spec", str(src)]) == 2
    assert "train_data_file is required" in capsys.readouterr().err
