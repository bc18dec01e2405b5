"""Settings -> spec configs: every model/training parameter reaches its spec field; errors name
the ptychodus setting; the supervised variant trains with the MAE loss mode."""

from __future__ import annotations

from pathlib import Path

import pytest
from ptychodus.api.settings import SettingsRegistry

from ptychodus_pinn_torch.host.configs import (
    build_engine_config,
    build_training_config,
    pytorch_configs,
    setting_name,
)
from ptychodus_pinn_torch.host.settings import PARAMETERS, PINNTorchSettings

CHANGED = {  # a non-default value for every model/training parameter
    "GridSize": 2, "NumFiltersScale": 3, "AmpActivation": "swish", "ObjectBig": False,
    "ProbeBig": False, "ProbeMask": True, "PadObject": False, "ProbeScale": 2.5,
    "GaussianSmoothingSigma": 0.5, "NumPhotons": 1e8, "BatchSize": "32", "NumEpochs": 3,
    "MAEWeight": 0.5, "NLLWeight": 0.75, "RealspaceMAEWeight": 0.25, "RealspaceWeight": 0.125,
"ProbeTrainable": True, "IntensityScaleTrainable": False,
    "NumGroups": 100, "NeighborCount": 6,
    # the generator settings of the cnn family (the fno ones: test_fno_settings_reach_...)
    "Architecture": "unet", "CNNOutputMode": "real_imag", "CBAMEncoder": True,
    "CBAMBottleneck": True, "CBAMDecoder": True, "ECAEncoder": True, "ECADecoder": True,
    "GeneratorOutputMode": "real_imag", "FNOModes": 12, "FNOWidth": 32, "FNOBlocks": 4,
    "FNOCNNBlocks": 2,
}
FNO_CHANGED = {"Architecture": "fno", "GeneratorOutputMode": "amp_phase", "FNOModes": 8,
               "FNOWidth": 16, "FNOBlocks": 3, "FNOCNNBlocks": 1}


def test_every_setting_reaches_its_spec_field(tmp_path: Path) -> None:
    settings = PINNTorchSettings(SettingsRegistry())
    for group in (settings.model, settings.training):
        for spec, parameter in group:
            parameter.set_value(CHANGED[spec.name])
    config = build_training_config(settings.spec_values(), N=64, model_type="pinn",
                                   output_dir=tmp_path)
    for spec in PARAMETERS:
        if spec.section == "model":
            assert getattr(config.model, spec.spec_field) == CHANGED[spec.name], spec.name
        elif spec.section == "training":
            expected = CHANGED[spec.name]
            expected = int(expected) if spec.name == "BatchSize" else expected
            assert getattr(config, spec.spec_field) == expected, spec.name
    assert config.model.N == 64 and config.model.model_type == "pinn"
    assert config.backend == "pytorch" and config.torch_loss_mode == "poisson"
    assert config.output_dir == tmp_path
    torch_side = pytorch_configs(config)  # through config.bridge
    assert torch_side.model.mode == "Unsupervised"
    assert torch_side.data.grid_size == (2, 2) and torch_side.training.epochs == 3


def test_fno_settings_reach_their_spec_fields(tmp_path: Path) -> None:
    settings = PINNTorchSettings(SettingsRegistry())
    for spec, parameter in settings.model:
        if spec.name in FNO_CHANGED:
            parameter.set_value(FNO_CHANGED[spec.name])
    config = build_training_config(settings.spec_values(), N=64, model_type="pinn",
                                   output_dir=tmp_path)
    for spec in PARAMETERS:
        if spec.name in FNO_CHANGED:
            assert getattr(config.model, spec.spec_field) == FNO_CHANGED[spec.name], spec.name
    assert pytorch_configs(config).model.architecture == "fno"


def test_a_switch_the_architecture_cannot_honour_names_the_setting(tmp_path: Path) -> None:
    values = PINNTorchSettings(SettingsRegistry()).spec_values()
    values["model"]["architecture"] = "fno"
    values["model"]["cbam_encoder"] = True
    with pytest.raises(ValueError, match=r"cbam_encoder.*\[PINNTorchModel\] CBAMEncoder"):
        build_training_config(values, N=64, model_type="pinn", output_dir=tmp_path)


def test_supervised_uses_mae_loss_mode(tmp_path: Path) -> None:
    values = PINNTorchSettings(SettingsRegistry()).spec_values()
    config = build_training_config(values, N=64, model_type="supervised", output_dir=tmp_path)
    assert config.model.model_type == "supervised" and config.torch_loss_mode == "mae"


def test_config_errors_name_the_setting(tmp_path: Path) -> None:
    values = PINNTorchSettings(SettingsRegistry()).spec_values()
    values["training"]["batch_size"] = 24
    with pytest.raises(ValueError, match=r"batch_size.*24.*\[PINNTorchTraining\] BatchSize"):
        build_training_config(values, N=64, model_type="pinn", output_dir=tmp_path)
    values = PINNTorchSettings(SettingsRegistry()).spec_values()
    values["execution"]["learning_rate"] = -1.0
    with pytest.raises(ValueError, match=r"learning_rate.*\[PINNTorchExecution\] LearningRate"):
        build_engine_config(values, N=64, model_type="pinn", output_dir=tmp_path)
    assert setting_name("model", "gridsize") == "[PINNTorchModel] GridSize"


def test_setting_hint_names_only_the_field_in_the_message() -> None:
    from ptychodus_pinn_torch.host.configs import TRAINING_FIELDS, with_setting_hint

    error = ValueError("TrainingConfig.realspace_mae_weight = -1 must be >= 0")
    message = str(with_setting_hint(error, "training", TRAINING_FIELDS))
    assert message.endswith("(ptychodus setting: [PINNTorchTraining] RealspaceMAEWeight)")


def test_stage_settings_reach_the_engine_config(tmp_path: Path) -> None:
    values = PINNTorchSettings(SettingsRegistry()).spec_values()
    values["training"]["nepochs"] = 6
    values["execution"].update(stage_1_epochs=1, stage_2_epochs=2, stage_3_epochs=3,
                               physics_weight_schedule="linear", stage_3_lr_factor=0.5)
    config = build_engine_config(values, N=64, model_type="pinn", output_dir=tmp_path)
    assert (config.stage_1_epochs, config.stage_2_epochs, config.stage_3_epochs) == (1, 2, 3)
    assert config.physics_weight_schedule == "linear" and config.stage_3_lr_factor == 0.5
    values["execution"]["stage_3_epochs"] = 1
    with pytest.raises(ValueError, match=r"\[PINNTorchExecution\] Stage1Epochs"):
        build_engine_config(values, N=64, model_type="pinn", output_dir=tmp_path)
