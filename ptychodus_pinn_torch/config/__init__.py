"""Configuration layer (standard library only; importing it never imports torch).

- :mod:`.spec`: TF-style ``ModelConfig``, ``TrainingConfig``, ``InferenceConfig`` and
  ``validate_*`` (upstream ``ptycho.config.config``).
- :mod:`.params`: PyTorch ``DataConfig``, ``ModelConfig``, ``TrainingConfig``,
  ``InferenceConfig``, ``ExecutionConfig`` (upstream ``ptycho_torch.config_params``).
- :mod:`.bridge`: ``to_model_config``/``to_training_config``/``to_inference_config``
  (PyTorch -> spec) and ``from_spec`` (spec -> PyTorch).
- :mod:`.legacy`: ``KEY_MAPPINGS``, ``dataclass_to_legacy_dict``, ``update_legacy_dict``.
- :mod:`.serialize`: ``spec_to_dict``/``spec_from_dict``, ``torch_to_dict``/``torch_from_dict``.

The rules are in specs/CFG.md.
"""

from ptychodus_pinn_torch.config import bridge, legacy, params, serialize, spec
from ptychodus_pinn_torch.config.bridge import (
    PyTorchConfigs,
    SpecOverrides,
    from_spec,
    to_inference_config,
    to_model_config,
    to_spec,
    to_training_config,
)
from ptychodus_pinn_torch.config.legacy import (
    KEY_MAPPINGS,
    dataclass_to_legacy_dict,
    legacy_params,
    update_legacy_dict,
)
from ptychodus_pinn_torch.config.serialize import (
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
