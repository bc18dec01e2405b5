"""The hooks through which a package adds reconstructors to ptychodus.

ptychodus 1.7 has no extension point for reconstructors; :func:`ptychodus_pinn_torch.host.
install.install` adds one, and this module defines what it calls. A plugin is a module (or
object) with functions decorated by :data:`hookimpl` and named like the specs below; a package
registers it under the entry-point group :data:`ENTRY_POINT_GROUP`::

    [project.entry-points."ptychodus_pinn_torch.plugins"]
    my-plugin = "my_package.ptychodus_plugin"

This package registers its own plugin there (``ptychodus-pinn-torch =
"ptychodus_pinn_torch.host.plugin"``), exactly as any third party would.

Every hook is called fail-open: an exception inside one plugin is logged and that plugin's
contribution is skipped; ptychodus still starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pluggy

PROJECT_NAME = "ptychodus_pinn_torch"
ENTRY_POINT_GROUP = "ptychodus_pinn_torch.plugins"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def reconstructor_libraries(
    settings_registry: Any, is_developer_mode_enabled: bool
) -> Sequence[Any] | None:
    """Contribute reconstructor libraries to ptychodus' Processing view.

    Called once per ``ProcessingCore`` (i.e. once per ptychodus ``ModelCore``), before
    ptychodus opens its settings file, so settings groups created here receive the values of
    ``settings.ini`` and are written back by "Save Settings".

    :param settings_registry: ptychodus' ``SettingsRegistry``; create your settings groups in
        it (group names must be unique: ptychodus raises ``ValueError`` on a duplicate).
    :param is_developer_mode_enabled: ptychodus' developer mode (``--log-level 10``).
    :return: a sequence of ``ptychodus.api.reconstruct.ReconstructorLibrary`` instances (or
        None). Each library's ``name`` must not contain ``_`` (ptychodus splits the algorithm
        key ``<library>_<reconstructor>`` at the first ``_``) and must differ from every other
        library's name; a library that breaks either rule is skipped with an error in the log.
    """


@hookspec
def reconstructor_view_controller_factories(library: Any, file_dialog_factory: Any) -> Any:
    """Contribute the GUI panel of one reconstructor library.

    Called once per ``ProcessingController`` (only in the GUI), for each library that a
    :func:`reconstructor_libraries` hook contributed. Return None for a library that is not
    yours. Import Qt lazily inside the implementation: batch mode never calls this hook.

    :param library: one ``ReconstructorLibrary`` from :func:`reconstructor_libraries`.
    :param file_dialog_factory: ptychodus' ``FileDialogFactory`` (for path parameters).
    :return: a ``ptychodus.controller.processing.ReconstructorViewControllerFactory`` whose
        ``name`` equals ``library.name`` (ptychodus matches panels to libraries by name,
        case-insensitively), or None.
    """
