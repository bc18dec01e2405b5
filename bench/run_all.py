"""Run every benchmark in bench/ one after another and print their tables.

Benchmarks are not tests: they measure speed and memory and report ratios within one run (see
each script's docstring). Usage: ``python bench/run_all.py [name ...]``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    scripts = sorted(p for p in HERE.glob("bench_*.py"))
    if argv:
        scripts = [p for p in scripts if any(name in p.stem for name in argv)]
    status = 0
    for script in scripts:
        print(f"== {script.name}", flush=True)
        status |= subprocess.call([sys.executable, str(script)])
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
