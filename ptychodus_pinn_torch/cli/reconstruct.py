"""``pinn-torch reconstruct``: reconstruct an object from an NPZ scan with a trained model.

Writes OUT.npz with ``object`` ((H, W) complex64 on the data's ``objectGuess`` pixel grid) and
``coverage`` ((H, W) float32), plus ``canvas`` with ``--canvas`` (upstream reassemble_position,
M = 20) and ``origin`` ([x0, y0] of pixel (0, 0)); ``--png`` adds a picture of amplitude and phase.
``--refine-epochs K`` refines the stitched object with the physics model (``engine.refine``) and
also stores the network's own result as ``network_object`` (and, with ``--png X.png``, draws it
as ``X_network.png``). When the data's ``objectGuess`` is not constant it is taken as the truth
(simulated scans carry it; ``--no-truth`` turns this off): ``--png X.png`` then also writes
``X_vs_truth.png``, truth, network and refined object side by side (scanned region, aligned by
``ptychodus_pinn_torch.eval``) with amplitude and phase SSIM in the titles.
``--config FILE`` (JSON or YAML) holds the same settings by option name (``{"batch_size": 8,
"refine_epochs": 2, "model": "...", ...}``), or a TF-style spec ``InferenceConfig`` (its
``model_path``, ``test_data_file``, ``output_dir``, sampling fields and ``model`` translated by
:mod:`.reconstruct_config`, CFG-260); options given on the command line override it, and the
settings used are written next to the output as ``OUT.config.json`` (CFG-111).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ptychodus_pinn_torch.cli.config_file import apply_settings_file, resolved_settings, track_given

NAME = "reconstruct"
HELP = "reconstruct an object from NPZ data with a trained model"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", default=None,
        help="wts.h5.zip (or its folder), or an MLflow model runs:/RUN_ID[/model/wts.h5.zip]",
    )
    parser.add_argument("--mlflow-run", default=None, metavar="RUN_ID",
                        help="load the model logged by pinn-torch train --mlflow in this run")
    parser.add_argument("--mlflow-uri", default=None,
                        help="MLflow tracking URI or folder of --mlflow-run / runs:/ (./mlruns)")
    parser.add_argument("--config", type=Path, default=None, metavar="FILE",
                        help="JSON or YAML file of these settings by option name (batch_size, "
                        "refine_epochs, model, data, ...); options given here override it")
    parser.add_argument("--data", type=Path, default=None,
                        help="scan to reconstruct (NPZ, ptychodus files, mapped folder)")
    parser.add_argument("--out", type=Path, default=None, help="output NPZ")
    parser.add_argument("--png", type=Path, default=None,
                        help="also write amplitude/phase PNG (and X_vs_truth.png when the data's "
                        "objectGuess is a truth)")
    parser.add_argument("--no-truth", action="store_true",
                        help="do not take the data's objectGuess as the truth for --png")
    parser.add_argument("--batch-size", type=int, default=64, help="groups per network call (64)")
    parser.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda")
    parser.add_argument("--canvas", action="store_true", help="also store the M=20 canvas")
    parser.add_argument(
        "--refine-epochs",
        type=int,
        default=0,
        help="then refine the object for this many passes over the patterns with the physics "
        "model alone (not the network; 0 = off, 10 is typical); OUT.npz also keeps "
        "network_object and --png X.png also writes X_network.png",
    )
    parser.add_argument(
        "--keep-empty-frames", action="store_true",
        help="refuse a scan with all-zero diffraction frames (default: drop them with a warning "
        "naming how many and which)",
    )
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress of the network pass on stderr")
    parser.add_argument(
        "--memory-budget", default=None, metavar="SIZE",
        help="most memory the scan's arrays may take, e.g. 24G (default: half of the machine's "
        "memory, or $PINN_TORCH_MEMORY_BUDGET); a larger scan is refused before it is read",
    )
    parser.add_argument(
        "--patch-memory", default="512M", metavar="SIZE",
        help="most memory the kept crops of the patches may take (512M, ~58,000 positions at "
        "N = 64); above it they go to a temporary file in --spill-dir, with the same object "
        "(0: always on disk)",
    )
    parser.add_argument(
        "--spill-dir", type=Path, default=None, metavar="DIR",
        help="folder of that temporary file (default: the folder of --out); it needs ~9 KB "
        "per position at N = 64 free, checked before the network runs; the file is deleted",
    )
    parser.add_argument(
        "--refine-algorithm", choices=("lsqml", "adam"), default="lsqml",
        help="refinement solver: lsqml (probe-intensity preconditioned steps, default) or adam",
    )
    parser.add_argument(
        "--refine-noise", choices=("amplitude", "poisson"), default="amplitude",
        help="noise model of the lsqml refinement (default amplitude)",
    )
    parser.add_argument("--refine-probe", action="store_true",
                        help="the lsqml refinement also refines the probe")
    parser.add_argument("--refine-positions", action="store_true",
                        help="the lsqml refinement also corrects the scan positions")
    parser.add_argument(
        "--channels-last", choices=("auto", "on", "off"), default="auto",
        help="channels-last memory format for the network (auto: on for the CPU, where it "
        "measured ~2x faster)",
    )
    parser.add_argument("--bf16", action="store_true",
                        help="bfloat16 autocast of the network pass (fast only on CPUs and "
                        "GPUs with bf16 units)")
    parser.add_argument(
        "--threads", type=int, default=0,
        help="CPU threads torch uses (0: $OMP_NUM_THREADS if set, else torch's default for "
        "the network and 1 for the refinement)",
    )
    parser.add_argument("--n-subsample", type=int, default=None, metavar="M",
                        help="reconstruct from M randomly drawn scan positions (upstream "
                        "InferenceConfig.n_subsample; default: all)")
    parser.add_argument("--subsample-seed", type=int, default=None,
                        help="seed of the --n-subsample draw (InferenceConfig.subsample_seed)")
    parser.add_argument("--neighbor-count", type=int, default=None, metavar="K",
                        help="K nearest neighbours of a group at gridsize > 1 (default: the "
                        "model's training value, else 4)")
    track_given(parser)
    parser.set_defaults(settings_options=parser)


def _settings_options(args: argparse.Namespace) -> dict[str, argparse.Action]:
    parser: argparse.ArgumentParser = args.settings_options
    return {a.dest: a for a in parser._actions
            if a.option_strings and a.dest not in ("config", "help")}


def run(args: argparse.Namespace) -> int:
    model_fields: dict[str, Any] = {}  # ModelConfig fields a spec InferenceConfig gave
    if args.config is not None:
        from ptychodus_pinn_torch.cli.config_file import read_document
        from ptychodus_pinn_torch.cli.reconstruct_config import (
            apply_inference_config,
            inference_section,
        )

        section = inference_section(read_document(args.config))
        if section is None:
            apply_settings_file(args.settings_options, args, args.config)
        else:
            model_fields = apply_inference_config(args, section, args.config)
    for flag, value in (("--data", args.data), ("--out", args.out)):
        if value is None:
            raise ValueError(f"{flag} is required (on the command line or in --config FILE)")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.refine_epochs < 0:
        raise ValueError(f"--refine-epochs must be >= 0, got {args.refine_epochs}")
    if args.threads < 0:
        raise ValueError(f"--threads must be >= 0 (0: the default), got {args.threads}")
    for flag, value in (("--n-subsample", args.n_subsample),
                        ("--neighbor-count", args.neighbor_count)):
        if value is not None and value < 1:
            raise ValueError(f"{flag} must be >= 1, got {value}")
    if args.subsample_seed is not None and args.n_subsample is None:
        raise ValueError("--subsample-seed acts only with --n-subsample M; add it or drop the "
                         "seed")
    if not args.data.exists():
        raise FileNotFoundError(f"--data {args.data}: no such file or folder; pass a scan")
    if (args.model is None) == (args.mlflow_run is None):
        raise ValueError("pass exactly one of --model wts.h5.zip (or runs:/RUN_ID) and "
                         "--mlflow-run RUN_ID")
    from_run = args.mlflow_run is not None or str(args.model).startswith("runs:/")
    if not from_run and not Path(args.model).exists():
        raise FileNotFoundError(f"--model {args.model}: no such file; pass DIR/wts.h5.zip")
    if args.out.suffix.lower() != ".npz":
        raise ValueError(f"--out {args.out} must end in .npz")
    if args.png is not None and args.png.suffix.lower() != ".png":
        raise ValueError(f"--png {args.png} must end in .png")

    from ptychodus_pinn_torch.cli.reconstruct_progress import ReconstructProgress
    from ptychodus_pinn_torch.data import RawData
    from ptychodus_pinn_torch.data.atomic_file import atomic_write
    from ptychodus_pinn_torch.data.npz_io import write_npz
    from ptychodus_pinn_torch.data.npz_limits import (
        MEMORY_BUDGET_ENV,
        DataLimits,
        check_npz_file,
        parse_bytes,
    )
    from ptychodus_pinn_torch.engine.archive import load_archive
    from ptychodus_pinn_torch.engine.inference import reconstruct
    from ptychodus_pinn_torch.engine.refine import RefineOptions
    from ptychodus_pinn_torch.engine.reporting import plot_object

    limits = DataLimits.default() if args.memory_budget is None else DataLimits(
        memory_budget=parse_bytes(args.memory_budget, "--memory-budget"))
    if args.memory_budget is not None:
        os.environ[MEMORY_BUDGET_ENV] = str(limits.memory_budget)  # for the reader below
    if from_run:  # downloaded, then the same safe loader (ENG-181)
        from ptychodus_pinn_torch.engine.mlflow_tracking import (
            load_model_from_run,
            parse_runs_uri,
        )

        run_id, member = ((args.mlflow_run, "model/wts.h5.zip") if args.mlflow_run is not None
                          else parse_runs_uri(str(args.model)))
        bundle = load_model_from_run(run_id, path=member, uri=args.mlflow_uri)
    else:
        bundle = load_archive(args.model)
    if model_fields:  # CFG-260: the file's ModelConfig fields must be the archive's
        from ptychodus_pinn_torch.cli.reconstruct_config import check_model_fields

        check_model_fields(model_fields, bundle.model_config, args.config, str(args.model))
    if zipfile.is_zipfile(args.data):  # declared sizes and N before anything is inflated
        check_npz_file(args.data, limits, expected_n=bundle.N)
    patch_memory = (0 if str(args.patch_memory).strip() == "0"
                    else parse_bytes(str(args.patch_memory), "--patch-memory"))
    spill_dir = args.spill_dir if args.spill_dir is not None else args.out.parent
    if args.spill_dir is None:
        spill_dir.mkdir(parents=True, exist_ok=True)  # where OUT.npz goes anyway
    # DATA-241: an NPZ's uncompressed float32 patterns stay memory-mapped (read, never written)
    data = RawData.from_file(args.data, drop_empty_frames=not args.keep_empty_frames,
                             map_patterns=True)
    if args.n_subsample is not None:
        from ptychodus_pinn_torch.engine.session import subsample

        data = subsample(data, args.n_subsample, args.subsample_seed)
    truth = None if args.no_truth else getattr(data, "objectGuess", None)
    if truth is not None and not _is_structured(truth):
        truth = None
    result = reconstruct(
        bundle, data, batch_size=args.batch_size, device=args.device, canvas=args.canvas,
        refine_epochs=args.refine_epochs, keep_patches=False, threads=args.threads or None,
        on_refine_epoch=_print_refine_epoch,
        refine_metric=None if truth is None else _truth_metric(data, truth),
        on_batch=ReconstructProgress(enabled=not args.no_progress),
        channels_last={"auto": None, "on": True, "off": False}[args.channels_last],
        bf16=args.bf16, neighbor_count=args.neighbor_count,
        patch_memory=patch_memory, spill_dir=spill_dir,
        refine_options=RefineOptions(
            algorithm=args.refine_algorithm, noise=args.refine_noise,
            update_probe=args.refine_probe, correct_positions=args.refine_positions,
        ),
    )
    arrays: dict[str, np.ndarray] = {
        "object": result.object.astype(np.complex64),
        "coverage": result.coverage.astype(np.float32),
        "origin": np.asarray(result.origin, dtype=np.float64),
    }
    if result.canvas is not None:
        arrays["canvas"] = result.canvas.astype(np.complex64)
    if result.network_object is not None:
        arrays["network_object"] = result.network_object
    write_npz(args.out, arrays)  # atomic
    settings_path = args.out.with_name(f"{args.out.stem}.config.json")
    with atomic_write(settings_path) as fh:  # CFG-111: the settings used, as --config reads them
        fh.write((json.dumps(resolved_settings(args, _settings_options(args)), indent=2)
                  + "\n").encode("utf-8"))
    if result.note:
        print(f"pinn-torch reconstruct: {result.note}", file=sys.stderr)
    written = [str(args.out)]
    if args.png is not None:
        args.png.parent.mkdir(parents=True, exist_ok=True)
        plot_object(args.png, result.object, result.coverage, title=args.data.name)
        written.append(str(args.png))
        if result.network_object is not None:
            network_png = args.png.with_name(f"{args.png.stem}_network.png")
            plot_object(network_png, result.network_object, result.coverage,
                        title=f"{args.data.name} (network, before refinement)")
            written.append(str(network_png))
        if truth is not None and result.on_data_grid:
            compare_png = args.png.with_name(f"{args.png.stem}_vs_truth.png")
            scores = _plot_against_truth(compare_png, result, data, truth)
            written.append(str(compare_png))
            print("SSIM against the data's objectGuess (amplitude / phase): " + "; ".join(
                f"{name} {ev.amplitude_ssim:.3f} / {ev.phase_ssim:.3f}" for name, ev in scores))
    covered = float(np.mean(result.coverage > 0))
    if result.refinement is not None:
        r = result.refinement
        print(
            f"refined the object ({r.algorithm}) for {r.epochs} epoch(s) in {r.seconds:.2f}s: "
            "Poisson NLL "
            f"{r.nll_before:.6g} -> {r.nll_after:.6g} per pixel"
        )
    print(
        f"reconstructed {len(result.centres)} group(s) in {result.seconds:.2f}s: object "
        f"{result.object.shape[0]}x{result.object.shape[1]} ({covered:.0%} covered); wrote "
        + ", ".join([*written, str(settings_path)])
    )
    return 0


def _print_refine_epoch(epoch: Any) -> None:
    """One line per refinement pass: the Poisson NLL and, with a truth, the SSIM (ENG-014)."""
    scores = ""
    if epoch.metrics:
        scores = (f", SSIM against objectGuess {epoch.metrics['amplitude_ssim']:.3f} / "
                  f"{epoch.metrics['phase_ssim']:.3f} (amplitude / phase)")
    print(f"refinement epoch {epoch.epoch}/{epoch.epochs}: Poisson NLL {epoch.nll:.6g} per "
          f"pixel{scores}, {epoch.seconds:.2f}s", flush=True)


def _truth_metric(data: Any, truth: np.ndarray) -> Any:
    """Amplitude/phase SSIM of the object after each refinement pass against ``truth``
    (the data's ``objectGuess``, (H, W) complex) in the scanned region, aligned as in
    ``ptychodus_pinn_torch.eval``; the refined object is on the truth's grid."""
    from ptychodus_pinn_torch.eval import evaluate, scanned_box

    reference = np.asarray(truth)
    box = scanned_box(np.asarray(data.xcoords), np.asarray(data.ycoords), reference.shape)

    def metric(obj: np.ndarray) -> dict[str, float]:
        ev = evaluate(obj, reference, box=box)
        return {"amplitude_ssim": float(ev.amplitude_ssim), "phase_ssim": float(ev.phase_ssim)}

    return metric


def _is_structured(obj: np.ndarray) -> bool:
    """True for an object that is not constant (a flat initial guess is no truth)."""
    obj = np.asarray(obj)
    return bool(np.abs(obj).std() > 1e-6 or np.angle(obj).std() > 1e-6)


def _plot_against_truth(path: Path, result: Any, data: Any, truth: np.ndarray
                        ) -> list[tuple[str, Any]]:
    """Evaluate the network (and refined) object against ``truth`` in the scanned region and
    draw them side by side; returns the ``(name, Evaluation)`` pairs."""
    from ptychodus_pinn_torch.engine.reporting import plot_comparison
    from ptychodus_pinn_torch.eval import evaluate, scanned_box

    truth = np.asarray(truth)
    box = scanned_box(np.asarray(data.xcoords), np.asarray(data.ycoords), truth.shape)
    objects = [("network", result.object)]
    if result.network_object is not None:
        objects = [("network", result.network_object), ("network + refinement", result.object)]
    scores = [(name, evaluate(obj, truth, box=box)) for name, obj in objects]
    plot_comparison(path, scores, title=f"{path.stem}: scanned region, aligned to the truth")
    return scores
