"""End-to-end GUI test: the real ptychodus main window, export -> train -> infer -> object view.

``tests/gui_driver.py`` runs the stock ``ptychodus.__main__.main()`` with this package's hooks
installed, in a child process, on an X server started here with Xvfb when it is installed
(``QT_QPA_PLATFORM=xcb``; also an ImageMagick root-window grab), else on Qt's offscreen
platform (or when ``PINN_TORCH_GUI_PLATFORM=offscreen``). The child acts like a user (see its
docstring) and writes ``report.json`` plus screenshots into ``test-artifacts/gui/``
(git-ignored); this test checks what it saw.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import ptychodus_pinn_torch

pytest.importorskip("PyQt5")

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts" / "gui"
EPOCHS = 2
REFINE_EPOCHS = 20  # "Refine after inference": a 2-epoch network object alone is nearly flat
LIVE_EPOCHS = 3  # epochs of the long training watched live before Stop

pytestmark = [pytest.mark.gui, pytest.mark.slow]


def _start_xvfb(xvfb: str) -> tuple[subprocess.Popen[bytes], int]:
    """Start Xvfb on a display number it picks itself (``-displayfd``): no race with others."""
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        [xvfb, "-displayfd", str(write_fd), "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    text = b""
    try:
        deadline = time.monotonic() + 15
        while not text.endswith(b"\n"):
            ready, _, _ = select.select([read_fd], [], [], 0.2)
            if ready:
                chunk = os.read(read_fd, 16)
                if not chunk:
                    break
                text += chunk
            if proc.poll() is not None or time.monotonic() > deadline:
                break
    finally:
        os.close(read_fd)
    if not text.strip().isdigit():
        proc.kill()
        proc.wait()
        raise RuntimeError(f"Xvfb did not report a display (exit {proc.poll()}, got {text!r})")
    return proc, int(text)


@pytest.fixture(scope="module")
def display_env() -> Iterator[dict[str, str]]:
    """Environment for the GUI child: a fresh Xvfb display if Xvfb exists, else offscreen."""
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "QT_QPA_PLATFORM")}
    # the child imports the same ptychodus_pinn_torch as this process (source tree or install)
    package_root = Path(ptychodus_pinn_torch.__file__).resolve().parents[1]
    if package_root == ROOT:
        env["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])]
        )
    env.setdefault("OMP_NUM_THREADS", "1")
    env["MPLBACKEND"] = "Agg"
    xvfb = shutil.which("Xvfb")
    if xvfb is None or os.environ.get("PINN_TORCH_GUI_PLATFORM") == "offscreen":
        env["QT_QPA_PLATFORM"] = "offscreen"
        yield env
        return
    proc, number = _start_xvfb(xvfb)
    try:
        env["DISPLAY"] = f":{number}"
        env["QT_QPA_PLATFORM"] = "xcb"
        yield env
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def gui_run(display_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
            ) -> dict[str, Any]:
    """Run the driver once; return its report plus exit code and output tail."""
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir(parents=True)
    workdir = tmp_path_factory.mktemp("gui_e2e")
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "gui_driver.py"), "--workdir", str(workdir),
         "--artifacts", str(ARTIFACTS), "--epochs", str(EPOCHS), "--timeout", "90",
         "--refine-epochs", str(REFINE_EPOCHS), "--live-epochs", str(LIVE_EPOCHS)],
        cwd=ROOT, env=display_env, capture_output=True, text=True, timeout=420,
    )
    (ARTIFACTS / "driver.log").write_text(done.stdout + done.stderr)
    report_file = ARTIFACTS / "report.json"
    report: dict[str, Any] = json.loads(report_file.read_text()) if report_file.is_file() else {}
    report["_rc"] = done.returncode
    report["_tail"] = (done.stdout + done.stderr)[-4000:]
    report["_wall_s"] = time.monotonic() - started
    report["_platform"] = display_env["QT_QPA_PLATFORM"]
    return report


def _step(report: dict[str, Any], name: str) -> dict[str, Any]:
    for entry in report.get("steps", []):
        if entry["step"] == name:
            return entry
    raise AssertionError(
        f"the GUI session never reached step {name!r}; error: {report.get('error')}\n"
        f"exit code {report['_rc']}; output tail:\n{report['_tail']}"
    )


def test_session_completes_and_exits_cleanly(gui_run: dict[str, Any]) -> None:
    assert gui_run.get("ok") is True, gui_run.get("error") or gui_run["_tail"]
    assert gui_run["main_rc"] == 0
    assert gui_run["_rc"] == 0, gui_run["_tail"]  # no interpreter abort at teardown (134)


def test_our_reconstructor_is_selectable_with_our_panel(gui_run: dict[str, Any]) -> None:
    step = _step(gui_run, "algorithm_selected")
    assert "ptychopinn-pytorch_pinn" in step["items"]
    assert "ptychopinn-pytorch_supervised" in step["items"]
    assert step["selected"] == "ptychopinn-pytorch_pinn"
    assert step["page"] == "PINNTorchPanel-pinn"
    assert step["other_pages"] == {"ptychopinn-pytorch_supervised": "PINNTorchPanel-supervised"}
    assert step["button"] == "Infer" and step["train_visible"] is True
    assert step["infer_enabled"] is False  # no model yet
    settings = _step(gui_run, "settings_typed")
    assert settings["epochs"] == EPOCHS and settings["filter_scale"] == 1
    assert settings["batch"] == "16" and settings["device"] == "cpu"
    assert settings["refine"] == REFINE_EPOCHS


def test_every_panel_row_explains_itself_and_the_readme_uses_its_labels(
    gui_run: dict[str, Any]
) -> None:
    rows = _step(gui_run, "settings_typed")["rows"]
    assert len(rows) >= 25
    for row, tip in rows.items():
        assert "Unit: " in tip and "Upstream: " in tip and "settings.ini: [PINNTorch" in tip, row
    labels = {row.split("/", 1)[1].rstrip(":") for row in rows}
    # plain words instead of upstream's jargon, and physics refinement where users look
    assert {"Merge per-pattern object patches", "Predict object outside the centre",
            "Refine after inference (epochs)", "Overwrite the previous model"} <= labels
    assert not {"Object big", "Probe big"} & labels
    readme = (ROOT / "README.md").read_text()
    missing = sorted(label for label in labels if f"| {label} |" not in readme)
    assert not missing, f"README's settings table lacks the on-screen labels {missing}"


def test_export_writes_the_training_npz(gui_run: dict[str, Any]) -> None:
    step = _step(gui_run, "exported")
    assert {"diff3d", "probeGuess", "xcoords", "ycoords", "objectGuess"} <= set(step["keys"])
    shape, dtype = step["diff3d"]
    assert shape == [64, 64, 64] and dtype == "float32"


def test_infer_is_enabled_right_after_training(gui_run: dict[str, Any]) -> None:
    step = _step(gui_run, "trained")
    assert step["button"] == "Infer"
    assert step["infer_enabled"] is True, (
        "Infer stayed disabled after training; controller fix-ups attached: "
        f"{step['fixups']} (host.panel.create_view_controller_factory makes each "
        "ProcessingController attach host.controller_fixups.attach_controller_fixups)"
    )
    assert "loaded_model_manually" not in [s["step"] for s in gui_run["steps"]]
    # our panel says which model Infer will use
    assert step["model_status"] and "model.zip" in step["model_status"]


def test_training_reports_progress_every_epoch(gui_run: dict[str, Any]) -> None:
    step = _step(gui_run, "trained")
    progress = [tuple(p) for p in step["progress"]]
    assert progress, "no progress updates during training"
    goals = {goal for _, goal in progress}
    assert goals == {EPOCHS}, progress
    seen = [value for value, _ in progress]
    assert all(epoch in seen for epoch in range(1, EPOCHS + 1)), progress
    assert seen == sorted(seen)  # never goes backwards
    # the progress bar moves in hundredths of an epoch (batches inside an epoch move it) and
    # says "epoch k / n: loss ..., about T left"
    bar = [tuple(v) for v in gui_run["progress_bar_seen"]]
    # ptychodus itself may show its own (0, epochs) bar for the instant before the live view's
    # first update; from that update on the range is epochs x 100 and stays so
    live = next((i for i, (_, maximum) in enumerate(bar) if maximum == EPOCHS * 100), None)
    assert live is not None, bar
    assert all(value == 0 for value, _ in bar[:live]), bar
    bar = bar[live:]
    assert {maximum for _, maximum in bar} == {EPOCHS * 100}, bar
    assert all(0 <= value <= EPOCHS * 100 for value, _ in bar), bar
    texts = gui_run["progress_bar_texts"]
    assert any(t.startswith("epoch 1 / 2: loss ") and "left" in t for t in texts), texts


def _points_seen_while_training(samples: list[list[Any]]) -> dict[int, set[int]]:
    """{epochs finished: loss-plot point counts seen} over samples taken while processing."""
    seen: dict[int, set[int]] = {}
    for epochs_done, points, processing in samples:
        if processing:
            seen.setdefault(int(epochs_done), set()).add(int(points))
    return seen


def test_loss_plot_gains_a_point_per_epoch_during_training(gui_run: dict[str, Any]) -> None:
    first = _points_seen_while_training(gui_run["live_plot"])
    assert first, "no sample of the loss plot while training"
    assert 1 in first.get(1, set()), first  # epoch 1 drawn before the training ended
    long_run = _points_seen_while_training(_step(gui_run, "stopped")["live"])
    for k in range(1, LIVE_EPOCHS + 1):
        assert k in long_run.get(k, set()), (k, long_run)
    # never a point for an epoch that has not finished
    for seen in (first, long_run):
        assert all(points <= epochs for epochs, counts in seen.items() for points in counts)
    live = _step(gui_run, "training_live")
    assert live["plot_points"] >= LIVE_EPOCHS
    assert live["plot_title"].startswith("PINN training: epoch ")
    assert live["bar_text"].startswith("epoch ") and " / 500" in live["bar_text"]
    assert "Training: epoch " in live["status"]


def test_inference_shows_a_nontrivial_object_and_the_losses(gui_run: dict[str, Any]) -> None:
    step = _step(gui_run, "inferred")
    assert step["object_shape"] == step["input_shape"]
    assert step["finite"] is True
    assert step["amp_std"] > 1e-6 and step["amp_mean"] > 0
    losses = step["losses"]
    assert [epoch for epoch, _ in losses] == list(range(1, EPOCHS + 1))  # one per epoch
    assert all(value == value and abs(value) != float("inf") for _, value in losses)
    assert step["plot_points"] and max(step["plot_points"]) == len(losses)
    # the scanned region shows the true object's structure (2-epoch network + 20 epochs of
    # physics refinement; the refinement alone from a flat start reaches 0.95 on this scan)
    assert step["inner_amp_mean"] > 0
    assert step["truth_amp_correlation"] > 0.8, step["truth_amp_correlation"]


def test_loss_plot_can_draw_every_training_loss(gui_run: dict[str, Any]) -> None:
    step = _step(gui_run, "inferred")
    n = len(step["losses"])
    assert max(step["plot_drawable_points"]) == n, (
        "ptychodus 1.7 plots Product.losses on a log axis (semilogy), so only positive losses "
        f"are drawn; the output product's losses are {step['losses']}, the axis is "
        f"{step['plot_yscale']}"
    )
    if min(value for _, value in step["losses"]) <= 0:
        assert step["plot_yscale"] == "linear"


def test_object_view_and_screenshots_are_not_blank(gui_run: dict[str, Any]) -> None:
    step = _step(gui_run, "object_shown")
    assert step["image"]["std"] > 1.0 and step["image"]["colors"] > 16
    shots = gui_run["screenshots"]
    for name in ("1_panel_selected", "3_after_infer", "4_object_view", "5_training_live",
                 "6_stopped"):
        assert Path(shots[name]["window"]).is_file()
        assert shots[name]["window_stats"]["std"] > 5.0, shots[name]
        if gui_run["_platform"] == "xcb" and "x11_stats" in shots[name]:
            assert shots[name]["x11_stats"]["std"] > 5.0


def test_stop_button_ends_a_long_training_promptly(gui_run: dict[str, Any]) -> None:
    step = _step(gui_run, "stopped")
    assert step["goal"] == 500 and 1 <= step["last_progress"] < 500
    # Stop reaches the worker within a heartbeat; the rest is saving the last epoch's model
    assert step["latency_s"] < 10.0, step
    assert step["error"] is None  # a stopped training is not a failure
    assert step["infer_enabled"] is True  # its last finished epoch is a usable model


def test_a_stopped_training_keeps_the_earlier_model_and_says_what_it_kept(
    gui_run: dict[str, Any]
) -> None:
    step = _step(gui_run, "stopped")
    assert step["earlier_model_kept"] is True, step["files"]  # model.1.zip = first training
    assert step["model_replaced"] is True
    assert "model.1.zip" in step["files"] and "model.zip" in step["files"]
    kept = step["kept_epochs"]
    assert kept >= LIVE_EPOCHS
    status = step["status"]
    assert f"stopped at epoch {kept} of 500" in status, status
    assert f"kept epoch {kept}'s weights in " in status and "model.zip" in status, status
    assert "previous model is kept as " in status and "model.1.zip" in status, status
