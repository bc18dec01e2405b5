"""``pinn-torch convert``: rewrite a scan as a mapped folder (larger than memory) or an NPZ.

Examples::

    pinn-torch convert scan.npz --out scan.mapped          # memory-mapped folder (DATA-183)
    pinn-torch convert ptychodus_dir/ --out scan.mapped    # diffraction.h5 + product.h5
    pinn-torch convert ptychodus_dir/ --out scan.npz       # the NPZ contract (in memory)

A mapped folder is written pattern chunk by pattern chunk (about 64 MiB at a time), so a scan
larger than memory converts; ``train --train`` and ``reconstruct --data`` read it as memory maps.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

NAME = "convert"
HELP = "convert a scan (NPZ, ptychodus files) to a memory-mapped folder or an NPZ"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", type=Path,
                        help="scan: NPZ contract, ptychodus export NPZ, a folder (or file) of "
                        "ptychodus' diffraction.h5 + product.h5, or a mapped folder")
    parser.add_argument("--out", type=Path, required=True,
                        help="output: a folder (mapped scan), or FILE.npz (the NPZ contract)")
    parser.add_argument("--format", default="auto",
                        help="source format (auto: detected; see pinn-torch convert --formats)")
    parser.add_argument("--formats", action="store_true", help="list the readable formats")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")


def run(args: argparse.Namespace) -> int:
    from ptychodus_pinn_torch.data import RawData
    from ptychodus_pinn_torch.data.mapped import MANIFEST, write_mapped
    from ptychodus_pinn_torch.data.readers import detect_format, reader_names

    if args.formats:
        print("\n".join(reader_names()))
        return 0
    if not args.source.exists():
        raise FileNotFoundError(f"{args.source}: no such file or folder; pass a scan")
    if args.out.resolve() == args.source.resolve():
        raise ValueError("--out must differ from the source; pick another path")
    fmt = detect_format(args.source) if args.format == "auto" else args.format
    t0 = time.perf_counter()
    if args.out.suffix.lower() == ".npz":
        if args.out.exists() and not args.overwrite:
            raise ValueError(f"--out {args.out} exists; pass --overwrite to replace it")
        raw = RawData.from_file(args.source, format=fmt)
        raw.to_file(args.out)
        count = raw.n_positions
    else:
        folder = write_mapped(args.source, args.out, format=fmt, overwrite=args.overwrite)
        count = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["n_positions"]
    print(f"converted {count} patterns ({fmt}) to {args.out} in {time.perf_counter() - t0:.1f}s")
    return 0
