"""The training loop: Adam, reduce-on-plateau, early stopping, checkpoints, resume, DDP.

One call, :func:`train_model`, turns a :class:`~ptychodus_pinn_torch.data.RawData` scan and a
spec :class:`~ptychodus_pinn_torch.config.spec.TrainingConfig` into a trained
:class:`~ptychodus_pinn_torch.engine.archive.ModelBundle`. Upstream's Keras fit settings are the
defaults (specs/ENGINE.md): Adam lr 1e-3, 5 % validation split, ReduceLROnPlateau(val_loss,
x0.5, patience 2, min_lr 1e-4), EarlyStopping(loss, patience 3), loss
``realspace_weight*realspace + mae_weight*MAE(sX, Â) + nll_weight*NLL((sX)², Â²)``.
``model_type='supervised'`` trains on the ``Y`` labels instead (amplitude and phase MAE).

Under ``torchrun`` the same call trains with DistributedDataParallel; rank 0 writes
checkpoints, every rank returns the same bundle.
"""

from __future__ import annotations

import copy
import logging
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ptychodus_pinn_torch.engine import checkpoint as ckpt
from ptychodus_pinn_torch.engine import distributed as distmod
from ptychodus_pinn_torch.engine.batches import GroupedTensors, group_for_training
from ptychodus_pinn_torch.engine.devices import select_device
from ptychodus_pinn_torch.engine.losses import LossWeights, compute_loss

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainOptions:
    """Engine settings that are not part of the spec ``TrainingConfig``.

    learning_rate: Adam step size (upstream 1e-3).
    validation_fraction: share of the groups held out for ``val_loss`` (Keras
        ``validation_split=0.05``); 0 disables validation (the plateau then watches the train loss).
    plateau_factor / plateau_patience / min_lr: ReduceLROnPlateau on ``val_loss``.
    early_stop_patience: epochs without train-loss improvement before stopping; None disables.
    seed: seeds weights, grouping, the split and the shuffling (deterministic on CPU).
    device: "auto" (CUDA when available), "cpu", "cuda", "cuda:K", "mps".
    channels_last: run convolutions in channels-last memory format.
    bf16: bfloat16 autocast of the network on CUDA (losses stay float32).
    checkpoint_every: write the checkpoint every this many epochs (and at the end).
    min_delta: improvement below this (absolute) does not count (Keras' 1e-4 for the plateau;
        early stopping uses 0 like Keras' EarlyStopping).
    shuffle: shuffle the training groups every epoch.
    grad_clip: clip the gradient norm to this value; None disables.
    deterministic: ask torch for deterministic algorithms (warn-only where none exist).
    """

    learning_rate: float = 1e-3
    validation_fraction: float = 0.05
    plateau_factor: float = 0.5
    plateau_patience: int = 2
    min_lr: float = 1e-4
    early_stop_patience: int | None = 3
    seed: int = 0
    device: str = "auto"
    channels_last: bool = False
    bf16: bool = False
    checkpoint_every: int = 1
    min_delta: float = 1e-4
    shuffle: bool = True
    grad_clip: float | None = None
    deterministic: bool = True

    def __post_init__(self) -> None:
        def bad(name: str, value: object, rule: str) -> ValueError:
            return ValueError(f"TrainOptions.{name} must be {rule}, got {value!r}")

        if not (
            isinstance(self.learning_rate, int | float)
            and self.learning_rate > 0
            and math.isfinite(self.learning_rate)
        ):
            raise bad("learning_rate", self.learning_rate, "a finite number > 0")
        if not (
            isinstance(self.validation_fraction, int | float)
            and 0.0 <= self.validation_fraction < 1.0
        ):
            raise bad("validation_fraction", self.validation_fraction, "in [0, 1)")
        if not (isinstance(self.plateau_factor, int | float) and 0.0 < self.plateau_factor < 1.0):
            raise bad("plateau_factor", self.plateau_factor, "in (0, 1)")
        if not (isinstance(self.plateau_patience, int) and self.plateau_patience >= 0):
            raise bad("plateau_patience", self.plateau_patience, "an integer >= 0")
        if not (isinstance(self.min_lr, int | float) and 0.0 <= self.min_lr <= self.learning_rate):
            raise bad("min_lr", self.min_lr, f"in [0, learning_rate={self.learning_rate}]")
        if self.early_stop_patience is not None and not (
            isinstance(self.early_stop_patience, int) and self.early_stop_patience >= 1
        ):
            raise bad("early_stop_patience", self.early_stop_patience, "an integer >= 1 or None")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise bad("seed", self.seed, "an integer >= 0")
        if not isinstance(self.device, str) or not self.device:
            raise bad("device", self.device, "'auto', 'cpu', 'cuda', 'cuda:K' or 'mps'")
        if not (isinstance(self.checkpoint_every, int) and self.checkpoint_every >= 1):
            raise bad("checkpoint_every", self.checkpoint_every, "an integer >= 1")
        if not (isinstance(self.min_delta, int | float) and self.min_delta >= 0):
            raise bad("min_delta", self.min_delta, "a number >= 0")
        if self.grad_clip is not None and not (
            isinstance(self.grad_clip, int | float) and self.grad_clip > 0
        ):
            raise bad("grad_clip", self.grad_clip, "a number > 0 or None")


@dataclass(frozen=True)
class EpochReport:
    """What one finished epoch reports to ``on_epoch`` (and to history.json).

    epoch is 1-based; epochs is the planned total; losses are means over groups; lr is the
    learning rate used during the epoch; seconds is its wall time; terms holds the weighted
    train-loss parts (``nll``, ``mae``, ``realspace``, or ``amp_mae``/``phase_mae``).
    """

    epoch: int
    epochs: int
    train_loss: float
    val_loss: float | None
    lr: float
    seconds: float
    terms: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EpochReport:
        return cls(
            epoch=int(data["epoch"]),
            epochs=int(data["epochs"]),
            train_loss=float(data["train_loss"]),
            val_loss=None if data.get("val_loss") is None else float(data["val_loss"]),
            lr=float(data["lr"]),
            seconds=float(data["seconds"]),
            terms={str(k): float(v) for k, v in dict(data.get("terms", {})).items()},
        )


@dataclass
class TrainResult:
    """The outcome of :func:`train_model`.

    bundle: the trained model and everything needed to save it as ``wts.h5.zip``.
    history: one report per finished epoch (resumed epochs included).
    stopped: None when all epochs ran; otherwise why training ended early (user stop, early
        stopping, non-finite loss), one line.
    test_loss: the loss on ``test_data`` after training (None without test data).
    device: the device that trained.
    """

    bundle: Any
    history: list[EpochReport]
    stopped: str | None = None
    test_loss: float | None = None
    device: str = "cpu"


class _EarlyStopping:
    """Keras EarlyStopping(monitor='loss', patience, min_delta=0, mode='min')."""

    def __init__(self, patience: int | None) -> None:
        self.patience = patience
        self.best = math.inf
        self.wait = 0

    def step(self, value: float) -> bool:
        """Record an epoch's loss; True when training should stop."""
        if value < self.best:
            self.best = value
            self.wait = 0
            return False
        self.wait += 1
        return self.patience is not None and self.wait >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {"best": float(self.best), "wait": int(self.wait)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.best = float(state["best"])
        self.wait = int(state["wait"])


def seed_everything(seed: int, *, deterministic: bool = True, device_type: str = "cpu") -> None:
    """Seed Python, numpy and torch.

    CPU kernels used here are deterministic already; on CUDA ``deterministic`` also asks torch
    for deterministic algorithms (warn-only) and turns off cuDNN autotuning. (Calling
    ``torch.use_deterministic_algorithms`` on CPU would only cost a ~10 s import of inductor.)
    """
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if deterministic and device_type == "cuda":
        import os

        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def make_scheduler(
    optimizer: torch.optim.Optimizer, options: TrainOptions
) -> torch.optim.lr_scheduler.ReduceLROnPlateau:
    """Keras ``ReduceLROnPlateau(factor, patience, min_lr, min_delta=1e-4)`` in torch terms:
    an absolute improvement threshold, no cooldown."""
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer,
        mode="min",
        factor=options.plateau_factor,
        patience=options.plateau_patience,
        threshold=options.min_delta,
        threshold_mode="abs",
        min_lr=options.min_lr,
    )


def validation_count(n_groups: int, fraction: float) -> int:
    """Groups held out for validation: ``round(n·fraction)``, at least 1 when fraction > 0 and
    at least 2 groups exist, and always leaving one group to train on."""
    if fraction <= 0 or n_groups < 2:
        return 0
    return int(min(n_groups - 1, max(1, round(n_groups * fraction))))


def _fingerprint(config: Any, n_groups: int) -> dict[str, Any]:
    model = config.model
    return {
        "N": int(model.N),
        "gridsize": int(model.gridsize),
        "n_filters_scale": int(model.n_filters_scale),
        "model_type": str(model.model_type),
        "object_big": bool(model.object_big),
        "probe_big": bool(model.probe_big),
        "n_groups": int(n_groups),
    }


def _check_config(config: Any) -> None:
    """The TrainingConfig fields the loop relies on, with clear errors."""
    model = getattr(config, "model", None)
    if model is None:
        raise ValueError(
            "TrainingConfig.model is missing; build it as TrainingConfig(model=ModelConfig(...))"
        )
    if not isinstance(config.batch_size, int) or config.batch_size < 1:
        raise ValueError(
            f"TrainingConfig.batch_size must be an integer >= 1, got {config.batch_size!r}"
        )
    if not isinstance(config.nepochs, int) or config.nepochs < 1:
        raise ValueError(f"TrainingConfig.nepochs must be an integer >= 1, got {config.nepochs!r}")
    if model.model_type not in ("pinn", "supervised"):
        raise ValueError(
            f"ModelConfig.model_type must be 'pinn' or 'supervised', got {model.model_type!r}"
        )
    for name in ("mae_weight", "nll_weight", "realspace_weight"):
        value = getattr(config, name)
        if not (isinstance(value, int | float) and value >= 0 and math.isfinite(value)):
            raise ValueError(f"TrainingConfig.{name} must be a finite number >= 0, got {value!r}")
    if (
        model.model_type == "pinn"
        and (config.mae_weight + config.nll_weight + config.realspace_weight) <= 0
    ):
        raise ValueError(
            "TrainingConfig loss weights are all 0 (mae_weight, nll_weight, realspace_weight); "
            "set nll_weight=1 (upstream default) or another weight > 0"
        )


def train_model(
    train_data: Any,
    config: Any,
    *,
    test_data: Any | None = None,
    options: TrainOptions | None = None,
    on_epoch: Callable[[EpochReport], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    on_batch: Callable[[int, int], None] | None = None,
) -> TrainResult:
    """Train a PtychoPINN (or its supervised variant) on ``train_data``.

    train_data/test_data: ``RawData`` scans (``diff3d`` (M,N,N) float32 amplitudes, positions in
        object pixels, ``probeGuess`` (N,N) complex64; labels ``Y`` or ``objectGuess`` for
        supervised training).
    config: spec ``TrainingConfig`` (batch size per process, epochs, loss weights, nphotons,
        grouping settings, nested ``model`` = ``ModelConfig``).
    on_epoch: called after every finished epoch with its :class:`EpochReport` (rank 0 only).
    on_batch: called after every batch with ``(batch_index 1-based, batches_per_epoch)``.
    should_stop: polled before every batch; True ends training within one batch, keeping the
        last finished epoch's weights (and checkpoint).
    checkpoint_dir: where ``checkpoint.pt`` is written atomically every ``checkpoint_every``
        epochs; with ``resume=True`` training continues from the checkpoint found there.

    Returns a :class:`TrainResult`. Raises ValueError on settings or data that cannot train.
    """
    options = TrainOptions() if options is None else options
    if not isinstance(options, TrainOptions):
        raise ValueError(f"options must be a TrainOptions, got {type(options).__name__}")
    _check_config(config)
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs checkpoint_dir (the folder holding checkpoint.pt)")

    device = select_device(options.device, local_rank=distmod.local_rank_from_env())
    if options.bf16 and device.type != "cuda":
        logger.warning("bf16 autocast requested on %s; it is only used on CUDA, ignoring", device)
    if device.type == "cuda":
        torch.cuda.set_device(device)  # before NCCL init: one GPU per local rank
    ctx = distmod.init_distributed(device.type)
    try:
        return _train(
            train_data,
            config,
            test_data=test_data,
            options=options,
            on_epoch=on_epoch,
            should_stop=should_stop,
            checkpoint_dir=checkpoint_dir,
            resume=resume,
            on_batch=on_batch,
            device=device,
            ctx=ctx,
        )
    finally:
        distmod.shutdown(ctx)


def _train(
    train_data: Any,
    config: Any,
    *,
    test_data: Any | None,
    options: TrainOptions,
    on_epoch: Callable[[EpochReport], None] | None,
    should_stop: Callable[[], bool] | None,
    checkpoint_dir: Path | None,
    resume: bool,
    on_batch: Callable[[int, int], None] | None,
    device: torch.device,
    ctx: distmod.DistContext,
) -> TrainResult:
    from ptychodus_pinn_torch.data.normalize import intensity_scale as closed_form_scale
    from ptychodus_pinn_torch.model import build_model

    seed_everything(options.seed, deterministic=options.deterministic, device_type=device.type)
    supervised = config.model.model_type == "supervised"
    needs_labels = supervised or config.realspace_weight > 0
    data = group_for_training(train_data, config, seed=options.seed, need_labels=needs_labels)
    n_total = data.x.shape[0]
    n_val = validation_count(n_total, options.validation_fraction)
    split = torch.randperm(n_total, generator=torch.Generator().manual_seed(options.seed))
    val_idx = split[n_total - n_val :].sort().values if n_val else split[:0]
    train_idx = split[: n_total - n_val].sort().values

    scale = float(closed_form_scale(config.nphotons, config.model.N))
    torch.manual_seed(options.seed)
    model = build_model(
        config.model,
        probe=torch.as_tensor(np.asarray(train_data.probeGuess), dtype=torch.complex64),
        intensity_scale=scale,
        probe_trainable=bool(config.probe_trainable),
        intensity_scale_trainable=bool(config.intensity_scale_trainable),
    ).to(device)
    if options.channels_last:
        model = model.to(memory_format=torch.channels_last)
    weights = LossWeights.from_config(config)

    optimizer = torch.optim.Adam(
        [p for p in model.parameters() if p.requires_grad], lr=options.learning_rate
    )
    scheduler = make_scheduler(optimizer, options)
    early = _EarlyStopping(options.early_stop_patience)
    history: list[EpochReport] = []
    fingerprint = _fingerprint(config, n_total)
    start_epoch = 0
    if resume:
        assert checkpoint_dir is not None
        state = ckpt.load_checkpoint(checkpoint_dir, expect=fingerprint)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        early.load_state_dict(state["early_stop"])
        history = [EpochReport.from_dict(h) for h in state["history"]]
        start_epoch = int(state["epoch"])
        logger.info("resumed from %s at epoch %d", checkpoint_dir, start_epoch)

    train_module: torch.nn.Module = model
    if ctx.is_distributed:
        import warnings

        from torch.nn.parallel import DistributedDataParallel

        # 1-input-channel convolutions get grads whose strides differ from DDP's bucket views;
        # harmless (torch says so), but it would print on every rank
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view")

        train_module = DistributedDataParallel(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=supervised,
        )
    sampler = None
    if ctx.is_distributed:
        from torch.utils.data.distributed import DistributedSampler

        sampler = DistributedSampler(
            range(len(train_idx)),
            num_replicas=ctx.world_size,
            rank=ctx.rank,
            shuffle=options.shuffle,
            seed=options.seed,
            drop_last=False,
        )

    x_all = (data.x * scale).to(device)  # model input and MAE target: s·X_full
    pos_all = data.positions.to(device)
    y_all = None if data.y is None else data.y.to(device)
    last_good = copy.deepcopy(model.state_dict())
    stopped: str | None = None
    epochs = int(config.nepochs)
    if start_epoch >= epochs:
        stopped = f"checkpoint already holds {start_epoch} epoch(s) of {epochs}; nothing to do"
    autocast_on = options.bf16 and device.type == "cuda"

    def forward_loss(
        idx: torch.Tensor, module: torch.nn.Module
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return _batch_loss(
            module, x_all, pos_all, y_all, idx, weights, supervised=supervised,
            channels_last=options.channels_last, autocast_on=autocast_on, device=device,
        )

    for epoch in range(start_epoch, epochs if stopped is None else start_epoch):
        t0 = time.perf_counter()
        lr = float(optimizer.param_groups[0]["lr"])
        if sampler is not None:
            sampler.set_epoch(epoch)
            order = train_idx[torch.as_tensor(list(iter(sampler)), dtype=torch.long)]
        elif options.shuffle:
            gen = torch.Generator().manual_seed(options.seed * 1_000_003 + epoch)
            order = train_idx[torch.randperm(len(train_idx), generator=gen)]
        else:
            order = train_idx
        batches = list(torch.split(order, config.batch_size))
        model.train()
        sums = torch.zeros(2, dtype=torch.float64)  # loss·count, count
        term_sums: dict[str, float] = {}
        aborted: str | None = None
        for b, idx in enumerate(batches, start=1):
            flags = torch.tensor([1.0 if (should_stop is not None and should_stop()) else 0.0, 0.0])
            if flags[0] == 0:
                optimizer.zero_grad(set_to_none=True)
                loss, terms = forward_loss(idx.to(device), train_module)
                # the batch's one device read: the loss and every term together
                term_names = sorted(terms)
                read = torch.stack([loss.detach().float()]
                                   + [terms[k].detach().float() for k in term_names]).tolist()
                loss_value, term_values = read[0], dict(zip(term_names, read[1:], strict=True))
                flags[1] = 0.0 if math.isfinite(loss_value) else 1.0
                # a second poll between forward and backward halves the stop latency
                if should_stop is not None and not ctx.is_distributed and should_stop():
                    flags[0] = 1.0
            distmod.all_reduce_max(flags, ctx)
            if flags[0] > 0:
                aborted = (
                    f"stopped by request during epoch {epoch + 1}; kept the weights of "
                    f"epoch {epoch}"
                )
                break
            if flags[1] > 0:
                aborted = (
                    f"non-finite loss at epoch {epoch + 1}, batch {b}; kept the weights of "
                    f"epoch {epoch} (try a lower learning rate or check the data)"
                )
                break
            loss.backward()
            if options.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), options.grad_clip)
            optimizer.step()
            n = float(len(idx))
            sums += torch.tensor([loss_value * n, n], dtype=torch.float64)
            for k, v in term_values.items():
                term_sums[k] = term_sums.get(k, 0.0) + v * n
            if on_batch is not None:
                on_batch(b, len(batches))
        if aborted is not None:
            model.load_state_dict(last_good)
            stopped = aborted
            break
        names = sorted(term_sums)
        term_vec = torch.tensor([term_sums[k] for k in names], dtype=torch.float64)
        distmod.all_reduce_sum(sums, ctx)
        distmod.all_reduce_sum(term_vec, ctx)
        count = max(float(sums[1]), 1.0)
        train_loss = float(sums[0]) / count
        terms_mean = {k: v / count for k, v in zip(names, term_vec.tolist(), strict=True)}
        val_loss = None
        if n_val:
            val_loss = _evaluate(
                model,
                x_all,
                pos_all,
                y_all,
                val_idx.to(device),
                weights,
                supervised=supervised,
                batch_size=max(config.batch_size, 64),
                options=options,
                autocast_on=autocast_on,
                device=device,
            )
        if not math.isfinite(train_loss) or (val_loss is not None and not math.isfinite(val_loss)):
            model.load_state_dict(last_good)
            stopped = (
                f"non-finite loss at the end of epoch {epoch + 1}; kept the weights of "
                f"epoch {epoch} (try a lower learning rate or check the data)"
            )
            break
        scheduler.step(val_loss if val_loss is not None else train_loss)
        report = EpochReport(
            epoch=epoch + 1,
            epochs=epochs,
            train_loss=train_loss,
            val_loss=val_loss,
            lr=lr,
            seconds=time.perf_counter() - t0,
            terms=terms_mean,
        )
        history.append(report)
        last_good = copy.deepcopy(model.state_dict())
        stop_now = early.step(train_loss)
        if (
            checkpoint_dir is not None
            and ctx.is_main
            and ((epoch + 1) % options.checkpoint_every == 0 or epoch + 1 == epochs or stop_now)
        ):
            ckpt.save_checkpoint(
                checkpoint_dir,
                {
                    "epoch": epoch + 1,
                    "model": last_good,
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "early_stop": early.state_dict(),
                    "history": [h.to_dict() for h in history],
                    "fingerprint": fingerprint,
                },
            )
        if on_epoch is not None and ctx.is_main:
            on_epoch(report)
        if stop_now:
            stopped = (
                f"early stopping: train loss did not improve for "
                f"{options.early_stop_patience} epochs (epoch {epoch + 1} of {epochs})"
            )
            break
    distmod.barrier(ctx)

    model.eval()
    test_loss = None
    if test_data is not None:
        test = group_for_training(
            test_data, config, seed=options.seed, need_labels=needs_labels, sequential=True
        )
        test_loss = _evaluate(
            model,
            (test.x * scale).to(device),
            test.positions.to(device),
            None if test.y is None else test.y.to(device),
            torch.arange(test.x.shape[0], device=device),
            weights,
            supervised=supervised,
            batch_size=max(config.batch_size, 64),
            options=options,
            autocast_on=autocast_on,
            device=device,
        )
    model = model.to("cpu").to(memory_format=torch.contiguous_format)
    bundle = _make_bundle(model, config, scale, history, test_loss)
    return TrainResult(
        bundle=bundle, history=history, stopped=stopped, test_loss=test_loss, device=str(device)
    )


def _batch_loss(
    module: torch.nn.Module,
    x_all: torch.Tensor,
    pos_all: torch.Tensor,
    y_all: torch.Tensor | None,
    idx: torch.Tensor,
    weights: LossWeights,
    *,
    supervised: bool,
    channels_last: bool,
    autocast_on: bool,
    device: torch.device,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Loss of the groups ``idx``: ``x_all`` (B, C, N, N) float32 ``X_full·s``, ``pos_all``
    (B, C, 2) float32 px, ``y_all`` (B, C, N, N) complex64 labels or None. Returns
    ``compute_loss``'s (total, terms)."""
    x, pos = x_all[idx], pos_all[idx]
    x_in = x.contiguous(memory_format=torch.channels_last) if channels_last else x
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast_on):
        out = module(x_in, pos)
    return compute_loss(
        out,
        x,
        None if y_all is None else y_all[idx],
        weights,
        supervised=supervised,
        positions=pos,
    )


def _evaluate(
    model: torch.nn.Module,
    x_all: torch.Tensor,
    pos_all: torch.Tensor,
    y_all: torch.Tensor | None,
    idx: torch.Tensor,
    weights: LossWeights,
    *,
    supervised: bool,
    batch_size: int,
    options: TrainOptions,
    autocast_on: bool,
    device: torch.device,
) -> float:
    """Mean loss over the groups ``idx`` without gradients (in eval mode; train mode after)."""
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=device)
    with torch.inference_mode():
        for chunk in torch.split(idx, batch_size):
            loss, _ = _batch_loss(
                model, x_all, pos_all, y_all, chunk, weights, supervised=supervised,
                channels_last=options.channels_last, autocast_on=autocast_on, device=device,
            )
            total += loss.double() * len(chunk)
    model.train()
    return float(total) / max(len(idx), 1)  # one device read


def _make_bundle(
    model: torch.nn.Module,
    config: Any,
    scale: float,
    history: list[EpochReport],
    test_loss: float | None,
) -> Any:
    """Wrap the trained model for :func:`~ptychodus_pinn_torch.engine.archive.save_archive`."""
    from ptychodus_pinn_torch.engine.archive import ModelBundle

    trained_scale = float(getattr(model, "intensity_scale", scale))
    return ModelBundle(
        model=model,
        model_config=config.model,
        training_config=config,
        intensity_scale=trained_scale,
        probe=model.probe.detach().cpu().numpy().astype(np.complex64),
        extra={"test_loss": test_loss} if test_loss is not None else {},
        history=[h.to_dict() for h in history],
    )


__all__ = [
    "EpochReport",
    "GroupedTensors",
    "TrainOptions",
    "TrainResult",
    "seed_everything",
    "train_model",
    "validation_count",
]
