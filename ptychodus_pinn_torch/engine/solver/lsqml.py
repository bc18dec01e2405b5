"""LSQML-style mini-batch update (Odstrcil et al., Opt. Express 26, 3108 (2018)).

For a batch ``J`` of positions, with exit waves ``psi_j = P O_j`` and far fields
``Psi_j = F psi_j`` (unitary FFT):

1. exit-wave update ``chi_j = F^-1(Psi_j g_j)``:

   - amplitude noise: ``g = a / |Psi| - 1`` (the modulus projection of ePIE minus the wave);
   - Poisson noise: ``g = alpha_j (I / |Psi|² - 1)``, the gradient of the Poisson NLL in
     ``Psi``, with ``alpha_j`` the Newton step of pattern j's NLL along it (two iterations,
     clipped to [0, 1]);

2. object direction, preconditioned by the batch's probe illumination::

       dO = sum_j S_j^T(conj(P) chi_j) / (sum_j S_j^T |P|² + reg * max)

   (``S_j`` the bilinear patch extraction, ``S_j^T`` its adjoint): each pixel moves in
   proportion to how strongly the batch lit it, as in ePIE and LSQML;
3. optional probe direction ``dP = sum_j conj(O_j) chi_j / (sum_j |O_j|² + reg * max)``;
4. steps: the least-squares optimum of ``sum_j ||chi_j - bO P dO_j - bP dP O_j||²`` (one or two
   unknowns, closed form), clipped to [0, ``max_step``];
5. optional position correction: per position the least-squares shift
   ``d = <P dO_j/dr, chi_j> / ||P dO_j/dr||²`` (x and y separately), scaled by
   ``position_step`` and clipped to ``max_shift`` pixels.
"""

from __future__ import annotations

import torch

from ptychodus_pinn_torch.engine.solver.state import NOISE_MODELS, SolverState

_TINY = 1e-12


def _newton_poisson_step(intensity: torch.Tensor, model: torch.Tensor) -> torch.Tensor:
    """Per-pattern step ``alpha`` ``(B, 1, 1)`` of the Poisson NLL along ``u (1 + alpha g)²``.

    intensity, model: ``(B, N, N)`` float32 measured ``I`` and model ``u = |Psi|²`` intensities.
    """
    dims = (-2, -1)
    g = intensity / model - 1.0
    alpha = torch.full((g.shape[0], 1, 1), 0.5, dtype=g.dtype, device=g.device)
    for _ in range(2):
        t = 1.0 + alpha * g
        d1 = (2.0 * model * g * t - 2.0 * intensity * g / t).sum(dims, keepdim=True)
        d2 = (2.0 * model * g * g + 2.0 * intensity * g * g / (t * t)).sum(dims, keepdim=True)
        alpha = (alpha - d1 / d2.clamp_min(_TINY)).clamp(0.0, 1.0)
    return alpha


class LsqmlStep:
    """One LSQML update of a batch, in place on a :class:`SolverState`.

    Args:
        noise: ``"amplitude"`` or ``"poisson"``.
        regularization: ``reg`` of the preconditioners, relative to their maximum (> 0).
        max_step: upper clip of the optimal steps (> 0).
        update_probe: also update the probe (joint optimal steps).
        correct_positions: also move the positions.
        position_step: fraction of the least-squares shift applied (0..1].
        max_shift: largest position change per update, pixels.
    """

    def __init__(
        self,
        *,
        noise: str = "amplitude",
        regularization: float = 0.1,
        max_step: float = 2.0,
        update_probe: bool = False,
        correct_positions: bool = False,
        position_step: float = 0.5,
        max_shift: float = 0.5,
    ) -> None:
        if noise not in NOISE_MODELS:
            raise ValueError(f"refine noise model must be one of {NOISE_MODELS}, got {noise!r}")
        self.noise = noise
        self.reg = float(regularization)
        self.max_step = float(max_step)
        self.update_probe = bool(update_probe)
        self.correct_positions = bool(correct_positions)
        self.position_step = float(position_step)
        self.max_shift = float(max_shift)

    def exit_wave_update(
        self, state: SolverState, idx: torch.Tensor, far: torch.Tensor, model: torch.Tensor
    ) -> torch.Tensor:
        """``chi`` ``(B, N, N)`` complex64 for far fields ``far`` and ``model = |far|²``."""
        amp = state.amplitude[idx]
        if self.noise == "amplitude":
            g = amp / model.sqrt().clamp_min(_TINY) - 1.0
        else:
            intensity = amp * amp
            floor = _TINY + 1e-6 * intensity.mean()
            u = model.clamp_min(floor)
            g = _newton_poisson_step(intensity, u) * (intensity / u - 1.0)
        if state.good is not None:  # PHYS-170: the far field keeps its value on bad pixels
            g = g * state.good
        return torch.fft.ifft2(far * g, norm="ortho")

    def __call__(self, state: SolverState, idx: torch.Tensor) -> float:
        """Update ``state`` with batch ``idx`` (int64 ``(B,)``); returns the batch's summed
        Poisson NLL before the update (measured units)."""
        patches, waves, far = state.far_field(idx)
        model = far.real.square() + far.imag.square()
        nll = float(state.poisson_nll(model, idx))
        chi = self.exit_wave_update(state, idx, far, model)
        del far, model
        probe = state.probe
        sampler = state.sampler
        p_abs2 = probe.real.square() + probe.imag.square()
        illum = sampler.insert(p_abs2.expand(len(idx), -1, -1), idx)
        num = sampler.insert(probe.conj() * chi, idx)
        d_obj = num / (illum + self.reg * illum.max())
        del num, illum
        d_obj_j = sampler.extract(d_obj, idx)
        a_o = probe * d_obj_j  # change of the exit waves per unit object step
        b1 = (a_o.conj() * chi).real.sum(dtype=torch.float64)
        a11 = (a_o.real.square() + a_o.imag.square()).sum(dtype=torch.float64)
        if self.update_probe:
            o_abs2 = (patches.real.square() + patches.imag.square()).sum(0)
            d_probe = (patches.conj() * chi).sum(0) / (o_abs2 + self.reg * o_abs2.max())
            a_p = d_probe * patches
            b2 = (a_p.conj() * chi).real.sum(dtype=torch.float64)
            a22 = (a_p.real.square() + a_p.imag.square()).sum(dtype=torch.float64)
            a12 = (a_o.conj() * a_p).real.sum(dtype=torch.float64)
            beta_o, beta_p = _solve_2x2(a11, a12, a22, b1, b2)
            beta_o = float(beta_o.clamp(0.0, self.max_step))
            beta_p = float(beta_p.clamp(0.0, self.max_step))
        else:
            beta_o = float((b1 / a11.clamp_min(_TINY)).clamp(0.0, self.max_step))
            beta_p = 0.0
        if self.correct_positions:
            self._correct_positions(state, idx, patches, chi)
        state.obj.add_(d_obj, alpha=beta_o)
        if beta_p:
            state.probe = probe + beta_p * d_probe
        return nll

    def _correct_positions(
        self, state: SolverState, idx: torch.Tensor, patches: torch.Tensor, chi: torch.Tensor
    ) -> None:
        """Least-squares shift of each position of the batch along x and y (in place)."""
        dims = (-2, -1)
        shifts = []
        for axis in (-1, -2):  # x: along columns, y: along rows
            grad = torch.zeros_like(patches)
            inner = [slice(None)] * 3
            inner[axis] = slice(1, -1)
            hi = [slice(None)] * 3
            hi[axis] = slice(2, None)
            lo = [slice(None)] * 3
            lo[axis] = slice(None, -2)
            grad[tuple(inner)] = 0.5 * (patches[tuple(hi)] - patches[tuple(lo)])
            a = state.probe * grad
            num = (a.conj() * chi).real.sum(dims)
            den = (a.real.square() + a.imag.square()).sum(dims).clamp_min(_TINY)
            shifts.append(num / den)
        delta = torch.stack(shifts, dim=1).to(torch.float64).cpu() * self.position_step
        delta = delta.clamp(-self.max_shift, self.max_shift)
        cpu_idx = idx.cpu()
        moved = state.centres[cpu_idx] + delta
        state.centres[cpu_idx] = moved
        state.sampler.move(cpu_idx, moved)


def _solve_2x2(
    a11: torch.Tensor, a12: torch.Tensor, a22: torch.Tensor, b1: torch.Tensor, b2: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Solve ``[[a11, a12], [a12, a22]] x = [b1, b2]`` with a small ridge (float64 scalars)."""
    ridge = 1e-6 * (a11 + a22) + _TINY
    d11, d22 = a11 + ridge, a22 + ridge
    det = d11 * d22 - a12 * a12
    return (d22 * b1 - a12 * b2) / det, (d11 * b2 - a12 * b1) / det
