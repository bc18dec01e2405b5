"""The settings panel of PtychoPINN-PyTorch inside ptychodus (one per reconstructor).

This module and :mod:`.controller_fixups` (the repairs of ptychodus' own Processing view) are
the only modules of the package that import PyQt5 or ptychodus' ``controller`` code. The host's
GUI hook imports them lazily, so batch mode (``ptychodus -b``) never loads Qt.

Public API
----------
:func:`create_view_controller_factory`
    ``(library, file_dialog_factory) -> ReconstructorViewControllerFactory`` whose ``name`` is the
    library's name (``PtychoPINN-PyTorch``). ptychodus calls its ``create_view_controller`` once per
    reconstructor (``pinn``, ``supervised``; ptychodus passes the name casefolded) and puts the
    returned widget into the Processing view's stacked widget.

It also makes every ``ProcessingController`` attach :mod:`.controller_fixups` to itself
(:func:`.controller_fixups.install_controller_self_attach`).

Each panel shows a header (library / reconstructor and one line on what it trains), a
:class:`ModelStatusLabel` (which model Infer would use, and the state of the running or last
training) and one group box per settings group. Every row's tooltip says what it does, its
unit and upstream's name (:attr:`.settings.ParameterSpec.tooltip`).

The panel is built with ptychodus' own ``ParameterViewBuilder`` from the parameter table
:data:`ptychodus_pinn_torch.host.settings.PARAMETERS`: enumerated values (``AmpActivation``,
``BatchSize``, ``Device``) become combo boxes offering exactly their ``choices``, booleans check
boxes, bounded integers spin boxes, unbounded integers integer line edits, reals in [0, 1]
sliders (as ptychodus' TensorFlow PtychoPINN panel does for the loss weights) and other reals
decimal line edits. Every widget is bound to the live ptychodus parameter, so editing a widget
changes the setting (and what "Save Settings" writes) and a changed setting updates the widget.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ptychodus.api.parameters import (
    BooleanParameter,
    IntegerParameter,
    Parameter,
    RealParameter,
    StringParameter,
)
from ptychodus.controller.parameters import (
    DecimalLineEditParameterViewController,
    ParameterViewBuilder,
)
from ptychodus.controller.processing import ReconstructorViewControllerFactory
from PyQt5.QtCore import QTimer
from PyQt5.QtWidgets import QLabel, QVBoxLayout, QWidget

from .controller_fixups import install_controller_self_attach
from .settings import ParameterSpec, PINNTorchSettings, SettingsGroup
from .training_status import TrainingStatus

__all__ = [
    "PANEL_OBJECT_NAME_PREFIX",
    "PINN_ONLY_PARAMETERS",
    "SECTION_TITLES",
    "PINNTorchViewControllerFactory",
    "ModelStatusLabel",
    "build_settings_panel",
    "create_view_controller_factory",
    "visible_specs",
]

logger = logging.getLogger(__name__)

PANEL_OBJECT_NAME_PREFIX = "PINNTorchPanel-"
"""Qt objectName of a panel is this prefix plus the casefolded reconstructor name."""

SECTION_TITLES: dict[str, str] = {
    "model": "Model",
    "training": "Training",
    "inference": "Inference",
    "execution": "Execution",
}
"""Group-box title of each settings section in the panel."""

PINN_ONLY_PARAMETERS: frozenset[tuple[str, str]] = frozenset(
    {
        ("model", "GridSize"),
        ("model", "AmpActivation"),
        ("model", "ObjectBig"),
        ("model", "ProbeBig"),
        ("model", "ProbeMask"),
        ("model", "PadObject"),
        ("model", "ProbeScale"),
        ("model", "GaussianSmoothingSigma"),
        ("training", "MAEWeight"),
        ("training", "NLLWeight"),
        ("training", "RealspaceMAEWeight"),
        ("training", "RealspaceWeight"),
        ("training", "ProbeTrainable"),
        ("training", "IntensityScaleTrainable"),
    }
)
"""``(section, Name)`` of the physics-model knobs shown only on the ``PINN`` panel.

ptychodus' TensorFlow PtychoPINN panel (``ptychodus/controller/ptychopinn.py``, 1.7.0) shows
these only for its ``PINN`` reconstructor; the supervised model has no diffraction forward
model, so they would do nothing there. Every other parameter appears on both panels.
"""

_DESCRIPTIONS: dict[str, str] = {
    "pinn": "Physics-informed network, trained without labels through the far-field "
    "diffraction model and a Poisson likelihood.",
    "supervised": "Supervised network, trained on diffraction patterns paired with the "
    "product's object.",
}


def visible_specs(
    group: SettingsGroup, reconstructor_name: str
) -> list[tuple[ParameterSpec, Parameter[Any]]]:
    """The ``(spec, parameter)`` pairs of ``group`` shown on the panel of ``reconstructor_name``.

    ``reconstructor_name`` is compared casefolded (ptychodus passes ``"pinn"``/``"supervised"``).
    """
    is_pinn = reconstructor_name.casefold() == "pinn"
    return [
        (spec, parameter)
        for spec, parameter in group
        if is_pinn or (spec.section, spec.name) not in PINN_ONLY_PARAMETERS
    ]


def _check_parameter(spec: ParameterSpec, parameter: Parameter[Any], expected: type) -> None:
    if not isinstance(parameter, expected):
        raise ValueError(
            f"[{spec.group}] {spec.name}: settings kind {spec.kind!r} needs a "
            f"{expected.__name__}, got {type(parameter).__name__}; fix the settings table "
            "(host/settings.py PARAMETERS) or the group that created the parameter"
        )


def _add_parameter(
    builder: ParameterViewBuilder,
    spec: ParameterSpec,
    parameter: Parameter[Any],
    title: str,
) -> None:
    """Add the widget that fits ``spec.kind`` (and its range) for ``parameter`` to ``builder``."""
    label = f"{spec.label}:"
    tip = spec.tooltip
    if spec.kind == "choice":
        _check_parameter(spec, parameter, StringParameter)
        if not spec.choices:
            raise ValueError(
                f"[{spec.group}] {spec.name}: an enumerated parameter needs a non-empty "
                "`choices` tuple in host/settings.py PARAMETERS"
            )
        builder.add_combo_box(parameter, spec.choices, label, tool_tip=tip, group=title)
    elif spec.kind == "bool":
        _check_parameter(spec, parameter, BooleanParameter)
        builder.add_check_box(parameter, label, tool_tip=tip, group=title)
    elif spec.kind == "int":
        _check_parameter(spec, parameter, IntegerParameter)
        if spec.minimum is not None and spec.maximum is not None:
            builder.add_spin_box(parameter, label, tool_tip=tip, group=title)
        else:
            builder.add_integer_line_edit(parameter, label, tool_tip=tip, group=title)
    elif spec.kind == "real":
        _check_parameter(spec, parameter, RealParameter)
        lo, hi = spec.minimum, spec.maximum
        if lo is not None and hi is not None and 0.0 <= lo and hi <= 1.0:
            builder.add_decimal_slider(parameter, label, tool_tip=tip, group=title)
        else:
            signed = lo is None or lo < 0.0
            controller = DecimalLineEditParameterViewController(
                parameter, is_signed=signed, tool_tip=tip
            )
            builder.add_view_controller(controller, label, group=title)
    else:
        raise ValueError(
            f"[{spec.group}] {spec.name}: unknown parameter kind {spec.kind!r}; "
            "use one of 'int', 'real', 'bool', 'choice'"
        )


class ModelStatusLabel(QLabel):
    """Which model Infer would use (``Model: none ...`` or ``Model: <file> (<folder>)``) and,
    once a training ran, its state: the live ``epoch k / n ...`` line while it runs, then how
    it ended (for a stopped training: which epoch's weights were kept, and where).

    ptychodus shows no model status anywhere. The label reads the reconstructor's
    ``is_model_loaded()``, ``model_path`` and ``training_status`` every
    :attr:`INTERVAL_MS` while it is visible.
    """

    NO_MODEL = "Model: none loaded (Train, or Load Model... from the \u25be menu)"
    INTERVAL_MS = 500

    def __init__(self, reconstructor: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("PINNTorchModelStatus")
        self.setWordWrap(True)
        self._reconstructor = reconstructor
        self._timer = QTimer(self)
        self._timer.setInterval(self.INTERVAL_MS)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()
        self.refresh()

    def refresh(self) -> None:
        if not self.isVisible() and self.text():
            return
        try:
            loaded = bool(self._reconstructor.is_model_loaded())
            path = getattr(self._reconstructor, "model_path", None)
            status = getattr(self._reconstructor, "training_status", None)
        except Exception:
            logger.exception("ptychodus-pinn-torch: model status unavailable")
            return
        if not loaded:
            text = self.NO_MODEL
        elif path:
            text = f"Model: {Path(path).name} ({Path(path).parent})"
        else:
            text = "Model: loaded"
        if isinstance(status, TrainingStatus):
            snap = status.snapshot()
            if snap.run:
                prefix = "Training: " if snap.state == "running" else "Last training: "
                text += "\n" + prefix + snap.line
        if text != self.text():
            self.setText(text)
            self.setToolTip(str(path) if loaded and path else "")


def build_settings_panel(
    groups: Sequence[SettingsGroup],
    reconstructor_name: str,
    *,
    library_name: str = "PtychoPINN-PyTorch",
    file_dialog_factory: Any | None = None,
    reconstructor: Any | None = None,
) -> QWidget:
    """Build the settings panel of one reconstructor from the library's settings groups.

    :param groups: the library's :class:`SettingsGroup` objects (model, training, inference,
        execution; any subset, in panel order).
    :param reconstructor_name: ``"pinn"`` or ``"supervised"`` (any case); other names get all
        parameters.
    :param library_name: shown in the panel's header line.
    :param file_dialog_factory: ptychodus' ``FileDialogFactory`` (unused by today's parameter
        kinds; passed on to ``ParameterViewBuilder`` for path parameters).
    :param reconstructor: the ptychodus ``TrainableReconstructor`` the panel belongs to; when
        given, a :class:`ModelStatusLabel` under the header shows its model.
    :return: a QWidget whose objectName is ``PINNTorchPanel-<reconstructor, casefolded>``; one
        group box per section, titled by :data:`SECTION_TITLES`.
    """
    builder = ParameterViewBuilder(file_dialog_factory)
    name = reconstructor_name.casefold()
    for group in groups:
        title = SECTION_TITLES.get(group.section, group.group_name)
        for spec, parameter in visible_specs(group, name):
            _add_parameter(builder, spec, parameter, title)

    settings_widget = builder.build_widget()
    header = QLabel(
        f"<b>{library_name} / {reconstructor_name}</b><br>"
        + _DESCRIPTIONS.get(name, "PyTorch PtychoPINN reconstructor.")
    )
    header.setWordWrap(True)

    panel = QWidget()
    panel.setObjectName(PANEL_OBJECT_NAME_PREFIX + name)
    layout = QVBoxLayout()
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(header)
    if reconstructor is not None:
        layout.addWidget(ModelStatusLabel(reconstructor))
    layout.addWidget(settings_widget)
    panel.setLayout(layout)
    return panel


def _library_settings_groups(library: Any) -> list[SettingsGroup]:
    """The SettingsGroup objects of ``library.settings`` (a ``PINNTorchSettings``), in the
    order model, training, inference, execution."""
    settings = getattr(library, "settings", None)
    if not isinstance(settings, PINNTorchSettings):
        raise ValueError(
            f"library {getattr(library, 'name', library)!r} exposes no PINNTorch settings "
            "groups; give it a `settings` attribute (host.settings.PINNTorchSettings)"
        )
    return list(settings.groups())


class PINNTorchViewControllerFactory(ReconstructorViewControllerFactory):
    """ptychodus' panel factory for the PtychoPINN-PyTorch library (one panel per reconstructor)."""

    def __init__(self, library: Any, file_dialog_factory: Any) -> None:
        super().__init__()
        self._library = library
        self._file_dialog_factory = file_dialog_factory
        self._groups = _library_settings_groups(library)

    @property
    def name(self) -> str:
        return str(self._library.name)

    def create_view_controller(self, reconstructor_name: str) -> QWidget:
        # ptychodus passes the name casefolded; show the library's own spelling
        reconstructor = next(
            (r for r in self._library
             if str(r.name).casefold() == reconstructor_name.casefold()),
            None,
        )
        return build_settings_panel(
            self._groups,
            reconstructor_name if reconstructor is None else str(reconstructor.name),
            library_name=self.name,
            file_dialog_factory=self._file_dialog_factory,
            reconstructor=reconstructor,
        )


def create_view_controller_factory(
    library: Any, file_dialog_factory: Any
) -> ReconstructorViewControllerFactory:
    """The panel factory for ``library`` (the hookimpl body of the host's GUI hook).

    Also makes every ``ProcessingController`` attach
    :func:`.controller_fixups.attach_controller_fixups` to itself (see
    :func:`.controller_fixups.install_controller_self_attach`), so the fix-ups are in place
    whether or not the caller attaches them explicitly.
    """
    install_controller_self_attach()
    return PINNTorchViewControllerFactory(library, file_dialog_factory)
