"""``pinn-torch simulate``: write a simulated ptychography scan as a contract NPZ file.

Example::

    pinn-torch simulate --out scan.npz --n 64 --object camera --scan spiral --overlap 0.7 \\
        --nphotons 1e6 --seed 0 --object-size 192

``--beamstop D`` blocks the pixels within D/2 of the pattern centre (``--beamstop-transmission``
T lets a fraction T through) and writes them as ``bad_pixels``. ``--experiments K`` writes K
scans ``OUT_0.npz .. OUT_{K-1}.npz``, each with its own object and probe (multi-scan training
sets). ``--from-experiment SCAN.npz --reconstruction OBJ.npz`` simulates nothing: it writes the
measured scan with supervised labels ``Y`` cut from the reconstruction at the scan positions.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

NAME = "simulate"
HELP = "write a simulated ptychography scan as NPZ"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ptychodus_pinn_torch.data.simulate import OBJECT_KINDS, PROBE_KINDS, SCAN_KINDS

    parser.add_argument("--out", type=Path, required=True, help="output NPZ file")
    parser.add_argument("--n", type=int, default=64, help="diffraction pattern size N (64)")
    parser.add_argument("--object", choices=OBJECT_KINDS, default="phantom",
                        help="object: scikit-image 'camera' or procedural 'phantom' (phantom)")
    parser.add_argument("--object-size", type=int, default=192,
                        help="object side length in pixels (192)")
    parser.add_argument("--scan", choices=SCAN_KINDS, default="raster", help="scan (raster)")
    parser.add_argument("--overlap", type=float, default=0.7,
                        help="linear probe overlap in [0, 0.95] (0.7)")
    parser.add_argument("--probe", choices=PROBE_KINDS, default="pinhole", help="probe (pinhole)")
    parser.add_argument("--nphotons", type=float, default=1e6,
                        help="mean photons per pattern before Poisson noise (1e6)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    parser.add_argument("--beamstop", type=float, default=0.0,
                        help="beamstop diameter in detector pixels (0: none); its pixels are "
                        "written as bad_pixels")
    parser.add_argument("--beamstop-transmission", type=float, default=0.0,
                        help="intensity the beamstop lets through, in [0, 1] (0: opaque)")
    parser.add_argument("--experiments", type=int, default=1,
                        help="write this many scans OUT_0.npz ..., each with its own object "
                        "(seed + i) and probe (1)")
    parser.add_argument("--same-probe", action="store_true",
                        help="with --experiments: keep the standard probe in every scan")
    parser.add_argument("--from-experiment", type=Path, default=None, metavar="SCAN.npz",
                        help="no simulation: label this measured scan with patches of "
                        "--reconstruction (supervised training data)")
    parser.add_argument("--reconstruction", type=Path, default=None, metavar="OBJ.npz",
                        help="with --from-experiment: NPZ holding the object on the scan's grid")
    parser.add_argument("--reconstruction-key", default="object",
                        help="array of --reconstruction to use (object)")


def _label(args: argparse.Namespace) -> int:
    from ptychodus_pinn_torch.data import RawData
    from ptychodus_pinn_torch.data.labels import labels_from_experiment

    if args.reconstruction is None:
        raise ValueError("--from-experiment needs --reconstruction OBJ.npz (the object to cut "
                         "labels from)")
    if not args.reconstruction.is_file():
        raise FileNotFoundError(f"--reconstruction {args.reconstruction}: no such file")
    scan = RawData.from_file(args.from_experiment)
    with np.load(args.reconstruction, allow_pickle=False) as archive:
        if args.reconstruction_key not in archive.files:
            raise ValueError(
                f"--reconstruction {args.reconstruction} has no array "
                f"{args.reconstruction_key!r} (has {sorted(archive.files)}); pick one with "
                "--reconstruction-key"
            )
        obj = np.asarray(archive[args.reconstruction_key])
        origin = np.asarray(archive["origin"], float) if "origin" in archive.files else None
    labeled = labels_from_experiment(
        scan, obj, origin=(0.0, 0.0) if origin is None else (origin[0], origin[1])
    )
    labeled.to_file(args.out)
    print(
        f"wrote {args.out}: {labeled.n_positions} measured patterns of {labeled.N}x{labeled.N} "
        f"with labels Y cut from {args.reconstruction} ({obj.shape[0]}x{obj.shape[1]}, "
        f"amplitude / {labeled.metadata['label_amplitude_scale']:.4g})"
    )
    return 0


def run(args: argparse.Namespace) -> int:
    from ptychodus_pinn_torch.data.experiment_sets import experiment_paths, simulate_experiments

    if args.out.suffix != ".npz":
        raise ValueError(f"--out must name a .npz file, got {str(args.out)!r}; e.g. --out scan.npz")
    if args.from_experiment is not None:
        if args.experiments != 1 or args.beamstop:
            raise ValueError("--from-experiment simulates nothing: drop --experiments/--beamstop")
        return _label(args)
    if args.reconstruction is not None:
        raise ValueError("--reconstruction needs --from-experiment SCAN.npz")
    if args.experiments < 1:
        raise ValueError(f"--experiments must be >= 1, got {args.experiments}")
    if args.same_probe and args.experiments == 1:
        raise ValueError("--same-probe acts only with --experiments K > 1")
    settings = dict(
        N=args.n, object_shape=(args.object_size, args.object_size), scan=args.scan,
        overlap=args.overlap, nphotons=args.nphotons, beamstop_diameter=args.beamstop,
        beamstop_transmission=args.beamstop_transmission,
    )
    if args.experiments == 1:
        from ptychodus_pinn_torch.data.simulate import simulate_scan

        scans = [simulate_scan(args.object, seed=args.seed, probe=args.probe, **settings)]
        paths = [args.out]
    else:
        scans = simulate_experiments(
            args.experiments, seed=args.seed, object_kind=args.object, probe=args.probe,
            vary_probe=not args.same_probe, **settings,
        )
        paths = experiment_paths(args.out, args.experiments)
    for raw, path in zip(scans, paths, strict=True):
        raw.to_file(path)
        stop = "" if raw.bad_pixels is None else f", beamstop {int(raw.bad_pixels.sum())} px"
        print(
            f"wrote {path}: {raw.n_positions} patterns of {raw.N}x{raw.N}, object "
            f"{raw.objectGuess.shape if raw.objectGuess is not None else None}, "
            f"step {raw.metadata['step_px']:.2f} px, nphotons {args.nphotons:g}{stop}"
        )
    return 0
