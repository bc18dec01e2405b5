"""The ``PtychoPINN-PyTorch`` reconstructor library (reconstructors ``PINN`` and ``Supervised``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from ptychodus.api.reconstruct import Reconstructor, ReconstructorLibrary
from ptychodus.api.settings import SettingsRegistry

from ptychodus_pinn_torch.host.reconstructor import PINNTorchReconstructor
from ptychodus_pinn_torch.host.settings import PINNTorchSettings, SettingsGroup
from ptychodus_pinn_torch.host.tf_models import probe_of_last_product

__all__ = ["LIBRARY_NAME", "LOGGER_NAME", "PtychoPINNTorchLibrary"]

#: not ``PtychoPINN-Torch``: that slot belongs to ptychodus' built-in (upstream) backend
LIBRARY_NAME = "PtychoPINN-PyTorch"
#: the package's top logger: ptychodus attaches its log pane handler here, so the records of
#: every ``ptychodus_pinn_torch.*`` module (and of the training worker) reach the GUI
LOGGER_NAME = "ptychodus_pinn_torch"


class PtychoPINNTorchLibrary(ReconstructorLibrary):
    """Settings groups ``PINNTorch{Model,Training,Inference,Execution}`` and two reconstructors.

    Attributes for the GUI panel: ``settings`` (all groups), ``model_settings``,
    ``training_settings``, ``inference_settings``, ``execution_settings`` (each a
    :class:`~.settings.SettingsGroup`, e.g. ``model_settings.grid_size``).
    """

    def __init__(self, settings_registry: SettingsRegistry,
                 is_developer_mode_enabled: bool = False) -> None:
        super().__init__(LOGGER_NAME)
        self.settings = PINNTorchSettings(settings_registry)
        self.model_settings: SettingsGroup = self.settings.model
        self.training_settings: SettingsGroup = self.settings.training
        self.inference_settings: SettingsGroup = self.settings.inference
        self.execution_settings: SettingsGroup = self.settings.execution
        self.is_developer_mode_enabled = is_developer_mode_enabled
        self._reconstructors: list[PINNTorchReconstructor] = [
            PINNTorchReconstructor("PINN", "pinn", self.settings),
            PINNTorchReconstructor("Supervised", "supervised", self.settings),
        ]

    def set_product_api(self, product_api: Any) -> None:
        """Give the reconstructors the loaded product's probe (ptychodus' ``ProductAPI``), used
        to convert a TensorFlow model at Load Model... (HOST-170)."""
        def source() -> tuple[np.ndarray, str] | None:
            return probe_of_last_product(product_api)

        for r in self._reconstructors:
            r.probe_source = source

    @property
    def name(self) -> str:
        return LIBRARY_NAME

    def __iter__(self) -> Iterator[Reconstructor]:
        return iter(self._reconstructors)

    def reconstructor(self, name: str) -> PINNTorchReconstructor:
        """The reconstructor called ``name`` (case-insensitive); KeyError lists the names."""
        for r in self._reconstructors:
            if r.name.casefold() == name.casefold():
                return r
        raise KeyError(f"{LIBRARY_NAME} has no reconstructor {name!r}; it has "
                       f"{[r.name for r in self._reconstructors]}")
