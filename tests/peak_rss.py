"""Run ``pinn-torch`` in a child process and read its peak resident memory (reliability tests).

The child reports ``VmHWM`` of ``/proc/self/status``: the peak RSS of its own process image.
(``ru_maxrss`` would report the forking pytest process's peak, which Linux carries across exec.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

_CHILD = (
    "import sys\n"
    "from ptychodus_pinn_torch.cli.main import main\n"
    "rc = main(sys.argv[1:])\n"
    "hwm = [ln for ln in open('/proc/self/status') if ln.startswith('VmHWM')][0]\n"
    "print('PEAK_RSS_KB', hwm.split()[1], file=sys.stderr)\n"
    "sys.exit(rc)\n"
)


def run_cli_peak_rss(argv: list[str], timeout: float = 120) -> tuple[int, list[str], int]:
    """``(exit status, stderr lines without the measurement, peak RSS in bytes)`` of
    ``pinn-torch ARGV`` in a fresh interpreter (skips the test where /proc is missing)."""
    if not Path("/proc/self/status").is_file():
        pytest.skip("the peak RSS is read from Linux' /proc/self/status")
    proc = subprocess.run([sys.executable, "-c", _CHILD, *argv], capture_output=True,
                          text=True, env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=timeout)
    lines = proc.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("PEAK_RSS_KB"), proc.stderr
    return proc.returncode, lines[:-1], int(lines[-1].split()[1]) * 1024
