"""Training loop, checkpoints, inference over a dataset, devices and the model archive.

Modules (import the one you need; this package imports nothing heavy on its own):

- :mod:`.devices`: device auto-selection and validation.
- :mod:`.run`: :func:`~.run.run_training`, the one training pipeline (files in; archive,
  history.json and checkpoints out), used by the CLI, the ptychodus job and the benchmarks.
- :mod:`.training`: :func:`~.training.train_model` (scans and an
  :class:`~ptychodus_pinn_torch.config.engine.EngineConfig` in, a trained bundle out), split
  into :mod:`.session` (set-up, checkpoint state), :mod:`.epoch` (one epoch, evaluation) and
  :mod:`.schedule` (optimizer, plateau, clipping, early stopping).
- :mod:`.events`: :class:`~.events.EpochReport`, :class:`~.events.BatchProgress`,
  :class:`~.events.TrainCallbacks` (the hooks), :class:`~.events.TrainResult`.
- :mod:`.checkpoint`: atomic per-epoch checkpoints and resume.
- :mod:`.distributed`: torch.distributed (DDP) set-up for ``torchrun``.
- :mod:`.inference`: :func:`~.inference.reconstruct` and :class:`~.inference.Reconstruction`.
- :mod:`.progress`: a small text progress bar for the command line.
- :mod:`.archive`: the ``wts.h5.zip`` model archive.
"""
