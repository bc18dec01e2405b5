"""Configuration layer (standard library only; importing it never imports torch).

- :mod:`.engine`: ``EngineConfig``, the one configuration the training engine takes (the spec
  ``TrainingConfig`` plus the run settings).
- :mod:`.builder`: ``engine_config_for``, the EngineConfig from command-line style settings
  with ``pinn-torch train``'s rules (the CLI and the benchmarks build through it, CFG-264).
- :mod:`.spec`: TF-style ``ModelConfig``, ``TrainingConfig``, ``InferenceConfig`` and
  ``validate_*`` (upstream ``ptycho.config.config``); the field names the engine config uses.
- :mod:`.choices`: the choice constants (activations, N values, architectures, file names).
- :mod:`.fields`: what every configuration field does (acts, carried, refused, warned).
- :mod:`.interop`: translators around it: ``params`` (upstream's PyTorch dataclasses),
  ``bridge`` (PyTorch <-> spec -> engine), ``legacy`` (the flat params dict), ``serialize``
  (JSON dicts). ``config.params`` and the like stay importable under their old names.
"""

from ptychodus_pinn_torch.config import engine, fields, spec
from ptychodus_pinn_torch.config.interop import bridge, legacy, params, serialize
from ptychodus_pinn_torch.config.interop.bridge import (
    PyTorchConfigs,
    SpecOverrides,
    from_spec,
    to_inference_config,
    to_model_config,
    to_spec,
    to_training_config,
)
from ptychodus_pinn_torch.config.interop.legacy import (
    KEY_MAPPINGS,
    dataclass_to_legacy_dict,
    legacy_params,
    update_legacy_dict,
)
from ptychodus_pinn_torch.config.interop.serialize import (
    spec_from_dict,
    spec_to_dict,
    torch_from_dict,
    torch_to_dict,
)
from ptychodus_pinn_torch.config.spec import (
    validate_inference_config,
    validate_model_config,
    validate_training_config,
)

__all__ = [
    "KEY_MAPPINGS",
    "PyTorchConfigs",
    "SpecOverrides",
    "bridge",
    "engine",
    "fields",
    "dataclass_to_legacy_dict",
    "from_spec",
    "legacy",
    "legacy_params",
    "params",
    "serialize",
    "spec",
    "spec_from_dict",
    "spec_to_dict",
    "to_inference_config",
    "to_model_config",
    "to_spec",
    "to_training_config",
    "torch_from_dict",
    "torch_to_dict",
    "update_legacy_dict",
    "validate_inference_config",
    "validate_model_config",
    "validate_training_config",
]
