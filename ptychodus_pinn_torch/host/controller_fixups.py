"""GUI-side repairs of ptychodus 1.7's ``ProcessingController`` (the Processing view).

The settings panel lives in :mod:`.panel`; this module holds what PtychoPINN-PyTorch changes in
ptychodus' own Processing view. Like :mod:`.panel` it imports PyQt5 and ptychodus' controller
code, so the host imports it only in the GUI (batch mode never loads Qt).

Public API
----------
:func:`attach_controller_fixups`
    ``(controller, processing_api) -> ControllerFixups | None``: Infer re-enabled right after a
    training run, Infer kept disabled while there is no model, the loss plot readable when
    losses are <= 0, the algorithm combo box never showing an algorithm other than the
    selected one, and a running training of our reconstructors shown live (loss curve per
    epoch, progress bar per batch with an "epoch k / n, loss, time left" text). Idempotent
    and fail-open.
:func:`install_controller_self_attach` / :func:`remove_controller_self_attach`
    every ``ProcessingController`` attaches those repairs to itself at the end of its
    ``__init__`` (called by :func:`.panel.create_view_controller_factory`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
from ptychodus.api.observer import Observable, Observer
from PyQt5.QtCore import QTimer

from .training_status import TrainingSnapshot, TrainingStatus

__all__ = [
    "ControllerFixups",
    "LiveTrainingView",
    "attach_controller_fixups",
    "install_controller_self_attach",
    "remove_controller_self_attach",
]

logger = logging.getLogger(__name__)


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


class LiveTrainingView(Observer):
    """Draws a running training of our reconstructors into ptychodus' Processing status view.

    ptychodus 1.7 reads only ``TrainOutput.progress`` during a training (its loss plot shows
    ``Product.losses``, which exist only after Infer) and sizes its progress bar in whole
    epochs. While the selected reconstructor has a :class:`TrainingStatus` (ours do), this
    redraws, every :attr:`INTERVAL_MS` and after every monitor notification (so after
    ptychodus' own bar update):

    - the loss plot: one point per finished epoch, training and validation curves, a log axis
      only when every loss is positive;
    - the progress bar: range ``epochs x STEPS_PER_EPOCH`` so batches inside a long epoch move
      it, and its text is the status line (``epoch k / n: loss ..., about T left``).

    ``points_history`` records ``(epochs_done, points drawn)`` at every redraw (tests read it).
    """

    INTERVAL_MS = 250
    STEPS_PER_EPOCH = 100
    DEFAULT_FORMAT = "%p%"

    def __init__(self, controller: Any, monitor: Any) -> None:
        super().__init__()
        self._controller = controller
        self._monitor = monitor
        self._view = controller._status_view
        self._drawn: tuple[int, int, int, str] | None = None
        self._bar_owned = False
        self.points_history: list[tuple[int, int]] = []
        self._timer = QTimer()
        self._timer.setInterval(self.INTERVAL_MS)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()

    def _update(self, observable: Observable) -> None:
        if observable is self._monitor:
            self.refresh()

    def _status(self) -> tuple[str, TrainingStatus] | None:
        reconstructor = self._controller._algorithm_parameter.get_current_reconstructor()
        status = getattr(reconstructor, "training_status", None)
        if isinstance(status, TrainingStatus):
            return str(reconstructor.name), status
        return None

    def refresh(self) -> None:
        try:
            found = self._status()
            if found is None:
                self._release_bar()
                return
            name, status = found
            snap = status.snapshot()
            if snap.run == 0:
                return
            key = (snap.run, len(snap.train_losses), len(snap.val_losses), snap.state)
            if key != self._drawn and (snap.state == "running" or snap.train_losses):
                self._draw_losses(name, snap)
                self._drawn = key
            if snap.state == "running" and self._monitor.is_processing:
                self._show_bar(snap)
            else:
                self._release_bar()
        except Exception:  # fail open: never break ptychodus' GUI
            logger.exception("ptychodus-pinn-torch: live training view failed")

    def _draw_losses(self, name: str, snap: TrainingSnapshot) -> None:
        from matplotlib.ticker import MaxNLocator

        axes = self._view.axes
        axes.clear()
        verb = {"running": "training", "stopped": "stopped", "failed": "failed"}.get(
            snap.state, "trained")
        axes.set_title(f"{name} {verb}: epoch {snap.epochs_done} / {snap.epochs_planned}")
        axes.set_xlabel("Epoch")
        points = 0
        values: list[float] = []
        for pairs, style, label in ((snap.train_losses, ".-", "training"),
                                    (snap.val_losses, "s--", "validation")):
            if pairs:
                axes.plot([e for e, _ in pairs], [v for _, v in pairs], style, label=label,
                          linewidth=2.0)
                values.extend(v for _, v in pairs)
                points = max(points, len(pairs))
        finite = [v for v in values if np.isfinite(v)]
        if finite and min(finite) > 0:
            axes.set_yscale("log")
            axes.set_ylabel("Loss")
        else:
            axes.set_ylabel("Loss (linear axis: some losses <= 0)" if finite else "Loss")
        if values:
            axes.legend(loc="upper right")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(True)
        self._view.figure_canvas.draw_idle()
        self.points_history.append((snap.epochs_done, points))

    def _show_bar(self, snap: TrainingSnapshot) -> None:
        bar = self._view.progress_bar
        total = max(1, snap.epochs_planned) * self.STEPS_PER_EPOCH
        if bar.maximum() != total:
            bar.setRange(0, total)
        bar.setValue(int(round(snap.fraction * total)))
        bar.setTextVisible(True)
        if bar.format() != snap.line:
            bar.setFormat(snap.line)
            bar.setToolTip(snap.line)
        self._bar_owned = True

    def _release_bar(self) -> None:
        if self._bar_owned:
            bar = self._view.progress_bar
            bar.setFormat(self.DEFAULT_FORMAT)
            bar.setToolTip("")
            self._bar_owned = False


class ControllerFixups:
    """What :func:`attach_controller_fixups` attached to one controller (kept alive by it)."""

    def __init__(self) -> None:
        self.run_observer: _RunCompletionObserver | None = None
        self.infer_guard: _InferGuard | None = None
        self.loss_axis: _LossAxisFix | None = None
        self.live_training: LiveTrainingView | None = None
        self.algorithm_aligned = False


def attach_controller_fixups(controller: Any, processing_api: Any) -> ControllerFixups | None:
    """Attach the GUI repairs to a freshly built ptychodus ``ProcessingController``.

    Call after ``ProcessingController.__init__`` has run. Five repairs, each fail-open (a
    ptychodus version without the expected private members gets a log line, never an
    exception):

    - after every finished run (train, reconstruct) the controller re-syncs its buttons, so
      Infer is enabled right after a training that loaded its model;
    - Infer stays disabled while the selected trainable reconstructor has no model, even when
      the product selection changes;
    - the loss plot uses a linear axis when a loss is <= 0 (ptychodus' log axis hides them);
    - when the saved algorithm is not installed, the algorithm shown in the combo box becomes
      the selected one;
    - a running training of a reconstructor with a ``training_status`` is drawn live
      (:class:`LiveTrainingView`).

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
        live = LiveTrainingView(controller, processing_api.task_monitor)
        # added after ptychodus' status controller: runs after its progress-bar update
        processing_api.task_monitor.add_observer(live)
        fixups.live_training = live
    except Exception:
        logger.exception("ptychodus-pinn-torch: live training view not attached")
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
