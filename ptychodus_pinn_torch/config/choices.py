"""Choice constants of the whole package, defined once (standard library only).

Every other module (the spec and PyTorch dataclasses, the model, the archive, the host settings)
imports these names instead of spelling the values again.
"""

from __future__ import annotations

#: accepted ``ModelConfig.N`` values (upstream's Literal; the CNN supports exactly these).
N_VALUES: tuple[int, ...] = (64, 128, 256)
#: spec ``model_type`` values.
MODEL_TYPES: tuple[str, ...] = ("pinn", "supervised")
#: spec (TF) amplitude activations.
AMP_ACTIVATIONS: tuple[str, ...] = ("sigmoid", "swish", "softplus", "relu")
#: activations the PyTorch dataclasses accept (silu/SiLU are TF's swish).
PT_AMP_ACTIVATIONS: tuple[str, ...] = ("silu", "SiLU", "sigmoid", "swish", "softplus", "relu")
#: generator architectures (``ModelConfig.architecture``; ``model.generators.REGISTRY`` builds
#: them, specs/MODEL.md MODEL-220) and their output modes.
ARCHITECTURES: tuple[str, ...] = ("cnn", "unet", "fno")
OUTPUT_MODES: tuple[str, ...] = ("amp_phase", "real_imag")
#: upstream HEAD architectures this package does not provide (refused by name).
UPSTREAM_ONLY_ARCHITECTURES: tuple[str, ...] = ("ffno", "fno_vanilla", "neuralop_uno")
#: ``physics_weight_schedule`` values: how stage 2 blends the warm-up loss into the physics loss
#: (specs/ENGINE.md ENG-220).
PHYSICS_WEIGHT_SCHEDULES: tuple[str, ...] = ("linear", "cosine", "exponential")
#: spec ``backend`` values.
BACKENDS: tuple[str, ...] = ("tensorflow", "pytorch")
#: ``gradient_clip_algorithm`` values (upstream HEAD).
GRADIENT_CLIP_ALGORITHMS: tuple[str, ...] = ("norm", "value", "agc")
#: ``optimizer`` values (upstream HEAD).
OPTIMIZERS: tuple[str, ...] = ("adam", "adamw", "sgd")
#: spec ``scheduler`` values (upstream HEAD).
SCHEDULERS: tuple[str, ...] = ("Default", "Exponential", "WarmupCosine", "ReduceLROnPlateau")
#: ``torch_loss_mode`` values (spec and PyTorch configs alike).
TORCH_LOSS_MODES: tuple[str, ...] = ("poisson", "mae")
#: name of the model archive inside a model folder (as upstream's ``{h5_path}.zip``).
ARCHIVE_NAME = "wts.h5.zip"
#: the per-epoch loss history a training writes next to its archive.
HISTORY_NAME = "history.json"
#: the folder (inside a training's output folder) that holds ``checkpoint.pt``.
CHECKPOINT_DIR_NAME = "checkpoints"
#: the resolved configuration a training writes next to its archive (CFG-110).
CONFIG_NAME = "config.json"
