"""Fourier ring correlation (FRC) and its resolution thresholds (numpy/scipy only).

``FRC(k) = |sum_ring F1 conj(F2)| / sqrt(sum_ring |F1|^2 * sum_ring |F2|^2)`` over rings of
spatial frequency ``|q| in [(k - 1/2)/L, (k + 1/2)/L)`` cycles/pixel, ``L = min(H, W)``,
``k = 0 .. L//2`` (ring ``L//2`` is the Nyquist frequency). For a square image this is upstream's
ring index ``round(radius)`` (``ptycho_torch/eval/eval_metrics.py`` ``spinavej``).

Thresholds (``n`` = pixels in the ring):

- ``half_bit``: van Heel & Schatz, J. Struct. Biol. 151, 250 (2005), eq. 17:
  ``(0.2071 + 1.9102/sqrt(n)) / (1.2071 + 0.9102/sqrt(n))``.
- ``0.143``: the constant threshold (Rosenthal & Henderson 2003).
- ``snrt``: upstream's ``FSC(i1, i2, SNRt=0.1)`` threshold exactly as upstream computes it:
  ``(S + 2 sqrt(S)/n_r + 1/sqrt(n_r)) / (S + 2 sqrt(S)/n_r + 1)`` with ``n_r = 2 pi r``
  (``n_0 = 1``) and ``S = 0.1``. Note: van Heel's general form has ``2 sqrt(S)/sqrt(n)``;
  upstream's has ``2 sqrt(S)/n`` (kept for comparability; see specs/EVAL.md).

The resolution at a threshold is the period ``1/f`` (pixels) of the frequency ``f`` where the FRC
first falls below the threshold (linear interpolation between rings); half of it is the
half-period resolution often quoted in X-ray ptychography.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ptychodus_pinn_torch.eval.align import tukey_window

#: van Heel & Schatz's 1/2-bit information threshold constants (SNR = 0.2071).
HALF_BIT_SNR = 0.2071
#: the constant 0.143 threshold.
FIXED_THRESHOLD = 0.143
#: upstream's default SNRt in ``FSC(i1, i2, SNRt=0.1)``.
UPSTREAM_SNRT = 0.1
#: threshold names, in the order reported.
THRESHOLDS = ("half_bit", "0.143", "snrt")


def ring_index(shape: tuple[int, int]) -> np.ndarray:
    """``(H, W)`` int array: the ring of each pixel of an unshifted 2-D FFT (numpy order),
    ``round(|q| * L)`` with ``q`` in cycles/pixel and ``L = min(H, W)``."""
    h, w = int(shape[0]), int(shape[1])
    side = min(h, w)
    qy = np.fft.fftfreq(h)[:, None]
    qx = np.fft.fftfreq(w)[None, :]
    return np.rint(np.sqrt(qy * qy + qx * qx) * side).astype(np.int64)


def half_bit_threshold(n_pixels: np.ndarray) -> np.ndarray:
    """van Heel & Schatz's 1/2-bit threshold for rings of ``n_pixels`` ((R,) > 0) pixels."""
    root = np.sqrt(np.asarray(n_pixels, dtype=np.float64))
    return (0.2071 + 1.9102 / root) / (1.2071 + 0.9102 / root)


def snrt_threshold(n_rings: int, snrt: float = UPSTREAM_SNRT) -> np.ndarray:
    """Upstream's SNRt threshold curve for rings ``r = 0 .. n_rings-1`` (see module docstring):
    ``n_r = 2 pi r`` with ``n_0 = 1``. Returns (n_rings,) float64."""
    if not snrt > 0:
        raise ValueError(f"snrt must be > 0, got {snrt}")
    n = 2.0 * np.pi * np.arange(n_rings, dtype=np.float64)
    n[0] = 1.0
    t1 = 1.0 / (n + np.finfo(float).eps)
    root_s = np.sqrt(snrt)
    return (snrt + 2.0 * root_s * t1 + 1.0 / np.sqrt(n)) / (snrt + 2.0 * root_s * t1 + 1.0)


@dataclass(frozen=True)
class Resolution:
    """Where the FRC crosses one threshold.

    Attributes:
        frequency: crossing frequency in cycles/pixel (Nyquist = 0.5).
        pixels: resolution as the period ``1/frequency`` in pixels (>= 2).
        metres: ``pixels * pixel_size_m`` when the pixel size is known, else None.
        crossed: False when the FRC stays above the threshold up to the last ring (the
            resolution is then that ring's period, 2 pixels for an even side: a bound).
    """

    frequency: float
    pixels: float
    metres: float | None
    crossed: bool


@dataclass(frozen=True)
class FRCCurve:
    """An FRC curve with its thresholds, all (R,) float64 over rings ``k = 0 .. L//2``.

    Attributes:
        frequency: ring frequency ``k / L`` in cycles/pixel.
        frc: correlation per ring, in [0, 1].
        n_pixels: pixels per ring.
        thresholds: ``{"half_bit": ..., "0.143": ..., "snrt": ...}`` curves.
        side: ``L = min(H, W)`` of the images.
    """

    frequency: np.ndarray
    frc: np.ndarray
    n_pixels: np.ndarray
    thresholds: dict[str, np.ndarray]
    side: int

    def resolution(self, threshold: str, pixel_size_m: float | None = None) -> Resolution:
        """The first crossing of ``threshold`` (one of :data:`THRESHOLDS`) after ring 0."""
        if threshold not in self.thresholds:
            raise ValueError(
                f"threshold must be one of {tuple(self.thresholds)}, got {threshold!r}"
            )
        diff = self.frc - self.thresholds[threshold]
        below = np.nonzero(diff[1:] < 0)[0]
        if below.size == 0:
            k = float(len(diff) - 1)
            crossed = False
        else:
            j = int(below[0]) + 1
            if diff[j - 1] >= 0:
                k = (j - 1) + float(diff[j - 1] / (diff[j - 1] - diff[j]))
            else:
                k = float(j)
            crossed = True
        frequency = max(k, 1e-12) / self.side
        pixels = max(1.0 / frequency, 2.0)
        metres = None if pixel_size_m is None else pixels * float(pixel_size_m)
        return Resolution(frequency=frequency, pixels=pixels, metres=metres, crossed=crossed)


def frc(
    image1: np.ndarray,
    image2: np.ndarray,
    *,
    taper: float = 0.2,
    snrt: float = UPSTREAM_SNRT,
) -> FRCCurve:
    """Fourier ring correlation of two ``(H, W)`` real or complex images of one shape.

    Args:
        image1, image2: the images (e.g. an aligned reconstruction and its reference, or two
            independent reconstructions), both sides >= 8.
        taper: Tukey window fraction applied to both before the FFT (0 = none; 0.2 default)
            against the edge discontinuity of a cropped region.
        snrt: S of upstream's SNRt threshold (0.1, upstream's default).

    Returns:
        The :class:`FRCCurve`.
    """
    a = np.asarray(image1)
    b = np.asarray(image2)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"frc needs two (H, W) images of one shape, got {a.shape} and {b.shape}")
    if min(a.shape) < 8:
        raise ValueError(f"frc needs images at least 8x8, got {a.shape}; use a larger region")
    if not 0.0 <= taper <= 1.0:
        raise ValueError(f"taper must be in [0, 1], got {taper}")
    if taper > 0:
        window = tukey_window(a.shape, taper)
        a = a * window
        b = b * window
    fa = np.fft.fft2(a)
    fb = np.fft.fft2(b)
    side = min(a.shape)
    rings = side // 2 + 1
    index = ring_index(a.shape).ravel()
    keep = index < rings
    index = index[keep]
    cross = np.bincount(index, (fa * np.conj(fb)).ravel()[keep].real, minlength=rings) + 1j * (
        np.bincount(index, (fa * np.conj(fb)).ravel()[keep].imag, minlength=rings)
    )
    pa = np.bincount(index, (np.abs(fa) ** 2).ravel()[keep], minlength=rings)
    pb = np.bincount(index, (np.abs(fb) ** 2).ravel()[keep], minlength=rings)
    n_pixels = np.bincount(index, minlength=rings).astype(np.float64)
    denom = np.sqrt(pa * pb)
    curve = np.where(denom > 0, np.abs(cross) / np.where(denom > 0, denom, 1.0), 0.0)
    thresholds = {
        "half_bit": half_bit_threshold(np.maximum(n_pixels, 1.0)),
        "0.143": np.full(rings, FIXED_THRESHOLD),
        "snrt": snrt_threshold(rings, snrt),
    }
    return FRCCurve(
        frequency=np.arange(rings, dtype=np.float64) / side,
        frc=curve,
        n_pixels=n_pixels,
        thresholds=thresholds,
        side=side,
    )
