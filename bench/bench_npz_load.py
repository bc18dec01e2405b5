"""Peak memory and time of ``RawData.from_file`` on a plain NPZ scan (DATA-240).

For each variant (member stored or deflated; float32 amplitudes, uint16 or int32 counts, float64
amplitudes) a fresh subprocess writes the NPZ (M patterns of N x N, chunk by chunk so the writer's
memory does not matter), and another fresh subprocess loads it with ``RawData.from_file`` and
reports its resident set before the load, its peak (``VmHWM``) and its resident set after, the
bytes of the returned float32 ``diff3d`` and the seconds. ``extra_mb`` = peak - before - result:
what the load held beyond the one copy it returns.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 .venv/bin/python bench/bench_npz_load.py --positions 100000

A benchmark, not a test (tests/test_npz_load_memory.py asserts the bound at a small size).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from child_process import run_script

VARIANTS = ("stored-float32", "deflated-float32", "stored-uint16", "deflated-uint16",
            "stored-int32", "deflated-int32", "stored-float64", "deflated-float64")
CHUNK = 2048


def _status_mb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def write_scan(path: Path, positions: int, n: int, variant: str, seed: int = 0) -> None:
    """An NPZ scan whose ``diff3d`` is ``variant`` ("stored-float32", "deflated-uint16", ...):
    counts ~ Poisson(50) (intensity dtypes) or their square roots (float dtypes), written member
    by member and pattern chunk by pattern chunk."""
    storage, dtype_name = variant.split("-")
    dtype = np.dtype(dtype_name)
    method = zipfile.ZIP_STORED if storage == "stored" else zipfile.ZIP_DEFLATED
    rs = np.random.RandomState(seed)
    side = int(np.ceil(np.sqrt(positions)))
    x = (np.arange(positions) % side) * 5.0 + n
    y = (np.arange(positions) // side) * 5.0 + n
    probe = np.ones((n, n), np.complex64)
    with zipfile.ZipFile(path, "w", compression=method, compresslevel=1) as zf:
        for key, value in (("xcoords", x), ("ycoords", y), ("probeGuess", probe)):
            with zf.open(f"{key}.npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, value, allow_pickle=False)
        with zf.open("diff3d.npy", "w", force_zip64=True) as fh:
            header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
                      "shape": (positions, n, n)}
            np.lib.format.write_array_header_2_0(fh, header)
            for lo in range(0, positions, CHUNK):
                counts = rs.poisson(50.0, (min(CHUNK, positions - lo), n, n))
                counts[:, 0, 0] += 1  # no all-zero pattern
                chunk = counts.astype(dtype) if dtype.kind in "iu" else np.sqrt(counts)
                fh.write(np.ascontiguousarray(chunk, dtype=dtype).tobytes())


def load(path: Path) -> dict[str, float]:
    """``RawData.from_file(path)`` in this process: memory (MiB) and seconds."""
    from ptychodus_pinn_torch.data.raw_data import RawData

    before = _status_mb("VmRSS")
    t0 = time.perf_counter()
    raw = RawData.from_file(path)
    seconds = time.perf_counter() - t0
    result = raw.diff3d.nbytes / 2**20
    peak = _status_mb("VmHWM")
    return {"seconds": round(seconds, 2), "rss_before_mb": round(before, 1),
            "peak_mb": round(peak, 1), "rss_after_mb": round(_status_mb("VmRSS"), 1),
            "result_mb": round(result, 1), "extra_mb": round(peak - before - result, 1)}


def _child(args: list[str]) -> str:
    return run_script(__file__, args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", type=int, default=20000)
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument("--write", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--variant", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--load", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.write is not None:
        write_scan(args.write, args.positions, args.n, args.variant)
        print("{}")
        return 0
    if args.load is not None:
        print(json.dumps(load(args.load)))
        return 0
    rows = []
    with tempfile.TemporaryDirectory(prefix="pinn_npz_load_") as tmp:
        for variant in args.variants:
            path = Path(tmp) / f"{variant}.npz"
            _child(["--write", str(path), "--positions", str(args.positions), "--n",
                    str(args.n), "--variant", variant])
            row = {"variant": variant, "positions": args.positions, "N": args.n,
                   "file_mb": round(path.stat().st_size / 2**20, 1),
                   **json.loads(_child(["--load", str(path)]))}
            path.unlink()
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
