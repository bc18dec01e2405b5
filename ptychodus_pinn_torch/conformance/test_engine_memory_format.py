"""ENG-207: the memory format training runs in is the one ``EngineConfig.channels_last`` says."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

from ptychodus_pinn_torch.conformance.helpers import tiny_engine, tiny_scan
from ptychodus_pinn_torch.engine import distributed as distmod
from ptychodus_pinn_torch.engine.epoch import batch_loss
from ptychodus_pinn_torch.engine.memory_format import in_memory_format
from ptychodus_pinn_torch.engine.session import setup
from ptychodus_pinn_torch.engine.training import train_model

N = 64


def _strides(shape: tuple[int, ...], channels_last: bool) -> tuple[int, ...]:
    """Strides of a (B, C, H, W) tensor in channels-last or the standard format."""
    _, c, h, w = shape
    return (c * h * w, 1, w * c, c) if channels_last else (c * h * w, h * w, w, 1)


def _seen_by_first_conv(setting: bool | None, gridsize: int = 1) -> tuple[bool, bool]:
    """(whether the batch the first convolution receives has channels-last strides, whether
    its weight has) in one training batch on the CPU with ``channels_last=setting``; each
    must have the strides of one of the two formats."""
    config = tiny_engine(1, engine={"channels_last": setting}, model={"gridsize": gridsize})
    session = setup(tiny_scan(), config, torch.device("cpu"), distmod.DistContext())
    conv = next(m for m in session.model.modules() if isinstance(m, torch.nn.Conv2d))
    seen: list[tuple[int, ...]] = []
    hook = conv.register_forward_pre_hook(lambda mod, args: seen.append(args[0].stride()))
    try:
        batch_loss(session.train_module, session, session.train_idx[:4])
    finally:
        hook.remove()
    shape = (4, gridsize**2, N, N)
    w = conv.weight
    assert seen[0] in (_strides(shape, True), _strides(shape, False)), seen[0]
    assert w.stride() in (_strides(w.shape, True), _strides(w.shape, False)), w.stride()
    return seen[0] == _strides(shape, True), w.stride() == _strides(w.shape, True)


@pytest.mark.spec("ENG-207")
@pytest.mark.parametrize("gridsize", [1, 2])
def test_each_batch_reaches_the_network_in_the_configured_format(gridsize: int) -> None:
    assert _seen_by_first_conv(None, gridsize) == (True, True)  # the CPU default
    assert _seen_by_first_conv(True, gridsize) == (True, True)
    assert _seen_by_first_conv(False, gridsize) == (False, False)


@pytest.mark.spec("ENG-207")
def test_in_memory_format_fixes_one_channel_strides() -> None:
    x = torch.arange(2 * 8 * 8, dtype=torch.float32).reshape(2, 8, 8, 1).permute(0, 3, 1, 2)
    assert x.stride() == (64, 1, 8, 1) and x.is_contiguous()  # what .contiguous() leaves alone
    std = in_memory_format(x, False)
    assert std.stride() == (64, 64, 8, 1)
    assert in_memory_format(std, True).stride() == (64, 1, 8, 1)
    assert in_memory_format(std, False) is std  # no copy when the strides already agree
    np.testing.assert_array_equal(std.numpy(), x.numpy())


@pytest.mark.spec("ENG-207")
def test_both_formats_train_to_the_same_losses() -> None:
    scan = tiny_scan()
    standard = train_model(scan, tiny_engine(2, engine={"channels_last": False}))
    default = train_model(scan, tiny_engine(2))
    for a, b in zip(standard.history, default.history, strict=True):
        np.testing.assert_allclose(b.train_loss, a.train_loss, rtol=1e-4)
    assert default.bundle.model.probe_ri.is_contiguous()  # handed back in the standard format


@pytest.mark.spec("ENG-207")
def test_cli_channels_last_values(capsys: pytest.CaptureFixture[str]) -> None:
    from ptychodus_pinn_torch.cli.train import add_arguments

    parser = argparse.ArgumentParser(prog="pinn-torch train")
    add_arguments(parser)
    base = ["--train", "t.npz", "--out", "o"]
    values = {(): None, ("--channels-last",): True, ("--channels-last", "on"): True,
              ("--channels-last", "OFF"): False, ("--channels-last", "auto"): None}
    for flags, expected in values.items():
        assert parser.parse_args([*base, *flags]).channels_last is expected, flags
    with pytest.raises(SystemExit) as info:
        parser.parse_args([*base, "--channels-last", "maybe"])
    assert info.value.code == 2
    assert "'maybe' is not one of auto, on, off" in capsys.readouterr().err
