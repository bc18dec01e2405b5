"""Physics refinement of a stitched object against the measured patterns (optional, after the
network).

A ptychographic iterative solver on the same far-field model as training (probe x object patch
-> unitary FFT -> intensity, with a fixed gain fitted to the measured total intensity) that
optimizes the object pixels directly, so the overlap between scan positions constrains every
pixel. The default solver is LSQML-style (``engine.solver.lsqml``): mini-batches of positions,
object steps preconditioned by the batch's probe intensity, a least-squares optimal step size,
optionally a probe update and position correction, amplitude-Gaussian or Poisson noise model.
Pixel-wise Adam stays available (``algorithm="adam"``). It starts from the network's object or
from any object (a flat start: ``np.ones``). It is not part of PtychoPINN:
``reconstruct(..., refine_epochs=0)`` (the default) returns the network's object untouched, and
results report both (specs/ENGINE.md ENG-014, ENG-200..ENG-203).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from ptychodus_pinn_torch.engine.solver import ORDERS, SolverState, batch_order
from ptychodus_pinn_torch.engine.solver.adam import AdamStep
from ptychodus_pinn_torch.engine.solver.lsqml import LsqmlStep
from ptychodus_pinn_torch.engine.solver.state import NOISE_MODELS
from ptychodus_pinn_torch.engine.threads import phase_threads
from ptychodus_pinn_torch.physics.object_patches import PatchSampler

#: Initial Adam step relative to the mean amplitude of the illuminated start object.
DEFAULT_STEP = 0.02
#: Patterns per update (LSQML); Adam's default is ADAM_BATCH.
DEFAULT_BATCH = 32
ADAM_BATCH = 64
#: Preconditioner regularization relative to the batch's maximum illumination.
DEFAULT_REGULARIZATION = 0.1
ALGORITHMS = ("lsqml", "adam")


@dataclass(frozen=True)
class RefineEpoch:
    """Progress after one pass over all patterns.

    epoch, epochs: 1-based pass and the number requested; nll: mean Poisson NLL per pixel
    (measured units) of the patterns as each batch met them during the pass; seconds: wall
    time since the refinement started; metrics: what ``metric`` returned for the object after
    the pass (e.g. amplitude/phase SSIM against a known truth), empty without one.
    """

    epoch: int
    epochs: int
    nll: float
    seconds: float
    metrics: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class RefineReport:
    """What a refinement did: epochs run, mean Poisson NLL (per pixel, measured intensity
    units) of all patterns before and after, the fixed intensity gain, the wall time, the
    solver, the per-epoch progress, whether a callback stopped it early, and the refined probe
    (``(N, N)`` complex64, the input probe's scale) and centres (``(M, 2)`` float64) when the
    solver updated them (else None)."""

    epochs: int
    nll_before: float
    nll_after: float
    gain: float
    seconds: float
    algorithm: str = "lsqml"
    history: tuple[RefineEpoch, ...] = ()
    stopped: bool = False
    probe: np.ndarray | None = None
    centres: np.ndarray | None = None


@dataclass(frozen=True)
class RefineOptions:
    """How :func:`refine_object` refines (everything but the epochs and Adam's step); the
    fields are its keyword arguments of the same names and are checked there."""

    algorithm: str = "lsqml"
    batch_size: int | None = None
    order: str = "random"
    noise: str = "amplitude"
    regularization: float = DEFAULT_REGULARIZATION
    update_probe: bool = False
    correct_positions: bool = False
    seed: int = 0

    def as_kwargs(self) -> dict[str, object]:
        """The fields as keyword arguments of :func:`refine_object`."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
        math.isfinite(value) and value > 0
    ):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return str(value)


def _mean_nll(state: SolverState, batch: int) -> float:
    """Mean Poisson NLL per pixel over all patterns (no gradient; one device read)."""
    m, n = state.amplitude.shape[0], state.amplitude.shape[-1]
    total = torch.zeros((), dtype=torch.float64, device=state.obj.device)
    for idx in torch.arange(m, device=state.obj.device).split(batch):
        _, _, far = state.far_field(idx)
        total += state.poisson_nll(far.real.square() + far.imag.square(), idx)
    pixels = n * n if state.good is None else float(state.good.sum())
    return float(total) / max(m * pixels, 1)


def _start_state(
    obj: np.ndarray, amplitudes: np.ndarray, centres: np.ndarray, probe: np.ndarray,
    dev: torch.device, batch: int, bad_pixels: np.ndarray | None = None,
) -> tuple[SolverState, float]:
    """The solver state (gain fitted over the good pixels) and the |P|²-weighted mean amplitude
    of the start. ``bad_pixels``: ``(N, N)`` bool (True = bad), fftshifted like the data."""
    m, n = amplitudes.shape[0], amplitudes.shape[1]
    o = torch.from_numpy(np.array(obj, dtype=np.complex64)).to(dev)
    p = torch.from_numpy(np.asarray(probe).astype(np.complex64)).to(dev)
    centres_t = torch.from_numpy(np.array(centres, dtype=np.float64))
    sampler = PatchSampler(centres_t, obj.shape, n, dev)
    weight = (p.abs() ** 2).to(torch.float64)
    good = None
    if bad_pixels is not None and np.any(bad_pixels):  # PHYS-170
        good = torch.fft.ifftshift(torch.from_numpy(~np.asarray(bad_pixels, bool)).to(
            torch.float32), dim=(-2, -1)).to(dev)
    sums = torch.zeros(2, dtype=torch.float64, device=dev)
    for idx in torch.arange(m, device=dev).split(batch):
        patches = sampler.extract(o, idx)
        far = torch.fft.fft2(patches * p, norm="ortho")
        intensity = far.real.square() + far.imag.square()
        sums[0] += (intensity if good is None else intensity * good).sum(dtype=torch.float64)
        sums[1] += (patches.abs() * weight).sum(dtype=torch.float64)
    predicted, weighted_amp = sums.tolist()
    if not predicted > 0:
        raise ValueError("the starting object and probe predict no intensity; nothing to refine")
    # data once on the device, unshifted (DC at index 0) and in model units
    amplitude = torch.from_numpy(np.asarray(amplitudes, dtype=np.float32)).to(dev)
    amplitude = torch.fft.ifftshift(amplitude, dim=(-2, -1))
    counts = amplitude.square() if good is None else amplitude.square() * good
    gain = float(counts.sum(dtype=torch.float64)) / predicted
    del counts
    amplitude.mul_(1.0 / math.sqrt(gain))
    state = SolverState(
        obj=o, probe=p, centres=centres_t, sampler=sampler, amplitude=amplitude, gain=gain,
        good=good,
    )
    scale = weighted_amp / (m * float(weight.sum()))
    return state, scale


# callers may hold inference mode or no_grad (e.g. around reconstruct); Adam needs autograd
@torch.inference_mode(False)
@torch.no_grad()
def refine_object(
    obj: np.ndarray,
    amplitudes: np.ndarray,
    centres: np.ndarray,
    probe: np.ndarray,
    *,
    epochs: int,
    algorithm: str = "lsqml",
    batch_size: int | None = None,
    order: str = "random",
    noise: str = "amplitude",
    regularization: float = DEFAULT_REGULARIZATION,
    update_probe: bool = False,
    correct_positions: bool = False,
    step: float = DEFAULT_STEP,
    seed: int = 0,
    device: str | torch.device = "cpu",
    on_epoch: Callable[[RefineEpoch], bool | None] | None = None,
    metric: Callable[[np.ndarray], Mapping[str, float]] | None = None,
    threads: int | None = None,
    bad_pixels: np.ndarray | None = None,
) -> tuple[np.ndarray, RefineReport]:
    """Refine ``obj`` so that ``probe * patch`` explains the measured ``amplitudes``.

    Args:
        obj: ``(H, W)`` complex64 starting object (the stitched network output, or a flat
            ``np.ones`` start).
        amplitudes: ``(M, N, N)`` float32 measured diffraction amplitudes (``sqrt`` of counts,
            fftshifted like ``diff3d``), any overall scale.
        centres: ``(M, 2)`` float64 ``[x, y]`` patch centres on ``obj``'s pixel grid.
        probe: ``(N, N)`` complex64 probe (any scale: a fixed gain fitted from the starting
            object absorbs it).
        epochs: passes over all patterns (>= 0; 0 returns ``obj`` unchanged).
        algorithm: ``"lsqml"`` (default: preconditioned steps, ENG-200) or ``"adam"``.
        batch_size: patterns per update (>= 1; default 32 for LSQML, 64 for Adam).
        order: ``"random"`` (default) or ``"compact"`` batches (``engine.solver.order``).
        noise: ``"amplitude"`` (default, Gaussian on the amplitude) or ``"poisson"`` (LSQML).
        regularization: LSQML preconditioner regularization relative to its maximum (> 0).
        update_probe: LSQML also refines the probe (returned in the report).
        correct_positions: LSQML also refines the positions (from the second epoch on;
            returned in the report).
        step: Adam's initial learning rate relative to the |P|²-weighted mean amplitude of
            the start object, cosine-decayed to 0 over the run.
        seed: seeds the order of the patterns.
        device: torch device for the computation.
        on_epoch: called with a :class:`RefineEpoch` after each pass; returning True stops the
            refinement there (the report says ``stopped``).
        metric: called with the ``(H, W)`` complex64 object after each pass; its numbers go
            into ``RefineEpoch.metrics`` (e.g. SSIM against a known truth).
        threads: CPU threads (>= 1); None: ``OMP_NUM_THREADS`` if set, else 1 (ENG-205).
        bad_pixels: ``(N, N)`` bool detector mask (True = bad, fftshifted like
            ``amplitudes``): those pixels carry no data (PHYS-170); None: every pixel counts.

    Returns:
        ``(refined (H, W) complex64, RefineReport)``. Pixels no probe reaches keep their value.

    Raises:
        ValueError: wrong shapes, non-finite input, or bad settings (the message names it).
    """
    with phase_threads("refine", threads):
        return _refine(
            obj, amplitudes, centres, probe, epochs=epochs, algorithm=algorithm,
            batch_size=batch_size, order=order, noise=noise, regularization=regularization,
            update_probe=update_probe, correct_positions=correct_positions, step=step,
            seed=seed, device=device, on_epoch=on_epoch, metric=metric, bad_pixels=bad_pixels,
        )


def _refine(
    obj: np.ndarray,
    amplitudes: np.ndarray,
    centres: np.ndarray,
    probe: np.ndarray,
    *,
    epochs: int,
    algorithm: str,
    batch_size: int | None,
    order: str,
    noise: str,
    regularization: float,
    update_probe: bool,
    correct_positions: bool,
    step: float,
    seed: int,
    device: str | torch.device,
    on_epoch: Callable[[RefineEpoch], bool | None] | None,
    metric: Callable[[np.ndarray], Mapping[str, float]] | None,
    bad_pixels: np.ndarray | None = None,
) -> tuple[np.ndarray, RefineReport]:
    """:func:`refine_object` with its thread count in effect."""
    t0 = time.perf_counter()
    epochs = _check_int("refine epochs", epochs, 0)
    algorithm = _check_choice("refine algorithm", algorithm, ALGORITHMS)
    if batch_size is None:
        batch_size = DEFAULT_BATCH if algorithm == "lsqml" else ADAM_BATCH
    batch_size = _check_int("refine batch_size", batch_size, 1)
    order = _check_choice("refine order", order, ORDERS)
    noise = _check_choice("refine noise model", noise, NOISE_MODELS)
    regularization = _check_positive("refine regularization", regularization)
    step = _check_positive("refine step", step)
    if algorithm == "adam" and (update_probe or correct_positions or noise != "amplitude"):
        raise ValueError(
            "refine algorithm 'adam' updates the object only with the Poisson NLL; use "
            "algorithm='lsqml' for update_probe, correct_positions or a noise model"
        )
    obj = np.asarray(obj)
    amplitudes = np.asarray(amplitudes)
    centres = np.asarray(centres, dtype=np.float64)
    probe = np.asarray(probe)
    if obj.ndim != 2:
        raise ValueError(f"object must be (H, W) complex, got shape {obj.shape}")
    if amplitudes.ndim != 3 or amplitudes.shape[1] != amplitudes.shape[2]:
        raise ValueError(f"amplitudes must be (M, N, N), got shape {amplitudes.shape}")
    m, n = amplitudes.shape[0], amplitudes.shape[1]
    if centres.shape != (m, 2):
        raise ValueError(f"centres must be ({m}, 2) [x, y] for {m} patterns, got {centres.shape}")
    if probe.shape != (n, n):
        raise ValueError(f"probe must be ({n}, {n}) for {n}x{n} patterns, got {probe.shape}")
    if bad_pixels is not None and np.shape(bad_pixels) != (n, n):
        raise ValueError(f"bad_pixels must be ({n}, {n}) like one pattern, got shape "
                         f"{np.shape(bad_pixels)}")
    for name, arr in (("object", obj), ("amplitudes", amplitudes), ("probe", probe)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(
                f"{name} contains NaN or infinite values; refinement needs finite input"
            )
    if epochs == 0 or m == 0:
        report = RefineReport(0, math.nan, math.nan, math.nan, 0.0, algorithm=algorithm)
        return obj.astype(np.complex64), report

    dev = torch.device(device)
    state, scale = _start_state(obj, amplitudes, centres, probe, dev, batch_size, bad_pixels)
    nll_before = _mean_nll(state, batch_size)
    n_batches = math.ceil(m / batch_size)
    updater: AdamStep | LsqmlStep
    if algorithm == "adam":
        updater = AdamStep(state, lr=step * scale, total_steps=epochs * n_batches)
    else:
        updater = LsqmlStep(noise=noise, regularization=regularization, update_probe=update_probe)
    gen = torch.Generator().manual_seed(int(seed))
    history: list[RefineEpoch] = []
    stopped = False
    pixels = n * n if state.good is None else float(state.good.sum())
    for epoch in range(1, epochs + 1):
        if isinstance(updater, LsqmlStep):
            # positions move from the second pass on, once the object has some structure
            updater.correct_positions = correct_positions and epoch > 1
        total = 0.0
        for idx in batch_order(order, centres, batch_size, gen):
            total += updater(state, idx.to(dev))
        metrics = dict(metric(state.obj.cpu().numpy())) if metric is not None else {}
        record = RefineEpoch(epoch, epochs, total / (m * pixels),
                             time.perf_counter() - t0, metrics)
        history.append(record)
        if not math.isfinite(record.nll):
            raise ValueError("refinement diverged (non-finite loss); lower the refine step")
        if on_epoch is not None and on_epoch(record):
            stopped = epoch < epochs
            break
    nll_after = _mean_nll(state, batch_size)
    if not math.isfinite(nll_after):
        raise ValueError("refinement diverged (non-finite loss); lower the refine step")
    root_gain = math.sqrt(state.gain)
    report = RefineReport(
        len(history), nll_before, nll_after, state.gain, time.perf_counter() - t0,
        algorithm=algorithm, history=tuple(history), stopped=stopped,
        probe=(state.probe / root_gain).cpu().numpy().astype(np.complex64)
        if update_probe else None,
        centres=state.centres.numpy().copy() if correct_positions else None,
    )
    return state.obj.cpu().numpy().astype(np.complex64), report
