"""Stitching time and peak memory against the number of scan positions (1e3 ... 1e6).

Each row runs in a fresh subprocess so that its peak memory is its own. Patches are N x N
complex64 (N=64 by default) and are produced lazily, one chunk at a time: a fixed bank of
``chunk`` random patches is reused for every chunk with new positions (patch content does not
change the cost), so 1e6 positions never sit in memory at once. Positions are a jittered raster
with a 4 px step, so the object grid grows with n (constant scan density) and the canvas is
``(sqrt(n) * 4 + N)^2`` pixels.

Modes:
  grid        ObjectGridAccumulator / stitch_to_object_grid onto the object grid (crop=--crop)
  reassemble  reassemble_position on an in-memory (n, M, M, 1) array (M=--crop; numpy in/out)

Columns: n; canvas side (px); wall and CPU seconds of the process, stitching only (on a shared
machine the CPU column is the reliable one); peak MiB (max RSS sampled every 2 ms while
stitching, minus the RSS after imports and setup; CUDA: torch.cuda.max_memory_allocated); the
canvas' own MiB (the 12 bytes/pixel accumulator: it is the output and grows with the scanned
area); CPU microseconds per position. Linear scaling shows as a flat us/pos column; bounded
memory shows as a flat peak with ``--area`` (fixed canvas).

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 .venv/bin/python bench/bench_stitch.py
    PYTHONPATH=$PWD .venv/bin/python bench/bench_stitch.py --mode reassemble --max-n 100000
    PYTHONPATH=$PWD .venv/bin/python bench/bench_stitch.py --crop 64 --max-n 100000
    PYTHONPATH=$PWD .venv/bin/python bench/bench_stitch.py --area 1000   # fixed canvas
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import threading
import time

import numpy as np


def _rss_mib() -> float:
    """Current resident set size (MiB), from /proc on Linux."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * resource.getpagesize() / 2**20


class _PeakRss:
    """Samples the RSS every 2 ms in a thread; ``peak`` is the max seen while running."""

    def __init__(self) -> None:
        self.peak = _rss_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_mib())
            time.sleep(0.002)

    def __enter__(self) -> _PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mib())


def _positions(
    n: int, step: float, seed: int, N: int, area: int | None = None
) -> tuple[np.ndarray, np.ndarray, int]:
    if area is not None:  # fixed object: uniform random positions in an area x area square
        rng = np.random.default_rng(seed)
        return (N / 2 + rng.uniform(0, area, n), N / 2 + rng.uniform(0, area, n), area + N + 2)
    side = math.ceil(math.sqrt(n))
    k = np.arange(n)
    rng = np.random.default_rng(seed)
    x = N / 2 + step * (k % side) + rng.uniform(-0.5, 0.5, n)
    y = N / 2 + step * (k // side) + rng.uniform(-0.5, 0.5, n)
    size = int(step * side + N + 2)
    return x, y, size


def run_one(
    n: int, mode: str, N: int, crop: int, chunk: int, device: str, area: int | None
) -> dict[str, float]:
    import torch

    from ptychodus_pinn_torch.stitch import ObjectGridAccumulator, reassemble_position

    torch.manual_seed(0)
    x, y, size = _positions(n, 4.0, 0, N, area)
    if mode == "grid":
        bank = torch.randn(chunk, N, N, dtype=torch.complex64, device=device)
        base = _rss_mib()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        with _PeakRss() as rss:
            t0, c0 = time.perf_counter(), time.process_time()
            acc = ObjectGridAccumulator((size, size), N, crop=crop, device=device)
            for start in range(0, n, chunk):
                stop = min(n, start + chunk)
                acc.add(bank[: stop - start], x[start:stop], y[start:stop])
            obj, cov = acc.result()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        assert obj.shape == (size, size) and float(cov.max()) > 0
    else:
        rng = np.random.default_rng(1)
        patches = np.empty((n, crop, crop, 1), np.complex64)
        rng.standard_normal(dtype=np.float32, out=patches.view(np.float32))
        offsets = np.stack([x, y], axis=1).reshape(n, 1, 2, 1)
        base = _rss_mib()
        with _PeakRss() as rss:
            t0, c0 = time.perf_counter(), time.process_time()
            out = reassemble_position(patches, offsets, M=crop)
            seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        assert out.ndim == 3
        size = out.shape[0]
    peak = rss.peak - base
    if device.startswith("cuda"):
        peak = torch.cuda.max_memory_allocated() / 2**20
    return {"n": n, "seconds": seconds, "cpu": cpu, "peak_mib": max(peak, 0.0), "canvas": size,
            "canvas_mib": 12 * size * size / 2**20}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mode", choices=["grid", "reassemble"], default="grid")
    ap.add_argument("--N", type=int, default=64, help="patch size (grid mode)")
    ap.add_argument("--crop", type=int, default=20, help="central crop kept (M), as ptychodus")
    ap.add_argument("--chunk", type=int, default=4096, help="patches generated per chunk")
    ap.add_argument("--max-n", type=int, default=1_000_000)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--area", type=int, help="fixed object side (px) instead of a growing raster")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child process: one row
    args = ap.parse_args(argv)
    if args.one is not None:
        row = run_one(args.one, args.mode, args.N, args.crop, args.chunk, args.device, args.area)
        print(json.dumps(row))
        return 0
    print(f"mode={args.mode} N={args.N} crop/M={args.crop} chunk={args.chunk} "
          f"device={args.device} area={args.area or 'raster, 4 px step'}")
    print(f"{'n':>9} {'canvas':>7} {'wall s':>8} {'cpu s':>8} {'peak MiB':>9} "
          f"{'canvas MiB':>10} {'cpu us/pos':>10}")
    for n in (1_000, 10_000, 100_000, 1_000_000):
        if n > args.max_n:
            break
        cmd = [sys.executable, __file__, "--one", str(n), "--mode", args.mode, "--N",
               str(args.N), "--crop", str(args.crop), "--chunk", str(args.chunk),
               "--device", args.device] + ([] if args.area is None else ["--area", str(args.area)])
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            print(f"{n:>9} failed: {out.stderr.strip().splitlines()[-1:]}")
            return 1
        row = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{n:>9} {row['canvas']:>7} {row['seconds']:>8.2f} {row['cpu']:>8.2f} "
              f"{row['peak_mib']:>9.1f} {row['canvas_mib']:>10.1f} {1e6 * row['cpu'] / n:>10.2f}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
