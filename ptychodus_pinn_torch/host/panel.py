"""The Qt side of PtychoPINN-PyTorch inside ptychodus: the settings panel and controller fix-ups.

This is the only module of the package that imports PyQt5 or ptychodus' ``controller`` code.
The host's GUI hook imports it lazily, so batch mode (``ptychodus -b``) never loads Qt.

Public API
----------
:func:`create_view_controller_factory`
    ``(library, file_dialog_factory) -> ReconstructorViewControllerFactory`` whose ``name`` is the
    library's name (``PtychoPINN-PyTorch``). ptychodus calls its ``create_view_controller`` once per
    reconstructor (``pinn``, ``supervised``; ptychodus passes the name casefolded) and puts the
    returned widget into the Processing view's stacked widget.
:func:`attach_controller_fixups`
    ``(controller, processing_api) -> ControllerFixups | None``: GUI-side repairs of ptychodus
    1.7's ``ProcessingController``: Infer re-enabled right after a training run, Infer kept
    disabled while there is no model, the loss plot readable when losses are <= 0, and the
    algorithm combo box never showing an algorithm other than the selected one. Idempotent and
    fail-open.
:func:`install_controller_self_attach`
    called by :func:`create_view_controller_factory`: every ``ProcessingController`` attaches
    those repairs to itself at the end of its ``__init__`` (so the host's install wrapper does
    not have to call :func:`attach_controller_fixups`; calling it anyway is harmless).

Each panel shows a header (library / reconstructor and one line on what it trains), a
:class:`ModelStatusLabel` (which model Infer would use) and one group box per settings group.

The panel is built with ptychodus' own ``ParameterViewBuilder`` from the parameter table
:data:`ptychodus_pinn_torch.host.settings.PARAMETERS`: enumerated values (``AmpActivation``,
``BatchSize``, ``Device``) become combo boxes offering exactly their ``choices``, booleans check
boxes, bounded integers spin boxes, unbounded integers integer line edits, reals in [0, 1]
sliders (as ptychodus' TensorFlow PtychoPINN panel does for the loss weights) and other reals
decimal line edits. Every widget is bound to the live ptychodus parameter, so editing a widget
changes the setting (and what "Save Settings" writes) and a changed setting updates the widget.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ptychodus.api.observer import Observable, Observer
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

from .settings import ParameterSpec, PINNTorchSettings, SettingsGroup

__all__ = [
    "PANEL_OBJECT_NAME_PREFIX",
    "PINN_ONLY_PARAMETERS",
    "SECTION_TITLES",
    "PINNTorchViewControllerFactory",
    "attach_controller_fixups",
    "ControllerFixups",
    "ModelStatusLabel",
    "build_settings_panel",
    "create_view_controller_factory",
    "install_controller_self_attach",
    "remove_controller_self_attach",
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
        ("training", "PositionsProvided"),
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
    tip = spec.help
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
    """One line saying which model Infer would use: ``Model: none ...`` or ``Model: <file>``.

    ptychodus shows no model status anywhere. The label reads the reconstructor's
    ``is_model_loaded()`` (and ``model_path`` when it has one) once a second while it is
    visible, the same cadence as ptychodus' own GUI task timer.
    """

    NO_MODEL = "Model: none loaded (Train, or Load Model... from the \u25be menu)"

    def __init__(self, reconstructor: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("PINNTorchModelStatus")
        self.setWordWrap(True)
        self._reconstructor = reconstructor
        self._timer = QTimer(self)
        self._timer.setInterval(1000)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()
        self.refresh()

    def refresh(self) -> None:
        if not self.isVisible() and self.text():
            return
        try:
            loaded = bool(self._reconstructor.is_model_loaded())
            path = getattr(self._reconstructor, "model_path", None)
        except Exception:
            logger.exception("ptychodus-pinn-torch: model status unavailable")
            return
        if not loaded:
            text = self.NO_MODEL
        elif path:
            text = f"Model: {Path(path).name} ({Path(path).parent})"
        else:
            text = "Model: loaded"
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

    Also makes every ``ProcessingController`` attach :func:`attach_controller_fixups` to itself
    (see :func:`install_controller_self_attach`), so the fix-ups are in place whether or not
    the caller attaches them explicitly.
    """
    install_controller_self_attach()
    return PINNTorchViewControllerFactory(library, file_dialog_factory)


# --------------------------------------------------------------------------------------------
# ProcessingController fix-ups
# --------------------------------------------------------------------------------------------

_FIXUP_ATTRIBUTE = "_pinn_torch_fixups"


class _RunCompletionObserver(Observer):
    """Re-syncs the Processing view after every finished run (train, reconstruct, infer).

    ptychodus 1.7 enables Infer only when the algorithm changes or a model is loaded through
    "Load Model...", so after a training run that loaded its model Infer stays disabled. The
    task monitor notifies its observers on the GUI thread (ptychodus' foreground task queue);
    when its completed-run counter has moved, this calls the controller's own
    ``_sync_model_to_view`` so the buttons reflect ``is_model_loaded()``.
    """

    def __init__(self, controller: Any, monitor: Any) -> None:
        super().__init__()
        self._controller = controller
        self._monitor = monitor
        self._seen_runs = int(monitor.get_completed_runs())
        self.resyncs = 0

    def _update(self, observable: Observable) -> None:
        if observable is not self._monitor:
            return
        try:
            runs = int(self._monitor.get_completed_runs())
            if runs == self._seen_runs or self._monitor.is_processing:
                return
            self._seen_runs = runs
            self._controller._sync_model_to_view()
            self.resyncs += 1
        except Exception:  # fail open: a fix-up must never break ptychodus' GUI
            logger.exception("ptychodus-pinn-torch: re-sync after a finished run failed")


def _align_algorithm_combo(controller: Any) -> None:
    """Make the selected algorithm equal the one the combo box shows.

    When the saved algorithm (default ``pty-chi_LSQML``) is not installed, ptychodus 1.7 keeps
    the parameter at ``none_none`` while the combo box shows its first entry, so Train/Reconstruct
    would run a NullReconstructor the user never chose. Selecting the shown entry makes what the
    user sees what runs.
    """
    algorithm = controller._algorithm_parameter
    combo = controller._algorithm_view_controller.get_widget()
    shown = combo.currentText()
    items = {combo.itemText(i) for i in range(combo.count())}
    if shown and algorithm.get_value() not in items:
        logger.info("ptychodus-pinn-torch: algorithm %r -> %r (as shown)", algorithm.get_value(),
                    shown)
        algorithm.set_value(shown)


def _needs_model(reconstructor: Any) -> bool:
    """True for a trainable reconstructor without a loaded model (Infer would have nothing)."""
    from ptychodus.api.reconstruct import TrainableReconstructor

    trainable = isinstance(reconstructor, TrainableReconstructor)
    flag = getattr(reconstructor, "is_trainable", None)  # ptychodus' SubprocessReconstructor
    if isinstance(flag, bool):
        trainable = trainable and flag
    return trainable and not reconstructor.is_model_loaded()


class _InferGuard:
    """Keeps Infer disabled while the selected reconstructor has no model.

    ptychodus 1.7 re-enables the Infer/Reconstruct button whenever the product selection
    changes (``_sync_action_buttons_to_selection``), even for a trainable reconstructor with no
    model; a click then fails deep in the reconstructor. Connected after ptychodus' own slots to
    the same product-combo signals, this runs after them and switches Infer off again.
    """

    def __init__(self, controller: Any) -> None:
        self._controller = controller

    def apply(self, *_: Any) -> None:
        try:
            reconstructor = self._controller._algorithm_parameter.get_current_reconstructor()
            if _needs_model(reconstructor):
                self._controller._actions_view.reconstruct_button.setEnabled(False)
        except Exception:
            logger.exception("ptychodus-pinn-torch: Infer guard failed")

    def connect(self) -> None:
        combo = self._controller._product_view_controller.get_widget()
        combo.currentIndexChanged.connect(self.apply)
        combo_model = combo.model()
        combo_model.dataChanged.connect(self.apply)
        combo_model.rowsInserted.connect(self.apply)
        combo_model.rowsRemoved.connect(self.apply)
        self.apply()


class _LossAxisFix:
    """Switches the Processing loss plot to a linear axis when a loss is not positive.

    ptychodus 1.7 draws ``Product.losses`` with ``semilogy``; a Poisson negative log-likelihood
    without its data-only constant (upstream PtychoPINN's training loss) is negative, so the
    plot would stay empty. After every draw of that figure, if a plotted loss is <= 0 on a log
    axis, the axis becomes linear and the figure is redrawn; positive losses keep ptychodus'
    log axis.
    """

    YLABEL = "Loss (linear axis: some losses <= 0)"

    def __init__(self, status_view: Any) -> None:
        self._axes = status_view.axes
        self._canvas = status_view.figure_canvas
        self.switches = 0
        self._connection = self._canvas.mpl_connect("draw_event", self._on_draw)

    def _on_draw(self, _event: Any) -> None:
        try:
            axes = self._axes
            if axes.get_yscale() != "log":
                return
            for line in axes.get_lines():
                y = np.asarray(line.get_ydata(), dtype=np.float64)
                if (y[np.isfinite(y)] <= 0.0).any():
                    axes.set_yscale("linear")
                    axes.relim()
                    axes.autoscale_view()
                    axes.set_ylabel(self.YLABEL)
                    self.switches += 1
                    self._canvas.draw_idle()
                    return
        except Exception:
            logger.exception("ptychodus-pinn-torch: loss axis fix failed")


class ControllerFixups:
    """What :func:`attach_controller_fixups` attached to one controller (kept alive by it)."""

    def __init__(self) -> None:
        self.run_observer: _RunCompletionObserver | None = None
        self.infer_guard: _InferGuard | None = None
        self.loss_axis: _LossAxisFix | None = None
        self.algorithm_aligned = False


def attach_controller_fixups(controller: Any, processing_api: Any) -> ControllerFixups | None:
    """Attach the GUI repairs to a freshly built ptychodus ``ProcessingController``.

    Call after ``ProcessingController.__init__`` has run. Four repairs, each fail-open (a
    ptychodus version without the expected private members gets a log line, never an
    exception):

    - after every finished run (train, reconstruct) the controller re-syncs its buttons, so
      Infer is enabled right after a training that loaded its model;
    - Infer stays disabled while the selected trainable reconstructor has no model, even when
      the product selection changes;
    - the loss plot uses a linear axis when a loss is <= 0 (ptychodus' log axis hides them);
    - when the saved algorithm is not installed, the algorithm shown in the combo box becomes
      the selected one.

    Idempotent: a second call on the same controller returns the first call's fix-ups.

    :param controller: the ``ptychodus.controller.processing.ProcessingController``.
    :param processing_api: ptychodus' ``ProcessingAPI`` (its ``task_monitor`` is observed).
    :return: the attached :class:`ControllerFixups` (also stored on the controller as
        ``_pinn_torch_fixups``), or None if the controller could not hold them.
    """
    existing = getattr(controller, _FIXUP_ATTRIBUTE, None)
    if isinstance(existing, ControllerFixups):
        return existing
    fixups = ControllerFixups()
    try:
        # strong reference for the controller's lifetime: PyQt5 holds slots of plain Python
        # objects only weakly
        setattr(controller, _FIXUP_ATTRIBUTE, fixups)
    except Exception:
        logger.exception("ptychodus-pinn-torch: controller fix-ups not attached")
        return None
    try:
        monitor = processing_api.task_monitor
        if not callable(getattr(controller, "_sync_model_to_view", None)):
            raise AttributeError("ProcessingController has no _sync_model_to_view")
        fixups.run_observer = _RunCompletionObserver(controller, monitor)
        monitor.add_observer(fixups.run_observer)
    except Exception:
        logger.exception("ptychodus-pinn-torch: Infer re-sync fix-up not attached")
    try:
        guard = _InferGuard(controller)
        guard.connect()
        fixups.infer_guard = guard
    except Exception:
        logger.exception("ptychodus-pinn-torch: Infer guard not attached")
    try:
        fixups.loss_axis = _LossAxisFix(controller._status_view)
    except Exception:
        logger.exception("ptychodus-pinn-torch: loss plot axis fix-up not attached")
    try:
        _align_algorithm_combo(controller)
        fixups.algorithm_aligned = True
    except Exception:
        logger.exception("ptychodus-pinn-torch: algorithm combo fix-up not applied")
    return fixups


_SELF_ATTACH_MARK = "__ptychodus_pinn_torch_self_attach__"


def install_controller_self_attach() -> bool:
    """Make ``ProcessingController`` attach the fix-ups to itself on its first view sync.

    ptychodus 1.7's ``ProcessingController.__init__`` ends with ``self._sync_model_to_view()``,
    when every member the fix-ups use exists. Wrapping that method (a class attribute, so the
    controller being built right now is covered too: our panel factory is created just before
    its ``__init__`` runs) attaches :func:`attach_controller_fixups` once per controller, then
    runs ptychodus' own sync. Idempotent and fail-open; returns True when the wrapper is in
    place.
    """
    try:
        from ptychodus.controller.processing.core import ProcessingController

        current: Callable[[Any], None] = ProcessingController._sync_model_to_view
        if hasattr(current, _SELF_ATTACH_MARK):
            return True

        @functools.wraps(current)
        def _sync_model_to_view(self: Any) -> None:
            if getattr(self, _FIXUP_ATTRIBUTE, None) is None:
                try:
                    attach_controller_fixups(self, self._processing_api)
                except Exception:  # fail open: ptychodus' own sync must still run
                    logger.exception("ptychodus-pinn-torch: controller fix-ups not attached")
            current(self)

        setattr(_sync_model_to_view, _SELF_ATTACH_MARK, current)
        ProcessingController._sync_model_to_view = _sync_model_to_view  # type: ignore[method-assign]
        return True
    except Exception:
        logger.exception("ptychodus-pinn-torch: controller fix-ups cannot self-attach")
        return False


def remove_controller_self_attach() -> None:
    """Undo :func:`install_controller_self_attach` (for tests)."""
    from ptychodus.controller.processing.core import ProcessingController

    current = ProcessingController._sync_model_to_view
    original = getattr(current, _SELF_ATTACH_MARK, None)
    if original is not None:
        ProcessingController._sync_model_to_view = original  # type: ignore[method-assign]
