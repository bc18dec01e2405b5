"""A reference ePIE (Maiden & Rodenburg 2009) in numpy, for the refinement benchmark only.

Sequential over positions in a fresh random order each epoch: for position j with the
``(N, N)`` object patch ``O_j`` (bilinear, sub-pixel, as the package's simulator samples it),
``psi = P O_j``, ``Psi = F psi`` (unitary FFT), ``psi' = F^-1(a Psi / |Psi|)``, and
``O_j += step conj(P) / max|P|² (psi' - psi)`` spread back onto the object with the adjoint of
the bilinear sampling. The probe is known (simulation) and fixed; the measured amplitudes are
divided by the square root of the gain that makes the start object predict the measured total
intensity, as ``engine.refine`` does. Object-only ePIE, step 1: the textbook algorithm.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def _windows(centres: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-left (row, col) int of each (N+1)x(N+1) window and the (fy, fx) fractions."""
    rows = centres[:, 1] - n // 2
    cols = centres[:, 0] - n // 2
    r0, c0 = np.floor(rows).astype(np.int64), np.floor(cols).astype(np.int64)
    return r0, c0, np.stack([rows - r0, cols - c0], axis=1)


def epie(
    obj: np.ndarray,
    amplitudes: np.ndarray,
    centres: np.ndarray,
    probe: np.ndarray,
    *,
    epochs: int,
    seed: int = 0,
    step: float = 1.0,
    on_epoch: Callable[[int, np.ndarray, float], None] | None = None,
) -> np.ndarray:
    """Run ``epochs`` ePIE sweeps from ``obj`` (H, W) complex; returns the object (complex64).

    amplitudes: (M, N, N) fftshifted measured amplitudes; centres: (M, 2) [x, y]; probe:
    (N, N). Every window ``[y - N//2, y - N//2 + N]`` must lie inside the object.
    ``on_epoch(epoch, object, seconds)`` is called after each sweep (time excludes it).
    """
    n = probe.shape[0]
    o = np.array(obj, dtype=np.complex64)
    p = probe.astype(np.complex64)
    r0, c0, frac = _windows(np.asarray(centres, np.float64), n)
    h, w = o.shape
    if r0.min() < 0 or c0.min() < 0 or (r0 + n + 1).max() > h or (c0 + n + 1).max() > w:
        raise ValueError("every (N+1)x(N+1) window must lie inside the object")
    amp = np.fft.ifftshift(np.asarray(amplitudes, np.float32), axes=(-2, -1))
    # fixed gain from the start object (the probe's scale is arbitrary)
    predicted = 0.0
    for j in range(len(r0)):
        predicted += float(np.sum(np.abs(np.fft.fft2(p * _patch(o, r0[j], c0[j], frac[j], n),
                                                       norm="ortho")) ** 2))
    amp = amp / np.float32(np.sqrt(float(np.sum(amp.astype(np.float64) ** 2)) / predicted))
    update = (step * np.conj(p) / np.max(np.abs(p) ** 2)).astype(np.complex64)
    rs = np.random.RandomState(seed)
    elapsed = 0.0
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        for j in rs.permutation(len(r0)):
            patch = _patch(o, r0[j], c0[j], frac[j], n)
            psi = p * patch
            far = np.fft.fft2(psi, norm="ortho")
            mag = np.abs(far)
            far *= amp[j] / np.maximum(mag, 1e-12)
            diff = np.fft.ifft2(far, norm="ortho") - psi
            _add(o, r0[j], c0[j], frac[j], n, update * diff)
        elapsed += time.perf_counter() - t0
        if on_epoch is not None:
            on_epoch(epoch, o, elapsed)
    return o


def _patch(o: np.ndarray, r: int, c: int, f: np.ndarray, n: int) -> np.ndarray:
    win = o[r : r + n + 1, c : c + n + 1]
    fy, fx = np.float32(f[0]), np.float32(f[1])
    return ((1 - fy) * ((1 - fx) * win[:-1, :-1] + fx * win[:-1, 1:])
            + fy * ((1 - fx) * win[1:, :-1] + fx * win[1:, 1:]))


def _add(o: np.ndarray, r: int, c: int, f: np.ndarray, n: int, value: np.ndarray) -> None:
    """Adjoint of :func:`_patch`: add ``value`` (N, N) with the bilinear weights."""
    fy, fx = np.float32(f[0]), np.float32(f[1])
    win = o[r : r + n + 1, c : c + n + 1]
    win[:-1, :-1] += (1 - fy) * (1 - fx) * value
    win[:-1, 1:] += (1 - fy) * fx * value
    win[1:, :-1] += fy * (1 - fx) * value
    win[1:, 1:] += fy * fx * value
