"""Iterative ptychographic solvers on the package's forward model (the physics refinement).

``refine.refine_object`` is the front door; this package holds the parts: the per-batch update
rules (:mod:`.lsqml`: probe-intensity-preconditioned object steps with a least-squares optimal
step, optional probe and position updates; :mod:`.adam`: pixel-wise Adam on the Poisson NLL),
the batch orders (:mod:`.order`) and the shared state (:mod:`.state`). Rules: specs/ENGINE.md
ENG-014, ENG-200..ENG-203.
"""

from ptychodus_pinn_torch.engine.solver.order import ORDERS, batch_order
from ptychodus_pinn_torch.engine.solver.state import NOISE_MODELS, SolverState

__all__ = ["ORDERS", "NOISE_MODELS", "SolverState", "batch_order"]
