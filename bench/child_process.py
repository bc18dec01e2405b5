"""Run a bench script again in a fresh Python process (its own peak memory, no warm caches)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_script(script: str | Path, args: list[str]) -> str:
    """``python script *args`` with the repository root on ``PYTHONPATH``; returns the last
    line it printed (raises ``CalledProcessError`` when it fails)."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run([sys.executable, str(script), *args], env=env, check=True,
                          capture_output=True, text=True)
    return done.stdout.strip().splitlines()[-1]
