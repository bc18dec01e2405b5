"""ptychodus-pinn-torch: a PyTorch PtychoPINN reconstructor for ptychodus.

Importing this package is cheap: it imports neither torch nor ptychodus. The layers are
``config`` (stdlib only), ``data`` (numpy/scipy), ``physics``, ``model``, ``stitch``, ``engine``
(torch), ``host`` (ptychodus), ``cli`` and ``conformance``; see specs/ for the contract.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
