"""Interop translators around the engine's configuration (standard library only).

- :mod:`.params`: upstream's PyTorch dataclasses (``DataConfig``, ``ModelConfig``,
  ``TrainingConfig``, ``InferenceConfig``, ``ExecutionConfig``).
- :mod:`.bridge`: PyTorch <-> TF-style spec, and on to the engine's ``EngineConfig``.
- :mod:`.legacy`: upstream's flat ``params.cfg`` dictionary.
- :mod:`.serialize`: JSON dicts of the spec and PyTorch configs.

The engine itself reads one configuration, :class:`ptychodus_pinn_torch.config.engine.
EngineConfig`, which holds the TF-style spec ``TrainingConfig`` (``config.spec``: the field
names upstream's users know); these modules translate other layouts into it. The old import
paths (``ptychodus_pinn_torch.config.params`` and so on) name these same modules.
"""
