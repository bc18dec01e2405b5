"""``pinn-torch simulate``: write a simulated ptychography scan as a contract NPZ file.

Example::

    pinn-torch simulate --out scan.npz --n 64 --object camera --scan spiral --overlap 0.7 \\
        --nphotons 1e6 --seed 0 --object-size 192
"""

from __future__ import annotations

import argparse
from pathlib import Path

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


def run(args: argparse.Namespace) -> int:
    from ptychodus_pinn_torch.data.simulate import simulate_scan

    if args.out.suffix != ".npz":
        raise ValueError(f"--out must name a .npz file, got {str(args.out)!r}; e.g. --out scan.npz")
    raw = simulate_scan(
        object_kind=args.object,
        N=args.n,
        object_shape=(args.object_size, args.object_size),
        scan=args.scan,
        overlap=args.overlap,
        nphotons=args.nphotons,
        seed=args.seed,
        probe=args.probe,
    )
    raw.to_file(args.out)
    print(
        f"wrote {args.out}: {raw.n_positions} patterns of {raw.N}x{raw.N}, object "
        f"{raw.objectGuess.shape if raw.objectGuess is not None else None}, "
        f"step {raw.metadata['step_px']:.2f} px, nphotons {args.nphotons:g}"
    )
    return 0
