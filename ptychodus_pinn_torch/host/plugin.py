"""This package's own hook implementations, registered through the entry point
``ptychodus-pinn-torch`` of group ``ptychodus_pinn_torch.plugins`` like any third party's."""

from __future__ import annotations

from typing import Any

from ptychodus_pinn_torch.host.hookspecs import hookimpl


@hookimpl
def reconstructor_libraries(settings_registry: Any, is_developer_mode_enabled: bool) -> list[Any]:
    """The ``PtychoPINN-PyTorch`` library (``PINN``, ``Supervised``)."""
    from ptychodus_pinn_torch.host.library import PtychoPINNTorchLibrary

    return [PtychoPINNTorchLibrary(settings_registry, is_developer_mode_enabled)]


@hookimpl
def reconstructor_view_controller_factories(library: Any, file_dialog_factory: Any) -> Any:
    """The Qt panel of our library (built by :mod:`.panel`, imported only in the GUI)."""
    from ptychodus_pinn_torch.host.library import PtychoPINNTorchLibrary

    if not isinstance(library, PtychoPINNTorchLibrary):
        return None
    from ptychodus_pinn_torch.host.panel import create_view_controller_factory

    return create_view_controller_factory(library, file_dialog_factory)
