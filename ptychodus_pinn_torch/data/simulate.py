"""Simulated ptychography scans in PtychoPINN's forward model (written as contract NPZ).

Physics (DATA-020): for each position ``r = (x, y)`` in object pixels the exit wave is
``psi = P * O_r`` where ``O_r`` is the ``N x N`` object patch whose centre pixel ``(N//2, N//2)``
sits at object ``(row=y, col=x)`` (bilinear sub-pixel sampling, :func:`extract_patches`). The
far-field intensity is ``I = fftshift(|fft2(psi)|**2) / N**2`` (unnormalized FFT, so
``sum I = sum |psi|**2``); it is scaled so that the mean total intensity per pattern is
``nphotons``, Poisson-sampled, and stored as ``diff3d = sqrt(counts)`` (float32).

All randomness comes from ``numpy.random.RandomState(seed)`` (stable across numpy versions).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import ndimage

from ptychodus_pinn_torch.data.errors import DataError
from ptychodus_pinn_torch.data.normalize import _check_nphotons
from ptychodus_pinn_torch.data.patches import extract_patches
from ptychodus_pinn_torch.data.raw_data import RawData

ObjectKind = Literal["camera", "phantom"]
ScanKind = Literal["raster", "spiral", "jitter"]
ProbeKind = Literal["pinhole", "defocus"]
OBJECT_KINDS: tuple[str, ...] = ("camera", "phantom")
SCAN_KINDS: tuple[str, ...] = ("raster", "spiral", "jitter")
PROBE_KINDS: tuple[str, ...] = ("pinhole", "defocus")

AMPLITUDE_RANGE = (0.5, 1.0)
PHASE_RANGE = (-np.pi / 2, np.pi / 2)


def _to_range(image: np.ndarray, low: float, high: float) -> np.ndarray:
    """Affinely map ``image`` (float64) onto ``[low, high]``."""
    lo, hi = float(np.min(image)), float(np.max(image))
    unit = (image - lo) / (hi - lo) if hi > lo else np.zeros_like(image)
    return low + (high - low) * unit


def _phantom_layer(shape: tuple[int, int], rs: np.random.RandomState) -> np.ndarray:
    """A procedural image with structure at several scales, values in [0, 1].

    Smooth background (Gaussian-filtered noise, sigma ~ size/8), ellipses with radii from 2 px to
    size/6, and fine texture (sigma 1 px).
    """
    h, w = shape
    size = min(h, w)
    background = ndimage.gaussian_filter(rs.standard_normal(shape), sigma=size / 8, mode="wrap")
    background = _to_range(background, 0.0, 1.0)
    shapes_layer = np.zeros(shape)
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float64)
    n_ellipses = max(8, (h * w) // 600)
    for _ in range(n_ellipses):
        cy, cx = rs.uniform(0, h), rs.uniform(0, w)
        ry = rs.uniform(2.0, size / 6)
        rx = ry * rs.uniform(0.5, 2.0)
        theta = rs.uniform(0, np.pi)
        value = rs.uniform(-1.0, 1.0)
        dy, dx = rows - cy, cols - cx
        u = (dx * np.cos(theta) + dy * np.sin(theta)) / rx
        v = (-dx * np.sin(theta) + dy * np.cos(theta)) / ry
        shapes_layer[u * u + v * v <= 1.0] += value
    shapes_layer = ndimage.gaussian_filter(shapes_layer, sigma=0.7)
    texture = ndimage.gaussian_filter(rs.standard_normal(shape), sigma=1.0)
    combined = (
        0.45 * background
        + 0.45 * _to_range(shapes_layer, 0.0, 1.0)
        + 0.10 * _to_range(texture, 0.0, 1.0)
    )
    return _to_range(combined, 0.0, 1.0)


def _skimage_layer(name: str, shape: tuple[int, int]) -> np.ndarray:
    """A scikit-image test image resized to ``shape``, values in [0, 1]."""
    try:
        from skimage import data as skdata
        from skimage.transform import resize
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise DataError(
            "object 'camera' needs scikit-image (pip install 'ptychodus-pinn-torch[sim]'); "
            "or use object='phantom'"
        ) from exc
    image = getattr(skdata, name)().astype(np.float64)
    if image.ndim == 3:
        image = image.mean(axis=2)
    image = resize(image, shape, order=1, anti_aliasing=True, preserve_range=True)
    return _to_range(image, 0.0, 1.0)


def make_object(
    kind: ObjectKind = "phantom", shape: tuple[int, int] = (192, 192), seed: int = 0
) -> np.ndarray:
    """A complex test object ``A * exp(i * phi)``.

    Args:
        kind: ``"camera"`` (amplitude from ``skimage.data.camera``, phase from
            ``skimage.data.moon``) or ``"phantom"`` (procedural, seeded, no download).
        shape: ``(H, W)`` in pixels.
        seed: seed of the phantom generator.

    Returns:
        ``(H, W)`` complex64 with amplitude in [0.5, 1] and phase in [-pi/2, pi/2].
    """
    if kind not in OBJECT_KINDS:
        raise DataError(f"object kind must be one of {OBJECT_KINDS}, got {kind!r}")
    shape = (int(shape[0]), int(shape[1]))
    if min(shape) < 8:
        raise DataError(f"object shape must be at least 8 x 8 pixels, got {shape}")
    if kind == "camera":
        amp_layer, phase_layer = _skimage_layer("camera", shape), _skimage_layer("moon", shape)
    else:
        rs = np.random.RandomState(seed)
        amp_layer, phase_layer = _phantom_layer(shape, rs), _phantom_layer(shape, rs)
    amplitude = _to_range(amp_layer, *AMPLITUDE_RANGE)
    phase = _to_range(phase_layer, *PHASE_RANGE)
    return (amplitude * np.exp(1j * phase)).astype(np.complex64)


def _propagate(field: np.ndarray, defocus_px2: float) -> np.ndarray:
    """Paraxial (Fresnel) propagation by ``defocus = lambda*z/dx**2`` (pixels squared)."""
    n = field.shape[0]
    f = np.fft.fftfreq(n)
    fy, fx = np.meshgrid(f, f, indexing="ij")
    kernel = np.exp(-1j * np.pi * defocus_px2 * (fx * fx + fy * fy))
    return np.fft.ifft2(np.fft.fft2(field) * kernel)


def make_probe(
    kind: ProbeKind = "pinhole",
    N: int = 64,
    *,
    radius_factor: float = 1.0,
    defocus_factor: float = 1.0,
) -> np.ndarray:
    """A realistic probe for patch size ``N``, mostly confined to the central ``N/2`` region.

    ``"pinhole"``: a disk aperture of radius ``N/8`` (soft edge) propagated a short Fresnel
    distance (Fresnel fringes inside a ~N/4-wide spot). ``"defocus"``: a Fourier-plane pupil of
    radius ``N/8`` (a focused spot) with a quadratic defocus phase.

    Args:
        kind: ``"pinhole"`` or ``"defocus"``.
        N: probe side in pixels.
        radius_factor: multiplies the aperture (pinhole) or pupil (defocus) radius, in
            [0.5, 2]; 1 is the standard probe.
        defocus_factor: multiplies the propagation distance, in [0, 4]; 1 is standard.

    Returns:
        ``(N, N)`` complex64, maximum amplitude 1.
    """
    if kind not in PROBE_KINDS:
        raise DataError(f"probe kind must be one of {PROBE_KINDS}, got {kind!r}")
    if int(N) != N or N < 8:
        raise DataError(f"N must be an integer >= 8, got {N!r}")
    if not (np.isfinite(radius_factor) and 0.5 <= radius_factor <= 2.0):
        raise DataError(f"radius_factor must be in [0.5, 2], got {radius_factor!r}")
    if not (np.isfinite(defocus_factor) and 0.0 <= defocus_factor <= 4.0):
        raise DataError(f"defocus_factor must be in [0, 4], got {defocus_factor!r}")
    rows, cols = np.mgrid[0:N, 0:N].astype(np.float64) - N // 2
    radius = np.hypot(rows, cols)
    if kind == "pinhole":
        r0 = N / 8.0 * radius_factor
        aperture = np.clip(r0 + 0.5 - radius, 0.0, 1.0)
        probe = _propagate(
            aperture.astype(np.complex128), defocus_px2=0.5 * (N / 8.0) ** 2 * defocus_factor
        )
    else:
        f_radius = np.hypot(*np.meshgrid(np.fft.fftfreq(N), np.fft.fftfreq(N), indexing="ij"))
        pupil = (f_radius <= radius_factor / 8.0).astype(np.complex128)
        focus = np.fft.fftshift(np.fft.ifft2(pupil))
        probe = _propagate(focus, defocus_px2=float(N) * defocus_factor)
    probe = probe / np.max(np.abs(probe))
    return probe.astype(np.complex64)


def probe_diameter(probe: np.ndarray) -> float:
    """Diameter (pixels) of the centred disk holding ``1 - 1/e**2`` (86.5 %) of ``|P|**2``."""
    intensity = np.abs(np.asarray(probe)) ** 2
    n = intensity.shape[0]
    rows, cols = np.mgrid[0:n, 0:n].astype(np.float64)
    total = intensity.sum()
    cy = float((rows * intensity).sum() / total)
    cx = float((cols * intensity).sum() / total)
    radius = np.hypot(rows - cy, cols - cx).ravel()
    order = np.argsort(radius, kind="stable")
    cumulative = np.cumsum(intensity.ravel()[order]) / total
    k = int(np.searchsorted(cumulative, 1.0 - np.exp(-2.0)))
    return 2.0 * float(radius[order][min(k, radius.size - 1)])


def scan_positions(
    kind: ScanKind,
    object_shape: tuple[int, int],
    N: int,
    step: float,
    seed: int = 0,
    jitter: float = 0.25,
) -> tuple[np.ndarray, np.ndarray]:
    """Scan positions that keep every ``N x N`` patch (and its bilinear neighbours) inside.

    Valid centres: ``N//2 <= x <= W - N//2 - 1`` (and likewise y), so patch pixels
    ``x - N//2 .. x + N//2 - 1`` plus one interpolation pixel stay in the object.

    Args:
        kind: ``"raster"`` (grid, row-major), ``"jitter"`` (grid plus uniform noise of
            ``+-jitter*step``, clipped to the valid region), ``"spiral"`` (Fermat spiral about the
            centre with the same point density as a raster of this step).
        object_shape: ``(H, W)`` pixels.
        N: patch size.
        step: mean distance between neighbouring positions (pixels).
        seed: seed for ``"jitter"``.

    Returns:
        ``(x, y)`` float64 ``(M,)`` each, object pixels.
    """
    if kind not in SCAN_KINDS:
        raise DataError(f"scan kind must be one of {SCAN_KINDS}, got {kind!r}")
    h, w = int(object_shape[0]), int(object_shape[1])
    lo = float(N // 2)
    hi_x, hi_y = float(w - N // 2 - 1), float(h - N // 2 - 1)
    if hi_x < lo or hi_y < lo:
        raise DataError(
            f"object {object_shape} is too small for N={N} patches; use an object at least "
            f"{N + 1} pixels on each side"
        )
    if not np.isfinite(step) or step < 0.5:
        raise DataError(f"scan step must be >= 0.5 pixel, got {step!r}; lower the overlap")
    if kind == "spiral":
        cx, cy = (lo + hi_x) / 2.0, (lo + hi_y) / 2.0
        c = step / np.sqrt(np.pi)
        max_r = np.hypot(hi_x - cx, hi_y - cy)
        n_max = int(np.ceil((max_r / c) ** 2)) + 1
        n = np.arange(n_max, dtype=np.float64)
        r = c * np.sqrt(n)
        theta = n * np.pi * (3.0 - np.sqrt(5.0))
        x, y = cx + r * np.cos(theta), cy + r * np.sin(theta)
        keep = (x >= lo) & (x <= hi_x) & (y >= lo) & (y <= hi_y)
        return x[keep], y[keep]
    xs = np.arange(lo, hi_x + 1e-9, step)
    ys = np.arange(lo, hi_y + 1e-9, step)
    gy, gx = np.meshgrid(ys, xs, indexing="ij")
    x, y = gx.ravel(), gy.ravel()
    if kind == "jitter":
        rs = np.random.RandomState(seed)
        x = np.clip(x + rs.uniform(-jitter, jitter, x.shape) * step, lo, hi_x)
        y = np.clip(y + rs.uniform(-jitter, jitter, y.shape) * step, lo, hi_y)
    return x, y


def diffract(
    obj: np.ndarray,
    probe: np.ndarray,
    xcoords: np.ndarray,
    ycoords: np.ndarray,
    nphotons: float | None,
    rs: np.random.RandomState | None,
    transmission: np.ndarray | None = None,
) -> np.ndarray:
    """Far-field intensities of ``probe * patch`` at each position (PtychoPINN forward model).

    Args:
        obj: ``(H, W)`` complex object.
        probe: ``(N, N)`` complex probe.
        xcoords, ycoords: ``(M,)`` positions (object pixels).
        nphotons: target mean total counts per pattern; None keeps the raw scale
            ``fftshift(|fft2(psi)|**2) / N**2``.
        rs: Poisson generator; None returns the noise-free (scaled) intensity.
        transmission: ``(N, N)`` detector-plane transmission in [0, 1] (a beamstop), applied
            after the ``nphotons`` scaling and before the Poisson draw; None = 1 everywhere.

    Returns:
        ``(M, N, N)`` float64 intensities (Poisson counts when ``rs`` is given).
    """
    N = probe.shape[0]
    centres = np.column_stack([xcoords, ycoords])
    psi = extract_patches(obj, centres, N, np.complex128) * probe.astype(np.complex128)
    intensity = np.fft.fftshift(np.abs(np.fft.fft2(psi)) ** 2, axes=(-2, -1)) / (N * N)
    if nphotons is not None:
        intensity *= float(nphotons) / float(np.mean(intensity.sum(axis=(1, 2))))
    if transmission is not None:
        intensity *= np.asarray(transmission, dtype=np.float64)
    if rs is not None:
        intensity = rs.poisson(intensity).astype(np.float64)
    return intensity


def beamstop_mask(N: int, diameter: float) -> np.ndarray:
    """``(N, N)`` bool: the pixels within ``diameter / 2`` of the pattern centre
    ``(N//2, N//2)`` (where ``fftshift`` puts zero frequency). ``diameter`` 0 masks nothing."""
    if not (np.isfinite(diameter) and 0.0 <= diameter < N):
        raise DataError(
            f"beamstop diameter must be in [0, N={N}) pixels, got {diameter!r}; e.g. 4"
        )
    rows, cols = np.mgrid[0:N, 0:N].astype(np.float64) - N // 2
    return np.hypot(rows, cols) <= diameter / 2.0 if diameter > 0 else np.zeros((N, N), bool)


def simulate_scan(
    object_kind: ObjectKind = "phantom",
    N: int = 64,
    object_shape: tuple[int, int] = (192, 192),
    scan: ScanKind = "raster",
    overlap: float = 0.7,
    nphotons: float = 1e6,
    seed: int = 0,
    probe: ProbeKind = "pinhole",
    obj: np.ndarray | None = None,
    *,
    probe_guess: np.ndarray | None = None,
    beamstop_diameter: float = 0.0,
    beamstop_transmission: float = 0.0,
) -> RawData:
    """Simulate one scan and return it as :class:`RawData` (objectGuess = the true object).

    Args:
        object_kind: ``"camera"`` or ``"phantom"`` (ignored when ``obj`` is given).
        N: pattern size (pixels).
        object_shape: ``(H, W)`` of the generated object.
        scan: ``"raster"``, ``"spiral"`` or ``"jitter"``.
        overlap: linear overlap of neighbouring probe footprints in [0, 0.95]; the step is
            ``probe_diameter * (1 - overlap)``.
        nphotons: mean total counts per pattern before Poisson noise (> 0).
        seed: seeds the phantom, the jitter and the Poisson noise.
        probe: ``"pinhole"`` or ``"defocus"``.
        obj: an explicit ``(H, W)`` complex object to scan instead of a generated one.
        probe_guess: an explicit ``(N, N)`` complex probe instead of ``make_probe(probe, N)``.
        beamstop_diameter: pixels within this diameter of the pattern centre are blocked
            (:func:`beamstop_mask`; 0 = no beamstop); they are marked in ``bad_pixels``.
        beamstop_transmission: intensity transmission of the beamstop in [0, 1] (0 = opaque,
            the blocked counts are 0); applied before the Poisson draw.

    Returns:
        RawData with ``diff3d = sqrt(counts)`` float32, probe complex64, positions float64,
        ``bad_pixels`` (N, N) bool with a beamstop (else None), and ``metadata`` holding
        nphotons, seed and the simulation settings.
    """
    if not np.isfinite(overlap) or not 0.0 <= overlap <= 0.95:
        raise DataError(f"overlap must be in [0, 0.95], got {overlap!r}")
    _check_nphotons(nphotons)
    if obj is None:
        obj = make_object(object_kind, object_shape, seed)
    else:
        obj = np.asarray(obj).astype(np.complex64)
        if obj.ndim != 2:
            raise DataError(f"obj must be a 2-D complex object, got shape {obj.shape}")
    if not (np.isfinite(beamstop_transmission) and 0.0 <= beamstop_transmission <= 1.0):
        raise DataError(
            f"beamstop_transmission must be in [0, 1], got {beamstop_transmission!r}"
        )
    stop = beamstop_mask(N, beamstop_diameter)
    if probe_guess is None:
        P = make_probe(probe, N)
    else:
        P = np.asarray(probe_guess).astype(np.complex64)
        if P.shape != (N, N):
            raise DataError(f"probe_guess must be ({N}, {N}) complex, got shape {P.shape}")
    step = probe_diameter(P) * (1.0 - overlap)
    x, y = scan_positions(scan, obj.shape, N, step, seed)
    rs = np.random.RandomState(seed)
    transmission = np.where(stop, beamstop_transmission, 1.0) if stop.any() else None
    counts = diffract(obj, P, x, y, nphotons, rs, transmission)
    metadata = {
        "nphotons": float(nphotons),
        "seed": int(seed),
        "object": object_kind,
        "scan": scan,
        "overlap": float(overlap),
        "probe": probe,
        "step_px": float(step),
        "generator": "ptychodus_pinn_torch.data.simulate",
    }
    if stop.any():
        metadata["beamstop_diameter_px"] = float(beamstop_diameter)
        metadata["beamstop_transmission"] = float(beamstop_transmission)
    return RawData(
        x, y, x, y, np.sqrt(counts).astype(np.float32), P, None, obj,
        metadata=metadata, diffraction_kind="amplitude",
        bad_pixels=stop if stop.any() else None,
    )
