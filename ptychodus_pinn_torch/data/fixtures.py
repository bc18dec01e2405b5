"""Small committed datasets for tests and demos, regenerated bit-identically.

Regenerate with::

    PYTHONPATH=$PWD python -m ptychodus_pinn_torch.data.fixtures --out fixtures

It writes (N = 64, phantom objects, pinhole probe, 1e6 photons per pattern):

- ``train.npz``: 256 raster positions over phantom seed 1 (192 x 192);
- ``test.npz``: 256 jittered positions over a different phantom (seed 2);
- ``ptychodus_export.npz``: 64 positions in ptychodus 1.7's export layout (uint16 intensity in
  ``diff3d``, ``(1, N, N)`` complex128 probe, ``bad_pixels``, uncompressed like
  ``numpy.savez``), for the conversion path of ``RawData.from_file``.

Every random draw is seeded and files are written with fixed zip timestamps, so running the
command twice gives the same bytes (checked by the tests against the committed files).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ptychodus_pinn_torch.data.npz_io import write_npz
from ptychodus_pinn_torch.data.simulate import (
    diffract,
    make_object,
    make_probe,
    probe_diameter,
    scan_positions,
    simulate_scan,
)

FIXTURE_N = 64
FIXTURE_OBJECT_SHAPE = (192, 192)
FIXTURE_NPHOTONS = 1e6
FIXTURE_OVERLAP = 0.5
FIXTURE_FILES: tuple[str, ...] = ("train.npz", "test.npz", "ptychodus_export.npz")


def _ptychodus_export(path: Path) -> None:
    """Write a small file in ptychodus 1.7's ``save_ptychopinn_training_data`` layout."""
    N = FIXTURE_N
    obj = make_object("phantom", (128, 128), seed=3)
    probe = make_probe("pinhole", N)
    step = probe_diameter(probe) * (1.0 - FIXTURE_OVERLAP)
    x, y = scan_positions("raster", obj.shape, N, step)
    x, y = x[:64], y[:64]
    counts = diffract(obj, probe, x, y, FIXTURE_NPHOTONS, np.random.RandomState(3))
    bad = np.zeros((N, N), dtype=bool)
    bad[5, 7] = bad[40, 21] = True
    write_npz(
        path,
        {
            "xcoords": x,
            "ycoords": y,
            "xcoords_start": x,
            "ycoords_start": y,
            "diff3d": counts.astype(np.uint16),
            "bad_pixels": bad,
            "probeGuess": probe[None].astype(np.complex128),
            "objectGuess": obj.astype(np.complex128),
            "scan_index": np.zeros(x.shape[0], dtype=np.int64),
        },
        compress=False,
    )


def write_fixtures(out_dir: str | Path) -> list[Path]:
    """Write the fixture files into ``out_dir`` and return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train = simulate_scan(
        "phantom", N=FIXTURE_N, object_shape=FIXTURE_OBJECT_SHAPE, scan="raster",
        overlap=FIXTURE_OVERLAP, nphotons=FIXTURE_NPHOTONS, seed=1, probe="pinhole",
    )
    test = simulate_scan(
        "phantom", N=FIXTURE_N, object_shape=FIXTURE_OBJECT_SHAPE, scan="jitter",
        overlap=FIXTURE_OVERLAP, nphotons=FIXTURE_NPHOTONS, seed=2, probe="pinhole",
    )
    train.to_file(out / "train.npz")
    test.to_file(out / "test.npz")
    _ptychodus_export(out / "ptychodus_export.npz")
    return [out / name for name in FIXTURE_FILES]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="write the test fixture NPZ files")
    parser.add_argument("--out", default="fixtures", help="output folder (default: fixtures)")
    args = parser.parse_args(argv)
    for path in write_fixtures(args.out):
        print(f"{path} {path.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
