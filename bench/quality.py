"""Reconstruction quality of self-supervised PtychoPINN training on a simulated scan.

Simulates a scan (``data.simulate.simulate_scan``) with a seed the engine was not tuned on,
trains a PINN on it for a CPU-affordable number of epochs, reconstructs the object on the scan's
own grid, removes the global phase offset and a linear phase ramp (and the global amplitude
scale, which the trainable intensity scale leaves free), and prints amplitude and phase SSIM
against the true object over the scanned region (``ptychodus_pinn_torch.eval``, whose SSIM equals
``skimage.metrics.structural_similarity``'s).
With ``--refine-epochs K`` it also reports the object after K epochs of physics refinement
(``engine.refine``, not the network) started from the network's object.

    PYTHONPATH=$PWD OMP_NUM_THREADS=2 .venv/bin/python bench/quality.py --seed 11 --epochs 20

This is a benchmark, not a test: it takes minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from ptychodus_pinn_torch.eval import evaluate, scanned_box

__all__ = ["quality_metrics", "scanned_box"]


def quality_metrics(
    obj: np.ndarray, true: np.ndarray, box: tuple[slice, slice]
) -> dict[str, float]:
    """Amplitude/phase SSIM, RMSE and PSNR, the amplitude gain and the 1/2-bit FRC resolution
    (pixels) in ``box`` after removing the global phase, the phase ramp and the amplitude scale
    (``ptychodus_pinn_torch.eval.evaluate``; no shift registration: the grids are the same)."""
    e = evaluate(obj, true, box=box, register=False)
    return {
        "amp_ssim": e.amplitude_ssim,
        "phase_ssim": e.phase_ssim,
        "amp_rmse": e.amplitude_rmse,
        "phase_rmse": e.phase_rmse_rad,
        "amp_gain": e.alignment.amplitude_gain,
        "amp_psnr": e.amplitude_psnr_db,
        "phase_psnr": e.phase_psnr_db,
        "frc_half_bit_px": e.resolution["half_bit"].pixels,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=11, help="simulation seed (not tuned on)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--n-groups", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--n-filters-scale", type=int, default=2)
    parser.add_argument("--gridsize", type=int, default=1)
    parser.add_argument("--nphotons", type=float, default=1e6)
    parser.add_argument("--object", default="phantom", help="phantom or camera")
    parser.add_argument("--probe", default="pinhole", help="pinhole or defocus")
    parser.add_argument("--overlap", type=float, default=0.7, help="linear probe overlap")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument(
        "--model-type", default="pinn", help="pinn, or supervised (trained on the true patches)"
    )
    parser.add_argument("--nll-weight", type=float, default=1.0, help="Poisson NLL weight (1)")
    parser.add_argument("--mae-weight", type=float, default=0.0, help="amplitude MAE weight (0)")
    parser.add_argument("--early-stop-patience", type=int, default=3)
    parser.add_argument(
        "--plateau-patience", type=int, default=2, help="epochs before the lr is halved (2)"
    )
    parser.add_argument(
        "--refine-epochs",
        type=int,
        default=0,
        help="also report the object after this many epochs of physics refinement (0: off)",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    parser.add_argument(
        "--save",
        default=None,
        help="train into this folder (wts.h5.zip, history.json) and save rec.npz there",
    )
    parser.add_argument(
        "--eval-every",
        type=int,
        default=0,
        help="also print SSIM every this many epochs (from the checkpoint; 0: only at the end)",
    )
    args = parser.parse_args(argv)

    import torch

    from ptychodus_pinn_torch.config.builder import engine_config_for
    from ptychodus_pinn_torch.config.engine import KERAS_MIN_DELTA, KERAS_MIN_LR
    from ptychodus_pinn_torch.config.spec import ModelConfig
    from ptychodus_pinn_torch.data.simulate import simulate_scan
    from ptychodus_pinn_torch.engine.events import TrainCallbacks
    from ptychodus_pinn_torch.engine.inference import reconstruct
    from ptychodus_pinn_torch.engine.run import checkpoint_dir_of, run_training

    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    raw = simulate_scan(object_kind=args.object, nphotons=args.nphotons, seed=args.seed,
                        probe=args.probe, overlap=args.overlap)
    # the command line's builder (pinn-torch train's rules), plus the bench's loss and plateau
    config = engine_config_for(
        ModelConfig(N=raw.N, gridsize=args.gridsize, n_filters_scale=args.n_filters_scale,
                    model_type=args.model_type),
        epochs=args.epochs,
        batch_size=args.batch_size,
        nphotons=args.nphotons,
        n_groups=args.n_groups,
        training_fields={
            "nll_weight": args.nll_weight,
            "mae_weight": args.mae_weight,
            # the Keras plateau with another patience (the Keras min_lr and min_delta kept)
            "scheduler": "ReduceLROnPlateau",
            "plateau_patience": args.plateau_patience,
            "plateau_min_lr": KERAS_MIN_LR,
            "plateau_threshold": KERAS_MIN_DELTA,
        },
        seed=0,
        device=args.device,
        learning_rate=args.lr,
        early_stop_patience=args.early_stop_patience,
    )
    training = config.training

    def show(r: object) -> None:
        print(
            f"  epoch {r.epoch}/{r.epochs} loss {r.train_loss:.6g} "  # type: ignore[attr-defined]
            f"val {r.val_loss} lr {r.lr:.2g} {r.seconds:.1f}s",
            file=sys.stderr,
        )  # type: ignore[attr-defined]

    import tempfile
    from pathlib import Path

    from ptychodus_pinn_torch.engine.archive import ModelBundle
    from ptychodus_pinn_torch.model import build_model

    out_dir = Path(args.save) if args.save else Path(tempfile.mkdtemp(prefix="quality-"))
    ckpt_dir = checkpoint_dir_of(out_dir)
    box = scanned_box(raw.xcoords, raw.ycoords, raw.objectGuess.shape)
    curve: list[dict[str, float]] = []

    def on_epoch(r: object) -> None:
        show(r)
        epoch = int(r.epoch)  # type: ignore[attr-defined]
        if args.eval_every and epoch % args.eval_every == 0:
            state = torch.load(ckpt_dir / "checkpoint.pt", weights_only=True)["model"]
            model = build_model(training.model, probe=raw.probeGuess, intensity_scale=1.0)
            model.load_state_dict(state)
            bundle = ModelBundle(
                model=model,
                model_config=training.model,
                intensity_scale=model.intensity_scale,
                probe=model.probe.detach().numpy(),
            )
            m = quality_metrics(reconstruct(bundle, raw, device="cpu").object, raw.objectGuess, box)
            curve.append(
                {
                    "epoch": epoch,
                    "amp_ssim": round(m["amp_ssim"], 4),
                    "phase_ssim": round(m["phase_ssim"], 4),
                }
            )
            print(
                f"  -> epoch {epoch}: amp SSIM {m['amp_ssim']:.3f} phase SSIM "
                f"{m['phase_ssim']:.3f}",
                file=sys.stderr,
                flush=True,
            )

    t1 = time.perf_counter()
    result = run_training(raw, config, out_dir,
                          callbacks=TrainCallbacks(on_epoch=(on_epoch,))).result
    t2 = time.perf_counter()
    rec = reconstruct(result.bundle, raw, device=args.device, refine_epochs=args.refine_epochs)
    t3 = time.perf_counter()
    network = rec.object if rec.network_object is None else rec.network_object
    metrics = quality_metrics(network, raw.objectGuess, box)
    refined: dict[str, object] = {}
    if rec.refinement is not None:
        refined = {
            "epochs": rec.refinement.epochs,
            "seconds": round(rec.refinement.seconds, 2),
            "nll_before": round(rec.refinement.nll_before, 4),
            "nll_after": round(rec.refinement.nll_after, 4),
        }
        refined.update(
            {k: round(v, 4) for k, v in quality_metrics(rec.object, raw.objectGuess, box).items()}
        )
    uniform = reconstruct(result.bundle, raw, device=args.device, weighting="uniform")
    metrics_uniform = quality_metrics(uniform.object, raw.objectGuess, box)
    if args.save:  # wts.h5.zip and history.json are there already (the training folder)
        folder = Path(args.save)
        raw.to_file(folder / "scan.npz")
        extra = {} if rec.network_object is None else {"refined_object": rec.object}
        np.savez_compressed(folder / "rec.npz", object=network, coverage=rec.coverage, **extra)
    report = {
        "seed": args.seed,
        "object": args.object,
        "probe": args.probe,
        "overlap": args.overlap,
        "n_positions": raw.n_positions,
        "n_groups": args.n_groups,
        "gridsize": args.gridsize,
        "n_filters_scale": args.n_filters_scale,
        "model_type": args.model_type,
        "nphotons": args.nphotons,
        "nll_weight": args.nll_weight,
        "mae_weight": args.mae_weight,
        "batch_size": args.batch_size,
        "learning_rate": args.lr,
        "plateau_patience": args.plateau_patience,
        "epochs_run": len(result.history),
        "stopped": result.stopped,
        "train_seconds": round(t2 - t1, 1),
        "reconstruct_seconds": round(t3 - t2, 2),
        "total_seconds": round(t3 - t0, 1),
        "torch_threads": torch.get_num_threads(),
        **{k: round(v, 4) for k, v in metrics.items()},
        "uniform_weighting": {k: round(v, 4) for k, v in metrics_uniform.items()},
        "ssim_by_epoch": curve,
        "physics_refinement": refined,
    }
    print(json.dumps(report, indent=1))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
