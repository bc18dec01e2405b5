"""Reconstruct time and peak memory against the number of scan positions (N = 64).

For each size a fresh subprocess writes a simulated raster scan (phantom object just large
enough, pinhole probe, overlap 0.7, 1e6 photons; patterns simulated chunk by chunk) as an
uncompressed NPZ, and another fresh subprocess runs ``pinn-torch reconstruct`` on it with an
untrained n_filters_scale-1 model (the weights do not change time or memory) and reports its
wall time and peak resident memory (``VmHWM``), so no size inherits another's memory.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 .venv/bin/python bench/bench_scaling.py --sizes 1000 10000

A benchmark, not a test. On the shared 2-core machine one pattern costs ~10-30 ms of network
time, so 100 000 positions take tens of minutes: ``make bench`` runs 1e3 and 1e4 by default.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from child_process import run_script

CHUNK = 2048


def make_data(positions: int, out: Path, seed: int = 0) -> None:
    """Write a simulated scan with ``positions`` raster points to ``out`` (uncompressed NPZ)."""
    from ptychodus_pinn_torch.data.simulate import (
        make_object,
        make_probe,
        probe_diameter,
        scan_positions,
    )

    n = 64
    probe = make_probe("pinhole", n)
    step = probe_diameter(probe) * 0.3
    side = math.ceil(math.sqrt(positions))
    extent = int(math.ceil(step * (side - 1))) + n + 2
    # a 256x256 phantom tiled: the phantom generator's cost grows with the area squared
    tile = make_object("phantom", (256, 256), seed)
    reps = math.ceil(extent / 256)
    obj = np.tile(tile, (reps, reps))[:extent, :extent]
    x, y = scan_positions("raster", obj.shape, n, step, seed)
    x, y = x[:positions], y[:positions]
    rs = np.random.RandomState(seed)
    diff = np.empty((len(x), n, n), np.float32)
    from ptychodus_pinn_torch.data.patches import extract_patches

    scale = None
    for start in range(0, len(x), CHUNK):
        sl = slice(start, start + CHUNK)
        centres = np.column_stack([x[sl], y[sl]])
        psi = extract_patches(obj, centres, n) * probe
        intensity = np.fft.fftshift(np.abs(np.fft.fft2(psi)) ** 2, axes=(-2, -1))
        if scale is None:  # 1e6 photons per pattern on average, fixed from the first chunk
            scale = 1e6 / float(np.mean(intensity.sum(axis=(1, 2))))
        diff[sl] = np.sqrt(rs.poisson(intensity * scale)).astype(np.float32)
    np.savez(out, diff3d=diff, xcoords=x, ycoords=y, xcoords_start=x, ycoords_start=y,
             probeGuess=probe.astype(np.complex64), objectGuess=obj.astype(np.complex64),
             scan_index=np.zeros(len(x), np.int64))


#: ``--network small``: a one-block FNO of the package's generator registry, ~10x cheaper than
#: the cnn per pattern; the memory per position does not depend on the network (its output is
#: one (N, N) patch per position either way), the time does
SMALL_NETWORK = {"architecture": "fno", "fno_width": 8, "fno_blocks": 1, "fno_modes": 4,
                 "fno_cnn_blocks": 1}


def make_model(data: Path, out: Path, network: str) -> None:
    """An untrained model for the scan's probe (``network``: "cnn" = n_filters_scale 1, or
    "small" = :data:`SMALL_NETWORK`), saved as an archive."""
    import torch

    from ptychodus_pinn_torch.config.spec import ModelConfig
    from ptychodus_pinn_torch.engine.archive import ModelBundle, save_archive
    from ptychodus_pinn_torch.model import build_model

    with np.load(data) as z:
        probe = z["probeGuess"]
    extra = SMALL_NETWORK if network == "small" else {}
    cfg = ModelConfig(N=64, n_filters_scale=1, **extra)
    torch.manual_seed(0)
    model = build_model(cfg, probe=probe, intensity_scale=31.25)
    save_archive(out, ModelBundle(model=model, model_config=cfg, intensity_scale=31.25,
                                  probe=model.probe.detach().numpy()))


def peak_rss_bytes() -> int:
    """This process's peak resident set (VmHWM), bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _status_mb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _trace_stages() -> list[dict[str, object]]:
    """Wrap the reconstruct stages to record the RSS and the peak after each (``--trace``)."""
    import ptychodus_pinn_torch.data.raw_data as raw_data
    import ptychodus_pinn_torch.engine.inference as inference
    import ptychodus_pinn_torch.stitch as stitch

    stages: list[dict[str, object]] = []

    def wrap(owner: object, name: str) -> None:
        original = getattr(owner, name)

        def traced(*args: object, **kwargs: object) -> object:
            before = _status_mb("VmHWM")
            result = original(*args, **kwargs)
            stages.append({"stage": name, "peak_before_mb": round(before, 1),
                           "rss_after_mb": round(_status_mb("VmRSS"), 1),
                           "peak_after_mb": round(_status_mb("VmHWM"), 1)})
            return result

        setattr(owner, name, traced)

    wrap(raw_data.RawData, "from_file")
    for name in ("predict_patches", "predict_to_disk", "check_result"):
        wrap(inference, name)
    for name in ("synchronize_phases", "phase_offsets", "stitch_to_object_grid",
                 "stitch_spilled_to_object_grid"):  # in memory / on disk (ENG-250)
        wrap(stitch, name)
    return stages


def run_reconstruct(data: Path, model: Path, out: Path, threads: int,
                    trace: bool = False) -> dict[str, object]:
    """``pinn-torch reconstruct`` in this process; its wall time and peak RSS (and, with
    ``trace``, the RSS after each stage)."""
    from ptychodus_pinn_torch.cli.main import main

    stages = _trace_stages() if trace else []
    t0 = time.perf_counter()
    code = main(["reconstruct", "--model", str(model), "--data", str(data), "--out", str(out),
                 "--device", "cpu", "--threads", str(threads)])
    if code:
        raise SystemExit(code)
    return {"seconds": time.perf_counter() - t0, "peak_rss_bytes": peak_rss_bytes(),
            "stages": stages}


def _child(args: list[str]) -> str:
    return run_script(__file__, args)


def measure(sizes: list[int], threads: int, workdir: Path,
            network: str = "cnn", trace: bool = False) -> list[dict[str, object]]:
    """One row per size: positions, seconds, peak RSS (fresh subprocesses)."""
    rows = []
    for m in sizes:
        data = workdir / f"scan_{m}.npz"
        model = workdir / "wts.h5.zip"
        _child(["--make-data", str(m), "--data", str(data)])
        if not model.exists():
            _child(["--make-model", "--data", str(data), "--model", str(model),
                    "--network", network])
        result = json.loads(_child(["--reconstruct", "--data", str(data), "--model", str(model),
                                    "--threads", str(threads),
                                    *(["--trace"] if trace else []),
                                    "--out", str(workdir / f"rec_{m}.npz")]))
        row = {"positions": m, "network": network, "seconds": round(result["seconds"], 2),
               "ms_per_position": round(1e3 * result["seconds"] / m, 2),
               "peak_rss_mb": round(result["peak_rss_bytes"] / 2**20, 1),
               "data_mb": round(data.stat().st_size / 2**20, 1)}
        if trace:
            row["stages"] = result["stages"]
        rows.append(row)
        print(json.dumps(row), flush=True)
        data.unlink()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--network", choices=("cnn", "small"), default="cnn",
                        help="cnn (n_filters_scale 1) or small (a one-block FNO, ~10x faster)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    parser.add_argument("--trace", action="store_true",
                        help="record the RSS after each reconstruct stage")
    parser.add_argument("--make-data", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--make-model", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--reconstruct", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.make_data is not None:
        make_data(args.make_data, args.data)
        print("{}")
        return 0
    if args.make_model:
        make_model(args.data, args.model, args.network)
        print("{}")
        return 0
    if args.reconstruct:
        print(json.dumps(run_reconstruct(args.data, args.model, args.out, args.threads,
                                         args.trace)))
        return 0
    with tempfile.TemporaryDirectory(prefix="pinn_scaling_") as tmp:
        rows = measure(args.sizes, args.threads, Path(tmp), args.network, args.trace)
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
