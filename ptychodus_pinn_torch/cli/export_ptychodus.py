"""``pinn-torch export-ptychodus SCAN.npz IN/``: an NPZ scan as ptychodus' batch input folder.

Writes ``IN/settings.ini`` (selecting PtychoPINN-PyTorch / PINN), ``IN/diffraction.h5`` and
``IN/product.h5`` (``host.ptychodus_files``), and with ``--model M.zip`` a copy as
``IN/model.zip``, so that ``ptychodus -b train -i IN -o OUT`` and ``ptychodus -b reconstruct
-i IN -o OUT`` run on it. Needs ptychodus installed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "export-ptychodus"
HELP = "write an NPZ scan as ptychodus' batch input folder (settings.ini, diffraction.h5, ...)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scan", type=Path, help="scan in the NPZ contract (diff3d, xcoords, ...)")
    parser.add_argument("folder", type=Path, help="ptychodus input folder to write (IN)")
    parser.add_argument("--model", type=Path, default=None,
                        help="also copy this trained model to IN/model.zip (batch reconstruct "
                        "reads it there)")
    parser.add_argument("--algorithm", default="ptychopinn-pytorch_pinn",
                        help="[Processing] Algorithm in IN/settings.ini "
                        "(ptychopinn-pytorch_pinn or ptychopinn-pytorch_supervised)")
    parser.add_argument("--energy-ev", type=float, default=10_000.0,
                        help="photon energy in eV (the NPZ has none; 10000)")
    parser.add_argument("--distance-m", type=float, default=2.0,
                        help="detector distance in metres (2.0)")
    parser.add_argument("--detector-pixel-m", type=float, default=75e-6,
                        help="detector pixel size in metres (75e-6)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace settings.ini, diffraction.h5 and product.h5 in the folder")


def run(args: argparse.Namespace) -> int:
    if not args.scan.is_file():
        raise FileNotFoundError(f"{args.scan}: no such file; pass an NPZ scan")
    try:
        import ptychodus  # noqa: F401
    except ImportError:
        raise ValueError("export-ptychodus needs ptychodus: pip install "
                         "ptychodus-pinn-torch[gui] (or ptychodus)") from None
    from ptychodus_pinn_torch.data import RawData
    from ptychodus_pinn_torch.host.ptychodus_files import write_batch_folder

    raw = RawData.from_file(args.scan)
    written = write_batch_folder(
        raw, args.folder, algorithm=args.algorithm, photon_energy_ev=args.energy_ev,
        detector_distance_m=args.distance_m, detector_pixel_m=args.detector_pixel_m,
        model=args.model, overwrite=args.overwrite)
    print(f"wrote {raw.n_positions} patterns of {raw.N}x{raw.N} as ptychodus input: "
          + ", ".join(str(p) for p in written))
    if args.model is None:
        print(f"for `ptychodus -b reconstruct -i {args.folder} -o OUT`, put the trained model at "
              f"{args.folder / 'model.zip'} (or rerun with --model)")
    return 0
