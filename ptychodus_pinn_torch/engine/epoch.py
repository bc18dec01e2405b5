"""One training epoch and the evaluation of a set of groups, on a
:class:`~ptychodus_pinn_torch.engine.session.TrainingSession`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ptychodus_pinn_torch.config.engine import LossWeights
from ptychodus_pinn_torch.engine import distributed as distmod
from ptychodus_pinn_torch.engine.events import BatchProgress, TrainCallbacks
from ptychodus_pinn_torch.engine.losses import compute_loss
from ptychodus_pinn_torch.engine.memory_format import in_memory_format
from ptychodus_pinn_torch.engine.schedule import clip_gradients
from ptychodus_pinn_torch.engine.session import TrainingSession
from ptychodus_pinn_torch.model import ModelOutput


@dataclass
class EpochOutcome:
    """What :func:`run_epoch` measured: the mean train loss and weighted terms over the groups
    of every rank, or ``aborted`` (one line: Stop or a non-finite batch loss)."""

    train_loss: float = math.nan
    terms: dict[str, float] = field(default_factory=dict)
    aborted: str | None = None


def batch_loss(
    module: torch.nn.Module,
    session: TrainingSession,
    idx: torch.Tensor,
    x_all: torch.Tensor | None = None,
    pos_all: torch.Tensor | None = None,
    y_all: torch.Tensor | None = None,
    bad_pixels: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Loss of the groups ``idx`` (int64 on the device) of the session's tensors (or of the
    given ``x_all`` (G, C, N, N) float32 ``s·X_full``, ``pos_all`` (G, C, 2) px, ``y_all``
    (G, C, N, N) complex64 or None, ``bad_pixels`` (N, N) bool or None). Returns
    ``compute_loss``'s (total, terms)."""
    probe = None
    if x_all is None:
        x_all, pos_all, y_all = session.x_all, session.pos_all, session.y_all
        if session.probe_bank is not None and session.scan_of_group is not None:
            probe = session.probe_bank[session.scan_of_group[idx]].unsqueeze(1)  # (b, 1, N, N)
        bad_pixels = session.bad_pixels
        if bad_pixels is not None:  # PHYS-170: each group's scan's detector mask
            bad_pixels = (bad_pixels[0] if session.scan_of_group is None
                          else bad_pixels[session.scan_of_group[idx]].unsqueeze(1))
    assert pos_all is not None
    x, pos = x_all[idx], pos_all[idx]
    x_in = in_memory_format(x, session.channels_last)
    with torch.autocast(session.device.type, dtype=torch.bfloat16, enabled=session.autocast_on):
        out = module(x_in, pos) if probe is None else module(x_in, pos, probe)
    labels = None if y_all is None else y_all[idx]
    w = session.physics_weight
    physics = None
    if w > 0 or session.config.supervised:
        physics = compute_loss(out, x, labels, session.weights,
                               supervised=session.config.supervised, positions=pos,
                               bad_pixels=bad_pixels)
    if w >= 1 or session.config.supervised:
        assert physics is not None
        return physics
    return blend_with_warmup(out, x, labels, pos, physics, w, session.weights,
                             bad_pixels=bad_pixels)


def blend_with_warmup(
    out: ModelOutput,
    x: torch.Tensor,
    labels: torch.Tensor | None,
    pos: torch.Tensor,
    physics: tuple[torch.Tensor, dict[str, torch.Tensor]] | None,
    w: float,
    weights: LossWeights,
    bad_pixels: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``(1 - w) * warm-up + w * physics`` (specs/ENGINE.md ENG-221): the warm-up is the
    supervised amplitude/phase MAE when ``labels`` (B, C, N, N) complex64 exist, else the
    diffraction amplitude MAE (over good pixels, ``bad_pixels``). Terms are returned weighted,
    prefixed ``warmup_``."""
    if labels is not None:
        warm, warm_terms = compute_loss(out, x, labels, weights, supervised=True, positions=pos)
    else:
        mae_only = LossWeights(nll=0.0, mae=1.0, probe_big=weights.probe_big)
        warm, warm_terms = compute_loss(out, x, None, mae_only, supervised=False, positions=pos,
                                        bad_pixels=bad_pixels)
    total = (1.0 - w) * warm
    terms = {f"warmup_{k}": (1.0 - w) * v for k, v in warm_terms.items()}
    if physics is not None:
        total = total + w * physics[0]
        terms.update({k: w * v for k, v in physics[1].items()})
    return total, terms


def evaluate(
    session: TrainingSession,
    idx: torch.Tensor,
    x_all: torch.Tensor | None = None,
    pos_all: torch.Tensor | None = None,
    y_all: torch.Tensor | None = None,
    bad_pixels: torch.Tensor | None = None,
) -> float:
    """Mean loss over the groups ``idx`` without gradients (eval mode; train mode after).
    Tensors as :func:`batch_loss`; one device read."""
    model = session.model
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=session.device)
    with torch.inference_mode():
        for chunk in torch.split(idx, session.eval_batch_size):
            loss, _ = batch_loss(model, session, chunk, x_all, pos_all, y_all, bad_pixels)
            total += loss.double() * len(chunk)
    model.train()
    return float(total) / max(len(idx), 1)


def epoch_order(session: TrainingSession, epoch: int) -> torch.Tensor:
    """The training groups of 0-based ``epoch`` in the order this rank visits them: the
    DistributedSampler's share, a seeded shuffle (seed·1000003 + epoch), or as they are."""
    train_idx = session.train_idx
    config = session.config
    if session.sampler is not None:
        session.sampler.set_epoch(epoch)
        return train_idx[torch.as_tensor(list(iter(session.sampler)), dtype=torch.long)]
    if config.shuffle:
        gen = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)
        return train_idx[torch.randperm(len(train_idx), generator=gen)]
    return train_idx


def run_epoch(session: TrainingSession, epoch: int, callbacks: TrainCallbacks) -> EpochOutcome:
    """Train 0-based ``epoch`` once over this rank's groups.

    Stop is polled before every batch (and between forward and backward in a single process);
    a Stop or a non-finite batch loss ends the epoch before the optimizer step and is returned
    as ``aborted``. Losses are all-reduced over the ranks.
    """
    config, ctx, device = session.config, session.ctx, session.device
    batches = list(torch.split(epoch_order(session, epoch), config.training.batch_size))
    session.model.train()
    sums = torch.zeros(2, dtype=torch.float64)  # loss·count, count
    term_sums: dict[str, float] = {}
    accum = int(config.accum_steps)
    session.optimizer.zero_grad(set_to_none=True)
    for b, idx in enumerate(batches, start=1):
        flags = torch.tensor([1.0 if callbacks.stop_requested() else 0.0, 0.0])
        if flags[0] == 0:
            loss, terms = batch_loss(session.train_module, session, idx.to(device))
            # the batch's one device read: the loss and every term together
            names = sorted(terms)
            read = torch.stack(
                [loss.detach().float()] + [terms[k].detach().float() for k in names]
            ).tolist()
            loss_value, term_values = read[0], dict(zip(names, read[1:], strict=True))
            flags[1] = 0.0 if math.isfinite(loss_value) else 1.0
            # a second poll between forward and backward halves the stop latency
            if not ctx.is_distributed and callbacks.stop_requested():
                flags[0] = 1.0
        distmod.all_reduce_max(flags, ctx)
        if flags[0] > 0:
            return EpochOutcome(
                aborted=f"stopped by request during epoch {epoch + 1}; kept the weights of "
                f"epoch {epoch}"
            )
        if flags[1] > 0:
            return EpochOutcome(
                aborted=f"non-finite loss at epoch {epoch + 1}, batch {b}; kept the weights of "
                f"epoch {epoch} (try a lower learning rate or check the data)"
            )
        (loss / accum if accum > 1 else loss).backward()
        if b % accum == 0 or b == len(batches):  # upstream: step every accum_steps batches
            clip_gradients(session.model, config)
            session.optimizer.step()
            session.optimizer.zero_grad(set_to_none=True)
        n = float(len(idx))
        sums += torch.tensor([loss_value * n, n], dtype=torch.float64)
        for k, v in term_values.items():
            term_sums[k] = term_sums.get(k, 0.0) + v * n
        callbacks.batch(BatchProgress(epoch + 1, config.epochs, b, len(batches), loss_value))
    names = sorted(term_sums)
    term_vec = torch.tensor([term_sums[k] for k in names], dtype=torch.float64)
    distmod.all_reduce_sum(sums, ctx)
    distmod.all_reduce_sum(term_vec, ctx)
    count = max(float(sums[1]), 1.0)
    return EpochOutcome(
        train_loss=float(sums[0]) / count,
        terms={k: v / count for k, v in zip(names, term_vec.tolist(), strict=True)},
    )


__all__ = [
    "EpochOutcome", "batch_loss", "blend_with_warmup", "epoch_order", "evaluate", "run_epoch",
]
