"""Benchmark: grouping time and peak memory against the number of scan positions.

Times ``group_indices`` (cKDTree query + upstream-parity neighbour draws) plus the grouped
coordinates (``coords_nn``, ``coords_offsets``, ``coords_relative``) for gridsize 2, K = 4 and
nsamples = n, with n = 1e3 .. 1e6 positions on a jittered raster of constant density. The
grouped diffraction (``B * N**2 * C`` floats) is excluded: it is a copy whose size is fixed by
the data, not by the algorithm.

Run: ``PYTHONPATH=$PWD OMP_NUM_THREADS=1 python bench/bench_grouping.py [--max 1e6]``.
Peak memory is numpy's traced allocations (tracemalloc, a separate run from the timing).
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from ptychodus_pinn_torch.data.grouped import group_coordinates
from ptychodus_pinn_torch.data.grouping import group_indices


def positions(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` positions on a jittered square raster with step 5 px (constant density)."""
    side = int(np.ceil(np.sqrt(n)))
    rs = np.random.RandomState(seed)
    idx = np.arange(n)
    x = (idx % side) * 5.0 + rs.uniform(-1, 1, n)
    y = (idx // side) * 5.0 + rs.uniform(-1, 1, n)
    return x, y


def run_once(x: np.ndarray, y: np.ndarray) -> None:
    nn = group_indices(x, y, gridsize=2, K=4, nsamples=x.shape[0], seed=0)
    group_coordinates(x, y, nn)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max", type=float, default=1e6, help="largest n (default 1e6)")
    args = parser.parse_args()
    sizes = [n for n in (1_000, 10_000, 100_000, 1_000_000) if n <= args.max]
    print(f"{'n':>9} {'seconds':>9} {'peak MiB':>9} {'us/pos':>8} {'bytes/pos':>10}")
    for n in sizes:
        x, y = positions(n)
        run_once(x[:1000], y[:1000])  # warm-up
        start = time.perf_counter()
        run_once(x, y)
        seconds = time.perf_counter() - start
        tracemalloc.start()
        run_once(x, y)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"{n:>9} {seconds:>9.3f} {peak / 2**20:>9.1f} {seconds / n * 1e6:>8.2f} "
              f"{peak / n:>10.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
