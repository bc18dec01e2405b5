"""Peak memory and time of a scan larger than memory: convert, train, reconstruct (DATA-184).

Writes a synthetic scan of ``--patterns`` patterns at N = ``--n`` as an uncompressed NPZ
(streamed, never whole in memory: a tile of simulated patterns repeated over a raster of
positions, so the numbers are about memory and time, not image quality), then runs, each under
``/usr/bin/time -v`` (peak RSS of that process alone):

1. ``pinn-torch convert SCAN.npz --out SCAN.mapped`` (the memory-mapped folder);
2. ``pinn-torch train --train SCAN.mapped`` for one epoch of ``--groups`` groups drawn from all
   patterns, and the same training on a 1,024-pattern in-memory scan (the model's own cost);
3. ``pinn-torch reconstruct --data SCAN.mapped`` over every pattern (and over the small scan).

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD .venv/bin/python bench/large_data.py \\
        --workdir /tmp/large --patterns 200000 --groups 2048 [--stages write,convert --keep]

Each stage prints its JSON line when it ends and adds it to ``WORKDIR/results.json``;
``--stages`` runs some of them (later stages reuse the files of earlier ones, with ``--keep``).
The big files are deleted at the end unless ``--keep``. A benchmark, not a test: numbers depend
on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def write_big_npz(path: Path, patterns: int, n: int, seed: int = 0) -> None:
    """An NPZ-contract file with ``patterns`` amplitudes ``(M, n, n)`` float32 written chunk by
    chunk into a zip64 member (a tile of simulated patterns repeated); positions on a square
    raster with a 4-pixel step."""
    from ptychodus_pinn_torch.data.simulate import simulate_scan

    small = simulate_scan(N=n, object_shape=(2 * n, 2 * n), seed=seed)
    reps = small.diff3d
    grid = math.ceil(math.sqrt(patterns))
    yy, xx = np.divmod(np.arange(patterns), grid)
    x = (xx * 4.0 + n).astype(np.float64)
    y = (yy * 4.0 + n).astype(np.float64)
    small_arrays = {"xcoords": x, "ycoords": y, "probeGuess": small.probeGuess,
                    "_metadata": np.array(json.dumps({"nphotons": 1e6}))}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, value in small_arrays.items():
            with zf.open(f"{key}.npy", "w") as fh:
                np.lib.format.write_array(fh, np.asarray(value), allow_pickle=False)
        with zf.open("diff3d.npy", "w", force_zip64=True) as fh:
            header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
                      "fortran_order": False, "shape": (patterns, n, n)}
            np.lib.format.write_array_header_2_0(fh, header)
            for lo in range(0, patterns, 4096):
                hi = min(lo + 4096, patterns)
                idx = np.arange(lo, hi) % reps.shape[0]
                fh.write(np.ascontiguousarray(reps[idx], dtype=np.float32).tobytes())


def timed(cmd: list[str], env: dict[str, str]) -> dict[str, float]:
    """Run ``cmd`` under /usr/bin/time -v; its peak RSS (MiB) and wall seconds."""
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], env=env, capture_output=True,
                          text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}")
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    rss = int(match.group(1)) / 1024 if match else float("nan")
    return {"peak_rss_mib": round(rss, 1), "seconds": round(wall, 1)}


STAGES = ("write", "convert", "train", "reconstruct")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--patterns", type=int, default=20000)
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--groups", type=int, default=1024, help="groups trained (one epoch)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--stages", default=",".join(STAGES),
                        help="comma list of write, convert, train, reconstruct (files of "
                        "earlier stages are reused from --workdir)")
    parser.add_argument("--keep", action="store_true", help="keep the big files at the end")
    args = parser.parse_args(argv)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        parser.error(f"unknown stages {unknown}; use {', '.join(STAGES)}")

    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
           "PYTHONPATH": str(ROOT)}
    cli = [sys.executable, "-m", "ptychodus_pinn_torch.cli.main"]
    results_file = work / "results.json"
    results: dict[str, object] = (json.loads(results_file.read_text())
                                  if results_file.is_file() else {})
    results.update({"patterns": args.patterns, "N": args.n,
                    "bytes_float32": args.patterns * args.n * args.n * 4})

    def record(name: str, value: object) -> None:
        results[name] = value
        results_file.write_text(json.dumps(results, indent=2))
        print(json.dumps({name: value}), flush=True)

    src, mapped, small = work / "scan.npz", work / "scan.mapped", work / "small.npz"
    if "write" in stages:
        t0 = time.perf_counter()
        write_big_npz(src, args.patterns, args.n)
        write_big_npz(small, 1024, args.n)
        record("write_npz_seconds", round(time.perf_counter() - t0, 1))
    if "convert" in stages:
        shutil.rmtree(mapped, ignore_errors=True)
        record("convert", timed([*cli, "convert", str(src), "--out", str(mapped)], env))
        if not args.keep:
            src.unlink()  # only the mapped copy is needed from here on
    if "train" in stages:
        train_flags = ["--epochs", "1", "--n-groups", str(args.groups), "--batch-size",
                       str(args.batch_size), "--n-filters-scale", "1", "--device", "cpu",
                       "--no-progress", "--validation-fraction", "0", "--early-stop-patience",
                       "0"]
        for name, data in (("train_model_only", small), ("train", mapped)):
            out = work / f"run_{name}"
            shutil.rmtree(out, ignore_errors=True)
            step = timed([*cli, "train", "--train", str(data), "--out", str(out), *train_flags],
                         env)
            epoch = json.loads((out / "history.json").read_text())["epochs"][0]
            step["epoch_seconds"] = round(epoch["seconds"], 1)
            step["groups_per_second"] = round(args.groups / epoch["seconds"], 1)
            record(name, step)
        record("train_data_cost_mib", round(
            results["train"]["peak_rss_mib"] - results["train_model_only"]["peak_rss_mib"], 1))
    if "reconstruct" in stages:
        model = work / "run_train" / "wts.h5.zip"
        for name, data in (("reconstruct_small", small), ("reconstruct", mapped)):
            record(name, timed([*cli, "reconstruct", "--model", str(model), "--data", str(data),
                                "--out", str(work / f"{name}.npz"), "--device", "cpu"], env))
    if not args.keep:
        for path in (src, mapped):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            elif path.exists():
                path.unlink()
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
