"""``pinn-torch train``: train a PtychoPINN model on an NPZ scan.

Writes ``OUT/wts.h5.zip`` (the model archive), ``OUT/history.json`` (per-epoch losses) and
``OUT/loss.png``; ``OUT/checkpoints/checkpoint.pt`` is updated every epoch and ``--resume``
continues from it (the layout of :mod:`ptychodus_pinn_torch.engine.run`).
Under ``torchrun --nproc-per-node K`` the same command trains with DistributedDataParallel and
rank 0 writes the outputs.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from ptychodus_pinn_torch.cli.config_file import track_given
from ptychodus_pinn_torch.cli.train_config import config_from_file
from ptychodus_pinn_torch.config.choices import (
    ARCHITECTURES,
    OUTPUT_MODES,
    PHYSICS_WEIGHT_SCHEDULES,
)
from ptychodus_pinn_torch.config.engine import EngineConfig
from ptychodus_pinn_torch.config.interop.bridge import TF_DEFAULT_NPHOTONS
from ptychodus_pinn_torch.config.spec import ModelConfig

# events and progress import the standard library only; the engine (torch) loads in run()
from ptychodus_pinn_torch.engine.events import BatchProgress, EpochReport, TrainCallbacks
from ptychodus_pinn_torch.engine.progress import ProgressBar

if TYPE_CHECKING:  # numpy loads when the command runs
    from ptychodus_pinn_torch.data.raw_data import RawData

NAME = "train"
HELP = "train a PtychoPINN model on NPZ data"

#: upstream TrainingConfig.nphotons default, used when neither --nphotons nor the data says
DEFAULT_NPHOTONS = TF_DEFAULT_NPHOTONS


def on_off_auto(value: str) -> bool | None:
    """``--channels-last`` values: 'on' -> True, 'off' -> False, 'auto' -> None (the engine
    picks by device)."""
    table = {"on": True, "off": False, "auto": None}
    if value.lower() not in table:
        raise argparse.ArgumentTypeError(f"{value!r} is not one of auto, on, off")
    return table[value.lower()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, default=None, metavar="FILE",
        help="JSON or YAML configuration: the TF-style spec layout (fixtures/"
        "example_spec_config.json, with an optional 'engine' section) or the PyTorch "
        "dataclass layout; flags given on the command line override it (CFG-110)",
    )
    parser.add_argument(
        "--train", type=Path, action="append", default=None,
        help="training scan (NPZ, ptychodus files, mapped folder); repeat it to train one model "
        "over several scans, or name a folder of .npz files (required unless --config names "
        "train_data_file)",
    )
    parser.add_argument(
        "--test", type=Path, default=None, help="test scan (NPZ): loss after training"
    )
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (required unless --config names output_dir)")
    parser.add_argument("--epochs", type=int, default=50, help="epochs (upstream nepochs 50)")
    parser.add_argument(
        "--batch-size", type=int, default=16, help="groups per batch and process (16)"
    )
    parser.add_argument("--gridsize", type=int, default=1, help="group side; C = gridsize² (1)")
    parser.add_argument("--n-filters-scale", type=int, default=2, help="network width factor (2)")
    parser.add_argument(
        "--nphotons",
        type=float,
        default=None,
        help="photons per pattern (default: the data's metadata, else 1e9)",
    )
    parser.add_argument("--n-groups", type=int, default=512, help="groups drawn for training (512)")
    parser.add_argument("--neighbor-count", type=int, default=4, help="K nearest neighbours (4)")
    parser.add_argument(
        "--enable-oversampling",
        action="store_true",
        help="allow more groups than scan points at gridsize > 1 (K-choose-C combinations)",
    )
    parser.add_argument(
        "--neighbor-pool-size",
        type=int,
        default=None,
        help="neighbours each combination is drawn from when oversampling (default: K)",
    )
    parser.add_argument(
        "--model-type",
        choices=("pinn", "supervised"),
        default="pinn",
        help="pinn: self-supervised through the physics; supervised: learn from Y labels",
    )
    parser.add_argument(
        "--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:K"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of weights, grouping, shuffling")
    parser.add_argument(
        "--threads", type=int, default=0,
        help="CPU threads torch uses (0: $OMP_NUM_THREADS if set, else torch's default)",
    )
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (1e-3)")
    parser.add_argument(
        "--early-stop-patience",
        type=int,
        default=3,
        help="epochs without improvement before stopping (3; 0 disables)",
    )
    parser.add_argument(
        "--validation-fraction", type=float, default=0.05, help="held-out share (0.05)"
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue from OUT/checkpoints/checkpoint.pt"
    )
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast (CUDA only)")
    parser.add_argument(
        "--channels-last", nargs="?", const=True, default=None, type=on_off_auto,
        metavar="auto|on|off",
        help="channels-last memory format of the convolutions (auto: on for the CPU, where it "
        "trains faster; --channels-last alone: on)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--memory-budget", default=None, metavar="SIZE",
        help="most memory the scan's arrays may take, e.g. 24G (default: half of the machine's "
        "memory, or $PINN_TORCH_MEMORY_BUDGET); a larger scan is refused before it is read",
    )
    parser.add_argument(
        "--keep-empty-frames", action="store_true",
        help="refuse a scan with all-zero diffraction frames (default: drop them with a warning "
        "naming how many and which)",
    )
    parser.add_argument(
        "--init-model", type=Path, default=None,
        help="start from this trained wts.h5.zip (fine-tuning: its network, lr x "
        "--fine-tune-gamma)",
    )
    parser.add_argument(
        "--fine-tune-epochs", type=int, default=0,
        help="with --init-model: epochs to run (0: --epochs); upstream epochs_fine_tune",
    )
    parser.add_argument(
        "--fine-tune-gamma", type=float, default=0.1,
        help="with --init-model: learning rate factor (0.1); upstream fine_tune_gamma",
    )
    parser.add_argument("--mlflow", action="store_true",
                        help="track the run with MLflow (params, per-epoch metrics, artifacts)")
    parser.add_argument("--mlflow-uri", default=None,
                        help="MLflow tracking URI or folder (default ./mlruns; implies --mlflow)")
    parser.add_argument("--experiment", default=None,
                        help="MLflow experiment name (ptychodus-pinn-torch; implies --mlflow)")
    generator = parser.add_argument_group("generator (specs/MODEL.md MODEL-220..227)")
    generator.add_argument("--architecture", choices=ARCHITECTURES, default="cnn",
                           help="cnn: the TF network (default); unet: cnn + skips; fno")
    generator.add_argument("--output-mode", choices=OUTPUT_MODES, default=None,
                           help="heads: amp_phase or real_imag (default: the architecture's, "
                                "amp_phase for cnn/unet, real_imag for fno)")
    generator.add_argument("--attention", default="",
                           help="comma list of cbam_encoder, cbam_bottleneck, cbam_decoder, "
                                "eca_encoder, eca_decoder (cnn/unet)")
    for name, default in (("fno-modes", 12), ("fno-width", 32), ("fno-blocks", 4),
                          ("fno-cnn-blocks", 2)):
        generator.add_argument(f"--{name}", type=int, default=default,
                               help=f"fno only ({default})")
    stages = parser.add_argument_group("multi-stage training (specs/ENGINE.md ENG-220..222)")
    for k, what in ((1, "warm-up"), (2, "blend toward the physics loss"), (3, "physics only")):
        stages.add_argument(f"--stage-{k}-epochs", type=int, default=0,
                            help=f"stage {k}: {what} (0; stages must add up to --epochs)")
    stages.add_argument("--physics-weight-schedule", choices=PHYSICS_WEIGHT_SCHEDULES,
                        default="cosine", help="stage-2 blend (cosine)")
    stages.add_argument("--stage-3-lr-factor", type=float, default=0.1,
                        help="learning-rate factor of stage 3 (0.1)")
    track_given(parser)


def _check_args(args: argparse.Namespace) -> None:
    if not args.train:
        raise ValueError("--train is required (or train_data_file in --config FILE)")
    if args.out is None:
        raise ValueError("--out is required (or output_dir in --config FILE)")
    for flag, value, minimum in (
        ("--epochs", args.epochs, 1),
        ("--batch-size", args.batch_size, 1),
        ("--gridsize", args.gridsize, 1),
        ("--n-filters-scale", args.n_filters_scale, 1),
        ("--n-groups", args.n_groups, 1),
        ("--neighbor-count", args.neighbor_count, 1),
        ("--seed", args.seed, 0),
        ("--early-stop-patience", args.early_stop_patience, 0),
        ("--threads", args.threads, 0),
    ):
        if value < minimum:
            raise ValueError(f"{flag} must be >= {minimum}, got {value}")
    if args.nphotons is not None and not args.nphotons > 0:
        raise ValueError(f"--nphotons must be > 0, got {args.nphotons}")
    for flag, path in [*(("--train", p) for p in args.train), ("--test", args.test),
                       ("--init-model", args.init_model)]:
        if path is not None and not Path(path).exists():
            raise FileNotFoundError(f"{flag} {path}: no such file or folder; pass a scan")
    if args.init_model is None and (args.fine_tune_epochs != 0 or args.fine_tune_gamma != 0.1):
        raise ValueError("--fine-tune-epochs and --fine-tune-gamma act only with --init-model "
                         "wts.h5.zip; add it or drop them")
    if args.fine_tune_epochs < 0 or not args.fine_tune_gamma > 0:
        raise ValueError("--fine-tune-epochs must be >= 0 and --fine-tune-gamma > 0")
    if args.out.exists() and not args.out.is_dir():
        raise ValueError(f"--out {args.out} exists and is not a folder; pick a folder path")


def _nphotons(args: argparse.Namespace, raw: RawData) -> float:
    if args.nphotons is not None:
        return float(args.nphotons)
    try:  # RawData.metadata is always a dict; float(None) and float("x") both fail here
        value = float(raw.metadata.get("nphotons"))
    except (TypeError, ValueError):
        return DEFAULT_NPHOTONS
    return value if value > 0 else DEFAULT_NPHOTONS


def _model_config(args: argparse.Namespace, raw: RawData) -> ModelConfig:
    """The network settings: from the flags (N from the data), or, with --init-model, the
    initial model's (a flag set to another value than both its default and the model's is
    refused)."""
    if args.init_model is None:
        return ModelConfig(N=int(raw.diff3d.shape[-1]), gridsize=args.gridsize,
                           n_filters_scale=args.n_filters_scale, model_type=args.model_type,
                           **generator_fields(args))
    from ptychodus_pinn_torch.engine.fine_tune import model_config_of

    stored = model_config_of(args.init_model)
    from ptychodus_pinn_torch.model.generators import DEFAULTS as GENERATOR_DEFAULTS

    for name, given in generator_fields(args).items():
        if given != GENERATOR_DEFAULTS[name] and given != getattr(stored, name, None):
            raise ValueError(
                f"the generator flag for {name}={given!r} differs from the initial model's "
                f"{getattr(stored, name, None)!r} (--init-model {args.init_model}); drop the flag"
            )
    defaults = {"gridsize": 1, "n_filters_scale": 2, "model_type": "pinn"}
    for name, default in defaults.items():
        given = getattr(args, name)
        if given != default and given != getattr(stored, name):
            raise ValueError(
                f"--{name.replace('_', '-')} {given} differs from the initial model's "
                f"{name} {getattr(stored, name)} (--init-model {args.init_model}); drop the flag"
            )
    if int(stored.N) != int(raw.diff3d.shape[-1]):
        raise ValueError(
            f"--init-model {args.init_model} was trained at N={stored.N} but the training "
            f"patterns are {raw.diff3d.shape[-1]}x{raw.diff3d.shape[-1]}; use data of its size"
        )
    return stored


def build_configs(args: argparse.Namespace, raw: RawData) -> EngineConfig:
    """The engine configuration for these arguments (N from the (first) scan), through the one
    builder the benchmarks share (``config.builder.engine_config_for``, CFG-264)."""
    from ptychodus_pinn_torch.config.builder import engine_config_for

    return engine_config_for(
        _model_config(args, raw),
        epochs=args.epochs,
        batch_size=args.batch_size,
        nphotons=_nphotons(args, raw),
        n_groups=args.n_groups,
        neighbor_count=args.neighbor_count,
        enable_oversampling=args.enable_oversampling,
        neighbor_pool_size=args.neighbor_pool_size,
        train=args.train,
        test=args.test,
        output_dir=args.out,
        learning_rate=args.lr,
        validation_fraction=args.validation_fraction,
        early_stop_patience=args.early_stop_patience,
        seed=args.seed,
        device=args.device,
        bf16=args.bf16,
        channels_last=args.channels_last,
        init_model=None if args.init_model is None else str(args.init_model),
        epochs_fine_tune=args.fine_tune_epochs,
        fine_tune_gamma=args.fine_tune_gamma,
        stage_1_epochs=args.stage_1_epochs,
        stage_2_epochs=args.stage_2_epochs,
        stage_3_epochs=args.stage_3_epochs,
        physics_weight_schedule=args.physics_weight_schedule,
        stage_3_lr_factor=args.stage_3_lr_factor,
        threads=args.threads,
    )


def _mlflow_run(args: argparse.Namespace, config: EngineConfig, sources: list[Any]) -> Any:
    """An open MLflow run with the resolved configuration as params, or None without
    --mlflow (ENG-182)."""
    if not (args.mlflow or args.mlflow_uri is not None or args.experiment is not None):
        return None
    from ptychodus_pinn_torch.engine.mlflow_tracking import start_training_run

    tracker = start_training_run(config, [str(s) for s in sources], uri=args.mlflow_uri,
                                 experiment=args.experiment)
    print(f"MLflow run {tracker.run_id} ({tracker.uri})", file=sys.stderr)
    return tracker


def generator_fields(args: argparse.Namespace) -> dict[str, Any]:
    """ModelConfig fields of the generator flags; a switch the architecture cannot honour is a
    ValueError naming the flag (``model.generators.check_architecture``)."""
    from ptychodus_pinn_torch.model.generators import (
        ATTENTION_FIELDS,
        REGISTRY,
        check_architecture,
    )

    fields: dict[str, Any] = {"architecture": args.architecture}
    for name in ("fno_modes", "fno_width", "fno_blocks", "fno_cnn_blocks"):
        fields[name] = getattr(args, name)
    if args.output_mode is not None:
        fields[REGISTRY[args.architecture].output_mode_field] = args.output_mode
    for switch in (a.strip() for a in args.attention.split(",") if a.strip()):
        if switch not in ATTENTION_FIELDS:
            raise ValueError(f"--attention {switch!r} is unknown; use a comma list of "
                             f"{', '.join(ATTENTION_FIELDS)}")
        fields[switch] = True
    try:
        check_architecture(SimpleNamespace(**fields))
    except ValueError as exc:
        field = str(exc).split(" = ")[0].replace("ModelConfig.", "")
        flag = ("--attention" if field in ATTENTION_FIELDS else
                "--output-mode" if field.endswith("output_mode") else
                "--" + field.replace("_", "-"))
        raise ValueError(f"{exc} (flag {flag})") from None
    return fields


class _Progress:
    """The command line's progress: a bar per epoch on stderr (or one line per epoch)."""

    def __init__(self, *, bar: bool) -> None:
        self.show_bar = bar
        self.bar: ProgressBar | None = None

    def on_batch(self, p: BatchProgress) -> None:
        if not self.show_bar:
            return
        if self.bar is None:
            self.bar = ProgressBar(p.batches, f"epoch {p.epoch}/{p.epochs}")
        self.bar.update(1)

    def on_epoch(self, report: EpochReport) -> None:
        val = "" if report.val_loss is None else f" val={report.val_loss:.6g}"
        text = f"loss={report.train_loss:.6g}{val} lr={report.lr:.2g}"
        if self.bar is not None:
            self.bar.close(text)
        else:
            print(
                f"epoch {report.epoch}/{report.epochs} {text} {report.seconds:.1f}s",
                file=sys.stderr,
            )
        self.bar = None

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close("stopped")
            self.bar = None


def run(args: argparse.Namespace) -> int:
    file_config = None if args.config is None else config_from_file(args)
    _check_args(args)
    import torch

    from ptychodus_pinn_torch.data import RawData
    from ptychodus_pinn_torch.engine.reporting import plot_loss, summarize
    from ptychodus_pinn_torch.engine.run import expand_sources, run_training

    if os.environ.get("OMP_NUM_THREADS") is None and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        torch.set_num_threads(1)
    main_rank = int(os.environ.get("RANK", "0")) == 0
    if args.memory_budget is not None:  # DATA-120: read by every NPZ reader below
        from ptychodus_pinn_torch.data.npz_limits import MEMORY_BUDGET_ENV, parse_bytes

        budget = parse_bytes(args.memory_budget, "--memory-budget")
        os.environ[MEMORY_BUDGET_ENV] = str(budget)
    drop = not args.keep_empty_frames  # DATA-124: beam-off frames never reach the loss
    sources = expand_sources(args.train)
    scans = [RawData.from_file(source, drop_empty_frames=drop) for source in sources]
    raw = scans[0]
    test = None if args.test is None else RawData.from_file(args.test, drop_empty_frames=drop)
    if file_config is None:
        config = build_configs(args, raw)
    else:
        config = file_config
        if int(config.model.N) != int(raw.diff3d.shape[-1]):
            raise ValueError(
                f"--config {args.config}: model.N={config.model.N} but the training patterns "
                f"are {raw.diff3d.shape[-1]}x{raw.diff3d.shape[-1]}; set N to the data's size")
    gridsize = int(config.model.gridsize)
    for source, scan in zip(sources, scans, strict=True):
        n_groups, oversampling = config.training.n_groups, config.training.enable_oversampling
        if gridsize > 1 and n_groups > scan.n_positions and not oversampling:
            raise ValueError(
                f"--n-groups {n_groups} asks for more groups than the {scan.n_positions} "
                f"scan points of {source} at gridsize {gridsize}; pass --n-groups "
                f"{scan.n_positions} (or fewer), or --enable-oversampling to draw K-choose-C "
                f"combinations of neighbours"
            )
    progress = _Progress(bar=main_rank and not args.no_progress)
    callbacks = TrainCallbacks(on_epoch=(progress.on_epoch,), on_batch=(progress.on_batch,))
    tracker = _mlflow_run(args, config, sources) if main_rank else None
    if tracker is not None:
        callbacks = callbacks.plus(TrainCallbacks(on_epoch=(tracker.on_epoch,)))
    try:
        run_ = run_training(scans[0] if len(scans) == 1 else scans, config, args.out,
                            test=test, resume=args.resume, callbacks=callbacks,
                            sources=sources)
    except BaseException:
        if tracker is not None:
            tracker.end("KILLED" if isinstance(sys.exc_info()[1], KeyboardInterrupt)
                        else "FAILED")
        raise
    progress.close()
    result = run_.result
    if not main_rank:
        return 0
    if run_.archive is None or run_.history is None:
        if tracker is not None:
            tracker.end("KILLED" if run_.signal_name else "FAILED")
        if run_.signal_name is not None:  # CFG-262: a signal's conventional status
            print(f"pinn-torch train: stopped by {run_.signal_name} before the first epoch "
                  "finished; no model was written", file=sys.stderr)
            return signal_exit_status(run_.signal_name)
        raise ValueError(
            "no epoch finished, so there is no trained model to keep; "
            + (result.stopped or "check the data")
        )
    plot_loss(args.out / "loss.png", result.history)
    if tracker is not None:
        from ptychodus_pinn_torch.engine.mlflow_tracking import finish_training_run

        finish_training_run(tracker, config, archive=run_.archive, history=run_.history,
                            loss_plot=args.out / "loss.png",
                            status="FINISHED" if run_.signal_name is None else "KILLED")
        print(f"MLflow run {tracker.run_id}: the model is runs:/{tracker.run_id}/model",
              file=sys.stderr)
    summary = summarize(result.history)
    if result.stopped and run_.signal_name is None:
        print(f"pinn-torch train: {result.stopped}", file=sys.stderr)
    test_text = "" if result.test_loss is None else f", test loss {result.test_loss:.6g}"
    print(
        f"trained {summary['epochs_run']} epoch(s) on {result.device} in "
        f"{run_.seconds:.1f}s: loss {summary['first_loss']:.6g} -> "
        f"{summary['last_loss']:.6g}{test_text}; wrote {run_.archive}, "
        f"{run_.history}, {args.out / 'loss.png'}"
    )
    if run_.signal_name is not None:  # CFG-262: saved, then the signal's conventional status
        print(f"pinn-torch train: stopped by {run_.signal_name} after epoch "
              f"{summary['epochs_run']}; the model of the last finished epoch is in "
              f"{run_.archive}", file=sys.stderr)
        return signal_exit_status(run_.signal_name)
    return 0


def signal_exit_status(name: str) -> int:
    """The shell's status of a process ended by signal ``name``: 128 + its number (SIGINT 130,
    SIGTERM 143)."""
    import signal

    return 128 + int(signal.Signals[name])
