"""A trained model for scripts and notebooks: the engine's bundle plus its training history."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch-free import of this module
    from ptychodus_pinn_torch.config.spec import ModelConfig
    from ptychodus_pinn_torch.engine.archive import ModelBundle
    from ptychodus_pinn_torch.engine.training import EpochReport


@dataclass
class Model:
    """A PtychoPINN model: what :func:`~ptychodus_pinn_torch.api.train` returns and
    :func:`~ptychodus_pinn_torch.api.predict_and_stitch` uses.

    Attributes:
        bundle: the engine's model bundle (network, model config, intensity scale, probe).
        history: one report per finished training epoch (empty for a loaded model).
        stopped: why training ended early, one line, or None.
    """

    bundle: ModelBundle
    history: list[EpochReport] = field(default_factory=list)
    stopped: str | None = None

    @property
    def config(self) -> ModelConfig:
        """The spec ``ModelConfig`` (N, gridsize, architecture, ...)."""
        return self.bundle.model_config

    @property
    def intensity_scale(self) -> float:
        """The intensity scale the network was trained with."""
        return float(self.bundle.intensity_scale)

    @property
    def losses(self) -> list[float]:
        """Training loss per finished epoch."""
        return [float(r.train_loss) for r in self.history]

    def save(self, path: str | Path) -> Path:
        """Write the model archive (``wts.h5.zip``; a folder gets ``wts.h5.zip`` inside) and
        return its path. Loadable by :meth:`load`, ``pinn-torch reconstruct`` and ptychodus."""
        from ptychodus_pinn_torch.engine.archive import save_archive

        return Path(save_archive(Path(path), self.bundle))

    @classmethod
    def load(cls, path: str | Path, *, device: str = "cpu") -> Model:
        """Read a model archive (or a folder holding ``wts.h5.zip``) written by :meth:`save`,
        ``pinn-torch train`` or ptychodus, never unpickling; a TensorFlow archive is refused by
        name."""
        from ptychodus_pinn_torch.engine.archive import load_archive

        return cls(bundle=load_archive(Path(path), device=device))
