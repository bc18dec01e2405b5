"""Autoload of ptychodus-pinn-torch inside the stock ``ptychodus`` command.

A normal (non-editable) ``pip install ptychodus-pinn-torch`` places this module in ptychodus'
own ``ptychodus/plugins`` folder. ptychodus 1.7 imports every module there and calls its
``register_plugins`` as the first step of ``ModelCore.__init__``, before it builds its
reconstructor libraries, which is the moment our hooks must be in place. This module only
installs them; it fails open so that a broken plugin never stops ptychodus from starting.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)


def register_plugins(registry: Any) -> None:
    try:
        from ptychodus_pinn_torch.host.install import install

        install()
    except Exception:  # fail open: ptychodus must start even if our package is broken
        logger.exception("ptychodus-pinn-torch: hooks not installed; ptychodus continues")
