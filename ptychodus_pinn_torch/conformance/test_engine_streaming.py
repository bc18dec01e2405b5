"""MODEL-200, STITCH-200, ENG-204, ENG-250: inference at the network's own speed and in bounded
memory (gridsize-1 fast path, phase synchronization on the device with a sparse eigensolver,
streaming reconstruct without labels or whole-patch copies, crops on disk above a memory
budget)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ptychodus_pinn_torch.config.spec import ModelConfig
from ptychodus_pinn_torch.data.simulate import simulate_scan
from ptychodus_pinn_torch.engine.archive import ModelBundle
from ptychodus_pinn_torch.engine.inference import reconstruct
from ptychodus_pinn_torch.model import build_model
from ptychodus_pinn_torch.model.ops import extract_patches, merge_patches
from ptychodus_pinn_torch.stitch import phase_sync


@pytest.fixture(scope="module")
def scan():  # type: ignore[no-untyped-def]
    return simulate_scan(object_shape=(96, 112), seed=5, overlap=0.6, nphotons=1e6)


def _bundle(scan) -> ModelBundle:  # type: ignore[no-untyped-def]
    cfg = ModelConfig(N=64, n_filters_scale=1)
    torch.manual_seed(0)
    model = build_model(cfg, probe=scan.probeGuess, intensity_scale=31.25)
    return ModelBundle(model=model, model_config=cfg, intensity_scale=model.intensity_scale,
                       probe=model.probe.detach().numpy())


@pytest.mark.spec("MODEL-200")
def test_gridsize_one_at_position_zero_skips_the_translations() -> None:
    gen = torch.Generator().manual_seed(0)
    patch = torch.randn(3, 1, 64, 64, dtype=torch.complex64, generator=gen)
    zeros1, zeros2 = torch.zeros(3, 1, 2), torch.zeros(3, 2, 2)
    # the general formula, forced by two identical channels at position 0
    general = merge_patches(torch.cat([patch, patch], dim=1), zeros2, 74)
    fast = merge_patches(patch, zeros1, 74)
    # the general path resamples through grid_sample: its float32 rounding reaches 4e-5 here
    torch.testing.assert_close(fast, general, rtol=0, atol=1e-4)
    canvas = torch.randn(3, 74, 74, dtype=torch.complex64, generator=gen)
    torch.testing.assert_close(extract_patches(canvas, zeros1, 64),
                               extract_patches(canvas, zeros2, 64)[:, :1], rtol=0, atol=1e-4)
    # a non-zero position still translates
    moved = merge_patches(patch, torch.full((3, 1, 2), 0.5), 74)
    assert (moved - fast).abs().max() > 0.1


@pytest.mark.spec("STITCH-200")
def test_phase_sync_stays_on_the_device_and_uses_the_sparse_solver(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    rs = np.random.RandomState(1)
    truth = (rs.rand(80, 80) + 0.5) * np.exp(1j * rs.rand(80, 80))
    xs, ys = np.meshgrid(np.arange(20.0, 61.0, 8.0), np.arange(20.0, 61.0, 8.0))
    x, y = xs.ravel(), ys.ravel()
    rows = (y[:, None] + np.arange(32) - 16).astype(int)
    cols = (x[:, None] + np.arange(32) - 16).astype(int)
    patches = truth[rows[:, :, None], cols[:, None, :]]
    offsets = rs.uniform(-np.pi, np.pi, len(x))
    patches = (patches * np.exp(1j * offsets)[:, None, None]).astype(np.complex64)
    weights = np.ones((32, 32), np.float32)
    calls = []
    original = phase_sync.eigsh

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(args[0].shape)
        return original(*args, **kwargs)

    monkeypatch.setattr(phase_sync, "eigsh", counting)
    synced_np = phase_sync.synchronize_phases(patches, x, y, weights)
    synced_t = phase_sync.synchronize_phases(torch.from_numpy(patches), x, y, weights)
    assert calls[:2] == [(36, 36), (36, 36)]  # sparse Lanczos even for 36 patches
    assert isinstance(synced_t, torch.Tensor) and synced_t.dtype == torch.complex64
    np.testing.assert_allclose(synced_t.numpy(), synced_np, atol=1e-5)
    source = torch.from_numpy(patches.copy())
    rotated = phase_sync.synchronize_phases(source, x, y, weights, inplace=True)
    assert rotated is source  # no second copy of the patches
    np.testing.assert_allclose(rotated.numpy(), synced_np, atol=1e-5)
    residual = np.angle(synced_np[:, 16, 16] * np.conj(truth[y.astype(int), x.astype(int)]))
    spread = np.angle(np.exp(1j * (residual - residual[0])))
    assert np.abs(spread).max() < 1e-3


@pytest.mark.spec("ENG-204")
def test_streaming_reconstruct_needs_no_labels_and_no_whole_patches(scan, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    bundle = _bundle(scan)
    full = reconstruct(bundle, scan, device="cpu")

    def no_grouped_dict(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("inference must not build the grouped dict (labels, copies)")

    monkeypatch.setattr(type(scan), "generate_grouped_data", no_grouped_dict)
    lean = reconstruct(bundle, scan, device="cpu", keep_patches=False, batch_size=7)
    assert lean.patches is None and full.patches is not None
    assert full.patches.shape == (scan.diff3d.shape[0], 64, 64)
    np.testing.assert_allclose(lean.object, full.object, atol=2e-5 * np.abs(full.object).max())
    np.testing.assert_array_equal(lean.coverage > 0, full.coverage > 0)
    np.testing.assert_allclose(lean.centres, full.centres)


@pytest.mark.spec("ENG-206")
def test_channels_last_and_bf16_inference_options(scan) -> None:  # type: ignore[no-untyped-def]
    bundle = _bundle(scan)
    plain = reconstruct(bundle, scan, device="cpu", channels_last=False, keep_patches=False)
    auto = reconstruct(bundle, scan, device="cpu", keep_patches=False)  # on for the CPU
    peak = np.abs(plain.object).max()
    np.testing.assert_allclose(auto.object, plain.object, atol=1e-4 * peak)
    # the model is handed back in its own memory format
    conv = next(m for m in bundle.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous()
    low = reconstruct(bundle, scan, device="cpu", bf16=True, keep_patches=False)
    error = np.abs(low.object - plain.object).max() / peak
    assert 0 < error < 0.1  # bfloat16 has 8 mantissa bits
    with pytest.raises(ValueError, match="channels_last"):
        reconstruct(bundle, scan, device="cpu", channels_last="yes")  # type: ignore[arg-type]


@pytest.mark.spec("ENG-250")
def test_crops_above_the_patch_memory_go_to_a_temporary_file(scan, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from ptychodus_pinn_torch.stitch import spill

    bundle = _bundle(scan)
    ram = reconstruct(bundle, scan, device="cpu", keep_patches=False, patch_memory=None)
    opened: list[int] = []
    real_file = spill.tempfile.TemporaryFile

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        opened.append(1)
        return real_file(*args, **kwargs)

    monkeypatch.setattr(spill.tempfile, "TemporaryFile", counting)
    disk = reconstruct(bundle, scan, device="cpu", keep_patches=False, patch_memory=1,
                       spill_dir=tmp_path, batch_size=9)
    assert opened == [1]  # the crops went to disk
    np.testing.assert_allclose(disk.object, ram.object, rtol=0,
                               atol=1e-6 * np.abs(ram.object).max())
    np.testing.assert_array_equal(disk.coverage, ram.coverage)
    assert not any(tmp_path.iterdir())
    # the default budget (512 MiB) keeps a small scan in memory
    reconstruct(bundle, scan, device="cpu", keep_patches=False, spill_dir=tmp_path)
    assert opened == [1]
    # a disk without room: one line before the network runs, naming the fixes
    monkeypatch.setattr(spill.shutil, "disk_usage", lambda path: type("U", (), {"free": 0})())
    batches: list[int] = []
    with pytest.raises(ValueError, match=r"^keeping the patches on disk needs .* MiB .* only 0 "
                       r"MiB are free; .*spill_dir.*patch_memory") as info:
        reconstruct(bundle, scan, device="cpu", keep_patches=False, patch_memory=0,
                    spill_dir=tmp_path, on_batch=lambda d, t: batches.append(d))
    assert "\n" not in str(info.value) and batches == []
    with pytest.raises(ValueError, match="patch_memory"):
        reconstruct(bundle, scan, device="cpu", keep_patches=False, patch_memory=-1)
