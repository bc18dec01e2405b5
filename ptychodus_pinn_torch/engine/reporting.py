"""Files a training or a reconstruction leaves for the user: history.json, loss.png, a picture."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ptychodus_pinn_torch.data.atomic_file import atomic_write


def _json_number(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _records(history: Sequence[Any]) -> list[dict[str, Any]]:
    """EpochReport objects (or their dicts) as plain dicts."""
    return [h.to_dict() if hasattr(h, "to_dict") else dict(h) for h in history]


def _pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (imported on first use)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def write_history(path: Path, history: Sequence[Any], **extra: Any) -> Path:
    """Write ``{"epochs": [...], **extra}`` as JSON (atomically); epochs are EpochReport dicts.

    Non-finite floats become null so the file stays valid JSON.
    """
    records = _records(history)
    clean = [
        {
            k: (
                _json_number(v)
                if not isinstance(v, dict)
                else {kk: _json_number(vv) for kk, vv in v.items()}
            )
            for k, v in r.items()
        }
        for r in records
    ]
    payload = {"epochs": clean, **{k: _json_number(v) for k, v in extra.items()}}
    path = Path(path)
    with atomic_write(path) as fh:
        fh.write(json.dumps(payload, indent=2).encode("utf-8"))
    return path


def plot_loss(path: Path, history: Sequence[Any], *, title: str = "PtychoPINN training") -> Path:
    """Train and validation loss per epoch as a PNG (matplotlib, Agg backend)."""
    plt = _pyplot()

    records = _records(history)
    epochs = [r["epoch"] for r in records]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.plot(epochs, [r["train_loss"] for r in records], "o-", label="train")
    val = [(r["epoch"], r["val_loss"]) for r in records if r.get("val_loss") is not None]
    if val:
        ax.plot([e for e, _ in val], [v for _, v in val], "s--", label="validation")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if records:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def plot_object(
    path: Path,
    obj: np.ndarray,
    coverage: np.ndarray | None = None,
    *,
    title: str = "reconstruction",
) -> Path:
    """Amplitude and phase of ``obj`` ((H, W) complex) side by side as a PNG.

    Pixels with zero ``coverage`` ((H, W) float) are shown blank.
    """
    plt = _pyplot()

    obj = np.asarray(obj)
    amp = np.abs(obj).astype(np.float64)
    phase = np.angle(obj).astype(np.float64)
    if coverage is not None:
        empty = np.asarray(coverage) <= 0
        amp = np.ma.masked_where(empty, amp)
        phase = np.ma.masked_where(empty, phase)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6), dpi=100)
    for ax, img, name, cmap in (
        (axes[0], amp, "amplitude", "gray"),
        (axes[1], phase, "phase (rad)", "twilight"),
    ):
        im = ax.imshow(img, cmap=cmap)
        ax.set_title(name)
        ax.set_xlabel("x (px)")
        ax.set_ylabel("y (px)")
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def summarize(history: Sequence[Any]) -> Mapping[str, Any]:
    """First/last/best train loss and epochs run, for logs and reports."""
    records = _records(history)
    if not records:
        return {"epochs_run": 0}
    losses = [r["train_loss"] for r in records]
    return {
        "epochs_run": len(records),
        "first_loss": losses[0],
        "last_loss": losses[-1],
        "best_loss": min(losses),
        "seconds": sum(r["seconds"] for r in records),
    }


class ComparedObject(Protocol):
    """What :func:`plot_comparison` reads of one evaluated object (an ``eval.Evaluation``):
    the aligned object and the reference inside the compared box, and the two SSIMs."""

    aligned: np.ndarray
    reference: np.ndarray
    amplitude_ssim: float
    phase_ssim: float


def plot_comparison(path: Path, compared: Sequence[tuple[str, ComparedObject]], *,
                    title: str = "") -> Path:
    """Truth and each reconstruction side by side, amplitude above phase, SSIM in the titles.

    ``compared``: ``(name, evaluation)`` pairs, e.g. ``("network", ...)``, ``("network +
    refinement", ...)``; every evaluation's ``aligned`` and ``reference`` are ``(h, w)``
    complex arrays of the same box (the reference is drawn once, first). Amplitudes share one
    grey scale and phases one colour scale (the truth's range), so the pictures compare.
    """
    plt = _pyplot()
    if not compared:
        raise ValueError("plot_comparison needs at least one evaluated object")
    reference = np.asarray(compared[0][1].reference)
    columns = [("truth", reference, None)] + [
        (name, np.asarray(ev.aligned), ev) for name, ev in compared]
    amp_range = (float(np.abs(reference).min()), float(np.abs(reference).max()))
    ph_range = (float(np.angle(reference).min()), float(np.angle(reference).max()))
    if amp_range[0] == amp_range[1]:
        amp_range = (amp_range[0] - 0.5, amp_range[1] + 0.5)
    if ph_range[0] == ph_range[1]:
        ph_range = (ph_range[0] - 0.5, ph_range[1] + 0.5)
    fig, axes = plt.subplots(2, len(columns), figsize=(3.6 * len(columns), 7.2), dpi=100,
                             squeeze=False)
    for col, (name, obj, ev) in enumerate(columns):
        amp_title, ph_title = f"{name}\namplitude", f"{name}\nphase (rad)"
        if ev is not None:
            amp_title = f"{name}\namplitude, SSIM {ev.amplitude_ssim:.3f}"
            ph_title = f"{name}\nphase, SSIM {ev.phase_ssim:.3f}"
        for row, (img, rng, cmap, text) in enumerate((
                (np.abs(obj), amp_range, "gray", amp_title),
                (np.angle(obj), ph_range, "twilight", ph_title))):
            ax = axes[row][col]
            im = ax.imshow(img, cmap=cmap, vmin=rng[0], vmax=rng[1])
            ax.set_title(text, fontsize=10)
            ax.set_xticks([])
            ax.set_yticks([])
            if col == len(columns) - 1:
                fig.colorbar(im, ax=ax, fraction=0.046)
    fig.suptitle(title or "reconstruction vs. truth (scanned region, aligned)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
