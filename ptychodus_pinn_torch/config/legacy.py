"""Moved to :mod:`ptychodus_pinn_torch.config.interop.legacy`; this import path names the same
module (existing code and users import it from here)."""

import sys

from ptychodus_pinn_torch.config.interop import legacy as _moved

sys.modules[__name__] = _moved
