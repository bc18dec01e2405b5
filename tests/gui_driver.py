"""Drive the real ptychodus main window: select PtychoPINN-PyTorch, export, train, infer, show.

Run as a script (``python tests/gui_driver.py --workdir W --artifacts A``); ``test_gui_e2e.py``
starts it in a child process under Xvfb (or Qt's offscreen platform), so a crash or a hang of
the GUI can never take pytest down with it. The script

1. installs this package's hooks (``ptychodus_pinn_torch.host.install.install()``),
2. simulates a small far-field dataset with ptychodus' own simulation API (8x8 raster scan,
   64x64 disk probe, random complex object, Poisson noise) and writes ``diffraction.h5``,
3. calls the stock ``ptychodus.__main__.main()``; a wrapper of
   ``ControllerCore.show_main_window`` starts a step script on the Qt event loop that acts like a
   user: registers the dataset, opens Processing, picks the algorithm in the combo box
   (``textActivated``, as a user's pick), sets tiny training settings through our panel's
   widgets, Export Training Data..., Train, checks that Infer is enabled, Infer, switches to the
   Object view and selects the reconstructed object; last (unless ``--no-stop-check``) it starts
   a 500-epoch training in the same folder, watches the loss plot and the progress bar for
   ``--live-epochs`` epochs and presses ptychodus' Stop button,
4. writes ``report.json`` (what it saw at each step) and screenshots into the artifacts folder,
   and exits with 0 only if every step passed.

File dialogs are answered by replacing the methods of ptychodus' ``FileDialogFactory`` instance.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger("gui_driver")

PANEL_PREFIX = "PINNTorchPanel-"


# ------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------


def simulate_dataset(workdir: Path, *, seed: int = 0) -> tuple[Any, Path]:
    """Simulate a small far-field ptychography scan with ptychodus' simulation API.

    :return: ``(product, diffraction_file)``: a ptychodus ``Product`` (64 positions on an 8x8
        raster with a 6-pixel step, a 64x64 disk probe rescaled to 1e6 photons, a blurred
        random complex object of about 106x106 pixels) and ``workdir/diffraction.h5`` holding the
        simulated intensities ``(64, 64, 64)``: 1e6 counts per pattern on average, with
        Poisson noise.
    """
    from ptychodus.api.assemble import AssembledDiffractionData
    from ptychodus.api.geometry import ImageExtent, PixelGeometry
    from ptychodus.api.io import save_diffraction_data
    from ptychodus.api.object import compute_object_geometry
    from ptychodus.api.probe import ProbeGeometry, ProbeSequence
    from ptychodus.api.probe_positions import ProbePositionSequence
    from ptychodus.api.product import Product, ProductMetadata
    from ptychodus.api.simulate.diffraction import generate_diffraction_data
    from ptychodus.api.simulate.object import generate_random_object
    from ptychodus.api.simulate.probe import generate_disk_probe, rescale_probe_intensity
    from ptychodus.api.simulate.probe_positions import generate_cartesian_probe_positions

    n = 64
    distance_m = 2.0
    energy_ev = 1000.0
    wavelength_m = 1.23984e-6 / energy_ev
    probe_geometry = ProbeGeometry.from_far_field(
        PixelGeometry(75e-6, 75e-6), ImageExtent(n, n),
        wavelength_m=wavelength_m, distance_m=distance_m,
    )
    probe = generate_disk_probe(probe_geometry, radius_m=probe_geometry.width_m / 8)
    photons = 1e6
    probe = rescale_probe_intensity(probe, photons)
    step_m = 6 * probe_geometry.pixel_width_m
    positions = list(generate_cartesian_probe_positions(8, 8, step_m, step_m))
    object_geometry = compute_object_geometry(positions, probe_geometry)
    rng = np.random.default_rng(seed)
    object_ = generate_random_object(
        rng, object_geometry, amplitude_mean=0.8, amplitude_deviation=0.15,
        phase_mean_tr=0.0, phase_deviation_tr=0.08, blur_deviation_px=1.5,
    )
    metadata = ProductMetadata(
        name="sim", comments="gui e2e", detector_distance_m=distance_m,
        photon_energy_eV=energy_ev, probe_photon_count=1e6, exposure_time_s=1.0,
        mass_attenuation_m2_per_kg=0.0, tomography_angle_deg=0.0,
    )
    product = Product(
        metadata=metadata,
        probe_positions=ProbePositionSequence(positions),
        probes=ProbeSequence(probe.get_array(), None, probe.get_pixel_geometry()),
        object_=object_,
        losses=[],
    )
    # ptychodus' propagator is not unitary (1e6 probe photons give ~30 counts per pattern):
    # simulate without noise, scale to the photon budget, then draw the Poisson counts
    clean = generate_diffraction_data(product)
    raw = np.asarray(clean.get_patterns(), dtype=np.float64)
    expected = raw * (photons / np.mean(np.sum(raw, axis=(1, 2))))
    diffraction = AssembledDiffractionData(
        np.asarray(clean.get_indexes()), rng.poisson(expected).astype(np.uint32),
        clean.get_pixel_geometry(), np.zeros(expected.shape[1:], dtype=bool))
    path = workdir / "diffraction.h5"
    save_diffraction_data(path, diffraction)
    return product, path


# ------------------------------------------------------------------------------------------
# image statistics
# ------------------------------------------------------------------------------------------


def image_stats(image: Any) -> dict[str, float]:
    """Grey-level statistics of a QImage/QPixmap: ``{"width", "height", "std", "colors"}``.

    ``std`` is the standard deviation of the 8-bit grey level (0 for a blank image);
    ``colors`` the number of distinct RGB values.
    """
    from PyQt5.QtGui import QImage, QPixmap

    if isinstance(image, QPixmap):
        image = image.toImage()
    assert isinstance(image, QImage)
    if image.isNull():
        return {"width": 0.0, "height": 0.0, "std": 0.0, "colors": 0.0}
    rgb = image.convertToFormat(QImage.Format.Format_RGB32)
    w, h = rgb.width(), rgb.height()
    ptr = rgb.constBits()
    ptr.setsize(rgb.bytesPerLine() * h)
    arr = np.frombuffer(ptr, dtype=np.uint8).reshape(h, rgb.bytesPerLine())[:, : 4 * w]
    pix = arr.reshape(h, w, 4)[..., :3].astype(np.float64)  # B, G, R
    grey = 0.114 * pix[..., 0] + 0.587 * pix[..., 1] + 0.299 * pix[..., 2]
    packed = arr.reshape(h, w, 4)[..., :3].astype(np.uint32)
    codes = (packed[..., 0] << 16) | (packed[..., 1] << 8) | packed[..., 2]
    return {"width": float(w), "height": float(h), "std": float(grey.std()),
            "colors": float(np.unique(codes).size)}


# ------------------------------------------------------------------------------------------
# step script on the Qt event loop
# ------------------------------------------------------------------------------------------


@dataclass
class Wait:
    """A step yields this to wait (polling every 50 ms) until ``until()`` is true."""

    until: Callable[[], bool]
    timeout_s: float
    what: str


class StepScript:
    """Runs a generator of :class:`Wait` objects on the Qt event loop.

    Keep a strong reference to it: PyQt5 holds bound-method slots of non-QObjects weakly, so an
    unreferenced script would silently stop.
    """

    def __init__(self, steps: Iterator[Wait], on_finished: Callable[[BaseException | None], None]
                 ) -> None:
        from PyQt5.QtCore import QTimer

        self._steps = steps
        self._on_finished = on_finished
        self._waiting: Wait | None = None
        self._deadline = 0.0
        self._timer = QTimer()
        self._timer.setInterval(50)
        self._timer.timeout.connect(self._tick)

    def start(self) -> None:
        self._timer.start()

    def _finish(self, error: BaseException | None) -> None:
        self._timer.stop()
        self._on_finished(error)

    def _tick(self) -> None:
        try:
            if self._waiting is not None:
                if not self._waiting.until():
                    if time.monotonic() > self._deadline:
                        raise TimeoutError(
                            f"timed out after {self._waiting.timeout_s:.0f} s waiting for "
                            f"{self._waiting.what}"
                        )
                    return
                self._waiting = None
            self._waiting = next(self._steps)
            self._deadline = time.monotonic() + self._waiting.timeout_s
        except StopIteration:
            self._finish(None)
        except BaseException as exc:  # report every failure, including assertion errors
            self._finish(exc)


def _delay(seconds: float) -> Wait:
    end = time.monotonic() + seconds
    return Wait(lambda: time.monotonic() >= end, seconds + 5.0, f"{seconds} s to pass")


def form_rows(panel: Any) -> dict[tuple[str, str], Any]:
    """``{(group-box title, row label): field widget}`` of every form row of ``panel``."""
    from PyQt5.QtWidgets import QFormLayout, QGroupBox, QLabel

    rows: dict[tuple[str, str], Any] = {}
    for box in panel.findChildren(QGroupBox):
        layout = box.layout()
        if not isinstance(layout, QFormLayout):
            continue
        for row in range(layout.rowCount()):
            item = layout.itemAt(row, QFormLayout.ItemRole.LabelRole)
            widget = item.widget() if item is not None else None
            field = layout.itemAt(row, QFormLayout.ItemRole.FieldRole)
            if isinstance(widget, QLabel) and field is not None:
                rows[box.title(), widget.text()] = field.widget()
    return rows


def _form_field(panel: Any, label: str, group: str) -> Any:
    """The field widget of the form row labelled ``label`` in group box ``group`` of ``panel``."""
    rows = form_rows(panel)
    if (group, label) not in rows:
        raise LookupError(f"panel {panel.objectName()!r} has no row {label!r} in group {group!r}")
    return rows[group, label]


def plot_points(axes: Any) -> int:
    """The most points of any line on ``axes`` (the loss plot of ptychodus' Processing view)."""
    return max((len(line.get_xdata()) for line in axes.get_lines()), default=0)


def amplitude_correlation(obj: np.ndarray, truth: np.ndarray, box: list[int]) -> float:
    """Pearson correlation of ``|obj|`` and ``|truth|`` ((H, W) complex, same pixel grid) inside
    ``box`` = [r0, r1, c0, c1] (the scanned region); 0 for a constant image."""
    r0, r1, c0, c1 = box
    a = np.abs(obj[r0:r1, c0:c1]).ravel().astype(np.float64)
    b = np.abs(truth[r0:r1, c0:c1]).ravel().astype(np.float64)
    if a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


class GuiDriver:
    """The user's session: every step records what it saw into :attr:`report`."""

    def __init__(self, *, workdir: Path, artifacts: Path, product: Any, diffraction_file: Path,
                 algorithm: str, epochs: int, timeout_s: float, stop_check: bool = True,
                 refine_epochs: int = 0, live_epochs: int = 3) -> None:
        self.workdir = workdir
        self.artifacts = artifacts
        self.product = product
        self.diffraction_file = diffraction_file
        self.algorithm = algorithm
        self.epochs = epochs
        self.timeout_s = timeout_s
        self.stop_check = stop_check
        self.refine_epochs = refine_epochs
        self.live_epochs = live_epochs
        self.report: dict[str, Any] = {"steps": [], "screenshots": {}, "ok": False}
        self.progress_log: list[tuple[float, int, int]] = []
        self.controller: Any = None
        self.script: StepScript | None = None

    # -- helpers ------------------------------------------------------------------------
    def _step(self, step_name: str, /, **facts: Any) -> None:
        entry = {"step": step_name, "t": round(time.monotonic() - self._t0, 2), **facts}
        self.report["steps"].append(entry)
        logger.info("step %s", json.dumps(entry, default=str))

    def screenshot(self, name: str) -> None:
        """Save the main window (``<name>.png``) and, under X11, the root window too."""
        from PyQt5.QtWidgets import QApplication

        QApplication.processEvents()
        view = self.controller.view
        path = self.artifacts / f"{name}.png"
        pixmap = view.grab()
        pixmap.save(str(path))
        shots = {"window": str(path), "window_stats": image_stats(pixmap)}
        if os.environ.get("QT_QPA_PLATFORM") == "xcb" and shutil.which("import"):
            x11 = self.artifacts / f"{name}_x11.png"
            done = subprocess.run(
                ["import", "-window", "root", str(x11)], capture_output=True, timeout=20
            )
            if done.returncode == 0 and x11.is_file():
                from PyQt5.QtGui import QImage

                shots["x11"] = str(x11)
                shots["x11_stats"] = image_stats(QImage(str(x11)))
        self.report["screenshots"][name] = shots

    # -- wiring ---------------------------------------------------------------------------
    def start(self, controller: Any) -> None:
        self.controller = controller
        self._t0 = time.monotonic()
        monitor = controller.model.processing_core.processing_api.task_monitor
        original = monitor.update_progress

        def recording_update_progress(progress: int, goal: int) -> None:
            self.progress_log.append((time.monotonic() - self._t0, int(progress), int(goal)))
            original(progress, goal)

        monitor.update_progress = recording_update_progress  # observe, then call through
        self.script = StepScript(self.steps(), self.finish)
        self.script.start()

    def finish(self, error: BaseException | None) -> None:
        from PyQt5.QtWidgets import QApplication

        if error is not None:
            self.report["error"] = "".join(traceback.format_exception(error))
            logger.error("GUI script failed:\n%s", self.report["error"])
            try:
                self.screenshot("failure")
            except Exception:
                logger.exception("failure screenshot")
        else:
            self.report["ok"] = True
        self.report["progress_log"] = self.progress_log
        self._quiet_teardown()
        app = QApplication.instance()
        if app is not None:
            app.exit(0 if error is None else 1)

    def _quiet_teardown(self) -> None:
        """Detach ptychodus' agent-chat key filter and close the window before Qt exits.

        ptychodus 1.7's AgentInputController is a parentless QObject event filter on a text
        edit; if it outlives the view, a late event reaches it and PyQt5 aborts the interpreter
        (exit code 134). Removing the filter first and closing the window avoids that.
        """
        try:
            chat = self.controller._agent_chat_controller
            filt = chat._input_controller
            filt._view.text_edit.removeEventFilter(filt)
        except Exception:
            logger.exception("could not detach the agent input event filter")
        try:
            self.controller.view.close()
        except Exception:
            logger.exception("could not close the main window")

    # -- the user's session -------------------------------------------------------------
    def steps(self) -> Iterator[Wait]:
        from PyQt5.QtWidgets import QComboBox, QLabel, QSpinBox

        c = self.controller
        model, view = c.model, c.view
        pc = c._processing_controller
        fdf = c._file_dialog_factory
        repository = model.product_core.product_repository
        monitor = model.processing_core.processing_api.task_monitor
        algorithm_parameter = model.processing_core.algorithm_parameter
        actions = pc._actions_view

        view.resize(1500, 950)
        yield Wait(view.isVisible, 20, "the main window to show")

        # 1. register the simulated dataset and its product
        workflow = model.workflow_api
        diffraction = workflow.load_assembled_diffraction_data(self.diffraction_file)
        workflow.register_product(self.product, diffraction=diffraction)
        yield Wait(lambda: len(repository) == 1 and repository[0].get_dataset() is not None,
                   20, "the product with its dataset")
        self._step("registered", products=len(repository),
                   patterns=int(diffraction.get_assembled_data().get_num_patterns()))

        # 2. Processing view, algorithm picked like a user does
        view.processing_action.trigger()
        yield Wait(view.processing_view.isVisible, 10, "the Processing view")
        combo = pc._algorithm_view_controller.get_widget()
        items = [combo.itemText(i) for i in range(combo.count())]
        index = combo.findText(self.algorithm)
        if index < 0:
            raise AssertionError(f"{self.algorithm!r} not in the algorithm combo box: {items}")
        # look at the other reconstructor's panel first, then pick ours
        others = [i for i in range(combo.count())
                  if combo.itemText(i).startswith("ptychopinn-pytorch_") and i != index]
        other_pages: dict[str, str] = {}
        for i in others:
            combo.setCurrentIndex(i)
            combo.textActivated.emit(combo.itemText(i))
            yield _delay(0.1)
            other_pages[combo.itemText(i)] = pc._stacked_widget.currentWidget().objectName()
        combo.setCurrentIndex(index)
        combo.textActivated.emit(self.algorithm)
        yield _delay(0.2)
        page = pc._stacked_widget.currentWidget()
        self._step("algorithm_selected", items=items, selected=algorithm_parameter.get_value(),
                   page=page.objectName(), button=actions.reconstruct_button.text(),
                   infer_enabled=actions.reconstruct_button.isEnabled(),
                   train_visible=actions.train_button.isVisible(),
                   fixups=hasattr(pc, "_pinn_torch_fixups"), other_pages=other_pages)
        if algorithm_parameter.get_value() != self.algorithm:
            raise AssertionError(f"selected {algorithm_parameter.get_value()!r}")
        if not page.objectName().startswith(PANEL_PREFIX):
            raise AssertionError(f"the Processing panel is {page.objectName()!r}, not ours")

        # 3. tiny training settings, typed into our panel
        epochs = _form_field(page, "Epochs:", "Training")
        assert isinstance(epochs, QSpinBox)
        epochs.setValue(self.epochs)
        scale = _form_field(page, "Network width:", "Model")
        assert isinstance(scale, QSpinBox)
        scale.setValue(1)
        groups = _form_field(page, "Groups:", "Training")
        groups.setText("64")
        groups.editingFinished.emit()
        batch = _form_field(page, "Batch size:", "Training")
        assert isinstance(batch, QComboBox)
        batch.setCurrentIndex(batch.findText("16"))
        batch.textActivated.emit("16")
        device = _form_field(page, "Device:", "Execution")
        assert isinstance(device, QComboBox)
        device.setCurrentIndex(device.findText("cpu"))
        device.textActivated.emit("cpu")
        refine = _form_field(page, "Refine after inference (epochs):", "Execution")
        assert isinstance(refine, QSpinBox)
        refine.setValue(self.refine_epochs)
        rows = form_rows(page)
        registry = model.settings_registry

        def value(group: str, name: str) -> Any:
            return registry[group].parameters()[name].get_value()

        self._step("settings_typed", epochs=value("PINNTorchTraining", "NumEpochs"),
                   filter_scale=value("PINNTorchModel", "NumFiltersScale"),
                   groups=value("PINNTorchTraining", "NumGroups"),
                   batch=value("PINNTorchTraining", "BatchSize"),
                   device=value("PINNTorchExecution", "Device"),
                   refine=value("PINNTorchExecution", "RefineEpochs"),
                   rows={f"{group}/{label}": widget.toolTip()
                         for (group, label), widget in rows.items()})

        product_combo = pc._product_view_controller.get_widget()
        product_combo.setCurrentIndex(0)
        yield _delay(0.3)
        self.screenshot("1_panel_selected")

        # 4. Export Training Data...
        train_dir = self.workdir / "training"
        train_dir.mkdir(exist_ok=True)
        export_file = train_dir / "train_data.npz"
        fdf.get_save_file_path = lambda *a, **k: (export_file, k.get("selected_name_filter"))
        fdf.get_existing_directory_path = lambda *a, **k: train_dir
        if not pc._export_training_data_action.isVisible():
            raise AssertionError("Export Training Data... is hidden for our reconstructor")
        pc._export_training_data_action.trigger()
        yield Wait(export_file.is_file, 30, "the exported training data")
        with np.load(export_file, allow_pickle=False) as npz:
            keys = sorted(npz.files)
            diff3d = npz["diff3d"]
            self._step("exported", file=str(export_file), keys=keys,
                       diff3d=[list(diff3d.shape), str(diff3d.dtype)])

        # 5. Train
        runs = monitor.get_completed_runs()
        if not actions.train_button.isEnabled():
            raise AssertionError("Train is disabled")
        actions.train_button.click()
        yield Wait(lambda: monitor.is_processing or monitor.get_completed_runs() > runs, 20,
                   "training to start")
        # watch ptychodus' progress bar as a user would; screenshot it once an epoch is done
        bar = pc._status_view.progress_bar
        bar_seen: set[tuple[int, int]] = set()
        axes = pc._status_view.axes
        reconstructor = algorithm_parameter.get_current_reconstructor()
        live: list[tuple[int, int, bool]] = []
        bar_texts: set[str] = set()

        def sample() -> None:
            """(epochs finished, loss-plot points, still processing) as a user sees them."""
            live.append((reconstructor.training_status.snapshot().epochs_done,
                         plot_points(axes), bool(monitor.is_processing)))
            if bar.isVisible():
                bar_seen.add((bar.value(), bar.maximum()))
                bar_texts.add(bar.text())

        def finished() -> bool:
            sample()
            return monitor.get_completed_runs() > runs and not monitor.is_processing

        yield Wait(lambda: finished() or (bar.isVisible() and bar.value() >= 1),
                   self.timeout_s, "the progress bar to pass the first epoch")
        if not finished():
            self.screenshot("2_training")
        yield Wait(finished, self.timeout_s, "training to finish")
        self.report["progress_bar_seen"] = sorted(bar_seen)
        self.report["progress_bar_texts"] = sorted(bar_texts)
        self.report["live_plot"] = live
        error = monitor.get_last_error()
        if error is not None:
            raise AssertionError(f"training failed: {error!r}")
        # the GUI thread learns about the finished run from ptychodus' 1 s task timer
        deadline = time.monotonic() + 8.0
        yield Wait(lambda: actions.reconstruct_button.isEnabled()
                   or time.monotonic() > deadline, 10, "Infer to become enabled")
        infer_enabled = actions.reconstruct_button.isEnabled()
        files = sorted(p.name for p in train_dir.iterdir())
        first_model = (train_dir / "model.zip").read_bytes()
        status = page.findChild(QLabel, "PINNTorchModelStatus")
        status_before = status.text() if status is not None else None
        yield Wait(lambda: status is None or "none" not in status.text(), 4,
                   "the panel's model status to show the trained model")
        self._step("trained", infer_enabled=infer_enabled,
                   button=actions.reconstruct_button.text(), files=files,
                   fixups=hasattr(pc, "_pinn_torch_fixups"),
                   model_status=status.text() if status is not None else None,
                   model_status_at_start=status_before,
                   progress=[p[1:] for p in self.progress_log])
        if not infer_enabled:
            # ptychodus 1.7 alone keeps Infer disabled here (the fix-up is missing); go on the
            # way a user would, through Load Model..., so the later steps still get checked
            models = [train_dir / f for f in files if f.endswith(
                model.processing_core.processing_api.get_model_file_extension())]
            if not models:
                raise AssertionError(f"Infer disabled and no model file in {files}")
            fdf.get_open_file_path = lambda *a, **k: (models[0], k.get("selected_name_filter"))
            pc._load_model_action.trigger()
            yield Wait(actions.reconstruct_button.isEnabled, 5, "Infer after Load Model...")
            self._step("loaded_model_manually", file=str(models[0]))

        # 6. Infer
        runs = monitor.get_completed_runs()
        n_before = len(repository)
        actions.reconstruct_button.click()
        yield Wait(lambda: len(repository) == n_before + 1, 10, "the output product")
        yield Wait(lambda: monitor.get_completed_runs() > runs and not monitor.is_processing,
                   self.timeout_s, "inference to finish")
        error = monitor.get_last_error()
        if error is not None:
            raise AssertionError(f"inference failed: {error!r}")
        out_index = n_before
        out_item = repository[out_index]
        yield Wait(lambda: len(out_item.get_losses()) > 0, 5,
                   "the training losses in the output product")
        yield _delay(1.2)
        product = out_item.get_product()
        obj = product.object_.get_array()
        amp = np.abs(obj)
        np.save(self.artifacts / "reconstructed_object.npy", obj, allow_pickle=False)
        # the scanned region: object pixels covered by some probe position's N/2 centre
        geometry = product.object_.get_geometry()
        xs = geometry.map_probe_positions_to_object_x_px(product.probe_positions)
        ys = geometry.map_probe_positions_to_object_y_px(product.probe_positions)
        r0, r1 = int(np.ceil(min(ys))), int(np.floor(max(ys))) + 1
        c0, c1 = int(np.ceil(min(xs))), int(np.floor(max(xs))) + 1
        inner = amp[..., r0:r1, c0:c1]
        truth = self.product.object_.get_array()
        correlation = amplitude_correlation(obj[0], truth[0], [r0, r1, c0, c1])
        axes = pc._status_controller._view.axes
        lines = axes.get_lines()
        plotted = [len(line.get_xdata()) for line in lines]
        # on a log axis (ptychodus draws losses with semilogy) only positive values are visible
        log_axis = axes.get_yscale() == "log"
        drawable = [int(np.sum(np.isfinite(y) & ((y > 0) if log_axis else True)))
                    for y in (np.asarray(line.get_ydata(), dtype=float) for line in lines)]
        self._step("inferred", name=out_item.get_name(), object_shape=list(obj.shape),
                   input_shape=list(self.product.object_.get_array().shape),
                   finite=bool(np.isfinite(obj).all()), amp_std=float(amp.std()),
                   amp_mean=float(amp.mean()), scanned_box=[r0, r1, c0, c1],
                   inner_amp_std=float(inner.std()), inner_amp_mean=float(inner.mean()),
                   phase_std=float(np.angle(obj).std()),
                   truth_amp_correlation=correlation,
                   losses=[(int(v.epoch), float(v.value)) for v in out_item.get_losses()],
                   plot_points=plotted, plot_drawable_points=drawable,
                   plot_yscale=axes.get_yscale(),
                   product_combo=product_combo.currentIndex())
        self.screenshot("3_after_infer")

        # 7. Object view with the reconstruction selected
        view.object_action.trigger()
        tree = view.object_view.tree_view
        tree.setCurrentIndex(tree.model().index(out_index, 0))
        item = c._object_image_controller.get_item()
        yield Wait(lambda: not item.pixmap().isNull(), 10, "the object image")
        # what a user does to look at it: amplitude, auto colour range, zoom to fit
        ribbon = view.object_image_view.image_ribbon
        renderer = ribbon.colormap_group_box.renderer_combo_box
        amplitude = renderer.findText("Amplitude")
        if amplitude >= 0:
            renderer.setCurrentIndex(amplitude)
            renderer.textActivated.emit("Amplitude")
        ribbon.data_range_group_box.auto_button.click()
        ribbon.image_tools_group_box.home_button.click()
        yield _delay(0.5)
        self._step("object_shown", current_row=tree.currentIndex().row(),
                   renderer=renderer.currentText(), image=image_stats(item.pixmap()))
        self.screenshot("4_object_view")
        if not self.stop_check:
            return

        # 8. a long training in the same folder, watched live, stopped with ptychodus' Stop
        view.processing_action.trigger()
        product_combo.setCurrentIndex(0)
        epochs = _form_field(page, "Epochs:", "Training")
        epochs.setValue(500)
        runs = monitor.get_completed_runs()
        log_start = len(self.progress_log)
        live_start = len(live)
        actions.train_button.click()
        yield Wait(lambda: monitor.is_processing or monitor.get_completed_runs() > runs, 20,
                   "the long training to start")
        yield Wait(lambda: (sample(), reconstructor.training_status.snapshot().epochs_done
                            >= self.live_epochs)[1], self.timeout_s,
                   f"the long training to finish {self.live_epochs} epochs")
        yield Wait(lambda: (sample(), plot_points(axes) >= self.live_epochs)[1], 5,
                   "the loss plot to show them")
        self.screenshot("5_training_live")
        self._step("training_live", bar_text=bar.text(), bar=[bar.value(), bar.maximum()],
                   status=status.text() if status is not None else None,
                   plot_title=axes.get_title(), plot_points=plot_points(axes),
                   epochs_done=reconstructor.training_status.snapshot().epochs_done)
        yield Wait(lambda: pc._status_view.stop_button.isVisible(), 5, "the Stop button")
        clicked = time.monotonic()
        pc._status_view.stop_button.click()
        yield Wait(lambda: monitor.get_completed_runs() > runs and not monitor.is_processing,
                   30, "the stopped training to end")
        latency = time.monotonic() - clicked
        error = monitor.get_last_error()
        yield Wait(actions.reconstruct_button.isEnabled, 5, "Infer after the stopped training")
        yield Wait(lambda: status is None or "stopped at epoch" in status.text(), 4,
                   "the panel to say what the stopped training kept")
        yield _delay(0.6)
        self.screenshot("6_stopped")
        last = max(p[1] for p in self.progress_log[log_start:])
        backup = train_dir / "model.1.zip"
        self._step("stopped", latency_s=round(latency, 2), last_progress=last,
                   goal=self.progress_log[-1][2], error=repr(error) if error else None,
                   infer_enabled=actions.reconstruct_button.isEnabled(),
                   status=status.text() if status is not None else None,
                   files=sorted(p.name for p in train_dir.iterdir()),
                   earlier_model_kept=backup.is_file() and backup.read_bytes() == first_model,
                   model_replaced=(train_dir / "model.zip").read_bytes() != first_model,
                   kept_epochs=len(reconstructor.last_train_result["history"]),
                   live=live[live_start:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--artifacts", type=Path, required=True)
    parser.add_argument("--algorithm", default="ptychopinn-pytorch_pinn")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds each of training and inference may take")
    parser.add_argument("--refine-epochs", type=int, default=0,
                        help="'Refine after inference (epochs)' typed into the panel")
    parser.add_argument("--live-epochs", type=int, default=3,
                        help="epochs of the long training watched live before Stop")
    parser.add_argument("--no-stop-check", action="store_true",
                        help="skip the last step (a long training stopped with Stop)")
    parser.add_argument("--no-install", action="store_true",
                        help="do not call install(): rely on the autoload module that a "
                        "non-editable install puts into ptychodus/plugins")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args.workdir.mkdir(parents=True, exist_ok=True)
    args.artifacts.mkdir(parents=True, exist_ok=True)

    from ptychodus_pinn_torch.host.install import install

    if not args.no_install and not install():
        print("install() failed", file=sys.stderr)
        return 3
    product, diffraction_file = simulate_dataset(args.workdir)

    import ptychodus.__main__ as ptychodus_main
    from ptychodus.controller import ControllerCore

    driver = GuiDriver(workdir=args.workdir, artifacts=args.artifacts, product=product,
                       diffraction_file=diffraction_file, algorithm=args.algorithm,
                       epochs=args.epochs, timeout_s=args.timeout,
                       stop_check=not args.no_stop_check,
                       refine_epochs=args.refine_epochs, live_epochs=args.live_epochs)
    original_show = ControllerCore.show_main_window

    def show_and_drive(self: Any, window_title: str) -> None:
        original_show(self, window_title)
        driver.start(self)

    ControllerCore.show_main_window = show_and_drive  # type: ignore[method-assign]
    sys.argv = ["ptychodus", "--log-level", "20"]
    rc = -1
    try:
        rc = int(ptychodus_main.main())
    finally:
        ControllerCore.show_main_window = original_show  # type: ignore[method-assign]
        driver.report["main_rc"] = rc
        (args.artifacts / "report.json").write_text(json.dumps(driver.report, indent=1,
                                                               default=str))
    return 0 if rc == 0 and driver.report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
