"""Crops kept on disk above a memory budget (ENG-250, STITCH-250): the same object as in memory,
the temporary file gone after success and after an error, a full disk refused before the network
runs, settings refused by name."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from ptychodus_pinn_torch.config.spec import ModelConfig
from ptychodus_pinn_torch.data.simulate import simulate_scan
from ptychodus_pinn_torch.engine.archive import ModelBundle
from ptychodus_pinn_torch.engine.inference import reconstruct
from ptychodus_pinn_torch.model import build_model
from ptychodus_pinn_torch.stitch import (
    SpilledPatches,
    pairwise_overlaps,
    phase_offsets,
    spill,
    stitch_spilled_to_object_grid,
    stitch_to_object_grid,
    synchronize_phases,
)


@pytest.fixture(scope="module")
def scan():  # type: ignore[no-untyped-def]
    return simulate_scan(object_shape=(96, 112), seed=5, overlap=0.6, nphotons=1e6)


@pytest.fixture(scope="module")
def bundle(scan) -> ModelBundle:  # type: ignore[no-untyped-def]
    cfg = ModelConfig(N=64, n_filters_scale=1)
    torch.manual_seed(0)
    model = build_model(cfg, probe=scan.probeGuess, intensity_scale=31.25)
    return ModelBundle(model=model, model_config=cfg, intensity_scale=model.intensity_scale,
                       probe=model.probe.detach().numpy())


def _open_files_under(folder: Path) -> list[str]:
    """Targets of this process's open file descriptors inside ``folder`` (an unlinked file
    reads 'PATH (deleted)')."""
    fd_dir = Path("/proc/self/fd")
    if not fd_dir.is_dir():
        pytest.skip("open files are listed from Linux' /proc/self/fd")
    found = []
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(folder)):
            found.append(target)
    return found


def _raster_patches(n_side: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n, 34, 34) complex64 patches of one random object on an ``n_side``² raster (step 7,
    sub-pixel jitter) with random constant phase offsets; x, y (n,)."""
    rs = np.random.RandomState(seed)
    side = 7 * n_side + 60
    truth = (rs.rand(side, side) + 0.5) * np.exp(1j * rs.rand(side, side))
    xs, ys = np.meshgrid(np.arange(n_side) * 7.0 + 30, np.arange(n_side) * 7.0 + 30)
    x = xs.ravel() + rs.uniform(-0.3, 0.3, xs.size)
    y = ys.ravel() + rs.uniform(-0.3, 0.3, xs.size)
    rows = (np.round(y)[:, None] + np.arange(34) - 17).astype(int)
    cols = (np.round(x)[:, None] + np.arange(34) - 17).astype(int)
    patches = truth[rows[:, :, None], cols[:, None, :]]
    patches = patches * np.exp(1j * rs.uniform(-np.pi, np.pi, len(x)))[:, None, None]
    return patches.astype(np.complex64), x, y


def _spilled(patches: np.ndarray, folder: Path, batch: int = 37) -> SpilledPatches:
    store = SpilledPatches(patches.shape, folder)
    for lo in range(0, len(patches), batch):  # uneven batches, like the network pass
        store.append(torch.from_numpy(patches[lo : lo + batch]))
    return store


def test_spilled_overlaps_phases_and_stitching_equal_the_in_memory_ones(tmp_path) -> None:  # type: ignore[no-untyped-def]
    patches, x, y = _raster_patches(20)  # 400 patches, ~1500 pairs: two chunks of pairs
    weights = np.zeros((34, 34), np.float32)
    weights[1:33, 1:33] = np.hanning(34)[1:33, None] * np.hanning(34)[None, 1:33]
    with _spilled(patches, tmp_path) as store:
        assert store.nbytes == patches.nbytes
        i0, j0, h0 = pairwise_overlaps(torch.from_numpy(patches), x, y, weights)
        i1, j1, h1 = pairwise_overlaps(store, x, y, weights, chunk_size=300)
        assert len(h0) > 1024
        np.testing.assert_array_equal(i1, i0)
        np.testing.assert_array_equal(j1, j0)
        np.testing.assert_allclose(h1, h0, rtol=1e-6, atol=1e-6 * np.abs(h0).max())
        ram = phase_offsets(torch.from_numpy(patches), x, y, weights)
        disk = phase_offsets(store, x, y, weights)
        np.testing.assert_allclose(disk, ram, rtol=0, atol=1e-9)
        assert np.ptp(ram) > 1.0  # real offsets were found, not zeros
        synced = synchronize_phases(torch.from_numpy(patches.copy()), x, y, weights,
                                    inplace=True)
        obj0, cov0 = stitch_to_object_grid(synced, x, y, (220, 220), crop=32,
                                           weights=weights)
        obj1, cov1 = stitch_spilled_to_object_grid(store, x, y, (220, 220), crop=32,
                                                   weights=weights, phase=disk)
        np.testing.assert_allclose(obj1.numpy(), obj0.numpy(), rtol=0,
                                   atol=1e-6 * float(obj0.abs().max()))
        np.testing.assert_array_equal(cov1.numpy(), cov0.numpy())
        # the crops come back exactly as written, in any order
        np.testing.assert_array_equal(store.read(5, 9).numpy(), patches[5:9])
        np.testing.assert_array_equal(store.gather(np.array([7, 2, 7])).numpy(),
                                      patches[[7, 2, 7]])
    assert store.closed and _open_files_under(tmp_path) == [] and not any(tmp_path.iterdir())


def test_reconstruct_spilling_to_disk_gives_the_in_memory_object(scan, bundle, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ram = reconstruct(bundle, scan, device="cpu", keep_patches=False, patch_memory=None)
    seen: list[list[str]] = []
    disk = reconstruct(bundle, scan, device="cpu", keep_patches=False, patch_memory=1,
                       spill_dir=tmp_path, batch_size=7,
                       on_batch=lambda done, total: seen.append(_open_files_under(tmp_path)))
    peak = np.abs(ram.object).max()
    np.testing.assert_allclose(disk.object, ram.object, rtol=0, atol=1e-6 * peak)
    np.testing.assert_array_equal(disk.coverage, ram.coverage)
    # the crops were on disk during the network pass: one unlinked file in the spill folder
    assert seen and all(len(files) == 1 and files[0].endswith("(deleted)") for files in seen)
    assert _open_files_under(tmp_path) == [] and not any(tmp_path.iterdir())
    # without phase synchronization too
    a = reconstruct(bundle, scan, device="cpu", keep_patches=False, patch_memory=None,
                    phase_sync=False)
    b = reconstruct(bundle, scan, device="cpu", keep_patches=False, patch_memory=0,
                    phase_sync=False, spill_dir=tmp_path)
    np.testing.assert_allclose(b.object, a.object, rtol=0, atol=1e-6 * np.abs(a.object).max())
    # a budget the crops fit in keeps them in memory: no file is opened
    seen.clear()
    reconstruct(bundle, scan, device="cpu", keep_patches=False, spill_dir=tmp_path,
                on_batch=lambda done, total: seen.append(_open_files_under(tmp_path)))
    assert seen and all(files == [] for files in seen)


def test_the_spill_file_is_removed_after_an_error_and_an_interrupt(scan, bundle, tmp_path) -> None:  # type: ignore[no-untyped-def]
    for error in (RuntimeError("boom"), KeyboardInterrupt()):
        calls: list[int] = []

        def stop(done: int, total: int, error: BaseException = error,
                 calls: list[int] = calls) -> None:
            calls.append(len(_open_files_under(tmp_path)))
            if done == 2:
                raise error

        with pytest.raises(type(error)):
            reconstruct(bundle, scan, device="cpu", keep_patches=False, patch_memory=0,
                        spill_dir=tmp_path, batch_size=8, on_batch=stop)
        assert calls == [1, 1]  # the file was open while the network ran
        assert _open_files_under(tmp_path) == [] and not any(tmp_path.iterdir())
        assert not torch.is_inference_mode_enabled()  # the network pass was closed at once


def test_too_little_disk_is_refused_before_the_network_runs(scan, bundle, tmp_path,
                                                             monkeypatch) -> None:  # type: ignore[no-untyped-def]
    free = 10 * 2**20
    monkeypatch.setattr(spill.shutil, "disk_usage", lambda path: type("U", (), {
        "free": free, "total": 2**40, "used": 2**40 - free})())
    batches: list[int] = []
    with pytest.raises(ValueError) as info:
        reconstruct(bundle, scan, device="cpu", keep_patches=False, patch_memory=0,
                    spill_dir=tmp_path, on_batch=lambda d, t: batches.append(d))
    message = str(info.value)
    assert "\n" not in message and batches == []
    need = len(scan.xcoords) * 34 * 34 * 8
    assert f"needs {need / 2**20:.0f} MiB" in message and "only 10 MiB are free" in message
    assert "spill_dir" in message and "--patch-memory" in message
    assert not any(tmp_path.iterdir())
    with pytest.raises(ValueError, match="spill_dir .* is not a folder"):
        reconstruct(bundle, scan, device="cpu", keep_patches=False, patch_memory=0,
                    spill_dir=tmp_path / "missing")


@pytest.mark.parametrize("value", [-1, True, 1.5, "512M"])
def test_patch_memory_is_refused_by_name(scan, bundle, value) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="patch_memory must be a number of bytes"):
        reconstruct(bundle, scan, device="cpu", keep_patches=False, patch_memory=value)


def test_cli_patch_memory_and_spill_dir(scan, bundle, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from ptychodus_pinn_torch.cli.main import main
    from ptychodus_pinn_torch.engine.archive import save_archive

    save_archive(tmp_path / "wts.h5.zip", bundle)
    scan.to_file(tmp_path / "scan.npz")
    spill_dir = tmp_path / "spill"
    spill_dir.mkdir()
    base = ["reconstruct", "--model", str(tmp_path / "wts.h5.zip"), "--data",
            str(tmp_path / "scan.npz"), "--device", "cpu", "--no-progress"]
    assert main([*base, "--out", str(tmp_path / "ram.npz")]) == 0
    assert main([*base, "--out", str(tmp_path / "disk.npz"), "--patch-memory", "0",
                 "--spill-dir", str(spill_dir)]) == 0
    with np.load(tmp_path / "ram.npz") as a, np.load(tmp_path / "disk.npz") as b:
        np.testing.assert_allclose(b["object"], a["object"], rtol=0,
                                   atol=1e-6 * np.abs(a["object"]).max())
    assert not any(spill_dir.iterdir())
    capsys.readouterr()
    assert main([*base, "--out", str(tmp_path / "x.npz"), "--patch-memory", "lots"]) == 2
    assert "--patch-memory='lots' is not a size" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "x.npz"), "--patch-memory", "1K",
                 "--spill-dir", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "is not a folder" in err and "nowhere" in err


_RSS_CHILD = r"""
import sys, numpy as np, torch
import ptychodus_pinn_torch.data.paging as paging
import ptychodus_pinn_torch.engine.inference as inference
from ptychodus_pinn_torch.config.spec import ModelConfig
from ptychodus_pinn_torch.data import RawData
from ptychodus_pinn_torch.data.simulate import simulate_scan
from ptychodus_pinn_torch.engine.archive import ModelBundle
from ptychodus_pinn_torch.model import build_model

# 8 MiB chunks of patterns instead of 64: the fixed part of the peak (a chunk of the memory map
# and its float64 energies) stays well below the crops measured here
paging.CHUNK_BYTES = inference.CHUNK_BYTES = 8 * 2**20
folder, positions = sys.argv[1], int(sys.argv[2])
patch_memory = None if sys.argv[3] == "None" else int(sys.argv[3])
torch.set_num_threads(1)
small = simulate_scan(N=64, object_shape=(128, 128), seed=0)
side = int(np.ceil(np.sqrt(positions)))
yy, xx = np.divmod(np.arange(positions), side)
diff = np.lib.format.open_memmap(f"{folder}/diff3d.npy", "w+", np.float32, (positions, 64, 64))
for lo in range(0, positions, 2048):
    diff[lo:lo + 2048] = small.diff3d[np.arange(lo, min(lo + 2048, positions)) % len(small.diff3d)]
diff.flush()
del diff
cfg = ModelConfig(N=64, n_filters_scale=1, architecture="fno", fno_width=4, fno_blocks=1,
                  fno_modes=2, fno_cnn_blocks=1)
torch.manual_seed(0)
model = build_model(cfg, probe=small.probeGuess, intensity_scale=31.25)
bundle = ModelBundle(model=model, model_config=cfg, intensity_scale=31.25,
                     probe=model.probe.detach().numpy())

def scan(m):
    return RawData(xcoords=xx[:m] * 4.0 + 40, ycoords=yy[:m] * 4.0 + 40,
                   xcoords_start=xx[:m] * 4.0 + 40, ycoords_start=yy[:m] * 4.0 + 40,
                   diff3d=np.load(f"{folder}/diff3d.npy", mmap_mode="r")[:m],
                   probeGuess=small.probeGuess, scan_index=np.zeros(m, np.int64))

def rss(key):
    return int([ln for ln in open("/proc/self/status") if ln.startswith(key)][0].split()[1])

# warm-up: torch's and the allocator's own memory
inference.reconstruct(bundle, scan(512), device="cpu", keep_patches=False, patch_memory=0,
                      spill_dir=folder, batch_size=64)
data = scan(positions)
with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")  # VmHWM := VmRSS now
before = rss("VmRSS")
inference.reconstruct(bundle, data, device="cpu", keep_patches=False,
                      patch_memory=patch_memory, spill_dir=folder, batch_size=64)
print("GROWTH_KB", rss("VmHWM") - before)
"""


def _reconstruct_growth(folder: Path, positions: int, patch_memory: int | None) -> int:
    """Growth of the peak RSS (bytes) of a fresh process over its RSS just before it
    reconstructs ``positions`` positions with ``patch_memory`` (after the same warm-up). One
    process per measurement, and glibc's allocator told to hand every block of 128 KiB or more
    straight back to the system when it is freed (``MALLOC_MMAP_THRESHOLD_``): otherwise the
    peak depends on which freed blocks the heap happens to reuse, measured to vary by 45 MB
    between identical runs (55-99 MB at 5,000 positions with or without transparent huge
    pages); with it, identical runs agree within 1 MB."""
    import subprocess
    import sys

    folder.mkdir()
    proc = subprocess.run([sys.executable, "-c", _RSS_CHILD, str(folder), str(positions),
                           str(patch_memory)], capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, OMP_NUM_THREADS="1",
                                   MALLOC_MMAP_THRESHOLD_=str(128 * 1024)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [p.name for p in folder.iterdir()] == ["diff3d.npy"]  # no spill file left
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("GROWTH_KB")][-1]
    return int(line.split()[1]) * 1024


@pytest.mark.slow
def test_reconstruct_memory_does_not_hold_every_crop(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """With a 1 MiB patch memory the peak memory of a reconstruction does not grow with the
    crops: from 5,000 to 10,000 positions (46 MB more crops at N = 64, 9,248 bytes each) it
    grows by less than a tenth of them, while with the crops in memory it holds more than all
    of them. Each number is the growth of a fresh process's peak RSS over its RSS just before
    the call (tiny network, memory-mapped patterns; see ``_reconstruct_growth``). The fixed part
    (one chunk of patterns, the stitching's working set) is ~60 MB. Measured on the 2-core box
    with transparent huge pages off and on: 61 and 60 MB on disk at 5,000 and 20,000
    positions; 114 MB at 5,000 with the 46 MB of crops in memory (CI once saw 99 MB on disk at
    10,000 positions without the allocator setting, which failed the old absolute bound)."""
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("the peak RSS is reset through Linux' /proc/self/clear_refs")
    crop = 34 * 34 * 8
    small, large = 5_000, 10_000
    disk_small = _reconstruct_growth(tmp_path / "a", small, 2**20)
    disk_large = _reconstruct_growth(tmp_path / "b", large, 2**20)
    memory_small = _reconstruct_growth(tmp_path / "c", small, None)
    numbers = f"disk {disk_small / 1e6:.1f} / {disk_large / 1e6:.1f} MB, memory " \
              f"{memory_small / 1e6:.1f} MB"
    assert memory_small > small * crop, numbers  # the measurement sees the crops when kept
    assert disk_large - disk_small < (large - small) * crop / 10, numbers
    assert disk_small < memory_small - small * crop / 2, numbers
