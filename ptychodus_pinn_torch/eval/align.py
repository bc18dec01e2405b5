"""Alignment of a reconstruction to a reference object (numpy only).

A ptychographic reconstruction is defined only up to a global phase, a linear phase ramp
(a shift of the diffraction patterns' centre), an amplitude scale (the intensity scale), and
possibly a translation. :func:`align` estimates each of these against a reference and returns the
reconstruction with all of them removed, so that metrics compare what matters.

Conventions: arrays are ``(H, W)``; shifts are ``(rows, cols)`` in pixels and follow
``skimage.registration.phase_cross_correlation``: the shift is what must be applied to the moving
image (the reconstruction) to register it with the reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Box = tuple[slice, slice]

#: cross-correlation normalizations: "phase" (phase correlation, skimage's default) or "none".
NORMALIZATIONS = ("phase", "none")


@dataclass(frozen=True)
class Alignment:
    """What :func:`align` removed from the reconstruction.

    Attributes:
        shift_px: ``(rows, cols)`` sub-pixel shift applied to the reconstruction (pixels).
        phase_offset_rad: global phase removed, at the centre of the box (radians).
        phase_ramp_rad_per_px: ``(d/drow, d/dcol)`` of the linear phase removed (rad/pixel).
        amplitude_gain: factor the aligned amplitude was multiplied by (least squares).
    """

    shift_px: tuple[float, float]
    phase_offset_rad: float
    phase_ramp_rad_per_px: tuple[float, float]
    amplitude_gain: float


#: Tukey fraction of the window applied to both boxes before registration in :func:`align`.
REGISTRATION_TAPER = 0.5
#: registration passes in :func:`align`: phase correlation first (robust to large shifts), then
#: plain cross-correlation of the re-cropped, already shifted box (robust to noise; each pass
#: shrinks the bias that content entering and leaving the box puts on a cropped correlation).
REGISTRATION_PASSES = 3


def tukey_window(shape: tuple[int, ...], alpha: float) -> np.ndarray:
    """Separable Tukey window, ``(H, W)`` float64 (``alpha`` = tapered fraction of each side)."""
    from scipy.signal.windows import tukey

    return np.outer(tukey(int(shape[0]), alpha), tukey(int(shape[1]), alpha))


def full_box(shape: tuple[int, ...]) -> Box:
    """The box covering a whole ``(H, W)`` array."""
    return slice(0, int(shape[0])), slice(0, int(shape[1]))


def scanned_box(x: np.ndarray, y: np.ndarray, shape: tuple[int, ...]) -> Box:
    """Rows and columns between the outermost scan positions (the fully overlapped region).

    Args:
        x, y: ``(M,)`` probe positions in object pixels (x = column, y = row).
        shape: ``(H, W)`` of the object.

    Returns:
        ``(row slice, column slice)`` clipped to the object.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    r0, r1 = int(np.ceil(y.min())), int(np.floor(y.max())) + 1
    c0, c1 = int(np.ceil(x.min())), int(np.floor(x.max())) + 1
    return slice(max(r0, 0), min(r1, int(shape[0]))), slice(max(c0, 0), min(c1, int(shape[1])))


def _dft_at(spectrum: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Inverse DFT of ``spectrum`` ((H, W) complex, numpy FFT order) evaluated at real-valued
    pixel positions ``rows`` (R,) x ``cols`` (C,): ``sum_k S(k) exp(2 pi i k.r)``, (R, C)."""
    h, w = spectrum.shape
    ey = np.exp(2j * np.pi * np.outer(rows, np.fft.fftfreq(h)))  # (R, H)
    ex = np.exp(2j * np.pi * np.outer(np.fft.fftfreq(w), cols))  # (W, C)
    return ey @ spectrum @ ex


def register_shift(
    reference: np.ndarray,
    moving: np.ndarray,
    *,
    upsample: int = 20,
    normalization: Literal["phase", "none"] = "phase",
) -> tuple[float, float]:
    """Sub-pixel translation that registers ``moving`` with ``reference``.

    Cross-correlation peak on the integer grid, then refined to ``1/upsample`` pixel by a
    matrix-multiply DFT in a 1.5-pixel neighbourhood of the peak (the upsampled cross-correlation
    of Guizar-Sicairos, Thurman and Fienup, Opt. Lett. 33, 156 (2008)).

    Args:
        reference, moving: ``(H, W)`` real or complex arrays of the same shape.
        upsample: refinement factor (>= 1; 1 = whole pixels).
        normalization: ``"phase"`` divides the cross-power spectrum by its modulus (phase
            correlation), ``"none"`` keeps it.

    Returns:
        ``(rows, cols)`` shift in pixels, about ``[-H/2, H/2]`` / ``[-W/2, W/2]``; applying it
        to ``moving`` with :func:`fourier_shift` aligns it with ``reference``.
    """
    reference = np.asarray(reference)
    moving = np.asarray(moving)
    if reference.shape != moving.shape or reference.ndim != 2:
        raise ValueError(
            f"register_shift needs two (H, W) arrays of one shape, got {reference.shape} and "
            f"{moving.shape}"
        )
    if upsample < 1:
        raise ValueError(f"upsample must be >= 1, got {upsample}")
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    product = np.fft.fft2(reference) * np.conj(np.fft.fft2(moving))
    if normalization == "phase":
        product = product / np.maximum(np.abs(product), 100 * np.finfo(np.float64).eps)
    h, w = product.shape
    cc = np.abs(np.fft.ifft2(product))
    peak = np.unravel_index(int(np.argmax(cc)), cc.shape)
    shift = np.array(peak, dtype=np.float64)
    dims = np.array([h, w], dtype=np.float64)
    shift = np.where(shift > dims // 2, shift - dims, shift)  # wrap to signed shifts
    if upsample > 1:
        shift = np.round(shift * upsample) / upsample
        size = int(np.ceil(1.5 * upsample))
        half = size // 2
        grid = np.arange(size, dtype=np.float64) / upsample
        rows = shift[0] - half / upsample + grid
        cols = shift[1] - half / upsample + grid
        local = np.abs(_dft_at(product, rows, cols))
        r, c = np.unravel_index(int(np.argmax(local)), local.shape)
        shift = np.array([rows[r], cols[c]])
    return float(shift[0]), float(shift[1])


def fourier_shift(image: np.ndarray, shift: tuple[float, float]) -> np.ndarray:
    """``image`` ((H, W)) translated by ``shift`` = (rows, cols) pixels (content moves by +shift),
    periodically, through the Fourier shift theorem. Returns complex128 (H, W)."""
    image = np.asarray(image)
    h, w = image.shape
    ky = np.fft.fftfreq(h)[:, None]
    kx = np.fft.fftfreq(w)[None, :]
    ramp = np.exp(-2j * np.pi * (ky * float(shift[0]) + kx * float(shift[1])))
    return np.fft.ifft2(np.fft.fft2(image) * ramp)


def ramp_guess(field: np.ndarray, *, upsample: int = 10) -> tuple[float, float]:
    """Slopes ``(rows, cols)`` in rad/pixel of the dominant linear phase of ``field`` ((H, W)
    complex): the peak of ``|DFT(field)|``, refined to ``1/upsample`` of a frequency bin by a
    matrix-multiply DFT around it. Wrapping-free, so it finds ramps of many cycles."""
    h, w = field.shape
    spectrum = np.abs(np.fft.fft2(field))
    r, c = np.unravel_index(int(np.argmax(spectrum)), spectrum.shape)
    fy, fx = np.fft.fftfreq(h)[r], np.fft.fftfreq(w)[c]
    steps = np.arange(-upsample, upsample + 1, dtype=np.float64) / upsample
    fys = fy + steps / h
    fxs = fx + steps / w
    ey = np.exp(-2j * np.pi * np.outer(fys, np.arange(h)))  # (R, H)
    ex = np.exp(-2j * np.pi * np.outer(np.arange(w), fxs))  # (W, C)
    local = np.abs(ey @ field @ ex)
    i, j = np.unravel_index(int(np.argmax(local)), local.shape)
    return float(2 * np.pi * fys[i]), float(2 * np.pi * fxs[j])


def fit_phase(
    recon: np.ndarray, reference: np.ndarray, weight: np.ndarray, *, iterations: int = 4
) -> tuple[float, float, float]:
    """Weighted least-squares global phase and linear phase ramp of ``recon`` against
    ``reference``.

    Starts from :func:`ramp_guess` of ``weight * recon * conj(reference)`` (so ramps of several
    cycles across the array, which wrap, are found), then each iteration removes the weighted
    mean phase of ``recon * conj(reference)`` (insensitive to wrapping), then fits
    ``a + b*col + c*row`` to the remaining wrapped phase difference and removes it; coordinates
    are centred on the array.

    Args:
        recon, reference: ``(H, W)`` complex.
        weight: ``(H, W)`` non-negative weights (e.g. the reference amplitude).
        iterations: passes (4).

    Returns:
        ``(offset, slope_rows, slope_cols)``: radians at the centre and rad/pixel; the aligned
        object is ``recon * exp(-i(offset + slope_rows*row_c + slope_cols*col_c))``.
    """
    h, w = recon.shape
    yy, xx = np.mgrid[:h, :w].astype(np.float64)
    xx -= xx.mean()
    yy -= yy.mean()
    weight = np.asarray(weight, dtype=np.float64)
    sw = np.sqrt(weight.ravel())
    design = np.stack([np.ones(h * w), xx.ravel(), yy.ravel()], axis=1)
    weighted_design = design * sw[:, None]
    cross = recon.astype(np.complex128) * np.conj(reference.astype(np.complex128))
    total = np.zeros(3)
    total[2], total[1] = ramp_guess(weight * cross)
    for _ in range(iterations):
        current = cross * np.exp(-1j * (design @ total).reshape(h, w))
        total[0] += np.angle(np.sum(weight * current))
        current = cross * np.exp(-1j * (design @ total).reshape(h, w))
        resid = np.angle(current).ravel()
        coef, *_ = np.linalg.lstsq(weighted_design, resid * sw, rcond=None)
        total += coef
    return float(total[0]), float(total[2]), float(total[1])


def remove_phase(
    recon: np.ndarray, offset: float, slope_rows: float, slope_cols: float
) -> np.ndarray:
    """``recon`` ((H, W) complex) times ``exp(-i(offset + slope_rows*row_c + slope_cols*col_c))``
    with centred coordinates (complex128)."""
    h, w = recon.shape
    yy, xx = np.mgrid[:h, :w].astype(np.float64)
    xx -= xx.mean()
    yy -= yy.mean()
    return recon.astype(np.complex128) * np.exp(-1j * (offset + slope_rows * yy + slope_cols * xx))


def amplitude_gain(recon_amp: np.ndarray, reference_amp: np.ndarray) -> float:
    """Least-squares gain ``g`` minimizing ``sum (g*recon_amp - reference_amp)^2`` ((H, W)
    real arrays)."""
    num = float(np.sum(recon_amp * reference_amp))
    den = float(np.sum(recon_amp * recon_amp))
    return num / den if den > 1e-30 else 1.0


def _aligned(
    rec: np.ndarray, ref: np.ndarray, weight: np.ndarray
) -> tuple[np.ndarray, float, tuple[float, float, float, float]]:
    """``rec`` ((h, w)) with its phase, ramp and gain fitted to ``ref``: (aligned complex128,
    ``||aligned - ref|| / ||ref||``, (offset, slope_rows, slope_cols, gain))."""
    rec = rec.astype(np.complex128)
    offset, slope_rows, slope_cols = fit_phase(rec, ref, weight)
    aligned = remove_phase(rec, offset, slope_rows, slope_cols)
    gain = amplitude_gain(np.abs(aligned), weight)
    aligned = aligned * gain
    norm = float(np.linalg.norm(ref)) or 1.0
    error = float(np.linalg.norm(aligned - ref)) / norm
    return aligned, error, (offset, slope_rows, slope_cols, gain)


def align(
    recon: np.ndarray,
    reference: np.ndarray,
    *,
    box: Box | None = None,
    register: bool = True,
    upsample: int = 20,
) -> tuple[np.ndarray, Alignment]:
    """Align ``recon`` to ``reference`` inside ``box``: shift, global phase, phase ramp, gain.

    Steps: (1) a first phase/ramp fit on the unshifted box (a strong ramp would otherwise
    decorrelate the cross-correlation); (2) with ``register``, the sub-pixel shift of the
    ramp-free, mean-free box under a Tukey window (:data:`REGISTRATION_TAPER`) by
    :func:`register_shift` in :data:`REGISTRATION_PASSES` passes, each applied to the WHOLE
    ``recon`` by :func:`fourier_shift` before cropping (so the box holds real content), kept
    only if it lowers the aligned complex error ``||aligned - ref|| / ||ref||`` below the
    unshifted one (a blurred reconstruction has a flat correlation peak whose maximum can
    wander by pixels); (3) the final phase/ramp fit (:func:`fit_phase`, weights = reference
    amplitude) and (4) the gain (:func:`amplitude_gain`) on the box.

    Args:
        recon, reference: ``(H, W)`` complex objects on the same pixel grid.
        box: region compared (default: everything).
        register: estimate and remove a translation (False: same grid assumed).
        upsample: sub-pixel precision of the registration (1/upsample pixel).

    Returns:
        ``(aligned, alignment)``: ``aligned`` is the box of the aligned reconstruction,
        complex128 with the gain applied to its modulus (phase untouched), and what was removed.
    """
    recon = np.asarray(recon)
    reference = np.asarray(reference)
    if recon.ndim != 2 or recon.shape != reference.shape:
        raise ValueError(
            f"recon {recon.shape} and reference {reference.shape} must be (H, W) arrays of the "
            "same shape (the same pixel grid); crop or resample one of them"
        )
    box = full_box(recon.shape) if box is None else box
    ref = reference[box].astype(np.complex128)
    if ref.size == 0:
        raise ValueError(f"the evaluation box {box} is empty; pass a box inside {recon.shape}")
    weight = np.abs(ref)
    shift = (0.0, 0.0)
    if register:
        first = fit_phase(recon[box], ref, weight)
        # A cropped box is not periodic: without a taper its edges correlate best at zero shift.
        window = tukey_window(ref.shape, REGISTRATION_TAPER)
        target = (ref - ref.mean()) * window
        total = np.zeros(2)
        shifted = recon
        for step in range(REGISTRATION_PASSES):
            moving = remove_phase(shifted[box], *first)
            total += register_shift(
                target,
                (moving - moving.mean()) * window,
                upsample=upsample,
                normalization="phase" if step == 0 else "none",
            )
            shifted = fourier_shift(recon, (float(total[0]), float(total[1])))
        candidate = (float(total[0]), float(total[1]))
        if _aligned(shifted[box], ref, weight)[1] < _aligned(recon[box], ref, weight)[1]:
            recon, shift = shifted, candidate
    aligned, _, (offset, slope_rows, slope_cols, gain) = _aligned(recon[box], ref, weight)
    return aligned, Alignment(
        shift_px=shift,
        phase_offset_rad=offset,
        phase_ramp_rad_per_px=(slope_rows, slope_cols),
        amplitude_gain=gain,
    )
