"""``pinn-torch import-tf``: convert a model trained by upstream's TensorFlow PtychoPINN.

    pinn-torch import-tf TF_wts.h5.zip --out wts.h5.zip [--nphotons P] [--probe scan.npz]

Reads only the Keras members of the TF archive (``diffraction_to_obj/model.keras``: its
``config.json`` and HDF5 weights; ``model.h5``'s ``intensity_scale``; the probe saved with
``autoencoder/model.keras``' ``ProbeIllumination`` layer), never the ``.dill`` pickles, maps the
kernels onto our ``cnn`` generator and writes our model archive. ``--probe`` (a scan NPZ's
``probeGuess``) overrides the archive's probe, and is needed when the archive saved none (Keras
3 does not save upstream's probe variable; the error says so in one line).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

NAME = "import-tf"
HELP = "convert a TensorFlow PtychoPINN model (wts.h5.zip) into a PyTorch model archive"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("archive", type=Path, help="upstream TF wts.h5.zip (or a .keras file)")
    parser.add_argument("--out", type=Path, required=True, help="our model archive to write")
    parser.add_argument("--probe", type=Path, default=None,
                        help="scan NPZ whose probeGuess the TF model was trained with (default: "
                        "the probe saved in the archive; needed when it saved none)")
    parser.add_argument("--nphotons", type=float, default=None,
                        help="photons per pattern of the TF training: intensity scale "
                        "sqrt(P)/(N/2) (default: the archive's model.h5 intensity_scale)")


def _probe(path: Path) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"--probe {path}: no such file; pass a scan NPZ")
    try:
        with np.load(path, allow_pickle=False) as data:
            if "probeGuess" not in data.files:
                raise ValueError(f"--probe {path} has no probeGuess (has {sorted(data.files)})")
            probe = np.asarray(data["probeGuess"])
    except (OSError, EOFError) as exc:
        raise ValueError(f"--probe {path} is not a readable NPZ file ({exc})") from exc
    if probe.ndim == 3 and probe.shape[0] == 1:
        probe = probe[0]
    if probe.ndim != 2 or not np.all(np.isfinite(probe)):
        raise ValueError(f"--probe {path}: probeGuess must be a finite (N, N) array, got "
                         f"{probe.shape}")
    return probe.astype(np.complex64)


def run(args: argparse.Namespace) -> int:
    if args.out.suffix != ".zip":
        raise ValueError(f"--out {args.out} must end in .zip (e.g. wts.h5.zip)")
    probe = None if args.probe is None else _probe(args.probe)

    from ptychodus_pinn_torch.engine.archive import save_archive
    from ptychodus_pinn_torch.engine.tf_import import import_tf_archive

    bundle = import_tf_archive(args.archive, probe, nphotons=args.nphotons)
    if args.probe is not None:
        bundle.extra["imported_from"]["probe_from"] = f"--probe {args.probe}"
    written = save_archive(args.out, bundle)
    c = bundle.model_config
    print(
        f"imported {args.archive}: N {c.N}, gridsize {c.gridsize}, n_filters_scale "
        f"{c.n_filters_scale}, amp_activation {c.amp_activation}, object_big {c.object_big}, "
        f"probe_big {c.probe_big}, pad_object {c.pad_object}, intensity scale "
        f"{bundle.intensity_scale:.6g}, probe from "
        f"{bundle.extra['imported_from']['probe_from']}; wrote {written}"
    )
    return 0
