"""``make bench``: the engine's speed, memory and refinement benchmarks in one run.

Sections (each A/B pair alternated in this one process; ratios are what count on a shared
machine, absolute times are noisy):

1. inference: ``reconstruct`` end to end vs the bare network (patterns/s; target >= 0.9x);
2. training: one pipeline epoch vs the same bare optimizer steps (target >= 0.85x);
3. refinement: LSQML (flat start and network start) vs the reference ePIE, SSIM against wall
   time (target: the ePIE's SSIM within 1.5x its time from flat; faster from the network);
4. threads: 1 vs 2 threads per phase, CPU time / (wall x threads) (target <= 1.2);
5. formats: channels_last and bf16 autocast on the bare network;
6. scaling: reconstruct time and peak RSS per number of positions, a subprocess per size
   (target: 1e5 positions within 4 GB, time linear).

Writes OUT/results.json and OUT/results.md (the table in the README) and prints the table.

    PYTHONPATH=$PWD .venv/bin/python bench/run_all.py [--quick] [--sizes 1000 10000]

Default settings keep it near 10 minutes on the shared 2-core machine: 196-pattern scans for
the A/B pairs, n_filters_scale 1, one torch thread (except the threads section), 729 patterns
and 20 ePIE epochs for the refinement, sizes 1e3, 1e4 and 1e5 with the small network for the
scaling (the 1e5 scan is a 1.6 GB NPZ written to a temporary folder, ~5 minutes of the run;
``--sizes 1000 10000`` leaves it out).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

SECTIONS = ("inference", "training", "refinement", "threads", "formats", "scaling")


def _ok(flag: bool) -> str:
    return "yes" if flag else "**no**"


def markdown(results: dict[str, Any]) -> str:
    """The results as one markdown table (measure, result, target, met)."""
    lines = ["| measure | result | target | met |", "|---|---|---|---|"]
    if "inference" in results:
        r = results["inference"]
        lines.append(
            f"| inference, {r['patterns']} patterns, batch {r['batch']}, nfs "
            f"{r['n_filters_scale']}, channels_last {r['channels_last']} | end to end "
            f"{r['engine_patterns_per_s']} patterns/s, bare network {r['bare_patterns_per_s']}:"
            f" **{r['ratio']}x** | >= 0.9x | {_ok(r['ratio'] >= 0.9)} |")
    if "training" in results:
        r = results["training"]
        lines.append(
            f"| training epoch, {r['groups']} groups = {r['steps']} steps of {r['batch']} | "
            f"epoch {r['epoch_s']} s, bare steps {r['bare_steps_s']} s: **{r['ratio']}x** | "
            f">= 0.85x | {_ok(r['ratio'] >= 0.85)} |")
    if "refinement" in results:
        r = results["refinement"]
        e, f, n = r["epie"], r["lsqml_flat"], r["lsqml_from_network"]
        ratio = f["seconds"] / e["seconds"]
        lines.append(
            f"| refinement from flat, {r['scan']['positions']} patterns: time to the ePIE's "
            f"mean SSIM {r['target_mean_ssim']} | ePIE {e['epochs']} epochs {e['seconds']} s "
            f"({e['amp_ssim']}/{e['phase_ssim']}); LSQML {f['epochs']} epochs {f['seconds']} s "
            f"({f['amp_ssim']}/{f['phase_ssim']}): **{ratio:.2f}x** the ePIE's time | <= 1.5x "
            f"| {_ok(f['reached'] and ratio <= 1.5)} |")
        net = r["network"]
        lines.append(
            f"| refinement from the network's object (trained {net['train_epochs']} epochs, "
            f"{net['amp_ssim']}/{net['phase_ssim']}, reconstruct {net['reconstruct_s']} s) | "
            f"LSQML {n['epochs']} epochs {n['seconds']} s ({n['amp_ssim']}/{n['phase_ssim']}) "
            f"vs {f['seconds']} s from flat | faster than from flat | "
            f"{_ok(n['reached'] and n['seconds'] < f['seconds'])} |")
        a = r["adam_flat"]
        lines.append(
            f"| (Adam, the earlier refinement, from flat) | {a['epochs']} epochs {a['seconds']}"
            f" s: {a['amp_ssim']}/{a['phase_ssim']} | - | - |")
    if "threads" in results:
        for row in results["threads"]:
            lines.append(
                f"| threads: {row['phase']} at {row['threads']} | wall {row['wall_s']} s, CPU "
                f"{row['cpu_s']} s: CPU / (wall x threads) **{row['cpu_over_wall_x_threads']}**"
                f" | <= 1.2 | {_ok(row['cpu_over_wall_x_threads'] <= 1.2)} |")
    if "formats" in results:
        text = ", ".join(
            f"{'channels_last' if r['channels_last'] else 'contiguous'}"
            f"{' + bf16' if r['bf16'] else ''} {r['speedup']}x" for r in results["formats"])
        lines.append(f"| bare network formats (CPU) | {text} | default on where faster | "
                     "channels_last on for CPU |")
    if "scaling" in results:
        for row in results["scaling"]:
            target = "<= 4096 MB" if row["positions"] >= 100000 else "linear"
            met = _ok(row["peak_rss_mb"] <= 4096) if row["positions"] >= 100000 else "-"
            lines.append(
                f"| reconstruct {row['positions']} positions ({row['network']} network) | "
                f"{row['seconds']} s ({row['ms_per_position']} ms/position), peak RSS "
                f"**{row['peak_rss_mb']} MB** (data {row['data_mb']} MB) | {target} | {met} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--quick", action="store_true",
                        help="fewer rounds and epochs (a smoke run, ~3 minutes)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--network", choices=("cnn", "small"), default="small",
                        help="network of the scaling section")
    parser.add_argument("--out", type=Path, default=Path("bench_out"))
    args = parser.parse_args(argv)

    import bench_pipeline
    import bench_refine
    import bench_scaling

    rounds = 1 if args.quick else 3
    results: dict[str, Any] = {"torch": torch.__version__, "settings": vars(args).copy()}
    results["settings"]["out"] = str(args.out)
    t_all = time.perf_counter()
    for section in args.only:
        t0 = time.perf_counter()
        torch.set_num_threads(1)
        if section == "inference":
            results[section] = bench_pipeline.inference_ab(rounds=rounds)
        elif section == "training":
            results[section] = bench_pipeline.training_ab(rounds=max(rounds - 1, 1))
        elif section == "refinement":
            results[section] = bench_refine.refine_vs_epie(epochs=8 if args.quick else 20)
        elif section == "threads":
            results[section] = bench_pipeline.threads_ab(rounds=max(rounds - 1, 1))
        elif section == "formats":
            results[section] = bench_pipeline.formats_ab(rounds=rounds)
        elif section == "scaling":
            import tempfile

            with tempfile.TemporaryDirectory(prefix="pinn_scaling_") as tmp:
                results[section] = bench_scaling.measure(args.sizes, 1, Path(tmp), args.network)
        print(f"== {section}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    results["seconds"] = round(time.perf_counter() - t_all, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    table = markdown(results)
    (args.out / "results.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
