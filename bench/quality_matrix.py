"""Held-out quality matrix of the learned reconstructor: generators x recipes x objects x probes x
doses, under two protocols, plus network + refinement against gradient ptychography from flat.

Protocols (every cell trains from fresh weights, weight seed 0):

- ``self``: self-supervised PINN training on the scan that is then reconstructed, for a fixed
  budget of *process CPU seconds* (``--budget-s``, one torch thread by default): an epoch starts
  only if it is expected to end within half an epoch of the budget (the previous epoch's CPU
  time), so every arm gets about the same compute and no arm is cut mid-epoch. CPU time (not
  wall time) keeps arms comparable on a loaded shared machine; wall seconds are reported too.
- ``transfer``: PINN training on ``--train-scans`` simulated scans of *other* objects (phantoms,
  seeds ``--train-seeds``; same probe and dose), same budget, then the unseen scan is
  reconstructed without any training (the way a beamline uses a trained model).

Each cell reports amplitude/phase SSIM and PSNR (``ptychodus_pinn_torch.eval.evaluate`` over the
scanned box, global phase, phase ramp and amplitude gain removed, no shift registration: same
grid), epochs, CPU and wall seconds. With ``--refine-epochs R`` it also reports the network's
object after R epochs of physics refinement (``engine.refine``) and, next to it, gradient
ptychography from a flat object (amplitude 1, phase 0) for the same refinement epochs and for
``--flat-multiples`` times as many, with their wall times.

Seeds: ``--seeds`` are the simulation seeds of the reconstructed scans. Keep the seeds you tune
on (``--tuning``: marks the rows) apart from those you report (the README numbers use reporting
seed 11 only; tuning seed 5 was used for smoke runs and the lr/stage choices).

    # reduced matrix of the README (about 3 CPU-minutes per cell)
    PYTHONPATH=$PWD .venv/bin/python bench/quality_matrix.py --protocols self,transfer \\
        --architectures cnn,unet,fno --budget-s 180 --json /tmp/qm.json
    # full scale
    PYTHONPATH=$PWD .venv/bin/python bench/quality_matrix.py --protocols self,transfer \\
        --architectures cnn,unet,fno --objects phantom,camera --probes pinhole,defocus,fresnel \\
        --doses 1e6,1e9 --seeds 11,23 --budget-s 900 --threads 2 --refine-epochs 20

This is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

#: How far apart (object pixels) the pooled training objects are put, so that no neighbour group
#: of one scan reaches into another (scan steps are ~5 px).
POOL_GAP = 64


@dataclass(frozen=True)
class Recipe:
    """A training recipe: a name and the model/training fields it sets (beyond the defaults).

    ``stages`` = (stage_1, stage_2, stage_3) epochs; all zero trains one stage.
    """

    name: str
    model: dict[str, Any] = field(default_factory=dict)
    stages: tuple[int, int, int] = (0, 0, 0)
    schedule: str = "cosine"
    lr: float = 1e-3


def parse_recipe(text: str) -> Recipe:
    """``single`` or ``stages:S1,S2,S3[:schedule]`` (e.g. ``stages:1,2,0:linear``), optionally
    followed by ``+field=value`` ModelConfig overrides (``single+generator_output_mode=amp_phase``).
    """
    base, *extras = text.split("+")
    model: dict[str, Any] = {}
    for item in extras:
        key, _, value = item.partition("=")
        model[key] = int(value) if value.isdigit() else value
    if base == "single":
        return Recipe(text, model=model)
    if base.startswith("stages:"):
        parts = base.split(":")
        s1, s2, s3 = (int(v) for v in parts[1].split(","))
        schedule = parts[2] if len(parts) > 2 else "cosine"
        return Recipe(text, model=model, stages=(s1, s2, s3), schedule=schedule)
    raise ValueError(f"--recipes: unknown recipe {text!r}; use single or stages:S1,S2,S3[:sched]"
                     " with optional +field=value")


#: probe kinds: data.simulate's, plus "fresnel" = the pinhole aperture propagated 4x farther
#: (``make_probe("pinhole", defocus_factor=4)``): strong Fresnel ringing.
PROBES: tuple[str, ...] = ("pinhole", "defocus", "fresnel")


def simulate(object_kind: str, probe: str, dose: float, seed: int) -> Any:
    """One simulated scan (192x192 object, raster overlap 0.7, 729 positions at N = 64)."""
    from ptychodus_pinn_torch.data.simulate import make_probe, simulate_scan

    if probe not in PROBES:
        raise ValueError(f"--probes: unknown probe {probe!r}; use {', '.join(PROBES)}")
    guess = make_probe("pinhole", 64, defocus_factor=4.0) if probe == "fresnel" else None
    kind = "pinhole" if probe == "fresnel" else probe
    return simulate_scan(object_kind=object_kind, probe=kind, nphotons=dose,  # type: ignore[arg-type]
                         seed=seed, probe_guess=guess)


def pool(scans: list[Any]) -> Any:
    """Several scans of one probe as one RawData: the objects side by side on one canvas
    (``POOL_GAP`` px apart, so no neighbour group mixes scans), positions shifted with them,
    patterns concatenated; the canvas is the objectGuess (labels for a staged warm-up)."""
    from ptychodus_pinn_torch.data import RawData

    h, w = scans[0].objectGuess.shape
    canvas = np.ones((h, len(scans) * (w + POOL_GAP) - POOL_GAP), np.complex64)
    for i, s in enumerate(scans):
        canvas[:, i * (w + POOL_GAP): i * (w + POOL_GAP) + w] = s.objectGuess
    x = np.concatenate([s.xcoords + i * (w + POOL_GAP) for i, s in enumerate(scans)])
    y = np.concatenate([s.ycoords for s in scans])
    diff = np.concatenate([s.diff3d for s in scans])
    return RawData.from_coords_without_pc(
        x, y, diff, scans[0].probeGuess, None, canvas,
        metadata={"nphotons": scans[0].metadata.get("nphotons")}, diffraction_kind="amplitude",
    )


def without_truth(scan: Any) -> Any:
    """``scan`` without its objectGuess: what self-supervised training may see."""
    from ptychodus_pinn_torch.data import RawData

    return RawData.from_coords_without_pc(
        scan.xcoords, scan.ycoords, scan.diff3d, scan.probeGuess, None, None,
        metadata=dict(scan.metadata), diffraction_kind="amplitude",
    )


def metrics(obj: np.ndarray, truth: np.ndarray, box: Any) -> dict[str, float]:
    """Amplitude/phase SSIM and PSNR (dB) of ``obj`` against ``truth`` inside ``box``."""
    from ptychodus_pinn_torch.eval import evaluate

    e = evaluate(obj, truth, box=box, register=False)
    return {
        "amp_ssim": round(e.amplitude_ssim, 4),
        "phase_ssim": round(e.phase_ssim, 4),
        "amp_psnr": round(e.amplitude_psnr_db, 2),
        "phase_psnr": round(e.phase_psnr_db, 2),
    }


class CpuBudget:
    """``should_stop``/``on_epoch`` pair: start an epoch only if it is expected to end within
    half an epoch of ``seconds`` of process CPU time (the epoch count nearest to the budget,
    estimated by the last epoch's CPU time), so slow-epoch generators are not cut a whole epoch
    short."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.start = time.process_time()
        self.epoch_start = self.start
        self.last_epoch = 0.0
        self.at_epoch_start = True
        self.epochs = 0

    def used(self) -> float:
        return time.process_time() - self.start

    def should_stop(self) -> bool:
        if not self.at_epoch_start:
            return False
        self.at_epoch_start = False
        self.epoch_start = time.process_time()
        return self.used() + 0.5 * self.last_epoch > self.seconds

    def on_epoch(self, _report: object) -> None:
        self.last_epoch = time.process_time() - self.epoch_start
        self.at_epoch_start = True
        self.epochs += 1


def train(raw: Any, arch: str, recipe: Recipe, args: argparse.Namespace, dose: float,
          ) -> tuple[Any, dict[str, Any]]:
    """Train ``arch`` with ``recipe`` on ``raw`` within the CPU budget; (bundle, facts)."""
    from ptychodus_pinn_torch.config.engine import EngineConfig
    from ptychodus_pinn_torch.config.spec import ModelConfig, TrainingConfig
    from ptychodus_pinn_torch.engine.events import TrainCallbacks
    from ptychodus_pinn_torch.engine.training import train_model

    model = replace(ModelConfig(N=raw.N, gridsize=args.gridsize,
                                n_filters_scale=args.n_filters_scale),
                    architecture=arch, **recipe.model)
    s1, s2, s3 = recipe.stages
    training = TrainingConfig(
        model=model, batch_size=args.batch_size,
        nepochs=s1 + s2 + s3 if s1 + s2 + s3 else args.max_epochs,
        nphotons=dose, n_groups=args.n_groups, neighbor_count=max(4, args.gridsize**2),
    )
    config = EngineConfig(
        training=training, seed=0, device="cpu", learning_rate=recipe.lr,
        early_stop_patience=None, stage_1_epochs=s1, stage_2_epochs=s2, stage_3_epochs=s3,
        physics_weight_schedule=recipe.schedule,
    )
    budget = CpuBudget(args.budget_s)
    callbacks = TrainCallbacks(on_epoch=(budget.on_epoch,), should_stop=budget.should_stop)
    t0 = time.perf_counter()
    result = train_model(raw, config, callbacks=callbacks)
    facts = {
        "epochs": len(result.history),
        "train_cpu_s": round(budget.used(), 1),
        "train_wall_s": round(time.perf_counter() - t0, 1),
        "final_loss": round(result.history[-1].train_loss, 5) if result.history else None,
        "weights": int(result.bundle.model.n_network_weights()),
    }
    return result.bundle, facts


def reconstruct_cell(bundle: Any, scan: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Network (and network + refinement, flat-start refinement) numbers on ``scan``."""
    from ptychodus_pinn_torch.engine.inference import reconstruct
    from ptychodus_pinn_torch.engine.refine import refine_object
    from ptychodus_pinn_torch.eval import scanned_box

    box = scanned_box(scan.xcoords, scan.ycoords, scan.objectGuess.shape)
    t0 = time.perf_counter()
    rec = reconstruct(bundle, scan, device="cpu", refine_epochs=args.refine_epochs)
    wall = time.perf_counter() - t0
    network = rec.object if rec.network_object is None else rec.network_object
    out: dict[str, Any] = {"network": metrics(network, scan.objectGuess, box)}
    if rec.refinement is None:
        out["network"]["infer_wall_s"] = round(wall, 2)
        return out
    out["network"]["infer_wall_s"] = round(wall - rec.refinement.seconds, 2)
    out["refined"] = metrics(rec.object, scan.objectGuess, box) | {
        "epochs": args.refine_epochs, "wall_s": round(wall, 2)}
    flat = np.ones(scan.objectGuess.shape, np.complex64)
    centres = np.column_stack([scan.xcoords, scan.ycoords])
    out["flat"] = []
    for k in args.flat_multiples:
        t1 = time.perf_counter()
        obj, _ = refine_object(flat, scan.diff3d, centres, scan.probeGuess,
                               epochs=int(k * args.refine_epochs), device="cpu")
        out["flat"].append(metrics(obj, scan.objectGuess, box) | {
            "epochs": int(k * args.refine_epochs), "wall_s": round(time.perf_counter() - t1, 2)})
    return out


def markdown(rows: list[dict[str, Any]]) -> str:
    """The README table of ``rows``."""
    head = ("| protocol | arch | recipe | object | probe | dose | seed | epochs | CPU s | "
            "amp SSIM | phase SSIM | amp PSNR | phase PSNR |")
    lines = [head, "|" + "---|" * 13]
    for r in rows:
        n = r["network"]
        lines.append(
            f"| {r['protocol']} | {r['arch']} | {r['recipe']} | {r['object']} | {r['probe']} | "
            f"{r['dose']:.0e} | {r['seed']}{' (tuning)' if r['tuning'] else ''} | "
            f"{r['epochs']} | {r['train_cpu_s']} | {n['amp_ssim']:.3f} | {n['phase_ssim']:.3f} | "
            f"{n['amp_psnr']:.1f} | {n['phase_psnr']:.1f} |"
        )
    return "\n".join(lines)


def _csv(kind: type, text: str) -> list[Any]:
    return [kind(v) for v in text.split(",") if v]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocols", default="self,transfer")
    parser.add_argument("--architectures", default="cnn,unet,fno")
    parser.add_argument("--recipes", default="single",
                        help="';'-separated: single, stages:S1,S2,S3[:linear|cosine|exponential]")
    parser.add_argument("--objects", default="phantom", help="phantom,camera")
    parser.add_argument("--probes", default="pinhole", help="pinhole,defocus,fresnel")
    parser.add_argument("--doses", default="1e6", help="photons per pattern, e.g. 1e6,1e9")
    parser.add_argument("--seeds", default="11", help="simulation seeds of the scans reconstructed")
    parser.add_argument("--tuning", action="store_true", help="mark these seeds as tuning seeds")
    parser.add_argument("--train-seeds", default="21,22,23",
                        help="phantom seeds of the transfer protocol's training scans")
    parser.add_argument("--budget-s", type=float, default=180.0, help="CPU seconds per training")
    parser.add_argument("--max-epochs", type=int, default=1000)
    parser.add_argument("--n-groups", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--n-filters-scale", type=int, default=2)
    parser.add_argument("--gridsize", type=int, default=1)
    parser.add_argument("--refine-epochs", type=int, default=0)
    parser.add_argument("--flat-multiples", default="1,2,4",
                        help="flat-start refinement epochs as multiples of --refine-epochs")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", default=None, help="append one JSON line per cell here")
    parser.add_argument("--markdown", default=None, help="write the table here at the end")
    args = parser.parse_args(argv)
    args.flat_multiples = _csv(float, args.flat_multiples)

    import torch

    torch.set_num_threads(args.threads)
    recipes = [parse_recipe(t) for t in args.recipes.split(";") if t]
    rows: list[dict[str, Any]] = []
    grid = itertools.product(
        _csv(str, args.protocols), _csv(str, args.objects), _csv(str, args.probes),
        _csv(float, args.doses), _csv(int, args.seeds), recipes, _csv(str, args.architectures),
    )
    scans: dict[tuple[Any, ...], Any] = {}

    def scan(kind: str, probe: str, dose: float, seed: int) -> Any:
        key = (kind, probe, dose, seed)
        if key not in scans:
            scans[key] = simulate(kind, probe, dose, seed)
        return scans[key]

    for protocol, kind, probe, dose, seed, recipe, arch in grid:
        test = scan(kind, probe, dose, seed)
        if protocol == "self":
            train_raw = without_truth(test)
        elif protocol == "transfer":
            train_raw = pool([scan("phantom", probe, dose, s) for s in _csv(int, args.train_seeds)])
        else:
            raise ValueError(f"--protocols: unknown protocol {protocol!r}; use self, transfer")
        bundle, facts = train(train_raw, arch, recipe, args, dose)
        row = {"protocol": protocol, "arch": arch, "recipe": recipe.name, "object": kind,
               "probe": probe, "dose": dose, "seed": seed, "tuning": bool(args.tuning),
               "budget_cpu_s": args.budget_s, "threads": args.threads, **facts,
               **reconstruct_cell(bundle, test, args)}
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.json:
            with open(args.json, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")
    table = markdown(rows)
    print(table)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as fh:
            fh.write(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
