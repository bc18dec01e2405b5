"""Peak memory and time of a scan larger than memory: convert, train, reconstruct (DATA-184).

Writes a synthetic scan of ``--patterns`` patterns at N = ``--n`` as an uncompressed NPZ
(streamed, never whole in memory: a tile of simulated patterns repeated over a raster of
positions, so the numbers are about memory and time, not image quality), then runs, each under
``/usr/bin/time -v`` (peak RSS of that process alone):

1. ``pinn-torch convert SCAN.npz --out SCAN.mapped`` (the memory-mapped folder);
2. ``pinn-torch train --train SCAN.mapped`` for one epoch of ``--groups`` groups drawn from all
   patterns, and the same training on a 1,024-pattern in-memory scan (the model's own cost);
3. ``pinn-torch reconstruct --data SCAN.mapped`` over every pattern (or the first
   ``--reconstruct-patterns``; and over the small scan), with the resident memory after loading
   the model, the peak beyond it (MiB and bytes per position) and each stage's time and memory
   (crops above 512 MiB go to a temporary file, ENG-250).

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD .venv/bin/python bench/large_data.py \\
        --workdir /tmp/large --patterns 200000 --groups 2048 [--stages write,convert --keep]
        [--network small] [--reconstruct-patterns 20000]

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


#: ``--network small``: bench_scaling's one-block FNO (~10x cheaper than the cnn), for a
#: reconstruct of every pattern that fits the time at hand (memory does not depend on it)
SMALL_NETWORK = ["--architecture", "fno", "--fno-width", "8", "--fno-blocks", "1",
                 "--fno-modes", "4", "--fno-cnn-blocks", "1"]

#: ``pinn-torch ARGV`` with the resident memory and time of each reconstruct stage recorded
#: (argv[1]: the JSON file to write; the rest: the command line)
_TRACED_CLI = r"""
import json, sys, time
import ptychodus_pinn_torch.data.npz_io as npz_io
import ptychodus_pinn_torch.data.raw_data as raw_data
import ptychodus_pinn_torch.engine.archive as archive
import ptychodus_pinn_torch.engine.inference as inference
import ptychodus_pinn_torch.stitch as stitch
from ptychodus_pinn_torch.cli.main import main

def status_mib(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")

stages = []

def wrap(owner, name):
    original = getattr(owner, name)
    def traced(*args, **kwargs):
        rss, t0 = status_mib("VmRSS"), time.perf_counter()
        result = original(*args, **kwargs)
        stages.append({"stage": name, "seconds": round(time.perf_counter() - t0, 2),
                       "rss_before_mib": round(rss, 1),
                       "rss_after_mib": round(status_mib("VmRSS"), 1),
                       "peak_after_mib": round(status_mib("VmHWM"), 1)})
        return result
    setattr(owner, name, traced)

wrap(archive, "load_archive")
wrap(raw_data.RawData, "from_file")
wrap(raw_data.RawData, "group_indices")
for name in ("_input_scale", "predict_patches", "predict_to_disk", "check_result"):
    wrap(inference, name)
for name in ("synchronize_phases", "phase_offsets", "stitch_to_object_grid",
             "stitch_spilled_to_object_grid"):
    wrap(stitch, name)
wrap(npz_io, "write_npz")
code = main(sys.argv[2:])
with open(sys.argv[1], "w") as fh:
    json.dump({"stages": stages, "peak_mib": round(status_mib("VmHWM"), 1)}, fh, indent=1)
sys.exit(code)
"""


def traced_reconstruct(cli_args: list[str], trace: Path, env: dict[str, str],
                       patterns: int) -> dict[str, object]:
    """``pinn-torch reconstruct`` under /usr/bin/time with each stage's time and memory: the
    resident set after loading the model, the peak beyond it (in MiB and bytes per
    position), and the stages."""
    step = timed([sys.executable, "-c", _TRACED_CLI, str(trace), *cli_args], env)
    traced = json.loads(trace.read_text())
    stages = traced["stages"]
    model = next(s for s in stages if s["stage"] == "load_archive")["rss_after_mib"]
    beyond = traced["peak_mib"] - model
    step.update({"rss_after_model_mib": model, "peak_beyond_model_mib": round(beyond, 1),
                 "bytes_per_position_beyond_model": round(beyond * 2**20 / patterns),
                 "stages": stages})
    return step


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


def _part_of_mapped(source: Path, folder: Path, count: int) -> None:
    """A mapped scan of the first ``count`` patterns of ``source``: the per-position arrays cut,
    ``diff3d.npy`` a memory-mapped copy of the first rows (written in chunks)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    manifest = json.loads((source / "manifest.json").read_text())
    total = int(manifest["n_positions"])
    for entry in manifest["arrays"].values():
        arr = np.load(source / entry["file"], mmap_mode="r")
        if arr.ndim >= 1 and arr.shape[0] == total:
            out = np.lib.format.open_memmap(folder / entry["file"], "w+", arr.dtype,
                                            (count, *arr.shape[1:]))
            for lo in range(0, count, 4096):
                out[lo:min(lo + 4096, count)] = arr[lo:min(lo + 4096, count)]
            out.flush()
            del out
            entry["shape"] = [count, *arr.shape[1:]]
        else:
            shutil.copyfile(source / entry["file"], folder / entry["file"])
    manifest["n_positions"] = count
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))


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
    parser.add_argument("--network", choices=("cnn", "small"), default="cnn",
                        help="the trained generator: cnn (n_filters_scale 1) or small (a "
                        "one-block FNO, ~10x faster; memory does not depend on it)")
    parser.add_argument("--reconstruct-patterns", type=int, default=0, metavar="M",
                        help="reconstruct only the first M patterns of the mapped scan "
                        "(0: all), e.g. to time the cnn on part of a scan")
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
                       "0", *(SMALL_NETWORK if args.network == "small" else [])]
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
        big = mapped
        count = args.patterns
        if 0 < args.reconstruct_patterns < args.patterns:
            big, count = work / "part.mapped", args.reconstruct_patterns
            _part_of_mapped(mapped, big, count)
        for name, data, m in (("reconstruct_small", small, 1024), ("reconstruct", big, count)):
            step = traced_reconstruct(
                ["reconstruct", "--model", str(model), "--data", str(data), "--out",
                 str(work / f"{name}.npz"), "--device", "cpu", "--no-progress"],
                work / f"{name}_trace.json", env, m)
            network_s = sum(float(s["seconds"]) for s in step["stages"]
                            if s["stage"] in ("predict_patches", "predict_to_disk"))
            step.update({"patterns": m, "network": args.network,
                         "ms_per_pattern": round(1e3 * step["seconds"] / m, 2),
                         "network_ms_per_pattern": round(1e3 * network_s / m, 2)})
            record(name, step)
        if big != mapped:
            shutil.rmtree(big, ignore_errors=True)
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
