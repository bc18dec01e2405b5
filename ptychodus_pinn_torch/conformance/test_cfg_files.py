"""CFG-110/111: configuration files for ``pinn-torch train`` and ``pinn-torch reconstruct``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from ptychodus_pinn_torch.cli import reconstruct as reconstruct_cli
from ptychodus_pinn_torch.cli import train as train_cli
from ptychodus_pinn_torch.cli.config_file import apply_settings_file
from ptychodus_pinn_torch.cli.train_config import config_from_file
from ptychodus_pinn_torch.cli.translate import spec_document_to_torch
from ptychodus_pinn_torch.config.interop.documents import (
    engine_from_document,
    engine_to_document,
    layout_of,
)

spec_rule = pytest.mark.spec

SPEC_DOC = {
    "model": {"N": 64, "gridsize": 2, "amp_activation": "swish", "probe_scale": 4.0},
    "train_data_file": "train.npz", "nepochs": 30, "batch_size": 16, "n_groups": 64,
    "output_dir": "outs", "engine": {"seed": 5, "learning_rate": 2e-3},
}


def _parse(module: object, argv: list[str]) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)  # type: ignore[attr-defined]
    return parser, parser.parse_args(argv)


@spec_rule("CFG-110")
@pytest.mark.filterwarnings("ignore:test_data_file not provided")
def test_both_layouts_give_the_same_engine_config_and_round_trip() -> None:
    from_spec = engine_from_document(SPEC_DOC)
    torch_doc = spec_document_to_torch({k: v for k, v in SPEC_DOC.items() if k != "engine"})
    assert layout_of(SPEC_DOC) == "spec" and layout_of(torch_doc) == "torch"
    from_torch = engine_from_document(torch_doc)
    assert from_torch.training == from_spec.training
    assert from_spec.seed == 5 and from_spec.learning_rate == 2e-3
    assert from_spec.model.amp_activation == "swish" and from_spec.model.gridsize == 2
    assert engine_from_document(json.loads(json.dumps(engine_to_document(from_spec)))) == \
        from_spec


@spec_rule("CFG-110")
def test_given_flags_override_the_file_even_at_their_default(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps(SPEC_DOC))
    _, args = _parse(train_cli, ["--config", str(path), "--seed", "0", "--epochs", "2"])
    config = config_from_file(args)
    assert config.seed == 0 and config.training.nepochs == 2  # given: --seed 0 is the default
    assert config.learning_rate == 2e-3 and config.training.batch_size == 16  # not given
    assert args.train == [Path("train.npz")] and args.out == Path("outs")


@spec_rule("CFG-110")
def test_generator_flags_over_the_file_and_refusals(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    doc = {**SPEC_DOC, "model": {**SPEC_DOC["model"], "cbam_encoder": True}}
    path.write_text(json.dumps(doc))
    _, args = _parse(train_cli, ["--config", str(path), "--attention", "eca_decoder",
                                 "--output-mode", "real_imag"])
    model = config_from_file(args).model
    assert model.eca_decoder and not model.cbam_encoder  # the flag's list replaces the file's
    assert model.cnn_output_mode == "real_imag"
    _, args = _parse(train_cli, ["--config", str(path), "--architecture", "fno"])
    with pytest.raises(ValueError, match="cbam_encoder"):  # fno has no attention switches
        config_from_file(args)
    _, args = _parse(train_cli, ["--config", str(path), "--init-model", "m.zip"])
    with pytest.raises(FileNotFoundError, match="--init-model m.zip"):  # CFG-261 wires it
        config_from_file(args)


@spec_rule("CFG-110")
def test_unknown_key_is_refused_naming_it_and_the_file(tmp_path: Path) -> None:
    for doc, key in (({**SPEC_DOC, "n_epochs": 3}, "n_epochs"),
                     ({**SPEC_DOC, "engine": {"learning_rat": 1.0}}, "learning_rat")):
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(doc))
        _, args = _parse(train_cli, ["--config", str(path)])
        with pytest.raises(ValueError, match=key) as err:
            config_from_file(args)
        assert str(path) in str(err.value) and "\n" not in str(err.value)


@spec_rule("CFG-111")
def test_reconstruct_settings_file_under_the_given_flags(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"batch_size": 8, "refine-epochs": 2, "device": "cpu"}))
    parser, args = _parse(reconstruct_cli, ["--config", str(path), "--batch-size", "64"])
    resolved = apply_settings_file(parser, args, path)
    assert args.batch_size == 64 and args.refine_epochs == 2 and args.device == "cpu"
    assert resolved["batch_size"] == 64 and resolved["refine_epochs"] == 2
    path.write_text(json.dumps({"batch_sise": 8}))
    with pytest.raises(ValueError, match="batch_sise"):
        apply_settings_file(parser, args, path)
