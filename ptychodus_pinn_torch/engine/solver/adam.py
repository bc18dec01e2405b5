"""Pixel-wise Adam on the Poisson NLL (the refinement's first solver, kept as an option).

Every object pixel is a free parameter; each batch takes one Adam step on the mean Poisson NLL
of its patterns, with a cosine-decayed learning rate ``step x scale`` (``scale``: the
|P|²-weighted mean amplitude of the starting object). No preconditioning: it needs many more
epochs than :mod:`.lsqml` (specs/ENGINE.md ENG-201).
"""

from __future__ import annotations

import torch

from ptychodus_pinn_torch.engine.solver.state import SolverState


class AdamStep:
    """One Adam step per batch on ``state.obj`` (its storage is the optimized parameter)."""

    def __init__(self, state: SolverState, *, lr: float, total_steps: int) -> None:
        self.param = torch.nn.Parameter(torch.view_as_real(state.obj).clone())
        state.obj = torch.view_as_complex(self.param.detach())  # shares the parameter's storage
        self.optimizer = torch.optim.Adam([self.param], lr=lr)
        self.schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.optimizer, max(int(total_steps), 1)
        )

    def __call__(self, state: SolverState, idx: torch.Tensor) -> float:
        """Update with batch ``idx``; returns the batch's summed Poisson NLL before the step."""
        self.optimizer.zero_grad(set_to_none=True)
        with torch.enable_grad():
            obj = torch.view_as_complex(self.param)
            far = torch.fft.fft2(state.sampler.extract(obj, idx) * state.probe, norm="ortho")
            model = far.real.square() + far.imag.square()
            total = state.poisson_nll(model, idx)
            (total / model.numel()).backward()
        self.optimizer.step()
        self.schedule.step()
        return float(total)
