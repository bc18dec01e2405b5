"""``pinn-torch evaluate``: how good is a reconstruction, and at what resolution.

Aligns the reconstruction (``object`` of ``pinn-torch reconstruct``'s OUT.npz) to a reference
(``objectGuess`` of a scan NPZ, or ``object`` of another reconstruction) -- sub-pixel shift,
global phase, linear phase ramp, amplitude gain -- and prints amplitude/phase SSIM, PSNR, RMSE
and the FRC resolution at the 1/2-bit, 0.143 and upstream SNRt thresholds::

    pinn-torch evaluate --recon out.npz --reference scan.npz --json m.json --png frc.png

The region compared (``--box auto``) is the rectangle between the outermost scan positions when
the reference holds ``xcoords``/``ycoords``, else the bounding box of the pixels whose
``coverage`` (in the reconstruction file) is at least half its maximum, else everything.
No torch import: this runs anywhere numpy and scipy do (matplotlib only for ``--png``).
"""

from __future__ import annotations

import argparse
import json
import math
import zipfile
from pathlib import Path

import numpy as np

NAME = "evaluate"
HELP = "compare a reconstruction with a reference: SSIM, PSNR, RMSE, FRC resolution"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recon", type=Path, required=True,
                        help="reconstruction NPZ (pinn-torch reconstruct's OUT.npz)")
    parser.add_argument("--reference", type=Path, required=True,
                        help="reference NPZ: a scan with objectGuess, or another reconstruction")
    parser.add_argument("--recon-key", default="object",
                        help="array of --recon to evaluate (object; e.g. network_object)")
    parser.add_argument("--reference-key", default="auto",
                        help="array of --reference (auto: objectGuess, else object)")
    parser.add_argument("--box", default="auto",
                        help="region: auto, full, or ROW0:ROW1,COL0:COL1 (auto: between the "
                        "outermost scan positions, else where coverage >= half its maximum)")
    parser.add_argument("--pixel-size", type=float, default=None,
                        help="object pixel size in metres, to report resolutions in metres")
    parser.add_argument("--no-register", action="store_true",
                        help="do not estimate a translation (the grids are known to agree)")
    parser.add_argument("--taper", type=float, default=0.2,
                        help="Tukey window fraction for the FRC, in [0, 1] (0.2)")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    parser.add_argument("--png", type=Path, default=None,
                        help="also draw the FRC curve and the aligned differences here")


def _read(path: Path, keys: tuple[str, ...], flag: str) -> dict[str, np.ndarray]:
    """The members ``keys`` of NPZ ``path`` that exist (only those are decompressed)."""
    if not path.is_file():
        raise FileNotFoundError(f"{flag} {path}: no such file; pass an NPZ file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {k: np.asarray(archive[k]) for k in keys if k in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ValueError(f"{flag} {path}: not a readable NPZ file ({exc}); re-save it") from exc


def _object(arrays: dict[str, np.ndarray], keys: tuple[str, ...], flag: str) -> np.ndarray:
    for key in keys:
        if key in arrays:
            value = arrays[key]
            if value.ndim == 3 and value.shape[0] == 1:
                value = value[0]
            if value.ndim != 2 or not np.issubdtype(value.dtype, np.number):
                raise ValueError(
                    f"{flag} key {key!r} must be a 2-D numeric object, got {value.dtype} "
                    f"{value.shape}"
                )
            return value
    raise ValueError(f"{flag} holds none of {list(keys)}; name the array with {flag}-key")


def _parse_box(text: str, shape: tuple[int, int]) -> tuple[slice, slice]:
    try:
        rows, cols = (part.split(":") for part in text.split(","))
        r0, r1, c0, c1 = (int(v) for v in (*rows, *cols))
    except ValueError:
        raise ValueError(
            f"--box {text!r} must be auto, full or ROW0:ROW1,COL0:COL1 (e.g. 32:160,32:160)"
        ) from None
    if not (0 <= r0 < r1 <= shape[0] and 0 <= c0 < c1 <= shape[1]):
        raise ValueError(f"--box {text!r} lies outside the {shape[0]}x{shape[1]} object")
    return slice(r0, r1), slice(c0, c1)


def _coverage_box(coverage: np.ndarray) -> tuple[slice, slice] | None:
    """Bounding box of ``coverage >= max/2`` ((H, W) real), or None when coverage is empty."""
    peak = float(np.max(coverage)) if coverage.size else 0.0
    if not peak > 0:
        return None
    rows = np.nonzero(np.any(coverage >= 0.5 * peak, axis=1))[0]
    cols = np.nonzero(np.any(coverage >= 0.5 * peak, axis=0))[0]
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)


def choose_box(
    text: str, shape: tuple[int, int], ref: dict[str, np.ndarray], rec: dict[str, np.ndarray]
) -> tuple[tuple[slice, slice], str]:
    """The region to compare and how it was chosen (see the module docstring)."""
    from ptychodus_pinn_torch.eval import full_box, scanned_box

    if text == "full":
        return full_box(shape), "full object"
    if text != "auto":
        return _parse_box(text, shape), "--box"
    if "xcoords" in ref and "ycoords" in ref and np.size(ref["xcoords"]) > 0:
        return scanned_box(ref["xcoords"], ref["ycoords"], shape), "between the scan positions"
    coverage = rec.get("coverage")
    if coverage is not None and coverage.shape == shape:
        box = _coverage_box(coverage)
        if box is not None:
            return box, "coverage >= half its maximum"
    return full_box(shape), "full object"


def _table(result: object, box_note: str) -> str:
    from ptychodus_pinn_torch.eval import Evaluation

    assert isinstance(result, Evaluation)
    a = result.alignment
    r0, r1 = result.box[0].start, result.box[0].stop
    c0, c1 = result.box[1].start, result.box[1].stop
    lines = [
        f"region        rows {r0}:{r1}, cols {c0}:{c1} ({box_note})",
        f"alignment     shift ({a.shift_px[0]:+.2f}, {a.shift_px[1]:+.2f}) px (row, col), phase "
        f"{a.phase_offset_rad:+.3f} rad, ramp ({a.phase_ramp_rad_per_px[0]:+.2e}, "
        f"{a.phase_ramp_rad_per_px[1]:+.2e}) rad/px, gain {a.amplitude_gain:.4g}",
        f"{'metric':<14}{'amplitude':>12}{'phase':>12}",
        f"{'SSIM':<14}{result.amplitude_ssim:>12.4f}{result.phase_ssim:>12.4f}",
        f"{'PSNR (dB)':<14}{result.amplitude_psnr_db:>12.2f}{result.phase_psnr_db:>12.2f}",
        f"{'RMSE':<14}{result.amplitude_rmse:>12.4g}{result.phase_rmse_rad:>12.4g}",
        f"complex relative error {result.complex_relative_error:.4g}",
        "FRC resolution (period; half-period = half of it):",
    ]
    for name, res in result.resolution.items():
        where = f"{res.pixels:.2f} px"
        if res.metres is not None:
            where += f" = {res.metres:.4g} m"
        bound = "" if res.crossed else " (no crossing up to Nyquist: an upper bound)"
        lines.append(f"  {name:<10}{where}{bound}")
    return "\n".join(lines)


def plot_evaluation(path: Path, result: object, title: str) -> Path:
    """FRC curve with its thresholds, and the aligned amplitude and phase differences, as PNG."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from ptychodus_pinn_torch.eval import Evaluation

    assert isinstance(result, Evaluation)
    nyquist = 2.0 * result.frc.frequency  # frequency / Nyquist
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4), dpi=100)
    ax = axes[0]
    ax.plot(nyquist, result.frc.frc, label="FRC", color="k")
    styles = {"half_bit": "--", "0.143": ":", "snrt": "-."}
    for name, curve in result.frc.thresholds.items():
        res = result.resolution[name]
        ax.plot(nyquist, curve, styles.get(name, "--"),
                label=f"{name} ({res.pixels:.2f} px{'' if res.crossed else ', bound'})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("spatial frequency / Nyquist")
    ax.set_ylabel("Fourier ring correlation")
    ax.legend(fontsize=8)
    amp = result.amplitude_difference
    phase = result.phase_difference
    for ax, img, name, cmap in (
        (axes[1], amp, f"|aligned| - |reference| (SSIM {result.amplitude_ssim:.3f})", "RdBu_r"),
        (axes[2], phase, f"phase difference, rad (SSIM {result.phase_ssim:.3f})", "RdBu_r"),
    ):
        lim = float(np.max(np.abs(img))) or 1.0
        im = ax.imshow(img, cmap=cmap, vmin=-lim, vmax=lim)
        ax.set_title(name, fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def run(args: argparse.Namespace) -> int:
    if args.pixel_size is not None and not (math.isfinite(args.pixel_size) and args.pixel_size > 0):
        raise ValueError(f"--pixel-size must be a number of metres > 0, got {args.pixel_size}")
    if not 0.0 <= args.taper <= 1.0:
        raise ValueError(f"--taper must be in [0, 1], got {args.taper}")
    if args.png is not None and args.png.suffix.lower() != ".png":
        raise ValueError(f"--png {args.png} must end in .png")
    ref_keys = ("objectGuess", "object") if args.reference_key == "auto" else (args.reference_key,)
    rec_arrays = _read(args.recon, (args.recon_key, "coverage"), "--recon")
    ref_arrays = _read(args.reference, (*ref_keys, "xcoords", "ycoords"), "--reference")
    recon = _object(rec_arrays, (args.recon_key,), "--recon")
    reference = _object(ref_arrays, ref_keys, "--reference")
    if recon.shape != reference.shape:
        raise ValueError(
            f"--recon object is {recon.shape[0]}x{recon.shape[1]} but --reference is "
            f"{reference.shape[0]}x{reference.shape[1]}; both must be on one pixel grid "
            "(reconstruct on the reference scan's objectGuess grid)"
        )
    box, note = choose_box(args.box, recon.shape, ref_arrays, rec_arrays)

    from ptychodus_pinn_torch.eval import evaluate

    result = evaluate(
        recon, reference, box=box, register=not args.no_register, taper=args.taper,
        pixel_size_m=args.pixel_size,
    )
    print(_table(result, note))
    written = []
    if args.json is not None:
        from ptychodus_pinn_torch.data.atomic_file import atomic_write

        payload = {"recon": str(args.recon), "reference": str(args.reference), "box_rule": note,
                   **result.to_dict()}
        with atomic_write(args.json) as fh:
            fh.write(json.dumps(payload, indent=1, allow_nan=False).encode("utf-8"))
        written.append(str(args.json))
    if args.png is not None:
        args.png.parent.mkdir(parents=True, exist_ok=True)
        plot_evaluation(args.png, result, f"{args.recon.name} vs {args.reference.name}")
        written.append(str(args.png))
    if written:
        print("wrote " + ", ".join(written))
    return 0
