"""``ptychodus-pinn-torch``: the stock ptychodus command with this package's hooks installed.

For editable installs and scripts, where the autoload module in ``ptychodus/plugins`` is
absent. Arguments are ptychodus' own (``-b train -i IN -o OUT``, ``-s settings.ini``, ...).
"""

from __future__ import annotations

import sys


def main() -> int:
    """Install the hooks, then run ``ptychodus.__main__.main()``; returns its exit code."""
    from ptychodus_pinn_torch.host.install import install

    install()
    from ptychodus.__main__ import main as ptychodus_main

    result = ptychodus_main()
    return int(result) if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
