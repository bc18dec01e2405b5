"""Moved to :mod:`ptychodus_pinn_torch.config.interop.params`; this import path names the same
module (existing code and users import it from here)."""

import sys

from ptychodus_pinn_torch.config.interop import params as _moved

sys.modules[__name__] = _moved
