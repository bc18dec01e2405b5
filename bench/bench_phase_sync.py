"""Phase synchronization's solver against the number of patches (STITCH-251).

For jittered rasters of side x side patches (8 neighbours each, known offsets, edge noise
``--noise`` radians) it times ``stitch.synchronizing_vector`` with the direct leading
eigenvector (``eigsh``; skipped above ``--direct-max`` patches) and with the block method, and
reports each one's RMS phase error against the truth (after removing the common phase) and the
RMS difference between the two. The overlaps themselves (``pairwise_overlaps``) are linear in
the patches and are not part of this bench.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 .venv/bin/python bench/bench_phase_sync.py \
        [--sides 100 200 316 447] [--direct-max 100000]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from ptychodus_pinn_torch.conformance.helpers import synchronization_problem
from ptychodus_pinn_torch.stitch import synchronizing_vector


def _rms(d: np.ndarray) -> float:
    d = np.angle(np.exp(1j * (d - np.angle(np.mean(np.exp(1j * d))))))
    return float(np.sqrt(np.mean(d**2)))


def run(side: int, noise: float, direct_max: int, seed: int) -> dict[str, float | int | None]:
    matrix, pos, theta = synchronization_problem(side, noise, seed=seed)
    n = len(theta)
    row: dict[str, float | int | None] = {"patches": n}
    t0 = time.perf_counter()
    blocks = synchronizing_vector(matrix, pos, direct_limit=0)
    row["blocks_s"] = round(time.perf_counter() - t0, 2)
    row["blocks_rms_rad"] = round(_rms(np.angle(blocks) - theta), 4)
    row["direct_s"] = row["direct_rms_rad"] = row["difference_rms_rad"] = None
    if n <= direct_max:
        t0 = time.perf_counter()
        direct = synchronizing_vector(matrix, pos, direct_limit=n)
        row["direct_s"] = round(time.perf_counter() - t0, 2)
        row["direct_rms_rad"] = round(_rms(np.angle(direct) - theta), 4)
        row["difference_rms_rad"] = round(_rms(np.angle(blocks * np.conj(direct))), 4)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sides", type=int, nargs="+", default=[100, 200, 316, 447])
    parser.add_argument("--noise", type=float, default=0.05, help="edge phase noise (rad)")
    parser.add_argument("--direct-max", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    for side in args.sides:
        print(json.dumps(run(side, args.noise, args.direct_max, args.seed)), flush=True)


if __name__ == "__main__":
    main()
