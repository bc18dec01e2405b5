"""Training loop, checkpoints, inference over a dataset, devices and the model archive.

Modules (import the one you need; this package imports nothing heavy on its own):

- :mod:`.devices`: device auto-selection and validation.
- :mod:`.training`: :func:`~.training.train_model`, :class:`~.training.TrainOptions`,
  :class:`~.training.EpochReport`, :class:`~.training.TrainResult`.
- :mod:`.checkpoint`: atomic per-epoch checkpoints and resume.
- :mod:`.distributed`: torch.distributed (DDP) set-up for ``torchrun``.
- :mod:`.inference`: :func:`~.inference.reconstruct` and :class:`~.inference.Reconstruction`.
- :mod:`.progress`: a small text progress bar for the command line.
- :mod:`.archive`: the ``wts.h5.zip`` model archive.
"""
